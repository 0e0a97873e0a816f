"""Second-order optimization: Newton's method, L-BFGS, and what the Hessian costs.

- ``newton`` steps by the inverse Hessian, x_{k+1} = x_k - t H^-1 grad f(x_k), on a ``Landscape`` and returns a
  ``Trajectory``; ``newton_direction`` is one such step's direction.
- ``lbfgs`` replaces H^-1 by the low-rank approximation that ``two_loop_direction`` builds from the last few
  steps s_k = x_{k+1} - x_k and gradient changes y_k = grad f(x_{k+1}) - grad f(x_k). ``lbfgs_on_landscape``
  runs it on a landscape; ``lbfgs_torch`` on the parameters of a torch model (full batch). Its iteration is the
  ``LBFGS`` class; course_lib.minibatch runs the same under a budget of evaluations and feeds it mini-batches,
  which shows why it does not transfer to that setting. Its result, ``LBFGSResult``, is a ``Trajectory``.
- ``hessian_cost`` measures the memory (O(N^2), counted by tracemalloc) and solve time (O(N^3)) of an N x N
  Hessian; ``loglog_slope`` reads the exponent off such a curve.

Vectors are 1-D numpy arrays; ``two_loop_direction`` and ``lbfgs`` also take 1-D torch tensors (same code, a
tensor in, a tensor out). An argument outside its valid range raises ``ValueError`` naming the parameter and
its range.
"""

import math
import time
import tracemalloc
from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch

from course_lib.trajectories import Trajectory, run
from course_lib.validation import is_integer, is_real, require

__all__ = [
    "DAMPING",
    "HessianCost",
    "LBFGS",
    "LBFGSResult",
    "hessian_cost",
    "lbfgs",
    "lbfgs_on_landscape",
    "lbfgs_torch",
    "loglog_slope",
    "newton",
    "newton_direction",
    "two_loop_direction",
]

DAMPING = 1e-6  # the smallest curvature a Newton step trusts (see newton_direction)
ARMIJO_C1 = 1e-4  # sufficient-decrease constant of both line searches
CURVATURE_COSINE = 1e-10  # a pair (s, y) is kept only if s^T y > CURVATURE_COSINE * ||s|| ||y||


# --- Newton's method -------------------------------------------------------------------------------------------

def newton_direction(hessian, gradient, damping=DAMPING):
    """The Newton direction -H^-1 grad f, found by a linear solve (never an inverse), made to point downhill.

        shift = max(0, damping - smallest eigenvalue of H)
        direction = -solve(H + shift * I, grad f)

    Where H is positive definite with curvatures >= damping, the shift is 0 and this is the plain Newton step.
    Elsewhere (near a saddle point or a maximum) the Levenberg-style shift lifts every eigenvalue to at least
    damping, so grad f^T direction < 0: plain Newton would head for the critical point, whatever its kind.
    ``damping=None`` gives that plain Newton step, -solve(H, grad f).
    """
    _check_damping(damping)
    hessian, gradient = np.asarray(hessian, dtype=float), np.asarray(gradient, dtype=float)
    if damping is not None:
        shift = max(0.0, damping - np.linalg.eigvalsh(hessian)[0])
        hessian = hessian + shift * np.eye(gradient.size)
    return -np.linalg.solve(hessian, gradient)


def newton(landscape, start=None, steps=20, damping=DAMPING, line_search=True):
    """Newton's method on ``landscape`` from ``start`` (default: the landscape's start).

        d_k = newton_direction(H(x_k), grad f(x_k), damping)
        x_{k+1} = x_k + t_k d_k

    With ``line_search`` the step t_k is the first of 1, 1/2, 1/4, ... that decreases f enough (backtracking
    Armijo: f(x + t d) <= f(x) + c1 t grad f^T d, c1 = 1e-4), or 0 when none does (x is optimal to rounding,
    or, with damping=None, d points uphill); without it t_k = 1. On a quadratic whose curvatures are all
    >= damping, the full step lands exactly on the minimum and the line search accepts it (claim 17).

    Returns a Trajectory: the run goes through course_lib.trajectories.run with the Newton step as the rule,
    so it stops at divergence like every other run.
    """
    _check_damping(damping)
    require(isinstance(line_search, bool), "line_search", "True or False", line_search)

    def newton_step(x, dx, config=None):
        direction = newton_direction(landscape.hessian(x), dx, damping)
        t = _armijo_step(landscape.f, x, dx, direction) if line_search else 1.0
        return x + t * direction, config

    return run(newton_step, landscape, start=start, steps=steps)


def _armijo_step(f, x, gradient, direction, halvings=50):
    """The first t in 1, 1/2, 1/4, ... with f(x + t d) <= f(x) + c1 t grad f^T d; 0 if there is none."""
    value, slope = float(f(x)), float(gradient @ direction)
    if not slope < 0:
        return 0.0
    t = 1.0
    for _ in range(halvings):
        if f(x + t * direction) <= value + ARMIJO_C1 * t * slope:
            return t
        t /= 2
    return 0.0


def _check_damping(damping):
    require(damping is None or (is_real(damping) and 0 < damping < math.inf), "damping",
             "None or a finite number > 0", damping)


# --- L-BFGS ----------------------------------------------------------------------------------------------------

def two_loop_direction(gradient, s_history, y_history):
    """The L-BFGS search direction -H_k grad f, by the two-loop recursion (Nocedal & Wright, Algorithm 7.4).

    s_history and y_history hold the last m steps s_i = x_{i+1} - x_i and gradient changes
    y_i = grad f(x_{i+1}) - grad f(x_i), oldest first; rho_i = 1 / (y_i^T s_i).

        q = grad f
        for i = newest ... oldest:   alpha_i = rho_i s_i^T q;   q = q - alpha_i y_i
        r = gamma q,   gamma = s^T y / y^T y of the newest pair (1 when there is none)
        for i = oldest ... newest:   beta = rho_i y_i^T r;      r = r + (alpha_i - beta) s_i
        return -r

    H_k is the BFGS inverse-Hessian approximation built from gamma * I with the m pairs; it never exists as a
    matrix. Works on numpy arrays and on torch tensors alike.
    """
    require(len(s_history) == len(y_history), "y_history", f"as long as s_history ({len(s_history)})",
             f"{len(y_history)} entries")
    q, alphas = gradient, []
    for s, y in zip(reversed(s_history), reversed(y_history), strict=True):
        alpha = (s @ q) / (y @ s)
        q = q - alpha * y
        alphas.append(alpha)
    gamma = (s_history[-1] @ y_history[-1]) / (y_history[-1] @ y_history[-1]) if len(s_history) else 1.0
    r = gamma * q
    for s, y, alpha in zip(s_history, y_history, reversed(alphas), strict=True):
        beta = (y @ r) / (y @ s)
        r = r + (alpha - beta) * s
    return -r


def lbfgs(fun_and_grad, x0, history_size=10, max_iter=100, tolerance=1e-8, c1=ARMIJO_C1, c2=0.9,
          max_line_search=20, direction=two_loop_direction):
    """Minimize f from x0 with L-BFGS (Nocedal & Wright, Algorithm 7.5); ``fun_and_grad(x)`` is (f(x), grad f(x)).

        d_k = direction(grad f(x_k), s_history, y_history)                  # two-loop: -H_k grad f(x_k)
        x_{k+1} = x_k + t_k d_k                                             # t_k: strong Wolfe line search
        s_k = x_{k+1} - x_k,   y_k = grad f(x_{k+1}) - grad f(x_k)          # kept if s_k^T y_k > 0
        keep the newest history_size pairs

    The line search looks for a step with sufficient decrease and a flattened slope (strong Wolfe conditions,
    see ``_strong_wolfe``), trying t = 1 first. Why Wolfe and not plain backtracking: its curvature condition
    makes s^T y > 0 on any smooth f that is bounded below, so every pair can be used and H_k stays positive
    definite; backtracking only guarantees a decrease. It is also what torch.optim.LBFGS
    (line_search_fn="strong_wolfe") and scipy's L-BFGS-B use, so iteration counts compare. A pair whose s^T y is
    not positive (rounding, or a search that ran out of its max_line_search evaluations) is skipped. The first
    direction, -grad f, carries no curvature yet, so its first trial step has length at most 1.

    Stops when ||grad f|| <= tolerance (converged), after max_iter steps (None: no limit), or when the line
    search finds no lower point (x is optimal to rounding). x0 is a 1-D numpy array or torch tensor; the
    iterates keep its type. ``direction`` (default: the two-loop recursion) receives fresh lists, oldest first.
    Returns an ``LBFGSResult``: the path (a Trajectory) and where it ended. The same iteration under a budget of
    gradient evaluations, fed mini-batches, is ``course_lib.minibatch.lbfgs_minibatch``.
    """
    require(max_iter is None or is_integer(max_iter, 0), "max_iter", "None or an integer >= 0", max_iter)
    search = LBFGS(fun_and_grad, x0, history_size, tolerance, c1, c2, max_line_search, direction)
    search.evaluate()
    while not search.converged:
        if search.iterations == max_iter:
            return search.result("max_iter steps taken")
        if not search.step():
            return search.result("the line search found no lower point")
    return search.result("gradient norm <= tolerance")


@dataclass(frozen=True, kw_only=True)
class LBFGSResult(Trajectory):
    """An L-BFGS run: its path, a Trajectory (``losses``: f at each iterate, the full-batch f for a mini-batch
    run), and where it ended."""

    x: object  # the last iterate (a numpy array, or a torch tensor when x0 was one)
    value: float  # f(x) (on the last batch, for a mini-batch run)
    gradient_norm: float  # ||grad f(x)||
    iterations: int  # steps taken
    evaluations: int  # calls of fun_and_grad, the line searches' included
    converged: bool  # gradient_norm <= tolerance


class LBFGS:
    """An L-BFGS run, one iteration at a time: ``lbfgs`` runs it until it converges, course_lib.minibatch under a
    budget of gradient evaluations and on mini-batches. It records the iterates, f at each, and the calls of
    fun_and_grad spent to reach each. Its arguments are ``lbfgs``'s."""

    def __init__(self, fun_and_grad, x0, history_size=10, tolerance=1e-8, c1=ARMIJO_C1, c2=0.9, max_line_search=20,
                 direction=two_loop_direction):
        self.x = _check_lbfgs_arguments(x0, history_size, tolerance, c1, c2, max_line_search, direction)
        self.fun_and_grad, self.tolerance, self.direction = fun_and_grad, tolerance, direction
        self.c1, self.c2, self.max_line_search = c1, c2, max_line_search
        self.s_history, self.y_history = deque(maxlen=history_size), deque(maxlen=history_size)
        self.value, self.gradient, self.iterations, self.evaluations = None, None, 0, 0
        self.points, self.losses, self.counts = [], [], []

    def evaluate(self):
        """f and grad f at x, afresh: at the start, and where a mini-batch run draws a new batch."""
        value, self.gradient = self._fun_and_grad(self.x)
        self.value = float(value)
        if not self.points:
            self._record(count=0)

    @property
    def converged(self):
        return _norm(self.gradient) <= self.tolerance

    def forget(self):
        """Clear the curvature pairs: the next direction is steepest descent, as at the start."""
        self.s_history.clear()
        self.y_history.clear()

    def step(self, max_line_search=None):
        """One iteration of Algorithm 7.5 (at most ``max_line_search`` evaluations, default the run's); False, with
        x unchanged, when the line search finds no lower point.

            d_k = direction(grad f(x_k), s_history, y_history)
            x_{k+1} = x_k + t_k d_k
            s_k = x_{k+1} - x_k,   y_k = grad f(x_{k+1}) - grad f(x_k)          # kept if s_k^T y_k > 0
        """
        gradient = self.gradient
        direction = self.direction(gradient, list(self.s_history), list(self.y_history))
        if not float(gradient @ direction) < 0:  # rounding spoiled the curvature pairs: restart from -grad f
            self.forget()
            direction = -gradient
        first_trial = 1.0 if self.s_history else min(1.0, 1.0 / _norm(gradient))
        start = _LinePoint(0.0, self.x, self.value, gradient, float(gradient @ direction))
        point, _ = _strong_wolfe(self._fun_and_grad, start, direction, first_trial, self.c1, self.c2,
                                 max_line_search or self.max_line_search)
        if point is start:
            return False
        s, y = point.x - self.x, point.gradient - gradient
        if float(s @ y) > CURVATURE_COSINE * _norm(s) * _norm(y):
            self.s_history.append(s)
            self.y_history.append(y)
        self.x, self.value, self.gradient = point.x, point.value, point.gradient
        self.iterations += 1
        self._record(count=self.evaluations)
        return True

    def result(self, message):
        gradient_norm = _norm(self.gradient)
        return LBFGSResult(np.array(self.points), np.array(self.losses), evaluation_counts=np.array(self.counts),
                           message=message, x=self.x, value=self.value, gradient_norm=gradient_norm,
                           iterations=self.iterations, evaluations=self.evaluations,
                           converged=gradient_norm <= self.tolerance)

    def _fun_and_grad(self, x):
        self.evaluations += 1
        return self.fun_and_grad(x)

    def _record(self, count):
        self.points.append(_as_numpy(self.x))
        self.losses.append(self.value)
        self.counts.append(count)


class _LinePoint(NamedTuple):
    step: float  # t
    x: object  # x + t d
    value: float  # f(x + t d)
    gradient: object  # grad f(x + t d)
    slope: float  # grad f(x + t d)^T d


def _strong_wolfe(fun_and_grad, start, direction, step, c1, c2, max_evaluations):
    """A step t along d meeting the strong Wolfe conditions (Nocedal & Wright, Algorithms 3.5 and 3.6):

        f(x + t d) <= f(x) + c1 t grad f(x)^T d             (sufficient decrease)
        |grad f(x + t d)^T d| <= c2 |grad f(x)^T d|         (curvature: the slope has flattened)

    Bracketing tries t, 2t, 4t, ... until [lo, hi] must hold such a step; zooming then shrinks [lo, hi] by cubic
    interpolation. lo is always the lowest point with sufficient decrease found so far; it is returned, with
    the evaluations used, when they run out or the bracket collapses (``start`` itself when no point decreased
    f).
    """

    def evaluate(t):
        x = start.x + t * direction
        value, gradient = fun_and_grad(x)
        return _LinePoint(t, x, float(value), gradient, float(gradient @ direction))

    lo, hi = start, None
    for evaluations in range(1, max_evaluations + 1):
        if hi is not None and hi.step == lo.step:
            # The bracket has shrunk to a point: on a loss that changes between calls (mini-batches) every
            # zoom trial can look worse than lo. Nothing is left to search.
            return lo, evaluations - 1
        trial = evaluate(step if hi is None else _cubic_step(lo, hi))
        if not (trial.value <= start.value + c1 * trial.step * start.slope and trial.value < lo.value):
            hi = trial  # too far (a NaN or inf value lands here too)
        elif abs(trial.slope) <= -c2 * start.slope:
            return trial, evaluations
        else:
            ahead = hi.step - lo.step if hi is not None else 1.0  # while bracketing, hi lies ahead at infinity
            if trial.slope * ahead >= 0:  # f rises from trial towards hi: the minimum lies between lo and trial
                hi = lo
            lo, step = trial, 2 * trial.step
    return lo, max_evaluations


def _cubic_step(lo, hi):
    """The minimizer of the cubic through f and its slope at lo and hi (Nocedal & Wright, eq. 3.59), kept in
    the middle 80% of the interval; the midpoint when that cubic has no minimizer."""
    d1 = lo.slope + hi.slope - 3 * (lo.value - hi.value) / (lo.step - hi.step)
    discriminant = d1 * d1 - lo.slope * hi.slope
    left, right = min(lo.step, hi.step), max(lo.step, hi.step)
    if not discriminant >= 0:  # also catches NaN
        return (left + right) / 2
    d2 = math.copysign(math.sqrt(discriminant), hi.step - lo.step)
    denominator = hi.slope - lo.slope + 2 * d2
    if denominator == 0 or not math.isfinite(denominator):
        return (left + right) / 2
    t = hi.step - (hi.step - lo.step) * (hi.slope + d2 - d1) / denominator
    margin = 0.1 * (right - left)
    return min(max(t, left + margin), right - margin)


def _norm(v):
    return math.sqrt(float(v @ v))


def _as_numpy(v):
    return v.detach().cpu().numpy().astype(float) if isinstance(v, torch.Tensor) else np.array(v, dtype=float)


def _check_lbfgs_arguments(x0, history_size, tolerance, c1, c2, max_line_search, direction):
    """x0 as a fresh 1-D vector (a tensor stays a tensor), after checking every argument."""
    x = x0.detach().clone() if isinstance(x0, torch.Tensor) else np.array(x0, dtype=float)
    require(x.ndim == 1 and x.shape[0] > 0, "x0", "a non-empty 1-D array or tensor", f"shape {tuple(x.shape)}")
    require(is_integer(history_size, 1), "history_size", "an integer >= 1", history_size)
    require(is_real(tolerance) and 0 <= tolerance < math.inf, "tolerance", "a finite number >= 0", tolerance)
    require(is_real(c1) and 0 < c1 < 0.5, "c1", "in (0, 0.5)", c1)
    require(is_real(c2) and c1 < c2 < 1, "c2", f"in (c1, 1) = ({c1!r}, 1)", c2)
    require(is_integer(max_line_search, 1), "max_line_search", "an integer >= 1", max_line_search)
    require(callable(direction), "direction", "a function (gradient, s_history, y_history) -> direction",
            direction)
    return x


def lbfgs_on_landscape(landscape, start=None, **options):
    """L-BFGS on a 2-D (or any) landscape from ``start`` (default: its start); its result is a Trajectory to draw.

    ``options`` are lbfgs's (history_size, max_iter, tolerance, ...).
    """
    x0 = np.array(landscape.start if start is None else start, dtype=float)
    return lbfgs(lambda x: (landscape.f(x), landscape.grad(x)), x0, **options)


def lbfgs_torch(params, closure, **options):
    """L-BFGS on torch parameters, full batch: the same ``lbfgs``, run on the parameters flattened into one vector.

        def closure():
            loss = loss_function(model(inputs), targets)
            loss.backward()
            return loss

    ``closure`` is the one torch.optim.LBFGS takes: it computes the loss at the current parameter values, calls
    backward() and returns the loss (the parameters' .grad are cleared before every call, so a zero_grad() in
    it is harmless but not needed). The parameters end at the result's x, a flat tensor in their dtype;
    ``options`` are lbfgs's. Like torch.optim.LBFGS, all parameters must live on one device.
    """
    params = list(params)
    require(len(params) > 0 and all(isinstance(p, torch.Tensor) for p in params), "params",
             "a non-empty iterable of tensors", params)
    sizes = [p.numel() for p in params]

    @torch.no_grad()
    def load(flat):
        for param, chunk in zip(params, flat.split(sizes), strict=True):
            param.copy_(chunk.view_as(param))

    def fun_and_grad(flat):
        load(flat)
        for param in params:
            param.grad = None
        with torch.enable_grad():
            loss = closure()
        grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
        return float(loss.detach()), torch.cat([g.reshape(-1) for g in grads])

    result = lbfgs(fun_and_grad, torch.cat([p.detach().reshape(-1) for p in params]), **options)
    load(result.x)
    return result


# --- What the Hessian costs -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class HessianCost:
    """Per size N: the bytes an N x N float64 Hessian holds (measured) and the seconds of solving H d = g."""

    sizes: np.ndarray
    bytes: np.ndarray
    seconds: np.ndarray


def hessian_cost(sizes=(283, 400, 566, 800, 1131), repeats=3, seed=0):
    """Measure what a Newton step's Hessian costs as the number of parameters N grows (claim 18).

    Memory: the bytes the process holds once an N x N Hessian is formed, as counted by tracemalloc (which sees
    every numpy array; the temporaries of forming H are freed by then). Expect 8 N^2 plus a little, O(N^2).
    Time: solving H d = grad f for a random symmetric positive definite H, the core of a Newton step (solve,
    never invert); its LU factorization is O(N^3), the same order as inverting H. Measured so that the curve
    shows the algorithm rather than the machine's mood:

    - BLAS runs on one thread (threadpoolctl): with several, small N cannot keep them busy and large N can, so
      the speed-up grows with N and flattens the measured exponent;
    - the clock is the CPU time of the calling thread (time.thread_time), which does not count the time the
      process waits while other processes use the cores;
    - each size keeps the minimum over ``repeats`` (interference only ever adds time).

    What remains below N^3 is real: LU's O(N^2) parts (pivoting, the two triangular solves) and BLAS's blocked
    kernels run at more flops per second as N grows, until the matrix no longer fits in cache. The default
    sizes (a factor sqrt(2) apart) take about a second.
    """
    from threadpoolctl import threadpool_limits

    require(len(sizes) > 0 and all(is_integer(n, 1) for n in sizes), "sizes",
             "a non-empty sequence of integers >= 1", sizes)
    require(is_integer(repeats, 1), "repeats", "an integer >= 1", repeats)
    rng = np.random.default_rng(seed)
    held, seconds = [], []
    with threadpool_limits(limits=1):
        for n in sizes:
            hessian, memory = _random_positive_definite_hessian(rng, n)
            held.append(memory)
            gradient = rng.standard_normal(n)
            np.linalg.solve(hessian, gradient)  # warm-up: first-touch memory is not the cost
            timings = []
            for _ in range(repeats):
                began = time.thread_time()
                np.linalg.solve(hessian, gradient)
                timings.append(time.thread_time() - began)
            seconds.append(min(timings))
            del hessian  # before the next, larger one is formed
    return HessianCost(np.array(sizes), np.array(held, dtype=float), np.array(seconds))


def _random_positive_definite_hessian(rng, n):
    """A random symmetric positive definite n x n matrix, and the bytes that holding it takes (tracemalloc).

    Formed in place, without n x n temporaries (at n = 1131 each is 10 MB of a notebook's kernel): random
    entries, the lower triangle mirrored into the upper one, then a diagonal large enough to make it positive
    definite."""
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        symmetric = rng.standard_normal((n, n))
        for row in range(1, n):
            symmetric[:row, row] = symmetric[row, :row]
        # Strictly diagonally dominant with a positive diagonal, hence positive definite (Gershgorin); the rows'
        # absolute sums a block of rows at a time.
        largest = max(np.abs(rows).sum(axis=1).max() for rows in np.array_split(symmetric, max(1, n // 128)))
        symmetric[np.diag_indices(n)] += largest + 1
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return symmetric, held


def loglog_slope(x, y):
    """The least-squares slope of log y against log x: the exponent p in y ~ c x^p."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    require(x.ndim == 1 and x.size >= 2 and np.all(np.isfinite(x) & (x > 0)), "x",
             "at least two finite numbers > 0", x)
    require(y.shape == x.shape and np.all(np.isfinite(y) & (y > 0)), "y",
             f"{x.size} finite numbers > 0 (one per x)", y)
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])
