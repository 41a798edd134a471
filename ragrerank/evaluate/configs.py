"""Which pipelines to measure: a first stage, optionally reranked, written as the CLI's ``--configs``."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from ragrerank.errors import RagrerankError
from ragrerank.types import MODES, Hit

DEFAULT_CANDIDATES = 50
DEFAULT_CONFIGS = ("dense", "bm25", "hybrid", "hybrid+rerank@50")
_CONFIG_SPEC = re.compile(r"(?P<mode>[a-z0-9]+)(?:\+(?P<rerank>rerank|ce|qlfused|ql))?(?:@(?P<candidates>\d+))?")


class Reranking(Enum):
    """What orders a config's candidates after the first stage: one value, written after ``+`` in a spec."""

    NONE = ""  # the first stage's order
    SHIPPED = "rerank"  # the cross-encoder as shipped: its logit fused with the first stage by its fitted weight
    CROSS_ENCODER = "ce"  # the cross-encoder's logit alone
    QUERY_LIKELIHOOD = "ql"  # the LLM's query likelihood alone (ragrerank.rerank.query_likelihood)
    QUERY_LIKELIHOOD_FUSED = "qlfused"  # query likelihood and the first stage, z-scored, at equal weight

    @property
    def uses_cross_encoder(self) -> bool:
        return self in (Reranking.SHIPPED, Reranking.CROSS_ENCODER)

    @property
    def pure(self) -> bool:
        """Orders by the reranker's own score, without the first stage's."""
        return self in (Reranking.CROSS_ENCODER, Reranking.QUERY_LIKELIHOOD)


@dataclass(frozen=True)
class EvalConfig:
    """One pipeline to measure: a first stage, optionally reranked from ``candidates`` hits.

    ``candidates`` is the depth of the first stage: what the reranker rescores, and the depth
    of ``R@cand``. ``cross_encoder`` names the model of a cross-encoder reranking (None: the
    settings' model).
    """

    name: str
    mode: str
    reranking: Reranking = Reranking.NONE
    candidates: int = DEFAULT_CANDIDATES
    cross_encoder: str | None = None

    @property
    def reranks(self) -> bool:
        return self.reranking is not Reranking.NONE

    @property
    def reranker_key(self) -> str:
        """Which reranker this config needs: one per (scorer, reranking); configs that agree share it."""
        return f"{self.cross_encoder or ''}+{self.reranking.value}"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise RagrerankError(f"config {self.name!r} has mode {self.mode!r}: choose one of {', '.join(MODES)}")
        if isinstance(self.candidates, bool) or not isinstance(self.candidates, int) or self.candidates < 1:
            raise RagrerankError(f"config {self.name!r} has candidates={self.candidates!r}: use a whole number ≥ 1")
        if self.cross_encoder is not None and not self.reranking.uses_cross_encoder:
            raise RagrerankError(
                f"config {self.name!r} names the cross-encoder {self.cross_encoder!r} but reranks by "
                f"{self.reranking.name.lower().replace('_', ' ')}: it takes no cross-encoder"
            )


def parse_config(spec: str) -> EvalConfig:
    """Read ``MODE[+rerank|+ce|+ql|+qlfused][@CANDIDATES]``, the form the CLI's ``--configs`` takes.

    ``+rerank`` reranks with the model as shipped (fused with the first stage by its fitted
    weight), ``+ce`` by the cross-encoder's score alone; ``+ql`` by the LLM's query likelihood
    alone, ``+qlfused`` by it and the first-stage score at equal weight. Reranked configs are
    named with their depth, so ``hybrid+rerank`` and ``hybrid+rerank@50`` are the same config.

    Example:
        >>> parse_config("hybrid+ce@30")
        EvalConfig(name='hybrid+ce@30', mode='hybrid', reranking=<Reranking.CROSS_ENCODER: 'ce'>, candidates=30, cross_encoder=None)
        >>> parse_config("bm25").name
        'bm25'
    """
    match = _CONFIG_SPEC.fullmatch(spec.strip().lower())
    if match is None or match["mode"] not in MODES:
        raise RagrerankError(
            f"unknown config {spec!r}: write MODE[+rerank|+ce|+ql|+qlfused][@CANDIDATES] with MODE one of {', '.join(MODES)}, "
            "e.g. hybrid+rerank@50"
        )
    mode, reranking = match["mode"], Reranking(match["rerank"] or "")
    candidates = int(match["candidates"]) if match["candidates"] else DEFAULT_CANDIDATES
    if reranking is not Reranking.NONE:
        name = f"{mode}+{reranking.value}@{candidates}"
    else:
        name = mode if candidates == DEFAULT_CANDIDATES else f"{mode}@{candidates}"
    return EvalConfig(name, mode, reranking, candidates)


def parse_configs(specs: str | Iterable[str | EvalConfig]) -> tuple[EvalConfig, ...]:
    """Parse a comma-separated list (or a sequence of specs and configs); names must be unique.

    Example:
        >>> [config.name for config in parse_configs("dense, hybrid+rerank@30")]
        ['dense', 'hybrid+rerank@30']
    """
    items = [item for item in specs.split(",") if item.strip()] if isinstance(specs, str) else list(specs)
    configs = tuple(item if isinstance(item, EvalConfig) else parse_config(item) for item in items)
    if not configs:
        raise RagrerankError(f"no configs in {specs!r}: name at least one, e.g. dense,bm25,hybrid")
    names = [config.name for config in configs]
    if len(set(names)) != len(names):
        raise RagrerankError(f"configs {names} repeat a name: list each config once")
    return configs


class Reranks(Protocol):
    """What evaluation needs of a reranker (``ragrerank.rerank.Reranker`` fits)."""

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]: ...
