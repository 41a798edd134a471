"""Reranking: read query and passage together, rescore the first stage's candidates, reorder.

``scoring`` holds what every reranker shares (score cache, z-scores, fusion, reordering),
``cross_encoder`` the cross-encoder reranker, ``runtime`` how it runs on a CPU (fp32, bf16,
ONNX), and ``query_likelihood`` the LLM's zero-shot relevance signal.
"""

from ragrerank.rerank.cross_encoder import Reranker, RerankingRetriever, RerankSettings, model_fusion_weight
from ragrerank.rerank.runtime import RUNTIMES
from ragrerank.rerank.scoring import CacheInfo, ScoreCache, fuse, reorder, zscore

__all__ = [
    "RUNTIMES",
    "CacheInfo",
    "Reranker",
    "RerankSettings",
    "RerankingRetriever",
    "ScoreCache",
    "fuse",
    "model_fusion_weight",
    "reorder",
    "zscore",
]
