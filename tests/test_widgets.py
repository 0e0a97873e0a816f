"""Widgets: every slider at both ends gives a picture or a message on it, never an exception or a warning; races
are fair (each method its own hyperparameters, tuned on request) and say in words what the picture shows."""

import html
import re
import warnings

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from course_lib import checks, landscapes, optim, plots, theory, widgets
from course_lib.trajectories import run
from course_lib.widgets import CONTROLS, HYPERPARAMETERS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def ends(control):
    """The two extreme values of a slider (a log slider's min and max are exponents)."""
    if hasattr(control, "base"):
        return control.base**control.min, control.base**control.max
    if hasattr(control, "min"):
        return control.min, control.max
    return control.options[0], control.options[-1]


def full_race(landscape="ill-conditioned quadratic"):
    controls = tuple(name for name in CONTROLS if name != "start_offset")
    return widgets.race({name: rule for name, rule in optim.RULES.items()}, landscape=landscape, controls=controls,
                        steps=60)


def summary_text(widget):
    return html.unescape(re.sub(r"<[^>]+>", "", widget.summary.value))


@pytest.mark.parametrize("landscape", ["ill-conditioned quadratic", "Rosenbrock", "saddle", "local minimum"])
def test_every_slider_at_both_ends_draws_a_picture(landscape):
    race = full_race(landscape)
    sliders = {name: control for name, control in race.controls.items() if name != "landscape"}
    # Every method has its own sliders: 6 learning rates, 2 rho, 1 decay rate, 2 betas; and the shared ones.
    assert sum(name.startswith("learning_rate[") for name in sliders) == 6
    assert sorted(name for name in sliders if "[" in name and not name.startswith("learning_rate")) == [
        "beta1[adam]", "beta2[adam]", "decay_rate[rmsprop]", "rho[nesterov]", "rho[sgd_momentum]"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name, control in sliders.items():
            for value in ends(control):
                control.value = value
                assert control.value == pytest.approx(value)
                assert bytes(race.image.value).startswith(PNG_SIGNATURE), name
    assert all(not isinstance(result, str) for result in race.results.values())


def test_moving_a_slider_redraws_the_picture_and_the_summary():
    race = widgets.race({"SGD": optim.sgd}, controls=("learning_rate",), learning_rate=0.1)
    before, said = bytes(race.image.value), summary_text(race)
    race.slider("learning_rate", "SGD").value = 0.5
    assert bytes(race.image.value) != before
    assert "SGD (α=0.1)" in said and "SGD (α=0.5)" in summary_text(race)


def test_each_method_has_its_own_learning_rate():
    race = widgets.race({"SGD": optim.sgd, "momentum": optim.sgd_momentum}, controls=("learning_rate", "rho"),
                        learning_rate={"SGD": 1.5, "momentum": 0.2})
    assert race.hyperparameters == {"SGD": {"learning_rate": 1.5}, "momentum": {"learning_rate": 0.2, "rho": 0.9}}
    momentum_run = race.results["momentum"]
    race.slider("learning_rate", "SGD").value = 0.5
    assert race.results["momentum"] is momentum_run  # untouched: not even run again
    valley = landscapes.ill_conditioned_quadratic(10.0)
    np.testing.assert_array_equal(race.results["SGD"].points,
                                  run(optim.sgd, valley, steps=100, config={"learning_rate": 0.5}).points)
    with pytest.raises(KeyError, match="'SGD' has no rho slider"):
        race.slider("rho", "SGD")


def test_a_configs_values_start_its_sliders_exactly():
    # Notebook 02's tuned race: gradient descent at 2/(L + mu) and momentum at Polyak's values, side by side.
    kappa = 100.0
    momentum = theory.momentum_best_hyperparameters(1.0, 1.0 / kappa)
    descent = {"learning_rate": theory.gradient_descent_best_learning_rate(1.0, 1.0 / kappa)}
    race = widgets.race({"GD": (optim.sgd, descent), "momentum": (optim.sgd_momentum, momentum)},
                        controls=("learning_rate", "rho", "kappa", "steps"), kappa=kappa, steps=150)
    assert race.slider("learning_rate", "momentum").value == momentum["learning_rate"]  # not rounded to a step
    assert race.slider("rho", "momentum").value == momentum["rho"]
    valley = landscapes.ill_conditioned_quadratic(kappa)
    for label, rule, config in (("GD", optim.sgd, descent), ("momentum", optim.sgd_momentum, momentum)):
        direct = run(rule, valley, steps=150, config=config)
        np.testing.assert_array_equal(race.results[label].points, direct.points)
    said = summary_text(race)
    assert "GD (α=1.98)" in said and "momentum (α=3.31, ρ=0.669)" in said
    assert [text.get_text() for text in race.picture.legend.get_texts()] == ["GD\n(α=1.98)",
                                                                            "momentum\n(α=3.31, ρ=0.669)"]


def test_fixed_config_entries_without_a_slider_stay_fixed():
    race = widgets.race({"momentum ρ=0.5": (optim.sgd_momentum, {"rho": 0.5})}, controls=("learning_rate",),
                        learning_rate=0.1)
    assert race.hyperparameters["momentum ρ=0.5"] == {"rho": 0.5, "learning_rate": 0.1}
    valley = landscapes.ill_conditioned_quadratic(10.0)
    np.testing.assert_array_equal(race.results["momentum ρ=0.5"].points, run(
        optim.sgd_momentum, valley, steps=100, config={"rho": 0.5, "learning_rate": 0.1}).points)


def test_values_for_a_runner_that_is_not_there_are_refused():
    with pytest.raises(ValueError, match=r"unknown runners \['Adam'\]"):
        widgets.race({"SGD": optim.sgd}, controls=("learning_rate",), learning_rate={"Adam": 0.1})


def test_tuned_race_starts_each_method_at_its_best_without_divergence():
    # Notebook 03's six-rule race on Rosenbrock: one shared rate made three of them diverge by step 4.
    runners = {name: rule for name, rule in optim.RULES.items()}
    controls = ("learning_rate", "rho", "decay_rate", "beta1", "beta2", "landscape", "steps")
    shared = widgets.race(runners, landscape="Rosenbrock", controls=controls, learning_rate=0.01, steps=200)
    assert sum(result.diverged for result in shared.results.values()) >= 3
    race = widgets.race(runners, landscape="Rosenbrock", controls=controls, steps=200, tuned=True)
    assert not any(result.diverged for result in race.results.values())
    said = summary_text(race)
    assert said.startswith("Each at its best on this landscape (searched), after 200 steps on Rosenbrock")
    for name in optim.RULES:
        assert re.search(rf"\b{name} \(α=[0-9.e-]+", said), f"{name}'s learning rate is not named: {said}"
    assert "diverged" not in said and not race.picture.message.get_visible()
    # Every method gets well down the valley: each ends with a loss gap at least 20 times below the start's.
    rosenbrock = landscapes.rosenbrock()
    start_gap = rosenbrock(rosenbrock.start) - rosenbrock.minimum_value
    assert all(result.losses[-1] - rosenbrock.minimum_value < start_gap / 20 for result in race.results.values())
    # Moving a slider by hand: the summary no longer claims the values are the searched ones.
    race.slider("learning_rate", "sgd").value = 1e-3
    assert summary_text(race).startswith("With the values on the sliders")


def test_the_button_tunes_the_current_landscape_and_reset_goes_back():
    race = widgets.race({"GD": optim.sgd, "momentum": optim.sgd_momentum}, controls=("learning_rate", "rho"),
                        kappa=100.0, learning_rate=0.01, steps=150)
    race.best_button.click()
    tuned = race.hyperparameters
    assert tuned["GD"]["learning_rate"] > 1.0 and tuned["momentum"]["learning_rate"] > 1.0
    for label, values in tuned.items():
        for name, value in values.items():
            assert race.slider(name, label).value == value
    gaps = {label: result.losses[-1] for label, result in race.results.items()}
    assert gaps["momentum"] < 1e-6 * gaps["GD"]  # each at its best, momentum is far ahead on kappa = 100
    race.reset_button.click()
    assert race.hyperparameters == {"GD": {"learning_rate": 0.01}, "momentum": {"learning_rate": 0.01, "rho": 0.9}}


def test_a_learners_rule_shares_the_references_sliders_and_is_tuned_as_it():
    def nesterov(x, dx, config=None):
        return optim.nesterov(x, dx, config)

    yours = checks.YourFunction(nesterov, "nesterov", namespace={})
    race = widgets.race({"your nesterov": yours, "reference": optim.nesterov, "momentum": optim.sgd_momentum},
                        controls=("learning_rate", "rho"), kappa=1.0, learning_rate=0.1, steps=80)
    assert [group.labels for group in race.groups] == [["your nesterov", "reference"], ["momentum"]]
    race.slider("rho", "your nesterov").value = 0.5
    assert race.hyperparameters["reference"]["rho"] == 0.5
    race.each_at_its_best()
    assert race.hyperparameters["your nesterov"] == race.hyperparameters["reference"]


def _colour_pixels(png, colour, panel_width):
    """How many pixels of the map panel (the left ``panel_width`` pixels) are within 40 of ``colour``."""
    import io

    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)[:, :panel_width]
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(pixels - rgb).sum(axis=2) < 40).sum())


def test_a_learners_rule_on_the_references_path_is_visible_and_said_to_match():
    def nesterov(x, dx, config=None):
        return optim.nesterov(x, dx, config)

    def misprinted(x, dx, config=None):  # the lecture's (1 - rho): a different path
        config = dict(config or {})
        velocity = config.get("velocity", 0 * x)
        new_velocity = config.get("rho", 0.9) * velocity - config.get("learning_rate", 1e-2) * dx
        config["velocity"] = new_velocity
        return x - 0.9 * velocity + (1 - 0.9) * new_velocity, config

    runners = {"your nesterov": None, "reference": optim.nesterov}
    runners["your nesterov"] = checks.YourFunction(nesterov, "nesterov", namespace={})
    race = widgets.race(runners, controls=("learning_rate", "rho"), kappa=1.0, learning_rate=0.1, steps=80)
    np.testing.assert_array_equal(race.results["your nesterov"].points, race.results["reference"].points)
    assert "your nesterov matches the reference: the same path" in race.picture.message.get_text()
    assert "your nesterov matches the reference" in summary_text(race)
    # Both paths show on the map: the reference, drawn on top, is dashed and thinner, so the learner's colour
    # still shows between its dashes.
    width = race.picture.map.canvas.get_width_height()[0]
    png = bytes(race.image.value)
    yours_colour, reference_colour = plots.style(0)["color"], plots.style(1)["color"]
    alone = widgets.race({"GD": optim.sgd}, controls=("learning_rate",), kappa=1.0, learning_rate=0.1, steps=80)
    seen_alone = _colour_pixels(bytes(alone.image.value), yours_colour, width)  # a first line with nothing on it
    assert _colour_pixels(png, yours_colour, width) > seen_alone / 3
    assert _colour_pixels(png, reference_colour, width) > 100
    # The check can fail: a rule whose path differs is not said to match.
    plain = {"your nesterov": misprinted, "reference": optim.nesterov}
    different = widgets.race(plain, controls=("learning_rate", "rho"), kappa=1.0, learning_rate=0.1, steps=80)
    assert "matches" not in different.picture.message.get_text() and "matches" not in summary_text(different)


def test_runs_that_diverge_at_once_are_not_said_to_match():
    # SGD and momentum take the same first step; at a rate far past stability both diverge within two steps,
    # and their few points agree, which says nothing about the rules.
    race = widgets.race({"sgd": optim.sgd, "sgd_momentum": optim.sgd_momentum}, landscape="Rosenbrock",
                        controls=("learning_rate",), learning_rate=1.77, steps=200)
    assert all(result.diverged_at <= 3 for result in race.results.values()), race.results
    assert "matches" not in summary_text(race) and "same path" not in race.picture.message.get_text()
    # ... while the same two rules with rho = 0 on a run that does not diverge are the same rule.
    same = widgets.race({"sgd": optim.sgd, "sgd_momentum": (optim.sgd_momentum, {"rho": 0.0})},
                        landscape="Rosenbrock", controls=("learning_rate",), learning_rate=1e-3, steps=50)
    assert "sgd_momentum matches sgd" in summary_text(same)


def test_a_diverging_run_says_where_on_the_plot_and_in_the_summary():
    race = widgets.race({"SGD": optim.sgd}, controls=("learning_rate",), learning_rate=1.0)
    slider = race.slider("learning_rate", "SGD")
    slider.value = ends(slider)[1]  # 10: far past 2 / curvature
    trajectory = race.results["SGD"]
    assert trajectory.diverged and trajectory.diverged_at > 1
    assert f"SGD diverged at step {trajectory.diverged_at}" in race.picture.message.get_text()
    assert f"SGD (α=10): diverged at step {trajectory.diverged_at}" in summary_text(race)


class _CountingNamespace(dict):
    """A notebook's variables that count how often a widget looks a name up."""

    lookups = 0

    def get(self, *arguments):
        self.lookups += 1
        return super().get(*arguments)


def test_a_learners_rule_is_looked_up_once_per_run_and_a_fixed_cell_races_at_the_next_change():
    def rmsprop(x, dx, config=None):
        raise NotImplementedError()

    notebook = _CountingNamespace(rmsprop=rmsprop)
    yours = checks.YourFunction(rmsprop, "rmsprop", namespace=notebook)
    race = widgets.race({"your rmsprop": yours, "reference": optim.rmsprop}, landscape="Rosenbrock",
                        controls=("learning_rate", "decay_rate"), learning_rate=0.05, steps=300)
    assert race.results["your rmsprop"] == "finish Exercise 3.1 first"
    assert "your rmsprop: finish Exercise 3.1 first" in race.picture.message.get_text()
    notebook["rmsprop"] = optim.rmsprop  # the learner fixes the exercise cell: the next change races it
    race.slider("decay_rate", "reference").value = 0.9
    np.testing.assert_array_equal(race.results["your rmsprop"].points, race.results["reference"].points)
    assert len(race.results["your rmsprop"].points) == 301
    assert notebook.lookups == 2  # one per run (the first picture and one change), not one per step (600)
    notebook["rmsprop"] = checks.EXERCISES["rmsprop"].likely_bugs[0][0]  # broken again: said at the next change
    race.slider("learning_rate", "reference").value = 0.02
    assert race.results["your rmsprop"] == "does not pass Exercise 3.1 yet (see its check cell)"
    assert notebook.lookups == 3


def test_a_rule_that_raises_is_named_on_the_plot_not_as_a_traceback():
    def broken(x, dx, config=None):
        raise KeyError("velocity")

    def unfinished(x, dx, config=None):
        raise NotImplementedError()

    race = widgets.race({"mine": broken, "todo": unfinished, "later": "finish Exercise 2.2 first",
                         "yours": checks.YourFunction(unfinished, "nesterov", namespace={}),
                         "reference": optim.sgd}, controls=("learning_rate",))
    text = race.picture.message.get_text().replace("\n  ", " ")
    assert "mine: KeyError: 'velocity'" in text
    assert "todo: unfinished is not written yet" in text
    assert "later: finish Exercise 2.2 first" in text
    assert "yours: finish Exercise 2.2 first" in text
    assert "yours (α=0.01): finish Exercise 2.2 first" in summary_text(race)
    assert not race.results["reference"].diverged


def _inside(artist, figure):
    """Whether ``artist``, drawn, lies within ``figure`` (a pixel of slack)."""
    canvas = FigureCanvasAgg(figure) if figure.canvas is None else figure.canvas
    renderer = canvas.get_renderer()
    box, frame = artist.get_window_extent(renderer), figure.bbox
    return box.x0 >= frame.x0 - 1 and box.x1 <= frame.x1 + 1 and box.y0 >= frame.y0 - 1 and box.y1 <= frame.y1 + 1


def test_long_messages_and_names_stay_inside_the_picture():
    long_message = ("does not pass Exercise 2.2 yet (see its check cell): the velocity it returns differs from "
                    "the reference's on the second step, by up to 0.5 in the first coordinate, and more later on")
    runners = {"your nesterov with a long name": long_message,
               "a method with a name as long as this one": optim.sgd, "reference": optim.nesterov,
               **{f"runner {i}": "not written yet" for i in range(12)}}
    race = widgets.race(runners, controls=("learning_rate", "rho"), learning_rate=0.3, rho=0.95, steps=30)
    race.picture.png()
    message = race.picture.message
    lines = message.get_text().splitlines()
    assert max(len(line) for line in lines) <= plots.MESSAGE_WIDTH and len(lines) == plots.MESSAGE_LINES
    assert lines[-1].startswith("... and ") and "see below the picture" in lines[-1]
    assert _inside(message.get_bbox_patch(), race.picture.map.figure)
    assert _inside(race.picture.legend, race.picture.loss.figure)
    assert long_message in summary_text(race)  # the summary under the picture has the whole message


def test_changing_the_landscape_moves_the_start_sliders_onto_it():
    race = full_race()
    race.controls["landscape"].value = "Rosenbrock"
    assert (race.values["start_x"], race.values["start_y"]) == (-1.2, 1.0)
    assert race.controls["start_x"].min == -2.0 and race.controls["start_y"].max == 3.0
    race.controls["kappa"].value = 1000.0  # the landscape is Rosenbrock: kappa changes nothing visible
    race.controls["landscape"].value = "ill-conditioned quadratic"
    assert race.controls["start_x"].max == pytest.approx(np.sqrt(1000.0))
    assert race.controls["start_x"].min <= race.values["start_x"] <= race.controls["start_x"].max


def test_the_saddles_start_offset_slider_is_logarithmic_down_to_the_claims_offsets():
    race = widgets.race({"GD": optim.sgd}, landscape="saddle", controls=("learning_rate", "start_offset", "steps"),
                        learning_rate=0.1, start_offset=1e-3, steps=200)
    offset = race.controls["start_offset"]
    low, high = ends(offset)
    assert low <= 1e-9 and high >= 1.0 and offset.readout_format == ".0e"  # 1e-3 reads "1e-3", not "0.00"
    lingering = []
    for value in (1e-3, 1e-6):
        offset.value = value
        np.testing.assert_array_equal(race.results["GD"].points[0], [-2.0, value])
        lingering.append(int(np.sum(race.results["GD"].distances((0.0, 0.0)) < 0.1)))
    assert lingering[1] > lingering[0] + 50  # three decades closer: about 3 ln(10) / ln(1.1) = 72 steps more


def test_race_results_match_a_direct_run():
    race = widgets.race({"Adam": optim.adam}, landscape="Rosenbrock", controls=("learning_rate",),
                        learning_rate=0.05, steps=40)
    direct = run(optim.adam, landscapes.rosenbrock(), steps=40, config={"learning_rate": 0.05})
    np.testing.assert_array_equal(race.results["Adam"].points, direct.points)


def test_a_rule_without_a_value_starts_at_its_own_default():
    race = widgets.race({"Adam": optim.adam, "SGD": optim.sgd}, controls=("learning_rate",))
    assert race.hyperparameters == {"Adam": {"learning_rate": 1e-3}, "SGD": {"learning_rate": 1e-2}}


def test_unknown_controls_are_refused():
    with pytest.raises(ValueError, match="controls must be among"):
        widgets.race({"SGD": optim.sgd}, controls=("momentum",))


def test_methods_that_need_the_landscape_race_too():
    from course_lib import second_order

    race = widgets.race({"GD": optim.sgd, "Newton": widgets.Method(second_order.newton),
                         "L-BFGS": widgets.Method(second_order.lbfgs_on_landscape, "max_iter")},
                        landscape="ill-conditioned quadratic", controls=("learning_rate", "landscape"), steps=60)
    assert [name for name in race.controls if "[" in name] == ["learning_rate[GD]"]  # no sliders for Newton
    np.testing.assert_allclose(race.results["Newton"].points[1], 0, atol=1e-12)  # a quadratic: one step
    race.controls["landscape"].value = "Rosenbrock"
    assert np.linalg.norm(race.results["L-BFGS"].final - (1, 1)) < 1e-6


def test_the_palette_is_okabe_ito_with_styles_that_differ():
    assert plots.COLORS[:6] == ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9")
    looks = [plots.style(i) for i in range(8)]
    assert len({look["color"] for look in looks}) == 8
    assert len({str(look["linestyle"]) for look in looks}) == 8 and len({look["marker"] for look in looks}) == 8
    figure = plots.curve_figure([1, 2, 3], {"a": [1, 2, 3], "b": ([2, 3, 4], "-"), "c": [3, 4, 5],
                                            "reference": ([1, 1, 1], "k--")}, "x", "y")
    lines = figure.axes[0].get_lines()
    assert [line.get_color() for line in lines[:3]] == list(plots.COLORS[:3])
    assert len({line.get_linestyle() for line in lines[:3]}) == 3
    assert lines[3].get_color() == "k" and lines[3].get_linestyle() == "--"  # an explicit style is kept


def test_hyperparameters_are_the_ones_each_rule_uses():
    race = widgets.race({name: rule for name, rule in optim.RULES.items()}, controls=HYPERPARAMETERS)
    assert {label: sorted(values) for label, values in race.hyperparameters.items()} == {
        "sgd": ["learning_rate"], "sgd_momentum": ["learning_rate", "rho"], "nesterov": ["learning_rate", "rho"],
        "adagrad": ["learning_rate"], "rmsprop": ["decay_rate", "learning_rate"],
        "adam": ["beta1", "beta2", "learning_rate"]}


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

    notebook = _CountingNamespace(step_decay=step_decay)
    explorer = widgets.schedule_explorer(yours=checks.YourFunction(step_decay, "step_decay", namespace=notebook))
    np.testing.assert_array_equal(explorer.curves["yours"][0], explorer.curves["schedule"][0])
    assert notebook.lookups == 1  # once for the curve, not once per step
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


def test_a_shown_figure_lets_go_of_its_pixels_and_can_still_be_drawn():
    figure = plots.curve_figure(np.arange(5), {"a": np.arange(5.0)}, "x", "y")
    first = figure._repr_png_()
    assert first.startswith(PNG_SIGNATURE) and figure.canvas.renderer is None
    assert figure._repr_png_() == first  # drawn again, the same picture
    assert figure.canvas.get_renderer() is not None


def six_rule_race(**values):
    return widgets.race({name: rule for name, rule in optim.RULES.items()}, landscape="Rosenbrock",
                        controls=("learning_rate", "rho", "decay_rate", "beta1", "beta2", "landscape", "steps"),
                        steps=200, **values)


def drawn_from_scratch(picture):
    """The picture's PNG with nothing kept: every panel's static picture, kept legend entries and their places
    dropped first."""
    for panel in picture.panels:
        panel._pictures.clear()
        panel._overlays.clear()
        panel._placements.clear()
    return picture.png()


def test_kept_legend_pixels_give_the_picture_drawn_from_scratch():
    # The legend's pixels are kept entry by entry (plots._Panel): every picture after a series of changes must be
    # the one drawn with nothing kept, and only the entries whose names changed, or that moved, are drawn again.
    race = six_rule_race()
    changes = [("steps", 150), ("steps", 420), ("decay_rate[rmsprop]", 0.9), ("landscape", "saddle"),
               ("steps", 150), ("landscape", "Rosenbrock"), ("decay_rate[rmsprop]", 0.99), ("steps", 200),
               ("learning_rate[adam]", 0.05), ("steps", 150), ("decay_rate[rmsprop]", 0.9),
               ("learning_rate[nesterov]", 0.3), ("learning_rate[nesterov]", 1e-3), ("beta2[adam]", 0.9),
               # rmsprop's name takes a line more: adam's entry moves down
               ("decay_rate[rmsprop]", 0.999), ("learning_rate[rmsprop]", 0.0123),
               ("learning_rate[nesterov]", 0.3), ("steps", 420), ("learning_rate[sgd]", 0.0123)]
    picture = race.picture
    labels, texts = picture.labels, picture.legend.get_texts()
    entries = plots._legend_entries(picture.legend)
    renderer = picture.loss.canvas.get_renderer()

    def shown():  # label -> (name, font size, where the entry was drawn)
        return {label: (text.get_text(), text.get_fontsize(), entries[text].get_window_extent(renderer).bounds)
                for label, text in zip(labels, texts, strict=True)}

    drawn, seen_axes = [], {picture.loss.key}
    for text, label in zip(texts, labels, strict=True):
        text.draw = lambda renderer, text=text, label=label: (drawn.append(label), type(text).draw(text, renderer))
    moves = 0
    for name, value in changes:
        before = shown()
        drawn.clear()
        race.controls[name].value = value
        after = shown()
        changed = {label for label in labels if before[label] != after[label]}
        moves += any(before[label][:2] == after[label][:2] for label in changed)
        new_axis = picture.loss.key not in seen_axes
        seen_axes.add(picture.loss.key)
        assert set(drawn) == (set(labels) if new_axis else changed), (name, value, drawn, changed)
        assert bytes(race.image.value) == drawn_from_scratch(picture), (name, value)
        seen_axes = {picture.loss.key}  # drawing from scratch dropped what was kept for the others
    assert moves  # an entry whose name stayed was drawn again where it moved to


def test_a_legend_whose_names_change_is_drawn_again():
    race = six_rule_race()
    before = bytes(race.image.value)
    race.controls["decay_rate[rmsprop]"].value = 0.9
    race.controls["decay_rate[rmsprop]"].value = 0.99
    assert bytes(race.image.value) == before  # back to the first names: the kept legend, the same picture
    race.picture.legend.get_texts()[4].set_text("rmsprop\n(α=0.01, decay rate=0.5)")  # names that were never kept
    assert race.picture.png() != before
