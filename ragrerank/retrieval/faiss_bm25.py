"""The project's own indexes: FAISS for dense search, bm25s for keywords, built once into one folder.

Dense search embeds passages with the bi-encoder into unit vectors, so FAISS inner product
*is* cosine similarity. BM25 (bm25s) catches the exact identifiers a small bi-encoder
blurs (``hostPath``, ``kubectl drain``).

The index folder is rebuilt atomically and describes itself in ``manifest.json``; opening
it checks the manifest against the passages file and the model, so a stale index fails
loudly instead of returning passages that no longer exist.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import bm25s
import faiss
import numpy as np
import sentence_transformers

from ragrerank.config import Settings
from ragrerank.corpus import load_passages, passages_file
from ragrerank.errors import RagrerankError
from ragrerank.io import atomic_write, file_sha256, staged_folder
from ragrerank.retrieval.base import BatchRetriever, Retriever, check_mode, check_request, embed_texts, hits_from_rows
from ragrerank.retrieval.hybrid import HYBRID_DEPTH, HybridRetriever
from ragrerank.types import Hit, Mode, Passage

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

logger = logging.getLogger(__name__)

IndexKind = Literal["flat", "hnsw"]
KINDS: tuple[str, ...] = get_args(IndexKind)
MANIFEST_FILE = "manifest.json"
DENSE_FILE = "dense.faiss"
BM25_DIR = "bm25"
REBUILD = "run `ragrerank index` to rebuild it"
HNSW_M = 32  # graph degree: recall vs memory
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 128  # raised to k when k is larger
BM25_STOPWORDS = "en"  # bm25s' built-in English list; no stemmer, so nothing to download


@dataclass(frozen=True)
class IndexManifest:
    """What an index was built from; compared on open so a stale index is refused.

    ``files`` maps each index file (relative to the index folder) to its sha256, so a
    truncated or hand-edited file is caught before FAISS or bm25s trip over it.
    """

    bi_encoder: str
    dimension: int
    passages: int
    passages_sha256: str
    kind: str
    files: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> IndexManifest:
        return cls(**record)


@dataclass(frozen=True)
class BuildReport:
    """The outcome of ``build_index``: what is on disk and, when it was rebuilt, how fast.

    ``passages_per_second`` is the embedding throughput, the part of the build that scales
    with the corpus; it is ``None`` when an up-to-date index was reused.
    """

    index_dir: Path
    manifest: IndexManifest
    rebuilt: bool
    seconds: float
    passages_per_second: float | None
    size_bytes: int

    def __str__(self) -> str:
        m = self.manifest
        size = f"{self.size_bytes / 2**20:.1f} MiB"
        what = f"{m.passages} passages, {m.kind} {m.dimension}-d ({m.bi_encoder}) + BM25, {size}"
        if not self.rebuilt:
            return f"index up to date, reused: {what} in {self.index_dir}"
        return (
            f"index built: {what} in {self.index_dir}, {self.seconds:.1f} s ({self.passages_per_second:.1f} passages/s)"
        )


class DenseRetriever(BatchRetriever):
    """Cosine similarity between the query and passage embeddings, via FAISS inner product.

    Example:
        >>> retriever = open_faiss_retriever(settings, "dense", model)
        >>> hit = retriever.search("run a job every night at 2am", k=1)[0]
        >>> hit.passage.path, round(hit.score, 3)
        ('concepts/workloads/controllers/cron-jobs.md', 0.389)
    """

    mode = "dense"

    def __init__(self, passages: Sequence[Passage], index: faiss.Index, model: SentenceTransformer) -> None:
        if index.ntotal != len(passages):
            raise RagrerankError(
                f"the dense index holds {index.ntotal} vectors for {len(passages)} passages: {REBUILD}"
            )
        self.passages = passages
        self.index = index
        self.model = model
        self._warned_truncation = False

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        check_request(queries, k)
        self._warn_if_truncated(queries)
        vectors = embed_texts(self.model, queries, progress=False)
        depth = min(k, len(self.passages))
        scores, rows = self.index.search(vectors, depth, **self._search_params(depth))
        return [hits_from_rows(self.passages, row, score, "dense_score") for row, score in zip(rows, scores, strict=True)]

    def _search_params(self, depth: int) -> dict[str, Any]:
        if isinstance(self.index, faiss.IndexHNSW):
            return {"params": faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, depth))}
        return {}

    def _warn_if_truncated(self, queries: Sequence[str]) -> None:
        """Warn once: the model silently cuts queries at its window, which users should know."""
        window = self.model.max_seq_length
        if self._warned_truncation or not window:
            return
        for query in queries:
            tokens = len(self.model.tokenizer(query, verbose=False)["input_ids"])
            if tokens > window:
                logger.warning(
                    "query of %d tokens truncated to the bi-encoder's window of %d: %.60r...", tokens, window, query
                )
                self._warned_truncation = True
                return


class BM25Retriever(BatchRetriever):
    """BM25 over lowercase word tokens without stopwords; finds exact identifiers and flags.

    Only passages sharing at least one query term are returned, so a query made only of
    stopwords or unknown words gets no hits rather than arbitrary ones.
    """

    mode = "bm25"

    def __init__(self, passages: Sequence[Passage], bm25: bm25s.BM25) -> None:
        if bm25.scores["num_docs"] != len(passages):
            raise RagrerankError(
                f"the BM25 index holds {bm25.scores['num_docs']} documents for {len(passages)} passages: {REBUILD}"
            )
        self.passages = passages
        self.bm25 = bm25

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        check_request(queries, k)
        return [self._top(self._scores(tokens), k) for tokens in _tokenize(queries)]

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every passage, in corpus order: also for candidates another retriever found."""
        return self._scores(_tokenize([query])[0])

    def _scores(self, tokens: list[str]) -> np.ndarray:
        ids = self.bm25.get_tokens_ids(tokens)
        return self.bm25.get_scores_from_ids(ids) if ids else np.zeros(len(self.passages), dtype=np.float32)

    def _top(self, scores: np.ndarray, k: int) -> list[Hit]:
        rows = np.argsort(-scores, kind="stable")[:k]  # stable: ties keep corpus order
        rows = rows[scores[rows] > 0]
        return hits_from_rows(self.passages, rows, scores[rows], "bm25_score")


def build_index(
    settings: Settings, model: SentenceTransformer, kind: IndexKind = "flat", force: bool = False, batch_size: int = 64
) -> BuildReport:
    """Build the dense and BM25 indexes of ``settings.passages_path`` into ``settings.index_dir``.

    Reuses the index when its manifest already matches (same passages checksum, same
    bi-encoder, same kind, intact files), so reruns take seconds; ``force`` rebuilds anyway.
    Everything is written to a temporary folder and swapped in at the end, so a failed
    build leaves the earlier index usable.

    Args:
        settings: where the passages and the index live; ``settings.bi_encoder`` names ``model``.
        model: the loaded bi-encoder (``ragrerank.models.load_bi_encoder(settings.bi_encoder)``).
        kind: ``"flat"`` (exact search, the default up to a few hundred thousand passages)
            or ``"hnsw"`` (approximate graph search for large corpora).
        force: rebuild even when the manifest matches.
        batch_size: passages per forward pass.

    Example:
        >>> print(build_index(settings, model))
        index up to date, reused: 6448 passages, flat 384-d (sentence-transformers/all-MiniLM-L6-v2) + BM25, ...
    """
    if kind not in KINDS:
        raise RagrerankError(f"unknown index kind {kind!r}: choose one of {', '.join(KINDS)}")
    started = time.perf_counter()
    passages_sha256 = file_sha256(passages_file(settings))
    index_dir = settings.index_dir
    if not force and _is_current(index_dir, settings.bi_encoder, passages_sha256, kind):
        manifest = read_manifest(index_dir)
        return BuildReport(index_dir, manifest, False, time.perf_counter() - started, None, _size(index_dir))
    passages = load_passages(settings.passages_path)
    embed_started = time.perf_counter()
    vectors = embed_texts(model, [passage.text for passage in passages], batch_size)
    rate = len(passages) / (time.perf_counter() - embed_started)
    manifest = _write_index(index_dir, passages, vectors, settings.bi_encoder, passages_sha256, kind)
    return BuildReport(index_dir, manifest, True, time.perf_counter() - started, rate, _size(index_dir))


def read_manifest(index_dir: Path) -> IndexManifest:
    """Read ``manifest.json``; a missing or unreadable one means the index must be (re)built."""
    path = index_dir / MANIFEST_FILE
    if not path.is_file():
        raise RagrerankError(f"no index at {index_dir} (missing {MANIFEST_FILE}): run `ragrerank index` to build it")
    try:
        return IndexManifest.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, TypeError, UnicodeDecodeError) as error:
        raise RagrerankError(f"{path} is corrupt ({error}): {REBUILD}") from None


def open_faiss_retriever(
    settings: Settings, mode: Mode = "hybrid", model: SentenceTransformer | None = None, depth: int = HYBRID_DEPTH
) -> Retriever:
    """Open the index in ``settings.index_dir`` as a retriever of the given mode.

    Refuses an index built from other passages, another bi-encoder, or with damaged
    files, naming the mismatch and the fix, rather than returning wrong passages.

    Args:
        settings: where the passages and the index live, and which bi-encoder is expected.
        mode: ``"dense"``, ``"bm25"`` or ``"hybrid"``.
        model: the loaded bi-encoder; needed for dense and hybrid, ignored for BM25.
        depth: candidates per list that hybrid fuses (it uses ``max(k, depth)``).

    Example:
        >>> retriever = open_faiss_retriever(settings, "bm25")
        >>> [hit.passage.path for hit in retriever.search("hostPath security risks", k=1)]
        ['concepts/storage/volumes.md']
    """
    needs_dense = check_mode(mode, model)
    manifest = read_manifest(settings.index_dir)
    _check_manifest(manifest, settings, model if needs_dense else None)
    passages = load_passages(settings.passages_path)
    if len(passages) != manifest.passages:
        raise RagrerankError(
            f"{settings.passages_path} has {len(passages)} passages, the index {manifest.passages}: {REBUILD}"
        )
    if mode == "bm25":
        return BM25Retriever(passages, _read_bm25(settings.index_dir))
    dense = DenseRetriever(passages, _read_faiss(settings.index_dir), model)
    if mode == "dense":
        return dense
    return HybridRetriever(dense, BM25Retriever(passages, _read_bm25(settings.index_dir)), depth)


def _tokenize(texts: Sequence[str]) -> list[list[str]]:
    return bm25s.tokenize(list(texts), stopwords=BM25_STOPWORDS, return_ids=False, show_progress=False)


def _new_faiss(dimension: int, kind: str) -> faiss.Index:
    if kind == "flat":
        return faiss.IndexFlatIP(dimension)
    index = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    return index


def _write_index(
    index_dir: Path, passages: Sequence[Passage], vectors: np.ndarray, bi_encoder: str, passages_sha256: str, kind: str
) -> IndexManifest:
    """Write both indexes and the manifest into a staging folder, then swap it into place."""
    with staged_folder(index_dir) as staging:
        dense = _new_faiss(vectors.shape[1], kind)
        dense.add(vectors)
        faiss.write_index(dense, str(staging / DENSE_FILE))
        bm25 = bm25s.BM25()
        bm25.index(_tokenize([passage.text for passage in passages]), show_progress=False)
        bm25.save(str(staging / BM25_DIR), show_progress=False)
        manifest = IndexManifest(
            bi_encoder=bi_encoder,
            dimension=int(vectors.shape[1]),
            passages=len(passages),
            passages_sha256=passages_sha256,
            kind=kind,
            files=_file_checksums(staging),
            versions={
                "faiss": faiss.__version__,
                "bm25s": bm25s.__version__,
                "sentence-transformers": sentence_transformers.__version__,
            },
        )
        with atomic_write(staging / MANIFEST_FILE) as handle:
            json.dump(manifest.to_json(), handle, indent=2, sort_keys=True)
    return manifest


def _is_current(index_dir: Path, bi_encoder: str, passages_sha256: str, kind: str) -> bool:
    try:
        manifest = read_manifest(index_dir)
    except RagrerankError:
        return False
    same_inputs = (manifest.bi_encoder, manifest.passages_sha256, manifest.kind) == (bi_encoder, passages_sha256, kind)
    return same_inputs and bool(manifest.files) and _damaged_file(index_dir, manifest) is None


def _check_manifest(manifest: IndexManifest, settings: Settings, model: SentenceTransformer | None) -> None:
    """Refuse an index that no longer describes these passages, this model, or intact files."""
    if file_sha256(passages_file(settings)) != manifest.passages_sha256:
        raise RagrerankError(
            f"{settings.passages_path} changed since the index in {settings.index_dir} was built: {REBUILD}"
        )
    if model is not None:
        if manifest.bi_encoder != settings.bi_encoder:
            raise RagrerankError(
                f"the index in {settings.index_dir} was built with {manifest.bi_encoder!r}, "
                f"not {settings.bi_encoder!r}: "
                f"{REBUILD} with this bi-encoder, or select {manifest.bi_encoder!r}"
            )
        if model.get_embedding_dimension() != manifest.dimension:
            raise RagrerankError(
                f"the bi-encoder gives {model.get_embedding_dimension()}-d vectors, "
                f"the index holds {manifest.dimension}-d: {REBUILD}"
            )
    damaged = _damaged_file(settings.index_dir, manifest)
    if damaged is not None:
        raise RagrerankError(f"index file {damaged} is missing, corrupt, or changed after the build: {REBUILD}")


def _damaged_file(index_dir: Path, manifest: IndexManifest) -> Path | None:
    """The first file the manifest lists whose checksum no longer matches, if any."""
    for name, checksum in manifest.files.items():
        path = index_dir / name
        if not path.is_file() or file_sha256(path) != checksum:
            return path
    return None


def _read_faiss(index_dir: Path) -> faiss.Index:
    try:
        return faiss.read_index(str(index_dir / DENSE_FILE))
    except RuntimeError as error:
        raise RagrerankError(
            f"cannot read {index_dir / DENSE_FILE} ({str(error).splitlines()[0]}): {REBUILD}"
        ) from None


def _read_bm25(index_dir: Path) -> bm25s.BM25:
    try:
        return bm25s.BM25.load(str(index_dir / BM25_DIR), show_progress=False)
    except (OSError, ValueError, KeyError) as error:
        raise RagrerankError(f"cannot read the BM25 index in {index_dir / BM25_DIR} ({error}): {REBUILD}") from None


def _file_checksums(index_dir: Path) -> dict[str, str]:
    """sha256 of every index file except the manifest, keyed by path relative to the folder."""
    files = sorted(p for p in index_dir.rglob("*") if p.is_file() and p.name != MANIFEST_FILE)
    return {p.relative_to(index_dir).as_posix(): file_sha256(p) for p in files}


def _size(index_dir: Path) -> int:
    return sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())
