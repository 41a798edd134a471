"""Compare training recipes × starting points on the validation split, at one equal budget.

    .venv/bin/python -m experiments.written_questions.compare --base generated=MODEL --base bi-encoder=all-MiniLM-L6-v2

Every run trains on the same hand-written questions, drawn once and in the same order, with the same
hard and random negatives, and is scored at the same steps on the same page-disjoint validation
questions that chose the shipped model's checkpoint; nothing here reads data/eval or dev. The distill
recipe's targets mix the known positive with the packaged LLM's query likelihood of every passage;
those labels are computed once and shared. The training set, the labels and each finished run are
cached under ``--work`` and each finished run is written to ``--out`` (beside the shipped model, where
notebook 04 reads it), so a stopped comparison resumes where it was.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from ragrerank.config import PROJECT_ROOT, Settings, resolve_settings
from ragrerank.errors import RagrerankError
from ragrerank.finetune import (
    BUDGETS,
    Budget,
    TrainingSet,
    load_training_set,
    save_training_set,
    teacher_labels,
    train,
    written_training_set,
)
from ragrerank.io import atomic_write
from ragrerank.models import BI_ENCODER_ALIASES, SHIPPED_CROSS_ENCODER, resolve_model

DEFAULT_WORK = PROJECT_ROOT / "artifacts" / "experiments" / "recipes"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", action="append", required=True, metavar="NAME=MODEL",
                        help="a starting point: a name for the table and a model folder or alias (repeatable)")
    parser.add_argument("--recipe", action="append", choices=["listwise", "distill"], help="default: both")
    parser.add_argument("--steps", type=int, default=40, help="training steps of 8 questions per run")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--out", type=Path, default=SHIPPED_CROSS_ENCODER / "recipe_comparison.json",
                        help="results JSON; runs already in it are not trained again")
    args = parser.parse_args()
    if args.steps < 1:
        raise SystemExit(f"error: --steps {args.steps}: train at least one step")
    settings = resolve_settings()
    cpu = BUDGETS["cpu"]
    plan = replace(cpu, name=f"cpu-{args.steps}", max_examples=args.steps * cpu.batch_size,
                   eval_every=max(1, args.steps // 2), max_seconds=float("inf"), patience=args.steps)
    bases = {name: _location(model, settings) for name, model in map(_named, args.base)}  # before the slow labelling
    out = args.out
    results = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {}
    if any(run["questions"] != plan.max_examples for run in results.values()):
        raise SystemExit(f"error: {out} holds runs at another budget than --steps {args.steps}: pass another --out")
    trainset = _labelled_set(settings, plan, args.work)
    for base_name, (model, location) in bases.items():
        for recipe in args.recipe or ["listwise", "distill"]:
            key = f"{recipe} from {base_name}"
            if key in results:
                print(f"{key}: done before (best validation nDCG@10 {results[key]['best_ndcg']:.4f})")
                continue
            print(f"{key}: training {args.steps} steps")
            _, history = train(trainset, location, plan, recipe)
            results[key] = {"recipe": recipe, "base": model, "questions": plan.max_examples, "steps": history["steps"],
                            "best_step": history["best_step"], "best_ndcg": round(history["best_ndcg"], 4),
                            "evaluations": history["evaluations"], "losses": history["losses"],
                            "seconds": round(history["seconds"], 1)}
            _write(out, results)
    print(f"\nvalidation nDCG@10 ({plan.validation_queries} page-disjoint held-out questions, hybrid top 30)")
    for key, run in results.items():
        curve = " → ".join(f"{ndcg:.3f}" for _, ndcg in run["evaluations"])
        print(f"  {key}: {curve} (best {run['best_ndcg']:.3f} at step {run['best_step']}, {run['seconds'] / 60:.0f} min)")


def _named(spec: str) -> tuple[str, str]:
    name, sep, model = spec.partition("=")
    if not sep or not name or not model:
        raise SystemExit(f"error: --base '{spec}' is not NAME=MODEL, e.g. bi-encoder=all-MiniLM-L6-v2")
    return name, model


def _location(model: str, settings: Settings) -> tuple[str, str]:
    kind = "bi-encoder" if model in BI_ENCODER_ALIASES else "cross-encoder"
    try:
        return model, resolve_model(kind, model, settings).location
    except RagrerankError as error:
        raise SystemExit(f"error: --base {model}: {error}") from None


def _labelled_set(settings: Settings, plan: Budget, work: Path) -> TrainingSet:
    """The written set's validation split and the drawn training questions, each with the teacher's scores."""
    mined, labelled = work / "trainset.json.gz", work / f"labelled-{plan.max_examples}.json.gz"
    if labelled.is_file():
        return load_training_set(labelled)
    if mined.is_file():
        trainset = load_training_set(mined)
    else:
        trainset = written_training_set(settings, plan)
        save_training_set(trainset, mined)
    trainset = TrainingSet(teacher_labels(trainset.train, plan, settings), trainset.validation)
    save_training_set(trainset, labelled)
    return trainset


def _write(path: Path, results: dict[str, object]) -> None:
    with atomic_write(path) as handle:
        json.dump(results, handle, indent=1)
        handle.write("\n")


if __name__ == "__main__":
    main()
