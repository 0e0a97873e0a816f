"""Averages of the weights along one training run (Polyak averaging), used at test time instead of the last ones.

A run visits the weights x_0 (the initial ones), x_1, x_2, ... (one per optimizer step). Two averages of them:

- the exponential moving average (EMA), in the lecture's form,

      x_test <- decay * x_test + (1 - decay) * x            after every step, starting from x_test = x_0,

  so that x_test = decay^t x_0 + (1 - decay) sum_{k=1..t} decay^(t-k) x_k: it remembers about 1 / (1 - decay)
  steps (the lecture's decay 0.995: the last ~200 steps) and forgets the start;
- the uniform (Polyak-Ruppert) average of every iterate so far,

      x_test <- x_test + (x - x_test) / (n + 1)             (n: the number of iterates already in x_test),

  so that x_test = (x_0 + x_1 + ... + x_t) / (t + 1).

``exponential_update`` and ``uniform_update`` are those two lines; they take numpy arrays or torch tensors and
return a new array (a tensor in, a tensor out), never changing their inputs. ``ExponentialAverage(model, decay)``
and ``UniformAverage(model)`` apply them to every parameter of a torch model, as an ``on_step`` hook of
``course_lib.training.train``; ``.model`` is the averaged copy to evaluate. They compute what
``torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))`` and
``AveragedModel(model)`` compute when ``update_parameters`` is also called once before training.

Buffers (batch norm's running mean and variance) are **copied** from the trained model, not averaged, as
AveragedModel does by default (``use_buffers=False``): they are themselves running averages, of the trained
weights' activations. Neither copying nor averaging gives the statistics of the averaged weights exactly; for
those, run the data through the averaged model once (``torch.optim.swa_utils.update_bn``).

``LossCurves`` evaluates the trained model and its averages every few steps during training, for pictures.
"""

import copy

import numpy as np
import torch
from torch import nn

from course_lib import training
from course_lib.validation import is_integer, is_real, require

__all__ = [
    "ExponentialAverage",
    "LossCurves",
    "UniformAverage",
    "check_decay",
    "exponential_update",
    "first_below",
    "roughness",
    "uniform_update",
]


def check_decay(decay):
    """Raise ValueError unless 0 <= decay < 1 (decay = 1 would never move from the initial weights)."""
    require(is_real(decay) and 0 <= decay < 1, "decay", "in [0, 1)", decay)


def _shape(array):
    return tuple(array.shape) if hasattr(array, "shape") else np.shape(array)


def _check_same_shape(average, weights):
    require(_shape(average) == _shape(weights), "weights", f"of the average's shape {_shape(average)}",
            f"shape {_shape(weights)}")


def exponential_update(average, weights, decay):
    """One step of the exponential moving average: ``decay * average + (1 - decay) * weights`` (a new array).

    ``average`` is x_test, ``weights`` the current x; decay in [0, 1): 0 keeps no memory (x_test = x), 0.995
    is the lecture's.
    """
    check_decay(decay)
    _check_same_shape(average, weights)
    return decay * average + (1 - decay) * weights


def uniform_update(average, weights, count):
    """One step of the uniform average: ``average + (weights - average) / (count + 1)`` (a new array).

    ``average`` is the mean of ``count`` iterates (count >= 1); the result is the mean of those and ``weights``.
    """
    require(is_integer(count, 1), "count", "an integer >= 1 (the iterates already averaged)", count)
    _check_same_shape(average, weights)
    return average + (weights - average) / (count + 1)


class _WeightAverage:
    """An average of a torch model's parameters over a run; ``self.model`` is a copy of the model holding it.

    Created from the model before training (x_test = x_0); call it after every optimizer step, as
    ``average(model, step)`` (the ``on_step`` hook signature of course_lib.training.train), or ``update(model)``.
    The average is kept as one flat vector (one update per step, whatever the number of layers) and written
    into ``self.model`` when that is read.
    """

    def __init__(self, model):
        self._model = copy.deepcopy(model)
        self._model.requires_grad_(False)
        self._model.eval()
        self._kept_buffers = list(self._model.buffers())
        self._source, self._source_parameters = None, []
        self.average = self._flat(model).clone()
        self.count = 1  # iterates averaged so far: x_0
        self._written = True

    def _flat(self, model):
        """The model's parameters as one vector (the parameter list is looked up once per model)."""
        if model is not self._source:
            self._source, self._source_parameters = model, list(model.parameters())
        return torch.cat([parameter.detach().reshape(-1) for parameter in self._source_parameters])

    def __call__(self, model, step=None):
        self.update(model)

    @torch.no_grad()
    def update(self, model):
        self.average = self._combine(self.average, self._flat(model))
        if self._kept_buffers:  # batch norm's running statistics: copied, not averaged (see the module's notes)
            for kept, live in zip(self._kept_buffers, model.buffers(), strict=True):
                kept.copy_(live)
        self.count += 1
        self._written = False

    @property
    def model(self):
        """The averaged model (in evaluation mode): the model's architecture with x_test as its parameters."""
        if not self._written:
            nn.utils.vector_to_parameters(self.average, self._model.parameters())
            self._written = True
        return self._model

    def _combine(self, average, weights):
        raise NotImplementedError


class ExponentialAverage(_WeightAverage):
    """x_test <- decay * x_test + (1 - decay) * x after every step, from x_test = x_0 (the lecture's 0.995)."""

    def __init__(self, model, decay=0.995):
        check_decay(decay)
        self.decay = decay
        super().__init__(model)

    def _combine(self, average, weights):
        return exponential_update(average, weights, self.decay)


class UniformAverage(_WeightAverage):
    """x_test = the mean of every iterate so far, x_0 included (Polyak-Ruppert averaging)."""

    def _combine(self, average, weights):
        return uniform_update(average, weights, self.count)


class LossCurves:
    """An ``on_step`` hook that evaluates several models on a test set every ``every`` steps (and at step 0).

    ``models``: label -> a torch model or a weight average of this module (its ``.model`` is evaluated).
    After training, ``steps`` holds the evaluated step counts and ``losses[label]`` / ``accuracies[label]``
    the test loss and accuracy of each model there (course_lib.training.evaluate).
    Put it after the averages in ``on_step``, so that it sees them updated.
    """

    def __init__(self, models, inputs, labels, every):
        require(is_integer(every, 1), "every", "an integer >= 1", every)
        self.models, self.inputs, self.labels, self.every = dict(models), inputs, labels, every
        self.steps = []
        self.losses = {label: [] for label in self.models}
        self.accuracies = {label: [] for label in self.models}
        self._evaluate(0)

    def __call__(self, model, step):
        if step % self.every == 0:
            self._evaluate(step)

    def _evaluate(self, step):
        self.steps.append(step)
        for label, model in self.models.items():
            if isinstance(model, _WeightAverage):
                model = model.model
            loss, accuracy = training.evaluate(model, self.inputs, self.labels)
            self.losses[label].append(loss)
            self.accuracies[label].append(accuracy)


def first_below(steps, losses, reference):
    """The first of ``steps`` at which ``losses`` is below ``reference`` (e.g. an average's test loss against
    the trained weights'), or None if it never is: how long an average lags behind early in a run."""
    below = np.nonzero(np.asarray(losses) < np.asarray(reference))[0]
    return int(steps[below[0]]) if len(below) else None


def roughness(losses):
    """How much a loss curve wiggles: the standard deviation of its second differences
    l[i+1] - 2 l[i] + l[i-1], which are near 0 along a smooth trend, rising or falling, and large for noise."""
    return float(np.std(np.diff(np.asarray(losses, dtype=float), n=2)))
