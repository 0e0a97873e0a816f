"""Randomness regularizers: noise in training, averaged out (or expected away) at test time.

- Dropout (Srivastava et al. 2014): multiply each activation by its own random mask ``m ~ Bernoulli(keep)``.
  Vanilla dropout trains on ``h * m`` and tests on ``h * keep``; inverted dropout trains on ``h * m / keep`` and
  tests on ``h``. Both have the test activation as their training expectation.
- DropConnect (Wan et al. 2013): the mask is on the weights of a linear layer instead of its inputs.
- Stochastic depth (Huang et al. 2016): a whole residual block is skipped with probability ``1 - p_l``.
- Fractional max pooling (Graham 2014): max pooling whose windows start at pseudo-random steps of 1 or 2, so the
  size shrinks by a ratio between 1/2 and 1 (e.g. 1/sqrt(2)).
- ``random_passes``: the outputs of many draws of a model's randomness, to average them at test time
  (``random_pass_averages``: the averages of the first M of them); ``mean_of_dropout_passes``: the mean of many
  training passes of a dropout function over one example's activations.
- Notebook 08's experiments (``train_with_shifts``, ``train_pooling_cnn``, ``train_residual_mlp``), called by its
  claim cells on seed 0 and by data/make_regularizer_table.py on seeds 0-4; ``shipped_table()`` loads that
  table (``RegularizerTable``) after checking its hash.

**Names say what a probability means.** ``drop_probability`` is the chance that a unit (a weight) is zeroed;
``keep = 1 - drop_probability``; ``survival_probability`` is the chance that a residual block runs. Beware the
conventions around: the lecture's dropout code calls the KEEP probability ``p``, while its text and torch's
``nn.Dropout(p)`` call the DROP probability ``p``; Huang et al.'s ``p_l`` is the SURVIVAL probability, while
torchvision's ``stochastic_depth(input, p, ...)`` takes the DROP probability.

**Arrays and tensors.** The functions take numpy arrays or torch tensors (a tensor in, a tensor out) and draw
their randomness from ``generator``: a ``torch.Generator`` for tensors (None: torch's global generator, so that
``torch.manual_seed`` repeats a run), a ``numpy.random.Generator`` for arrays (None: a fresh, unseeded one).
No function changes its input in place. The ``nn.Module`` classes wrap the functions for use in torch models;
they draw their noise in training mode only, except ``FractionalMaxPool2d``, which (as torch's) stays random
at test time too.
"""

import functools
import json
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from course_lib import data, optim, training
from course_lib.validation import is_integer, is_real, require

__all__ = [
    "DropConnectLinear",
    "EXPERIMENT_ADAM",
    "FractionalMaxPool2d",
    "InvertedDropout",
    "PassAverages",
    "ROOT_HALF",
    "RegularizerTable",
    "ResidualMLP",
    "StochasticDepth",
    "TABLE_FILE",
    "VanillaDropout",
    "bernoulli_mask",
    "dropconnect_linear",
    "dropconnect_mlp",
    "dropout_mlp",
    "each_random_pass",
    "fractional_max_pool2d",
    "fractional_pool_starts",
    "fractional_pooling_cnn",
    "inverted_dropout",
    "linear_survival_probabilities",
    "mean_of_dropout_passes",
    "pass_accuracies",
    "random_pass_averages",
    "random_passes",
    "shipped_table",
    "stochastic_depth",
    "train_pooling_cnn",
    "train_residual_mlp",
    "train_with_shifts",
    "vanilla_dropout",
]


# ---- argument checks ------------------------------------------------------------------------------------------
def _check_drop_probability(drop_probability, name="drop_probability"):
    require(is_real(drop_probability) and 0 <= drop_probability < 1, name, "a number in [0, 1)", drop_probability)
    return float(drop_probability)


def _check_unit_probability(value, name):
    require(is_real(value) and 0 < value <= 1, name, "a number in (0, 1]", value)
    return float(value)


def _check_array(name, value):
    require(isinstance(value, (np.ndarray, torch.Tensor)), name, "a numpy array or a torch tensor",
            type(value).__name__)
    return value


def _uniform(like, shape, generator):
    """Uniform numbers in [0, 1) of ``shape``, of ``like``'s kind (and floating dtype for tensors)."""
    if isinstance(like, torch.Tensor):
        dtype = like.dtype if like.is_floating_point() else torch.float32
        return torch.rand(shape, generator=generator, dtype=dtype, device=like.device)
    return (generator if generator is not None else np.random.default_rng()).random(shape)


# ---- dropout --------------------------------------------------------------------------------------------------
def bernoulli_mask(like, keep_probability, generator=None):
    """A mask of ``like``'s shape and kind: 1 with probability ``keep_probability``, else 0.

    For a tensor it is ``torch.empty_like(like).bernoulli_(keep_probability)``: the very draw ``F.dropout`` makes,
    so with the same seed the masks are identical (``torch.rand(...) < keep`` gives other masks from the same
    seed). For an array: ``rng.random(shape) < keep_probability`` (uniforms in float32 for a float32 array), as
    0.0/1.0 of the array's floating type.
    """
    _check_array("like", like)
    keep = _check_unit_probability(keep_probability, "keep_probability")
    if isinstance(like, torch.Tensor):
        return torch.empty_like(like).bernoulli_(keep, generator=generator)
    rng = generator if generator is not None else np.random.default_rng()
    dtype = np.result_type(like, np.float32)
    uniform = rng.random(np.shape(like), dtype=np.float32 if dtype == np.float32 else np.float64)
    return (uniform < keep).astype(dtype)


def inverted_dropout(x, drop_probability, training=True, generator=None):
    """Inverted dropout, the common form (torch's ``F.dropout``): the scaling happens in training.

        training:  h = x * m / keep,  m ~ Bernoulli(keep) for each element independently, keep = 1 - drop
        test:      h = x                                     (E[m / keep] = 1: the test pass is the expectation)

    Given the same torch seed the result equals ``F.dropout(x, drop_probability)`` exactly.
    """
    _check_array("x", x)
    drop = _check_drop_probability(drop_probability)
    if not training or drop == 0:
        return x
    keep = 1 - drop
    return x * (bernoulli_mask(x, keep, generator) / keep)


def vanilla_dropout(x, drop_probability, training=True, generator=None):
    """Vanilla dropout, as first published: the scaling happens at test time.

        training:  h = x * m,  m ~ Bernoulli(keep) for each element independently, keep = 1 - drop
        test:      h = x * keep                              (E[m] = keep: the test pass is the expectation)

    Forgetting the test-time factor makes every test activation 1/keep times too large.
    """
    _check_array("x", x)
    drop = _check_drop_probability(drop_probability)
    keep = 1 - drop
    if not training:
        return x * keep
    if drop == 0:
        return x
    return x * bernoulli_mask(x, keep, generator)


class _DropoutModule(nn.Module):
    function = None

    def __init__(self, drop_probability, generator=None):
        super().__init__()
        self.drop_probability = _check_drop_probability(drop_probability)
        self.generator = generator

    def forward(self, x):
        return type(self).function(x, self.drop_probability, self.training, self.generator)

    def extra_repr(self):
        return f"drop_probability={self.drop_probability}"


class InvertedDropout(_DropoutModule):
    """``inverted_dropout`` as a layer: random in training mode, the identity in evaluation mode."""

    function = staticmethod(inverted_dropout)


class VanillaDropout(_DropoutModule):
    """``vanilla_dropout`` as a layer: random in training mode, a multiplication by keep in evaluation mode."""

    function = staticmethod(vanilla_dropout)


def dropout_mlp(sizes, drop_probability, seed=0, layer=InvertedDropout):
    """``course_lib.training.mlp(sizes, seed)`` with a dropout ``layer`` after every hidden ReLU:
    Linear, ReLU, Dropout, ..., Linear. The weights start as ``training.mlp``'s with the same seed."""
    torch.manual_seed(seed)
    layers = []
    for fan_in, fan_out in zip(sizes[:-2], sizes[1:-1], strict=True):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU(), layer(drop_probability)]
    return nn.Sequential(*layers, nn.Linear(sizes[-2], sizes[-1]))


# ---- DropConnect ----------------------------------------------------------------------------------------------
def dropconnect_linear(x, weight, bias=None, drop_probability=0.5, training=True, generator=None,
                       per_example=False):
    """A linear layer whose WEIGHTS are dropped (DropConnect), with inverted scaling:

        training:  y = x (M * W)^T / keep + b,  M ~ Bernoulli(keep) for each weight, keep = 1 - drop
        test:      y = x W^T + b                 (E[M / keep] = 1)

    ``x``: (batch, in); ``weight``: (out, in) as in ``nn.Linear``; the bias is not masked. One mask ``M`` serves
    the whole mini-batch, unless ``per_example``: then each example draws its own (batch, out, in) mask, as
    in Wan et al., which costs batch times more random numbers and turns one matrix product into a batch
    of matrix-vector products. (Wan et al. test with a Gaussian approximation of the output's distribution;
    the scaled weights used here are the common simplification, the same one inverted dropout makes.)
    """
    _check_array("x", x)
    _check_array("weight", weight)
    drop = _check_drop_probability(drop_probability)
    require(x.ndim == 2 and weight.ndim == 2 and x.shape[1] == weight.shape[1], "x",
            f"a (batch, {weight.shape[1]}) array for a weight of shape {tuple(weight.shape)}", tuple(x.shape))
    if not training or drop == 0:
        output = x @ weight.T
    else:
        keep = 1 - drop
        if per_example:
            output = _per_example_dropconnect(x, weight, keep, generator)
        else:
            output = x @ (weight * (bernoulli_mask(weight, keep, generator) / keep)).T
    return output if bias is None else output + bias


def _per_example_dropconnect(x, weight, keep, generator):
    """x (M_b * W)^T / keep row by row, each example b with a mask M_b of its own, drawn as it is used.

    Example by example, what autograd keeps for the backward pass is each example's masked weights and its
    boolean mask: 5 bytes per weight per example. Masking all examples at once, as a (batch, out, in) product,
    keeps a float mask and the masked weights and adds two more blocks of that size in backward: 16 bytes per
    weight per example. Measured on one training step of notebook 07's 40-256-256-10 network on a batch of 16:
    13.5 MB at once, 5.3 MB example by example.
    """
    cat, where = (torch.cat, torch.where) if isinstance(x, torch.Tensor) else (np.concatenate, np.where)
    rows = []
    for example in range(x.shape[0]):
        kept = bernoulli_mask(weight, keep, generator) != 0
        rows.append(x[example:example + 1] @ where(kept, weight, 0).T)
    return cat(rows) / keep


class DropConnectLinear(nn.Linear):
    """``nn.Linear`` with DropConnect on its weights in training mode (see ``dropconnect_linear``)."""

    def __init__(self, in_features, out_features, drop_probability, bias=True, per_example=False, generator=None):
        super().__init__(in_features, out_features, bias=bias)
        self.drop_probability = _check_drop_probability(drop_probability)
        self.per_example = bool(per_example)
        self.generator = generator

    def forward(self, x):
        return dropconnect_linear(x, self.weight, self.bias, self.drop_probability, self.training,
                                  self.generator, self.per_example)

    def extra_repr(self):
        return (f"{super().extra_repr()}, drop_probability={self.drop_probability}, "
                f"per_example={self.per_example}")


def dropconnect_mlp(sizes, drop_probability, seed=0, per_example=False):
    """``course_lib.training.mlp(sizes, seed)`` with DropConnect on the weights of its hidden layers (every
    layer but the last): DropConnectLinear, ReLU, ..., Linear. Same initial weights as ``training.mlp``."""
    torch.manual_seed(seed)
    layers = []
    for fan_in, fan_out in zip(sizes[:-2], sizes[1:-1], strict=True):
        layers += [DropConnectLinear(fan_in, fan_out, drop_probability, per_example=per_example), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(sizes[-2], sizes[-1]))


# ---- stochastic depth -----------------------------------------------------------------------------------------
def linear_survival_probabilities(num_blocks, final_survival_probability):
    """Huang et al.'s linear decay rule: block l of L survives with probability

        p_l = 1 - (l / L) (1 - p_L),   l = 1, ..., L

    from nearly 1 for the first block to ``final_survival_probability`` p_L for the last. The expected share
    of blocks that run is the mean of the p_l: 1 - (1 - p_L)(L + 1) / (2L) (0.729 for L = 12, p_L = 0.5).
    """
    require(is_integer(num_blocks, 1), "num_blocks", "an integer >= 1", num_blocks)
    final = _check_unit_probability(final_survival_probability, "final_survival_probability")
    return [1 - (block / num_blocks) * (1 - final) for block in range(1, num_blocks + 1)]


def stochastic_depth(x, branch, survival_probability, training=True, generator=None):
    """A residual block ``x + branch(x)`` that is skipped at random in training (Huang et al. 2016):

        training:  H = x + b * f(x),   b ~ Bernoulli(p_l), one draw for the whole mini-batch
                   (when b = 0 the branch f is not computed at all: that is the time saved)
        test:      H = x + p_l * f(x)                      (E[b] = p_l)

    ``survival_probability`` is p_l, the probability that the block RUNS. (torchvision's
    ``stochastic_depth(input, p, mode)`` takes the DROP probability and scales by 1/(1 - p) in training.)
    """
    _check_array("x", x)
    survival = _check_unit_probability(survival_probability, "survival_probability")
    if not training:
        return x + survival * branch(x)
    if survival == 1 or bool(_uniform(x, (), generator) < survival):
        return x + branch(x)
    return x


class StochasticDepth(nn.Module):
    """A residual block ``x + branch(x)`` under ``stochastic_depth``, counting how often its branch runs.

    ``calls`` counts the forward passes in training mode and ``evaluations`` those in which the branch ran;
    their ratio estimates the survival probability.
    """

    def __init__(self, branch, survival_probability, generator=None):
        super().__init__()
        self.branch = branch
        self.survival_probability = _check_unit_probability(survival_probability, "survival_probability")
        self.generator = generator
        self.calls = self.evaluations = 0

    def forward(self, x):
        if self.training:
            self.calls += 1
        return stochastic_depth(x, self._counted_branch, self.survival_probability, self.training, self.generator)

    def _counted_branch(self, x):
        if self.training:
            self.evaluations += 1
        return self.branch(x)

    def extra_repr(self):
        return f"survival_probability={self.survival_probability:.3f}"


class ResidualMLP(nn.Module):
    """A residual multilayer perceptron: ``Linear(inputs, width)``, then ``num_blocks`` blocks
    ``x + Linear(ReLU(x))``, then ``Linear(ReLU(x), classes)``. With ``final_survival_probability`` below 1
    the blocks are ``StochasticDepth`` blocks whose survival probabilities decay linearly with depth to that
    value (``linear_survival_probabilities``); at 1 it is the plain residual network.
    """

    def __init__(self, num_inputs, width, num_blocks, num_classes, final_survival_probability=1.0, seed=0):
        super().__init__()
        require(is_integer(width, 1), "width", "an integer >= 1", width)
        survival = linear_survival_probabilities(num_blocks, final_survival_probability)
        torch.manual_seed(seed)
        self.stem = nn.Linear(num_inputs, width)
        self.blocks = nn.ModuleList(StochasticDepth(nn.Sequential(nn.ReLU(), nn.Linear(width, width)), p)
                                    for p in survival)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(width, num_classes))

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.head(x)

    def evaluated_fraction(self):
        """The share of block passes in training mode in which the block's branch ran."""
        calls = sum(block.calls for block in self.blocks)
        return sum(block.evaluations for block in self.blocks) / calls if calls else math.nan


# ---- fractional max pooling -----------------------------------------------------------------------------------
ROOT_HALF = 1 / math.sqrt(2)  # Graham's favourite ratio: two poolings halve the size


def fractional_pool_starts(input_size, output_size, kernel_size, samples):
    """The first index of each pooling window along one dimension, by torch's rule (ATen's
    FractionalMaxPool2d ``generate_intervals``), for each sample u in [0, 1) of ``samples``:

        alpha   = (input_size - kernel_size) / (output_size - 1)
        start_i = floor((i + u) alpha) - floor(u alpha),   i = 0, ..., output_size - 2
        start   = input_size - kernel_size                  for the last window (it ends at the input's end)

    The steps between windows are floor(alpha) or ceil(alpha): 1 or 2 for a ratio between 1/2 and 1. The
    arithmetic runs in the samples' floating type (float32 unless they are float64), as torch's does in the
    input's, which is what makes the windows match torch's exactly. Returns an int64 array of shape
    ``samples.shape + (output_size,)``.
    """
    require(is_integer(input_size, 1), "input_size", "an integer >= 1", input_size)
    require(is_integer(kernel_size, 1) and kernel_size <= input_size, "kernel_size",
            f"an integer in [1, {input_size}]", kernel_size)
    require(is_integer(output_size, 1) and output_size + kernel_size - 1 <= input_size, "output_size",
            f"an integer in [1, {input_size - kernel_size + 1}] (input_size - kernel_size + 1)", output_size)
    samples = samples.detach().cpu().numpy() if isinstance(samples, torch.Tensor) else np.asarray(samples)
    real = np.float64 if samples.dtype == np.float64 else np.float32
    samples = samples.astype(real)
    require(bool(np.all((samples >= 0) & (samples < 1))), "samples", "numbers in [0, 1)", samples)
    last = np.full(samples.shape + (1,), input_size - kernel_size, dtype=np.int64)
    if output_size == 1:
        return last
    alpha = real(input_size - kernel_size) / real(output_size - 1)
    steps = np.arange(output_size - 1, dtype=real)
    u = samples[..., None]
    starts = ((steps + u) * alpha).astype(np.int64) - (u * alpha).astype(np.int64)
    return np.concatenate([starts, last], axis=-1)


_POOLED_AT_ONCE = 256  # examples whose windows are built together (the index arrays stay a few MB)


def fractional_max_pool2d(x, output_size, kernel_size=2, samples=None, generator=None):
    """Fractional max pooling of ``x`` (batch, channels, height, width) to ``output_size`` (height, width).

    Each output pixel is the maximum over a ``kernel_size`` window whose row and column starts follow
    ``fractional_pool_starts``, with one pair of samples u per (example, channel) plane: ``samples`` has shape
    (batch, channels, 2), index 0 for the WIDTH and 1 for the HEIGHT (torch's ``_random_samples`` layout);
    None draws them uniformly from ``generator``. Given the same samples, the result equals
    ``F.fractional_max_pool2d(x, kernel_size, output_size, _random_samples=samples)``.

    The windows of a large batch are built and pooled ``_POOLED_AT_ONCE`` examples at a time (the same
    result): their int64 indices take several times the input's memory, about 20 MB for a 1,000-signal
    evaluation of notebook 08's network if built at once.
    """
    _check_array("x", x)
    require(x.ndim == 4, "x", "an array of shape (batch, channels, height, width)", tuple(x.shape))
    output_size, kernel_size = _pair(output_size, "output_size"), _pair(kernel_size, "kernel_size")
    batch, channels = x.shape[:2]
    if samples is None:
        samples = _uniform(x, (batch, channels, 2), generator)
    require(tuple(samples.shape) == (batch, channels, 2), "samples", f"of shape {(batch, channels, 2)}",
            tuple(samples.shape))
    if isinstance(samples, torch.Tensor):
        samples = samples.detach().cpu().numpy()
    parts = [_pool_windows(x[start:start + _POOLED_AT_ONCE], output_size, kernel_size,
                           samples[start:start + _POOLED_AT_ONCE]) for start in range(0, batch, _POOLED_AT_ONCE)]
    if len(parts) == 1:
        return parts[0]
    return torch.cat(parts) if isinstance(x, torch.Tensor) else np.concatenate(parts)


def _pool_windows(x, output_size, kernel_size, samples):
    """fractional_max_pool2d of the examples ``x`` with their (numpy) ``samples``, in one go."""
    (out_h, out_w), (kernel_h, kernel_w) = output_size, kernel_size
    batch, channels, height, width = x.shape
    rows = fractional_pool_starts(height, out_h, kernel_h, samples[..., 1])  # (batch, channels, out_h)
    columns = fractional_pool_starts(width, out_w, kernel_w, samples[..., 0])  # (batch, channels, out_w)
    corners = (rows[..., :, None] * width + columns[..., None, :]).reshape(batch, channels, -1)
    offsets = (np.arange(kernel_h)[:, None] * width + np.arange(kernel_w)[None, :]).reshape(-1)
    # Element k of every window, for k = 0 .. kernel_h * kernel_w - 1 in turn (the window's element is the
    # outer axis, so that the maximum runs over whole rows of outputs at once).
    index = (offsets[:, None] + corners[..., None, :]).reshape(batch, channels, -1)
    flat = x.reshape(batch, channels, height * width)
    if isinstance(x, torch.Tensor):
        # Find each window's largest element without autograd, then gather just those: the gradient flows
        # to one input per output (as in torch's own pooling, through its indices), cheaply.
        index = torch.from_numpy(index).to(x.device).reshape(batch, channels, len(offsets), -1)
        with torch.no_grad():
            windows = flat.gather(2, index.reshape(batch, channels, -1)).reshape(index.shape)
            best_value, best = windows[:, :, 0], index[:, :, 0]
            for k in range(1, len(offsets)):  # a running maximum: far faster than argmax over a short axis
                larger = windows[:, :, k] > best_value
                best = torch.where(larger, index[:, :, k], best)
                if k + 1 < len(offsets):  # (after the window's last element only its index is needed)
                    best_value = torch.where(larger, windows[:, :, k], best_value)
        return flat.gather(2, best).reshape(batch, channels, out_h, out_w)
    windows = np.take_along_axis(flat, index, axis=2)
    return windows.reshape(batch, channels, len(offsets), out_h, out_w).max(axis=2)


def _pair(value, name):
    pair = (value, value) if not isinstance(value, (tuple, list)) else tuple(value)
    require(len(pair) == 2 and all(is_integer(v, 1) for v in pair), name, "an integer >= 1 or a pair of them",
            value)
    return pair


class FractionalMaxPool2d(nn.Module):
    """Fractional max pooling as a layer: the output is ``floor(ratio * size)`` along each dimension.

    ``output_ratio``: a number or an (height, width) pair in (0, 1] (1 keeps a dimension, e.g. the height of a
    1-D signal stored as (batch, channels, 1, length)). ``fixed_sample``: None draws new windows for every plane
    on every call, in training and at test alike (as torch's ``nn.FractionalMaxPool2d``, which stays random in
    eval mode: average several passes with ``random_passes``); a number u in [0, 1) uses the same windows
    every time (fixed pooling windows, the deterministic baseline).
    """

    def __init__(self, output_ratio, kernel_size=2, fixed_sample=None, generator=None):
        super().__init__()
        ratios = tuple(output_ratio) if isinstance(output_ratio, (tuple, list)) else (output_ratio, output_ratio)
        require(len(ratios) == 2 and all(is_real(r) and 0 < r <= 1 for r in ratios), "output_ratio",
                "a number in (0, 1] or a pair of them", output_ratio)
        require(fixed_sample is None or (is_real(fixed_sample) and 0 <= fixed_sample < 1), "fixed_sample",
                "None or a number in [0, 1)", fixed_sample)
        self.output_ratio = tuple(float(r) for r in ratios)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.fixed_sample = fixed_sample
        self.generator = generator

    def output_size(self, height, width):
        return tuple(max(1, int(size * ratio)) for size, ratio in zip((height, width), self.output_ratio,
                                                                      strict=True))

    def forward(self, x):
        samples = None
        if self.fixed_sample is not None:
            samples = np.full((x.shape[0], x.shape[1], 2), self.fixed_sample, dtype=np.float32)
        return fractional_max_pool2d(x, self.output_size(x.shape[2], x.shape[3]), self.kernel_size, samples,
                                     self.generator)

    def extra_repr(self):
        return (f"output_ratio={self.output_ratio}, kernel_size={self.kernel_size}, "
                f"fixed_sample={self.fixed_sample}")


def fractional_pooling_cnn(length=40, num_classes=10, channels=8, blocks=3, output_ratio=ROOT_HALF,
                           fixed_sample=None, seed=0):
    """A small convolutional network for 1-D signals with fractional max pooling: the signal becomes a
    (batch, 1, 1, length) image, then ``blocks`` times Conv2d (1 x 3 kernel, ``channels``), ReLU and
    ``FractionalMaxPool2d((1, output_ratio), kernel_size=(1, 2))``, which shrinks the length by
    ``output_ratio`` each time; then a linear layer to the classes. ``fixed_sample`` as in
    ``FractionalMaxPool2d`` (None: random windows; a number: the same windows every time)."""
    torch.manual_seed(seed)
    layers, size, in_channels = [nn.Unflatten(1, (1, 1, length))], length, 1
    for _ in range(blocks):
        layers += [nn.Conv2d(in_channels, channels, (1, 3), padding=(0, 1)), nn.ReLU(),
                   FractionalMaxPool2d((1.0, output_ratio), kernel_size=(1, 2), fixed_sample=fixed_sample)]
        size, in_channels = max(1, int(size * output_ratio)), channels
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(channels * size, num_classes))


# ---- averaging the randomness out -----------------------------------------------------------------------------
PASSES_AT_ONCE = 1000  # passes drawn together by mean_of_dropout_passes (1,000 x 129 units: 0.5 MB)


def mean_of_dropout_passes(dropout, activations, drop_probability, passes, generator=None):
    """The mean of ``passes`` training passes of ``dropout`` over one example's ``activations`` (a 1-D array):

        mean = (1 / passes) * sum_k dropout(activations, drop_probability, True, generator)   (k = 1 .. passes)

    the Monte-Carlo estimate of what the layer outputs in training on average. ``dropout`` has the signature of
    ``inverted_dropout`` and ``vanilla_dropout``, ``(x, drop_probability, training, generator)`` (a learner's
    ``inverted_dropout(x, drop_probability, training, rng)`` too); it is called on batches of copies of the
    activations, one pass per row, ``PASSES_AT_ONCE`` rows at a time, drawing from ``generator`` (a
    ``numpy.random.Generator``; None: a fresh, unseeded one) one batch after the other. For a function that draws
    one number per element in order (as this module's do), the draws are those of one call on all the passes at
    once: a generator gives the same numbers in one block or in consecutive pieces. That one call would hold
    several arrays of passes x units at once (20,000 passes of 129 units: 10 MB each in float32); the batches
    hold a few hundred KB. The rows are summed in float64; returns a float64 array.
    """
    require(callable(dropout), "dropout", "a function (x, drop_probability, training, generator)", dropout)
    require(isinstance(activations, np.ndarray) and activations.ndim == 1, "activations", "a 1-D numpy array",
            getattr(activations, "shape", type(activations).__name__))
    require(is_integer(passes, 1), "passes", "an integer >= 1", passes)
    rng = generator if generator is not None else np.random.default_rng()
    total = np.zeros(activations.shape, dtype=np.float64)
    for start in range(0, passes, PASSES_AT_ONCE):
        rows = min(PASSES_AT_ONCE, passes - start)
        batch = np.repeat(activations[None, :], rows, axis=0)  # a copy of its own for every call
        total += np.asarray(dropout(batch, drop_probability, True, rng)).sum(axis=0, dtype=np.float64)
    return total / passes


def each_random_pass(model, inputs, passes, seed=0):
    """Yield ``model(inputs)`` for ``passes`` independent draws of its randomness, one pass at a time.

    The model runs in training mode, where its random layers draw their noise (dropout masks, DropConnect
    masks, pooling windows), without autograd; its mode is restored at the end. Torch's global generator is
    seeded with ``seed`` for the passes and restored at the end: draw nothing from it between two passes.
    ``random_passes`` stacks the passes, ``random_pass_averages`` keeps only their running averages.
    """
    require(is_integer(passes, 1), "passes", "an integer >= 1", passes)
    was_training = model.training
    model.train()
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            for _ in range(passes):
                yield model(inputs)
    finally:
        model.train(was_training)


def random_passes(model, inputs, passes, seed=0):
    """``model(inputs)`` for ``passes`` independent draws of its randomness (``each_random_pass``): a tensor
    (passes, *output shape). Average the passes (their softmax probabilities, or their logits) to get the
    Monte-Carlo estimate of the network's expected output.
    """
    outputs = None
    for index, output in enumerate(each_random_pass(model, inputs, passes, seed)):
        if outputs is None:
            # One block for all passes, filled in place: a list of small outputs between the passes' large
            # temporaries fragments the heap (measured: +130 MB for 256 passes of a 500 x 256 layer).
            outputs = output.new_empty((passes, *output.shape))
        outputs[index] = output
    return outputs


@dataclass(frozen=True)
class PassAverages:
    """What averaging random passes of a model gives (``random_pass_averages``)."""

    logits: dict  # M -> the mean of the first M passes' outputs (logits)
    probabilities: dict  # M -> the mean of the first M passes' softmax probabilities
    variance: torch.Tensor  # the outputs' variance over all the passes (unbiased), per output: one pass's noise


def random_pass_averages(model, inputs, counts, seed=0):
    """The averages of the first M of ``max(counts)`` random passes (``each_random_pass``, the passes of
    ``random_passes`` with the same seed), for each M in ``counts``, as ``PassAverages``: the mean outputs
    (logits), the mean softmax probabilities, and the outputs' variance over all the passes.

    The passes are summed as they come, in float64 (the averages are returned in the outputs' dtype), and never
    stored: all of them at once are passes times the output's size (256 passes of 500 x 10 logits: 5 MB), a
    block that, freed, leaves glibc's allocator keeping blocks of that size on its heap for good.
    """
    require(len(counts) > 0 and all(is_integer(m, 1) for m in counts), "counts", "integers >= 1", counts)
    passes = max(counts)
    logits, probabilities = {}, {}
    for number, output in enumerate(each_random_pass(model, inputs, passes, seed), start=1):
        if number == 1:
            total, squares, total_probability = (torch.zeros(output.shape, dtype=torch.float64) for _ in range(3))
        total += output
        squares += output.double() ** 2
        total_probability += output.softmax(-1)
        if number in counts:
            logits[number] = (total / number).to(output.dtype)
            probabilities[number] = (total_probability / number).to(output.dtype)
    variance = (squares - total ** 2 / passes) / (passes - 1) if passes > 1 else torch.full_like(total, math.nan)
    return PassAverages(logits=logits, probabilities=probabilities, variance=variance.to(output.dtype))


# ---- notebook 08's experiments, and their precomputed table ---------------------------------------------------
# Each claim-27 experiment of notebook 08 is one function here, called by the notebook's claim cell (seed 0) and by
# data/make_regularizer_table.py (seeds 0-4), so that the two cannot drift apart. ``seed`` draws the training
# subset and sets the initial weights, the order of the batches and the run's random draws.
EXPERIMENT_ADAM = {"rule": optim.adam, "learning_rate": 3e-3, "epsilon": 1e-8}  # torch.optim.Adam's algorithm


def _adam(model):
    return optim.RuleOptimizer(model.parameters(), **EXPERIMENT_ADAM)


def train_with_shifts(shift, max_shift, seed=0, epochs=30, training_examples=1000):
    """Claim 27, data augmentation: the MLP 40 -> 256 -> 256 -> 10 (``training.mlp``, initial weights from
    ``seed``) trained with Adam (learning rate 3e-3) in batches of 128 for ``epochs`` epochs on
    ``training_examples`` MNIST-1D signals (``training_subset(training_examples, seed)``), every batch changed
    by ``shift(signals, generator, max_shift=max_shift)`` (e.g. ``augmentation.random_circular_shift``; with
    ``max_shift`` 0, no augmentation at all, so that the batches are those of every other range). Returns
    (model, history), the history evaluated once, at the end."""
    require(is_integer(max_shift, 0), "max_shift", "an integer >= 0", max_shift)
    dataset = data.mnist1d().training_subset(training_examples, seed)
    model = training.mlp([dataset.num_features, 256, 256, dataset.num_classes], seed=seed)
    augment = functools.partial(shift, max_shift=max_shift) if max_shift else None
    history = training.train(model, _adam(model), dataset, epochs=epochs, seed=seed, augment=augment,
                             evaluate_every=epochs)
    return model, history


def train_pooling_cnn(seed=0, fixed_sample=None, epochs=20, training_examples=2000, channels=16):
    """Claim 27, fractional max pooling: ``fractional_pooling_cnn(channels=channels, fixed_sample=...)``
    (initial weights from ``seed``; None: random windows, a number: those fixed windows) trained with Adam
    (learning rate 3e-3) in batches of 128 for ``epochs`` epochs on ``training_examples`` MNIST-1D signals. Returns
    (model, history), the history evaluated once, at the end (with random windows a test pass is one draw:
    measure those networks with ``random_passes`` and ``pass_accuracies``)."""
    dataset = data.mnist1d().training_subset(training_examples, seed)
    model = fractional_pooling_cnn(channels=channels, fixed_sample=fixed_sample, seed=seed)
    history = training.train(model, _adam(model), dataset, epochs=epochs, seed=seed, evaluate_every=epochs)
    return model, history


def pass_accuracies(passes, labels):
    """(the accuracy of each pass on its own, an array; the accuracy of the average of the passes' softmax
    probabilities) for ``passes`` = ``random_passes(...)``, a (passes, examples, classes) tensor of logits."""
    single = (passes.argmax(-1) == labels).float().mean(-1).numpy().astype(float)
    averaged = (passes.softmax(-1).mean(0).argmax(-1) == labels).float().mean().item()
    return single, averaged


def train_residual_mlp(final_survival_probability, seed=0, epochs=15, training_examples=1000):
    """Claim 27, stochastic depth: ``ResidualMLP(40, 64, 12, 10, final_survival_probability)`` (initial weights
    from ``seed``; 1.0 is the plain residual network) trained with Adam (learning rate 3e-3) in batches of 128
    for ``epochs`` epochs on ``training_examples`` MNIST-1D signals. Returns (model, history), the history
    evaluated once, at the end; ``model.evaluated_fraction()`` is the share of blocks training computed."""
    dataset = data.mnist1d().training_subset(training_examples, seed)
    model = ResidualMLP(dataset.num_features, 64, 12, dataset.num_classes, final_survival_probability, seed=seed)
    history = training.train(model, _adam(model), dataset, epochs=epochs, seed=seed, evaluate_every=epochs)
    return model, history


TABLE_FILE = "regularizer_table.json"
TABLE_EXPERIMENTS = {  # each experiment's rows: what identifies a row besides its seed, and what it measured
    "augmentation": (("max_shift",), ("train_accuracy", "test_accuracy")),
    "fractional_pooling": ((), ("one_pass", "averaged", "fixed_windows")),
    "stochastic_depth": (("final_survival_probability",), ("blocks_computed", "test_loss", "test_accuracy",
                                                           "train_accuracy")),
}
ONE_PASS_SUMMARIES = {"one_pass_mean": np.mean, "one_pass_min": np.min, "one_pass_max": np.max}


class RegularizerTable:
    """Notebook 08's experiments over several seeds (the shipped one: ``shipped_table()``). Each accessor returns
    a measure as an array over ``seeds`` (in that order), or one number with ``seed=``:

        table.augmentation(max_shift, "test_accuracy")             # or "train_accuracy"
        table.fractional_pooling("averaged")                       # "one_pass_mean", "one_pass_min",
                                                                   # "one_pass_max", "fixed_windows"
        table.stochastic_depth(final_survival_probability, "test_loss")   # "blocks_computed", "test_accuracy",
                                                                          # "train_accuracy"

    ``made_with`` records the commit and versions the table was made with, ``settings`` the experiments'
    settings (the defaults of ``train_with_shifts``, ``train_pooling_cnn`` and ``train_residual_mlp``).
    """

    def __init__(self, table):
        for key in ("made_with", "settings", *TABLE_EXPERIMENTS):
            require(key in table, "table", f"a dict with the key {key!r}", sorted(table))
        self.made_with, self.settings = table["made_with"], table["settings"]
        self.seeds = tuple(self.settings["seeds"])
        self.max_shifts = tuple(self.settings["augmentation"]["max_shifts"])
        self.final_survival_probabilities = tuple(
            self.settings["stochastic_depth"]["final_survival_probabilities"])
        self._rows = {}
        for experiment, (keys, measures) in TABLE_EXPERIMENTS.items():
            for row in table[experiment]:
                require(set(row) == {"seed", *keys, *measures}, f"a row of {experiment!r}",
                        f"the keys {sorted({'seed', *keys, *measures})}", sorted(row))
                self._rows[(experiment, row["seed"], *(row[key] for key in keys))] = row
        expected = ([("augmentation", seed, shift) for seed in self.seeds for shift in self.max_shifts]
                    + [("fractional_pooling", seed) for seed in self.seeds]
                    + [("stochastic_depth", seed, final) for seed in self.seeds
                       for final in self.final_survival_probabilities])
        missing = [row for row in expected if row not in self._rows]
        require(not missing and len(expected) == len(self._rows), "table",
                "one row per seed and setting of its settings", f"missing {missing}, {len(self._rows)} rows")

    def _measure(self, experiment, setting, measure, seed):
        measures = TABLE_EXPERIMENTS[experiment][1]
        if experiment == "fractional_pooling":
            measures = tuple(ONE_PASS_SUMMARIES) + measures[1:]  # the passes' accuracies, summarised
        require(measure in measures, "measure", f"one of {list(measures)}", measure)
        seeds = self.seeds if seed is None else (seed,)
        require(all((experiment, s, *setting) in self._rows for s in seeds), "setting and seed",
                f"a run of the table ({experiment}: seeds {list(self.seeds)})", (*setting, seed))
        rows = [self._rows[(experiment, s, *setting)] for s in seeds]
        summary = ONE_PASS_SUMMARIES.get(measure)
        values = np.array([float(summary(row["one_pass"])) if summary else row[measure] for row in rows])
        return values if seed is None else float(values[0])

    def augmentation(self, max_shift, measure="test_accuracy", seed=None):
        return self._measure("augmentation", (max_shift,), measure, seed)

    def fractional_pooling(self, measure, seed=None):
        return self._measure("fractional_pooling", (), measure, seed)

    def stochastic_depth(self, final_survival_probability, measure, seed=None):
        return self._measure("stochastic_depth", (final_survival_probability,), measure, seed)


def shipped_table(filename=TABLE_FILE):
    """Notebook 08's experiments over 5 seeds, precomputed by data/make_regularizer_table.py and shipped in
    data/ (hash checked against data/SHA256SUMS first): a ``RegularizerTable``."""
    return RegularizerTable(json.loads(data.verified(filename).read_text()))
