"""Data augmentation for the workbook's data: random changes of a training example that keep its label.

- MNIST-1D signals: random circular shifts (the MNIST-1D generator itself places each digit's pattern by a
  circular translation, so a shifted signal is as plausible as the original) and Gaussian noise.
- 8x8 digits: small random affine maps (rotation, scaling, translation) resampled with bilinear
  interpolation through torch's ``affine_grid`` / ``grid_sample`` (torchvision is not used).

Every random augmentation has the form ``augment(inputs, generator=None, *, settings...)``: it returns a new,
randomly changed copy of a batch and leaves ``inputs`` alone, drawing every random number from
``generator`` (a ``torch.Generator`` for tensors, a ``numpy.random.Generator`` for arrays; None: torch's
global generator, or a fresh numpy one). ``functools.partial(random_circular_shift, max_shift=5)`` is then
the ``augment`` argument of ``course_lib.training.train``, which passes its seeded generator.
"""

import math

import numpy as np
import torch
import torch.nn.functional as F

from course_lib.validation import is_integer, is_real, require

__all__ = ["affine_theta", "affine_warp", "circular_shift", "gaussian_noise", "random_affine",
           "random_circular_shift"]


def _check_signals(signals):
    require(isinstance(signals, (np.ndarray, torch.Tensor)) and signals.ndim == 2, "signals",
            "a (batch, length) numpy array or torch tensor",
            getattr(signals, "shape", type(signals).__name__))


def circular_shift(signals, shifts):
    """Each signal (row of ``signals``) rolled by its own number of samples, as ``np.roll`` rolls:

        out[n, t] = signals[n, (t - shifts[n]) mod length]

    a positive shift moves the pattern to the right and what leaves on the right comes back on the left.
    """
    _check_signals(signals)
    length = signals.shape[1]
    if isinstance(signals, torch.Tensor):
        shifts = torch.as_tensor(shifts, dtype=torch.int64, device=signals.device).reshape(-1, 1)
        source = torch.remainder(torch.arange(length, device=signals.device) - shifts, length)
        return signals.gather(1, source.expand(signals.shape[0], length))
    shifts = np.asarray(shifts, dtype=np.int64).reshape(-1, 1)
    source = np.mod(np.arange(length) - shifts, length)
    return np.take_along_axis(signals, np.broadcast_to(source, signals.shape), axis=1)


def random_circular_shift(signals, generator=None, *, max_shift):
    """Each signal rolled by its own shift, drawn uniformly from {-max_shift, ..., max_shift}
    (``circular_shift``). ``max_shift = 0`` returns the signals unchanged."""
    _check_signals(signals)
    require(is_integer(max_shift, 0), "max_shift", "an integer >= 0", max_shift)
    batch = signals.shape[0]
    if isinstance(signals, torch.Tensor):
        shifts = torch.randint(-max_shift, max_shift + 1, (batch,), generator=generator)
    else:
        rng = generator if generator is not None else np.random.default_rng()
        shifts = rng.integers(-max_shift, max_shift + 1, size=batch)
    return circular_shift(signals, shifts)


def gaussian_noise(inputs, generator=None, *, std):
    """``inputs + std * z`` with z standard normal, independent for every element."""
    require(isinstance(inputs, (np.ndarray, torch.Tensor)), "inputs", "a numpy array or a torch tensor",
            type(inputs).__name__)
    require(is_real(std) and 0 <= std < math.inf, "std", "a finite number >= 0", std)
    if isinstance(inputs, torch.Tensor):
        return inputs + std * torch.randn(inputs.shape, generator=generator, dtype=inputs.dtype)
    rng = generator if generator is not None else np.random.default_rng()
    return inputs + std * rng.standard_normal(inputs.shape)


def affine_theta(rotation_degrees, scale, shift_pixels, image_shape):
    """The (batch, 2, 3) matrices ``affine_grid`` needs to rotate each image's content by ``rotation_degrees``
    (counter-clockwise as displayed, row 0 at the top) about its centre, scale it by ``scale`` and then move
    it by ``shift_pixels`` = (right, down) pixels.

    In pixel coordinates centred on the image (x to the right, y down), the content at input point ``q``
    moves to ``p = s R q + t``; an output pixel ``p`` therefore reads the input at ``q = R^T (p - t) / s``.
    ``affine_grid`` works in normalised coordinates ``D p`` with D = diag(2 / width, 2 / height) (pixel
    centres, align_corners=False), so theta = [D A D^-1 | -D A t] with A = R^T / s.
    """
    rotation = torch.as_tensor(rotation_degrees, dtype=torch.float64).reshape(-1)
    scale = torch.as_tensor(scale, dtype=torch.float64).reshape(-1)
    shift = torch.as_tensor(shift_pixels, dtype=torch.float64).reshape(-1, 2)
    height, width = image_shape
    angle = torch.deg2rad(rotation)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # Counter-clockwise on screen with y pointing down is R = [[cos, sin], [-sin, cos]]; A = R^T / s.
    a = torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2) / scale[:, None, None]
    d = torch.tensor([2.0 / width, 2.0 / height], dtype=torch.float64)
    linear = d[:, None] * a / d[None, :]
    offset = -(d * (a @ shift[..., None])[..., 0])
    return torch.cat([linear, offset[..., None]], dim=-1)


def affine_warp(images, theta):
    """Resample ``images`` (batch, height, width) at the points ``theta`` maps each output pixel to, with
    bilinear interpolation and zeros outside the image (``affine_grid`` + ``grid_sample``,
    align_corners=False)."""
    require(isinstance(images, torch.Tensor) and images.ndim == 3, "images",
            "a (batch, height, width) torch tensor", getattr(images, "shape", type(images).__name__))
    grid = F.affine_grid(theta.to(images.dtype), (images.shape[0], 1, *images.shape[1:]), align_corners=False)
    return F.grid_sample(images[:, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]


def random_affine(images, generator=None, *, max_rotation_degrees=10.0, max_scale_change=0.1,
                  max_shift_pixels=1.0, image_shape=None):
    """Each image under its own small random affine map: a rotation uniform in +-``max_rotation_degrees``, a
    scale uniform in 1 +- ``max_scale_change`` and a shift uniform in +-``max_shift_pixels`` along each axis
    (``affine_theta``, ``affine_warp``). ``images``: a (batch, height, width) tensor, or (batch, height * width)
    with ``image_shape`` = (height, width) (the flattened 8x8 digits); the result has the input's shape.
    """
    require(isinstance(images, torch.Tensor), "images", "a torch tensor", type(images).__name__)
    for name, value, upper in (("max_rotation_degrees", max_rotation_degrees, 180.0),
                               ("max_scale_change", max_scale_change, 1.0),
                               ("max_shift_pixels", max_shift_pixels, math.inf)):
        require(is_real(value) and 0 <= value < upper, name, f"a number in [0, {upper})", value)
    flat = images.ndim == 2
    if flat:
        require(image_shape is not None and len(image_shape) == 2
                and image_shape[0] * image_shape[1] == images.shape[1], "image_shape",
                f"(height, width) with height * width = {images.shape[1]}", image_shape)
        images = images.reshape(images.shape[0], *image_shape)
    batch = images.shape[0]

    def uniform(low, high, *shape):
        return low + (high - low) * torch.rand((batch, *shape), generator=generator, dtype=torch.float64)

    theta = affine_theta(uniform(-max_rotation_degrees, max_rotation_degrees),
                         uniform(1 - max_scale_change, 1 + max_scale_change),
                         uniform(-max_shift_pixels, max_shift_pixels, 2), images.shape[1:])
    warped = affine_warp(images, theta)
    return warped.reshape(batch, -1) if flat else warped
