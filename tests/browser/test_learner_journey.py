"""A new learner's way through Exercise 2.2 (Nesterov) of notebook 02, played in JupyterLab in Chromium.

1. Open notebooks/02_momentum_and_nesterov.ipynb and Run All: the check of Exercise 2.2 says "not done yet"
   and its race shows "finish Exercise 2.2 first".
2. Type, with the keyboard, the lecture's misprinted line into the exercise cell
   (``next_x = x - rho * old_velocity + (1 - rho) * velocity``) and run it and its check with Shift+Enter.
3. The check's output, as the page shows it, is the one-line ✗ diagnosis of the misprint ("you used
   (1 - rho) * velocity ...") and no Python traceback.
4. Shift+Enter re-runs the race below: no error output, its picture renders and changes (the plot now says
   that the rule does not pass yet; the message is drawn into the PNG, so the test reads it from the race
   object the cell displayed, through a silent kernel request that leaves the notebook as it is).
5. Fix the line to ``(1 + rho)``, run the exercise and its check again: "✓ Exercise 2.2 (nesterov) passed";
   re-run the race: the learner's rule races (a trajectory, not a message), the picture renders.
6. The line under the picture says "your nesterov matches the reference", and the learner's path shows on the
   map beside the reference's that runs on it (pixels of the learner's colour, counted in the PNG the page
   shows, where before the fix there were next to none); one step of the learning-rate slider (the one the
   learner's rule shares with the reference) gives a new picture. Nothing shows an error anywhere.

    .venv/bin/python -m pytest -q tests/browser/test_learner_journey.py    # ~25 s, ~15 s of it start-up

Failures leave a screenshot, the notebook, the console and the logs in test-results/browser/ (open_notebook).
"""

import ast
import io
import json

import numpy as np
from lab_in_browser import _PANEL_JS, race_widgets

NOTEBOOK = "02_momentum_and_nesterov.ipynb"
STDERR_MIME = "application/vnd.jupyter.stderr"
STDOUT_MIME = "application/vnd.jupyter.stdout"
TRACEBACK_MARKS = ("Traceback", "Cell In[", "File ", "---->", "ExerciseError", "AssertionError", "raise ")

WRONG_LINES = ["old_velocity = velocity",
               "velocity = rho * velocity - learning_rate * dx",
               "next_x = x - rho * old_velocity + (1 - rho) * velocity"]  # the lecture's misprint
RIGHT_LINE = "next_x = x - rho * old_velocity + (1 + rho) * velocity"

NOT_DONE_MESSAGE = "finish Exercise 2.2 first"
NOT_PASSING_MESSAGE = "does not pass Exercise 2.2 yet (see its check cell)"
DIAGNOSIS = ("✗ Exercise 2.2 (nesterov): you used (1 - rho) * velocity, copied from the lecture's misprinted "
             "middle line.")
PASSED = "✓ Exercise 2.2 (nesterov) passed"

_CELL_STATE_JS = """([path, index]) => {
    const panel = (__PANEL__)(path);
    const cell = panel.content.widgets[index];
    const kernel = panel.sessionContext.session.kernel;
    return {active: panel.content.activeCellIndex, mode: panel.content.mode,
            source: cell.model.sharedModel.getSource(),
            count: cell.model.executionCount, running: cell.model.executionState === 'running',
            kernel: kernel.status, idle: window.__course.idle};
}""".replace("__PANEL__", _PANEL_JS)

_CELL_DONE_JS = """([path, index, countBefore, idleBefore]) => {
    const panel = (__PANEL__)(path);
    const cell = panel.content.widgets[index];
    return cell.model.executionCount !== null && cell.model.executionCount !== countBefore
        && cell.model.executionState !== 'running' && window.__course.idle > idleBefore
        && panel.sessionContext.session.kernel.status === 'idle';
}""".replace("__PANEL__", _PANEL_JS)

class Journey:
    """The learner's hands: the keyboard in a cell's editor, Shift+Enter, and eyes on the rendered outputs."""

    def __init__(self, notebook):
        self.notebook, self.page = notebook, notebook.page
        cells = notebook.model()["cells"]
        self.exercise = _cell_index(cells, lambda c: _grade_id(c) == "nesterov")
        self.check = _cell_index(cells, lambda c: _grade_id(c) == "check_nesterov")
        self.race = _cell_index(cells, lambda c: "checks.your_rule(nesterov)" in _source(c))
        assert self.exercise + 1 == self.check < self.race, (
            f"{NOTEBOOK}: expected the exercise cell, its check and then the race; found cells "
            f"{self.exercise}, {self.check}, {self.race}")

    def cell(self, index):
        return self.page.locator(".jp-Notebook .jp-Cell").nth(index)

    def state(self, index):
        return self.page.evaluate(_CELL_STATE_JS, [self.notebook.path, index])

    def replace_line(self, index, old_line, new_lines):
        """Click on the line holding ``old_line`` in cell ``index``'s editor, select it (Home, Shift+End: the
        indentation stays) and type ``new_lines`` over it, Enter between them (the editor keeps the indent)."""
        line = self.cell(index).locator(".cm-line", has_text=old_line)
        assert line.count() == 1, f"cell {index}: {line.count()} editor lines hold {old_line!r}"
        line.scroll_into_view_if_needed()
        line.click()
        self.page.keyboard.press("Home")
        self.page.keyboard.press("Shift+End")
        for i, text in enumerate(new_lines):
            if i:
                self.page.keyboard.press("Enter")
            self.page.keyboard.type(text)
        return self.state(index)["source"]

    def shift_enter(self, index, timeout_s=60.0):
        """Shift+Enter on the active cell ``index``; wait until its run has finished. Returns the cell active
        next."""
        before = self.state(index)
        assert before["active"] == index, f"cell {before['active']} is active, expected cell {index}: {before}"
        self.page.keyboard.press("Shift+Enter")
        done = [self.notebook.path, index, before["count"], before["idle"]]
        self.page.wait_for_function(_CELL_DONE_JS, arg=done, timeout=int(timeout_s * 1000), polling=50)
        return self.state(index)["active"]

    def run_from(self, first, last):
        """Shift+Enter from cell ``first`` through cell ``last``, each after the previous has finished."""
        for index in range(first, last + 1):
            following = self.shift_enter(index)
            assert following == index + 1, f"Shift+Enter on cell {index} went to cell {following}"

    def rendered_outputs(self, index):
        """(mime type, text as shown) for each output of cell ``index`` on the page."""
        outputs = self.cell(index).locator(".jp-OutputArea-output")
        return [(outputs.nth(i).get_attribute("data-mime-type"), outputs.nth(i).inner_text())
                for i in range(outputs.count())]

    def model_outputs(self, index):
        return self.notebook.model()["cells"][index].get("outputs", [])

    def race_widget(self):
        self.notebook.wait_for_widgets()
        found = [widget for widget in race_widgets(self.notebook) if widget.cell_index() == self.race]
        assert len(found) == 1, f"cell {self.race}: {len(found)} race pictures, expected 1"
        return found[0]

    def peek(self, **expressions):
        return self.notebook.peek(**expressions)

    def race_state(self):
        """What the race the race cell displayed holds for the learner's rule (a message or a Trajectory), and its
        learning rate: read from Out[<the race cell's execution count>]."""
        count = self.notebook.model()["cells"][self.race]["execution_count"]
        race = f"Out[{count}]"
        yours = f"{race}.results['your nesterov']"
        return self.peek(kind=f"type({race}).__name__",
                         yours=f"(lambda r: r if isinstance(r, str) else type(r).__name__)({yours})",
                         learning_rate=f"{race}.hyperparameters['your nesterov']['learning_rate']")

    def assert_no_problems(self, when):
        problems = self.notebook.problems()
        assert not problems, f"{when}:\n" + "\n".join(problems)


def test_a_learner_gets_the_misprint_diagnosis_then_races_the_fixed_rule(open_notebook):
    notebook = open_notebook(NOTEBOOK)
    notebook.run_all()
    journey = Journey(notebook)
    exercise, check, race = journey.exercise, journey.check, journey.race

    # ---- 1. after Run All: the exercise is not done, its race says so ------------------------------------------
    shown = journey.rendered_outputs(check)
    assert [mime for mime, _ in shown] == [STDERR_MIME], f"check cell {check} after Run All shows {shown}"
    assert "not done yet" in shown[0][1], shown
    unfinished = journey.race_widget()
    assert unfinished.decoded(), f"race cell {race}: no picture after Run All"
    assert journey.race_state()["yours"] == repr(NOT_DONE_MESSAGE)
    unfinished_picture = unfinished.src()
    journey.assert_no_problems("after Run All")

    # ---- 2. type the lecture's misprint into the exercise, run it and its check -------------------------------
    original = journey.state(exercise)["source"]
    source = journey.replace_line(exercise, "raise NotImplementedError()", WRONG_LINES)
    wrong = original.replace("    raise NotImplementedError()", "\n".join("    " + line for line in WRONG_LINES))
    assert source == wrong != original, f"typing gave cell {exercise}:\n{source}\nnot:\n{wrong}"
    journey.run_from(exercise, check)

    # ---- 3. the check shows the one-line ✗ diagnosis, no traceback ---------------------------------------------
    shown = journey.rendered_outputs(check)
    assert [mime for mime, _ in shown] == [STDERR_MIME], f"check cell {check} shows {shown}"
    text = shown[0][1].strip()
    assert text.startswith(DIAGNOSIS), f"check cell {check} shows {text!r}, expected the diagnosis {DIAGNOSIS!r}"
    assert "\n" not in text, f"check cell {check}: the diagnosis is not one line:\n{text}"
    marks = [mark for mark in TRACEBACK_MARKS if mark in text]
    assert not marks, f"check cell {check} shows a traceback ({marks}):\n{text}"
    errors = [o for o in journey.model_outputs(check) if o["output_type"] == "error"]
    assert len(errors) == 1 and errors[0]["ename"] == "ExerciseError" and len(errors[0]["traceback"]) == 1, (
        json.dumps(errors, indent=1)[:2000])
    assert not [o for o in journey.model_outputs(exercise) if o["output_type"] in ("error", "stream")], (
        f"exercise cell {exercise} printed: {journey.model_outputs(exercise)}")

    # ---- 4. the race below, re-run: no error, a new picture, which says the rule does not pass yet ------------
    journey.run_from(race, race)
    assert journey.rendered_outputs(race) and all(
        mime not in (STDERR_MIME, STDOUT_MIME) for mime, _ in journey.rendered_outputs(race)), (
        f"race cell {race} shows text: {journey.rendered_outputs(race)}")
    failing = journey.race_widget()
    assert failing.decoded(), f"race cell {race}: no picture with the wrong rule"
    assert failing.src() != unfinished_picture, f"race cell {race}: the same picture as before the rule was typed"
    state = journey.race_state()
    assert state["kind"] == "'Race'" and state["yours"] == repr(NOT_PASSING_MESSAGE), state
    failing_picture, failing_png = failing.src(), failing.png()
    journey.assert_no_problems("with the misprinted rule")

    # ---- 5. fix the coefficient, run again: ✓, and the learner's rule races ------------------------------------
    source = journey.replace_line(exercise, WRONG_LINES[-1], [RIGHT_LINE])
    right = wrong.replace(WRONG_LINES[-1], RIGHT_LINE)
    assert source == right, f"typing the fix gave cell {exercise}:\n{source}\nnot:\n{right}"
    journey.run_from(exercise, race)

    shown = journey.rendered_outputs(check)
    assert [mime for mime, _ in shown] == [STDOUT_MIME], f"check cell {check} after the fix shows {shown}"
    assert shown[0][1].strip().startswith(PASSED), f"check cell {check} shows {shown[0][1]!r}"
    assert not [o for o in journey.model_outputs(check) if o["output_type"] == "error"]

    passing = journey.race_widget()
    assert passing.decoded(), f"race cell {race}: no picture with the fixed rule"
    assert passing.src() != failing_picture, f"race cell {race}: the picture did not change once the rule passed"
    state = journey.race_state()
    assert state["yours"] == "'Trajectory'", f"the race does not run the learner's fixed rule: {state}"

    # ---- 6. the learner's rule runs on the reference's path: the race says so, and both paths show ------------
    said = passing.summary()
    assert "your nesterov matches the reference" in said, f"race cell {race} says: {said!r}"
    looks = journey.peek(colours=f"[{journey.notebook.output_of(race)}.picture.paths[label].get_color() "
                                 "for label in ('your nesterov', 'reference')]",
                         width=f"{journey.notebook.output_of(race)}.picture.map.canvas.get_width_height()[0]")
    yours_colour, reference_colour = ast.literal_eval(looks["colours"])
    width = int(looks["width"])
    seen = {name: colour_pixels(passing.png(), colour, width)
            for name, colour in (("yours", yours_colour), ("reference", reference_colour))}
    before = colour_pixels(failing_png, yours_colour, width)  # no path of the learner's yet: only a message
    assert seen["yours"] > 100 and seen["reference"] > 100 and before < seen["yours"] / 5, (
        f"race cell {race}: pixels of the learner's colour {seen['yours']} (before the fix {before}), of the "
        f"reference's {seen['reference']}: both paths should show")

    sliders = dict(passing.sliders())
    handle = next((h for label, h in sliders.items()
                   if label.startswith("your nesterov") and label.endswith(": α")), None)
    assert handle is not None, f"race cell {race}: no learning-rate slider among {list(sliders)}"
    before, after, changed = passing.press(handle, "ArrowRight", expect_change=True)
    assert after != before, f"the learning-rate slider did not move (stayed at {before})"
    assert changed, f"moving the learning rate from {before} to {after} did not change the picture"
    assert passing.decoded()
    moved = journey.race_state()
    assert moved["yours"] == "'Trajectory'" and moved["learning_rate"] != state["learning_rate"], (
        f"after moving the learning rate: {moved} (before: {state})")
    journey.assert_no_problems("after the fix and the slider move")


def _grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _source(cell):
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def _cell_index(cells, predicate):
    found = [i for i, cell in enumerate(cells) if cell["cell_type"] == "code" and predicate(cell)]
    assert len(found) == 1, f"{NOTEBOOK}: {len(found)} cells match, expected 1"
    return found[0]


def colour_pixels(png, colour, width):
    """How many pixels of the picture's left ``width`` columns (the map) are within 40 of ``colour`` (#rrggbb)."""
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)[:, :width]
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(pixels - rgb).sum(axis=2) < 40).sum())
