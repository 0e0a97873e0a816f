"""Each likely bug of notebook 07's exercise differs measurably from the reference on typical inputs, and the
instructor notebook's solution does not."""

import numpy as np
import pytest
from notebook_cells import exercise_solution

from course_lib import regularization
from course_lib.bugs_07 import LIKELY_BUGS

NOTEBOOK = "07_dropout"


def statistics(inverted_dropout, drop_probability=0.3, seed=0):
    """What a judge can measure of a dropout function, whatever random numbers it draws."""
    x = np.random.default_rng(seed).uniform(0.5, 1.5, size=(2000, 50))
    before = x.copy()
    out = inverted_dropout(x, drop_probability, True, np.random.default_rng(seed + 1))
    changed_input = not np.array_equal(x, before)
    x = before.copy()
    zero = out == 0
    test = inverted_dropout(x, drop_probability, False, np.random.default_rng(seed + 2))
    return {
        "zero share": zero.mean(),
        "mean ratio": (out / before).mean(),
        "rows share one mask": float((zero == zero[0]).all()),
        "test pass is x": float(np.array_equal(test, before)),
        "input changed": float(changed_input),
    }


TOLERANCE = {"zero share": 0.02, "mean ratio": 0.02, "rows share one mask": 0.5, "test pass is x": 0.5,
             "input changed": 0.5}


def differences(candidate):
    reference = statistics(regularization.inverted_dropout)
    measured = statistics(candidate)
    return {name: (measured[name], reference[name]) for name in reference
            if abs(measured[name] - reference[name]) > TOLERANCE[name]}


@pytest.mark.parametrize("variant, explanation", LIKELY_BUGS["inverted_dropout"],
                         ids=[variant.__name__ for variant, _ in LIKELY_BUGS["inverted_dropout"]])
def test_every_likely_bug_differs_from_the_reference(variant, explanation):
    assert differences(variant), f"{variant.__name__} looks like the reference: {explanation}"
    assert len(explanation) > 40


def test_the_notebook_solution_matches_the_reference():
    solution = exercise_solution(NOTEBOOK, "inverted_dropout", {"np": np})
    assert differences(solution) == {}
