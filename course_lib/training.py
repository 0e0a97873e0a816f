"""Train small torch models on the workbook's datasets, repeatably, with a progress bar.

``train(model, optimizer, dataset, epochs=...)`` runs mini-batch training and returns a ``History`` of the
training loss after every step and the test loss and accuracy after every epoch; ``train_each`` trains one
fresh copy of a model per optimizer setting, to compare them. Seeds fix the model's initial weights and the
order of the batches, so a run gives the same numbers every time.
"""

import ctypes
import ctypes.util
import functools
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from course_lib.measure import running_mean
from course_lib.validation import is_integer, require

__all__ = ["History", "evaluate", "mlp", "release_freed_memory", "single_thread", "train", "train_each"]


def mlp(sizes, seed=0, activation=nn.ReLU):
    """A fully connected network with layer widths ``sizes`` (inputs first, classes last)."""
    torch.manual_seed(seed)
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [nn.Linear(fan_in, fan_out), activation()]
    return nn.Sequential(*layers[:-1])


@dataclass
class History:
    step_loss: list = field(default_factory=list)  # training loss of every mini-batch
    test_loss: list = field(default_factory=list)  # after every evaluated epoch (see train's evaluate_every)
    test_accuracy: list = field(default_factory=list)
    train_accuracy: list = field(default_factory=list)
    learning_rate: list = field(default_factory=list)  # in force at every step
    diverged_at: int | None = None  # the step whose loss was not finite

    def smoothed_loss(self, window=20):
        """The step losses averaged over a sliding window (the raw curve is noisy): measure.running_mean."""
        return running_mean(self.step_loss, window)


EVALUATION_BATCH = 1000  # examples per forward pass when evaluating (notebooks' test sets: one pass)


@torch.no_grad()
def evaluate(model, inputs, labels):
    """(mean cross-entropy loss, accuracy) of ``model`` on a dataset, in evaluation mode.

    Every submodule gets back the mode it had (a frozen part kept in eval mode inside a model in training
    mode, e.g. a pretrained body whose batch-norm statistics must not move, stays in eval mode). The inputs go
    through the model ``EVALUATION_BATCH`` examples at a time (in evaluation mode each example's output is its
    own): a whole training set at once holds every layer's activations for all of it, ~20 MB of a kernel.
    """
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    logits = torch.cat([model(chunk) for chunk in inputs.split(EVALUATION_BATCH)])
    for module, training in modes:
        module.training = training
    loss = nn.functional.cross_entropy(logits, labels).item()
    return loss, (logits.argmax(dim=1) == labels).float().mean().item()


@contextmanager
def single_thread():
    """Run torch on one thread: tiny models train faster without thread start-up costs."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train(model, optimizer, dataset, epochs=10, batch_size=128, scheduler=None, seed=0, progress=None, *,
          scheduler_interval="epoch", augment=None, on_step=(), evaluate_every=1):
    """Mini-batch training with cross-entropy; returns a ``History``.

        for each epoch:                                   # a fresh seeded permutation of the training set
            for each batch:
                loss = cross_entropy(model(augment(x_batch)), y_batch)
                loss.backward(); optimizer.step()
                scheduler.step()                          # if scheduler_interval == "step"
                for hook in on_step: hook(model, step)    # e.g. a weight average, a snapshot
            scheduler.step()                              # if scheduler_interval == "epoch"
            test loss and accuracy, train accuracy        # every ``evaluate_every`` epochs (None: never)

    ``augment(inputs, generator)`` (optional) returns a randomly changed copy of a training batch, drawing its
    randomness from ``generator`` so that a seeded run repeats. ``on_step`` is a callable ``hook(model, step)``
    or a sequence of them, called after every optimizer step with the number of steps taken (1, 2, ...).
    ``progress`` is a label for a tqdm progress bar, or None for no bar, or a bar already shown (``train_each``'s
    one bar for all its runs), which the run advances by one per epoch and leaves open. A run whose loss stops
    being finite ends at once and records ``diverged_at``.
    """
    require(scheduler_interval in ("epoch", "step"), "scheduler_interval", "'epoch' or 'step'",
            scheduler_interval)
    require(evaluate_every is None or is_integer(evaluate_every, 1), "evaluate_every", "None or an integer >= 1",
            evaluate_every)
    hooks = [on_step] if callable(on_step) else list(on_step)
    history = History()
    generator = torch.Generator().manual_seed(seed)
    shared = isinstance(progress, tqdm)
    bar = progress if shared else tqdm(total=epochs, desc=progress, leave=True) if progress else None
    with single_thread():
        for epoch in range(1, epochs + 1):
            _train_epoch(model, optimizer, dataset, batch_size, generator, history,
                         scheduler if scheduler_interval == "step" else None, augment, hooks)
            if history.diverged_at is not None:
                break
            if scheduler is not None and scheduler_interval == "epoch":
                scheduler.step()
            if evaluate_every is not None and (epoch % evaluate_every == 0 or epoch == epochs):
                _evaluate_epoch(model, dataset, history)
            if bar is not None:
                scores = {"test_acc": f"{history.test_accuracy[-1]:.2f}"} if history.test_accuracy else {}
                bar.set_postfix(loss=f"{history.step_loss[-1]:.3f}", **scores, refresh=False)
                bar.update()
    if bar is not None and not shared:
        bar.close()
    release_freed_memory()
    return history


@functools.cache
def _malloc_trim():
    """glibc's malloc_trim, or None where the C library is another (macOS, Windows, musl)."""
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def release_freed_memory():
    """Give the operating system back the memory that torch and numpy freed but the C library kept.

    A training run allocates and frees thousands of blocks of up to a few MB; glibc's allocator keeps the freed
    ones in its heap for reuse, and a long-lived small object between them stops it from shrinking the heap: a
    notebook kernel then holds ~10 MB more after every run than the run's results need (measured in notebook
    07). ``malloc_trim`` returns the free pages at once (a millisecond). ``train`` calls this at its end; it does
    nothing where the C library is not glibc.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _train_epoch(model, optimizer, dataset, batch_size, generator, history, step_scheduler, augment, hooks):
    """One pass over a fresh permutation of the training set; stops at a loss that is not finite."""
    for batch in torch.randperm(len(dataset.y_train), generator=generator).split(batch_size):
        inputs = dataset.x_train[batch]
        if augment is not None:
            inputs = augment(inputs, generator)
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(inputs), dataset.y_train[batch])
        if not torch.isfinite(loss):
            history.diverged_at = len(history.step_loss) + 1
            return
        loss.backward()
        optimizer.step()
        history.step_loss.append(loss.item())
        history.learning_rate.append(optimizer.param_groups[0]["lr"])
        if step_scheduler is not None:
            step_scheduler.step()
        for hook in hooks:
            hook(model, len(history.step_loss))


def _evaluate_epoch(model, dataset, history):
    test_loss, test_accuracy = evaluate(model, dataset.x_test, dataset.y_test)
    history.test_loss.append(test_loss)
    history.test_accuracy.append(test_accuracy)
    history.train_accuracy.append(evaluate(model, dataset.x_train, dataset.y_train)[1])


def train_each(make_optimizer, runners, dataset, make_model, epochs=10, batch_size=128, seed=0, evaluate_every=1):
    """Train one fresh copy of the same model per runner and return label -> History.

        histories = train_each(optim.RuleOptimizer, {"adam": {"rule": optim.adam, "learning_rate": 1e-3},
                                                     "sgd": {"rule": optim.sgd, "learning_rate": 0.1}},
                               data.mnist1d(), make_model=lambda seed: mlp([40, 128, 10], seed=seed))

    ``runners``: label -> arguments for ``make_optimizer(parameters, **arguments)``; every runner starts from
    the same initial weights (``make_model(seed)``) and sees the same batches. ``evaluate_every`` as in ``train``
    (None: never; ``epochs``: once, at the end). One progress bar counts the epochs of all the runs and names
    the run in training (a bar per run cost a notebook of 19 runs ~0.2 s of CPU in widget messages).
    """
    histories = {}
    with tqdm(total=len(runners) * epochs, leave=True) as bar:
        for label, arguments in runners.items():
            bar.set_description(label, refresh=False)
            model = make_model(seed)
            optimizer = make_optimizer(model.parameters(), **arguments)
            histories[label] = train(model, optimizer, dataset, epochs, batch_size, seed=seed, progress=bar,
                                     evaluate_every=evaluate_every)
    return histories
