"""Calibrate the shipped model's decision thresholds and record the signals behind them.

    .venv/bin/python -m experiments.written_questions.decision [--dev FILE]

Measures, for every question of data/eval (and of the development set when present), the three
signals ``answer()`` decides on — best bi-encoder cosine of the hybrid top 30, the cross-encoder
probability of the best reranked passage, and that probability after the BM25 fallback — then
chooses ``Thresholds`` on the calibration half of data/eval with ``calibrate_decision`` and writes
``decision.json`` beside the shipped model: the thresholds, the rates on both halves and on dev,
and the per-question signals (ids and numbers only) that notebook 05 plots the trade-off from.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ragrerank.config import PROJECT_ROOT, resolve_settings
from ragrerank.evaluate.decision import calibrate_decision, decision_rates, decision_signals
from ragrerank.evaluate.questions import load_questions
from ragrerank.finetune import PROJECT_QUESTIONS
from ragrerank.io import atomic_write
from ragrerank.models import SHIPPED_CROSS_ENCODER
from ragrerank.rerank import Reranker
from ragrerank.retrieval import open_retriever

DEV_QUESTIONS = PROJECT_ROOT.parent / "shared" / "eval" / "dev.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dev", type=Path, default=DEV_QUESTIONS, help="held-out development questions (skipped if absent)")
    parser.add_argument("--out", type=Path, default=SHIPPED_CROSS_ENCODER / "decision.json")
    args = parser.parse_args()
    settings = resolve_settings()
    hybrid, bm25 = open_retriever(settings, "hybrid"), open_retriever(settings, "bm25")
    reranker = Reranker.from_settings(settings)
    files = {"data/eval/k8s_questions.jsonl": PROJECT_QUESTIONS, "../shared/eval/dev.jsonl": args.dev}
    signals = {
        name: decision_signals(load_questions(path), hybrid, bm25, reranker, progress=True)
        for name, path in files.items()
        if path.is_file()
    }
    calibration = calibrate_decision(signals["data/eval/k8s_questions.jsonl"])
    record = {
        "thresholds": vars(calibration.thresholds),
        "answered_target": calibration.answered_target,
        "calibration_half": vars(calibration.calibration),
        "test_half": vars(calibration.test),
        "calibration_ids": list(calibration.calibration_ids),
        "rates": {name: vars(decision_rates(frame, calibration.thresholds)) for name, frame in signals.items()},
        "signals": {name: frame.round(6).reset_index().to_dict(orient="records") for name, frame in signals.items()},
    }
    with atomic_write(args.out) as handle:
        json.dump(record, handle, indent=1)
        handle.write("\n")
    print(f"thresholds {calibration.thresholds}; calibration half {calibration.calibration}; test half {calibration.test}")
    for name, rates in record["rates"].items():
        print(f"{name}: {rates}")


if __name__ == "__main__":
    main()
