"""Full batch against mini-batches: a finite-sum loss, and the runs that feed it batches under a budget.

A ``SoftmaxRegression`` is a smooth, strongly convex loss that is an average over examples, so it has a
full-batch value and gradient and, for any batch of example indices, a mini-batch one whose expectation is
the full one. Its ``fun_and_grad(x, batch=None)`` is the contract of every run here: (f, grad f) on the
examples ``batch`` (indices), or on all of them when the batch is None.

The runs count gradient evaluations, so that methods with different costs per step (a line search spends
several) compare on one axis. Each takes a budget, ``max_evaluations``, and ``batches``: an iterator of index
arrays (e.g. ``problem.batches(64)``), or None for the full batch at every evaluation.

- ``minibatch_descent``: an update rule of course_lib.optim, one evaluation per step (the loop of
  course_lib.trajectories, with the finite sum as its gradient oracle);
- ``lbfgs_minibatch``: the course's L-BFGS (course_lib.second_order) under that budget, fed batches;
- ``torch_lbfgs_minibatch``: torch.optim.LBFGS as a practitioner drops it into a mini-batch training loop.

Each returns a ``course_lib.trajectories.Trajectory`` whose ``evaluation_counts`` are the evaluations spent to
reach each point and whose ``losses`` are the full-batch loss there (which a mini-batch run never sees).

``torch_lbfgs_minimum`` is the yardstick: the full-batch minimum by torch.optim.LBFGS, code other than the
code under test.
"""

import math
from dataclasses import dataclass, replace

import numpy as np
import torch

from course_lib.second_order import LBFGS
from course_lib.trajectories import BLOWUP_RADIUS, Trajectory, descend
from course_lib.validation import is_integer, is_real, require

__all__ = ["SoftmaxRegression", "lbfgs_minibatch", "minibatch_descent", "softmax_regression",
           "torch_lbfgs_minibatch", "torch_lbfgs_minimum"]


@dataclass(frozen=True)
class SoftmaxRegression:
    """L2-regularized softmax (multinomial logistic) regression, float64: a smooth, strongly convex finite sum.

        f(w) = -(1/n) sum_i log softmax(W^T x_i)[y_i] + penalty/2 ||w||^2,     w = W.ravel(), W of shape (d+1, C)
        grad f(w) = X^T (P - Y) / n + penalty W

    where P holds the softmax probabilities, Y the one-hot labels, and every x_i ends in a 1 (the bias; the
    penalty applies to it too, so f is penalty-strongly convex). ``fun_and_grad(w)`` is (f(w), grad f(w)) on
    all n examples, ``fun_and_grad(w, batch)`` the same average over the examples ``batch`` (indices) only:
    the mini-batch loss, whose expectation over random batches is f.
    """

    features: np.ndarray  # (n, d + 1), the last column ones
    labels: np.ndarray  # (n,) integers in [0, C)
    classes: int
    penalty: float

    @property
    def size(self):
        """The number of parameters, (d + 1) C."""
        return self.features.shape[1] * self.classes

    @property
    def x0(self):
        """The start every run uses: all weights zero (f(x0) = log C)."""
        return np.zeros(self.size)

    def fun_and_grad(self, w, batch=None):
        features, labels = (self.features, self.labels) if batch is None else (self.features[batch],
                                                                                 self.labels[batch])
        weights = np.asarray(w, dtype=float).reshape(self.features.shape[1], self.classes)
        logits = weights.T @ features.T  # (C, n): the reductions over the few classes run along whole rows
        logits -= logits.max(axis=0)
        log_probabilities = logits - np.log(np.exp(logits).sum(axis=0))
        columns = np.arange(len(labels))
        value = -log_probabilities[labels, columns].mean() + self.penalty / 2 * float(np.sum(weights * weights))
        residual = np.exp(log_probabilities)
        residual[labels, columns] -= 1
        gradient = (residual @ features).T / len(labels) + self.penalty * weights
        return float(value), gradient.ravel()

    def losses(self, points):
        """The full-batch f at every row of ``points`` (the iterates of a run)."""
        return np.array([self.fun_and_grad(point)[0] for point in np.atleast_2d(points)])

    def batches(self, batch_size, seed=0):
        """Mini-batches of ``batch_size`` example indices, endlessly: each epoch a fresh permutation of the n
        examples, cut into n // batch_size batches (the remainder is dropped, as DataLoader's drop_last does)."""
        require(is_integer(batch_size, 1) and batch_size <= len(self.labels), "batch_size",
                 f"an integer in [1, {len(self.labels)}]", batch_size)
        rng = np.random.default_rng(seed)
        while True:
            order = rng.permutation(len(self.labels))
            for start in range(0, len(order) - batch_size + 1, batch_size):
                yield order[start:start + batch_size]


def softmax_regression(features, labels, penalty=1e-3):
    """A ``SoftmaxRegression`` on ``features`` (n x d, numpy or torch) and integer ``labels`` (n), in float64,
    with a bias column appended; e.g. ``softmax_regression(digits.x_train, digits.y_train)``."""
    features, labels = np.asarray(features, dtype=float), np.asarray(labels, dtype=float)
    require(features.ndim == 2 and features.shape[0] > 0 and np.all(np.isfinite(features)), "features",
             "a finite 2-D array with at least one row", f"shape {features.shape}")
    require(labels.shape == (features.shape[0],) and np.all(labels == np.round(labels)) and labels.min() >= 0,
             "labels", f"{features.shape[0]} integers >= 0 (one per row of features)", f"shape {labels.shape}")
    require(is_real(penalty) and 0 <= penalty < math.inf, "penalty", "a finite number >= 0", penalty)
    labels = labels.astype(np.int64)
    return SoftmaxRegression(np.c_[features, np.ones(len(labels))], labels, int(labels.max()) + 1, float(penalty))


class _Feed:
    """``fun_and_grad`` as a function of x alone: each call on the next batch (or on the batch held), or on the
    full batch when there are no batches."""

    def __init__(self, fun_and_grad, batches):
        self.fun_and_grad, self.batches, self.held = fun_and_grad, batches, None

    def __call__(self, x):
        if self.batches is None:
            return self.fun_and_grad(x)
        return self.fun_and_grad(x, next(self.batches) if self.held is None else self.held)

    def hold_next_batch(self):
        """Draw the next batch and use it for every call until the next one is drawn."""
        self.held = next(self.batches)

    def full_losses(self, points):
        """The full-batch f at every row of ``points``, for the record (not an evaluation of the run)."""
        if self.batches is None:
            return np.array([float(self.fun_and_grad(point)[0]) for point in points])
        return np.array([float(self.fun_and_grad(point, None)[0]) for point in points])


def _check_max_evaluations(max_evaluations):
    require(is_integer(max_evaluations, 1), "max_evaluations", "an integer >= 1", max_evaluations)


def minibatch_descent(rule, fun_and_grad, x0, max_evaluations, batches=None, config=None, record_every=1):
    """A first-order update rule of course_lib.optim (sgd, adam, ...) for ``max_evaluations`` steps, one gradient
    evaluation each, on the next batch B_k of ``batches`` (None: the full batch every time):

        x_{k+1}, config = rule(x_k, grad f_{B_k}(x_k), config)

    Keeps x_0, every ``record_every``-th iterate and the last; a run whose iterate stops being finite (or flies
    away) ends there, as every run of course_lib.trajectories.descend does.
    """
    _check_max_evaluations(max_evaluations)
    require(is_integer(record_every, 1), "record_every", "an integer >= 1", record_every)
    feed = _Feed(fun_and_grad, batches)
    return descend(rule, lambda x: feed(x)[1], feed.full_losses, x0, max_evaluations, config, record_every)


def lbfgs_minibatch(fun_and_grad, x0, max_evaluations, batches=None, fresh_batch="evaluation", tolerance=0.0,
                    **options):
    """The course's L-BFGS (course_lib.second_order.lbfgs, the same iteration) with a budget of
    ``max_evaluations`` calls of fun_and_grad, on the full batch (``batches=None``) or fed mini-batches.

    A line search is cut short to fit the budget. The run also stops when ||grad f|| <= tolerance or, on the
    full batch, when the line search finds no lower point. Fed mini-batches (claim 20), ``fresh_batch`` says
    when the next batch is drawn:

    - ``"evaluation"``: at every call, which is what L-BFGS does when simply handed a stochastic loss: the line
      search compares f on different batches, and y_k = g_B'(x_{k+1}) - g_B(x_k) mixes two batches' gradients;
    - ``"iteration"``: once per step, so the step's line search and its pair see one function; it costs one
      more evaluation per step (the new batch's gradient at x_k), as in multi-batch L-BFGS (Berahas, Nocedal
      and Takac, 2016; here without overlap).

    Where a full-batch run would stop because the line search found no lower point, a mini-batch run restarts
    (history cleared, as calling lbfgs again from x would) and goes on. ``options`` are lbfgs's (history_size,
    c1, c2, max_line_search, direction). Returns an ``LBFGSResult``: its ``value`` is f at the last iterate on
    the batch of the moment, its ``losses`` the full-batch f.
    """
    _check_max_evaluations(max_evaluations)
    require(fresh_batch in ("evaluation", "iteration"), "fresh_batch", "'evaluation' or 'iteration'", fresh_batch)
    feed = _Feed(fun_and_grad, batches)
    search = LBFGS(feed, x0, tolerance=tolerance, **options)
    per_iteration = batches is not None and fresh_batch == "iteration"
    message, stale = "max_evaluations gradient evaluations used", True  # stale: no gradient at x yet
    while search.evaluations < max_evaluations:
        if per_iteration:
            feed.hold_next_batch()
        if per_iteration or stale:
            search.evaluate()
            stale = False
        if search.converged:
            message = "gradient norm <= tolerance"
            break
        line_search_budget = min(search.max_line_search, max_evaluations - search.evaluations)
        if line_search_budget == 0:
            break
        if not search.step(line_search_budget):
            if batches is None:
                message = "the line search found no lower point"
                break
            search.forget()
            stale = True
    result = search.result(message)
    return result if batches is None else replace(result, losses=feed.full_losses(result.points))


def torch_lbfgs_minibatch(fun_and_grad, x0, max_evaluations, batches, **options):
    """torch.optim.LBFGS as a practitioner puts it in a mini-batch training loop: one batch per ``step(closure)``.

        optimizer = torch.optim.LBFGS([w], **options)            # defaults: lr=1, max_iter=20, no line search
        for batch in batches:
            optimizer.step(closure)                              # closure: the loss of this batch

    Each step() runs up to max_iter iterations on its batch; the curvature history (and the previous
    gradient) carries over to the next batch, so the first pair of a step mixes two batches' gradients.
    ``fun_and_grad(x, batch)`` computes the loss, float64. The run ends once ``max_evaluations`` closure calls
    are used (a step's last iteration may add one) or when w stops being finite (or flies away); the Trajectory
    keeps w after every step().
    """
    _check_max_evaluations(max_evaluations)
    w = torch.nn.Parameter(torch.tensor(np.array(x0, dtype=float)))
    optimizer = torch.optim.LBFGS([w], **options)
    max_eval = optimizer.param_groups[0]["max_eval"]
    used, evaluations, points, diverged_at = 0, [0], [w.detach().numpy().copy()], None

    def closure(batch):
        nonlocal used
        used += 1
        value, gradient = fun_and_grad(w.detach().numpy().copy(), batch)
        w.grad = torch.as_tensor(gradient, dtype=w.dtype)
        return torch.tensor(float(value), dtype=w.dtype)

    while used < max_evaluations:
        batch = next(batches)
        optimizer.param_groups[0]["max_eval"] = min(max_eval, max_evaluations - used)
        optimizer.step(lambda batch=batch: closure(batch))
        w_now = w.detach().numpy().copy()
        if not np.abs(w_now).max() < BLOWUP_RADIUS:
            diverged_at = len(points)
            break
        evaluations.append(used)
        points.append(w_now)
    points = np.array(points)
    message = "max_evaluations gradient evaluations used" if diverged_at is None else "diverged"
    return Trajectory(points, _Feed(fun_and_grad, batches).full_losses(points), diverged_at, np.array(evaluations),
                      message)


def torch_lbfgs_minimum(fun_and_grad, x0, history_size=10, max_iter=5000):
    """The minimum of a full-batch loss by torch.optim.LBFGS (torch's implementation, its strong-Wolfe line
    search), run until it makes no more progress: a yardstick for the course's L-BFGS from code other than the
    code under test. ``fun_and_grad(x)`` computes the loss and its gradient, float64.

    Returns (x, f(x), grad f(x)). Judge x by its gradient, not by trust in the solver: for a mu-strongly convex
    f (a SoftmaxRegression with a penalty mu), f(x) - f* <= |grad f(x)|^2 / (2 mu).
    """
    require(is_integer(history_size, 1), "history_size", "an integer >= 1", history_size)
    require(is_integer(max_iter, 1), "max_iter", "an integer >= 1", max_iter)
    w = torch.nn.Parameter(torch.tensor(np.array(x0, dtype=float)))
    optimizer = torch.optim.LBFGS([w], lr=1, max_iter=max_iter, max_eval=2 * max_iter, tolerance_grad=1e-10,
                                  tolerance_change=0.0, history_size=history_size, line_search_fn="strong_wolfe")

    def closure():
        value, gradient = fun_and_grad(w.detach().numpy().copy())
        w.grad = torch.as_tensor(gradient, dtype=w.dtype)
        return torch.tensor(float(value), dtype=w.dtype)

    optimizer.step(closure)
    x = w.detach().numpy().copy()
    value, gradient = fun_and_grad(x)
    return x, float(value), np.asarray(gradient)
