"""Measure retrieval and reranking on a question set, and say whether a gain is real.

Relevance comes from the question file: a passage is relevant when its page (``path``)
is one of the question's ``gold_files``. The metrics are ir-measures' (pytrec_eval),
each at the level where it answers a question a RAG builder asks:

============  =========  ===============================================================
metric        level      what it tells
============  =========  ===============================================================
P@1, P@3      passage    how much of the LLM's context (top 3) comes from a right page;
                         three passages of the gold page make P@3 = 1, so a page split
                         into many passages is rewarded once per passage read
RR@10         passage    how far down the first passage from a right page sits
nDCG@10       page       the top 10 passages reduced to their pages (first occurrence),
                         so each gold page counts once and the ideal is all gold pages
R@cand        page       share of gold pages among the first stage's candidates (R@50 at
                         the default depth): the ceiling that reranking cannot raise
evidence@3    text       a top-3 passage quotes a gold evidence string (normalised)
============  =========  ===============================================================

Passage qrels judge only the retrieved passages (1 from a gold page, else 0), which is
exact for P and RR because they never look past what was retrieved; the page-level
metrics need the full set of relevant items, which the gold page list is. Rank metrics
are averaged over in-scope questions only; out-of-scope questions feed the decision
metrics (answer vs not covered, ROC AUC of the best score).
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, get_args

import ir_measures
import numpy as np
import pandas as pd
from ir_measures import RR, P, Qrel, R, ScoredDoc, nDCG
from scipy.stats import mannwhitneyu, permutation_test
from tqdm.auto import tqdm

from ragrerank.config import Settings
from ragrerank.decision import Decision, Thresholds, decide
from ragrerank.errors import RagrerankError
from ragrerank.types import MODES, Hit

if TYPE_CHECKING:
    from ragrerank.index import Retriever
    from ragrerank.rerank import Reranker

__all__ = [
    "DEFAULT_CONFIGS",
    "DecisionAccuracy",
    "EvalConfig",
    "EvalReport",
    "PairedComparison",
    "Question",
    "ThresholdCalibration",
    "calibrate_threshold",
    "calibration_split",
    "candidate_sweep",
    "decision_accuracy",
    "decision_outcomes",
    "evaluate",
    "evidence_hit",
    "format_report",
    "load_questions",
    "normalise",
    "paired_bootstrap",
    "parse_config",
    "parse_configs",
    "reliability_table",
    "rerank_latency",
    "roc_auc",
    "run_eval",
    "score_run",
]

logger = logging.getLogger(__name__)

Run = Mapping[str, Sequence[Hit]]  # question id → hits, best first

DEFAULT_CANDIDATES = 50
DEFAULT_CONFIGS = ("dense", "bm25", "hybrid", "hybrid+rerank@50")
PURE_SUFFIX = "|pure"
QUERY_LIKELIHOOD_KEY = "query-likelihood"
RANK_DEPTH = 10  # passages the rank metrics read
CONTEXT = 3  # passages handed to the LLM, the depth of evidence@3
METRICS = ("P@1", "P@3", "RR@10", "nDCG@10", "R@cand", "evidence@3")
PASSAGE_MEASURES = (P @ 1, P @ 3, RR @ RANK_DEPTH)
REQUIRED_FIELDS = ("id", "query", "gold_files")
_CONFIG_SPEC = re.compile(r"(?P<mode>[a-z0-9]+)(?:\+(?P<rerank>rerank|ce|qlfused|ql))?(?:@(?P<candidates>\d+))?")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")  # [text](url) → text
_EMPHASIS_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_+|_+(?![A-Za-z0-9])")  # _word_, not snake_case


# ---------------------------------------------------------------------------- questions


@dataclass(frozen=True)
class Question:
    """One line of a questions file; out of scope exactly when it has no gold files."""

    id: str
    query: str
    type: str
    gold_files: tuple[str, ...]
    evidence: tuple[str, ...] = ()

    @property
    def in_scope(self) -> bool:
        return bool(self.gold_files)


def load_questions(path: str | Path) -> tuple[Question, ...]:
    """Read a questions JSONL file, failing on the first bad line with its file and number.

    Each line needs ``id``, ``query`` and ``gold_files`` (``[]`` for out-of-scope
    questions); ``type`` and ``evidence`` are optional. At least one question must be
    in scope, or no rank metric could be computed.
    """
    path = Path(path)
    if not path.is_file():
        raise RagrerankError(f"questions file {path} does not exist: pass a JSONL file such as data/eval/k8s_questions.jsonl")
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            questions.append(_question(line, f"{path}:{number}"))
    ids = [question.id for question in questions]
    if len(set(ids)) != len(ids):
        duplicate = next(qid for qid in ids if ids.count(qid) > 1)
        raise RagrerankError(f"{path} repeats question id {duplicate!r}: give every question its own id")
    if not any(question.in_scope for question in questions):
        raise RagrerankError(
            f"{path} has no in-scope question (all {len(questions)} have empty gold_files): "
            "rank metrics need questions with gold_files"
        )
    return tuple(questions)


def _question(line: str, where: str) -> Question:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise RagrerankError(f"{where} is not valid JSON ({error.msg}): write one question object per line") from None
    if not isinstance(record, dict):
        raise RagrerankError(f"{where} is a JSON {type(record).__name__}, not an object with {', '.join(REQUIRED_FIELDS)}")
    missing = [name for name in REQUIRED_FIELDS if name not in record]
    if missing:
        raise RagrerankError(
            f"{where} lacks {', '.join(missing)}: every question needs id, query and gold_files ([] when out of scope)"
        )
    qid, query, gold = record["id"], record["query"], record["gold_files"]
    qtype, evidence = record.get("type", "ood" if not gold else "untyped"), record.get("evidence", [])
    if not isinstance(qid, str) or not qid.strip():
        raise RagrerankError(f"{where} has id {qid!r}: use a non-empty string such as 'rr-001'")
    if not isinstance(query, str) or not query.strip():
        raise RagrerankError(f"{where} has query {query!r}: write the question as a non-empty string")
    for name, value in (("gold_files", gold), ("evidence", evidence)):
        if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
            raise RagrerankError(f"{where} has {name} {value!r}: use a list of non-empty strings")
    if not isinstance(qtype, str) or (qtype == "ood") == bool(gold):
        raise RagrerankError(
            f"{where} has type {qtype!r} with gold_files {gold!r}: type 'ood' goes with [] and any other type with gold files"
        )
    return Question(qid, query, qtype, tuple(gold), tuple(evidence))


# ---------------------------------------------------------------------------- rank metrics


def normalise(text: str) -> str:
    """Collapse whitespace and drop markdown marks, so a quote matches however it was wrapped.

    The same rules as the question set's README: links become their text, backticks,
    ``*`` and ``_`` emphasis go (``snake_case`` stays); case is kept.

    Example:
        >>> normalise("a `kubectl`\\n   **call** _here_ on my_var, see [Pods](/docs/pods/)")
        'a kubectl call here on my_var, see Pods'
    """
    text = _LINK.sub(r"\1", text).replace("`", "").replace("*", "")
    return re.sub(r"\s+", " ", _EMPHASIS_UNDERSCORE.sub("", text)).strip()


def evidence_hit(question: Question, hits: Sequence[Hit], k: int = CONTEXT) -> bool:
    """Whether one of the top ``k`` passages quotes one of the question's evidence strings.

    Any passage counts, gold page or not: what matters is that the answer is in the
    context. A quote split across two passages is missed, so this is a lower bound.
    """
    texts = [normalise(hit.passage.text) for hit in hits[:k]]
    return any(normalise(quote) in text for quote in question.evidence for text in texts)


def score_run(questions: Sequence[Question], run: Run, candidates: Run | None = None) -> pd.DataFrame:
    """Per-question metrics (see the module docstring) of the in-scope questions, indexed by id.

    Args:
        questions: the question set; out-of-scope questions are skipped.
        run: the final ranking of each question (after reranking, when there is one).
        candidates: the first stage's candidates for ``R@cand``; defaults to ``run``.

    Example:
        >>> score_run(questions, run).mean().round(3).to_dict()
        {'P@1': 0.5, 'P@3': 0.667, 'RR@10': 0.75, 'nDCG@10': 0.622, 'R@cand': 0.75, 'evidence@3': 0.5}
    """
    candidates = run if candidates is None else candidates
    scoped = [question for question in questions if question.in_scope]
    for question in scoped:
        if question.id not in run or question.id not in candidates:
            raise RagrerankError(f"the run has no ranking for question {question.id!r}: search every question first")
    ids = [question.id for question in scoped]
    top = {q.id: run[q.id][:RANK_DEPTH] for q in scoped}
    passage_qrels = [
        Qrel(q.id, hit.passage.id, int(hit.passage.path in q.gold_files)) for q in scoped for hit in top[q.id]
    ]
    page_qrels = [Qrel(q.id, path, 1) for q in scoped for path in q.gold_files]
    depth = max((len(candidates[qid]) for qid in ids), default=1) or 1  # pages ≤ passages: no cut
    passages = _calc(PASSAGE_MEASURES, passage_qrels, {qid: [hit.passage.id for hit in top[qid]] for qid in ids}, ids)
    ndcg = _calc([nDCG @ RANK_DEPTH], page_qrels, {qid: _pages(top[qid]) for qid in ids}, ids)
    recall = _calc([R @ depth], page_qrels, {qid: _pages(candidates[qid]) for qid in ids}, ids)
    frame = pd.concat([passages, ndcg, recall.set_axis(["R@cand"], axis=1)], axis=1)
    frame["evidence@3"] = [float(evidence_hit(q, run[q.id])) for q in scoped]
    return frame[list(METRICS)]


def _pages(hits: Sequence[Hit]) -> list[str]:
    """Passages → their pages, best first, each page at its first passage's position."""
    return list(dict.fromkeys(hit.passage.path for hit in hits))


def _calc(
    measures: Sequence[Any], qrels: list[Qrel], ranking: Mapping[str, Sequence[str]], ids: list[str]
) -> pd.DataFrame:
    """ir-measures per query; scores fall with the rank so pytrec_eval keeps our order (it sorts by score)."""
    run = [ScoredDoc(qid, doc, -float(rank)) for qid, docs in ranking.items() for rank, doc in enumerate(docs, 1)]
    rows = [(m.query_id, str(m.measure), m.value) for m in ir_measures.iter_calc(list(measures), qrels, run)]
    frame = pd.DataFrame(rows, columns=["id", "measure", "value"]).pivot(index="id", columns="measure", values="value")
    return frame.reindex(index=ids, columns=[str(m) for m in measures]).fillna(0.0)  # no judged hit: 0


# ---------------------------------------------------------------------------- configurations


@dataclass(frozen=True)
class EvalConfig:
    """One pipeline to measure: a first stage, optionally reranked from ``candidates`` hits.

    ``candidates`` is the depth of the first stage: what the cross-encoder rescores, and
    the depth of ``R@cand``. ``cross_encoder`` None means the settings' model. A reranked
    config orders by the model as shipped (its logit fused with the first-stage score by
    the weight fitted with it) unless ``pure``: then by the cross-encoder's logit alone.
    ``query_likelihood`` reranks by the LLM's query likelihood instead (ragrerank.query_likelihood),
    fused with the first stage at equal weight unless ``pure``.
    """

    name: str
    mode: str
    rerank: bool = False
    candidates: int = DEFAULT_CANDIDATES
    cross_encoder: str | None = None
    pure: bool = False
    query_likelihood: bool = False

    @property
    def reranker_key(self) -> str:
        """Which reranker this config needs: one per (cross-encoder or query likelihood, pure or fused)."""
        scorer = QUERY_LIKELIHOOD_KEY if self.query_likelihood else self.cross_encoder or ""
        return f"{scorer}{PURE_SUFFIX if self.pure else ''}"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise RagrerankError(f"config {self.name!r} has mode {self.mode!r}: choose one of {', '.join(MODES)}")
        if isinstance(self.candidates, bool) or not isinstance(self.candidates, int) or self.candidates < 1:
            raise RagrerankError(f"config {self.name!r} has candidates={self.candidates!r}: use a whole number ≥ 1")
        if (self.cross_encoder is not None or self.pure or self.query_likelihood) and not self.rerank:
            raise RagrerankError(f"config {self.name!r} names a reranker but does not rerank: set rerank=True")
        if self.query_likelihood and self.cross_encoder is not None:
            raise RagrerankError(f"config {self.name!r} reranks by query likelihood: it takes no cross-encoder")


def parse_config(spec: str) -> EvalConfig:
    """Read ``MODE[+rerank|+ce|+ql|+qlfused][@CANDIDATES]``, the form the CLI's ``--configs`` takes.

    ``+rerank`` reranks with the model as shipped (fused with the first stage by its fitted
    weight), ``+ce`` by the cross-encoder's score alone; ``+ql`` by the LLM's query likelihood
    alone, ``+qlfused`` by it and the first-stage score at equal weight. Reranked configs are
    named with their depth, so ``hybrid+rerank`` and ``hybrid+rerank@50`` are the same config.

    Example:
        >>> parse_config("hybrid+rerank@30")
        EvalConfig(name='hybrid+rerank@30', mode='hybrid', rerank=True, candidates=30, cross_encoder=None, pure=False)
        >>> parse_config("hybrid+ce@30").pure, parse_config("bm25").name
        (True, 'bm25')
    """
    match = _CONFIG_SPEC.fullmatch(spec.strip().lower())
    if match is None or match["mode"] not in MODES:
        raise RagrerankError(
            f"unknown config {spec!r}: write MODE[+rerank|+ce|+ql|+qlfused][@CANDIDATES] with MODE one of {', '.join(MODES)}, "
            "e.g. hybrid+rerank@50"
        )
    mode, rerank = match["mode"], match["rerank"]
    candidates = int(match["candidates"]) if match["candidates"] else DEFAULT_CANDIDATES
    if rerank:
        name = f"{mode}+{rerank}@{candidates}"
    else:
        name = mode if candidates == DEFAULT_CANDIDATES else f"{mode}@{candidates}"
    query_likelihood = rerank in ("ql", "qlfused")
    return EvalConfig(name, mode, rerank is not None, candidates, pure=rerank in ("ce", "ql"), query_likelihood=query_likelihood)


def parse_configs(specs: str | Iterable[str | EvalConfig]) -> tuple[EvalConfig, ...]:
    """Parse a comma-separated list (or a sequence of specs and configs); names must be unique.

    Example:
        >>> [config.name for config in parse_configs("dense, hybrid+rerank@30")]
        ['dense', 'hybrid+rerank@30']
    """
    items = [item for item in specs.split(",") if item.strip()] if isinstance(specs, str) else list(specs)
    configs = tuple(item if isinstance(item, EvalConfig) else parse_config(item) for item in items)
    if not configs:
        raise RagrerankError(f"no configs in {specs!r}: name at least one, e.g. dense,bm25,hybrid")
    names = [config.name for config in configs]
    if len(set(names)) != len(names):
        raise RagrerankError(f"configs {names} repeat a name: list each config once")
    return configs


class Reranks(Protocol):
    """What evaluation needs of a reranker (``ragrerank.rerank.Reranker`` fits)."""

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]: ...


# ---------------------------------------------------------------------------- statistics


@dataclass(frozen=True)
class PairedComparison:
    """``candidate - baseline`` on the same questions: mean, 95% bootstrap CI, sign-flip p-value."""

    metric: str
    baseline: str
    candidate: str
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int

    def __str__(self) -> str:
        return (
            f"{self.candidate} - {self.baseline} on {self.metric}: {self.diff:+.3f} "
            f"(95% CI {self.ci_low:+.3f} to {self.ci_high:+.3f}, p={self.p_value:.3g}, n={self.n})"
        )


def paired_bootstrap(
    baseline: pd.Series, candidate: pd.Series, resamples: int = 10_000, seed: int = 0, metric: str = ""
) -> PairedComparison:
    """Compare two configs question by question, so a gain can be told from noise.

    The CI resamples questions with replacement (the paired bootstrap); the p-value is a
    paired sign-flip permutation test of the mean difference (``scipy.stats.permutation_test``),
    which, unlike the Wilcoxon test, copes with the many ties of 0/1 metrics such as P@1.

    Args:
        baseline: per-question values indexed by question id.
        candidate: the same questions' values for the config under test.
        resamples: bootstrap and permutation resamples.
        seed: makes the CI and the p-value reproducible.
        metric: a label for the result.

    Example:
        >>> print(paired_bootstrap(report.frame("hybrid")["P@1"], report.frame("hybrid+rerank@50")["P@1"]))
        hybrid+rerank@50 - hybrid on P@1: +0.150 (95% CI +0.087 to +0.214, p=0.0001, n=173)
    """
    if set(baseline.index) != set(candidate.index):
        raise RagrerankError(
            f"paired comparison needs the same questions on both sides, got {len(baseline)} and {len(candidate)} "
            "with different ids: compare runs over the same questions file"
        )
    a = baseline.to_numpy(dtype=float)
    b = candidate.reindex(baseline.index).to_numpy(dtype=float)
    if len(a) == 0 or np.isnan(a).any() or np.isnan(b).any():
        raise RagrerankError(f"paired comparison of {metric or 'a metric'} needs values for every question, got NaN or none")
    diffs = b - a
    rng = np.random.default_rng(seed)
    means = diffs[rng.integers(0, len(diffs), size=(resamples, len(diffs)))].mean(axis=1)
    test = permutation_test(
        (b, a),
        lambda x, y, axis: np.mean(x - y, axis=axis),
        permutation_type="samples",
        n_resamples=resamples,
        vectorized=True,
        random_state=seed,
    )
    low, high = np.percentile(means, [2.5, 97.5])
    return PairedComparison(
        metric=metric,
        baseline=str(baseline.name or "baseline"),
        candidate=str(candidate.name or "candidate"),
        diff=float(diffs.mean()),
        ci_low=float(low),
        ci_high=float(high),
        p_value=float(test.pvalue),
        n=len(diffs),
    )


@dataclass(frozen=True)
class DecisionAccuracy:
    """How well "answer when the best score ≥ threshold" sorts in-scope from out-of-scope questions.

    ``balanced_accuracy`` is the mean of ``answered_in_scope`` and ``refused_ood``; plain
    ``accuracy`` rewards answering everything when most questions are in scope. ``auc``
    does not depend on the threshold: the chance that an in-scope question outscores an
    out-of-scope one.
    """

    threshold: float
    accuracy: float
    balanced_accuracy: float
    answered_in_scope: float
    refused_ood: float
    auc: float
    n_in_scope: int
    n_ood: int


def roc_auc(scores: Sequence[float] | pd.Series, in_scope: Sequence[bool] | pd.Series) -> float:
    """ROC AUC of a score separating in-scope from out-of-scope questions (Mann-Whitney U / n1·n0).

    A question with no hits (NaN score) ranks below every scored one.

    Example:
        >>> roc_auc([0.9, 0.8, 0.1], [True, True, False])
        1.0
    """
    values, positive = _signal(scores, in_scope)
    result = mannwhitneyu(values[positive], values[~positive], alternative="two-sided")
    return float(result.statistic / (positive.sum() * (~positive).sum()))


def decision_accuracy(
    scores: Sequence[float] | pd.Series, in_scope: Sequence[bool] | pd.Series, threshold: float
) -> DecisionAccuracy:
    """Score the answer / not-covered decision at ``threshold`` (answer when score ≥ threshold, as ``decide`` does).

    Any score works (cross-encoder probability or logit, cosine, BM25); a question with
    no hits is never answered. Answering an in-scope question counts as right even when
    its top passage is wrong: the rank metrics measure that.

    Example:
        >>> decision_accuracy([0.9, 0.6, 0.4, 0.7, 0.2], [True, True, True, False, False], 0.5).accuracy
        0.6
    """
    values, positive = _signal(scores, in_scope)
    answered = values >= threshold
    answered_in, refused_out = answered[positive].mean(), (~answered[~positive]).mean()
    return DecisionAccuracy(
        threshold=float(threshold),
        accuracy=float((answered == positive).mean()),
        balanced_accuracy=float((answered_in + refused_out) / 2),
        answered_in_scope=float(answered_in),
        refused_ood=float(refused_out),
        auc=roc_auc(values, positive),
        n_in_scope=int(positive.sum()),
        n_ood=int((~positive).sum()),
    )


def _signal(scores: Sequence[float] | pd.Series, in_scope: Sequence[bool] | pd.Series) -> tuple[np.ndarray, np.ndarray]:
    values = np.nan_to_num(np.asarray(scores, dtype=float), nan=-np.inf, posinf=np.inf, neginf=-np.inf)
    positive = np.asarray(in_scope, dtype=bool)
    if values.shape != positive.shape:
        raise RagrerankError(f"{len(values)} scores for {len(positive)} in-scope flags: pass one score per question")
    if positive.all() or not positive.any():
        raise RagrerankError(
            f"the decision needs in-scope and out-of-scope questions, got {positive.sum()} and {(~positive).sum()}: "
            "use a questions file with ood questions (gold_files [])"
        )
    return values, positive


@dataclass(frozen=True)
class ThresholdCalibration:
    """A threshold chosen on one half of the questions and reported on the other, untouched half."""

    threshold: float
    calibration: DecisionAccuracy
    test: DecisionAccuracy
    calibration_ids: tuple[str, ...]
    test_ids: tuple[str, ...]


def calibration_split(
    ids: Sequence[str], in_scope: Sequence[bool], seed: int = 0
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split question ids into calibration and test halves, each with its share of ood questions.

    Stratified by in/out of scope, so the few out-of-scope questions are not all drawn
    into one half; ids are sorted first, so the split depends on the set and the seed only.
    The calibration half gets the extra question of an odd stratum.
    """
    rng = np.random.default_rng(seed)
    calibration: list[str] = []
    test: list[str] = []
    flags = dict(zip(ids, in_scope, strict=True))
    for stratum in (True, False):
        members = sorted(qid for qid, flag in flags.items() if bool(flag) is stratum)
        shuffled = [members[i] for i in rng.permutation(len(members))]
        half = math.ceil(len(shuffled) / 2)
        calibration += shuffled[:half]
        test += shuffled[half:]
    return tuple(sorted(calibration)), tuple(sorted(test))


def calibrate_threshold(scores: pd.Series, in_scope: pd.Series, seed: int = 0) -> ThresholdCalibration:
    """Choose the answer threshold on a calibration half, then measure it on the test half.

    The threshold maximises *balanced* accuracy: with 85% of questions in scope, plain
    accuracy would pick "always answer". Candidates are the midpoints between adjacent
    calibration scores (plus the lowest score: answer all); ties go to the lowest.

    Args:
        scores: each question's best score (``report.frame(name)["best_prob"]``), indexed by id.
        in_scope: the same questions' in-scope flags.
        seed: the split's seed.
    """
    in_scope = in_scope.reindex(scores.index)
    calibration_ids, test_ids = calibration_split(list(scores.index), in_scope.tolist(), seed)
    cal_scores, cal_flags = scores.loc[list(calibration_ids)], in_scope.loc[list(calibration_ids)]
    finite = np.unique(cal_scores.to_numpy(dtype=float)[np.isfinite(cal_scores.to_numpy(dtype=float))])
    candidates = np.concatenate([finite[:1], (finite[:-1] + finite[1:]) / 2])
    if not len(candidates):
        raise RagrerankError("no finite score in the calibration half: every question came back without hits")
    balanced = [decision_accuracy(cal_scores, cal_flags, t).balanced_accuracy for t in candidates]
    threshold = float(candidates[int(np.argmax(balanced))])
    return ThresholdCalibration(
        threshold,
        decision_accuracy(cal_scores, cal_flags, threshold),
        decision_accuracy(scores.loc[list(test_ids)], in_scope.loc[list(test_ids)], threshold),
        calibration_ids,
        test_ids,
    )


def decision_outcomes(
    best_cosine: pd.Series, best_prob: pd.Series, in_scope: pd.Series, thresholds: Thresholds
) -> pd.DataFrame:
    """What ``decide`` does with each question's first pass, counted by in-scope / out-of-scope.

    ``fallback`` is the first pass's "not sure": the pipeline would search again by keywords.
    All three series are indexed by question id; the table has a column per decision.
    """
    ids = list(best_cosine.index)
    decisions = [decide(_finite(best_prob.get(qid)), thresholds, best_cosine=_finite(best_cosine[qid])) for qid in ids]
    frame = pd.DataFrame({"scope": np.where(in_scope.reindex(ids).to_numpy(bool), "in scope", "out of scope"), "decision": decisions})
    table = pd.crosstab(frame["scope"], frame["decision"]).reindex(columns=list(get_args(Decision)), fill_value=0)
    return table.rename_axis(index=None, columns=None)


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def reliability_table(run: Run, questions: Sequence[Question], top: int = CONTEXT, bins: int = 10) -> pd.DataFrame:
    """Reliability-diagram data: do passages scored ``p`` by the cross-encoder come from a gold page a fraction ``p`` of the time?

    Uses the top ``top`` reranked passages of every question, out-of-scope ones included
    (none of their passages is relevant), in ``bins`` equal-width probability bins; empty
    bins stay, with count 0.

    Returns:
        One row per bin: ``bin_low``, ``bin_high``, ``mean_prob``, ``relevant_fraction``, ``count``.
    """
    rows = []
    for question in questions:
        for hit in run.get(question.id, ())[:top]:
            if hit.ce_prob is None:
                raise RagrerankError(
                    f"hit {hit.passage.id} of question {question.id!r} has no ce_prob: pass the run of a reranked config"
                )
            rows.append((hit.ce_prob, float(hit.passage.path in question.gold_files)))
    frame = pd.DataFrame(rows, columns=["prob", "relevant"])
    edges = np.linspace(0.0, 1.0, bins + 1)
    frame["bin"] = pd.cut(frame["prob"], edges, labels=False, include_lowest=True)
    table = frame.groupby("bin").agg(mean_prob=("prob", "mean"), relevant_fraction=("relevant", "mean"), count=("prob", "size"))
    table = table.reindex(range(bins)).fillna({"count": 0}).astype({"count": int})
    table.insert(0, "bin_high", edges[1:])
    table.insert(0, "bin_low", edges[:-1])
    return table.reset_index(drop=True)


# ---------------------------------------------------------------------------- running configs


@dataclass(frozen=True, eq=False)
class EvalReport:
    """What ``evaluate`` measured: a summary, every question's values, and the rankings behind them.

    ``summary`` has one row per config (metrics over in-scope questions rounded to 3
    decimals, p50 latencies in ms, and ``AUC_ood``: how well the top hit's score, or its
    ``ce_prob`` when reranked, tells in-scope from out-of-scope questions). ``per_question`` has one
    row per (config, question), rank metrics NaN for out-of-scope questions. ``runs`` maps
    config → question id → hits, so a notebook can show where a config wins or loses.
    """

    source: str
    configs: tuple[EvalConfig, ...]
    questions: tuple[Question, ...]
    summary: pd.DataFrame
    per_question: pd.DataFrame
    runs: Mapping[str, Mapping[str, tuple[Hit, ...]]]

    def frame(self, config: str) -> pd.DataFrame:
        """One config's per-question rows, indexed by question id."""
        if config not in self.runs:
            raise RagrerankError(f"no config {config!r} in this report: choose one of {', '.join(self.runs)}")
        rows = self.per_question[self.per_question["config"] == config]
        return rows.set_index("id").rename_axis(None)

    def compare(
        self, baseline: str, candidate: str, metric: str = "P@3", resamples: int = 10_000, seed: int = 0
    ) -> PairedComparison:
        """Paired bootstrap of ``candidate - baseline`` on ``metric`` over the in-scope questions."""
        if metric not in METRICS:
            raise RagrerankError(f"unknown metric {metric!r}: choose one of {', '.join(METRICS)}")
        a, b = (self.frame(name).query("in_scope")[metric].rename(name) for name in (baseline, candidate))
        return paired_bootstrap(a, b, resamples, seed, metric)

    def changes(self, baseline: str, candidate: str, metric: str = "RR@10") -> pd.DataFrame:
        """The in-scope questions where ``candidate`` and ``baseline`` differ on ``metric``, worst loss first.

        Each row shows the question, both values, where the first gold passage sits in each
        ranking (``gold_rank``; none in the top 10 is NaN) and each config's top passage, so a
        reader can see *why* a question was rescued or broken.
        """
        if metric not in METRICS:
            raise RagrerankError(f"unknown metric {metric!r}: choose one of {', '.join(METRICS)}")
        before, after = self.frame(baseline), self.frame(candidate)
        questions = {question.id: question for question in self.questions if question.in_scope}
        rows = []
        for qid, question in questions.items():
            delta = after.at[qid, metric] - before.at[qid, metric]
            if delta == 0:
                continue
            row = {"id": qid, "type": question.type, "query": question.query, "delta": round(float(delta), 3)}
            for label, name in (("before", baseline), ("after", candidate)):
                hits = self.runs[name][qid]
                row[f"gold_rank_{label}"] = _gold_rank(hits, question)
                row[f"top_{label}"] = hits[0].passage.id if hits else ""
            rows.append(row)
        columns = ["id", "type", "query", "delta", "gold_rank_before", "gold_rank_after", "top_before", "top_after"]
        return pd.DataFrame(rows, columns=columns).sort_values(["delta", "id"], kind="stable").reset_index(drop=True)

    def by_type(self) -> pd.DataFrame:
        """Mean metrics per (config, question type) over in-scope questions, with the count ``n``."""
        scoped = self.per_question[self.per_question["in_scope"]]
        grouped = scoped.groupby(["config", "type"], sort=False)
        table = grouped[list(METRICS)].mean().round(3)
        table.insert(0, "n", grouped.size())
        return table

    def to_json(self) -> dict[str, Any]:
        """Summary and per-type tables as JSON-ready records, for ``ragrerank eval --json``."""
        return {
            "questions": self.source,
            "in_scope": sum(question.in_scope for question in self.questions),
            "out_of_scope": sum(not question.in_scope for question in self.questions),
            "summary": json.loads(self.summary.to_json(orient="records")),
            "by_type": json.loads(self.by_type().reset_index().to_json(orient="records")),
        }


def evaluate(
    questions: Sequence[Question],
    configs: Sequence[EvalConfig],
    first_stages: Mapping[str, Retriever],
    rerankers: Mapping[str, Reranks] | None = None,
    source: str = "",
    progress: bool = False,
) -> EvalReport:
    """Run every config over the questions, one question at a time, timing each stage.

    Each first stage searches once per question, as deep as its deepest config needs;
    configs of that mode take a prefix of it, so ``hybrid`` and ``hybrid+rerank@50`` rank
    the very same candidates (a prefix of a deeper search equals the shallower search for
    the flat, BM25 and fused retrievers up to the hybrid depth of 100).

    Args:
        questions: from ``load_questions``.
        configs: configs with unique names; reranked ones need ``cross_encoder`` set.
        first_stages: a retriever per mode the configs use.
        rerankers: a reranker per ``reranker_key`` the configs use.
        source: where the questions came from, for the report.
        progress: show progress bars.
    """
    configs = parse_configs(configs)
    rerankers = rerankers or {}
    for config in configs:
        if config.mode not in first_stages:
            raise RagrerankError(f"config {config.name!r} needs a {config.mode} retriever: open one for it")
        if config.rerank and config.reranker_key not in rerankers:
            raise RagrerankError(f"config {config.name!r} needs a reranker under key {config.reranker_key!r}")
    depths: dict[str, int] = {}
    for config in configs:
        depths[config.mode] = max(depths.get(config.mode, RANK_DEPTH), config.candidates)
    first = {
        mode: _timed(questions, partial(_search, first_stages[mode], depth), f"{mode} search", progress)
        for mode, depth in depths.items()
    }
    frames, runs = [], {}
    for config in configs:
        candidates, retrieve_ms = first[config.mode]
        candidates = {qid: hits[: config.candidates] for qid, hits in candidates.items()}
        run, rerank_ms = candidates, dict.fromkeys(candidates, 0.0)
        if config.rerank:
            stage = partial(_rerank, rerankers[config.reranker_key], candidates)
            run, rerank_ms = _timed(questions, stage, config.name, progress)
        runs[config.name] = run
        frames.append(_question_frame(config, questions, run, candidates, retrieve_ms, rerank_ms))
    per_question = pd.concat(frames, ignore_index=True)
    return EvalReport(source, configs, tuple(questions), _summary(configs, per_question), per_question, runs)


def _gold_rank(hits: Sequence[Hit], question: Question) -> float:
    """1-based rank of the first passage from a gold page within the rank depth, NaN when none."""
    return next((float(rank) for rank, hit in enumerate(hits[:RANK_DEPTH], 1) if hit.passage.path in question.gold_files), np.nan)


def _search(retriever: Retriever, depth: int, question: Question) -> list[Hit]:
    return retriever.search(question.query, depth)


def _rerank(reranker: Reranks, candidates: Run, question: Question) -> list[Hit]:
    return reranker.rerank(question.query, candidates[question.id])


def _timed(
    questions: Sequence[Question], stage: Callable[[Question], Sequence[Hit]], desc: str, progress: bool
) -> tuple[dict[str, tuple[Hit, ...]], dict[str, float]]:
    """Run one stage question by question, as a user would wait for it, with its latency in ms."""
    hits, millis = {}, {}
    for question in tqdm(questions, desc=desc, disable=not progress):
        started = time.perf_counter()
        hits[question.id] = tuple(stage(question))
        millis[question.id] = (time.perf_counter() - started) * 1000
    return hits, millis


def _question_frame(
    config: EvalConfig,
    questions: Sequence[Question],
    run: Run,
    candidates: Run,
    retrieve_ms: Mapping[str, float],
    rerank_ms: Mapping[str, float],
) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "config": config.name,
            "id": [q.id for q in questions],
            "type": [q.type for q in questions],
            "in_scope": [q.in_scope for q in questions],
            "best_score": [run[q.id][0].score if run[q.id] else np.nan for q in questions],
            "best_prob": [run[q.id][0].ce_prob if run[q.id] and run[q.id][0].ce_prob is not None else np.nan for q in questions],
            "retrieve_ms": [retrieve_ms[q.id] for q in questions],
            "rerank_ms": [rerank_ms[q.id] for q in questions],
        }
    )
    metrics = score_run(questions, run, candidates)
    return frame.join(metrics, on="id")


def _summary(configs: Sequence[EvalConfig], per_question: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for config in configs:
        frame = per_question[per_question["config"] == config.name]
        scoped = frame[frame["in_scope"]]
        has_ood = not frame["in_scope"].all()
        # what decide() sees after reranking; a likelihood has no probability, so its top score stands in
        signal = "best_prob" if config.rerank and not config.query_likelihood else "best_score"
        rows.append(
            {
                "config": config.name,
                "candidates": config.candidates,
                "n": len(scoped),
                **scoped[list(METRICS)].mean().round(3).to_dict(),
                "AUC_ood": round(roc_auc(frame[signal], frame["in_scope"]), 3) if has_ood else np.nan,
                "retrieve_ms": round(float(frame["retrieve_ms"].median()), 1),
                "rerank_ms": round(float(frame["rerank_ms"].median()), 1),
            }
        )
    return pd.DataFrame(rows)


def run_eval(
    settings: Settings,
    queries_path: str | Path,
    configs: str | Sequence[str | EvalConfig] = DEFAULT_CONFIGS,
    progress: bool = True,
    store: str = "faiss",
    milvus_uri: str | None = None,
    milvus_token: str = "",
) -> EvalReport:
    """Evaluate configs over a questions file with the built index: the CLI's ``ragrerank eval``.

    Loads the bi-encoder once (only when a config searches densely), one reranker per
    cross-encoder, and warns when a gold page is not in the passages, since no config can
    find it. Latencies are wall-clock per question: on a busy shared CPU, torch's intra-op
    threads straggle (a 10 ms query embedding took 400-560 ms with 2 threads on a loaded
    2-core machine), so call ``torch.set_num_threads(1)`` first when latency matters.

    Example:
        >>> print(format_report(run_eval(settings, "data/eval/k8s_questions.jsonl", "bm25,hybrid")))
    """
    from ragrerank.milvus_store import open_store_retriever
    from ragrerank.models import load_bi_encoder
    from ragrerank.rerank import Reranker

    questions = load_questions(queries_path)
    configs = tuple(
        replace(c, cross_encoder=c.cross_encoder or settings.cross_encoder) if c.rerank and not c.query_likelihood else c
        for c in parse_configs(configs)
    )
    modes = list(dict.fromkeys(config.mode for config in configs))
    model = load_bi_encoder(settings.bi_encoder, settings) if set(modes) - {"bm25"} else None
    first_stages = {
        mode: open_store_retriever(settings, store, mode, model, milvus_uri=milvus_uri, milvus_token=milvus_token)
        for mode in modes
    }
    shipped = {
        name: Reranker.from_settings(settings.with_models(cross_encoder=name))
        for name in dict.fromkeys(config.cross_encoder for config in configs if config.rerank and not config.query_likelihood)
    }
    rerankers: dict[str, Reranks] = {
        config.reranker_key: shipped[config.cross_encoder].with_fusion(None) if config.pure else shipped[config.cross_encoder]
        for config in configs
        if config.rerank and not config.query_likelihood
    }
    if any(config.query_likelihood for config in configs):
        from ragrerank.query_likelihood import QueryLikelihood, QueryLikelihoodReranker

        likelihood = QueryLikelihoodReranker(QueryLikelihood.from_settings(settings))  # one score cache for both
        rerankers |= {
            config.reranker_key: likelihood.with_fusion(None) if config.pure else likelihood
            for config in configs
            if config.query_likelihood
        }
    _warn_unreachable(questions, settings)
    return evaluate(questions, configs, first_stages, rerankers, str(queries_path), progress)


def candidate_sweep(
    settings: Settings,
    queries_path: str | Path,
    depths: Sequence[int] = (10, 25, 50, 100),
    mode: str = "hybrid",
    cross_encoder: str | None = None,
    progress: bool = True,
) -> EvalReport:
    """Rerank ``depths`` candidates each, against the unreranked first stage: precision vs latency.

    One first-stage search serves every depth; the summary's ``candidates``, ``P@3`` and
    ``rerank_ms`` columns are the curve.
    """
    reranked = [replace(parse_config(f"{mode}+rerank@{depth}"), cross_encoder=cross_encoder) for depth in depths]
    return run_eval(settings, queries_path, [parse_config(f"{mode}@{max(depths)}"), *reranked], progress)


def rerank_latency(
    reranker: Reranker, questions: Sequence[Question], run: Run, depths: Sequence[int], sample: int = 10, seed: int = 0
) -> pd.DataFrame:
    """p50 wall-clock ms of scoring the top ``depth`` candidates of ``sample`` in-scope questions, per depth.

    Scores with ``Reranker.predict``, which the score cache does not serve, so every depth pays
    for every pair as a first-time question would; the same questions serve every depth.
    """
    scoped = sorted((q for q in questions if q.in_scope and q.id in run), key=lambda q: q.id)
    if not scoped:
        raise RagrerankError("no in-scope question of the run to time: pass the run of these questions")
    rng = np.random.default_rng(seed)
    chosen = [scoped[i] for i in sorted(rng.choice(len(scoped), size=min(sample, len(scoped)), replace=False))]
    rows = []
    for depth in depths:
        millis = []
        for question in chosen:
            texts = [hit.passage.text for hit in run[question.id][:depth]]
            started = time.perf_counter()
            reranker.predict(question.query, texts)
            millis.append((time.perf_counter() - started) * 1000)
        rows.append({"candidates": depth, "rerank_ms": float(np.median(millis))})
    return pd.DataFrame(rows)


def _warn_unreachable(questions: Sequence[Question], settings: Settings) -> None:
    from ragrerank.io import read_jsonl

    paths = {record["path"] for record in read_jsonl(settings.passages_path)}
    missing = sorted({path for q in questions for path in q.gold_files} - paths)
    if missing:
        logger.warning(
            "%d gold file(s) have no passage, so no config can retrieve them: %s",
            len(missing),
            ", ".join(missing[:5]),
        )


def format_report(report: EvalReport) -> str:
    """The summary as a plain-text table, with the question counts it was measured on.

    Example:
        >>> print(format_report(report))  # doctest: +SKIP
        data/eval/k8s_questions.jsonl: 173 in scope, 30 out of scope; rank metrics on in-scope only
        config  candidates    n   P@1   P@3  RR@10  nDCG@10  R@cand  evidence@3  AUC_ood  retrieve_ms  rerank_ms
        ...
    """
    scoped = sum(question.in_scope for question in report.questions)
    header = (
        f"{report.source or 'questions'}: {scoped} in scope, {len(report.questions) - scoped} out of scope; "
        "rank metrics on in-scope only"
    )
    return header + "\n" + report.summary.to_string(index=False, na_rep="-")
