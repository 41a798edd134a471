"""The workshop check turns every unready part of a laptop red with its fix; the agenda comes from a report."""

import json
from pathlib import Path

import pytest

from ragrerank.cli import main
from ragrerank.config import HOW_TO_GET_DOCS, PROJECT_ROOT, Settings, resolve_settings
from ragrerank.corpus import build_passages, load_passages, write_passages
from ragrerank.errors import RagrerankError
from ragrerank.retrieval import build_index
from ragrerank.series.workshop import PREPARE, Tutorial, agenda, update_agenda, workshop_checks

FIXTURE_DOCS = PROJECT_ROOT / "tests" / "fixtures" / "docs"


def by_name(settings: Settings, **options) -> dict:
    return {check.name: check for check in workshop_checks(settings, **options)}


@pytest.fixture()
def built(tmp_path: Path, bi_encoder) -> Settings:
    """The fixture docs with their passages and index built, as `make workshop-prepare` leaves them."""
    settings = resolve_settings(docs=FIXTURE_DOCS, home=tmp_path / "artifacts")
    build_passages(settings)
    build_index(settings, bi_encoder)
    return settings


def test_a_prepared_laptop_is_green_where_the_project_decides(built):
    checks = by_name(built)
    for name in ("docs", "bi-encoder", "cross-encoder", "llm", "passages", "index", "kernel"):
        assert checks[name].ok, checks[name]


def test_missing_docs_and_artifacts_are_red_with_their_fix(tmp_path):
    checks = by_name(Settings(docs_root=None, home=tmp_path))
    assert not checks["docs"].ok and checks["docs"].fix == HOW_TO_GET_DOCS
    for name in ("passages", "index"):
        assert checks[name].status == "not built" and checks[name].fix == PREPARE


def test_passages_from_other_docs_are_stale(built, docs_root):
    checks = by_name(resolve_settings(docs=docs_root, home=built.home))  # the real corpus, fixture passages
    assert checks["passages"].status == "stale" and checks["passages"].fix == PREPARE
    assert checks["index"].ok  # the index still matches the passages it was built from


def test_an_index_of_other_passages_is_stale(built):
    write_passages(built.passages_path, load_passages(built.passages_path)[1:])
    checks = by_name(built)
    assert checks["passages"].status == "stale"
    assert checks["index"].status == "stale" and "changed since the index" in checks["index"].detail


def test_a_missing_or_foreign_kernel_is_red_with_the_install_command(built, tmp_path, monkeypatch):
    missing = by_name(built, kernel="no-such-kernel")["kernel"]
    assert missing.status == "missing" and "ipykernel install" in missing.fix
    spec = tmp_path / "jupyter" / "kernels" / "foreign"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": ["python", "-m", "ipykernel_launcher"], "display_name": "x", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    foreign = by_name(built, kernel="foreign")["kernel"]
    assert foreign.status == "stale" and "not this environment's" in foreign.detail


def test_low_memory_and_a_model_that_is_only_a_pointer_are_red(built, tmp_path):
    assert by_name(built, min_memory_gib=1e6)["memory"].status == "low"
    model = tmp_path / "lfs-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 45439210\n")
    check = by_name(built.with_models(cross_encoder=str(model)))["cross-encoder"]
    assert not check.ok and "not a safetensors file" in check.detail and "git checkout" in check.fix


def test_doctor_workshop_prints_marks_and_fixes_and_exits_1_when_red(tmp_path, capsys):
    code = main(["--docs", str(FIXTURE_DOCS), "--home", str(tmp_path), "doctor", "--workshop"])
    out = capsys.readouterr().out
    assert code == 1
    assert "✓ docs" in out and "✗ passages" in out and f"fix: {PREPARE}" in out
    assert "\033[" not in out  # colours only on a terminal


def test_agenda_sums_each_notebook_and_its_solutions_from_the_report(tmp_path):
    report = tmp_path / "report.xml"
    report.write_text(
        '<testsuites><testsuite hostname="ci" timestamp="2026-01-02T03:04:05">'
        '<testcase classname="notebooks.01_a.ipynb" name="Cell 0" time="50" />'
        '<testcase classname="notebooks.01_a.ipynb" name="Cell 1" time="40" />'
        '<testcase classname="notebooks.solutions.01_a_solutions.ipynb" name="Cell 0" time="30" />'
        '<testcase classname="tests.test_x" name="test_y" time="9" />'
        "</testsuite></testsuites>"
    )
    table = agenda(report, [Tutorial("01", "01_a.ipynb", "A", "beginner", 10), Tutorial("02", "(planned)", "B", "advanced", None)])
    assert "`ci` on 2026-01-02: 2.0 min" in table
    assert "| 0:00 | 01 | A | 10 min | 10 min | 90 s | 30 s | 25 min |" in table  # 10 + 10 + 2 min, up to 25
    assert "| 0:25 | | end |" in table and "| B |" not in table


def test_update_agenda_needs_the_report_and_the_markers(tmp_path):
    guide = tmp_path / "guide.md"
    guide.write_text("no markers here")
    with pytest.raises(RagrerankError, match="run `make test` first"):
        update_agenda(tmp_path / "missing.xml", guide)
    (tmp_path / "report.xml").write_text("<testsuites><testsuite /></testsuites>")
    with pytest.raises(RagrerankError, match="lacks the markers"):
        update_agenda(tmp_path / "report.xml", guide)
