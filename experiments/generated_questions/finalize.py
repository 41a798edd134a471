"""Turn the model that train_full.py returned into the shipped data/models/k8s-cross-encoder (CPU).

    cat OUT/model.tgz.part-* | tar xz -C WORK/returned
    .venv/bin/python -m experiments.generated_questions.finalize WORK/returned/k8s-cross-encoder [--target DIR]

Fits the fusion weight on the project's own questions (the GPU machine has no index), writes the
model card with the rebuild commands and saves fp16 weights (about 45 MB) atomically.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from ragrerank.config import resolve_settings
from ragrerank.finetune import (
    PROJECT_QUESTIONS,
    FinetuneReport,
    fit_fusion_weight,
    load_base,
    model_card,
    question_set,
    save_model,
    score_candidates,
)
from ragrerank.models import SHIPPED_CROSS_ENCODER
from ragrerank.retrieval import open_retriever

REBUILD = """.venv/bin/python -m experiments.generated_questions.prepare          # CPU: WORK/base (fp16) + WORK/trainset.json.gz
PYTHONUNBUFFERED=1 python3 -m experiments.generated_questions.train_full --work WORK --out "$OUT" --seconds 150 --recipes listwise   # GPU (H200)
cat $OUT/model.tgz.part-* | tar xz -C WORK/returned
.venv/bin/python -m experiments.generated_questions.finalize WORK/returned/k8s-cross-encoder   # CPU: fusion weight, card, data/models"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trained", type=Path, help="the k8s-cross-encoder folder train_full.py returned")
    parser.add_argument("--target", type=Path, default=SHIPPED_CROSS_ENCODER, help="where the finished model goes")
    parser.add_argument("--questions", type=Path, default=PROJECT_QUESTIONS, help="questions that fit the fusion weight")
    args = parser.parse_args()
    settings = resolve_settings()
    gpu_report = json.loads((args.trained / "finetune_report.json").read_text())
    model = load_base(str(args.trained), "cpu", 320)
    questions = question_set(args.questions, open_retriever(settings, "hybrid").search_many)
    weight, validation = fit_fusion_weight(score_candidates(model, questions), questions)
    report = replace(
        FinetuneReport(**gpu_report), model_dir=str(args.target), base="sentence-transformers/all-MiniLM-L6-v2",
        fusion_weight=weight, validation={**validation, **{f"synthetic_{k}": v for k, v in gpu_report["validation"].items()}},
    )
    save_model(model, report, args.target, model_card(report, REBUILD), fp16=True)
    print(json.dumps({"fusion_weight": weight, **validation}, indent=2))


if __name__ == "__main__":
    main()
