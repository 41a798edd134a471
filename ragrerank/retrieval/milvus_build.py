"""Writing the passages and their vectors into Milvus, resumably.

Writes are upserts keyed by passage id, so an interrupted build resumes where it stopped
without duplicates; vectors come from the FAISS index when it matches, so nothing is embedded twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pymilvus import DataType, MilvusClient
from tqdm.auto import tqdm

from ragrerank.config import Settings
from ragrerank.corpus import load_passages, passages_file
from ragrerank.errors import RagrerankError
from ragrerank.io import file_sha256
from ragrerank.retrieval.base import embed_texts
from ragrerank.retrieval.faiss_bm25 import open_faiss_retriever
from ragrerank.retrieval.milvus_client import BUILD, SEARCH_PARAMS, VECTOR, CollectionInfo, check_dimension, collection_name
from ragrerank.retrieval.milvus_client import connect, count_rows, default_uri, milvus_errors, redact
from ragrerank.types import Passage

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

INSERT_BATCH = 256  # rows per upsert: ~1 MB of vectors and text, far below gRPC's message limit
ID_BATCH = 1000  # ids per lookup when finding what an interrupted build already wrote
TEXT_FIELDS = {"path": 1024, "title": 1024, "url": 2048, "text": 65535}  # max UTF-8 bytes per value
HEADING_DEPTH, HEADING_BYTES = 32, 1024


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
    passages_sha256 = file_sha256(passages_file(settings))
    passages, vectors_for, vectors_from = _passages_and_vectors(settings, model)
    expected = CollectionInfo(settings.bi_encoder, passages_sha256, len(passages))
    name = collection_name(expected.passages_sha256, expected.bi_encoder)
    client = connect(uri, token, create=True)
    with milvus_errors(uri, f"write {name}"):
        if force and client.has_collection(name):
            client.drop_collection(name)
        _ensure_collection(client, name, expected, model.get_embedding_dimension(), uri)
        present = _present_ids(client, name, [passage.id for passage in passages])
        missing = [row for row, passage in enumerate(passages) if passage.id not in present]
        _upsert(client, name, passages, missing, vectors_for, batch_size, progress)
        client.flush(name)
        count = count_rows(client, name)
    if count != len(passages):
        raise RagrerankError(
            f"collection {name} at {redact(uri)} holds {count} rows for {len(passages)} passages: {BUILD} --force"
        )
    seconds = time.perf_counter() - started
    return MilvusBuildReport(redact(uri), name, count, len(missing), vectors_from if missing else "", seconds)


def _passages_and_vectors(
    settings: Settings, model: SentenceTransformer
) -> tuple[list[Passage], Callable[[Sequence[int]], np.ndarray], str]:
    """The passages, and how to get the vectors of some rows: from FAISS if it matches, else embed."""
    try:
        dense = open_faiss_retriever(settings, "dense", model)  # checks passages, bi-encoder and files
    except RagrerankError as error:
        logger.info("embedding the passages, the FAISS index cannot be reused: %s", error)
        passages = load_passages(settings.passages_path)

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
                f"collection {name} at {redact(uri)} holds {info.describe()}, not {expected.describe()}: "
                f"{BUILD} --force to replace it"
            )
        check_dimension(description, dimension, name)
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
