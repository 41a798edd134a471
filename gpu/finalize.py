"""Turn the model that gpu/train_full.py returned into the shipped data/models/k8s-cross-encoder.

    cat OUT/model.tgz.part-* | tar xz -C /tmp/gpu-model
    .venv/bin/python gpu/finalize.py /tmp/gpu-model/k8s-cross-encoder [OUT]   # OUT defaults to data/models/…

Fits the fusion weight on the project's own questions (the GPU machine has no index), writes the
model card with the rebuild commands and saves fp16 weights (about 45 MB) atomically.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ragrerank.config import resolve_settings  # noqa: E402
from ragrerank.finetune import (  # noqa: E402
    PROJECT_QUESTIONS,
    FinetuneReport,
    fit_fusion_weight,
    load_base,
    model_card,
    save_model,
    score_candidates,
)
from ragrerank.index import open_retriever  # noqa: E402
from ragrerank.models import SHIPPED_CROSS_ENCODER, load_bi_encoder  # noqa: E402
from ragrerank.trainset import question_set  # noqa: E402

REBUILD = """.venv/bin/python gpu/prepare.py                                   # CPU: .gpu/base (fp16) + .gpu/trainset.json.gz
PYTHONUNBUFFERED=1 python3 gpu/train_full.py --seconds 150 --recipes listwise   # GPU (H200), carrying .gpu
cat $OUT/model.tgz.part-* | tar xz -C /tmp/gpu-model
.venv/bin/python gpu/finalize.py /tmp/gpu-model/k8s-cross-encoder   # CPU: fusion weight, card, data/models"""


def main(trained: Path, target: Path = SHIPPED_CROSS_ENCODER) -> None:
    settings = resolve_settings()
    gpu_report = json.loads((trained / "finetune_report.json").read_text())
    model = load_base(str(trained), "cpu", 320)
    retriever = open_retriever(settings, "hybrid", load_bi_encoder(settings.bi_encoder, settings))
    questions = question_set(PROJECT_QUESTIONS, retriever.search_many)
    weight, validation = fit_fusion_weight(score_candidates(model, questions), questions)
    report = replace(
        FinetuneReport(**gpu_report), model_dir=str(target), base="sentence-transformers/all-MiniLM-L6-v2",
        fusion_weight=weight, validation={**validation, **{f"synthetic_{k}": v for k, v in gpu_report["validation"].items()}},
    )
    save_model(model, report, target, model_card(report, REBUILD), fp16=True)
    print(json.dumps({"fusion_weight": weight, **validation}, indent=2))


if __name__ == "__main__":
    main(*map(Path, sys.argv[1:3]))
