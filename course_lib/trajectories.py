"""Apply an update rule step by step, and keep the path it takes.

One loop, ``descend``, runs every first-order method of the workbook over a gradient oracle, a function that
returns the gradient at a point (one gradient evaluation per step):

- a landscape: ``run(rule, landscape, ...)``, the analytic gradient, plus Gaussian noise if asked for;
- a finite sum fed its mini-batches: ``course_lib.minibatch.minibatch_descent``.

Every run returns a ``Trajectory``, the one path type that every plot, measurement and check takes (an L-BFGS
result of course_lib.second_order is a Trajectory too). A run stops cleanly at the first iterate that is not
finite or that has flown beyond ``BLOWUP_RADIUS``, so a diverging run never floods the screen with overflow
warnings; the plots draw it as diverged.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["BLOWUP_RADIUS", "Trajectory", "descend", "nesterov_lookahead", "run"]

BLOWUP_RADIUS = 1e6


@dataclass(frozen=True)
class Trajectory:
    """The iterates x_0 .. x_n of one run (rows of ``points``), the loss at each, and their cost.

    ``losses`` is the objective at each point (for a mini-batch run, the full-batch loss, which the run itself
    never sees). ``evaluation_counts`` is the number of gradient evaluations spent to reach each point (0 for
    the start; by default one per step, 0, 1, 2, ...), so that methods whose steps cost differently (a line
    search spends several evaluations) compare on one axis.
    """

    points: np.ndarray
    losses: np.ndarray
    diverged_at: int | None = None  # the step whose iterate was not finite or left BLOWUP_RADIUS (not kept)
    evaluation_counts: np.ndarray | None = None
    message: str = ""  # why the run stopped

    def __post_init__(self):
        if self.evaluation_counts is None:
            object.__setattr__(self, "evaluation_counts", np.arange(len(self.points)))

    @property
    def diverged(self):
        return self.diverged_at is not None

    @property
    def final(self):
        return self.points[-1]

    @property
    def path(self):
        """The same rows as ``points``, under the name the solvers' results have always used."""
        return self.points

    def distances(self, target):
        """Euclidean distance of every iterate to ``target`` (e.g. the landscape's minimum)."""
        return np.linalg.norm(self.points - np.asarray(target, dtype=float), axis=1)

    def step_lengths(self):
        """||x_{k+1} - x_k|| for every step."""
        return np.linalg.norm(np.diff(self.points, axis=0), axis=1)

    def at(self, evaluations):
        """The last iterate reached within ``evaluations`` gradient evaluations (a number, or an array of
        budgets: then one row per budget, e.g. to put runs with different step costs on one axis)."""
        return self.points[np.searchsorted(self.evaluation_counts, evaluations, side="right") - 1]


def descend(rule, gradient, losses, start, steps, config=None, record_every=1):
    """The loop every first-order run goes through: ``steps`` steps of ``rule`` from ``start``.

        x_0 = start
        x_{k+1}, config = rule(x_k, gradient(x_k), config)          for k = 0, 1, ..., steps - 1

    ``gradient(x)`` is the gradient oracle (one evaluation per step, possibly stochastic); ``losses(points)``
    is the objective at each row of ``points``, computed once at the end for the record. Keeps x_0, every
    ``record_every``-th iterate and the last. Stops at the first iterate that is not finite or lies beyond
    BLOWUP_RADIUS (``diverged_at`` is its step; it is not kept). A rule that does not return
    ``(next_x, config)`` with next_x shaped like x raises ValueError.
    """
    x = np.array(start, dtype=float)
    points, counts, diverged_at = [x], [0], None
    with np.errstate(all="ignore"):
        for step in range(1, steps + 1):
            x, config = _checked_step(rule, x, gradient(x), config)
            # One comparison catches inf, NaN (every comparison with NaN is False) and a run flying away.
            if not np.abs(x).max() < BLOWUP_RADIUS:
                diverged_at = step
                break
            if step % record_every == 0 or step == steps:
                points.append(x)
                counts.append(step)
        points = np.array(points)
        values = np.asarray(losses(points), dtype=float)
    message = f"{steps} steps taken" if diverged_at is None else f"diverged at step {diverged_at}"
    return Trajectory(points, values, diverged_at, np.array(counts), message)


def _checked_step(rule, x, dx, config):
    result = rule(x, dx, config)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise ValueError(f"a rule must return (next_x, config), got {type(result).__name__}")
    next_x = np.asarray(result[0], dtype=float)
    if next_x.shape != x.shape:
        raise ValueError(f"the rule returned next_x of shape {next_x.shape}, expected {x.shape}")
    return next_x, result[1]


def run(rule, landscape, start=None, steps=100, config=None, gradient_noise=0.0, seed=0):
    """Take ``steps`` steps of ``rule`` on ``landscape`` from ``start`` (default: the landscape's start).

    ``config`` holds the rule's hyperparameters. ``gradient_noise`` > 0 adds Gaussian noise of that standard
    deviation to every gradient coordinate (a stochastic gradient); ``seed`` makes the noise repeatable.
    """
    if not (isinstance(steps, int | np.integer) and steps >= 0):
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if not (np.isfinite(gradient_noise) and gradient_noise >= 0):
        raise ValueError(f"gradient_noise must be a finite number >= 0, got {gradient_noise!r}")
    x0 = np.array(landscape.start if start is None else start, dtype=float)
    if x0.shape != np.shape(landscape.global_minimum):
        raise ValueError(f"start must have shape {np.shape(landscape.global_minimum)}, got {x0.shape}")
    gradient = landscape.grad
    if gradient_noise:
        # All the noise is drawn at once: the same numbers as drawing it step by step, at a fraction of the cost.
        noise = iter(gradient_noise * np.random.default_rng(seed).standard_normal((steps, *x0.shape)))

        def gradient(x):
            return landscape.grad(x) + next(noise)

    return descend(rule, gradient, lambda points: landscape.f(points.T), x0, steps, config)


def nesterov_lookahead(landscape, start=None, steps=100, learning_rate=1e-2, rho=0.9):
    """Nesterov momentum in its first form in the lecture: the gradient is taken at the look-ahead point.

        velocity = rho * velocity - learning_rate * grad(x + rho * velocity)
        x = x + velocity

    Returns the trajectory of x and the velocities v_0 .. v_n (rows). ``course_lib.optim.nesterov`` runs the
    change-of-variables form on x~ = x + rho * velocity instead; notebook 02 checks that the two agree. (The
    gradient is not taken at x, so this is no rule of the optim contract and has a loop of its own.)
    """
    x = np.array(landscape.start if start is None else start, dtype=float)
    velocity = np.zeros_like(x)
    points, velocities = [x], [velocity]
    with np.errstate(all="ignore"):
        for _ in range(steps):
            velocity = rho * velocity - learning_rate * landscape.grad(x + rho * velocity)
            x = x + velocity
            points.append(x)
            velocities.append(velocity)
    points = np.array(points)
    return Trajectory(points, np.asarray(landscape.f(points.T), dtype=float)), np.array(velocities)
