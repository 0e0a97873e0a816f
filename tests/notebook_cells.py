"""Cells of an instructor notebook, for tests that re-run them: a claim cell by its tag after the import cell
(to inject a known-wrong input and see the claim's assert fail), an exercise's solution by its grade_id."""

import json
from pathlib import Path

SOURCE = Path(__file__).resolve().parent.parent / "instructor" / "source"


def notebook_path(name):
    return SOURCE / name / f"{name}.ipynb"


def code_cells(name):
    return [cell for cell in json.loads(notebook_path(name).read_text())["cells"] if cell["cell_type"] == "code"]


def tagged_sources(name):
    """tag -> source of the code cell carrying it."""
    return {tag: "".join(cell["source"]) for cell in code_cells(name) for tag in cell["metadata"].get("tags", [])}


def run_tagged_cell(name, tag):
    """Run the notebook's import cell (its first code cell), then the cell tagged ``tag``; return the names."""
    namespace = {}
    exec(compile("".join(code_cells(name)[0]["source"]), f"{name}: import cell", "exec"), namespace)
    exec(compile(tagged_sources(name)[tag], f"{name}: {tag}", "exec"), namespace)
    return namespace


def exercise_solution(name, grade_id, namespace=None):
    """The function an exercise's solution cell defines (the cell's nbgrader grade_id names it)."""
    source = next("".join(cell["source"]) for cell in code_cells(name)
                  if cell["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)
    namespace = dict(namespace or {})
    exec(compile(source, f"{name}: {grade_id}", "exec"), namespace)
    return namespace[grade_id]
