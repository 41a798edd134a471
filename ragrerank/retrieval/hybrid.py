"""Hybrid retrieval: reciprocal rank fusion of a dense and a keyword ranking.

Fusion uses only ranks, so the cosine and BM25 scales never need reconciling; the same fusion
serves FAISS and Milvus.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

from ragrerank.errors import RagrerankError
from ragrerank.retrieval.base import BatchRetriever, Retriever, check_request
from ragrerank.types import Hit

T = TypeVar("T", bound=Hashable)

RRF_K = 60  # the constant from Cormack et al. (2009); damps the weight of top ranks
HYBRID_DEPTH = 100  # candidates taken from each list before fusing


def reciprocal_rank_fusion(rankings: Sequence[Sequence[T]], k: int = RRF_K) -> list[tuple[T, float]]:
    """Fuse ranked lists by summing ``1 / (k + rank)`` (1-based) for each item.

    Ties are broken by first appearance (the first list wins), so the result is
    deterministic.

    Example:
        >>> [(item, round(score, 4)) for item, score in reciprocal_rank_fusion([["a", "b"], ["b", "c"]])]
        [('b', 0.0325), ('a', 0.0164), ('c', 0.0161)]
    """
    scores: dict[T, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    order = {item: position for position, item in enumerate(scores)}
    return sorted(scores.items(), key=lambda pair: (-pair[1], order[pair[0]]))


class HybridRetriever(BatchRetriever):
    """Reciprocal rank fusion of a dense and a BM25 retriever.

    Each side contributes its top ``max(k, depth)`` candidates; fusion uses only ranks,
    so the cosine and BM25 scales never need reconciling. Hits keep both source scores
    where the passage appeared in that list.
    """

    mode = "hybrid"

    def __init__(self, dense: Retriever, bm25: Retriever, depth: int = HYBRID_DEPTH, rrf_k: int = RRF_K) -> None:
        if depth < 1 or rrf_k < 0:
            raise RagrerankError(f"hybrid depth must be ≥ 1 and rrf_k ≥ 0, got depth={depth}, rrf_k={rrf_k}")
        self.dense = dense
        self.bm25 = bm25
        self.depth = depth
        self.rrf_k = rrf_k

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        check_request(queries, k)
        depth = max(k, self.depth)
        dense, bm25 = self.dense.search_many(queries, depth), self.bm25.search_many(queries, depth)
        return [self._fuse(d, b, k) for d, b in zip(dense, bm25, strict=True)]

    def _fuse(self, dense: list[Hit], bm25: list[Hit], k: int) -> list[Hit]:
        sources = [{hit.passage.id: hit for hit in hits} for hits in (dense, bm25)]
        fused = reciprocal_rank_fusion([list(source) for source in sources], self.rrf_k)[:k]  # ids, best first
        hits = []
        for rank, (passage_id, score) in enumerate(fused, start=1):
            found = [source[passage_id] for source in sources if passage_id in source]
            scores = {name: value for hit in found for name, value in hit.scores.items()}
            hits.append(Hit(found[0].passage, score, rank, {**scores, "fused_score": score}))
        return hits
