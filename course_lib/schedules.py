"""Learning-rate schedules: the learning rate as a plain function of the step count.

Every schedule follows one contract (like nanoGPT's ``get_lr(it)``):

    learning_rate_t = schedule(t, learning_rate, ...)

- ``t`` is the number of updates already taken (0 for the first update); step the schedule once per epoch
  instead and ``t`` counts epochs. ``learning_rate`` is the starting rate, the lecture's alpha_0.
- A schedule is a pure function: it keeps no state, so any step can be evaluated, plotted or replayed alone.
- An argument outside its valid range raises ``ValueError`` naming the parameter and its range.

Adapters put a schedule to work without a second implementation of it: ``scheduled(rule, schedule, ...)``
turns an update rule of ``course_lib.optim`` into one whose learning rate follows the schedule (so it runs under
``course_lib.trajectories.run``); ``lambda_lr(optimizer, schedule, ...)`` makes the
``torch.optim.lr_scheduler.LambdaLR`` that drives any torch optimizer with it, ``RuleOptimizer`` included
(``torch_lambda`` is its factor function).
"""

import math

import torch

from course_lib.validation import is_integer, is_real, require

__all__ = [
    "SCHEDULES",
    "cosine",
    "cosine_warm_restarts",
    "exponential_decay",
    "inverse_time_decay",
    "lambda_lr",
    "scheduled",
    "step_decay",
    "torch_lambda",
    "triangular_cyclic",
]


def _check_step_and_rate(t, learning_rate):
    require(is_integer(t, 0), "t", "an integer >= 0", t)
    require(is_real(learning_rate) and 0 < learning_rate < math.inf, "learning_rate", "a finite number > 0",
             learning_rate)


def _check_min_learning_rate(min_learning_rate, learning_rate):
    require(is_real(min_learning_rate) and 0 <= min_learning_rate < learning_rate, "min_learning_rate",
             f"in [0, learning_rate) = [0, {learning_rate!r})", min_learning_rate)


def _half_cosine(learning_rate, min_learning_rate, fraction):
    """min + (alpha_0 - min) (1 + cos(pi * fraction)) / 2: from alpha_0 at fraction 0 down to min at 1."""
    return min_learning_rate + (learning_rate - min_learning_rate) * (1 + math.cos(math.pi * fraction)) / 2


def step_decay(t, learning_rate, step_size, gamma=0.5):
    """Step decay: multiply the learning rate by gamma every step_size steps.

        alpha_t = alpha_0 * gamma ** (t // step_size)

    The lecture's "decay learning rate by half every few epochs" is gamma = 0.5 with t counting epochs.
    torch.optim.lr_scheduler.StepLR computes the same.
    """
    _check_step_and_rate(t, learning_rate)
    require(is_integer(step_size, 1), "step_size", "an integer >= 1", step_size)
    require(is_real(gamma) and 0 < gamma <= 1, "gamma", "in (0, 1]", gamma)
    return learning_rate * gamma ** (t // step_size)


def exponential_decay(t, learning_rate, k):
    """Exponential decay.

        alpha_t = alpha_0 * exp(-k t)

    torch.optim.lr_scheduler.ExponentialLR computes the same with gamma = exp(-k).
    """
    _check_step_and_rate(t, learning_rate)
    require(is_real(k) and 0 <= k < math.inf, "k", "a finite number >= 0", k)
    return learning_rate * math.exp(-k * t)


def inverse_time_decay(t, learning_rate, k):
    """1/t decay.

        alpha_t = alpha_0 / (1 + k t)

    The lecture prints the numerator as "alpha_9": it is alpha_0, the starting learning rate.
    """
    _check_step_and_rate(t, learning_rate)
    require(is_real(k) and 0 <= k < math.inf, "k", "a finite number >= 0", k)
    return learning_rate / (1 + k * t)


def cosine(t, learning_rate, total_steps, min_learning_rate=0.0):
    """Cosine annealing from alpha_0 down to min_learning_rate over total_steps steps, then constant.

        alpha_t = min_learning_rate + (alpha_0 - min_learning_rate) (1 + cos(pi t / total_steps)) / 2
                                                                         for t <= total_steps
        alpha_t = min_learning_rate                                      for t > total_steps

    Up to t = total_steps this is torch.optim.lr_scheduler.CosineAnnealingLR with T_max = total_steps and
    eta_min = min_learning_rate; past it torch's schedule climbs back up, this one stays at the minimum.
    """
    _check_step_and_rate(t, learning_rate)
    require(is_integer(total_steps, 1), "total_steps", "an integer >= 1", total_steps)
    _check_min_learning_rate(min_learning_rate, learning_rate)
    return _half_cosine(learning_rate, min_learning_rate, min(t, total_steps) / total_steps)


def cosine_warm_restarts(t, learning_rate, period, period_mult=1, min_learning_rate=0.0):
    """SGDR (Loshchilov & Hutter 2017): cosine annealing that restarts at alpha_0 at the end of every cycle.

        alpha_t = min_learning_rate + (alpha_0 - min_learning_rate) (1 + cos(pi t_cur / period_i)) / 2

    where cycle i lasts period_i = period * period_mult ** i steps and t_cur counts the steps since the last
    restart. torch.optim.lr_scheduler.CosineAnnealingWarmRestarts computes the same with T_0 = period,
    T_mult = period_mult and eta_min = min_learning_rate.
    """
    _check_step_and_rate(t, learning_rate)
    require(is_integer(period, 1), "period", "an integer >= 1", period)
    require(is_integer(period_mult, 1), "period_mult", "an integer >= 1", period_mult)
    _check_min_learning_rate(min_learning_rate, learning_rate)
    t_cur, period_i = t, period
    while t_cur >= period_i:  # walk past the finished cycles (integers: the restarts land exactly)
        t_cur, period_i = t_cur - period_i, period_i * period_mult
    return _half_cosine(learning_rate, min_learning_rate, t_cur / period_i)


def triangular_cyclic(t, learning_rate, max_learning_rate, half_period):
    """Smith's triangular cyclic learning rate (2017): up linearly to max_learning_rate and back, repeatedly.

        distance = | (t mod 2 half_period) - half_period | / half_period        (1 at the ends, 0 at the peak)
        alpha_t = max_learning_rate - (max_learning_rate - alpha_0) * distance

    Smith calls half_period the "stepsize". torch.optim.lr_scheduler.CyclicLR computes the same with
    base_lr = alpha_0, step_size_up = half_period and mode="triangular".
    """
    _check_step_and_rate(t, learning_rate)
    require(is_real(max_learning_rate) and learning_rate < max_learning_rate < math.inf, "max_learning_rate",
             f"a finite number > learning_rate = {learning_rate!r}", max_learning_rate)
    require(is_integer(half_period, 1), "half_period", "an integer >= 1", half_period)
    distance = abs(t % (2 * half_period) - half_period) / half_period
    return max_learning_rate - (max_learning_rate - learning_rate) * distance


SCHEDULES = {schedule.__name__: schedule for schedule in
             (step_decay, exponential_decay, inverse_time_decay, cosine, cosine_warm_restarts, triangular_cyclic)}


def scheduled(rule, schedule, **schedule_args):
    """The update rule ``rule`` with its learning rate set to ``schedule(t, **schedule_args)`` at step t.

        next_x, config = scheduled(sgd, step_decay, learning_rate=0.1, step_size=30)(x, dx, config)

    The result keeps the rule contract of course_lib.optim, so ``run(scheduled(...), landscape)`` works. The
    step count t lives in ``config["step"]`` (0 on the first call); any ``learning_rate`` in config is
    overwritten by the schedule. The schedule's arguments are checked here, not at the first step.
    """
    schedule(0, **schedule_args)

    def scheduled_rule(x, dx, config=None):
        config = dict(config or {})
        step = config.pop("step", 0)
        config["learning_rate"] = schedule(step, **schedule_args)
        next_x, config = rule(x, dx, config)
        return next_x, {**config, "step": step + 1}

    scheduled_rule.__name__ = f"{rule.__name__} ({schedule.__name__})"
    return scheduled_rule


def torch_lambda(schedule, **schedule_args):
    """The factor function for torch.optim.lr_scheduler.LambdaLR: t -> schedule(t) / learning_rate.

        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scheduler = LambdaLR(optimizer, torch_lambda(cosine, learning_rate=0.1, total_steps=1000))

    LambdaLR multiplies each param group's initial ``lr`` by this factor, so give the optimizer
    lr = learning_rate. It drives any torch optimizer, course_lib.optim.RuleOptimizer included.
    """
    learning_rate = schedule_args.get("learning_rate")
    schedule(0, **schedule_args)

    def factor(t):
        return schedule(t, **schedule_args) / learning_rate

    return factor


def lambda_lr(optimizer, schedule, **schedule_args):
    """A torch scheduler that sets ``optimizer``'s learning rate to ``schedule(t, learning_rate, ...)`` at step t.

        optimizer = optim.RuleOptimizer(model.parameters(), optim.sgd, learning_rate=1.0)
        scheduler = lambda_lr(optimizer, step_decay, step_size=3, gamma=0.1)     # scheduler.step() once per epoch

    ``learning_rate`` (alpha_0) is the optimizer's own ``lr``; the result is
    ``torch.optim.lr_scheduler.LambdaLR(optimizer, torch_lambda(schedule, learning_rate=lr, ...))``.
    """
    require("learning_rate" not in schedule_args, "learning_rate", "left out: it is the optimizer's lr",
            schedule_args.get("learning_rate"))
    learning_rate = optimizer.defaults["lr"]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, torch_lambda(schedule, learning_rate=learning_rate,
                                                                      **schedule_args))
