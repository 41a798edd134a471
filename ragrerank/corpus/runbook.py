"""What the original runbook's chunker threw away, measured on the same files."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from ragrerank.corpus.site import markdown_files, read_page

@dataclass(frozen=True)
class RunbookLoss:
    """How much text the original runbook's chunker threw away, measured on the same files.

    That chunker glued raw markdown paragraphs until a block reached 50 words, kept the
    block only if it had at most 200 words, and dropped it silently otherwise.
    ``trailing_words`` are the words left in a last block under 50 words per page,
    which it never emitted either; they are counted apart from ``words_dropped``.
    """

    files: int
    words_total: int
    blocks_kept: int
    blocks_dropped: int
    words_dropped: int
    trailing_words: int

    @property
    def share_dropped(self) -> float:
        return self.words_dropped / self.words_total if self.words_total else 0.0


def measure_runbook_chunker(docs_dir: Path) -> RunbookLoss:
    """Re-run the original runbook's chunker on the page bodies and count what it dropped.

    It split raw markdown on blank lines, glued paragraphs until a block reached 50 words,
    kept blocks of 50–200 words and silently dropped longer ones. Front matter is not
    counted, so the total is the page text a reader would see.
    """
    log: list[str] = []
    files = markdown_files(Path(docs_dir))
    totals = Counter[str]()
    for path in files:
        for key, value in _runbook_page(read_page(Path(docs_dir), path, log).body).items():
            totals[key] += value
    return RunbookLoss(
        files=len(files),
        words_total=totals["total"],
        blocks_kept=totals["kept"],
        blocks_dropped=totals["dropped"],
        words_dropped=totals["dropped_words"],
        trailing_words=totals["trailing"],
    )


def _runbook_page(body: str) -> Counter[str]:
    counts = Counter[str]()
    block: list[str] = []
    for paragraph in (part.strip() for part in body.split("\n\n")):
        if not paragraph:
            continue
        block.append(paragraph)
        words = len(" ".join(block).split())
        if words >= 50:
            counts["kept" if words <= 200 else "dropped"] += 1
            counts["dropped_words"] += words if words > 200 else 0
            counts["total"] += words
            block = []
    trailing = len(" ".join(block).split())
    counts["trailing"] += trailing
    counts["total"] += trailing
    return counts
