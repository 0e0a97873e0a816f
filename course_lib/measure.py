"""Measurements on trajectories and random Hessians, for the claim checks in the notebooks."""

import numpy as np

__all__ = ["convergence_rate", "drops_at", "overshoot", "saddle_share", "steps_near", "steps_to_reach"]


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
