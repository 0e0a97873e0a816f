"""The student notebooks in notebooks/ are exactly what nbgrader generates from instructor/source/, and they
give nothing away: no solution code, no hidden test, no nbgrader marker, no output.

The checkers return lists of problems; the tests at the bottom feed them deliberately leaky notebooks to show
that they would catch a leak.
"""

import copy
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "instructor" / "source"
STUDENT_NOTEBOOKS = ROOT / "notebooks"
BLOCKS = {"SOLUTION": ("### BEGIN SOLUTION", "### END SOLUTION"),
          "HIDDEN TESTS": ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")}
MARKER_WORDS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")

ASSIGNMENTS = sorted(path.name for path in SOURCE.iterdir() if (path / f"{path.name}.ipynb").is_file())
SOLUTIONS = STUDENT_NOTEBOOKS / "solutions"


def source_notebook(name):
    return nbformat.read(SOURCE / name / f"{name}.ipynb", as_version=4)


def student_notebook(name):
    return nbformat.read(STUDENT_NOTEBOOKS / f"{name}.ipynb", as_version=4)


def secret_blocks(nb):
    """[(kind, text)] of every SOLUTION and HIDDEN TESTS block in the notebook's cells, markers excluded."""
    blocks = []
    for cell in nb.cells:
        inside, lines = None, []
        for line in cell.source.splitlines():
            stripped = line.strip()
            begins = [kind for kind, (begin, _) in BLOCKS.items() if stripped == begin]
            if begins and inside is None:
                inside, lines = begins[0], []
            elif inside is not None and stripped == BLOCKS[inside][1]:
                blocks.append((inside, "\n".join(lines)))
                inside = None
            elif inside is not None:
                lines.append(line)
        assert inside is None, f"unterminated {inside} block in cell:\n{cell.source}"
    return blocks


def public_lines(nb):
    """The stripped lines of the notebook outside any secret block (they may appear in the student copy)."""
    public = set()
    for cell in nb.cells:
        inside = None
        for line in cell.source.splitlines():
            stripped = line.strip()
            if inside is None and any(stripped == begin for begin, _ in BLOCKS.values()):
                inside = stripped
            elif inside is not None and any(stripped == end for _, end in BLOCKS.values()):
                inside = None
            elif inside is None:
                public.add(stripped)
    return public


def leaks(source, student):
    """What the student notebook gives away of the source notebook's solutions and hidden tests."""
    problems = []
    student_text = "\n".join(cell.source for cell in student.cells)
    student_lines = {line.strip() for line in student_text.splitlines()}
    public = public_lines(source)
    for kind, block in secret_blocks(source):
        body = "\n".join(line.strip() for line in block.splitlines() if line.strip())
        joined = "\n".join(line.strip() for line in student_text.splitlines() if line.strip())
        if body and body in joined:
            problems.append(f"a {kind} block appears whole: {body[:80]!r}")
        for line in block.splitlines():
            stripped = line.strip()
            if stripped and stripped not in public and stripped in student_lines:
                problems.append(f"a line of a {kind} block appears: {stripped!r}")
    for number, cell in enumerate(student.cells, start=1):
        for word in MARKER_WORDS:
            if word in cell.source:
                problems.append(f"cell {number} has the marker {word!r}")
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
            problems.append(f"cell {number} has outputs (they could show a solution's results)")
    return problems


def has_exercises(name):
    cells = source_notebook(name).cells
    return any(cell.get("metadata", {}).get("nbgrader", {}).get("solution") for cell in cells)


EXERCISE_NOTEBOOKS = [name for name in ASSIGNMENTS if has_exercises(name)]


def test_every_source_has_a_student_notebook_and_back():
    students = sorted(path.stem for path in STUDENT_NOTEBOOKS.glob("*.ipynb"))
    assert ASSIGNMENTS, "no instructor source notebooks"
    assert students == ASSIGNMENTS, "notebooks/ must hold exactly one generated notebook per instructor source"


def test_the_start_page_and_the_readme_list_every_notebook():
    """The start page's table of contents links every other notebook, and so does the README's notebooks table."""
    start_page = "\n".join(cell.source for cell in source_notebook("00_start_here").cells)
    readme = (ROOT / "README.md").read_text()
    others = [name for name in ASSIGNMENTS if name != "00_start_here"]
    assert [name for name in others if f"]({name}.ipynb)" not in start_page] == [], "missing on the start page"
    assert [name for name in others if f"](notebooks/{name}.ipynb)" not in readme] == [], "missing in the README"


def test_committed_student_notebooks_are_a_fresh_generation(tmp_path):
    """`make release` output, byte for byte: edit instructor/source/, then run `make release` and commit both."""
    subprocess.run([sys.executable, str(ROOT / "instructor" / "release.py"), "--out", str(tmp_path)], check=True,
                   cwd=ROOT, capture_output=True)
    generated = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*.ipynb"))
    assert generated == sorted([f"{name}.ipynb" for name in ASSIGNMENTS]
                               + [f"solutions/{name}.ipynb" for name in EXERCISE_NOTEBOOKS])
    committed = sorted(str(path.relative_to(STUDENT_NOTEBOOKS)) for path in STUDENT_NOTEBOOKS.rglob("*.ipynb")
                       if ".ipynb_checkpoints" not in path.parts)
    assert committed == generated, "notebooks/ holds notebooks `make release` does not write"
    stale = [name for name in generated
             if (tmp_path / name).read_bytes() != (STUDENT_NOTEBOOKS / name).read_bytes()]
    assert not stale, f"notebooks/ differs from a fresh `make release` for {stale}: run `make release` and commit"


@pytest.mark.parametrize("name", EXERCISE_NOTEBOOKS)
def test_worked_solutions_are_one_click_away(name):
    """notebooks/solutions/<nb>.ipynb is the source with every solution, without outputs or nbgrader markers,
    and the student notebook links to it under its Exercises heading."""
    solutions = nbformat.read(SOLUTIONS / f"{name}.ipynb", as_version=4)
    text = "\n".join(cell.source for cell in solutions.cells)
    for kind, block in secret_blocks(source_notebook(name)):
        assert all(line.strip() in text for line in block.splitlines()), f"a {kind} block is missing"
    assert not any(word in text for word in MARKER_WORDS)
    assert not any(cell.get("outputs") for cell in solutions.cells if cell.cell_type == "code")
    link = f"(solutions/{name}.ipynb)"
    assert any(link in cell.source and "## Exercises" in cell.source for cell in student_notebook(name).cells)


@pytest.mark.parametrize("name", EXERCISE_NOTEBOOKS)
def test_student_notebook_gives_nothing_away(name):
    source = source_notebook(name)
    assert secret_blocks(source), f"{name} has no solution or hidden-test block: the check would be vacuous"
    assert leaks(source, student_notebook(name)) == []


@pytest.mark.parametrize("name", EXERCISE_NOTEBOOKS)
def test_every_exercise_has_hidden_tests(name):
    """A grade cell without hidden tests is graded only by the check the learner already passed."""
    for cell in source_notebook(name).cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and cell.cell_type == "code":
            assert "### BEGIN HIDDEN TESTS" in cell.source, f"{meta['grade_id']} has no hidden tests"


# ---- the checker catches leaks --------------------------------------------------------------------------------

def _leaky_copies(name):
    """Copies of the student notebook, each leaking one thing from the source."""
    source, student = source_notebook(name), student_notebook(name)
    blocks = secret_blocks(source)
    solution = next(text for kind, text in blocks if kind == "SOLUTION")
    hidden = next((text for kind, text in blocks if kind == "HIDDEN TESTS"), None)
    copies = {}
    leaked = copy.deepcopy(student)
    leaked.cells.append(nbformat.v4.new_code_cell(solution))
    copies["solution block"] = leaked
    public = public_lines(source)
    line = next(line for line in solution.splitlines() if line.strip() and line.strip() not in public)
    leaked = copy.deepcopy(student)
    leaked.cells[0].source += "\n" + line
    copies["one solution line"] = leaked
    if hidden:
        leaked = copy.deepcopy(student)
        leaked.cells.append(nbformat.v4.new_code_cell(hidden))
        copies["hidden tests"] = leaked
    leaked = copy.deepcopy(student)
    leaked.cells.append(nbformat.v4.new_code_cell("### BEGIN SOLUTION\n### END SOLUTION"))
    copies["markers"] = leaked
    leaked = copy.deepcopy(student)
    code = next(cell for cell in leaked.cells if cell.cell_type == "code")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="42\n")]
    copies["outputs"] = leaked
    return copies


@pytest.mark.parametrize("name", EXERCISE_NOTEBOOKS)
def test_leak_checker_catches_each_kind_of_leak(name):
    source = source_notebook(name)
    for what, leaked in _leaky_copies(name).items():
        assert leaks(source, leaked), f"a student notebook with {what} added passed the leak check"


@pytest.mark.parametrize("name", EXERCISE_NOTEBOOKS)
def test_student_check_cells_let_run_all_go_on(name):
    student = student_notebook(name)
    checks = [cell for cell in student.cells if cell.metadata.get("nbgrader", {}).get("grade")
              and not cell.metadata["nbgrader"].get("solution")]
    assert checks and all("raises-exception" in cell.metadata.get("tags", []) for cell in checks)
    source = source_notebook(name)
    assert not any("raises-exception" in cell.metadata.get("tags", []) for cell in source.cells)
