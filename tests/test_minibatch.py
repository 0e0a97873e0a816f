"""Finite-sum losses, and first-order rules, the course's L-BFGS and torch's fed their mini-batches under a budget
of gradient evaluations (course_lib.minibatch)."""

import math
from itertools import count, repeat

import numpy as np
import pytest
import torch
from finite_sums import counted, digits_softmax

from course_lib import landscapes, optim
from course_lib.minibatch import (
    lbfgs_minibatch,
    minibatch_descent,
    softmax_regression,
    torch_lbfgs_minibatch,
    torch_lbfgs_minimum,
)
from course_lib.second_order import lbfgs


def test_softmax_regression_loss_and_gradient_match_torch_autograd():
    problem = digits_softmax(penalty=0.05)
    rng = np.random.default_rng(0)
    w = 0.1 * rng.standard_normal(problem.size)
    batch = rng.choice(len(problem.labels), 40, replace=False)
    features, labels = torch.tensor(problem.features), torch.tensor(problem.labels)
    for rows in (slice(None), batch):
        weights = torch.tensor(w, requires_grad=True)
        logits = features[rows] @ weights.view(problem.features.shape[1], problem.classes)
        loss = torch.nn.functional.cross_entropy(logits, labels[rows]) + 0.05 / 2 * weights @ weights
        loss.backward()
        value, gradient = problem.fun_and_grad(w, None if isinstance(rows, slice) else rows)
        assert value == pytest.approx(loss.item(), rel=1e-13)
        np.testing.assert_allclose(gradient, weights.grad.numpy(), rtol=1e-10, atol=1e-14)
    assert problem.size == 65 * 10 and problem.fun_and_grad(problem.x0)[0] == pytest.approx(math.log(10))
    np.testing.assert_allclose(problem.losses([problem.x0, w]), [math.log(10), problem.fun_and_grad(w)[0]])


def test_softmax_regression_batches_are_shuffled_epochs_without_the_remainder():
    problem = digits_softmax(rows=103)
    batches = problem.batches(25, seed=3)
    epoch = [next(batches) for _ in range(4)]
    assert all(len(b) == 25 for b in epoch)
    assert len(np.unique(np.concatenate(epoch))) == 100  # 4 batches of an epoch never repeat an example
    again = problem.batches(25, seed=3)
    assert all(np.array_equal(b, next(again)) for b in epoch)  # seeded: the same batches every time
    assert not np.array_equal(next(batches), epoch[0])  # the next epoch is a fresh permutation


@pytest.mark.parametrize("bad, parameter", [
    ({"features": np.zeros(5)}, "features"), ({"features": np.full((5, 2), np.nan)}, "features"),
    ({"labels": np.zeros(4)}, "labels"), ({"labels": np.full(5, -1)}, "labels"),
    ({"labels": np.full(5, 0.5)}, "labels"), ({"penalty": -1.0}, "penalty"), ({"penalty": math.inf}, "penalty"),
])
def test_bad_softmax_regression_arguments_are_refused(bad, parameter):
    args = {"features": np.zeros((5, 2)), "labels": np.arange(5), **bad}
    with pytest.raises(ValueError, match=rf"^{parameter} must be"):
        softmax_regression(**args)
    with pytest.raises(ValueError, match=r"^batch_size must be an integer in \[1, 5\]"):
        next(softmax_regression(np.zeros((5, 2)), np.arange(5)).batches(6))


def test_minibatch_descent_is_the_rule_applied_once_per_evaluation():
    problem = digits_softmax()
    run = minibatch_descent(optim.adam, problem.fun_and_grad, problem.x0, 25, config={"learning_rate": 0.1},
                            record_every=10)
    x, config = problem.x0, {"learning_rate": 0.1}
    for _ in range(25):
        x, config = optim.adam(x, problem.fun_and_grad(x)[1], config)
    np.testing.assert_array_equal(run.final, x)
    assert list(run.evaluation_counts) == [0, 10, 20, 25]
    np.testing.assert_array_equal(run.at(19), run.path[1])
    batches = problem.batches(16, seed=2)
    expected = [next(problem.batches(16, seed=2))]
    fun_and_grad, calls = counted(problem.fun_and_grad)
    run = minibatch_descent(optim.sgd, fun_and_grad, problem.x0, 3, batches=batches)
    evaluations = [batch for batch in calls if batch is not None]
    assert np.array_equal(evaluations[0], expected[0]) and len(evaluations) == 3
    # the full-batch losses of the record, computed once the run is over, are not evaluations of the run
    assert calls[3:] == [None] * 4 and np.array_equal(run.losses, problem.losses(run.points))
    blown = minibatch_descent(optim.sgd, problem.fun_and_grad, problem.x0, 50, config={"learning_rate": 1e300})
    assert blown.diverged_at == len(blown.points) == 1 and np.all(np.isfinite(blown.points))  # the run stopped


def test_torch_lbfgs_minibatch_on_one_repeated_batch_is_torch_lbfgs():
    problem = digits_softmax()
    everything = np.arange(len(problem.labels))
    run = torch_lbfgs_minibatch(lambda x, batch: problem.fun_and_grad(x, batch), problem.x0, 200,
                                repeat(everything), max_iter=15, line_search_fn="strong_wolfe")
    w = torch.nn.Parameter(torch.zeros(problem.size, dtype=torch.float64))
    optimizer = torch.optim.LBFGS([w], max_iter=15, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        value, gradient = problem.fun_and_grad(w.detach().numpy().copy())
        w.grad = torch.tensor(gradient)
        return torch.tensor(value, dtype=torch.float64)  # torch.tensor(a float) alone would be float32

    optimizer.step(closure)
    np.testing.assert_allclose(run.path[1], w.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert run.evaluation_counts[1] == optimizer.state[w]["func_evals"]
    assert run.evaluation_counts[-1] <= 201 and run.message == "max_evaluations gradient evaluations used"


@pytest.mark.parametrize("call, parameter", [
    (lambda f, x: minibatch_descent(optim.sgd, f, x, 0), "max_evaluations"),
    (lambda f, x: minibatch_descent(optim.sgd, f, x, 5, record_every=0), "record_every"),
    (lambda f, x: torch_lbfgs_minibatch(f, x, 0, repeat(None)), "max_evaluations"),
    (lambda f, x: lbfgs_minibatch(f, x, 0), "max_evaluations"),
    (lambda f, x: lbfgs_minibatch(f, x, 5, fresh_batch="epoch"), "fresh_batch"),
    (lambda f, x: lbfgs_minibatch(f, x, 5, direction="two-loop"), "direction"),
    (lambda f, x: lbfgs_minibatch(f, x, 5, tolerance=-1.0), "tolerance"),
])
def test_bad_minibatch_arguments_are_refused(call, parameter):
    valley = landscapes.rosenbrock()
    with pytest.raises(ValueError, match=rf"^{parameter} must be"):
        call(lambda x: (valley.f(x), valley.grad(x)), np.array(valley.start))


# --- the course's L-BFGS with a budget of evaluations, and fed mini-batches --------------------------------------

def test_lbfgs_minibatch_on_the_full_batch_takes_exactly_lbfgs_steps():
    valley = landscapes.rosenbrock()
    fun_and_grad, calls = counted(lambda x: (valley.f(x), valley.grad(x)))
    reference = lbfgs(lambda x: (valley.f(x), valley.grad(x)), valley.start, tolerance=1e-10, max_iter=500)
    ours = lbfgs_minibatch(fun_and_grad, valley.start, 10_000, tolerance=1e-10)
    np.testing.assert_array_equal(ours.points, reference.points)
    np.testing.assert_array_equal(ours.losses, reference.losses)
    assert ours.message == "gradient norm <= tolerance" and ours.evaluations == len(calls)
    np.testing.assert_array_equal(ours.evaluation_counts, reference.evaluation_counts)
    assert ours.evaluation_counts[-1] == reference.evaluations and ours.evaluation_counts[0] == 0
    problem = digits_softmax()
    reference = lbfgs(problem.fun_and_grad, problem.x0, max_iter=30)
    ours = lbfgs_minibatch(problem.fun_and_grad, problem.x0, reference.evaluations)
    np.testing.assert_array_equal(ours.points, reference.points)
    assert ours.message == "max_evaluations gradient evaluations used"


def test_lbfgs_minibatch_spends_exactly_its_budget():
    problem = digits_softmax()
    for batches in (None, problem.batches(32)):
        for fresh_batch in ("evaluation", "iteration"):
            fun_and_grad, calls = counted(problem.fun_and_grad)
            run = lbfgs_minibatch(fun_and_grad, problem.x0, 57, batches=batches, fresh_batch=fresh_batch)
            evaluations = calls if batches is None else [batch for batch in calls if batch is not None]
            assert len(evaluations) == 57 == run.evaluations and run.evaluation_counts[-1] <= 57
            assert run.message == "max_evaluations gradient evaluations used"
            assert np.all(np.diff(run.evaluation_counts) > 0) and len(run.points) == len(run.evaluation_counts)
            # the record holds the full-batch loss at each iterate, whatever the batches
            np.testing.assert_allclose(run.losses, problem.losses(run.points), rtol=1e-14)


def test_lbfgs_minibatch_draws_a_batch_per_evaluation_or_per_iteration():
    problem = digits_softmax()
    fun_and_grad, calls = counted(problem.fun_and_grad)
    lbfgs_minibatch(fun_and_grad, problem.x0, 60, batches=problem.batches(32, seed=1))
    evaluations = [batch for batch in calls if batch is not None]
    assert len({id(batch) for batch in evaluations}) == 60  # a fresh batch at every call
    fun_and_grad, calls = counted(problem.fun_and_grad)
    run = lbfgs_minibatch(fun_and_grad, problem.x0, 60, batches=problem.batches(32, seed=1),
                          fresh_batch="iteration")
    evaluations = [batch for batch in calls if batch is not None]
    fresh = [i for i in range(len(evaluations)) if i == 0 or evaluations[i] is not evaluations[i - 1]]
    assert len(fresh) >= len(run.points) - 1  # one batch per step (restarts draw one more)
    assert len(evaluations) > 1.5 * len(fresh)  # each batch serves the step's line search and its pair


def test_lbfgs_minibatch_uses_the_direction_it_is_given():
    valley = landscapes.rosenbrock()
    seen = []

    def steepest(gradient, s_history, y_history):
        seen.append((type(s_history), len(s_history)))
        return -gradient

    run = lbfgs_minibatch(lambda x: (valley.f(x), valley.grad(x)), valley.start, 200, direction=steepest)
    assert all(kind is list for kind, _ in seen) and max(length for _, length in seen) == 10
    assert np.linalg.norm(run.final - valley.global_minimum) > 1e-3  # steepest descent is slow on Rosenbrock


def test_lbfgs_minibatch_survives_a_line_search_whose_bracket_collapses():
    # A loss that changes at every call: after one promising trial every later one looks worse, so the zoom
    # shrinks [lo, hi] onto lo until the two steps are equal. The search then stops and returns lo, the lowest
    # point with sufficient decrease, as it does when it runs out of evaluations.
    calls = count()

    def fun_and_grad(x, batch):
        if batch is None:  # the full-batch loss of the record
            return 0.0, np.zeros(1)
        value, slope = {0: (1.0, 1.0), 1: (0.5, 0.95)}.get(batch, (2.0, 0.0))
        return value, np.array([slope])

    run = lbfgs_minibatch(fun_and_grad, np.zeros(1), 40, batches=calls, tolerance=1e-8)
    np.testing.assert_array_equal(run.points, [[0.0], [-1.0]])  # one step, to the promising trial at t = 1
    assert run.message == "gradient norm <= tolerance"


def test_torch_lbfgs_minimum_is_scipys_and_numpys_minimum():
    from scipy import optimize

    # Notebook 05's yardstick, against scipy's conjugate gradient (another algorithm, another implementation)...
    problem = digits_softmax(penalty=1e-3)
    x, value, gradient = torch_lbfgs_minimum(problem.fun_and_grad, problem.x0)
    reference = optimize.minimize(problem.fun_and_grad, problem.x0, jac=True, method="CG", options={"gtol": 1e-9})
    assert reference.success
    assert np.linalg.norm(gradient) ** 2 / (2 * problem.penalty) < 1e-12
    assert value == pytest.approx(reference.fun, abs=1e-12)
    assert value == pytest.approx(problem.fun_and_grad(x)[0], abs=0)
    # ... and a quadratic's minimum from np.linalg.solve, within what its gradient bounds (|x - x*| <= |grad| / mu,
    # mu >= 1 here).
    rng = np.random.default_rng(0)
    a = rng.standard_normal((20, 20))
    hessian, b = a @ a.T + np.eye(20), rng.standard_normal(20)
    quadratic = lambda v: (0.5 * v @ hessian @ v - b @ v, hessian @ v - b)  # noqa: E731
    x, value, gradient = torch_lbfgs_minimum(quadratic, np.zeros(20))
    assert np.linalg.norm(gradient) < 1e-6
    assert np.linalg.norm(x - np.linalg.solve(hessian, b)) <= np.linalg.norm(gradient) * (1 + 1e-6)
    # The check can fail: stopped after one iteration, it is far from the minimum.
    _, early, _ = torch_lbfgs_minimum(problem.fun_and_grad, problem.x0, max_iter=1)
    assert early - reference.fun > 1e-3
