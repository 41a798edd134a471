"""Retrieval speed on the real passages: embedding throughput and per-query latency per mode.

Not a test: run by hand or with `make bench` after `make artifacts`. Prints a table and
writes bench/results/retrieval.json (git-ignored). Timings depend on the machine and on
whatever else runs on it, so the JSON records the CPU count and torch threads too.

    .venv/bin/python bench/bench_retrieval.py [--sample 2000] [--queries FILE.jsonl] [--k 10]
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from common import QUESTIONS, RESULTS_DIR, THREADS_HELP, latency_ms, load_settings_and_bi_encoder, machine, write_results

from ragrerank.retrieval import embed_texts, open_retriever, read_manifest
from ragrerank.evaluate.questions import load_queries

RESULTS = RESULTS_DIR / "retrieval.json"


def main() -> None:
    args = _parser().parse_args()
    settings, model = load_settings_and_bi_encoder(args.threads)
    retrievers = {mode: open_retriever(settings, mode, model=model) for mode in ("dense", "bm25", "hybrid")}
    passages = retrievers["dense"].passages
    queries = [query for _, query in load_queries(args.queries)]

    sample = random.Random(42).sample(list(passages), min(args.sample, len(passages)) or len(passages))
    started = time.perf_counter()
    embed_texts(model, [passage.text for passage in sample], progress=False)
    embed_rate = len(sample) / (time.perf_counter() - started)

    latency = {
        mode: latency_ms(lambda i, retriever=retriever: retriever.search(queries[i], args.k), len(queries))
        for mode, retriever in retrievers.items()
    }
    index_bytes = sum(p.stat().st_size for p in settings.index_dir.rglob("*") if p.is_file())
    result = {
        "machine": machine(),
        "index": {**read_manifest(settings.index_dir).to_json(), "size_bytes": index_bytes},
        "embedding": {"passages": len(sample), "passages_per_second": round(embed_rate, 1)},
        "queries": {"file": Path(args.queries).name, "count": len(queries), "k": args.k},
        "latency_ms": latency,
    }
    _print_table(result)
    write_results(result, args.out)


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
    parser.add_argument("--queries", default=str(QUESTIONS), help='JSONL file with a "query" per line')
    parser.add_argument("--k", type=int, default=10, help="results per query")
    parser.add_argument("--out", default=str(RESULTS), help="where to write the JSON results")
    parser.add_argument("--threads", type=int, default=0, help=THREADS_HELP)
    return parser


if __name__ == "__main__":
    main()
