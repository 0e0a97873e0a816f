"""Grade a folder of submissions with nbgrader: a CSV of per-exercise scores and an HTML feedback page each.

    python instructor/grade.py SUBMISSIONS --out OUTDIR [--timeout SECONDS] [--jobs N]

SUBMISSIONS holds one folder per student with any of the course's notebooks, under their released names:
SUBMISSIONS/<student_id>/<notebook>.ipynb (for example alice/02_momentum_and_nesterov.ipynb). It is only read.

OUTDIR receives
    grades.csv                          one row per (student, notebook): the points of every grade cell (one
                                        column each, e.g. check_sgd_momentum), total, max, error, notes
    feedback/<student>/<notebook>.html  nbgrader's feedback (the graded notebook with the scores; it shows the
                                        hidden tests), or a short page saying why the notebook could not be graded
    nbgrader.log                        what nbgrader printed for each submission
grades.csv and feedback/ are replaced on each run.

How: a temporary nbgrader course directory (a copy of instructor/source and nbgrader_config.py) gets a fresh
gradebook from `nbgrader generate_assignment`; each submission is copied into its submitted/ folder and graded by
its own `nbgrader autograde` call, so a submission that breaks nbgrader costs only its own row. Grading restores
the test cells (locked grade cells, hidden tests included) from the gradebook, even when a learner deleted one,
and runs every cell with a finite timeout (--timeout, default nbgrader_config.py's). A kernel that dies (os._exit,
a crash) or stops answering (a loop that ignores the interrupt) ends the notebook's run instead of failing it:
cells already run keep their scores, later grade cells score 0. A file that is not a notebook gets a row with an
error note and zero scores. Up to --jobs submissions are graded at once, each in its own copy of the course
directory.
"""

import argparse
import csv
import html
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import Execute
from traitlets.config.loader import PyFileConfigLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from release import INSTRUCTOR, ROOT, SOURCE, assignments, make_course_copy, nbgrader_environment  # noqa: E402

COURSE_ID_FALLBACK = "course"
GLOB_CHARACTERS = "*?[]"
# Time allowed per submission beyond (code cells + 2) x the cell timeout: kernel start-up, nbgrader's own work.
WALL_CLOCK_MARGIN = 120


# ---- run inside nbgrader (the temporary course's config loads it) -------------------------------------------

KERNEL_DIED = "the kernel died while running this cell"
UNRESPONSIVE = "the kernel stopped answering: the cell ignored the interrupt, or its output never ended"


class SurvivingExecute(Execute):
    """nbgrader's Execute, except that a dead or unresponsive kernel ends the notebook's run instead of failing it.

    nbgrader on its own drops the whole notebook, no score at all, when the kernel dies (DeadKernelError) or
    stops answering (CellTimeoutError: a cell that ignores the interrupt after its timeout, or whose output
    does not end within iopub_timeout). Here that cell gets an error output, every later code cell gets a
    "not run" error (so its grade cell scores 0, not full points for no output), and the cells already run
    keep their scores.
    """

    def preprocess(self, nb, resources=None, km=None):
        self._stopped_by = None
        shutdown = self.shutdown_kernel
        try:
            return super().preprocess(nb, resources, km)
        finally:
            self.shutdown_kernel = shutdown

    def preprocess_cell(self, cell, resources, index):
        if self._stopped_by is not None:
            if cell.cell_type == "code":
                cell.outputs = [_error_output("CellNotRun", f"not run: {self._stopped_by}")]
            return cell, self.resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._stopped_by = f"the kernel died in cell {index + 1}"
            self.log.error("The kernel died in cell %d; later cells are not run", index + 1)
            cell.outputs.append(_error_output("DeadKernelError", KERNEL_DIED))
        except CellTimeoutError:
            self._stopped_by = f"the kernel stopped answering in cell {index + 1}"
            self.log.error("The kernel stopped answering in cell %d; later cells are not run", index + 1)
            cell.outputs.append(_error_output("CellTimeoutError", UNRESPONSIVE))
            self.shutdown_kernel = "immediate"  # it would not answer a polite shutdown request either
        return cell, self.resources


def _error_output(ename, evalue):
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])


# ---- the grading run ----------------------------------------------------------------------------------------

@dataclass
class Result:
    student: str
    notebook: str
    scores: dict = field(default_factory=dict)  # grade cell -> points (empty when not graded)
    error: str = ""
    notes: list = field(default_factory=list)
    seconds: float = 0.0
    feedback: Path | None = None


def grade_cells(name):
    """[(grade_id, points)] of a notebook's grade cells, in notebook order, from its instructor source."""
    nb = nbformat.read(SOURCE / name / f"{name}.ipynb", as_version=4)
    cells = []
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            cells.append((meta["grade_id"], float(meta.get("points", 0))))
    return cells


def discover(submissions, known):
    """The submissions: [(student, notebook, path)] for known notebooks, and Results for files that are not."""
    found, unknown = [], []
    for student_dir in sorted(p for p in submissions.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(p for p in student_dir.iterdir() if p.is_file() and not p.name.startswith(".")):
            if path.suffix != ".ipynb":
                print(f"ignoring {path}: not a notebook", file=sys.stderr)
            elif path.stem in known:
                found.append((student_dir.name, path.stem, path))
            else:
                unknown.append(Result(student_dir.name, path.stem,
                                      error=f"not a notebook of this course (expected one of {', '.join(known)})"))
    for path in sorted(p for p in submissions.iterdir() if p.is_file()):
        print(f"ignoring {path}: submissions go in a folder per student", file=sys.stderr)
    return found, unknown


def unreadable(path):
    """Why ``path`` is not a notebook nbgrader can read, or None."""
    try:
        nbformat.reads(path.read_text(encoding="utf-8"), as_version=4)
    except Exception as error:  # not UTF-8, not JSON, not a notebook: all the same to the grader
        return f"malformed notebook, not graded: {type(error).__name__}: {_one_line(error)}"
    return None


def grading_config(timeout):
    """Settings appended to the temporary course's nbgrader_config.py."""
    lines = [
        "",
        "# ---- added by instructor/grade.py for this grading run ----",
        "import sys as _sys",
        f"_sys.path.insert(0, {str(INSTRUCTOR)!r})",
        "from grade import SurvivingExecute as _SurvivingExecute",
        "from nbgrader.converters import Autograde as _Autograde",
        "from nbgrader.preprocessors import Execute as _Execute",
        "_default = _Autograde.class_traits()['autograde_preprocessors'].default()",
        "c.Autograde.autograde_preprocessors = [_SurvivingExecute if p is _Execute else p for p in _default]",
        "# Test cells a learner deleted come back from the gradebook, like the ones they edited.",
        "c.OverwriteCells.add_missing_cells = True",
    ]
    if timeout is not None:
        lines.append(f"c.SurvivingExecute.timeout = {timeout}")
    return "\n".join(lines) + "\n"


def nbgrader(course, *arguments, wall_clock=None):
    """Run the nbgrader command line in ``course``; (return code, output). Past ``wall_clock`` seconds the
    whole process group (nbgrader and its kernel) is killed and the return code is None.

    nbgrader only logs an error when its config file fails to load, and goes on without it (no timeout, no
    course id): that stops the grading here."""
    command = [sys.executable, "-m", "nbgrader", *arguments]
    process = subprocess.Popen(command, cwd=course, env=nbgrader_environment(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=wall_clock)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        return None, output
    if "Exception while loading config file" in output:
        raise RuntimeError(f"nbgrader could not load the course's nbgrader_config.py:\n{output}")
    return process.returncode, output


def course_config():
    """instructor/nbgrader_config.py, loaded."""
    return PyFileConfigLoader("nbgrader_config.py", path=str(INSTRUCTOR)).load_config()


def configured_timeout():
    """The cell timeout nbgrader_config.py gives autograde (nbgrader's default is 30 s)."""
    config = course_config()
    for section in ("Execute", "ExecutePreprocessor"):
        if "timeout" in config.get(section, {}):
            return config[section]["timeout"]
    return 30


def prepare_course(directory, timeout):
    """A course directory whose fresh gradebook knows every notebook; returns it."""
    course = make_course_copy(directory)
    with open(course / "nbgrader_config.py", "a", encoding="utf-8") as config:
        config.write(grading_config(timeout))
    code, output = nbgrader(course, "generate_assignment", "*", "--force", "--log-level=WARN")
    if code != 0:
        raise RuntimeError(f"nbgrader generate_assignment failed:\n{output}")
    return course


def wall_clock_limit(name, timeout):
    nb = nbformat.read(SOURCE / name / f"{name}.ipynb", as_version=4)
    code_cells = sum(cell.cell_type == "code" for cell in nb.cells)
    return (code_cells + 2) * timeout + WALL_CLOCK_MARGIN


def autograde(course, result, path, timeout, log):
    """Grade one submission in ``course``; fill ``result``."""
    target = course / "submitted" / result.student / result.notebook
    target.mkdir(parents=True)
    shutil.copyfile(path, target / f"{result.notebook}.ipynb")
    started = time.monotonic()
    code, output = nbgrader(course, "autograde", result.notebook, f"--student={result.student}",
                            wall_clock=wall_clock_limit(result.notebook, timeout))
    result.seconds = time.monotonic() - started
    log.append(f"==== autograde {result.student}/{result.notebook}: exit {code}, "
               f"{result.seconds:.1f} s\n{output}")
    graded = course / "autograded" / result.student / result.notebook / f"{result.notebook}.ipynb"
    if code is None:
        result.error = f"not graded: grading took longer than {wall_clock_limit(result.notebook, timeout):.0f} s"
    elif code != 0 or not graded.is_file():
        result.error = f"nbgrader could not grade it: {_last_error(output)}"
    else:
        result.notes = describe_run(graded, timeout)


def describe_run(graded, timeout):
    """Notes on a graded notebook: cells that timed out, a kernel that died or would not stop."""
    nb = nbformat.read(graded, as_version=4)
    timed_out, stopped = [], []
    for number, cell in enumerate(nb.cells, start=1):
        label = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or f"cell {number}"
        for output in cell.get("outputs", []):
            if output.output_type != "error":
                continue
            if output.get("ename") == "DeadKernelError":
                stopped.append(f"the kernel died in {label}; later cells not run")
            elif output.get("ename") == "CellTimeoutError" and output.get("evalue") == UNRESPONSIVE:
                stopped.append(f"the kernel stopped answering in {label}; later cells not run")
            elif output.get("ename") == "CellTimeoutError" and label not in timed_out:
                timed_out.append(label)
    notes = [f"timed out after {timeout:g} s: {', '.join(timed_out)}"] if timed_out else []
    return notes + stopped


def tampering(path, released):
    """Notes on test cells the learner deleted or changed (nbgrader graded with the originals)."""
    submitted = nbformat.read(path, as_version=4)
    theirs = {cell["metadata"]["nbgrader"].get("grade_id"): cell.get("source") for cell in submitted.cells
              if cell.get("metadata", {}).get("nbgrader", {}).get("grade")}
    deleted, changed = [], []
    for cell in released.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            if meta["grade_id"] not in theirs:
                deleted.append(meta["grade_id"])
            elif theirs[meta["grade_id"]] != cell.source:
                changed.append(meta["grade_id"])
    notes = []
    if deleted:
        notes.append(f"test cells deleted, restored for grading: {', '.join(deleted)}")
    if changed:
        notes.append(f"test cells changed, graded with the originals: {', '.join(changed)}")
    return notes


def read_scores(course, results):
    """Fill the scores of the successfully graded ``results`` from the course's gradebook."""
    course_id = course_config().CourseDirectory.get("course_id", COURSE_ID_FALLBACK)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", course_id) as gradebook:
        for result in results:
            if result.error:
                continue
            try:
                notebook = gradebook.find_submission_notebook(result.notebook, result.notebook, result.student)
            except MissingEntry:
                result.error = "nbgrader graded it but its gradebook has no scores for it"
                continue
            manual = []
            for grade in notebook.grades:
                if grade.auto_score is None and grade.manual_score is None:
                    manual.append(grade.name)
                result.scores[grade.name] = float(grade.score or 0.0)
            if manual:
                result.notes.append(f"needs manual grading: {', '.join(manual)}")


def feedback(course, results, out):
    """nbgrader's HTML feedback for every graded result in ``course``, copied to out/feedback/<student>/."""
    code, output = nbgrader(course, "generate_feedback", "*", "--force", "--log-level=WARN")
    for result in results:
        if result.error:
            continue
        page = course / "feedback" / result.student / result.notebook / f"{result.notebook}.html"
        if page.is_file():
            result.feedback = out / "feedback" / result.student / f"{result.notebook}.html"
            result.feedback.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(page, result.feedback)
        else:
            result.notes.append(f"no feedback page: nbgrader generate_feedback said {_last_error(output)}")
    return output


def error_page(result, out):
    """A feedback page for a notebook that could not be graded."""
    result.feedback = out / "feedback" / result.student / f"{result.notebook}.html"
    result.feedback.parent.mkdir(parents=True, exist_ok=True)
    result.feedback.write_text(
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(result.notebook)}</title></head>"
        f"<body><h1>{html.escape(result.notebook)}: not graded</h1><p>{html.escape(result.error)}</p>"
        "<p>Every exercise of this notebook scores 0.</p></body></html>\n", encoding="utf-8")


def write_csv(results, columns, out):
    """out/grades.csv: student, notebook, one column per grade cell, total, max, error, notes."""
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


def grade(submissions, out, timeout=None, jobs=None):
    """Grade every submission in ``submissions`` into ``out``; return the Results."""
    submissions, out = Path(submissions).resolve(), Path(out).resolve()
    if not submissions.is_dir():
        raise SystemExit(f"{submissions} is not a folder")
    if out.is_relative_to(submissions) or submissions.is_relative_to(out / "feedback"):
        raise SystemExit("the output folder must not be inside the submissions folder (which stays untouched)")
    known = assignments()
    columns = {name: grade_cells(name) for name in known}
    found, results = discover(submissions, known)
    tasks = []
    for student, name, path in found:
        result = Result(student, name)
        if set(student) & set(GLOB_CHARACTERS):
            result.error = f"not graded: nbgrader reads a student folder name with {GLOB_CHARACTERS} as a pattern"
        else:
            result.error = unreadable(path) or ""
        results.append(result)
        if not result.error:
            tasks.append((result, path))
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(tasks) or 1))

    out.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out / "feedback", ignore_errors=True)
    log = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="grade-") as temporary:
        base = prepare_course(Path(temporary) / "course", timeout)
        timeout = timeout or configured_timeout()
        released = {name: nbformat.read(base / "release" / name / f"{name}.ipynb", as_version=4) for name in known}
        print(f"course ready in {time.monotonic() - started:.1f} s; grading {len(tasks)} notebooks "
              f"({jobs} at a time, cell timeout {timeout:g} s)", flush=True)
        courses = queue.Queue()
        graded_in = {}
        for number in range(jobs):
            course = Path(temporary) / f"worker{number}"
            shutil.copytree(base, course)
            courses.put(course)
            graded_in[course] = []
        lock = threading.Lock()

        def run(task):
            result, path = task
            course = courses.get()
            try:
                entries = []
                try:
                    autograde(course, result, path, timeout, entries)
                    result.notes = tampering(path, released[result.notebook]) + result.notes
                except Exception as error:  # one odd submission must not stop the others
                    result.error = result.error or f"grading failed: {type(error).__name__}: {_one_line(error)}"
                    entries.append(f"==== {result.student}/{result.notebook}: {traceback.format_exc()}")
                with lock:
                    graded_in[course].append(result)
                    log.extend(entries)
                status = result.error or f"{result.seconds:.1f} s"
                print(f"  {result.student}/{result.notebook}: {status}", flush=True)
            finally:
                courses.put(course)

        with ThreadPoolExecutor(jobs) as pool:
            list(pool.map(run, tasks))
            graded = time.monotonic()

            def finish(course):
                read_scores(course, graded_in[course])
                return f"==== generate_feedback ({course.name})\n{feedback(course, graded_in[course], out)}"

            log.extend(pool.map(finish, [course for course, done in graded_in.items() if done]))
        print(f"feedback pages in {time.monotonic() - graded:.1f} s", flush=True)
    for result in results:
        if result.error:
            error_page(result, out)
    csv_path = write_csv(results, columns, out)
    (out / "nbgrader.log").write_text("\n".join(log), encoding="utf-8")
    print(f"wrote {_shown(csv_path)} and {_shown(out / 'feedback')} in {time.monotonic() - started:.1f} s")
    return results


def _number(value):
    return f"{value:g}"


def _one_line(error):
    return " ".join(str(error).split())[:200]


def _last_error(output):
    """The last line of nbgrader's output that names an exception, or its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error:" in line or "Exception:" in line:
            return line[:300]
    return lines[-1][:300] if lines else "no output"


def _shown(path):
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("submissions", type=Path, help="folder of <student_id>/<notebook>.ipynb")
    parser.add_argument("--out", type=Path, required=True, help="where grades.csv and feedback/ go")
    parser.add_argument("--timeout", type=int, default=None,
                        help="seconds each cell may run (default: nbgrader_config.py's)")
    parser.add_argument("--jobs", type=int, default=None, help="submissions graded at once (default: CPUs)")
    arguments = parser.parse_args(argv)
    if arguments.timeout is not None and arguments.timeout < 1:
        parser.error("--timeout must be at least 1 second")
    if arguments.jobs is not None and arguments.jobs < 1:
        parser.error("--jobs must be at least 1")
    results = grade(arguments.submissions, arguments.out, arguments.timeout, arguments.jobs)
    failed = sum(bool(result.error) for result in results)
    print(f"{len(results)} notebooks: {len(results) - failed} graded, {failed} not graded (see the error column)")


if __name__ == "__main__":
    main()
