"""Files the pipeline writes and reads: atomic writes and folder swaps, JSONL, checksums.

A failed or interrupted run never leaves a half-written artifact: files go to a temp file and
folders to a staging folder beside their target, renamed into place only on success.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

from ragrerank.errors import RagrerankError


@contextmanager
def atomic_write(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Write to a temp file beside ``path`` and rename it into place only on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; follow the umask like open() does
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """A fresh folder beside ``target`` to fill; it replaces ``target`` only when the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.building-"))
    try:
        staging.chmod(0o755)  # mkdtemp makes it owner-only; an artifact is as shareable as its inputs
        yield staging
        replace_folder(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def replace_folder(staging: Path, target: Path) -> None:
    """Swap a fully written ``staging`` folder in for ``target`` with two renames; the old one survives a failure."""
    retired = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, retired)
    try:
        os.replace(staging, target)
    except OSError:
        if retired.exists():
            os.replace(retired, target)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def file_sha256(path: Path) -> str:
    """The checksum that ties an index, a collection or a shipped file to exactly these bytes."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> None:
    with atomic_write(path) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Read one JSON object per line; a bad line is reported with its file and number."""
    return [record for _, record in numbered_jsonl(path)]


def numbered_jsonl(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line, so later checks can name the line too."""
    if not path.is_file():
        raise RagrerankError(f"{path} does not exist or is not a file")
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as error:
        raise RagrerankError(
            f"{path} is not UTF-8 text (byte {error.start} cannot be decoded): save it as UTF-8 JSON lines"
        ) from None
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise RagrerankError(f"{path}:{number} is not valid JSON ({error.msg}): write one object per line") from None
        if not isinstance(record, dict):
            raise RagrerankError(f"{path}:{number} is a JSON {type(record).__name__}, not an object")
        records.append((number, record))
    return records
