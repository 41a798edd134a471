"""Fine-tune the project's own cross-encoder on questions written the way users ask.

No package ships a pretrained reranker, so offline the project trains its own: from the shipped model
(or the packaged all-MiniLM-L6-v2 bi-encoder) on the hand-written questions in ``data/train``, each
resolved to its gold passage by a verbatim evidence span, with hard negatives from the hybrid retriever
on other pages. The loop is a few lines around the sentence-transformers cross-encoder losses
(``finetune.train``). Checkpoints and the score fusion weight are chosen on a page-disjoint tenth of
the training questions, never on the evaluation sets. The earlier recipe, on questions generated from
the docs (``questions=None``), stays for comparison; the ``distill`` recipes add the packaged LLM's
query likelihood (ragrerank.rerank.query_likelihood) as a teacher.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from ragrerank.config import PROJECT_ROOT, Settings, repo_relative
from ragrerank.errors import RagrerankError
from ragrerank.finetune.artifact import GENERATED, FinetuneReport, fit_fusion_weight, model_card, save_model, score_candidates
from ragrerank.finetune.train import BUDGETS, DISTILL_MAX_QUESTIONS, DISTILL_RECIPES, Budget, Recipe, train
from ragrerank.finetune.trainset import TrainingExample, TrainingSet
from ragrerank.models import CROSS_ENCODER_DIRNAME

PROJECT_QUESTIONS = PROJECT_ROOT / "data" / "eval" / "k8s_questions.jsonl"
WRITTEN_QUESTIONS = PROJECT_ROOT / "data" / "train" / "questions.jsonl"


def finetune(
    settings: Settings,
    budget: str = "quick",
    base: str | None = None,
    device: str = "cpu",
    recipe: Recipe = "listwise",
    out: Path | None = None,
    questions: Path | None = WRITTEN_QUESTIONS,
    checkpoint: Path | None = None,
    log: Callable[[str], None] = print,
) -> FinetuneReport:
    """Build the training set, train, fit the fusion weight and save the model.

    The training questions are the hand-written ones in ``questions`` (``data/train/questions.jsonl``):
    each resolved to its gold passage by its evidence, hard negatives from the hybrid top 30 of other
    pages mixed with random ones, and a page-disjoint tenth held out that chooses the checkpoint and the
    fusion weight. ``questions=None`` trains on questions generated from the docs instead (the earlier
    recipe, validated on the project's evaluation questions). ``base`` defaults to the project's own model
    when one exists (trained or shipped), so the quick budget refines it; otherwise the packaged
    all-MiniLM-L6-v2 bi-encoder. The model lands in ``settings.models_dir / "k8s-cross-encoder"`` (or
    ``out``), swapped in only when the run succeeds; ``checkpoint`` lets a long run resume.

    Example:
        >>> report = finetune(settings, budget="quick")
        >>> report.validation["fused_MRR@10"] >= report.validation["first_stage_MRR@10"]
        True
    """
    from ragrerank.models import BI_ENCODER_ALIASES, resolve_model

    if budget not in BUDGETS:
        raise RagrerankError(f"unknown budget '{budget}': use one of {', '.join(BUDGETS)}")
    plan = BUDGETS[budget]
    base_name = base or _default_base(settings)
    base_kind = "bi-encoder" if base_name in BI_ENCODER_ALIASES else "cross-encoder"
    base_path = resolve_model(base_kind, base_name, settings).location
    started = time.monotonic()
    trainset = written_training_set(settings, plan, questions, log) if questions is not None else _generated_set(settings, plan, log)
    if recipe in DISTILL_RECIPES:
        trainset = replace(trainset, train=teacher_labels(trainset.train, plan, settings, log))
    teacher = resolve_model("bi-encoder", settings.bi_encoder, settings).location
    model, history = train(trainset, base_path, plan, recipe, device, teacher=teacher, log=log, checkpoint=checkpoint)
    held_out = trainset.validation
    if len(held_out) > plan.fusion_queries:  # scoring every candidate of every held-out question costs minutes on a CPU
        held_out = tuple(random.Random(13).sample(held_out, plan.fusion_queries))
    weight, validation = fit_fusion_weight(score_candidates(model, held_out), held_out)
    target = out or settings.models_dir / CROSS_ENCODER_DIRNAME
    report = FinetuneReport(
        model_dir=str(target), base=base_name, budget=budget, recipe=recipe, device=device,
        seconds=round(time.monotonic() - started, 1), steps=int(history["steps"]), best_step=int(history["best_step"]),
        fusion_weight=weight, validation=validation, training_data=trainset.summary(),
        questions=repo_relative(questions) if questions is not None else GENERATED,
        history={"evaluations": history["evaluations"], "losses": history["losses"]},
    )
    save_model(model, report, target, model_card(report), fp16=device.startswith("cuda"))
    log(f"saved {target}: validation MRR@10 first stage {validation['first_stage_MRR@10']:.3f}, "
        f"pure {validation['pure_MRR@10']:.3f}, fused {validation['fused_MRR@10']:.3f} (w={weight:g})")
    return report


def written_training_set(
    settings: Settings, plan: Budget, questions: Path = WRITTEN_QUESTIONS, log: Callable[[str], None] = print
) -> TrainingSet:
    """Hand-written questions resolved to their passages, negatives mined, a page-disjoint tenth held out.

    Refuses to train when more than 5% lost their passage (the docs moved on); the quick budget draws
    ``plan.max_queries`` of them first, since mining costs a hybrid search per question.
    """
    from ragrerank.corpus import load_passages
    from ragrerank.finetune.questions import MAX_UNRESOLVED_SHARE, load_training_questions, resolve
    from ragrerank.finetune.trainset import build_written_set
    from ragrerank.retrieval import open_retriever

    passages = load_passages(settings.passages_path)
    resolution = resolve(load_training_questions(questions), passages)
    for question in resolution.unresolved[:10]:
        log(f"warning: {questions}:{question.line}: the evidence is in no passage of {question.path} (the docs moved on?)")
    if resolution.unresolved_share > MAX_UNRESOLVED_SHARE:
        raise RagrerankError(
            f"{len(resolution.unresolved)} of {len(resolution.unresolved) + len(resolution.resolved)} questions in "
            f"{questions} have evidence in no passage of their page (more than {MAX_UNRESOLVED_SHARE:.0%}): "
            "the docs or the chunker changed; update the evidence spans (see data/train/README.md)"
        )
    resolved = resolution.resolved
    if len(resolved) > plan.max_queries:  # the quick budget trains a few steps: mining all questions would dominate
        resolved = random.Random(13).sample(resolved, plan.max_queries)
    log(f"{len(resolved)} of {len(resolution.resolved)} hand-written questions resolved and drawn; "
        "mining hard negatives from the hybrid top-30")
    search = open_retriever(settings, "hybrid").search_many
    return build_written_set(resolved, search, passages, plan.negatives, plan.random_negatives)


def _generated_set(settings: Settings, plan: Budget, log: Callable[[str], None]) -> TrainingSet:
    """The earlier recipe: questions generated from the docs, checkpoints chosen on the project's questions."""
    from ragrerank.corpus import load_passages
    from ragrerank.finetune.querygen import generate_queries
    from ragrerank.finetune.trainset import build_training_set, question_set
    from ragrerank.retrieval import open_retriever

    retriever = open_retriever(settings, "hybrid")
    queries = generate_queries(load_passages(settings.passages_path), settings.docs_dir)
    queries = random.Random(13).sample(queries, min(len(queries), plan.max_queries))
    log(f"{len(queries)} generated questions; mining hard negatives from the hybrid top-30")
    trainset = build_training_set(queries, retriever.search_many, plan.negatives)
    return replace(trainset, validation=question_set(PROJECT_QUESTIONS, retriever.search_many))


def _default_base(settings: Settings) -> str:
    """The project's own model when it exists (refine it), else the packaged bi-encoder (start one)."""
    from ragrerank.models import resolve_model

    try:
        resolve_model("cross-encoder", settings.cross_encoder, settings)
    except RagrerankError:
        return settings.bi_encoder
    return settings.cross_encoder


def teacher_labels(
    examples: Sequence[TrainingExample], budget: Budget, settings: Settings, log: Callable[[str], None] = print
) -> tuple[TrainingExample, ...]:
    """Label as many questions as the budget trains on with the packaged LLM's query likelihood.

    The labelled questions are the distill recipes' whole training set (see DISTILL_MAX_QUESTIONS for the cost).
    """
    from ragrerank.finetune.trainset import label_with_teacher
    from ragrerank.rerank.query_likelihood import QueryLikelihood

    chosen = random.Random(13).sample(list(examples), min(len(examples), budget.max_examples, DISTILL_MAX_QUESTIONS))
    negatives = budget.negatives + budget.random_negatives  # the written set's random negatives are scored too
    log(f"labelling {len(chosen)} questions × {1 + negatives} passages with the query-likelihood teacher")
    return tuple(label_with_teacher(chosen, QueryLikelihood.from_settings(settings).score, negatives))
