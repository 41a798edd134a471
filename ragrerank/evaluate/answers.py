"""Measure the answers, not the rankings: the decision, the evidence in the answer, the grounding of generated ones.

Each question goes through ``answer()`` as a user's would. In scope, a question should be
answered and its answer should quote one of its evidence strings (normalised as the rank
metrics' ``evidence@3`` is); out of scope, it should be refused. Whether the cited passages hold
an evidence string at all is counted beside it: the most the choice of spans could reach, so a
miss is told apart as the reranker's (evidence not read) or the extract's (read, not quoted).
Every extractive answer is checked to be verbatim text of the passages it cites, and with an LLM
the share of generated answers that pass the grounding check is counted, as is any failed one
shown as the answer (the pipeline must make that zero).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ragrerank.corpus.markdown import strip_marks
from ragrerank.evaluate.questions import Question

if TYPE_CHECKING:
    from ragrerank.answer import Answer, AnswerSettings
    from ragrerank.answer.pipeline import LLMSource
    from ragrerank.rerank import Reranker
    from ragrerank.retrieval import Retriever

_RUN_START = re.compile(r"(?:^|\n\n)\[(\d+)\] ")


@dataclass(frozen=True, eq=False)
class AnswerReport:
    """Per-question outcomes of ``evaluate_answers`` and the tables the targets are read from.

    ``per_question`` columns: ``id``, ``type``, ``in_scope``, ``decision``, ``source``, ``answered``,
    ``evidence_in_answer`` (NaN unless an answered in-scope question with evidence strings),
    ``evidence_in_context`` (whether its cited passages hold one; NaN where the former is),
    ``verbatim`` (every run of the extractive answer is text of the passage it cites),
    ``grounded`` (the generated answer passed the check; NaN without generation),
    ``shown_ungrounded`` and ``seconds``.
    """

    source: str
    per_question: pd.DataFrame
    answers: dict[str, Answer]

    def summary(self) -> dict[str, Any]:
        frame = self.per_question
        scoped, ood = frame[frame["in_scope"]], frame[~frame["in_scope"]]
        generated = frame["grounded"].dropna()
        return {
            "questions": self.source,
            "in_scope": len(scoped),
            "out_of_scope": len(ood),
            "answered_in_scope": _share(scoped["answered"]),
            "refused_ood": _share(~ood["answered"]) if len(ood) else np.nan,
            "evidence_in_answer": _share(scoped["evidence_in_answer"].dropna()),
            "evidence_in_context": _share(scoped["evidence_in_context"].dropna()),
            "evidence_scored": int(scoped["evidence_in_answer"].notna().sum()),
            "verbatim_answers": int(frame["verbatim"].sum()),
            "non_verbatim_answers": int(((frame["source"] == "extractive") & ~frame["verbatim"]).sum()),
            "generated": len(generated),
            "grounding_pass_rate": _share(generated) if len(generated) else np.nan,
            "shown_ungrounded": int(frame["shown_ungrounded"].sum()),
            "median_seconds": round(float(frame["seconds"].median()), 3),
        }

    def by_type(self) -> pd.DataFrame:
        """Answered share and evidence-in-answer rate per question type (in-scope questions)."""
        scoped = self.per_question[self.per_question["in_scope"]]
        grouped = scoped.groupby("type", sort=True)
        return pd.DataFrame(
            {
                "n": grouped.size(),
                "answered": grouped["answered"].mean().round(3),
                "evidence_scored": grouped["evidence_in_answer"].count(),
                "evidence_in_answer": grouped["evidence_in_answer"].mean().round(3),
                "evidence_in_context": grouped["evidence_in_context"].mean().round(3),
            }
        )

    def to_json(self) -> dict[str, Any]:
        summary = {key: (None if isinstance(value, float) and np.isnan(value) else value) for key, value in self.summary().items()}
        return {"summary": summary, "by_type": self.by_type().reset_index().to_dict(orient="records")}


def evaluate_answers(
    questions: Sequence[Question],
    first_stage: Retriever,
    fallback: Retriever,
    reranker: Reranker,
    settings: AnswerSettings,
    llm: LLMSource | None = None,
    source: str = "",
    progress: bool = False,
) -> AnswerReport:
    """Answer every question with ``answer()`` and score what a reader would see."""
    from ragrerank.answer import answer

    rows, answers = [], {}
    for question in tqdm(questions, desc="answers", disable=not progress):
        result = answer(question.query, first_stage, fallback, reranker, llm, settings)
        answers[question.id] = result
        rows.append(_outcome(question, result))
    return AnswerReport(source, pd.DataFrame(rows), answers)


def format_answer_report(report: AnswerReport) -> str:
    """The summary lines and the per-type table, as ``ragrerank eval --answers`` prints them."""
    summary = report.summary()
    lines = [f"{report.source or 'questions'}: {summary['in_scope']} in scope, {summary['out_of_scope']} out of scope"]
    lines += [f"  {name:<22} {_fmt(value)}" for name, value in summary.items() if name not in ("questions", "in_scope", "out_of_scope")]
    return "\n".join(lines) + "\n" + report.by_type().to_string(na_rep="-")


def evidence_in_answer(question: Question, text: str) -> bool:
    """Whether the answer text quotes one of the question's evidence strings (markdown marks and spacing ignored)."""
    answer = strip_marks(text)
    return any(strip_marks(quote) in answer for quote in question.evidence)


def evidence_in_context(question: Question, result: Answer) -> bool:
    """Whether one of the passages ``result`` cites holds an evidence string: the most its extract could quote."""
    return any(evidence_in_answer(question, text) for text in _cited_texts(result))


def is_verbatim(result: Answer) -> bool:
    """Whether every run of an extractive answer, after its [n] marker, is text of passage n.

    Generated and not-covered answers are not extracts, so this is False for them.
    """
    if result.source != "extractive" or not result.answer:
        return False
    passages = _cited_texts(result)
    starts = list(_RUN_START.finditer(result.answer))
    if not starts or starts[0].start() != 0:
        return False
    for match, following in zip(starts, [*starts[1:], None]):
        number = int(match.group(1))
        run = result.answer[match.end() : following.start() if following else len(result.answer)]
        if not 1 <= number <= len(passages) or run not in passages[number - 1]:
            return False
    return True


def _cited_texts(result: Answer) -> list[str]:
    """The texts of the passages ``result`` cites, in citation order ([1] first)."""
    return [hit.passage.text for hit in result.candidates[: len(result.citations)]]


def _outcome(question: Question, result: Answer) -> dict[str, Any]:
    answered = result.decision != "not_covered"
    scored = answered and question.in_scope and bool(question.evidence)
    return {
        "id": question.id,
        "type": question.type,
        "in_scope": question.in_scope,
        "decision": result.decision,
        "source": result.source,
        "answered": answered,
        "evidence_in_answer": float(evidence_in_answer(question, result.answer)) if scored else np.nan,
        "evidence_in_context": float(evidence_in_context(question, result)) if scored else np.nan,
        "verbatim": is_verbatim(result),
        "grounded": np.nan if result.grounding is None else float(result.grounding.passed),
        "shown_ungrounded": result.source == "generated" and not (result.grounding and result.grounding.passed),
        "seconds": sum(result.timings.values()),
    }


def _share(values: pd.Series) -> float:
    return round(float(values.astype(float).mean()), 3) if len(values) else np.nan


def _fmt(value: Any) -> str:
    return "-" if isinstance(value, float) and np.isnan(value) else str(value)
