"""The trained model as an artifact: its fusion weight fitted on validation, its card, an atomic save."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ragrerank.evaluate.metrics import page_measures, reciprocal_ranks
from ragrerank.evaluate.stats import bootstrap_means
from ragrerank.finetune.trainset import ValidationQuery
from ragrerank.io import staged_folder
from ragrerank.rerank.scoring import fuse

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

GENERATED = "generated from the docs"
FUSION_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)


@dataclass(frozen=True)
class FinetuneReport:
    """What a run did and how the model scores on held-out synthetic questions."""

    model_dir: str
    base: str
    budget: str
    recipe: str
    device: str
    seconds: float
    steps: int
    best_step: int
    fusion_weight: float
    validation: dict[str, float]  # first-stage, reranked (pure) and fused nDCG@10 / MRR@10
    training_data: dict[str, object] = field(default_factory=dict)
    questions: str = GENERATED  # the training questions file; reports from before the field were all generated
    history: dict[str, list] = field(default_factory=dict)  # [step, validation nDCG@10] and [step, loss] pairs


def model_card(report: FinetuneReport, command: str = "", notes: str = "") -> str:
    """A README that says what the model learned from, how it scores and how to rebuild it."""
    command = command or f"ragrerank finetune --budget {report.budget} --device {report.device}"
    rows: dict[str, dict[str, float]] = {}
    for key, value in report.validation.items():
        ranking, _, measure = key.rpartition("_")
        rows.setdefault(ranking or key, {})[measure] = value
    table = "\n".join(
        f"| {ranking} | " + " | ".join(f"{row[m]:.3f}" if m in row else "" for m in ("P@1", "P@3", "MRR@10")) + " |"
        for ranking, row in rows.items()
        if any(m in row for m in ("P@1", "P@3", "MRR@10"))
    )
    data = json.dumps(report.training_data, indent=2)
    return f"""# k8s-cross-encoder

A MiniLM-L6 cross-encoder that reranks passages of the Kubernetes documentation for questions about it.
Trained by `ragrerank.finetune` from `{report.base}` on {_data_source(report.questions)}, with hard negatives
from the hybrid retriever's top-30 on other pages. No external data.

- recipe: `{report.recipe}`, budget `{report.budget}` on `{report.device}`, {report.steps} steps (best at {report.best_step}), {report.seconds:.0f} s
- score fusion: final = logit + {report.fusion_weight:g} × z-scored first-stage score (`fusion.json`);
  `inf` means the first-stage order is kept

## Validation: reranking the hybrid top-30 (page-level relevance)

Questions that chose the checkpoint and the fusion weight: {_validation_source(report.questions)};
`fused` is the chosen weight.

| ranking | P@1 | P@3 | MRR@10 |
| --- | --- | --- | --- |
{table}
{notes}
## Training data

```json
{data}
```

## Rebuild

```
{command}
```
"""


def _data_source(questions: str) -> str:
    if questions == GENERATED:
        return ("questions generated from the docs themselves (titles, descriptions, headings as \"how do I …\" / "
                "\"what is …\", glossary definitions, sentences around links, inverse-cloze sentences)")
    return f"questions written by hand the way users ask (`{Path(questions).name}`, each grounded in a verbatim evidence span)"


def _validation_source(questions: str) -> str:
    if questions == GENERATED:
        return "the project's own evaluation questions (`data/eval/k8s_questions.jsonl`, in scope)"
    return "the training questions of a page-disjoint tenth of the pages, held out from training"


def fit_fusion_weight(
    scores: Sequence[Sequence[float]], validation: Sequence[ValidationQuery]
) -> tuple[float, dict[str, float]]:
    """Pick the fusion weight with the best validation MRR@10 among those that lose on no measure.

    ``scores`` holds the cross-encoder logits of each validation query's candidates. A weight
    qualifies only when P@1 and P@3 are not below the first stage's either; ties go to the larger
    (safer) weight. Returns ``inf`` (keep the first-stage order) when no weight beats the first
    stage, or when the MRR@10 gain's paired-bootstrap 5th percentile is not above zero: the
    rerank stage must never make the ranking worse than what it reranks, and a gain within noise
    on the validation questions was measured not to carry over to held-out ones.
    """
    first = [[hit.score for hit in q.candidates] for q in validation]
    baseline = page_measures(validation, first)
    metrics = {f"first_stage_{name}": value for name, value in baseline.items()}
    metrics.update({f"pure_{name}": value for name, value in page_measures(validation, scores).items()})
    best_weight, best = math.inf, baseline
    for weight in FUSION_WEIGHTS:
        fused = page_measures(validation, [fuse(s, f, weight) for s, f in zip(scores, first, strict=True)])
        metrics.update({f"fused_w{weight:g}_{name}": value for name, value in fused.items()})
        if any(fused[name] < baseline[name] for name in baseline):
            continue
        if fused["MRR@10"] > best["MRR@10"] or (fused["MRR@10"] == best["MRR@10"] and not math.isinf(best_weight)):
            best_weight, best = weight, fused
    if not math.isinf(best_weight):
        fused = [fuse(s, f, best_weight) for s, f in zip(scores, first, strict=True)]
        low = _gain_lower_bound(reciprocal_ranks(validation, first), reciprocal_ranks(validation, fused))
        metrics["fused_gain_ci_low"] = low
        if low <= 0:  # a gain within resampling noise on a few hundred questions does not transfer
            best_weight, best = math.inf, baseline
    metrics.update({f"fused_{name}": value for name, value in best.items()})
    return best_weight, metrics


def reranking_measures(
    scores: Sequence[Sequence[float]], validation: Sequence[ValidationQuery], weight: float
) -> dict[str, dict[str, float]]:
    """P@1, P@3 and MRR@10 of the first stage, the cross-encoder alone and fused at ``weight``.

    For questions that did not choose ``weight``: the honest check of a fitted fusion.
    """
    first = [[hit.score for hit in q.candidates] for q in validation]
    return {
        "first stage": page_measures(validation, first),
        "cross-encoder alone": page_measures(validation, scores),
        f"fused (w={weight:g})": page_measures(validation, [fuse(s, f, weight) for s, f in zip(scores, first, strict=True)]),
    }


def _gain_lower_bound(before: Sequence[float], after: Sequence[float], resamples: int = 2000) -> float:
    """5th percentile of the mean per-question MRR gain over paired bootstrap resamples."""
    return float(np.percentile(bootstrap_means(np.asarray(after) - np.asarray(before), resamples, seed=13), 5))


def score_candidates(model: CrossEncoder, validation: Sequence[ValidationQuery]) -> list[list[float]]:
    """Cross-encoder logits for every candidate of every query, in candidate order."""
    pairs = [(q.query, hit.passage.text) for q in validation for hit in q.candidates]
    flat = model.predict(pairs, batch_size=64, activation_fn=_identity(), show_progress_bar=False)
    scores, start = [], 0
    for q in validation:
        scores.append([float(x) for x in flat[start : start + len(q.candidates)]])
        start += len(q.candidates)
    return scores


def _identity():  # noqa: ANN202
    import torch

    return torch.nn.Identity()


def save_model(
    model: CrossEncoder, report: FinetuneReport, model_dir: Path, card: str, fp16: bool = False
) -> None:
    """Write model, fusion weight, metrics and card to a temp folder, then swap it in atomically.

    An interrupted run leaves the previous model in place.
    """
    files = {
        "fusion.json": json.dumps({"weight": report.fusion_weight, "first_stage": "z-score per query"}, indent=2) + "\n",
        "finetune_report.json": json.dumps(asdict(report), indent=2, default=str) + "\n",
        "README.md": card,
    }
    save_model_folder(model, model_dir, files, fp16)


def save_model_folder(model: CrossEncoder, model_dir: Path, files: Mapping[str, str], fp16: bool = False) -> None:
    """The model's weights and the given text files (name → content), staged and swapped in atomically.

    ``fp16`` halves the bytes on disk; the config still says float32, so loaders compute in fp32
    (fp16 on a CPU is slow).
    """
    with staged_folder(model_dir) as staging:
        to_save = copy.deepcopy(model).half() if fp16 else model
        to_save.save_pretrained(str(staging))
        if fp16:
            config = json.loads((staging / "config.json").read_text(encoding="utf-8"))
            (staging / "config.json").write_text(json.dumps({**config, "dtype": "float32"}, indent=2) + "\n", encoding="utf-8")
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8")
        for file in staging.iterdir():
            file.chmod(0o644)  # a model folder is meant to be shared
