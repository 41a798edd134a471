"""Evaluation wiring on tiny hand-computed cases; the metric arithmetic itself is ir-measures'."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ragrerank.answer import Thresholds
from ragrerank.errors import RagrerankError
from ragrerank.corpus.markdown import strip_marks
from ragrerank.evaluate import (
    EvalConfig,
    Reranking,
    Question,
    calibrate_threshold,
    calibration_split,
    decision_accuracy,
    decision_outcomes,
    evaluate,
    evidence_hit,
    format_report,
    load_questions,
    paired_bootstrap,
    parse_config,
    parse_configs,
    reliability_table,
    rerank_latency,
    roc_auc,
    score_run,
)
from ragrerank.types import Hit, Passage

LOG2_3 = np.log2(3)


def hit(path: str, n: int, rank: int, text: str = "", score: float | None = None, **scores: float) -> Hit:
    passage = Passage(f"{path}#{n}", path, path, (), f"https://x/{path}", text or f"{path} part {n}", 3)
    return Hit(passage, -float(rank) if score is None else score, rank, scores)


# q1: gold a.md; hits b, a, a → P@1 0, P@3 2/3, RR 1/2; pages [b, a] → nDCG = (1/log2 3) / 1 = 0.631, R 1/1.
# q2: gold c.md, d.md; hits c, e, c → P@1 1, P@3 2/3, RR 1; pages [c, e] → nDCG = 1 / (1 + 1/log2 3) = 0.613, R 1/2.
# (Passage-level nDCG would instead reward the second passage of a.md and c.md again.)
QUESTIONS = (
    Question("q1", "first", "howto", ("a.md",), ("the `answer` is *here*",)),
    Question("q2", "second", "config", ("c.md", "d.md"), ("nowhere to be found",)),
    Question("q3", "off topic", "ood", ()),
)
RUN = {
    "q1": [hit("b.md", 1, 1), hit("a.md", 1, 2, "the answer\n  is here, said the doc"), hit("a.md", 2, 3)],
    "q2": [hit("c.md", 1, 1), hit("e.md", 1, 2), hit("c.md", 2, 3)],
    "q3": [hit("b.md", 2, 1, score=-5.0)],  # the off-topic question's best score is the lowest
}


def test_score_run_matches_hand_computed_values():
    frame = score_run(QUESTIONS, RUN)
    assert list(frame.index) == ["q1", "q2"]  # ood questions carry no rank metrics
    expected = {
        "P@1": [0.0, 1.0],
        "P@3": [2 / 3, 2 / 3],
        "RR@10": [0.5, 1.0],
        "nDCG@10": [1 / LOG2_3, 1 / (1 + 1 / LOG2_3)],
        "R@cand": [1.0, 0.5],
        "evidence@3": [1.0, 0.0],
    }
    for metric, values in expected.items():
        assert frame[metric].tolist() == pytest.approx(values), metric


def test_ranks_not_scores_set_the_order_and_missing_hits_score_zero():
    tied = {qid: [replace(h, score=1.0) for h in hits] for qid, hits in RUN.items()}  # pytrec_eval sorts by score
    assert score_run(QUESTIONS, tied).equals(score_run(QUESTIONS, RUN))
    empty = score_run(QUESTIONS, {**RUN, "q1": []})
    assert empty.loc["q1"].tolist() == [0.0] * 6
    with pytest.raises(RagrerankError, match="no ranking for question 'q2'"):
        score_run(QUESTIONS, {"q1": RUN["q1"]})


def test_recall_uses_the_candidates_not_the_reranked_top():
    candidates = {**RUN, "q2": RUN["q2"] + [hit("d.md", 1, 4)]}
    assert score_run(QUESTIONS, RUN, candidates).loc["q2", "R@cand"] == 1.0


def test_evidence_is_compared_after_normalising_markdown_and_whitespace():
    assert strip_marks("a `kubectl`\n   **call** _here_ on my_var, see [Pods](/docs/pods/)") == (
        "a kubectl call here on my_var, see Pods"
    )
    question = QUESTIONS[0]
    assert evidence_hit(question, RUN["q1"])
    assert not evidence_hit(question, RUN["q1"], k=1)  # the quote sits in the second passage
    assert not evidence_hit(replace(question, evidence=("The answer is here",)), RUN["q1"])  # case is kept


def test_parse_config_and_its_errors():
    assert parse_config("hybrid+rerank@30") == EvalConfig("hybrid+rerank@30", "hybrid", Reranking.SHIPPED, 30)
    assert parse_config(" Hybrid+rerank ").name == "hybrid+rerank@50"
    assert parse_config("bm25@100") == EvalConfig("bm25@100", "bm25", Reranking.NONE, 100)
    assert not parse_config("bm25@100").reranks
    assert parse_config("dense+ce@10") == EvalConfig("dense+ce@10", "dense", Reranking.CROSS_ENCODER, 10)
    assert parse_config("dense+ce@10").reranker_key == "+ce" != parse_config("dense+rerank@10").reranker_key
    assert [c.name for c in parse_configs("dense,bm25, hybrid")] == ["dense", "bm25", "hybrid"]
    pure, fused = parse_config("hybrid+ql@30"), parse_config("hybrid+qlfused@30")
    assert pure.reranking.pure and not fused.reranking.pure
    assert not pure.reranking.uses_cross_encoder and not fused.reranking.uses_cross_encoder
    assert len({pure.reranker_key, fused.reranker_key, parse_config("hybrid+ce@30").reranker_key}) == 3
    for bad in ("vector", "hybrid@0", "hybrid+rerank@x", "dense+bm25", "dense+qlx"):
        with pytest.raises(RagrerankError, match="MODE|candidates"):
            parse_config(bad)
    with pytest.raises(RagrerankError, match="repeat"):
        parse_configs("hybrid+rerank,hybrid+rerank@50")
    with pytest.raises(RagrerankError, match="reranks by none: it takes no cross-encoder"):
        EvalConfig("x", "dense", cross_encoder="some/model")
    with pytest.raises(RagrerankError, match="takes no cross-encoder"):
        EvalConfig("x", "dense", Reranking.QUERY_LIKELIHOOD, cross_encoder="some/model")


# -------------------------------------------------------------------- decisions and statistics


def test_decision_accuracy_and_auc_by_hand():
    # answers at 0.5: in-scope 0.9 ✓ 0.6 ✓ 0.4 ✗, ood 0.7 ✗ (answered) 0.2 ✓ → accuracy 3/5;
    # in-scope answered 2/3, ood refused 1/2 → balanced 7/12; AUC: 4 of 6 (in, ood) pairs ordered right.
    result = decision_accuracy([0.9, 0.6, 0.4, 0.7, 0.2], [True, True, True, False, False], 0.5)
    assert (result.accuracy, result.answered_in_scope, result.refused_ood) == pytest.approx((0.6, 2 / 3, 0.5))
    assert result.balanced_accuracy == pytest.approx(7 / 12)
    assert result.auc == pytest.approx(4 / 6)


def test_auc_of_perfect_reversed_and_useless_signals():
    flags = [True, True, False, False]
    assert roc_auc([0.9, 0.8, 0.2, 0.1], flags) == 1.0
    assert roc_auc([0.1, 0.2, 0.8, 0.9], flags) == 0.0
    assert roc_auc([0.5, 0.5, 0.5, 0.5], flags) == 0.5
    assert roc_auc([0.3, np.nan, 0.1, 0.2], flags) == 0.5  # no hits ranks lowest
    with pytest.raises(RagrerankError, match="in-scope and out-of-scope"):
        roc_auc([0.1, 0.2], [True, True])


def test_bootstrap_of_identical_configs_is_exactly_zero():
    values = pd.Series(np.random.default_rng(1).integers(0, 2, 40).astype(float), index=[f"q{i}" for i in range(40)])
    result = paired_bootstrap(values, values.sample(frac=1.0, random_state=3))  # same values, other order
    assert (result.diff, result.ci_low, result.ci_high, result.p_value, result.n) == (0.0, 0.0, 0.0, 1.0, 40)


def test_bootstrap_detects_a_consistent_gain_and_is_reproducible():
    rng = np.random.default_rng(2)
    baseline = pd.Series(rng.random(60), index=[f"q{i}" for i in range(60)], name="hybrid")
    candidate = (baseline + 0.2).rename("hybrid+rerank@50")
    result = paired_bootstrap(baseline, candidate, resamples=2_000, metric="P@3")
    assert (result.diff, result.ci_low, result.ci_high) == pytest.approx((0.2, 0.2, 0.2))
    assert result.p_value < 0.01
    assert result == paired_bootstrap(baseline, candidate, resamples=2_000, metric="P@3")
    assert str(result).startswith("hybrid+rerank@50 - hybrid on P@3: +0.200")
    with pytest.raises(RagrerankError, match="same questions"):
        paired_bootstrap(baseline, candidate.iloc[1:])


def test_calibration_split_is_stratified_deterministic_and_order_free():
    ids = [f"q{i:02d}" for i in range(23)]
    in_scope = [i < 17 for i in range(23)]  # 17 in scope, 6 ood
    calibration, test = calibration_split(ids, in_scope, seed=0)
    flags = dict(zip(ids, in_scope))
    assert sorted(calibration + test) == ids and not set(calibration) & set(test)
    assert sum(flags[q] for q in calibration) == 9 and sum(flags[q] for q in test) == 8
    assert sum(not flags[q] for q in calibration) == 3 and sum(not flags[q] for q in test) == 3
    assert calibration_split(ids[::-1], in_scope[::-1], seed=0) == (calibration, test)
    assert calibration_split(ids, in_scope, seed=1) != (calibration, test)


def test_threshold_calibrated_on_one_half_separates_the_other():
    ids = [f"q{i:02d}" for i in range(20)]
    in_scope = pd.Series([i < 14 for i in range(20)], index=ids)
    scores = pd.Series([0.6 + i / 100 if i < 14 else 0.1 + i / 100 for i in range(20)], index=ids)
    result = calibrate_threshold(scores, in_scope, seed=0)
    assert scores[~in_scope].max() < result.threshold <= scores[in_scope].min()
    assert result.calibration.balanced_accuracy == result.test.balanced_accuracy == 1.0
    assert set(result.calibration_ids).isdisjoint(result.test_ids)


def test_reliability_table_bins_top_passage_probabilities():
    run = {
        "q1": [hit("a.md", 1, 1, ce_prob=0.95), hit("b.md", 1, 2, ce_prob=0.15)],
        "q2": [hit("e.md", 1, 1, ce_prob=0.91), hit("c.md", 1, 2, ce_prob=0.05)],
        "q3": [hit("b.md", 2, 1, ce_prob=0.12)],
    }
    table = reliability_table(run, QUESTIONS, top=2, bins=10)
    assert len(table) == 10 and table["count"].sum() == 5
    top = table.iloc[9]  # 0.95 (gold) and 0.91 (not gold)
    assert (top["count"], top["mean_prob"], top["relevant_fraction"]) == pytest.approx((2, 0.93, 0.5))
    assert (table.iloc[0]["count"], table.iloc[0]["relevant_fraction"]) == (1, 1.0)  # c.md at 0.05 is gold
    assert table.iloc[5]["count"] == 0 and np.isnan(table.iloc[5]["mean_prob"])
    with pytest.raises(RagrerankError, match="no ce_prob"):
        reliability_table(RUN, QUESTIONS)


# -------------------------------------------------------------------- running configs


class FakeRetriever:
    """Returns the canned ranking of each query and counts searches, to check the cache."""

    def __init__(self, mode: str, ranking: dict[str, list[Hit]]) -> None:
        self.mode, self.ranking, self.calls = mode, ranking, 0

    def search(self, query: str, k: int = 10) -> list[Hit]:
        self.calls += 1
        return self.ranking[query][:k]


class ReverseReranker:
    """Puts the last candidate first, with probabilities falling from 0.9."""

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        return [
            replace(h, rank=rank, score=1.0 - rank / 10, scores={**h.scores, "ce_prob": 1.0 - rank / 10})
            for rank, h in enumerate(reversed(hits), start=1)
        ]


def test_evaluate_shares_the_first_stage_and_reports_every_config():
    by_query = {q.query: RUN[q.id] for q in QUESTIONS}
    hybrid = FakeRetriever("hybrid", by_query)
    configs = [EvalConfig("hybrid", "hybrid"), EvalConfig("hybrid+rerank@3", "hybrid", Reranking.SHIPPED, 3, "fake")]
    report = evaluate(QUESTIONS, configs, {"hybrid": hybrid}, {"fake+rerank": ReverseReranker()}, source="tiny")
    assert hybrid.calls == len(QUESTIONS)  # one search per question serves both configs
    assert report.summary["config"].tolist() == ["hybrid", "hybrid+rerank@3"]
    assert report.summary.loc[0, "P@1"] == 0.5 and report.summary.loc[0, "RR@10"] == 0.75
    # reversed: q1 → a, a, b (P@1 1, RR 1); q2 → c, e, c (P@1 1)
    assert report.summary.loc[1, "P@1"] == 1.0 and report.summary.loc[1, "R@cand"] == 0.75
    assert report.frame("hybrid+rerank@3").loc["q1", "best_prob"] == pytest.approx(0.9)
    assert np.isnan(report.frame("hybrid").loc["q3", "P@1"])  # ood: no rank metrics
    assert report.summary.loc[0, "AUC_ood"] == 1.0
    assert report.compare("hybrid", "hybrid+rerank@3", "P@1", resamples=500).diff == pytest.approx(0.5)
    assert report.by_type().loc[("hybrid", "howto"), "n"] == 1
    assert "tiny: 2 in scope, 1 out of scope" in format_report(report)
    assert json.loads(json.dumps(report.to_json()))["summary"][1]["config"] == "hybrid+rerank@3"
    assert report.runs["hybrid+rerank@3"]["q1"][0].passage.id == "a.md#2"


def test_changes_list_rescued_and_broken_questions_with_gold_ranks():
    by_query = {q.query: RUN[q.id] for q in QUESTIONS}
    configs = [EvalConfig("hybrid", "hybrid"), EvalConfig("hybrid+ce@3", "hybrid", Reranking.CROSS_ENCODER, 3, "fake")]
    report = evaluate(QUESTIONS, configs, {"hybrid": FakeRetriever("hybrid", by_query)}, {"fake+ce": ReverseReranker()})
    changes = report.changes("hybrid", "hybrid+ce@3", "RR@10")
    # q1: gold a.md rises from rank 2 to 1 (RR 0.5 → 1); q2 unchanged at rank 1; q3 is out of scope
    assert changes.to_dict("records") == [
        {"id": "q1", "type": "howto", "query": "first", "delta": 0.5, "gold_rank_before": 2.0, "gold_rank_after": 1.0,
         "top_before": "b.md#1", "top_after": "a.md#2"}
    ]
    with pytest.raises(RagrerankError, match="unknown metric"):
        report.changes("hybrid", "hybrid+ce@3", "MAP")


def test_rerank_latency_times_every_depth_on_the_same_sampled_questions():
    class CountingReranker:
        def __init__(self):
            self.calls = []

        def predict(self, query, texts):
            self.calls.append((query, len(texts)))
            return np.zeros(len(texts))

    reranker = CountingReranker()
    latency = rerank_latency(reranker, QUESTIONS, RUN, [1, 3], sample=1)
    assert latency["candidates"].tolist() == [1, 3] and (latency["rerank_ms"] >= 0).all()
    assert len(reranker.calls) == 2 and reranker.calls[0][0] == reranker.calls[1][0] != "off topic"
    assert [count for _, count in reranker.calls] == [1, 3]


def test_decision_outcomes_count_each_decision_by_scope():
    ids = ["a", "b", "c", "d"]
    cosine = pd.Series([0.8, 0.8, 0.3, 0.8], index=ids)
    prob = pd.Series([0.9, 0.01, 0.9, np.nan], index=ids)  # d: no reranked hit
    scope = pd.Series([True, True, False, False], index=ids)
    table = decision_outcomes(cosine, prob, scope, Thresholds(answer=0.5, coverage=0.5))
    assert table.to_dict("index") == {
        "in scope": {"answer": 1, "fallback": 1, "not_covered": 0},
        "out of scope": {"answer": 0, "fallback": 1, "not_covered": 1},
    }


def test_evaluate_asks_for_missing_retrievers_and_rerankers():
    retriever = FakeRetriever("bm25", {q.query: RUN[q.id] for q in QUESTIONS})
    with pytest.raises(RagrerankError, match="needs a dense retriever"):
        evaluate(QUESTIONS, [parse_config("dense")], {"bm25": retriever})
    with pytest.raises(RagrerankError, match="needs a reranker"):
        evaluate(QUESTIONS, [parse_config("bm25+rerank")], {"bm25": retriever})


# -------------------------------------------------------------------- questions files


def write(tmp_path: Path, *lines: str | dict) -> Path:
    path = tmp_path / "questions.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


GOOD = {"id": "q1", "query": "what is a pod", "type": "definition", "gold_files": ["concepts/pod.md"]}


def test_load_questions_reads_the_schema(tmp_path):
    ood = {"id": "q2", "query": "bake bread", "gold_files": [], "evidence": [], "notes": "off topic"}
    questions = load_questions(write(tmp_path, GOOD, "", ood))
    assert questions == (
        Question("q1", "what is a pod", "definition", ("concepts/pod.md",)),
        Question("q2", "bake bread", "ood", ()),
    )


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ({"id": "q2", "query": "no gold"}, r"questions\.jsonl:2 lacks gold_files"),
        ({"query": "no id", "gold_files": []}, r"questions\.jsonl:2 lacks id"),
        ("{not json", r"questions\.jsonl:2 is not valid JSON"),
        ('["a list"]', r"questions\.jsonl:2 is a JSON list"),
        ({"id": "q2", "query": " ", "gold_files": []}, r":2 has query"),
        ({"id": "q2", "query": "x", "gold_files": "a.md"}, r":2 has gold_files 'a.md'"),
        ({"id": "q2", "query": "x", "type": "ood", "gold_files": ["a.md"]}, r":2 has type 'ood'"),
        ({"id": "q1", "query": "again", "gold_files": []}, r"repeats question id 'q1'"),
    ],
)
def test_load_questions_names_the_file_and_line_of_a_bad_record(tmp_path, line, message):
    with pytest.raises(RagrerankError, match=message):
        load_questions(write(tmp_path, GOOD, line))


def test_a_file_without_in_scope_questions_is_refused(tmp_path):
    with pytest.raises(RagrerankError, match="no in-scope question"):
        load_questions(write(tmp_path, {"id": "q1", "query": "bake bread", "gold_files": []}))
    with pytest.raises(RagrerankError, match="does not exist"):
        load_questions(tmp_path / "missing.jsonl")


# -------------------------------------------------------------------- regression net


@pytest.mark.slow
def test_bm25_on_the_project_questions_stays_near_its_recorded_quality():
    """BM25 needs no model: a cheap end-to-end check of passages, index, qrels and metrics together."""
    from ragrerank.config import PROJECT_ROOT, resolve_settings
    from ragrerank.evaluate import run_eval

    settings = resolve_settings()
    if not (settings.index_dir / "manifest.json").is_file():
        pytest.skip(f"no index in {settings.index_dir}: run `ragrerank index` (make artifacts)")
    report = run_eval(settings, PROJECT_ROOT / "data" / "eval" / "k8s_questions.jsonl", "bm25", progress=False)
    row = report.summary.iloc[0]
    # recorded on 6448 passages (corpus of 5c1b005); passage changes move these a little
    assert row["P@3"] == pytest.approx(0.395, abs=0.03)
    assert row["nDCG@10"] == pytest.approx(0.669, abs=0.03)
    assert row["R@cand"] == pytest.approx(0.945, abs=0.03)
