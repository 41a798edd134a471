"""What every benchmark script shares: the default questions, latency percentiles, the JSON results."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ragrerank.config import PROJECT_ROOT, Settings, resolve_settings
from ragrerank.io import atomic_write
from ragrerank.models import load_bi_encoder

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

QUESTIONS = PROJECT_ROOT / "data" / "eval" / "k8s_questions.jsonl"  # the project's own; --questions takes any other
RESULTS_DIR = PROJECT_ROOT / "bench" / "results"
THREADS_HELP = "torch threads (0: torch's default); 1 avoids OpenMP stalls on a small, busy machine"


def load_settings_and_bi_encoder(threads: int) -> tuple[Settings, SentenceTransformer]:
    """Pin torch's threads first (0 keeps its default), then resolve settings and load the bi-encoder."""
    if threads:
        torch.set_num_threads(threads)
    settings = resolve_settings()
    return settings, load_bi_encoder(settings.bi_encoder, settings)


def machine() -> dict[str, Any]:
    """Recorded with every result: timings mean little without the cores they ran on."""
    return {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "arch": platform.machine()}


def percentiles(values: Sequence[float], digits: int = 2) -> dict[str, float]:
    return {
        "p50": round(float(np.percentile(values, 50)), digits),
        "p95": round(float(np.percentile(values, 95)), digits),
    }


def latency_ms(call: Callable[[int], object], n: int) -> dict[str, float]:
    """One call at a time, as a user would search; the first call warms caches and is not timed."""
    call(0)
    times = []
    for i in range(n):
        started = time.perf_counter()
        call(i)
        times.append((time.perf_counter() - started) * 1000)
    return percentiles(times)


def write_results(result: dict[str, Any], path: str | Path) -> None:
    """Atomically, so a plot in the evaluation notebook never reads half a file."""
    with atomic_write(Path(path)) as handle:
        json.dump(result, handle, indent=2)
    print(f"wrote {path}")
