"""Blocks → passages: the heading tree, Hugo anchors, and size-bounded cuts at the best places."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from ragrerank.corpus.markdown import ITEM_START, SENTENCE_END, Block, clean_prose
from ragrerank.corpus.site import Page, Site, is_glossary_term, is_resource
from ragrerank.errors import RagrerankError
from ragrerank.types import Passage

SITE_URL = "https://kubernetes.io/docs/"

# ---------------------------------------------------------------------------- public types


@dataclass(frozen=True)
class ChunkSettings:
    """How big a passage may be, counted in whitespace-separated words of its full text.

    The bounds include the "Title > Heading" prefix, because that is what the encoders
    read. ``overlap_words`` is carried over (whole sentences only) when a section is too
    long for one passage, so an answer that straddles the cut is still found.
    ``max_code_words`` bounds a code block: commands matter for how-to questions, but a
    300-line manifest would crowd the prose out of every passage it touches.

    Example:
        >>> ChunkSettings(min_words=50, max_words=120, overlap_words=10, max_code_words=40)
        ChunkSettings(min_words=50, max_words=120, overlap_words=10, max_code_words=40)
    """

    min_words: int = 80
    max_words: int = 250
    overlap_words: int = 30
    max_code_words: int = 120

    def __post_init__(self) -> None:
        if not 0 < self.min_words < self.max_words:
            raise RagrerankError(
                f"ChunkSettings needs 0 < min_words < max_words, got min_words={self.min_words}, "
                f"max_words={self.max_words}"
            )
        if not 0 <= self.overlap_words < self.min_words:
            raise RagrerankError(
                f"ChunkSettings needs 0 <= overlap_words < min_words, got overlap_words={self.overlap_words}"
            )
        if not 0 < self.max_code_words <= self.max_words // 2:
            raise RagrerankError(
                f"ChunkSettings needs 0 < max_code_words <= max_words // 2 ({self.max_words // 2}) so a "
                f"code block fits in a passage with its prose, got max_code_words={self.max_code_words}"
            )


# ---------------------------------------------------------------------------- sections and anchors


@dataclass(frozen=True)
class _Section:
    heading: tuple[str, ...]
    anchor: str  # of the innermost heading; "" before the first heading
    blocks: tuple[Block, ...]


def hugo_anchor(text: str) -> str:
    """Hugo's "github" heading id: lowercase, spaces → "-", other punctuation dropped.

    Example:
        >>> hugo_anchor("What's next: `kubectl` & friends")
        'whats-next-kubectl--friends'
    """
    kept = (char for char in text.lower() if char.isalnum() or char in "-_" or char.isspace())
    return "".join("-" if char.isspace() else char for char in kept)


def _sections(blocks: Sequence[Block], root: tuple[str, ...]) -> list[_Section]:
    sections: list[_Section] = []
    stack: list[tuple[int, str]] = []
    anchor, content = "", []
    seen: Counter[str] = Counter()
    for block in blocks:
        if block.kind != "heading":
            content.append(block)
            continue
        sections.append(_Section(root + tuple(text for _, text in stack), anchor, tuple(content)))
        while stack and stack[-1][0] >= block.level:
            stack.pop()
        stack.append((block.level, block.text))
        anchor = block.anchor or _unique(hugo_anchor(block.text), seen)
        content = []
    sections.append(_Section(root + tuple(text for _, text in stack), anchor, tuple(content)))
    return [section for section in sections if section.blocks]


def _unique(anchor: str, seen: Counter[str]) -> str:
    """Hugo suffixes repeated heading ids on a page with -1, -2, ..."""
    count = seen[anchor]
    seen[anchor] += 1
    return f"{anchor}-{count}" if count else anchor


# ---------------------------------------------------------------------------- chunking


@dataclass(frozen=True)
class _Unit:
    """The smallest piece a passage boundary may fall between: a block, line or sentence."""

    text: str
    words: int
    section: int
    joiner: str  # how it attaches to the unit before it
    cut_cost: float  # penalty for starting a passage here
    prose: bool  # may be repeated as overlap

    @property
    def starts_section(self) -> bool:
        return self.cut_cost == _CUT_COST["section"]


_CUT_COST = {"section": 0.0, "block": 1.0, "line": 2.0, "sentence": 3.0, "word": 6.0}
_CROSS_SECTION = 0.5  # a passage that spans a heading: fine, but a cut there is nicer
_SHORT = 100.0  # a passage under min_words: only when the page leaves no other way


def _units(sections: Sequence[_Section], settings: ChunkSettings) -> list[_Unit]:
    cap = max(8, settings.max_words // 5)
    units: list[_Unit] = []
    for number, section in enumerate(sections):
        for position, block in enumerate(section.blocks):
            first = "section" if position == 0 else "block"
            if block.kind == "code":
                units.append(_Unit(block.text, len(block.text.split()), number, "\n\n", _CUT_COST[first], False))
                continue
            units.extend(_text_units(block.text, number, first, cap))
    return units


def _text_units(text: str, section: int, first: str, cap: int) -> list[_Unit]:
    """Lines, then sentences, then windows of ``cap`` words, each a place a cut may fall."""
    units: list[_Unit] = []
    for line_number, line in enumerate(text.split("\n")):
        kind, joiner = (first, "\n\n") if line_number == 0 else ("line", "\n")
        indent = line[: min(len(line) - len(line.lstrip()), 8)] if ITEM_START.match(line) else ""
        for sentence in SENTENCE_END.split(line):
            words = sentence.split()
            for start in range(0, len(words), cap):
                piece = words[start : start + cap]
                text_piece = (indent if kind in (first, "line") else "") + " ".join(piece)
                units.append(_Unit(text_piece, len(piece), section, joiner, _CUT_COST[kind], True))
                kind, joiner = "word", " "
            if words:
                kind, joiner = "sentence", " "
    return units


def _overlap(units: Sequence[_Unit], start: int, budget: int) -> list[int]:
    """Whole prose sentences before ``start`` in the same section, at most ``budget`` words."""
    if start == 0 or units[start].starts_section:
        return []
    chosen: list[int] = []
    words = 0
    index = start - 1
    while index >= 0 and units[index].section == units[start].section and units[index].prose:
        if words + units[index].words > budget:
            break
        words += units[index].words
        chosen.insert(0, index)
        if units[index].joiner != " ":
            break  # keep the overlap inside one line or paragraph
        index -= 1
    return chosen


def _segment(
    units: Sequence[_Unit], prefix_words: Sequence[int], inline_words: Sequence[int], settings: ChunkSettings
) -> list[tuple[int, int]]:
    """Best cut of a page's units into passages (dynamic programming over cut points).

    Hard limit: at most ``max_words`` per passage (a single unit may exceed it only when
    nothing else fits). Soft costs: a passage under ``min_words``, a cut that is not at a
    heading (worse inside a paragraph, worse still inside a sentence), a heading inside
    a passage, and, to break ties, distance from the middle of the size range.
    """
    count = len(units)
    words = [0] * (count + 1)
    inline = [0] * (count + 1)
    for index, unit in enumerate(units):
        words[index + 1] = words[index] + unit.words
        inline[index + 1] = inline[index] + inline_words[index]
    overlaps = [sum(units[k].words for k in _overlap(units, start, settings.overlap_words)) for start in range(count)]
    headings = [0] * (count + 1)  # section starts among units[:k]
    for index, unit in enumerate(units):
        headings[index + 1] = headings[index] + unit.starts_section
    target = (settings.min_words + settings.max_words) / 2
    best = [0.0] + [math.inf] * count
    back = [0] * (count + 1)
    for end in range(1, count + 1):
        for start in range(end - 1, -1, -1):
            body = words[end] - words[start] + inline[end] - inline[start] - inline_words[start]
            total = prefix_words[units[start].section] + overlaps[start] + body
            if total > settings.max_words and end - start > 1:
                if body > settings.max_words:
                    break
                continue
            cost = best[start] + units[start].cut_cost * (start > 0)
            cost += _CROSS_SECTION * (headings[end] - headings[start + 1])
            cost += _SHORT + settings.min_words - total if total < settings.min_words else 0.0
            cost += 0.1 * ((total - target) / settings.max_words) ** 2
            if cost < best[end]:
                best[end], back[end] = cost, start
    cuts: list[tuple[int, int]] = []
    end = count
    while end > 0:
        cuts.insert(0, (back[end], end))
        end = back[end]
    return cuts


# ---------------------------------------------------------------------------- passages


@dataclass(frozen=True)
class _Place:
    """Where a page's passages live on the site and what to call them."""

    path: str
    title: str
    root: tuple[str, ...]  # heading path above the page's own headings (bundle resources)
    url: str
    anchor: str | None  # fixed anchor for every passage; None: use each heading's anchor


def _page_url(path: str) -> str:
    """Hugo's URL for a content file: _index.md and index.md stand for their folder."""
    pure = PurePosixPath(path)
    parts = pure.parent.parts if pure.name in ("_index.md", "index.md") else (*pure.parent.parts, pure.stem)
    slug = "/".join(parts).lower().replace(" ", "-")
    return SITE_URL + (f"{slug}/" if slug else "")


def _page_title(page: Page, blocks: Sequence[Block]) -> str:
    title = page.meta.get("title")
    if title:
        return " ".join(clean_prose(str(title)).split())
    first = next((block.text for block in blocks if block.kind == "heading" and block.level == 1), "")
    return first or PurePosixPath(page.path).stem.replace("-", " ").replace("_", " ").strip().capitalize()


def place_page(page: Page, blocks: Sequence[Block], site: Site) -> _Place:
    title = _page_title(page, blocks)
    if not is_resource(site, page.path):
        return _Place(page.path, title, (), _page_url(page.path), None)
    bundle = str(PurePosixPath(page.path).parent)
    index = site.pages.get(f"{bundle}/index.md")
    bundle_title = str(index.meta.get("title") or title) if index else title
    url = _page_url(f"{bundle}/index.md")
    if is_glossary_term(page.path) and page.meta.get("id"):
        return _Place(page.path, bundle_title, (title,), f"{url}?all=true", f"term-{page.meta['id']}")
    return _Place(page.path, bundle_title, (title,), url, "")


def _prefix(place: _Place, heading: tuple[str, ...]) -> str:
    parts = list(heading)
    if parts and parts[0].casefold() == place.title.casefold():
        parts = parts[1:]  # a body "# Jobs" under the title "Jobs"
    return " > ".join([place.title, *parts])


def _inline_heading(previous: tuple[str, ...], current: tuple[str, ...]) -> str:
    """The headings a passage crosses into, written as a line: those not shared with before."""
    shared = 0
    while shared < min(len(previous), len(current)) and previous[shared] == current[shared]:
        shared += 1
    return " > ".join(current[shared:] or current[-1:])


def _passage_id(path: str, heading: tuple[str, ...], ordinal: int) -> str:
    key = "\x1f".join([path, *heading, str(ordinal)])
    return hashlib.sha1(key.encode("utf-8")).hexdigest()[:12]


def chunk_page(place: _Place, blocks: Sequence[Block], settings: ChunkSettings) -> list[Passage]:
    sections = _sections(blocks, place.root)
    units = _units(sections, settings)
    if not units:
        return []
    prefixes = [_prefix(place, section.heading) for section in sections]
    inline = [
        _inline_heading(sections[units[k - 1].section].heading, sections[unit.section].heading)
        if k and unit.starts_section and sections[unit.section].heading
        else ""
        for k, unit in enumerate(units)
    ]
    inline_words = [len(text.split()) for text in inline]
    prefix_words = [len(prefix.split()) for prefix in prefixes]
    passages: list[Passage] = []
    ordinals: Counter[tuple[str, ...]] = Counter()
    for start, end in _segment(units, prefix_words, inline_words, settings):
        section = sections[units[start].section]
        body = _join(units, _overlap(units, start, settings.overlap_words) + list(range(start, end)), inline, start)
        text = f"{prefixes[units[start].section]}\n\n{body}"
        anchor = section.anchor if place.anchor is None else place.anchor
        ordinal = ordinals[section.heading]
        ordinals[section.heading] += 1
        passages.append(
            Passage(
                id=_passage_id(place.path, section.heading, ordinal),
                path=place.path,
                title=place.title,
                heading=section.heading,
                url=place.url + (f"#{anchor}" if anchor else ""),
                text=text,
                words=len(text.split()),
            )
        )
    return passages


def _join(units: Sequence[_Unit], indexes: Sequence[int], inline: Sequence[str], start: int) -> str:
    parts: list[str] = []
    for position, index in enumerate(indexes):
        if position:
            parts.append(units[index].joiner)
            if index != start and inline[index]:
                parts.append(f"{inline[index]}\n\n")
        parts.append(units[index].text)
    return "".join(parts)
