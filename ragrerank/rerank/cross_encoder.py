"""Cross-encoder reranking: read query and passage together, rescore, reorder.

The cross-encoder returns a raw logit per (query, passage) pair. ``expit(logit)`` (the
sigmoid) turns it into a probability-like score in (0, 1): it is monotonic, so the
ranking is the same, but it gives a scale on which a threshold means something
("answer only when the best passage scores above 0.5").
"""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from scipy.special import expit

from ragrerank.config import Settings
from ragrerank.errors import RagrerankError
from ragrerank.rerank.runtime import check_runtime, load_scorer
from ragrerank.rerank.scoring import CacheInfo, ScoreCache, fuse, reorder
from ragrerank.retrieval.base import BatchRetriever, check_query
from ragrerank.types import Hit

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

    from ragrerank.retrieval import Retriever


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
    runtime: str = "torch"  # how the model runs: one of runtime.RUNTIMES (fp32 torch, bf16, ONNX fp32/int8)
    cache_size: int = 10_000  # (query, passage) logits kept, so repeated cells do not rescore; 0: none

    def __post_init__(self) -> None:
        check_runtime(self.runtime)
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
        self,
        model: CrossEncoder,
        settings: RerankSettings = RerankSettings(),
        models_dir: Path | None = None,
        span_scorer: Callable[[], Reranker] | None = None,
    ) -> None:
        """``models_dir`` receives the ONNX exports; the ONNX runtimes need it (``settings.models_dir``).

        ``span_scorer`` loads the model that scores answer spans (``score_spans``) when first needed;
        without it this model scores them.
        """
        self.model = model
        self.settings = settings
        self._score = load_scorer(model, settings.runtime, models_dir)
        self._cache = ScoreCache(settings.cache_size)
        self._load_span_scorer = span_scorer
        self._span_scorer: Reranker | None = None

    @classmethod
    def from_settings(cls, settings: Settings, rerank: RerankSettings | None = None) -> Reranker:
        """Load the configured cross-encoder (offline: the project's own) through models.py.

        Without explicit ``rerank`` settings, the fusion weight fitted together with the model
        (its ``fusion.json``) is used, so the model is run the way it was validated, on the
        runtime ``settings.runtime``.
        """
        from ragrerank.models import load_cross_encoder, resolve_model

        if rerank is None:
            source = resolve_model("cross-encoder", settings.cross_encoder, settings)
            rerank = RerankSettings(fusion_weight=model_fusion_weight(Path(source.location)), runtime=settings.runtime)
        model = load_cross_encoder(settings.cross_encoder, settings, max_length=rerank.max_length)
        return cls(model, rerank, settings.models_dir, span_scorer=lambda: cls.span_scorer_from_settings(settings))

    @classmethod
    def span_scorer_from_settings(cls, settings: Settings) -> Reranker:
        """The configured span scorer (offline: the project's own, trained on the evidence spans of data/train)."""
        from ragrerank.models import load_span_scorer

        return cls(load_span_scorer(settings.span_scorer, settings), RerankSettings(runtime=settings.runtime), settings.models_dir)

    def with_fusion(self, weight: float | None) -> Reranker:
        """The same loaded model ordering by another fusion weight (None: the logit alone)."""
        fused = copy.copy(self)  # shares the scorer and the cache: the logits do not change
        fused.settings = replace(self.settings, fusion_weight=weight)
        return fused

    def predict(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """Raw relevance logits of ``texts`` for ``query``, in input order; always runs the model.

        Pairs are scored in length-sorted batches (no padding to the longest passage of
        the whole set), on the runtime of the settings. Only the passage is
        truncated to fit the model window, so the question is always read in full, in
        (query, passage) order.
        """
        check_query(query)
        for position, text in enumerate(texts):
            if not isinstance(text, str):
                raise RagrerankError(f"passage {position} is a {type(text).__name__}, not text: pass passage strings")
        if not texts:
            return np.zeros(0, dtype=np.float32)
        logits = self._score(self._fit_query(query), texts, self.settings.batch_size)
        if not np.all(np.isfinite(logits)):
            raise RagrerankError(f"cross-encoder gave a non-finite score for query {query[:80]!r}: the model is broken")
        return logits

    def score_spans(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """Logits of candidate answer spans for ``query``: the span scorer's (loaded on first use), else this model's."""
        if self._load_span_scorer is None:
            return self.predict(query, texts)
        if self._span_scorer is None:
            self._span_scorer = self._load_span_scorer()
        return self._span_scorer.predict(query, texts)

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
        check_query(query)
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


def model_fusion_weight(model_dir: Path) -> float | None:
    """The fusion weight saved beside a trained model (``fusion.json``), or None for hub models."""
    path = model_dir / "fusion.json"
    if not path.is_file():
        return None
    try:
        return float(json.loads(path.read_text(encoding="utf-8"))["weight"])
    except (ValueError, KeyError, TypeError) as error:
        raise RagrerankError(f"{path} is not a valid fusion file ({error}): retrain with `ragrerank finetune`") from None


class RerankingRetriever(BatchRetriever):
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

    def search_many(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        depth = max(k, self.candidates)
        first = self.first_stage.search_many(queries, depth)
        return [self.reranker.rerank(query, hits)[:k] for query, hits in zip(queries, first)]
