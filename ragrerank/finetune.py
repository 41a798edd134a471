"""Fine-tune the project's own cross-encoder on questions generated from the docs.

No package ships a pretrained reranker, so offline the project trains one from the bi-encoder
all-MiniLM-L6-v2 (or, online, further trains ``cross-encoder/ms-marco-MiniLM-L-6-v2``). The loop
is a few lines around the sentence-transformers cross-encoder losses instead of
``CrossEncoderTrainer``, because the trainer needs the ``datasets`` package and a time budget is
easier to honour in a loop we own. Checkpoints are chosen on validation nDCG@10 of reranking the
hybrid top-30 of held-out, page-disjoint questions, and the score fusion weight is fitted there too.
The ``distill`` recipes learn from the packaged LLM's query likelihood (ragrerank.query_likelihood)
instead of the generated question's own passage alone: graded targets from a teacher that was
measured to rank real questions better than the hybrid retriever does.
"""

from __future__ import annotations

import copy
import json
import math
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from ragrerank.config import PROJECT_ROOT, Settings
from ragrerank.errors import RagrerankError
from ragrerank.rerank import fuse
from ragrerank.trainset import TrainingExample, TrainingSet, ValidationQuery

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

Recipe = Literal["bce", "listwise", "margin-listwise", "distill", "distill-margin"]
DISTILL_RECIPES = ("distill", "distill-margin")
MODEL_DIRNAME = "k8s-cross-encoder"
PROJECT_QUESTIONS = PROJECT_ROOT / "data" / "eval" / "k8s_questions.jsonl"
FUSION_WEIGHTS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
POSITIVE_LABEL = 10.0  # ListNet softmaxes the labels: 10 vs 0 makes the target ~one-hot on the positive
MARGIN_SCALE = 10.0  # cosine margins are ~0.1; logits move in units, so the teacher is scaled up
DISTILL_SCALE = 3.0  # query-likelihood scores spread ~0.9 nat per list; × 3 makes a soft target neither flat nor one-hot
DISTILL_GOLD_SHARE = 0.5  # the listwise target mixes the teacher's distribution with the known positive
DISTILL_MAX_QUESTIONS = 2500  # teacher labels cost ~1 s per question × 8 passages on 2 CPU cores in bf16


@dataclass(frozen=True)
class Budget:
    """How much training a run may do; ``quick`` fits CI and notebook 04 on 2 CPU cores."""

    name: str
    max_seconds: float  # wall-clock cap on the training loop (evaluation included)
    max_examples: int  # training questions drawn in all (steps = max_examples / batch_size)
    negatives: int  # hard negatives per question
    batch_size: int  # questions per step (each with 1 + negatives passages)
    learning_rate: float
    max_length: int  # tokens; passages are ~200 words, see the model card
    eval_every: int  # steps between validation checks
    patience: int  # validation checks without improvement before stopping
    warm_start_share: float  # share of steps spent on MarginMSE distillation before the listwise phase
    validation_queries: int  # held-out questions scored at each check (all of them for the final report)
    max_queries: int  # generated questions to mine negatives for (mining costs a hybrid search each)


BUDGETS = {
    # quick: a dozen steps refine a trained model; the cap only guards a machine much slower than 2 cores
    "quick": Budget("quick", 480.0, 48, 7, 4, 2e-5, 256, 6, 2, 0.0, 20, 1500),
    "full": Budget("full", 420.0, 60000, 15, 32, 5e-5, 320, 150, 4, 0.3, 300, 100000),
}


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
    from ragrerank.index import open_retriever
    from ragrerank.models import BI_ENCODER_ALIASES, load_bi_encoder, resolve_model
    from ragrerank.querygen import generate_queries
    from ragrerank.trainset import build_training_set, question_set

    if budget not in BUDGETS:
        raise RagrerankError(f"unknown budget '{budget}': use one of {', '.join(BUDGETS)}")
    plan = BUDGETS[budget]
    base_name = base or _default_base(settings)
    base_kind = "bi-encoder" if base_name in BI_ENCODER_ALIASES else "cross-encoder"
    base_path = resolve_model(base_kind, base_name, settings).location
    started = time.monotonic()
    passages = load_passages(settings.passages_path)
    retriever = open_retriever(settings, "hybrid", load_bi_encoder(settings.bi_encoder, settings))
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
    target = out or settings.models_dir / MODEL_DIRNAME
    report = FinetuneReport(
        model_dir=str(target), base=base_name, budget=budget, recipe=recipe, device=device,
        seconds=round(time.monotonic() - started, 1), steps=int(history["steps"]), best_step=int(history["best_step"]),
        fusion_weight=weight, validation=validation, training_data=trainset.summary(),
    )
    save_model(model, report, target, model_card(report), fp16=device.startswith("cuda"))
    log(f"saved {target}: validation MRR@10 first stage {validation['first_stage_MRR@10']:.3f}, "
        f"pure {validation['pure_MRR@10']:.3f}, fused {validation['fused_MRR@10']:.3f} (w={weight:g})")
    return report


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
Trained by `ragrerank.finetune` from `{report.base}` on questions generated from the docs themselves
(titles, descriptions, headings as "how do I …" / "what is …", glossary definitions, sentences around
links, inverse-cloze sentences), with hard negatives from the hybrid retriever's top-30 on other pages.
No human labels and no external data.

- recipe: `{report.recipe}`, budget `{report.budget}` on `{report.device}`, {report.steps} steps (best at {report.best_step}), {report.seconds:.0f} s
- score fusion: final = logit + {report.fusion_weight:g} × z-scored first-stage score (`fusion.json`);
  `inf` means the first-stage order is kept

## Validation: reranking the hybrid top-30 (page-level relevance)

Questions that chose the fusion weight: the project's own (`data/eval/k8s_questions.jsonl`, in scope)
when present, else held-out synthetic ones; `fused` is the chosen weight.

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


def _default_base(settings: Settings) -> str:
    """The project's own model when it exists (refine it), else the packaged bi-encoder (start one)."""
    from ragrerank.models import resolve_model

    try:
        resolve_model("cross-encoder", settings.cross_encoder, settings)
    except RagrerankError:
        return settings.bi_encoder
    return settings.cross_encoder


def load_base(base: str, device: str, max_length: int) -> CrossEncoder:
    """Load ``base`` as a one-score cross-encoder in fp32; a bi-encoder folder becomes one.

    sentence-transformers converts a SentenceTransformer folder into a sequence classifier with a new
    head, which keeps the bi-encoder's language knowledge in the transformer weights.
    """
    import torch
    from sentence_transformers import CrossEncoder

    try:
        model = CrossEncoder(base, num_labels=1, max_length=max_length, device=device)
    except (OSError, ValueError, KeyError) as error:
        raise RagrerankError(
            f"base model '{base}' cannot be loaded as a cross-encoder ({error}): pass a BERT-like "
            "encoder folder or hub id, e.g. the packaged all-MiniLM-L6-v2"
        ) from None
    if model.num_labels != 1:
        raise RagrerankError(f"base model '{base}' predicts {model.num_labels} labels; a reranker needs 1 score")
    return model.to(torch.float32)


def train(
    trainset: TrainingSet,
    base: str,
    budget: Budget,
    recipe: Recipe = "margin-listwise",
    device: str = "cpu",
    seed: int = 13,
    teacher: str | None = None,
    log: Callable[[str], None] = print,
) -> tuple[CrossEncoder, dict[str, object]]:
    """Train from ``base`` and return the best checkpoint by validation nDCG@10, with its history.

    Step 0 is a checkpoint too: a run that only makes the base worse returns the base unchanged.
    ``teacher`` is the bi-encoder whose margins the MarginMSE warm start distils; it defaults to
    ``base`` when that is a bi-encoder folder, and without one the warm start is skipped.
    """
    import torch
    from sentence_transformers.cross_encoder import losses

    _check_budget(trainset, budget)
    if recipe in DISTILL_RECIPES and not all(example.teacher_scores for example in trainset.train):
        raise RagrerankError(
            f"recipe '{recipe}' distils a teacher's scores, but the training set has examples without them: "
            "label it first with ragrerank.trainset.label_with_teacher"
        )
    random.seed(seed)
    torch.manual_seed(seed)
    model = load_base(base, device, budget.max_length)
    started = time.monotonic()
    checks = random.Random(seed).sample(trainset.validation, min(budget.validation_queries, len(trainset.validation)))
    best = {"ndcg": validation_ndcg(model, checks), "step": 0, "state": _state(model)}
    history: dict[str, object] = {"evaluations": [[0, best["ndcg"]]], "losses": [], "phases": []}
    log(f"step 0: validation nDCG@10 {best['ndcg']:.4f}")
    teacher = teacher or (base if is_bi_encoder(base) else None)
    phases = _phases(recipe, budget, teacher is not None)
    step = 0
    for loss_name, share in phases:
        loss = _loss(loss_name, model, losses)
        batches = _batches(_draw(trainset.train, int(budget.max_examples * share)), budget.batch_size)
        total = len(batches)
        optimizer = torch.optim.AdamW(model.parameters(), lr=budget.learning_rate, weight_decay=0.01)
        phase_started, phase_seconds = time.monotonic(), budget.max_seconds * share
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_linear(total))
        margins = _teacher(teacher, device) if loss_name == "margin-mse" else None
        stale, phase_first_step = 0, step + 1
        model.train()
        for batch in batches:
            columns, labels = _columns(batch, loss_name, margins, device)
            with torch.autocast(device_type="cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
                value = loss(columns, labels)
            value.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            history["losses"].append([step, round(value.item(), 6)])
            out_of_time = time.monotonic() - phase_started > phase_seconds
            last = step == phase_first_step + len(batches) - 1
            if step % budget.eval_every == 0 or out_of_time or last:
                ndcg = validation_ndcg(model, checks)
                model.train()
                history["evaluations"].append([step, ndcg])
                log(f"step {step} ({loss_name}, loss {value.item():.4f}): validation nDCG@10 {ndcg:.4f}")
                if ndcg > best["ndcg"]:
                    best, stale = {"ndcg": ndcg, "step": step, "state": _state(model)}, 0
                else:
                    stale += 1
                if stale >= budget.patience or out_of_time:
                    break
        history["phases"].append({"loss": loss_name, "steps": step})
    model.load_state_dict(best["state"])
    model.eval()
    history.update(steps=step, best_step=best["step"], best_ndcg=best["ndcg"], seconds=time.monotonic() - started)
    return model, history


def validation_ndcg(model: CrossEncoder, validation: Sequence[ValidationQuery]) -> float:
    """nDCG@10 of reranking each held-out question's first-stage candidates (sentence-transformers' evaluator)."""
    from sentence_transformers.cross_encoder.evaluation import CrossEncoderRerankingEvaluator

    samples = [
        {
            "query": query.query,
            "positive": [hit.passage.text for hit in query.candidates if hit.passage.path in query.relevant_paths],
            "documents": [hit.passage.text for hit in query.candidates],
        }
        for query in validation
    ]
    evaluator = CrossEncoderRerankingEvaluator(samples, at_k=10, always_rerank_positives=False, write_csv=False)
    model.eval()
    return float(evaluator(model)[f"{evaluator.name + '_' if evaluator.name else ''}ndcg@10"])


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
        low = _gain_lower_bound(_reciprocal_ranks(validation, first), _reciprocal_ranks(validation, fused))
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
    gains = np.asarray(after) - np.asarray(before)
    rows = np.random.default_rng(13).integers(0, len(gains), size=(resamples, len(gains)))
    return float(np.percentile(gains[rows].mean(axis=1), 5))


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
    model_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=model_dir.parent, prefix=f".{model_dir.name}."))
    try:
        to_save = copy.deepcopy(model).half() if fp16 else model
        to_save.save_pretrained(str(staging))
        if fp16:  # half the bytes on disk, but loaders should compute in fp32 (fp16 on CPU is slow)
            config = json.loads((staging / "config.json").read_text())
            (staging / "config.json").write_text(json.dumps({**config, "dtype": "float32"}, indent=2) + "\n")
        (staging / "fusion.json").write_text(
            json.dumps({"weight": report.fusion_weight, "first_stage": "z-score per query"}, indent=2) + "\n"
        )
        (staging / "finetune_report.json").write_text(json.dumps(asdict(report), indent=2, default=str) + "\n")
        (staging / "README.md").write_text(card)
        staging.chmod(0o755)  # mkdtemp makes it private; a model folder is meant to be shared
        for file in staging.iterdir():
            file.chmod(0o644)
        old = model_dir.with_name(f".{model_dir.name}.old")
        if model_dir.exists():
            shutil.rmtree(old, ignore_errors=True)
            model_dir.rename(old)
        staging.rename(model_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _check_budget(trainset: TrainingSet, budget: Budget) -> None:
    if len(trainset.train) < budget.batch_size:
        raise RagrerankError(
            f"{len(trainset.train)} training questions cannot fill one batch of {budget.batch_size}: "
            "generate questions from more pages or lower the batch size"
        )
    if budget.max_seconds <= 0 or budget.max_examples < budget.batch_size:
        raise RagrerankError(
            f"budget '{budget.name}' ({budget.max_seconds:g} s, {budget.max_examples} questions) is too small "
            f"for one step of {budget.batch_size} questions"
        )


def _phases(recipe: Recipe, budget: Budget, has_teacher: bool) -> list[tuple[str, float]]:
    """Loss schedule: MarginMSE distillation only warm-starts a bi-encoder base (a reranker needs none)."""
    if recipe in ("bce", *DISTILL_RECIPES):
        return [(recipe, 1.0)]
    if recipe == "listwise" or budget.warm_start_share <= 0 or not has_teacher:
        return [("listwise", 1.0)]
    if recipe == "margin-listwise":
        return [("margin-mse", budget.warm_start_share), ("listwise", 1.0 - budget.warm_start_share)]
    raise RagrerankError(f"unknown recipe '{recipe}': use bce, listwise, margin-listwise, {', '.join(DISTILL_RECIPES)}")


def is_bi_encoder(base: str) -> bool:
    """A sentence-transformers bi-encoder folder (it has a pooling module): a teacher for the warm start."""
    return (Path(base) / "modules.json").is_file() and (Path(base) / "1_Pooling").is_dir()


def _loss(name: str, model: CrossEncoder, losses):  # noqa: ANN001, ANN202 - the losses module
    import torch

    if name == "bce":
        return losses.BinaryCrossEntropyLoss(model)
    if name in ("margin-mse", "distill-margin"):
        return losses.MarginMSELoss(model, activation_fn=torch.nn.Identity())
    # softmax cross-entropy over 1 positive + hard negatives (or the teacher's soft targets), one forward pass
    return losses.ListNetLoss(model, activation_fn=torch.nn.Identity(), mini_batch_size=-1)


def _draw(examples: Sequence[TrainingExample], count: int) -> list[TrainingExample]:
    """``count`` examples in shuffled epochs: a large budget repeats the set rather than stopping early."""
    drawn: list[TrainingExample] = []
    while len(drawn) < count:
        drawn += random.sample(list(examples), len(examples))
    return drawn[:count]


def _batches(examples: Sequence[TrainingExample], size: int) -> list[list[TrainingExample]]:
    return [list(examples[i : i + size]) for i in range(0, len(examples) - size + 1, size)]


def _columns(batch: list[TrainingExample], loss_name: str, teacher, device: str):  # noqa: ANN001, ANN202
    """Shape a batch the way each sentence-transformers loss expects its dataset columns."""
    import torch

    queries = [e.query for e in batch]
    documents = [[e.positive.text, *(n.text for n in e.negatives)] for e in batch]
    if loss_name == "bce":
        pairs = [(q, d, float(i == 0)) for q, docs in zip(queries, documents) for i, d in enumerate(docs)]
        labels = torch.tensor([p[2] for p in pairs], device=device)
        return [[p[0] for p in pairs], [p[1] for p in pairs]], labels
    if loss_name == "margin-mse":
        return [queries, *map(list, zip(*documents))], teacher(queries, documents)
    if loss_name == "distill-margin":
        scores = torch.tensor([e.teacher_scores for e in batch], device=device)
        return [queries, *map(list, zip(*documents))], DISTILL_SCALE * (scores[:, :1] - scores[:, 1:])
    if loss_name == "distill":
        return [queries, documents], [_distill_target(e.teacher_scores, device) for e in batch]
    target = [torch.tensor([POSITIVE_LABEL] + [0.0] * (len(docs) - 1), device=device) for docs in documents]
    return [queries, documents], target


def _teacher_labels(
    examples: Sequence[TrainingExample], budget: Budget, settings: Settings, log: Callable[[str], None]
) -> tuple[TrainingExample, ...]:
    """Label as many questions as the budget trains on with the packaged LLM's query likelihood."""
    from ragrerank.query_likelihood import QueryLikelihood
    from ragrerank.trainset import label_with_teacher

    chosen = random.Random(13).sample(list(examples), min(len(examples), budget.max_examples, DISTILL_MAX_QUESTIONS))
    log(f"labelling {len(chosen)} questions × {1 + budget.negatives} passages with the query-likelihood teacher")
    return tuple(label_with_teacher(chosen, QueryLikelihood.from_settings(settings).score, budget.negatives))


def _distill_target(teacher_scores: Sequence[float], device: str):  # noqa: ANN202
    """Labels whose softmax (ListNet applies one) is the teacher's distribution mixed with the positive.

    The teacher alone ranks the generated question's own passage first only half the time, partly
    because other pages answer too (false negatives), partly from its own errors: the mix keeps both.
    """
    import torch

    teacher = torch.softmax(DISTILL_SCALE * torch.tensor(teacher_scores, device=device), dim=0)
    gold = torch.zeros_like(teacher)
    gold[0] = 1.0
    return torch.log(DISTILL_GOLD_SHARE * gold + (1 - DISTILL_GOLD_SHARE) * teacher)


def _teacher(base: str, device: str) -> Callable[[list[str], list[list[str]]], object]:
    """The bi-encoder's scaled cosine margins (positive − negative), the warm start's targets."""
    import torch
    from sentence_transformers import SentenceTransformer

    encoder = SentenceTransformer(base, device=device)

    def margins(queries: list[str], documents: list[list[str]]) -> torch.Tensor:
        with torch.no_grad():
            q = encoder.encode(queries, convert_to_tensor=True, normalize_embeddings=True)
            flat = [d for docs in documents for d in docs]
            d = encoder.encode(flat, convert_to_tensor=True, normalize_embeddings=True).view(len(queries), -1, q.shape[1])
            cos = torch.einsum("qd,qnd->qn", q, d)
        return (MARGIN_SCALE * (cos[:, :1] - cos[:, 1:])).float()

    return margins


def _warmup_linear(total: int) -> Callable[[int], float]:
    """Warm up over the first 10% of the phase's steps, then decay linearly to zero at its end.

    Steps, not wall-clock, set the schedule, so a run that finishes within its time cap is
    reproducible (notebook 04 is checked output for output); the cap only cuts a slow run short.
    """

    def factor(step: int) -> float:
        progress = (step + 1) / total
        return max(0.0, min(progress / 0.1, 1.0 - progress + 1.0 / total))

    return factor


def _state(model: CrossEncoder) -> dict[str, object]:
    return {key: value.detach().clone() for key, value in model.state_dict().items()}


def page_measures(validation: Sequence[ValidationQuery], scores: Sequence[Sequence[float]]) -> dict[str, float]:
    """P@1, P@3 and MRR@10 at page level, the way dev.jsonl is judged (ir-measures does the counting)."""
    import ir_measures
    from ir_measures import RR, P

    values = ir_measures.calc_aggregate([P @ 1, P @ 3, RR @ 10], *_qrels_and_run(validation, scores))
    return {"P@1": values[P @ 1], "P@3": values[P @ 3], "MRR@10": values[RR @ 10]}


def _reciprocal_ranks(validation: Sequence[ValidationQuery], scores: Sequence[Sequence[float]]) -> list[float]:
    import ir_measures
    from ir_measures import RR

    per_query = {m.query_id: m.value for m in ir_measures.iter_calc([RR @ 10], *_qrels_and_run(validation, scores))}
    return [per_query.get(str(number), 0.0) for number in range(len(validation))]


def _qrels_and_run(validation: Sequence[ValidationQuery], scores: Sequence[Sequence[float]]) -> tuple[list, list]:
    """Qrels and a run whose scores are negated ranks: equal scores keep the candidate order.

    pytrec_eval breaks score ties by document id, which would reorder the first stage's many
    RRF ties and measure a ranking nobody produced; ``ragrerank.evaluate`` ranks the same way.
    """
    import ir_measures

    qrels, run = [], []
    for number, (query, query_scores) in enumerate(zip(validation, scores, strict=True)):
        qrels.append(ir_measures.Qrel(str(number), "\0answer", 1))  # keeps questions whose answer was not retrieved
        order = sorted(range(len(query.candidates)), key=lambda i: (-float(query_scores[i]), i))
        for rank, i in enumerate(order, start=1):
            hit = query.candidates[i]
            qrels.append(ir_measures.Qrel(str(number), hit.passage.id, int(hit.passage.path in query.relevant_paths)))
            run.append(ir_measures.ScoredDoc(str(number), hit.passage.id, -float(rank)))
    return qrels, run
