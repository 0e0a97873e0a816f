"""Learning-rate schedules against torch.optim.lr_scheduler, and the two adapters that put them to work."""

import copy
import math

import numpy as np
import pytest
import torch
from torch.optim import lr_scheduler

from course_lib import landscapes, optim
from course_lib.schedules import (
    SCHEDULES,
    cosine,
    cosine_warm_restarts,
    exponential_decay,
    inverse_time_decay,
    lambda_lr,
    scheduled,
    step_decay,
    torch_lambda,
    triangular_cyclic,
)
from course_lib.trajectories import run

STEPS = 500

# (our schedule, its arguments, a factory building the torch scheduler that should give the same rates)
TORCH_TWINS = {
    "step decay": (step_decay, {"learning_rate": 0.1, "step_size": 30, "gamma": 0.5},
                   lambda o: lr_scheduler.StepLR(o, step_size=30, gamma=0.5)),
    "step decay gamma=0.3": (step_decay, {"learning_rate": 0.1, "step_size": 7, "gamma": 0.3},
                             lambda o: lr_scheduler.StepLR(o, step_size=7, gamma=0.3)),
    "exponential": (exponential_decay, {"learning_rate": 0.1, "k": 0.01},
                    lambda o: lr_scheduler.ExponentialLR(o, gamma=math.exp(-0.01))),
    "cosine": (cosine, {"learning_rate": 0.1, "total_steps": STEPS - 1},
               lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=STEPS - 1)),
    "cosine to a minimum": (cosine, {"learning_rate": 0.1, "total_steps": STEPS - 1, "min_learning_rate": 1e-3},
                            lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=STEPS - 1, eta_min=1e-3)),
    "SGDR": (cosine_warm_restarts, {"learning_rate": 0.1, "period": 50, "min_learning_rate": 1e-4},
             lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=50, eta_min=1e-4)),
    "SGDR period_mult=2": (cosine_warm_restarts, {"learning_rate": 0.1, "period": 30, "period_mult": 2},
                           lambda o: lr_scheduler.CosineAnnealingWarmRestarts(o, T_0=30, T_mult=2)),
    "triangular cyclic": (triangular_cyclic, {"learning_rate": 0.01, "max_learning_rate": 0.1, "half_period": 40},
                          lambda o: lr_scheduler.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=40,
                                                          cycle_momentum=False)),
}


def torch_learning_rates(make_scheduler, learning_rate, steps=STEPS):
    """The learning rate a torch scheduler gives at steps 0 .. steps-1."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=learning_rate)
    scheduler = make_scheduler(optimizer)
    rates = []
    for _ in range(steps):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return np.array(rates)


@pytest.mark.parametrize("name", TORCH_TWINS)
def test_schedule_matches_torch_scheduler_step_by_step(name):
    schedule, args, make_scheduler = TORCH_TWINS[name]
    ours = np.array([schedule(t, **args) for t in range(STEPS)])
    theirs = torch_learning_rates(make_scheduler, args["learning_rate"])
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-15)
    assert ours.max() / ours.min(initial=np.inf, where=ours > 0) > 2  # the rate really changed


@pytest.mark.parametrize("name", TORCH_TWINS)
def test_lambda_lr_gives_torchs_own_schedulers_rates(name):
    schedule, args, make_scheduler = TORCH_TWINS[name]
    rest = {key: value for key, value in args.items() if key != "learning_rate"}
    ours = torch_learning_rates(lambda o: lambda_lr(o, schedule, **rest), args["learning_rate"])
    np.testing.assert_allclose(ours, torch_learning_rates(make_scheduler, args["learning_rate"]), rtol=1e-9,
                               atol=1e-15)
    with pytest.raises(ValueError, match="^learning_rate must be left out: it is the optimizer's lr"):
        lambda_lr(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1), schedule, **args)


def test_inverse_time_decay_is_torch_adagrads_learning_rate_decay():
    # torch has no 1/t scheduler, but torch.optim.Adagrad's lr_decay is one: its step t (from 0) uses
    # lr / (1 + t * lr_decay). AdaGrad under our schedule must follow torch's Adagrad step by step.
    learning_rate, k = 0.5, 0.05
    start = torch.tensor([0.3, -0.2, 0.1, 0.4], dtype=torch.float64)
    theirs = torch.nn.Parameter(start.clone())
    reference = torch.optim.Adagrad([theirs], lr=learning_rate, lr_decay=k, eps=1e-7)
    rule = scheduled(optim.adagrad, inverse_time_decay, learning_rate=learning_rate, k=k)
    x, config = start.numpy().copy(), None
    for _ in range(STEPS):
        reference.zero_grad()
        logistic_loss(theirs).backward()
        reference.step()
        w = torch.tensor(x, requires_grad=True)
        logistic_loss(w).backward()
        x, config = rule(x, w.grad.numpy(), config)
    np.testing.assert_allclose(x, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert config["learning_rate"] < learning_rate / 20  # the decay mattered: 1 / (1 + 0.05 * 499)


def test_cosine_landmarks_and_constant_after_total_steps():
    args = {"learning_rate": 0.2, "total_steps": 100, "min_learning_rate": 0.02}
    assert cosine(0, **args) == 0.2
    assert cosine(50, **args) == pytest.approx((0.2 + 0.02) / 2, rel=1e-12)
    assert [cosine(t, **args) for t in (100, 101, 10_000)] == pytest.approx([0.02] * 3, rel=1e-12)


def test_warm_restarts_restart_at_the_cycle_boundaries():
    restarts = [0, 10, 30, 70, 150]  # cycles of 10, 20, 40, 80 steps
    rates = [cosine_warm_restarts(t, 1.0, period=10, period_mult=2) for t in range(160)]
    assert [t for t in range(1, 160) if rates[t] > rates[t - 1]] == restarts[1:]
    assert all(rates[t] == 1.0 for t in restarts)


def test_inverse_time_and_exponential_decay_follow_the_lectures_formulas():
    # Independent of the implementation: alpha_0 / alpha_t grows linearly in t; log alpha_t falls linearly.
    t = np.arange(200)
    inverse = np.array([inverse_time_decay(s, 0.5, k=0.1) for s in t])
    exponential = np.array([exponential_decay(s, 0.5, k=0.02) for s in t])
    np.testing.assert_allclose(np.diff(0.5 / inverse), 0.1, rtol=1e-9)
    np.testing.assert_allclose(np.diff(np.log(exponential)), -0.02, rtol=1e-9)


def test_scheduled_rule_under_run_matches_a_manual_loop():
    landscape = landscapes.rosenbrock()
    schedule_args = {"learning_rate": 0.02, "total_steps": 150, "min_learning_rate": 1e-3}
    trajectory = run(scheduled(optim.adam, cosine, **schedule_args), landscape, steps=200)
    x, config, points = np.array(landscape.start), None, [np.array(landscape.start)]
    for t in range(200):
        config = {**(config or {}), "learning_rate": cosine(t, **schedule_args)}
        x, config = optim.adam(x, landscape.grad(x), config)
        points.append(x)
    np.testing.assert_array_equal(trajectory.points, np.array(points))
    constant = run(optim.adam, landscape, steps=200, config={"learning_rate": 0.02})
    assert np.linalg.norm(trajectory.final - constant.final) > 1e-2  # the schedule changed the path


def test_scheduled_rule_counts_steps_and_never_modifies_its_config():
    rule = scheduled(optim.sgd, step_decay, learning_rate=1.0, step_size=2, gamma=0.5)
    x, config = np.array([1.0]), None
    rates = []
    for _ in range(5):
        saved = copy.deepcopy(config)
        x, new_config = rule(x, np.array([1.0]), config)
        assert config == saved
        rates.append(new_config["learning_rate"])
        config = new_config
    assert config["step"] == 5 and rates == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert x[0] == pytest.approx(1.0 - sum(rates))
    assert rule.__name__ == "sgd (step_decay)"


FEATURES = torch.randn(40, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
LABELS = (FEATURES[:, 0] - FEATURES[:, 1] > 0).double()


def logistic_loss(w):
    return torch.nn.functional.binary_cross_entropy_with_logits(FEATURES @ w, LABELS)


# Every schedule, run through both adapters past its end: cosine reaches learning rate 0 at step 40 and stays
# there for the last 20 steps (0 is a learning rate, as in torch).
ADAPTER_STEPS = 60
THROUGH_THE_END = {
    "step_decay": {"learning_rate": 0.5, "step_size": 7, "gamma": 0.5},
    "exponential_decay": {"learning_rate": 0.5, "k": 0.05},
    "inverse_time_decay": {"learning_rate": 0.5, "k": 0.1},
    "cosine": {"learning_rate": 0.5, "total_steps": 40},
    "cosine_warm_restarts": {"learning_rate": 0.5, "period": 15, "period_mult": 2},
    "triangular_cyclic": {"learning_rate": 0.05, "max_learning_rate": 0.5, "half_period": 12},
}


def test_every_schedule_is_run_through_the_adapters():
    assert set(THROUGH_THE_END) == set(SCHEDULES)


@pytest.mark.parametrize("name", THROUGH_THE_END)
def test_torch_lambda_drives_rule_optimizer_torch_sgd_and_the_scheduled_rule_alike(name):
    schedule, schedule_args = SCHEDULES[name], THROUGH_THE_END[name]
    start = torch.tensor([0.3, -0.2, 0.1, 0.4], dtype=torch.float64)
    ours, theirs = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    learning_rate = schedule_args["learning_rate"]
    optimizers = [optim.RuleOptimizer([ours], optim.sgd_momentum, learning_rate=learning_rate, rho=0.9),
                  torch.optim.SGD([theirs], lr=learning_rate, momentum=0.9)]
    factor = torch_lambda(schedule, **schedule_args)
    schedulers = [lr_scheduler.LambdaLR(o, factor) for o in optimizers]
    rule = scheduled(optim.sgd_momentum, schedule, **schedule_args)
    x, config, rates = start.numpy().copy(), {"rho": 0.9}, []
    for t in range(ADAPTER_STEPS):
        rates.append(schedule(t, **schedule_args))
        for param, optimizer, scheduler in zip((ours, theirs), optimizers, schedulers, strict=True):
            assert optimizer.param_groups[0]["lr"] == pytest.approx(rates[-1], rel=1e-12, abs=1e-15)
            optimizer.zero_grad()
            logistic_loss(param).backward()
            optimizer.step()
            scheduler.step()
        w = torch.tensor(x, requires_grad=True)
        logistic_loss(w).backward()
        x, config = rule(x, w.grad.numpy(), config)
        assert config["learning_rate"] == rates[-1]
        np.testing.assert_allclose(x, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(ours.detach(), theirs.detach(), rtol=1e-12, atol=1e-14)
    assert (theirs.detach() - start).norm() > 0.1
    assert len(set(rates)) > 5  # the rate really changed along the way
    if name == "cosine":
        assert rates[40:] == [0.0] * 20


def test_scheduled_rule_runs_past_the_end_of_a_cosine_to_zero():
    landscape = landscapes.ill_conditioned_quadratic(kappa=10)
    trajectory = run(scheduled(optim.sgd, cosine, learning_rate=0.5, total_steps=30), landscape, steps=50)
    assert not trajectory.diverged and len(trajectory.points) == 51
    assert np.all(trajectory.points[30:] == trajectory.points[30])  # the update at t = 30 on has rate 0
    assert not np.array_equal(trajectory.points[29], trajectory.points[30])


BAD_ARGUMENTS = [
    (step_decay, {"t": -1}, "t", ">= 0"),
    (step_decay, {"t": 1.5}, "t", "integer"),
    (step_decay, {"t": True}, "t", "integer"),
    (step_decay, {"learning_rate": 0.0}, "learning_rate", "> 0"),
    (exponential_decay, {"learning_rate": math.inf}, "learning_rate", "finite"),
    (inverse_time_decay, {"learning_rate": "0.1"}, "learning_rate", "number"),
    (step_decay, {"step_size": 0}, "step_size", ">= 1"),
    (step_decay, {"step_size": 2.0}, "step_size", "integer"),
    (step_decay, {"gamma": 0.0}, "gamma", "(0, 1]"),
    (step_decay, {"gamma": 1.5}, "gamma", "(0, 1]"),
    (exponential_decay, {"k": -0.1}, "k", ">= 0"),
    (inverse_time_decay, {"k": math.nan}, "k", "finite"),
    (cosine, {"total_steps": 0}, "total_steps", ">= 1"),
    (cosine, {"min_learning_rate": 0.1}, "min_learning_rate", "[0, learning_rate)"),
    (cosine, {"min_learning_rate": -1e-3}, "min_learning_rate", "[0, learning_rate)"),
    (cosine_warm_restarts, {"period": 0}, "period", ">= 1"),
    (cosine_warm_restarts, {"period_mult": 0}, "period_mult", ">= 1"),
    (cosine_warm_restarts, {"period_mult": 1.5}, "period_mult", "integer"),
    (cosine_warm_restarts, {"min_learning_rate": 0.2}, "min_learning_rate", "[0, learning_rate)"),
    (triangular_cyclic, {"max_learning_rate": 0.1}, "max_learning_rate", "> learning_rate"),
    (triangular_cyclic, {"half_period": -3}, "half_period", ">= 1"),
]

VALID = {
    step_decay: {"t": 3, "learning_rate": 0.1, "step_size": 10},
    exponential_decay: {"t": 3, "learning_rate": 0.1, "k": 0.1},
    inverse_time_decay: {"t": 3, "learning_rate": 0.1, "k": 0.1},
    cosine: {"t": 3, "learning_rate": 0.1, "total_steps": 10},
    cosine_warm_restarts: {"t": 3, "learning_rate": 0.1, "period": 10},
    triangular_cyclic: {"t": 3, "learning_rate": 0.1, "max_learning_rate": 1.0, "half_period": 10},
}


@pytest.mark.parametrize("schedule, bad, parameter, expected_range", BAD_ARGUMENTS,
                         ids=[f"{s.__name__}-{p}={b[p]!r}" for s, b, p, _ in BAD_ARGUMENTS])
def test_bad_arguments_are_refused_with_their_name_and_range(schedule, bad, parameter, expected_range):
    args = {**VALID[schedule], **bad}
    assert schedule(**VALID[schedule]) > 0
    with pytest.raises(ValueError, match=rf"^{parameter} must be") as error:
        schedule(**args)
    assert expected_range in str(error.value)
    if parameter != "t":  # the adapters check the schedule's arguments when they are built
        args.pop("t")
        with pytest.raises(ValueError, match=rf"^{parameter} must be"):
            scheduled(optim.sgd, schedule, **args)
        with pytest.raises(ValueError, match=rf"^{parameter} must be"):
            torch_lambda(schedule, **args)
