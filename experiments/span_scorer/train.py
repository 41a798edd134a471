"""Train and ship the span scorer: the cross-encoder that picks which sentences an extractive answer quotes.

    .venv/bin/python -m experiments.span_scorer.train [--trainset MINED.json.gz] [--steps 50]   # ~15 min on 2 CPU cores

From the shipped passage cross-encoder, ``listwise`` over each hand-written question's evidence span
against 4 other spans of its passage and 3 spans of passages mined from other pages
(``ragrerank.finetune.spans``); the checkpoint is chosen by span nDCG@10 on the page-disjoint validation
questions. Those held-out questions then measure what an answer needs: how often the extractive
answer quotes the evidence, with spans scored by the trained model and by the passage cross-encoder,
cut from the same passages (the gold one and the two best hybrid candidates of other pages), for a few
answer lengths. The model goes to ``data/models/k8s-span-scorer`` as fp16 with its card and
``span_report.json``; nothing here reads data/eval or dev (``ragrerank eval --answers`` measures those).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path

from ragrerank.answer import ExtractiveSettings, extract_answer, scored_spans
from ragrerank.answer.extractive import SpanScorer
from ragrerank.config import PROJECT_ROOT, repo_relative, resolve_settings
from ragrerank.corpus import load_passages
from ragrerank.corpus.markdown import strip_marks
from ragrerank.finetune import (
    BUDGETS,
    WRITTEN_QUESTIONS,
    load_training_set,
    save_model_folder,
    save_training_set,
    train,
    written_training_set,
)
from ragrerank.finetune.questions import load_training_questions, resolve
from ragrerank.finetune.spans import (
    SPAN_BUDGET,
    SpanNegatives,
    build_span_set,
    validation_context,
)
from ragrerank.models import SHIPPED_CROSS_ENCODER, SHIPPED_SPAN_SCORER
from ragrerank.rerank import Reranker
from ragrerank.types import Passage

DEFAULT_WORK = PROJECT_ROOT / "artifacts" / "experiments" / "span-scorer"
ANSWER_LENGTHS = (3, 4, 5)  # max_spans of the extractive answers compared on the held-out questions
HELD_OUT_ANSWERS = 400  # held-out questions answered by each scorer (~25 spans each, ~2 min per scorer on 2 cores)

HeldOut = tuple[str, str, list[Passage]]  # question, evidence, the passages its answer is cut from


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainset", type=Path, help="a mined written-question set (compare.py's trainset.json.gz); default: mine one")
    parser.add_argument("--steps", type=int, default=SPAN_BUDGET.max_examples // SPAN_BUDGET.batch_size)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK, help="where the mined set and the checkpoint are kept")
    parser.add_argument("--target", type=Path, default=SHIPPED_SPAN_SCORER)
    args = parser.parse_args()
    if args.steps < 1:
        raise SystemExit(f"error: --steps {args.steps}: train at least one step")
    settings = resolve_settings()
    args.work.mkdir(parents=True, exist_ok=True)
    mined = args.trainset or args.work / "trainset.json.gz"
    if mined.is_file():
        written = load_training_set(mined)
    else:
        written = written_training_set(settings, BUDGETS["cpu"])
        save_training_set(written, mined)
    resolved = resolve(load_training_questions(WRITTEN_QUESTIONS), load_passages(settings.passages_path)).resolved
    negatives = SpanNegatives()
    spans = build_span_set(written, resolved, negatives)
    budget = replace(SPAN_BUDGET, max_examples=args.steps * SPAN_BUDGET.batch_size)
    started = time.monotonic()
    model, history = train(spans, str(SHIPPED_CROSS_ENCODER), budget, recipe="listwise", checkpoint=args.work / "run.ckpt")
    seconds = time.monotonic() - started

    gold = {question.query: (question, passage) for question, passage in resolved}
    kept = {query.query for query in spans.validation}
    held_out = [
        (query.query, gold[query.query][0].evidence, validation_context(query, gold[query.query][1], negatives.context_passages))
        for query in written.validation
        if query.query in kept
    ]
    held_out = random.Random(13).sample(held_out, min(HELD_OUT_ANSWERS, len(held_out)))
    scorers = {"passage cross-encoder": Reranker.from_settings(settings).predict, "span scorer": Reranker(model).predict}
    quoted = {name: _evidence_quoted(held_out, score) for name, score in scorers.items()}
    report = {
        "base": repo_relative(SHIPPED_CROSS_ENCODER),
        "questions": repo_relative(WRITTEN_QUESTIONS),
        "training_questions": len(spans.train),
        "validation_questions": len(spans.validation),
        "negatives": asdict(negatives),
        "budget": asdict(budget),
        "seconds": round(seconds, 1),
        "steps": history["steps"],
        "best_step": history["best_step"],
        "best_ndcg": round(history["best_ndcg"], 4),
        "evaluations": history["evaluations"],
        "losses": history["losses"],
        "held_out_answers": len(held_out),
        "evidence_quoted": quoted,
    }
    save_model_folder(model, args.target, {"span_report.json": json.dumps(report, indent=1) + "\n", "README.md": _card(report)}, fp16=True)
    print(_card(report))


def _evidence_quoted(held_out: Sequence[HeldOut], score: SpanScorer) -> dict[str, float]:
    """Share of held-out questions whose extractive answer quotes the evidence, per answer length (spans scored once)."""
    hits = {n: 0 for n in ANSWER_LENGTHS}
    for question, evidence, passages in held_out:
        _, scores = scored_spans(question, passages, score)  # extract_answer cuts the same spans in the same order
        for n in ANSWER_LENGTHS:
            answer = extract_answer(question, passages, lambda _question, _texts, scores=scores: scores, ExtractiveSettings(max_spans=n))
            hits[n] += strip_marks(evidence) in strip_marks(answer.text)
    return {f"{n} spans": round(hits[n] / len(held_out), 4) for n in ANSWER_LENGTHS}


def _card(report: dict[str, object]) -> str:
    budget = report["budget"]
    curve = " → ".join(f"{ndcg:.3f}" for _, ndcg in report["evaluations"])
    lengths = list(next(iter(report["evidence_quoted"].values())))
    rows = [f"| {name} | " + " | ".join(f"{share:.1%}" for share in shares.values()) + " |" for name, shares in report["evidence_quoted"].items()]
    return "\n".join([
        "# k8s-span-scorer",
        "",
        "The cross-encoder that picks the sentences, list items and code blocks an extractive answer quotes",
        "(`ragrerank.answer.extractive`; `Settings.span_scorer`, `--span-scorer`). It reads a span after its",
        "passage's title and heading path, as `span_input` builds it.",
        "",
        f"Trained from `{report['base']}` on the evidence spans of `{report['questions']}`: `listwise`, each question's",
        f"evidence span against {report['negatives']['same_passage']} other spans of its passage and",
        f"{report['negatives']['other_passages']} spans of passages mined from other pages; {budget['batch_size']} questions a step,",
        f"lr {budget['learning_rate']:g}, {budget['max_length']} tokens, fp32 on CPU, {report['steps']} steps",
        f"({report['training_questions']:,} training questions available, {report['seconds'] / 60:.0f} min). Rebuild:",
        "`python -m experiments.span_scorer.train`.",
        "",
        f"Span nDCG@10 on {budget['validation_queries']} page-disjoint held-out questions at each check: {curve};",
        f"kept: step {report['best_step']} ({report['best_ndcg']:.3f}). Saved as fp16; loaders compute in fp32.",
        "",
        f"Extractive answers of {report['held_out_answers']} held-out questions, cut from the gold passage and",
        "the two best hybrid candidates of other pages: share whose answer quotes the question's evidence.",
        "",
        "| spans scored by | " + " | ".join(f"answer of {length}" for length in lengths) + " |",
        "| --- |" + " --- |" * len(lengths),
        *rows,
        "",
        "Measured on the project's questions and dev with `ragrerank eval --answers` (see the README).",
        "",
    ])


if __name__ == "__main__":
    main()
