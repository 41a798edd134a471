"""How the cross-encoder runs on a CPU: the runtimes ``RerankSettings.runtime`` selects.

==========  ================================================================================
runtime     what runs
==========  ================================================================================
torch       sentence-transformers' ``CrossEncoder.predict`` in fp32: the reference
torch-bf16  the same network in bfloat16; fast only on CPUs with AMX or AVX512-BF16
onnx        ONNX Runtime, fp32, on an exported graph with attention, GELU and LayerNorm fused
onnx-int8   that graph with int8 weights (dynamic quantisation: activations per batch)
==========  ================================================================================

Every runtime but ``torch`` tokenizes the pairs once, sorts them by token count and pads
each batch only to its own longest pair (rounded up to 16 tokens). (``CrossEncoder.predict`` sorts by characters
too, so the reference already avoids most padding; the gains come from the arithmetic.)

The ONNX graphs are exported once per set of weights into ``<models_dir>/onnx-<digest>/``
and reused. They are exported with ``torch.onnx`` and run with ONNX Runtime directly:
sentence-transformers' ``backend="onnx"`` needs optimum-onnx, whose only release pins
transformers < 4.58, below the transformers this project runs on.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import logging
import math
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ragrerank.errors import RagrerankError

if TYPE_CHECKING:
    import torch
    from sentence_transformers import CrossEncoder

RUNTIMES = ("torch", "torch-bf16", "onnx", "onnx-int8")
ONNX_FILES = {"onnx": "model.onnx", "onnx-int8": "model-int8.onnx"}
PAD_MULTIPLE = 16  # tokens: batch shapes repeat across questions, see score_sorted

# (query, passages, batch size) → one logit per passage, in input order
PairScorer = Callable[[str, Sequence[str], int], np.ndarray]
# one padded batch of token ids → one logit per row
Forward = Callable[[Mapping[str, np.ndarray]], np.ndarray]


def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AMX or AVX512-BF16); elsewhere torch-bf16 is emulated and slow."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8").split()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def auto_runtime() -> str:
    """The fastest runtime that stays close to fp32 here: torch-bf16 on CPUs that have it, else torch."""
    return "torch-bf16" if native_bf16() else "torch"


def check_runtime(runtime: str) -> None:
    if runtime not in RUNTIMES:
        raise RagrerankError(f"unknown cross-encoder runtime {runtime!r}: choose one of {', '.join(RUNTIMES)}")


def load_scorer(model: CrossEncoder, runtime: str, models_dir: Path | None) -> PairScorer:
    """The pair scorer of ``runtime``; the ONNX runtimes export into ``models_dir`` on first use.

    Example:
        >>> score = load_scorer(model, "onnx-int8", settings.models_dir)
        >>> score("what is a pod", ["A Pod is a group of containers."], 16).shape
        (1,)
    """
    check_runtime(runtime)
    if runtime == "torch":
        return _sentence_transformers(model)
    if runtime == "torch-bf16":
        forward = _bfloat16_forward(model)
    elif models_dir is None:
        raise RagrerankError(f"runtime {runtime!r} exports the model to ONNX: pass the folder for it (models_dir)")
    else:
        forward = _onnx_forward(export_onnx(model, models_dir) / ONNX_FILES[runtime])
    return lambda query, texts, batch_size: score_sorted(model, forward, query, texts, batch_size)


def score_sorted(model: CrossEncoder, forward: Forward, query: str, texts: Sequence[str], batch_size: int) -> np.ndarray:
    """Tokenize once, run batches of similar token counts, return logits in input order.

    The batches are of equal size (50 pairs at batch size 16 run as 13+13+12+12, not
    16+16+16+2) and padded to a multiple of ``PAD_MULTIPLE`` tokens, so that the few
    distinct shapes reuse the CPU kernels built for them (oneDNN and ONNX Runtime prepare
    one per shape); padding is masked, so the logits do not change.
    """
    features = model.tokenizer(
        [query] * len(texts), list(texts), truncation="only_second", max_length=model.max_seq_length
    )
    order = np.argsort([-len(ids) for ids in features["input_ids"]], kind="stable")
    logits = np.empty(len(texts), dtype=np.float32)
    for rows in np.array_split(order, math.ceil(len(texts) / batch_size)):
        batch = model.tokenizer.pad(
            {key: [features[key][i] for i in rows] for key in features}, return_tensors="np", pad_to_multiple_of=PAD_MULTIPLE
        )
        logits[rows] = forward(batch)
    return logits


def export_onnx(model: CrossEncoder, models_dir: Path) -> Path:
    """Export the fused fp32 graph and its int8 copy once per weights; return their folder.

    The files are built in a scratch folder beside the target and renamed into place, so
    an interrupted export never leaves a half-written model to be loaded next time.
    """
    network = model.transformers_model
    target = models_dir / f"onnx-{weights_digest(network)}"
    if all((target / name).is_file() for name in ONNX_FILES.values()):
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(dir=models_dir, prefix=f".{target.name}."))
    try:
        _export(model, scratch)
        scratch.chmod(0o755)  # mkdtemp's 0700 would hide the export from the other users of the artifacts
        os.replace(scratch, target)
    except OSError as error:
        if not all((target / name).is_file() for name in ONNX_FILES.values()):  # else: a concurrent export won
            raise RagrerankError(f"could not write the ONNX export {target} ({error}): delete that folder and retry") from None
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def weights_digest(network: torch.nn.Module) -> str:
    """A short hash of every weight: a retrained model never reuses a stale export."""
    import torch

    digest = hashlib.blake2b(digest_size=8)
    for name, tensor in sorted(network.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def _sentence_transformers(model: CrossEncoder) -> PairScorer:
    import torch

    def score(query: str, texts: Sequence[str], batch_size: int) -> np.ndarray:
        logits = model.predict(
            [(query, text) for text in texts],
            batch_size=batch_size,
            activation_fn=torch.nn.Identity(),
            show_progress_bar=False,
            processing_kwargs={"text": {"truncation": "only_second"}},
        )
        return np.asarray(logits, dtype=np.float32).reshape(len(texts))

    return score


def _bfloat16_forward(model: CrossEncoder) -> Forward:
    import torch

    network = copy.deepcopy(model.transformers_model).to(torch.bfloat16).eval()

    def forward(batch: Mapping[str, np.ndarray]) -> np.ndarray:
        with torch.inference_mode():
            logits = network(**{key: torch.from_numpy(value) for key, value in batch.items()}).logits
        return logits[:, 0].float().numpy()

    return forward


def _onnx_forward(path: Path) -> Forward:
    """An ONNX Runtime session with torch's thread count; its threads sleep between calls.

    Spinning threads (ONNX Runtime's default) would keep both cores busy after each call
    and slow whatever runs next, torch included.
    """
    import onnxruntime
    import torch

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    inputs = {item.name: np.int32 if item.type == "tensor(int32)" else np.int64 for item in session.get_inputs()}

    def forward(batch: Mapping[str, np.ndarray]) -> np.ndarray:
        return session.run(None, {name: batch[name].astype(dtype) for name, dtype in inputs.items()})[0][:, 0]

    return forward


def _export(model: CrossEncoder, folder: Path) -> None:
    """torch graph → ONNX → fused attention/GELU/LayerNorm → int8 weights, all offline."""
    import torch
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import MODEL_TYPES, optimize_model

    network = copy.deepcopy(model.transformers_model).float().eval()
    network.set_attn_implementation("eager")  # the attention pattern ONNX Runtime knows how to fuse
    sample = model.tokenizer(["a question"] * 2, ["a passage", "a longer passage to pad"], padding=True, return_tensors="pt")
    signature = list(inspect.signature(network.forward).parameters)
    names = sorted(sample, key=signature.index)  # the graph's inputs follow forward()'s order
    plain = folder / "plain.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notes on Python control flow: checked by the tests
        torch.onnx.export(
            network,
            (),
            str(plain),
            kwargs={name: sample[name] for name in names},
            input_names=names,
            output_names=["logits"],
            dynamic_axes={**{name: {0: "batch", 1: "tokens"} for name in names}, "logits": {0: "batch"}},
            opset_version=17,
            dynamo=False,  # the dynamo exporter needs onnxscript; the tracer is enough for a BERT
        )
    config = network.config
    if config.model_type in MODEL_TYPES:
        fused = optimize_model(
            str(plain), model_type=config.model_type, num_heads=config.num_attention_heads, hidden_size=config.hidden_size
        )
        fused.save_model_to_file(str(folder / ONNX_FILES["onnx"]))
        plain.unlink()
    else:
        plain.rename(folder / ONNX_FILES["onnx"])
    quiet = _Without("pre-processing before quantization")  # advice for image models, printed on every export
    logging.getLogger().addFilter(quiet)
    try:
        quantize_dynamic(
            folder / ONNX_FILES["onnx"],
            folder / ONNX_FILES["onnx-int8"],
            weight_type=QuantType.QInt8,
            per_channel=True,  # one scale per output column: per-tensor scales cost more ranking agreement
            extra_options={"DefaultTensorType": TensorProto.FLOAT},  # types of the fused ops' outputs
        )
    finally:
        logging.getLogger().removeFilter(quiet)


class _Without(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()
