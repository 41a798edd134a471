"""Retrieve → rerank → decide → answer with citations, or say the docs do not cover it.

The answer is extractive by default: verbatim spans of the best reranked passages, each after
its citation marker, so it cannot say what the docs do not. An LLM, when one is passed, writes
an answer from the same passages; it is shown only when the grounding check finds every name
it gives in those passages, and the extractive answer is shown otherwise.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Union

from ragrerank.answer.decision import Decision, Thresholds, decide
from ragrerank.answer.extractive import ExtractiveSettings, Span, SpanScorer, extract_answer
from ragrerank.answer.grounding import GroundingCheck, check_grounding
from ragrerank.answer.questions import gives_orders, question_notes
from ragrerank.errors import RagrerankError
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
NO_EXTRACT_MESSAGE = "The best passages hold nothing to quote (only tables, links or headings): read the cited pages."
MAX_QUESTION_CHARS = 500  # ~110 tokens: inside the bi-encoder's 256-token window and the cross-encoder's query half

AnswerSource = Literal["extractive", "generated", "none"]
LLMSource = Union["LLM", Callable[[], "LLM"]]  # a loaded model, or a loader called only when generation is due


@dataclass(frozen=True)
class AnswerSettings:
    """Knobs of the answering step; thresholds should come from calibration on data."""

    candidates: int = 30  # first-stage candidates reranked: the depth the model and its fusion weight were validated at
    context_passages: int = 3  # best passages the answer may quote or the LLM reads
    max_new_tokens: int = 160
    generate: bool = False  # let the LLM write the answer (checked before it is shown); else extractive
    thresholds: Thresholds = field(default_factory=Thresholds)
    extractive: ExtractiveSettings = field(default_factory=ExtractiveSettings)


@dataclass(frozen=True)
class Citation:
    title: str
    url: str
    path: str


@dataclass(frozen=True)
class Answer:
    """What `answer()` decided and why: the text, its sources, every candidate's scores, timings.

    ``candidates`` are the reranked candidates of the stage that decided (the keyword fallback's, when it
    ran). ``source`` says who wrote ``answer``; ``generated`` keeps the LLM's text even when the grounding
    check refused it, and ``notes`` what the reader should know (a cut question, a failed check).
    """

    question: str
    decision: Decision
    answer: str
    citations: tuple[Citation, ...]
    candidates: tuple[Hit, ...]
    timings: dict[str, float]
    source: AnswerSource = "none"
    spans: tuple[Span, ...] = ()
    generated: str = ""
    grounding: GroundingCheck | None = None
    notes: tuple[str, ...] = ()
    generation_error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "decision": self.decision,
            "answer": self.answer,
            "source": self.source,
            "citations": [citation.__dict__ for citation in self.citations],
            "generated": self.generated,
            "grounding": None if self.grounding is None else {"passed": self.grounding.passed, "invented": list(self.grounding.invented)},
            "notes": list(self.notes),
            "generation_error": self.generation_error,
            "candidates": [hit.to_json() for hit in self.candidates],
            "timings": {stage: round(seconds, 3) for stage, seconds in self.timings.items()},
        }


def answer(
    question: str,
    first_stage: Retriever,
    fallback: Retriever,
    reranker: Reranker,
    llm: LLMSource | None = None,
    settings: AnswerSettings = AnswerSettings(),
    on_token: Callable[[str], None] | None = None,
    score_spans: SpanScorer | None = None,
) -> Answer:
    """Answer ``question`` from the docs, or decide that they do not cover it.

    Args:
        question: the user's question (cut to its first 500 characters, with a note saying so).
        first_stage: the retriever whose candidates are reranked first (hybrid by default).
        fallback: the keyword retriever tried when the first stage's best is not relevant enough.
        reranker: scores every candidate; its probability drives the decision.
        llm: writes the answer when ``settings.generate`` (a model, or a loader called only when there is
            something to answer).
        settings: candidate depth, context size, thresholds and the extractive answer's length.
        on_token: called with each generated piece of text (the CLI streams the draft to the terminal).
        score_spans: scores candidate answer spans; by default `reranker.score_spans` (its span scorer).
    """
    if settings.generate and llm is None:
        raise RagrerankError("settings.generate is set but no LLM was passed: pass llm= (a model or a loader)")
    question, notes = _clean_question(question)
    timings: dict[str, float] = {}
    reranked = _retrieve_and_rerank(question, first_stage, reranker, settings.candidates, timings, "")
    best_cosine = _best_cosine(reranked)
    decision = decide(_best_prob(reranked), settings.thresholds, best_cosine=best_cosine)
    if decision == "fallback":
        reranked = _retrieve_and_rerank(question, fallback, reranker, settings.candidates, timings, "fallback_")
        # "fallback" now means: answered from the keyword search's candidates.
        if decide(_best_prob(reranked), settings.thresholds, after_fallback=True, best_cosine=best_cosine) == "not_covered":
            decision = "not_covered"
    context = reranked[: settings.context_passages]
    if decision == "not_covered":
        return Answer(question, decision, NOT_COVERED_MESSAGE, _citations(context), tuple(reranked), timings, notes=notes)
    passages = [hit.passage for hit in context]
    started = time.perf_counter()
    extractive = extract_answer(question, passages, score_spans or reranker.score_spans, settings.extractive)
    timings["extract"] = time.perf_counter() - started
    result = Answer(
        question, decision, extractive.text or NO_EXTRACT_MESSAGE, _citations(context), tuple(reranked), timings,
        source="extractive" if extractive.text else "none", spans=extractive.spans, notes=notes,
    )
    return _generate_checked(result, llm, on_token) if settings.generate and llm is not None else result


def _generate_checked(result: Answer, llm: LLMSource, on_token: Callable[[str], None] | None) -> Answer:
    """Let the LLM answer from the same passages; keep its text only if every name in it is grounded."""
    if gives_orders(result.question):
        return result  # a question that gives the assistant orders is answered from the docs' own words only
    timings = dict(result.timings)
    try:
        started = time.perf_counter()
        model = llm if hasattr(llm, "generate") else llm()
        timings["load_llm"] = time.perf_counter() - started
    except RagrerankError as error:
        return replace(result, timings=timings, generation_error=str(error))
    context = result.candidates[: len(result.citations)]
    started = time.perf_counter()
    generated = model.generate(result.question, context, on_token)
    timings["generate"] = time.perf_counter() - started
    check = check_grounding(generated, [hit.passage for hit in context])
    if check.passed:
        return replace(result, answer=generated, source="generated", generated=generated, grounding=check, timings=timings)
    notes = (*result.notes, f"{check.summary()}: the extractive answer is shown instead")
    return replace(result, generated=generated, grounding=check, timings=timings, notes=notes)


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


def _clean_question(question: str) -> tuple[str, tuple[str, ...]]:
    """The question with its whitespace collapsed and cut to the models' window, and notes on it."""
    text = re.sub(r"\s+", " ", check_query(question)).strip()
    notes = list(question_notes(text))
    if len(text) > MAX_QUESTION_CHARS:
        notes.append(f"the question has {len(text):,} characters: only its first {MAX_QUESTION_CHARS} are used (the models' window)")
        text = text[:MAX_QUESTION_CHARS]
    return text, tuple(notes)
