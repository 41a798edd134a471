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
from ragrerank.finetune.trainset import TrainingExample
from ragrerank.models import CROSS_ENCODER_DIRNAME

PROJECT_QUESTIONS = PROJECT_ROOT / "data" / "eval" / "k8s_questions.jsonl"


def finetune(
    settings: Settings,
    budget: str = "quick",
    base: str | None = None,
    device: str = "cpu",
    recipe: Recipe = "margin-listwise",
    out: Path | None = None,
    questions: Path | None = PROJECT_QUESTIONS,
    log: Callable[[str], None] = print,
) -> FinetuneReport:
    """Build the training set from the indexed docs, train, fit the fusion weight and save the model.

    ``base`` defaults to the project's own model when one exists (trained or shipped), so the quick
    budget refines it instead of starting over; otherwise the packaged all-MiniLM-L6-v2 bi-encoder.
    The model lands in ``settings.models_dir / "k8s-cross-encoder"`` (or ``out``), swapped in only
    when the run succeeds. Checkpoints and the fusion weight are chosen on the hand-written
    ``questions`` when that file exists (synthetic questions reward word matching and misjudge both),
    else on the held-out synthetic questions.

    Example:
        >>> report = finetune(settings, budget="quick")
        >>> report.validation["fused_MRR@10"] >= report.validation["first_stage_MRR@10"]
        True
    """
    from ragrerank.corpus import load_passages
    from ragrerank.finetune.querygen import generate_queries
    from ragrerank.finetune.trainset import build_training_set, question_set
    from ragrerank.models import BI_ENCODER_ALIASES, resolve_model
    from ragrerank.retrieval import open_retriever

    if budget not in BUDGETS:
        raise RagrerankError(f"unknown budget '{budget}': use one of {', '.join(BUDGETS)}")
    plan = BUDGETS[budget]
    base_name = base or _default_base(settings)
    base_kind = "bi-encoder" if base_name in BI_ENCODER_ALIASES else "cross-encoder"
    base_path = resolve_model(base_kind, base_name, settings).location
    started = time.monotonic()
    passages = load_passages(settings.passages_path)
    retriever = open_retriever(settings, "hybrid")
    queries = generate_queries(passages, settings.docs_dir)
    queries = random.Random(13).sample(queries, min(len(queries), plan.max_queries))
    log(f"{len(queries)} generated questions; mining hard negatives from the hybrid top-30")
    trainset = build_training_set(queries, retriever.search_many, plan.negatives)
    if questions is not None and questions.is_file():
        trainset = replace(trainset, validation=question_set(questions, retriever.search_many))
    if recipe in DISTILL_RECIPES:
        trainset = replace(trainset, train=_teacher_labels(trainset.train, plan, settings, log))
    teacher = resolve_model("bi-encoder", settings.bi_encoder, settings).location
    model, history = train(trainset, base_path, plan, recipe, device, teacher=teacher, log=log)
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
