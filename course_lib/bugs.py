"""The likely bugs in each exercise, written out so that the judge can recognise them in a learner's answer.

Each entry of ``LIKELY_BUGS[exercise]`` is (wrong implementation, what to tell the learner). The judge
(course_lib.checks) calls the learner's function and these variants on the same cases; when the learner's
outputs match a variant's on every call of every case, the learner gets that variant's explanation instead of
a bare "wrong answer". Each variant has the signature of its exercise and is written the way a learner would
write it (the update rules follow the contract of course_lib.optim); ``0 * x`` and ``** 0.5`` make the update
rules' variants work on numpy arrays and torch tensors alike. What a variant does besides returning counts too:
it is named only if it also raised, or changed an argument in place, wherever the learner's function did.
"""

import copy
import math

import numpy as np
import torch

from course_lib import optim, theory

__all__ = ["LIKELY_BUGS", "momentum_as_printed"]


# ---- Notebook 01: the best learning rate and the steps it needs --------------------------------------------

def _eigenvalues(hessian):
    return np.linalg.eigvalsh(np.asarray(hessian, dtype=float))


def _rate_from_diagonal(hessian):
    diagonal = np.diag(np.asarray(hessian, dtype=float))
    return 2 / (diagonal.max() + diagonal.min())


def _steps(rate, factor, rounding=math.ceil):
    return rounding(math.log(factor) / math.log(rate))


LIKELY_BUGS = {
    "best_learning_rate": [
        (_rate_from_diagonal, "you used the diagonal entries of the Hessian. They are its curvatures only when "
         "the valley is aligned with the axes; the curvatures are the eigenvalues (np.linalg.eigvalsh(hessian))."),
        (lambda hessian: 1 / _eigenvalues(hessian)[-1], "1/L (L the largest curvature) is a safe rate but not the "
         "best: the steepest direction then converges in one step while the flattest crawls. Balance the two: "
         "choose alpha so that |1 - alpha mu| = |1 - alpha L|."),
        (lambda hessian: 2 / _eigenvalues(hessian)[-1], "2/L is the edge of stability: along the steepest "
         "direction the error is multiplied by |1 - 2| = 1 and never shrinks. Balance the two extreme "
         "curvatures: |1 - alpha mu| = |1 - alpha L|."),
        (lambda hessian: 1 / _eigenvalues(hessian)[0], "1/mu (mu the smallest curvature) makes the flattest "
         "direction converge in one step, but along the steepest one |1 - L/mu| > 1: the run diverges."),
        (lambda hessian: 2 / (_eigenvalues(hessian)[-1] * _eigenvalues(hessian)[0]), "you multiplied the "
         "curvatures: balancing |1 - alpha mu| = |1 - alpha L| gives alpha (mu + L) = 2."),
    ],
    "steps_to_shrink": [
        (lambda kappa, factor: _steps(theory.momentum_rate(kappa), factor), "you used momentum's rate "
         "(sqrt(kappa) - 1)/(sqrt(kappa) + 1). Gradient descent at its best learning rate shrinks the error by "
         "(kappa - 1)/(kappa + 1) per step."),
        (lambda kappa, factor: _steps((kappa + 1) / (kappa - 1), factor), "the rate is upside down: "
         "(kappa + 1)/(kappa - 1) is above 1 and the count comes out negative. The error shrinks by "
         "(kappa - 1)/(kappa + 1) < 1 per step."),
        (lambda kappa, factor: math.ceil(math.log10(factor) / math.log(theory.gradient_descent_rate(kappa))),
         "you mixed logarithms: log10 of the factor over the natural log of the rate. Use the same base above and "
         "below the fraction (the base cancels)."),
        (lambda kappa, factor: math.ceil(math.log(factor) / math.log10(theory.gradient_descent_rate(kappa))),
         "you mixed logarithms: the natural log of the factor over log10 of the rate. Use the same base above and "
         "below the fraction (the base cancels)."),
        (lambda kappa, factor: _steps(1 - 1 / kappa, factor), "1 - 1/kappa is the rate at learning_rate = 1/L. "
         "At the best learning rate 2/(L + mu) it is (kappa - 1)/(kappa + 1)."),
        (lambda kappa, factor: _steps(theory.gradient_descent_rate(kappa), factor, math.floor), "one step short: "
         "the error after k steps is rate**k times the start, so you need the smallest k with rate**k <= factor: "
         "round the fraction up (math.ceil), not down."),
        (lambda kappa, factor: _steps(theory.gradient_descent_rate(kappa), factor, round), "round() can round "
         "down: you need the smallest whole k with rate**k <= factor, that is math.ceil of the fraction."),
        (lambda kappa, factor: math.log(factor) / math.log(theory.gradient_descent_rate(kappa)), "a number of "
         "steps is a whole number: take the smallest k with rate**k <= factor (math.ceil of the fraction)."),
    ],
}


# ---- Notebook 02: momentum and Nesterov ----------------------------------------------------------------------

def momentum_as_printed(x, dx, config=None):
    """SGD+momentum exactly as the lecture's pseudocode prints it: ``x += learning_rate * vx`` (uphill)."""
    config = optim.with_defaults("sgd_momentum", config)
    config["velocity"] = config["rho"] * config.get("velocity", 0 * x) + dx
    return x + config["learning_rate"] * config["velocity"], config


def _momentum_other_convention(x, dx, config=None):
    config = optim.with_defaults("sgd_momentum", config)
    config["velocity"] = config["rho"] * config.get("velocity", 0 * x) - config["learning_rate"] * dx
    return x + config["velocity"], config


def _momentum_damped(x, dx, config=None):
    config = optim.with_defaults("sgd_momentum", config)
    config["velocity"] = config["rho"] * config.get("velocity", 0 * x) + (1 - config["rho"]) * dx
    return x - config["learning_rate"] * config["velocity"], config


def _momentum_forgets_velocity(x, dx, config=None):
    config = optim.with_defaults("sgd_momentum", config)
    config["velocity"] = dx
    return x - config["learning_rate"] * dx, config


def _nesterov_one_minus_rho(x, dx, config=None):
    config = optim.with_defaults("nesterov", config)
    rho, old_velocity = config["rho"], config.get("velocity", 0 * x)
    config["velocity"] = rho * old_velocity - config["learning_rate"] * dx
    return x - rho * old_velocity + (1 - rho) * config["velocity"], config


def _nesterov_new_velocity_for_old(x, dx, config=None):
    config = optim.with_defaults("nesterov", config)
    rho = config["rho"]
    config["velocity"] = rho * config.get("velocity", 0 * x) - config["learning_rate"] * dx
    return x - rho * config["velocity"] + (1 + rho) * config["velocity"], config


def _nesterov_sign_flipped(x, dx, config=None):
    config = optim.with_defaults("nesterov", config)
    rho, old_velocity = config["rho"], config.get("velocity", 0 * x)
    config["velocity"] = rho * old_velocity + config["learning_rate"] * dx
    return x - rho * old_velocity + (1 + rho) * config["velocity"], config


LIKELY_BUGS["sgd_momentum"] = [
    (momentum_as_printed, "the step goes uphill: you wrote x += learning_rate * velocity (the lecture's "
     "pseudocode has this sign error). Step against the velocity: x - learning_rate * velocity."),
    (_momentum_other_convention, "your iterates are right, but config['velocity'] holds "
     "-learning_rate * velocity: you used the convention v = rho*v - learning_rate*dx; x += v. This "
     "exercise uses the lecture's: velocity = rho*velocity + dx; x -= learning_rate*velocity."),
    (_momentum_damped, "you wrote velocity = rho*velocity + (1 - rho)*dx, an exponential average. The "
     "lecture's velocity is a running sum: velocity = rho*velocity + dx."),
    (_momentum_forgets_velocity, "the velocity does not remember the past: read the previous velocity "
     "from config (zeros on the first step) and decay it by rho before adding dx."),
]
LIKELY_BUGS["nesterov"] = [
    (_nesterov_one_minus_rho, "you used (1 - rho) * velocity, copied from the lecture's misprinted middle "
     "line. Expanding x~ + v_new + rho (v_new - v_old) gives -rho*old_velocity + (1 + rho)*velocity."),
    (_nesterov_new_velocity_for_old, "that is plain momentum: with the new velocity in both terms, "
     "-rho*velocity + (1 + rho)*velocity is just x + velocity. Nesterov's correction needs the velocity from "
     "before this step: keep it (old_velocity = velocity) and use -rho*old_velocity."),
    (_nesterov_sign_flipped, "the velocity points uphill: velocity = rho*velocity - learning_rate*dx "
     "(minus: the velocity of Nesterov's form already carries the step)."),
    (optim.sgd_momentum, "that is plain momentum in the lecture's SGD+momentum form (x -= learning_rate*velocity "
     "with velocity = rho*velocity + dx). Nesterov's change-of-variables form: old = velocity; velocity = "
     "rho*velocity - learning_rate*dx; x += -rho*old + (1 + rho)*velocity."),
]


# ---- Notebook 03: RMSProp and Adam ----------------------------------------------------------------------------

def _rmsprop_variant(epsilon_inside_root=False, decay_swapped=False, no_root=False):
    def variant(x, dx, config=None):
        config = optim.with_defaults("rmsprop", config)
        keep = 1 - config["decay_rate"] if decay_swapped else config["decay_rate"]
        config["grad_squared"] = keep * config.get("grad_squared", 0 * x) + (1 - keep) * dx * dx
        if no_root:
            scale = config["grad_squared"] + config["epsilon"]
        elif epsilon_inside_root:
            scale = (config["grad_squared"] + config["epsilon"]) ** 0.5
        else:
            scale = config["grad_squared"] ** 0.5 + config["epsilon"]
        return x - config["learning_rate"] * dx / scale, config

    return variant


def _adam_variant(t_after_use=False, t_never_incremented=False, epsilon_inside_root=False, betas_swapped=False):
    def variant(x, dx, config=None):
        config = optim.with_defaults("adam", config)
        beta1, beta2 = (config["beta2"], config["beta1"]) if betas_swapped else (config["beta1"], config["beta2"])
        t = config.get("t", 0)
        t_used = t if (t_after_use or t_never_incremented) else t + 1
        first_moment = beta1 * config.get("first_moment", 0 * x) + (1 - beta1) * dx
        second_moment = beta2 * config.get("second_moment", 0 * x) + (1 - beta2) * dx * dx
        config.update(first_moment=first_moment, second_moment=second_moment,
                      t=t if t_never_incremented else t + 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            first_unbiased = first_moment / (1 - beta1**t_used)
            second_unbiased = second_moment / (1 - beta2**t_used)
            if epsilon_inside_root:
                root = (second_unbiased + config["epsilon"]) ** 0.5
            else:
                root = second_unbiased**0.5 + config["epsilon"]
            return x - config["learning_rate"] * first_unbiased / root, config

    return variant


def _adam_without_bias_correction(x, dx, config=None):
    return optim.adam(x, dx, {**(config or {}), "bias_correction": False})


LIKELY_BUGS["rmsprop"] = [
    (_rmsprop_variant(epsilon_inside_root=True), "epsilon is inside the square root: divide by "
     "(sqrt(grad_squared) + epsilon), not sqrt(grad_squared + epsilon)."),
    (_rmsprop_variant(decay_swapped=True), "the decay weights are swapped: grad_squared = decay_rate*grad_squared "
     "+ (1 - decay_rate)*dx*dx keeps most of the old average."),
    (_rmsprop_variant(no_root=True), "you divided by grad_squared itself: divide by its square root."),
    (optim.adagrad, "that is AdaGrad (a growing sum). RMSProp keeps a leaky average: grad_squared = "
     "decay_rate*grad_squared + (1 - decay_rate)*dx*dx."),
]
LIKELY_BUGS["adam"] = [
    (_adam_variant(t_never_incremented=True), "t is never incremented: it stays 0, so 1 - beta1**t is 0 and the "
     "bias correction divides by zero (NaN from the first step). Set t = t + 1 before correcting and store it: "
     "config['t'] = t (the lecture's pseudocode uses t without ever setting it)."),
    (_adam_variant(t_after_use=True), "t is incremented after it is used: on the first step 1 - beta**0 "
     "is 0 and the bias correction divides by zero. Increment t first (t = t + 1), then correct."),
    (_adam_without_bias_correction, "the bias correction is missing: divide first_moment by "
     "(1 - beta1**t) and second_moment by (1 - beta2**t)."),
    (_adam_variant(epsilon_inside_root=True), "epsilon is inside the square root: divide by "
     "(sqrt(second_unbiased) + epsilon), not sqrt(second_unbiased + epsilon)."),
    (_adam_variant(betas_swapped=True), "beta1 and beta2 are swapped: beta1 (0.9) averages dx in the "
     "first moment, beta2 (0.999) averages dx*dx in the second."),
]


# ---- Notebook 04: step decay ----------------------------------------------------------------------------------

LIKELY_BUGS["step_decay"] = [
    (lambda t, learning_rate, step_size, gamma=0.5: learning_rate * gamma ** (t / step_size),
     "the rate decays smoothly: gamma ** (t / step_size) is exponential decay. Step decay holds the rate "
     "constant within each block of step_size steps: use t // step_size."),
    (lambda t, learning_rate, step_size, gamma=0.5: learning_rate * gamma ** ((t + 1) // step_size),
     "every drop comes one step early: at t = step_size - 1 the rate is still alpha_0; the first drop is at "
     "t = step_size (t counts the steps already taken, from 0)."),
    (lambda t, learning_rate, step_size, gamma=0.5: learning_rate * gamma**t, "the rate is multiplied by gamma "
     "at every step: it should only drop every step_size steps (gamma ** (t // step_size))."),
    (lambda t, learning_rate, step_size, gamma=0.5: learning_rate * gamma * (t // step_size), "gamma is "
     "multiplied by the number of drops; it should be raised to that power: learning_rate * gamma ** "
     "(t // step_size)."),
]


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


# ---- Notebook 06: the moving average of a model, and the ensemble's prediction ----------------------------------
# ema_update(average_model, model, decay) returns a new model; ensemble_predict(models, inputs) the mean of the
# members' probabilities. Two variants of ema_update return the right model but change an argument in place;
# the judge recognises them by what course_lib.harness reports of their arguments. The eval() variant shows on
# models left in training mode, with dropout (other numbers) or batch norm (other numbers, and running
# statistics updated in place).

def _ema_variant(combine=None, buffers="copy"):
    """An EMA update on a copy, with ``combine(average, weights, decay, parameter)`` for each parameter and the
    buffers copied ("copy"), averaged like the weights ("average": every buffer; "average floats": all but the
    integer batch count) or left as the old average's ("stale")."""
    combine = combine or (lambda average, weights, decay, parameter: decay * average + (1 - decay) * weights)

    def ema_update(average_model, model, decay):
        new_average = copy.deepcopy(average_model)
        with torch.no_grad():
            for average, parameter in zip(new_average.parameters(), model.parameters(), strict=True):
                average.copy_(combine(average, parameter, decay, parameter))
            for kept, live in zip(new_average.buffers(), model.buffers(), strict=True):
                if buffers == "average" or (buffers == "average floats" and kept.is_floating_point()):
                    kept.copy_(decay * kept + (1 - decay) * live)
                elif buffers != "stale":
                    kept.copy_(live)
        return new_average

    return ema_update


def _ema_in_place_on_the_average(average_model, model, decay):
    with torch.no_grad():
        for average, weights in zip(average_model.parameters(), model.parameters(), strict=True):
            average.mul_(decay).add_((1 - decay) * weights)
        for kept, live in zip(average_model.buffers(), model.buffers(), strict=True):
            kept.copy_(live)
    return average_model


def _ema_in_place_on_the_model(average_model, model, decay):
    new_average = copy.deepcopy(average_model)
    with torch.no_grad():
        for average, weights in zip(new_average.parameters(), model.parameters(), strict=True):
            weights.mul_(1 - decay).add_(decay * average)  # the trained model's own weights overwritten
            average.copy_(weights)
        for kept, live in zip(new_average.buffers(), model.buffers(), strict=True):
            kept.copy_(live)
    return new_average


_BUFFERS_AVERAGED = ("you averaged batch norm's buffers (running_mean, running_var) like the weights: they are "
                     "running averages already, of the trained model's activations. Copy them from the trained "
                     "model (kept.copy_(live) over model.buffers()), as torch's AveragedModel does.")

LIKELY_BUGS["ema_update"] = [
    (_ema_variant(lambda average, weights, decay, _: decay * weights + (1 - decay) * average),
     "the old and new weights are swapped: x_test = decay * x_test + (1 - decay) * x keeps the weight `decay` on "
     "the average (the memory) and gives only 1 - decay to the current weights."),
    (_ema_variant(lambda average, weights, decay, parameter: decay * average + (1 - decay) * parameter.grad),
     "you averaged the gradients (parameter.grad), as momentum does: the moving average is of the weights "
     "themselves, x_test = decay * x_test + (1 - decay) * x."),
    (_ema_variant(lambda average, weights, decay, _: decay * average + weights),
     "the (1 - decay) factor on the current weights is missing: decay * x_test + x grows the weights by about "
     "1 / (1 - decay). Use decay * x_test + (1 - decay) * x, a weighted average."),
    (_ema_variant(buffers="average"), _BUFFERS_AVERAGED),
    (_ema_variant(buffers="average floats"), _BUFFERS_AVERAGED),
    (_ema_variant(buffers="stale"),
     "the buffers (batch norm's running_mean and running_var) are the old average's: copy them from the trained "
     "model (kept.copy_(live) over model.buffers()), whose statistics go with its current weights."),
    (_ema_in_place_on_the_average,
     "the numbers are right, but you changed average_model in place: the caller's previous average changed too. "
     "Work on a copy (new_average = copy.deepcopy(average_model)) and return that."),
    (_ema_in_place_on_the_model,
     "the numbers are right, but you changed the trained model's weights in place (weights.mul_ ...): training "
     "would go on from the averaged weights. Only read model; write into your copy of the average."),
]


def _member_logits(models, inputs, evaluation=True):
    outputs = []
    with torch.no_grad():
        for model in models:
            if evaluation:
                model.eval()
            outputs.append(model(inputs))
    return torch.stack(outputs)


def _averages_logits(models, inputs):
    return torch.softmax(_member_logits(models, inputs).mean(0), dim=-1)


def _returns_mean_logits(models, inputs):
    return _member_logits(models, inputs).mean(0)


def _averages_votes(models, inputs):
    logits = _member_logits(models, inputs)
    return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype).mean(0)


def _returns_classes(models, inputs):
    return torch.softmax(_member_logits(models, inputs), dim=-1).mean(0).argmax(-1)


def _forgets_eval(models, inputs):
    return torch.softmax(_member_logits(models, inputs, evaluation=False), dim=-1).mean(0)


def _softmax_over_examples(models, inputs):
    return torch.softmax(_member_logits(models, inputs), dim=1).mean(0)


def _sums_probabilities(models, inputs):
    return torch.softmax(_member_logits(models, inputs), dim=-1).sum(0)


LIKELY_BUGS["ensemble_predict"] = [
    (_averages_logits,
     "you averaged the logits and took one softmax: that is a product of the members' distributions, where a "
     "confident member outvotes the others. Average the probabilities: the mean of softmax(model(inputs))."),
    (_returns_mean_logits,
     "you returned the mean of the logits: the ensemble's prediction is a probability for each class (rows "
     "summing to 1), the mean of each model's softmax."),
    (_averages_votes,
     "you averaged the members' votes (their argmaxes): that throws away how sure each member is. Average their "
     "predicted probabilities, softmax(model(inputs)), instead."),
    (_returns_classes,
     "you returned the predicted classes (the argmax of the mean probabilities): return the probabilities "
     "themselves, a tensor of shape (examples, classes)."),
    (_forgets_eval,
     "the models ran in training mode: dropout still dropped units, and batch norm used the batch's statistics "
     "(and updated its running statistics). Call model.eval() on each model before predicting."),
    (_softmax_over_examples,
     "the softmax runs over the examples (dim=0 of a model's output): take it over the classes, dim=-1."),
    (_sums_probabilities,
     "you summed the members' probabilities: divide by the number of models (the mean), so that each row sums "
     "to 1."),
]


# ---- Notebook 07: inverted dropout ------------------------------------------------------------------------------
# These variants take (x, drop_probability, training, rng) as Exercise 7.1 does, rng a numpy.random.Generator. A
# learner's answer draws other random numbers than the variant: the judge compares their properties (share of
# zeros, scale of the survivors, masks per row, the test pass), not their values. Changing x in place is named
# by the judge itself (the exercise's hint for x).

def _dropout_keep_and_drop_swapped(x, drop_probability, training, rng):
    if not training:
        return x
    keep = drop_probability  # the drop probability used as the keep probability
    return x * (rng.random(x.shape) < keep) / keep


def _dropout_mask_marks_the_dropped(x, drop_probability, training, rng):
    if not training:
        return x
    mask = rng.random(x.shape) < drop_probability  # True for the elements to DROP, used as the ones to keep
    return x * mask / (1 - drop_probability)


def _dropout_scaled_at_test_instead_of_training(x, drop_probability, training, rng):
    keep = 1 - drop_probability
    if not training:
        return x * keep
    return x * (rng.random(x.shape) < keep)


def _dropout_never_scaled(x, drop_probability, training, rng):
    if not training:
        return x
    return x * (rng.random(x.shape) < 1 - drop_probability)


def _dropout_multiplied_by_keep(x, drop_probability, training, rng):
    if not training:
        return x
    keep = 1 - drop_probability
    return x * (rng.random(x.shape) < keep) * keep


def _dropout_mask_shared_across_the_batch(x, drop_probability, training, rng):
    if not training:
        return x
    keep = 1 - drop_probability
    mask = rng.random(x.shape[1:]) < keep  # one mask for every example
    return x * mask / keep


def _dropout_one_coin_per_example(x, drop_probability, training, rng):
    if not training:
        return x
    keep = 1 - drop_probability
    mask = rng.random((len(x),) + (1,) * (x.ndim - 1)) < keep  # one draw per example, broadcast over its units
    return x * mask / keep


def _dropout_left_on_at_test(x, drop_probability, training, rng):
    keep = 1 - drop_probability
    return x * (rng.random(x.shape) < keep) / keep


LIKELY_BUGS["inverted_dropout"] = [
    (_dropout_keep_and_drop_swapped,
     "keep and drop probabilities are swapped: with drop_probability=0.3 your training pass zeroes about 70% of "
     "the elements (and divides the rest by 0.3). An element is KEPT with probability 1 - drop_probability (the "
     "lecture's code calls the keep probability p; torch's nn.Dropout(p) and this exercise use the drop "
     "probability)."),
    (_dropout_mask_marks_the_dropped,
     "your mask keeps each element with probability drop_probability: rng.random(shape) < drop_probability "
     "marks the elements to DROP. Keep those with rng.random(shape) < 1 - drop_probability (or zero the ones "
     "your mask marks)."),
    (_dropout_scaled_at_test_instead_of_training,
     "this is vanilla dropout: it multiplies by the keep probability at test time instead of dividing the "
     "survivors by it in training. Inverted dropout scales in training (x * mask / (1 - drop_probability)) and "
     "returns x unchanged at test time."),
    (_dropout_never_scaled,
     "the survivors are not scaled: the mean of a training pass is (1 - drop_probability) * x, not x. Divide "
     "the kept elements by the keep probability 1 - drop_probability."),
    (_dropout_multiplied_by_keep,
     "the survivors are multiplied by the keep probability instead of divided by it: the mean of a training "
     "pass is (1 - drop_probability)² * x. Divide by 1 - drop_probability."),
    (_dropout_mask_shared_across_the_batch,
     "every example (row) gets the same mask: draw one random number per element, rng.random(x.shape), not one "
     "per column. With a shared mask the same units vanish for the whole batch."),
    (_dropout_one_coin_per_example,
     "each example (row) is kept or dropped as a whole: you drew one random number per row. Dropout draws one "
     "per element, rng.random(x.shape), so each unit of each example is dropped on its own."),
    (_dropout_left_on_at_test,
     "dropout is still on at test time (training=False): the test pass must return the activations unchanged, "
     "with no mask at all."),
]


# ---- Notebook 08: random circular shifts ------------------------------------------------------------------------
# These variants take (signals, max_shift, rng) as Exercise 8.1 does, one signal per row. The judge recognises them
# by what is measurable whatever the draws: is each row a circular shift of its own signal, which shifts occur and
# how often, do rows share a shift. Shifting the caller's signals in place is named by the judge itself (the
# exercise's hint for signals).

def _roll_each(signals, shifts):
    """Row n rolled by shifts[n] (np.roll's sense), in one gather."""
    length = signals.shape[1]
    return np.take_along_axis(signals, (np.arange(length)[None, :] - shifts[:, None]) % length, axis=1)


def _shift_zero_filled(signals, max_shift, rng):
    out = np.zeros_like(signals)
    length = signals.shape[1]
    for row, shift in enumerate(rng.integers(-max_shift, max_shift + 1, size=len(signals))):
        if shift >= 0:
            out[row, shift:] = signals[row, :length - shift]
        else:
            out[row, :shift] = signals[row, -shift:]
    return out


def _shift_one_for_the_whole_batch(signals, max_shift, rng):
    return np.roll(signals, rng.integers(-max_shift, max_shift + 1), axis=1)


def _shift_range_misses_the_top(signals, max_shift, rng):
    return _roll_each(signals, rng.integers(-max_shift, max_shift, size=len(signals)))  # the high end is exclusive


def _shift_only_positive(signals, max_shift, rng):
    return _roll_each(signals, rng.integers(0, max_shift + 1, size=len(signals)))


def _shift_along_the_batch_axis(signals, max_shift, rng):
    return np.roll(signals, rng.integers(-max_shift, max_shift + 1), axis=0)


def _shift_always_the_largest(signals, max_shift, rng):
    return _roll_each(signals, max_shift * rng.choice([-1, 1], size=len(signals)))


def _shift_rounded_uniform(signals, max_shift, rng):
    shifts = np.round(rng.uniform(-max_shift, max_shift, size=len(signals))).astype(int)
    return _roll_each(signals, shifts)


LIKELY_BUGS["random_circular_shift"] = [
    (_shift_zero_filled,
     "your shift fills the vacated samples with zeros: the samples that leave one end must come back at the "
     "other (np.roll), as in the MNIST-1D generator's own translation."),
    (_shift_one_for_the_whole_batch,
     "every signal of a batch is shifted by the same amount: draw one shift per signal (size=len(signals)) so "
     "that each example moves on its own."),
    (_shift_range_misses_the_top,
     "a shift of +max_shift never occurs: rng.integers(low, high) excludes high, so draw from "
     "rng.integers(-max_shift, max_shift + 1)."),
    (_shift_only_positive,
     "only shifts to the right (0 to max_shift) occur: draw from -max_shift to +max_shift."),
    (_shift_along_the_batch_axis,
     "the rows are rolled along the batch axis (axis 0): the examples change places, and their labels no longer "
     "match. Roll each signal along its samples (axis 1, or np.roll of a single row)."),
    (_shift_always_the_largest,
     "every signal moves by exactly max_shift, left or right: the shift must be uniform over all of "
     "-max_shift, ..., max_shift, zero included."),
    (_shift_rounded_uniform,
     "every shift occurs, but -max_shift and +max_shift only half as often as the others: rounding a uniform "
     "number from [-max_shift, max_shift] gives the two ends half-width intervals. Draw integers directly: "
     "rng.integers(-max_shift, max_shift + 1, size=len(signals))."),
]


# ---- Notebook 09: batch norm's forward and backward passes ----------------------------------------------------
# Written in numpy, as the exercises ask, each the whole function a learner would write with one mistake (the
# defaults give the right pass; compare course_lib.batch_norm).

def _forward_variant(axis=0, keepdims=False, normaliser="sqrt(variance + epsilon)", new_weight="momentum",
                     update="in training", test_statistics="running", stored_variance="unbiased",
                     normalising_variance="biased", scale_and_shift=True):
    """batchnorm_forward with one mistake."""
    divide = {"sqrt(variance + epsilon)": lambda centred, var, epsilon: centred / np.sqrt(var + epsilon),
              "sqrt(variance)": lambda centred, var, epsilon: centred / np.sqrt(var),
              "sqrt(variance) + epsilon": lambda centred, var, epsilon: centred / (np.sqrt(var) + epsilon),
              "variance + epsilon": lambda centred, var, epsilon: centred / (var + epsilon)}[normaliser]

    def forward(x, gamma, beta, running_mean, running_var, momentum=0.1, epsilon=1e-5, training=True):
        n = x.shape[0]
        if training or test_statistics == "batch" or update == "always":
            batch_mean = x.mean(axis=axis, keepdims=keepdims)
            batch_variance = ((x - batch_mean) ** 2).mean(axis=axis, keepdims=keepdims)
        if training or test_statistics == "batch":
            mean, variance = batch_mean, batch_variance
            if normalising_variance == "unbiased":
                variance = variance * n / (n - 1)
        else:
            mean, variance = running_mean, running_var
        out = divide(x - mean, variance, epsilon)
        if scale_and_shift:
            out = gamma * out + beta
        if (training and update != "never") or update == "always":
            weight = momentum if new_weight == "momentum" else 1 - momentum
            stored = batch_variance * n / (n - 1) if stored_variance == "unbiased" else batch_variance
            new_running_mean = (1 - weight) * running_mean + weight * batch_mean
            return out, new_running_mean, (1 - weight) * running_var + weight * stored
        return out, running_mean.copy(), running_var.copy()

    return forward


def _backward_variant(dx_terms="both", dgamma_of="x_hat", axis=0, reduce="sum", gamma_in_dx=True, epsilon_in=True,
                      variance_divisor="N"):
    """batchnorm_backward with one mistake."""

    def backward(dout, x, gamma, epsilon=1e-5):
        n = x.shape[0]
        mean = x.mean(axis=0)
        variance = ((x - mean) ** 2).sum(axis=0) / (n if variance_divisor == "N" else n - 1)
        inverse_std = 1 / np.sqrt(variance + (epsilon if epsilon_in else 0))
        x_hat = (x - mean) * inverse_std
        dx_hat = gamma * dout if gamma_in_dx else dout
        dx = inverse_std * {
            "both": dx_hat - dx_hat.mean(axis=0) - x_hat * (dx_hat * x_hat).mean(axis=0),
            "none": dx_hat,
            "mean only": dx_hat - dx_hat.mean(axis=0),
            "variance only": dx_hat - x_hat * (dx_hat * x_hat).mean(axis=0),
            "variance sign": dx_hat - dx_hat.mean(axis=0) + x_hat * (dx_hat * x_hat).mean(axis=0),
            "sums, no 1/N": n * dx_hat - dx_hat.sum(axis=0) - x_hat * (dx_hat * x_hat).sum(axis=0),
        }[dx_terms]
        total = {"sum": np.sum, "mean": np.mean}[reduce]
        dgamma = total(dout * (x_hat if dgamma_of == "x_hat" else x), axis=axis)
        return dx, dgamma, total(dout, axis=axis)

    return backward


_WRONG_AXIS = ("you normalise each example over its features (axis=1): batch norm takes each feature's mean and "
               "variance over the batch, x.mean(axis=0), one value per feature")
LIKELY_BUGS["batchnorm_forward"] = [
    (_forward_variant(axis=1), _WRONG_AXIS),
    (_forward_variant(axis=1, keepdims=True), _WRONG_AXIS),
    (_forward_variant(normaliser="sqrt(variance)"), "you divide by sqrt(var) without epsilon: add epsilon to the "
     "variance inside the square root, sqrt(var + epsilon) (a feature constant over the batch would otherwise "
     "divide 0 by 0)"),
    (_forward_variant(normaliser="sqrt(variance) + epsilon"), "you divide by sqrt(var) + epsilon: epsilon belongs "
     "inside the square root, sqrt(var + epsilon), as in torch.nn.BatchNorm1d"),
    (_forward_variant(normaliser="variance + epsilon"), "you divide by the variance: divide by the standard "
     "deviation, sqrt(var + epsilon)"),
    (_forward_variant(new_weight="1 - momentum"), "your running averages give the old value the weight momentum "
     "and the batch 1 - momentum (CS231n's and Keras' convention): here, as in torch, momentum is the weight of "
     "the NEW batch statistic, running = (1 - momentum) * running + momentum * batch"),
    (_forward_variant(update="never"), "your running averages do not move in training mode: each training batch "
     "moves them towards its statistics, running = (1 - momentum) * running + momentum * batch (they are what "
     "test mode uses)"),
    (_forward_variant(update="always"), "your running averages change in test mode: at test time they are only "
     "used, never updated (return them unchanged)"),
    (_forward_variant(test_statistics="batch"), "in test mode you normalise with the test batch's own mean and "
     "variance: use running_mean and running_var, so that an example's output does not depend on the rest of its "
     "batch (one example alone would come out as beta)"),
    (_forward_variant(stored_variance="biased"), "your running variance stores the biased batch variance (divided "
     "by N): torch stores the unbiased one, var * N / (N - 1), while it normalises with the biased one"),
    (_forward_variant(normalising_variance="unbiased"), "you normalise with the unbiased variance (divided by "
     "N - 1): normalise with the biased one (divided by N); only the running variance stores the unbiased one"),
    (_forward_variant(scale_and_shift=False), "your output ignores gamma and beta: after normalising, scale by "
     "gamma and shift by beta, out = gamma * x_hat + beta"),
]
LIKELY_BUGS["batchnorm_backward"] = [
    (_backward_variant(dx_terms="none"), "your dx treats the batch mean and variance as constants: they depend on "
     "every x_i, so dx also has the terms - mean(dout) - x_hat * mean(dout * x_hat) (inside "
     "gamma / sqrt(var + epsilon) * (...))"),
    (_backward_variant(dx_terms="mean only"), "your dx has the mean's path but not the variance's: subtract "
     "x_hat * mean(dout * x_hat) too"),
    (_backward_variant(dx_terms="variance only"), "your dx has the variance's path but not the mean's: subtract "
     "mean(dout) too"),
    (_backward_variant(dx_terms="variance sign"), "the variance's term has the wrong sign: dx = gamma / "
     "sqrt(var + epsilon) * (dout - mean(dout) - x_hat * mean(dout * x_hat)), minus both times"),
    (_backward_variant(dx_terms="sums, no 1/N"), "your dx is N times too large: with sums instead of means, "
     "dx = gamma / sqrt(var + epsilon) / N * (N * dout - sum(dout) - x_hat * sum(dout * x_hat)); the 1/N is "
     "missing"),
    (_backward_variant(dgamma_of="x"), "your dgamma sums dout * x: gamma multiplies the normalised x_hat, so "
     "dgamma = sum over the batch of dout * x_hat"),
    (_backward_variant(axis=1), "your dgamma and dbeta sum over the features (axis=1): sum over the batch "
     "(axis=0), one value per feature"),
    (_backward_variant(reduce="mean"), "your dgamma and dbeta are averages over the batch: they are sums (every "
     "example's output depends on gamma and beta)"),
    (_backward_variant(gamma_in_dx=False), "your dx is missing the factor gamma: out = gamma * x_hat + beta, so "
     "the gradient reaching x_hat is gamma * dout"),
    (_backward_variant(epsilon_in=False), "your backward pass divides by sqrt(var) without epsilon: use "
     "sqrt(var + epsilon), as the forward pass does"),
    (_backward_variant(variance_divisor="N - 1"), "your backward pass uses the unbiased variance (divided by "
     "N - 1): the forward pass normalises with the biased one (divided by N), and its gradient must use the same"),
]


# ---- Notebook 10: freeze the pretrained body, replace the head ------------------------------------------------
# Each takes (model, num_classes, seed) and returns (new_model, trainable_parameters), as a learner would write it:
# on a copy of the model, with one mistake.

def _freeze_variant(freeze_body=True, body_eval=True, new_head="seeded", head_frozen=False, whole_model_eval=False,
                    optimizer_gets="head"):
    """freeze_body_and_replace_head with one mistake."""

    def freeze_body_and_replace_head(model, num_classes, seed=0):
        model = copy.deepcopy(model)
        if freeze_body:
            for parameter in model.body.parameters():
                parameter.requires_grad_(False)
        if body_eval:
            model.body.eval()
        if new_head != "none":
            if new_head == "seeded":
                torch.manual_seed(seed)
            model.head = torch.nn.Linear(model.head.in_features, num_classes)
        if head_frozen:
            for parameter in model.head.parameters():
                parameter.requires_grad_(False)
        if whole_model_eval:
            model.eval()
        trainable = model.head.parameters() if optimizer_gets == "head" else model.parameters()
        return model, list(trainable)

    return freeze_body_and_replace_head


LIKELY_BUGS["freeze_body_and_replace_head"] = [
    (_freeze_variant(new_head="none"), "the head is the pretrained one: the new task has new classes, so replace "
     "it with a new torch.nn.Linear(model.head.in_features, num_classes), created right after "
     "torch.manual_seed(seed)"),
    (_freeze_variant(freeze_body=False), "the body's parameters still require gradients: call "
     "requires_grad_(False) on every parameter of model.body (otherwise every step computes gradients for them, "
     "and an optimizer given them would move them)"),
    (_freeze_variant(optimizer_gets="all"), "you return every parameter of the model for the optimizer: return "
     "only the new head's, list(model.head.parameters()); the frozen ones have no business in the optimizer"),
    (_freeze_variant(freeze_body=False, optimizer_gets="all"), "the body is not frozen: its parameters require "
     "gradients AND go to the optimizer, so training moves them; freeze them (requires_grad_(False)) and return "
     "only the head's parameters"),
    (_freeze_variant(body_eval=False), "the body stays in training mode (the model came in training mode): its "
     "batch-norm layers would normalise with each batch's statistics and keep updating their running averages "
     "with the new data, although the weights are frozen; put it in eval mode, model.body.eval()"),
    (_freeze_variant(head_frozen=True), "the new head's parameters do not require gradients either: freeze the "
     "body only, the head must train"),
    (_freeze_variant(new_head="unseeded"), "your new head's initial weights are not the ones "
     "torch.manual_seed(seed) gives: call torch.manual_seed(seed) right before creating the torch.nn.Linear"),
    (_freeze_variant(whole_model_eval=True), "the new head is in eval mode too: you called model.eval() after "
     "creating it. Put only the body in eval mode (model.body.eval()); the head trains, and a head with dropout "
     "or batch norm would behave as at test time"),
]
