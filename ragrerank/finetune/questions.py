"""Training questions written by hand the way users ask (``data/train/questions.jsonl``): read, check, resolve.

Each question names its page and quotes the span of the passage that answers it, so its gold passage is
found again when the chunker or the docs change (``resolve``). The checks here back the tests of the
question set and the writers' own checking: the overlap rule (no run of more than three passage words,
unless it holds a name a user would type), the type mix, the openings, the lexical gap.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragrerank.errors import RagrerankError
from ragrerank.io import numbered_jsonl
from ragrerank.types import Passage

TYPES = ("howto", "troubleshoot", "concept", "keyword", "scenario")
MIN_EVIDENCE_WORDS = 8
MAX_SHARED_RUN = 3  # consecutive passage words a question may reuse; one more is copying
MAX_UNRESOLVED_SHARE = 0.05  # training refuses to start when more questions than this lost their passage
# Generated references, not prose a user asks about: API field dumps, flag lists, config schemas.
GENERATED_REFERENCE = (
    "reference/kubernetes-api/",
    "reference/config-api/",
    "reference/kubectl/generated/",
    "reference/setup-tools/kubeadm/generated/",
    "reference/command-line-tools-reference/kube",
    "reference/command-line-tools-reference/feature-gates",
)
BOILERPLATE_HEADING = re.compile(r"what's next|whats next|see also|further reading|^references$|synopsis|^options|feedback", re.I)
MIN_SUBSTANTIVE_WORDS = 50
COMMANDS = frozenset(
    "kubectl kubeadm kubelet etcdctl crictl minikube kustomize helm etcd containerd docker systemctl curl openssl "
    "iptables ipvs cgroup cgroups cgroupfs systemd yaml json dns coredns api rbac tls crd crds cni csi cri oidc".split()
)
_WORD = re.compile(r"--?[\w][\w./:=-]*|[\w][\w.'/:=-]*")
_CODE_SPAN = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class TrainingQuestion:
    """One hand-written question, the page that answers it and the span of its passage that does.

    ``heading`` is the passage's heading path when it was written; ``line`` its line in the file, for messages.
    """

    query: str
    type: str
    path: str
    heading: tuple[str, ...]
    evidence: str
    line: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"query": self.query, "type": self.type, "path": self.path, "heading": list(self.heading), "evidence": self.evidence}


@dataclass(frozen=True)
class Resolution:
    """Questions matched to their gold passage, and those whose evidence is in no passage of their page."""

    resolved: tuple[tuple[TrainingQuestion, Passage], ...]
    unresolved: tuple[TrainingQuestion, ...]

    @property
    def unresolved_share(self) -> float:
        total = len(self.resolved) + len(self.unresolved)
        return len(self.unresolved) / total if total else 0.0


def load_training_questions(path: str | Path) -> tuple[TrainingQuestion, ...]:
    """Read a training questions file, failing on the first bad line with its file and number."""
    path = Path(path)
    if not path.is_file():
        raise RagrerankError(f"training questions file {path} does not exist: pass data/train/questions.jsonl or your own")
    questions = tuple(_question(record, f"{path}:{number}", number) for number, record in numbered_jsonl(path))
    if not questions:
        raise RagrerankError(f"{path} holds no questions: write one JSON object per line (see data/train/README.md)")
    return questions


def _question(record: dict[str, Any], where: str, line: int) -> TrainingQuestion:
    missing = [name for name in ("query", "type", "path", "evidence") if not record.get(name)]
    if missing:
        raise RagrerankError(f"{where} lacks {', '.join(missing)}: every question needs query, type, path and evidence")
    query, kind, page, evidence = (record[name] for name in ("query", "type", "path", "evidence"))
    if not all(isinstance(value, str) and value.strip() for value in (query, page, evidence)):
        raise RagrerankError(f"{where}: query, path and evidence must be non-empty strings")
    if kind not in TYPES:
        raise RagrerankError(f"{where} has type {kind!r}: use one of {', '.join(TYPES)}")
    if len(evidence.split()) < MIN_EVIDENCE_WORDS:
        raise RagrerankError(f"{where} has {len(evidence.split())} words of evidence: quote at least {MIN_EVIDENCE_WORDS}")
    heading = record.get("heading", [])
    if not isinstance(heading, list) or not all(isinstance(part, str) for part in heading):
        raise RagrerankError(f"{where} has heading {heading!r}: use a list of strings ([] for the page's opening)")
    return TrainingQuestion(query.strip(), kind, page, tuple(heading), evidence, line)


def squash(text: str) -> str:
    """Whitespace collapsed: evidence is compared with passages this way, however either was wrapped."""
    return " ".join(text.split())


def resolve(questions: Sequence[TrainingQuestion], passages: Sequence[Passage]) -> Resolution:
    """Find each question's gold passage: the passage of its page whose text contains its evidence.

    When several passages of the page quote it (an overlap between neighbours), the one under the
    question's heading wins, else the first.
    """
    by_page: dict[str, list[tuple[Passage, str]]] = defaultdict(list)
    for passage in passages:
        by_page[passage.path].append((passage, squash(passage.text)))
    resolved, unresolved = [], []
    for question in questions:
        evidence = squash(question.evidence)
        found = [passage for passage, text in by_page.get(question.path, ()) if evidence in text]
        if not found:
            unresolved.append(question)
            continue
        resolved.append((question, next((p for p in found if p.heading == question.heading), found[0])))
    return Resolution(tuple(resolved), tuple(unresolved))


def substantive(passage: Passage) -> bool:
    """A passage a user could ask about: prose of a page that is not a generated reference or a link list."""
    if passage.path.startswith(GENERATED_REFERENCE) or passage.words < MIN_SUBSTANTIVE_WORDS:
        return False
    return not (passage.heading and BOILERPLATE_HEADING.search(passage.heading[-1]))


def words(text: str) -> list[str]:
    return [word.rstrip(".:,'") for word in _WORD.findall(text) if word.rstrip(".:,'")]


def _code_words(passage_text: str) -> set[str]:
    return {word.lower() for span in _CODE_SPAN.findall(passage_text) for word in words(span)}


def is_identifier(word: str, code_words: set[str] = frozenset()) -> bool:
    """A name a user would type as it is: a flag, field, path, CamelCase kind, command, or anything in backticks.

    Example:
        >>> [is_identifier(word) for word in ("--ignore-daemonsets", "PodDisruptionBudget", "kubectl", "drain")]
        [True, True, True, False]
    """
    return (
        any(char in word for char in "-./_:=0123456789")
        or any(char.isupper() for char in word[1:])
        or (word.isupper() and len(word) > 1)
        or word.lower() in COMMANDS
        or word.lower() in code_words
    )


def copied_runs(query: str, passage_text: str) -> list[str]:
    """Runs of more than three query words that stand in the passage in that order, names excepted.

    Example:
        >>> copied_runs("how to safely drain a node", "This page shows how to safely drain a node.")
        ['how to safely drain', 'to safely drain a', 'safely drain a node']
        >>> copied_runs("run kubectl drain on the node", "Use kubectl drain on the node first.")
        []
    """
    size = MAX_SHARED_RUN + 1
    body = [word.lower() for word in words(passage_text)]
    grams = {tuple(body[i : i + size]) for i in range(len(body) - size + 1)}
    codes = _code_words(passage_text)
    tokens = words(query)
    return [
        " ".join(window)
        for window in (tokens[i : i + size] for i in range(len(tokens) - size + 1))
        if tuple(word.lower() for word in window) in grams and not any(is_identifier(word, codes) for word in window)
    ]


def content_overlap(query: str, passage_text: str) -> float:
    """Share of the question's own words (not names, not function words) that the passage uses too.

    A question at 0.5 or below is worded the way a user who does not know the docs' terms would ask.
    """
    codes = _code_words(passage_text)
    body = {word.lower() for word in words(passage_text)}
    content = [w.lower() for w in words(query) if w.lower() not in _FUNCTION_WORDS and not is_identifier(w, codes)]
    return sum(word in body for word in content) / len(content) if content else 1.0


def opening(query: str) -> str:
    """The first three words, lowercased: a template shows up as one opening shared by many questions."""
    return " ".join(word.lower() for word in words(query)[:3])


def type_shares(questions: Sequence[TrainingQuestion]) -> dict[str, float]:
    counts = Counter(question.type for question in questions)
    return {kind: counts[kind] / len(questions) for kind in TYPES}


_FUNCTION_WORDS = frozenset(
    "a an the to of in on for and or is are be it my i me we our you your do does did can how what why when which "
    "with from by at as that this not no into get use using there way should would will if so".split()
)
