"""Query-likelihood scoring and reranking on the real packaged SmolLM2-135M."""

import numpy as np
import pytest

from ragrerank.errors import RagrerankError
from ragrerank.rerank.query_likelihood import QueryLikelihood, QueryLikelihoodReranker
from ragrerank.types import Hit, Passage

QUESTION = "how do I keep a database password out of my container image"
TEXTS = [
    "CronJob\n\nA CronJob creates Jobs on a repeating schedule, written in Cron format.",
    (
        "Secrets\n\nA Secret is an object that contains a small amount of sensitive data such as a password, "
        "a token, or a key. Using a Secret means that you don't need to include confidential data in your "
        "application code or container image."
    ),
    "Node\n\nA node may be a virtual or physical machine, depending on the cluster.",
]


@pytest.fixture(scope="module")
def scorer() -> QueryLikelihood:
    from ragrerank.config import resolve_settings

    return QueryLikelihood.from_settings(resolve_settings())


def hits(texts: list[str]) -> list[Hit]:
    return [
        Hit(Passage(f"p{i}", f"page{i}.md", f"Page {i}", (), f"https://x/{i}", text, len(text.split())), 1.0 - i / 10, i + 1, {})
        for i, text in enumerate(texts)
    ]


def test_the_answering_passage_makes_the_question_most_likely(scorer):
    scores = scorer.score(QUESTION, TEXTS)
    assert scores.shape == (3,) and np.all(scores < 0)  # mean log-probabilities
    assert int(np.argmax(scores)) == 1


def test_scores_do_not_depend_on_batching_or_left_padding(scorer):
    together = scorer.score(QUESTION, TEXTS)
    alone = np.array([scorer.score(QUESTION, [text])[0] for text in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-3)


def test_long_passages_are_cut_to_the_token_budget(scorer):
    long = TEXTS[1] + " Pods" * 2000
    short = QueryLikelihood(scorer.model, scorer.tokenizer, max_passage_tokens=64)
    assert np.isfinite(short.score(QUESTION, [long])).all()


def test_reranker_puts_the_answer_first_and_keeps_first_stage_scores(scorer):
    reranked = QueryLikelihoodReranker(scorer, fusion_weight=None).rerank(QUESTION, hits(TEXTS))
    assert reranked[0].passage.id == "p1" and [hit.rank for hit in reranked] == [1, 2, 3]
    assert reranked[0].scores["first_stage_rank"] == 2.0 and "ql_score" in reranked[0].scores
    assert reranked[0].ce_prob is None


def test_infinite_fusion_weight_keeps_the_first_stage_order_and_shares_the_cache(scorer):
    pure = QueryLikelihoodReranker(scorer, fusion_weight=None)
    first = pure.rerank(QUESTION, hits(TEXTS))
    kept = pure.with_fusion(float("inf")).rerank(QUESTION, hits(TEXTS))
    assert [hit.passage.id for hit in kept] == ["p0", "p1", "p2"]
    assert [hit.scores["ql_score"] for hit in sorted(kept, key=lambda hit: hit.passage.id)] == [
        hit.scores["ql_score"] for hit in sorted(first, key=lambda hit: hit.passage.id)
    ]
    assert pure.cache_info().hits == 3  # the second ordering scored nothing again


def test_bad_input_is_a_clear_error(scorer):
    assert QueryLikelihoodReranker(scorer).rerank(QUESTION, []) == []
    with pytest.raises(RagrerankError, match="empty query"):
        scorer.score("  ", TEXTS)
    with pytest.raises(RagrerankError, match="fusion_weight"):
        QueryLikelihoodReranker(scorer, fusion_weight=-1.0)
