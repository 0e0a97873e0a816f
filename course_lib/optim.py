"""First-order update rules, written the way the lecture writes them.

Every rule follows one contract (the one CS231n's optim.py uses):

    next_x, config = rule(x, dx, config=None)

- ``x`` is the current point and ``dx`` the gradient of the loss at ``x``: numpy arrays of the same shape, or
  torch tensors of the same shape (a tensor in, a tensor out).
- ``config`` is a dict holding the hyperparameters (``learning_rate``, ``rho``, ``decay_rate``, ``beta1``,
  ``beta2``, ``epsilon``, ``bias_correction``) and the rule's state under the lecture's names (``velocity``;
  ``grad_squared``; ``first_moment``, ``second_moment``, ``t``). Missing entries take the lecture's defaults
  (see ``DEFAULTS``); the state starts at zero.
- The rule returns the next point and a new config with the updated state. It never modifies ``x``, ``dx`` or
  the caller's ``config`` in place, so a run can be replayed from any saved config.
- A hyperparameter outside its valid range, or a ``dx`` whose shape differs from ``x``, raises ``ValueError``
  naming the parameter and its range. ``learning_rate`` may be 0 (the step is then 0, as in torch.optim):
  schedules such as cosine annealing end there.

``RuleOptimizer`` wraps any rule as a ``torch.optim.Optimizer``, so the same code trains real torch models and
is driven by ``torch.optim.lr_scheduler``.
"""

import math

import numpy as np
import torch

from course_lib.validation import is_real

__all__ = [
    "DEFAULTS",
    "RULES",
    "RuleOptimizer",
    "adagrad",
    "adam",
    "nesterov",
    "rmsprop",
    "sgd",
    "sgd_momentum",
    "torch_adam_step",
    "with_defaults",
]

DEFAULTS = {
    "sgd": {"learning_rate": 1e-2},
    "sgd_momentum": {"learning_rate": 1e-2, "rho": 0.9},
    "nesterov": {"learning_rate": 1e-2, "rho": 0.9},
    "adagrad": {"learning_rate": 1e-2, "epsilon": 1e-7},
    "rmsprop": {"learning_rate": 1e-2, "decay_rate": 0.99, "epsilon": 1e-7},
    "adam": {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7, "bias_correction": True},
}

_UNIT_INTERVAL = ("rho", "decay_rate", "beta1", "beta2")


def with_defaults(rule_name, config=None):
    """A new config: the lecture's defaults for ``rule_name`` overridden by ``config``, validated."""
    merged = {**DEFAULTS[rule_name], **(config or {})}
    _validate_hyperparameters(merged)
    return merged


def _validate_hyperparameters(config):
    learning_rate = config.get("learning_rate")
    # 0 is a learning rate (torch accepts it too): a schedule such as cosine annealing ends there.
    if learning_rate is not None and not (is_real(learning_rate) and 0 <= learning_rate < math.inf):
        raise ValueError(f"learning_rate must be a finite number >= 0, got {learning_rate!r}")
    for name in _UNIT_INTERVAL:
        value = config.get(name)
        if value is not None and not (is_real(value) and 0 <= value < 1):
            raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    epsilon = config.get("epsilon")
    if epsilon is not None and not (is_real(epsilon) and 0 < epsilon < math.inf):
        raise ValueError(f"epsilon must be a finite number > 0, got {epsilon!r}")


def _as_array(name, value):
    if isinstance(value, torch.Tensor):
        return value
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        message = f"{name} must be a numpy array or a torch tensor of numbers, got {type(value).__name__}"
        raise ValueError(message) from None


def _prepare(rule_name, x, dx, config):
    x, dx = _as_array("x", x), _as_array("dx", dx)
    if isinstance(x, torch.Tensor) != isinstance(dx, torch.Tensor):
        raise ValueError("x and dx must both be numpy arrays or both be torch tensors")
    if tuple(dx.shape) != tuple(x.shape):
        raise ValueError(f"dx must have the shape of x {tuple(x.shape)}, got {tuple(dx.shape)}")
    return x, dx, with_defaults(rule_name, config)


def _sqrt(a):
    return torch.sqrt(a) if isinstance(a, torch.Tensor) else np.sqrt(a)


def _state(config, name, x):
    """The state entry ``name``, or zeros shaped like ``x`` on the first step."""
    value = config.get(name)
    if value is None:
        return torch.zeros_like(x) if isinstance(x, torch.Tensor) else np.zeros_like(x)
    return value


def sgd(x, dx, config=None):
    """Vanilla stochastic gradient descent.

        x = x - learning_rate * dx
    """
    x, dx, config = _prepare("sgd", x, dx, config)
    return x - config["learning_rate"] * dx, config


def sgd_momentum(x, dx, config=None):
    """SGD with momentum, in the lecture's form (velocity is a running sum of gradients).

        velocity = rho * velocity + dx
        x = x - learning_rate * velocity

    The lecture's pseudocode writes ``x += learning_rate * vx``: that steps uphill. The step goes against the
    velocity, as the lecture's own formula x_{t+1} = x_t - alpha v_{t+1} says. This is torch.optim.SGD with
    ``momentum=rho`` and ``dampening=0``. The other common convention, ``v = rho*v - learning_rate*dx;
    x = x + v``, gives the same iterates for a constant learning rate but stores -learning_rate * velocity.
    """
    x, dx, config = _prepare("sgd_momentum", x, dx, config)
    velocity = config["rho"] * _state(config, "velocity", x) + dx
    config["velocity"] = velocity
    return x - config["learning_rate"] * velocity, config


def nesterov(x, dx, config=None):
    """Nesterov momentum in the lecture's change-of-variables form.

    Here x stands for x~ = x + rho*velocity, the look-ahead point, and dx is the gradient there:

        old_velocity = velocity
        velocity = rho * velocity - learning_rate * dx
        x = x - rho * old_velocity + (1 + rho) * velocity

    The lecture's derivation prints (1 - rho) in the middle line; the coefficient is (1 + rho), as its last line
    x~_{t+1} = x~_t + v_{t+1} + rho (v_{t+1} - v_t) shows. Unlike ``sgd_momentum``, the velocity here already
    includes the learning rate (the lecture's convention for Nesterov). For a constant learning rate this is
    torch.optim.SGD with ``momentum=rho, nesterov=True``; under a changing learning rate the two differ,
    because torch's buffer does not carry the learning rate.
    """
    x, dx, config = _prepare("nesterov", x, dx, config)
    rho = config["rho"]
    old_velocity = _state(config, "velocity", x)
    velocity = rho * old_velocity - config["learning_rate"] * dx
    config["velocity"] = velocity
    return x - rho * old_velocity + (1 + rho) * velocity, config


def adagrad(x, dx, config=None):
    """AdaGrad: each coordinate's step is divided by the root of its historical sum of squared gradients.

        grad_squared = grad_squared + dx * dx
        x = x - learning_rate * dx / (sqrt(grad_squared) + epsilon)

    torch.optim.Adagrad computes the same with ``lr_decay=0`` and ``eps=epsilon`` (torch's default eps is
    1e-10, the lecture's 1e-7).
    """
    x, dx, config = _prepare("adagrad", x, dx, config)
    grad_squared = _state(config, "grad_squared", x) + dx * dx
    config["grad_squared"] = grad_squared
    return x - config["learning_rate"] * dx / (_sqrt(grad_squared) + config["epsilon"]), config


def rmsprop(x, dx, config=None):
    """RMSProp: AdaGrad with a leaky (exponentially decaying) average of squared gradients.

        grad_squared = decay_rate * grad_squared + (1 - decay_rate) * dx * dx
        x = x - learning_rate * dx / (sqrt(grad_squared) + epsilon)

    torch.optim.RMSprop computes the same with ``alpha=decay_rate`` and ``eps=epsilon``.
    """
    x, dx, config = _prepare("rmsprop", x, dx, config)
    decay_rate = config["decay_rate"]
    grad_squared = decay_rate * _state(config, "grad_squared", x) + (1 - decay_rate) * dx * dx
    config["grad_squared"] = grad_squared
    return x - config["learning_rate"] * dx / (_sqrt(grad_squared) + config["epsilon"]), config


def adam(x, dx, config=None):
    """Adam: momentum (first moment) divided by the root of RMSProp's average (second moment).

        t = t + 1
        first_moment = beta1 * first_moment + (1 - beta1) * dx
        second_moment = beta2 * second_moment + (1 - beta2) * dx * dx
        first_unbiased = first_moment / (1 - beta1 ** t)        # only if bias_correction
        second_unbiased = second_moment / (1 - beta2 ** t)      # only if bias_correction
        x = x - learning_rate * first_unbiased / (sqrt(second_unbiased) + epsilon)

    ``t`` counts the steps taken and is incremented before it is used, so the first step divides by
    1 - beta1 and 1 - beta2 (the lecture's pseudocode uses t without ever setting it). With bias correction
    this is torch.optim.Adam with ``eps=epsilon`` (torch's default eps is 1e-8, the lecture's 1e-7).
    """
    x, dx, config = _prepare("adam", x, dx, config)
    beta1, beta2 = config["beta1"], config["beta2"]
    t = config.get("t", 0) + 1
    first_moment = beta1 * _state(config, "first_moment", x) + (1 - beta1) * dx
    second_moment = beta2 * _state(config, "second_moment", x) + (1 - beta2) * dx * dx
    config.update(t=t, first_moment=first_moment, second_moment=second_moment)
    if config["bias_correction"]:
        first_unbiased = first_moment / (1 - beta1**t)
        second_unbiased = second_moment / (1 - beta2**t)
    else:
        first_unbiased, second_unbiased = first_moment, second_moment
    return x - config["learning_rate"] * first_unbiased / (_sqrt(second_unbiased) + config["epsilon"]), config


RULES = {rule.__name__: rule for rule in (sgd, sgd_momentum, nesterov, adagrad, rmsprop, adam)}


def _skip_compiler_imports():
    """Keep torch.optim.Optimizer's bookkeeping methods from importing torch's compiler, torch._dynamo.

    torch marks some Optimizer methods (add_param_group, zero_grad, ...) as "not to be compiled" with
    torch._disable_dynamo, which imports torch._dynamo the first time such a method runs: about 70 MB and a second
    of CPU in every kernel that builds an optimizer, for a compiler the workbook never uses (measured with torch
    2.13: a kernel that trains peaks at ~380 MB instead of ~310 MB). The decorator caches what to call in the
    wrapped function's ``__dynamo_disable`` attribute; setting it to the function itself up front means "call it
    as it is", which is what happens anyway when nothing is being compiled. Nothing else changes: where torch
    needs its compiler (torch.compile, or the built-in optimizers' step(), which imports it unconditionally) it
    is imported as usual. RuleOptimizer's step() does not need it.
    """
    import torch._compile

    for owner in (torch.optim.Optimizer,):
        for value in vars(owner).values():
            code = getattr(value, "__code__", None)
            wrapped = getattr(value, "__wrapped__", None)
            if wrapped is not None and code is not None and code.co_filename == torch._compile.__file__:
                wrapped.__dynamo_disable = wrapped


_skip_compiler_imports()


class RuleOptimizer(torch.optim.Optimizer):
    """Any update rule of this module as a ``torch.optim.Optimizer``.

        optimizer = RuleOptimizer(model.parameters(), adam, learning_rate=1e-3, beta1=0.9)

    The learning rate lives in each param group's ``'lr'`` (as in every torch optimizer), so
    ``torch.optim.lr_scheduler`` schedulers drive it; the other hyperparameters keep the lecture's names.
    Each parameter keeps its own rule state in ``optimizer.state[p]['config']``.

    Speed: the rules are written for reading, as their formulas, and return new arrays (the contract), so one
    step allocates where torch.optim updates in place. At the sizes the notebooks train, a training cell takes
    about as long as with torch.optim (``make bench``, budget 1.5x); at a million parameters a step of
    ``RuleOptimizer(adam)`` takes several times torch's Adam.
    """

    def __init__(self, params, rule, **hyperparameters):
        if isinstance(rule, str):
            rule = RULES[rule]
        self.rule = rule
        defaults = {**DEFAULTS.get(rule.__name__, {"learning_rate": 1e-2}), **hyperparameters}
        _validate_hyperparameters(defaults)
        self._hyperparameter_names = [name for name in defaults if name != "learning_rate"]
        super().__init__(params, {"lr": defaults.pop("learning_rate"), **defaults})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            hyperparameters = {name: group[name] for name in self._hyperparameter_names}
            hyperparameters["learning_rate"] = group["lr"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                state = self.state[param]
                config = {**state.get("config", {}), **hyperparameters}
                next_param, state["config"] = self.rule(param, param.grad, config)
                param.copy_(next_param)
        return loss


def torch_adam_step(x, dx, learning_rate, weight_decay=0.0, decoupled=False, epsilon=1e-8, beta1=0.9,
                    beta2=0.999):
    """``x`` after one step of torch's own Adam from a fresh state, for comparing this module's rules with it:
    ``torch.optim.Adam(lr, betas, eps, weight_decay)`` (L2 in the gradient) or, with ``decoupled=True``,
    ``torch.optim.AdamW`` (decoupled weight decay). The step is computed by ``torch.optim.adam.adam``, the function
    both optimizers' step() runs, called directly: step() itself would import torch's compiler (~70 MB, see
    ``_skip_compiler_imports``) for one step. Arrays in float64, a numpy array out.
    """
    from torch.optim.adam import adam as torch_adam

    parameter = torch.tensor(np.asarray(x, dtype=np.float64))
    gradient = torch.tensor(np.asarray(dx, dtype=np.float64))
    torch_adam([parameter], [gradient], [torch.zeros_like(parameter)], [torch.zeros_like(parameter)], [],
               [torch.tensor(0.0)], foreach=False, decoupled_weight_decay=decoupled, amsgrad=False, beta1=beta1,
               beta2=beta2, lr=learning_rate, weight_decay=weight_decay, eps=epsilon, maximize=False)
    return parameter.numpy()
