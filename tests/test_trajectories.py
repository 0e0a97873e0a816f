"""The runner: trajectories, divergence at the right step without warnings, bad rules refused."""

import warnings

import numpy as np
import pytest

from course_lib import landscapes, optim
from course_lib.trajectories import BLOWUP_RADIUS, Trajectory, descend, nesterov_lookahead, run


def test_divergence_is_reported_at_the_first_bad_step_without_warnings():
    valley = landscapes.ill_conditioned_quadratic(kappa=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trajectory = run(optim.sgd, valley, steps=10_000, config={"learning_rate": 3.0})
    # The steep coordinate grows by |1 - 3| = 2 per step from 0.9 until it passes BLOWUP_RADIUS.
    expected = int(np.ceil(np.log(BLOWUP_RADIUS / 0.9) / np.log(2.0)))
    assert trajectory.diverged_at == expected
    assert len(trajectory.points) == expected and np.all(np.isfinite(trajectory.points))


def test_nan_iterates_stop_the_run():
    def poisoned(x, dx, config=None):
        return x * np.nan, config

    trajectory = run(poisoned, landscapes.saddle(), steps=5)
    assert trajectory.diverged_at == 1 and len(trajectory.points) == 1


def test_losses_follow_the_points():
    rosenbrock = landscapes.rosenbrock()
    trajectory = run(optim.adam, rosenbrock, steps=25, config={"learning_rate": 0.1})
    np.testing.assert_allclose(trajectory.losses, [rosenbrock(p) for p in trajectory.points])


def test_gradient_noise_is_repeatable_and_seeded():
    valley = landscapes.ill_conditioned_quadratic(kappa=10)
    first, again, other = (run(optim.sgd, valley, steps=50, gradient_noise=0.3, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(first.points, again.points)
    assert not np.array_equal(first.points, other.points)


@pytest.mark.parametrize("result, message", [
    (lambda x, dx, config=None: x, "a rule must return (next_x, config)"),
    (lambda x, dx, config=None: (np.zeros(3), config), "next_x of shape (3,), expected (2,)"),
])
def test_a_rule_returning_the_wrong_thing_is_named(result, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        run(result, landscapes.saddle(), steps=3)


@pytest.mark.parametrize("arguments, parameter", [
    ({"steps": -1}, "steps"), ({"steps": 2.5}, "steps"), ({"gradient_noise": -0.1}, "gradient_noise"),
    ({"start": (1.0, 2.0, 3.0)}, "start"),
])
def test_bad_run_arguments_are_refused(arguments, parameter):
    with pytest.raises(ValueError, match=parameter):
        run(optim.sgd, landscapes.saddle(), **arguments)


def test_lookahead_nesterov_matches_the_change_of_variables_form():
    valley = landscapes.ill_conditioned_quadratic(kappa=30, angle=0.4)
    lookahead, velocities = nesterov_lookahead(valley, steps=100, learning_rate=0.5, rho=0.8)
    changed = run(optim.nesterov, valley, steps=100, config={"learning_rate": 0.5, "rho": 0.8})
    np.testing.assert_allclose(changed.points, lookahead.points + 0.8 * velocities, atol=1e-14)


def test_descend_keeps_every_record_every_th_iterate_and_counts_the_evaluations():
    valley = landscapes.ill_conditioned_quadratic(kappa=10)
    calls = []

    def gradient(x):
        calls.append(x)
        return valley.grad(x)

    every = run(optim.sgd, valley, steps=10, config={"learning_rate": 0.5})
    kept = descend(optim.sgd, gradient, lambda points: valley.f(points.T), valley.start, 10,
                   {"learning_rate": 0.5}, record_every=3)
    assert len(calls) == 10 and list(kept.evaluation_counts) == [0, 3, 6, 9, 10]
    np.testing.assert_array_equal(kept.points, every.points[[0, 3, 6, 9, 10]])
    np.testing.assert_array_equal(kept.losses, every.losses[[0, 3, 6, 9, 10]])
    np.testing.assert_array_equal(kept.at([0, 2, 3, 8, 100]), every.points[[0, 0, 3, 6, 10]])
    assert kept.message == "10 steps taken" and not kept.diverged


def test_a_trajectory_counts_one_evaluation_per_step_unless_told():
    trajectory = Trajectory(np.zeros((4, 2)), np.zeros(4))
    assert list(trajectory.evaluation_counts) == [0, 1, 2, 3] and trajectory.path is trajectory.points
