"""Every claim check fails when its claim fails.

Each claim of the course's claims.md (1-20, notebooks 01-05) is checked by notebook cells tagged ``claim-N``
that run an experiment and assert its outcome. Here each claim's cells run once as they are (they pass) and
once per known-wrong input below (a buggy update rule, a handicapped baseline, a broken measurement), and the
notebook's own ``assert`` must fail, at the line named. The wrong inputs are written in this file, on purpose:
they are what a plausible mistake looks like, not course_lib's catalogue of learner bugs.

    claim  wrong input                                                  the notebook assert that fails
    -----  -----------------------------------------------------------  ---------------------------------------
      1    gradient descent at 1/L instead of its best rate 2/(L+mu)     the steep coordinate zig-zags
      1    the predicted rate 1 - 1/kappa, not (kappa-1)/(kappa+1)       measured rate = prediction
      2    momentum in place of plain gradient descent at the saddle     extra steps per decade = ln 10/ln(1+a)
      2    a saddle count that counts maxima too                         no saddles in 1-D
      3    gradient descent with momentum (it escapes)                   GD stays in the local minimum
      4    momentum that ignores rho (plain GD): local minimum           small alpha: only momentum crosses
      4    momentum that ignores rho: saddle                             same alpha: momentum leaves 4x sooner
      4    momentum that ignores rho: ill-conditioned valley             speed-up over GD at its best rate > 2.5
      5    momentum that ignores rho                                     momentum overshoots at every alpha
      6    the lecture's misprinted Nesterov, (1 - rho) v                0 < overshoot(Nesterov) < overshoot(mom.)
      6    Nesterov that is plain momentum                               0 < overshoot(Nesterov) < overshoot(mom.)
      7    the lecture's misprinted Nesterov, (1 - rho) v                the two forms agree to 1e-12
      7    a look-ahead form with the gradient at x, not x + rho v       the two forms agree to 1e-12
      8    momentum with dampening, v = rho v + (1 - rho) dx             measured rate = (sqrt(k)-1)/(sqrt(k)+1)
      8    the "tuned" rho = rate instead of rate**2                     measured rate = (sqrt(k)-1)/(sqrt(k)+1)
      9    AdaGrad whose sum leaks (RMSProp's average)                   AdaGrad's step ~ t^-1/2
     10    RMSProp whose average never forgets (AdaGrad's sum)           RMSProp's step stays flat
     11    RMSProp with a velocity (momentum) on top                     small alpha: RMSProp overshoots far less
     11    RMSProp with epsilon = 1 (not normalized near the minimum)    large alpha: reversed
     12    Adam whose bias correction cannot be switched off             first step ratio (1-b1)/sqrt(1-b2)
     13    Adam with its learning rate silently divided by 10            default Adam within 15 points of the best
     13    shuffled training labels (nothing can be learned)             default Adam far ahead of untuned SGD
     14    step decay that never decays (gamma ignored)                  a visible drop at each decay
     15    1/t decay written alpha0 / (1 + k)**t (exponential)           1/t goes far below the constant rate
     15    exponential decay at half its rate, exp(-k t / 2)             the formula matches torch's ExponentialLR
     16    an optimizer that ignores its learning rate and schedule      the rate moves the loss more than decay
     17    Newton with only the Hessian's diagonal                       one Newton step lands on the minimum
     18    the memory of the gradient (N numbers), not of the Hessian    memory exponent 2
     18    timing the forming of H (O(N^2) work) instead of the solve    solve-time exponent in (2.5, 3.3)
     19    L-BFGS that ignores its curvature pairs (steepest descent)    L-BFGS 1e4 times closer than first order
     20    "mini-batches" that are the whole training set each time      mini-batch L-BFGS 2x behind SGD/Adam
"""

import functools
import time
from dataclasses import dataclass, replace

import numpy as np
import pytest
import torch
from claim_cells import claim_cells, failing_assert, run_claim

from course_lib import data, measure, minibatch, optim, schedules, second_order, theory, trajectories

CLAIMS = range(1, 21)
# The originals, for wrong inputs that call them after the module attribute has been replaced.
HESSIAN_COST, MOMENTUM_BEST_HYPERPARAMETERS = second_order.hessian_cost, theory.momentum_best_hyperparameters
RMSPROP, ADAM, MNIST1D = optim.rmsprop, optim.adam, data.mnist1d


# ---- wrong update rules (the same contract as course_lib.optim) ----------------------------------------------

def _hyperparameters(name, config):
    return {**optim.DEFAULTS[name], **(config or {})}


def momentum_ignoring_rho(x, dx, config=None):
    """Momentum whose velocity forgets everything: plain gradient descent under momentum's name."""
    config = _hyperparameters("sgd_momentum", config)
    config["velocity"] = dx
    return x - config["learning_rate"] * dx, config


def momentum_with_dampening(x, dx, config=None):
    """velocity = rho * velocity + (1 - rho) * dx: torch's dampening=rho, a different method from the lecture's."""
    config = _hyperparameters("sgd_momentum", config)
    velocity = config["rho"] * config.get("velocity", 0 * x) + (1 - config["rho"]) * dx
    config["velocity"] = velocity
    return x - config["learning_rate"] * velocity, config


def nesterov_one_minus_rho(x, dx, config=None):
    """The lecture's derivation as printed: x~ = x~ - rho v_old + (1 - rho) v (it should be 1 + rho)."""
    config = _hyperparameters("nesterov", config)
    old_velocity = config.get("velocity", 0 * x)
    velocity = config["rho"] * old_velocity - config["learning_rate"] * dx
    config["velocity"] = velocity
    return x - config["rho"] * old_velocity + (1 - config["rho"]) * velocity, config


def adagrad_with_a_leaky_sum(x, dx, config=None):
    config = _hyperparameters("adagrad", config)
    grad_squared = 0.99 * config.get("grad_squared", 0 * x) + 0.01 * dx * dx
    config["grad_squared"] = grad_squared
    return x - config["learning_rate"] * dx / (np.sqrt(grad_squared) + config["epsilon"]), config


def rmsprop_with_a_velocity(x, dx, config=None):
    config = _hyperparameters("rmsprop", config)
    decay_rate = config["decay_rate"]
    grad_squared = decay_rate * config.get("grad_squared", 0 * x) + (1 - decay_rate) * dx * dx
    velocity = 0.9 * config.get("velocity", 0 * x) + dx / (np.sqrt(grad_squared) + config["epsilon"])
    config.update(grad_squared=grad_squared, velocity=velocity)
    return x - config["learning_rate"] * velocity, config


def rmsprop_with_epsilon_one(x, dx, config=None):
    return RMSPROP(x, dx, {**(config or {}), "epsilon": 1.0})


def adam_always_corrected(x, dx, config=None):
    return ADAM(x, dx, {**(config or {}), "bias_correction": True})


def adam_at_a_tenth(x, dx, config=None):
    config = dict(config or {})
    config["learning_rate"] = config.get("learning_rate", optim.DEFAULTS["adam"]["learning_rate"]) / 10
    next_x, config = ADAM(x, dx, config)
    config["learning_rate"] *= 10
    return next_x, config


adam_at_a_tenth.__name__ = "adam"


# ---- how a wrong input is put in place -------------------------------------------------------------------------

def replace_rule(monkeypatch, name, rule):
    """``optim.<name>`` and ``optim.RULES[name]`` both become ``rule`` (notebooks use either)."""
    monkeypatch.setattr(optim, name, rule)
    monkeypatch.setitem(optim.RULES, name, rule)


def lookahead_at_x(landscape, start=None, steps=100, learning_rate=1e-2, rho=0.9):
    """Nesterov's look-ahead form with the gradient taken at x instead of at x + rho * velocity."""
    x = np.array(landscape.start if start is None else start, dtype=float)
    velocity = np.zeros_like(x)
    points, velocities = [x], [velocity]
    for _ in range(steps):
        velocity = rho * velocity - learning_rate * landscape.grad(x)
        x = x + velocity
        points.append(x)
        velocities.append(velocity)
    points = np.array(points)
    return trajectories.Trajectory(points, landscape.f(points.T)), np.array(velocities)


def saddle_share_counting_maxima(dimension, samples=2000, seed=0):
    rng = np.random.default_rng(seed)
    matrices = rng.standard_normal((samples, dimension, dimension))
    eigenvalues = np.linalg.eigvalsh((matrices + matrices.transpose(0, 2, 1)) / 2)
    return float((eigenvalues.min(axis=1) < 0).mean())


def newton_with_the_diagonal(hessian, gradient, damping=second_order.DAMPING):
    return -np.asarray(gradient, dtype=float) / np.maximum(np.diag(np.asarray(hessian, dtype=float)), 1e-6)


def shuffled_mnist1d():
    dataset = MNIST1D()
    order = torch.randperm(len(dataset.y_train), generator=torch.Generator().manual_seed(0))
    return replace(dataset, y_train=dataset.y_train[order])


def step_decay_ignoring_gamma(t, learning_rate, step_size, gamma=0.5):
    return learning_rate


def inverse_time_as_power(t, learning_rate, k):
    return learning_rate / (1 + k) ** t


def exponential_at_half_rate(t, learning_rate, k):
    return learning_rate * np.exp(-k * t / 2)


class OptimizerIgnoringItsLearningRate(optim.RuleOptimizer):
    """A RuleOptimizer that steps at 1e-2 whatever its param group's lr says (a scheduler's value included)."""

    def step(self, closure=None):
        for group in self.param_groups:
            group["lr"] = 1e-2
        return super().step(closure)


def gradient_memory_instead(sizes=(400, 566, 800, 1131, 1600), repeats=3, seed=0):
    cost = HESSIAN_COST(sizes, repeats, seed)
    return second_order.HessianCost(cost.sizes, 8.0 * cost.sizes, cost.seconds)


def forming_time_instead(sizes=(400, 566, 800, 1131, 1600), repeats=3, seed=0):
    """The seconds of forming H (random numbers, symmetrized: O(N^2) work) reported as the solve's."""
    cost = HESSIAN_COST(sizes, repeats, seed)
    rng, seconds = np.random.default_rng(seed), []
    for n in cost.sizes:
        timings = []
        for _ in range(repeats):
            began = time.thread_time()
            noise = rng.standard_normal((n, n))
            hessian = (noise + noise.T) / 2
            hessian[np.diag_indices(n)] += np.abs(hessian).sum(axis=1).max() + 1
            timings.append(time.thread_time() - began)
        seconds.append(min(timings))
    return second_order.HessianCost(cost.sizes, cost.bytes, np.array(seconds))


def full_batches(self, batch_size, seed=0):
    while True:
        yield np.arange(len(self.labels))


def momentum_rho_not_squared(largest, smallest):
    tuned = MOMENTUM_BEST_HYPERPARAMETERS(largest, smallest)
    return {**tuned, "rho": tuned["rho"] ** 0.5}


@dataclass(frozen=True)
class WrongInput:
    claim: int
    what: str
    inject: callable  # inject(monkeypatch)
    fails_at: str  # a piece of the notebook's assert line that must fail
    cells: tuple = None  # which of the claim's cells to run (default: all)


WRONG_INPUTS = [
    WrongInput(1, "gradient descent at 1/L, not at its best rate", lambda mp: mp.setattr(
        theory, "gradient_descent_best_learning_rate", lambda largest, smallest: 1.0 / largest), "np.sign(steep"),
    WrongInput(1, "the predicted rate 1 - 1/kappa", lambda mp: mp.setattr(
        theory, "gradient_descent_rate", lambda kappa: 1 - 1 / kappa), "np.allclose(measured, predicted"),
    WrongInput(2, "momentum in place of gradient descent at the saddle",
               lambda mp: replace_rule(mp, "sgd", optim.sgd_momentum), "abs(per_decade - expected_per_decade)",
               cells=(0,)),
    WrongInput(2, "a saddle count that counts maxima too",
               lambda mp: mp.setattr(measure, "saddle_share", saddle_share_counting_maxima), "shares[0] == 0.0",
               cells=(1,)),
    WrongInput(3, "gradient descent with momentum", lambda mp: replace_rule(mp, "sgd", optim.sgd_momentum),
               "local_minimum) < 1e-4"),
    WrongInput(4, "momentum ignoring rho: local minimum", lambda mp: replace_rule(
        mp, "sgd_momentum", momentum_ignoring_rho), 'all(crossed["momentum, same α"][:4])', cells=(0,)),
    WrongInput(4, "momentum ignoring rho: saddle", lambda mp: replace_rule(
        mp, "sgd_momentum", momentum_ignoring_rho), "4 * m <= g", cells=(1,)),
    WrongInput(4, "momentum ignoring rho: valley", lambda mp: replace_rule(
        mp, "sgd_momentum", momentum_ignoring_rho), "speed_up > 2.5", cells=(2,)),
    WrongInput(5, "momentum ignoring rho", lambda mp: replace_rule(mp, "sgd_momentum", momentum_ignoring_rho),
               'min(overshoots["sgd_momentum"]) > 0.1'),
    WrongInput(6, "the lecture's (1 - rho) Nesterov", lambda mp: replace_rule(
        mp, "nesterov", nesterov_one_minus_rho), "0 < n < m"),
    WrongInput(6, "Nesterov that is plain momentum", lambda mp: replace_rule(
        mp, "nesterov", optim.sgd_momentum), "0 < n < m"),
    WrongInput(7, "the lecture's (1 - rho) Nesterov", lambda mp: replace_rule(
        mp, "nesterov", nesterov_one_minus_rho), "gap < 1e-12"),
    WrongInput(7, "look-ahead with the gradient at x", lambda mp: mp.setattr(
        trajectories, "nesterov_lookahead", lookahead_at_x), "gap < 1e-12"),
    WrongInput(8, "momentum with dampening", lambda mp: replace_rule(mp, "sgd_momentum", momentum_with_dampening),
               "np.allclose(momentum_rates"),
    WrongInput(8, "tuned rho = rate, not rate squared", lambda mp: mp.setattr(
        theory, "momentum_best_hyperparameters", momentum_rho_not_squared), "np.allclose(momentum_rates"),
    WrongInput(9, "AdaGrad with a leaky sum", lambda mp: replace_rule(mp, "adagrad", adagrad_with_a_leaky_sum),
               'slopes["adagrad"]'),
    WrongInput(10, "RMSProp that never forgets", lambda mp: replace_rule(mp, "rmsprop", optim.adagrad),
               'slopes["rmsprop"]'),
    WrongInput(11, "RMSProp with a velocity", lambda mp: replace_rule(mp, "rmsprop", rmsprop_with_a_velocity),
               "rmsprop[0] < 0.5"),
    WrongInput(11, "RMSProp with epsilon 1", lambda mp: replace_rule(mp, "rmsprop", rmsprop_with_epsilon_one),
               "rmsprop[-1] > 2"),
    WrongInput(12, "bias correction always on", lambda mp: replace_rule(mp, "adam", adam_always_corrected),
               "abs(ratio[0] - predicted)"),
    WrongInput(13, "Adam at a tenth of its learning rate", lambda mp: replace_rule(mp, "adam", adam_at_a_tenth),
               "accuracy[best] - default_adam < 0.15"),
    WrongInput(13, "shuffled training labels", lambda mp: mp.setattr(data, "mnist1d", shuffled_mnist1d),
               "default_adam - max(untuned.values())"),
    WrongInput(14, "step decay ignoring gamma", lambda mp: mp.setattr(
        schedules, "step_decay", step_decay_ignoring_gamma), "fall_across > 0.05"),
    WrongInput(15, "1/t decay as a power", lambda mp: mp.setattr(
        schedules, "inverse_time_decay", inverse_time_as_power), 'curves["1/t, k=0.02"][2900] < 0.05'),
    WrongInput(15, "exponential decay at half its rate", lambda mp: mp.setattr(
        schedules, "exponential_decay", exponential_at_half_rate), "np.allclose(ours, torch_rates"),
    WrongInput(16, "an optimizer ignoring its learning rate", lambda mp: mp.setattr(
        optim, "RuleOptimizer", OptimizerIgnoringItsLearningRate), "across_rates > 2 * across_decays"),
    WrongInput(17, "Newton with the Hessian's diagonal", lambda mp: mp.setattr(
        second_order, "newton_direction", newton_with_the_diagonal), "max(errors) < 1e-10"),
    WrongInput(18, "memory of the gradient", lambda mp: mp.setattr(
        second_order, "hessian_cost", gradient_memory_instead),
               "abs(memory_slope - 2)"),
    WrongInput(18, "timing the forming of H", lambda mp: mp.setattr(
        second_order, "hessian_cost", forming_time_instead),
               "2.3 < time_slope < 3.3"),
    WrongInput(19, "L-BFGS ignoring its curvature pairs", lambda mp: mp.setattr(
        minibatch, "lbfgs_minibatch", functools.partial(minibatch.lbfgs_minibatch, direction=lambda g, s, y: -g)),
               'gaps["L-BFGS"][-1] < 1e-4'),
    WrongInput(20, "mini-batches that are the whole set", lambda mp: mp.setattr(
        minibatch.SoftmaxRegression, "batches", full_batches), "late[label] > 2 * first_order"),
]


def test_every_claim_has_claim_cells_and_a_wrong_input():
    assert sorted({wrong.claim for wrong in WRONG_INPUTS}) == list(CLAIMS)
    for number in CLAIMS:
        assert any("assert" in source for source in claim_cells(number).cells), f"claim {number} asserts nothing"


@pytest.mark.parametrize("number", CLAIMS)
def test_claim_cells_pass_as_they_are(number):
    run_claim(number)


@pytest.mark.parametrize("wrong", WRONG_INPUTS, ids=[f"claim{w.claim}-{w.what}" for w in WRONG_INPUTS])
def test_claim_check_fails_on_a_wrong_input(wrong, monkeypatch):
    wrong.inject(monkeypatch)
    with pytest.raises(AssertionError) as error:
        run_claim(wrong.claim, wrong.cells)
    line = failing_assert(wrong.claim, error.value)
    assert line is not None, f"claim {wrong.claim}: the AssertionError did not come from a claim cell's assert"
    assert wrong.fails_at in line, f"claim {wrong.claim}: failed at {line!r}, expected {wrong.fails_at!r}"
