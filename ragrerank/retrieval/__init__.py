"""Retrieval: index the passages once, then find candidates densely, by keywords, or both.

``base`` holds what every retriever shares, ``hybrid`` the rank fusion, ``faiss_bm25`` the
project's own indexes, ``milvus_client`` / ``milvus_build`` / ``milvus`` the same dense search
served by Milvus, and ``stores.open_retriever`` picks one.
"""

from ragrerank.retrieval.base import BatchRetriever, Retriever, check_query, check_request, embed_texts, search_queries
from ragrerank.retrieval.faiss_bm25 import (
    BM25Retriever,
    BuildReport,
    DenseRetriever,
    IndexManifest,
    build_index,
    open_faiss_retriever,
    read_manifest,
)
from ragrerank.retrieval.hybrid import HYBRID_DEPTH, HybridRetriever, reciprocal_rank_fusion
from ragrerank.retrieval.stores import STORES, Store, open_retriever

__all__ = [
    "BM25Retriever",
    "BatchRetriever",
    "BuildReport",
    "DenseRetriever",
    "HYBRID_DEPTH",
    "HybridRetriever",
    "IndexManifest",
    "Retriever",
    "STORES",
    "Store",
    "build_index",
    "check_query",
    "check_request",
    "embed_texts",
    "open_faiss_retriever",
    "open_retriever",
    "read_manifest",
    "reciprocal_rank_fusion",
    "search_queries",
]
