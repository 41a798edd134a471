"""Build the inputs of train_full.py (CPU, needs the index): the base model in fp16 and the training set.

    .venv/bin/python -m experiments.generated_questions.prepare [--work DIR]

base/ is all-MiniLM-L6-v2 in fp16 (half the bytes to carry to a GPU machine); trainset.json.gz holds the
generated questions with hard negatives mined from the project's hybrid retriever.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from ragrerank.config import resolve_settings
from ragrerank.corpus import load_passages
from ragrerank.finetune import BUDGETS, build_training_set, generate_queries, save_training_set
from ragrerank.models import resolve_model
from ragrerank.retrieval import open_retriever

from experiments.generated_questions.common import work_folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    work = work_folder(parser)
    parser.parse_args()
    settings = resolve_settings()
    base = Path(resolve_model("bi-encoder", settings.bi_encoder, settings).location)
    shutil.rmtree(work / "base", ignore_errors=True)
    shutil.copytree(base, work / "base")
    weights = work / "base" / "model.safetensors"
    save_file({k: v.half().contiguous() for k, v in load_file(weights).items()}, weights, metadata={"format": "pt"})
    retriever = open_retriever(settings, "hybrid")
    queries = generate_queries(load_passages(settings.passages_path), settings.docs_dir)
    trainset = build_training_set(queries, retriever.search_many, BUDGETS["full"].negatives)
    save_training_set(trainset, work / "trainset.json.gz")
    print(trainset.summary())


if __name__ == "__main__":
    main()
