import pytest

from ragrerank.answer import Thresholds, decide
from ragrerank.errors import RagrerankError


@pytest.mark.parametrize(
    ("prob", "after_fallback", "expected"),
    [
        (0.9, False, "answer"),
        (0.5, False, "answer"),
        (0.49, False, "fallback"),
        (0.49, True, "not_covered"),
        (0.9, True, "answer"),
        (None, False, "fallback"),
        (None, True, "not_covered"),
    ],
)
def test_each_branch(prob, after_fallback, expected):
    assert decide(prob, Thresholds(answer=0.5), after_fallback) == expected


def test_threshold_outside_0_1_is_refused():
    with pytest.raises(RagrerankError, match="answer threshold"):
        Thresholds(answer=2.0)


def test_low_coverage_means_not_covered_whatever_the_cross_encoder_says():
    thresholds = Thresholds(answer=0.5, coverage=0.55)
    assert decide(0.99, thresholds, best_cosine=0.30) == "not_covered"
    assert decide(0.99, thresholds, best_cosine=0.60) == "answer"
    assert decide(0.10, thresholds, best_cosine=0.60) == "fallback"


def test_coverage_outside_minus_1_1_is_refused():
    with pytest.raises(RagrerankError, match="coverage threshold"):
        Thresholds(coverage=1.5)
