"""Milvus store against a real Milvus Lite database in tmp_path: same results as FAISS, safe to rebuild."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path

import pytest
from milvus_lite.server_manager import server_manager_instance
from pymilvus import MilvusClient

from ragrerank.retrieval import milvus as milvus_search
from ragrerank.config import Settings
from ragrerank.errors import RagrerankError
from ragrerank.retrieval import build_index, open_faiss_retriever, open_retriever
from ragrerank.io import write_jsonl
from ragrerank.retrieval.milvus import open_milvus_retriever
from ragrerank.retrieval.milvus_build import build_milvus
from ragrerank.retrieval.milvus_client import collection_name, connect
from ragrerank.types import Hit, Passage

BI_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
QUERIES = [
    "How do I run a task once until it finishes?",
    "run a job every night at 2am",
    "hostPath security risks",
    "evict pods before a kernel upgrade",
]
PAGES = [  # (path, title, heading path, body): headings and a non-ASCII one check that metadata round-trips
    ("concepts/workloads/controllers/job.md", "Jobs", (), "A Job runs Pods until enough complete: a task run once."),
    (
        "concepts/workloads/controllers/cron-jobs.md",
        "CronJob",
        ("Schedule",),
        "A CronJob creates Jobs on a cron schedule, e.g. nightly at 2am.",
    ),
    (
        "concepts/storage/volumes.md",
        "Volumes",
        ("hostPath",),
        "A hostPath volume mounts a path of the node into a Pod; it is a security risk.",
    ),
    ("concepts/services-networking/service.md", "Service", (), "A Service gives Pods one stable IP and DNS name."),
    ("concepts/configuration/secret.md", "Secrets", ("Uses", "Sécurité"), "A Secret holds a password or a key."),
    ("concepts/configuration/configmap.md", "ConfigMaps", (), "A ConfigMap stores key-value configuration for Pods."),
    (
        "tasks/administer-cluster/safely-drain-node.md",
        "Safely Drain a Node",
        ("Use kubectl drain",),
        "kubectl drain evicts all Pods from a node before maintenance such as a kernel upgrade.",
    ),
    (
        "concepts/scheduling-eviction/taint-and-toleration.md",
        "Taints and Tolerations",
        (),
        "Taints let a node repel Pods; tolerations let the scheduler place them anyway.",
    ),
    (
        "concepts/workloads/pods/pod-lifecycle.md",
        "Pod Lifecycle",
        ("Restart policy",),
        "restartPolicy decides whether the kubelet restarts the containers of a Pod.",
    ),
    (
        "tasks/run-application/horizontal-pod-autoscale.md",
        "HorizontalPodAutoscaler",
        (),
        "The HorizontalPodAutoscaler scales a Deployment to match observed CPU load.",
    ),
]


def make_passages() -> list[Passage]:
    return [
        Passage(
            id=f"p{number:02d}",
            path=path,
            title=title,
            heading=heading,
            url=f"https://kubernetes.io/docs/{path.removesuffix('.md')}/",
            text=" > ".join((title, *heading)) + f"\n\n{body}",
            words=len(body.split()),
        )
        for number, (path, title, heading, body) in enumerate(PAGES)
    ]


@pytest.fixture
def settings(settings_holding) -> Settings:  # noqa: ANN001
    return settings_holding(make_passages())


@pytest.fixture
def uri(tmp_path: Path) -> str:
    return str(tmp_path / "milvus.db")


def ids(hits: list[Hit]) -> list[str]:
    return [hit.passage.id for hit in hits]


def count(uri: str, settings: Settings) -> int:
    client, name = connect(uri), built_collection(settings)
    client.load_collection(name)
    return int(client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"])


def built_collection(settings: Settings) -> str:
    digest = hashlib.sha256(settings.passages_path.read_bytes()).hexdigest()
    return collection_name(digest, settings.bi_encoder)


def test_dense_search_equals_faiss_flat_on_the_same_vectors(settings: Settings, bi_encoder, uri: str) -> None:
    build_index(settings, bi_encoder)
    report = build_milvus(settings, bi_encoder, uri, progress=False)
    assert (report.passages, report.upserted, report.vectors_from) == (10, 10, "FAISS index")
    faiss = open_faiss_retriever(settings, "dense", bi_encoder)
    milvus = open_milvus_retriever(settings, "dense", bi_encoder, uri)
    for expected, got in zip(faiss.search_many(QUERIES, k=10), milvus.search_many(QUERIES, k=10), strict=True):
        assert ids(got) == ids(expected)
        assert [hit.passage for hit in got] == [hit.passage for hit in expected]  # metadata round-trips
        assert [hit.rank for hit in got] == list(range(1, 11))
        for mine, theirs in zip(got, expected, strict=True):
            assert mine.score == pytest.approx(theirs.score, abs=1e-5)
            assert mine.scores == {"dense_score": mine.score}


def test_many_queries_are_split_into_bounded_requests(settings: Settings, bi_encoder, uri: str, monkeypatch) -> None:
    build_milvus(settings, bi_encoder, uri, progress=False)
    milvus = open_milvus_retriever(settings, "dense", bi_encoder, uri)
    whole = milvus.search_many(QUERIES, k=10)
    monkeypatch.setattr(milvus_search, "HITS_PER_REQUEST", 15)  # one query of 10 hits per request
    split = milvus.search_many(QUERIES, k=10)
    assert [ids(hits) for hits in split] == [ids(hits) for hits in whole]
    scores = [[hit.score for hit in hits] for hits in whole]
    assert [[hit.score for hit in hits] for hits in split] == [pytest.approx(row, abs=1e-5) for row in scores]


def test_build_without_a_faiss_index_embeds_and_finds_the_same(settings: Settings, bi_encoder, uri: str) -> None:
    report = build_milvus(settings, bi_encoder, uri, progress=False)
    assert report.vectors_from == "bi-encoder"
    build_index(settings, bi_encoder)
    faiss = open_faiss_retriever(settings, "dense", bi_encoder).search_many(QUERIES, k=3)
    milvus = open_milvus_retriever(settings, "dense", bi_encoder, uri).search_many(QUERIES, k=3)
    assert [ids(hits) for hits in milvus] == [ids(hits) for hits in faiss]


@pytest.mark.parametrize("mode", ["bm25", "hybrid"])
def test_every_mode_works_over_milvus_and_matches_faiss(settings: Settings, bi_encoder, uri: str, mode: str) -> None:
    build_index(settings, bi_encoder)
    build_milvus(settings, bi_encoder, uri, progress=False)
    faiss = open_retriever(settings, mode, model=bi_encoder)
    milvus = open_retriever(settings, mode, store="milvus", model=bi_encoder, milvus_uri=uri)
    for expected, got in zip(faiss.search_many(QUERIES, 5), milvus.search_many(QUERIES, 5), strict=True):
        assert ids(got) == ids(expected)
        assert [hit.scores.keys() for hit in got] == [hit.scores.keys() for hit in expected]


def test_the_server_address_of_the_same_database_serves_the_same_hits(settings: Settings, bi_encoder, uri: str) -> None:
    build_milvus(settings, bi_encoder, uri, progress=False)
    address = server_manager_instance.start_and_get_uri(uri)  # Milvus Lite's gRPC server, as a remote client sees it
    assert address.startswith("http://127.0.0.1:")
    local = open_milvus_retriever(settings, "dense", bi_encoder, uri).search_many(QUERIES, 3)
    remote = open_milvus_retriever(settings, "dense", bi_encoder, address).search_many(QUERIES, 3)
    assert remote == local


def test_rebuild_and_repeated_upserts_keep_one_row_per_passage(settings: Settings, bi_encoder, uri: str) -> None:
    build_milvus(settings, bi_encoder, uri, progress=False)
    again = build_milvus(settings, bi_encoder, uri, progress=False)
    assert (again.upserted, again.vectors_from, again.passages) == (0, "", 10)
    forced = build_milvus(settings, bi_encoder, uri, force=True, batch_size=3, progress=False)
    assert (forced.upserted, forced.passages) == (10, 10)
    client, name = connect(uri), built_collection(settings)
    row = client.get(name, ids=["p00"], output_fields=["*"])[0]
    client.upsert(name, [row, row])  # the same primary key twice: upsert replaces, never duplicates
    assert count(uri, settings) == 10


def test_interrupted_build_is_refused_then_resumed_without_duplicates(
    settings: Settings, bi_encoder, uri: str, monkeypatch
) -> None:
    real_upsert = MilvusClient.upsert
    calls = []

    def upsert_then_die(self, *args, **kwargs):
        if calls:
            raise KeyboardInterrupt  # the user presses Ctrl-C after the first batch landed
        calls.append(1)
        return real_upsert(self, *args, **kwargs)

    monkeypatch.setattr(MilvusClient, "upsert", upsert_then_die)
    with pytest.raises(KeyboardInterrupt):
        build_milvus(settings, bi_encoder, uri, batch_size=5, progress=False)
    monkeypatch.setattr(MilvusClient, "upsert", real_upsert)
    assert count(uri, settings) == 5
    with pytest.raises(RagrerankError, match=r"holds 5 of 10 passages .*to finish it"):
        open_milvus_retriever(settings, "dense", bi_encoder, uri)
    resumed = build_milvus(settings, bi_encoder, uri, progress=False)
    assert (resumed.upserted, resumed.passages) == (5, 10)
    assert count(uri, settings) == 10
    assert len(open_milvus_retriever(settings, "dense", bi_encoder, uri).search(QUERIES[0], k=50)) == 10


def test_collection_of_another_bi_encoder_is_refused_with_what_is_there(settings: Settings, bi_encoder, uri: str) -> None:
    build_milvus(settings, bi_encoder, uri, progress=False)
    other = settings.with_models(bi_encoder="acme/other-encoder")
    with pytest.raises(RagrerankError) as error:
        open_milvus_retriever(other, "dense", bi_encoder, uri)
    message = str(error.value)
    assert "'acme/other-encoder'" in message and f"embedded by '{BI_ENCODER}'" in message
    assert "ragrerank index --store milvus" in message


def test_collection_of_other_passages_is_refused(settings: Settings, bi_encoder, uri: str) -> None:
    build_milvus(settings, bi_encoder, uri, progress=False)
    passages = make_passages()
    passages[0] = dataclasses.replace(passages[0], text=passages[0].text + " Edited.")
    write_jsonl(settings.passages_path, [passage.to_json() for passage in passages])
    with pytest.raises(RagrerankError, match=r"no collection for these passages .* it has .* with 10 passages"):
        open_milvus_retriever(settings, "dense", bi_encoder, uri)


def test_collection_whose_properties_disagree_with_its_name_is_refused(settings: Settings, bi_encoder, uri: str) -> None:
    build_milvus(settings, bi_encoder, uri, progress=False)
    other = settings.with_models(bi_encoder="acme/other-encoder")
    client = connect(uri)
    client.rename_collection(built_collection(settings), built_collection(other))
    with pytest.raises(RagrerankError, match=rf"holds 10 passages .* embedded by '{BI_ENCODER}', not"):
        open_milvus_retriever(other, "dense", bi_encoder, uri)
    with pytest.raises(RagrerankError, match="--force to replace it"):
        build_milvus(other, bi_encoder, uri, progress=False)


def test_unreachable_server_fails_fast_naming_the_uri(settings: Settings, bi_encoder) -> None:
    started = time.perf_counter()
    with pytest.raises(RagrerankError, match=r"cannot reach Milvus at http://127\.0\.0\.1:1 within 2 s"):
        connect("http://127.0.0.1:1", timeout=2)
    assert time.perf_counter() - started < 5
    with pytest.raises(RagrerankError) as error:
        open_retriever(settings, "dense", store="milvus", model=bi_encoder, milvus_uri="http://admin:s3cret@127.0.0.1:1")
    assert "127.0.0.1:1" in str(error.value) and "s3cret" not in str(error.value)


def test_local_uri_must_be_an_existing_db_file_when_searching(settings: Settings, bi_encoder, tmp_path: Path) -> None:
    with pytest.raises(RagrerankError, match=r"neither a server address nor a \.db file.*store\.db"):
        connect(str(tmp_path / "store"))
    with pytest.raises(RagrerankError, match=r"no Milvus Lite database at .*missing\.db: run `ragrerank index --store"):
        open_milvus_retriever(settings, "dense", bi_encoder, str(tmp_path / "missing.db"))


def test_bad_arguments_are_refused(settings: Settings, bi_encoder, uri: str) -> None:
    with pytest.raises(RagrerankError, match="unknown vector store 'qdrant'"):
        open_retriever(settings, "dense", store="qdrant", model=bi_encoder)
    with pytest.raises(RagrerankError, match="needs --store milvus"):
        open_retriever(settings, "dense", model=bi_encoder, milvus_uri=uri)
    with pytest.raises(RagrerankError, match="needs the bi-encoder"):
        open_milvus_retriever(settings, "hybrid", None, uri)
    build_milvus(settings, bi_encoder, uri, progress=False)
    milvus = open_milvus_retriever(settings, "dense", bi_encoder, uri)
    with pytest.raises(RagrerankError, match="empty query"):
        milvus.search("  ")
    with pytest.raises(RagrerankError, match="k must be a whole number"):
        milvus.search(QUERIES[0], k=0)
    assert len(milvus.search(QUERIES[0], k=100)) == 10  # k beyond the corpus returns what exists


def test_collection_name_is_a_valid_milvus_name() -> None:
    name = collection_name("ab" * 32, "/home/me/models/K8s Bi-Encoder (v2)")
    assert name == "ragrerank_abababababab_home_me_models_k8s_bi_encoder_v2"
