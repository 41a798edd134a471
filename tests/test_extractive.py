"""Extractive answers: how passages are cut into spans, the length limits, and that every answer is verbatim."""

from __future__ import annotations

import numpy as np
import pytest

from ragrerank.answer import ExtractiveSettings, extract_answer, passage_spans
from ragrerank.types import Passage

DRAIN = (
    "Safely Drain a Node > Use kubectl drain\n\n"
    "First, identify the name of the node you wish to drain. You can list all of the nodes in your cluster with\n\n"
    "```shell\nkubectl get nodes\n```\n\n"
    "Next, tell Kubernetes to drain the node:\n\n"
    "```shell\nkubectl drain --ignore-daemonsets <node name>\n```\n\n"
    "The Eviction API\n\n"
    "FEATURE STATE: Kubernetes v1.27 [stable]\n\n"
    "Drains respect budgets, e.g. a PodDisruptionBudget. They evict pods one by one.\n\n"
    "* Cordon the node first.\n* Then drain it."
)


def passage(text: str, number: int = 1) -> Passage:
    return Passage(f"p{number}", f"tasks/page-{number}.md", "Page", ("Page",), f"https://kubernetes.io/docs/p{number}/", text, len(text.split()))


def texts(text: str) -> list[tuple[str, str]]:
    page = passage(text)
    return [(span.kind, span.text([page])) for span in passage_spans(page)]


def test_spans_are_sentences_items_and_code_blocks_with_their_lead_in():
    assert texts(DRAIN) == [
        ("sentence", "First, identify the name of the node you wish to drain."),
        ("code", "You can list all of the nodes in your cluster with\n\n```shell\nkubectl get nodes\n```"),
        ("code", "Next, tell Kubernetes to drain the node:\n\n```shell\nkubectl drain --ignore-daemonsets <node name>\n```"),
        ("sentence", "Drains respect budgets, e.g. a PodDisruptionBudget."),  # "e.g." does not end a sentence
        ("sentence", "They evict pods one by one."),
        ("item", "* Cordon the node first."),
        ("item", "* Then drain it."),
    ]  # the heading line, the inner heading and the FEATURE STATE line are not answers


def test_a_code_block_after_a_finished_sentence_stands_alone_and_an_unclosed_fence_ends_the_passage():
    spans = texts("T\n\nThis is done.\n\n```yaml\nkind: Job\n\nspec: {}\n")
    assert spans == [("sentence", "This is done."), ("code", "```yaml\nkind: Job\n\nspec: {}\n")]


def scorer(scores: dict[str, float]):
    """Scores each span by the first key it contains (0 for none): makes the selection rules visible."""
    return lambda question, spans: np.array([next((v for k, v in scores.items() if k in span), 0.0) for span in spans])


def test_the_best_spans_print_in_document_order_with_markers_and_one_code_block():
    pages = [passage(DRAIN, 1), passage("Other\n\nYou drain nodes with kubectl drain. Nothing else.", 2)]
    scores = scorer({"You drain nodes": 7.0, "identify the name": 9.0, "kubectl get nodes": 8.5, "--ignore-daemonsets": 8.0})
    result = extract_answer("drain", pages, scores, ExtractiveSettings(max_spans=3, max_code=1, margin=4.0))
    assert result.text == (
        "[1] First, identify the name of the node you wish to drain. You can list all of the nodes in your cluster with"
        "\n\n```shell\nkubectl get nodes\n```\n\n"
        "[2] You drain nodes with kubectl drain."
    )  # one paragraph's adjacent spans print as one run; the second code block scored 8.0, but one is the limit


def test_adjacent_sentences_of_a_paragraph_join_into_one_verbatim_run():
    page = passage("T\n\nA pod runs. A pod stops. A pod waits.")
    result = extract_answer("pod", [page], lambda q, spans: np.array([3.0, 2.0, -9.0]), ExtractiveSettings(max_spans=3, margin=4.0))
    assert result.text == "[1] A pod runs. A pod stops."  # the third is beyond the margin


def test_the_character_budget_keeps_at_least_the_best_span():
    page = passage("T\n\n" + "word " * 400 + "end.")
    result = extract_answer("word", [page], scorer({"word": 1.0}), ExtractiveSettings(max_chars=100))
    assert len(result.spans) == 1 and result.text.startswith("[1] word")


def test_passages_without_answerable_text_give_an_empty_answer():
    assert extract_answer("q", [passage("Title only")], scorer({})).text == ""


@pytest.mark.slow
def test_every_answer_to_the_project_questions_is_verbatim_text_of_the_passage_it_cites(settings):
    """Over every question of data/eval and dev: each run after [n] is a slice of passage n."""
    from ragrerank.answer import AnswerSettings, Thresholds
    from ragrerank.config import PROJECT_ROOT
    from ragrerank.evaluate.answers import evaluate_answers
    from ragrerank.evaluate.questions import load_questions
    from ragrerank.rerank import Reranker
    from ragrerank.retrieval import open_retriever

    if not (settings.index_dir / "manifest.json").is_file():
        pytest.skip(f"no index in {settings.index_dir}: run `ragrerank index` (make artifacts)")
    files = [PROJECT_ROOT / "data" / "eval" / "k8s_questions.jsonl", PROJECT_ROOT.parent / "shared" / "eval" / "dev.jsonl"]
    questions = [q for path in files if path.is_file() for q in load_questions(path)]
    hybrid = open_retriever(settings, "hybrid")
    # Every question is answered (thresholds 0, no fallback), from the hybrid top 3 so no rerank is needed:
    # the property holds for any passages, and the spans are still scored by the shipped span scorer.
    report = evaluate_answers(
        questions, hybrid, hybrid, Reranker.from_settings(settings).with_fusion(float("inf")),
        AnswerSettings(candidates=3, thresholds=Thresholds(answer=0.0, coverage=-1.0)),
    )
    frame = report.per_question
    assert frame["answered"].all() and len(frame) >= 200
    extracts = frame[frame["source"] == "extractive"]
    assert len(extracts) >= 0.95 * len(frame)  # the rest had nothing to quote, and say so
    assert extracts["verbatim"].all(), extracts.loc[~extracts["verbatim"], "id"].tolist()
