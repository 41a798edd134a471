"""The hand-written training questions (data/train/questions.jsonl) and the checks that keep them honest.

Schema, size, type mix and openings are checked everywhere; that every evidence span is found in its page,
the overlap rule and page coverage need the extracted passages (the real docs); near duplicates need the
bi-encoder.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from ragrerank.config import PROJECT_ROOT, Settings
from ragrerank.corpus import load_passages
from ragrerank.errors import RagrerankError
from ragrerank.evaluate import load_questions
from ragrerank.finetune.questions import (
    TYPES,
    TrainingQuestion,
    content_overlap,
    copied_runs,
    load_training_questions,
    opening,
    resolve,
    substantive,
    type_shares,
)
from ragrerank.types import Passage

QUESTIONS = PROJECT_ROOT / "data" / "train" / "questions.jsonl"
EVAL = PROJECT_ROOT / "data" / "eval" / "k8s_questions.jsonl"
MIN_QUESTIONS, MIN_TYPE_SHARE, MAX_OPENING_SHARE, MIN_PAGE_COVERAGE = 6000, 0.12, 0.04, 0.90
NEAR_DUPLICATE = 0.92  # bi-encoder cosine at which two questions ask the same thing in nearly the same words


@cache
def questions() -> tuple[TrainingQuestion, ...]:
    return load_training_questions(QUESTIONS)


@pytest.fixture(scope="module")
def resolution(settings: Settings):
    return resolve(questions(), load_passages(settings.passages_path))


def test_the_set_is_large_and_mixes_every_style():
    assert len(questions()) >= MIN_QUESTIONS
    shares = type_shares(questions())
    assert set(shares) == set(TYPES) and min(shares.values()) >= MIN_TYPE_SHARE, shares


def test_no_opening_is_a_template():
    top, count = Counter(opening(question.query) for question in questions()).most_common(1)[0]
    assert count / len(questions()) <= MAX_OPENING_SHARE, f"{top!r} opens {count} questions"


def test_no_exact_duplicate_inside_the_set_or_of_an_evaluation_question():
    seen = Counter(" ".join(question.query.lower().split()) for question in questions())
    assert [query for query, count in seen.items() if count > 1] == []
    evaluation = {" ".join(question.query.lower().split()) for question in load_questions(EVAL)}
    assert set(seen) & evaluation == set()


@pytest.mark.slow
def test_every_evidence_span_is_found_in_its_page(resolution):
    assert [(q.line, q.path, q.evidence[:60]) for q in resolution.unresolved] == []


@pytest.mark.slow
def test_questions_do_not_copy_their_passage(resolution):
    copied = [(q.line, runs[0]) for q, passage in resolution.resolved if (runs := copied_runs(q.query, passage.text))]
    assert copied == []


@pytest.mark.slow
def test_the_questions_cover_nearly_every_page_with_substantive_passages(settings: Settings, resolution):
    pages = {passage.path for passage in load_passages(settings.passages_path) if substantive(passage)}
    covered = {question.path for question, _ in resolution.resolved} & pages
    assert len(covered) / len(pages) >= MIN_PAGE_COVERAGE, f"{len(covered)} of {len(pages)} pages"


@pytest.mark.slow
def test_nearly_every_passage_has_a_question_in_the_users_own_words(resolution):
    by_passage: dict[str, list[float]] = {}
    for question, passage in resolution.resolved:
        by_passage.setdefault(passage.id, []).append(content_overlap(question.query, passage.text))
    with_gap = sum(min(overlaps) <= 0.5 for overlaps in by_passage.values())
    assert with_gap / len(by_passage) >= 0.95, f"{with_gap} of {len(by_passage)} passages"


@pytest.mark.slow
def test_no_near_duplicate_inside_the_set_or_of_an_evaluation_question(bi_encoder):
    from ragrerank.retrieval import embed_texts

    texts = [question.query for question in questions()]
    vectors = embed_texts(bi_encoder, texts, progress=False)
    evaluation = embed_texts(bi_encoder, [question.query for question in load_questions(EVAL)], progress=False)
    against_eval = np.argwhere(vectors @ evaluation.T >= NEAR_DUPLICATE)
    assert [texts[row] for row, _ in against_eval] == []
    similar = vectors @ vectors.T
    np.fill_diagonal(similar, 0.0)
    pairs = np.argwhere(np.triu(similar) >= NEAR_DUPLICATE)
    assert [(texts[a], texts[b]) for a, b in pairs] == []


def test_a_bad_line_is_named_with_its_file_and_number(tmp_path: Path):
    good = {"query": "drain a node before patching it", "type": "howto", "path": "tasks/a.md", "heading": [],
            "evidence": "one two three four five six seven eight"}
    for bad, message in [
        ({**good, "evidence": ""}, r"q\.jsonl:2 lacks evidence"),
        ({**good, "type": "faq"}, r"q\.jsonl:2 has type 'faq'"),
        ({**good, "evidence": "too short"}, r"q\.jsonl:2 has 2 words of evidence"),
        ({**good, "heading": "Drain"}, r"q\.jsonl:2 has heading 'Drain'"),
    ]:
        path = tmp_path / "q.jsonl"
        path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
        with pytest.raises(RagrerankError, match=message):
            load_training_questions(path)


def test_evidence_resolves_to_the_passage_under_the_questions_heading():
    passages = [
        Passage("p1", "tasks/a.md", "A", (), "", "A\n\nshared words one two three four five six seven", 9),
        Passage("p2", "tasks/a.md", "A", ("Drain",), "", "A > Drain\n\nshared words one two three four five six seven", 9),
    ]
    question = TrainingQuestion("q", "howto", "tasks/a.md", ("Drain",), "shared words one two\n three four five six")
    moved = TrainingQuestion("q", "howto", "tasks/b.md", (), "shared words one two three four five six")
    resolution = resolve([question, moved], passages)
    assert [passage.id for _, passage in resolution.resolved] == ["p2"]
    assert resolution.unresolved == (moved,) and resolution.unresolved_share == 0.5


def test_the_overlap_rule_allows_names_and_counts_function_words():
    passage = "To empty a node, run `kubectl drain` with --ignore-daemonsets before the maintenance window."
    assert copied_runs("empty a node, run it before maintenance", passage) == ["empty a node run"]
    assert copied_runs("kubectl drain with --ignore-daemonsets before patching", passage) == []
    assert content_overlap("move everything off a machine before patching", passage) < 0.5
