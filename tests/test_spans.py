"""The span scorer's training set: the evidence span is the positive, read as the answering step reads spans."""

from __future__ import annotations

import pytest

from ragrerank.answer import passage_spans, span_input
from ragrerank.errors import RagrerankError
from ragrerank.finetune import TrainingExample, TrainingSet, ValidationQuery
from ragrerank.finetune.questions import TrainingQuestion
from ragrerank.finetune.spans import SpanNegatives, build_span_set, evidence_spans, validation_context
from ragrerank.types import Hit, Passage

DRAIN = (
    "Safely Drain a Node > Use kubectl drain\n\n"
    "Before maintenance you should move the workloads away. You can use kubectl drain to\n"
    "safely evict all of your pods from a node. Safe evictions let the pod's containers\n"
    "gracefully terminate. The drain honours PodDisruptionBudgets. It also cordons the node."
)
EVIDENCE = "You can use kubectl drain to safely evict all of your pods from a node."


def passage(number: int, text: str, path: str | None = None) -> Passage:
    path = path or f"tasks/page-{number}.md"
    return Passage(f"p{number}", path, f"Page {number}", ("Page",), f"https://kubernetes.io/docs/p{number}/", text, len(text.split()))


def other(number: int) -> Passage:
    sentences = " ".join(f"Sentence {i} of page {number} says something else." for i in range(3))
    return passage(number, f"Page {number} > Section\n\n{sentences}")


GOLD = passage(1, DRAIN)


def test_evidence_span_is_found_across_line_breaks_and_kept_out_of_the_rest():
    positives, rest = evidence_spans(GOLD, EVIDENCE)
    assert [span.text([GOLD]) for span in positives] == [EVIDENCE.replace("to safely", "to\nsafely")]
    assert len(rest) == len(passage_spans(GOLD)) - 1
    assert all(span not in positives for span in rest)


def test_evidence_over_two_sentences_marks_both_best_overlap_first():
    evidence = "gracefully terminate. The drain honours PodDisruptionBudgets."
    positives, _ = evidence_spans(GOLD, evidence)
    assert [span.text([GOLD]) for span in positives] == ["The drain honours PodDisruptionBudgets.", "Safe evictions let the pod's containers\ngracefully terminate."]


def test_evidence_the_passage_does_not_hold_gives_no_positive():
    positives, rest = evidence_spans(GOLD, "Nodes are never drained.")
    assert positives == [] and len(rest) == len(passage_spans(GOLD))


def question(query: str, page: Passage, evidence: str = EVIDENCE) -> TrainingQuestion:
    return TrainingQuestion(query, "howto", page.path, page.heading, evidence)


def written_set(count: int) -> tuple[TrainingSet, list[tuple[TrainingQuestion, Passage]]]:
    golds = [passage(n, DRAIN, f"tasks/drain-{n}.md") for n in range(count)]
    resolved = [(question(f"how do I empty node {n} before maintenance", gold), gold) for n, gold in enumerate(golds)]
    train = tuple(TrainingExample(q.query, q.type, gold, (other(100 + n), other(200 + n))) for n, (q, gold) in enumerate(resolved[:-1]))
    held_q, held_gold = resolved[-1]
    candidates = (Hit(held_gold, 1.0, 1), Hit(other(300), 0.5, 2), Hit(other(301), 0.4, 3), Hit(other(302), 0.3, 4))
    validation = (ValidationQuery(held_q.query, "howto", candidates, frozenset({held_gold.path})),)
    return TrainingSet(train, validation), resolved


def test_training_examples_pit_the_evidence_span_against_its_passage_and_other_pages():
    trainset, resolved = written_set(10)
    spans = build_span_set(trainset, resolved, SpanNegatives(same_passage=3, other_passages=3))
    example = spans.train[0]
    gold = resolved[0][1]
    positive = evidence_spans(gold, EVIDENCE)[0][0]
    assert example.positive.text == span_input(positive, [gold])
    assert example.positive.path == f"{gold.path}@{positive.start}"
    assert len(example.negatives) == 6
    own = [n for n in example.negatives if n.path.startswith(gold.path)]
    assert len(own) == 3 and example.positive.text not in {n.text for n in example.negatives}
    assert all(n.text.startswith("Page ") and "says something else" in n.text for n in example.negatives if n not in own)


def test_a_short_passage_is_filled_from_the_other_pages():
    trainset, resolved = written_set(10)
    spans = build_span_set(trainset, resolved, SpanNegatives(same_passage=8, other_passages=2))
    assert {len(example.negatives) for example in spans.train} == {10}  # 4 other spans of the gold + 6 from other pages


def test_validation_reads_the_gold_passage_and_the_best_other_pages_as_an_answer_would():
    trainset, resolved = written_set(10)
    spans = build_span_set(trainset, resolved, SpanNegatives(context_passages=3))
    (held,) = spans.validation
    held_gold = resolved[-1][1]
    assert validation_context(trainset.validation[0], held_gold, 3) == [held_gold, other(300), other(301)]
    assert len(held.candidates) == len(passage_spans(held_gold)) + 6
    positive = evidence_spans(held_gold, EVIDENCE)[0][0]
    assert held.relevant_paths == frozenset({f"{held_gold.path}@{positive.start}"})


def test_questions_whose_evidence_moved_are_skipped_and_too_few_refused():
    trainset, resolved = written_set(10)
    moved = [(question(q.query, gold, "This sentence left the docs."), gold) for q, gold in resolved]
    with pytest.raises(RagrerankError, match="had their evidence in a span"):
        build_span_set(trainset, moved)


def test_the_shipped_span_scorer_is_the_one_its_report_and_card_describe():
    """The card is written from span_report.json, the model reads 128 tokens as trained, and the report names its data."""
    import json

    from ragrerank.finetune.spans import SPAN_BUDGET
    from ragrerank.models import SHIPPED_SPAN_SCORER

    report = json.loads((SHIPPED_SPAN_SCORER / "span_report.json").read_text(encoding="utf-8"))
    card = (SHIPPED_SPAN_SCORER / "README.md").read_text(encoding="utf-8")
    assert report["budget"]["max_length"] == SPAN_BUDGET.max_length
    assert report["questions"] == "data/train/questions.jsonl" and report["base"] == "data/models/k8s-cross-encoder"
    assert report["best_ndcg"] == pytest.approx(max(ndcg for _, ndcg in report["evaluations"]), abs=1e-4)
    for scorer, shares in report["evidence_quoted"].items():
        assert f"| {scorer} | " + " | ".join(f"{share:.1%}" for share in shares.values()) + " |" in card
    tokenizer = json.loads((SHIPPED_SPAN_SCORER / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert tokenizer["model_max_length"] == SPAN_BUDGET.max_length
