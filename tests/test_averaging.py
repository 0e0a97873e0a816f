"""Weight averages against torch.optim.swa_utils.AveragedModel (float64), the closed forms, and their contract."""

import math

import numpy as np
import pytest
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from course_lib import averaging, data, training
from course_lib.averaging import ExponentialAverage, LossCurves, UniformAverage, exponential_update, uniform_update


def batch_norm_model(seed=0):
    """A float64 network with batch norm, so that buffers (running mean/variance, batch count) exist."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3)).double()


def train_beside(ours, reference, model, steps=40, seed=0):
    """SGD+momentum on random data; after every step update both averages. Returns the trained model."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(64, 6, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, 3, (64,), generator=generator)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with training.single_thread():
        for _ in range(steps):
            batch = torch.randint(0, 64, (16,), generator=generator)
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(inputs[batch]), labels[batch]).backward()
            optimizer.step()
            ours(model, None)
            reference.update_parameters(model)
    return model


def assert_same_average(ours, reference, live):
    for mine, theirs in zip(ours.model.parameters(), reference.module.parameters(), strict=True):
        np.testing.assert_allclose(mine.numpy(), theirs.detach().numpy(), rtol=1e-12, atol=1e-14)
    buffers = zip(ours.model.buffers(), reference.module.buffers(), live.buffers(), strict=True)
    for mine, theirs, trained in buffers:
        assert torch.equal(mine, theirs) and torch.equal(mine, trained)  # copied from the trained model
    probe = torch.linspace(-2, 2, 5 * 6, dtype=torch.float64).reshape(5, 6)
    reference.eval()
    np.testing.assert_allclose(ours.model(probe).numpy(), reference(probe).detach().numpy(), rtol=1e-12,
                               atol=1e-13)


def ema_pair(decay):
    model = batch_norm_model()
    reference = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))
    reference.update_parameters(model)  # the first call copies: x_test = x_0, as ours starts
    return ExponentialAverage(model, decay), reference, model


@pytest.mark.parametrize("decay", [0.0, 0.5, 0.9, 0.995])
def test_exponential_average_matches_averaged_model_with_ema(decay):
    ours, reference, model = ema_pair(decay)
    assert_same_average(ours, reference, train_beside(ours, reference, model))


def test_uniform_average_matches_averaged_model_default():
    model = batch_norm_model()
    reference = AveragedModel(model)
    reference.update_parameters(model)
    ours = UniformAverage(model)
    assert_same_average(ours, reference, train_beside(ours, reference, model))
    assert ours.count == int(reference.n_averaged) == 41


def test_the_comparison_fails_on_a_swapped_update(monkeypatch):
    """The test above can fail: with old and new weights swapped, the averages differ from AveragedModel's."""
    monkeypatch.setattr(averaging, "exponential_update", lambda average, weights, decay: decay * weights
                        + (1 - decay) * average)
    ours, reference, model = ema_pair(0.9)
    with pytest.raises(AssertionError):
        assert_same_average(ours, reference, train_beside(ours, reference, model))


class AveragesTheBuffersToo(ExponentialAverage):
    """A wrong implementation: batch norm's running statistics averaged like the weights."""

    def update(self, model):
        before = [buffer.clone() for buffer in self._model.buffers()]
        super().update(model)
        with torch.no_grad():
            for kept, old in zip(self._model.buffers(), before, strict=True):
                if kept.is_floating_point():
                    kept.copy_(exponential_update(old, kept, self.decay))


def test_the_comparison_fails_when_buffers_are_averaged():
    model = batch_norm_model()
    reference = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9))
    reference.update_parameters(model)
    wrong = AveragesTheBuffersToo(model, 0.9)
    with pytest.raises(AssertionError):
        assert_same_average(wrong, reference, train_beside(wrong, reference, model))


def test_exponential_update_is_the_closed_form_on_numpy_arrays():
    rng = np.random.default_rng(0)
    iterates = rng.normal(size=(30, 4, 3))
    decay = 0.8
    average = iterates[0]
    for weights in iterates[1:]:
        average = exponential_update(average, weights, decay)
    t = len(iterates) - 1
    closed = decay**t * iterates[0] + (1 - decay) * sum(decay ** (t - k) * iterates[k] for k in range(1, t + 1))
    assert isinstance(average, np.ndarray)
    np.testing.assert_allclose(average, closed, rtol=1e-13)


def test_uniform_update_is_the_mean_on_numpy_arrays():
    iterates = np.random.default_rng(1).normal(size=(25, 7))
    average = iterates[0]
    for count, weights in enumerate(iterates[1:], start=1):
        average = uniform_update(average, weights, count)
    np.testing.assert_allclose(average, iterates.mean(axis=0), rtol=1e-13)


def test_the_updates_return_new_arrays_and_keep_their_inputs():
    for backend in (np.array, torch.tensor):
        average, weights = backend([1.0, 2.0]), backend([3.0, 5.0])
        for result in (exponential_update(average, weights, 0.5), uniform_update(average, weights, 1)):
            assert type(result) is type(average) and result is not average
            assert average.tolist() == [1.0, 2.0] and weights.tolist() == [3.0, 5.0]
            assert result.tolist() == [2.0, 3.5]


def test_the_hook_leaves_the_trained_model_alone():
    model = batch_norm_model()
    before = [p.detach().clone() for p in model.parameters()]
    average = ExponentialAverage(model, 0.9)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    average(model, 1)
    for p, old in zip(model.parameters(), before, strict=True):
        torch.testing.assert_close(p.detach(), old + 1.0, rtol=0, atol=0)
    for p, old in zip(average.model.parameters(), before, strict=True):
        torch.testing.assert_close(p, old + 0.1, rtol=1e-12, atol=1e-12)
    assert not any(p.requires_grad for p in average.model.parameters()) and not average.model.training


@pytest.mark.parametrize("decay", [-0.1, 1.0, 1.5, math.nan, math.inf, "0.9", True, None])
def test_the_decay_must_be_in_the_unit_interval(decay):
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\)"):
        exponential_update(np.zeros(2), np.ones(2), decay)
    with pytest.raises(ValueError, match="decay"):
        ExponentialAverage(batch_norm_model(), decay)


@pytest.mark.parametrize("call, name", [
    (lambda: exponential_update(np.zeros(2), np.ones(3), 0.5), "weights"),
    (lambda: uniform_update(np.zeros(2), np.ones(2), 0), "count"),
    (lambda: uniform_update(np.zeros(2), np.ones(2), 1.5), "count"),
    (lambda: LossCurves({}, None, None, every=0), "every"),
])
def test_bad_arguments_name_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_loss_curves_evaluate_the_averages_as_they_are_at_each_checkpoint():
    dataset = data.mnist1d()
    model = training.mlp([40, 16, 10], seed=0)
    average = ExponentialAverage(model, 0.9)
    seen = []
    curves = LossCurves({"raw": model, "ema": average}, dataset.x_test, dataset.y_test, every=10)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    def remember(model, step):
        if step % 10 == 0:
            seen.append(training.evaluate(average.model, dataset.x_test, dataset.y_test))

    training.train(model, optimizer, dataset, epochs=1, on_step=[average, remember, curves], evaluate_every=None)
    assert curves.steps == [0, 10, 20, 30]
    assert curves.losses["ema"][1:] == [loss for loss, _ in seen]
    assert curves.losses["ema"][0] == curves.losses["raw"][0]  # x_test starts at x_0
