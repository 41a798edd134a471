"""Fine-tune the project's own cross-encoder on questions generated from the docs.

No package ships a pretrained reranker, so offline the project trains one from the bi-encoder
all-MiniLM-L6-v2 (or, online, further trains ``cross-encoder/ms-marco-MiniLM-L-6-v2``). The loop
is a few lines around the sentence-transformers cross-encoder losses instead of
``CrossEncoderTrainer``, because the trainer needs the ``datasets`` package and a time budget is
easier to honour in a loop we own. Checkpoints are chosen on validation nDCG@10 of reranking the
hybrid top-30 of held-out, page-disjoint questions, and the score fusion weight is fitted there too.
The ``distill`` recipes learn from the packaged LLM's query likelihood (ragrerank.rerank.query_likelihood)
instead of the generated question's own passage alone: graded targets from a teacher that was
measured to rank real questions better than the hybrid retriever does.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from ragrerank.config import PROJECT_ROOT, Settings
from ragrerank.errors import RagrerankError
from ragrerank.finetune.artifact import FinetuneReport, fit_fusion_weight, model_card, save_model, score_candidates
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
    trainset = _written_set(settings, plan, questions, log) if questions is not None else _generated_set(settings, plan, log)
    if recipe in DISTILL_RECIPES:
        trainset = replace(trainset, train=_teacher_labels(trainset.train, plan, settings, log))
    teacher = resolve_model("bi-encoder", settings.bi_encoder, settings).location
    model, history = train(trainset, base_path, plan, recipe, device, teacher=teacher, log=log, checkpoint=checkpoint)
    weight, validation = fit_fusion_weight(score_candidates(model, trainset.validation), trainset.validation)
    target = out or settings.models_dir / CROSS_ENCODER_DIRNAME
    report = FinetuneReport(
        model_dir=str(target), base=base_name, budget=budget, recipe=recipe, device=device,
        seconds=round(time.monotonic() - started, 1), steps=int(history["steps"]), best_step=int(history["best_step"]),
        fusion_weight=weight, validation=validation, training_data=trainset.summary(),
    )
    save_model(model, report, target, model_card(report), fp16=device.startswith("cuda"))
    log(f"saved {target}: validation MRR@10 first stage {validation['first_stage_MRR@10']:.3f}, "
        f"pure {validation['pure_MRR@10']:.3f}, fused {validation['fused_MRR@10']:.3f} (w={weight:g})")
    return report


def _written_set(settings: Settings, plan: Budget, questions: Path, log: Callable[[str], None]) -> TrainingSet:
    """Hand-written questions resolved to their passages; refuses to train when too many lost theirs."""
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
    log(f"{len(resolution.resolved)} hand-written questions resolved; mining hard negatives from the hybrid top-30")
    search = open_retriever(settings, "hybrid").search_many
    return build_written_set(resolution.resolved, search, passages, plan.negatives, plan.random_negatives)


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


def _teacher_labels(
    examples: Sequence[TrainingExample], budget: Budget, settings: Settings, log: Callable[[str], None]
) -> tuple[TrainingExample, ...]:
    """Label as many questions as the budget trains on with the packaged LLM's query likelihood."""
    from ragrerank.finetune.trainset import label_with_teacher
    from ragrerank.rerank.query_likelihood import QueryLikelihood

    chosen = random.Random(13).sample(list(examples), min(len(examples), budget.max_examples, DISTILL_MAX_QUESTIONS))
    log(f"labelling {len(chosen)} questions × {1 + budget.negatives} passages with the query-likelihood teacher")
    return tuple(label_with_teacher(chosen, QueryLikelihood.from_settings(settings).score, budget.negatives))
