"""The update rules against torch.optim (float64), on test landscapes, and under bad input."""

import copy
import math

import numpy as np
import pytest
import torch

from course_lib import landscapes, optim
from course_lib.trajectories import run

STEPS = 300

# (our rule, our hyperparameters, the torch optimizer class, its matching arguments)
TORCH_TWINS = [
    (optim.sgd, {"learning_rate": 0.05}, torch.optim.SGD, {"lr": 0.05}),
    (optim.sgd_momentum, {"learning_rate": 0.02, "rho": 0.9}, torch.optim.SGD,
     {"lr": 0.02, "momentum": 0.9}),
    (optim.nesterov, {"learning_rate": 0.02, "rho": 0.8}, torch.optim.SGD,
     {"lr": 0.02, "momentum": 0.8, "nesterov": True}),
    (optim.adagrad, {"learning_rate": 0.3, "epsilon": 1e-7}, torch.optim.Adagrad, {"lr": 0.3, "eps": 1e-7}),
    (optim.rmsprop, {"learning_rate": 0.003, "decay_rate": 0.95, "epsilon": 1e-7}, torch.optim.RMSprop,
     {"lr": 0.003, "alpha": 0.95, "eps": 1e-7}),
    (optim.adam, {"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-7}, torch.optim.Adam,
     {"lr": 0.01, "betas": (0.8, 0.99), "eps": 1e-7}),
]


def logistic_problem(seed=0, n=64, d=5):
    """A logistic-regression loss in float64 and its gradient, computed by torch autograd."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(n, d, generator=generator, dtype=torch.float64)
    labels = (torch.rand(n, generator=generator, dtype=torch.float64) < 0.5).double()

    def loss(w):
        return torch.nn.functional.binary_cross_entropy_with_logits(features @ w, labels) + 0.01 * (w**2).sum()

    def gradient(w):
        w = torch.as_tensor(w, dtype=torch.float64).detach().requires_grad_(True)
        loss(w).backward()
        return w.grad

    start = torch.randn(d, generator=generator, dtype=torch.float64)
    return loss, gradient, start


@pytest.mark.parametrize("rule, config, torch_class, torch_kwargs", TORCH_TWINS,
                         ids=[twin[0].__name__ for twin in TORCH_TWINS])
def test_rule_matches_torch_optim_in_float64(rule, config, torch_class, torch_kwargs):
    loss, gradient, start = logistic_problem()
    w = torch.nn.Parameter(start.clone())
    reference = torch_class([w], **torch_kwargs)
    x, state = start.numpy().copy(), dict(config)
    for _ in range(STEPS):
        reference.zero_grad()
        loss(w).backward()
        reference.step()
        x, state = rule(x, gradient(x).numpy(), state)
    np.testing.assert_allclose(x, w.detach().numpy(), rtol=1e-12, atol=1e-13)
    assert np.linalg.norm(x - start.numpy()) > 1e-2  # the run moved: the comparison is not vacuous


@pytest.mark.parametrize("rule", optim.RULES.values(), ids=list(optim.RULES))
def test_numpy_and_tensor_paths_agree(rule):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4))
    x_tensor = torch.tensor(x)
    config_np = config_t = None
    for _ in range(50):
        dx = np.sin(x) + 0.1 * x  # any smooth gradient field
        x, config_np = rule(x, dx, config_np)
        x_tensor, config_t = rule(x_tensor, torch.sin(x_tensor) + 0.1 * x_tensor, config_t)
        assert isinstance(x_tensor, torch.Tensor) and isinstance(x, np.ndarray)
    np.testing.assert_allclose(x, x_tensor.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("rule", optim.RULES.values(), ids=list(optim.RULES))
def test_rule_never_modifies_its_inputs(rule):
    x, dx = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    _, config = rule(x, dx)
    saved = copy.deepcopy(config)
    x_before, dx_before = x.copy(), dx.copy()
    rule(x, dx, config)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(dx, dx_before)
    assert config.keys() == saved.keys()
    for key, value in saved.items():
        np.testing.assert_array_equal(config[key], value)
    tensor = torch.tensor([1.0, -2.0])
    rule(tensor, torch.tensor([0.5, 0.25]))
    assert tensor.tolist() == [1.0, -2.0]


def test_missing_entries_take_the_lectures_defaults():
    _, config = optim.adam(np.zeros(2), np.ones(2))
    assert (config["learning_rate"], config["beta1"], config["beta2"], config["epsilon"]) == (1e-3, 0.9, 0.999,
                                                                                            1e-7)
    assert config["bias_correction"] is True and config["t"] == 1
    assert optim.sgd_momentum(np.zeros(1), np.ones(1))[1]["rho"] == 0.9
    assert optim.rmsprop(np.zeros(1), np.ones(1))[1]["decay_rate"] == 0.99


def test_adam_first_step_divides_by_one_minus_beta():
    # t is incremented before use: the first bias-corrected step has length learning_rate along each axis.
    x, _ = optim.adam(np.zeros(3), np.array([2.0, -0.5, 1e-3]), {"learning_rate": 0.1, "epsilon": 1e-12})
    np.testing.assert_allclose(x, [-0.1, 0.1, -0.1], rtol=1e-8)


def test_momentum_steps_downhill():
    x, config = optim.sgd_momentum(np.array([1.0]), np.array([2.0]), {"learning_rate": 0.1})
    assert x[0] < 1.0 and config["velocity"][0] == 2.0


# Convergence on a parabola and on Rosenbrock, with hyperparameters a learner would try.
CONVERGENCE = {
    "sgd": ({"learning_rate": 0.5}, {"learning_rate": 1e-3}, 20000),
    "sgd_momentum": ({"learning_rate": 0.1}, {"learning_rate": 1e-3, "rho": 0.9}, 5000),
    "nesterov": ({"learning_rate": 0.1}, {"learning_rate": 1e-3, "rho": 0.9}, 5000),
    "adagrad": ({"learning_rate": 0.5}, {"learning_rate": 0.5}, 20000),
    "rmsprop": ({"learning_rate": 0.01}, {"learning_rate": 1e-3, "decay_rate": 0.9}, 20000),
    "adam": ({"learning_rate": 0.05}, {"learning_rate": 0.02}, 20000),
}


@pytest.mark.parametrize("name", CONVERGENCE)
def test_rule_converges_on_a_parabola(name):
    parabola = landscapes.quadratic([1.0, 3.0])
    trajectory = run(optim.RULES[name], parabola, start=(2.0, -1.5), steps=2000, config=CONVERGENCE[name][0])
    assert not trajectory.diverged
    assert np.linalg.norm(trajectory.final) < 2e-2


@pytest.mark.parametrize("name", CONVERGENCE)
def test_rule_converges_on_rosenbrock(name):
    valley = landscapes.rosenbrock()
    _, config, steps = CONVERGENCE[name]
    trajectory = run(optim.RULES[name], valley, steps=steps, config=config)
    assert not trajectory.diverged
    assert np.linalg.norm(trajectory.final - valley.global_minimum) < 5e-2


# A learning rate that falls to 0 for a while (the end of a cosine schedule) and comes back: every rule with a
# torch twin must match it step by step. Nesterov is left out: under a changing learning rate it differs from
# torch by design (its velocity carries the learning rate; see its docstring).
RATES_THROUGH_ZERO = [1.0] * 10 + [0.0] * 5 + [0.5] * 10


@pytest.mark.parametrize("rule, config, torch_class, torch_kwargs",
                         [twin for twin in TORCH_TWINS if twin[0] is not optim.nesterov],
                         ids=[twin[0].__name__ for twin in TORCH_TWINS if twin[0] is not optim.nesterov])
def test_learning_rate_zero_is_a_rate_as_in_torch(rule, config, torch_class, torch_kwargs):
    loss, gradient, start = logistic_problem(seed=1)
    w = torch.nn.Parameter(start.clone())
    reference = torch_class([w], **torch_kwargs)
    x, state, points = start.numpy().copy(), dict(config), []
    for factor in RATES_THROUGH_ZERO:
        reference.param_groups[0]["lr"] = factor * torch_kwargs["lr"]
        reference.zero_grad()
        loss(w).backward()
        reference.step()
        x, state = rule(x, gradient(x).numpy(), {**state, "learning_rate": factor * config["learning_rate"]})
        np.testing.assert_allclose(x, w.detach().numpy(), rtol=1e-12, atol=1e-13)
        points.append(x)
    assert all(np.array_equal(points[9], p) for p in points[10:15])  # learning rate 0: x stays put
    assert not np.array_equal(points[15], points[14])


BAD_HYPERPARAMETERS = [
    ("learning_rate", -1e-3, ">= 0"), ("learning_rate", -math.inf, "finite"),
    ("learning_rate", float("inf"), "finite"), ("learning_rate", float("nan"), "finite"),
    ("rho", 1.0, "[0, 1)"), ("rho", -0.1, "[0, 1)"),
    ("decay_rate", 1.5, "[0, 1)"), ("beta1", 1.0, "[0, 1)"), ("beta2", -1e-9, "[0, 1)"),
    ("epsilon", 0.0, "> 0"), ("epsilon", -1e-8, "> 0"), ("learning_rate", "0.1", "number"),
]


@pytest.mark.parametrize("parameter, value, expected_range", BAD_HYPERPARAMETERS)
def test_bad_hyperparameters_are_refused_with_their_name_and_range(parameter, value, expected_range):
    rule = {"rho": optim.sgd_momentum, "decay_rate": optim.rmsprop}.get(parameter, optim.adam)
    with pytest.raises(ValueError, match=parameter) as error:
        rule(np.zeros(2), np.ones(2), {parameter: value})
    assert expected_range in str(error.value)
    with pytest.raises(ValueError, match=parameter):
        optim.RuleOptimizer([torch.nn.Parameter(torch.zeros(2))], rule, **{parameter: value})


@pytest.mark.parametrize("rule", optim.RULES.values(), ids=list(optim.RULES))
def test_gradient_of_the_wrong_shape_is_refused(rule):
    with pytest.raises(ValueError, match=r"dx must have the shape of x \(2,\), got \(3,\)"):
        rule(np.zeros(2), np.ones(3))
    with pytest.raises(ValueError, match="both be"):
        rule(np.zeros(2), torch.ones(2))


def small_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3)).double()


def train(model, optimizer, scheduler=None, steps=60):
    generator = torch.Generator().manual_seed(3)
    inputs = torch.randn(32, 8, generator=generator, dtype=torch.float64)
    targets = torch.randint(0, 3, (32,), generator=generator)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
    return torch.cat([p.detach().flatten() for p in model.parameters()])


@pytest.mark.parametrize("with_scheduler", [False, True], ids=["constant lr", "StepLR"])
def test_rule_optimizer_trains_exactly_like_torch_adam(with_scheduler):
    ours, theirs = small_model(), small_model()
    rule_optimizer = optim.RuleOptimizer(ours.parameters(), optim.adam, learning_rate=0.01, epsilon=1e-8)
    torch_optimizer = torch.optim.Adam(theirs.parameters(), lr=0.01, eps=1e-8)
    schedulers = [None, None]
    if with_scheduler:
        schedulers = [torch.optim.lr_scheduler.StepLR(o, step_size=20, gamma=0.3)
                      for o in (rule_optimizer, torch_optimizer)]
    start = torch.cat([p.detach().flatten() for p in ours.parameters()])
    ours_final = train(ours, rule_optimizer, schedulers[0])
    theirs_final = train(theirs, torch_optimizer, schedulers[1])
    torch.testing.assert_close(ours_final, theirs_final, rtol=1e-10, atol=1e-12)
    assert (ours_final - start).norm() > 0.1
    if with_scheduler:
        assert rule_optimizer.param_groups[0]["lr"] == pytest.approx(0.01 * 0.3**3)


def test_rule_optimizer_accepts_a_rule_by_name_and_param_groups():
    model = small_model()
    optimizer = optim.RuleOptimizer([{"params": model[0].parameters(), "lr": 0.1},
                                     {"params": model[2].parameters()}], "sgd_momentum", learning_rate=0.01)
    assert [group["lr"] for group in optimizer.param_groups] == [0.1, 0.01]
    assert optimizer.param_groups[1]["rho"] == 0.9
    before = [p.detach().clone() for p in model.parameters()]
    train(model, optimizer, steps=1)
    assert all(not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True))
