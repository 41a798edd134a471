"""Retrieve → rerank → decide → answer with citations, or say the docs do not cover it.

The LLM is only called when the reranked evidence clears the threshold, and it only
sees the passages it must cite, so every answer carries the pages it came from.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ragrerank.answer.decision import Decision, Thresholds, decide
from ragrerank.retrieval.base import check_query
from ragrerank.types import Hit

if TYPE_CHECKING:
    from ragrerank.answer.llm import LLM
    from ragrerank.rerank import Reranker
    from ragrerank.retrieval import Retriever

NOT_COVERED_MESSAGE = (
    "Documents were found, but none is relevant enough to answer this question. The closest pages are "
    "listed below; the documentation may need to be extended to cover it."
)
MAX_QUESTION_CHARS = 2000


@dataclass(frozen=True)
class AnswerSettings:
    """Knobs of the answering step; thresholds should come from calibration on data."""

    candidates: int = 30  # first-stage candidates reranked: the depth the model and its fusion weight were validated at
    context_passages: int = 3  # best passages given to the LLM
    max_new_tokens: int = 160
    thresholds: Thresholds = field(default_factory=Thresholds)


@dataclass(frozen=True)
class Citation:
    title: str
    url: str
    path: str


@dataclass(frozen=True)
class Answer:
    """What `answer()` decided and why: the text, its sources, every candidate's scores, timings.

    ``candidates`` are the reranked candidates of the stage that decided (the keyword fallback's, when it ran).
    """

    question: str
    decision: Decision
    answer: str
    citations: tuple[Citation, ...]
    candidates: tuple[Hit, ...]
    timings: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "decision": self.decision,
            "answer": self.answer,
            "citations": [citation.__dict__ for citation in self.citations],
            "candidates": [hit.to_json() for hit in self.candidates],
            "timings": {stage: round(seconds, 3) for stage, seconds in self.timings.items()},
        }


def answer(
    question: str,
    first_stage: Retriever,
    fallback: Retriever,
    reranker: Reranker,
    llm: LLM | None,
    settings: AnswerSettings = AnswerSettings(),
    on_token: Callable[[str], None] | None = None,
) -> Answer:
    """Answer ``question`` from the docs, or decide that they do not cover it.

    Args:
        question: the user's question (cut to 2,000 characters).
        first_stage: the retriever whose candidates are reranked first (hybrid by default).
        fallback: the keyword retriever tried when the first stage's best is not relevant enough.
        reranker: scores every candidate; its probability drives the decision.
        llm: writes the answer; ``None`` returns the decision and citations without generating.
        settings: candidate depth, context size and thresholds.
        on_token: called with each generated piece of text (the CLI streams to the terminal).
    """
    question = _clean_question(question)
    timings: dict[str, float] = {}
    reranked = _retrieve_and_rerank(question, first_stage, reranker, settings.candidates, timings, "")
    best_cosine = _best_cosine(reranked)
    decision = decide(_best_prob(reranked), settings.thresholds, best_cosine=best_cosine)
    if decision == "fallback":
        reranked = _retrieve_and_rerank(question, fallback, reranker, settings.candidates, timings, "fallback_")
        # "fallback" now means: answered from the keyword search's candidates.
        if decide(_best_prob(reranked), settings.thresholds, after_fallback=True, best_cosine=best_cosine) == "not_covered":
            decision = "not_covered"
    if decision == "not_covered":
        closest = reranked[: settings.context_passages]
        return Answer(question, decision, NOT_COVERED_MESSAGE, _citations(closest), tuple(reranked), timings)
    context = reranked[: settings.context_passages]
    text = ""
    if llm is not None:
        started = time.perf_counter()
        text = llm.generate(question, context, on_token)
        timings["generate"] = time.perf_counter() - started
    return Answer(question, decision, text, _citations(context), tuple(reranked), timings)


def _retrieve_and_rerank(
    question: str, retriever: Retriever, reranker: Reranker, depth: int, timings: dict[str, float], prefix: str
) -> list[Hit]:
    started = time.perf_counter()
    hits = retriever.search(question, depth)
    timings[f"{prefix}retrieve"] = time.perf_counter() - started
    started = time.perf_counter()
    reranked = reranker.rerank(question, hits, top_n=None, threshold=None)
    timings[f"{prefix}rerank"] = time.perf_counter() - started
    return reranked


def _best_prob(hits: Sequence[Hit]) -> float | None:
    return hits[0].scores["ce_prob"] if hits else None


def _best_cosine(hits: Sequence[Hit]) -> float | None:
    """The bi-encoder's best cosine among the candidates; None when the first stage is not dense."""
    cosines = [hit.scores["dense_score"] for hit in hits if "dense_score" in hit.scores]
    return max(cosines) if cosines else None


def _citations(hits: Sequence[Hit]) -> tuple[Citation, ...]:
    return tuple(Citation(hit.passage.title, hit.passage.url, hit.passage.path) for hit in hits)


def _clean_question(question: str) -> str:
    return re.sub(r"\s+", " ", check_query(question)).strip()[:MAX_QUESTION_CHARS]
