"""The likely bugs in each exercise, written out so that a check can recognise them in a learner's answer.

Each entry is (wrong implementation, what to tell the learner). A check runs a learner's function and these
variants on the same inputs; when the learner's outputs match a variant's, the learner gets that variant's
explanation instead of a bare "wrong answer". The variants follow the rule contract of course_lib.optim.
"""

import numpy as np

from . import optim
from .optim import _prepare, _sqrt, _state

__all__ = ["LIKELY_BUGS", "momentum_as_printed"]


def momentum_as_printed(x, dx, config=None):
    """SGD+momentum exactly as the lecture's pseudocode prints it: ``x += learning_rate * vx`` (uphill)."""
    x, dx, config = _prepare("sgd_momentum", x, dx, config)
    config["velocity"] = config["rho"] * _state(config, "velocity", x) + dx
    return x + config["learning_rate"] * config["velocity"], config


def _momentum_other_convention(x, dx, config=None):
    x, dx, config = _prepare("sgd_momentum", x, dx, config)
    config["velocity"] = config["rho"] * _state(config, "velocity", x) - config["learning_rate"] * dx
    return x + config["velocity"], config


def _momentum_damped(x, dx, config=None):
    x, dx, config = _prepare("sgd_momentum", x, dx, config)
    config["velocity"] = config["rho"] * _state(config, "velocity", x) + (1 - config["rho"]) * dx
    return x - config["learning_rate"] * config["velocity"], config


def _momentum_forgets_velocity(x, dx, config=None):
    x, dx, config = _prepare("sgd_momentum", x, dx, config)
    config["velocity"] = dx
    return x - config["learning_rate"] * dx, config


def _nesterov_one_minus_rho(x, dx, config=None):
    x, dx, config = _prepare("nesterov", x, dx, config)
    rho, old_velocity = config["rho"], _state(config, "velocity", x)
    config["velocity"] = rho * old_velocity - config["learning_rate"] * dx
    return x - rho * old_velocity + (1 - rho) * config["velocity"], config


def _nesterov_new_velocity_for_old(x, dx, config=None):
    x, dx, config = _prepare("nesterov", x, dx, config)
    rho = config["rho"]
    config["velocity"] = rho * _state(config, "velocity", x) - config["learning_rate"] * dx
    return x - rho * config["velocity"] + (1 + rho) * config["velocity"], config


def _nesterov_sign_flipped(x, dx, config=None):
    x, dx, config = _prepare("nesterov", x, dx, config)
    rho, old_velocity = config["rho"], _state(config, "velocity", x)
    config["velocity"] = rho * old_velocity + config["learning_rate"] * dx
    return x - rho * old_velocity + (1 + rho) * config["velocity"], config


def _rmsprop_epsilon_inside_root(x, dx, config=None):
    x, dx, config = _prepare("rmsprop", x, dx, config)
    decay_rate = config["decay_rate"]
    grad_squared = decay_rate * _state(config, "grad_squared", x) + (1 - decay_rate) * dx * dx
    config["grad_squared"] = grad_squared
    return x - config["learning_rate"] * dx / _sqrt(grad_squared + config["epsilon"]), config


def _rmsprop_decay_swapped(x, dx, config=None):
    x, dx, config = _prepare("rmsprop", x, dx, config)
    decay_rate = config["decay_rate"]
    grad_squared = (1 - decay_rate) * _state(config, "grad_squared", x) + decay_rate * dx * dx
    config["grad_squared"] = grad_squared
    return x - config["learning_rate"] * dx / (_sqrt(grad_squared) + config["epsilon"]), config


def _rmsprop_no_root(x, dx, config=None):
    x, dx, config = _prepare("rmsprop", x, dx, config)
    decay_rate = config["decay_rate"]
    grad_squared = decay_rate * _state(config, "grad_squared", x) + (1 - decay_rate) * dx * dx
    config["grad_squared"] = grad_squared
    return x - config["learning_rate"] * dx / (grad_squared + config["epsilon"]), config


def _adam_variant(t_after_use=False, epsilon_inside_root=False, betas_swapped=False):
    def variant(x, dx, config=None):
        x, dx, config = _prepare("adam", x, dx, config)
        beta1, beta2 = config["beta1"], config["beta2"]
        if betas_swapped:
            beta1, beta2 = beta2, beta1
        t = config.get("t", 0) + (0 if t_after_use else 1)
        first_moment = beta1 * _state(config, "first_moment", x) + (1 - beta1) * dx
        second_moment = beta2 * _state(config, "second_moment", x) + (1 - beta2) * dx * dx
        config.update(first_moment=first_moment, second_moment=second_moment, t=t + (1 if t_after_use else 0))
        with np.errstate(divide="ignore", invalid="ignore"):
            first_unbiased = first_moment / (1 - beta1**t)
            second_unbiased = second_moment / (1 - beta2**t)
            epsilon = config["epsilon"]
            root = _sqrt(second_unbiased + epsilon) if epsilon_inside_root else _sqrt(second_unbiased) + epsilon
            return x - config["learning_rate"] * first_unbiased / root, config

    return variant


def _adam_without_bias_correction(x, dx, config=None):
    return optim.adam(x, dx, {**(config or {}), "bias_correction": False})


def _step_decay_continuous(t, learning_rate, step_size, gamma=0.5):
    return learning_rate * gamma ** (t / step_size)


def _step_decay_early(t, learning_rate, step_size, gamma=0.5):
    return learning_rate * gamma ** ((t + 1) // step_size)


def _step_decay_every_step(t, learning_rate, step_size, gamma=0.5):
    return learning_rate * gamma**t


def _step_decay_multiplied(t, learning_rate, step_size, gamma=0.5):
    return learning_rate * gamma * (t // step_size)


LIKELY_BUGS = {
    "sgd_momentum": [
        (momentum_as_printed, "the step goes uphill: you wrote x += learning_rate * velocity (the lecture's "
         "pseudocode has this sign error). Step against the velocity: x - learning_rate * velocity."),
        (_momentum_other_convention, "your iterates are right, but config['velocity'] holds "
         "-learning_rate * velocity: you used the convention v = rho*v - learning_rate*dx; x += v. This "
         "exercise uses the lecture's: velocity = rho*velocity + dx; x -= learning_rate*velocity."),
        (_momentum_damped, "you wrote velocity = rho*velocity + (1 - rho)*dx, an exponential average. The "
         "lecture's velocity is a running sum: velocity = rho*velocity + dx."),
        (_momentum_forgets_velocity, "the velocity does not remember the past: read the previous velocity "
         "from config (zeros on the first step) and decay it by rho before adding dx."),
    ],
    "nesterov": [
        (_nesterov_one_minus_rho, "you used (1 - rho) * velocity, copied from the lecture's misprinted middle "
         "line. Expanding x~ + v_new + rho (v_new - v_old) gives -rho*old_velocity + (1 + rho)*velocity."),
        (_nesterov_new_velocity_for_old, "the look-ahead correction uses the new velocity twice: keep the "
         "velocity from before this step (old_velocity) for the -rho * old_velocity term."),
        (_nesterov_sign_flipped, "the velocity points uphill: velocity = rho*velocity - learning_rate*dx "
         "(minus: the velocity of Nesterov's form already carries the step)."),
        (optim.sgd_momentum, "that is plain momentum (x -= learning_rate*velocity with velocity = "
         "rho*velocity + dx). Nesterov's change-of-variables form: old = velocity; velocity = rho*velocity - "
         "learning_rate*dx; x += -rho*old + (1 + rho)*velocity."),
    ],
    "rmsprop": [
        (_rmsprop_epsilon_inside_root, "epsilon is inside the square root: divide by "
         "(sqrt(grad_squared) + epsilon), not sqrt(grad_squared + epsilon)."),
        (_rmsprop_decay_swapped, "the decay weights are swapped: grad_squared = decay_rate*grad_squared + "
         "(1 - decay_rate)*dx*dx keeps most of the old average."),
        (_rmsprop_no_root, "you divided by grad_squared itself: divide by its square root."),
        (optim.adagrad, "that is AdaGrad (a growing sum). RMSProp keeps a leaky average: grad_squared = "
         "decay_rate*grad_squared + (1 - decay_rate)*dx*dx."),
    ],
    "step_decay": [
        (_step_decay_continuous, "the rate decays smoothly: gamma ** (t / step_size) is exponential decay. "
         "Step decay holds the rate constant within each block of step_size steps: use t // step_size."),
        (_step_decay_early, "every drop comes one step early: at t = step_size - 1 the rate is still alpha_0; "
         "the first drop is at t = step_size (t counts the steps already taken, from 0)."),
        (_step_decay_every_step, "the rate is multiplied by gamma at every step: it should only drop every "
         "step_size steps (gamma ** (t // step_size))."),
        (_step_decay_multiplied, "gamma is multiplied by the number of drops; it should be raised to that power: "
         "learning_rate * gamma ** (t // step_size)."),
    ],
    "adam": [
        (_adam_variant(t_after_use=True), "t is incremented after it is used: on the first step 1 - beta**0 "
         "is 0 and the bias correction divides by zero. Increment t first (t = t + 1), then correct."),
        (_adam_without_bias_correction, "the bias correction is missing: divide first_moment by "
         "(1 - beta1**t) and second_moment by (1 - beta2**t)."),
        (_adam_variant(epsilon_inside_root=True), "epsilon is inside the square root: divide by "
         "(sqrt(second_unbiased) + epsilon), not sqrt(second_unbiased + epsilon)."),
        (_adam_variant(betas_swapped=True), "beta1 and beta2 are swapped: beta1 (0.9) averages dx in the "
         "first moment, beta2 (0.999) averages dx*dx in the second."),
    ],
}


# ---- Notebook 05: the two-loop recursion of L-BFGS --------------------------------------------------------------
# These variants take (gradient, s_history, y_history), oldest pair first, as
# course_lib.second_order.two_loop_direction does, and return a direction.

def _two_loop_variant(flip_sign=False, loops_swapped=False, scaling="newest", rho="s^T y", alphas="saved"):
    """The two-loop recursion with one mistake (the defaults give the right recursion)."""
    inner = {"s^T y": lambda s, y: y @ s, "s^T s": lambda s, y: s @ s, "y^T y": lambda s, y: y @ y}[rho]

    def variant(gradient, s_history, y_history):
        pairs = list(zip(s_history, y_history, strict=True))
        first, second = (pairs, pairs[::-1]) if loops_swapped else (pairs[::-1], pairs)
        q, saved = gradient, []
        for s, y in first:
            alpha = (s @ q) / inner(s, y)
            q = q - alpha * y
            saved.append(alpha)
        gamma = 1.0
        if pairs and scaling != "none":
            s, y = pairs[0] if scaling == "oldest" else pairs[-1]
            gamma = (y @ y) / (s @ y) if scaling == "upside down" else (s @ y) / (y @ y)
        r = gamma * q
        second_alphas = {"saved": saved[::-1], "not reversed": saved, "last only": saved[-1:] * len(saved)}[alphas]
        for (s, y), alpha in zip(second, second_alphas, strict=True):
            beta = (y @ r) / inner(s, y)
            r = r + (alpha - beta) * s
        return r if flip_sign else -r

    return variant


LIKELY_BUGS["two_loop_direction"] = [
    (_two_loop_variant(flip_sign=True), "the sign is flipped: you returned +H_k grad f, which points uphill. "
     "The search direction is -r, minus the result of the second loop (and -gradient with no history)."),
    (lambda gradient, s_history, y_history: -gradient, "you returned -gradient whatever the history: that is "
     "steepest descent. Run the two loops over the pairs (s_i, y_i) to turn the gradient into -H_k grad f."),
    (_two_loop_variant(loops_swapped=True), "the loops run over the history in the wrong order: the first loop "
     "goes from the newest pair to the oldest (reversed(s_history)), the second from the oldest to the newest."),
    (_two_loop_variant(scaling="none"), "the initial scaling is missing (gamma = 1): scale q by "
     "gamma = s^T y / y^T y of the newest pair before the second loop, r = gamma * q."),
    (_two_loop_variant(scaling="oldest"), "gamma comes from the oldest pair: use the newest one, "
     "s_history[-1] and y_history[-1] (the histories are stored oldest first)."),
    (_two_loop_variant(scaling="upside down"), "gamma is upside down: gamma = s^T y / y^T y (a step length per "
     "unit of gradient change, about 1 / curvature), not y^T y / s^T y."),
    (_two_loop_variant(rho="s^T s"), "rho is 1 / (s^T s): it must be rho_i = 1 / (y_i^T s_i), in both loops."),
    (_two_loop_variant(rho="y^T y"), "rho is 1 / (y^T y): it must be rho_i = 1 / (y_i^T s_i), in both loops."),
    (_two_loop_variant(alphas="last only"), "the second loop uses one alpha for every pair (the last one the "
     "first loop computed): save each alpha_i in the first loop and use alpha_i with its own pair in the second."),
    (_two_loop_variant(alphas="not reversed"), "the alphas are paired with the wrong pairs in the second loop: "
     "the first loop saved them newest first, the second loop runs oldest first, so read them in reverse."),
]
