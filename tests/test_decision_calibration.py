"""Calibrating the decision on measured signals: the rates go through decide(), the thresholds follow the rule."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ragrerank.answer import Thresholds
from ragrerank.errors import RagrerankError
from ragrerank.evaluate.decision import answered, calibrate_decision, decision_curve, decision_rates
from ragrerank.models import SHIPPED_CROSS_ENCODER


def signals(rows: list[tuple[str, bool, float, float, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["id", "in_scope", "best_cosine", "best_prob", "fallback_prob"])
    return frame.set_index("id")


TOY = signals(
    [
        ("a", True, 0.6, 0.9, 0.1),  # answered at once
        ("b", True, 0.5, 0.2, 0.8),  # answered after the keyword fallback
        ("c", True, 0.2, 0.9, 0.9),  # far from every passage: refused by coverage
        ("d", False, 0.5, 0.3, 0.3),  # refused after the fallback
        ("e", False, 0.5, 0.7, 0.1),  # answered although out of scope
    ]
)


def test_answered_follows_decide_including_the_fallback():
    assert answered(TOY, Thresholds(answer=0.5, coverage=0.4)).to_dict() == {"a": True, "b": True, "c": False, "d": False, "e": True}


def test_rates_count_in_scope_answered_and_out_of_scope_refused():
    rates = decision_rates(TOY, Thresholds(answer=0.5, coverage=0.4))
    assert (rates.answered_in_scope, rates.refused_ood, rates.n_in_scope, rates.n_ood) == (0.667, 0.5, 3, 2)


def test_the_curve_answers_fewer_questions_as_the_threshold_rises():
    curve = decision_curve(TOY, 0.0, [0.0, 0.5, 0.95])
    assert curve["answered_in_scope"].tolist() == [1.0, 1.0, 0.0]
    assert curve["refused_ood"].tolist() == [0.0, 0.5, 1.0]


def test_calibration_sets_coverage_to_the_lowest_in_scope_cosine_and_meets_the_answered_target():
    rng = np.random.default_rng(0)
    rows = [(f"in{i}", True, 0.4 + rng.random() / 2, rng.beta(5, 2), rng.beta(5, 2)) for i in range(80)]
    rows += [(f"out{i}", False, rng.random() / 2, rng.beta(2, 5), rng.beta(2, 5)) for i in range(20)]
    frame = signals(rows)
    calibration = calibrate_decision(frame, answered_target=0.9)
    half = frame.loc[list(calibration.calibration_ids)]
    assert calibration.thresholds.coverage <= half.loc[half["in_scope"], "best_cosine"].min()
    assert calibration.calibration.answered_in_scope >= 0.9
    probs = np.r_[half["best_prob"], half["fallback_prob"]]
    next_up = probs[probs > calibration.thresholds.answer + 0.001].min()  # the next threshold that changes anything
    higher = Thresholds(answer=float(next_up), coverage=calibration.thresholds.coverage)
    assert decision_rates(half[half["in_scope"]], higher).answered_in_scope < 0.9  # the highest threshold that meets it
    assert set(calibration.calibration_ids).isdisjoint(calibration.test_ids)


def test_signals_without_a_column_are_a_clear_error():
    with pytest.raises(RagrerankError, match="lack fallback_prob"):
        answered(TOY.drop(columns="fallback_prob"), Thresholds())


def test_the_shipped_thresholds_are_the_ones_calibrated_for_the_shipped_model():
    record = json.loads((SHIPPED_CROSS_ENCODER / "decision.json").read_text(encoding="utf-8"))
    assert vars(Thresholds()) == record["thresholds"]
    project = signals([tuple(row[name] for name in ("id", "in_scope", "best_cosine", "best_prob", "fallback_prob"))
                       for row in record["signals"]["data/eval/k8s_questions.jsonl"]])
    assert calibrate_decision(project, record["answered_target"]).thresholds == Thresholds()
