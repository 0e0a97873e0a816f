"""Finite-sum losses, and first-order rules and torch's L-BFGS fed their mini-batches (course_lib.minibatch)."""

import math
from itertools import repeat

import numpy as np
import pytest
import torch
from finite_sums import counted, digits_softmax

from course_lib import landscapes, optim
from course_lib.minibatch import minibatch_descent, softmax_regression, torch_lbfgs_minibatch


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
    minibatch_descent(optim.sgd, fun_and_grad, problem.x0, 3, batches=batches)
    assert np.array_equal(calls[0], expected[0]) and len(calls) == 3
    blown = minibatch_descent(optim.sgd, problem.fun_and_grad, problem.x0, 50, config={"learning_rate": 1e300})
    assert blown.message == "diverged" and blown.evaluation_counts[-1] < 50


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
])
def test_bad_minibatch_arguments_are_refused(call, parameter):
    valley = landscapes.rosenbrock()
    with pytest.raises(ValueError, match=rf"^{parameter} must be"):
        call(lambda x: (valley.f(x), valley.grad(x)), np.array(valley.start))
