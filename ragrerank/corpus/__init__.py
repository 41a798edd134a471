"""Docs → passages: read the Hugo pages, clean their markup, chunk them by headings and size.

The Kubernetes docs are Hugo pages, so much of what a reader sees (notes, feature states,
glossary terms, included snippets) lives in shortcodes, and the original runbook glued raw
paragraphs together and silently dropped every block over 200 words. Here every word of a
cleaned page lands in some passage, and every passage carries its page, heading path and
URL so an answer can cite it.

Flow, one module a step: ``site`` (front matter, encoding, the glossary and feature gates other
pages refer to) → ``shortcodes`` (comments, shortcodes, includes) → ``markdown`` (links, HTML,
tables, bounded code) → ``chunking`` (heading tree, Hugo anchors, size-bounded cuts) →
``passages`` (the passages file). ``runbook`` measures what the original chunker dropped.
"""

from ragrerank.corpus.chunking import ChunkSettings, hugo_anchor
from ragrerank.corpus.passages import (
    ExtractionReport,
    build_passages,
    check_unique_ids,
    clean_markdown,
    extract_passages,
    load_passages,
    passages_file,
    passages_from_markdown,
    write_passages,
)
from ragrerank.corpus.runbook import RunbookLoss, measure_runbook_chunker
from ragrerank.corpus.site import split_front_matter

__all__ = [
    "ChunkSettings",
    "ExtractionReport",
    "RunbookLoss",
    "build_passages",
    "check_unique_ids",
    "clean_markdown",
    "extract_passages",
    "hugo_anchor",
    "load_passages",
    "measure_runbook_chunker",
    "split_front_matter",
    "passages_file",
    "passages_from_markdown",
    "write_passages",
]
