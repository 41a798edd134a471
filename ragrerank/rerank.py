"""Cross-encoder reranking: read query and passage together, rescore, reorder.

The cross-encoder returns a raw logit per (query, passage) pair. ``expit(logit)`` (the
sigmoid) turns it into a probability-like score in (0, 1): it is monotonic, so the
ranking is the same, but it gives a scale on which a threshold means something
("answer only when the best passage scores above 0.5").
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import expit

from ragrerank.config import Settings, resolve_settings
from ragrerank.errors import RagrerankError
from ragrerank.runtime import ONNX_FILES, check_mode, load_scorer
from ragrerank.types import Hit

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

    from ragrerank.index import Retriever


@dataclass(frozen=True)
class RerankSettings:
    """How to run the cross-encoder; defaults suit a 2-core laptop reranking 50 candidates."""

    batch_size: int = 16
    max_length: int | None = None  # tokens per (query, passage) pair; None keeps the model's own limit
    top_n: int | None = None  # keep only the best n after reranking
    threshold: float | None = None  # keep only hits whose probability reaches this value
    # Order by logit + fusion_weight × z-scored first-stage score; None orders by the logit alone,
    # inf keeps the first-stage order. from_settings() reads the weight fitted with the model.
    fusion_weight: float | None = None
    mode: str = "torch"  # how the model runs: one of runtime.MODES (fp32 torch, bf16, ONNX fp32/int8)
    cache_size: int = 10_000  # (query, passage) logits kept, so repeated cells do not rescore; 0: none

    def __post_init__(self) -> None:
        check_mode(self.mode)
        if self.cache_size < 0:
            raise RagrerankError(f"cache_size must be ≥ 0 (0 turns the cache off), got {self.cache_size}")
        if self.batch_size < 1:
            raise RagrerankError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.top_n is not None and self.top_n < 1:
            raise RagrerankError(f"top_n must be at least 1, got {self.top_n}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise RagrerankError(f"threshold is a probability in [0, 1], got {self.threshold}")
        if self.fusion_weight is not None and not self.fusion_weight >= 0:
            raise RagrerankError(f"fusion_weight must be ≥ 0 (or None for the logit alone), got {self.fusion_weight}")


class Reranker:
    """Rescore retrieved hits with a cross-encoder and return them best first.

    Example:
        >>> reranker = Reranker.from_settings(settings)
        >>> best = reranker.rerank("How do I run a task once?", hits)[0]
        >>> best.passage.title, round(best.scores["ce_prob"], 2)
        ('Jobs', 0.97)
    """

    def __init__(
        self, model: CrossEncoder, settings: RerankSettings = RerankSettings(), models_dir: Path | None = None
    ) -> None:
        """``models_dir`` receives the ONNX exports (default: the artifacts folder's models/)."""
        self.model = model
        self.settings = settings
        if models_dir is None and settings.mode in ONNX_FILES:
            models_dir = resolve_settings().models_dir
        self._score = load_scorer(model, settings.mode, models_dir)
        self._cache = ScoreCache(settings.cache_size)

    @classmethod
    def from_settings(cls, settings: Settings, rerank: RerankSettings | None = None) -> Reranker:
        """Load the configured cross-encoder (offline: the project's own) through models.py.

        Without explicit ``rerank`` settings, the fusion weight fitted together with the model
        (its ``fusion.json``) is used, so the model is run the way it was validated, in the
        execution mode ``settings.rerank_mode``.
        """
        from ragrerank.models import load_cross_encoder, resolve_model

        if rerank is None:
            source = resolve_model("cross-encoder", settings.cross_encoder, settings)
            rerank = RerankSettings(fusion_weight=model_fusion_weight(Path(source.location)), mode=settings.rerank_mode)
        model = load_cross_encoder(settings.cross_encoder, settings, max_length=rerank.max_length)
        return cls(model, rerank, settings.models_dir)

    def with_fusion(self, weight: float | None) -> Reranker:
        """The same loaded model ordering by another fusion weight (None: the logit alone)."""
        fused = copy.copy(self)  # shares the scorer and the cache: the logits do not change
        fused.settings = replace(self.settings, fusion_weight=weight)
        return fused

    def predict(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """Raw relevance logits of ``texts`` for ``query``, in input order; always runs the model.

        Pairs are scored in length-sorted batches (no padding to the longest passage of
        the whole set), in the execution mode of the settings. Only the passage is
        truncated to fit the model window, so the question is always read in full, in
        (query, passage) order.
        """
        _check_query(query)
        for position, text in enumerate(texts):
            if not isinstance(text, str):
                raise RagrerankError(f"passage {position} is a {type(text).__name__}, not text: pass passage strings")
        if not texts:
            return np.zeros(0, dtype=np.float32)
        logits = self._score(self._fit_query(query), texts, self.settings.batch_size)
        if not np.all(np.isfinite(logits)):
            raise RagrerankError(f"cross-encoder gave a non-finite score for query {query[:80]!r}: the model is broken")
        return logits

    def cache_info(self) -> CacheInfo:
        """Hits and misses of rerank()'s score cache, in distinct (query, passage) pairs."""
        return self._cache.info()

    def _fit_query(self, query: str) -> str:
        """Cut a question longer than half the model window, so the passage is still read."""
        tokenizer, budget = self.model.tokenizer, self.model.max_seq_length // 2
        ids = tokenizer(query, add_special_tokens=False)["input_ids"]
        if len(ids) <= budget:
            return query
        warnings.warn(f"query of {len(ids)} tokens cut to {budget} for the cross-encoder window", stacklevel=3)
        return tokenizer.decode(ids[:budget])

    def rerank(
        self, query: str, hits: Sequence[Hit], top_n: int | None = None, threshold: float | None = None
    ) -> list[Hit]:
        """Reorder ``hits`` by cross-encoder score; ties keep the first-stage order.

        Each returned hit keeps its first-stage scores and gains ``ce_logit`` and
        ``ce_prob`` (and ``fused_rerank_score`` when fusing); its ``score`` becomes the
        score it was ordered by and ``rank`` the new 1-based rank. ``top_n`` and
        ``threshold`` default to the reranker's settings. Pairs reranked before are
        served from the cache, so re-running a notebook cell does not rescore them.
        """
        top_n = top_n if top_n is not None else self.settings.top_n
        threshold = threshold if threshold is not None else self.settings.threshold
        _check_query(query)
        texts = [hit.passage.text for hit in hits]
        logits = self._cache.scores(query, texts, lambda todo: self.predict(query, todo))  # predict() only the new pairs
        weight = self.settings.fusion_weight
        final = logits if weight is None else fuse(logits, [hit.score for hit in hits], weight)

        def gained(i: int) -> dict[str, float]:
            scores = {"ce_logit": float(logits[i]), "ce_prob": float(expit(logits[i]))}
            return scores if weight is None else {**scores, "fused_rerank_score": float(final[i])}

        reranked = reorder(hits, final, gained)
        if threshold is not None:
            reranked = [hit for hit in reranked if hit.scores["ce_prob"] >= threshold]
        return reranked[:top_n] if top_n is not None else reranked


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


def model_fusion_weight(model_dir: Path) -> float | None:
    """The fusion weight saved beside a trained model (``fusion.json``), or None for hub models."""
    path = model_dir / "fusion.json"
    if not path.is_file():
        return None
    try:
        return float(json.loads(path.read_text(encoding="utf-8"))["weight"])
    except (ValueError, KeyError, TypeError) as error:
        raise RagrerankError(f"{path} is not a valid fusion file ({error}): retrain with `ragrerank finetune`") from None


def _check_query(query: str) -> None:
    if not isinstance(query, str) or not query.strip():
        raise RagrerankError(f"empty query {query!r}: ask a question in words")


class RerankingRetriever:
    """A first-stage retriever followed by the cross-encoder, behind the same ``Retriever`` interface.

    It fetches ``candidates`` hits from the first stage and returns the best ``k`` after
    reranking, so batch search, evaluation and answering treat "hybrid + rerank" like any
    other retriever.
    """

    def __init__(self, first_stage: Retriever, reranker: Reranker, candidates: int = 50) -> None:
        if candidates < 1:
            raise RagrerankError(f"candidates must be at least 1, got {candidates}")
        self.first_stage = first_stage
        self.reranker = reranker
        self.candidates = candidates

    def search(self, query: str, k: int = 10) -> list[Hit]:
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        depth = max(k, self.candidates)
        first = self.first_stage.search_many(queries, depth)
        return [self.reranker.rerank(query, hits)[:k] for query, hits in zip(queries, first)]
