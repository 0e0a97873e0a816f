"""nbgrader's exchange with the classroom settings names each submission after the hub user.

Two learners who are the same Unix user (as in a Docker or Kubernetes image, where everybody is jovyan, or the
test hub, where everybody is root) submit from their own homes. With classroom/nbgrader_config.py the instructor
collects two students, each with their own notebook; without its student-id setting nbgrader names both
submissions after the Unix user, and collecting keeps only one of them: a learner's work is lost.
"""

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
CLASSROOM = ROOT / "classroom"
sys.path.insert(0, str(CLASSROOM))
import exchange  # noqa: E402
import handout  # noqa: E402

# A dozen nbgrader command-line runs (10-50 s): with the hub tests in `make classroom-test`, not in `make unit`.
pytestmark = pytest.mark.hub

NOTEBOOK = "01_problems_of_optimization"
STUDENT_ID_SETTING = 'if os.environ.get("JUPYTERHUB_USER"):'


def learner_submits(home, user, config_dir, exchange_root, marker):
    """``user`` puts a notebook carrying ``marker`` in the pulled folder and runs `nbgrader submit notebooks`."""
    notebooks = home / handout.TARGET_FOLDER / "notebooks"
    notebooks.mkdir(parents=True)
    notebook = nbformat.read(ROOT / "notebooks" / f"{NOTEBOOK}.ipynb", as_version=4)
    notebook.cells.append(nbformat.v4.new_markdown_cell(marker))
    nbformat.write(notebook, notebooks / f"{NOTEBOOK}.ipynb")
    env = {key: value for key, value in os.environ.items() if not key.startswith("JUPYTER")}
    env.update(HOME=str(home), JUPYTERHUB_USER=user, JUPYTER_CONFIG_PATH=str(config_dir),
               CLASSROOM_EXCHANGE=str(exchange_root))
    run = subprocess.run([sys.executable, "-m", "nbgrader", "submit", "notebooks"], cwd=home, env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def class_of_two(tmp_path, monkeypatch, settings):
    exchange_root = tmp_path / "exchange"
    monkeypatch.setenv("CLASSROOM_EXCHANGE", str(exchange_root))
    monkeypatch.delenv("JUPYTERHUB_USER", raising=False)
    config_dir = tmp_path / "etc-jupyter"
    config_dir.mkdir()
    (config_dir / "nbgrader_config.py").write_text(settings)
    exchange.release()
    for user in ("alice", "bob"):
        learner_submits(tmp_path / "home" / user, user, config_dir, exchange_root, f"written by {user}")
    out = tmp_path / "submissions"
    collected = exchange.collect(out)
    return collected, out


def test_each_learner_is_collected_under_their_hub_name(tmp_path, monkeypatch):
    collected, out = class_of_two(tmp_path, monkeypatch, (CLASSROOM / "nbgrader_config.py").read_text())
    assert sorted(collected) == ["alice", "bob"]
    for user in ("alice", "bob"):
        notebook = nbformat.read(out / user / f"{NOTEBOOK}.ipynb", as_version=4)
        assert notebook.cells[-1].source == f"written by {user}"


def test_without_the_student_id_setting_one_learner_is_lost(tmp_path, monkeypatch):
    settings = (CLASSROOM / "nbgrader_config.py").read_text()
    assert STUDENT_ID_SETTING in settings
    collected, _ = class_of_two(tmp_path, monkeypatch, settings.split(STUDENT_ID_SETTING)[0])
    assert len(collected) == 1 and not set(collected) & {"alice", "bob"}, collected
