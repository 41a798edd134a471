"""Measure retrieval and reranking on a question set, and say whether a gain is real.

Relevance comes from the question file: a passage is relevant when its page (``path``)
is one of the question's ``gold_files``. The metrics are ir-measures' (pytrec_eval),
each at the level where it answers a question a RAG builder asks:

============  =========  ===============================================================
metric        level      what it tells
============  =========  ===============================================================
P@1, P@3      passage    how much of the LLM's context (top 3) comes from a right page;
                         three passages of the gold page make P@3 = 1, so a page split
                         into many passages is rewarded once per passage read
RR@10         passage    how far down the first passage from a right page sits
nDCG@10       page       the top 10 passages reduced to their pages (first occurrence),
                         so each gold page counts once and the ideal is all gold pages
R@cand        page       share of gold pages among the first stage's candidates (R@50 at
                         the default depth): the ceiling that reranking cannot raise
evidence@3    text       a top-3 passage quotes a gold evidence string (normalised)
============  =========  ===============================================================

Passage qrels judge only the retrieved passages (1 from a gold page, else 0), which is
exact for P and RR because they never look past what was retrieved; the page-level
metrics need the full set of relevant items, which the gold page list is. Rank metrics
are averaged over in-scope questions only; out-of-scope questions feed the decision
metrics (answer vs not covered, ROC AUC of the best score).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import ir_measures
import pandas as pd
from ir_measures import RR, P, Qrel, R, ScoredDoc, nDCG

from ragrerank.errors import RagrerankError
from ragrerank.evaluate.questions import Question, evidence_hit
from ragrerank.types import Hit

Run = Mapping[str, Sequence[Hit]]  # question id → hits, best first

RANK_DEPTH = 10  # passages the rank metrics read
METRICS = ("P@1", "P@3", "RR@10", "nDCG@10", "R@cand", "evidence@3")
PASSAGE_MEASURES = (P @ 1, P @ 3, RR @ RANK_DEPTH)


class JudgedCandidates(Protocol):
    """A question's first-stage candidates and the pages that answer it (a ``ValidationQuery`` fits)."""

    candidates: Sequence[Hit]
    relevant_paths: frozenset[str]


def score_run(questions: Sequence[Question], run: Run, candidates: Run | None = None) -> pd.DataFrame:
    """Per-question metrics (see the module docstring) of the in-scope questions, indexed by id.

    Args:
        questions: the question set; out-of-scope questions are skipped.
        run: the final ranking of each question (after reranking, when there is one).
        candidates: the first stage's candidates for ``R@cand``; defaults to ``run``.

    Example:
        >>> score_run(questions, run).mean().round(3).to_dict()
        {'P@1': 0.5, 'P@3': 0.667, 'RR@10': 0.75, 'nDCG@10': 0.622, 'R@cand': 0.75, 'evidence@3': 0.5}
    """
    candidates = run if candidates is None else candidates
    scoped = [question for question in questions if question.in_scope]
    for question in scoped:
        if question.id not in run or question.id not in candidates:
            raise RagrerankError(f"the run has no ranking for question {question.id!r}: search every question first")
    ids = [question.id for question in scoped]
    top = {q.id: run[q.id][:RANK_DEPTH] for q in scoped}
    passage_qrels = [
        Qrel(q.id, hit.passage.id, int(hit.passage.path in q.gold_files)) for q in scoped for hit in top[q.id]
    ]
    page_qrels = [Qrel(q.id, path, 1) for q in scoped for path in q.gold_files]
    depth = max((len(candidates[qid]) for qid in ids), default=1) or 1  # pages ≤ passages: no cut
    passages = _calc(PASSAGE_MEASURES, passage_qrels, {qid: [hit.passage.id for hit in top[qid]] for qid in ids}, ids)
    ndcg = _calc([nDCG @ RANK_DEPTH], page_qrels, {qid: _pages(top[qid]) for qid in ids}, ids)
    recall = _calc([R @ depth], page_qrels, {qid: _pages(candidates[qid]) for qid in ids}, ids)
    frame = pd.concat([passages, ndcg, recall.set_axis(["R@cand"], axis=1)], axis=1)
    frame["evidence@3"] = [float(evidence_hit(q, run[q.id])) for q in scoped]
    return frame[list(METRICS)]


def _pages(hits: Sequence[Hit]) -> list[str]:
    """Passages → their pages, best first, each page at its first passage's position."""
    return list(dict.fromkeys(hit.passage.path for hit in hits))


def _calc(
    measures: Sequence[Any], qrels: list[Qrel], ranking: Mapping[str, Sequence[str]], ids: list[str]
) -> pd.DataFrame:
    """ir-measures per query; scores fall with the rank so pytrec_eval keeps our order (it sorts by score)."""
    run = [ScoredDoc(qid, doc, -float(rank)) for qid, docs in ranking.items() for rank, doc in enumerate(docs, 1)]
    rows = [(m.query_id, str(m.measure), m.value) for m in ir_measures.iter_calc(list(measures), qrels, run)]
    frame = pd.DataFrame(rows, columns=["id", "measure", "value"]).pivot(index="id", columns="measure", values="value")
    return frame.reindex(index=ids, columns=[str(m) for m in measures]).fillna(0.0)  # no judged hit: 0


def page_measures(validation: Sequence[JudgedCandidates], scores: Sequence[Sequence[float]]) -> dict[str, float]:
    """P@1, P@3 and MRR@10 at page level, over candidates reordered by ``scores`` (ir-measures does the counting)."""
    values = ir_measures.calc_aggregate([P @ 1, P @ 3, RR @ 10], *_qrels_and_run(validation, scores))
    return {"P@1": values[P @ 1], "P@3": values[P @ 3], "MRR@10": values[RR @ 10]}


def reciprocal_ranks(validation: Sequence[JudgedCandidates], scores: Sequence[Sequence[float]]) -> list[float]:
    per_query = {m.query_id: m.value for m in ir_measures.iter_calc([RR @ 10], *_qrels_and_run(validation, scores))}
    return [per_query.get(str(number), 0.0) for number in range(len(validation))]


def _qrels_and_run(validation: Sequence[JudgedCandidates], scores: Sequence[Sequence[float]]) -> tuple[list, list]:
    """Qrels and a run whose scores are negated ranks: equal scores keep the candidate order.

    pytrec_eval breaks score ties by document id, which would reorder the first stage's many
    RRF ties and measure a ranking nobody produced; ``ragrerank.evaluate`` ranks the same way.
    """
    qrels, run = [], []
    for number, (query, query_scores) in enumerate(zip(validation, scores, strict=True)):
        qrels.append(ir_measures.Qrel(str(number), "\0answer", 1))  # keeps questions whose answer was not retrieved
        order = sorted(range(len(query.candidates)), key=lambda i: (-float(query_scores[i]), i))
        for rank, i in enumerate(order, start=1):
            hit = query.candidates[i]
            qrels.append(ir_measures.Qrel(str(number), hit.passage.id, int(hit.passage.path in query.relevant_paths)))
            run.append(ir_measures.ScoredDoc(str(number), hit.passage.id, -float(rank)))
    return qrels, run
