"""Measurements on trajectories and random Hessians, for the claim checks in the notebooks.

Each measurement takes a ``course_lib.trajectories.Trajectory`` (or a curve); ``overshoots`` and
``valley_rates`` are the sweeps several notebooks make: one run per setting, one measurement per run.
"""

import numpy as np

from course_lib import landscapes
from course_lib.trajectories import run

__all__ = [
    "convergence_rate",
    "drops_at",
    "overshoot",
    "overshoots",
    "running_mean",
    "saddle_share",
    "steps_near",
    "steps_to_reach",
    "valley_rates",
]


def convergence_rate(trajectory, target, floor=1e-11):
    """The per-step factor r by which the distance to ``target`` shrinks, fitted over the run's second half.

    The fit is log(distance_k) = a + b log(k) + k log(r) by least squares. The log(k) term absorbs the
    polynomial factor of a critically damped run (momentum at its best rho shrinks like k r^k, not r^k);
    for a plain geometric run b comes out near 0. Distances below ``floor`` times the initial distance are
    left out: there rounding error, not the method, sets the pace.
    """
    distances = trajectory.distances(target)
    usable = np.flatnonzero(distances > floor * distances[0])
    last = usable[-1] if usable.size else 0
    steps = np.arange(max(last // 2, 1), last + 1)
    if steps.size < 6:
        raise ValueError("the run is too short to measure a rate: it needs at least 12 steps above the floor")
    design = np.column_stack([np.ones(steps.size), np.log(steps), steps])
    coefficients = np.linalg.lstsq(design, np.log(distances[steps]), rcond=None)[0]
    return float(np.exp(coefficients[2]))


def overshoot(trajectory, target):
    """How far the run went past ``target``, as a fraction of its starting distance.

    Distances are measured along the line from the target to the start: 0 means the run never crossed the
    target, 0.5 that it got to half the starting distance on the far side.
    """
    offsets = trajectory.points - np.asarray(target, dtype=float)
    start_distance = np.linalg.norm(offsets[0])
    direction = offsets[0] / start_distance
    return float(max(0.0, -(offsets @ direction).min()) / start_distance)


def overshoots(rule, landscape, learning_rates, steps=1500, **config):
    """``overshoot`` of ``rule`` on ``landscape`` (from its start, towards its global minimum) at each learning
    rate; ``config`` holds the rule's other hyperparameters (e.g. rho=0.9)."""
    return [overshoot(run(rule, landscape, steps=steps, config={**config, "learning_rate": learning_rate}),
                      landscape.global_minimum) for learning_rate in learning_rates]


def valley_rates(rule, kappas, tuned, steps):
    """The ``convergence_rate`` of ``rule`` on ``ill_conditioned_quadratic(kappa)`` for each kappa, and the runs.

    ``tuned(largest, smallest)`` gives the rule's config from the valley's extreme curvatures (1 and 1/kappa),
    e.g. ``theory.momentum_best_hyperparameters``. Returns (rates, trajectories), one of each per kappa.
    """
    rates, trajectories = [], []
    for kappa in kappas:
        valley = landscapes.ill_conditioned_quadratic(kappa)
        trajectory = run(rule, valley, steps=steps, config=tuned(1.0, 1.0 / kappa))
        rates.append(convergence_rate(trajectory, valley.global_minimum))
        trajectories.append(trajectory)
    return rates, trajectories


def steps_to_reach(trajectory, target, tolerance):
    """The first step at which the run is within ``tolerance`` of ``target``, or None if it never is."""
    hits = np.flatnonzero(trajectory.distances(target) < tolerance)
    return int(hits[0]) if hits.size else None


def steps_near(trajectory, point, radius):
    """How many iterates lie within ``radius`` of ``point`` (e.g. how long a run lingers at a saddle)."""
    return int(np.sum(trajectory.distances(point) < radius))


def saddle_share(dimension, samples=2000, seed=0):
    """The share of saddles among the critical points of random functions in ``dimension`` dimensions.

    At a critical point a function looks like its Hessian; model the Hessian as a random symmetric matrix
    with Gaussian entries (the Gaussian orthogonal ensemble). A critical point is a saddle when its Hessian
    has eigenvalues of both signs.
    """
    rng = np.random.default_rng(seed)
    matrices = rng.standard_normal((samples, dimension, dimension))
    eigenvalues = np.linalg.eigvalsh((matrices + matrices.transpose(0, 2, 1)) / 2)
    mixed = (eigenvalues.min(axis=1) < 0) & (eigenvalues.max(axis=1) > 0)
    return float(mixed.mean())


def drops_at(losses, boundaries, window):
    """How much a loss curve falls across each boundary, and how much it fell just before.

    For each boundary b: (mean of the ``window`` losses before b / mean of the ``window`` after b, mean of the
    ``window`` before that / mean of the ``window`` just before b). A visible drop at a learning-rate decay is
    a first ratio well above 1 next to a second ratio near 1 (the curve had flattened out).
    """
    losses = np.asarray(losses, dtype=float)
    result = []
    for b in boundaries:
        if b - 2 * window < 0 or b + window > losses.size:
            raise ValueError(f"boundary {b} needs {2 * window} losses before it and {window} after")
        before, earlier, after = (losses[a:a + window].mean() for a in (b - window, b - 2 * window, b))
        result.append((before / after, earlier / before))
    return result


def running_mean(values, window):
    """The mean of every ``window`` consecutive values: a noisy curve (losses step by step) smoothed, shorter by
    window - 1. Fewer values than ``window`` are returned as they are."""
    values = np.asarray(values, dtype=float)
    if values.size < window:
        return values
    return np.convolve(values, np.ones(window) / window, mode="valid")
