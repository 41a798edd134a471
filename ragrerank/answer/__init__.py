"""Answering: decide whether the reranked evidence answers the question, then answer with citations.

``decision`` turns the best scores into answer / fallback / not covered, ``extractive`` quotes the
spans of the best passages that answer the question (the default answer), ``llm`` writes one from
numbered passages when asked, ``grounding`` checks that every name it gives is in them,
``questions`` notes what is odd about a question, and ``pipeline.answer`` runs it all.
"""

from ragrerank.answer.decision import Decision, Thresholds, decide
from ragrerank.answer.extractive import ExtractiveAnswer, ExtractiveSettings, Span, extract_answer, passage_spans, scored_spans, span_input
from ragrerank.answer.grounding import GroundingCheck, answer_names, check_grounding
from ragrerank.answer.llm import LLM
from ragrerank.answer.pipeline import Answer, AnswerSettings, Citation, answer

__all__ = [
    "LLM",
    "Answer",
    "AnswerSettings",
    "Citation",
    "Decision",
    "ExtractiveAnswer",
    "ExtractiveSettings",
    "GroundingCheck",
    "Span",
    "Thresholds",
    "answer",
    "answer_names",
    "check_grounding",
    "decide",
    "extract_answer",
    "passage_spans",
    "scored_spans",
    "span_input",
]
