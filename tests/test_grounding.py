"""The grounding check: which names an answer gives, and which of them its cited passages do not contain.

The fixture holds real SmolLM2-135M answers (``ragrerank eval --answers --generate``'s model) to the
project's questions, with the ids of the passages each one was given; the invented names were read
by hand against those passages.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ragrerank.answer import answer_names, check_grounding
from ragrerank.types import Passage

FIXTURE = Path(__file__).parent / "fixtures" / "generated_answers.jsonl"


def passage(text: str) -> Passage:
    return Passage("p1", "tasks/p.md", "P", ("P",), "https://kubernetes.io/docs/p/", text, len(text.split()))


CRONJOB = passage(
    "CronJob > Time zones\n\nYou can specify a time zone for a CronJob by setting `.spec.timeZone` to the name of a "
    'valid time zone. For example, setting `.spec.timeZone: "Etc/UTC"` instructs Kubernetes to interpret the schedule '
    "relative to Coordinated Universal Time. See https://www.iana.org/time-zones for the names.\n\n"
    "```shell\nkubectl get cronjobs\n```"
)


def test_names_are_code_commands_flags_fields_kinds_and_urls_each_once():
    text = (
        "Set `.spec.timeZone` on the CronJobs, then run kubectl get cronjobs --watch. See https://example.com/tz.\n"
        "```shell\n$ kubectl apply -f cron.yaml\n```\nThe podManagementPolicy and max_workers fields, e.g. spec.schedule."
    )
    assert answer_names(text) == (
        "kubectl apply -f cron.yaml", ".spec.timeZone", "https://example.com/tz", "kubectl get",
        "--watch", "podManagementPolicy", "max_workers", "spec.schedule", "CronJobs",
    )


def test_prose_without_names_has_nothing_to_check():
    assert answer_names("The documentation passages do not answer it.") == ()


def test_grounded_names_pass_with_marks_spacing_and_plurals_ignored():
    text = 'Set .spec.timeZone to "Etc/UTC" on your CronJobs [1]:\n```\nkubectl   get cronjobs\n```\nhttps://www.iana.org/time-zones'
    check = check_grounding(text, [CRONJOB])
    assert check.passed and ".spec.timeZone" in check.names and "CronJobs" in check.names
    assert check.cited == (1,) and "passed" in check.summary()


def test_invented_names_fail_and_are_listed():
    text = "Use `CronJob(timezone='Europe/Berlin')` or kubectl cronjob --tz Europe/Berlin with spec.tz [1]."
    check = check_grounding(text, [CRONJOB])
    assert not check.passed
    assert check.invented == ("CronJob(timezone='Europe/Berlin')", "kubectl cronjob", "--tz", "spec.tz")
    assert "`--tz`" in check.summary()


@pytest.mark.parametrize("text", ["I'm ready to assist! What's your next question?", "A CronJob runs on a schedule [4]."])
def test_an_answer_that_cites_no_given_passage_fails(text):
    check = check_grounding(text, [CRONJOB])
    assert not check.invented and not check.passed
    assert "cites none of the passages" in check.summary()


def fixture_cases() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def passages_by_id(settings) -> dict[str, Passage]:
    from ragrerank.io import read_jsonl

    if not settings.passages_path.is_file():
        pytest.skip(f"no passages in {settings.passages_path}: run `ragrerank passages` (make artifacts)")
    return {record["id"]: Passage.from_json(record) for record in read_jsonl(settings.passages_path)}


@pytest.mark.parametrize("case", fixture_cases(), ids=lambda case: case["question"][:40])
def test_real_llm_answers_are_judged_as_read_by_hand(case, passages_by_id):
    missing = [pid for pid in case["passages"] if pid not in passages_by_id]
    if missing:
        pytest.fail(f"passages {missing} are gone from passages.jsonl: regenerate {FIXTURE.name} (docs or chunker changed)")
    check = check_grounding(case["output"], [passages_by_id[pid] for pid in case["passages"]])
    assert list(check.invented) == case["invented"]
    assert check.passed == case["passed"]
