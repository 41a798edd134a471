"""Checks for the project's own question set, data/eval/k8s_questions.jsonl.

The schema checks run everywhere; the checks that read the Kubernetes docs (gold files exist,
evidence is quoted verbatim from them) skip with the reason when the docs are not on this machine.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
QUESTIONS = REPO / "data" / "eval" / "k8s_questions.jsonl"
README = QUESTIONS.with_name("README.md")
DEV_SET = REPO.parent / "shared" / "eval" / "dev.jsonl"
DOCS_SUBDIR = Path("website/content/en/docs")

FIELDS = {"id": str, "query": str, "type": str, "gold_files": list, "evidence": list, "notes": str}
IN_SCOPE_TYPES = {"definition", "howto", "troubleshoot", "comparison", "config"}
MIN_IN_SCOPE, MIN_OOD = 150, 25
EVIDENCE_WORDS = (6, 30)  # short enough to point at one answer, long enough not to match by chance

_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")  # [text](url) -> text
_EMPHASIS_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_+|_+(?![A-Za-z0-9])")  # _word_ but not snake_case


def normalise(text: str) -> str:
    """Collapse whitespace and drop the markdown marks a quote may or may not keep.

    Example:
        >>> normalise("a `kubectl`\\n   **call** _here_ on my_var")
        'a kubectl call here on my_var'
    """
    text = text.replace("`", "").replace("*", "")
    text = _EMPHASIS_UNDERSCORE.sub("", text)
    return re.sub(r"\s+", " ", text).strip()


def docs_dir() -> Path:
    """Where the docs should be: $DOCS_HOME_FOLDER/website/... else ../shared/corpora/k8s next to the repo."""
    home = os.environ.get("DOCS_HOME_FOLDER", "").strip()
    root = Path(home).expanduser() if home else REPO.parent / "shared" / "corpora" / "k8s"
    return root / DOCS_SUBDIR


@cache
def body_variants(path: Path) -> tuple[str, str]:
    """A doc's body without its front matter, normalised as is and with links reduced to their text."""
    text = path.read_text(encoding="utf-8")
    if text.startswith("---"):
        end = text.find("\n---", 3)
        text = text[end + 4 :] if end != -1 else text
    return normalise(text), normalise(_LINK.sub(r"\1", text))


def load(path: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise AssertionError(f"{path.name} line {number} is not valid JSON: {error}") from error
    return rows


@pytest.fixture(scope="module")
def questions() -> list[dict]:
    return load(QUESTIONS)


@pytest.fixture(scope="module")
def docs() -> Path:
    found = docs_dir()
    if not found.is_dir():
        pytest.skip(
            f"Kubernetes docs not found at {found}: set DOCS_HOME_FOLDER to the folder holding "
            f"{DOCS_SUBDIR.parts[0]}/ (here: ../shared/corpora/k8s)"
        )
    return found


def test_fields_and_types(questions):
    for q in questions:
        assert set(q) == set(FIELDS), f"{q.get('id')}: fields {sorted(q)}, expected {sorted(FIELDS)}"
        for name, kind in FIELDS.items():
            assert isinstance(q[name], kind), f"{q['id']}: {name} is {type(q[name]).__name__}, expected {kind.__name__}"
        assert all(isinstance(x, str) and x for x in q["gold_files"] + q["evidence"]), q["id"]
        assert q["query"].strip(), f"{q['id']}: empty query"
        assert q["type"] in IN_SCOPE_TYPES | {"ood"}, f"{q['id']}: unknown type {q['type']!r}"


def test_ids_unique_and_numbered(questions):
    ids = [q["id"] for q in questions]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    assert ids == [f"rr-{n:03d}" for n in range(1, len(ids) + 1)], "ids must run rr-001, rr-002, ... in file order"


def test_counts(questions):
    types = Counter(q["type"] for q in questions)
    assert types["ood"] >= MIN_OOD, types
    assert sum(n for t, n in types.items() if t != "ood") >= MIN_IN_SCOPE, types


def test_readme_counts_match_the_file(questions):
    """The README states the count per type; keep it honest when questions are added or removed."""
    stated = dict(re.findall(r"^\| \**(\w+)\** \| \**(\d+)\** \|$", README.read_text(encoding="utf-8"), re.M))
    actual = Counter(q["type"] for q in questions)
    actual["total"] = len(questions)
    assert {t: int(n) for t, n in stated.items()} == dict(actual), f"README counts {stated}, file has {dict(actual)}"


def test_gold_and_evidence_shape(questions):
    low, high = EVIDENCE_WORDS
    problems = []
    for q in questions:
        gold, evidence = q["gold_files"], q["evidence"]
        if q["type"] == "ood":
            if gold or evidence:
                problems.append(f"{q['id']}: ood must have no gold files and no evidence")
            continue
        if not (1 <= len(gold) <= 3 and len(set(gold)) == len(gold)):
            problems.append(f"{q['id']}: needs 1-3 distinct gold files, has {gold}")
        if not 1 <= len(evidence) <= 3:
            problems.append(f"{q['id']}: needs 1-3 evidence strings, has {len(evidence)}")
        problems += [f"{q['id']}: bad gold path {p!r}" for p in gold if not p.endswith(".md") or p.startswith("/")]
        for quote in evidence:
            words = len(normalise(quote).split())
            if not low <= words <= high:
                problems.append(f"{q['id']}: evidence has {words} words, expected {low}-{high}: {quote!r}")
            if "{{" in quote:
                problems.append(f"{q['id']}: evidence quotes a Hugo shortcode: {quote!r}")
    assert not problems, "\n".join(problems)


def test_queries_unique(questions):
    seen = Counter(normalise(q["query"]).lower() for q in questions)
    assert not [query for query, n in seen.items() if n > 1]


def test_no_query_taken_from_dev_set(questions):
    if not DEV_SET.is_file():
        pytest.skip(f"no dev set at {DEV_SET} to compare against")
    dev = {normalise(q["query"]).lower() for q in load(DEV_SET)}
    clashes = [q["id"] for q in questions if normalise(q["query"]).lower() in dev]
    assert not clashes, f"queries identical to dev-set queries: {clashes}"


def test_gold_files_exist(questions, docs):
    missing = [(q["id"], p) for q in questions for p in q["gold_files"] if not (docs / p).is_file()]
    assert not missing, f"gold files not in {docs}: {missing}"


def test_evidence_is_quoted_from_a_gold_file(questions, docs):
    unquoted = []
    for q in questions:
        bodies = [v for p in q["gold_files"] if (docs / p).is_file() for v in body_variants(docs / p)]
        unquoted += [(q["id"], e) for e in q["evidence"] if not any(normalise(e) in body for body in bodies)]
    assert not unquoted, f"evidence not found verbatim in its gold files: {unquoted}"


def test_evidence_check_rejects_made_up_text(docs):
    """The matcher itself: a real sentence passes, the same sentence with one word changed does not."""
    page = docs / "concepts/workloads/controllers/job.md"
    real = "To do so, set `.spec.backoffLimit` to specify the number of retries before considering a Job as failed."
    fake = real.replace("retries", "restarts")
    assert any(normalise(real) in body for body in body_variants(page))
    assert not any(normalise(fake) in body for body in body_variants(page))
