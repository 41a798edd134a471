"""The grounding check of a generated answer: it cites the passages, and every name it gives occurs in them.

A small model writes fluent sentences around made-up commands, flags and API fields; those
names are what a reader copies into a terminal, so they are what is checked. A name counts
as grounded when the passages contain it (markdown marks and spacing ignored; a trailing
plural "s" too). Prose is not checked word by word: paraphrase is allowed, invention of names
is not, and an answer must cite at least one of its passages ([1], [2], ...) to be shown, which
turns away the chatty replies that name nothing ("What's your next question?").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ragrerank.corpus.markdown import strip_marks
from ragrerank.types import Passage

_FENCED = re.compile(r"```[^\n]*\n(.*?)(?:```|$)", re.S)
_INLINE = re.compile(r"`([^`\n]+)`")
_URL = re.compile(r"https?://[^\s)>\]\"'`]+")
_FLAG = re.compile(r"(?<![\w-])--[a-zA-Z][\w-]*")
_COMMAND = re.compile(r"\b(?:kubectl|kubeadm|minikube|helm|crictl|etcdctl)\s+[a-z][\w-]*")  # the tool and its subcommand
_FIELD = re.compile(r"(?<![\w/])\.?[a-z][a-zA-Z0-9]+(?:\.[a-z][a-zA-Z0-9]*)+\b|\b[a-z]+(?:[A-Z][a-z0-9]*)+\b|\b[a-z]+(?:_[a-z0-9]+)+\b")
_KIND = re.compile(r"\b[A-Z][a-z]+(?:[A-Z][a-z]*)+\b")  # PodDisruptionBudget, CronJob: one-word kinds are ordinary words
_PROMPT = re.compile(r"^\s*[$#>]\s*")
_CITATION = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class GroundingCheck:
    """What the check found: the names an answer gives, those no passage contains, and the passages it cites."""

    names: tuple[str, ...]
    invented: tuple[str, ...]
    cited: tuple[int, ...]  # passage numbers the answer cites that exist

    @property
    def passed(self) -> bool:
        return not self.invented and bool(self.cited)

    def summary(self) -> str:
        """One line for the terminal."""
        if self.passed:
            return f"grounding check passed: cites {', '.join(f'[{n}]' for n in self.cited)}, and all {len(self.names)} names occur in the passages"
        reasons = []
        if self.invented:
            reasons.append(f"the model named {', '.join(f'`{n}`' for n in self.invented)}, which the passages do not")
        if not self.cited:
            reasons.append("it cites none of the passages")
        return f"grounding check failed: {'; '.join(reasons)}"


def answer_names(text: str) -> tuple[str, ...]:
    """The checkable names of an answer, in order of appearance, each once.

    Code lines (fenced, prompt removed) and inline code spans are checked whole; in the prose
    outside them: URLs, ``--flags``, commands (``kubectl drain``), API fields (``.spec.timeZone``,
    ``timeZone``, ``max_workers``) and multi-word object kinds (``PodDisruptionBudget``).
    """
    names: list[str] = []
    prose = text
    for block in _FENCED.findall(text):
        names.extend(_PROMPT.sub("", line).strip() for line in block.splitlines() if line.strip())
    prose = _FENCED.sub(" ", prose)
    names.extend(span.strip() for span in _INLINE.findall(prose) if span.strip())
    prose = _INLINE.sub(" ", prose)
    for pattern in (_URL, _COMMAND, _FLAG, _FIELD, _KIND):
        found = pattern.findall(prose)
        names.extend(found)
        prose = pattern.sub(" ", prose)
    return tuple(dict.fromkeys(name.rstrip(".,;:") for name in names if name.rstrip(".,;:")))


def check_grounding(text: str, passages: Sequence[Passage]) -> GroundingCheck:
    """Check every name of ``text`` against the cited ``passages``.

    Example:
        >>> check_grounding("Run `kubectl drain --force` [1].", passages).invented   # passages never say --force
        ('kubectl drain --force',)
    """
    haystack = _normalise(" ".join(passage.text for passage in passages))
    names = answer_names(text)
    invented = tuple(name for name in names if not _grounded(name, haystack))
    cited = tuple(sorted({int(n) for n in _CITATION.findall(text) if 1 <= int(n) <= len(passages)}))
    return GroundingCheck(names, invented, cited)


def _grounded(name: str, haystack: str) -> bool:
    needle = _normalise(name)
    if not needle or needle in haystack:
        return True
    # One identifier in the plural ("CronJobs", "emptyDirs") names the same thing as the passages' singular.
    return " " not in needle and needle.endswith("s") and needle[:-1] in haystack


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", strip_marks(text)).strip()
