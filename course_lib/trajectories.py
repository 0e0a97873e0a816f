"""Run an update rule on a landscape and keep the path it takes.

``run(rule, landscape, ...)`` returns a ``Trajectory``: the iterates, their losses and, when the run blew up,
the step at which it did. A run stops cleanly at the first iterate that is not finite or that has flown
beyond ``BLOWUP_RADIUS``, so a diverging run never floods the screen with overflow warnings; the plots draw
it as diverged.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["BLOWUP_RADIUS", "Trajectory", "nesterov_lookahead", "run"]

BLOWUP_RADIUS = 1e6


@dataclass(frozen=True)
class Trajectory:
    """The iterates x_0 .. x_n of one run (rows of ``points``) and the loss at each."""

    points: np.ndarray
    losses: np.ndarray
    diverged_at: int | None = None  # the step whose iterate was not finite or left BLOWUP_RADIUS

    @property
    def diverged(self):
        return self.diverged_at is not None

    @property
    def final(self):
        return self.points[-1]

    def distances(self, target):
        """Euclidean distance of every iterate to ``target`` (e.g. the landscape's minimum)."""
        return np.linalg.norm(self.points - np.asarray(target, dtype=float), axis=1)

    def step_lengths(self):
        """||x_{k+1} - x_k|| for every step."""
        return np.linalg.norm(np.diff(self.points, axis=0), axis=1)


def run(rule, landscape, start=None, steps=100, config=None, gradient_noise=0.0, seed=0):
    """Take ``steps`` steps of ``rule`` on ``landscape`` from ``start`` (default: the landscape's start).

    ``config`` holds the rule's hyperparameters. ``gradient_noise`` > 0 adds Gaussian noise of that standard
    deviation to every gradient coordinate (a stochastic gradient); ``seed`` makes the noise repeatable.
    """
    if not (isinstance(steps, int | np.integer) and steps >= 0):
        raise ValueError(f"steps must be an integer >= 0, got {steps!r}")
    if not (np.isfinite(gradient_noise) and gradient_noise >= 0):
        raise ValueError(f"gradient_noise must be a finite number >= 0, got {gradient_noise!r}")
    x = np.array(landscape.start if start is None else start, dtype=float)
    if x.shape != np.shape(landscape.global_minimum):
        raise ValueError(f"start must have shape {np.shape(landscape.global_minimum)}, got {x.shape}")
    # All the noise is drawn at once: the same numbers as drawing it step by step, at a fraction of the cost.
    noise = None
    if gradient_noise:
        noise = gradient_noise * np.random.default_rng(seed).standard_normal((steps, *x.shape))
    points = [x]
    diverged_at = None
    with np.errstate(all="ignore"):
        for step in range(1, steps + 1):
            dx = landscape.grad(x)
            if noise is not None:
                dx = dx + noise[step - 1]
            x, config = _checked_step(rule, x, dx, config)
            # One comparison catches inf, NaN (every comparison with NaN is False) and a run flying away.
            if not np.abs(x).max() < BLOWUP_RADIUS:
                diverged_at = step
                break
            points.append(x)
        points = np.array(points)
        losses = np.asarray(landscape.f(points.T), dtype=float)
    return Trajectory(points, losses, diverged_at)


def _checked_step(rule, x, dx, config):
    result = rule(x, dx, config)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise ValueError(f"a rule must return (next_x, config), got {type(result).__name__}")
    next_x = np.asarray(result[0], dtype=float)
    if next_x.shape != x.shape:
        raise ValueError(f"the rule returned next_x of shape {next_x.shape}, expected {x.shape}")
    return next_x, result[1]


def nesterov_lookahead(landscape, start=None, steps=100, learning_rate=1e-2, rho=0.9):
    """Nesterov momentum in its first form in the lecture: the gradient is taken at the look-ahead point.

        velocity = rho * velocity - learning_rate * grad(x + rho * velocity)
        x = x + velocity

    Returns the trajectory of x and the velocities v_0 .. v_n (rows). ``course_lib.optim.nesterov`` runs the
    change-of-variables form on x~ = x + rho * velocity instead; notebook 02 checks that the two agree.
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
