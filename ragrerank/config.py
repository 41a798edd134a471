"""Settings and locations, resolved in one place: CLI flag → environment → defaults.

Environment variables are only used for locations (where the docs and the artifacts
live), never for behaviour, and nothing is read at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from ragrerank.errors import RagrerankError

DOCS_SUBDIR = Path("website/content/en/docs")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
DOCS_CLONE = PROJECT_ROOT / "data" / "k8s"  # where `make docs` clones kubernetes/website
DOCS_ENV_VARS = ("DOCS_HOME_FOLDER", "BASE_FOLDER")
HOME_ENV_VAR = "RAGRERANK_HOME"

DEFAULT_BI_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_CROSS_ENCODER = "ragrerank-k8s-cross-encoder"  # the project's own model, see models.py
DEFAULT_SPAN_SCORER = "ragrerank-k8s-span-scorer"  # the project's own model that picks answer spans
DEFAULT_LLM = "HuggingFaceTB/SmolLM2-135M-Instruct"

HOW_TO_GET_DOCS = (
    "set DOCS_HOME_FOLDER (or BASE_FOLDER) to the folder that holds website/ "
    "(here: export DOCS_HOME_FOLDER=../shared/corpora/k8s), pass --docs DIR, "
    "or run `make docs` to clone kubernetes/website into data/k8s"
)


@dataclass(frozen=True)
class Settings:
    """Where things are and which models to use; one object passed through the pipeline.

    Example:
        >>> settings = resolve_settings(docs="../shared/corpora/k8s")
        >>> settings.docs_dir.name
        'docs'
    """

    docs_root: Path | None  # the folder that holds website/; None when no docs were found
    home: Path  # artifacts folder: passages, indexes, trained models
    bi_encoder: str = DEFAULT_BI_ENCODER
    cross_encoder: str = DEFAULT_CROSS_ENCODER
    span_scorer: str = DEFAULT_SPAN_SCORER  # scores the sentences an extractive answer quotes
    llm: str = DEFAULT_LLM
    runtime: str = "torch"  # how the cross-encoder runs (rerank.runtime.RUNTIMES); torch-bf16 is ~3x faster on AMX CPUs
    docs_origin: str = field(default="", compare=False)  # how docs_root was found, for `doctor`

    @property
    def docs_dir(self) -> Path:
        """The markdown root (``website/content/en/docs``); raises when no docs were found."""
        if self.docs_root is None:
            raise RagrerankError(f"no Kubernetes docs found: {HOW_TO_GET_DOCS}")
        return self.docs_root / DOCS_SUBDIR

    @property
    def passages_path(self) -> Path:
        return self.home / "passages.jsonl"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    def with_models(self, **names: str | None) -> Settings:
        """Copy with the given model names replaced (``None`` keeps the current one)."""
        return replace(self, **{key: value for key, value in names.items() if value})


def resolve_settings(docs: str | Path | None = None, home: str | Path | None = None) -> Settings:
    """Resolve the docs and artifacts folders: explicit argument → environment → defaults."""
    docs_root, origin = _resolve_docs_root(docs)
    return Settings(docs_root=docs_root, home=_resolve_home(home), docs_origin=origin)


def _resolve_docs_root(docs: str | Path | None) -> tuple[Path | None, str]:
    if docs is not None:
        return _check_docs_root(Path(docs), "--docs"), "--docs"
    for var in DOCS_ENV_VARS:
        value = os.environ.get(var, "").strip()
        if value:
            return _check_docs_root(Path(value), var), var
    if (DOCS_CLONE / DOCS_SUBDIR).is_dir():
        return _check_docs_root(DOCS_CLONE, "make docs clone"), "make docs clone (data/k8s)"
    return None, "not found"


def _check_docs_root(root: Path, origin: str) -> Path:
    """Accept the folder holding website/ and fail with the fix when it is anything else."""
    root = root.expanduser().resolve()
    if not root.exists():
        raise RagrerankError(f"docs folder {root} (from {origin}) does not exist: {HOW_TO_GET_DOCS}")
    if not root.is_dir():
        raise RagrerankError(f"docs folder {root} (from {origin}) is a file, not a folder: {HOW_TO_GET_DOCS}")
    docs_dir = root / DOCS_SUBDIR
    if not docs_dir.is_dir():
        raise RagrerankError(
            f"docs folder {root} (from {origin}) has no {DOCS_SUBDIR}: point it at the folder that "
            f"holds website/, not at website/ itself or at the docs inside it"
        )
    if not any(docs_dir.rglob("*.md")):
        raise RagrerankError(f"docs folder {docs_dir} (from {origin}) holds no .md files: {HOW_TO_GET_DOCS}")
    return root


def _resolve_home(home: str | Path | None) -> Path:
    value = home if home is not None else os.environ.get(HOME_ENV_VAR, "").strip() or None
    path = Path(value).expanduser().resolve() if value else PROJECT_ROOT / "artifacts"
    if path.exists() and not path.is_dir():
        raise RagrerankError(f"artifacts folder {path} is a file: set {HOME_ENV_VAR} to a folder")
    if path.exists() and not os.access(path, os.R_OK | os.W_OK | os.X_OK):
        raise RagrerankError(f"artifacts folder {path} is not readable and writable: fix its permissions or set {HOME_ENV_VAR}")
    return path


def repo_relative(path: str | Path) -> str:
    """``path`` relative to the repository when inside it, so a model card or report names no machine's folders."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(PROJECT_ROOT)) if resolved.is_relative_to(PROJECT_ROOT) else str(resolved)
