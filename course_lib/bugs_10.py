"""The likely bugs in notebook 10's exercise (freeze the pretrained body, replace the head), written out.

``LIKELY_BUGS["freeze_body_and_replace_head"]`` lists ``(wrong implementation, what to tell the learner)``;
each variant has the exercise's signature, ``(model, num_classes, seed) -> (new_model, trainable_parameters)``,
like the reference ``course_lib.transfer.freeze_body_and_replace_head``.

A model is not an array, so ``observed(function, ...)`` turns what such a function returns into the float
arrays a check compares: which parameters require gradients, which ones the optimizer gets, which parts are in
training mode, the new head's initial weights, and the model after a few Adam steps on a batch (its body's
weights and batch-norm statistics, its head, its outputs). Every variant differs from the reference there.
"""

from copy import deepcopy

import numpy as np
import torch
from torch import nn

from .transfer import freeze_body_and_replace_head

__all__ = ["LIKELY_BUGS", "observed"]


def observed(function, model, num_classes, seed, inputs, labels, steps=3, learning_rate=1e-2):
    """What ``function(deepcopy(model), num_classes, seed)`` does, as a dict of float arrays.

    After the call, the returned model is trained for ``steps`` Adam steps (``learning_rate``) on ``inputs``,
    ``labels`` with the returned parameters, the way course_lib.training.train does it (without calling
    ``model.train()``, which would put a frozen body back in training mode).
    """
    original = deepcopy(model)
    new_model, trainable = function(deepcopy(model), num_classes, seed)
    trainable = list(trainable)
    parameters = list(new_model.parameters())
    ids = {id(p) for p in parameters}
    result = {
        "requires_grad": np.array([p.requires_grad for p in parameters], dtype=float),
        "given_to_optimizer": np.array([any(p is q for q in trainable) for p in parameters], dtype=float),
        "foreign_parameters": np.array([sum(id(q) not in ids for q in trainable)], dtype=float),
        "training_mode": np.array([m.training for m in new_model.modules()], dtype=float),
        "head_at_start": _flat(new_model.head.parameters()),
    }
    learning = [p for p in trainable if p.requires_grad]
    optimizer = torch.optim.Adam(learning, lr=learning_rate) if learning else None
    for _ in range(steps if learning else 0):  # nothing can learn: no step
        optimizer.zero_grad()
        nn.functional.cross_entropy(new_model(inputs), labels).backward()
        optimizer.step()
    with torch.no_grad():
        result["body_after"] = _flat(new_model.body.state_dict().values())
        result["head_after"] = _flat(new_model.head.parameters())
        result["outputs_after"] = new_model(inputs).numpy().astype(float)
        result["original_unchanged"] = np.array([all(torch.equal(a, b) for a, b in zip(
            original.state_dict().values(), model.state_dict().values(), strict=True))], dtype=float)
    return result


def _flat(tensors):
    return np.concatenate([t.detach().reshape(-1).double().numpy() for t in tensors
                           if t.dtype.is_floating_point])


def _new_head(model, num_classes, seed):
    torch.manual_seed(seed)
    model.head = nn.Linear(model.head.in_features, num_classes)


def _head_not_reinitialised(model, num_classes, seed):
    for parameter in model.body.parameters():
        parameter.requires_grad_(False)
    model.body.eval()
    if model.head.out_features != num_classes:
        _new_head(model, num_classes, seed)
    return model, list(model.head.parameters())


def _body_still_trainable(model, num_classes, seed):
    model.body.eval()
    _new_head(model, num_classes, seed)
    return model, list(model.head.parameters())


def _optimizer_given_everything(model, num_classes, seed):
    model, _ = freeze_body_and_replace_head(model, num_classes, seed)
    return model, list(model.parameters())


def _body_trainable_and_given_to_optimizer(model, num_classes, seed):
    model.body.eval()
    _new_head(model, num_classes, seed)
    return model, list(model.parameters())


def _batch_norm_statistics_still_updating(model, num_classes, seed):
    for parameter in model.body.parameters():
        parameter.requires_grad_(False)
    _new_head(model, num_classes, seed)
    return model.train(), list(model.head.parameters())


def _head_frozen_too(model, num_classes, seed):
    model, trainable = freeze_body_and_replace_head(model, num_classes, seed)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model, trainable


def _head_not_seeded(model, num_classes, seed):
    model, _ = freeze_body_and_replace_head(model, num_classes, seed)
    model.head = nn.Linear(model.head.in_features, num_classes)  # drawn from wherever the generator was
    return model, list(model.head.parameters())


LIKELY_BUGS = {
    "freeze_body_and_replace_head": [
        (_head_not_reinitialised,
         "the head still has the pretrained weights: the new task has new classes, so replace the head with a "
         "new nn.Linear(model.head.in_features, num_classes), created right after torch.manual_seed(seed)"),
        (_body_still_trainable,
         "the body's parameters still require gradients: set requires_grad_(False) on every parameter of "
         "model.body (otherwise every step computes gradients for them, and any optimizer given them moves them)"),
        (_optimizer_given_everything,
         "you return every parameter of the model for the optimizer: return only the new head's parameters "
         "(list(model.head.parameters())); the frozen ones have no business in the optimizer"),
        (_body_trainable_and_given_to_optimizer,
         "the body is not frozen: its parameters require gradients AND go to the optimizer, so training moves "
         "them; freeze them (requires_grad_(False)) and return only the head's parameters"),
        (_batch_norm_statistics_still_updating,
         "the body is in training mode: its batch-norm layers keep updating their running averages with the "
         "new data (and normalise with batch statistics) although its weights are frozen; put model.body in "
         "eval mode (model.body.eval())"),
        (_head_frozen_too,
         "the new head's parameters do not require gradients either: freeze the body only, the head must "
         "train"),
        (_head_not_seeded,
         "your new head's initial weights are not the ones torch.manual_seed(seed) gives: call "
         "torch.manual_seed(seed) right before creating the nn.Linear"),
    ],
}
