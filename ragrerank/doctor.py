"""`ragrerank doctor`: what is installed, where the docs and models resolve from, what is built."""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Literal
from importlib.metadata import PackageNotFoundError, version

from ragrerank.config import Settings
from ragrerank.errors import RagrerankError
from ragrerank.models import ModelKind, resolve_model

PACKAGES = ("ragrerank", "torch", "sentence-transformers", "transformers", "faiss-cpu", "bm25s", "ir-measures")


@dataclass(frozen=True)
class Check:
    """One line of the report; ``missing`` lines make doctor exit non-zero, any line not ``ok`` fails
    the workshop check (``ragrerank.series.workshop``), which prints ``fix`` under it."""

    name: str
    status: Literal["ok", "missing", "not built", "stale", "low"]
    detail: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def run_checks(settings: Settings) -> list[Check]:
    """Check docs, models and artifacts without loading any model (fast, offline)."""
    checks = [docs_check(settings)]
    for kind, name in configured_models(settings):
        try:
            source = resolve_model(kind, name, settings)
            checks.append(Check(kind, "ok", f"{name} → {source.origin}: {source.location}"))
        except RagrerankError as error:
            checks.append(Check(kind, "missing", str(error)))
    checks.extend(_artifact_checks(settings))
    return checks


def versions() -> str:
    parts = [f"python {platform.python_version()}"]
    for package in PACKAGES:
        try:
            parts.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            parts.append(f"{package} (not installed)")
    return " · ".join(parts)


def configured_models(settings: Settings) -> list[tuple[ModelKind, str]]:
    return [
        ("bi-encoder", settings.bi_encoder),
        ("cross-encoder", settings.cross_encoder),
        ("span-scorer", settings.span_scorer),
        ("llm", settings.llm),
    ]


def docs_check(settings: Settings) -> Check:
    try:
        docs_dir = settings.docs_dir
    except RagrerankError as error:
        return Check("docs", "missing", str(error))
    count = sum(1 for _ in docs_dir.rglob("*.md"))
    return Check("docs", "ok", f"{settings.docs_root} (from {settings.docs_origin}): {count} markdown files")


def _artifact_checks(settings: Settings) -> list[Check]:
    """Artifacts are built by the pipeline, so a missing one is reported with its command, not failed."""
    artifacts = [
        ("passages", settings.passages_path, "ragrerank passages"),
        ("index", settings.index_dir / "manifest.json", "ragrerank index"),
    ]
    return [
        Check(name, "ok", f"{path} ({path.stat().st_size // 1024} KiB)")
        if path.exists()
        else Check(name, "not built", f"run `{command}` (or `make run`)")
        for name, path, command in artifacts
    ]
