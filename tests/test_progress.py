"""The start page's progress table: each exercise of each saved notebook is judged by its own check (✓ when the
check passes, ✗ with the check's message, not started while the stub is there), a notebook that cannot be read
says so, a looping cell is stopped, and the notebooks are only read."""

import hashlib
import shutil
from pathlib import Path

import nbformat
import pytest

from course_lib import progress

ROOT = Path(__file__).resolve().parent.parent
NB2 = "02_momentum_and_nesterov.ipynb"
NB4 = "04_learning_rate_schedules.ipynb"
RIGHT_STEP_DECAY = "def step_decay(t, learning_rate, step_size, gamma=0.5):\n" \
                   "    return learning_rate * gamma ** (t // step_size)"


def fill(path, grade_id, source):
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id)
    cell.source = source
    nbformat.write(nb, path)


@pytest.fixture
def folder(tmp_path):
    for name in (NB2, NB4):
        shutil.copy(ROOT / "notebooks" / name, tmp_path / name)
    return tmp_path


def by_exercise(found):
    return {status.exercise: status for status in found}


def test_a_fresh_copy_is_not_started(folder):
    found = progress.statuses(folder)
    assert [s.exercise for s in found] == ["sgd_momentum", "nesterov", "step_decay"]
    assert {s.state for s in found} == {"not started"}


def test_right_wrong_and_broken_answers(folder):
    fill(folder / NB4, "step_decay", RIGHT_STEP_DECAY)
    fill(folder / NB2, "nesterov", "def nesterov(x, dx, config=None):\n    config = dict(config or {})\n"
         "    v = config.get('rho', 0.9) * config.get('velocity', 0 * x)\n"
         "    v = v - config.get('learning_rate', 1e-2) * dx\n"
         "    config['velocity'] = v\n    return x + v, config")
    fill(folder / NB2, "sgd_momentum", "def sgd_momentum(x, dx, config=None)\n    return x")
    statuses = by_exercise(progress.statuses(folder))
    assert statuses["step_decay"].state == "passes" and statuses["step_decay"].symbol == "✓"
    assert statuses["nesterov"].state == "fails"
    assert statuses["nesterov"].message.startswith("that is plain momentum")
    assert statuses["sgd_momentum"].state == "fails" and "SyntaxError" in statuses["sgd_momentum"].message
    page = progress.render(progress.statuses(folder))
    assert "<b>1 of 3</b> exercises pass" in page and "does not pass yet" in page and "✓" in page


def test_a_looping_cell_is_stopped(folder, monkeypatch):
    monkeypatch.setattr(progress, "TIME_LIMIT", 1)
    fill(folder / NB4, "step_decay", "while True:\n    pass")
    assert "took longer than 1 s" in by_exercise(progress.statuses(folder))["step_decay"].message


def test_an_unreadable_notebook_says_so(folder):
    (folder / "03_adaptive_methods.ipynb").write_text("{ not a notebook")
    unreadable = [s for s in progress.statuses(folder) if s.state == "unreadable"]
    assert [s.notebook for s in unreadable] == ["03_adaptive_methods.ipynb"]
    assert "cannot be read" in progress.render(unreadable)


def test_the_notebooks_are_only_read(folder):
    fill(folder / NB4, "step_decay", RIGHT_STEP_DECAY)
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.ipynb")}
    progress.statuses(folder)
    assert before == {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.ipynb")}


def test_the_widget_checks_again(folder):
    widget = progress.table(folder)
    button, output = widget.children
    assert "<b>0 of 3</b>" in output.value
    fill(folder / NB4, "step_decay", RIGHT_STEP_DECAY)
    button.click()
    assert "<b>1 of 3</b>" in output.value and not button.disabled


def test_the_default_folder_is_the_workbooks_notebooks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert progress.notebooks_folder() == ROOT / "notebooks"
    shutil.copy(ROOT / "notebooks" / NB4, tmp_path / NB4)
    assert progress.notebooks_folder() == tmp_path
