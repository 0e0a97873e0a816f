"""Each likely bug of notebook 08's exercise differs measurably from the reference on typical inputs, and the
instructor notebook's solution does not."""

import numpy as np
import pytest
from notebook_cells import exercise_solution

from course_lib import augmentation
from course_lib.bugs_08 import LIKELY_BUGS

NOTEBOOK = "08_randomness_regularizers"


def reference(signals, max_shift, rng):
    return augmentation.random_circular_shift(signals, rng, max_shift=max_shift)


def statistics(random_circular_shift, max_shift=5, seed=0):
    """What a judge can measure of a shift function, whatever random numbers it draws: each row's shift (or
    None when a row is not a circular shift of its own signal), the input left alone."""
    signals = np.random.default_rng(seed).standard_normal((3000, 40))
    before = signals.copy()
    out = random_circular_shift(signals, max_shift, np.random.default_rng(seed + 1))
    matches = np.stack([(np.roll(before, s, axis=1) == out).all(axis=1) for s in range(40)], axis=1)
    circular = matches.sum(axis=1) == 1
    shifts = (matches.argmax(axis=1) + 20) % 40 - 20
    counts = np.bincount(shifts[circular] + 20, minlength=40)[20 - max_shift:21 + max_shift]
    return {
        "rows that are circular shifts": circular.mean(),
        "shifts outside the range": float(np.any(np.abs(shifts[circular]) > max_shift)),
        "smallest share of a shift in the range": counts.min() / len(signals),
        "rows sharing the first row's shift": (shifts == shifts[0]).mean(),
        "input changed": float(not np.array_equal(signals, before)),
    }


TOLERANCE = {"rows that are circular shifts": 0.01, "shifts outside the range": 0.5,
             "smallest share of a shift in the range": 0.03, "rows sharing the first row's shift": 0.1,
             "input changed": 0.5}


def differences(candidate):
    expected, measured = statistics(reference), statistics(candidate)
    return {name: (measured[name], expected[name]) for name in expected
            if abs(measured[name] - expected[name]) > TOLERANCE[name]}


@pytest.mark.parametrize("variant, explanation", LIKELY_BUGS["random_circular_shift"],
                         ids=[variant.__name__ for variant, _ in LIKELY_BUGS["random_circular_shift"]])
def test_every_likely_bug_differs_from_the_reference(variant, explanation):
    assert differences(variant), f"{variant.__name__} looks like the reference: {explanation}"
    assert len(explanation) > 40


def test_the_notebook_solution_matches_the_reference():
    solution = exercise_solution(NOTEBOOK, "random_circular_shift", {"np": np})
    assert differences(solution) == {}
