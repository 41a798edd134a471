"""The notebook files, the series index and the top-level README agree; every notebook has its exercises."""

import json
import re

from ragrerank.config import PROJECT_ROOT
from ragrerank.series.workshop import KERNEL_NAME, series, solution_name

NOTEBOOKS = PROJECT_ROOT / "notebooks"
SOLUTIONS = NOTEBOOKS / "solutions"


def notebook_files() -> list[str]:
    return sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))


def cells(path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def text(cell: dict) -> str:
    return "".join(cell["source"])


def test_names_are_lowercase_and_numbered():
    names = notebook_files()
    assert names, "no notebooks found"
    for name in names:
        assert re.fullmatch(r"\d{2}_[a-z0-9_]+\.ipynb", name), name
    assert len({name[:2] for name in names}) == len(names), "two notebooks share a number"


def test_series_index_numbers_are_contiguous_and_list_exactly_the_notebooks():
    rows = series()
    assert [int(row.number) for row in rows] == list(range(1, len(rows) + 1))
    assert [row.file for row in rows if row.file != "(planned)"] == notebook_files()
    assert all(row.file.startswith(row.number + "_") for row in rows if row.file != "(planned)")


def test_top_level_readme_links_every_notebook():
    readme = (PROJECT_ROOT / "README.md").read_text()
    linked = sorted(set(re.findall(r"notebooks/(\d{2}_[a-z0-9_]+\.ipynb)", readme)))
    assert linked == notebook_files()


def test_every_notebook_opens_with_the_tutorial_header_and_setup_call():
    for name in notebook_files():
        notebook = cells(NOTEBOOKS / name)
        header = text(notebook[0])
        for field in ("Level", "Time to complete", "Prerequisites", "Goal"):
            assert field in header, f"{name}: first cell lacks '{field}'"
        assert_setup_first_and_no_pip(name, notebook)


def test_every_notebook_ends_with_exercises_that_link_their_solutions():
    for name in notebook_files():
        sections = [line for cell in cells(NOTEBOOKS / name) if cell["cell_type"] == "markdown"
                    for line in text(cell).splitlines() if line.startswith("## ")]
        assert "## Exercises" in sections, f"{name}: no '## Exercises' section"
        assert sections[-2:] == ["## Exercises", "## What's next"], f"{name}: exercises must come last, before What's next"
        exercises = next(text(cell) for cell in cells(NOTEBOOKS / name) if text(cell).startswith("## Exercises"))
        assert f"(solutions/{solution_name(name)})" in exercises, f"{name}: the exercises do not link their solutions"


def test_every_notebook_has_a_solutions_notebook_and_every_solution_a_notebook():
    expected = sorted(solution_name(name) for name in notebook_files())
    assert sorted(path.name for path in SOLUTIONS.glob("*.ipynb")) == expected


def test_solutions_link_back_and_call_setup():
    for name in notebook_files():
        notebook = cells(SOLUTIONS / solution_name(name))
        assert text(notebook[0]).startswith("# Solutions: "), f"{solution_name(name)}: title must start '# Solutions: '"
        assert f"(../{name})" in text(notebook[0]), f"{solution_name(name)}: first cell must link ../{name}"
        assert_setup_first_and_no_pip(solution_name(name), notebook)


def test_every_notebook_runs_on_the_project_kernel():
    for path in [*NOTEBOOKS.glob("*.ipynb"), *SOLUTIONS.glob("*.ipynb")]:
        kernelspec = json.loads(path.read_text())["metadata"]["kernelspec"]
        assert kernelspec["name"] == KERNEL_NAME, f"{path.name}: kernel {kernelspec['name']!r}, not {KERNEL_NAME!r}"


def assert_setup_first_and_no_pip(name: str, notebook: list[dict]) -> None:
    code = next(text(cell) for cell in notebook if cell["cell_type"] == "code")
    assert "ragrerank.series.setup(" in code, f"{name}: first code cell must call ragrerank.series.setup"
    assert not any("!pip" in text(cell) for cell in notebook), f"{name}: no !pip install cells"
