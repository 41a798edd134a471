"""Score the training set's passages with the query-likelihood teacher, for distillation (CPU).

    .venv/bin/python -m experiments.generated_questions.label_teacher --queries 1500   # after prepare; stop it any time

The packaged SmolLM2 is too large to travel to the GPU machine, so its scores are computed here and
stored with the examples in WORK/distill.json.gz (rewritten atomically every chunk, so an interrupted
run keeps what it labelled, and a rerun with a larger --queries adds to it). User-like query kinds
only: titles, headings, descriptions, glossary terms, sentences around links; inverse-cloze
sentences are left out.
"""

from __future__ import annotations

import argparse
import random
import time
from dataclasses import replace

from ragrerank.config import resolve_settings
from ragrerank.finetune import TrainingSet, label_with_teacher, load_training_set, save_training_set
from ragrerank.rerank.query_likelihood import QueryLikelihood

from experiments.generated_questions.common import work_folder

KINDS = ("title", "heading", "description", "glossary", "link")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    work = work_folder(parser)
    parser.add_argument("--queries", type=int, default=1500, help="questions to label in all")
    parser.add_argument("--negatives", type=int, default=7, help="hard negatives kept per question")
    parser.add_argument("--chunk", type=int, default=50, help="questions labelled between saves")
    args = parser.parse_args()
    trainset = load_training_set(work / "trainset.json.gz")
    target = work / "distill.json.gz"
    labelled = list(load_training_set(target).train) if target.is_file() else []
    done = {(example.query, example.positive.id) for example in labelled}
    pool = [e for e in trainset.train if e.kind in KINDS and (e.query, e.positive.id) not in done]
    chosen = random.Random(13 + len(done)).sample(pool, max(0, min(args.queries - len(done), len(pool))))
    scorer = QueryLikelihood.from_settings(replace(resolve_settings(), runtime="torch-bf16"))
    started = time.monotonic()
    for start in range(0, len(chosen), args.chunk):
        labelled += label_with_teacher(chosen[start : start + args.chunk], scorer.score, args.negatives)
        save_training_set(TrainingSet(tuple(labelled), trainset.validation), target)
        print(f"{len(labelled)} labelled in {time.monotonic() - started:.0f} s", flush=True)


if __name__ == "__main__":
    main()
