"""Fine-tuning the project's own cross-encoder, offline.

No package ships a pretrained reranker, so offline the project trains one: ``questions`` reads and
checks the hand-written training questions of ``data/train`` (``querygen`` generates the earlier,
weaker ones from the docs), ``trainset`` mines hard negatives and holds out a page-disjoint
validation split, ``train`` runs the loop, ``artifact`` fits the fusion weight, writes the model
card and saves the model atomically, and ``run.finetune`` does all of it (``ragrerank finetune``).
``spans`` turns the same questions into the span scorer's training set (the sentence that answers,
among the other spans of its passage), trained by the same loop (``experiments/span_scorer``).
"""

from ragrerank.finetune.artifact import (
    FinetuneReport,
    fit_fusion_weight,
    model_card,
    reranking_measures,
    save_model,
    save_model_folder,
    score_candidates,
)
from ragrerank.finetune.run import PROJECT_QUESTIONS, WRITTEN_QUESTIONS, finetune, teacher_labels, written_training_set
from ragrerank.finetune.querygen import GeneratedQuery, generate_queries
from ragrerank.finetune.train import BUDGETS, Budget, Recipe, is_bi_encoder, load_base, train, validation_ndcg
from ragrerank.finetune.trainset import (
    TrainingExample,
    TrainingSet,
    ValidationQuery,
    build_training_set,
    build_written_set,
    label_with_teacher,
    load_training_set,
    question_set,
    save_training_set,
)

__all__ = [
    "BUDGETS",
    "Budget",
    "FinetuneReport",
    "GeneratedQuery",
    "PROJECT_QUESTIONS",
    "Recipe",
    "TrainingExample",
    "WRITTEN_QUESTIONS",
    "TrainingSet",
    "ValidationQuery",
    "build_training_set",
    "build_written_set",
    "finetune",
    "fit_fusion_weight",
    "generate_queries",
    "is_bi_encoder",
    "label_with_teacher",
    "load_base",
    "load_training_set",
    "model_card",
    "question_set",
    "reranking_measures",
    "save_model",
    "save_model_folder",
    "save_training_set",
    "score_candidates",
    "teacher_labels",
    "train",
    "validation_ndcg",
    "written_training_set",
]
