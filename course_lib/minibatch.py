"""Full batch against mini-batches: a finite-sum loss, and first-order rules and torch's L-BFGS fed its batches.

A ``SoftmaxRegression`` is a smooth, strongly convex loss that is an average over examples, so it has a
full-batch value and gradient and, for any batch of example indices, a mini-batch one whose expectation is
the full one. The runs here count gradient evaluations, so that methods with different costs per step (a line
search spends several) compare on one axis:

- ``minibatch_descent``: an update rule of course_lib.optim, one evaluation per step;
- ``torch_lbfgs_minibatch``: torch.optim.LBFGS as a practitioner drops it into a mini-batch training loop;
- the course's own L-BFGS is ``course_lib.second_order.lbfgs`` with ``batches=`` (one implementation).

Each returns a ``course_lib.second_order.EvaluationRun``.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch

from course_lib.second_order import EvaluationRun, _as_numpy
from course_lib.validation import is_integer, is_real, require

__all__ = ["SoftmaxRegression", "minibatch_descent", "softmax_regression", "torch_lbfgs_minibatch"]


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
    features, labels = _as_numpy(torch.as_tensor(features)), np.asarray(_as_numpy(torch.as_tensor(labels)))
    require(features.ndim == 2 and features.shape[0] > 0 and np.all(np.isfinite(features)), "features",
             "a finite 2-D array with at least one row", f"shape {features.shape}")
    require(labels.shape == (features.shape[0],) and np.all(labels == np.round(labels)) and labels.min() >= 0,
             "labels", f"{features.shape[0]} integers >= 0 (one per row of features)", f"shape {labels.shape}")
    require(is_real(penalty) and 0 <= penalty < math.inf, "penalty", "a finite number >= 0", penalty)
    labels = labels.astype(np.int64)
    return SoftmaxRegression(np.c_[features, np.ones(len(labels))], labels, int(labels.max()) + 1, float(penalty))


def minibatch_descent(rule, fun_and_grad, x0, max_evaluations, batches=None, config=None, record_every=1):
    """A first-order update rule of course_lib.optim (sgd, adam, ...) for ``max_evaluations`` steps, one gradient
    evaluation each: ``fun_and_grad(x)`` (full batch, ``batches=None``) or ``fun_and_grad(x, next(batches))``.

        x_{k+1}, config = rule(x_k, grad_k, config)

    Records x_0 and every ``record_every``-th iterate (and the last) in an ``EvaluationRun``; a run whose
    iterate stops being finite ends there ("diverged").
    """
    require(is_integer(max_evaluations, 1), "max_evaluations", "an integer >= 1", max_evaluations)
    require(is_integer(record_every, 1), "record_every", "an integer >= 1", record_every)
    x, config = np.array(x0, dtype=float), dict(config or {})
    evaluations, path, message = [0], [x], "max_evaluations gradient evaluations used"
    with np.errstate(all="ignore"):
        for used in range(1, max_evaluations + 1):
            _, gradient = fun_and_grad(x) if batches is None else fun_and_grad(x, next(batches))
            x, config = rule(x, gradient, config)
            if not np.all(np.isfinite(x)):
                message = "diverged"
            if used % record_every == 0 or used == max_evaluations or message == "diverged":
                evaluations.append(used)
                path.append(np.array(x, dtype=float))
            if message == "diverged":
                break
    return EvaluationRun(path=np.array(path), evaluation_counts=np.array(evaluations), message=message)


def torch_lbfgs_minibatch(fun_and_grad, x0, max_evaluations, batches, **options):
    """torch.optim.LBFGS as a practitioner puts it in a mini-batch training loop: one batch per ``step(closure)``.

        optimizer = torch.optim.LBFGS([w], **options)            # defaults: lr=1, max_iter=20, no line search
        for batch in batches:
            optimizer.step(closure)                              # closure: the loss of this batch

    Each step() runs up to max_iter iterations on its batch; the curvature history (and the previous
    gradient) carries over to the next batch, so the first pair of a step mixes two batches' gradients.
    ``fun_and_grad(x, batch)`` computes the loss, float64. The run ends once ``max_evaluations`` closure calls
    are used (a step's last iteration may add one) or when w stops being finite; an ``EvaluationRun`` records
    w after every step().
    """
    require(is_integer(max_evaluations, 1), "max_evaluations", "an integer >= 1", max_evaluations)
    w = torch.nn.Parameter(torch.tensor(np.array(x0, dtype=float)))
    optimizer = torch.optim.LBFGS([w], **options)
    max_eval = optimizer.param_groups[0]["max_eval"]
    used, evaluations, path, message = 0, [0], [_as_numpy(w)], "max_evaluations gradient evaluations used"

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
        evaluations.append(used)
        path.append(_as_numpy(w))
        if not np.all(np.isfinite(path[-1])):
            message = "diverged"
            break
    return EvaluationRun(path=np.array(path), evaluation_counts=np.array(evaluations), message=message)
