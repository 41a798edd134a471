"""Is a gain real, and where should the answer threshold sit: paired bootstrap, ROC AUC, calibration."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import get_args

import numpy as np
import pandas as pd
from scipy.stats import mannwhitneyu, permutation_test

from ragrerank.answer.decision import Decision, Thresholds, decide
from ragrerank.errors import RagrerankError
from ragrerank.evaluate.metrics import Run
from ragrerank.evaluate.questions import CONTEXT, Question


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
    means = bootstrap_means(diffs, resamples, seed)
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


def bootstrap_means(diffs: Sequence[float] | np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Means of ``diffs`` over ``resamples`` resamples of the questions with replacement (the paired bootstrap)."""
    diffs = np.asarray(diffs, dtype=float)
    rows = np.random.default_rng(seed).integers(0, len(diffs), size=(resamples, len(diffs)))
    return diffs[rows].mean(axis=1)


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
    """A threshold chosen on one half of the questions and reported on the other, untouched half.

    The two id lists say which question fell in which half, so a notebook can show either.
    """

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
