"""Ship a model trained on the hand-written questions: fp16 weights, measured figures, model card.

    .venv/bin/ragrerank finetune --budget cpu --checkpoint RUN.ckpt --out RUN      # hours on 2 CPU cores
    .venv/bin/python -m experiments.written_questions.ship RUN [--target DIR] [--dev FILE]

Saves the model as fp16 (about 45 MB; loaders compute in fp32) into ``--target`` (the shipped
``data/models/k8s-cross-encoder``), then measures what was saved with ``ragrerank eval`` on the project's
questions and the development set — the hybrid top 30, reranked by the cross-encoder alone and fused at
the weight chosen on validation — and writes those tables into the card and ``evaluation.json``. The
decision thresholds for the new model come next, from ``python -m experiments.written_questions.decision``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from ragrerank.config import PROJECT_ROOT, repo_relative, resolve_settings
from ragrerank.evaluate import EvalReport, PairedComparison, run_eval
from ragrerank.finetune import BUDGETS, PROJECT_QUESTIONS, FinetuneReport, load_base, model_card, save_model
from ragrerank.io import atomic_write
from ragrerank.models import SHIPPED_CROSS_ENCODER

CONFIGS = ("hybrid@30", "hybrid+ce@30", "hybrid+rerank@30")
LABELS = {"hybrid@30": "hybrid, no reranking", "hybrid+ce@30": "cross-encoder alone", "hybrid+rerank@30": "fused (shipped default)"}
MEASURES = {"P@1": "P@1", "P@3": "P@3", "RR@10": "MRR@10", "nDCG@10": "nDCG@10"}
DEV_QUESTIONS = PROJECT_ROOT.parent / "shared" / "eval" / "dev.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trained", type=Path, help="the folder `ragrerank finetune --out` wrote")
    parser.add_argument("--target", type=Path, default=SHIPPED_CROSS_ENCODER, help="where the shipped model goes")
    parser.add_argument("--dev", type=Path, default=DEV_QUESTIONS, help="held-out development questions (skipped if absent)")
    args = parser.parse_args()
    report = FinetuneReport(**json.loads((args.trained / "finetune_report.json").read_text(encoding="utf-8")))
    report = replace(report, model_dir=repo_relative(args.target), questions=repo_relative(Path(report.questions)))
    model = load_base(str(args.trained), "cpu", BUDGETS[report.budget].max_length)
    rebuild = (f"ragrerank finetune --budget {report.budget} --recipe {report.recipe} --checkpoint RUN.ckpt --out RUN\n"
               f"python -m experiments.written_questions.ship RUN")
    save_model(model, report, args.target, model_card(report, rebuild), fp16=True)

    settings = replace(resolve_settings(), cross_encoder=str(args.target))
    files = {"data/eval/k8s_questions.jsonl": PROJECT_QUESTIONS, "../shared/eval/dev.jsonl": args.dev}
    measured = {name: run_eval(settings, path, CONFIGS, progress=False) for name, path in files.items() if path.is_file()}
    gains = {name: _gains(r) for name, r in measured.items()}
    record = {name: _record(r, gains[name], quote=files[name].resolve().is_relative_to(PROJECT_ROOT)) for name, r in measured.items()}
    with atomic_write(args.target / "evaluation.json") as handle:
        json.dump(record, handle, indent=2, default=float)
        handle.write("\n")
    with atomic_write(args.target / "README.md") as handle:
        handle.write(model_card(report, rebuild, "".join(_tables(name, r, gains[name]) for name, r in measured.items())))
    print((args.target / "README.md").read_text(encoding="utf-8"))


def _gains(report: EvalReport) -> list[PairedComparison]:
    """Paired bootstraps of each reranking against hybrid on MRR@10 and P@3, computed once for the JSON and the card."""
    return [report.compare(CONFIGS[0], config, metric) for config in CONFIGS[1:] for metric in ("RR@10", "P@3")]


def _record(report: EvalReport, gains: list[PairedComparison], quote: bool) -> dict[str, object]:
    """The eval report's JSON, the paired-bootstrap gains over hybrid, and the questions the fused order changed.

    ``quote`` False leaves the question texts out: a held-out set outside the project is measured, not copied.
    """
    changed = report.changes(CONFIGS[0], CONFIGS[2])
    changes = json.loads((changed if quote else changed.drop(columns="query")).to_json(orient="records"))
    return {**report.to_json(), "gains_over_hybrid": [vars(g) for g in gains], "changes_fused_vs_hybrid": changes}


def _tables(name: str, report: EvalReport, gains: list[PairedComparison]) -> str:
    """Markdown: the summary with bootstrap intervals, then MRR@10 by question type."""
    summary = report.summary.set_index("config")
    lines = [f"\n## `{name}`: reranking the hybrid top 30 ({int(summary.at[CONFIGS[0], 'n'])} in-scope questions)\n",
             "| ranking | " + " | ".join(MEASURES.values()) + " |", "| --- |" + " --- |" * len(MEASURES)]
    lines += [f"| {LABELS[c]} | " + " | ".join(f"{summary.at[c, m]:.3f}" for m in MEASURES) + " |" for c in CONFIGS]
    lines += ["", "Paired bootstrap over questions (10,000 resamples), gain over hybrid:", ""]
    lines += [f"- {LABELS[c.candidate]}, {MEASURES[c.metric]}: {c.diff:+.3f} (95% CI {c.ci_low:+.3f} to {c.ci_high:+.3f})" for c in gains]
    by_type = report.by_type()
    mrr, counts = by_type["RR@10"].unstack("config"), by_type["n"].unstack("config")[CONFIGS[0]]
    lines += ["", "MRR@10 by question type:", "", "| type | n | " + " | ".join(LABELS[c] for c in CONFIGS) + " |",
              "| --- | --- |" + " --- |" * len(CONFIGS)]
    lines += [f"| {kind} | {int(counts[kind])} | " + " | ".join(f"{mrr.at[kind, c]:.3f}" for c in CONFIGS) + " |" for kind in mrr.index]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
