"""Plots the notebooks share; each takes an Axes so notebooks control layout."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes

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
