from pathlib import Path

import pytest

from ragrerank.config import resolve_settings
from ragrerank.errors import RagrerankError


def test_explicit_docs_folder_wins_over_environment(docs_root, monkeypatch, tmp_path):
    monkeypatch.setenv("DOCS_HOME_FOLDER", str(tmp_path))
    settings = resolve_settings(docs=docs_root)
    assert settings.docs_root == docs_root.resolve()
    assert settings.docs_origin == "--docs"
    assert settings.docs_dir.name == "docs"


@pytest.mark.parametrize("var", ["DOCS_HOME_FOLDER", "BASE_FOLDER"])
def test_environment_names_the_docs(docs_root, monkeypatch, var):
    for name in ("DOCS_HOME_FOLDER", "BASE_FOLDER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(var, str(docs_root))
    assert resolve_settings().docs_origin == var


def test_missing_docs_folder_names_the_input_and_the_fix(tmp_path):
    with pytest.raises(RagrerankError, match=r"does not exist.*DOCS_HOME_FOLDER"):
        resolve_settings(docs=tmp_path / "nowhere")


def test_docs_path_that_is_a_file_is_refused(tmp_path):
    file = tmp_path / "docs.txt"
    file.write_text("not a folder")
    with pytest.raises(RagrerankError, match="is a file"):
        resolve_settings(docs=file)


def test_folder_without_website_is_refused_with_the_layout_hint(tmp_path):
    with pytest.raises(RagrerankError, match="holds website/"):
        resolve_settings(docs=tmp_path)


def test_empty_docs_folder_is_refused(tmp_path):
    (tmp_path / "website" / "content" / "en" / "docs").mkdir(parents=True)
    with pytest.raises(RagrerankError, match="no .md files"):
        resolve_settings(docs=tmp_path)


def test_no_docs_anywhere_is_an_error_only_when_docs_are_needed(monkeypatch, tmp_path):
    for name in ("DOCS_HOME_FOLDER", "BASE_FOLDER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("ragrerank.config.DOCS_CLONE", tmp_path / "no-clone")
    settings = resolve_settings(home=tmp_path)
    assert settings.docs_root is None
    with pytest.raises(RagrerankError, match="make docs"):
        _ = settings.docs_dir


def test_artifacts_folder_from_environment(monkeypatch, tmp_path, docs_root):
    monkeypatch.setenv("RAGRERANK_HOME", str(tmp_path / "home"))
    assert resolve_settings(docs=docs_root).home == (tmp_path / "home").resolve()


def test_artifacts_folder_that_is_a_file_is_refused(tmp_path, docs_root):
    file = tmp_path / "artifacts"
    file.write_text("")
    with pytest.raises(RagrerankError, match="RAGRERANK_HOME"):
        resolve_settings(docs=docs_root, home=file)


def test_unreadable_artifacts_folder_is_refused(tmp_path, docs_root, monkeypatch):
    home = tmp_path / "locked"
    home.mkdir()
    monkeypatch.setattr("os.access", lambda path, mode: Path(path) != home)
    with pytest.raises(RagrerankError, match="not readable and writable"):
        resolve_settings(docs=docs_root, home=home)
