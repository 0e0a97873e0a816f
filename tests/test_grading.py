"""instructor/grade.py grades a corpus of synthetic submissions (tests/grading_corpus.py) in one run: right,
wrong but passing the visible check, raising, looping forever (in a function and at top level), killing the
kernel, a syntax error, blank, with tampered test cells, and not a notebook at all. Each gets its expected
per-exercise scores, the other submissions are graded regardless, the cell timeout bounds the run, and the
submissions folder is left exactly as it was.
"""

import csv
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pytest
from grading_corpus import EXPECTED, HARDCODED_RHO, NB1, NB2, Answer, find_cell, write_corpus

ROOT = Path(__file__).resolve().parent.parent
INSTRUCTOR = ROOT / "instructor"
sys.path.insert(0, str(INSTRUCTOR))
import grade  # noqa: E402

# Short enough that the three infinite loops (two timeouts in loop_in_function, one in loop_top_level) stay
# cheap, long enough for the slowest real cell: the imports, 3 s alone, 7 s next to two busy loops on 2 cores.
CELL_TIMEOUT = 15


def snapshot(folder):
    """Every file and folder under ``folder``, with a hash of each file's bytes and its mode."""
    state = {}
    for directory, folders, files in os.walk(folder):
        for name in folders:
            state[os.path.relpath(os.path.join(directory, name), folder)] = "folder"
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                state[os.path.relpath(path, folder)] = (hashlib.sha256(handle.read()).hexdigest(),
                                                       os.stat(path).st_mode)
    return state


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    submissions = write_corpus(tmp_path_factory.mktemp("submissions"))
    before = snapshot(submissions)
    out = tmp_path_factory.mktemp("graded")
    started = time.monotonic()
    run = subprocess.run([sys.executable, str(INSTRUCTOR / "grade.py"), str(submissions), "--out", str(out),
                          "--timeout", str(CELL_TIMEOUT)], cwd=ROOT, capture_output=True, text=True, timeout=280)
    seconds = time.monotonic() - started
    print(f"grading the corpus took {seconds:.1f} s\n{run.stdout}\n{run.stderr}")
    with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle)) if run.returncode == 0 else []
    return SimpleNamespace(run=run, seconds=seconds, out=out, before=before, after=snapshot(submissions),
                           rows={(row["student"], row["notebook"]): row for row in rows})


def test_grading_command_succeeds(graded):
    assert graded.run.returncode == 0, graded.run.stdout + graded.run.stderr


def test_submissions_folder_is_untouched(graded):
    assert graded.after == graded.before


def test_one_row_per_submission(graded):
    assert sorted(graded.rows) == sorted(EXPECTED)


@pytest.mark.parametrize("key", sorted(EXPECTED), ids=["/".join(key) for key in sorted(EXPECTED)])
def test_scores_per_exercise(graded, key):
    row, expected = graded.rows[key], EXPECTED[key]
    columns = dict(grade.grade_cells(key[1]))
    assert float(row["max"]) == sum(columns.values())
    if isinstance(expected, str):
        assert row["error"].startswith(expected), row
        scores = {cell: 0 for cell in columns}
    else:
        assert row["error"] == "", row
        scores = expected
    assert {cell: float(row[cell]) for cell in columns} == scores, row
    assert float(row["total"]) == sum(scores.values())


def test_csv_columns(graded):
    header = next(csv.reader(open(graded.out / "grades.csv", encoding="utf-8")))
    cells = [cell for name in grade.assignments() for cell, _ in grade.grade_cells(name)]
    assert header == ["student", "notebook", *cells, "total", "max", "error", "notes"]
    # a notebook's row leaves the other notebooks' columns empty
    row = graded.rows[("correct", NB2)]
    others = set(cells) - {cell for cell, _ in grade.grade_cells(NB2)}
    assert others and all(row[cell] == "" for cell in others)


def test_feedback_page_for_every_row(graded):
    for student, notebook in graded.rows:
        page = graded.out / "feedback" / student / f"{notebook}.html"
        assert page.is_file() and page.stat().st_size > 0, page
    correct = (graded.out / "feedback" / "correct" / f"{NB2}.html").read_text(encoding="utf-8")
    assert "check_sgd_momentum" in correct and "4.0" in correct  # nbgrader's page, with the score
    assert "not graded" in (graded.out / "feedback" / "malformed" / f"{NB2}.html").read_text(encoding="utf-8")


def test_notes_say_what_happened(graded):
    notes = {key: row["notes"] for key, row in graded.rows.items()}
    assert "timed out after" in notes[("loop_in_function", NB2)]
    assert "check_sgd_momentum" in notes[("loop_in_function", NB2)]
    assert "timed out after" in notes[("loop_top_level", NB1)]
    assert "the kernel died in nesterov" in notes[("kernel_killed", NB2)]
    tampered = notes[("tampered_and_raises", NB2)]
    assert "deleted, restored for grading: check_nesterov" in tampered
    assert "changed, graded with the originals: check_sgd_momentum" in tampered
    # no timeout, no dead kernel where there was none: their zeros come from the checks
    for key in [("correct", NB1), ("correct", NB2), ("hardcoded_rho_and_syntax_error", NB2), ("blank", NB1)]:
        assert notes[key] == "", key


def test_hardcoded_rho_passes_the_visible_check_only():
    """The case the hidden tests are for: right with the default rho, wrong with any other."""
    from course_lib import checks

    source = Answer(NB2).edit("sgd_momentum", *HARDCODED_RHO)
    namespace = {"np": np}
    exec(find_cell(source.nb, "sgd_momentum")[1].source, namespace)
    checks.check_rule("sgd_momentum", namespace["sgd_momentum"], quiet=True)
    with pytest.raises(checks.ExerciseError):
        checks.check_rule("sgd_momentum", namespace["sgd_momentum"], configs=[{"rho": 0.5}], quiet=True)


def test_cell_timeout_bounds_the_run(graded):
    """Three cells loop forever; the run still ends, in about the time of the real work plus three timeouts."""
    assert graded.seconds < 280


# ---- the command's parts, without nbgrader ---------------------------------------------------------------------

def test_unreadable_files_are_named(tmp_path):
    good = tmp_path / "good.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), good)
    assert grade.unreadable(good) is None
    for name, data in {"text": b"not JSON", "empty": b"", "binary": b"\xff\xfe\x00", "json": b"[1, 2]"}.items():
        path = tmp_path / f"{name}.ipynb"
        path.write_bytes(data)
        assert grade.unreadable(path).startswith("malformed notebook"), name


def test_discover_takes_known_notebooks_and_names_the_rest(tmp_path):
    known = grade.assignments()
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / f"{known[0]}.ipynb").write_text("{}")
    (tmp_path / "ann" / "notes.txt").write_text("")
    (tmp_path / "ann" / "typo_name.ipynb").write_text("{}")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / f"{known[0]}.ipynb").write_text("{}")
    (tmp_path / "stray.ipynb").write_text("{}")
    found, unknown = grade.discover(tmp_path, known)
    assert [(student, name) for student, name, _ in found] == [("ann", known[0])]
    assert [(r.student, r.notebook) for r in unknown] == [("ann", "typo_name")]
    assert "not a notebook of this course" in unknown[0].error


def test_output_inside_the_submissions_is_refused(tmp_path):
    (tmp_path / "ann").mkdir()
    with pytest.raises(SystemExit):
        grade.grade(tmp_path, tmp_path / "graded")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ann"]


# ---- SurvivingExecute: a dead or unresponsive kernel ends the run, and the cells after it score 0 --------------

def _run_surviving(*sources, timeout=2):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources] + [nbformat.v4.new_markdown_cell("end")]
    executor = grade.SurvivingExecute(timeout=timeout, kernel_name="python3")
    nb, _ = executor.preprocess(nb, {"metadata": {"path": str(ROOT)}})
    return [[(o.ename, o.evalue) for o in cell.get("outputs", []) if o.output_type == "error"]
            for cell in nb.cells]


def test_surviving_execute_after_the_kernel_dies():
    errors = _run_surviving("x = 1", "import os\nos._exit(1)", "y = 2")
    assert errors[0] == []
    assert errors[1] == [("DeadKernelError", grade.KERNEL_DIED)]
    assert errors[2] == [("CellNotRun", "not run: the kernel died in cell 2")]
    assert errors[3] == []  # markdown


def test_surviving_execute_after_a_loop_that_ignores_the_interrupt():
    errors = _run_surviving("x = 1", "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                                     "while True:\n    pass", "y = 2")
    assert errors[1] == [("CellTimeoutError", grade.UNRESPONSIVE)]
    assert errors[2] == [("CellNotRun", "not run: the kernel stopped answering in cell 2")]


def test_surviving_execute_after_an_interrupted_loop_goes_on():
    errors = _run_surviving("while True:\n    pass", "y = 2")
    assert [name for name, _ in errors[0]] == ["KeyboardInterrupt", "CellTimeoutError"]
    assert errors[1] == []


def test_describe_run_names_what_stopped(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("a"), nbformat.v4.new_code_cell("b"), nbformat.v4.new_code_cell("c")]
    nb.cells[1].metadata["nbgrader"] = {"grade": True, "grade_id": "check_b", "points": 1}
    nb.cells[0].outputs = [nbformat.v4.new_output("error", ename="CellTimeoutError", evalue="", traceback=[])]
    nb.cells[1].outputs = [nbformat.v4.new_output("error", ename="DeadKernelError", evalue=grade.KERNEL_DIED,
                                                  traceback=[])]
    nb.cells[2].outputs = [nbformat.v4.new_output("error", ename="CellNotRun", evalue="not run", traceback=[])]
    nbformat.write(nb, tmp_path / "graded.ipynb")
    assert grade.describe_run(tmp_path / "graded.ipynb", 7) == [
        "timed out after 7 s: cell 1", "the kernel died in check_b; later cells not run"]


def test_error_rows_score_zero_in_the_csv(tmp_path):
    name = grade.assignments()[0]
    columns = {name: grade.grade_cells(name)}
    results = [grade.Result("ann", name, error="malformed notebook, not graded: NotJSONError: ..."),
               grade.Result("bob", name, scores={cell: points for cell, points in columns[name]})]
    with open(grade.write_csv(results, columns, tmp_path), newline="", encoding="utf-8") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    assert all(float(rows["ann"][cell]) == 0 for cell, _ in columns[name]) and float(rows["ann"]["total"]) == 0
    assert rows["ann"]["error"].startswith("malformed") and rows["ann"]["max"] == rows["bob"]["total"]
