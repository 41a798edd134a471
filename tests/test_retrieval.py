"""Retrieval on a hand-written eight-passage corpus: small enough to know the right answers."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from sentence_transformers import SentenceTransformer

from ragrerank.config import Settings
from ragrerank.errors import RagrerankError
from ragrerank.retrieval import (
    BM25Retriever,
    HybridRetriever,
    build_index,
    open_faiss_retriever,
    read_manifest,
    reciprocal_rank_fusion,
    search_queries,
)
from ragrerank.retrieval.faiss_bm25 import BM25_DIR, DENSE_FILE, MANIFEST_FILE
from ragrerank.evaluate.questions import load_queries
from ragrerank.io import write_jsonl
from ragrerank.types import Hit, Passage

BI_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"

TEXTS = {
    "concepts/workloads/controllers/job.md": (
        "Jobs",
        "A Job creates one or more Pods and retries them until a specified number complete successfully. "
        "Use a Job to run a batch task once to completion.",
    ),
    "concepts/workloads/controllers/cron-jobs.md": (
        "CronJob",
        "A CronJob creates Jobs on a repeating schedule written in cron format, "
        "for example a backup every night at 2am.",
    ),
    "concepts/storage/volumes.md": (
        "Volumes",
        "A hostPath volume mounts a file or directory from the host node's filesystem into your Pod; "
        "it presents security risks.",
    ),
    "concepts/services-networking/service.md": (
        "Service",
        "A Service exposes a network application running as a set of Pods behind one stable IP address and DNS name.",
    ),
    "concepts/configuration/secret.md": (
        "Secrets",
        "A Secret holds a small amount of sensitive data such as a password, a token, or a key.",
    ),
    "concepts/configuration/configmap.md": (
        "ConfigMaps",
        "A ConfigMap stores non-confidential configuration data in key-value pairs for Pods to consume.",
    ),
    "tasks/administer-cluster/safely-drain-node.md": (
        "Safely Drain a Node",
        "Use kubectl drain to evict all Pods from a node before maintenance such as a kernel upgrade.",
    ),
    "concepts/scheduling-eviction/taint-and-toleration.md": (
        "Taints and Tolerations",
        "Taints let a node repel a set of Pods; "
        "tolerations allow the scheduler to place Pods on nodes with matching taints.",
    ),
}


def make_passages(texts: dict[str, tuple[str, str]] = TEXTS) -> list[Passage]:
    return [
        Passage(
            id=f"p{number}",
            path=path,
            title=title,
            heading=(),
            url=f"https://kubernetes.io/docs/{path.removesuffix('.md')}/",
            text=f"{title} > {body}",
            words=len(body.split()),
        )
        for number, (path, (title, body)) in enumerate(texts.items())
    ]


@pytest.fixture
def settings(settings_holding) -> Settings:  # noqa: ANN001
    return settings_holding(make_passages())


@pytest.fixture
def built(settings: Settings, bi_encoder: SentenceTransformer) -> Settings:
    build_index(settings, bi_encoder)
    return settings


def paths(hits: list[Hit]) -> list[str]:
    return [hit.passage.path for hit in hits]


def test_dense_finds_the_paraphrased_passage_with_cosine_scores(built: Settings, bi_encoder: SentenceTransformer) -> None:
    hits = open_faiss_retriever(built, "dense", bi_encoder).search("schedule a recurring task every night", k=3)
    assert paths(hits)[0] == "concepts/workloads/controllers/cron-jobs.md"
    assert [hit.rank for hit in hits] == [1, 2, 3]
    assert all(-1.0 <= hit.score <= 1.0 + 1e-6 and hit.scores == {"dense_score": hit.score} for hit in hits)
    assert hits[0].score >= hits[1].score >= hits[2].score


def test_bm25_finds_an_exact_keyword(built: Settings) -> None:
    hits = open_faiss_retriever(built, "bm25").search("hostPath", k=5)
    assert paths(hits) == ["concepts/storage/volumes.md"]  # only passages sharing a term come back
    assert hits[0].scores["bm25_score"] == hits[0].score > 0


def test_bm25_query_of_only_stopwords_or_unknown_words_finds_nothing(built: Settings) -> None:
    assert open_faiss_retriever(built, "bm25").search("how do I do it", k=5) == []


def test_bm25_scores_every_passage_as_search_does(built: Settings) -> None:
    retriever = open_faiss_retriever(built, "bm25")
    scores = retriever.scores("kubectl drain a node")
    assert scores.shape == (len(retriever.passages),)
    for hit in retriever.search("kubectl drain a node", k=3):
        assert scores[retriever.passages.index(hit.passage)] == pytest.approx(hit.score)
    assert not retriever.scores("how do I do it").any()


def test_hybrid_fuses_and_keeps_source_scores(built: Settings, bi_encoder: SentenceTransformer) -> None:
    hits = open_faiss_retriever(built, "hybrid", bi_encoder).search("kubectl drain a node", k=8)
    assert paths(hits)[0] == "tasks/administer-cluster/safely-drain-node.md"
    top = hits[0].scores
    assert set(top) == {"dense_score", "bm25_score", "fused_score"}
    assert top["fused_score"] == pytest.approx(2 / 61)  # first in both lists
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    assert all("dense_score" in hit.scores for hit in hits)  # dense ranks all eight


def test_reciprocal_rank_fusion_matches_hand_computed_scores() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]], k=60)
    expected = {"a": 1 / 61 + 1 / 62, "b": 1 / 62, "c": 1 / 63 + 1 / 61}
    assert [item for item, _ in fused] == ["a", "c", "b"]
    assert dict(fused) == pytest.approx(expected)


def test_reciprocal_rank_fusion_breaks_ties_by_first_appearance() -> None:
    assert [item for item, _ in reciprocal_rank_fusion([["x", "y"], ["y", "x"]])] == ["x", "y"]


class FakeRetriever:
    """A stand-in for another store, to check that hybrid needs only the protocol."""

    def __init__(self, mode: str, hits: list[Hit]) -> None:
        self.mode = mode
        self.hits = hits

    def search(self, query: str, k: int = 10) -> list[Hit]:
        return self.hits[:k]

    def search_many(self, queries: list[str], k: int = 10) -> list[list[Hit]]:
        return [self.hits[:k] for _ in queries]


def test_hybrid_accepts_any_retriever_and_applies_rrf() -> None:
    a, b, c = make_passages()[:3]
    dense = FakeRetriever("dense", [Hit(a, 0.9, 1, {"dense_score": 0.9}), Hit(b, 0.8, 2, {"dense_score": 0.8})])
    bm25 = FakeRetriever("bm25", [Hit(c, 7.0, 1, {"bm25_score": 7.0}), Hit(b, 5.0, 2, {"bm25_score": 5.0})])
    hits = HybridRetriever(dense, bm25).search("anything", k=2)
    assert [hit.passage.id for hit in hits] == [b.id, a.id]
    assert hits[0].scores == pytest.approx({"dense_score": 0.8, "bm25_score": 5.0, "fused_score": 2 / 62})
    assert hits[1].scores == pytest.approx({"dense_score": 0.9, "fused_score": 1 / 61})


@pytest.mark.parametrize("mode", ["dense", "bm25", "hybrid"])
def test_k_larger_than_the_corpus_returns_what_exists(built: Settings, bi_encoder: SentenceTransformer, mode: str) -> None:
    hits = open_faiss_retriever(built, mode, bi_encoder).search("Pods on a node", k=50)
    assert 0 < len(hits) <= len(TEXTS)
    assert len({hit.passage.id for hit in hits}) == len(hits)


@pytest.mark.parametrize("query", ["", "   \n"])
def test_empty_query_is_refused(built: Settings, bi_encoder: SentenceTransformer, query: str) -> None:
    with pytest.raises(RagrerankError, match="empty query"):
        open_faiss_retriever(built, "hybrid", bi_encoder).search(query)


@pytest.mark.parametrize("k", [0, -3])
def test_k_below_one_is_refused(built: Settings, k: int) -> None:
    with pytest.raises(RagrerankError, match="k must be"):
        open_faiss_retriever(built, "bm25").search("hostPath", k=k)


def test_long_query_is_truncated_with_one_warning(built: Settings, bi_encoder: SentenceTransformer, caplog) -> None:
    retriever = open_faiss_retriever(built, "dense", bi_encoder)
    long_query = "how do I drain a node safely " * 80
    with caplog.at_level(logging.WARNING, logger="ragrerank.retrieval.faiss_bm25"):
        assert retriever.search(long_query, k=1)
        assert retriever.search(long_query, k=1)
    assert [record.message for record in caplog.records if "truncated" in record.message] != []
    assert len([record for record in caplog.records if "truncated" in record.message]) == 1


def test_hnsw_option_builds_and_finds_the_same_top_hit(settings: Settings, bi_encoder: SentenceTransformer) -> None:
    report = build_index(settings, bi_encoder, kind="hnsw")
    assert report.manifest.kind == "hnsw"
    hits = open_faiss_retriever(settings, "dense", bi_encoder).search("schedule a recurring task every night", k=3)
    assert paths(hits)[0] == "concepts/workloads/controllers/cron-jobs.md"
    assert all(hit.score <= 1.0 + 1e-6 for hit in hits)


def test_manifest_records_what_the_index_was_built_from(built: Settings) -> None:
    manifest = read_manifest(built.index_dir)
    assert (manifest.bi_encoder, manifest.dimension, manifest.passages, manifest.kind) == (
        BI_ENCODER,
        384,
        len(TEXTS),
        "flat",
    )
    assert len(manifest.passages_sha256) == 64
    assert set(manifest.versions) == {"faiss", "bm25s", "sentence-transformers"}
    assert DENSE_FILE in manifest.files and any(name.startswith(f"{BM25_DIR}/") for name in manifest.files)


def test_rebuild_is_skipped_when_nothing_changed(built: Settings, bi_encoder: SentenceTransformer, monkeypatch) -> None:
    monkeypatch.setattr(bi_encoder, "encode", fail_to_encode)
    report = build_index(built, bi_encoder)
    assert not report.rebuilt and report.passages_per_second is None


def test_force_and_changed_kind_rebuild(built: Settings, bi_encoder: SentenceTransformer) -> None:
    assert build_index(built, bi_encoder, force=True).rebuilt
    assert build_index(built, bi_encoder, kind="hnsw").rebuilt


def test_index_of_other_passages_is_refused(built: Settings, bi_encoder: SentenceTransformer) -> None:
    write_jsonl(built.passages_path, [passage.to_json() for passage in make_passages()[:5]])
    with pytest.raises(RagrerankError, match="changed since the index .* was built: run `ragrerank index`"):
        open_faiss_retriever(built, "bm25")


def test_index_of_another_bi_encoder_is_refused(built: Settings, bi_encoder: SentenceTransformer) -> None:
    other = built.with_models(bi_encoder="BAAI/bge-small-en-v1.5")
    with pytest.raises(RagrerankError, match="built with 'sentence-transformers/all-MiniLM-L6-v2'.*ragrerank index"):
        open_faiss_retriever(other, "dense", bi_encoder)
    assert open_faiss_retriever(other, "bm25").search("hostPath")  # BM25 does not depend on the bi-encoder


@pytest.mark.parametrize("name", [DENSE_FILE, f"{BM25_DIR}/vocab.index.json"])
def test_corrupt_index_file_is_refused_then_rebuilt(built: Settings, bi_encoder: SentenceTransformer, name: str) -> None:
    (built.index_dir / name).write_bytes(b"not an index")
    with pytest.raises(RagrerankError, match="corrupt.*run `ragrerank index`"):
        open_faiss_retriever(built, "hybrid", bi_encoder)
    assert build_index(built, bi_encoder).rebuilt  # a damaged index is never reused
    assert open_faiss_retriever(built, "hybrid", bi_encoder).search("hostPath")


def test_corrupt_manifest_is_refused(built: Settings) -> None:
    (built.index_dir / MANIFEST_FILE).write_text("{not json")
    with pytest.raises(RagrerankError, match="corrupt.*run `ragrerank index`"):
        open_faiss_retriever(built, "bm25")


def test_missing_index_says_how_to_build_it(settings: Settings) -> None:
    with pytest.raises(RagrerankError, match="no index at .*run `ragrerank index`"):
        open_faiss_retriever(settings, "bm25")


def test_missing_passages_say_how_to_make_them(tmp_path: Path, bi_encoder: SentenceTransformer) -> None:
    with pytest.raises(RagrerankError, match="no passages at .*ragrerank passages"):
        build_index(Settings(docs_root=None, home=tmp_path), bi_encoder)


def test_dense_mode_without_a_model_is_refused(built: Settings) -> None:
    with pytest.raises(RagrerankError, match="needs the bi-encoder"):
        open_faiss_retriever(built, "dense")


def test_unknown_mode_and_kind_are_refused(built: Settings, bi_encoder: SentenceTransformer) -> None:
    with pytest.raises(RagrerankError, match="unknown retrieval mode 'sparse'"):
        open_faiss_retriever(built, "sparse", bi_encoder)
    with pytest.raises(RagrerankError, match="unknown index kind 'ivf'"):
        build_index(built, bi_encoder, kind="ivf")


def fail_to_encode(*args, **kwargs):
    raise RuntimeError("embedder crashed")


def test_failed_build_keeps_the_old_index(built: Settings, bi_encoder: SentenceTransformer, monkeypatch) -> None:
    before = read_manifest(built.index_dir)
    write_jsonl(built.passages_path, [passage.to_json() for passage in make_passages()[:5]])  # forces a rebuild
    monkeypatch.setattr(bi_encoder, "encode", fail_to_encode)
    with pytest.raises(RuntimeError, match="embedder crashed"):
        build_index(built, bi_encoder)
    assert read_manifest(built.index_dir) == before
    assert sorted(p.name for p in built.home.iterdir()) == ["index", "passages.jsonl"]  # no staging left behind


def test_failed_write_keeps_the_old_index(built: Settings, bi_encoder: SentenceTransformer, monkeypatch) -> None:
    before = read_manifest(built.index_dir)

    def fail_to_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("bm25s.BM25.save", fail_to_save)
    with pytest.raises(OSError, match="disk full"):
        build_index(built, bi_encoder, force=True)
    assert read_manifest(built.index_dir) == before
    assert open_faiss_retriever(built, "bm25").search("hostPath")


def test_search_queries_yields_one_record_per_query(
    built: Settings, bi_encoder: SentenceTransformer, tmp_path: Path
) -> None:
    queries = tmp_path / "queries.jsonl"
    write_jsonl(queries, [{"id": "q1", "query": "hostPath risks", "type": "x"}, {"id": "q2", "query": "kubectl drain"}])
    records = list(search_queries(open_faiss_retriever(built, "bm25"), load_queries(queries), k=2))
    assert [(r["id"], r["query"]) for r in records] == [("q1", "hostPath risks"), ("q2", "kubectl drain")]
    first = records[0]["results"][0]
    assert {"passage_id", "path", "heading", "url", "text", "bm25_score", "rank"} <= set(first)
    assert first["path"] == "concepts/storage/volumes.md" and first["rank"] == 1
    json.dumps(records)  # plain JSON, ready for --json output


def test_a_queries_file_names_the_bad_line(tmp_path: Path) -> None:
    queries = tmp_path / "queries.jsonl"
    write_jsonl(queries, [{"id": "q1", "query": "hostPath"}, {"id": "q2", "query": " "}])
    with pytest.raises(RagrerankError, match=r"queries\.jsonl:2 has query ' '"):
        load_queries(queries)
    write_jsonl(queries, [{"query": "hostPath"}])
    with pytest.raises(RagrerankError, match=r"queries\.jsonl:1 lacks id: every question needs an id and a query"):
        load_queries(queries)


def test_bm25_retriever_refuses_a_misaligned_corpus(built: Settings) -> None:
    bm25 = open_faiss_retriever(built, "bm25").bm25
    with pytest.raises(RagrerankError, match="8 documents for 3 passages"):
        BM25Retriever(make_passages()[:3], bm25)


def test_duplicate_passage_ids_are_refused(settings: Settings, bi_encoder: SentenceTransformer) -> None:
    twice = make_passages()[:2] * 2
    write_jsonl(settings.passages_path, [passage.to_json() for passage in twice])
    with pytest.raises(RagrerankError, match="repeats passage id 'p0'"):
        build_index(settings, bi_encoder)
