"""Full-budget training on a GPU machine that has no index: compare recipes, keep the best by validation.

Inputs come from prepare.py in WORK: base/ (all-MiniLM-L6-v2 in fp16), trainset.json.gz and optional extra
candidate sets to score (eval_*.json.gz, same format, validation part only). Outputs in --out: a log, the
logits of every recipe on every candidate set (metrics are computed back on the CPU machine), and the best
model in 15 MB parts.

    PYTHONUNBUFFERED=1 python3 -m experiments.generated_questions.train_full --work WORK --out "$OUT" --seconds 95

Distillation from the query-likelihood teacher (labels from label_teacher.py) starts from the shipped model
and picks checkpoints on the project's questions:

    PYTHONUNBUFFERED=1 python3 -m experiments.generated_questions.train_full --work WORK --out "$OUT" \\
        --trainset distill.json.gz --base data/models/k8s-cross-encoder --recipes distill,distill-margin,listwise \\
        --select-on eval_own
"""

from __future__ import annotations

import argparse
import json
import shutil
import tarfile
import time
from dataclasses import replace
from pathlib import Path

from ragrerank.finetune import BUDGETS, FinetuneReport, is_bi_encoder, load_training_set, save_model, score_candidates, train

from experiments.generated_questions.common import work_folder

CE_ONLY = {"modules.json", "1_Pooling", "sentence_bert_config.json", "config_sentence_transformers.json", "README.md"}
PART_BYTES = 15 * 2**20  # files come back from the GPU machine in parts of at most this size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    work = work_folder(parser)
    full = BUDGETS["full"]
    parser.add_argument("--out", type=Path, help="where the log, the scores and the model parts go (default: WORK/out)")
    parser.add_argument("--seconds", type=float, default=95.0, help="training seconds per recipe")
    parser.add_argument("--recipes", default="listwise,margin-listwise,bce")
    parser.add_argument("--trainset", default="trainset.json.gz", help="training set file in WORK")
    parser.add_argument("--base", type=Path, default=None, help="model to start from (default: WORK/base)")
    parser.add_argument("--select-on", default="", help="eval_* set that picks checkpoints (default: the synthetic validation)")
    parser.add_argument("--examples", type=int, default=full.max_examples, help="training questions drawn per recipe")
    parser.add_argument("--lr", type=float, default=full.learning_rate)
    parser.add_argument("--gold-share", type=float, default=full.distill_gold_share, help="distill: weight of the known positive")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batch-size", type=int, default=full.batch_size)
    parser.add_argument("--eval-every", type=int, default=full.eval_every)
    args = parser.parse_args()
    out = args.out or work / "out"
    out.mkdir(parents=True, exist_ok=True)
    log_file = (out / "train.log").open("a")

    def log(line: str) -> None:
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    base = args.base or work / "base"
    base_ce = work / "base_ce"  # the same weights without the bi-encoder modules: loads as a classifier
    shutil.copytree(base, base_ce, dirs_exist_ok=True, ignore=lambda _d, names: [n for n in names if n in CE_ONLY])
    trainset = load_training_set(work / args.trainset)
    extra = {p.name.split(".")[0]: load_training_set(p).validation for p in sorted(work.glob("eval_*.json.gz"))}
    if args.select_on:
        trainset = replace(trainset, validation=extra[args.select_on])
    log(json.dumps(trainset.summary()))
    budget = replace(
        full, max_seconds=args.seconds, batch_size=args.batch_size, eval_every=args.eval_every,
        max_examples=args.examples, learning_rate=args.lr, distill_gold_share=args.gold_share,
    )
    results, best = {}, None
    teacher = str(base) if is_bi_encoder(str(base)) else None
    for recipe in args.recipes.split(","):
        started = time.monotonic()
        model, history = train(trainset, str(base_ce), budget, recipe, args.device, teacher=teacher, log=log)
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
    save_model(model, report, work / "model" / "k8s-cross-encoder", "# placeholder card, rewritten on CPU\n", fp16=args.device.startswith("cuda"))
    split_archive(work / "model", out / "model.tgz.part-")
    log(f"best recipe {recipe}; saved")


def split_archive(folder: Path, prefix: Path) -> None:
    """Pack ``folder`` as a .tgz in parts small enough to come back from the GPU machine."""
    archive = folder.with_suffix(".tgz")
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder / "k8s-cross-encoder", arcname="k8s-cross-encoder")
    data = archive.read_bytes()
    for number, start in enumerate(range(0, len(data), PART_BYTES)):
        Path(f"{prefix}{number:02d}").write_bytes(data[start : start + PART_BYTES])


if __name__ == "__main__":
    main()
