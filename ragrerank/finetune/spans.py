"""The span scorer's training set: each written question's evidence span among the other spans it competes with.

An extractive answer picks sentences, list items and code blocks out of the best reranked passages.
The passage reranker was trained to tell pages apart, not to find the sentence inside a page that
answers: most spans of the right passage look as relevant to it as the answering one. The hand-written
questions of ``data/train`` quote that answering span, so each gives a listwise example: the span that
holds the evidence is the positive, the other spans of its passage (the hard negatives) and spans of the
passages retrieved with it from other pages are the negatives. Spans are cut and read exactly as the
answering step cuts and reads them (``passage_spans``, ``span_input``), and each span travels as a
``Passage`` whose ``path`` names the span, so the reranker's own training loop and validation serve.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ragrerank.answer.extractive import Span, passage_spans, span_input
from ragrerank.errors import RagrerankError
from ragrerank.finetune.questions import TrainingQuestion
from ragrerank.finetune.train import Budget
from ragrerank.finetune.trainset import MIN_EXAMPLES, TrainingExample, TrainingSet, ValidationQuery
from ragrerank.types import Hit, Passage

# listwise from the passage cross-encoder: 8 questions × 8 spans a step, ~6 s on 2 AVX2 cores at 128 tokens. A first
# run of 100 steps peaked at step 40 on validation (span nDCG@10 0.584 → 0.634 → 0.644 → 0.640 → 0.631 → 0.639), so a
# run is 50 steps: the learning rate decays to zero where that one peaked
SPAN_BUDGET = Budget("spans", 3600.0, 400, 7, 8, 5e-5, 128, 25, 3, 0.0, 80, 100000)


@dataclass(frozen=True)
class SpanNegatives:
    """How many negatives each question gets: spans of its own passage first, then of the passages retrieved with it."""

    same_passage: int = 4
    other_passages: int = 3
    context_passages: int = 3  # validation: the gold passage and the best passages of other pages, as an answer reads them


def evidence_spans(passage: Passage, evidence: str) -> tuple[list[Span], list[Span]]:
    """The passage's spans split into those that overlap the evidence (best overlap first) and the rest.

    The evidence is found with any whitespace between its words, as ``resolve`` matched it; a passage
    that does not hold it gives no positive.
    """
    spans = passage_spans(passage)
    found = re.search(r"\s+".join(map(re.escape, evidence.split())), passage.text)
    if found is None:
        return [], spans
    overlap = {span: min(span.end, found.end()) - max(span.start, found.start()) for span in spans}
    positives = sorted((span for span in spans if overlap[span] > 0), key=lambda span: -overlap[span])
    return positives, [span for span in spans if overlap[span] <= 0]


def span_passage(span: Span, passages: Sequence[Passage]) -> Passage:
    """A span as the scorer reads it, carried in a ``Passage`` whose id and path name the span."""
    source = passages[span.source]
    text = span_input(span, passages)
    return replace(source, id=f"{source.id}@{span.start}", path=f"{source.path}@{span.start}", text=text, words=len(text.split()))


def validation_context(query: ValidationQuery, gold: Passage, size: int) -> list[Passage]:
    """What a held-out question's answer is cut from: its gold passage, then the best hybrid candidates of other pages."""
    others = [hit.passage for hit in query.candidates if hit.passage.path != gold.path]
    return [gold, *others][:size]


def build_span_set(
    trainset: TrainingSet,
    resolved: Sequence[tuple[TrainingQuestion, Passage]],
    negatives: SpanNegatives = SpanNegatives(),
    seed: int = 13,
) -> TrainingSet:
    """Span examples from a written-question training set (``build_written_set``) and its resolved questions.

    Training: the span holding the evidence against ``same_passage`` other spans of its passage and
    ``other_passages`` spans of the mined negatives (filled from either side when one runs short).
    Validation keeps the page-disjoint split: each held-out question's candidates are every span of its
    gold passage and of the first ``context_passages - 1`` hybrid candidates from other pages.
    """
    gold = {question.query: (question, passage) for question, passage in resolved}
    rng = random.Random(seed)
    train = [_span_example(example, *gold[example.query], negatives, rng) for example in trainset.train]
    validation = [_span_query(query, *gold[query.query], negatives.context_passages) for query in trainset.validation]
    train, validation = [e for e in train if e is not None], [q for q in validation if q is not None]
    if len(train) < MIN_EXAMPLES or not validation:
        raise RagrerankError(
            f"{len(train)} training and {len(validation)} validation questions had their evidence in a span of "
            "their passage: check the questions' evidence against the passages (see data/train/README.md)"
        )
    return TrainingSet(tuple(train), tuple(validation))


def _span_example(
    example: TrainingExample, question: TrainingQuestion, passage: Passage, negatives: SpanNegatives, rng: random.Random
) -> TrainingExample | None:
    """The evidence span against spans of its passage and of the mined negatives; None without enough of them."""
    positives, own = evidence_spans(passage, question.evidence)
    if not positives:
        return None
    wanted = negatives.same_passage + negatives.other_passages
    others = [(n, span) for n in example.negatives for span in passage_spans(n)]
    own_drawn = rng.sample(own, min(len(own), max(negatives.same_passage, wanted - len(others))))
    other_drawn = rng.sample(others, min(len(others), wanted - len(own_drawn)))
    if len(own_drawn) + len(other_drawn) < wanted:
        return None
    drawn = [span_passage(span, [passage]) for span in own_drawn] + [span_passage(span, [n]) for n, span in other_drawn]
    return TrainingExample(example.query, example.kind, span_passage(positives[0], [passage]), tuple(drawn))


def _span_query(query: ValidationQuery, question: TrainingQuestion, passage: Passage, context_passages: int) -> ValidationQuery | None:
    """A held-out question over every span of the passages its answer would be cut from; None without a positive."""
    positives, _ = evidence_spans(passage, question.evidence)
    if not positives:
        return None
    context = validation_context(query, passage, context_passages)
    candidates = [span_passage(span, context) for source, p in enumerate(context) for span in passage_spans(p, source)]
    hits = tuple(Hit(candidate, 0.0, rank) for rank, candidate in enumerate(candidates, start=1))
    return ValidationQuery(query.query, query.kind, hits, frozenset(span_passage(span, [passage]).path for span in positives))
