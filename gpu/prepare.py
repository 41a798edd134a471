"""Build the inputs of gpu/train_full.py in the git-ignored .gpu/ folder (CPU, needs the index).

    .venv/bin/python gpu/prepare.py      # then run gpu/train_full.py on the GPU machine, carrying .gpu

base/ is all-MiniLM-L6-v2 in fp16 (half the bytes to carry); trainset.json.gz holds the generated
questions with hard negatives mined from the project's hybrid retriever.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ragrerank.config import resolve_settings  # noqa: E402
from ragrerank.corpus import load_passages  # noqa: E402
from ragrerank.finetune import BUDGETS  # noqa: E402
from ragrerank.index import open_retriever  # noqa: E402
from ragrerank.models import load_bi_encoder, resolve_model  # noqa: E402
from ragrerank.querygen import generate_queries  # noqa: E402
from ragrerank.trainset import build_training_set, save_training_set  # noqa: E402

GPU_DIR = Path(__file__).resolve().parents[1] / ".gpu"


def main() -> None:
    settings = resolve_settings()
    base = Path(resolve_model("bi-encoder", settings.bi_encoder, settings).location)
    shutil.rmtree(GPU_DIR / "base", ignore_errors=True)
    shutil.copytree(base, GPU_DIR / "base")
    weights = GPU_DIR / "base" / "model.safetensors"
    save_file({k: v.half().contiguous() for k, v in load_file(weights).items()}, weights, metadata={"format": "pt"})
    retriever = open_retriever(settings, "hybrid", load_bi_encoder(settings.bi_encoder, settings))
    queries = generate_queries(load_passages(settings.passages_path), settings.docs_dir)
    trainset = build_training_set(queries, retriever.search_many, BUDGETS["full"].negatives)
    save_training_set(trainset, GPU_DIR / "trainset.json.gz")
    print(trainset.summary())


if __name__ == "__main__":
    main()
