"""course_lib.regularization against references no one here wrote: torch's F.dropout / nn.Dropout,
F.linear, nn.FractionalMaxPool2d; and, where no reference exists (vanilla dropout, DropConnect, stochastic
depth), statistical tests with stated tolerances (mask fractions, expectations, survival counts).

Each check is a function that raises AssertionError; the ``*_rejects_*`` tests run the same check on a
known-wrong implementation and require it to fail, so that no check passes vacuously.
"""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import regularization as R

SIGMAS = 5  # statistical tests: a deviation beyond 5 standard errors fails (p ~ 6e-7 for a correct version)


# ---- dropout --------------------------------------------------------------------------------------------------
def check_matches_torch_dropout(dropout, dtype=torch.float32):
    """``dropout(x, drop_probability, training, generator=None)`` equals F.dropout from the same seed."""
    x = torch.randn(64, 50, dtype=dtype)
    for drop in (0.1, 0.5, 0.8):
        torch.manual_seed(7)
        expected = F.dropout(x, drop, training=True)
        torch.manual_seed(7)
        actual = dropout(x, drop, True)
        assert torch.equal(actual, expected), f"differs from F.dropout at drop_probability {drop}"
        assert torch.equal(dropout(x, drop, False), F.dropout(x, drop, training=False))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inverted_dropout_is_torchs_dropout_bit_for_bit(dtype):
    check_matches_torch_dropout(R.inverted_dropout, dtype)


def test_the_check_against_torch_rejects_other_masks_and_other_scalings():
    def rand_mask(x, drop, training):  # the same distribution, other masks from the same seed
        keep = 1 - drop
        return x * (torch.rand_like(x) < keep) / keep if training else x

    def multiplied_after(x, drop, training):  # (x * m) / keep: the same up to rounding, not bit for bit
        keep = 1 - drop
        return x * torch.empty_like(x).bernoulli_(keep) / keep if training else x

    for wrong in (rand_mask, multiplied_after, lambda x, drop, training: R.vanilla_dropout(x, drop, training)):
        with pytest.raises(AssertionError):
            check_matches_torch_dropout(wrong)


def test_the_layers_match_nn_dropout_in_both_modes():
    x = torch.randn(32, 20)
    ours, theirs = R.InvertedDropout(0.3), nn.Dropout(0.3)
    torch.manual_seed(1)
    a = ours(x)
    torch.manual_seed(1)
    assert torch.equal(a, theirs(x))
    ours.eval()
    assert torch.equal(ours(x), x)
    vanilla = R.VanillaDropout(0.3).eval()
    torch.testing.assert_close(vanilla(x), 0.7 * x)


def test_vanilla_dropout_draws_the_same_masks_and_scales_at_test_instead():
    x = torch.randn(40, 30, dtype=torch.float64)
    torch.manual_seed(3)
    vanilla = R.vanilla_dropout(x, 0.25)
    torch.manual_seed(3)
    inverted = R.inverted_dropout(x, 0.25)
    torch.testing.assert_close(vanilla / 0.75, inverted)
    torch.testing.assert_close(R.vanilla_dropout(x, 0.25, training=False), 0.75 * x)


def check_dropout_statistics(dropout, drop, scaled_at_training):
    """Mask fraction and expectation over many masks (numpy), against theory with a 5-sigma tolerance."""
    keep = 1 - drop
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 2.0, size=(1, 400))
    masks = 5000
    samples = dropout(np.repeat(x, masks, axis=0), drop, True, np.random.default_rng(1))
    kept = samples != 0
    standard_error = math.sqrt(keep * drop / kept.size)
    assert abs(kept.mean() - keep) < SIGMAS * standard_error, f"kept {kept.mean():.4f}, expected {keep}"
    scale = 1 / keep if scaled_at_training else 1.0
    np.testing.assert_allclose(samples[kept] / np.broadcast_to(x, samples.shape)[kept], scale, rtol=1e-12)
    test = dropout(x, drop, False, None)
    # the training mean equals the test activation: relative error of the mean over masks, per unit
    relative = np.abs(samples.mean(axis=0) / test[0] - 1)
    assert relative.max() < SIGMAS * math.sqrt(drop / keep / masks), relative.max()
    # masks are independent across examples: two rows' masks are uncorrelated
    correlation = np.corrcoef(kept[:, 0], kept[:, 1])[0, 1]
    assert abs(correlation) < SIGMAS / math.sqrt(masks)


@pytest.mark.parametrize("drop", [0.2, 0.5, 0.8])
def test_dropout_statistics_on_arrays(drop):
    check_dropout_statistics(R.inverted_dropout, drop, scaled_at_training=True)
    check_dropout_statistics(R.vanilla_dropout, drop, scaled_at_training=False)


def test_the_statistical_check_rejects_swapped_probabilities_and_missing_scalings():
    def swapped(x, drop, training, generator):
        return R.inverted_dropout(x, 1 - drop, training, generator)

    def no_test_scaling(x, drop, training, generator):
        return R.vanilla_dropout(x, drop, True, generator) if training else x

    def shared_mask(x, drop, training, generator):
        if not training:
            return x
        return x * (generator.random(x.shape[1:]) < 1 - drop) / (1 - drop)

    for wrong, inverted in ((swapped, True), (no_test_scaling, False), (shared_mask, True)):
        with pytest.raises(AssertionError):
            check_dropout_statistics(wrong, 0.3, scaled_at_training=inverted)


def test_dropout_leaves_its_input_alone_and_keeps_its_kind():
    x = np.ones((4, 5))
    before = x.copy()
    out = R.inverted_dropout(x, 0.5, True, np.random.default_rng(0))
    assert isinstance(out, np.ndarray) and np.array_equal(x, before)
    t = torch.ones(4, 5)
    assert isinstance(R.vanilla_dropout(t, 0.5), torch.Tensor) and torch.equal(t, torch.ones(4, 5))
    assert R.inverted_dropout(t, 0.0) is t


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, True, "0.5", float("nan")])
def test_drop_probabilities_outside_0_1_are_refused(bad):
    for function in (R.inverted_dropout, R.vanilla_dropout):
        with pytest.raises(ValueError, match=r"drop_probability must be a number in \[0, 1\)"):
            function(torch.ones(3), bad)
    with pytest.raises(ValueError, match="drop_probability"):
        R.InvertedDropout(bad)
    with pytest.raises(ValueError, match="drop_probability"):
        R.DropConnectLinear(3, 2, bad)


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.01])
def test_keep_and_survival_probabilities_outside_0_1_are_refused(bad):
    with pytest.raises(ValueError, match=r"keep_probability must be a number in \(0, 1\]"):
        R.bernoulli_mask(torch.ones(3), bad)
    with pytest.raises(ValueError, match=r"survival_probability must be a number in \(0, 1\]"):
        R.stochastic_depth(torch.ones(3), lambda x: x, bad)
    with pytest.raises(ValueError, match="final_survival_probability"):
        R.linear_survival_probabilities(12, bad)


# ---- DropConnect ----------------------------------------------------------------------------------------------
def effective_weights(layer_function, weight, **options):
    """The weight matrix a linear map applied, read off by feeding it the unit vectors (bias None)."""
    return layer_function(torch.eye(weight.shape[1], dtype=weight.dtype), weight, None, **options).T


def test_dropconnect_at_test_time_is_torchs_linear():
    layer = nn.Linear(7, 5).double()
    x = torch.randn(11, 7, dtype=torch.float64)
    out = R.dropconnect_linear(x, layer.weight, layer.bias, 0.5, training=False)
    torch.testing.assert_close(out, F.linear(x, layer.weight, layer.bias))
    ours = R.DropConnectLinear(7, 5, 0.5).double().eval()
    ours.load_state_dict(layer.state_dict())
    torch.testing.assert_close(ours(x), layer(x))


def check_dropconnect_masks_weights(layer_function):
    """One training pass zeroes a drop_probability share of the WEIGHTS and scales the rest by 1/keep; its
    expectation over many passes is the test-time layer."""
    torch.manual_seed(0)
    weight = torch.rand(60, 50, dtype=torch.float64) + 0.5
    applied = effective_weights(layer_function, weight, drop_probability=0.4, training=True)
    zero = applied == 0
    assert abs(zero.double().mean().item() - 0.4) < SIGMAS * math.sqrt(0.24 / zero.numel())
    torch.testing.assert_close(applied[~zero], weight[~zero] / 0.6)
    # a mask per weight, not per input unit: nearly every input's column of weights mixes kept and dropped ones
    assert (zero.any(dim=0) & ~zero.all(dim=0)).double().mean() > 0.9
    x = torch.rand(3, 50, dtype=torch.float64)
    passes = torch.stack([layer_function(x, weight, None, 0.4, True) for _ in range(4000)])
    expected = F.linear(x, weight)
    spread = passes.std(dim=0) / math.sqrt(len(passes))
    assert ((passes.mean(dim=0) - expected).abs() < SIGMAS * spread).all()


def test_dropconnect_masks_weights_and_is_right_in_expectation():
    check_dropconnect_masks_weights(R.dropconnect_linear)


def test_the_dropconnect_check_rejects_dropout_on_inputs_and_an_unscaled_mask():
    def dropout_on_inputs(x, weight, bias, drop_probability, training):
        return F.linear(R.inverted_dropout(x, drop_probability, training), weight, bias)

    def unscaled(x, weight, bias, drop_probability, training):
        return F.linear(x, weight * R.bernoulli_mask(weight, 1 - drop_probability), bias)

    for wrong in (dropout_on_inputs, unscaled):
        with pytest.raises(AssertionError):
            check_dropconnect_masks_weights(wrong)


def test_dropconnect_per_batch_shares_a_mask_and_per_example_does_not():
    weight = torch.rand(20, 30) + 0.5
    x = torch.ones(8, 30)
    torch.manual_seed(2)
    shared = R.dropconnect_linear(x, weight, None, 0.5)
    assert torch.equal(shared, shared[:1].expand_as(shared))
    own = R.dropconnect_linear(x, weight, None, 0.5, per_example=True)
    assert len({tuple(row.tolist()) for row in own}) == 8
    assert own.shape == (8, 20)
    # per example, each row is a DropConnect pass of its own: its expectation is the test layer too
    many = R.dropconnect_linear(torch.ones(20000, 30, dtype=torch.float64), weight.double(), None, 0.5,
                                per_example=True)
    expected = weight.double().sum(dim=1)
    spread = many.std(dim=0) / math.sqrt(len(many))
    assert ((many.mean(dim=0) - expected).abs() < SIGMAS * spread).all()


def test_dropconnect_per_example_is_each_examples_masked_layer_and_trains_like_it():
    """Example by example: row b is x_b (M_b * W)^T / keep with the masks drawn in order from the seed, and its
    gradients are those of that formula written out with the same masks (autograd through a plain product)."""
    weight = (torch.rand(6, 5) + 0.5).requires_grad_()
    x = torch.randn(4, 5, requires_grad=True)
    keep = 0.6
    torch.manual_seed(3)
    output = R.dropconnect_linear(x, weight, None, 1 - keep, per_example=True)
    torch.manual_seed(3)
    masks = torch.stack([R.bernoulli_mask(weight.detach(), keep) for _ in range(4)])
    expected = torch.einsum("bi,boi->bo", x, weight * masks / keep)
    assert torch.allclose(output, expected, rtol=1e-6, atol=1e-7)
    upstream = torch.randn(4, 6)
    gradients = torch.autograd.grad(output, (x, weight), upstream)
    expected_gradients = torch.autograd.grad(expected, (x, weight), upstream)
    for got, want in zip(gradients, expected_gradients, strict=True):
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-6)
    # numpy arrays the same way, with a numpy generator
    x_array, weight_array = x.detach().double().numpy(), weight.detach().double().numpy()
    got = R.dropconnect_linear(x_array, weight_array, None, 1 - keep, per_example=True,
                               generator=np.random.default_rng(5))
    rng = np.random.default_rng(5)
    masks_array = np.stack([R.bernoulli_mask(weight_array, keep, rng) for _ in range(4)])
    assert np.allclose(got, np.einsum("bi,boi->bo", x_array, weight_array * masks_array / keep), rtol=1e-12)


def test_dropconnect_layer_trains():
    layer = R.DropConnectLinear(4, 3, 0.5)
    layer(torch.randn(5, 4)).sum().backward()
    assert layer.weight.grad is not None and (layer.weight.grad == 0).any()  # dropped weights get no gradient


# ---- stochastic depth -----------------------------------------------------------------------------------------
def test_linear_decay_of_the_survival_probability():
    p = R.linear_survival_probabilities(12, 0.5)
    assert p[-1] == 0.5 and p[0] == pytest.approx(1 - 0.5 / 12)
    assert np.allclose(np.diff(p), -0.5 / 12)
    assert np.mean(p) == pytest.approx(1 - 0.5 * 13 / 24)  # 0.729
    assert R.linear_survival_probabilities(5, 1.0) == [1.0] * 5


def check_stochastic_depth(block_function, survival=0.6, calls=4000):
    """Training: the branch runs in a ``survival`` share of the calls (one draw per mini-batch), the output
    is x or x + f(x); the test output x + p f(x) is the training expectation."""
    x = torch.randn(16, 8, dtype=torch.float64)
    branch_value = torch.randn(16, 8, dtype=torch.float64)
    ran = []

    def branch(inputs):
        ran.append(1)
        return branch_value

    torch.manual_seed(0)
    outputs = []
    for _ in range(calls):
        before = len(ran)
        out = block_function(x, branch, survival, True)
        outputs.append(out)
        if len(ran) > before:
            torch.testing.assert_close(out, x + branch_value)
        else:
            torch.testing.assert_close(out, x)
    share = len(ran) / calls
    assert abs(share - survival) < SIGMAS * math.sqrt(survival * (1 - survival) / calls), share
    test = block_function(x, branch, survival, False)
    torch.testing.assert_close(test, x + survival * branch_value)
    mean = torch.stack(outputs).mean(dim=0)
    assert (mean - test).abs().max() < SIGMAS * branch_value.abs().max() * math.sqrt(
        survival * (1 - survival) / calls)


def test_stochastic_depth_statistics():
    check_stochastic_depth(R.stochastic_depth)


def test_the_stochastic_depth_check_rejects_drop_for_survival_and_no_test_scaling():
    def swapped(x, branch, survival, training):
        return R.stochastic_depth(x, branch, 1 - survival, training)

    def unscaled_at_test(x, branch, survival, training):
        return R.stochastic_depth(x, branch, survival, training) if training else x + branch(x)

    def per_example_without_skipping(x, branch, survival, training):  # computes the branch every time
        if not training:
            return x + survival * branch(x)
        keep = (torch.rand(x.shape[0], 1, dtype=x.dtype) < survival).to(x.dtype)
        return x + keep * branch(x)

    for wrong in (swapped, unscaled_at_test, per_example_without_skipping):
        with pytest.raises(AssertionError):
            check_stochastic_depth(wrong)


def test_a_residual_mlp_counts_the_blocks_it_evaluates():
    model = R.ResidualMLP(40, 16, 12, 10, final_survival_probability=0.5, seed=0)
    x = torch.randn(32, 40)
    torch.manual_seed(0)
    for _ in range(300):
        model(x)
    calls = 300 * 12
    expected = np.mean(R.linear_survival_probabilities(12, 0.5))
    variance = sum(p * (1 - p) for p in R.linear_survival_probabilities(12, 0.5)) * 300 / calls**2
    assert abs(model.evaluated_fraction() - expected) < SIGMAS * math.sqrt(variance)
    model.eval()
    model(x)  # evaluation mode: every block runs, scaled by its survival probability, and is not counted
    assert sum(block.calls for block in model.blocks) == calls
    plain = R.ResidualMLP(40, 16, 12, 10, seed=0)
    plain(x)
    assert plain.evaluated_fraction() == 1.0
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x))  # deterministic at test time


# ---- fractional max pooling -----------------------------------------------------------------------------------
def random_case(rng):
    height, width = rng.integers(3, 30, size=2)
    kernel = tuple(int(k) for k in rng.integers(1, 4, size=2))
    kernel = (min(kernel[0], height), min(kernel[1], width))
    output = (int(rng.integers(1, height - kernel[0] + 2)), int(rng.integers(1, width - kernel[1] + 2)))
    return int(height), int(width), kernel, output


def float32_edge_cases(count=20):
    """(input size, output size, samples) where the window rule gives other windows in float32 arithmetic than
    in float64 (about 1 draw in 20,000): the cases that show whether an implementation rounds as torch does."""
    rng = np.random.default_rng(1)
    found = []
    for size in range(5, 80):
        for output in range(2, size - 1):
            samples = rng.random(4000).astype(np.float32)
            in_32 = R.fractional_pool_starts(size, output, 2, samples)
            in_64 = R.fractional_pool_starts(size, output, 2, samples.astype(np.float64))
            differ = (in_32 != in_64).any(axis=-1)
            if differ.any():
                found.append((size, output, samples[differ]))
            if len(found) == count:
                return found
    return found


def check_matches_torch_fmp(pool, dtype=torch.float32, cases=150):
    if dtype == torch.float32:
        for size, output, samples in float32_edge_cases():
            x = torch.randn(1, len(samples), size, size)
            both = torch.from_numpy(np.stack([samples, samples], axis=-1))[None]
            expected = F.fractional_max_pool2d(x, 2, output_size=output, _random_samples=both)
            assert torch.equal(pool(x, (output, output), 2, both), expected), f"float32 rounding, size {size}"
    rng = np.random.default_rng(0)
    for case in range(cases):
        height, width, kernel, output = random_case(rng)
        x = torch.randn(2, 3, height, width, dtype=dtype)
        samples = torch.rand(2, 3, 2, dtype=dtype)
        expected = F.fractional_max_pool2d(x, kernel, output_size=output, _random_samples=samples)
        actual = pool(x, output, kernel, samples)
        assert torch.equal(actual, expected), f"case {case}: {height}x{width}, kernel {kernel}, out {output}"
        assert np.array_equal(pool(x.numpy(), output, kernel, samples.numpy()), expected.numpy())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fractional_max_pooling_matches_torch_exactly(dtype):
    check_matches_torch_fmp(R.fractional_max_pool2d, dtype)


def test_a_large_batch_is_pooled_in_parts_with_the_same_result():
    """Past _POOLED_AT_ONCE examples the windows are built in parts: values and gradients stay torch's."""
    x = torch.randn(2 * R._POOLED_AT_ONCE + 3, 2, 6, 9, requires_grad=True)
    samples = torch.rand(len(x), 2, 2)
    expected = F.fractional_max_pool2d(x, 2, output_size=(4, 6), _random_samples=samples)
    actual = R.fractional_max_pool2d(x, (4, 6), 2, samples)
    assert torch.equal(actual, expected)
    ours, = torch.autograd.grad(actual.sum(), x)
    theirs, = torch.autograd.grad(expected.sum(), x)
    assert torch.equal(ours, theirs)
    on_arrays = R.fractional_max_pool2d(x.detach().numpy(), (4, 6), 2, samples.numpy())
    assert np.array_equal(on_arrays, expected.detach().numpy())


def test_the_fmp_check_rejects_swapped_samples_and_float64_arithmetic():
    def swapped(x, output, kernel, samples):
        return R.fractional_max_pool2d(x, output, kernel, samples[..., [1, 0]])

    def in_float64(x, output, kernel, samples):
        samples = samples.double() if isinstance(samples, torch.Tensor) else samples.astype(np.float64)
        return R.fractional_max_pool2d(x, output, kernel, samples)

    for wrong in (swapped, in_float64):
        with pytest.raises(AssertionError):
            check_matches_torch_fmp(wrong)


def test_pooling_steps_are_1_or_2_for_a_ratio_of_one_over_root_two():
    samples = np.random.default_rng(0).random(500).astype(np.float32)
    for size in range(4, 64):
        out = int(size / math.sqrt(2))
        starts = R.fractional_pool_starts(size, out, 2, samples)
        steps = np.diff(starts, axis=-1)
        assert set(np.unique(steps)) <= {1, 2}, size
        assert starts[:, 0].min() == 0 and (starts[:, -1] == size - 2).all()


def test_the_fmp_layer_is_random_in_both_modes_unless_its_windows_are_fixed():
    x = torch.randn(4, 2, 1, 40)
    layer = R.FractionalMaxPool2d((1.0, 1 / math.sqrt(2)), kernel_size=(1, 2)).eval()
    first, second = layer(x), layer(x)
    assert first.shape == (4, 2, 1, 28) and not torch.equal(first, second)
    torch_layer = nn.FractionalMaxPool2d((1, 2), output_size=(1, 28)).eval()
    assert not torch.equal(torch_layer(x), torch_layer(x))  # torch's stays random in eval mode too
    fixed = R.FractionalMaxPool2d((1.0, 1 / math.sqrt(2)), kernel_size=(1, 2), fixed_sample=0.5)
    assert torch.equal(fixed(x), fixed(x))
    samples = torch.full((4, 2, 2), 0.5)
    torch.testing.assert_close(fixed(x), F.fractional_max_pool2d(x, (1, 2), output_size=(1, 28),
                                                                 _random_samples=samples))


def test_fmp_arguments_are_checked():
    with pytest.raises(ValueError, match="output_size"):
        R.fractional_pool_starts(8, 8, 2, np.zeros(1))
    with pytest.raises(ValueError, match=r"samples must be numbers in \[0, 1\)"):
        R.fractional_pool_starts(8, 5, 2, np.ones(1))
    with pytest.raises(ValueError, match="output_ratio"):
        R.FractionalMaxPool2d(1.5)
    with pytest.raises(ValueError, match="fixed_sample"):
        R.FractionalMaxPool2d(0.7, fixed_sample=1.0)


# ---- averaging passes -----------------------------------------------------------------------------------------
def test_random_passes_are_seeded_and_restore_the_mode_and_the_global_generator():
    model = nn.Sequential(nn.Linear(5, 8), R.InvertedDropout(0.5), nn.Linear(8, 3)).eval()
    x = torch.randn(10, 5)
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    passes = R.random_passes(model, x, 50, seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert not model.training and passes.shape == (50, 10, 3)
    assert torch.equal(passes, R.random_passes(model, x, 50, seed=1))
    assert not torch.equal(passes[0], passes[1])
    # dropout before a linear layer only: the mean over passes tends to the test output as 1/sqrt(passes)
    many = R.random_passes(model, x, 4000, seed=2)
    spread = many.std(dim=0) / math.sqrt(4000)
    assert ((many.mean(dim=0) - model(x)).abs() < SIGMAS * spread + 1e-6).all()


def test_random_pass_averages_are_the_averages_of_the_random_passes():
    """Summed as they come, in float64: the means of the first M of random_passes (same seed), their softmax
    means and their variance, up to float32 rounding; a wrong average (of other passes) is far off."""
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), R.InvertedDropout(0.5), nn.Linear(16, 4)).eval()
    x = torch.randn(30, 5)
    counts = [1, 3, 10, 40]
    torch.manual_seed(9)
    state = torch.random.get_rng_state()
    averages = R.random_pass_averages(model, x, counts, seed=4)
    assert torch.equal(torch.random.get_rng_state(), state) and not model.training
    passes = R.random_passes(model, x, 40, seed=4)
    for m in counts:
        assert torch.allclose(averages.logits[m], passes[:m].mean(0), rtol=1e-6, atol=1e-6)
        assert torch.allclose(averages.probabilities[m], passes[:m].softmax(-1).mean(0), rtol=1e-6, atol=1e-7)
        assert averages.logits[m].dtype == passes.dtype
    assert torch.allclose(averages.variance, passes.var(dim=0), rtol=1e-5, atol=1e-6)
    other = R.random_passes(model, x, 40, seed=5)
    assert not torch.allclose(averages.logits[40], other.mean(0), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="counts"):
        R.random_pass_averages(model, x, [0, 4])


def test_each_random_pass_restores_the_mode_even_when_left_early():
    model = nn.Sequential(nn.Linear(3, 4), R.InvertedDropout(0.5)).eval()
    passes = R.each_random_pass(model, torch.ones(2, 3), 10, seed=0)
    next(passes)
    assert model.training  # passes run in training mode ...
    passes.close()
    assert not model.training  # ... and the mode comes back when the passes stop


@pytest.mark.parametrize("dropout", [R.inverted_dropout, R.vanilla_dropout])
def test_mean_of_dropout_passes_draws_what_one_block_of_all_passes_draws(dropout, monkeypatch):
    """Passes drawn 1,000 at a time (here 7 at a time, with a last, smaller batch) from one generator: the same
    masks as one call on all of them, so the same mean up to the summation's rounding; float32 activations
    too; another seed, another mean."""
    monkeypatch.setattr(R, "PASSES_AT_ONCE", 7)
    for activations in (np.random.default_rng(0).uniform(0.5, 1.5, 13),
                        np.random.default_rng(1).uniform(0.5, 1.5, 13).astype(np.float32)):
        one_block = dropout(np.broadcast_to(activations, (40, 13)), 0.3, True, np.random.default_rng(2))
        mean = R.mean_of_dropout_passes(dropout, activations, 0.3, 40, np.random.default_rng(2))
        assert mean.dtype == np.float64
        assert np.allclose(mean, one_block.astype(np.float64).mean(axis=0), rtol=1e-6, atol=0)
        assert not np.allclose(mean, R.mean_of_dropout_passes(dropout, activations, 0.3, 40,
                                                               np.random.default_rng(3)))
    with pytest.raises(ValueError, match="activations"):
        R.mean_of_dropout_passes(dropout, np.ones((2, 3)), 0.3, 10)
    with pytest.raises(ValueError, match="passes"):
        R.mean_of_dropout_passes(dropout, np.ones(3), 0.3, 0)


def test_the_regularized_mlps_start_from_the_plain_mlps_weights():
    from course_lib import training

    plain = training.mlp([40, 32, 16, 10], seed=3)
    x = torch.randn(5, 40)
    for model in (R.dropout_mlp([40, 32, 16, 10], 0.3, seed=3), R.dropconnect_mlp([40, 32, 16, 10], 0.3, seed=3)):
        assert [p.shape for p in model.parameters()] == [p.shape for p in plain.parameters()]
        torch.testing.assert_close(model.eval()(x), plain(x))
    assert sum(isinstance(m, R.InvertedDropout) for m in R.dropout_mlp([40, 32, 16, 10], 0.3)) == 2
    assert sum(isinstance(m, R.DropConnectLinear) for m in R.dropconnect_mlp([40, 32, 16, 10], 0.3)) == 2


def test_the_fractional_pooling_cnn_shrinks_by_the_ratio_and_trains():
    model = R.fractional_pooling_cnn(length=40, channels=4, blocks=3, seed=0)
    pools = [m for m in model if isinstance(m, R.FractionalMaxPool2d)]
    assert len(pools) == 3 and model[-1].in_features == 4 * 13  # 40 -> 28 -> 19 -> 13
    x = torch.randn(6, 40)
    out = model(x)
    assert out.shape == (6, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    fixed = R.fractional_pooling_cnn(channels=4, fixed_sample=0.5, seed=0).eval()
    torch.testing.assert_close(fixed(x), fixed(x))
