"""course_lib.batch_norm against torch.nn.BatchNorm1d in float64 and against finite differences.

The parity helper returns the largest difference over several training steps and then eval mode; the tests at
the bottom feed it known-wrong implementations (the likely bugs of course_lib.bugs) to show that it catches them.
"""

import numpy as np
import pytest
import torch
from torch import nn

from course_lib import batch_norm as bn
from course_lib import data
from course_lib.bugs import LIKELY_BUGS

FORWARD_BUGS, BACKWARD_BUGS = LIKELY_BUGS["batchnorm_forward"], LIKELY_BUGS["batchnorm_backward"]

FEATURES, BATCH, STEPS = 6, 12, 4
TOLERANCE = 1e-14  # measured: 2.2e-15 on this machine


def batches(seed=0, steps=STEPS):
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = 3 * torch.randn(BATCH, FEATURES, generator=generator, dtype=torch.float64) + 2
        dout = torch.randn(BATCH, FEATURES, generator=generator, dtype=torch.float64)
        yield x, dout


def largest_difference_from_torch(forward=bn.batchnorm_forward, backward=bn.batchnorm_backward, momentum=0.1,
                                  epsilon=1e-5):
    """Run nn.BatchNorm1d and ``forward``/``backward`` (numpy, on copies) through STEPS training steps and one
    eval batch; return the largest difference of out, dx, dgamma, dbeta, running mean and running variance."""
    reference = nn.BatchNorm1d(FEATURES, eps=epsilon, momentum=momentum).double()
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        reference.weight.copy_(torch.rand(FEATURES, generator=generator, dtype=torch.float64) + 0.5)
        reference.bias.copy_(torch.randn(FEATURES, generator=generator, dtype=torch.float64))
    gamma, beta = reference.weight.detach().numpy().copy(), reference.bias.detach().numpy().copy()
    running_mean, running_var = np.zeros(FEATURES), np.ones(FEATURES)
    worst = 0.0
    for x, dout in batches():
        x = x.requires_grad_()
        reference.weight.grad = reference.bias.grad = None
        out = reference(x)
        out.backward(dout)
        ours, running_mean, running_var = forward(x.detach().numpy().copy(), gamma, beta, running_mean,
                                                  running_var, momentum, epsilon, True)
        dx, dgamma, dbeta = backward(dout.numpy().copy(), x.detach().numpy().copy(), gamma, epsilon)
        pairs = [(out, ours), (x.grad, dx), (reference.weight.grad, dgamma), (reference.bias.grad, dbeta),
                 (reference.running_mean, running_mean), (reference.running_var, running_var)]
        worst = max(worst, *(difference(a.detach().numpy(), b) for a, b in pairs))
    reference.eval()
    x = next(batches(seed=7, steps=1))[0]
    ours, new_mean, new_var = forward(x.numpy().copy(), gamma, beta, running_mean, running_var, momentum, epsilon,
                                      False)
    worst = max(worst, difference(reference(x).detach().numpy(), ours), difference(new_mean, running_mean),
                difference(new_var, running_var))
    return worst


def difference(expected, actual):
    """The largest absolute difference; infinite when the shapes differ."""
    actual = np.asarray(actual, dtype=float)
    return np.inf if actual.shape != expected.shape else float(np.abs(expected - actual).max())


@pytest.mark.parametrize("momentum, epsilon", [(0.1, 1e-5), (0.5, 1e-3), (1.0, 0.1), (0.0, 1e-5)])
def test_forward_and_backward_match_torch_batchnorm1d_in_float64(momentum, epsilon):
    assert largest_difference_from_torch(momentum=momentum, epsilon=epsilon) <= TOLERANCE


def test_torch_stores_the_unbiased_variance_the_trap():
    """Normalising with the biased variance and storing it too is off by var/(N-1) * momentum after one step."""
    assert largest_difference_from_torch() <= TOLERANCE
    biased = next(variant for variant, explanation in FORWARD_BUGS if "stores the biased" in explanation)
    assert largest_difference_from_torch(forward=biased) > 1e-3


def catches(**functions):
    """True if the comparison with torch fails for these functions: a difference, or an exception."""
    try:
        return largest_difference_from_torch(**functions) > 1e-9
    except ValueError:  # a sum over the wrong axis that cannot broadcast
        return True


@pytest.mark.parametrize("variant", [variant for variant, _ in FORWARD_BUGS],
                         ids=[f"forward-{i}" for i in range(len(FORWARD_BUGS))])
def test_the_torch_comparison_catches_every_wrong_forward(variant):
    assert catches(forward=variant)


@pytest.mark.parametrize("variant", [variant for variant, _ in BACKWARD_BUGS],
                         ids=[f"backward-{i}" for i in range(len(BACKWARD_BUGS))])
def test_the_torch_comparison_catches_every_wrong_backward(variant):
    assert catches(backward=variant)


def loss(x, gamma, beta, weights, epsilon):
    out, _, _ = bn.batchnorm_forward(x, gamma, beta, np.zeros(x.shape[1]), np.ones(x.shape[1]), 0.1, epsilon, True)
    return float((out * weights).sum())


def finite_differences(x, gamma, beta, weights, epsilon, h=1e-6):
    """Central differences of loss = sum(out * weights) with respect to x, gamma and beta."""
    gradients = []
    for which, array in enumerate((x, gamma, beta)):
        gradient = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            shifted = [x.copy(), gamma.copy(), beta.copy()]
            shifted[which][index] += h
            up = loss(*shifted, weights, epsilon)
            shifted[which][index] -= 2 * h
            gradient[index] = (up - loss(*shifted, weights, epsilon)) / (2 * h)
        gradients.append(gradient)
    return gradients


@pytest.mark.parametrize("epsilon", [1e-5, 0.5])
def test_backward_matches_finite_differences(epsilon):
    rng = np.random.default_rng(3)
    x, weights = rng.normal(1, 2, (5, 4)), rng.normal(size=(5, 4))
    gamma, beta = rng.uniform(0.5, 2, 4), rng.normal(size=4)
    numeric = finite_differences(x, gamma, beta, weights, epsilon)
    analytic = bn.batchnorm_backward(weights, x, gamma, epsilon)
    for a, b in zip(analytic, numeric, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-8)
    # and the check can fail: a backward that treats the batch statistics as constants is far off
    wrong = BACKWARD_BUGS[0][0](weights, x, gamma, epsilon)
    assert np.abs(wrong[0] - numeric[0]).max() > 1e-2


def test_numpy_and_torch_agree_and_inputs_are_not_modified():
    rng = np.random.default_rng(0)
    arrays = [rng.normal(size=(8, 3)), rng.uniform(0.5, 2, 3), rng.normal(size=3), rng.normal(size=3),
              rng.uniform(0.5, 2, 3)]
    copies = [a.copy() for a in arrays]
    for training in (True, False):
        from_numpy = bn.batchnorm_forward(*arrays, 0.2, 1e-5, training)
        from_torch = bn.batchnorm_forward(*map(torch.from_numpy, arrays), 0.2, 1e-5, training)
        for a, b in zip(from_numpy, from_torch, strict=True):
            assert isinstance(a, np.ndarray) and isinstance(b, torch.Tensor)
            np.testing.assert_allclose(a, b.numpy(), rtol=1e-13)
    for array, copy in zip(arrays, copies, strict=True):
        np.testing.assert_array_equal(array, copy)
    _, new_mean, new_var = bn.batchnorm_forward(*arrays, 0.2, 1e-5, False)
    assert new_mean is not arrays[3] and new_var is not arrays[4]  # new arrays, even when unchanged


def test_test_mode_treats_every_example_alone():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 3))
    args = (np.ones(3), np.zeros(3), rng.normal(size=3), rng.uniform(0.5, 2, 3), 0.1, 1e-5, False)
    together = bn.batchnorm_forward(x, *args)[0]
    alone = np.vstack([bn.batchnorm_forward(x[i:i + 1], *args)[0] for i in range(10)])
    np.testing.assert_allclose(together, alone, rtol=1e-14)
    assert np.abs(bn.batchnorm_forward(x, *args[:-1], True)[0] - together).max() > 0.1


@pytest.mark.parametrize("change, message", [
    ({"x": np.zeros((1, 3))}, "x must be an array of shape (N, D) with N >= 2"),
    ({"x": np.zeros(3)}, "x must be"),
    ({"gamma": np.ones(4)}, "gamma must be an array of shape (3,)"),
    ({"running_var": np.ones((3, 1))}, "running_var must be"),
    ({"momentum": 1.5}, "momentum must be a real number in [0, 1]"),
    ({"epsilon": -1.0}, "epsilon must be a real number >= 0"),
    ({"training": "yes"}, "training must be True or False"),
])
def test_bad_arguments_are_named(change, message):
    args = {"x": np.zeros((4, 3)), "gamma": np.ones(3), "beta": np.zeros(3), "running_mean": np.zeros(3),
            "running_var": np.ones(3), "momentum": 0.1, "epsilon": 1e-5, "training": True}
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        bn.batchnorm_forward(**{**args, **change})
    with pytest.raises(ValueError, match="dout must be"):
        bn.batchnorm_backward(np.zeros((4, 2)), np.zeros((4, 3)), np.ones(3))


def torch_mlp(sizes, seed):
    """The same network as bn.mlp(sizes, seed), with torch's own BatchNorm1d."""
    torch.manual_seed(seed)
    layers = []
    for index, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=False)):
        layers.append(nn.Linear(fan_in, fan_out))
        if index < len(sizes) - 2:
            layers += [nn.BatchNorm1d(fan_out), nn.ReLU()]
    return nn.Sequential(*layers)


def trained(model, steps=6):
    """``model`` after ``steps`` SGD steps on random float64 batches, and its eval-mode output on a new batch."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    generator = torch.Generator().manual_seed(0)
    for _ in range(steps):
        x = torch.randn(10, 5, generator=generator, dtype=torch.float64)
        y = torch.randint(0, 3, (10,), generator=generator)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    model.eval()
    output = model(torch.randn(7, 5, generator=generator, dtype=torch.float64)).detach().numpy()
    return [t.numpy() for t in model.state_dict().values() if t.dtype.is_floating_point], output


def test_the_layer_trains_a_network_exactly_as_torch_batchnorm1d():
    sizes = [5, 16, 16, 3]
    (ours, our_output), (theirs, their_output) = (trained(bn.mlp(sizes, seed=2).double()),
                                                  trained(torch_mlp(sizes, seed=2).double()))
    assert len(ours) == len(theirs) == 14  # 3 linear layers' weights and biases, 2 x 4 batch-norm tensors
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-12)
    np.testing.assert_allclose(our_output, their_output, atol=1e-12)
    # the layer really uses the functions it is given: a wrong backward trains a different network
    wrong = bn.mlp(sizes, seed=2).double()
    for module in wrong:
        if isinstance(module, bn.BatchNorm):
            module.backward_function = bn.on_arrays(BACKWARD_BUGS[0][0])  # written for numpy arrays
    assert np.abs(trained(wrong)[1] - their_output).max() > 1e-3


def test_batch_noise_shrinks_like_one_over_root_batch_size():
    x = data.mnist1d().x_train[:2000]
    spread = {size: bn.normalised_across_batches(x, size, draws=300).std(axis=0).mean() for size in (8, 32, 128)}
    for small, large in ((8, 32), (32, 128)):
        assert 1.6 < spread[small] / spread[large] < 2.4  # 1/sqrt(B): a factor 2 for 4x the batch
    values = bn.normalised_across_batches(x, 64, draws=300)
    population = (x[0] - x.mean(0)) / x.std(0, unbiased=False)
    assert np.abs(values.mean(axis=0) - population.numpy()).max() < 0.1  # centred on the test-time value


def test_sweep_runs_both_models_from_the_same_weights():
    dataset = data.mnist1d().training_subset(256)
    sweep = bn.learning_rate_sweep(dataset, (0.1, 1e8), sizes=(40, 16, 10), epochs=2, batch_size=64)
    assert sweep.diverged("without") == [False, True]
    accuracy = sweep.accuracy("without")
    assert np.isnan(accuracy[1]) and 0 <= accuracy[0] <= 1
    with_bn, without = bn.mlp([40, 16, 10], 0), bn.mlp([40, 16, 10], 0, batch_norm=False)
    assert torch.equal(with_bn[0].weight, without[0].weight)
    with pytest.raises(ValueError, match="learning_rates must be"):
        bn.learning_rate_sweep(dataset, (0.1, -1.0))
