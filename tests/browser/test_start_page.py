"""The start page's progress table follows a learner's saved work, played in JupyterLab in Chromium.

1. In notebooks/02_momentum_and_nesterov.ipynb, type the lecture's misprinted Nesterov line into Exercise 2.2
   and save the notebook (as a learner would, without running anything).
2. Open notebooks/00_start_here.ipynb and Run All: the progress table's row for Exercise 2.2 says ✗ (does not
   pass yet, with the check's diagnosis), and the untouched exercises say "not started".
3. Fix the line in notebook 02 and save again; press "Check my progress again" on the start page: the row says ✓.

    .venv/bin/python -m pytest -q tests/browser/test_start_page.py
"""

from lab_in_browser import _PANEL_JS
from test_learner_journey import NOTEBOOK, RIGHT_LINE, WRONG_LINES, Journey

START_PAGE = "00_start_here.ipynb"
_SAVE_JS = "async (path) => { await (__PANEL__)(path).context.save(); }".replace("__PANEL__", _PANEL_JS)


def row_text(page, exercise):
    """The text of the table's row for ``exercise`` ("2.2 nesterov": its number and function)."""
    row = page.locator("table.progress tr", has_text=exercise)
    assert row.count() == 1, f"{row.count()} rows of the progress table mention {exercise}"
    return row.inner_text()


def test_the_progress_table_follows_saved_work(open_notebook):
    exercises = open_notebook(NOTEBOOK)
    journey = Journey(exercises)
    journey.replace_line(journey.exercise, "raise NotImplementedError()", WRONG_LINES)
    exercises.page.evaluate(_SAVE_JS, exercises.path)

    start = open_notebook(START_PAGE)
    start.run_all()
    start.wait_for_widgets()
    failing = row_text(start.page, "2.2 nesterov")
    assert "✗" in failing and "does not pass yet" in failing and "(1 - rho)" in failing, failing
    assert "not started" in row_text(start.page, "2.1 sgd_momentum")
    assert not start.problems(), start.problems()

    journey.replace_line(journey.exercise, WRONG_LINES[-1], [RIGHT_LINE])
    exercises.page.evaluate(_SAVE_JS, exercises.path)
    start.page.get_by_role("button", name="Check my progress again").click()
    start.page.wait_for_function("() => [...document.querySelectorAll('table.progress tr')].some("
                                 "row => row.innerText.includes('2.2 nesterov') && row.innerText.includes('✓'))",
                                 timeout=60_000, polling=200)
    passing = row_text(start.page, "2.2 nesterov")
    assert "✓" in passing and "passes" in passing, passing
    assert not start.problems(cells=False), start.problems(cells=False)
