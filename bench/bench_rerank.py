"""Cross-encoder reranking per execution mode against plain ``CrossEncoder.predict``: speed and ranking.

Not a test: run by hand or with `make bench` after `make artifacts`. Prints a table, one
``rerank <mode>: speed-up ...`` line per mode, and writes bench/results/rerank.json.

    .venv/bin/python bench/bench_rerank.py [--timed 20] [--candidates 50] [--depth 30] [--threads 0]

Speed: the first ``--timed`` in-scope dev questions, each with its hybrid top ``--candidates``,
are scored by the baseline (``CrossEncoder(<the same model folder>).predict`` with its default
arguments) and by ``Reranker.rerank`` in every mode, one question after the other, the
contenders in a rotating order, so that load from other processes falls on all of them alike.
The speed-up is the baseline's total time over the mode's. Every pair is new to the reranker
(its cache starts empty), so the cache never flatters a mode.

Ranking: every in-scope dev question, its hybrid top ``--depth`` reranked by the cross-encoder
logit alone (``fusion_weight=None``; the shipped default keeps the hybrid order, see
``fusion.json``). P@3 is evaluate.score_run's; tau is Kendall's between the mode's logits and
the fp32 ``torch`` mode's on the same candidates, averaged over questions.

FLOP bound: 2 × non-embedding parameters × tokens + 4 × layers × tokens² × hidden per pair,
at the rate these cores multiply in the mode's precision (fp32 for torch and onnx, bf16, int8),
measured in the same run two ways: a large 2048³ matmul (the machine's peak) and the model's
own matmuls (one encoder layer's six, over a batch of the default size at the mean pair
length), which a 384-wide model cannot run at the large-matmul peak.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from common import QUESTIONS, RESULTS_DIR, THREADS_HELP, load_settings_and_bi_encoder, machine, percentiles, write_results
from scipy.stats import kendalltau
from sentence_transformers import CrossEncoder

from ragrerank.evaluate import load_questions, score_run
from ragrerank.models import load_cross_encoder, resolve_model
from ragrerank.rerank import Reranker, RerankSettings
from ragrerank.rerank.runtime import RUNTIMES
from ragrerank.retrieval import open_retriever
from ragrerank.types import Hit

RESULTS = RESULTS_DIR / "rerank.json"
BASELINE = "CrossEncoder.predict"
# what each mode multiplies in: its FLOP bound uses that precision's matmul peak
PRECISION = {"torch": "fp32", "torch-bf16": "bf16", "onnx": "fp32", "onnx-int8": "int8"}
PRECISIONS = ("fp32", "bf16", "int8")


def main() -> None:
    args = _parser().parse_args()
    settings, bi_encoder = load_settings_and_bi_encoder(args.threads)
    questions = [q for q in load_questions(args.questions) if q.in_scope]
    hybrid = open_retriever(settings, "hybrid", model=bi_encoder)
    depth = max(args.candidates, args.depth)
    candidates = dict(zip([q.id for q in questions], hybrid.search_many([q.query for q in questions], depth)))

    folder = resolve_model("cross-encoder", settings.cross_encoder, settings).location
    baseline = CrossEncoder(folder, device="cpu")
    model = load_cross_encoder(settings.cross_encoder, settings)
    modes = dict.fromkeys(["torch", *args.runtimes])  # fp32 torch: the reference of tau and P@3
    rerankers = {mode: Reranker(model, RerankSettings(runtime=mode, fusion_weight=None), settings.models_dir) for mode in modes}
    timed = questions[: args.timed]
    seconds = _time_contenders(baseline, rerankers, timed, candidates, args.candidates)
    ranked = {
        mode: {q.id: reranker.rerank(q.query, candidates[q.id][: args.depth]) for q in questions}
        for mode, reranker in rerankers.items()
    }
    first_stage = {qid: hits[: args.depth] for qid, hits in candidates.items()}
    result = {
        "machine": machine(),
        "model": {"folder": folder, **_model_size(model)},
        "speed": {"questions": len(timed), "candidates": args.candidates},
        "ranking": {"questions": len(questions), "depth": args.depth, "file": Path(args.questions).name},
        "first_stage_p_at_3": _p_at_3(questions, first_stage),
        "tokens_per_pair": _tokens_per_pair(model, timed, candidates, args.candidates),
        "contenders": {},
    }
    # one batch of the default size at the mean pair length, through the model's own matrix shapes
    shapes = _layer_shapes(model, round(RerankSettings().batch_size * result["tokens_per_pair"]))
    result["peak_gflops"] = {precision: round(_peak_gflops(precision), 1) for precision in PRECISIONS}
    result["model_shape_gflops"] = {precision: round(_peak_gflops(precision, shapes), 1) for precision in PRECISIONS}
    for name, times in seconds.items():
        row = {"ms": percentiles([t * 1000 for t in times], 1), "pairs_per_second": args.candidates * len(times) / sum(times)}
        row["speed_up"] = sum(seconds[BASELINE]) / sum(times)
        if name in ranked:
            row["p_at_3"] = _p_at_3(questions, ranked[name])
            row["tau"] = _mean_tau(ranked[name], ranked["torch"])
            row["flop_bound_pairs_per_second"] = _bound(result, result["peak_gflops"][PRECISION[name]])
            row["shape_bound_pairs_per_second"] = _bound(result, result["model_shape_gflops"][PRECISION[name]])
        result["contenders"][name] = row
    write_results(result, args.out)
    _print(result)


def _time_contenders(
    baseline: CrossEncoder,
    rerankers: dict[str, Reranker],
    questions: Sequence[Any],
    candidates: dict[str, list[Hit]],
    n: int,
) -> dict[str, list[float]]:
    """Per-question seconds of each contender, interleaved; one warm-up question each, not timed."""
    calls: dict[str, Callable[[str, list[Hit]], object]] = {
        BASELINE: lambda query, hits: baseline.predict([(query, hit.passage.text) for hit in hits]),
        **{mode: reranker.rerank for mode, reranker in rerankers.items()},
    }
    warm = [hit.passage.text for hit in candidates[questions[0].id][:n]]
    baseline.predict([(questions[0].query, text) for text in warm])
    for reranker in rerankers.values():
        reranker.predict(questions[0].query, warm)  # predict: leaves the cache empty
    seconds: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for i, question in enumerate(questions):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            started = time.perf_counter()
            calls[name](question.query, candidates[question.id][:n])
            seconds[name].append(time.perf_counter() - started)
    return seconds


def _p_at_3(questions: Sequence[Any], run: dict[str, list[Hit]]) -> float:
    return round(float(score_run(questions, run)["P@3"].mean()), 4)


def _mean_tau(run: dict[str, list[Hit]], reference: dict[str, list[Hit]]) -> float:
    """Kendall's tau of the logits, candidate by candidate, averaged over questions."""
    taus = []
    for qid, hits in run.items():
        reference_logit = {hit.passage.id: hit.scores["ce_logit"] for hit in reference[qid]}
        logits = [(hit.scores["ce_logit"], reference_logit[hit.passage.id]) for hit in hits]
        taus.append(kendalltau(*zip(*logits)).statistic)
    return round(float(np.nanmean(taus)), 4)


def _model_size(model: CrossEncoder) -> dict[str, int]:
    network = model.transformers_model
    config = network.config
    params = sum(p.numel() for name, p in network.named_parameters() if ".embeddings." not in f".{name}")
    return {"non_embedding_params": params, "layers": config.num_hidden_layers, "hidden": config.hidden_size}


def _tokens_per_pair(model: CrossEncoder, questions: Sequence[Any], candidates: dict[str, list[Hit]], n: int) -> float:
    """Mean tokens the model reads per pair after truncation: what the FLOP bound counts."""
    counts = [
        len(ids)
        for q in questions
        for ids in model.tokenizer(
            [q.query] * n,
            [hit.passage.text for hit in candidates[q.id][:n]],
            truncation="only_second",
            max_length=model.max_seq_length,
        )["input_ids"]
    ]
    return round(float(np.mean(counts)), 1)


def _peak_gflops(precision: str, shapes: Sequence[tuple[int, int, int]] = ((2048, 2048, 2048),), repeats: int = 5) -> float:
    """The best of a few runs of the (m, k, n) matmuls ``shapes``: what these cores multiply at, in this run."""
    operands = []
    for m, k, n in shapes:
        if precision == "int8":
            operands.append((torch.randint(-128, 127, (m, k), dtype=torch.int8), torch.randint(-128, 127, (k, n), dtype=torch.int8)))
        else:
            dtype = torch.float32 if precision == "fp32" else torch.bfloat16
            operands.append((torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)))
    multiply = torch._int_mm if precision == "int8" else torch.matmul

    def run() -> None:
        for a, b in operands:
            multiply(a, b)

    run()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return sum(2 * m * k * n for m, k, n in shapes) / best / 1e9


def _layer_shapes(model: CrossEncoder, tokens: int) -> list[tuple[int, int, int]]:
    """The matmuls of one encoder layer over ``tokens`` rows: Q, K, V, output, FFN in and out."""
    config = model.transformers_model.config
    hidden, inner = config.hidden_size, config.intermediate_size
    return [(tokens, hidden, hidden)] * 4 + [(tokens, hidden, inner), (tokens, inner, hidden)]


def _bound(result: dict[str, Any], gflops: float) -> float:
    """Pairs per second if every FLOP of a pair ran at ``gflops``."""
    size, tokens = result["model"], result["tokens_per_pair"]
    flops = 2 * size["non_embedding_params"] * tokens + 4 * size["layers"] * tokens**2 * size["hidden"]
    return gflops * 1e9 / flops


def _print(result: dict[str, Any]) -> None:
    speed, ranking = result["speed"], result["ranking"]
    print(
        f"rerank: {speed['questions']} questions × {speed['candidates']} hybrid candidates timed, "
        f"{result['tokens_per_pair']} tokens per pair; ranking on {ranking['questions']} in-scope questions "
        f"of {ranking['file']} at depth {ranking['depth']}, cross-encoder order alone; "
        f"{result['machine']['cpus']} CPUs, torch threads {result['machine']['torch_threads']}"
    )
    for key, label in (("peak_gflops", "2048³ matmul"), ("model_shape_gflops", "the model's matmul shapes")):
        print(f"GFLOP/s on {label}: " + ", ".join(f"{name} {value}" for name, value in result[key].items()))
    print(
        f"{'contender':<22}{'p50 ms':>9}{'p95 ms':>9}{'pairs/s':>9}{'speed-up':>10}"
        f"{'P@3':>8}{'tau':>8}{'FLOP bound':>12}{'of bound':>10}{'shape bound':>13}{'of bound':>10}"
    )
    for name, row in result["contenders"].items():
        cells = [f"{row['ms']['p50']:>9.1f}", f"{row['ms']['p95']:>9.1f}", f"{row['pairs_per_second']:>9.1f}"]
        cells.append(f"{row['speed_up']:>9.2f}x")
        if "p_at_3" in row:
            cells += [f"{row['p_at_3']:>8.4f}", f"{row['tau']:>8.4f}"]
            for key, width in (("flop_bound_pairs_per_second", 12), ("shape_bound_pairs_per_second", 13)):
                cells += [f"{row[key]:>{width}.1f}", f"{row['pairs_per_second'] / row[key]:>10.0%}"]
        print(f"{name:<22}" + "".join(cells))
    print(f"first stage (hybrid) P@3 {result['first_stage_p_at_3']:.4f}")
    reference = result["contenders"]["torch"]["p_at_3"]
    for name, row in result["contenders"].items():
        if "p_at_3" in row:
            print(
                f"rerank {name}: speed-up {row['speed_up']:.2f}x vs {BASELINE}, "
                f"P@3 {row['p_at_3']:.4f} ({row['p_at_3'] - reference:+.4f} vs fp32), tau {row['tau']:.4f}"
            )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", default=str(QUESTIONS), help="questions file with gold_files (e.g. ../shared/eval/dev.jsonl)")
    parser.add_argument("--timed", type=int, default=20, help="in-scope questions whose reranking is timed")
    parser.add_argument("--candidates", type=int, default=50, help="hybrid candidates reranked per timed question")
    parser.add_argument("--depth", type=int, default=30, help="hybrid candidates reranked for P@3 and tau")
    parser.add_argument("--runtimes", nargs="+", default=list(RUNTIMES), choices=RUNTIMES, help="cross-encoder runtimes to compare")
    parser.add_argument("--threads", type=int, default=0, help=THREADS_HELP)
    parser.add_argument("--out", default=str(RESULTS), help="where to write the JSON results")
    return parser


if __name__ == "__main__":
    main()
