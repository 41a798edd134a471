"""The notebook files, the series index and the top-level README agree."""

import json
import re

from ragrerank.config import PROJECT_ROOT

NOTEBOOKS = PROJECT_ROOT / "notebooks"
ROW = re.compile(
    r"^\|\s*(\d{2})\s*\|\s*(\S+\.ipynb|\(planned\))\s*\|\s*([^|]+?)\s*\|\s*(beginner|intermediate|advanced)\s*\|\s*(\d+|-)\s*\|$"
)


def notebook_files() -> list[str]:
    return sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))


def index_rows() -> list[tuple[str, str]]:
    rows = [ROW.match(line.strip()) for line in (NOTEBOOKS / "README.md").read_text().splitlines()]
    return [(match[1], match[2]) for match in rows if match]


def test_names_are_lowercase_and_numbered():
    names = notebook_files()
    assert names, "no notebooks found"
    for name in names:
        assert re.fullmatch(r"\d{2}_[a-z0-9_]+\.ipynb", name), name
    assert len({name[:2] for name in names}) == len(names), "two notebooks share a number"


def test_series_index_numbers_are_contiguous_and_list_exactly_the_notebooks():
    rows = index_rows()
    numbers = [int(number) for number, _ in rows]
    assert numbers == list(range(1, len(rows) + 1)), numbers
    assert [file for _, file in rows if file != "(planned)"] == notebook_files()
    assert all(file.startswith(number + "_") for number, file in rows if file != "(planned)")


def test_top_level_readme_links_every_notebook():
    readme = (PROJECT_ROOT / "README.md").read_text()
    linked = sorted(set(re.findall(r"notebooks/(\d{2}_[a-z0-9_]+\.ipynb)", readme)))
    assert linked == notebook_files()


def test_every_notebook_opens_with_the_tutorial_header_and_setup_call():
    for name in notebook_files():
        cells = json.loads((NOTEBOOKS / name).read_text())["cells"]
        header = "".join(cells[0]["source"])
        for field in ("Level", "Time to complete", "Prerequisites", "Goal"):
            assert field in header, f"{name}: first cell lacks '{field}'"
        code = next("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
        assert "ragrerank.notebook.setup(" in code, f"{name}: first code cell must call ragrerank.notebook.setup"
        assert not any("!pip" in "".join(cell["source"]) for cell in cells), f"{name}: no !pip install cells"
