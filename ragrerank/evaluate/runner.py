"""Run configs over a question set, one question at a time, timing each stage."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ragrerank.config import Settings
from ragrerank.errors import RagrerankError
from ragrerank.evaluate.configs import DEFAULT_CONFIGS, EvalConfig, Reranks, parse_config, parse_configs
from ragrerank.evaluate.metrics import METRICS, RANK_DEPTH, Run, score_run
from ragrerank.evaluate.questions import Question, load_questions
from ragrerank.evaluate.report import EvalReport
from ragrerank.evaluate.stats import roc_auc
from ragrerank.types import Hit

if TYPE_CHECKING:
    from ragrerank.rerank import Reranker
    from ragrerank.retrieval import Retriever

logger = logging.getLogger(__name__)


def evaluate(
    questions: Sequence[Question],
    configs: Sequence[EvalConfig],
    first_stages: Mapping[str, Retriever],
    rerankers: Mapping[str, Reranks] | None = None,
    source: str = "",
    progress: bool = False,
) -> EvalReport:
    """Run every config over the questions, one question at a time, timing each stage.

    Each first stage searches once per question, as deep as its deepest config needs;
    configs of that mode take a prefix of it, so ``hybrid`` and ``hybrid+rerank@50`` rank
    the very same candidates (a prefix of a deeper search equals the shallower search for
    the flat, BM25 and fused retrievers up to the hybrid depth of 100).

    Args:
        questions: from ``load_questions``.
        configs: configs with unique names; reranked ones need ``cross_encoder`` set.
        first_stages: a retriever per mode the configs use.
        rerankers: a reranker per ``reranker_key`` the configs use.
        source: where the questions came from, for the report.
        progress: show progress bars.
    """
    configs = parse_configs(configs)
    rerankers = rerankers or {}
    for config in configs:
        if config.mode not in first_stages:
            raise RagrerankError(f"config {config.name!r} needs a {config.mode} retriever: open one for it")
        if config.reranks and config.reranker_key not in rerankers:
            raise RagrerankError(f"config {config.name!r} needs a reranker under key {config.reranker_key!r}")
    depths: dict[str, int] = {}
    for config in configs:
        depths[config.mode] = max(depths.get(config.mode, RANK_DEPTH), config.candidates)
    first = {
        mode: _timed(questions, partial(_search, first_stages[mode], depth), f"{mode} search", progress)
        for mode, depth in depths.items()
    }
    frames, runs = [], {}
    for config in configs:
        candidates, retrieve_ms = first[config.mode]
        candidates = {qid: hits[: config.candidates] for qid, hits in candidates.items()}
        run, rerank_ms = candidates, dict.fromkeys(candidates, 0.0)
        if config.reranks:
            stage = partial(_rerank, rerankers[config.reranker_key], candidates)
            run, rerank_ms = _timed(questions, stage, config.name, progress)
        runs[config.name] = run
        frames.append(_question_frame(config, questions, run, candidates, retrieve_ms, rerank_ms))
    per_question = pd.concat(frames, ignore_index=True)
    return EvalReport(source, configs, tuple(questions), _summary(configs, per_question), per_question, runs)


def _search(retriever: Retriever, depth: int, question: Question) -> list[Hit]:
    return retriever.search(question.query, depth)


def _rerank(reranker: Reranks, candidates: Run, question: Question) -> list[Hit]:
    return reranker.rerank(question.query, candidates[question.id])


def _timed(
    questions: Sequence[Question], stage: Callable[[Question], Sequence[Hit]], desc: str, progress: bool
) -> tuple[dict[str, tuple[Hit, ...]], dict[str, float]]:
    """Run one stage question by question, as a user would wait for it, with its latency in ms."""
    hits, millis = {}, {}
    for question in tqdm(questions, desc=desc, disable=not progress):
        started = time.perf_counter()
        hits[question.id] = tuple(stage(question))
        millis[question.id] = (time.perf_counter() - started) * 1000
    return hits, millis


def _question_frame(
    config: EvalConfig,
    questions: Sequence[Question],
    run: Run,
    candidates: Run,
    retrieve_ms: Mapping[str, float],
    rerank_ms: Mapping[str, float],
) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "config": config.name,
            "id": [q.id for q in questions],
            "type": [q.type for q in questions],
            "in_scope": [q.in_scope for q in questions],
            "best_score": [run[q.id][0].score if run[q.id] else np.nan for q in questions],
            "best_prob": [run[q.id][0].ce_prob if run[q.id] and run[q.id][0].ce_prob is not None else np.nan for q in questions],
            "retrieve_ms": [retrieve_ms[q.id] for q in questions],
            "rerank_ms": [rerank_ms[q.id] for q in questions],
        }
    )
    metrics = score_run(questions, run, candidates)
    return frame.join(metrics, on="id")


def _summary(configs: Sequence[EvalConfig], per_question: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for config in configs:
        frame = per_question[per_question["config"] == config.name]
        scoped = frame[frame["in_scope"]]
        has_ood = not frame["in_scope"].all()
        # what decide() sees after reranking; a likelihood has no probability, so its top score stands in
        signal = "best_prob" if config.reranking.uses_cross_encoder else "best_score"
        rows.append(
            {
                "config": config.name,
                "candidates": config.candidates,
                "n": len(scoped),
                **scoped[list(METRICS)].mean().round(3).to_dict(),
                "AUC_ood": round(roc_auc(frame[signal], frame["in_scope"]), 3) if has_ood else np.nan,
                "retrieve_ms": round(float(frame["retrieve_ms"].median()), 1),
                "rerank_ms": round(float(frame["rerank_ms"].median()), 1),
            }
        )
    return pd.DataFrame(rows)


def run_eval(
    settings: Settings,
    queries_path: str | Path,
    configs: str | Sequence[str | EvalConfig] = DEFAULT_CONFIGS,
    progress: bool = True,
    store: str = "faiss",
    milvus_uri: str | None = None,
    milvus_token: str = "",
) -> EvalReport:
    """Evaluate configs over a questions file with the built index: the CLI's ``ragrerank eval``.

    Loads the bi-encoder once (only when a config searches densely), one reranker per
    cross-encoder, and warns when a gold page is not in the passages, since no config can
    find it. Latencies are wall-clock per question: on a busy shared CPU, torch's intra-op
    threads straggle (a 10 ms query embedding took 400-560 ms with 2 threads on a loaded
    2-core machine), so call ``torch.set_num_threads(1)`` first when latency matters.

    Example:
        >>> print(format_report(run_eval(settings, "data/eval/k8s_questions.jsonl", "bm25,hybrid")))
    """
    from ragrerank.retrieval import open_retriever

    questions = load_questions(queries_path)
    configs = tuple(
        replace(c, cross_encoder=c.cross_encoder or settings.cross_encoder) if c.reranking.uses_cross_encoder else c
        for c in parse_configs(configs)
    )
    first_stages = {
        mode: open_retriever(settings, mode, store=store, milvus_uri=milvus_uri, milvus_token=milvus_token)
        for mode in dict.fromkeys(config.mode for config in configs)
    }
    _warn_unreachable(questions, settings)
    return evaluate(questions, configs, first_stages, _rerankers(settings, configs), str(queries_path), progress)


def _rerankers(settings: Settings, configs: Sequence[EvalConfig]) -> dict[str, Reranks]:
    """One loaded model per cross-encoder, one LLM for query likelihood; each reranking a view of it.

    The views share the model's score cache, so pure and fused configs score each pair once.
    """
    from ragrerank.rerank import Reranker

    rerankers: dict[str, Reranks] = {}
    models = {
        name: Reranker.from_settings(settings.with_models(cross_encoder=name))
        for name in dict.fromkeys(c.cross_encoder for c in configs if c.reranking.uses_cross_encoder)
    }
    for config in configs:
        if config.reranking.uses_cross_encoder:
            model = models[config.cross_encoder]
            rerankers[config.reranker_key] = model.with_fusion(None) if config.reranking.pure else model
    likelihood_configs = [c for c in configs if c.reranks and not c.reranking.uses_cross_encoder]
    if likelihood_configs:
        from ragrerank.rerank.query_likelihood import QueryLikelihood, QueryLikelihoodReranker

        likelihood = QueryLikelihoodReranker(QueryLikelihood.from_settings(settings))
        for config in likelihood_configs:
            rerankers[config.reranker_key] = likelihood.with_fusion(None) if config.reranking.pure else likelihood
    return rerankers


def candidate_sweep(
    settings: Settings,
    queries_path: str | Path,
    depths: Sequence[int] = (10, 25, 50, 100),
    mode: str = "hybrid",
    cross_encoder: str | None = None,
    progress: bool = True,
) -> EvalReport:
    """Rerank ``depths`` candidates each, against the unreranked first stage: precision vs latency.

    One first-stage search serves every depth; the summary's ``candidates``, ``P@3`` and
    ``rerank_ms`` columns are the curve.
    """
    reranked = [replace(parse_config(f"{mode}+rerank@{depth}"), cross_encoder=cross_encoder) for depth in depths]
    return run_eval(settings, queries_path, [parse_config(f"{mode}@{max(depths)}"), *reranked], progress)


def rerank_latency(
    reranker: Reranker, questions: Sequence[Question], run: Run, depths: Sequence[int], sample: int = 10, seed: int = 0
) -> pd.DataFrame:
    """p50 wall-clock ms of scoring the top ``depth`` candidates of ``sample`` in-scope questions, per depth.

    Scores with ``Reranker.predict``, which the score cache does not serve, so every depth pays
    for every pair as a first-time question would; the same questions serve every depth.
    """
    scoped = sorted((q for q in questions if q.in_scope and q.id in run), key=lambda q: q.id)
    if not scoped:
        raise RagrerankError("no in-scope question of the run to time: pass the run of these questions")
    rng = np.random.default_rng(seed)
    chosen = [scoped[i] for i in sorted(rng.choice(len(scoped), size=min(sample, len(scoped)), replace=False))]
    rows = []
    for depth in depths:
        millis = []
        for question in chosen:
            texts = [hit.passage.text for hit in run[question.id][:depth]]
            started = time.perf_counter()
            reranker.predict(question.query, texts)
            millis.append((time.perf_counter() - started) * 1000)
        rows.append({"candidates": depth, "rerank_ms": float(np.median(millis))})
    return pd.DataFrame(rows)


def _warn_unreachable(questions: Sequence[Question], settings: Settings) -> None:
    from ragrerank.io import read_jsonl

    paths = {record["path"] for record in read_jsonl(settings.passages_path)}
    missing = sorted({path for q in questions for path in q.gold_files} - paths)
    if missing:
        logger.warning(
            "%d gold file(s) have no passage, so no config can retrieve them: %s",
            len(missing),
            ", ".join(missing[:5]),
        )
