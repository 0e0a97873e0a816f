"""Every student notebook (notebooks/, exercises blank) runs headless from top to bottom as a learner's Run All
would, and the only errors are the exercise checks saying "not done yet".

Widget cells that race the learner's unfinished rule, and cells that use an exercise's function (the cell after
exercise 1.2), must cope with the exercise not being done. Each notebook also carries kernelspec metadata:
without it JupyterLab opens a blocking "select kernel" dialog.
"""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
STUDENT_NOTEBOOKS = ROOT / "notebooks"
CELL_TIMEOUT = 120  # seconds; finite, so that a hanging cell fails the test instead of hanging CI
NOTEBOOKS = sorted(STUDENT_NOTEBOOKS.glob("*.ipynb"))


def is_check_cell(cell):
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("grade"))


def errors(cell):
    return [output for output in cell.get("outputs", []) if output.output_type == "error"]


def test_there_are_student_notebooks():
    assert NOTEBOOKS, "notebooks/ has no student notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_notebook_has_kernelspec(path):
    kernelspec = nbformat.read(path, as_version=4).metadata.get("kernelspec", {})
    assert kernelspec.get("name") == "python3", f"{path.name}: kernelspec {kernelspec}"
    assert kernelspec.get("display_name") and kernelspec.get("language") == "python"


def unexpected_errors(nb):
    """The problems in an executed student notebook: errors outside the check cells, check cells without the
    one "not done yet" ExerciseError, or no check cell at all."""
    problems, checks = [], 0
    for number, cell in enumerate(nb.cells, start=1):
        if cell.cell_type != "code":
            continue
        found = errors(cell)
        if not is_check_cell(cell):
            problems += [f"cell {number} ({_first_line(cell)}): {e.ename}: {e.evalue}" for e in found]
            continue
        checks += 1
        name = cell.metadata.nbgrader.grade_id
        if len(found) != 1:
            problems.append(f"check cell {name}: expected one error (not done yet), got {len(found)}")
        elif found[0].ename != "ExerciseError" or "not done yet" not in found[0].evalue:
            problems.append(f"check cell {name}: {found[0].ename}: {found[0].evalue}")
    if not checks and any(cell.get("metadata", {}).get("nbgrader", {}).get("solution") for cell in nb.cells):
        problems.append("exercises without check cells")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_only_the_exercise_checks_fail_and_they_say_not_done_yet(path):
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(STUDENT_NOTEBOOKS)}}).execute()
    assert unexpected_errors(nb) == []


def _first_line(cell):
    return cell.source.strip().splitlines()[0][:60] if cell.source.strip() else "empty"


# ---- the checker catches what it should ------------------------------------------------------------------------

def _executed(*cells):
    """A notebook as if executed: (source, is_check, error or None) per code cell."""
    nb = nbformat.v4.new_notebook()
    for source, check, error in cells:
        cell = nbformat.v4.new_code_cell(source)
        if check == "solution":  # an exercise's own cell
            cell.metadata["nbgrader"] = {"grade": False, "solution": True, "grade_id": f"f{len(nb.cells)}"}
        elif check:
            cell.metadata["nbgrader"] = {"grade": True, "grade_id": f"check_{len(nb.cells)}", "points": 1}
        if error:
            cell.outputs = [nbformat.v4.new_output("error", ename=error[0], evalue=error[1], traceback=[])]
        nb.cells.append(cell)
    return nb


NOT_DONE = ("ExerciseError", "Exercise 2.1 (sgd_momentum): not done yet: write the body of sgd_momentum")


def test_checker_accepts_a_blank_notebook():
    assert unexpected_errors(_executed(("import numpy", False, None), ("check()", True, NOT_DONE))) == []
    assert unexpected_errors(_executed(("import numpy", False, None))) == []  # a notebook without exercises


@pytest.mark.parametrize("cells", [
    [("widget(rule)", False, ("NotImplementedError", "")), ("check()", True, NOT_DONE)],
    [("check()", True, ("ExerciseError", "Exercise 2.1 (sgd_momentum): at step 1 next_x is 1"))],
    [("check()", True, ("NameError", "name 'sgd_momentum' is not defined"))],
    [("check()", True, None)],
    [("import numpy", False, None), ("def f():\n    raise NotImplementedError()", "solution", None)],
], ids=["error outside a check", "wrong diagnosis", "other error", "check passes blank", "exercise without check"])
def test_checker_rejects(cells):
    assert unexpected_errors(_executed(*cells))
