"""Batch normalization (Ioffe & Szegedy, 2015): its forward and backward passes on arrays, and a torch layer.

For a mini-batch ``x`` of shape (N, D) (N examples, D features), **in training mode**, per feature j:

    mu_j    = (1/N) sum_i x_ij                            the batch mean
    var_j   = (1/N) sum_i (x_ij - mu_j)^2                 the batch variance (biased: divided by N)
    xhat_ij = (x_ij - mu_j) / sqrt(var_j + epsilon)       zero mean, unit variance over the batch
    out_ij  = gamma_j * xhat_ij + beta_j                  a learned scale gamma and shift beta

and the running averages, which the network uses at test time, move towards the batch's statistics:

    running_mean <- (1 - momentum) * running_mean + momentum * mu
    running_var  <- (1 - momentum) * running_var  + momentum * var * N / (N - 1)    (the unbiased variance)

**In test (eval) mode** nothing is estimated from the batch and nothing is updated: each example is
normalised with the running averages alone, so its output does not depend on the other examples:

    out = gamma * (x - running_mean) / sqrt(running_var + epsilon) + beta

Conventions, as torch.nn.BatchNorm1d (the reference the tests compare with, in float64):
- ``momentum`` is the weight of the NEW batch statistic (torch's ``momentum=0.1``). CS231n's assignment and
  Keras use the opposite convention, ``running = m * running + (1 - m) * batch`` with m = 0.9 or 0.99: their
  m is 1 - momentum here.
- The batch is normalised with the biased variance (divided by N) but ``running_var`` stores the unbiased one
  (divided by N - 1). Mixing the two is a classic bug: the running variance ends up a factor N/(N-1) off.
- ``epsilon`` (torch's ``eps``, 1e-5) is added to the variance inside the square root.

The functions follow the update rules' contract (course_lib.optim): they return NEW arrays and never modify
their inputs (``running_mean`` and ``running_var`` included); numpy arrays in, numpy arrays out; torch tensors
in, torch tensors out. ``BatchNorm`` is a torch layer built on them, so that a network can be trained with
them (or with a learner's versions of them).
"""

from copy import deepcopy
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from torch import nn

from course_lib import optim, training
from course_lib.validation import is_integer, is_real, require

__all__ = ["LABELS", "BatchNorm", "LearningRateSweep", "batchnorm_backward", "batchnorm_forward", "beside_torch",
           "learning_rate_sweep", "mlp", "normalised_across_batches", "on_arrays", "outputs_in_training_mode"]


def batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum=0.1, epsilon=1e-5, training=True):
    """Batch normalization of ``x`` (N, D); returns ``(out, new_running_mean, new_running_var)``.

    Training mode (``training=True``): normalise with the batch's mean and biased variance, then scale by
    ``gamma`` and shift by ``beta`` (each of shape (D,)); the running averages move towards the batch's mean
    and UNBIASED variance with weight ``momentum`` (torch's convention; see the module's docstring).
    Test mode (``training=False``): normalise with ``running_mean`` and ``running_var``, which are returned
    unchanged (as new arrays).
    """
    _validate(x, gamma, beta, running_mean, running_var, momentum, epsilon, training)
    if not training:
        out = gamma * (x - running_mean) / (running_var + epsilon) ** 0.5 + beta
        return out, running_mean * 1, running_var * 1
    n = x.shape[0]
    mean = x.mean(axis=0)
    variance = ((x - mean) ** 2).mean(axis=0)
    x_hat = (x - mean) / (variance + epsilon) ** 0.5
    out = gamma * x_hat + beta
    new_running_mean = (1 - momentum) * running_mean + momentum * mean
    new_running_var = (1 - momentum) * running_var + momentum * variance * n / (n - 1)
    return out, new_running_mean, new_running_var


def batchnorm_backward(dout, x, gamma, epsilon=1e-5):
    """The gradients ``(dx, dgamma, dbeta)`` of a loss through training-mode batch normalization.

    ``dout`` is the loss's gradient with respect to ``out`` (N, D). With xhat and var recomputed from ``x``
    (biased variance, as in the forward pass), and sums over the batch (axis 0):

        dbeta  = sum_i dout_i
        dgamma = sum_i dout_i * xhat_i
        dx     = gamma / sqrt(var + epsilon) * (dout - mean_i dout_i - xhat * mean_i(dout_i * xhat_i))

    The last two terms are there because every example's output depends on every other example through the
    batch mean and variance: dx is dout scaled by gamma / std, minus its projection on the constant direction
    (the mean's path) and on xhat (the variance's path). Eval mode has no such coupling: there,
    dx = gamma / sqrt(running_var + epsilon) * dout.
    """
    require(_is_batch(x), "x", "an array of shape (N, D) with N >= 2", getattr(x, "shape", x))
    require(getattr(dout, "shape", None) == x.shape, "dout", f"an array of x's shape {tuple(x.shape)}",
            getattr(dout, "shape", dout))
    require(getattr(gamma, "shape", None) == x.shape[1:], "gamma", f"an array of shape ({x.shape[1]},)",
            getattr(gamma, "shape", gamma))
    require(is_real(epsilon) and epsilon >= 0, "epsilon", "a real number >= 0", epsilon)
    mean = x.mean(axis=0)
    variance = ((x - mean) ** 2).mean(axis=0)
    inverse_std = 1 / (variance + epsilon) ** 0.5
    x_hat = (x - mean) * inverse_std
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx = gamma * inverse_std * (dout - dout.mean(axis=0) - x_hat * (dout * x_hat).mean(axis=0))
    return dx, dgamma, dbeta


def _is_batch(x):
    return hasattr(x, "shape") and len(x.shape) == 2 and x.shape[0] >= 2


def _validate(x, gamma, beta, running_mean, running_var, momentum, epsilon, training):
    require(isinstance(training, bool | np.bool_), "training", "True or False", training)
    if training:
        require(_is_batch(x), "x", "an array of shape (N, D) with N >= 2 in training mode (the variance of one "
                "example is 0)", getattr(x, "shape", x))
    else:
        require(hasattr(x, "shape") and len(x.shape) == 2, "x", "an array of shape (N, D)", getattr(x, "shape", x))
    features = (x.shape[1],)
    for name, value in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean),
                        ("running_var", running_var)):
        require(tuple(getattr(value, "shape", ())) == features, name, f"an array of shape {features}",
                getattr(value, "shape", value))
    require(is_real(momentum) and 0 <= momentum <= 1, "momentum", "a real number in [0, 1]", momentum)
    require(is_real(epsilon) and epsilon >= 0, "epsilon", "a real number >= 0", epsilon)


class _BatchNormFunction(torch.autograd.Function):
    """Training-mode batch norm whose gradient is ``backward(dout, x, gamma, epsilon)``, not torch's autograd."""

    @staticmethod
    def forward(ctx, x, gamma, beta, running_mean, running_var, momentum, epsilon, forward, backward):
        out, new_mean, new_var = forward(x, gamma, beta, running_mean, running_var, momentum, epsilon, True)
        ctx.save_for_backward(x, gamma)
        ctx.epsilon, ctx.backward = epsilon, backward
        ctx.mark_non_differentiable(new_mean, new_var)
        return out, new_mean, new_var

    @staticmethod
    def backward(ctx, dout, _dmean, _dvar):
        x, gamma = ctx.saved_tensors
        dx, dgamma, dbeta = ctx.backward(dout, x, gamma, ctx.epsilon)
        return dx, dgamma, dbeta, None, None, None, None, None, None


class BatchNorm(nn.Module):
    """A batch-norm layer for (N, D) activations, computed by ``batchnorm_forward`` and ``batchnorm_backward``.

    It computes what ``torch.nn.BatchNorm1d(num_features, eps=epsilon, momentum=momentum)`` computes (tested in
    float64): gamma starts at 1 and beta at 0, the running mean at 0 and the running variance at 1;
    ``model.train()`` normalises with the batch and updates the running averages, ``model.eval()`` uses them.
    ``forward`` and ``backward`` may be replaced by other functions with the same signatures (a learner's).
    """

    def __init__(self, num_features, momentum=0.1, epsilon=1e-5, forward=None, backward=None):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(num_features))
        self.beta = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
        self.momentum, self.epsilon = momentum, epsilon
        self.forward_function = batchnorm_forward if forward is None else forward
        self.backward_function = batchnorm_backward if backward is None else backward

    def forward(self, x):
        if not self.training:
            out, _, _ = self.forward_function(x, self.gamma, self.beta, self.running_mean, self.running_var,
                                              self.momentum, self.epsilon, False)
            return out
        out, new_mean, new_var = _BatchNormFunction.apply(x, self.gamma, self.beta, self.running_mean,
                                                          self.running_var, self.momentum, self.epsilon,
                                                          self.forward_function, self.backward_function)
        with torch.no_grad():
            self.running_mean.copy_(new_mean)
            self.running_var.copy_(new_var)
        return out

    def extra_repr(self):
        return f"{len(self.gamma)}, momentum={self.momentum}, epsilon={self.epsilon}"


def mlp(sizes, seed=0, batch_norm=True, momentum=0.1, epsilon=1e-5, layer=None):
    """A fully connected ReLU network with widths ``sizes``; with ``batch_norm``, every hidden layer is
    Linear -> BatchNorm -> ReLU. With or without batch norm, the same ``seed`` gives the same Linear weights.
    ``layer(num_features)`` makes the normalisation layers instead of ``BatchNorm(num_features, momentum,
    epsilon)`` (e.g. torch.nn.BatchNorm1d, or a BatchNorm computed by other functions)."""
    torch.manual_seed(seed)
    make_layer = layer or (lambda num_features: BatchNorm(num_features, momentum, epsilon))
    layers = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(fan_in, fan_out))
        if index < len(sizes) - 2:
            layers += [make_layer(fan_out)] if batch_norm else []
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def on_arrays(function):
    """``function``, a forward or backward pass written for numpy arrays (a learner's), made usable by
    ``BatchNorm``, which passes torch tensors: the tensors go in as numpy copies, and the arrays that come back
    are turned into tensors of the first tensor argument's dtype."""

    def on_tensors(*arguments):
        dtype = next(argument.dtype for argument in arguments if isinstance(argument, torch.Tensor))
        arrays = [argument.detach().cpu().numpy().copy() if isinstance(argument, torch.Tensor) else argument
                  for argument in arguments]
        return tuple(torch.as_tensor(np.asarray(result), dtype=dtype) for result in function(*arrays))

    return on_tensors


def _plain_sgd(model, learning_rate):
    """Plain SGD on ``model``'s parameters (x -= learning_rate * dx, torch.optim.SGD's update) as a RuleOptimizer:
    torch's built-in step() would import its compiler, ~70 MB of a kernel's memory."""
    return optim.RuleOptimizer(model.parameters(), optim.sgd, learning_rate=learning_rate)


def beside_torch(forward, backward, dataset, sizes=(40, 128, 128, 128, 128, 10), epochs=3, learning_rate=0.1,
                 batch_size=128, seed=0):
    """The same network trained twice with plain SGD, in float64, from the same initial weights on the same
    batches: with ``BatchNorm`` layers computed by ``forward`` and ``backward`` (numpy functions with the
    signatures of ``batchnorm_forward`` and ``batchnorm_backward``; see ``on_arrays``), and with
    torch.nn.BatchNorm1d.
    Returns {"yours": (model, History), "torch": (model, History)}.

    Float64, because training amplifies rounding: in float32, two right implementations that differ by 1e-7 in
    one step give test outputs ~0.1 apart after an epoch; in float64 they stay within ~1e-9."""
    dataset = replace(dataset, x_train=dataset.x_train.double(), x_test=dataset.x_test.double())
    layers = {"yours": lambda n: BatchNorm(n, forward=on_arrays(forward), backward=on_arrays(backward)),
              "torch": lambda n: nn.BatchNorm1d(n, eps=1e-5, momentum=0.1)}
    runs = {}
    for label, layer in layers.items():
        model = mlp(list(sizes), seed, layer=layer).double()
        history = training.train(model, _plain_sgd(model, learning_rate), dataset, epochs,
                                 batch_size, seed=seed, evaluate_every=epochs)
        runs[label] = (model.eval(), history)
    return runs


@torch.no_grad()
def outputs_in_training_mode(model, inputs, batch_size):
    """The classic bug, on a copy of ``model``: its outputs for ``inputs`` computed in TRAINING mode,
    ``batch_size`` examples at a time, in order. Returns ``(outputs, copy)``.

    Each batch is normalised with its own statistics, so an example's output depends on the rest of its batch;
    and every batch also moves the copy's running averages towards the statistics of these inputs (the test
    data, in the bug), which the model itself is spared here.
    """
    require(is_integer(batch_size, 1), "batch_size", "an integer >= 1", batch_size)
    copy = deepcopy(model).train()
    return torch.cat([copy(batch) for batch in inputs.split(batch_size)]), copy


@torch.no_grad()
def normalised_across_batches(x, batch_size, draws=300, example=0, seed=0):
    """Example ``example``'s batch-normalised values (gamma = 1, beta = 0) in ``draws`` random batches of
    ``batch_size`` examples drawn from ``x`` (N, D), always with that example in them: an array (draws, D).

    In training mode an example's output depends on which other examples share its batch; this is the noise
    that makes batch norm a regularizer. Its spread shrinks about like 1/sqrt(batch_size).
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    require(_is_batch(x), "x", "an array of shape (N, D) with N >= 2", tuple(x.shape))
    require(is_integer(batch_size, 2) and batch_size <= len(x), "batch_size", f"an integer in [2, {len(x)}]",
            batch_size)
    require(is_integer(example, 0) and example < len(x), "example", f"an integer in [0, {len(x) - 1}]", example)
    require(is_integer(draws, 2), "draws", "an integer >= 2", draws)
    generator = torch.Generator().manual_seed(seed)
    others = torch.cat([torch.arange(example), torch.arange(example + 1, len(x))])
    # The batch_size - 1 others of each draw: the positions of the largest of uniform random numbers, a
    # uniformly random subset (without repetition) drawn for all the draws at once.
    chosen = others[torch.rand(draws, len(others), generator=generator).topk(batch_size - 1, dim=1).indices]
    members = torch.cat([torch.full((draws, 1), example), chosen], dim=1)  # example first in every batch
    values = []
    for rows in members.split(max(1, 2**18 // (batch_size * x.shape[1]))):  # ~2 MB of batches at a time
        batches = x[rows]  # (draws, batch_size, D)
        # One call normalises all these batches at once: side by side, each (draw, feature) pair is a feature.
        side_by_side = batches.permute(1, 0, 2).reshape(batch_size, -1)
        features = side_by_side.shape[1]
        ones, zeros = torch.ones(features, dtype=x.dtype), torch.zeros(features, dtype=x.dtype)
        normalised = batchnorm_forward(side_by_side, ones, zeros, zeros, ones)[0]
        # Row 0 (the example) copied out: a view of it would keep the whole normalised chunk alive.
        values.append(normalised[0].reshape(len(rows), -1).clone())
    return torch.cat(values).numpy()


LABELS = ("with batch norm", "without")


@dataclass
class LearningRateSweep:
    """Runs of the same network with and without batch norm over a range of learning rates.

    ``histories[label][i]`` is the History of the run at ``learning_rates[i]`` (``label`` in ``LABELS``);
    ``weight_growth[label][i]`` is the first layer's weight norm at the end of that run over its norm at the
    start (nan for a run that diverged).
    """

    learning_rates: tuple
    histories: dict = field(default_factory=dict)
    weight_growth: dict = field(default_factory=dict)

    def accuracy(self, label):
        """Final test accuracy of each run of ``label`` (nan where the run diverged)."""
        return np.array([h.test_accuracy[-1] if h.diverged_at is None else np.nan for h in self.histories[label]])

    def diverged(self, label):
        return [h.diverged_at is not None for h in self.histories[label]]


def learning_rate_sweep(dataset, learning_rates, sizes=(40, 128, 128, 128, 128, 10), epochs=5, batch_size=128,
                        seed=0):
    """Train ``mlp(sizes, seed, batch_norm)`` with plain SGD (``optim.sgd``) at each learning rate, with and
    without batch norm (same initial weights, same batches); returns a ``LearningRateSweep``."""
    require(len(learning_rates) > 0 and all(is_real(r) and r > 0 for r in learning_rates), "learning_rates",
            "a non-empty sequence of positive numbers", learning_rates)
    sweep = LearningRateSweep(tuple(learning_rates))
    for label, batch_norm in zip(LABELS, (True, False), strict=True):
        sweep.histories[label], sweep.weight_growth[label] = [], []
        for rate in learning_rates:
            model = mlp(list(sizes), seed, batch_norm=batch_norm)
            first = model[0].weight
            start = first.norm().item()
            history = training.train(model, _plain_sgd(model, rate), dataset, epochs,
                                     batch_size, seed=seed, evaluate_every=epochs)
            sweep.histories[label].append(history)
            sweep.weight_growth[label].append(first.norm().item() / start if history.diverged_at is None
                                              else np.nan)
    return sweep
