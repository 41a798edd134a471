"""Full-budget training on a GPU machine that has no index: compare recipes, keep the best by validation.

Inputs travel in the git-ignored .gpu/ folder: base/ (all-MiniLM-L6-v2 in fp16), trainset.json.gz
(built on CPU by ragrerank.trainset) and optional extra candidate sets to score (eval_*.json.gz,
same format, validation part only). Outputs under $OUT: a log, the logits of every recipe on every
candidate set (metrics are computed back on the CPU machine), and the best model in 15 MB parts.

    PYTHONUNBUFFERED=1 python3 gpu/train_full.py --seconds 95

Distillation from the query-likelihood teacher (labels from gpu/label_teacher.py) starts from the
shipped model, which is in the working tree already, and picks checkpoints on the project's questions:

    PYTHONUNBUFFERED=1 python3 gpu/train_full.py --trainset distill.json.gz --base data/models/k8s-cross-encoder \
        --recipes distill,distill-margin,listwise --select-on eval_own
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ragrerank import finetune  # noqa: E402
from ragrerank.finetune import BUDGETS, FinetuneReport, is_bi_encoder, save_model, score_candidates, train  # noqa: E402
from ragrerank.trainset import load_training_set  # noqa: E402

GPU_DIR = Path(".gpu")
CE_ONLY = {"modules.json", "1_Pooling", "sentence_bert_config.json", "config_sentence_transformers.json", "README.md"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=95.0, help="training seconds per recipe")
    parser.add_argument("--recipes", default="listwise,margin-listwise,bce")
    parser.add_argument("--data", type=Path, default=GPU_DIR, help="folder with base/, trainset.json.gz, eval_*.json.gz")
    parser.add_argument("--trainset", default="trainset.json.gz", help="training set file in --data")
    parser.add_argument("--base", type=Path, default=None, help="model to start from (default: --data/base)")
    parser.add_argument("--select-on", default="", help="eval_* set that picks checkpoints (default: the synthetic validation)")
    parser.add_argument("--examples", type=int, default=BUDGETS["full"].max_examples, help="training questions drawn per recipe")
    parser.add_argument("--lr", type=float, default=BUDGETS["full"].learning_rate)
    parser.add_argument("--gold-share", type=float, default=finetune.DISTILL_GOLD_SHARE, help="distill: weight of the known positive")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-size", type=int, default=BUDGETS["full"].batch_size)
    parser.add_argument("--eval-every", type=int, default=BUDGETS["full"].eval_every)
    args = parser.parse_args()
    finetune.DISTILL_GOLD_SHARE = args.gold_share  # a sweep knob of this script, not of the library's API
    out = Path(os.environ.get("OUT", "/tmp/out"))
    out.mkdir(parents=True, exist_ok=True)
    log_file = (out / "train.log").open("a")

    def log(line: str) -> None:
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    base = args.base or args.data / "base"
    base_ce = Path("/tmp/base_ce")  # the same weights without the bi-encoder modules: loads as a classifier
    shutil.copytree(base, base_ce, dirs_exist_ok=True, ignore=lambda _d, names: [n for n in names if n in CE_ONLY])
    trainset = load_training_set(args.data / args.trainset)
    extra = {p.name.split(".")[0]: load_training_set(p).validation for p in sorted(args.data.glob("eval_*.json.gz"))}
    if args.select_on:
        trainset = replace(trainset, validation=extra[args.select_on])
    log(json.dumps(trainset.summary()))
    budget = replace(
        BUDGETS["full"], max_seconds=args.seconds, batch_size=args.batch_size, eval_every=args.eval_every,
        max_examples=args.examples, learning_rate=args.lr,
    )
    results, best = {}, None
    for recipe in args.recipes.split(","):
        started = time.monotonic()
        model, history = train(trainset, str(base_ce), budget, recipe, args.device, teacher=str(base) if is_bi_encoder(str(base)) else None, log=log)
        scores = {"validation": score_candidates(model, trainset.validation)}
        scores.update({name: score_candidates(model, queries) for name, queries in extra.items()})
        results[recipe] = {"history": history, "scores": scores, "seconds": time.monotonic() - started}
        log(f"{recipe}: best validation nDCG@10 {history['best_ndcg']:.4f} at step {history['best_step']} ({results[recipe]['seconds']:.0f} s)")
        if best is None or history["best_ndcg"] > best[1]:
            best = (recipe, history["best_ndcg"], model, history)
        (out / "results.json").write_text(json.dumps(results))
    recipe, _, model, history = best
    report = FinetuneReport("", "all-MiniLM-L6-v2", "full", recipe, args.device, history["seconds"], history["steps"],
                            history["best_step"], float("nan"), {"ndcg@10": history["best_ndcg"]}, trainset.summary())
    save_model(model, report, Path("/tmp/model/k8s-cross-encoder"), "# placeholder card, rewritten on CPU\n", fp16=args.device.startswith("cuda"))
    subprocess.run(f"tar czf /tmp/model.tgz -C /tmp/model k8s-cross-encoder && split -b 15M /tmp/model.tgz {out}/model.tgz.part-", shell=True, check=True)
    log(f"best recipe {recipe}; saved")


if __name__ == "__main__":
    main()
