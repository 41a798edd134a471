"""Milvus as the dense store: the same retrieval, served by an embedded file or a cluster.

``MilvusClient(uri)`` takes a local ``*.db`` path (Milvus Lite: in-process, nothing to run,
for a laptop or CI) or a server address (``http://host:19530``: Milvus standalone or a
cluster), so one code path serves both; moving to a cluster changes a URI, not the code.

Milvus holds the passage vectors *and* their metadata, so a hit comes back ready to cite.
A collection is named after the passages' checksum and the bi-encoder, and records both in
its properties: passages embedded by another model, or an older corpus, never mix with new
ones, and opening a mismatched collection fails with the reason. Writes are upserts keyed
by passage id, so an interrupted build resumes where it stopped without duplicates.

Only the dense side lives in Milvus. BM25 stays the project's own index, so hybrid search
over Milvus is the same ``HybridRetriever`` fusing the same two lists as with FAISS.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pymilvus import MilvusClient

from ragrerank.config import Settings
from ragrerank.corpus import passages_file
from ragrerank.errors import RagrerankError
from ragrerank.io import file_sha256
from ragrerank.retrieval.base import BatchRetriever, Retriever, check_mode, check_request, embed_texts
from ragrerank.retrieval.faiss_bm25 import open_faiss_retriever
from ragrerank.retrieval.hybrid import HYBRID_DEPTH, HybridRetriever
from ragrerank.retrieval.milvus_client import BUILD, PREFIX, SEARCH_PARAMS, VECTOR, CollectionInfo, check_dimension
from ragrerank.retrieval.milvus_client import collection_name, connect, count_rows, default_uri, milvus_errors, redact
from ragrerank.types import Hit, Mode, Passage

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

MAX_TOP_K = 16384  # Milvus's limit on results per query
HITS_PER_REQUEST = 4096  # hits with their text per search request: ~6 MB, far below gRPC's 256 MiB reply limit
OUTPUT_FIELDS = ["path", "title", "heading", "url", "text", "words"]


@dataclass(eq=False)
class MilvusRetriever(BatchRetriever):
    """Dense search served by Milvus: the FAISS flat ranking, with metadata stored alongside.

    Example:
        >>> question = "run a job every night at 2am"
        >>> milvus, faiss = (open_retriever(settings, "dense", store=store) for store in ("milvus", "faiss"))
        >>> [hit.passage.id for hit in milvus.search(question)] == [hit.passage.id for hit in faiss.search(question)]
        True
    """

    client: MilvusClient
    collection: str
    model: SentenceTransformer
    size: int  # passages in the collection
    uri: str  # redacted, for messages
    mode = "dense"

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        check_request(queries, k)
        depth = min(k, self.size)
        if depth > MAX_TOP_K:
            raise RagrerankError(f"k={k} is more than the {MAX_TOP_K} results Milvus returns per query: ask for fewer")
        vectors = embed_texts(self.model, queries, progress=False)
        per_request = max(1, HITS_PER_REQUEST // depth)
        results = []
        with milvus_errors(self.uri, f"search {self.collection}"):
            for start in range(0, len(queries), per_request):
                results += self.client.search(
                    self.collection,
                    data=vectors[start : start + per_request].tolist(),
                    limit=depth,
                    anns_field=VECTOR,
                    search_params=SEARCH_PARAMS,
                    output_fields=OUTPUT_FIELDS,
                )
        return [[_hit(found, rank) for rank, found in enumerate(hits, start=1)] for hits in results]


def open_milvus_retriever(
    settings: Settings, mode: Mode, model: SentenceTransformer | None, uri: str | None = None, token: str = "", depth: int = HYBRID_DEPTH
) -> Retriever:
    """Open the Milvus collection for these passages and bi-encoder as a retriever of ``mode``.

    Dense search runs in Milvus; BM25 (and the BM25 half of hybrid) uses the project's
    index in ``settings.index_dir``, as ``open_faiss_retriever`` does. Refuses a collection built
    from other passages or with another bi-encoder, or left incomplete by an interrupted
    build, naming the mismatch and the fix.

    Args:
        settings: where the passages and the BM25 index live, and which bi-encoder is expected.
        mode: ``"dense"``, ``"bm25"`` or ``"hybrid"``.
        model: the loaded bi-encoder; needed for dense and hybrid, ignored for BM25.
        uri: a ``*.db`` path (Milvus Lite) or a server address; default ``settings.home / "milvus.db"``.
        token: credentials for a server with authentication.
        depth: candidates per list that hybrid fuses (it uses ``max(k, depth)``).
    """
    if not check_mode(mode, model):
        return open_faiss_retriever(settings, "bm25")
    uri = uri or default_uri(settings)
    client = connect(uri, token)
    expected_sha = file_sha256(passages_file(settings))
    name = collection_name(expected_sha, settings.bi_encoder)
    with milvus_errors(uri, f"open {name}"):
        if not client.has_collection(name):
            raise RagrerankError(_explain_missing(client, uri, settings.bi_encoder, expected_sha))
        description = client.describe_collection(name)
        info = CollectionInfo.from_properties(description.get("properties", {}), name)
        if (info.bi_encoder, info.passages_sha256) != (settings.bi_encoder, expected_sha):
            raise RagrerankError(
                f"collection {name} at {redact(uri)} holds {info.describe()}, not the current "
                f"{settings.passages_path.name} embedded by {settings.bi_encoder!r}: {BUILD} --force"
            )
        check_dimension(description, model.get_embedding_dimension(), name)
        client.load_collection(name)
        count = count_rows(client, name)
    if count != info.passages:
        raise RagrerankError(
            f"collection {name} at {redact(uri)} holds {count} of {info.passages} passages "
            f"(an interrupted build?): {BUILD} to finish it"
        )
    dense = MilvusRetriever(client, name, model, count, redact(uri))
    if mode == "dense":
        return dense
    return HybridRetriever(dense, open_faiss_retriever(settings, "bm25"), depth)


def _hit(found: dict[str, Any], rank: int) -> Hit:
    entity, score = found["entity"], float(found["distance"])
    passage = Passage(
        id=found["id"],
        path=entity["path"],
        title=entity["title"],
        heading=tuple(entity["heading"]),
        url=entity["url"],
        text=entity["text"],
        words=int(entity["words"]),
    )
    return Hit(passage, score, rank, {"dense_score": score})


def _explain_missing(client: MilvusClient, uri: str, bi_encoder: str, passages_sha256: str) -> str:
    """Say what is there instead, so a changed corpus or model is told apart from a missing build."""
    wanted = f"no collection for these passages (sha256 {passages_sha256[:12]}…) embedded by {bi_encoder!r}"
    others = []
    for name in sorted(n for n in client.list_collections() if n.startswith(f"{PREFIX}_")):
        properties = client.describe_collection(name).get("properties", {})
        try:
            others.append(f"{name} with {CollectionInfo.from_properties(properties, name).describe()}")
        except RagrerankError:
            others.append(f"{name}, which does not say what it holds")
    there = f"; it has {'; '.join(others)}" if others else ""
    fix = f"{BUILD} to build it" + (", or select the bi-encoder and passages of one that is there" if others else "")
    return f"Milvus at {redact(uri)} has {wanted}{there}: {fix}"
