"""The widgets of notebooks 07-08: every slider's whole range gives a picture and a summary in words that
says what the picture shows; bad arguments are refused with the parameter's name."""

import ipywidgets as W
import numpy as np
import pytest

from course_lib import widgets

ACTIVATIONS = np.random.default_rng(0).uniform(0.1, 1.5, size=32)
SIGNALS = np.random.default_rng(1).standard_normal((5, 40))
SWEEP = {0: 0.45, 2: 0.56, 5: 0.59, 10: 0.57, 20: 0.53}
SEEDS = {0: [0.43, 0.45, 0.48], 2: [0.54, 0.56, 0.57], 5: [0.55, 0.59, 0.60], 10: [0.51, 0.54, 0.55],
         20: [0.48, 0.50, 0.52]}  # several runs per range, as notebook 08's shipped table has


def ends(control):
    if isinstance(control, W.Dropdown):
        return list(control.options)
    return [control.min, control.max]


@pytest.mark.parametrize("make", [lambda: widgets.dropout_explorer(ACTIVATIONS),
                                  lambda: widgets.augmentation_explorer(SIGNALS, SWEEP),
                                  lambda: widgets.augmentation_explorer(SIGNALS, SEEDS)],
                         ids=["dropout", "augmentation", "augmentation over seeds"])
def test_every_control_at_both_ends_draws_a_picture_and_a_summary(make):
    explorer = make()
    for control in explorer.controls.values():
        for value in ends(control):
            picture, old_value = bytes(explorer.image.value), control.value
            control.value = value
            assert bytes(explorer.image.value[:8]) == b"\x89PNG\r\n\x1a\n"
            assert explorer.summary.value and "nan" not in explorer.summary.value
            assert value == old_value or bytes(explorer.image.value) != picture, f"{value} drew the same picture"


def test_the_dropout_summary_states_the_scaling_and_the_error():
    explorer = widgets.dropout_explorer(ACTIVATIONS, drop_probability=0.5, passes=1000)
    assert "each ×2.00" in explorer.summary.value and "within" in explorer.summary.value
    explorer.controls["form"].value = "vanilla, test-time scaling forgotten"
    assert "2.00× the training average" in explorer.summary.value
    explorer.controls["drop_probability"].value = 0.0
    assert "keeps 32 of 32" in explorer.summary.value


def test_the_dropout_average_approaches_the_test_output_as_passes_grow():
    explorer = widgets.dropout_explorer(ACTIVATIONS, drop_probability=0.5, passes=1)
    errors = []
    for passes in (1, 10, 100, 1000):
        explorer.controls["passes"].value = passes
        errors.append(float(explorer.summary.value.split("within ")[1].split("%")[0]))
    assert errors == sorted(errors, reverse=True) and errors[-1] < 10


def test_the_augmentation_summary_names_the_sweep_or_its_neighbours():
    explorer = widgets.augmentation_explorer(SIGNALS, SWEEP, max_shift=5)
    assert "reached test accuracy 0.59" in explorer.summary.value
    explorer.controls["max_shift"].value = 7
    assert "±5 reached 0.59, ±10 reached 0.57" in explorer.summary.value


def test_the_augmentation_summary_gives_the_mean_and_range_over_runs():
    explorer = widgets.augmentation_explorer(SIGNALS, SEEDS, max_shift=5)
    summary = explorer.summary.value
    assert "reached test accuracy 0.58 (0.55 to 0.60) (no augmentation: 0.45 (0.43 to 0.48))" in summary
    assert "the mean over 3 runs" in summary and "Best in the sweep: ±5 (0.58)" in summary
    explorer.controls["max_shift"].value = 15
    assert "±10 reached 0.53 (0.51 to 0.55), ±20 reached 0.50 (0.48 to 0.52)" in explorer.summary.value


def test_the_shipped_table_drives_the_augmentation_picture():
    from course_lib import regularization

    table = regularization.shipped_table()
    explorer = widgets.augmentation_explorer(SIGNALS, {s: table.augmentation(s) for s in table.max_shifts})
    assert explorer.runs == len(table.seeds) and explorer.controls["max_shift"].max == max(table.max_shifts)
    assert f"{table.augmentation(5).mean():.2f} ({table.augmentation(5).min():.2f} to" in explorer.summary.value


@pytest.mark.parametrize("call, message", [
    (lambda: widgets.dropout_explorer([]), "activations must be"),
    (lambda: widgets.dropout_explorer(ACTIVATIONS, form="sideways"), "form must be one of"),
    (lambda: widgets.augmentation_explorer(SIGNALS, {5: 0.6}), "sweep must include max shift 0"),
    (lambda: widgets.augmentation_explorer(np.zeros(40), SWEEP), "signals must be a"),
    (lambda: widgets.augmentation_explorer(SIGNALS, {0: [0.4, 0.5], 5: [0.6]}), "the same number of them"),
])
def test_bad_arguments_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()
