"""Calibrate the answer / fallback / not-covered decision on the signals ``answer()`` sees.

For each question the pipeline looks at three numbers: the bi-encoder's best cosine over the
first stage's candidates (coverage), the cross-encoder probability of the best reranked
passage (answerability), and, when that is too low, the same probability after the keyword
fallback. ``decision_signals`` measures them once per question; every threshold pair can then
be scored without rerunning a model, through ``decide`` itself, so the curve and the pipeline
cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ragrerank.answer.decision import Thresholds, decide
from ragrerank.errors import RagrerankError
from ragrerank.evaluate.questions import Question
from ragrerank.evaluate.stats import calibration_split

if TYPE_CHECKING:
    from ragrerank.rerank import Reranker
    from ragrerank.retrieval import Retriever

SIGNALS = ("best_cosine", "best_prob", "fallback_prob")


@dataclass(frozen=True)
class DecisionRates:
    """Share of in-scope questions answered and of out-of-scope ones refused, with the counts behind them."""

    answered_in_scope: float
    refused_ood: float
    n_in_scope: int
    n_ood: int


@dataclass(frozen=True)
class DecisionCalibration:
    """Thresholds chosen on a calibration half, and how they do there and on the untouched test half."""

    thresholds: Thresholds
    answered_target: float
    calibration: DecisionRates
    test: DecisionRates
    calibration_ids: tuple[str, ...]
    test_ids: tuple[str, ...]


def decision_signals(
    questions: Sequence[Question],
    first_stage: Retriever,
    fallback: Retriever,
    reranker: Reranker,
    candidates: int = 30,
    progress: bool = False,
) -> pd.DataFrame:
    """The three decision signals of every question, as ``answer()`` computes them; indexed by id."""
    rows = []
    for question in tqdm(questions, desc="decision signals", disable=not progress):
        first = reranker.rerank(question.query, first_stage.search(question.query, candidates))
        second = reranker.rerank(question.query, fallback.search(question.query, candidates))
        cosines = [hit.scores["dense_score"] for hit in first if "dense_score" in hit.scores]
        rows.append(
            {
                "id": question.id,
                "in_scope": question.in_scope,
                "best_cosine": max(cosines) if cosines else np.nan,
                "best_prob": first[0].scores["ce_prob"] if first else np.nan,
                "fallback_prob": second[0].scores["ce_prob"] if second else np.nan,
            }
        )
    return pd.DataFrame(rows).set_index("id")


def answered(signals: pd.DataFrame, thresholds: Thresholds) -> pd.Series:
    """Whether ``answer()`` would answer each question (directly or after the fallback) at ``thresholds``."""
    _check(signals)

    def one(row: pd.Series) -> bool:
        cosine, prob, fallback = (None if pd.isna(row[name]) else float(row[name]) for name in SIGNALS)
        decision = decide(prob, thresholds, best_cosine=cosine)
        if decision == "fallback":  # answered only if the keyword candidates' best clears the threshold
            return decide(fallback, thresholds, after_fallback=True, best_cosine=cosine) == "answer"
        return decision == "answer"

    return signals.apply(one, axis=1).astype(bool)


def decision_rates(signals: pd.DataFrame, thresholds: Thresholds) -> DecisionRates:
    """How the decision at ``thresholds`` does on these questions."""
    done, scope = answered(signals, thresholds), signals["in_scope"].astype(bool)
    return DecisionRates(
        answered_in_scope=round(float(done[scope].mean()), 3) if scope.any() else math.nan,
        refused_ood=round(float((~done[~scope]).mean()), 3) if (~scope).any() else math.nan,
        n_in_scope=int(scope.sum()),
        n_ood=int((~scope).sum()),
    )


def calibrate_decision(signals: pd.DataFrame, answered_target: float = 0.93, seed: int = 0) -> DecisionCalibration:
    """Choose both thresholds on a calibration half of ``signals``; report them on the other half.

    Refusing a covered question costs a docs assistant more than answering an uncovered one with
    citations, so the in-scope questions set the thresholds: coverage is the lowest best cosine of
    any calibration in-scope question (the gate only catches questions far from every passage),
    and the answer threshold is the highest probability at which the pipeline, fallback included,
    still answers ``answered_target`` of them. The target sits above the 90% a reader should get,
    to leave room for the sampling error of ~90 questions on a held-out set.
    """
    _check(signals)
    if not 0.0 < answered_target <= 1.0:
        raise RagrerankError(f"answered_target is a share in (0, 1], got {answered_target}")
    calibration_ids, test_ids = calibration_split(list(signals.index), signals["in_scope"].tolist(), seed)
    calibration, test = signals.loc[list(calibration_ids)], signals.loc[list(test_ids)]
    in_scope = calibration[calibration["in_scope"].astype(bool)]
    coverage = math.floor(float(in_scope["best_cosine"].min()) * 1000) / 1000
    probs = np.unique(np.r_[calibration["best_prob"].dropna(), calibration["fallback_prob"].dropna()])
    chosen = probs[0]
    for prob in probs:  # answered falls as the threshold rises: keep the highest that meets the target
        threshold = math.floor(float(prob) * 1000) / 1000
        if decision_rates(in_scope, Thresholds(answer=threshold, coverage=coverage)).answered_in_scope >= answered_target:
            chosen = threshold
    thresholds = Thresholds(answer=float(chosen), coverage=coverage)
    return DecisionCalibration(
        thresholds, answered_target, decision_rates(calibration, thresholds), decision_rates(test, thresholds),
        calibration_ids, test_ids,
    )


def decision_curve(signals: pd.DataFrame, coverage: float, answer_thresholds: Sequence[float]) -> pd.DataFrame:
    """Answered in-scope vs refused out-of-scope share per answer threshold, at one coverage threshold."""
    rows = []
    for threshold in answer_thresholds:
        rates = decision_rates(signals, Thresholds(answer=float(threshold), coverage=coverage))
        rows.append({"answer_threshold": float(threshold), "answered_in_scope": rates.answered_in_scope, "refused_ood": rates.refused_ood})
    return pd.DataFrame(rows)


def _check(signals: pd.DataFrame) -> None:
    missing = [name for name in ("in_scope", *SIGNALS) if name not in signals.columns]
    if missing:
        raise RagrerankError(f"decision signals lack {', '.join(missing)}: build them with decision_signals()")
