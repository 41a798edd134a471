"""The project's question files: the one reader, which checks every line, and evidence matching."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragrerank.corpus.markdown import strip_marks
from ragrerank.errors import RagrerankError
from ragrerank.io import numbered_jsonl
from ragrerank.types import Hit

REQUIRED_FIELDS = ("id", "query", "gold_files")
CONTEXT = 3  # passages handed to the LLM, the depth of evidence@3


@dataclass(frozen=True)
class Question:
    """One line of a questions file; out of scope exactly when it has no gold files.

    ``evidence`` quotes the gold pages where they answer it, so a ranking can be checked for the answer's text.
    """

    id: str
    query: str
    type: str
    gold_files: tuple[str, ...]
    evidence: tuple[str, ...] = ()

    @property
    def in_scope(self) -> bool:
        return bool(self.gold_files)


def load_questions(path: str | Path) -> tuple[Question, ...]:
    """Read a questions JSONL file, failing on the first bad line with its file and number.

    Each line needs ``id``, ``query`` and ``gold_files`` (``[]`` for out-of-scope
    questions); ``type`` and ``evidence`` are optional. At least one question must be
    in scope, or no rank metric could be computed.
    """
    path = Path(path)
    if not path.is_file():
        raise RagrerankError(f"questions file {path} does not exist: pass a JSONL file such as data/eval/k8s_questions.jsonl")
    questions = [_question(record, f"{path}:{number}") for number, record in numbered_jsonl(path)]
    ids = [question.id for question in questions]
    if len(set(ids)) != len(ids):
        duplicate = next(qid for qid in ids if ids.count(qid) > 1)
        raise RagrerankError(f"{path} repeats question id {duplicate!r}: give every question its own id")
    if not any(question.in_scope for question in questions):
        raise RagrerankError(
            f"{path} has no in-scope question (all {len(questions)} have empty gold_files): "
            "rank metrics need questions with gold_files"
        )
    return tuple(questions)


def load_queries(path: str | Path) -> tuple[tuple[str, str], ...]:
    """(id, query) of every line of a JSONL file, for ``ragrerank search --queries``; other fields are ignored."""
    path = Path(path)
    return tuple(_id_and_query(record, f"{path}:{number}", ("id", "query")) for number, record in numbered_jsonl(path))


def _id_and_query(record: dict[str, Any], where: str, required: Sequence[str]) -> tuple[str, str]:
    missing = [name for name in required if name not in record]
    if missing:
        needs = "id, query and gold_files ([] when out of scope)" if "gold_files" in required else "an id and a query"
        raise RagrerankError(f"{where} lacks {', '.join(missing)}: every question needs {needs}")
    qid, query = record["id"], record["query"]
    if not isinstance(qid, str) or not qid.strip():
        raise RagrerankError(f"{where} has id {qid!r}: use a non-empty string such as 'rr-001'")
    if not isinstance(query, str) or not query.strip():
        raise RagrerankError(f"{where} has query {query!r}: write the question as a non-empty string")
    return qid, query


def _question(record: dict[str, Any], where: str) -> Question:
    qid, query = _id_and_query(record, where, REQUIRED_FIELDS)
    gold = record["gold_files"]
    qtype, evidence = record.get("type", "ood" if not gold else "untyped"), record.get("evidence", [])
    for name, value in (("gold_files", gold), ("evidence", evidence)):
        if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
            raise RagrerankError(f"{where} has {name} {value!r}: use a list of non-empty strings")
    if not isinstance(qtype, str) or (qtype == "ood") == bool(gold):
        raise RagrerankError(
            f"{where} has type {qtype!r} with gold_files {gold!r}: type 'ood' goes with [] and any other type with gold files"
        )
    return Question(qid, query, qtype, tuple(gold), tuple(evidence))


def evidence_hit(question: Question, hits: Sequence[Hit], k: int = CONTEXT) -> bool:
    """Whether one of the top ``k`` passages quotes one of the question's evidence strings.

    Any passage counts, gold page or not: what matters is that the answer is in the
    context. A quote split across two passages is missed, so this is a lower bound.
    """
    texts = [strip_marks(hit.passage.text) for hit in hits[:k]]
    return any(strip_marks(quote) in text for quote in question.evidence for text in texts)
