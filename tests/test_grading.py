"""instructor/grade.py grades a corpus of synthetic submissions (tests/grading_corpus.py) in one run: right, wrong,
looping, raising, killing its process, blank, malformed, and the attacks of a student who wants the points with
a wrong answer. Every attacker with a wrong answer scores what the wrong answer scores, right answers keep full
marks, every student has a row, and no file outside the sandbox changes: the submissions, the instructor
sources, the library, the student notebooks and the grader's output are hashed before and after.
"""

import csv
import hashlib
import html
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from grading_corpus import NB1, NB2, NB3, NB6, NB7, NB8, NB9, NB10, Answer, expected, find_cell, write_corpus

from course_lib.exercises import EXERCISES

ROOT = Path(__file__).resolve().parent.parent
INSTRUCTOR = ROOT / "instructor"
sys.path.insert(0, str(INSTRUCTOR))
import grade  # noqa: E402

# Long enough for the slowest honest exercise (a sandboxed start with numpy and torch: 2-3 s, more on a busy
# machine), short enough that the corpus' infinite loops stay cheap.
EXERCISE_TIMEOUT = 20
PROTECTED = [ROOT / "course_lib", INSTRUCTOR, ROOT / "notebooks", ROOT / "data"]
# Without bubblewrap the grader refuses to grade: that is right, but the test has nothing to show then. CI
# installs it (.ci/run), and there the test must run.
pytestmark = [pytest.mark.skipif(shutil.which("bwrap") is None and not os.environ.get("CI"),
                                 reason="bubblewrap is not installed"),
              pytest.mark.timeout(900)]  # the corpus is graded once, in the first test: ~3 minutes on 2 cores


def snapshot(*folders):
    """Every file and folder under ``folders``, with a hash of each file's bytes and its mode."""
    state = {}
    for folder in folders:
        for directory, subfolders, files in os.walk(folder):
            subfolders[:] = [name for name in subfolders if name != "__pycache__"]
            for name in subfolders:
                state[os.path.join(directory, name)] = "folder"
            for name in files:
                path = os.path.join(directory, name)
                with open(path, "rb") as handle:
                    state[path] = (hashlib.sha256(handle.read()).hexdigest(), os.stat(path).st_mode)
    return state


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    submissions = tmp_path_factory.mktemp("submissions")
    out = tmp_path_factory.mktemp("graded")
    write_corpus(submissions, out)
    (out / "earlier-results.txt").write_text("an instructor's file next to the results")
    before = snapshot(submissions, *PROTECTED), snapshot(out)
    started = time.monotonic()
    command = [sys.executable, str(INSTRUCTOR / "grade.py"), str(submissions), "--out", str(out), "--timeout",
               str(EXERCISE_TIMEOUT)]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    seconds = time.monotonic() - started
    print(f"grading the corpus took {seconds:.1f} s\n{run.stdout}\n{run.stderr}")
    rows = {}
    if run.returncode == 0:
        with open(out / "grades.csv", newline="", encoding="utf-8") as handle:
            rows = {(row["student"], row["notebook"]): row for row in csv.DictReader(handle)}
    return SimpleNamespace(run=run, seconds=seconds, out=out, submissions=submissions, before=before,
                           after=(snapshot(submissions, *PROTECTED), snapshot(out)), rows=rows,
                           expected=expected(submissions, out))


def test_grading_command_succeeds(graded):
    assert graded.run.returncode == 0, graded.run.stdout + graded.run.stderr


def test_no_file_outside_the_sandbox_changes(graded):
    assert graded.after[0] == graded.before[0]  # submissions, library, instructor sources, notebooks, data
    untouched = {path: value for path, value in graded.after[1].items()
                 if not Path(path).is_relative_to(graded.out / "feedback")
                 and Path(path).name not in ("grades.csv", "grading.log")}
    assert untouched == graded.before[1]  # the output folder holds only what the grader wrote
    assert not list(graded.out.rglob("planted.py"))


def test_one_row_per_submission_and_per_student(graded):
    assert sorted(graded.rows) == sorted([*graded.expected, ("no_notebook", "")])
    assert graded.rows[("no_notebook", "")]["error"] == "no notebook submitted"


@pytest.mark.parametrize("key", sorted(expected(Path("s"), Path("o"))), ids="/".join)
def test_scores_per_exercise(graded, key):
    row, wanted = graded.rows[key], graded.expected[key]
    columns = dict(grade.grade_cells(key[1]))
    assert float(row["max"]) == sum(columns.values())
    if isinstance(wanted, str):
        assert row["error"].startswith(wanted), row
        wanted = {cell: 0 for cell in columns}
    else:
        assert row["error"] == "", row
    assert {cell: float(row[cell]) for cell in columns} == wanted, row
    assert float(row["total"]) == sum(wanted.values())


def test_csv_columns(graded):
    header = next(csv.reader(open(graded.out / "grades.csv", encoding="utf-8")))
    cells = [cell for name in grade.assignments() for cell, _ in grade.grade_cells(name)]
    assert header == ["student", "notebook", *cells, "total", "max", "error", "notes"]
    row = graded.rows[("correct", NB2)]
    others = set(cells) - {cell for cell, _ in grade.grade_cells(NB2)}
    assert others and all(row[cell] == "" for cell in others)


def test_notes_say_what_happened(graded):
    notes = {key: row["notes"] for key, row in graded.rows.items()}
    stopped = f"check_sgd_momentum: time limit: stopped after {EXERCISE_TIMEOUT} s"
    assert stopped in notes[("loop_in_function", NB2)]
    assert "check_best_learning_rate: time limit" in notes[("loop_top_level", NB1)]
    assert "check_nesterov: the process ended with status 1" in notes[("process_killed", NB2)]
    assert "check_adam: refers to course_lib: scored 0" in notes[("library_answer", NB3)]
    assert "found by its def" in notes[("lost_metadata", NB2)]
    assert "memory limit" in notes[("attack_memory_3gb", NB3)]
    assert "output over 65536 bytes" in notes[("attack_flood_output", NB3)]
    for key in [("correct", NB1), ("correct", NB2), ("hardcoded_rho_and_syntax_error", NB2), ("blank", NB1)]:
        assert notes[key] == "", key
    blank = (graded.out / "feedback" / "blank" / f"{NB1}.html").read_text()
    assert "not done: the cell is as it was handed out" in blank


def test_feedback_shows_the_judges_message(graded):
    page = (graded.out / "feedback" / "hardcoded_rho_and_syntax_error" / f"{NB2}.html").read_text()
    assert "Score: <b>0 / 4</b>" in page and "SyntaxError" in page and "rho" in page
    correct = (graded.out / "feedback" / "correct" / f"{NB3}.html").read_text()
    assert "Score: <b>4 / 4</b>" in correct and "passed the hidden tests" in correct
    wrong = (graded.out / "feedback" / "attack_allclose_always_true" / f"{NB3}.html").read_text()
    assert "Score: <b>0 / 4</b>" in wrong and "at step 1 of run A" in wrong and "next_x is" in wrong
    assert "not graded" in (graded.out / "feedback" / "malformed" / f"{NB2}.html").read_text()
    never_scaled = next(text for variant, text in EXERCISES["inverted_dropout"].likely_bugs
                        if "the survivors are not scaled" in text)
    dropout = (graded.out / "feedback" / "random_mistakes" / f"{NB7}.html").read_text()
    assert "Score: <b>0 / 2</b>" in dropout and html.escape(never_scaled) in dropout
    shifts = (graded.out / "feedback" / "random_mistakes" / f"{NB8}.html").read_text()
    assert "Score: <b>0 / 2</b>" in shifts and "seeded as for call 1: the result, next to that call&#x27;s: " \
        "different; expected: the same" in shifts and "Draw every random number from rng" in shifts
    for name in (NB7, NB8):
        assert "Score: <b>2 / 2</b>" in (graded.out / "feedback" / "correct" / f"{name}.html").read_text()
    flood = graded.out / "feedback" / "attack_flood_output" / f"{NB3}.html"
    assert flood.stat().st_size < 200_000  # 50 MB printed, 64 KiB kept


def test_feedback_on_the_functions_of_models(graded):
    """Notebook 06: what the sandbox reports of the learner's models (numbers, changes in place) reaches the
    judge, whose message is the feedback."""
    def page(student):
        return html.unescape((graded.out / "feedback" / student / f"{NB6}.html").read_text())

    right = page("correct")
    assert "Score: <b>4 / 4</b>" in right and right.count("passed the hidden tests") == 2
    wrong = page("swapped_ema_and_eval_forgotten")
    assert "Score: <b>0 / 4</b>" in wrong
    assert "the old and new weights are swapped" in wrong and "the models ran in training mode" in wrong
    other = page("ema_in_place_and_missing_import")
    assert "the numbers are right, but you changed average_model in place" in other
    assert "raised NameError: name 'copy' is not defined" in other and "imported in that cell" in other


def test_feedback_names_the_likely_bug_of_notebooks_09_and_10(graded):
    """The model kind and the function kind with tuples, through the sandbox: a right answer scores, a likely bug
    and a structural mistake score 0 with the judge's words."""
    for student, notebook, score, words in [
            ("correct", NB9, "4 / 4", "passed the hidden tests"),
            ("correct", NB10, "2 / 2", "passed the hidden tests"),
            ("batch_norm_momentum_swapped", NB9, "2 / 4", "(CS231n&#x27;s and Keras&#x27; convention)"),
            ("frozen_body_left_training", NB10, "0 / 2", "the body stays in training mode"),
            ("frozen_in_place", NB10, "0 / 2", "changed its argument model (the values of its parameters")]:
        page = (graded.out / "feedback" / student / f"{notebook}.html").read_text()
        assert f"Score: <b>{score}</b>" in page and words in page, (student, notebook)


def test_the_sandbox_saw_no_other_process(graded):
    log = (graded.out / "grading.log").read_text()
    spied = [line for line in log.splitlines() if "SPIED" in line]
    assert spied, "the attack printed nothing"
    assert all("grade.py" not in line and str(graded.submissions) not in line for line in spied), spied


def test_the_run_is_bounded(graded):
    """Two infinite loops and a fork bomb: the run still ends in time."""
    assert graded.seconds < 600


# ---- the command's parts ----------------------------------------------------------------------------------------

def test_malformed_files_are_named(tmp_path):
    good = tmp_path / "good.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), good)
    assert grade.read_submission(good)[1] is None
    for name, data in {"text": b"not JSON", "empty": b"", "binary": b"\xff\xfe\x00", "json": b"[1, 2]"}.items():
        path = tmp_path / f"{name}.ipynb"
        path.write_bytes(data)
        assert grade.read_submission(path)[1].startswith("malformed notebook"), name


def test_discover_takes_known_notebooks_and_names_the_rest(tmp_path):
    known = grade.assignments()
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / f"{known[0]}.ipynb").write_text("{}")
    (tmp_path / "ann" / "notes.txt").write_text("")
    (tmp_path / "ann" / "typo_name.ipynb").write_text("{}")
    (tmp_path / "bob").mkdir()
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / ".ipynb_checkpoints" / f"{known[0]}.ipynb").write_text("{}")
    (tmp_path / "stray.ipynb").write_text("{}")
    found, others = grade.discover(tmp_path, known)
    assert [(student, name) for student, name, _ in found] == [("ann", known[0])]
    assert [(r.student, r.notebook) for r in others] == [("ann", "typo_name"), ("bob", "")]
    assert "not a notebook of this course" in others[0].error and others[1].error == "no notebook submitted"


def test_output_and_submissions_must_be_apart(tmp_path):
    (tmp_path / "ann").mkdir()
    with pytest.raises(SystemExit):
        grade.grade(tmp_path, tmp_path / "graded")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ann"]


def test_every_check_cell_names_an_exercise():
    """exercises_of stops the grader on a check cell that names no exercise; every notebook but the start page
    has exercises."""
    with_exercises = [name for name in grade.assignments() if grade.exercises_of(name)]
    assert with_exercises == [name for name in grade.assignments() if name != "00_start_here"]


def test_exercise_code_is_the_exercises_own_cell():
    answer = Answer(NB2).solve("sgd_momentum")
    code, note = grade.exercise_code(answer.nb, "sgd_momentum")
    assert "velocity = rho * velocity + dx" in code and note is None
    del find_cell(answer.nb, "sgd_momentum")[1].metadata["nbgrader"]
    code, note = grade.exercise_code(answer.nb, "sgd_momentum")
    assert "def sgd_momentum" in code and "found by its def" in note
    assert grade.exercise_code(nbformat.v4.new_notebook(), "sgd_momentum") == (None, "no cell for this exercise")


def test_error_rows_score_zero_in_the_csv(tmp_path):
    name = grade.assignments()[0]
    columns = {name: grade.grade_cells(name)}
    full = grade.Result("bob", name, exercises=[grade.Graded(cell, cell.removeprefix("check_"), points, points)
                                                for cell, points in columns[name]])
    results = [grade.Result("ann", name, error="malformed notebook, not graded: NotJSONError: ..."), full]
    with open(grade.write_csv(results, columns, tmp_path), newline="", encoding="utf-8") as handle:
        rows = {row["student"]: row for row in csv.DictReader(handle)}
    assert all(float(rows["ann"][cell]) == 0 for cell, _ in columns[name]) and float(rows["ann"]["total"]) == 0
    assert rows["ann"]["error"].startswith("malformed") and rows["ann"]["max"] == rows["bob"]["total"]
