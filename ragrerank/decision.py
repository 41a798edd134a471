"""The relevance decision on calibrated cross-encoder scores: answer, fall back, or say not covered."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ragrerank.errors import RagrerankError

Decision = Literal["answer", "fallback", "not_covered"]


@dataclass(frozen=True)
class Thresholds:
    """Probability the best reranked passage must reach before the LLM may answer from it."""

    answer: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.answer <= 1.0:
            raise RagrerankError(f"answer threshold is a probability in [0, 1], got {self.answer}")


def decide(best_prob: float | None, thresholds: Thresholds, after_fallback: bool = False) -> Decision:
    """Decide what to do with the best candidate's probability.

    The first stage's best passage clears the threshold → ``answer``. It does not →
    ``fallback`` (search again by keywords and rerank those). The fallback's best does
    not clear it either, or nothing was found → ``not_covered``: no LLM call.

    Example:
        >>> decide(0.91, Thresholds(answer=0.5))
        'answer'
        >>> decide(0.2, Thresholds(answer=0.5)), decide(0.2, Thresholds(answer=0.5), after_fallback=True)
        ('fallback', 'not_covered')
    """
    if best_prob is not None and best_prob >= thresholds.answer:
        return "answer"
    return "not_covered" if after_fallback else "fallback"
