"""Plots the notebooks share; each takes an Axes so notebooks control layout."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from scipy.stats import bootstrap

from ragrerank.types import Hit


def rank_shift(ax: Axes, reranked: Sequence[Hit], title: str, label_width: int = 28) -> None:
    """Slope chart: each candidate's first-stage rank (left) joined to its reranked rank (right).

    Lines that cross show where the cross-encoder disagreed with the bi-encoder; a line
    rising to rank 1 is a passage the first stage had buried.
    """
    for hit in reranked:
        before, after = hit.scores["first_stage_rank"], hit.rank
        colour = "tab:green" if after < before else "tab:red" if after > before else "tab:gray"
        ax.plot([0, 1], [before, after], marker="o", color=colour, alpha=0.8)
        ax.annotate(hit.passage.title[:label_width], (1, after), xytext=(6, 0), textcoords="offset points", va="center", fontsize=8)
    depth = max([len(reranked), *(hit.scores["first_stage_rank"] for hit in reranked)])
    ax.set_xlim(-0.1, 1.1)
    ax.set_ylim(depth + 0.5, 0.5)
    ax.set_xticks([0, 1], ["bi-encoder rank", "cross-encoder rank"])
    ax.set_yticks(range(1, int(depth) + 1))
    ax.set_title(title, fontsize=10)


def metric_bars(ax: Axes, per_question: pd.DataFrame, metric: str, configs: Sequence[str], seed: int = 0) -> None:
    """One bar per config: the metric's mean over in-scope questions with a 95% bootstrap interval.

    The interval resamples questions (``scipy.stats.bootstrap``, percentile method), so
    overlapping bars say the difference may be noise; the paired test in
    ``EvalReport.compare`` is the sharper check for two configs on the same questions.
    """
    means, lows, highs = [], [], []
    for config in configs:
        values = per_question.loc[(per_question["config"] == config) & per_question["in_scope"], metric].to_numpy(float)
        interval = bootstrap((values,), np.mean, n_resamples=2000, method="percentile", rng=np.random.default_rng(seed))
        means.append(values.mean())
        lows.append(values.mean() - interval.confidence_interval.low)
        highs.append(interval.confidence_interval.high - values.mean())
    positions = np.arange(len(configs))
    ax.bar(positions, means, yerr=[lows, highs], capsize=3, color="tab:blue", alpha=0.8)
    ax.set_xticks(positions, configs, rotation=40, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title(metric, fontsize=10)


def reliability_diagram(ax: Axes, table: pd.DataFrame, label: str) -> None:
    """Relevant fraction against mean predicted probability per bin; the diagonal is perfect calibration.

    ``table`` comes from ``ragrerank.evaluate.reliability_table``; each point is sized by
    how many passages fell in its bin, empty bins are skipped.
    """
    filled = table[table["count"] > 0]
    ax.plot([0, 1], [0, 1], linestyle="--", color="tab:gray", linewidth=1)
    ax.plot(filled["mean_prob"], filled["relevant_fraction"], marker="o", label=label)
    ax.scatter(filled["mean_prob"], filled["relevant_fraction"], s=10 + 2 * np.sqrt(filled["count"]) * 10, alpha=0.3)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("cross-encoder probability (expit of the logit)")
    ax.set_ylabel("share of passages from a gold page")


def precision_latency(ax: Axes, curve: pd.DataFrame, metric: str = "P@3") -> None:
    """Precision against reranking latency, one point per candidate depth (``curve``: candidates, rerank_ms, metric)."""
    ax.plot(curve["rerank_ms"], curve[metric], marker="o")
    for _, row in curve.iterrows():
        ax.annotate(f"{int(row['candidates'])}", (row["rerank_ms"], row[metric]), xytext=(5, -10), textcoords="offset points")
    ax.set_xlabel("rerank latency per question, p50 (ms)")
    ax.set_ylabel(metric)
