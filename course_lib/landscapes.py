"""Loss landscapes with analytic gradients and Hessians: the terrain the update rules run on.

A ``Landscape`` is a function of a point ``p`` whose coordinates run along the first axis, so the same code
evaluates one point (shape ``(d,)``) or a whole grid for a contour plot (shape ``(d, H, W)``). Each landscape
knows its minima, a good plotting window and a default start point. Every gradient and Hessian here is checked
against finite differences in tests/test_landscapes.py.
"""

from dataclasses import dataclass, field, replace

import numpy as np

__all__ = [
    "LANDSCAPES",
    "Landscape",
    "ill_conditioned_quadratic",
    "local_minimum",
    "make",
    "quadratic",
    "rosenbrock",
    "saddle",
]


@dataclass(frozen=True)
class Landscape:
    """A differentiable function to minimize, with what the plots and experiments need to know about it."""

    name: str
    f: callable
    grad: callable
    hessian: callable
    minima: tuple  # global minimum first
    start: tuple
    xlim: tuple = (-1.0, 1.0)
    ylim: tuple = (-1.0, 1.0)
    saddles: tuple = ()
    log_levels: bool = False  # contour levels spaced logarithmically (for steep valleys)
    params: dict = field(default_factory=dict)

    def __call__(self, p):
        return self.f(np.asarray(p, dtype=float))

    @property
    def global_minimum(self):
        return np.asarray(self.minima[0], dtype=float)

    @property
    def minimum_value(self):
        return float(self.f(self.global_minimum))


def quadratic(eigenvalues, angle=0.0, name=None):
    """f(p) = 1/2 p^T A p with A's eigenvalues given; in 2-D the axes may be rotated by ``angle`` radians.

    The condition number of the Hessian A is max(eigenvalues) / min(eigenvalues).
    """
    eigenvalues = np.asarray(eigenvalues, dtype=float)
    if eigenvalues.ndim != 1 or eigenvalues.size < 1:
        raise ValueError("eigenvalues must be a non-empty 1-D sequence")
    if not np.all(np.isfinite(eigenvalues)) or np.any(eigenvalues <= 0):
        raise ValueError(f"eigenvalues must be finite and > 0, got {eigenvalues}")
    d = eigenvalues.size
    rotation = np.eye(d)
    if angle:
        if d != 2:
            raise ValueError(f"angle applies to 2-D quadratics only, got {d} eigenvalues")
        c, s = np.cos(angle), np.sin(angle)
        rotation = np.array([[c, -s], [s, c]])
    A = rotation @ np.diag(eigenvalues) @ rotation.T

    def f(p):
        return 0.5 * np.einsum("i...,ij,j...->...", p, A, p)

    def grad(p):
        return A @ p if p.ndim == 1 else np.einsum("ij,j...->i...", A, p)

    def hessian(p):
        return A.copy()

    half_width = 1.0 / np.sqrt(eigenvalues.min())
    return Landscape(
        name=name or f"quadratic (kappa={eigenvalues.max() / eigenvalues.min():g})",
        f=f, grad=grad, hessian=hessian, minima=(tuple(np.zeros(d)),),
        start=tuple(np.r_[-0.9 * half_width, 0.9 * 1.0 / np.sqrt(eigenvalues.max()), np.zeros(d - 2)][:d]),
        xlim=(-half_width, half_width), ylim=(-half_width, half_width),
        params={"eigenvalues": eigenvalues, "A": A},
    )


def ill_conditioned_quadratic(kappa=10.0, angle=0.0):
    """f(x, y) = 1/2 (x^2 / kappa + y^2): a valley kappa times steeper across (y) than along (x).

    The largest curvature is fixed at 1 so that gradient descent is stable for every learning_rate < 2,
    whatever kappa; the condition number of the Hessian is kappa.
    """
    if not (np.isfinite(kappa) and kappa >= 1):
        raise ValueError(f"kappa must be a finite number >= 1, got {kappa!r}")
    scale = np.sqrt(kappa)
    landscape = quadratic([1.0 / kappa, 1.0], angle=angle, name=f"ill-conditioned quadratic (kappa={kappa:g})")
    return replace(landscape, start=(-0.9 * scale, 0.9), xlim=(-scale, scale), ylim=(-1.2, 1.2),
                    params={**landscape.params, "kappa": float(kappa)})


def rosenbrock(a=1.0, b=100.0):
    """f(x, y) = (a - x)^2 + b (y - x^2)^2: a curved, narrow valley with its minimum at (a, a^2)."""

    def f(p):
        x, y = p[0], p[1]
        return (a - x) ** 2 + b * (y - x**2) ** 2

    def grad(p):
        x, y = p[0], p[1]
        return np.array([-2 * (a - x) - 4 * b * x * (y - x**2), 2 * b * (y - x**2)])

    def hessian(p):
        x, y = p[0], p[1]
        return np.array([[2 - 4 * b * (y - 3 * x**2), -4 * b * x], [-4 * b * x, 2 * b]])

    return Landscape(name="Rosenbrock", f=f, grad=grad, hessian=hessian, minima=((a, a * a),),
                     start=(-1.2, 1.0), xlim=(-2.0, 2.0), ylim=(-1.0, 3.0), log_levels=True,
                     params={"a": a, "b": b})


def saddle():
    """f(x, y) = x^2/2 + y^4/4 - y^2/2: a saddle point at the origin between two minima at (0, +-1).

    The Hessian at the origin is diag(1, -1): downhill along y, uphill along x. A run that starts close to
    the x-axis slides into the saddle, where the gradient almost vanishes, and crawls away from it.
    """

    def f(p):
        x, y = p[0], p[1]
        return 0.5 * x**2 + 0.25 * y**4 - 0.5 * y**2

    def grad(p):
        x, y = p[0], p[1]
        return np.array([x, y**3 - y])

    def hessian(p):
        y = p[1]
        return np.array([[1.0, 0.0], [0.0, 3 * y**2 - 1]])

    return Landscape(name="saddle", f=f, grad=grad, hessian=hessian, minima=((0.0, 1.0), (0.0, -1.0)),
                     saddles=((0.0, 0.0),), start=(-2.0, 1e-3), xlim=(-2.5, 2.5), ylim=(-1.6, 1.6))


_LOCAL_TILT = 0.5


def _double_well_critical_points():
    # g(x) = x^4 - 2 x^2 + tilt * x; g'(x) = 4x^3 - 4x + tilt has three real roots.
    roots = np.sort(np.roots([4.0, 0.0, -4.0, _LOCAL_TILT]).real)
    return roots  # global minimum, local maximum, local minimum


def local_minimum():
    """f(x, y) = x^4 - 2 x^2 + x/2 + y^2: a shallow local minimum (x > 0) beside a deeper global one (x < 0).

    Started on the right, gradient descent settles in the local minimum; only enough speed carries a run over
    the ridge between the two.
    """
    global_x, ridge_x, local_x = _double_well_critical_points()

    def f(p):
        x, y = p[0], p[1]
        return x**4 - 2 * x**2 + _LOCAL_TILT * x + y**2

    def grad(p):
        x, y = p[0], p[1]
        return np.array([4 * x**3 - 4 * x + _LOCAL_TILT, 2 * y])

    def hessian(p):
        x = p[0]
        return np.array([[12 * x**2 - 4, 0.0], [0.0, 2.0]])

    return Landscape(name="local minimum", f=f, grad=grad, hessian=hessian,
                     minima=((global_x, 0.0), (local_x, 0.0)), saddles=((ridge_x, 0.0),),
                     start=(1.9, 1.0), xlim=(-2.0, 2.1), ylim=(-1.4, 1.4))


LANDSCAPES = {
    "ill-conditioned quadratic": ill_conditioned_quadratic,
    "Rosenbrock": rosenbrock,
    "saddle": saddle,
    "local minimum": local_minimum,
}


def make(name, **params):
    """The landscape called ``name`` (a key of LANDSCAPES), built with ``params`` (e.g. kappa=10)."""
    if name not in LANDSCAPES:
        raise ValueError(f"landscape must be one of {sorted(LANDSCAPES)}, got {name!r}")
    return LANDSCAPES[name](**params)
