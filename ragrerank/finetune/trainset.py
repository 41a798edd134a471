"""The reranker's training set: questions, hard negatives from the retriever, a page-disjoint held-out split.

The set is built where the indexes live (CPU) and serialised, so the training itself can run on a
machine that has a GPU but no index. Negatives come from the same hybrid retriever the reranker will
rerank, restricted to OTHER pages: a passage from an answering page is never labelled irrelevant.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ragrerank.errors import RagrerankError
from ragrerank.io import atomic_write
from ragrerank.finetune.querygen import GeneratedQuery
from ragrerank.finetune.questions import TrainingQuestion
from ragrerank.types import Hit, Passage

Search = Callable[[Sequence[str], int], list[list[Hit]]]  # batch search: queries, k -> hits per query
VALIDATION_KINDS = frozenset({"title", "heading", "description", "glossary", "link"})  # user-like only
MIN_EXAMPLES = 8


@dataclass(frozen=True)
class TrainingExample:
    """A question, the passage that answers it and hard negatives from pages that do not.

    ``teacher_scores``, when present, are a teacher's relevance scores for the positive and then each
    negative (see :func:`label_with_teacher`): graded targets to distil, not only "first is relevant".
    """

    query: str
    kind: str
    positive: Passage
    negatives: tuple[Passage, ...]
    teacher_scores: tuple[float, ...] = ()


@dataclass(frozen=True)
class ValidationQuery:
    """A held-out question with the first-stage candidates the reranker will reorder."""

    query: str
    kind: str
    candidates: tuple[Hit, ...]
    relevant_paths: frozenset[str]


@dataclass(frozen=True)
class TrainingSet:
    train: tuple[TrainingExample, ...]
    validation: tuple[ValidationQuery, ...]

    def summary(self) -> dict[str, object]:
        """Counts by generator, for the model card: what the model learned from."""
        return {
            "train_queries": len(self.train),
            "validation_queries": len(self.validation),
            "train_by_kind": dict(Counter(example.kind for example in self.train).most_common()),
            "validation_by_kind": dict(Counter(query.kind for query in self.validation).most_common()),
            "negatives_per_query": max((len(example.negatives) for example in self.train), default=0),
        }


def is_validation_page(path: str, fraction: float) -> bool:
    """Page-disjoint split by a stable hash of the page path, so no page leaks across the split."""
    digest = int(hashlib.sha1(path.encode("utf-8")).hexdigest()[:8], 16)
    return digest / 0xFFFFFFFF < fraction


def build_training_set(
    queries: Sequence[GeneratedQuery],
    search: Search,
    negatives: int,
    depth: int = 30,
    validation_fraction: float = 0.1,
) -> TrainingSet:
    """Mine hard negatives for each query and hold out the questions of a page-disjoint set of pages.

    A query is kept only when the retriever finds one of its answering pages in its top ``depth``
    (consistency filtering): a generated question the retriever cannot connect to its own page is
    usually noise, and reranking cannot help a question whose answer is not among the candidates.

    Example:
        >>> trainset = build_training_set(queries, retriever.search_many, negatives=7)
        >>> trainset.summary()["train_queries"]
        6120
    """
    if not queries:
        raise RagrerankError("no training questions were generated: is the passages file empty?")
    results = search([query.text for query in queries], depth)
    train, validation = [], []
    for query, hits in zip(queries, results, strict=True):
        if not any(hit.passage.path in query.relevant_paths for hit in hits):
            continue
        if is_validation_page(query.positive.path, validation_fraction):
            if query.kind in VALIDATION_KINDS:
                validation.append(ValidationQuery(query.text, query.kind, tuple(hits), query.relevant_paths))
            continue
        hard = tuple(hit.passage for hit in hits if hit.passage.path not in query.relevant_paths)[:negatives]
        if len(hard) == negatives:
            train.append(TrainingExample(query.text, query.kind, query.positive, hard))
    if len(train) < MIN_EXAMPLES or not validation:
        raise RagrerankError(
            f"only {len(train)} training and {len(validation)} validation questions survived filtering "
            f"(of {len(queries)} generated): index more pages or pass a corpus with more than a few documents"
        )
    return TrainingSet(tuple(train), tuple(validation))


def build_written_set(
    resolved: Sequence[tuple[TrainingQuestion, Passage]],
    search: Search,
    pool: Sequence[Passage],
    hard_negatives: int,
    random_negatives: int,
    depth: int = 30,
    validation_fraction: float = 0.1,
    seed: int = 13,
) -> TrainingSet:
    """Hand-written questions with their gold passages → training examples and a page-disjoint validation split.

    Negatives come from other pages only: the hybrid retriever's top ``depth`` (hard: relevant-looking
    passages the reranker must learn to put below the answer) mixed with ``random_negatives`` drawn from
    ``pool`` (easy ones that keep the scores calibrated). No consistency filter: a question the retriever
    misses is still a true (question, answer) pair. Validation questions keep their hybrid candidates, as
    the reranker will see them.
    """
    if not resolved:
        raise RagrerankError("no training question was resolved to a passage: check the questions file and the passages")
    rng = random.Random(seed)
    results = search([question.query for question, _ in resolved], depth)
    train, validation = [], []
    for (question, positive), hits in zip(resolved, results, strict=True):
        if is_validation_page(question.path, validation_fraction):
            validation.append(ValidationQuery(question.query, question.type, tuple(hits), frozenset({question.path})))
            continue
        hard = [hit.passage for hit in hits if hit.passage.path != question.path][:hard_negatives]
        easy: list[Passage] = []
        for _ in range(100 * random_negatives):  # bounded: a pool of one page has no negative to give
            if len(easy) == random_negatives:
                break
            candidate = pool[rng.randrange(len(pool))]
            if candidate.path != question.path and candidate not in hard and candidate not in easy:
                easy.append(candidate)
        if len(easy) < random_negatives:
            raise RagrerankError(
                f"found {len(easy)} of {random_negatives} random negatives outside {question.path}: "
                "the passages come from too few pages for random negatives; use fewer, or more pages"
            )
        train.append(TrainingExample(question.query, question.type, positive, tuple(hard + easy)))
    if len(train) < MIN_EXAMPLES or not validation:
        raise RagrerankError(
            f"{len(train)} training and {len(validation)} validation questions from {len(resolved)}: "
            "a page-disjoint split needs questions on more pages"
        )
    return TrainingSet(tuple(train), tuple(validation))


def question_set(path: Path, search: Search, depth: int = 30) -> tuple[ValidationQuery, ...]:
    """The project's own in-scope questions with their first-stage candidates, as a validation set.

    Synthetic questions share words with their pages, so they reward a reranker that merely matches
    words; the hand-written questions (``data/eval/k8s_questions.jsonl``) look like real ones and are
    the better judge of checkpoints and of the fusion weight.
    """
    from ragrerank.evaluate.questions import load_questions

    questions = [question for question in load_questions(path) if question.in_scope]
    results = search([question.query for question in questions], depth)
    return tuple(
        ValidationQuery(question.query, question.type, tuple(hits), frozenset(question.gold_files))
        for question, hits in zip(questions, results, strict=True)
    )


def label_with_teacher(
    examples: Sequence[TrainingExample], score: Callable[[str, list[str]], Sequence[float]], negatives: int
) -> list[TrainingExample]:
    """Keep ``negatives`` hard negatives per example and attach the teacher's score of every passage.

    ``score(query, texts)`` is the teacher, e.g. :meth:`ragrerank.rerank.query_likelihood.QueryLikelihood.score`;
    it runs where the teacher fits (the packaged LLM does not travel to a GPU machine), the student
    then trains anywhere from the stored scores.
    """
    labelled = []
    for example in examples:
        kept = example.negatives[:negatives]
        texts = [example.positive.text, *(n.text for n in kept)]
        scores = tuple(round(float(value), 5) for value in score(example.query, texts))
        labelled.append(TrainingExample(example.query, example.kind, example.positive, kept, scores))
    return labelled


def save_training_set(trainset: TrainingSet, path: Path) -> None:
    """Write the set as gzipped JSON, each passage once, so it travels to a GPU machine compactly."""
    table: dict[str, dict[str, object]] = {}

    def ref(passage: Passage) -> str:
        # keyed by text too: an inverse-cloze positive shares its id with the full passage
        key = f"{passage.id}@{hashlib.sha1(passage.text.encode('utf-8')).hexdigest()[:8]}"
        table.setdefault(key, passage.to_json())
        return key

    record = {
        "train": [
            [e.query, e.kind, ref(e.positive), [ref(n) for n in e.negatives], list(e.teacher_scores)] for e in trainset.train
        ],
        "validation": [
            [v.query, v.kind, [[ref(h.passage), h.score] for h in v.candidates], sorted(v.relevant_paths)]
            for v in trainset.validation
        ],
    }
    record["passages"] = table
    with atomic_write(path, "wb") as raw, gzip.open(raw, "wt", encoding="utf-8") as handle:
        json.dump(record, handle, ensure_ascii=False)


def load_training_set(path: Path) -> TrainingSet:
    """Read a set written by :func:`save_training_set`."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            record = json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise RagrerankError(f"cannot read training set {path}: {error}") from None
    table = {key: Passage.from_json(value) for key, value in record["passages"].items()}
    train = tuple(
        TrainingExample(query, kind, table[positive], tuple(table[n] for n in negatives), tuple(teacher[0] if teacher else ()))
        for query, kind, positive, negatives, *teacher in record["train"]
    )
    validation = tuple(
        ValidationQuery(
            query,
            kind,
            tuple(Hit(table[key], score, rank) for rank, (key, score) in enumerate(candidates, start=1)),
            frozenset(relevant),
        )
        for query, kind, candidates, relevant in record["validation"]
    )
    return TrainingSet(train, validation)
