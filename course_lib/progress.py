"""The learner's progress: every exercise of every notebook, ✓ / ✗ / not started, from the saved notebooks.

    progress.table()          # in notebooks/00_start_here.ipynb: a table with a button to check again

Each exercise is judged by the same check as its check cell (course_lib.checks, the visible suite), on the code
of its cell in the notebook as last saved: the cell is run here, in a fresh namespace (with numpy as np, math and
torch, as grading does) and under a time limit; the notebook file is only read. A cell still holding its
``raise NotImplementedError()`` stub is "not started"; a notebook that cannot be read says so.
"""

import contextlib
import html
import io
import math
import re
import signal
import threading
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np
import torch

from course_lib import checks
from course_lib.exercises import EXERCISES

__all__ = ["Status", "notebook_statuses", "notebooks_folder", "render", "statuses", "table"]

TIME_LIMIT = 20  # seconds an exercise's cell and check may take here
NOTEBOOKS = "[0-9][0-9]_*.ipynb"
STUB = re.compile(r"^\s*raise NotImplementedError\b", re.MULTILINE)


@dataclass(frozen=True)
class Status:
    notebook: str  # file name, e.g. 02_momentum_and_nesterov.ipynb
    exercise: str  # function name, e.g. nesterov ("" when the notebook cannot be read)
    number: str  # e.g. 2.2
    state: str  # "passes", "fails", "not started", "unreadable"
    message: str = ""  # what the check says, or why the notebook cannot be read

    @property
    def symbol(self):
        return {"passes": "✓", "fails": "✗", "not started": "–", "unreadable": "?"}[self.state]


def notebooks_folder():
    """Where the learner's notebooks are: the current folder if it holds any (a notebook's kernel starts in its
    own folder), else the workbook's notebooks/."""
    if any(Path.cwd().glob(NOTEBOOKS)):
        return Path.cwd()
    return Path(__file__).resolve().parent.parent / "notebooks"


def statuses(folder=None):
    """The Status of every exercise of every notebook in ``folder`` (default: ``notebooks_folder()``), in order."""
    folder = notebooks_folder() if folder is None else Path(folder)
    found = []
    for path in sorted(folder.glob(NOTEBOOKS)):
        found.extend(notebook_statuses(path))
    return found


def notebook_statuses(path):
    """The Status of every exercise of the notebook at ``path``, from its check cells (check_<function>)."""
    path = Path(path)
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as error:  # not JSON, not a notebook, not readable
        return [Status(path.name, "", "", "unreadable", f"{type(error).__name__}: {error}"[:200])]
    cells = {}
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id and cell.cell_type == "code":
            cells[grade_id] = cell.source
    exercises = [grade_id.removeprefix("check_") for grade_id in cells
                 if grade_id.startswith("check_") and grade_id.removeprefix("check_") in EXERCISES]
    return [_status(path.name, name, cells.get(name)) for name in exercises]


def _status(notebook, name, code):
    number = EXERCISES[name].number
    if code is None:
        return Status(notebook, name, number, "fails", "the exercise's cell is missing from the notebook")
    if STUB.search(code):
        return Status(notebook, name, number, "not started")
    namespace = {"__name__": "__learner__", "np": np, "math": math, "torch": torch}
    try:
        with _time_limit(TIME_LIMIT), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            exec(compile(code, f"<{notebook}: {name}>", "exec"), namespace)
            checks.check(name, namespace.get(name), quiet=True)
    except checks.ExerciseError as error:
        message = str(error).split(": ", 1)[-1]
        return Status(notebook, name, number, "not started" if message.startswith("not done yet") else "fails",
                      message)
    except TimeoutError:
        return Status(notebook, name, number, "fails", f"the cell or the check took longer than {TIME_LIMIT} s")
    except BaseException as error:  # the learner's cell itself: a SyntaxError, a NameError, ...
        return Status(notebook, name, number, "fails", f"running the cell raised {type(error).__name__}: {error}")
    return Status(notebook, name, number, "passes")


@contextlib.contextmanager
def _time_limit(seconds):
    """Raise TimeoutError in this thread after ``seconds`` (only in the main thread, where signals arrive)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum, frame):
        raise TimeoutError

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def render(found):
    """An HTML table of ``found`` Statuses: one row per exercise, the status in words beside its symbol."""
    if not found:
        return "<p>No notebooks found next to this one.</p>"
    done = sum(status.state == "passes" for status in found)
    rows = []
    for status in found:
        words = {"passes": "passes", "fails": "does not pass yet", "not started": "not started",
                 "unreadable": "this notebook cannot be read"}[status.state]
        detail = f"<br><small>{html.escape(status.message)}</small>" if status.message else ""
        name = html.escape(status.notebook)
        link = f"<a href='{name}'>{name.removesuffix('.ipynb')}</a>"
        exercise = f"{status.number} <code>{html.escape(status.exercise)}</code>" if status.exercise else ""
        rows.append(f"<tr class='progress-{status.state.replace(' ', '-')}'><td>{link}</td><td>{exercise}</td>"
                    f"<td><b>{status.symbol}</b> {words}{detail}</td></tr>")
    return (f"<p><b>{done} of {len(found)}</b> exercises pass their check.</p>"
            "<table class='progress'><thead><tr><th>notebook</th><th>exercise</th><th>status</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def table(folder=None):
    """A widget: the progress table of the notebooks in ``folder`` (default: ``notebooks_folder()``) and a button
    that checks again (after you save a notebook: File > Save, or Ctrl+S)."""
    import ipywidgets as W

    output = W.HTML(render(statuses(folder)))
    button = W.Button(description="Check my progress again", icon="refresh", layout=W.Layout(width="auto"))

    def again(_):
        button.disabled, button.description = True, "Checking ..."
        try:
            output.value = render(statuses(folder))
        finally:
            button.disabled, button.description = False, "Check my progress again"

    button.on_click(again)
    return W.VBox([button, output])
