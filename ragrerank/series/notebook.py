"""One setup call at the top of every notebook: seeds, display options, quiet logs, settings."""

from __future__ import annotations

import logging
import os
import random
import warnings

import numpy as np

from ragrerank.config import Settings, resolve_settings


def setup(seed: int = 42) -> Settings:
    """Make a notebook deterministic and readable, and return the resolved settings.

    Seeds every random generator the pipeline uses, pins torch to deterministic CPU
    kernels, rounds pandas output so nbval compares stable text, and silences the
    progress bars and library chatter that would otherwise differ between runs.
    """
    import pandas as pd
    import torch

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    pd.set_option("display.precision", 3)
    pd.set_option("display.max_colwidth", 80)
    pd.set_option("display.width", 120)
    for noisy in ("sentence_transformers", "transformers", "faiss", "bm25s", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning)
    return resolve_settings()
