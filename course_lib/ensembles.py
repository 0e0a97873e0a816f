"""Model ensembles: train several models, average their predicted probabilities at test time.

For K members f_1 ... f_K (each giving logits f_k(x)), the ensemble predicts

    p(y | x) = (1/K) sum_k softmax(f_k(x))_y                 (``average_probabilities``)

and is scored by its test accuracy (argmax_y p(y | x) against the label) and its negative log-likelihood
NLL = -mean log p(label | x), the cross-entropy of the test set. Why the probabilities:

- not the weights: independently trained networks are not near each other in weight space (any permutation of
  a layer's hidden units computes the same function), so the average of their weights (``average_weights``) is
  a different, much worse network. Averaging the weights works only along ONE run (course_lib.averaging);
- not the logits: softmax(mean of the logits) (``average_logits``) is a product of the members'
  distributions, renormalized, in which the most confident member dominates: one confidently wrong member can
  outvote the others. The mean of probabilities is a mixture, each member weighing 1/K: with one member sure
  of a wrong class, p(label | x) is still (K - 1) / K times the other members' mean, never zero;
- not the argmaxes: a vote throws away how sure each member is (and ties among few members are frequent).

Members come from independent runs (``Recipe.train_members``, one seed each: different initial weights and
batch order) or from one run whose learning rate restarts (``Recipe(schedule="cosine_warm_restarts", cycles=K)``,
with a ``Snapshots`` hook keeping the model at the end of each cycle: Huang et al. 2017, "Snapshot ensembles").
Members are evaluated in evaluation mode (``model.eval()``), whatever mode they were left in.
"""

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from course_lib import optim, schedules, training
from course_lib.averaging import UniformAverage
from course_lib.validation import is_integer, is_real, require

__all__ = [
    "Recipe",
    "Snapshots",
    "accuracy",
    "average_logits",
    "average_probabilities",
    "average_weights",
    "disagreement",
    "growing_ensemble",
    "member_logits",
    "member_scores",
    "negative_log_likelihood",
    "vote_fractions",
]


@torch.no_grad()
def member_logits(models, inputs):
    """The logits of every model on ``inputs``, in evaluation mode: a tensor of shape (members, examples,
    classes). Each model's train/eval mode is restored afterwards."""
    require(len(models) > 0, "models", "a non-empty sequence of torch models", models)
    stacked = []
    for model in models:
        was_training = model.training
        model.eval()
        stacked.append(model(inputs))
        model.train(was_training)
    return torch.stack(stacked)


def average_probabilities(logits):
    """The ensemble's prediction: the mean over members (axis 0) of softmax(logits), shape (examples, classes)."""
    return torch.softmax(torch.as_tensor(logits), dim=-1).mean(0)


def average_logits(logits):
    """softmax(mean of the members' logits): the alternative ``average_probabilities`` is compared with."""
    return torch.softmax(torch.as_tensor(logits).mean(0), dim=-1)


def vote_fractions(logits):
    """The fraction of members whose most probable class is each class, shape (examples, classes): a majority
    vote (its argmax) that throws away how sure each member is."""
    logits = torch.as_tensor(logits)
    votes = nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    return votes.mean(0)


def average_weights(models):
    """A copy of the first model whose parameters are the uniform mean of all the models' parameters."""
    require(len(models) > 0, "models", "a non-empty sequence of torch models", models)
    average = UniformAverage(models[0])
    for model in models[1:]:
        average.update(model)
    return average.model


def negative_log_likelihood(probabilities, labels):
    """-mean log p(label | x): the test cross-entropy of predicted probabilities (rows summing to 1)."""
    probabilities = torch.as_tensor(probabilities)
    chosen = probabilities[torch.arange(len(labels)), torch.as_tensor(labels)]
    return float(-torch.log(chosen.clamp_min(torch.finfo(probabilities.dtype).tiny)).mean())


def accuracy(probabilities, labels):
    """The fraction of examples whose most probable class is the label."""
    return float((torch.as_tensor(probabilities).argmax(-1) == torch.as_tensor(labels)).float().mean())


def disagreement(logits):
    """How different the members are: the fraction of examples on which two members' most probable classes
    differ, averaged over every pair of members (0: identical predictions)."""
    predictions = torch.as_tensor(logits).argmax(-1)
    members = len(predictions)
    require(members >= 2, "logits", "the logits of at least 2 members", f"{members} member(s)")
    pairs = [(predictions[i] != predictions[j]).double().mean()
             for i in range(members) for j in range(i + 1, members)]
    return float(torch.stack(pairs).mean())


def member_scores(logits, labels):
    """(NLL, accuracy) arrays with one entry per member (rows of ``logits``), each member on its own."""
    probabilities = torch.softmax(torch.as_tensor(logits), dim=-1)
    return (np.array([negative_log_likelihood(p, labels) for p in probabilities]),
            np.array([accuracy(p, labels) for p in probabilities]))


def growing_ensemble(logits, labels):
    """(NLL, accuracy) arrays of the ensembles of the first 1, 2, ..., K members (rows of ``logits``)."""
    probabilities = torch.softmax(torch.as_tensor(logits), dim=-1)
    running = probabilities.cumsum(0) / torch.arange(1, len(probabilities) + 1).reshape(-1, 1, 1)
    return (np.array([negative_log_likelihood(p, labels) for p in running]),
            np.array([accuracy(p, labels) for p in running]))


class Snapshots:
    """An ``on_step`` hook of course_lib.training.train that keeps a copy of the model every ``period`` steps
    (after step ``after``): at the end of each cycle of a cosine schedule with warm restarts, where the learning
    rate is lowest, or at the end of each of the last epochs of a run. ``models`` and ``steps`` list them."""

    def __init__(self, period, after=0):
        require(is_integer(period, 1), "period", "an integer >= 1", period)
        require(is_integer(after, 0), "after", "an integer >= 0", after)
        self.period, self.after = period, after
        self.models, self.steps = [], []

    def __call__(self, model, step):
        if step % self.period == 0 and step > self.after:
            snapshot = copy.deepcopy(model)
            snapshot.requires_grad_(False)
            self.models.append(snapshot)
            self.steps.append(step)


# course_lib's rules as torch optimizers: torch.optim's built-in step() imports torch's compiler (~70 MB of a
# kernel's memory, a second of CPU), RuleOptimizer's does not.
_OPTIMIZERS = {
    "sgd_momentum": lambda parameters, learning_rate: optim.RuleOptimizer(parameters, optim.sgd_momentum,
                                                                          learning_rate=learning_rate, rho=0.9),
    "adam": lambda parameters, learning_rate: optim.RuleOptimizer(parameters, optim.adam,
                                                                  learning_rate=learning_rate, epsilon=1e-8),
}
_SCHEDULES = ("constant", "cosine", "cosine_warm_restarts")


@dataclass(frozen=True)
class Recipe:
    """How to train one member: an MLP (``training.mlp(sizes)``) with an optimizer, a learning rate and a
    schedule set every step, for ``epochs`` epochs of ``batch_size`` examples.

    optimizer: "sgd_momentum" (course_lib.optim.sgd_momentum, rho = 0.9: the lecture's v = rho v + dx,
    x -= alpha v, which is torch's SGD with momentum 0.9) or "adam" (course_lib.optim.adam, beta1 = 0.9,
    beta2 = 0.999, epsilon = 1e-8 as torch's Adam), each as a RuleOptimizer. schedule: "constant"; "cosine"
    (course_lib.schedules.cosine down to 0 over the whole run); "cosine_warm_restarts"
    (course_lib.schedules.cosine_warm_restarts with ``cycles`` equal cycles; ``cycle_steps(dataset)`` is their
    length, for a ``Snapshots`` hook).
    """

    optimizer: str = "sgd_momentum"
    learning_rate: float = 0.1
    epochs: int = 15
    schedule: str = "cosine"
    cycles: int = 1
    sizes: tuple = (40, 128, 128, 10)
    batch_size: int = 128

    def __post_init__(self):
        require(self.optimizer in _OPTIMIZERS, "optimizer", f"one of {sorted(_OPTIMIZERS)}", self.optimizer)
        require(is_real(self.learning_rate) and 0 < self.learning_rate < math.inf, "learning_rate",
                "a finite number > 0", self.learning_rate)
        require(is_integer(self.epochs, 1), "epochs", "an integer >= 1", self.epochs)
        require(self.schedule in _SCHEDULES, "schedule", f"one of {_SCHEDULES}", self.schedule)
        require(is_integer(self.cycles, 1) and (self.cycles == 1 or self.schedule == "cosine_warm_restarts"),
                "cycles", "an integer >= 1 (> 1 only with schedule='cosine_warm_restarts')", self.cycles)
        require(is_integer(self.batch_size, 1), "batch_size", "an integer >= 1", self.batch_size)

    def steps_per_epoch(self, dataset):
        """The number of batches in one pass over the training set (the last one may be short)."""
        return math.ceil(len(dataset.y_train) / self.batch_size)

    def steps(self, dataset):
        """The number of optimizer steps of the whole run."""
        return self.epochs * self.steps_per_epoch(dataset)

    def cycle_steps(self, dataset):
        """The length of one cycle of the schedule in steps (the whole run unless it restarts)."""
        steps = self.steps(dataset)
        require(steps % self.cycles == 0, "cycles", f"a divisor of the run's {steps} steps", self.cycles)
        return steps // self.cycles

    def model(self, seed=0):
        """A fresh, untrained model: ``training.mlp(sizes, seed)``."""
        return training.mlp(list(self.sizes), seed=seed)

    def train(self, model, dataset, seed=0, on_step=(), progress=None, evaluate_every=None):
        """Train ``model`` with this recipe (batch order from ``seed``) by course_lib.training.train; returns its
        History and leaves the model in evaluation mode. ``on_step``: hooks such as ``Snapshots`` or a weight
        average of course_lib.averaging (create those from the model before training)."""
        optimizer = _OPTIMIZERS[self.optimizer](model.parameters(), self.learning_rate)
        scheduler = None  # stepped once per step; lambda_lr starts the schedule at the optimizer's learning rate
        if self.schedule == "cosine":
            scheduler = schedules.lambda_lr(optimizer, schedules.cosine, total_steps=self.steps(dataset))
        elif self.schedule == "cosine_warm_restarts":
            scheduler = schedules.lambda_lr(optimizer, schedules.cosine_warm_restarts,
                                            period=self.cycle_steps(dataset))
        history = training.train(model, optimizer, dataset, self.epochs, self.batch_size, scheduler=scheduler,
                                 seed=seed, progress=progress, scheduler_interval="step", on_step=on_step,
                                 evaluate_every=evaluate_every)
        model.eval()
        return history

    def train_members(self, dataset, seeds, progress="member"):
        """One independently trained model per seed (its own initial weights and batch order), as a list."""
        members = []
        for seed in seeds:
            model = self.model(seed)
            self.train(model, dataset, seed=seed, progress=progress and f"{progress} (seed {seed})")
            members.append(model)
        return members
