"""Evaluation: measure retrieval and reranking on a question set, and say whether a gain is real.

``questions`` reads question files (the only reader), ``metrics`` scores rankings with
ir-measures, ``configs`` names the pipelines to compare, ``stats`` tells gains from noise and
calibrates thresholds, ``runner`` runs configs question by question, ``report`` tabulates;
``decision`` calibrates the pipeline's answer / fallback / not-covered thresholds together and
``answers`` scores what ``answer()`` shows (``ragrerank eval --answers``).
"""

from ragrerank.evaluate.configs import DEFAULT_CONFIGS, EvalConfig, Reranking, parse_config, parse_configs
from ragrerank.evaluate.metrics import METRICS, page_measures, score_run
from ragrerank.evaluate.questions import Question, evidence_hit, load_questions
from ragrerank.evaluate.report import EvalReport, format_report
from ragrerank.evaluate.runner import candidate_sweep, evaluate, rerank_latency, run_eval
from ragrerank.evaluate.stats import (
    DecisionAccuracy,
    PairedComparison,
    ThresholdCalibration,
    bootstrap_means,
    calibrate_threshold,
    calibration_split,
    decision_accuracy,
    decision_outcomes,
    paired_bootstrap,
    reliability_table,
    roc_auc,
)

__all__ = [
    "DEFAULT_CONFIGS",
    "METRICS",
    "DecisionAccuracy",
    "EvalConfig",
    "EvalReport",
    "PairedComparison",
    "Question",
    "Reranking",
    "ThresholdCalibration",
    "bootstrap_means",
    "calibrate_threshold",
    "calibration_split",
    "candidate_sweep",
    "decision_accuracy",
    "decision_outcomes",
    "evaluate",
    "evidence_hit",
    "format_report",
    "load_questions",
    "page_measures",
    "paired_bootstrap",
    "parse_config",
    "parse_configs",
    "reliability_table",
    "rerank_latency",
    "roc_auc",
    "run_eval",
    "score_run",
]
