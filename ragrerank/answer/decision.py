"""The relevance decision: answer, fall back to keyword search, or say the docs do not cover it.

Two signals, both chosen on the calibration half of data/eval/k8s_questions.jsonl by
``ragrerank.evaluate.decision.calibrate_decision`` (``python -m experiments.written_questions.decision``
records them with the model, in ``decision.json``):

* coverage: the bi-encoder's best cosine over the candidates. The threshold is a floor, the lowest
  best cosine of any in-scope calibration question (0.365): it refuses at once what is far from
  every passage ("what is the capital of Peru") and never a covered calibration question;
* answerability: the probability the project's cross-encoder gives the best reranked passage
  (ROC AUC 0.92 for in- vs out-of-scope questions). The threshold is the highest at which the
  pipeline, keyword fallback included, still answers 93% of the in-scope calibration questions
  (0.568): refusing a covered question costs a docs assistant more than answering an uncovered
  one with citations, and the margin over 90% absorbs the sampling error of a held-out set.

Together they answered 93.1% of the calibration half's in-scope questions and refused 86.7% of
its out-of-scope ones; on the untouched test half 89.5% and 73.3%, on the development set
91.1% and 80.0% (90 and 15 questions). Under the answer threshold the pipeline falls back to
keyword search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ragrerank.errors import RagrerankError

Decision = Literal["answer", "fallback", "not_covered"]


@dataclass(frozen=True)
class Thresholds:
    """Defaults calibrated on data (see the module docstring); recalibrate for another model."""

    answer: float = 0.568  # cross-encoder probability the best passage needs
    coverage: float = 0.365  # best bi-encoder cosine below which the docs are taken not to cover the question

    def __post_init__(self) -> None:
        if not 0.0 <= self.answer <= 1.0:
            raise RagrerankError(f"answer threshold is a probability in [0, 1], got {self.answer}")
        if not -1.0 <= self.coverage <= 1.0:
            raise RagrerankError(f"coverage threshold is a cosine in [-1, 1], got {self.coverage}")


def decide(
    best_prob: float | None, thresholds: Thresholds, after_fallback: bool = False, best_cosine: float | None = None
) -> Decision:
    """Decide what to do with the best candidate's scores.

    Nothing close to the question in the docs (``best_cosine`` under the coverage
    threshold) → ``not_covered`` at once. Otherwise, the best reranked passage clears
    the answer threshold → ``answer``; it does not → ``fallback`` (search again by
    keywords and rerank those); the fallback's best does not clear it either →
    ``not_covered``. ``best_cosine`` None skips the coverage check.

    Example:
        >>> decide(0.91, Thresholds(answer=0.5))
        'answer'
        >>> decide(0.2, Thresholds(answer=0.5)), decide(0.2, Thresholds(answer=0.5), after_fallback=True)
        ('fallback', 'not_covered')
        >>> decide(0.91, Thresholds(answer=0.5, coverage=0.55), best_cosine=0.31)
        'not_covered'
    """
    if best_cosine is not None and best_cosine < thresholds.coverage:
        return "not_covered"
    if best_prob is not None and best_prob >= thresholds.answer:
        return "answer"
    return "not_covered" if after_fallback else "fallback"
