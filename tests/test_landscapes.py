"""Landscapes: analytic gradients and Hessians against central finite differences; minima and saddles."""

import numpy as np
import pytest

from course_lib import landscapes

ALL = {
    "quadratic 3-D": lambda: landscapes.quadratic([0.5, 2.0, 7.0]),
    "rotated quadratic": lambda: landscapes.quadratic([1.0, 9.0], angle=0.6),
    "ill-conditioned quadratic": lambda: landscapes.ill_conditioned_quadratic(kappa=25, angle=0.3),
    "Rosenbrock": landscapes.rosenbrock,
    "saddle": landscapes.saddle,
    "local minimum": landscapes.local_minimum,
}


def finite_difference_gradient(f, p, h=1e-6):
    return np.array([(f(p + h * e) - f(p - h * e)) / (2 * h) for e in np.eye(p.size)])


@pytest.mark.parametrize("name", ALL)
def test_gradient_and_hessian_match_finite_differences(name):
    landscape = ALL[name]()
    rng = np.random.default_rng(0)
    for _ in range(5):
        p = rng.uniform(-1.5, 1.5, size=np.shape(landscape.global_minimum))
        np.testing.assert_allclose(landscape.grad(p), finite_difference_gradient(landscape.f, p),
                                   rtol=1e-6, atol=1e-6)
        numeric_hessian = np.array([finite_difference_gradient(lambda q, i=i: landscape.grad(q)[i], p)
                                    for i in range(p.size)])
        np.testing.assert_allclose(landscape.hessian(p), numeric_hessian, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ALL)
def test_minima_are_critical_points_with_positive_curvature(name):
    landscape = ALL[name]()
    for minimum in landscape.minima:
        minimum = np.asarray(minimum, dtype=float)
        np.testing.assert_allclose(landscape.grad(minimum), 0, atol=1e-9)
        assert np.all(np.linalg.eigvalsh(landscape.hessian(minimum)) > 0)
    for saddle in landscape.saddles:
        eigenvalues = np.linalg.eigvalsh(landscape.hessian(np.asarray(saddle)))
        assert eigenvalues.min() < 0 < eigenvalues.max()


def test_global_minimum_is_lowest():
    landscape = landscapes.local_minimum()
    global_value, local_value = (landscape(m) for m in landscape.minima)
    assert global_value < local_value - 0.5


def test_grid_evaluation_matches_pointwise():
    landscape = landscapes.rosenbrock()
    xs, ys = np.meshgrid(np.linspace(-2, 2, 7), np.linspace(-1, 3, 5))
    grid = landscape.f(np.stack([xs, ys]))
    assert grid.shape == xs.shape
    assert grid[2, 3] == pytest.approx(landscape((xs[2, 3], ys[2, 3])))


def test_condition_number_of_ill_conditioned_quadratic_is_kappa():
    landscape = landscapes.ill_conditioned_quadratic(kappa=40)
    eigenvalues = np.linalg.eigvalsh(landscape.hessian(np.zeros(2)))
    assert eigenvalues.max() / eigenvalues.min() == pytest.approx(40)
    assert eigenvalues.max() == pytest.approx(1.0)


@pytest.mark.parametrize("kappa", [0.5, float("nan"), float("inf"), -3])
def test_bad_kappa_is_refused(kappa):
    with pytest.raises(ValueError, match="kappa must be"):
        landscapes.ill_conditioned_quadratic(kappa)


def test_unknown_landscape_is_refused():
    with pytest.raises(ValueError, match="landscape must be one of"):
        landscapes.make("bowl")
