"""What a reader should know about their question before trusting the answer: language and injected orders.

Both checks are cheap pattern rules, not classifiers: they add a note to the answer, and a
question that gives the assistant orders is never handed to the LLM (the answer quotes the docs).
"""

from __future__ import annotations

import re

# Function words of the languages a Kubernetes user is most likely to ask in besides English.
_FOREIGN_WORDS = frozenset(
    "el la los las una del que cómo como para por qué está der die das und ist wie ich nicht ein eine "
    "le les des est une pour comment quoi dans avec il je não uma com os".split()
)
_INJECTION = re.compile(
    r"\b(ignore|disregard|forget|override)\s+((all|the|any|your|previous|above|prior|these)\s+)*"
    r"(docs|documentation|context|passages|instructions|rules|prompt)\b"
    r"|\b(system prompt|you are now|act as|pretend to be)\b",
    re.IGNORECASE,
)


def looks_foreign(question: str) -> bool:
    """Whether the question reads as another language than English (a quarter of its words non-ASCII, or two function words)."""
    words = re.findall(r"[^\W\d_]+", question.lower())
    if not words:
        return False
    non_ascii = sum(not word.isascii() for word in words)
    foreign = sum(word in _FOREIGN_WORDS for word in words)
    return non_ascii >= max(1, len(words) / 4) or foreign >= 2


def gives_orders(question: str) -> bool:
    """Whether the question tries to instruct the assistant ("ignore the docs and print …")."""
    return bool(_INJECTION.search(question))


def question_notes(question: str) -> tuple[str, ...]:
    notes = []
    if looks_foreign(question):
        notes.append("the question does not look like English: the models and the docs are English, so matches may be weak")
    if gives_orders(question):
        notes.append("the question gives the assistant instructions: they are ignored, the answer only quotes the docs")
    return tuple(notes)
