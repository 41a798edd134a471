"""Training questions generated from the docs themselves, so the reranker needs no human labels.

Each generator turns one kind of structure in the docs into (question, passage) pairs. The earlier
attempts showed that the supervision, not the loss, limits the model: queries that merely copy a
heading teach the cross-encoder to match words. So most generators aim at what users type: "how
do I …" over task headings, "what is …" over concepts and glossary terms, the front-matter
description as a paraphrase, and the sentence around a link as a question the linked page answers.
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ragrerank.corpus.markdown import strip_marks
from ragrerank.corpus.site import split_front_matter
from ragrerank.types import Passage

# Headings that name a part of the page template, not a topic a user would ask about.
GENERIC_HEADINGS = frozenset(
    "whatsnext prerequisites synopsis options seealso parentoptions examples objectives cleanup clean up "
    "overview introduction background discussion motivation alternatives limitations before you begin "
    "what's next further reading references summary api operations resource types examples".split()
    + ["clean up", "before you begin", "what's next", "further reading", "resource types", "see also"]
)
TASK_TYPES = frozenset({"task", "tutorial"})
_SHORTCODE = re.compile(r"\{\{[<%].*?[>%]\}\}", re.DOTALL)
_GLOSSARY_TOOLTIP = re.compile(r'\{\{<\s*glossary_tooltip[^>]*?text="([^"]*)"[^>]*>\}\}|\{\{<\s*glossary_tooltip[^>]*?term_id="([^"]*)"[^>]*>\}\}')
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")  # [text](url), the url kept: links name the page that answers
_DOCS_LINK = re.compile(r"^(?:https://kubernetes\.io)?/docs/([^#?]*)(?:#([\w-]+))?")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`])")
_VERB_START = re.compile(r"^[A-Z][a-z]+(?<!ing)\b")  # "Configure …", not "Sending …"
_QUESTION_WORDS = ("how", "what", "why", "when", "which", "can", "should", "is", "are", "do", "does")


@dataclass(frozen=True)
class GeneratedQuery:
    """One synthetic question and the passage it was generated from.

    ``relevant_paths`` holds every page that answers it (a glossary question is answered both by the
    glossary entry and by the page it links to), so negatives are never drawn from any of them.
    """

    text: str
    kind: str  # which generator made it: title, description, heading, glossary, link, sentence
    positive: Passage
    relevant_paths: frozenset[str]


def generate_queries(passages: Sequence[Passage], docs_dir: Path, seed: int = 13) -> list[GeneratedQuery]:
    """Generate user-like questions for every page of ``passages`` from the markdown in ``docs_dir``.

    The front matter (description, content type, glossary definitions) and the links are read from the
    markdown, because passages keep only the text a retriever indexes.

    Example:
        >>> queries = generate_queries(passages, settings.docs_dir)
        >>> queries[0].kind, queries[0].text
        ('title', 'how do I configure liveness, readiness and startup probes')
    """
    rng = random.Random(seed)
    pages: dict[str, list[Passage]] = defaultdict(list)
    for passage in passages:
        pages[passage.path].append(passage)
    queries: list[GeneratedQuery] = []
    for path, page in pages.items():
        meta, body, _ = split_front_matter(_read(docs_dir / path))
        queries += _page_queries(page, meta)
        queries += _glossary_queries(page, meta, pages)
        queries += _link_queries(page, body, pages)
        queries += _sentence_queries(page, rng)
    return _dedupe(queries)


def clean_text(text: str) -> str:
    """Strip Hugo shortcodes and markdown marks so a generated question reads as typed."""
    text = _GLOSSARY_TOOLTIP.sub(lambda m: m.group(1) or (m.group(2) or "").replace("-", " "), text)
    return strip_marks(_SHORTCODE.sub(" ", text))


def as_question(phrase: str, content_type: str) -> str:
    """Turn a title or heading into the question a user would type for that kind of page.

    Example:
        >>> as_question("Configure a Pod to Use a ConfigMap", "task")
        'how do I configure a Pod to Use a ConfigMap'
        >>> as_question("Pod Lifecycle", "concept")
        'what is Pod Lifecycle'
    """
    phrase = clean_text(phrase).rstrip("?:. ")
    if phrase.lower().startswith(_QUESTION_WORDS):
        return phrase[0].lower() + phrase[1:]
    if content_type in TASK_TYPES and _VERB_START.match(phrase):
        return f"how do I {phrase[0].lower()}{phrase[1:]}"
    return f"what is {phrase}"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""  # a passage whose page moved since indexing still yields its sentence queries


def _page_queries(page: list[Passage], meta: dict[str, object]) -> Iterator[GeneratedQuery]:
    content_type = str(meta.get("content_type", "")).strip().strip('"')
    relevant = frozenset({page[0].path})
    first = page[0]
    yield GeneratedQuery(as_question(first.title, content_type), "title", first, relevant)
    description = clean_text(str(meta.get("description") or ""))
    if 3 <= len(description.split()) <= 40:
        yield GeneratedQuery(description, "description", first, relevant)
    for passage in page:
        if not passage.heading:
            continue
        heading = clean_text(passage.heading[-1])
        if heading.lower() in GENERIC_HEADINGS or len(heading.split()) < 2 or "{" in heading:
            continue
        yield GeneratedQuery(as_question(heading, content_type), "heading", passage, relevant)


def _glossary_queries(
    page: list[Passage], meta: dict[str, object], pages: dict[str, list[Passage]]
) -> Iterator[GeneratedQuery]:
    """A glossary term asked about plainly, answered by the entry and by the page it links to."""
    definition = clean_text(str(meta.get("short_description") or ""))
    if not definition:
        return
    target = _docs_path(str(meta.get("full_link") or ""), pages)
    positive = pages[target][0] if target else page[0]
    relevant = frozenset({page[0].path} | ({target} if target else set()))
    term = clean_text(str(meta.get("title") or page[0].title))
    yield GeneratedQuery(f"what is {term} in Kubernetes", "glossary", positive, relevant)
    yield GeneratedQuery(definition.rstrip("."), "glossary", positive, relevant)


def _link_queries(page: list[Passage], body: str, pages: dict[str, list[Passage]]) -> Iterator[GeneratedQuery]:
    """The sentence around a link to another page, as a question that page answers.

    Writers link where a reader needs the other page, so the sentence paraphrases what the target
    explains, often without its title words: the lexical gap real questions have.
    """
    for paragraph in body.split("\n\n"):
        if paragraph.lstrip().startswith(("#", "```", "|", "{{", "<")):
            continue
        for sentence in _SENTENCE_END.split(" ".join(paragraph.split())):
            for match in _LINK.finditer(sentence):
                target = _docs_path(match.group(2), pages)
                text = clean_text(sentence)
                if not target or target == page[0].path or not 6 <= len(text.split()) <= 35:
                    continue
                positive = _section(pages[target], _DOCS_LINK.match(match.group(2)).group(2))
                yield GeneratedQuery(text, "link", positive, frozenset({target}))


def _sentence_queries(page: list[Passage], rng: random.Random) -> Iterator[GeneratedQuery]:
    """Inverse cloze: one sentence per passage as the query, the passage with it removed as positive."""
    for passage in page:
        head, _, body = passage.text.partition("\n")
        sentences = [s for s in _SENTENCE_END.split(" ".join(body.split())) if 8 <= len(s.split()) <= 30]
        sentences = [s for s in sentences if not re.search(r"[{}<>=$|]|```", s)]
        if not sentences:
            continue
        sentence = rng.choice(sentences)
        rest = " ".join(body.split()).replace(sentence, " ").strip()
        if len(rest.split()) < 20:
            continue
        positive = Passage(**{**passage.__dict__, "text": f"{head}\n\n{rest}"})
        yield GeneratedQuery(clean_text(sentence), "sentence", positive, frozenset({passage.path}))


def _docs_path(link: str, pages: dict[str, list[Passage]]) -> str | None:
    """The passage path a /docs/ link points at, or None when it leaves the indexed docs."""
    match = _DOCS_LINK.match(link.strip())
    if not match:
        return None
    stem = match.group(1).strip("/")
    for candidate in (f"{stem}.md", f"{stem}/_index.md", f"{stem}/index.md"):
        if candidate in pages:
            return candidate
    return None


def _section(page: list[Passage], anchor: str | None) -> Passage:
    """The passage under the heading a link's #anchor names, else the page's first passage."""
    if anchor:
        for passage in page:
            if passage.url.endswith(f"#{anchor}"):
                return passage
    return page[0]


def _dedupe(queries: list[GeneratedQuery]) -> list[GeneratedQuery]:
    seen: set[str] = set()
    unique = []
    for query in queries:
        key = query.text.lower()
        if key not in seen and len(key.split()) >= 2:
            seen.add(key)
            unique.append(query)
    return unique
