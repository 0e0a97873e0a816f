"""The likely bugs in notebook 06's exercises, written out so that a check can recognise them in an answer.

``LIKELY_BUGS[name]`` lists (wrong implementation, what to tell the learner) for the exercise ``name``; each
variant has the exercise's signature. ``REFERENCES[name]`` is the right answer, built from course_lib:

- ``ema_update(average_model, model, decay)`` -> a NEW model: the average's parameters moved towards the
  trained model's, ``decay * average + (1 - decay) * weights``, its buffers (batch norm's running statistics)
  copied from the trained model; neither argument is changed.
- ``ensemble_predict(models, inputs)`` -> the mean over the models of softmax(model(inputs)) along the classes,
  each model in evaluation mode: a (examples, classes) tensor of probabilities.

Two variants of ``ema_update`` return the right numbers but change an argument in place; a check must compare
the arguments before and after the call as well as the result. ``_forgets_eval`` differs from the reference
only for models whose training mode differs (dropout, batch norm): check with such models.
"""

import copy

import torch

from .averaging import exponential_update
from .ensembles import average_probabilities, member_logits

__all__ = ["LIKELY_BUGS", "REFERENCES"]


# ---- Exercise 6.1: the EMA update of a model's weights -------------------------------------------------------
def ema_update_reference(average_model, model, decay):
    new_average = copy.deepcopy(average_model)
    with torch.no_grad():
        for average, weights in zip(new_average.parameters(), model.parameters(), strict=True):
            average.copy_(exponential_update(average, weights, decay))
        for kept, live in zip(new_average.buffers(), model.buffers(), strict=True):
            kept.copy_(live)
    return new_average


def _ema_variant(combine=None, buffers="copy"):
    """An EMA update on a copy, with ``combine(average, weights, decay, parameter)`` for the parameters and the
    buffers copied ("copy"), averaged like the weights ("average") or left as they were ("stale")."""
    combine = combine or (lambda average, weights, decay, parameter: decay * average + (1 - decay) * weights)

    def variant(average_model, model, decay):
        new_average = copy.deepcopy(average_model)
        with torch.no_grad():
            for average, parameter in zip(new_average.parameters(), model.parameters(), strict=True):
                average.copy_(combine(average, parameter.detach(), decay, parameter))
            for kept, live in zip(new_average.buffers(), model.buffers(), strict=True):
                if buffers == "average" and kept.is_floating_point():
                    kept.copy_(decay * kept + (1 - decay) * live)
                elif buffers != "stale":
                    kept.copy_(live)
        return new_average

    return variant


def _ema_in_place_on_the_average(average_model, model, decay):
    with torch.no_grad():
        for average, weights in zip(average_model.parameters(), model.parameters(), strict=True):
            average.mul_(decay).add_((1 - decay) * weights)
        for kept, live in zip(average_model.buffers(), model.buffers(), strict=True):
            kept.copy_(live)
    return average_model


def _ema_in_place_on_the_model(average_model, model, decay):
    new_average = copy.deepcopy(average_model)
    with torch.no_grad():
        for average, weights in zip(new_average.parameters(), model.parameters(), strict=True):
            weights.mul_(1 - decay).add_(decay * average)  # the trained model's own weights overwritten
            average.copy_(weights)
        for kept, live in zip(new_average.buffers(), model.buffers(), strict=True):
            kept.copy_(live)
    return new_average


# ---- Exercise 6.2: the ensemble's prediction ---------------------------------------------------------------
def ensemble_predict_reference(models, inputs):
    return average_probabilities(member_logits(models, inputs))


def _all_logits(models, inputs, evaluation=True):
    outputs = []
    with torch.no_grad():
        for model in models:
            if evaluation:
                model.eval()
            outputs.append(model(inputs))
    return torch.stack(outputs)


def _averages_logits(models, inputs):
    return torch.softmax(_all_logits(models, inputs).mean(0), dim=-1)


def _returns_mean_logits(models, inputs):
    return _all_logits(models, inputs).mean(0)


def _averages_votes(models, inputs):
    logits = _all_logits(models, inputs)
    return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).double().mean(0)


def _forgets_eval(models, inputs):
    return torch.softmax(_all_logits(models, inputs, evaluation=False), dim=-1).mean(0)


def _softmax_over_examples(models, inputs):
    return torch.softmax(_all_logits(models, inputs), dim=1).mean(0)


def _sums_probabilities(models, inputs):
    return torch.softmax(_all_logits(models, inputs), dim=-1).sum(0)


REFERENCES = {"ema_update": ema_update_reference, "ensemble_predict": ensemble_predict_reference}

LIKELY_BUGS = {
    "ema_update": [
        (_ema_variant(lambda average, weights, decay, _: decay * weights + (1 - decay) * average),
         "the old and new weights are swapped: x_test = decay * x_test + (1 - decay) * x keeps the weight `decay` "
         "on the average (the memory) and gives only 1 - decay to the current weights."),
        (_ema_variant(lambda average, weights, decay, parameter: decay * average + (1 - decay) * parameter.grad),
         "you averaged the gradients (parameter.grad), as momentum does: the moving average is of the weights "
         "themselves, x_test = decay * x_test + (1 - decay) * x."),
        (_ema_variant(lambda average, weights, decay, _: decay * average + weights),
         "the (1 - decay) factor on the current weights is missing: decay * x_test + x grows the weights by about "
         "1 / (1 - decay). Use decay * x_test + (1 - decay) * x, a weighted average."),
        (_ema_variant(buffers="average"),
         "you averaged batch norm's buffers (running_mean, running_var) like the weights: they are running "
         "averages already, of the trained model's activations. Copy them from the trained model "
         "(model.buffers()), as torch's AveragedModel does."),
        (_ema_variant(buffers="stale"),
         "the buffers (batch norm's running_mean and running_var) are the old average's: copy them from the "
         "trained model, whose weights produced the statistics the next steps will keep updating."),
        (_ema_in_place_on_the_average,
         "the result is right, but you changed average_model in place and returned it: the caller's previous "
         "average changed too. Work on a copy (copy.deepcopy(average_model)) and return that."),
        (_ema_in_place_on_the_model,
         "the result is right, but you changed the trained model's weights in place (weights.mul_ ... ): training "
         "would continue from the averaged weights. Write only into your copy of the average."),
    ],
    "ensemble_predict": [
        (_averages_logits,
         "you averaged the logits and took one softmax: that is a product of the members' distributions, where a "
         "confident member outvotes the others. Average the probabilities: the mean of softmax(model(inputs))."),
        (_returns_mean_logits,
         "you returned the mean of the logits: the ensemble's prediction is a probability for each class (rows "
         "summing to 1), the mean of each model's softmax."),
        (_averages_votes,
         "you averaged the members' votes (their argmaxes): that throws away how sure each member is. Average "
         "their predicted probabilities, softmax(model(inputs)), instead."),
        (_forgets_eval,
         "the models ran in training mode: dropout still dropped units (and batch norm used the batch's "
         "statistics). Call model.eval() on each model before predicting."),
        (_softmax_over_examples,
         "the softmax runs over the examples (dim=0 of a model's output): take it over the classes, dim=-1."),
        (_sums_probabilities,
         "you summed the members' probabilities: divide by the number of models (the mean), so that each row "
         "sums to 1."),
    ],
}
