"""Likely wrong answers to notebook 07's exercise, each with the message a learner should see.

Exercise 7.1: ``inverted_dropout(x, drop_probability, training, rng)`` on a numpy array of activations (one
example per row): in training, zero each element independently with probability ``drop_probability`` and
divide the survivors by the keep probability ``1 - drop_probability``; at test time return ``x`` unchanged;
never change ``x`` in place. The reference is ``course_lib.regularization.inverted_dropout``.

``LIKELY_BUGS[name]`` lists ``(variant, explanation)``: the variant has the exercise's signature and makes the
bug the explanation names. Randomness differs between a learner's draws and the reference's, so a judge tells
them apart by statistics (share of zeros, scale of the survivors, mean over many passes, whether rows share a
mask, the test pass, the input after the call), not element by element.
"""


__all__ = ["LIKELY_BUGS"]


def keep_and_drop_swapped(x, drop_probability, training, rng):
    if not training:
        return x
    keep = drop_probability  # the drop probability used as the keep probability
    return x * (rng.random(x.shape) < keep) / keep


def scaled_at_test_instead_of_training(x, drop_probability, training, rng):
    keep = 1 - drop_probability
    if not training:
        return x * keep
    return x * (rng.random(x.shape) < keep)


def never_scaled(x, drop_probability, training, rng):
    if not training:
        return x
    return x * (rng.random(x.shape) < 1 - drop_probability)


def multiplied_by_keep(x, drop_probability, training, rng):
    if not training:
        return x
    keep = 1 - drop_probability
    return x * (rng.random(x.shape) < keep) * keep


def mask_shared_across_the_batch(x, drop_probability, training, rng):
    if not training:
        return x
    keep = 1 - drop_probability
    mask = rng.random(x.shape[1:]) < keep  # one mask for every example
    return x * mask / keep


def left_on_at_test(x, drop_probability, training, rng):
    keep = 1 - drop_probability
    return x * (rng.random(x.shape) < keep) / keep


def changes_its_input(x, drop_probability, training, rng):
    if not training:
        return x
    keep = 1 - drop_probability
    x *= (rng.random(x.shape) < keep) / keep
    return x


LIKELY_BUGS = {
    "inverted_dropout": [
        (keep_and_drop_swapped,
         "Keep and drop probabilities are swapped: with drop_probability=0.3 your training pass zeroes about 70% "
         "of the elements. An element is KEPT with probability 1 - drop_probability (the lecture's code calls "
         "the keep probability p; torch's nn.Dropout(p) and this exercise use the drop probability)."),
        (scaled_at_test_instead_of_training,
         "This is vanilla dropout: it multiplies by the keep probability at test time instead of dividing the "
         "survivors by it in training. Inverted dropout scales in training (x * mask / keep) and returns x "
         "unchanged at test time."),
        (never_scaled,
         "The survivors are not scaled: the mean of a training pass is keep * x, not x. Divide the kept "
         "elements by the keep probability 1 - drop_probability."),
        (multiplied_by_keep,
         "The survivors are multiplied by the keep probability instead of divided by it: the mean of a training "
         "pass is keep² * x. Divide by 1 - drop_probability."),
        (mask_shared_across_the_batch,
         "Every example (row) gets the same mask: draw one random number per element, rng.random(x.shape), not "
         "one per column. With a shared mask the same units vanish for the whole batch."),
        (left_on_at_test,
         "Dropout is still on at test time (training=False): the test pass must return the activations "
         "unchanged, with no mask at all."),
        (changes_its_input,
         "Your function changes x in place (x *= ...): the caller's activations are lost. Return a new array, "
         "e.g. x * mask / keep."),
    ],
}
