"""Query likelihood: how probable the packaged small LLM finds the question after reading a passage.

A zero-shot relevance signal that needs no training and no labels (the UPR idea: Sachan et al.,
"Improving Passage Retrieval with Zero-Shot Question Generation", 2022): the score of a passage is
the mean log-probability SmolLM2-135M gives the question's tokens when prompted with the passage.
Unlike the project's own cross-encoder, it was measured to rank real questions better than hybrid
retrieval (see the README), which makes it the offline teacher to distil into the cross-encoder.
It costs a forward pass of a 135M-parameter model per pair, about ten cross-encoder pairs' worth,
so it serves evaluation and teaching, not the interactive path.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ragrerank.errors import RagrerankError
from ragrerank.rerank.scoring import CacheInfo, ScoreCache, fuse, reorder, zscore
from ragrerank.retrieval.base import check_query
from ragrerank.types import Hit

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from ragrerank.config import Settings

PROMPT_BEFORE = "Passage: "
PROMPT_AFTER = "\nWrite a question that this passage answers.\nQuestion:"


class QueryLikelihood:
    """Scores (question, passage) pairs by log P(question | passage) under a causal LM.

    Example:
        >>> scorer = QueryLikelihood.from_settings(settings)
        >>> scorer.score("how do I store a password", ["A Secret holds sensitive data.", "A CronJob runs Jobs."])
        array([-2.9, -4.1], dtype=float32)  # higher: the question is more expected after that passage
    """

    def __init__(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, max_passage_tokens: int = 384, batch_size: int = 8
    ) -> None:
        if max_passage_tokens < 1 or batch_size < 1:
            raise RagrerankError(f"max_passage_tokens and batch_size must be ≥ 1, got {max_passage_tokens} and {batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.max_passage_tokens = max_passage_tokens
        self.batch_size = batch_size
        self._before = tokenizer(PROMPT_BEFORE, add_special_tokens=False)["input_ids"]
        self._after = tokenizer(PROMPT_AFTER, add_special_tokens=False)["input_ids"]

    @classmethod
    def from_settings(cls, settings: Settings) -> QueryLikelihood:
        """The settings' LLM, in bfloat16 when ``settings.runtime`` asks for it (fast on AMX CPUs)."""
        import torch

        from ragrerank.models import load_llm

        model, tokenizer = load_llm(settings.llm, settings)
        if settings.runtime == "torch-bf16":
            model = copy.deepcopy(model).to(torch.bfloat16)  # the loaded LLM is shared with answering
        return cls(model, tokenizer)

    def score(self, query: str, texts: Sequence[str]) -> np.ndarray:
        """Mean log-probability of the question's tokens after each passage's prompt, in input order.

        Every row ends with the same question, so the rows are padded on the left and the
        question's tokens sit at the same positions in each: one forward pass scores a batch.
        """
        import torch

        check_query(query)
        question = self.tokenizer(" " + query.strip(), add_special_tokens=False)["input_ids"]
        prompts = [
            self._before + self.tokenizer(text, add_special_tokens=False)["input_ids"][: self.max_passage_tokens] + self._after
            for text in texts
        ]
        scores = np.empty(len(texts), dtype=np.float32)
        if not texts:
            return scores
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        target = torch.tensor(question)
        for rows in np.array_split(np.arange(len(texts)), math.ceil(len(texts) / self.batch_size)):
            width = max(len(prompts[i]) for i in rows)
            ids = torch.tensor([[pad] * (width - len(prompts[i])) + prompts[i] + question for i in rows])
            mask = torch.tensor([[0] * (width - len(prompts[i])) + [1] * (len(prompts[i]) + len(question)) for i in rows])
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                logits = self.model(
                    input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=len(question) + 1
                ).logits[:, :-1].float()
            log_probs = torch.log_softmax(logits, dim=-1).gather(2, target.expand(len(rows), -1)[..., None])
            scores[rows] = log_probs.squeeze(2).mean(dim=1).numpy()
        return scores


class QueryLikelihoodReranker:
    """Reorder first-stage hits by query likelihood, alone or fused with the first-stage score.

    ``fusion_weight`` w orders by z(query likelihood) + w × z(first-stage score), both standardised
    within the list; 1.0 (the default) weighs the two signals equally, None uses the likelihood alone.
    Each hit gains ``ql_score``; it has no ``ce_prob``, since a likelihood is not a probability of relevance.
    """

    def __init__(self, scorer: QueryLikelihood, fusion_weight: float | None = 1.0, cache_size: int = 100_000) -> None:
        if fusion_weight is not None and not fusion_weight >= 0:
            raise RagrerankError(f"fusion_weight must be ≥ 0 (or None for the likelihood alone), got {fusion_weight}")
        self.scorer = scorer
        self.fusion_weight = fusion_weight
        self._cache = ScoreCache(cache_size)

    def with_fusion(self, weight: float | None) -> QueryLikelihoodReranker:
        """The same scorer and score cache ordering by another fusion weight (None: the likelihood alone)."""
        fused = copy.copy(self)
        fused.fusion_weight = weight
        return fused

    def cache_info(self) -> CacheInfo:
        """Hits and misses of the likelihood cache, in distinct (query, passage) pairs."""
        return self._cache.info()

    def rerank(self, query: str, hits: Sequence[Hit]) -> list[Hit]:
        if not hits:
            return []
        likelihood = self._cache.scores(query, [hit.passage.text for hit in hits], lambda todo: self.scorer.score(query, todo))
        z = zscore(likelihood)
        final = z if self.fusion_weight is None else fuse(z, [hit.score for hit in hits], self.fusion_weight)
        return reorder(hits, final, lambda i: {"ql_score": float(likelihood[i])})
