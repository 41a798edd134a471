"""Extractive answers: the sentences, list items and code blocks of the best passages that answer the question.

Every span is a verbatim slice of a passage's text, so an extractive answer cannot say what the
docs do not. Spans are scored against the question (by the project's span scorer by default, a
cross-encoder trained on the evidence spans of data/train, each span read after its passage's heading
path so a short span keeps its context), the best few are kept, and they are printed in the order the
docs give them, each run after its citation marker.

Measured with ``ragrerank eval --answers``: the default answer (span scorer, up to 5 spans) quotes one of
the question's evidence strings for 31.6% of the answered in-scope questions of data/eval and 40.2% of dev
(the passage cross-encoder with 3 spans: 25.3% and 31.7%), where the cited passages hold one for 60.1%
and 62.2% (``evidence_in_context``). Before the span scorer, an offline grid over the same passages
found no untrained signal clearly better than the passage cross-encoder (the bi-encoder's cosine, both
z-scored, whole paragraphs, the previous sentence as context); see experiments/span_scorer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ragrerank.types import Passage

SpanKind = Literal["sentence", "item", "code"]
SpanScorer = Callable[[str, Sequence[str]], np.ndarray]  # (question, texts) → one score per text, higher is better

_FENCE = re.compile(r"^\s*```")
_ITEM = re.compile(r"^\s*(?:[*-]|\d+\.)\s+")
_TABLE_ROW = re.compile(r"^\s*\|")
_BOILERPLATE = re.compile(r"^(FEATURE STATE:|What's next$|Before you begin$)")
# A sentence ends at . ! or ? followed by a space and an upper-case letter, a backtick, a quote or a bracket.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`\"'(\[*])")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "approx.", "incl.", "No.")


@dataclass(frozen=True)
class Span:
    """A verbatim slice ``text[start:end]`` of one context passage, which is cited as [source + 1]."""

    source: int  # index of the passage among the context passages
    start: int
    end: int
    kind: SpanKind
    block: int  # spans of one paragraph or list share a block; only those are joined

    def text(self, passages: Sequence[Passage]) -> str:
        return passages[self.source].text[self.start : self.end]


@dataclass(frozen=True)
class ExtractiveSettings:
    """How long an extractive answer may be: a few sentences and one code block, so it reads as an answer."""

    max_spans: int = 5  # sentences, list items and code blocks in all
    max_code: int = 1  # code blocks among them
    max_chars: int = 900  # of answer text, citation markers excluded
    margin: float = 4.0  # a span joins the best one only within this many logits of it


@dataclass(frozen=True)
class ExtractiveAnswer:
    text: str
    spans: tuple[Span, ...]  # the kept spans, in the order printed


def passage_spans(passage: Passage, source: int = 0) -> list[Span]:
    """Cut a passage into answerable spans: sentences, list items, and code blocks with their lead-in.

    The first line (title and heading path), headings inside the passage, tables and
    boilerplate lines are not spans. A code block is kept whole and joined to the sentence
    before it when that sentence leads into it ("Next, tell Kubernetes to drain the node:").
    """
    text = passage.text
    spans: list[Span] = []
    block, previous_kind = 0, ""
    for kind, start, end in _blocks(text):
        if not (kind == "item" and previous_kind == "item"):  # the items of one list form one block
            block += 1
        previous_kind = kind
        if kind == "code":
            lead = spans[-1] if spans and spans[-1].kind != "code" else None
            if lead is not None and not text[lead.start : lead.end].rstrip().endswith((".", "!", "?")):
                spans[-1] = Span(source, lead.start, end, "code", lead.block)
            else:
                spans.append(Span(source, start, end, "code", block))
        elif kind == "item":
            spans.append(Span(source, start, end, "item", block))
        else:
            spans.extend(Span(source, s, e, "sentence", block) for s, e in _sentences(text, start, end))
    return spans


def extract_answer(
    question: str, passages: Sequence[Passage], score: SpanScorer, settings: ExtractiveSettings = ExtractiveSettings()
) -> ExtractiveAnswer:
    """The best spans of ``passages`` for ``question``, printed in document order with [n] markers.

    The best-scoring span is always kept; others join it best first while they score within
    ``margin`` of it and the answer stays within its span, code and character limits; a span whose
    text is already kept (two sections repeating a sentence) is skipped. Adjacent kept spans of one
    paragraph are printed as the one verbatim slice they form.
    """
    spans, scores = scored_spans(question, passages, score)
    if not spans:
        return ExtractiveAnswer("", ())
    kept: list[Span] = []
    seen: set[str] = set()
    chars = 0
    for index in np.argsort(-scores, kind="stable"):
        span = spans[index]
        length = span.end - span.start
        if span.text(passages) in seen:
            continue
        if kept and (
            scores[index] < scores.max() - settings.margin
            or len(kept) == settings.max_spans
            or chars + length > settings.max_chars
            or (span.kind == "code" and sum(s.kind == "code" for s in kept) == settings.max_code)
        ):
            continue
        kept.append(span)
        seen.add(span.text(passages))
        chars += length
    ordered = tuple(sorted(kept, key=lambda s: (s.source, s.start)))
    return ExtractiveAnswer(_render(ordered, passages), ordered)


def scored_spans(question: str, passages: Sequence[Passage], score: SpanScorer) -> tuple[list[Span], np.ndarray]:
    """Every span of ``passages`` and its score for ``question``, the span read after its passage's heading path."""
    spans = [span for source, passage in enumerate(passages) for span in passage_spans(passage, source)]
    if not spans:
        return [], np.zeros(0)
    return spans, np.asarray(score(question, [span_input(span, passages) for span in spans]), dtype=float)


def span_input(span: Span, passages: Sequence[Passage]) -> str:
    """What a span scorer reads for ``span``: its passage's first line (title and heading path), then the span.

    The span scorer is trained on this same text (``ragrerank.finetune.spans``).
    """
    heading = passages[span.source].text.split("\n", 1)[0]
    return f"{heading}\n\n{span.text(passages)}"


def _render(spans: Sequence[Span], passages: Sequence[Passage]) -> str:
    """One paragraph per run of adjacent spans of a block, each after its passage's citation marker."""
    runs: list[tuple[int, int, int]] = []  # (source, start, end)
    previous: Span | None = None
    for span in spans:
        text = passages[span.source].text
        joins = (
            previous is not None
            and previous.source == span.source
            and previous.block == span.block
            and not text[previous.end : span.start].strip()
        )
        if joins:
            source, start, _ = runs[-1]
            runs[-1] = (source, start, span.end)
        else:
            runs.append((span.source, span.start, span.end))
        previous = span
    return "\n\n".join(f"[{source + 1}] {passages[source].text[start:end]}" for source, start, end in runs)


def _blocks(text: str) -> list[tuple[str, int, int]]:
    """(kind, start, end) of the code blocks, list items and paragraphs after the first line."""
    blocks: list[tuple[str, int, int]] = []
    lines, offset = [], 0
    for line in text.split("\n"):  # each line with its offset
        lines.append((offset, line))
        offset += len(line) + 1
    i = 1  # line 0 is the title and heading path
    paragraph: list[tuple[int, str]] = []

    def close_paragraph() -> None:
        if paragraph:
            start, end = paragraph[0][0], paragraph[-1][0] + len(paragraph[-1][1])
            body = text[start:end].strip()
            is_heading = len(paragraph) == 1 and len(body.split()) <= 12 and not re.search(r"[.!?:,]$", body)
            if not is_heading and not _BOILERPLATE.match(body):
                blocks.append(("paragraph", start, end))
            paragraph.clear()

    while i < len(lines):
        start, line = lines[i]
        if _FENCE.match(line):
            close_paragraph()
            close = next((j for j in range(i + 1, len(lines)) if _FENCE.match(lines[j][1])), len(lines) - 1)
            end = lines[close][0] + len(lines[close][1])
            blocks.append(("code", start + len(line) - len(line.lstrip()), end))
            i = close + 1
            continue
        if not line.strip() or _TABLE_ROW.match(line):
            close_paragraph()
        elif _ITEM.match(line):
            close_paragraph()
            blocks.append(("item", start + len(line) - len(line.lstrip()), start + len(line.rstrip())))
        else:
            paragraph.append((start, line))
        i += 1
    close_paragraph()
    return blocks


def _sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence offsets inside ``text[start:end]``; abbreviations such as "e.g." do not end one."""
    pieces, begin = [], start
    for match in _SENTENCE_END.finditer(text, start, end):
        before = text[begin : match.start()]
        if before.endswith(_ABBREVIATIONS):
            continue
        pieces.append((begin, match.start()))
        begin = match.end()
    pieces.append((begin, end))
    return [(s, e) for s, e in pieces if text[s:e].strip()]
