"""Scores shared by every reranker: a bounded score cache, z-scores, fusion with the first stage, reordering."""

from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ragrerank.types import Hit


@dataclass(frozen=True)
class CacheInfo:
    """Like ``functools.lru_cache``'s: misses are the pairs the model had to score."""

    hits: int
    misses: int
    size: int
    maxsize: int


class ScoreCache:
    """A bounded LRU map (query, passage digest) → score, owned by one reranker.

    Its reranker fixes the model, mode and window, so they need not be part of the key.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._scores: OrderedDict[tuple[str, bytes], float] = OrderedDict()
        self._hits = self._misses = 0

    def lookup(self, keys: Iterable[tuple[str, bytes]]) -> dict[tuple[str, bytes], float]:
        """The cached scores among ``keys``, marked as recently used."""
        found = {}
        for key in keys:
            if key in self._scores:
                self._scores.move_to_end(key)
                found[key] = self._scores[key]
                self._hits += 1
            else:
                self._misses += 1
        return found

    def scores(self, query: str, texts: Sequence[str], compute: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        """The score of every text for ``query``, in order: cached ones looked up, the rest ``compute``d once."""
        keys = [(query, _digest(text)) for text in texts]
        known = self.lookup(dict.fromkeys(keys))
        todo = {key: text for key, text in zip(keys, texts) if key not in known}
        if todo:
            fresh = dict(zip(todo, compute(list(todo.values())).tolist()))
            self.store(fresh)
            known.update(fresh)
        return np.array([known[key] for key in keys], dtype=np.float32)

    def store(self, scores: Mapping[tuple[str, bytes], float]) -> None:
        if not self.maxsize:
            return
        self._scores.update(scores)
        while len(self._scores) > self.maxsize:
            self._scores.popitem(last=False)

    def info(self) -> CacheInfo:
        return CacheInfo(self._hits, self._misses, len(self._scores), self.maxsize)


def _digest(text: str) -> bytes:
    """16 bytes stand for a passage in the cache key, instead of its ~1 kB of text."""
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def fuse(ce_logits: Sequence[float], first_stage: Sequence[float], weight: float) -> np.ndarray:
    """Final score = cross-encoder logit + weight × first-stage score z-scored within the list.

    The first-stage score is standardised per query because RRF, BM25 and cosine scores live
    on unrelated scales; the logit stays raw so a weight fitted on validation keeps its
    meaning. ``weight=inf`` keeps the first-stage order exactly (ties too), ignoring the logit.

    Example:
        >>> fuse([2.0, 0.0], [0.9, 0.1], weight=1.0).round(2)
        array([3., -1.])
    """
    z = zscore(first_stage)
    if math.isinf(weight):
        return z
    return np.asarray(ce_logits, dtype=float) + weight * z


def zscore(values: Sequence[float]) -> np.ndarray:
    """Standardise within one list (a constant list becomes zeros): scores of unrelated scales become comparable."""
    values = np.asarray(values, dtype=float)
    return (values - values.mean()) / (values.std() or 1.0) if len(values) else values


def reorder(hits: Sequence[Hit], final: Sequence[float], gained: Callable[[int], dict[str, float]]) -> list[Hit]:
    """``hits`` best ``final`` score first, ties in first-stage order, re-ranked from 1.

    Each hit keeps its first-stage scores plus ``first_stage_rank`` and what ``gained(i)`` adds
    for the hit at input position ``i``; its ``score`` becomes the score it was ordered by.
    """
    order = sorted(range(len(hits)), key=lambda i: (-float(final[i]), hits[i].rank, i))
    return [
        replace(
            hits[i],
            score=float(final[i]),
            rank=new_rank,
            scores={**hits[i].scores, "first_stage_rank": float(hits[i].rank), **gained(i)},
        )
        for new_rank, i in enumerate(order, start=1)
    ]
