"""Retrieval speed on the real passages: embedding throughput and per-query latency per mode.

Not a test: run by hand or with `make bench` after `make artifacts`. Prints a table and
writes bench/results/retrieval.json (git-ignored). Timings depend on the machine and on
whatever else runs on it, so the JSON records the CPU count and torch threads too.

    .venv/bin/python bench/bench_retrieval.py [--sample 2000] [--queries FILE.jsonl] [--k 10]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
from pathlib import Path

import numpy as np
import torch

from ragrerank.config import PROJECT_ROOT, resolve_settings
from ragrerank.index import Retriever, embed_texts, open_retriever, read_manifest
from ragrerank.io import atomic_write, read_jsonl
from ragrerank.models import load_bi_encoder

DEV_QUERIES = PROJECT_ROOT.parent / "shared" / "eval" / "dev.jsonl"
RESULTS = PROJECT_ROOT / "bench" / "results" / "retrieval.json"


def main() -> None:
    args = _parser().parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = resolve_settings()
    model = load_bi_encoder(settings.bi_encoder, settings)
    retrievers = {mode: open_retriever(settings, mode, model) for mode in ("dense", "bm25", "hybrid")}
    passages = retrievers["dense"].passages
    queries = [record["query"] for record in read_jsonl(Path(args.queries))]

    sample = random.Random(42).sample(list(passages), min(args.sample, len(passages)) or len(passages))
    started = time.perf_counter()
    embed_texts(model, [passage.text for passage in sample], progress=False)
    embed_rate = len(sample) / (time.perf_counter() - started)

    latency = {mode: _latencies(retriever, queries, args.k) for mode, retriever in retrievers.items()}
    index_bytes = sum(p.stat().st_size for p in settings.index_dir.rglob("*") if p.is_file())
    result = {
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "arch": platform.machine()},
        "index": {**read_manifest(settings.index_dir).to_json(), "size_bytes": index_bytes},
        "embedding": {"passages": len(sample), "passages_per_second": round(embed_rate, 1)},
        "queries": {"file": Path(args.queries).name, "count": len(queries), "k": args.k},
        "latency_ms": latency,
    }
    _print_table(result)
    with atomic_write(Path(args.out)) as handle:
        json.dump(result, handle, indent=2)
    print(f"wrote {args.out}")


def _latencies(retriever: Retriever, queries: list[str], k: int) -> dict[str, float]:
    """One query at a time, as a user would search; the first query warms caches and is not timed."""
    retriever.search(queries[0], k)
    times = []
    for query in queries:
        started = time.perf_counter()
        retriever.search(query, k)
        times.append((time.perf_counter() - started) * 1000)
    return {"p50": round(float(np.percentile(times, 50)), 2), "p95": round(float(np.percentile(times, 95)), 2)}


def _print_table(result: dict) -> None:
    index, embedding = result["index"], result["embedding"]
    print(
        f"index: {index['passages']} passages, {index['kind']} {index['dimension']}-d + BM25, "
        f"{index['size_bytes'] / 2**20:.1f} MiB; {result['machine']['cpus']} CPUs"
    )
    print(f"embedding: {embedding['passages_per_second']} passages/s over {embedding['passages']} passages")
    queries = result["queries"]
    print(f"{'mode':<8} {'p50 ms':>8} {'p95 ms':>8}   ({queries['count']} queries, k={queries['k']})")
    for mode, times in result["latency_ms"].items():
        print(f"{mode:<8} {times['p50']:>8.2f} {times['p95']:>8.2f}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=2000, help="passages to embed for throughput (0: all)")
    parser.add_argument("--queries", default=str(DEV_QUERIES), help='JSONL file with a "query" per line')
    parser.add_argument("--k", type=int, default=10, help="results per query")
    parser.add_argument("--out", default=str(RESULTS), help="where to write the JSON results")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads (0: torch's default); 1 avoids OpenMP stalls on a small, busy machine",
    )
    return parser


if __name__ == "__main__":
    main()
