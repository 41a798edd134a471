"""The one place that picks a vector store for a retrieval mode and loads the model it needs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, get_args

from ragrerank.config import Settings
from ragrerank.errors import RagrerankError
from ragrerank.retrieval.base import Retriever
from ragrerank.retrieval.faiss_bm25 import open_faiss_retriever
from ragrerank.retrieval.hybrid import HYBRID_DEPTH
from ragrerank.types import Mode

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

Store = Literal["faiss", "milvus"]
STORES: tuple[str, ...] = get_args(Store)


def open_retriever(
    settings: Settings,
    mode: Mode = "hybrid",
    *,
    store: Store = "faiss",
    model: SentenceTransformer | None = None,
    milvus_uri: str | None = None,
    milvus_token: str = "",
    depth: int = HYBRID_DEPTH,
) -> Retriever:
    """A retriever of ``mode`` over ``store`` (the CLI's ``--mode`` and ``--store``).

    Dense and hybrid modes need the bi-encoder: ``model`` when the caller holds one, else the
    settings' bi-encoder, loaded once per process (``ragrerank.models.load_bi_encoder`` caches it).

    Example:
        >>> retriever = open_retriever(settings, "hybrid", store="milvus")
        >>> [hit.passage.path for hit in retriever.search("evict every pod from a node before a kernel upgrade", k=1)]
        ['tasks/administer-cluster/safely-drain-node.md']
    """
    if store not in STORES:
        raise RagrerankError(f"unknown vector store {store!r}: choose one of {', '.join(STORES)}")
    if store == "faiss" and milvus_uri is not None:
        from ragrerank.retrieval.milvus_client import redact

        raise RagrerankError(f"--milvus-uri {redact(milvus_uri)} needs --store milvus: add it, or drop the URI")
    if model is None and mode != "bm25":
        from ragrerank.models import load_bi_encoder

        model = load_bi_encoder(settings.bi_encoder, settings)
    if store == "faiss":
        return open_faiss_retriever(settings, mode, model, depth)
    from ragrerank.retrieval.milvus import open_milvus_retriever  # pymilvus loads only when asked for

    return open_milvus_retriever(settings, mode, model, milvus_uri, milvus_token, depth)
