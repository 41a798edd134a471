"""Docs → passages: read the Hugo pages, clean their markup, chunk them by headings and size.

The Kubernetes docs are Hugo pages, so much of what a reader sees (notes, feature states,
glossary terms, included snippets) lives in shortcodes, and the original runbook glued raw
paragraphs together and silently dropped every block over 200 words. Here every word of a
cleaned page lands in some passage, and every passage carries its page, heading path and
URL so an answer can cite it.

Flow: ``_read_page`` (front matter, encoding) → ``_render_hugo`` (comments, shortcodes,
includes) → ``_split_fences`` / ``_clean_prose`` (links, HTML, tables, bounded code) →
``_sections`` (heading tree, Hugo anchors) → ``_units`` / ``_segment`` (size-bounded
chunks) → ``Passage``.
"""

from __future__ import annotations

import hashlib
import html
import math
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import frontmatter
import yaml

from ragrerank.config import Settings
from ragrerank.errors import RagrerankError
from ragrerank.io import read_jsonl, write_jsonl
from ragrerank.types import Passage

SITE_URL = "https://kubernetes.io/docs/"
RUN_PASSAGES = "run `ragrerank passages` to extract them from the docs"

__all__ = [
    "ChunkSettings",
    "ExtractionReport",
    "RunbookLoss",
    "build_passages",
    "clean_markdown",
    "extract_passages",
    "hugo_anchor",
    "load_passages",
    "measure_runbook_chunker",
    "passages_from_markdown",
    "write_passages",
]


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


# ---------------------------------------------------------------------------- reading pages


@dataclass(frozen=True)
class _Page:
    path: str  # relative to the docs folder, POSIX separators
    meta: Mapping[str, Any]
    body: str
    raw_blank: bool  # the file holds nothing but whitespace


def _markdown_files(docs_dir: Path) -> list[str]:
    if not docs_dir.is_dir():
        raise RagrerankError(f"docs folder {docs_dir} does not exist or is not a folder: pass --docs DIR")
    files = sorted(path.relative_to(docs_dir).as_posix() for path in docs_dir.rglob("*.md") if path.is_file())
    if not files:
        raise RagrerankError(f"docs folder {docs_dir} holds no .md files: point --docs at website/content/en/docs")
    return files


def _read_text(file: Path, path: str, log: list[str]) -> str:
    data = file.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        text = data.decode("utf-8", errors="replace")
        log.append(f"{path}: not valid UTF-8 (first bad byte at offset {error.start}); replaced with U+FFFD")
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def _read_page(docs_dir: Path, path: str, log: list[str]) -> _Page:
    """Split front matter from body; a front matter that does not parse leaves a plain-text page."""
    text = _read_text(docs_dir / path, path, log)
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        log.append(f"{path}: front matter is not valid YAML{where}; page used as plain text without metadata")
        return _Page(path, {}, _body_after_front_matter(text), not text.strip())
    meta = post.metadata if isinstance(post.metadata, dict) else {}
    return _Page(path, meta, post.content, not text.strip())


def _body_after_front_matter(text: str) -> str:
    try:
        _, body = frontmatter.YAMLHandler().split(text)
    except ValueError:
        return text
    return body


def _is_true(value: Any) -> bool:
    return value is True or str(value).strip().lower() == "true"


def _not_rendered(meta: Mapping[str, Any]) -> bool:
    build = meta.get("_build")
    render = build.get("render") if isinstance(build, dict) else None
    return render is not None and str(render).strip().lower() in ("false", "never")


# ---------------------------------------------------------------------------- site context


@dataclass(frozen=True)
class _Term:
    title: str
    short: str  # raw markdown before <!--more-->
    full: str


@dataclass(frozen=True)
class _Gate:
    stage: str
    since: str
    default: bool
    body: str


@dataclass(frozen=True)
class _Site:
    """What a shortcode needs from other pages: glossary terms, feature gates, includes.

    ``version`` is the Kubernetes minor version the docs describe; the docs folder has no
    Hugo config, so it is taken as the newest ``fromVersion`` among the feature gates.
    """

    pages: Mapping[str, _Page]
    bundles: frozenset[str]  # folders holding index.md: their other pages are resources
    glossary: Mapping[str, _Term]
    gates: Mapping[str, _Gate]
    version: tuple[int, int] | None
    # filled while pages are rendered, then reported once per target as a warning
    missing_includes: Counter[str] = field(default_factory=Counter, compare=False)


def _build_site(pages: Sequence[_Page]) -> _Site:
    by_path = {page.path: page for page in pages}
    bundles = frozenset(str(PurePosixPath(p).parent) for p in by_path if PurePosixPath(p).name == "index.md")
    glossary = {
        str(page.meta.get("id") or PurePosixPath(page.path).stem): _glossary_term(page)
        for page in pages
        if _is_glossary_term(page.path)
    }
    gates = {str(page.meta["title"]): gate for page in pages if (gate := _feature_gate(page)) is not None}
    versions = [_minor(stage.get("fromVersion")) for page in pages for stage in _stages(page.meta)]
    versions = [version for version in versions if version is not None]
    return _Site(by_path, bundles, glossary, gates, max(versions) if versions else None)


def _is_glossary_term(path: str) -> bool:
    pure = PurePosixPath(path)
    return str(pure.parent) == "reference/glossary" and pure.name != "index.md"


def _glossary_term(page: _Page) -> _Term:
    short = page.body.split("<!--more-->", 1)[0]
    title = str(page.meta.get("title") or PurePosixPath(page.path).stem)
    return _Term(title, short.strip(), page.body.strip())


def _stages(meta: Mapping[str, Any]) -> list[dict[str, Any]]:
    stages = meta.get("stages")
    return [stage for stage in stages if isinstance(stage, dict)] if isinstance(stages, list) else []


def _feature_gate(page: _Page) -> _Gate | None:
    stages = _stages(page.meta)
    if not stages or "title" not in page.meta:
        return None
    last = stages[-1]
    since, default = str(last.get("fromVersion", "")), _is_true(last.get("defaultValue"))
    return _Gate(str(last.get("stage", "")), since, default, page.body)


def _minor(value: Any) -> tuple[int, int] | None:
    match = re.match(r"v?(\d+)\.(\d+)", str(value or ""))
    return (int(match[1]), int(match[2])) if match else None


def _resolve_include(site: _Site, page_path: str, target: str) -> _Page | None:
    """Hugo's include looks beside the page first; only non-rendered snippets are inlined.

    A target that is a page of its own already yields passages, so inlining it would only
    duplicate them; a target outside the docs folder (``content/en/includes``) is counted.
    """
    base = PurePosixPath(page_path).parent
    names = (target,) if target.endswith(".md") else (target, f"{target}.md")
    for candidate in (folder / name for name in names for folder in (base, PurePosixPath("."))):
        page = site.pages.get(_normalise(candidate))
        if page is not None:
            return page if _not_rendered(page.meta) or _is_resource(site, page.path) else None
    site.missing_includes[target] += 1
    return None


def _is_resource(site: _Site, path: str) -> bool:
    """A page inside a leaf bundle (a folder with index.md) is shown by that bundle's page."""
    pure = PurePosixPath(path)
    return str(pure.parent) in site.bundles and pure.name != "index.md"


def _normalise(path: PurePosixPath) -> str:
    parts: list[str] = []
    for part in path.parts:
        if part == "..":
            parts = parts[:-1]
        elif part not in (".", ""):
            parts.append(part)
    return "/".join(parts)


# ---------------------------------------------------------------------------- Hugo markup

_HTML_COMMENT = re.compile(r"<!--.*?-->", re.S)
_COMMENT_SHORTCODE = re.compile(r"\{\{[<%]\s*comment\s*[>%]\}\}.*?\{\{[<%]\s*/comment\s*[>%]\}\}", re.S)
_CODE_SHORTCODE = re.compile(
    r"\{\{<\s*(highlight|mermaid)\b([^>]*?)>\}\}[ \t]*\n?(.*?)\{\{<\s*/\1\s*>\}\}", re.S
)
_CODE_TAB = re.compile(
    r"\{\{<\s*tab\b([^>]*?)\bcodelang=\"([^\"]*)\"([^>]*?)(?<!/)>\}\}[ \t]*\n?(.*?)\{\{<\s*/tab\s*>\}\}", re.S
)
_ESCAPED_SHORTCODE = re.compile(r"\{\{([<%])\s*/\*(.*?)\*/\s*([>%])\}\}", re.S)
_LITERAL_SHORTCODE = re.compile(r"\{\{[<%]\s*(.*?)\s*[>%]\}\}", re.S)
_SHORTCODE = re.compile(r"\{\{([<%])\s*(/?)\s*([\w-]+)(.*?)/?\s*[>%]\}\}", re.S)
_ARG = re.compile(r"""([\w-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|(\S+))|"([^"]*)"|(\S+)""")
_LEFTOVER = re.compile(r"\{\{[<%]|<!--")

_HEADINGS = {
    "prerequisites": "Before you begin",
    "whatsnext": "What's next",
    "objectives": "Objectives",
    "cleanup": "Cleaning up",
    "synopsis": "Synopsis",
    "options": "Options",
    "parentoptions": "Options inherited from parent commands",
    "seealso": "See Also",
    "examples": "Examples",
    "envvars": "Environment variables",
}
_CALLOUTS = {"note": "Note", "caution": "Caution", "warning": "Warning"}
_SAMPLES = ("code_sample", "codenew", "code", "example")
_MAX_INCLUDE_DEPTH = 3
_MAX_CODE_LINE_CHARS = 200  # a digest or a page of digits is one "word" but hundreds of tokens


@dataclass(frozen=True)
class _Shortcode:
    name: str
    closing: bool
    named: Mapping[str, str]
    positional: tuple[str, ...]


def _parse_args(text: str) -> tuple[dict[str, str], tuple[str, ...]]:
    named: dict[str, str] = {}
    positional: list[str] = []
    for match in _ARG.finditer(text):
        if match[1]:
            named[match[1]] = next(value for value in match.groups()[1:4] if value is not None)
        else:
            positional.append(match[5] if match[5] is not None else match[6])
    return named, tuple(positional)


def _render_hugo(text: str, page_path: str, site: _Site, depth: int = 0) -> str:
    """Render what Hugo would before markdown: comments, code shortcodes, then the rest.

    Hugo runs shortcodes everywhere, code fences included, so this works on the whole body.
    """
    text = _HTML_COMMENT.sub("", text)
    text = _COMMENT_SHORTCODE.sub("", text)
    text = _ESCAPED_SHORTCODE.sub(_escaped_shortcode, text)
    text = _CODE_SHORTCODE.sub(_code_shortcode, text)
    text = _CODE_TAB.sub(_code_tab, text)
    return _SHORTCODE.sub(lambda match: _shortcode(match, page_path, site, depth), text)


def _escaped_shortcode(match: re.Match[str]) -> str:
    """``{{</* note */>}}`` is how a page shows shortcode syntax; it reads "(shortcode: note)".

    Hugo prints everything between the escapes literally, so shortcodes inside the escaped
    region are written the same way, and no ``{{<`` reaches a passage.
    """
    literal = f"{{{{{match[1]} {match[2].strip()} {match[3]}}}}}"
    return _LITERAL_SHORTCODE.sub(lambda inner: f"(shortcode: {inner[1]})", literal)


def _code_shortcode(match: re.Match[str]) -> str:
    language = "mermaid" if match[1] == "mermaid" else (match[2].split() or [""])[0].strip("\"'")
    return f"\n```{language}\n{match[3].rstrip()}\n```\n"


def _code_tab(match: re.Match[str]) -> str:
    """A tab with ``codelang`` shows its body as code, so it becomes a fenced block."""
    named, _ = _parse_args(match[1] + match[3])
    label = f"\n\n{named['name']}:\n" if named.get("name") else ""
    return f"{label}\n```{match[2]}\n{match[4].rstrip()}\n```\n"


def _shortcode(match: re.Match[str], page_path: str, site: _Site, depth: int) -> str:
    named, positional = _parse_args(match[4])
    code = _Shortcode(match[3].lower(), bool(match[2]), named, positional)
    if code.closing:
        return "\n\n" if code.name in _CALLOUTS or code.name in ("alert", "tab", "table") else ""
    if code.name in ("include", "glossary_definition", "feature-gate-description") or (
        code.name == "tab" and "include" in named
    ):
        return _expanded(code, page_path, site, depth)
    return _inline_shortcode(code, site)


def _inline_shortcode(code: _Shortcode, site: _Site) -> str:
    """One shortcode → readable text; unknown shortcodes are dropped, their inner text kept."""
    name, named = code.name, code.named
    arg = code.positional[0] if code.positional else ""
    if name in _CALLOUTS:
        return f"\n\n{_CALLOUTS[name]}: "
    if name == "alert":
        return f"\n\n{named.get('title', 'Note')}: "
    if name == "tab":
        return f"\n\n{named.get('name', 'Tab')}:\n\n"
    if name == "table":
        return f"\n\n{named['caption']}:\n\n" if named.get("caption") else "\n\n"
    if name == "glossary_tooltip":
        term = site.glossary.get(named.get("term_id", ""))
        return named.get("text") or (term.title if term else named.get("term_id", "").replace("-", " "))
    if name == "feature-state":
        return _feature_state(named, site)
    if name in _SAMPLES and named.get("file"):
        kind = "manifest" if named["file"].endswith((".yaml", ".yml", ".json")) else "file"
        return f"(example {kind}: {named['file']})"
    if name == "heading":
        return _HEADINGS.get(arg, arg.replace("-", " ").capitalize())
    if name in ("ref", "relref"):
        return arg
    if name == "link":
        return named.get("text", "")
    if name == "figure":
        return named.get("caption") or named.get("title") or ""
    return _version_text(name, arg, code.positional[1:], site)


def _version_text(name: str, arg: str, rest: tuple[str, ...], site: _Site) -> str:
    if site.version is None:
        return ""
    major, minor = site.version
    if name == "param" and arg == "version":
        return f"v{major}.{minor}"
    if name != "skew":
        return ""
    offsets = {"currentVersion": 0, "prevMinorVersion": -1, "nextMinorVersion": 1}
    if arg == "currentVersionAddMinor" and rest and re.fullmatch(r"-?\d+", rest[0]):
        return f"{major}.{minor + int(rest[0])}"
    if arg == "currentPatchVersion":
        return f"{major}.{minor}.x"
    return f"{major}.{minor + offsets[arg]}" if arg in offsets else ""


def _feature_state(named: Mapping[str, str], site: _Site) -> str:
    gate_name = named.get("feature_gate_name")
    if gate_name:
        gate = site.gates.get(gate_name)
        if gate is None:
            return f"\n\nFEATURE STATE: feature gate {gate_name}\n\n"
        default = "true" if gate.default else "false"
        return f"\n\nFEATURE STATE: Kubernetes v{gate.since} [{gate.stage}] (enabled by default: {default})\n\n"
    version = named.get("for_k8s_version") or (f"v{site.version[0]}.{site.version[1]}" if site.version else "")
    version = f" {version}" if version else ""
    return f"\n\nFEATURE STATE: Kubernetes{version} [{named.get('state', 'unknown')}]\n\n"


def _expanded(code: _Shortcode, page_path: str, site: _Site, depth: int) -> str:
    """Inline another file's markdown (includes, glossary definitions, gate descriptions)."""
    if depth >= _MAX_INCLUDE_DEPTH:
        return ""
    named = code.named
    if code.name == "glossary_definition":
        term = site.glossary.get(named.get("term_id", ""))
        if term is None:
            return named.get("term_id", "").replace("-", " ")
        body = term.full if named.get("length") == "all" else term.short
        prepend = named.get("prepend", "")
        body = f"{prepend} {body[:1].lower()}{body[1:]}" if prepend else body
        return _render_hugo(body, page_path, site, depth + 1)
    if code.name == "feature-gate-description":
        gate = site.gates.get(named.get("name", ""))
        return f"{named.get('name', '')}: {_render_hugo(gate.body, page_path, site, depth + 1)}" if gate else ""
    target = named.get("include") or (code.positional[0] if code.positional else "")
    label = f"\n\n{named['name']}:\n\n" if code.name == "tab" and named.get("name") else ""
    page = _resolve_include(site, page_path, target) if target else None
    return label + (f"\n\n{_render_hugo(page.body, page.path, site, depth + 1)}\n\n" if page else "")


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
_ITEM_START = re.compile(r"^\s*(?:[-*+][ \t]|\d+[.)][ \t]|\|)")
_SPACES = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")  # left where a tag or an image was
_SENTENCE_END = re.compile(r"(?<=[.!?:])\s+(?=[A-Z0-9`\"'(\[*])")


@dataclass(frozen=True)
class _Block:
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


def _code_block(language: str, code: str, settings: ChunkSettings) -> _Block | None:
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
    return _Block("code", f"{fence}{language}\n" + "\n".join(kept) + f"\n{fence}")


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


def _clean_prose(text: str) -> str:
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


def _prose_blocks(text: str) -> list[_Block]:
    """Headings and paragraphs; an indented paragraph outside a list is a code block."""
    blocks: list[_Block] = []
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
            blocks.append(_Block("heading", title, len(heading[1]), custom))
            in_list = False
        elif line.strip():
            paragraph.append(line.rstrip())
        else:
            flush()
    flush()
    return [block for block in blocks if block.text.strip()]


def _paragraph(lines: list[str], in_list: bool) -> tuple[_Block, bool]:
    indented = all(re.match(r"^(?: {4}|\t)", line) for line in lines)
    if indented and not in_list:
        code = "\n".join(line[4:] if line.startswith("    ") else line[1:] for line in lines)
        return _Block("code", f"```\n{code}\n```"), False
    items: list[str] = []
    table = all("|" in line for line in lines)  # rows need not start with a pipe
    for line in lines:
        if not items or table or _ITEM_START.match(line):
            items.append(line)
        else:
            items[-1] += " " + line.strip()
    starts_list = bool(_ITEM_START.match(lines[0])) and not lines[0].lstrip().startswith("|")
    return _Block("text", "\n".join(items)), starts_list or (in_list and indented)


def _heading_text(raw: str) -> tuple[str, str]:
    custom = _CUSTOM_ID.search(raw)
    text = raw[: custom.start()] if custom else raw
    text = " ".join(text.replace("`", "").replace("**", "").split())
    return text, custom[1] if custom else ""


def _scrub(text: str) -> str:
    return _LEFTOVER.sub("", text)


def _page_blocks(body: str, page_path: str, site: _Site, settings: ChunkSettings, log: list[str]) -> list[_Block]:
    rendered = _render_hugo(body, page_path, site)
    blocks: list[_Block] = []
    for kind, language, text in _split_fences(rendered):
        if kind == "code":
            block = _code_block(language, text, settings)
            blocks.extend([block] if block else [])
        else:
            blocks.extend(_prose_blocks(_clean_prose(text)))
    if any(_LEFTOVER.search(block.text) for block in blocks):
        log.append(f"{page_path}: unbalanced Hugo or comment markup ({{{{<, {{{{%, <!--) removed")
        blocks = [_Block(block.kind, _scrub(block.text), block.level, block.anchor) for block in blocks]
    return blocks


def _render_blocks(blocks: Iterable[_Block]) -> str:
    return "\n\n".join(
        f"{'#' * block.level} {block.text}" + (f" {{#{block.anchor}}}" if block.anchor else "")
        if block.kind == "heading"
        else block.text
        for block in blocks
    )


# ---------------------------------------------------------------------------- sections and anchors


@dataclass(frozen=True)
class _Section:
    heading: tuple[str, ...]
    anchor: str  # of the innermost heading; "" before the first heading
    blocks: tuple[_Block, ...]


def hugo_anchor(text: str) -> str:
    """Hugo's "github" heading id: lowercase, spaces → "-", other punctuation dropped.

    Example:
        >>> hugo_anchor("What's next: `kubectl` & friends")
        'whats-next-kubectl--friends'
    """
    kept = (char for char in text.lower() if char.isalnum() or char in "-_" or char.isspace())
    return "".join("-" if char.isspace() else char for char in kept)


def _sections(blocks: Sequence[_Block], root: tuple[str, ...]) -> list[_Section]:
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
        indent = line[: min(len(line) - len(line.lstrip()), 8)] if _ITEM_START.match(line) else ""
        for sentence in _SENTENCE_END.split(line):
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


def _page_title(page: _Page, blocks: Sequence[_Block]) -> str:
    title = page.meta.get("title")
    if title:
        return " ".join(_clean_prose(str(title)).split())
    first = next((block.text for block in blocks if block.kind == "heading" and block.level == 1), "")
    return first or PurePosixPath(page.path).stem.replace("-", " ").replace("_", " ").strip().capitalize()


def _place(page: _Page, blocks: Sequence[_Block], site: _Site) -> _Place:
    title = _page_title(page, blocks)
    if not _is_resource(site, page.path):
        return _Place(page.path, title, (), _page_url(page.path), None)
    bundle = str(PurePosixPath(page.path).parent)
    index = site.pages.get(f"{bundle}/index.md")
    bundle_title = str(index.meta.get("title") or title) if index else title
    url = _page_url(f"{bundle}/index.md")
    if _is_glossary_term(page.path) and page.meta.get("id"):
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


def _chunk(place: _Place, blocks: Sequence[_Block], settings: ChunkSettings) -> list[Passage]:
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


# ---------------------------------------------------------------------------- public API


def _skip_reason(page: _Page, site: _Site) -> str | None:
    if page.raw_blank:
        return "empty file"
    if _is_true(page.meta.get("draft")):
        return "draft"
    if _not_rendered(page.meta) and not _is_resource(site, page.path):
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
    pages = [_read_page(docs_dir, path, log) for path in _markdown_files(docs_dir)]
    site = _build_site(pages)
    skipped: dict[str, list[str]] = defaultdict(list)
    passages: list[Passage] = []
    for page in pages:
        reason = _skip_reason(page, site)
        blocks = [] if reason else _page_blocks(page.body, page.path, site, settings, log)
        if reason is None and not any(block.kind != "heading" for block in blocks):
            reason = "no text after cleaning"
        if reason:
            skipped[reason].append(page.path)
            continue
        passages.extend(_chunk(_place(page, blocks, site), blocks, settings))
    log.extend(
        f"include {target!r} is not under the docs folder ({count} pages); left out"
        for target, count in sorted(site.missing_includes.items())
    )
    if not passages:
        raise RagrerankError(f"no passages extracted from {docs_dir}: every page was skipped ({dict(skipped)})")
    _check_unique(passages)
    return ExtractionReport(
        passages=tuple(passages),
        files_read=len(pages),
        skipped={reason: tuple(paths) for reason, paths in sorted(skipped.items())},
        warnings=tuple(log),
        seconds=time.perf_counter() - started,
    )


def _check_unique(passages: Sequence[Passage]) -> None:
    counts = Counter(passage.id for passage in passages)
    duplicated = [passage for passage in passages if counts[passage.id] > 1]
    if duplicated:
        first = duplicated[0]
        raise RagrerankError(f"passage id {first.id} is not unique ({first.path} {first.heading}): report this bug")


def clean_markdown(markdown: str, settings: ChunkSettings = ChunkSettings()) -> str:
    """The text a passage is cut from: shortcodes, comments, links and HTML rendered away.

    Works without the rest of the site, so glossary terms without ``text=`` fall back to
    their id and includes are left out; ``extract_passages`` resolves both.

    Example:
        >>> clean_markdown('{{< note >}}See [Jobs](/docs/jobs/).{{< /note >}}')
        'Note: See Jobs.'
    """
    site = _Site({}, frozenset(), {}, {}, None)
    body = _body_after_front_matter(markdown) if markdown.startswith("---") else markdown
    return _render_blocks(_page_blocks(body, "page.md", site, settings, []))


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
    try:
        post = frontmatter.loads(markdown)
        meta, body = (post.metadata if isinstance(post.metadata, dict) else {}), post.content
    except yaml.YAMLError:
        meta, body = {}, _body_after_front_matter(markdown)
    page = _Page(path, meta, body, not markdown.strip())
    site = _Site({path: page}, frozenset(), {}, {}, None)
    blocks = _page_blocks(page.body, path, site, settings, log)
    return _chunk(_place(page, blocks, site), blocks, settings)


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
    return passages


def build_passages(
    settings: Settings, out: Path | None = None, chunking: ChunkSettings = ChunkSettings()
) -> ExtractionReport:
    """Extract passages from ``settings.docs_dir`` and write them (default ``settings.passages_path``).

    The CLI calls this and prints ``report.summary()``.
    """
    report = extract_passages(settings.docs_dir, chunking)
    write_passages(out if out is not None else settings.passages_path, report.passages)
    return report


def measure_runbook_chunker(docs_dir: Path) -> RunbookLoss:
    """Re-run the original runbook's chunker on the page bodies and count what it dropped.

    It split raw markdown on blank lines, glued paragraphs until a block reached 50 words,
    kept blocks of 50–200 words and silently dropped longer ones. Front matter is not
    counted, so the total is the page text a reader would see.
    """
    log: list[str] = []
    files = _markdown_files(Path(docs_dir))
    totals = Counter[str]()
    for path in files:
        for key, value in _runbook_page(_read_page(Path(docs_dir), path, log).body).items():
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


def _percentile(values: Sequence[int], quantile: float) -> int:
    """Nearest-rank percentile: always one of the values, so it prints the same everywhere."""
    if not values:
        return 0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(quantile * len(ordered)) - 1)]
