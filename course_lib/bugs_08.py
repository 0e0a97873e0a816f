"""Likely wrong answers to notebook 08's exercise, each with the message a learner should see.

Exercise 8.1: ``random_circular_shift(signals, max_shift, rng)`` on a numpy array of signals (one per row):
roll each row by its own shift, drawn uniformly from {-max_shift, ..., max_shift} with ``rng`` (a
``numpy.random.Generator``), circularly (what leaves at one end comes back at the other); return a new array.
The reference is ``course_lib.augmentation.random_circular_shift(signals, rng, max_shift=max_shift)`` (its
generator comes second so that it plugs into ``training.train(augment=...)``).

``LIKELY_BUGS[name]`` lists ``(variant, explanation)``: each variant has the exercise's signature and makes
the bug its explanation names. A judge recognises them by what can be measured whatever random numbers are
drawn: is each row a circular shift of its own signal, which shifts occur and how often, do rows share a
shift, is the input unchanged.
"""

import numpy as np

__all__ = ["LIKELY_BUGS"]


def zero_filled(signals, max_shift, rng):
    out = np.zeros_like(signals)
    length = signals.shape[1]
    for row, shift in enumerate(rng.integers(-max_shift, max_shift + 1, size=len(signals))):
        if shift >= 0:
            out[row, shift:] = signals[row, :length - shift]
        else:
            out[row, :shift] = signals[row, -shift:]
    return out


def one_shift_for_the_whole_batch(signals, max_shift, rng):
    return np.roll(signals, rng.integers(-max_shift, max_shift + 1), axis=1)


def range_misses_the_top(signals, max_shift, rng):
    shifts = rng.integers(-max_shift, max_shift, size=len(signals))  # the high end is exclusive
    return np.stack([np.roll(signal, shift) for signal, shift in zip(signals, shifts, strict=True)])


def only_positive_shifts(signals, max_shift, rng):
    shifts = rng.integers(0, max_shift + 1, size=len(signals))
    return np.stack([np.roll(signal, shift) for signal, shift in zip(signals, shifts, strict=True)])


def shifted_along_the_batch_axis(signals, max_shift, rng):
    return np.roll(signals, rng.integers(-max_shift, max_shift + 1), axis=0)


def always_the_largest_shift(signals, max_shift, rng):
    shifts = max_shift * rng.choice([-1, 1], size=len(signals))
    return np.stack([np.roll(signal, shift) for signal, shift in zip(signals, shifts, strict=True)])


def changes_its_input(signals, max_shift, rng):
    shifts = rng.integers(-max_shift, max_shift + 1, size=len(signals))
    for row, shift in enumerate(shifts):
        signals[row] = np.roll(signals[row], shift)
    return signals


LIKELY_BUGS = {
    "random_circular_shift": [
        (zero_filled,
         "Your shift fills the vacated samples with zeros: the samples that leave one end must come back at the "
         "other (np.roll), as in the MNIST-1D generator's own translation."),
        (one_shift_for_the_whole_batch,
         "Every signal of the batch is shifted by the same amount: draw one shift per signal "
         "(size=len(signals)) so that each example moves on its own."),
        (range_misses_the_top,
         "A shift of +max_shift never occurs: rng.integers(low, high) excludes high, so draw from "
         "rng.integers(-max_shift, max_shift + 1)."),
        (only_positive_shifts,
         "Only shifts to the right (0 to max_shift) occur: draw from -max_shift to +max_shift."),
        (shifted_along_the_batch_axis,
         "The rows are rolled along the batch axis (axis 0): the examples change places, and their labels no "
         "longer match. Roll each signal along its samples (axis 1, or np.roll of a single row)."),
        (always_the_largest_shift,
         "Every signal moves by exactly max_shift, left or right: the shift must be uniform over all of "
         "-max_shift, ..., max_shift, zero included."),
        (changes_its_input,
         "Your function shifts the caller's signals in place: the training data itself changes at every call. "
         "Build and return a new array."),
    ],
}
