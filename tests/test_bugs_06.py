"""Notebook 06's likely bugs: each variant differs from the reference on typical inputs (in its result, or in
what it does to its arguments), and the references match the library."""

import copy

import numpy as np
import pytest
import torch
from torch import nn

from course_lib import averaging, bugs_06, ensembles
from course_lib.bugs_06 import LIKELY_BUGS, REFERENCES


def batch_norm_model(seed):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 3))


def trained_pair(seed=0):
    """An average and a model a few SGD steps apart, with gradients and batch norm statistics set."""
    model = batch_norm_model(seed)
    average = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(3):
        optimizer.zero_grad()
        inputs = torch.randn(16, 5, generator=generator)
        nn.functional.cross_entropy(model(inputs), torch.randint(0, 3, (16,), generator=generator)).backward()
        optimizer.step()
    return average, model


def state(model):
    return {name: value.detach().double().clone() for name, value in model.state_dict().items()}


def differs(first, second):
    return any(not torch.allclose(first[name], second[name], rtol=1e-6, atol=1e-8) for name in first)


def run_ema(function, decay=0.9):
    average, model = trained_pair()
    result = function(average, model, decay)
    return state(result), state(average), state(model)


def test_the_ema_reference_is_the_library_hook():
    average, model = trained_pair()
    hook = averaging.ExponentialAverage(average, 0.9)
    hook.update(model)
    result = REFERENCES["ema_update"](average, model, 0.9)
    for mine, theirs in zip(result.state_dict().values(), hook.model.state_dict().values(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("variant, explanation", LIKELY_BUGS["ema_update"],
                         ids=[variant.__name__ for variant, _ in LIKELY_BUGS["ema_update"]])
def test_each_ema_bug_differs_from_the_reference(variant, explanation):
    expected, average_before, model_before = run_ema(REFERENCES["ema_update"])
    result, average_after, model_after = run_ema(variant)
    changed_an_argument = differs(average_before, average_after) or differs(model_before, model_after)
    assert differs(expected, result) or changed_an_argument
    assert len(explanation) > 40


def test_the_ema_reference_leaves_its_arguments_alone():
    average, model = trained_pair()
    before = state(average), state(model)
    REFERENCES["ema_update"](average, model, 0.9)
    assert not differs(before[0], state(average)) and not differs(before[1], state(model))


def members(count=3):
    models = []
    for seed in range(count):
        torch.manual_seed(seed)
        models.append(nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 4)))
    return models


def test_the_ensemble_reference_is_the_library_and_a_distribution():
    models, inputs = members(), torch.randn(30, 5, generator=torch.Generator().manual_seed(1))
    probabilities = REFERENCES["ensemble_predict"](models, inputs)
    np.testing.assert_allclose(probabilities.sum(1).numpy(), 1.0, rtol=1e-6)
    expected = torch.stack([torch.softmax(model.eval()(inputs), -1) for model in models]).mean(0)
    torch.testing.assert_close(probabilities, expected.detach())
    assert ensembles.average_probabilities is bugs_06.average_probabilities


@pytest.mark.parametrize("variant, explanation", LIKELY_BUGS["ensemble_predict"],
                         ids=[variant.__name__ for variant, _ in LIKELY_BUGS["ensemble_predict"]])
def test_each_ensemble_bug_differs_from_the_reference(variant, explanation):
    inputs = torch.randn(30, 5, generator=torch.Generator().manual_seed(1))
    models = members()
    for model in models:
        model.train()  # as a model is left after training: the eval() bug must show
    torch.manual_seed(0)
    expected = REFERENCES["ensemble_predict"](copy.deepcopy(models), inputs)
    torch.manual_seed(0)
    result = torch.as_tensor(variant(copy.deepcopy(models), inputs)).detach()
    assert result.shape != expected.shape or not torch.allclose(result.double(), expected.double(), atol=1e-6)
    assert len(explanation) > 40
