"""Measurements against constructed cases, and the theory functions against simulation or closed forms."""

import numpy as np
import pytest

from course_lib import landscapes, measure, optim, theory
from course_lib.trajectories import Trajectory, run


def trajectory_of(points):
    points = np.asarray(points, dtype=float)
    return Trajectory(points, np.zeros(len(points)))


@pytest.mark.parametrize("rate", [0.3, 0.9, 0.99])
def test_convergence_rate_of_a_geometric_sequence(rate):
    steps = np.arange(400)
    assert measure.convergence_rate(trajectory_of(np.c_[rate**steps, 0 * steps]), (0, 0)) == pytest.approx(rate)


def test_convergence_rate_sees_through_a_polynomial_factor():
    steps = np.arange(300)
    critically_damped = ((1 + 2 * steps) * 0.8**steps)[:, None] * np.ones((1, 2))  # a Jordan block's decay
    assert measure.convergence_rate(trajectory_of(critically_damped), (0, 0)) == pytest.approx(0.8, rel=1e-3)


def test_convergence_rate_needs_enough_steps():
    with pytest.raises(ValueError, match="too short"):
        measure.convergence_rate(trajectory_of([[1, 0], [0.5, 0], [0.25, 0]]), (0, 0))


def test_overshoot_along_the_line_of_approach():
    assert measure.overshoot(trajectory_of([[2, 0], [1, 0], [-0.5, 0.1], [0.1, 0]]), (0, 0)) == pytest.approx(0.25)
    assert measure.overshoot(trajectory_of([[2, 0], [1, 5], [0.1, -3]]), (0, 0)) == 0.0


def test_steps_to_reach_and_steps_near():
    path = trajectory_of([[1, 0], [0.5, 0], [0.05, 0], [0.01, 0], [0.3, 0]])
    assert measure.steps_to_reach(path, (0, 0), 0.1) == 2
    assert measure.steps_to_reach(path, (0, 0), 1e-3) is None
    assert measure.steps_near(path, (0, 0), 0.1) == 2


def test_saddle_share_limits():
    assert measure.saddle_share(1) == 0.0
    # For 2x2 symmetric Gaussian matrices the share of indefinite ones is 1/sqrt(2) (GOE, exact).
    assert measure.saddle_share(2, samples=40_000) == pytest.approx(1 / np.sqrt(2), abs=0.01)
    assert measure.saddle_share(8) == 1.0


def test_gradient_descent_rate_is_reached_at_the_best_learning_rate():
    valley = landscapes.quadratic([0.2, 3.0])
    best = theory.gradient_descent_best_learning_rate(3.0, 0.2)
    trajectory = run(optim.sgd, valley, start=(1.0, 1.0), steps=300, config={"learning_rate": best})
    assert measure.convergence_rate(trajectory, (0, 0)) == pytest.approx(theory.gradient_descent_rate(15.0))


def test_momentum_hyperparameters_reach_the_accelerated_rate():
    tuned = theory.momentum_best_hyperparameters(4.0, 0.04)
    trajectory = run(optim.sgd_momentum, landscapes.quadratic([0.04, 4.0]), start=(1.0, 1.0), steps=400,
                     config=tuned)
    assert measure.convergence_rate(trajectory, (0, 0)) == pytest.approx(theory.momentum_rate(100), rel=1e-3)


def test_condition_number_and_adam_ratio():
    assert theory.condition_number(np.diag([0.5, 2.0, 4.0])) == pytest.approx(8.0)
    with pytest.raises(ValueError, match="positive definite"):
        theory.condition_number(np.diag([-1.0, 1.0]))
    assert theory.adam_uncorrected_first_step_ratio(0.9, 0.999) == pytest.approx(0.1 / np.sqrt(0.001))


def test_noise_floor_formula_against_a_long_simulation():
    curvatures = np.repeat([0.5, 2.0], 25)
    trajectory = run(optim.sgd, landscapes.quadratic(curvatures), start=np.zeros(50), steps=8000,
                     config={"learning_rate": 0.2}, gradient_noise=0.3, seed=3)
    predicted = theory.noisy_gradient_descent_loss(curvatures, 0.2, 0.3)
    assert trajectory.losses[500:].mean() == pytest.approx(predicted, rel=0.05)


def test_drops_at_a_boundary():
    flat_then_lower = np.r_[np.full(40, 2.0), np.full(20, 1.0)]
    ((across, before),) = measure.drops_at(flat_then_lower, [40], window=20)
    assert (across, before) == (2.0, 1.0)
    with pytest.raises(ValueError, match="boundary 10 needs 40 losses before it"):
        measure.drops_at(flat_then_lower, [10], window=20)


def test_running_mean_averages_each_window():
    values = np.array([1.0, 2.0, 6.0, 3.0, 8.0])
    np.testing.assert_allclose(measure.running_mean(values, 2), [1.5, 4.0, 4.5, 5.5])
    np.testing.assert_allclose(measure.running_mean(values, 5), [4.0])
    np.testing.assert_array_equal(measure.running_mean(values[:2], 3), values[:2])  # too short: as it is


def test_overshoots_is_one_run_per_learning_rate():
    bowl = landscapes.ill_conditioned_quadratic(kappa=1)
    rates = [0.05, 0.5]
    runs = [run(optim.sgd_momentum, bowl, steps=300, config={"learning_rate": a, "rho": 0.8}) for a in rates]
    expected = [measure.overshoot(trajectory, bowl.global_minimum) for trajectory in runs]
    assert measure.overshoots(optim.sgd_momentum, bowl, rates, steps=300, rho=0.8) == expected
    assert min(expected) > 0


def test_valley_rates_tunes_each_valley_from_its_curvatures():
    kappas = [4, 25]
    rates, trajectories = measure.valley_rates(optim.sgd, kappas, theory.gradient_descent_best_hyperparameters,
                                               steps=300)
    np.testing.assert_allclose(rates, [theory.gradient_descent_rate(k) for k in kappas], rtol=1e-6)
    seen = []
    measure.valley_rates(optim.sgd, kappas, lambda largest, smallest: seen.append((largest, smallest)) or {},
                         steps=20)
    assert seen == [(1.0, 0.25), (1.0, 0.04)] and len(trajectories) == 2
    assert theory.gradient_descent_best_hyperparameters(3.0, 1.0) == {"learning_rate": 0.5}
