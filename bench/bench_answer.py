"""End-to-end `ask` latency by stage: retrieve, rerank, (fallback), extract, and with --generate the LLM.

Not a test: run by hand or with `make bench` after `make artifacts`. Answers a fixed sample
of the project's questions (in scope and out of scope) with the offline models, after loading
them once (the load is timed apart: a notebook or server pays it once), and prints p50/p95
per stage plus how often each decision was taken; writes bench/results/answer.json. The
target for the default, extractive `ask` is a total p50 under 1.5 s on 2 cores.

    .venv/bin/python bench/bench_answer.py [--questions 20] [--threads 1] [--generate]
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter

from common import QUESTIONS, RESULTS_DIR, load_settings_and_bi_encoder, machine, percentiles, write_results

from ragrerank.answer import LLM, AnswerSettings, answer
from ragrerank.retrieval import open_retriever
from ragrerank.evaluate.questions import load_queries
from ragrerank.models import load_llm
from ragrerank.rerank import Reranker

RESULTS = RESULTS_DIR / "answer.json"


def main() -> None:
    args = _parser().parse_args()
    started = time.perf_counter()
    settings, model = load_settings_and_bi_encoder(args.threads)
    first_stage, fallback = open_retriever(settings, "hybrid", model=model), open_retriever(settings, "bm25")
    reranker = Reranker.from_settings(settings)
    answer_settings = AnswerSettings(generate=args.generate)
    llm = LLM(*load_llm(settings.llm, settings), max_new_tokens=answer_settings.max_new_tokens) if args.generate else None
    load_seconds = time.perf_counter() - started
    queries = [query for _, query in random.Random(42).sample(load_queries(QUESTIONS), args.questions)]

    answer(queries[0], first_stage, fallback, reranker, llm, answer_settings)  # warm-up
    results = [answer(query, first_stage, fallback, reranker, llm, answer_settings) for query in queries]
    stages = sorted({stage for result in results for stage in result.timings})
    table = {
        stage: _percentiles([result.timings[stage] for result in results if stage in result.timings])
        for stage in stages
    }
    table["total"] = _percentiles([sum(result.timings.values()) for result in results])
    summary = {
        "machine": machine(),
        "questions": len(queries),
        "candidates": answer_settings.candidates,
        "generate": args.generate,
        "load_seconds": round(load_seconds, 2),
        "max_new_tokens": answer_settings.max_new_tokens,
        "decisions": dict(Counter(result.decision for result in results)),
        "seconds": table,
    }
    print(
        f"{len(queries)} questions, {answer_settings.candidates} candidates reranked, "
        f"{'generated' if args.generate else 'extractive'} answers, decisions {summary['decisions']}; "
        f"models loaded once in {load_seconds:.1f} s"
    )
    print(f"{'stage':<18}{'n':>4}{'p50 s':>9}{'p95 s':>9}")
    for stage, row in table.items():
        print(f"{stage:<18}{row['n']:>4}{row['p50']:>9.2f}{row['p95']:>9.2f}")
    write_results(summary, args.out)


def _percentiles(values: list[float]) -> dict[str, float]:
    return {"n": len(values), **percentiles(values, digits=3)}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=20, help="questions sampled from data/eval")
    parser.add_argument("--generate", action="store_true", help="let the LLM write (and the check verify) each answer")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 keeps torch's default)")
    parser.add_argument("--out", default=str(RESULTS))
    return parser


if __name__ == "__main__":
    main()
