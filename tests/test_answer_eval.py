"""Scoring answers as a reader sees them: evidence in the answer, verbatim extracts, the summary's counts."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ragrerank.answer import Answer, Citation
from ragrerank.evaluate.answers import (
    AnswerReport,
    evidence_in_answer,
    evidence_in_context,
    is_verbatim,
)
from ragrerank.evaluate.questions import Question
from ragrerank.types import Hit, Passage

PASSAGES = [
    Passage("p1", "a.md", "A", ("A",), "u1", "A\n\nRun `kubectl drain` first. Then wait.", 6),
    Passage("p2", "b.md", "B", ("B",), "u2", "B\n\nA CronJob sets `.spec.timeZone`.", 5),
]
HITS = tuple(Hit(p, 1.0, rank, {}) for rank, p in enumerate(PASSAGES, start=1))
CITES = tuple(Citation(p.title, p.url, p.path) for p in PASSAGES)


def extract(text: str) -> Answer:
    return Answer("q", "answer", text, CITES, HITS, {}, source="extractive")


def test_an_extract_is_verbatim_only_when_each_run_is_text_of_the_passage_it_cites():
    assert is_verbatim(extract("[1] Run `kubectl drain` first. Then wait.\n\n[2] A CronJob sets `.spec.timeZone`."))
    assert not is_verbatim(extract("[2] Run `kubectl drain` first."))  # cited the wrong passage
    assert not is_verbatim(extract("[1] Run `kubectl drain --force` first."))  # words the passage does not have
    assert not is_verbatim(extract("Run `kubectl drain` first."))  # no marker
    assert not is_verbatim(extract("[3] Then wait."))  # no third passage


def test_evidence_matches_across_markdown_marks_and_spacing():
    question = Question("q1", "q", "howto", ("a.md",), ("Run kubectl drain first.",))
    assert evidence_in_answer(question, "[1] Run `kubectl   drain` first. Then wait.")
    assert not evidence_in_answer(question, "[1] Then wait.")


def test_evidence_in_context_reads_only_the_cited_passages():
    question = Question("q1", "q", "howto", ("b.md",), ("A CronJob sets .spec.timeZone.",))
    answered = extract("[1] Then wait.")
    assert evidence_in_context(question, answered) and not evidence_in_answer(question, answered.answer)
    first_only = Answer("q", "answer", "[1] Then wait.", CITES[:1], HITS, {}, source="extractive")
    assert not evidence_in_context(question, first_only)  # the second passage was a candidate, not cited


def test_summary_scores_evidence_only_for_answered_in_scope_questions_with_evidence():
    frame = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "type": ["howto", "howto", "config", "ood"],
            "in_scope": [True, True, True, False],
            "decision": ["answer", "not_covered", "answer", "not_covered"],
            "source": ["extractive", "none", "extractive", "none"],
            "answered": [True, False, True, False],
            "evidence_in_answer": [1.0, np.nan, 0.0, np.nan],
            "evidence_in_context": [1.0, np.nan, 1.0, np.nan],
            "verbatim": [True, False, True, False],
            "grounded": [np.nan] * 4,
            "shown_ungrounded": [False] * 4,
            "seconds": [1.0, 2.0, 3.0, 4.0],
        }
    )
    summary = AnswerReport("toy", frame, {}).summary()
    assert summary["answered_in_scope"] == 0.667 and summary["refused_ood"] == 1.0
    assert summary["evidence_in_answer"] == 0.5 and summary["evidence_scored"] == 2
    assert summary["evidence_in_context"] == 1.0
    assert summary["non_verbatim_answers"] == 0 and np.isnan(summary["grounding_pass_rate"])
