"""Markdown and HTML → blocks of clean text: links keep their words, HTML goes, code stays bounded."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ragrerank.corpus.shortcodes import LEFTOVER_MARKUP, render_hugo
from ragrerank.corpus.site import Site

if TYPE_CHECKING:
    from ragrerank.corpus.chunking import ChunkSettings

_MAX_CODE_LINE_CHARS = 200  # a digest or a page of digits is one "word" but hundreds of tokens
# ---------------------------------------------------------------------------- markdown and HTML

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n]*)$")
_IMAGE = re.compile(r"!\[(?:[^\[\]]|\[[^\]]*\])*\](?:\([^)]*\)|\[[^\]]*\])")
_LINK = re.compile(  # [text](url "title") or [text][ref]; the url may hold one level of (parentheses)
    r"\[((?:[^\[\]]|\[[^\]]*\])*)\]"
    r"(?:\(\s*<?[^()\s>]*(?:\([^()]*\)[^()\s>]*)*>?(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)|\[[^\]]*\])"
)
_LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s+\S+.*$", re.M)
_HTML_HEADING = re.compile(r"^\s*<h([1-6])(?:\s[^>]*?id=\"([^\"]*)\")?[^>]*>(.*?)</h\1>\s*$", re.M | re.I)
# Only real HTML tags are stripped: <pod-name>, <none> and <label> are placeholders in prose.
_BLOCK_TAGS = (
    "br|p|div|tr|ul|ol|table|thead|tbody|tfoot|hr|dl|dt|dd|blockquote|pre|details|summary|h[1-6]"
    "|caption|figure|figcaption|section|center"
)
_CELL_TAGS = "td|th"
_INLINE_TAGS = (
    "a|b|i|u|s|em|strong|code|tt|span|kbd|sub|sup|small|abbr|mark|del|ins|img|col|colgroup|font"
    "|iframe|video|source|cite|q|var|wbr|nobr"
)
_RAW_TAGS = re.compile(r"<(script|style)\b.*?</\1\s*>", re.S | re.I)
_TAG = re.compile(rf"</?(?:({_BLOCK_TAGS})|({_CELL_TAGS})|(li)|{_INLINE_TAGS})\b(?:\s[^<>]*)?/?>", re.I)
_INLINE_CODE = re.compile(r"(`+)[^`\n].*?\1|(`+)")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_CUSTOM_ID = re.compile(r"\s*\{#([\w:.-]+)\}\s*$")
ITEM_START = re.compile(r"^\s*(?:[-*+][ \t]|\d+[.)][ \t]|\|)")
_SPACES = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")  # left where a tag or an image was
SENTENCE_END = re.compile(r"(?<=[.!?:])\s+(?=[A-Z0-9`\"'(\[*])")


@dataclass(frozen=True)
class Block:
    kind: str  # "heading", "text" or "code"
    text: str
    level: int = 0
    anchor: str = ""  # explicit {#id} on a heading


def _split_fences(text: str) -> list[tuple[str, str, str]]:
    """Cut the body into ("prose", "", text) and ("code", language, text) pieces."""
    pieces: list[tuple[str, str, str]] = []
    prose: list[str] = []
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None or (opening["fence"][0] == "`" and "`" in opening["info"]):
            prose.append(lines[index])
            index += 1
            continue
        pieces.append(("prose", "", "\n".join(prose)))
        prose = []
        code, index = _fenced_lines(lines, index + 1, opening)
        pieces.append(("code", opening["info"].split()[0] if opening["info"].split() else "", code))
    pieces.append(("prose", "", "\n".join(prose)))
    return [piece for piece in pieces if piece[2].strip()]


def _fenced_lines(lines: list[str], start: int, opening: re.Match[str]) -> tuple[str, int]:
    fence, indent = opening["fence"], len(opening["indent"])
    closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
    body: list[str] = []
    index = start
    while index < len(lines) and not closing.match(lines[index]):
        line = lines[index]
        body.append(line[min(indent, len(line) - len(line.lstrip())):])
        index += 1
    return "\n".join(body).strip("\n"), index + 1


def _code_block(language: str, code: str, settings: ChunkSettings) -> Block | None:
    """Keep a code block, cut to ``max_code_words`` with a marker saying how much was cut."""
    lines = [line.rstrip() for line in code.split("\n")]
    if not any(lines):
        return None
    kept: list[str] = []
    words = 0
    for number, line in enumerate(lines):
        count = len(line.split())
        if words + count > settings.max_code_words:
            if not kept:
                kept.append(" ".join(line.split()[: settings.max_code_words]))
            kept.append(f"... ({len(lines) - number} more lines not shown)")
            break
        kept.append(line if len(line) <= _MAX_CODE_LINE_CHARS else f"{line[:_MAX_CODE_LINE_CHARS]} ... (line cut)")
        words += count
    fence = "`" * max(3, _longest_run(code, "`") + 1)
    return Block("code", f"{fence}{language}\n" + "\n".join(kept) + f"\n{fence}")


def _longest_run(text: str, char: str) -> int:
    runs = re.findall(rf"{re.escape(char)}+", text)
    return max((len(run) for run in runs), default=0)


def _outside_code(line: str, clean: Callable[[str], str]) -> str:
    """Apply ``clean`` to a line except inside `inline code`, which stays literal."""
    parts: list[str] = []
    last = 0
    for match in _INLINE_CODE.finditer(line):
        if match[2]:  # an unmatched backtick run: not a code span
            continue
        parts.append(clean(line[last : match.start()]))
        parts.append(match[0])
        last = match.end()
    parts.append(clean(line[last:]))
    return "".join(parts)


def _strip_tags(text: str) -> str:
    return html.unescape(_TAG.sub(_tag_text, text))


def _tag_text(match: re.Match[str]) -> str:
    """Block tags end a line, cells leave a space, a list item starts a "- " line."""
    if match[3]:
        return "\n" if match[0].startswith("</") else "\n- "
    return "\n" if match[1] else " " if match[2] else ""


def clean_prose(text: str) -> str:
    """Markdown prose → readable text: links keep their words, images and HTML go."""
    text = _HTML_HEADING.sub(
        lambda m: f"{'#' * int(m[1])} {m[3]}" + (f" {{#{m[2]}}}" if m[2] else ""), _RAW_TAGS.sub("", text)
    )
    text = _LINK.sub(lambda match: match[1], _IMAGE.sub("", text))
    text = _LINK_DEFINITION.sub("", text)
    lines: list[str] = []
    for line in text.split("\n"):
        if _TABLE_RULE.match(line) and "|" in line:
            continue
        if "<" in line or "&" in line:
            cleaned = _outside_code(line, _strip_tags)
            if not cleaned.strip() and line.strip():
                continue  # a line of tags only: not a paragraph break
            line = re.sub(r"\n\s*", "\n", cleaned).strip("\n")
        line = _table_row(line) if line.lstrip().startswith("|") else _SPACES.sub(" ", line)
        lines.append(line)
    return "\n".join(lines)


def _table_row(line: str) -> str:
    cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
    return "| " + " | ".join(cells) + " |"


def _prose_blocks(text: str) -> list[Block]:
    """Headings and paragraphs; an indented paragraph outside a list is a code block."""
    blocks: list[Block] = []
    paragraph: list[str] = []
    in_list = False

    def flush() -> None:
        nonlocal in_list
        if paragraph:
            block, in_list = _paragraph(paragraph, in_list)
            blocks.append(block)
            paragraph.clear()

    for line in text.split("\n"):
        heading = _HEADING.match(line)
        if heading:
            flush()
            title, custom = _heading_text(heading[2])
            blocks.append(Block("heading", title, len(heading[1]), custom))
            in_list = False
        elif line.strip():
            paragraph.append(line.rstrip())
        else:
            flush()
    flush()
    return [block for block in blocks if block.text.strip()]


def _paragraph(lines: list[str], in_list: bool) -> tuple[Block, bool]:
    indented = all(re.match(r"^(?: {4}|\t)", line) for line in lines)
    if indented and not in_list:
        code = "\n".join(line[4:] if line.startswith("    ") else line[1:] for line in lines)
        return Block("code", f"```\n{code}\n```"), False
    items: list[str] = []
    table = all("|" in line for line in lines)  # rows need not start with a pipe
    for line in lines:
        if not items or table or ITEM_START.match(line):
            items.append(line)
        else:
            items[-1] += " " + line.strip()
    starts_list = bool(ITEM_START.match(lines[0])) and not lines[0].lstrip().startswith("|")
    return Block("text", "\n".join(items)), starts_list or (in_list and indented)


def _heading_text(raw: str) -> tuple[str, str]:
    custom = _CUSTOM_ID.search(raw)
    text = raw[: custom.start()] if custom else raw
    text = " ".join(text.replace("`", "").replace("**", "").split())
    return text, custom[1] if custom else ""


def _scrub(text: str) -> str:
    return LEFTOVER_MARKUP.sub("", text)


def page_blocks(body: str, page_path: str, site: Site, settings: ChunkSettings, log: list[str]) -> list[Block]:
    rendered = render_hugo(body, page_path, site)
    blocks: list[Block] = []
    for kind, language, text in _split_fences(rendered):
        if kind == "code":
            block = _code_block(language, text, settings)
            blocks.extend([block] if block else [])
        else:
            blocks.extend(_prose_blocks(clean_prose(text)))
    if any(LEFTOVER_MARKUP.search(block.text) for block in blocks):
        log.append(f"{page_path}: unbalanced Hugo or comment markup ({{{{<, {{{{%, <!--) removed")
        blocks = [Block(block.kind, _scrub(block.text), block.level, block.anchor) for block in blocks]
    return blocks


def render_blocks(blocks: Iterable[Block]) -> str:
    return "\n\n".join(
        f"{'#' * block.level} {block.text}" + (f" {{#{block.anchor}}}" if block.anchor else "")
        if block.kind == "heading"
        else block.text
        for block in blocks
    )


_MARKDOWN_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")  # [text](url) → text
_EMPHASIS_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_+|_+(?![A-Za-z0-9])")  # _word_, not snake_case


def strip_marks(text: str) -> str:
    """Collapse whitespace and drop markdown marks, so a quote matches however it was wrapped.

    Links become their text, backticks, ``*`` and ``_`` emphasis go (``snake_case`` stays); case
    is kept. Evidence strings are compared this way, and generated questions are cleaned with it.

    Example:
        >>> strip_marks("a `kubectl`\\n   **call** _here_ on my_var, see [Pods](/docs/pods/)")
        'a kubectl call here on my_var, see Pods'
    """
    text = _MARKDOWN_LINK.sub(r"\1", text).replace("`", "").replace("*", "")
    return re.sub(r"\s+", " ", _EMPHASIS_UNDERSCORE.sub("", text)).strip()
