"""course_lib.augmentation against direct formulas: np.roll for circular shifts, np.rot90 and slicing for
exact rotations and translations, a bilinear interpolation written out pixel by pixel for general affine maps;
statistical tests (with stated tolerances) for the random draws. The ``*_rejects_*`` tests feed each check a
known-wrong implementation."""

import functools
import math

import numpy as np
import pytest
import torch

from course_lib import augmentation as A
from course_lib import data, training

SIGMAS = 5


# ---- circular shifts ------------------------------------------------------------------------------------------
def check_circular_shift(shift):
    rng = np.random.default_rng(0)
    signals = rng.standard_normal((6, 40))
    shifts = np.array([0, 1, -1, 5, -17, 83])
    expected = np.stack([np.roll(row, s) for row, s in zip(signals, shifts, strict=True)])
    np.testing.assert_array_equal(shift(signals, shifts), expected)
    np.testing.assert_array_equal(shift(torch.from_numpy(signals), torch.from_numpy(shifts)).numpy(), expected)


def test_circular_shift_is_np_roll_row_by_row():
    check_circular_shift(A.circular_shift)


def test_the_shift_check_rejects_the_other_direction_and_zero_filling():
    def other_direction(signals, shifts):
        return A.circular_shift(signals, -np.asarray(shifts))

    def zero_filled(signals, shifts):
        out = A.circular_shift(signals, shifts)
        for row, s in enumerate(np.asarray(shifts)):
            if 0 < s < out.shape[1]:
                out[row, :s] = 0
        return out

    for wrong in (other_direction, zero_filled):
        with pytest.raises(AssertionError):
            check_circular_shift(wrong)


def recovered_shifts(signals, shifted):
    """The shift of each row, found by comparing with every roll of the original (rows are distinct noise)."""
    length = signals.shape[1]
    matches = np.stack([(np.roll(signals, s, axis=1) == shifted).all(axis=1) for s in range(length)], axis=1)
    assert (matches.sum(axis=1) == 1).all(), "a row is not a circular shift of its own signal"
    found = matches.argmax(axis=1)
    return (found + length // 2) % length - length // 2  # in [-length/2, length/2)


def check_random_shift(random_shift, max_shift=5, batch=3000):
    rng = np.random.default_rng(1)
    signals = rng.standard_normal((batch, 40))
    before = signals.copy()
    shifts = recovered_shifts(signals, random_shift(signals, np.random.default_rng(2), max_shift=max_shift))
    np.testing.assert_array_equal(signals, before)
    values, counts = np.unique(shifts, return_counts=True)
    assert list(values) == list(range(-max_shift, max_shift + 1)), values
    share = 1 / (2 * max_shift + 1)
    assert np.all(np.abs(counts / batch - share) <= SIGMAS * math.sqrt(share * (1 - share) / batch))


def test_random_shifts_are_uniform_over_the_whole_range_and_per_example():
    check_random_shift(A.random_circular_shift)
    check_random_shift(A.random_circular_shift, max_shift=0)


def test_the_random_shift_check_rejects_a_short_range_and_a_shared_shift():
    def short_range(signals, generator, max_shift):
        return A.random_circular_shift(signals, generator, max_shift=max(max_shift - 1, 0))

    def one_shift_for_the_batch(signals, generator, max_shift):
        return np.roll(signals, generator.integers(-max_shift, max_shift + 1), axis=1)

    def in_place(signals, generator, max_shift):
        signals[:] = A.random_circular_shift(signals, generator, max_shift=max_shift)
        return signals

    for wrong in (short_range, one_shift_for_the_batch, in_place):
        with pytest.raises(AssertionError):
            check_random_shift(wrong)


def test_random_shifts_on_tensors_are_seeded_by_the_generator():
    x = torch.randn(50, 40)
    a = A.random_circular_shift(x, torch.Generator().manual_seed(0), max_shift=5)
    b = A.random_circular_shift(x, torch.Generator().manual_seed(0), max_shift=5)
    assert torch.equal(a, b) and not torch.equal(a, x)
    shifts = recovered_shifts(x.numpy(), a.numpy())
    assert np.abs(shifts).max() <= 5


def test_a_shift_augmentation_plugs_into_train():
    model = training.mlp([40, 16, 10], seed=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    history = training.train(model, optimizer, data.mnist1d().training_subset(256), epochs=1,
                             augment=functools.partial(A.random_circular_shift, max_shift=5), evaluate_every=None)
    assert len(history.step_loss) == 2


def test_gaussian_noise_has_the_stated_spread():
    x = np.zeros((400, 500))
    noisy = A.gaussian_noise(x, np.random.default_rng(0), std=0.3)
    assert abs(noisy.mean()) < SIGMAS * 0.3 / math.sqrt(x.size)
    assert abs(noisy.std() / 0.3 - 1) < SIGMAS / math.sqrt(2 * x.size)
    t = torch.ones(3, 4)
    assert torch.equal(A.gaussian_noise(t, std=0.0), t)


@pytest.mark.parametrize("call, message", [
    (lambda: A.random_circular_shift(np.zeros((2, 5)), max_shift=-1), "max_shift must be an integer >= 0"),
    (lambda: A.random_circular_shift(np.zeros(5), max_shift=1), "signals must be a"),
    (lambda: A.gaussian_noise(np.zeros(3), std=-1.0), "std must be a finite number >= 0"),
    (lambda: A.random_affine(torch.zeros(2, 64), max_rotation_degrees=10.0), "image_shape"),
    (lambda: A.random_affine(torch.zeros(2, 8, 8), max_scale_change=1.0), "max_scale_change"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---- affine maps of images ------------------------------------------------------------------------------------
def bilinear_reference(image, degrees, scale, shift):
    """The affine map written out: output pixel p (centred pixel coordinates, x right, y down) reads the input
    at q = R^T (p - t) / s, with R the counter-clockwise-on-screen rotation, by bilinear interpolation of the
    four neighbours (zero outside)."""
    height, width = image.shape
    c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
    rotation = np.array([[c, s], [-s, c]])
    out = np.zeros_like(image)
    for i in range(height):
        for j in range(width):
            p = np.array([j - (width - 1) / 2, i - (height - 1) / 2])
            qx, qy = rotation.T @ (p - np.asarray(shift)) / scale
            u, v = qx + (width - 1) / 2, qy + (height - 1) / 2
            j0, i0 = math.floor(u), math.floor(v)
            for di, wi in ((0, 1 - (v - i0)), (1, v - i0)):
                for dj, wj in ((0, 1 - (u - j0)), (1, u - j0)):
                    if 0 <= i0 + di < height and 0 <= j0 + dj < width:
                        out[i, j] += wi * wj * image[i0 + di, j0 + dj]
    return out


def check_affine(warp):
    """``warp(images, degrees, scales, shifts)`` against exact rotations, exact shifts and the written-out
    bilinear map."""
    rng = np.random.default_rng(0)
    square = torch.from_numpy(rng.random((2, 8, 8)))
    rotated = warp(square, [90, 90], [1, 1], [[0, 0], [0, 0]])
    np.testing.assert_allclose(rotated.numpy(), np.rot90(square.numpy(), 1, axes=(1, 2)), atol=1e-12)
    moved = warp(square, [0, 0], [1, 1], [[1, 2], [-2, 0]])  # (right, down) in pixels
    expected = np.zeros((2, 8, 8))
    expected[0, 2:, 1:] = square[0, :-2, :-1]
    expected[1, :, :-2] = square[1, :, 2:]
    np.testing.assert_allclose(moved.numpy(), expected, atol=1e-12)
    oblong = torch.from_numpy(rng.random((3, 5, 7)))
    settings = [(17.0, 1.1, (0.3, -0.7)), (-30.0, 0.8, (1.2, 0.4)), (5.0, 1.0, (0.0, 0.0))]
    out = warp(oblong, *[[s[k] for s in settings] for k in range(3)])
    for image, result, (degrees, scale, shift) in zip(oblong.numpy(), out.numpy(), settings, strict=True):
        np.testing.assert_allclose(result, bilinear_reference(image, degrees, scale, shift), atol=1e-12)


def ours(images, degrees, scales, shifts):
    return A.affine_warp(images, A.affine_theta(degrees, scales, shifts, images.shape[1:]))


def test_affine_maps_match_exact_rotations_shifts_and_bilinear_interpolation():
    check_affine(ours)


def test_the_affine_check_rejects_a_clockwise_rotation_and_corner_alignment():
    def clockwise(images, degrees, scales, shifts):
        return ours(images, [-d for d in degrees], scales, shifts)

    def corners_aligned(images, degrees, scales, shifts):
        theta = A.affine_theta(degrees, scales, shifts, images.shape[1:])
        grid = torch.nn.functional.affine_grid(theta, (images.shape[0], 1, *images.shape[1:]), align_corners=True)
        return torch.nn.functional.grid_sample(images[:, None], grid, align_corners=True)[:, 0]

    for wrong in (clockwise, corners_aligned):
        with pytest.raises(AssertionError):
            check_affine(wrong)


def test_random_affine_draws_within_its_ranges_and_keeps_the_shape():
    digits = data.digits().x_train[:20]
    same = A.random_affine(digits, max_rotation_degrees=0.0, max_scale_change=0.0, max_shift_pixels=0.0,
                           image_shape=(8, 8))
    torch.testing.assert_close(same, digits)
    generator = torch.Generator().manual_seed(0)
    moved = A.random_affine(digits, generator, image_shape=(8, 8))
    assert moved.shape == digits.shape and not torch.equal(moved, digits)
    # only shifts, of at most 1 pixel: the ink's centre of mass moves by at most about a pixel
    shifted = A.random_affine(digits.reshape(-1, 8, 8), torch.Generator().manual_seed(1), max_rotation_degrees=0.0,
                              max_scale_change=0.0, max_shift_pixels=1.0)
    columns = torch.arange(8, dtype=torch.float32)

    def centre(images):
        return (images.sum(dim=1) * columns).sum(dim=1) / images.sum(dim=(1, 2))

    assert (centre(shifted) - centre(digits.reshape(-1, 8, 8))).abs().max() < 1.5
