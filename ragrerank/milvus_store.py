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

import hashlib
import logging
import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args
from urllib.parse import urlsplit

import grpc
import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException
from tqdm.auto import tqdm

from ragrerank.config import Settings
from ragrerank.corpus import load_passages
from ragrerank.errors import RagrerankError
from ragrerank.index import HYBRID_DEPTH, HybridRetriever, Retriever, check_request, embed_texts, open_retriever
from ragrerank.types import MODES, Hit, Mode, Passage

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = [
    "CollectionInfo",
    "MilvusBuildReport",
    "MilvusRetriever",
    "build_milvus",
    "collection_name",
    "connect",
    "default_uri",
    "open_milvus_retriever",
    "open_store_retriever",
]

logger = logging.getLogger(__name__)

Store = Literal["faiss", "milvus"]
STORES: tuple[str, ...] = get_args(Store)

DEFAULT_DB = "milvus.db"  # Milvus Lite database in the artifacts folder
CONNECT_TIMEOUT_S = 5.0  # an unreachable server fails in seconds instead of hanging
INSERT_BATCH = 256  # rows per upsert: ~1 MB of vectors and text, far below gRPC's message limit
ID_BATCH = 1000  # ids per lookup when finding what an interrupted build already wrote
MAX_TOP_K = 16384  # Milvus's limit on results per query
HITS_PER_REQUEST = 4096  # hits with their text per search request: ~6 MB, far below gRPC's 256 MiB reply limit
BUILD = "run `ragrerank index --store milvus`"

PREFIX = "ragrerank"
VECTOR = "vector"
TEXT_FIELDS = {"path": 1024, "title": 1024, "url": 2048, "text": 65535}  # max UTF-8 bytes per value
HEADING_DEPTH, HEADING_BYTES = 32, 1024
OUTPUT_FIELDS = ["path", "title", "heading", "url", "text", "words"]
SEARCH_PARAMS = {"metric_type": "IP"}  # inner product of unit vectors: cosine, as with FAISS


@dataclass(frozen=True)
class CollectionInfo:
    """What a collection was built from; kept in its properties and compared on open."""

    bi_encoder: str
    passages_sha256: str
    passages: int

    def properties(self) -> dict[str, str]:
        return {f"{PREFIX}.{name}": str(value) for name, value in vars(self).items()}

    @classmethod
    def from_properties(cls, properties: dict[str, str], collection: str) -> CollectionInfo:
        try:
            return cls(
                properties[f"{PREFIX}.bi_encoder"],
                properties[f"{PREFIX}.passages_sha256"],
                int(properties[f"{PREFIX}.passages"]),
            )
        except (KeyError, ValueError):
            raise RagrerankError(
                f"collection {collection} does not say what it was built from (properties {properties}): "
                f"drop it, or {BUILD} --force to rebuild it"
            ) from None

    def describe(self) -> str:
        return f"{self.passages} passages (sha256 {self.passages_sha256[:12]}…) embedded by {self.bi_encoder!r}"


@dataclass(frozen=True)
class MilvusBuildReport:
    """The outcome of ``build_milvus``; ``upserted`` is 0 when the collection was complete.

    It reports no size on disk: Milvus Lite writes the index files in the background after
    the flush, so a size taken here would be a race, and a server keeps its own storage.
    """

    uri: str
    collection: str
    passages: int
    upserted: int
    vectors_from: str  # "FAISS index" (reused, no embedding) or "bi-encoder"; "" when nothing was written
    seconds: float

    def __str__(self) -> str:
        where = f"{self.collection} ({self.passages} passages) at {self.uri}"
        if not self.upserted:
            return f"Milvus collection up to date, reused: {where}"
        return (
            f"Milvus collection built: {where}; {self.upserted} passages upserted, "
            f"vectors from the {self.vectors_from}, {self.seconds:.1f} s"
        )


class MilvusRetriever:
    """Dense search served by Milvus: the FAISS flat ranking, with metadata stored alongside.

    Example:
        >>> retriever = open_milvus_retriever(settings, "dense", model)
        >>> hit = retriever.search("run a job every night at 2am", k=1)[0]
        >>> hit.passage.path, round(hit.score, 3)
        ('concepts/workloads/controllers/cron-jobs.md', 0.389)
    """

    mode = "dense"

    def __init__(self, client: MilvusClient, collection: str, model: SentenceTransformer, size: int, uri: str) -> None:
        self.client = client
        self.collection = collection
        self.model = model
        self.size = size
        self.uri = uri

    def search(self, query: str, k: int = 10) -> list[Hit]:
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        check_request(queries, k)
        depth = min(k, self.size)
        if depth > MAX_TOP_K:
            raise RagrerankError(f"k={k} is more than the {MAX_TOP_K} results Milvus returns per query: ask for fewer")
        vectors = embed_texts(self.model, queries, progress=False)
        per_request = max(1, HITS_PER_REQUEST // depth)
        results = []
        with _milvus_errors(self.uri, f"search {self.collection}"):
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


def default_uri(settings: Settings) -> str:
    """The Milvus Lite database beside the other artifacts, used when no URI is given."""
    return str(settings.home / DEFAULT_DB)


def collection_name(passages_sha256: str, bi_encoder: str) -> str:
    """One collection per (passages, bi-encoder), so a new corpus or model never mixes with an old one.

    Example:
        >>> collection_name("b7f184e79317376e…", "sentence-transformers/all-MiniLM-L6-v2")
        'ragrerank_b7f184e79317_sentence_transformers_all_minilm_l6_v2'
    """
    slug = re.sub(r"[^a-z0-9]+", "_", bi_encoder.lower()).strip("_")[:64]  # Milvus names: letters, digits, _
    return f"{PREFIX}_{passages_sha256[:12]}_{slug}"


def connect(uri: str, token: str = "", timeout: float = CONNECT_TIMEOUT_S, create: bool = False) -> MilvusClient:
    """Connect to Milvus Lite (a ``*.db`` path) or a server (``http(s)://host:port``), failing fast.

    Args:
        uri: a local ``*.db`` path or a server address; ``user:password@`` in it is accepted
            and kept out of error messages.
        token: ``"user:password"`` or an API key for a server with authentication.
        timeout: seconds to wait for the server before giving up.
        create: create a missing Milvus Lite database (building) instead of refusing (searching).
    """
    if _is_local(uri):
        uri = str(_local_path(uri, create))
    try:
        return MilvusClient(uri=uri, token=token, timeout=timeout)
    except MilvusException as error:
        if _is_local(uri):
            raise RagrerankError(
                f"cannot open the Milvus Lite database {uri} ({error.message}; the log above says why): "
                "most often another process has it open, and Milvus Lite serves one process at a time; "
                "close the other notebook or command, or run a Milvus server and pass its address"
            ) from None
        raise RagrerankError(
            f"cannot reach Milvus at {_redact(uri)} within {timeout:g} s ({error.message}): start the server, "
            "fix --milvus-uri, or pass a local file such as artifacts/milvus.db to use Milvus Lite"
        ) from None


def build_milvus(
    settings: Settings,
    model: SentenceTransformer,
    uri: str | None = None,
    token: str = "",
    force: bool = False,
    batch_size: int = INSERT_BATCH,
    progress: bool = True,
) -> MilvusBuildReport:
    """Write the passages and their vectors into a Milvus collection, resuming what is there.

    Vectors come from the FAISS index when its manifest matches these passages and this
    bi-encoder (no re-embedding), otherwise from ``model``. Only passages missing from the
    collection are upserted, so a rerun after an interruption finishes the job and a rerun
    of a complete collection takes seconds. The collection is flushed at the end, which
    seals the rows into indexed segments: searching unflushed rows is far slower.

    Args:
        settings: where the passages (and the FAISS index to reuse) live; ``settings.bi_encoder`` names ``model``.
        model: the loaded bi-encoder, for its dimension and for embedding when FAISS cannot be reused.
        uri: a ``*.db`` path (Milvus Lite) or a server address; default ``settings.home / "milvus.db"``.
        token: credentials for a server with authentication.
        force: drop the collection and write it again.
        batch_size: rows per upsert request.
        progress: show a progress bar.

    Example:
        >>> print(build_milvus(settings, model))
        Milvus collection up to date, reused: ragrerank_b7f184e79317_sentence_transformers_all_minilm_l6_v2 ...
    """
    if batch_size < 1:
        raise RagrerankError(f"batch_size must be at least 1, got {batch_size}")
    started = time.perf_counter()
    uri = uri or default_uri(settings)
    passages_sha256 = _sha256(_passages_file(settings))
    passages, vectors_for, vectors_from = _passages_and_vectors(settings, model)
    expected = CollectionInfo(settings.bi_encoder, passages_sha256, len(passages))
    name = collection_name(expected.passages_sha256, expected.bi_encoder)
    client = connect(uri, token, create=True)
    with _milvus_errors(uri, f"write {name}"):
        if force and client.has_collection(name):
            client.drop_collection(name)
        _ensure_collection(client, name, expected, model.get_embedding_dimension(), uri)
        present = _present_ids(client, name, [passage.id for passage in passages])
        missing = [row for row, passage in enumerate(passages) if passage.id not in present]
        _upsert(client, name, passages, missing, vectors_for, batch_size, progress)
        client.flush(name)
        count = _count(client, name)
    if count != len(passages):
        raise RagrerankError(
            f"collection {name} at {_redact(uri)} holds {count} rows for {len(passages)} passages: {BUILD} --force"
        )
    seconds = time.perf_counter() - started
    return MilvusBuildReport(_redact(uri), name, count, len(missing), vectors_from if missing else "", seconds)


def open_milvus_retriever(
    settings: Settings,
    mode: Mode = "hybrid",
    model: SentenceTransformer | None = None,
    uri: str | None = None,
    token: str = "",
    depth: int = HYBRID_DEPTH,
) -> Retriever:
    """Open the Milvus collection for these passages and bi-encoder as a retriever of ``mode``.

    Dense search runs in Milvus; BM25 (and the BM25 half of hybrid) uses the project's
    index in ``settings.index_dir``, as ``open_retriever`` does. Refuses a collection built
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
    if mode not in MODES:
        raise RagrerankError(f"unknown retrieval mode {mode!r}: choose one of {', '.join(MODES)}")
    if mode == "bm25":
        return open_retriever(settings, "bm25")
    if model is None:
        raise RagrerankError(f"mode {mode!r} needs the bi-encoder: pass model=load_bi_encoder({settings.bi_encoder!r})")
    uri = uri or default_uri(settings)
    client = connect(uri, token)
    expected_sha = _sha256(_passages_file(settings))
    name = collection_name(expected_sha, settings.bi_encoder)
    with _milvus_errors(uri, f"open {name}"):
        if not client.has_collection(name):
            raise RagrerankError(_explain_missing(client, uri, settings.bi_encoder, expected_sha))
        description = client.describe_collection(name)
        info = CollectionInfo.from_properties(description.get("properties", {}), name)
        if (info.bi_encoder, info.passages_sha256) != (settings.bi_encoder, expected_sha):
            raise RagrerankError(
                f"collection {name} at {_redact(uri)} holds {info.describe()}, not the current "
                f"{settings.passages_path.name} embedded by {settings.bi_encoder!r}: {BUILD} --force"
            )
        _check_dimension(description, model.get_embedding_dimension(), name)
        client.load_collection(name)
        count = _count(client, name)
    if count != info.passages:
        raise RagrerankError(
            f"collection {name} at {_redact(uri)} holds {count} of {info.passages} passages "
            f"(an interrupted build?): {BUILD} to finish it"
        )
    dense = MilvusRetriever(client, name, model, count, _redact(uri))
    if mode == "dense":
        return dense
    return HybridRetriever(dense, open_retriever(settings, "bm25"), depth)


def open_store_retriever(
    settings: Settings,
    store: Store = "faiss",
    mode: Mode = "hybrid",
    model: SentenceTransformer | None = None,
    milvus_uri: str | None = None,
    milvus_token: str = "",
    depth: int = HYBRID_DEPTH,
) -> Retriever:
    """The CLI's ``--store faiss|milvus``: the same retriever modes over either vector store.

    Example:
        >>> retriever = open_store_retriever(settings, "milvus", "hybrid", model)
        >>> [hit.passage.path for hit in retriever.search("evict every pod from a node before a kernel upgrade", k=1)]
        ['tasks/administer-cluster/safely-drain-node.md']
    """
    if store not in STORES:
        raise RagrerankError(f"unknown vector store {store!r}: choose one of {', '.join(STORES)}")
    if store == "faiss":
        if milvus_uri is not None:
            raise RagrerankError(f"--milvus-uri {_redact(milvus_uri)} needs --store milvus: add it, or drop the URI")
        return open_retriever(settings, mode, model, depth)
    return open_milvus_retriever(settings, mode, model, milvus_uri, milvus_token, depth)


def _passages_and_vectors(
    settings: Settings, model: SentenceTransformer
) -> tuple[list[Passage], Callable[[Sequence[int]], np.ndarray], str]:
    """The passages, and how to get the vectors of some rows: from FAISS if it matches, else embed."""
    try:
        dense = open_retriever(settings, "dense", model)  # checks passages, bi-encoder and files
    except RagrerankError as error:
        logger.info("embedding the passages, the FAISS index cannot be reused: %s", error)
        passages = _unique(load_passages(settings.passages_path), settings.passages_path)

        def embed(rows: Sequence[int]) -> np.ndarray:
            return embed_texts(model, [passages[row].text for row in rows], progress=False)

        return passages, embed, "bi-encoder"

    def reconstruct(rows: Sequence[int]) -> np.ndarray:
        return dense.index.reconstruct_batch(np.asarray(rows, dtype=np.int64))

    return list(dense.passages), reconstruct, "FAISS index"


def _ensure_collection(client: MilvusClient, name: str, expected: CollectionInfo, dimension: int, uri: str) -> None:
    if client.has_collection(name):
        description = client.describe_collection(name)
        info = CollectionInfo.from_properties(description.get("properties", {}), name)
        if info != expected:
            raise RagrerankError(
                f"collection {name} at {_redact(uri)} holds {info.describe()}, not {expected.describe()}: "
                f"{BUILD} --force to replace it"
            )
        _check_dimension(description, dimension, name)
        client.load_collection(name)
        return
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=dimension)
    for field, max_length in TEXT_FIELDS.items():
        schema.add_field(field, DataType.VARCHAR, max_length=max_length)
    schema.add_field(
        "heading", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=HEADING_DEPTH, max_length=HEADING_BYTES
    )
    schema.add_field("words", DataType.INT64)
    index_params = client.prepare_index_params()
    index_params.add_index(field_name=VECTOR, index_type="FLAT", **SEARCH_PARAMS)  # exact, like IndexFlatIP
    client.create_collection(
        name, schema=schema, index_params=index_params, properties=expected.properties(), consistency_level="Strong"
    )
    client.load_collection(name)


def _present_ids(client: MilvusClient, name: str, ids: Sequence[str]) -> set[str]:
    present: set[str] = set()
    for start in range(0, len(ids), ID_BATCH):
        rows = client.get(name, ids=list(ids[start : start + ID_BATCH]), output_fields=["id"])
        present.update(row["id"] for row in rows)
    return present


def _upsert(
    client: MilvusClient,
    name: str,
    passages: Sequence[Passage],
    rows: Sequence[int],
    vectors_for: Callable[[Sequence[int]], np.ndarray],
    batch_size: int,
    progress: bool,
) -> None:
    """Upsert ``rows`` in batches; each batch is durable on its own, which is what makes resuming work."""
    with tqdm(total=len(rows), unit="passages", desc=f"upserting into {name}", disable=not progress) as bar:
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            vectors = vectors_for(batch)
            client.upsert(name, [_record(passages[row], vector) for row, vector in zip(batch, vectors, strict=True)])
            bar.update(len(batch))


def _record(passage: Passage, vector: np.ndarray) -> dict[str, Any]:
    record = {**passage.to_json(), VECTOR: vector.tolist()}
    for field, max_length in TEXT_FIELDS.items():
        if len(record[field].encode()) > max_length:
            raise RagrerankError(
                f"passage {passage.id} has a {field} of {len(record[field].encode())} bytes, more than the "
                f"{max_length} a Milvus field holds: rerun `ragrerank passages`, which splits long sections"
            )
    if len(passage.heading) > HEADING_DEPTH or any(len(h.encode()) > HEADING_BYTES for h in passage.heading):
        raise RagrerankError(
            f"passage {passage.id} has a heading path deeper than {HEADING_DEPTH} or a heading over "
            f"{HEADING_BYTES} bytes: check the page {passage.path}"
        )
    return record


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


def _count(client: MilvusClient, name: str) -> int:
    return int(client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"])


def _check_dimension(description: dict[str, Any], dimension: int, name: str) -> None:
    stored = next(int(f["params"]["dim"]) for f in description["fields"] if f["name"] == VECTOR)
    if stored != dimension:
        raise RagrerankError(
            f"collection {name} holds {stored}-d vectors, the bi-encoder gives {dimension}-d: {BUILD} --force"
        )


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
    return f"Milvus at {_redact(uri)} has {wanted}{there}: {fix}"


@contextmanager
def _milvus_errors(uri: str, action: str) -> Iterator[None]:
    """Turn a Milvus failure mid-call (server gone, quota, bad request) into one readable line."""
    try:
        yield
    except (MilvusException, grpc.RpcError) as error:  # pymilvus lets some transport errors through unwrapped
        raise RagrerankError(
            f"Milvus at {_redact(uri)} failed to {action} ({_reason(error)}): check that the server is up, "
            "and its logs for the cause"
        ) from None


def _reason(error: MilvusException | grpc.RpcError) -> str:
    if isinstance(error, MilvusException):
        return error.message
    return f"{error.code().name}: {error.details()}" if isinstance(error, grpc.Call) else str(error)


def _is_local(uri: str) -> bool:
    return "://" not in uri and not uri.startswith("unix:")


def _local_path(uri: str, create: bool) -> Path:
    path = Path(uri).expanduser().resolve()
    if path.suffix != ".db":
        raise RagrerankError(
            f"Milvus URI {uri!r} is neither a server address nor a .db file: pass a Milvus Lite file such as "
            f"{path.with_suffix('.db')} or an address such as http://localhost:19530"
        )
    if not create and not path.exists():
        raise RagrerankError(f"no Milvus Lite database at {path}: {BUILD} --milvus-uri {path} to build it")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _redact(uri: str) -> str:
    """The URI without a password, for messages and reports."""
    parts = urlsplit(uri)
    if "@" not in parts.netloc:
        return uri
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()


def _passages_file(settings: Settings) -> Path:
    path = settings.passages_path
    if not path.is_file():
        raise RagrerankError(f"no passages at {path}: run `ragrerank passages` (or notebook 02) first")
    return path


def _unique(passages: list[Passage], path: Path) -> list[Passage]:
    """Passage ids are the primary key; a repeated one would silently overwrite another passage."""
    seen: set[str] = set()
    for passage in passages:
        if passage.id in seen:
            raise RagrerankError(f"{path} repeats passage id {passage.id!r}: rerun `ragrerank passages`")
        seen.add(passage.id)
    return passages


def _sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
