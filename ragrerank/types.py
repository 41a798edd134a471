"""Frozen result types that flow one way through the pipeline: Passage → Hit → Answer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

Mode = Literal["dense", "bm25", "hybrid"]  # first-stage retrieval modes
MODES: tuple[str, ...] = get_args(Mode)


@dataclass(frozen=True)
class Passage:
    """A self-contained chunk of one docs page, ready to embed, index and cite.

    ``text`` already starts with the page title and heading path, so a model that reads
    only the passage still knows where it comes from.
    """

    id: str
    path: str  # relative to website/content/en/docs, e.g. "concepts/workloads/controllers/job.md"
    title: str
    heading: tuple[str, ...]  # heading path inside the page, outermost first
    url: str  # https://kubernetes.io/docs/...#anchor
    text: str
    words: int

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        record["heading"] = list(self.heading)
        return record

    @classmethod
    def from_json(cls, record: dict[str, Any]) -> Passage:
        return cls(**{**record, "heading": tuple(record["heading"])})


@dataclass(frozen=True)
class Hit:
    """One retrieved passage with the scores each stage gave it; ``rank`` is 1-based.

    ``score`` is the score of the stage that produced this ordering (cosine, BM25, fused
    RRF, or the cross-encoder logit after reranking); stage-specific scores stay in
    ``scores`` so a table can show them side by side.
    """

    passage: Passage
    score: float
    rank: int
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def ce_prob(self) -> float | None:
        return self.scores.get("ce_prob")

    def to_json(self) -> dict[str, Any]:
        passage = self.passage
        return {
            "passage_id": passage.id,
            "path": passage.path,
            "title": passage.title,
            "heading": list(passage.heading),
            "url": passage.url,
            "text": passage.text,
            **{name: round(value, 6) for name, value in self.scores.items()},
            "rank": self.rank,
        }
