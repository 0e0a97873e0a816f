"""Newton's method and L-BFGS against theory, scipy.optimize and torch.optim.LBFGS (float64); Hessian costs."""

import math

import numpy as np
import pytest
import scipy.optimize
import torch
from sklearn.datasets import load_digits

from course_lib import landscapes
from course_lib.second_order import (
    hessian_cost,
    lbfgs,
    lbfgs_on_landscape,
    lbfgs_torch,
    loglog_slope,
    newton,
    newton_direction,
    two_loop_direction,
)
from course_lib.trajectories import Trajectory

# --- Newton ----------------------------------------------------------------------------------------------------

QUADRATICS = {
    "3-D quadratic": (lambda: landscapes.quadratic([0.5, 2.0, 7.0]), (1.0, -2.0, 3.0)),
    "rotated, kappa=1e4": (lambda: landscapes.ill_conditioned_quadratic(kappa=1e4, angle=0.3), None),
}


@pytest.mark.parametrize("line_search", [True, False], ids=["line search", "full step"])
@pytest.mark.parametrize("name", QUADRATICS)
def test_newton_reaches_a_quadratics_minimum_in_one_step(name, line_search):
    make, start = QUADRATICS[name]
    landscape = make()
    trajectory = newton(landscape, start=start, steps=1, line_search=line_search)
    scale = np.linalg.norm(trajectory.points[0])
    np.testing.assert_allclose(trajectory.final, landscape.global_minimum, atol=1e-12 * scale)
    assert trajectory.losses[-1] <= 1e-20 * trajectory.losses[0]


def test_newton_direction_is_minus_inverse_hessian_times_gradient():
    rng = np.random.default_rng(0)
    m = rng.standard_normal((6, 6))
    hessian, gradient = m @ m.T + 0.1 * np.eye(6), rng.standard_normal(6)
    np.testing.assert_allclose(newton_direction(hessian, gradient), -np.linalg.inv(hessian) @ gradient,
                               rtol=1e-10)


def test_newton_converges_on_rosenbrock():
    valley = landscapes.rosenbrock()
    damped = newton(valley, steps=40)
    np.testing.assert_allclose(damped.final, valley.global_minimum, atol=1e-12)
    assert np.all(np.diff(damped.losses) <= 0)  # the line search never lets f rise
    errors = damped.distances(valley.global_minimum)
    assert np.argmax(errors < 1e-10) < 30
    full_steps = newton(valley, steps=20, line_search=False)  # converges too here, though f rises on the way
    np.testing.assert_allclose(full_steps.final, valley.global_minimum, atol=1e-12)


def test_newton_escapes_the_saddle_that_plain_newton_walks_into():
    landscape = landscapes.saddle()
    damped = newton(landscape, steps=30)
    distances_to_minima = [np.linalg.norm(damped.final - m) for m in landscape.minima]
    assert min(distances_to_minima) < 1e-10
    plain = newton(landscape, steps=30, damping=None, line_search=False)
    np.testing.assert_allclose(plain.final, landscape.saddles[0], atol=1e-6)
    # Where H is indefinite the plain Newton direction can point uphill; the shifted one never does.
    point = np.array([0.0, 0.1])
    gradient, hessian = landscape.grad(point), landscape.hessian(point)
    assert gradient @ newton_direction(hessian, gradient, damping=None) > 0
    assert gradient @ newton_direction(hessian, gradient) < 0


@pytest.mark.parametrize("damping", [0.0, -1e-3, math.nan, math.inf, "1e-6"])
def test_bad_damping_is_refused(damping):
    with pytest.raises(ValueError, match=r"^damping must be None or a finite number > 0"):
        newton(landscapes.rosenbrock(), damping=damping)
    with pytest.raises(ValueError, match=r"^damping must be"):
        newton_direction(np.eye(2), np.ones(2), damping=damping)


def test_bad_newton_arguments_are_refused():
    with pytest.raises(ValueError, match=r"^line_search must be True or False"):
        newton(landscapes.rosenbrock(), line_search="yes")
    with pytest.raises(ValueError, match=r"^steps must be an integer >= 0"):
        newton(landscapes.rosenbrock(), steps=-1)


# --- The two-loop recursion ------------------------------------------------------------------------------------

def random_spd(d, rng):
    m = rng.standard_normal((d, d))
    return m @ m.T / d + np.eye(d)


def conjugate_history(hessian, rng):
    """d steps that are conjugate (s_i^T H s_j = 0 for i != j), as exact line searches on a quadratic make them."""
    steps = []
    for v in rng.standard_normal((len(hessian), len(hessian))):
        steps.append(v - sum((s @ hessian @ v) / (s @ hessian @ s) * s for s in steps))
    return steps, [hessian @ s for s in steps]


@pytest.mark.parametrize("as_tensor", [False, True], ids=["numpy", "torch"])
def test_two_loop_direction_is_the_newton_direction_when_the_history_spans_a_quadratic(as_tensor):
    rng = np.random.default_rng(1)
    hessian = random_spd(6, rng)
    s_history, y_history = conjugate_history(hessian, rng)
    gradient = rng.standard_normal(6)
    expected = -np.linalg.solve(hessian, gradient)
    vector = torch.tensor if as_tensor else np.asarray
    s_history, y_history = [vector(s) for s in s_history], [vector(y) for y in y_history]
    direction = two_loop_direction(vector(gradient), s_history, y_history)
    assert isinstance(direction, torch.Tensor) == as_tensor
    np.testing.assert_allclose(np.asarray(direction), expected, rtol=1e-10)
    # With one pair fewer the history no longer spans the space: the direction is not -H^-1 g.
    fewer = two_loop_direction(vector(gradient), s_history[1:], y_history[1:])
    assert np.linalg.norm(np.asarray(fewer) - expected) > 1e-3


def test_two_loop_direction_satisfies_the_secant_equation_for_the_newest_pair():
    rng = np.random.default_rng(2)
    hessian = random_spd(8, rng)
    s_history = list(rng.standard_normal((4, 8)))  # not conjugate: only the newest pair is reproduced exactly
    y_history = [hessian @ s for s in s_history]
    np.testing.assert_allclose(two_loop_direction(y_history[-1], s_history, y_history), -s_history[-1],
                               rtol=1e-10)


def test_two_loop_direction_without_curvature_information_is_scaled_steepest_descent():
    rng = np.random.default_rng(3)
    gradient = rng.standard_normal(5)
    np.testing.assert_array_equal(two_loop_direction(gradient, [], []), -gradient)
    # A gradient orthogonal to every s and y only sees the initial scaling gamma = s^T y / y^T y.
    s_history = [np.array([1.0, 0.5, 0, 0, 0]), np.array([0.2, -1.0, 0, 0, 0])]
    y_history = [np.array([2.0, 0.1, 0, 0, 0]), np.array([0.3, -3.0, 0, 0, 0])]
    gamma = s_history[-1] @ y_history[-1] / (y_history[-1] @ y_history[-1])
    orthogonal = np.array([0.0, 0.0, 1.0, -2.0, 0.5])
    np.testing.assert_allclose(two_loop_direction(orthogonal, s_history, y_history), -gamma * orthogonal,
                               rtol=1e-14)


def test_two_loop_direction_numpy_and_torch_agree():
    rng = np.random.default_rng(4)
    hessian = random_spd(10, rng)
    s_history = list(rng.standard_normal((5, 10)))
    y_history = [hessian @ s + 0.01 * rng.standard_normal(10) for s in s_history]
    gradient = rng.standard_normal(10)
    ours = two_loop_direction(gradient, s_history, y_history)
    tensor = two_loop_direction(torch.tensor(gradient), [torch.tensor(s) for s in s_history],
                                [torch.tensor(y) for y in y_history])
    np.testing.assert_allclose(tensor.numpy(), ours, rtol=1e-13, atol=1e-15)


def test_two_loop_direction_refuses_histories_of_different_lengths():
    with pytest.raises(ValueError, match=r"^y_history must be as long as s_history \(2\)"):
        two_loop_direction(np.ones(2), [np.ones(2), np.ones(2)], [np.ones(2)])


# --- L-BFGS against scipy and torch ----------------------------------------------------------------------------

def scipy_lbfgs(fun_and_grad, x0):
    return scipy.optimize.minimize(fun_and_grad, x0, jac=True, method="L-BFGS-B",
                                   options={"maxcor": 10, "gtol": 1e-10, "ftol": 1e-15, "maxiter": 1000})


def torch_lbfgs(loss, x0):
    """torch.optim.LBFGS (strong Wolfe, float64) from x0; the minimizer and its iteration count."""
    w = torch.nn.Parameter(torch.tensor(x0, dtype=torch.float64))
    optimizer = torch.optim.LBFGS([w], lr=1, max_iter=1000, max_eval=5000, history_size=10, tolerance_grad=1e-9,
                                  tolerance_change=1e-15, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        value = loss(w)
        value.backward()
        return value

    optimizer.step(closure)
    return w.detach().numpy(), optimizer.state[w]["n_iter"]


def test_lbfgs_matches_scipy_and_torch_on_rosenbrock():
    valley = landscapes.rosenbrock()
    ours = lbfgs(lambda x: (valley.f(x), valley.grad(x)), valley.start, tolerance=1e-10, max_iter=500)
    reference = scipy_lbfgs(lambda x: (valley.f(x), valley.grad(x)), np.array(valley.start))
    torch_x, torch_iterations = torch_lbfgs(lambda w: (1 - w[0]) ** 2 + 100 * (w[1] - w[0] ** 2) ** 2,
                                            valley.start)
    assert ours.converged
    for x in (ours.x, reference.x, torch_x):
        np.testing.assert_allclose(x, valley.global_minimum, atol=1e-8)
    assert 0.5 <= ours.iterations / reference.nit <= 2
    assert 0.5 <= ours.iterations / torch_iterations <= 2


def digits_logistic_regression(penalty=1e-2):
    """Regularized logistic regression telling 3s from 8s in sklearn's digits (float64): loss(w) in torch and
    fun_and_grad(x) on numpy vectors through autograd. The loss is penalty-strongly convex."""
    images, labels = load_digits(return_X_y=True)
    keep = (labels == 3) | (labels == 8)
    features = torch.tensor(np.c_[images[keep] / 16.0, np.ones(keep.sum())])
    targets = torch.tensor(labels[keep] == 8, dtype=torch.float64)

    def loss(w):
        return torch.nn.functional.binary_cross_entropy_with_logits(features @ w, targets) + penalty / 2 * w @ w

    def fun_and_grad(x):
        w = torch.tensor(x, requires_grad=True)
        value = loss(w)
        value.backward()
        return value.item(), w.grad.numpy()

    return loss, fun_and_grad, np.zeros(features.shape[1])


def test_lbfgs_matches_scipy_and_torch_on_logistic_regression():
    penalty = 1e-2
    loss, fun_and_grad, x0 = digits_logistic_regression(penalty)
    ours = lbfgs(fun_and_grad, x0, tolerance=1e-8)
    reference = scipy_lbfgs(fun_and_grad, x0)
    torch_x, torch_iterations = torch_lbfgs(loss, x0)
    assert ours.converged
    # f is penalty-strongly convex, so ||x - x*|| <= ||grad f(x)|| / penalty for every x.
    for x in (reference.x, torch_x):
        bound = (ours.gradient_norm + np.linalg.norm(fun_and_grad(x)[1])) / penalty
        assert np.linalg.norm(ours.x - x) <= bound
        assert fun_and_grad(x)[0] == pytest.approx(ours.value, rel=1e-12)
    assert np.linalg.norm(ours.x) > 1  # the minimum is not the start
    assert 0.5 <= ours.iterations / reference.nit <= 2
    assert 0.5 <= ours.iterations / torch_iterations <= 2


def test_lbfgs_numpy_and_torch_paths_agree_on_a_torch_model():
    loss, fun_and_grad, x0 = digits_logistic_regression()
    ours = lbfgs(fun_and_grad, x0, tolerance=1e-8)
    model = torch.nn.Linear(64, 1).double()  # two parameters, weight then bias: the layout of x above
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)

    def closure():
        value = loss(torch.cat([model.weight.reshape(-1), model.bias]))
        value.backward()
        return value

    theirs = lbfgs_torch(model.parameters(), closure, tolerance=1e-8)
    assert isinstance(theirs.x, torch.Tensor) and theirs.iterations == ours.iterations
    # Same algorithm, same loss; only numpy's and torch's rounding differ, which the line searches can amplify.
    differences = np.linalg.norm(theirs.path - ours.path, axis=1)
    assert np.all(differences <= 1e-8 * np.linalg.norm(ours.path, axis=1))
    np.testing.assert_array_equal(torch.cat([model.weight.detach().reshape(-1), model.bias.detach()]), theirs.x)


def test_lbfgs_result_records_the_path():
    valley = landscapes.rosenbrock()
    result = lbfgs(lambda x: (valley.f(x), valley.grad(x)), valley.start)
    assert result.path.shape == (result.iterations + 1, 2)
    np.testing.assert_array_equal(result.path[0], valley.start)
    np.testing.assert_array_equal(result.path[-1], result.x)
    np.testing.assert_allclose(result.losses, valley.f(result.points.T), rtol=1e-15)
    assert np.all(np.diff(result.losses) < 0)  # sufficient decrease at every step
    # the evaluations spent to reach each iterate: none for the start, then at least one per step (a line search)
    assert result.evaluation_counts[0] == 0 and np.all(np.diff(result.evaluation_counts) >= 1)
    assert result.evaluation_counts[-1] == result.evaluations
    assert result.evaluations >= result.iterations + 1
    assert result.gradient_norm == pytest.approx(np.linalg.norm(valley.grad(result.x)))
    trajectory = lbfgs_on_landscape(valley)  # an LBFGSResult is a Trajectory: plots and measurements take it
    np.testing.assert_array_equal(trajectory.points, result.points)
    assert isinstance(trajectory, Trajectory) and not trajectory.diverged


@pytest.mark.parametrize("c2", [0.9, 0.1])
def test_every_lbfgs_step_meets_the_strong_wolfe_conditions(c2):
    valley, c1 = landscapes.rosenbrock(), 1e-4
    result = lbfgs(lambda x: (valley.f(x), valley.grad(x)), valley.start, c1=c1, c2=c2)
    for x, next_x in zip(result.path[:-1], result.path[1:], strict=True):
        step = next_x - x  # t_k d_k: both conditions are invariant to how it splits into t_k and d_k
        slope, next_slope = valley.grad(x) @ step, valley.grad(next_x) @ step
        assert valley.f(next_x) <= valley.f(x) + c1 * slope
        assert abs(next_slope) <= c2 * abs(slope)
        assert next_slope - slope > 0  # hence s^T y > 0: every pair is usable
    assert result.converged


def test_lbfgs_stops_after_max_iter_and_starts_converged():
    valley = landscapes.rosenbrock()
    result = lbfgs(lambda x: (valley.f(x), valley.grad(x)), valley.start, max_iter=5)
    assert (result.iterations, result.converged, result.message) == (5, False, "max_iter steps taken")
    at_minimum = lbfgs(lambda x: (valley.f(x), valley.grad(x)), valley.global_minimum)
    assert (at_minimum.iterations, at_minimum.evaluations, at_minimum.converged) == (0, 1, True)


def test_lbfgs_keeps_descending_where_the_curvature_is_negative():
    # cos is concave on (-pi/2, pi/2). Two evaluations per line search are too few to always meet the curvature
    # condition there, so some steps give s^T y < 0: pairs that must stay out of the history.
    result = lbfgs(lambda x: (np.cos(x[0]), -np.sin(x)), [0.1], max_line_search=2, max_iter=50)
    s, y = np.diff(result.path[:, 0]), -np.diff(np.sin(result.path[:, 0]))
    assert np.any(s * y < 0)  # the case under test happened
    assert result.converged and result.value == pytest.approx(-1.0, abs=1e-14)  # a minimum of cos
    assert np.all(np.diff(result.losses) < 0)


BAD_LBFGS_ARGUMENTS = [
    ({"x0": np.zeros((2, 2))}, "x0", "1-D"), ({"x0": []}, "x0", "non-empty"),
    ({"history_size": 0}, "history_size", ">= 1"), ({"history_size": 2.0}, "history_size", "integer"),
    ({"max_iter": -1}, "max_iter", ">= 0"), ({"tolerance": -1e-8}, "tolerance", ">= 0"),
    ({"tolerance": math.nan}, "tolerance", "finite"), ({"c1": 0.0}, "c1", "(0, 0.5)"),
    ({"c1": 0.6}, "c1", "(0, 0.5)"), ({"c2": 1e-5}, "c2", "(c1, 1)"), ({"c2": 1.0}, "c2", "(c1, 1)"),
    ({"max_line_search": 0}, "max_line_search", ">= 1"), ({"direction": "two-loop"}, "direction", "a function"),
]


@pytest.mark.parametrize("bad, parameter, expected_range", BAD_LBFGS_ARGUMENTS,
                         ids=[f"{p}={b[p]!r}" for b, p, _ in BAD_LBFGS_ARGUMENTS])
def test_bad_lbfgs_arguments_are_refused_with_their_name_and_range(bad, parameter, expected_range):
    valley = landscapes.rosenbrock()
    args = {"x0": valley.start, **bad}
    with pytest.raises(ValueError, match=rf"^{parameter} must be") as error:
        lbfgs(lambda x: (valley.f(x), valley.grad(x)), **args)
    assert expected_range in str(error.value)


def test_lbfgs_torch_refuses_an_empty_parameter_list():
    with pytest.raises(ValueError, match=r"^params must be a non-empty iterable of tensors"):
        lbfgs_torch([], lambda: torch.zeros(()))


# --- What the Hessian costs ------------------------------------------------------------------------------------

def test_hessian_memory_grows_as_n_squared_and_the_time_fit_runs():
    cost = hessian_cost(sizes=(50, 100, 200, 400), repeats=2)
    # tracemalloc's count of what the process holds: the matrix's own bytes plus an object header or so
    matrix_bytes = np.array([np.zeros((n, n)).nbytes for n in (50, 100, 200, 400)])
    assert np.all(cost.bytes >= matrix_bytes) and np.all(cost.bytes < matrix_bytes + 4096)
    assert loglog_slope(cost.sizes, cost.bytes) == pytest.approx(2.0, abs=0.01)
    assert np.all(cost.seconds > 0) and cost.seconds[-1] > cost.seconds[0]
    assert math.isfinite(loglog_slope(cost.sizes, cost.seconds))


def test_loglog_slope_recovers_the_exponent_of_a_power_law():
    x = np.array([3.0, 10.0, 40.0, 200.0])
    assert loglog_slope(x, 0.7 * x**2.5) == pytest.approx(2.5, abs=1e-12)
    assert loglog_slope(x, 5.0 / x) == pytest.approx(-1.0, abs=1e-12)


@pytest.mark.parametrize("call, parameter", [
    (lambda: hessian_cost(sizes=()), "sizes"), (lambda: hessian_cost(sizes=(10, 0)), "sizes"),
    (lambda: hessian_cost(sizes=(10.5,)), "sizes"), (lambda: hessian_cost(sizes=(10,), repeats=0), "repeats"),
    (lambda: loglog_slope([1.0], [1.0]), "x"), (lambda: loglog_slope([1.0, 0.0], [1.0, 2.0]), "x"),
    (lambda: loglog_slope([1.0, 2.0], [1.0, -2.0]), "y"), (lambda: loglog_slope([1.0, 2.0], [1.0]), "y"),
])
def test_bad_cost_arguments_are_refused(call, parameter):
    with pytest.raises(ValueError, match=rf"^{parameter} must be"):
        call()
