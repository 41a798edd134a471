"""The relevance decision: answer, fall back to keyword search, or say the docs do not cover it.

Two signals, each used for what the data says it does well (measured with `ragrerank eval`
and `ragrerank.evaluate.calibrate_threshold` on the calibration half of
data/eval/k8s_questions.jsonl, reported on the other half):

* coverage — the bi-encoder's best cosine over the candidates separates in-scope from
  out-of-scope questions well (ROC AUC 0.89 on the project's questions, 0.94 on the dev
  set). The threshold is the highest that still answers 90% of the calibration half's
  in-scope questions (refusing a covered question costs a docs assistant more than
  answering an uncovered one with citations): 0.519, which on the held-out half answered
  86% of in-scope questions and refused 73% of out-of-scope ones (dev set: 79% and 93%);
* answerability — the project's cross-encoder probability of the best reranked passage. For
  the model trained on hand-written questions it separates in-scope from out-of-scope questions
  well too (AUC 0.905 on the test half; 0.73 for the earlier model): its threshold 0.46 has the
  best balanced accuracy on the calibration half, and on the test half answered 92% of in-scope
  questions and refused 67% of out-of-scope ones (experiments/written_questions/ship.py records
  it in the model's evaluation.json). Under it the pipeline falls back to keyword search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ragrerank.errors import RagrerankError

Decision = Literal["answer", "fallback", "not_covered"]


@dataclass(frozen=True)
class Thresholds:
    """Defaults calibrated on data (see the module docstring); recalibrate for another model."""

    answer: float = 0.46  # cross-encoder probability the best passage needs
    coverage: float = 0.519  # best bi-encoder cosine below which the docs are taken not to cover the question

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
