"""What an evaluation measured, as tables: the summary, per question, per type, wins and losses."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ragrerank.errors import RagrerankError
from ragrerank.evaluate.configs import EvalConfig
from ragrerank.evaluate.metrics import METRICS, RANK_DEPTH
from ragrerank.evaluate.questions import Question
from ragrerank.evaluate.stats import PairedComparison, paired_bootstrap
from ragrerank.types import Hit


@dataclass(frozen=True, eq=False)
class EvalReport:
    """What ``evaluate`` measured: a summary, every question's values, and the rankings behind them.

    ``summary`` has one row per config (metrics over in-scope questions rounded to 3
    decimals, p50 latencies in ms, and ``AUC_ood``: how well the top hit's score, or its
    ``ce_prob`` when reranked, tells in-scope from out-of-scope questions). ``per_question`` has one
    row per (config, question), rank metrics NaN for out-of-scope questions. ``runs`` maps
    config → question id → hits, so a notebook can show where a config wins or loses.
    """

    source: str
    configs: tuple[EvalConfig, ...]
    questions: tuple[Question, ...]
    summary: pd.DataFrame
    per_question: pd.DataFrame
    runs: Mapping[str, Mapping[str, tuple[Hit, ...]]]

    def frame(self, config: str) -> pd.DataFrame:
        """One config's per-question rows, indexed by question id."""
        if config not in self.runs:
            raise RagrerankError(f"no config {config!r} in this report: choose one of {', '.join(self.runs)}")
        rows = self.per_question[self.per_question["config"] == config]
        return rows.set_index("id").rename_axis(None)

    def compare(
        self, baseline: str, candidate: str, metric: str = "P@3", resamples: int = 10_000, seed: int = 0
    ) -> PairedComparison:
        """Paired bootstrap of ``candidate - baseline`` on ``metric`` over the in-scope questions."""
        if metric not in METRICS:
            raise RagrerankError(f"unknown metric {metric!r}: choose one of {', '.join(METRICS)}")
        a, b = (self.frame(name).query("in_scope")[metric].rename(name) for name in (baseline, candidate))
        return paired_bootstrap(a, b, resamples, seed, metric)

    def changes(self, baseline: str, candidate: str, metric: str = "RR@10") -> pd.DataFrame:
        """The in-scope questions where ``candidate`` and ``baseline`` differ on ``metric``, worst loss first.

        Each row shows the question, both values, where the first gold passage sits in each
        ranking (``gold_rank``; none in the top 10 is NaN) and each config's top passage, so a
        reader can see *why* a question was rescued or broken.
        """
        if metric not in METRICS:
            raise RagrerankError(f"unknown metric {metric!r}: choose one of {', '.join(METRICS)}")
        before, after = self.frame(baseline), self.frame(candidate)
        questions = {question.id: question for question in self.questions if question.in_scope}
        rows = []
        for qid, question in questions.items():
            delta = after.at[qid, metric] - before.at[qid, metric]
            if delta == 0:
                continue
            row = {"id": qid, "type": question.type, "query": question.query, "delta": round(float(delta), 3)}
            for label, name in (("before", baseline), ("after", candidate)):
                hits = self.runs[name][qid]
                row[f"gold_rank_{label}"] = _gold_rank(hits, question)
                row[f"top_{label}"] = hits[0].passage.id if hits else ""
            rows.append(row)
        columns = ["id", "type", "query", "delta", "gold_rank_before", "gold_rank_after", "top_before", "top_after"]
        return pd.DataFrame(rows, columns=columns).sort_values(["delta", "id"], kind="stable").reset_index(drop=True)

    def by_type(self) -> pd.DataFrame:
        """Mean metrics per (config, question type) over in-scope questions, with the count ``n``."""
        scoped = self.per_question[self.per_question["in_scope"]]
        grouped = scoped.groupby(["config", "type"], sort=False)
        table = grouped[list(METRICS)].mean().round(3)
        table.insert(0, "n", grouped.size())
        return table

    def to_json(self) -> dict[str, Any]:
        """Summary and per-type tables as JSON-ready records, for ``ragrerank eval --json``."""
        return {
            "questions": self.source,
            "in_scope": sum(question.in_scope for question in self.questions),
            "out_of_scope": sum(not question.in_scope for question in self.questions),
            "summary": json.loads(self.summary.to_json(orient="records")),
            "by_type": json.loads(self.by_type().reset_index().to_json(orient="records")),
        }


def _gold_rank(hits: Sequence[Hit], question: Question) -> float:
    """1-based rank of the first passage from a gold page within the rank depth, NaN when none."""
    return next((float(rank) for rank, hit in enumerate(hits[:RANK_DEPTH], 1) if hit.passage.path in question.gold_files), np.nan)


def format_report(report: EvalReport) -> str:
    """The summary as a plain-text table, with the question counts it was measured on.

    Example:
        >>> print(format_report(report))  # doctest: +SKIP
        data/eval/k8s_questions.jsonl: 173 in scope, 30 out of scope; rank metrics on in-scope only
        config  candidates    n   P@1   P@3  RR@10  nDCG@10  R@cand  evidence@3  AUC_ood  retrieve_ms  rerank_ms
        ...
    """
    scoped = sum(question.in_scope for question in report.questions)
    header = (
        f"{report.source or 'questions'}: {scoped} in scope, {len(report.questions) - scoped} out of scope; "
        "rank metrics on in-scope only"
    )
    return header + "\n" + report.summary.to_string(index=False, na_rep="-")
