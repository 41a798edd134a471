"""Reading the docs as Hugo sees them: pages with front matter, and what shortcodes need from other pages.

Glossary terms, feature gates and include targets live in other files, so a page is rendered
against the whole site; ``Site`` holds that context.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import frontmatter
import yaml

from ragrerank.errors import RagrerankError

# ---------------------------------------------------------------------------- reading pages


@dataclass(frozen=True)
class Page:
    path: str  # relative to the docs folder, POSIX separators
    meta: Mapping[str, Any]
    body: str
    raw_blank: bool  # the file holds nothing but whitespace


def markdown_files(docs_dir: Path) -> list[str]:
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


def read_page(docs_dir: Path, path: str, log: list[str]) -> Page:
    """Read one page; a front matter that does not parse leaves a plain-text page and a warning."""
    text = _read_text(docs_dir / path, path, log)
    meta, body, problem = split_front_matter(text)
    if problem:
        log.append(f"{path}: {problem}; page used as plain text without metadata")
    return Page(path, meta, body, not text.strip())


def split_front_matter(text: str) -> tuple[dict[str, Any], str, str]:
    """(metadata, body, problem): the YAML front matter parsed, or ``{}`` and the reason it was not.

    Example:
        >>> split_front_matter("---\ntitle: Jobs\n---\nA Job runs a task.")[:2]
        ({'title': 'Jobs'}, 'A Job runs a task.')
    """
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        return {}, _body_after_front_matter(text), f"front matter is not valid YAML{where}"
    meta = post.metadata if isinstance(post.metadata, dict) else {}
    return meta, post.content, ""


def _body_after_front_matter(text: str) -> str:
    try:
        _, body = frontmatter.YAMLHandler().split(text)
    except ValueError:
        return text
    return body


def is_true(value: Any) -> bool:
    return value is True or str(value).strip().lower() == "true"


def not_rendered(meta: Mapping[str, Any]) -> bool:
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
class Site:
    """What a shortcode needs from other pages: glossary terms, feature gates, includes.

    ``version`` is the Kubernetes minor version the docs describe; the docs folder has no
    Hugo config, so it is taken as the newest ``fromVersion`` among the feature gates.
    """

    pages: Mapping[str, Page]
    bundles: frozenset[str]  # folders holding index.md: their other pages are resources
    glossary: Mapping[str, _Term]
    gates: Mapping[str, _Gate]
    version: tuple[int, int] | None
    # filled while pages are rendered, then reported once per target as a warning
    missing_includes: Counter[str] = field(default_factory=Counter, compare=False)


def build_site(pages: Sequence[Page]) -> Site:
    by_path = {page.path: page for page in pages}
    bundles = frozenset(str(PurePosixPath(p).parent) for p in by_path if PurePosixPath(p).name == "index.md")
    glossary = {
        str(page.meta.get("id") or PurePosixPath(page.path).stem): _glossary_term(page)
        for page in pages
        if is_glossary_term(page.path)
    }
    gates = {str(page.meta["title"]): gate for page in pages if (gate := _feature_gate(page)) is not None}
    versions = [_minor(stage.get("fromVersion")) for page in pages for stage in _stages(page.meta)]
    versions = [version for version in versions if version is not None]
    return Site(by_path, bundles, glossary, gates, max(versions) if versions else None)


def is_glossary_term(path: str) -> bool:
    pure = PurePosixPath(path)
    return str(pure.parent) == "reference/glossary" and pure.name != "index.md"


def _glossary_term(page: Page) -> _Term:
    short = page.body.split("<!--more-->", 1)[0]
    title = str(page.meta.get("title") or PurePosixPath(page.path).stem)
    return _Term(title, short.strip(), page.body.strip())


def _stages(meta: Mapping[str, Any]) -> list[dict[str, Any]]:
    stages = meta.get("stages")
    return [stage for stage in stages if isinstance(stage, dict)] if isinstance(stages, list) else []


def _feature_gate(page: Page) -> _Gate | None:
    stages = _stages(page.meta)
    if not stages or "title" not in page.meta:
        return None
    last = stages[-1]
    since, default = str(last.get("fromVersion", "")), is_true(last.get("defaultValue"))
    return _Gate(str(last.get("stage", "")), since, default, page.body)


def _minor(value: Any) -> tuple[int, int] | None:
    match = re.match(r"v?(\d+)\.(\d+)", str(value or ""))
    return (int(match[1]), int(match[2])) if match else None


def resolve_include(site: Site, page_path: str, target: str) -> Page | None:
    """Hugo's include looks beside the page first; only non-rendered snippets are inlined.

    A target that is a page of its own already yields passages, so inlining it would only
    duplicate them; a target outside the docs folder (``content/en/includes``) is counted.
    """
    base = PurePosixPath(page_path).parent
    names = (target,) if target.endswith(".md") else (target, f"{target}.md")
    for candidate in (folder / name for name in names for folder in (base, PurePosixPath("."))):
        page = site.pages.get(_normalise(candidate))
        if page is not None:
            return page if not_rendered(page.meta) or is_resource(site, page.path) else None
    site.missing_includes[target] += 1
    return None


def is_resource(site: Site, path: str) -> bool:
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
