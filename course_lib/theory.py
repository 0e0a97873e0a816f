"""What theory predicts, for the claim checks to compare measurements against.

Quadratic results are for f(x) = 1/2 x^T A x with A's eigenvalues in [smallest, largest] and
kappa = largest / smallest (the condition number of the Hessian A).
"""

import math

import numpy as np

__all__ = [
    "adam_uncorrected_first_step_ratio",
    "condition_number",
    "gradient_descent_best_hyperparameters",
    "gradient_descent_best_learning_rate",
    "gradient_descent_rate",
    "gradient_descent_steps",
    "momentum_best_hyperparameters",
    "momentum_rate",
    "noisy_gradient_descent_loss",
]


def condition_number(hessian):
    """kappa = largest / smallest eigenvalue of a symmetric positive-definite Hessian."""
    eigenvalues = np.linalg.eigvalsh(np.asarray(hessian, dtype=float))
    if eigenvalues[0] <= 0:
        raise ValueError(f"hessian must be positive definite, its smallest eigenvalue is {eigenvalues[0]:.3g}")
    return float(eigenvalues[-1] / eigenvalues[0])


def gradient_descent_best_learning_rate(largest, smallest):
    """2 / (L + mu): the step that balances the slowest and the fastest direction."""
    return 2.0 / (largest + smallest)


def gradient_descent_best_hyperparameters(largest, smallest):
    """Gradient descent's config at its best learning rate, {"learning_rate": 2 / (L + mu)} (the form of
    ``momentum_best_hyperparameters``, for course_lib.measure.valley_rates)."""
    return {"learning_rate": gradient_descent_best_learning_rate(largest, smallest)}


def gradient_descent_rate(kappa):
    """(kappa - 1) / (kappa + 1): the error shrinks by this factor per step at the best learning rate."""
    return (kappa - 1.0) / (kappa + 1.0)


def gradient_descent_steps(kappa, factor):
    """The steps gradient descent at its best learning rate needs to shrink the error by ``factor`` (< 1):

        the smallest whole k with rate**k <= factor:   k = ceil(ln(factor) / ln(rate)),  rate = (kappa-1)/(kappa+1)

    (for kappa = 1 the rate is 0: one step lands on the minimum).
    """
    rate = gradient_descent_rate(kappa)
    return 1 if rate == 0 else math.ceil(math.log(factor) / math.log(rate))


def momentum_best_hyperparameters(largest, smallest):
    """Polyak's heavy ball tuned for a quadratic: learning_rate = 4/(sqrt L + sqrt mu)^2, rho = rate^2.

    For the lecture's momentum (velocity = rho * velocity + dx; x -= learning_rate * velocity), which is
    the heavy ball x_{k+1} = x_k - learning_rate * grad + rho (x_k - x_{k-1}) (Polyak 1964; Goh, "Why
    Momentum Really Works", Distill 2017).
    """
    root_kappa = math.sqrt(largest / smallest)
    rho = ((root_kappa - 1) / (root_kappa + 1)) ** 2
    return {"learning_rate": 4.0 / (math.sqrt(largest) + math.sqrt(smallest)) ** 2, "rho": rho}


def momentum_rate(kappa):
    """(sqrt(kappa) - 1) / (sqrt(kappa) + 1): momentum's error factor per step at its best hyperparameters."""
    root_kappa = math.sqrt(kappa)
    return (root_kappa - 1.0) / (root_kappa + 1.0)


def noisy_gradient_descent_loss(eigenvalues, learning_rate, noise):
    """The long-run mean of f under gradient descent with gradient noise N(0, noise^2) per coordinate.

    Along an eigen-direction with curvature lam, x_{k+1} = (1 - learning_rate lam) x_k - learning_rate
    noise z_k has stationary variance learning_rate noise^2 / (lam (2 - learning_rate lam)); f adds lam/2
    times each variance. The loss floor grows with the learning rate: one reason to decay it.
    """
    eigenvalues = np.asarray(eigenvalues, dtype=float)
    return float(np.sum(learning_rate * noise**2 / (2 * (2 - learning_rate * eigenvalues))))


def adam_uncorrected_first_step_ratio(beta1, beta2):
    """How much longer Adam's first step is without bias correction: (1 - beta1) / sqrt(1 - beta2).

    Without correction, first_moment = (1 - beta1) dx and second_moment = (1 - beta2) dx^2 after one step,
    so the step is learning_rate (1 - beta1) / sqrt(1 - beta2) per coordinate instead of learning_rate.
    """
    return (1.0 - beta1) / math.sqrt(1.0 - beta2)
