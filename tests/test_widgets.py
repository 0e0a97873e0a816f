"""Widgets: every slider at both ends gives a picture or a message on it, never an exception or a warning."""

import re
import warnings

import numpy as np
import pytest

from course_lib import checks, optim, widgets
from course_lib.widgets import CONTROLS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SLIDERS = [name for name in CONTROLS if name != "landscape"]


def ends(control):
    """The two extreme values of a slider (a log slider's min and max are exponents)."""
    if hasattr(control, "base"):
        return control.base**control.min, control.base**control.max
    if hasattr(control, "min"):
        return control.min, control.max
    return control.options[0], control.options[-1]


def full_race(landscape="ill-conditioned quadratic"):
    return widgets.race({name: rule for name, rule in optim.RULES.items()}, landscape=landscape,
                        controls=tuple(CONTROLS), steps=60)


@pytest.mark.parametrize("landscape", ["ill-conditioned quadratic", "Rosenbrock", "saddle", "local minimum"])
@pytest.mark.parametrize("slider", SLIDERS)
def test_every_slider_at_both_ends_draws_a_picture(landscape, slider):
    race = full_race(landscape)
    control = race.controls[slider]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for value in ends(control):
            control.value = value
            assert control.value == pytest.approx(value)
            assert bytes(race.image.value).startswith(PNG_SIGNATURE)
    assert all(not isinstance(result, str) for result in race.results.values())


def test_moving_a_slider_redraws_the_picture():
    race = widgets.race({"SGD": optim.sgd}, controls=("learning_rate",), learning_rate=0.1)
    before = bytes(race.image.value)
    race.controls["learning_rate"].value = 0.5
    assert bytes(race.image.value) != before


def test_a_diverging_run_says_where_on_the_plot():
    race = widgets.race({"SGD": optim.sgd}, controls=("learning_rate",), learning_rate=1.0)
    race.controls["learning_rate"].value = ends(race.controls["learning_rate"])[1]  # 10: far past 2 / curvature
    trajectory = race.results["SGD"]
    assert trajectory.diverged and trajectory.diverged_at > 1
    assert f"SGD diverged at step {trajectory.diverged_at}" in race.picture.message.get_text()


def test_a_rule_that_raises_is_named_on_the_plot_not_as_a_traceback():
    def broken(x, dx, config=None):
        raise KeyError("velocity")

    def unfinished(x, dx, config=None):
        raise NotImplementedError()

    race = widgets.race({"mine": broken, "todo": unfinished, "later": "finish Exercise 2.2 first",
                         "yours": checks.YourFunction(unfinished, "nesterov", namespace={}),
                         "reference": optim.sgd}, controls=("learning_rate",))
    text = race.picture.message.get_text()
    assert "mine: KeyError: 'velocity'" in text
    assert "todo: unfinished is not written yet" in text
    assert "later: finish Exercise 2.2 first" in text
    assert "yours: finish Exercise 2.2 first" in text
    assert not race.results["reference"].diverged


def test_changing_the_landscape_moves_the_start_sliders_onto_it():
    race = full_race()
    race.controls["landscape"].value = "Rosenbrock"
    assert (race.values["start_x"], race.values["start_y"]) == (-1.2, 1.0)
    assert race.controls["start_x"].min == -2.0 and race.controls["start_y"].max == 3.0
    race.controls["kappa"].value = 1000.0  # the landscape is Rosenbrock: kappa changes nothing visible
    race.controls["landscape"].value = "ill-conditioned quadratic"
    assert race.controls["start_x"].max == pytest.approx(np.sqrt(1000.0))
    assert race.controls["start_x"].min <= race.values["start_x"] <= race.controls["start_x"].max


def test_race_results_match_a_direct_run():
    race = widgets.race({"Adam": optim.adam}, landscape="Rosenbrock", controls=("learning_rate",),
                        learning_rate=0.05, steps=40)
    from course_lib import landscapes
    from course_lib.trajectories import run

    direct = run(optim.adam, landscapes.rosenbrock(), steps=40, config={"learning_rate": 0.05})
    np.testing.assert_array_equal(race.results["Adam"].points, direct.points)


def test_unknown_controls_are_refused():
    with pytest.raises(ValueError, match="controls must be among"):
        widgets.race({"SGD": optim.sgd}, controls=("momentum",))


def test_methods_that_need_the_landscape_race_too():
    from course_lib import second_order

    race = widgets.race({"GD": optim.sgd, "Newton": widgets.Method(second_order.newton),
                         "L-BFGS": widgets.Method(second_order.lbfgs_on_landscape, "max_iter")},
                        landscape="ill-conditioned quadratic", controls=("learning_rate", "landscape"), steps=60)
    np.testing.assert_allclose(race.results["Newton"].points[1], 0, atol=1e-12)  # a quadratic: one step
    race.controls["landscape"].value = "Rosenbrock"
    assert np.linalg.norm(race.results["L-BFGS"].final - (1, 1)) < 1e-6


@pytest.mark.parametrize("schedule", ["step_decay", "exponential_decay", "inverse_time_decay", "cosine",
                                      "cosine_warm_restarts", "triangular_cyclic"])
def test_schedule_explorer_sliders_at_both_ends(schedule):
    explorer = widgets.schedule_explorer(schedule=schedule)
    defaults = {name: control.value for name, control in explorer.controls.items()}
    own_arguments = "|".join(widgets.SCHEDULE_ARGUMENTS[schedule])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name, control in explorer.controls.items():
            if name == "schedule" or control.layout.display == "none":
                continue
            for value in ends(control):
                control.value = value
                assert bytes(explorer.image.value).startswith(PNG_SIGNATURE)
                # Each curve is drawn, or the plot says why not: a diverged run, or one of the schedule's own
                # arguments out of range (e.g. a cyclic maximum below the base rate).
                for label in ("constant α0", "schedule"):
                    assert label in explorer.curves or re.search(
                        rf"^{label}: (diverged at step \d+|({own_arguments}) must be .*)$", explorer.message,
                        re.MULTILINE), f"{name}={value}: no {label} curve, message {explorer.message!r}"
    for name, control in explorer.controls.items():  # back at the defaults, everything is drawn
        if name != "schedule":
            control.value = defaults[name]
    assert set(explorer.curves) == {"constant α0", "schedule"} and explorer.message == ""


@pytest.mark.parametrize("total_steps", [10, 11, 299, 599, 600])
def test_schedule_explorer_runs_cosine_down_to_zero(total_steps):
    # Cosine reaches learning rate 0 at total_steps and stays there for the rest of the explorer's 600 steps.
    explorer = widgets.schedule_explorer(schedule="cosine", total_steps=total_steps)
    assert explorer.message == "" and set(explorer.curves) == {"constant α0", "schedule"}
    rates, losses = explorer.curves["schedule"]
    assert np.all(rates[total_steps:] == 0) and rates[total_steps - 1] > 0
    assert np.all(np.isfinite(losses))
    explorer.controls["total_steps"].value = 20  # and through the slider
    assert explorer.message == "" and np.all(explorer.curves["schedule"][0][20:] == 0)


def test_schedule_explorer_shows_the_learners_schedule_or_a_message():
    from course_lib import schedules

    def unfinished(t, learning_rate, step_size, gamma=0.5):
        raise NotImplementedError()

    explorer = widgets.schedule_explorer(yours=checks.YourFunction(unfinished, "step_decay", namespace={}))
    assert "yours: finish Exercise 4.1 first" in explorer.message

    def step_decay(t, learning_rate, step_size, gamma=0.5):
        return schedules.step_decay(t, learning_rate, step_size, gamma)

    explorer = widgets.schedule_explorer(yours=checks.your_rule(step_decay))
    np.testing.assert_array_equal(explorer.curves["yours"][0], explorer.curves["schedule"][0])
    # A constant rate settles on a noise floor; step decay goes below it.
    assert explorer.curves["schedule"][1][-100:].mean() < 0.3 * explorer.curves["constant α0"][1][-100:].mean()


def test_an_impossible_schedule_is_a_message_not_an_exception():
    explorer = widgets.schedule_explorer(schedule="triangular_cyclic", learning_rate=1.5, max_learning_rate=1.0)
    assert "max_learning_rate must be" in explorer.message


def test_hiding_a_schedules_sliders_hides_only_those():
    explorer = widgets.schedule_explorer(schedule="step_decay")
    shown = {name for name, control in explorer.controls.items() if control.layout.display != "none"}
    assert shown == {"schedule", "learning_rate", "gradient_noise", "step_size", "gamma"}
    assert len({id(control.layout) for control in explorer.controls.values()}) == len(explorer.controls)
