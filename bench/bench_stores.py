"""FAISS vs Milvus Lite on the real passages: build time, memory, size, query latency, agreement.

Not a test: run by hand after `make artifacts`. Each store is measured in a fresh process
(so one store's allocations do not hide in the other's memory figure), on the vectors of
the FAISS index: what is compared is the store, not the embedding. Prints a table and
writes bench/results/stores.json (git-ignored).

    .venv/bin/python bench/bench_stores.py [--queries FILE.jsonl] [--k 10] [--threads 1]

Figures: ``build_s`` writes the 6,448 vectors (FAISS: add + write the file; Milvus: upsert
with metadata + flush, into a fresh database in a temporary folder, not artifacts/milvus.db);
``rss_mib`` is the resident memory the open store adds to a process that already holds the
model; ``store_ms`` is the store's own search with a ready query vector and ``search_ms``
the full ``Retriever.search`` (embedding the question included), one query at a time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import psutil
from common import QUESTIONS, RESULTS_DIR, THREADS_HELP, latency_ms, load_settings_and_bi_encoder, machine, write_results

from ragrerank.config import resolve_settings
from ragrerank.errors import RagrerankError
from ragrerank.retrieval import embed_texts, open_faiss_retriever, read_manifest
from ragrerank.retrieval.faiss_bm25 import DENSE_FILE
from ragrerank.evaluate.questions import load_queries
from ragrerank.retrieval.milvus import OUTPUT_FIELDS, open_milvus_retriever
from ragrerank.retrieval.milvus_build import build_milvus
from ragrerank.retrieval.milvus_client import SEARCH_PARAMS, VECTOR

RESULTS = RESULTS_DIR / "stores.json"
WIDTHS = (8, 9, 8, 17, 18)  # table columns after the store name


def main() -> None:
    args = _parser().parse_args()
    queries = [query for _, query in load_queries(args.queries)]
    measured = {}
    with tempfile.TemporaryDirectory(dir=resolve_settings().home, prefix=".bench-stores-") as scratch:
        for store in ("faiss", "milvus"):
            built = _in_fresh_process(_build, store, Path(scratch), args.threads)
            served = _in_fresh_process(_serve, store, Path(scratch), queries, args.k, args.threads)
            measured[store] = {**built, **served}
    faiss_top, milvus_top = measured["faiss"].pop("top"), measured["milvus"].pop("top")
    overlap = [len(set(a) & set(b)) / args.k for a, b in zip(faiss_top, milvus_top, strict=True)]
    result = {
        "machine": {**machine(), "torch_threads": args.threads or "default"},
        "passages": read_manifest(resolve_settings().index_dir).passages,
        "queries": {"file": Path(args.queries).name, "count": len(queries), "k": args.k},
        "stores": measured,
        "agreement": {
            f"overlap@{args.k}": round(float(np.mean(overlap)), 4),
            "same_order": round(float(np.mean([a == b for a, b in zip(faiss_top, milvus_top, strict=True)])), 4),
        },
    }
    _print_table(result)
    write_results(result, args.out)


def _in_fresh_process(function: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """Run in a new interpreter, so one step's allocations never count in another's memory."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def _build(store: str, scratch: Path, threads: int) -> dict[str, Any]:
    """Write the FAISS index's vectors into a store in ``scratch``; embedding is not timed."""
    settings, model = load_settings_and_bi_encoder(threads)
    if store == "faiss":
        stored = faiss.read_index(str(settings.index_dir / DENSE_FILE))
        vectors = stored.reconstruct_n(0, stored.ntotal)
        started = time.perf_counter()
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        faiss.write_index(index, str(scratch / DENSE_FILE))
        return {"build_s": round(time.perf_counter() - started, 2), "size_mib": _mib(scratch / DENSE_FILE)}
    report = build_milvus(settings, model, str(scratch / "milvus.db"), progress=False)
    if report.vectors_from != "FAISS index":
        raise RagrerankError("the FAISS index is stale, so Milvus embedded the passages: run `ragrerank index` first")
    return {"build_s": round(report.seconds, 2)}


def _serve(store: str, scratch: Path, queries: list[str], k: int, threads: int) -> dict[str, Any]:
    """Open the store, then time searches one query at a time and collect the top-k ids."""
    settings, model = load_settings_and_bi_encoder(threads)
    vectors = embed_texts(model, queries, progress=False)
    process = psutil.Process()
    before = process.memory_info().rss
    if store == "faiss":
        retriever = open_faiss_retriever(settings, "dense", model)

        def store_search(vector: np.ndarray) -> None:
            retriever.index.search(vector[None, :], k)

    else:
        retriever = open_milvus_retriever(settings, "dense", model, str(scratch / "milvus.db"))

        def store_search(vector: np.ndarray) -> None:
            retriever.client.search(
                retriever.collection,
                data=[vector.tolist()],
                limit=k,
                anns_field=VECTOR,
                search_params=SEARCH_PARAMS,
                output_fields=OUTPUT_FIELDS,
            )

    rss = process.memory_info().rss - before
    result = {
        "rss_mib": round(rss / 2**20, 1),
        "store_ms": latency_ms(lambda i: store_search(vectors[i]), len(queries)),
        "search_ms": latency_ms(lambda i: retriever.search(queries[i], k), len(queries)),
        "top": [[hit.passage.id for hit in hits] for hits in retriever.search_many(queries, k)],
    }
    if store == "milvus":
        result["size_mib"] = _mib(scratch / "milvus.db")  # now: Milvus Lite writes index files in the background
    return result


def _mib(path: Path) -> float:
    files = path.rglob("*") if path.is_dir() else [path]
    return round(sum(p.stat().st_size for p in files if p.is_file()) / 2**20, 1)


def _print_table(result: dict[str, Any]) -> None:
    queries = result["queries"]
    print(
        f"{result['passages']} passages, {queries['count']} queries from {queries['file']}, k={queries['k']}, "
        f"{result['machine']['cpus']} CPUs, torch threads: {result['machine']['torch_threads']}"
    )
    columns = ("build s", "MiB disk", "MiB RSS", "store ms p50/p95", "search ms p50/p95")
    print(f"{'store':<7} " + " ".join(f"{name:>{width}}" for name, width in zip(columns, WIDTHS, strict=True)))
    for store, m in result["stores"].items():
        store_ms = f"{m['store_ms']['p50']:.2f}/{m['store_ms']['p95']:.2f}"
        search_ms = f"{m['search_ms']['p50']:.2f}/{m['search_ms']['p95']:.2f}"
        cells = (f"{m['build_s']:.2f}", f"{m['size_mib']:.1f}", f"{m['rss_mib']:.1f}", store_ms, search_ms)
        print(f"{store:<7} " + " ".join(f"{cell:>{width}}" for cell, width in zip(cells, WIDTHS, strict=True)))
    print("agreement: " + ", ".join(f"{name} {value}" for name, value in result["agreement"].items()))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", default=str(QUESTIONS), help='JSONL file with a "query" per line')
    parser.add_argument("--k", type=int, default=10, help="results per query")
    parser.add_argument("--out", default=str(RESULTS), help="where to write the JSON results")
    parser.add_argument("--threads", type=int, default=0, help=THREADS_HELP)
    return parser


if __name__ == "__main__":
    main()
