"""Hybrid retrieval: reciprocal rank fusion of a dense and a keyword ranking.

Fusion uses only ranks, so the cosine and BM25 scales never need reconciling; the same fusion
serves FAISS and Milvus.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
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


@dataclass(eq=False)
class HybridRetriever(BatchRetriever):
    """Reciprocal rank fusion of a dense and a BM25 retriever.

    Each side contributes its top ``max(k, depth)`` candidates; fusion uses only ranks,
    so the cosine and BM25 scales never need reconciling. Hits keep both source scores
    where the passage appeared in that list.
    """

    dense: Retriever
    bm25: Retriever
    depth: int = HYBRID_DEPTH
    rrf_k: int = RRF_K
    mode = "hybrid"

    def __post_init__(self) -> None:
        if self.depth < 1 or self.rrf_k < 0:
            raise RagrerankError(f"hybrid depth must be ≥ 1 and rrf_k ≥ 0, got depth={self.depth}, rrf_k={self.rrf_k}")

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
