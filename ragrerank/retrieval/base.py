"""What every retriever shares: the protocol, the one request check, query embedding, hits from rows.

Every retriever (dense, BM25, hybrid, Milvus, a reranking one) sits behind ``Retriever``, so
another vector store can plug in without touching callers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from ragrerank.errors import RagrerankError
from ragrerank.types import MODES, Hit, Passage

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

EMBED_CHUNK = 512  # passages per progress-bar step
QUERY_CHUNK = 32  # queries per search_many call when streaming a queries file


class Retriever(Protocol):
    """Anything that turns a query into ranked passages; dense, BM25, hybrid, or a remote store.

    Hits are 1-based, best first, at most ``k`` of them (fewer when the corpus is smaller),
    and each carries its mode's score under ``"<mode>_score"``.
    """

    def search(self, query: str, k: int = 10) -> list[Hit]: ...

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]: ...


class BatchRetriever:
    """A retriever that answers one query as a batch of one."""

    def search(self, query: str, k: int = 10) -> list[Hit]:
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        raise NotImplementedError


def check_mode(mode: str, model: SentenceTransformer | None) -> bool:
    """Refuse an unknown retrieval mode, or a dense one without its bi-encoder; True when it searches densely."""
    if mode not in MODES:
        raise RagrerankError(f"unknown retrieval mode {mode!r}: choose one of {', '.join(MODES)}")
    if mode != "bm25" and model is None:
        raise RagrerankError(f"mode {mode!r} needs the bi-encoder: pass model=, or let open_retriever load it")
    return mode != "bm25"


def check_query(query: object) -> str:
    """The one check of a question before any model sees it: a non-empty string."""
    if not isinstance(query, str) or not query.strip():
        raise RagrerankError(f"empty query {query!r}: ask a question with at least one word")
    return query


def check_request(queries: Sequence[str], k: int) -> None:
    """Refuse empty queries and a k below 1 before any store is asked; shared by every retriever."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise RagrerankError(f"k must be a whole number ≥ 1, got {k!r}: ask for at least one result")
    for query in queries:
        check_query(query)


def embed_texts(
    model: SentenceTransformer, texts: Sequence[str], batch_size: int = 64, progress: bool = True
) -> np.ndarray:
    """Embed texts into unit-length float32 rows, so inner product equals cosine.

    Texts are sorted by length globally (not only per ``encode`` call) so each batch pads
    to similar lengths, and encoded in chunks to drive one passages-level progress bar.
    """
    order = np.argsort([-len(text) for text in texts], kind="stable")
    vectors = np.empty((len(texts), model.get_embedding_dimension()), dtype=np.float32)
    with tqdm(total=len(texts), unit="passages", desc="embedding", disable=not progress) as bar:
        for start in range(0, len(texts), EMBED_CHUNK):
            rows = order[start : start + EMBED_CHUNK]
            vectors[rows] = model.encode(
                [texts[row] for row in rows],
                batch_size=batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            bar.update(len(rows))
    return vectors


def search_queries(retriever: Retriever, queries: Sequence[tuple[str, str]], k: int = 10) -> Iterator[dict[str, Any]]:
    """Search (id, query) pairs (``ragrerank.evaluate.load_queries`` reads them), one record each.

    Yields ``{"id", "query", "results": [Hit.to_json(), ...]}`` in input order, searching
    in small batches so a long file streams instead of waiting for the last query.
    """
    for start in range(0, len(queries), QUERY_CHUNK):
        batch = queries[start : start + QUERY_CHUNK]
        for (qid, query), hits in zip(batch, retriever.search_many([query for _, query in batch], k), strict=True):
            yield {"id": qid, "query": query, "results": [hit.to_json() for hit in hits]}


def hits_from_rows(passages: Sequence[Passage], rows: np.ndarray, scores: np.ndarray, key: str) -> list[Hit]:
    """Turn index rows into Hits; FAISS pads missing results with row -1, which are dropped."""
    found = [(int(row), float(score)) for row, score in zip(rows, scores, strict=True) if row >= 0]
    return [Hit(passages[row], score, rank, {key: score}) for rank, (row, score) in enumerate(found, start=1)]
