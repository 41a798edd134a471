"""Answering: decide whether the reranked evidence answers the question, then answer with citations.

``decision`` turns the best scores into answer / fallback / not covered, ``llm`` writes an answer
from numbered passages, and ``pipeline.answer`` runs retrieve → rerank → decide → answer.
"""

from ragrerank.answer.decision import Decision, Thresholds, decide
from ragrerank.answer.llm import LLM
from ragrerank.answer.pipeline import Answer, AnswerSettings, Citation, answer

__all__ = ["LLM", "Answer", "AnswerSettings", "Citation", "Decision", "Thresholds", "answer", "decide"]
