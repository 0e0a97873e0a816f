"""Grade a folder of submissions: a CSV of per-exercise scores and an HTML feedback page each.

    python instructor/grade.py SUBMISSIONS --out OUTDIR [--timeout SECONDS] [--jobs N] [--unsandboxed]

SUBMISSIONS holds one folder per student with any of the course's notebooks, under their released names:
SUBMISSIONS/<student_id>/<notebook>.ipynb (for example alice/02_momentum_and_nesterov.ipynb). It is only read.

OUTDIR receives
    grades.csv                          one row per (student, notebook): the points of every exercise (one column
                                        per check cell, e.g. check_sgd_momentum), total, max, error, notes
    feedback/<student>/<notebook>.html  per exercise: the score, the judge's message, the learner's code
    grading.log                         what happened for every exercise, with what the learner's code printed
grades.csv, feedback/ and grading.log are replaced on each run.

How. A learner's notebook is never executed as a whole, and none of its code runs in this process. For each
exercise, the code of the exercise's own cell (the nbgrader solution cell of that name) runs in a fresh,
sandboxed process (instructor/sandbox.py: bubblewrap, read-only file system, no network, the workbook, the
submissions and the results hidden, memory, CPU, time, output and process limits), with numpy as np, math and
torch imported; course_lib/harness.py there calls the learner's function on the exercise's hidden-test cases
(course_lib.exercises) and writes back plain float arrays. This process then judges them against the
reference's outputs on the same cases, with the same judge as the notebook's instant check
(course_lib.checks.judge), and gives the exercise's points (from its check cell in the instructor source) or 0.
Nothing the learner's code does to numpy, course_lib, IPython or the checks can change a verdict; a cell that
refers to course_lib (whose functions are the answers) scores 0 with a note.

Without bubblewrap the grader refuses to run, unless --unsandboxed is given: then the learner's code runs with
the resource limits only (nothing hidden, the file system writable: for trusted work only).
"""

import argparse
import csv
import html
import os
import re
import shutil
import stat
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from release import ROOT, SOURCE, STUDENT_NOTEBOOKS, assignments  # noqa: E402
from sandbox import Sandbox, SandboxUnavailable  # noqa: E402

from course_lib import checks, harness  # noqa: E402
from course_lib.exercises import EXERCISES  # noqa: E402

DEFAULT_TIMEOUT = 60  # seconds per exercise, wall clock (and CPU)
MAX_NOTEBOOK_BYTES = 20 * 2**20
MAX_CELL_CHARACTERS = 200_000
REFERS_TO_LIBRARY = re.compile(r"course_lib")


@dataclass
class Graded:
    """One exercise of one submission."""

    grade_id: str  # the check cell, e.g. check_adam: the CSV column
    exercise: str  # the function, e.g. adam
    points: float
    score: float = 0.0
    message: str = ""
    notes: list = field(default_factory=list)
    code: str = ""
    output: str = ""
    seconds: float = 0.0


@dataclass
class Result:
    student: str
    notebook: str
    exercises: list = field(default_factory=list)
    error: str = ""
    notes: list = field(default_factory=list)
    feedback: Path | None = None

    @property
    def scores(self):
        return {graded.grade_id: graded.score for graded in self.exercises}


def grade_cells(name):
    """[(grade_id, points)] of a notebook's check cells, in notebook order, from its instructor source."""
    nb = nbformat.read(SOURCE / name / f"{name}.ipynb", as_version=4)
    cells = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            cells.append((meta["grade_id"], float(meta.get("points", 0))))
    return cells


def exercises_of(name):
    """[(grade_id, exercise name, points)]: each check cell check_<function> judges the exercise <function>."""
    graded = []
    for grade_id, points in grade_cells(name):
        exercise = grade_id.removeprefix("check_")
        if not grade_id.startswith("check_") or exercise not in EXERCISES:
            raise SystemExit(f"{name}: check cell {grade_id!r} names no exercise of course_lib.exercises "
                             f"(expected check_<function>, one of {sorted(EXERCISES)})")
        graded.append((grade_id, exercise, points))
    return graded


def discover(submissions, known):
    """The submissions: [(student, notebook, path)] for known notebooks, and Results for everything else."""
    found, results = [], []
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in student_dir.iterdir() if p.is_file() and not p.name.startswith("."))
        notebooks = [p for p in files if p.suffix == ".ipynb"]
        for path in files:
            if path.suffix != ".ipynb":
                print(f"ignoring {path}: not a notebook", file=sys.stderr)
        for path in notebooks:
            if path.stem in known:
                found.append((student_dir.name, path.stem, path))
            else:
                results.append(Result(student_dir.name, path.stem, error="not a notebook of this course "
                                                                        f"(expected one of {', '.join(known)})"))
        if not notebooks:
            results.append(Result(student_dir.name, "", error="no notebook submitted"))
    for path in sorted(p for p in submissions.iterdir() if p.is_file()):
        print(f"ignoring {path}: submissions go in a folder per student", file=sys.stderr)
    return found, results


def read_submission(path):
    """(the notebook, None) or (None, why it cannot be graded)."""
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        return None, f"not graded: the file is larger than {MAX_NOTEBOOK_BYTES // 2**20} MB"
    try:
        return nbformat.reads(path.read_text(encoding="utf-8"), as_version=4), None
    except Exception as error:  # not UTF-8, not JSON, not a notebook: all the same to the grader
        return None, f"malformed notebook, not graded: {type(error).__name__}: {_one_line(error)}"


def exercise_code(nb, exercise):
    """(the code of the learner's cell for ``exercise``, a note or None): the solution cell with that grade_id,
    or, if its nbgrader metadata was lost, the last code cell that defines the function."""
    cells = [cell for cell in nb.cells if cell.get("cell_type") == "code"]
    tagged = [cell for cell in cells if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") == exercise]
    if tagged:
        return _text(tagged[-1].get("source", "")), None
    defining = [cell for cell in cells if re.search(rf"^\s*def\s+{exercise}\s*\(", _text(cell.get("source", "")),
                                                    re.MULTILINE)]
    if defining:
        return _text(defining[-1].get("source", "")), "its cell was found by its def (the cell's nbgrader " \
                                                      "metadata was lost)"
    return None, "no cell for this exercise"


def released_cells(name):
    """grade_id -> the source of each exercise cell as released to learners (notebooks/<name>.ipynb)."""
    path = STUDENT_NOTEBOOKS / f"{name}.ipynb"
    if not path.is_file():
        return {}
    cells = nbformat.read(path, as_version=4).cells
    return {cell.metadata.get("nbgrader", {}).get("grade_id"): _text(cell.source) for cell in cells
            if cell.get("metadata", {}).get("nbgrader", {}).get("solution")}


def _text(source):
    return "".join(source) if isinstance(source, list) else str(source)


class Grader:
    """Grades exercises in sandboxes; the cases of each exercise are written once, read-only for every run."""

    def __init__(self, sandbox, scratch):
        self.sandbox, self.case_root, self.cases = sandbox, scratch / "cases", {}
        for name, exercise in EXERCISES.items():
            self.cases[name] = exercise.cases("hidden")
            directory = self.case_root / name
            directory.mkdir(parents=True)
            harness.save_cases(directory, self.cases[name])
            for path in (directory, *directory.iterdir()):  # readable by the sandbox's user (nobody)
                path.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH
                           if path.is_dir() else stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
        for parent in (self.case_root, scratch):
            parent.chmod(0o755)

    def grade_task(self, task):
        """Grade one task of ``plan``; a failure of the grader itself costs that exercise only."""
        result, graded, code, note = task
        try:
            self.grade(graded, code, note)
        except Exception as error:
            graded.score, graded.message = 0.0, f"grading failed: {type(error).__name__}: {_one_line(error)}"
            graded.notes.append("grading failed")
        mark = "✓" if graded.score else "✗"
        print(f"  {result.student}/{result.notebook} {graded.exercise}: {mark} {graded.seconds:.1f} s", flush=True)

    def grade(self, graded, code, note):
        exercise = EXERCISES[graded.exercise]
        if note:
            graded.notes.append(note)
        if code is None:
            graded.message = f"no cell defines {graded.exercise}: nothing to grade."
            return
        if len(code) > MAX_CELL_CHARACTERS:
            graded.message = f"the cell is longer than {MAX_CELL_CHARACTERS} characters: not graded."
            graded.notes.append("cell too long")
            return
        graded.code = code
        if REFERS_TO_LIBRARY.search(code):
            graded.message = ("your cell refers to course_lib, whose functions are the exercises' answers: "
                              "an answer must be your own code. Scored 0.")
            graded.notes.append("refers to course_lib: scored 0")
            return
        run = self.sandbox.run(code, graded.exercise, self.case_root / graded.exercise)
        graded.seconds, graded.output = run.seconds, run.output
        graded.notes.extend(run.notes)
        cases = self.cases[graded.exercise]
        results = [run.results.get(number, ({}, [])) for number in range(len(cases))]
        verdict = checks.judge(exercise, cases, results, run.setup)
        if verdict is not None and run.notes and run.setup and run.setup[0].get("type") == "ProcessEnded":
            verdict = f"{'; '.join(run.notes)}: no result came back (an infinite loop, or the process ended)."
        graded.score = graded.points if verdict is None else 0.0
        graded.message = "passed the hidden tests" if verdict is None else verdict


def plan(found, columns):
    """A Result for every submission found, and the tasks (result, graded, code, note): one per exercise of each
    readable notebook."""
    results, tasks, released = [], [], {name: released_cells(name) for name in columns}
    for student, name, path in found:
        result = Result(student, name)
        results.append(result)
        nb, result.error = read_submission(path)
        for grade_id, exercise, points in columns[name]:
            graded = Graded(grade_id, exercise, points)
            result.exercises.append(graded)
            if nb is None:
                continue
            code, note = exercise_code(nb, exercise)
            if code is not None and code == released[name].get(exercise):
                graded.message = "not done: the cell is as it was handed out"  # nothing to run
                continue
            tasks.append((result, graded, code, note))
    return results, tasks


def grade(submissions, out, timeout=None, jobs=None, unsandboxed=False):
    """Grade every submission in ``submissions`` into ``out``; return the Results."""
    submissions, out = Path(submissions).resolve(), Path(out).resolve()
    if not submissions.is_dir():
        raise SystemExit(f"{submissions} is not a folder")
    if out.is_relative_to(submissions) or submissions.is_relative_to(out):
        raise SystemExit("the output folder and the submissions folder must not contain each other")
    columns = {name: exercises_of(name) for name in assignments()}
    known = [name for name in columns if columns[name]]  # notebooks with exercises (not the start page)
    found, results = discover(submissions, known)
    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "feedback", ignore_errors=True)
    started = time.monotonic()
    timeout = timeout or DEFAULT_TIMEOUT
    with tempfile.TemporaryDirectory(prefix="grade-") as temporary:
        scratch = Path(temporary)
        try:
            sandbox = Sandbox.create(hidden=[submissions, out, scratch], unsandboxed=unsandboxed, timeout=timeout)
        except SandboxUnavailable as error:
            raise SystemExit(f"not grading: {error}") from None
        if unsandboxed:
            print("WARNING: --unsandboxed: learner code runs with this user's rights (resource limits only)",
                  file=sys.stderr)
        grader = Grader(sandbox, scratch)
        graded_results, tasks = plan(found, columns)
        results += graded_results
        jobs = max(1, min(jobs or os.cpu_count() or 1, len(tasks) or 1))
        print(f"sandbox ready ({'bubblewrap' if sandbox.sandboxed else 'UNSANDBOXED'}); grading {len(tasks)} "
              f"exercises of {len(found)} notebooks, {jobs} at a time, {timeout:g} s each", flush=True)
        with ThreadPoolExecutor(jobs) as pool:
            list(pool.map(grader.grade_task, tasks))
    for result in results:
        result.notes = [f"{graded.grade_id}: {note}" for graded in result.exercises for note in graded.notes]
        write_feedback(result, out)
    csv_path = write_csv(results, {name: [(g, p) for g, _, p in cells] for name, cells in columns.items()}, out)
    write_log(results, out)
    seconds = time.monotonic() - started
    print(f"wrote {_shown(csv_path)} and {_shown(out / 'feedback')} in {seconds:.1f} s "
          f"({len(found) / max(seconds, 1e-9) * 60:.1f} notebooks per minute)")
    return results


def write_csv(results, columns, out):
    """out/grades.csv: student, notebook, one column per check cell, total, max, error, notes."""
    all_cells = list(dict.fromkeys(cell for name in columns for cell, _ in columns[name]))
    path = out / "grades.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "notebook", *all_cells, "total", "max", "error", "notes"])
        for result in sorted(results, key=lambda r: (r.student, r.notebook)):
            cells = dict(columns.get(result.notebook, []))
            scores = {cell: result.scores.get(cell, 0.0) for cell in cells}
            writer.writerow([result.student, result.notebook,
                             *(_number(scores[cell]) if cell in cells else "" for cell in all_cells),
                             _number(sum(scores.values())), _number(sum(cells.values())), result.error,
                             "; ".join(result.notes)])
    return path


def write_feedback(result, out):
    """out/feedback/<student>/<notebook>.html: the score and the judge's message for each exercise."""
    folder = out / "feedback" / result.student
    folder.mkdir(parents=True, exist_ok=True)
    result.feedback = folder / f"{result.notebook or 'submission'}.html"
    title = html.escape(f"{result.notebook or 'submission'} — {result.student}")
    total = sum(g.score for g in result.exercises)
    most = sum(g.points for g in result.exercises)
    parts = [f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title><style>"
             "body{font-family:sans-serif;max-width:60em;margin:2em auto}pre{background:#f4f4f4;padding:.6em;"
             "overflow-x:auto;white-space:pre-wrap}.pass{color:#006d2c}.fail{color:#b00}</style></head><body>",
             f"<h1>{title}</h1>"]
    if result.error:
        parts.append(f"<p class='fail'>{html.escape(result.error)}</p><p>Every exercise of this notebook "
                     "scores 0.</p>")
    else:
        parts.append(f"<p>Score: <b>{_number(total)} / {_number(most)}</b></p>")
    for graded in result.exercises:
        number = EXERCISES[graded.exercise].number
        status = "pass" if graded.score else "fail"
        parts.append(f"<h2>Exercise {html.escape(number)} ({html.escape(graded.exercise)}): "
                     f"{_number(graded.score)} / {_number(graded.points)}</h2>"
                     f"<p class='{status}'>{'✓' if graded.score else '✗'} {html.escape(graded.message)}</p>")
        if graded.notes:
            parts.append("<ul>" + "".join(f"<li>{html.escape(note)}</li>" for note in graded.notes) + "</ul>")
        if graded.code:
            parts.append(f"<details><summary>your cell</summary><pre>{html.escape(graded.code)}</pre></details>")
        if graded.output.strip():
            parts.append("<details><summary>what it printed (first "
                         f"{len(graded.output.encode())} bytes)</summary><pre>{html.escape(graded.output)}</pre>"
                         "</details>")
    parts.append("</body></html>\n")
    result.feedback.write_text("".join(parts), encoding="utf-8")


def write_log(results, out):
    lines = []
    for result in sorted(results, key=lambda r: (r.student, r.notebook)):
        lines.append(f"==== {result.student}/{result.notebook}: {result.error or 'graded'}")
        for graded in result.exercises:
            lines.append(f"  {graded.grade_id}: {_number(graded.score)}/{_number(graded.points)} in "
                         f"{graded.seconds:.1f} s: {graded.message}")
            lines.extend(f"    note: {note}" for note in graded.notes)
            if graded.output.strip():
                lines.append("    printed: " + graded.output[:4000].replace("\n", "\n    printed: "))
    (out / "grading.log").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _number(value):
    return f"{value:g}"


def _one_line(error):
    return " ".join(str(error).split())[:200]


def _shown(path):
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("submissions", type=Path, help="folder of <student_id>/<notebook>.ipynb")
    parser.add_argument("--out", type=Path, required=True, help="where grades.csv and feedback/ go")
    parser.add_argument("--timeout", type=int, default=None,
                        help=f"seconds each exercise may run (default {DEFAULT_TIMEOUT})")
    parser.add_argument("--jobs", type=int, default=None, help="exercises graded at once (default: CPUs)")
    parser.add_argument("--unsandboxed", action="store_true",
                        help="run learner code without bubblewrap (resource limits only): trusted work only")
    arguments = parser.parse_args(argv)
    if arguments.timeout is not None and arguments.timeout < 1:
        parser.error("--timeout must be at least 1 second")
    if arguments.jobs is not None and arguments.jobs < 1:
        parser.error("--jobs must be at least 1")
    results = grade(arguments.submissions, arguments.out, arguments.timeout, arguments.jobs, arguments.unsandboxed)
    failed = sum(bool(result.error) for result in results)
    print(f"{len(results)} rows: {len(results) - failed} graded, {failed} not graded (see the error column)")


if __name__ == "__main__":
    main()
