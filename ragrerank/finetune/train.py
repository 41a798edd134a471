"""The training loop: a few lines around the sentence-transformers cross-encoder losses.

The loop is ours instead of ``CrossEncoderTrainer``, because the trainer needs the ``datasets``
package and a time budget is easier to honour in a loop we own. Checkpoints are chosen on
validation nDCG@10 of reranking each held-out question's first-stage candidates.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ragrerank.errors import RagrerankError
from ragrerank.io import atomic_write
from ragrerank.finetune.trainset import TrainingExample, TrainingSet, ValidationQuery

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

Recipe = Literal["bce", "listwise", "margin-listwise", "distill", "distill-margin"]
DISTILL_RECIPES = ("distill", "distill-margin")
POSITIVE_LABEL = 10.0  # ListNet softmaxes the labels: 10 vs 0 makes the target ~one-hot on the positive
MARGIN_SCALE = 10.0  # cosine margins are ~0.1; logits move in units, so the teacher is scaled up
DISTILL_SCALE = 3.0  # query-likelihood scores spread ~0.9 nat per list; × 3 makes a soft target neither flat nor one-hot
DISTILL_MAX_QUESTIONS = 2500  # teacher labels cost ~4.5 s per question × 6 passages on 2 AVX2 cores in fp32 (~1 s in bf16 with AMX)


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
    validation_queries: int  # held-out questions scored at each check (fusion_queries of them fit the fusion weight)
    max_queries: int  # questions drawn to mine negatives for (mining costs a hybrid search each)
    distill_gold_share: float = 0.5  # distill: the listwise target mixes the teacher's distribution with the known positive
    random_negatives: int = 0  # hand-written questions: easy negatives drawn at random from other pages, besides the hard ones
    fusion_queries: int = 100000  # held-out questions scored to fit the fusion weight (~18 pairs a second on 2 cores)


BUDGETS = {
    # quick: a dozen steps refine a trained model; the cap only guards a machine much slower than 2 cores
    "quick": Budget("quick", 480.0, 48, 7, 4, 2e-5, 256, 6, 2, 0.0, 20, 400),
    "full": Budget("full", 420.0, 60000, 15, 32, 5e-5, 320, 150, 4, 0.3, 300, 100000),
    # cpu: the long run on hand-written questions, in the background with checkpoints. fp32: on 2 AVX2 cores a
    # step of 8 questions × 6 passages takes ~15-20 s (bfloat16 autocast, emulated there, was 4× slower): the 150
    # steps took 42 minutes with mining, checks and the fusion fit. A GPU run can raise max_examples to epochs
    "cpu": Budget("cpu", 3600.0, 1200, 3, 8, 3e-5, 256, 25, 4, 0.0, 40, 100000, random_negatives=2, fusion_queries=240),
}


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


@dataclass
class _Progress:
    """Where a run stands: what a checkpoint saves and a resumed run starts from."""

    step: int = 0
    phase: int = 0  # index of the phase under way
    phase_step: int = 0  # steps done within it
    best_ndcg: float = -1.0
    best_step: int = 0
    best_state: dict[str, object] | None = None
    history: dict[str, list] = field(default_factory=lambda: {"evaluations": [], "losses": [], "phases": []})


def train(
    trainset: TrainingSet,
    base: str,
    budget: Budget,
    recipe: Recipe = "margin-listwise",
    device: str = "cpu",
    seed: int = 13,
    teacher: str | None = None,
    log: Callable[[str], None] = print,
    checkpoint: Path | None = None,
) -> tuple[CrossEncoder, dict[str, object]]:
    """Train from ``base`` and return the best checkpoint by validation nDCG@10, with its history.

    Step 0 is a checkpoint too: a run that only makes the base worse returns the base unchanged.
    ``teacher`` is the bi-encoder whose margins the MarginMSE warm start distils; it defaults to
    ``base`` when that is a bi-encoder folder, and without one the warm start is skipped. With
    ``checkpoint``, the run's state is saved there (atomically) at every validation check, and a run
    given an existing checkpoint resumes from it: the long CPU run survives being stopped.
    """
    import torch

    _check_budget(trainset, budget)
    if recipe in DISTILL_RECIPES and not all(example.teacher_scores for example in trainset.train):
        raise RagrerankError(
            f"recipe '{recipe}' distils a teacher's scores, but the training set has examples without them: "
            "label it first with ragrerank.finetune.label_with_teacher"
        )
    random.seed(seed)
    torch.manual_seed(seed)
    model = load_base(base, device, budget.max_length)
    started = time.monotonic()
    checks = random.Random(seed).sample(trainset.validation, min(budget.validation_queries, len(trainset.validation)))
    progress = _load_checkpoint(checkpoint, model) if checkpoint is not None and checkpoint.is_file() else None
    if progress is None:
        ndcg = validation_ndcg(model, checks)
        progress = _Progress(best_ndcg=ndcg, best_state=_state(model))
        progress.history["evaluations"].append([0, ndcg])
        log(f"step 0: validation nDCG@10 {ndcg:.4f}")
    else:
        log(f"resumed at step {progress.step} (best validation nDCG@10 {progress.best_ndcg:.4f} at step {progress.best_step})")
    teacher = teacher or (base if is_bi_encoder(base) else None)
    for number, (loss_name, share) in enumerate(_phases(recipe, budget, teacher is not None)):
        batches = _batches(_draw(trainset.train, int(budget.max_examples * share)), budget.batch_size)  # drawn even when
        if number >= progress.phase:  # resuming past this phase, so later phases draw the same batches
            _train_phase(model, loss_name, batches, budget, share, teacher, device, checks, progress, log, checkpoint)
    model.load_state_dict(progress.best_state)
    model.eval()
    history = {**progress.history, "steps": progress.step, "best_step": progress.best_step, "best_ndcg": progress.best_ndcg}
    return model, {**history, "seconds": time.monotonic() - started}


def _train_phase(  # noqa: PLR0913 - one phase of train(), which owns every argument
    model: CrossEncoder,
    loss_name: str,
    batches: list[list[TrainingExample]],
    budget: Budget,
    share: float,
    teacher: str | None,
    device: str,
    checks: Sequence[ValidationQuery],
    progress: _Progress,
    log: Callable[[str], None],
    checkpoint: Path | None,
) -> None:
    """Steps of one loss over its batches, checking validation every ``eval_every`` steps and keeping the best."""
    import torch
    from sentence_transformers.cross_encoder import losses

    loss = _loss(loss_name, model, losses)
    optimizer = torch.optim.AdamW(model.parameters(), lr=budget.learning_rate, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_linear(len(batches)))
    if checkpoint is not None and progress.phase_step:
        _load_optimizer(checkpoint, optimizer, scheduler)
    phase_started, phase_seconds = time.monotonic(), budget.max_seconds * share
    margins = _teacher(teacher, device) if loss_name == "margin-mse" else None
    bf16 = device.startswith("cuda")
    stale = 0
    model.train()
    for batch in batches[progress.phase_step :]:
        columns, labels = _columns(batch, loss_name, margins, device, budget.distill_gold_share)
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
            value = loss(columns, labels)
        value.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
        progress.step += 1
        progress.phase_step += 1
        progress.history["losses"].append([progress.step, round(value.item(), 6)])
        out_of_time = time.monotonic() - phase_started > phase_seconds
        if progress.step % budget.eval_every == 0 or out_of_time or progress.phase_step == len(batches):
            ndcg = validation_ndcg(model, checks)
            model.train()
            progress.history["evaluations"].append([progress.step, ndcg])
            log(f"step {progress.step} ({loss_name}, loss {value.item():.4f}): validation nDCG@10 {ndcg:.4f}")
            if ndcg > progress.best_ndcg:
                progress.best_ndcg, progress.best_step, progress.best_state, stale = ndcg, progress.step, _state(model), 0
            else:
                stale += 1
            if checkpoint is not None:
                _save_checkpoint(checkpoint, model, optimizer, scheduler, progress)
            if stale >= budget.patience or out_of_time:
                break
    progress.history["phases"].append({"loss": loss_name, "steps": progress.step})
    progress.phase, progress.phase_step = progress.phase + 1, 0


def _save_checkpoint(path: Path, model: CrossEncoder, optimizer, scheduler, progress: _Progress) -> None:  # noqa: ANN001
    import torch

    with atomic_write(path, "wb") as handle:
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "progress": vars(progress)}, handle)


def _load_checkpoint(path: Path, model: CrossEncoder) -> _Progress:
    import torch

    saved = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(saved["model"])
    return _Progress(**saved["progress"])


def _load_optimizer(path: Path, optimizer, scheduler) -> None:  # noqa: ANN001
    import torch

    saved = torch.load(path, map_location="cpu", weights_only=False)
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])


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


def _columns(batch: list[TrainingExample], loss_name: str, teacher, device: str, gold_share: float):  # noqa: ANN001, ANN202
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
        return [queries, documents], [_distill_target(e.teacher_scores, device, gold_share) for e in batch]
    target = [torch.tensor([POSITIVE_LABEL] + [0.0] * (len(docs) - 1), device=device) for docs in documents]
    return [queries, documents], target


def _distill_target(teacher_scores: Sequence[float], device: str, gold_share: float):  # noqa: ANN202
    """Labels whose softmax (ListNet applies one) is the teacher's distribution mixed with the positive.

    The teacher alone ranks the generated question's own passage first only half the time, partly
    because other pages answer too (false negatives), partly from its own errors: the mix keeps both.
    """
    import torch

    teacher = torch.softmax(DISTILL_SCALE * torch.tensor(teacher_scores, device=device), dim=0)
    gold = torch.zeros_like(teacher)
    gold[0] = 1.0
    return torch.log(gold_share * gold + (1 - gold_share) * teacher)


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
