"""Which offline signals rank real questions better than hybrid retrieval? (CPU; the evidence for issue 11)

    .venv/bin/python -m experiments.offline_signals.signals --questions data/eval/k8s_questions.jsonl \
        --questions ../shared/eval/dev.jsonl    # ~25 min the first time (query likelihood), seconds afterwards

Reranks the hybrid top 30 of each question set it is given by fixed
sums of signals, each z-scored within its list: the hybrid RRF score, the bi-encoder's cosine, BM25, the
packaged LLM's query likelihood, a flag for reference pages (API fields, flags: the words of a question, rarely
its answer), and each passage's best sum on its page (page-level aggregation). The weights are written
below, not fitted; the metrics are ragrerank.evaluate.page_measures (P@1, P@3, MRR@10 at page level, as
ragrerank eval counts them). Candidate sets and likelihoods are cached in --work (default: the artifacts
folder's experiments/offline_signals/).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from ragrerank.config import resolve_settings
from ragrerank.evaluate import page_measures
from ragrerank.finetune import TrainingSet, ValidationQuery, load_training_set, question_set, save_training_set
from ragrerank.io import atomic_write
from ragrerank.rerank import zscore
from ragrerank.rerank.query_likelihood import QueryLikelihood
from ragrerank.retrieval import HybridRetriever, embed_texts, open_retriever

COMBINATIONS = {  # name -> signal weights; "page" adds that multiple of the best sum on the passage's page
    "hybrid": {"rrf": 1},
    "query likelihood alone": {"ql": 1},
    "QL + hybrid (ragrerank's +qlfused)": {"rrf": 1, "ql": 1},
    "QL + hybrid + ½ cosine": {"rrf": 1, "ql": 1, "dense": 0.5},
    "QL + hybrid + ½ BM25": {"rrf": 1, "ql": 1, "bm25": 0.5},
    "QL + cosine + BM25 (no RRF)": {"ql": 1, "dense": 1, "bm25": 1},
    "QL + hybrid − reference page": {"rrf": 1, "ql": 1, "reference": -1},
    "QL + hybrid, + page best": {"rrf": 1, "ql": 1, "page": 1},
    "QL + hybrid − reference page, + page best": {"rrf": 1, "ql": 1, "reference": -1, "page": 1},
    "hybrid + page best": {"rrf": 1, "page": 1},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, action="append", required=True, help="a questions file (repeatable)")
    parser.add_argument("--work", type=Path, help="cache folder (default: experiments/offline_signals/ in the artifacts folder)")
    args = parser.parse_args()
    settings = resolve_settings()
    work = args.work or settings.home / "experiments" / "offline_signals"
    retriever = open_retriever(settings, "hybrid")
    scorer = None
    print("| ranking of the hybrid top 30 | " + " | ".join(f"{path.name} P@1 / P@3 / MRR@10" for path in args.questions) + " |")
    results: dict[str, list[str]] = {name: [] for name in COMBINATIONS}
    for path in args.questions:
        stem = f"{path.stem}-{hashlib.sha256(path.read_bytes()).hexdigest()[:8]}"  # a changed file gets new caches
        queries = candidate_sets(path, work / f"{stem}.json.gz", retriever)
        cache = work / f"ql_{stem}.json"
        if not cache.is_file():
            scorer = scorer or QueryLikelihood.from_settings(replace(settings, runtime="torch-bf16"))
            likelihood = [scorer.score(q.query, [hit.passage.text for hit in q.candidates]).tolist() for q in queries]
            with atomic_write(cache) as handle:
                json.dump(likelihood, handle)
        signals = [
            {"rrf": zscore([hit.score for hit in q.candidates]), "ql": zscore(ql), "reference": reference_flags(q), **lexical}
            for q, ql, lexical in zip(queries, json.loads(cache.read_text()), lexical_signals(queries, retriever), strict=True)
        ]
        for name, weights in COMBINATIONS.items():
            scores = [combine(q, s, weights) for q, s in zip(queries, signals, strict=True)]
            results[name].append(" / ".join(f"{value:.3f}" for value in page_measures(queries, scores).values()))
    for name, cells in results.items():
        print(f"| {name} | " + " | ".join(cells) + " |")


def candidate_sets(path: Path, stored: Path, retriever: HybridRetriever) -> tuple[ValidationQuery, ...]:
    """The hybrid top 30 of each in-scope question, built once (the index must not change between runs)."""
    if not stored.is_file():
        save_training_set(TrainingSet((), question_set(path, retriever.search_many, 30)), stored)
    return load_training_set(stored).validation


def lexical_signals(queries: tuple[ValidationQuery, ...], retriever: HybridRetriever) -> list[dict[str, np.ndarray]]:
    """Cosine and BM25 of every candidate, also where it came from the other list (RRF keeps ranks only)."""
    dense, bm25 = retriever.dense, retriever.bm25
    vectors = dense.index.reconstruct_n(0, dense.index.ntotal)
    row = {passage.id: number for number, passage in enumerate(dense.passages)}
    question_vectors = embed_texts(dense.model, [q.query for q in queries], progress=False)
    signals = []
    for q, vector in zip(queries, question_vectors, strict=True):
        rows = [row[hit.passage.id] for hit in q.candidates]
        signals.append({"dense": zscore(vectors[rows] @ vector), "bm25": zscore(bm25.scores(q.query)[rows])})
    return signals


def reference_flags(query: ValidationQuery) -> np.ndarray:
    return np.array([float(hit.passage.path.startswith("reference/")) for hit in query.candidates])


def combine(query: ValidationQuery, signals: dict[str, np.ndarray], weights: dict[str, float]) -> np.ndarray:
    """Weighted sum of the signals; with "page", plus that multiple of the best sum among the page's passages."""
    total = sum(weight * signals[name] for name, weight in weights.items() if name != "page")
    if "page" not in weights:
        return total
    best: dict[str, float] = {}
    for hit, value in zip(query.candidates, total, strict=True):
        best[hit.passage.path] = max(best.get(hit.passage.path, -np.inf), value)
    return total + weights["page"] * np.array([best[hit.passage.path] for hit in query.candidates])


if __name__ == "__main__":
    main()
