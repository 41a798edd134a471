"""The passages file: extract it from the docs, write it atomically, load it back checked."""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ragrerank.config import Settings
from ragrerank.corpus.chunking import ChunkSettings, chunk_page, place_page
from ragrerank.corpus.markdown import page_blocks, render_blocks
from ragrerank.corpus.site import (
    Page,
    Site,
    build_site,
    is_resource,
    is_true,
    markdown_files,
    not_rendered,
    read_page,
    split_front_matter,
)
from ragrerank.errors import RagrerankError
from ragrerank.io import read_jsonl, write_jsonl
from ragrerank.types import Passage

RUN_PASSAGES = "run `ragrerank passages` to extract them from the docs"

@dataclass(frozen=True)
class ExtractionReport:
    """What one extraction produced, and everything it chose not to use, with reasons.

    ``skipped`` maps a reason ("draft", "empty file", ...) to the paths skipped for it;
    ``warnings`` lists pages that were used despite a problem (bad front matter, bytes
    that are not UTF-8, an include that could not be found).
    """

    passages: tuple[Passage, ...]
    files_read: int
    skipped: Mapping[str, tuple[str, ...]]
    warnings: tuple[str, ...]
    seconds: float = field(default=0.0, compare=False)

    @property
    def words_p50(self) -> int:
        return _percentile([passage.words for passage in self.passages], 0.50)

    @property
    def words_p95(self) -> int:
        return _percentile([passage.words for passage in self.passages], 0.95)

    def summary(self, max_warnings: int = 10) -> str:
        """A few lines for the CLI and the notebook: files, skips, warnings, passages, sizes, time."""
        skipped = sum(len(paths) for paths in self.skipped.values())
        reasons = ", ".join(f"{reason}: {len(paths)}" for reason, paths in sorted(self.skipped.items()))
        lines = [
            f"files read: {self.files_read}",
            f"skipped: {skipped}" + (f" ({reasons})" if reasons else ""),
            f"warnings: {len(self.warnings)}",
            *(f"  {warning}" for warning in self.warnings[:max_warnings]),
            *([f"  ... and {len(self.warnings) - max_warnings} more"] if len(self.warnings) > max_warnings else []),
            f"passages: {len(self.passages)}",
            f"words per passage: p50 {self.words_p50}, p95 {self.words_p95}",
            f"elapsed: {self.seconds:.1f} s",
        ]
        return "\n".join(lines)


# ---------------------------------------------------------------------------- public API


def _skip_reason(page: Page, site: Site) -> str | None:
    if page.raw_blank:
        return "empty file"
    if is_true(page.meta.get("draft")):
        return "draft"
    if not_rendered(page.meta) and not is_resource(site, page.path):
        return "not rendered on its own (_build.render: never)"
    if not page.body.strip():
        return "front matter only"
    return None


def extract_passages(docs_dir: Path, settings: ChunkSettings = ChunkSettings()) -> ExtractionReport:
    """Read every ``*.md`` page under ``docs_dir`` in sorted order and chunk it into passages.

    Nothing is dropped silently: a page not used is listed in ``skipped`` with its reason,
    and a page used despite a problem is listed in ``warnings``. The output depends only on
    the files and ``settings``, so an unchanged corpus gives identical passages.

    Example:
        >>> report = extract_passages(settings.docs_dir)
        >>> report.passages[0].url
        'https://kubernetes.io/docs/'

    Raises:
        RagrerankError: ``docs_dir`` is missing, holds no markdown, or yields no passage.
    """
    started = time.perf_counter()
    docs_dir = Path(docs_dir)
    log: list[str] = []
    pages = [read_page(docs_dir, path, log) for path in markdown_files(docs_dir)]
    site = build_site(pages)
    skipped: dict[str, list[str]] = defaultdict(list)
    passages: list[Passage] = []
    for page in pages:
        reason = _skip_reason(page, site)
        blocks = [] if reason else page_blocks(page.body, page.path, site, settings, log)
        if reason is None and not any(block.kind != "heading" for block in blocks):
            reason = "no text after cleaning"
        if reason:
            skipped[reason].append(page.path)
            continue
        passages.extend(chunk_page(place_page(page, blocks, site), blocks, settings))
    log.extend(
        f"include {target!r} is not under the docs folder ({count} pages); left out"
        for target, count in sorted(site.missing_includes.items())
    )
    if not passages:
        raise RagrerankError(f"no passages extracted from {docs_dir}: every page was skipped ({dict(skipped)})")
    check_unique_ids(passages, docs_dir)
    return ExtractionReport(
        passages=tuple(passages),
        files_read=len(pages),
        skipped={reason: tuple(paths) for reason, paths in sorted(skipped.items())},
        warnings=tuple(log),
        seconds=time.perf_counter() - started,
    )


def check_unique_ids(passages: Sequence[Passage], source: object) -> None:
    """Passage ids key fusion, the score cache and the Milvus collection: a repeated one would overwrite another."""
    counts = Counter(passage.id for passage in passages)
    repeated = next((passage for passage in passages if counts[passage.id] > 1), None)
    if repeated is not None:
        raise RagrerankError(
            f"{source} repeats passage id {repeated.id!r} ({repeated.path} {repeated.heading}): "
            "rerun `ragrerank passages`, and report it if that does not help"
        )


def clean_markdown(markdown: str, settings: ChunkSettings = ChunkSettings()) -> str:
    """The text a passage is cut from: shortcodes, comments, links and HTML rendered away.

    Works without the rest of the site, so glossary terms without ``text=`` fall back to
    their id and includes are left out; ``extract_passages`` resolves both.

    Example:
        >>> clean_markdown('{{< note >}}See [Jobs](/docs/jobs/).{{< /note >}}')
        'Note: See Jobs.'
    """
    site = Site({}, frozenset(), {}, {}, None)
    body = split_front_matter(markdown)[1] if markdown.startswith("---") else markdown
    return render_blocks(page_blocks(body, "page.md", site, settings, []))


def passages_from_markdown(
    markdown: str, path: str = "page.md", settings: ChunkSettings = ChunkSettings()
) -> list[Passage]:
    """Chunk one page given as a string (front matter included), without the rest of the site.

    Handy for trying chunk settings on a snippet; unlike ``extract_passages`` it skips
    nothing (drafts included) and cannot resolve glossary terms or includes.

    Example:
        >>> [p.heading for p in passages_from_markdown("---\\ntitle: Jobs\\n---\\n## Run\\n" + "word " * 90)]
        [('Run',)]
    """
    log: list[str] = []
    meta, body, _ = split_front_matter(markdown)
    page = Page(path, meta, body, not markdown.strip())
    site = Site({path: page}, frozenset(), {}, {}, None)
    blocks = page_blocks(page.body, path, site, settings, log)
    return chunk_page(place_page(page, blocks, site), blocks, settings)


def write_passages(path: Path, passages: Iterable[Passage]) -> None:
    """Write one JSON object per passage, atomically: a crash never leaves half a file."""
    write_jsonl(Path(path), (passage.to_json() for passage in passages))


def load_passages(path: Path) -> list[Passage]:
    """Read passages written by ``write_passages``; a missing or broken file says how to rebuild it.

    Raises:
        RagrerankError: the file is missing, not JSONL, or a record lacks a passage field.
    """
    path = Path(path)
    if not path.is_file():
        raise RagrerankError(f"passages file {path} not found: {RUN_PASSAGES}")
    try:
        records = read_jsonl(path)
    except RagrerankError as error:
        raise RagrerankError(f"{error}: the passages file is corrupt; {RUN_PASSAGES}") from None
    passages = []
    for number, record in enumerate(records, start=1):
        try:
            passages.append(Passage.from_json(record))
        except (TypeError, KeyError) as error:
            raise RagrerankError(f"{path}: record {number} is not a passage ({error}); {RUN_PASSAGES}") from None
    if not passages:
        raise RagrerankError(f"passages file {path} is empty: {RUN_PASSAGES}")
    check_unique_ids(passages, path)
    return passages


def passages_file(settings: Settings) -> Path:
    """The passages file the indexes are built from; missing, it says which step makes it."""
    path = settings.passages_path
    if not path.is_file():
        raise RagrerankError(f"no passages at {path}: run `ragrerank passages` (or notebook 02) first")
    return path


def build_passages(
    settings: Settings, out: Path | None = None, chunking: ChunkSettings = ChunkSettings()
) -> ExtractionReport:
    """Extract passages from ``settings.docs_dir`` and write them (default ``settings.passages_path``).

    The CLI calls this and prints ``report.summary()``.
    """
    report = extract_passages(settings.docs_dir, chunking)
    write_passages(out if out is not None else settings.passages_path, report.passages)
    return report


def _percentile(values: Sequence[int], quantile: float) -> int:
    """Nearest-rank percentile: always one of the values, so it prints the same everywhere."""
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(quantile * len(ordered)) - 1)]
