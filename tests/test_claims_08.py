"""Notebook 08's claim checks fail when the claim fails: each claim cell (tagged ``claim-NN-...``) runs again
after the notebook's import cell, with a known-wrong input injected into the library, and must raise
AssertionError. (nbval runs the same cells with the real library and requires them to pass.)"""

import pytest
import torch
from notebook_cells import run_tagged_cell, tagged_sources

from course_lib import augmentation, regularization

NOTEBOOK = "08_randomness_regularizers"


def no_shift(signals, generator=None, *, max_shift):
    """An 'augmentation' that changes nothing."""
    return signals


real_pool = regularization.fractional_max_pool2d


def width_and_height_swapped(x, output_size, kernel_size=2, samples=None, generator=None):
    """torch's _random_samples read the wrong way round (index 0 taken as the height)."""
    return real_pool(x, output_size, kernel_size, None if samples is None else samples[..., [1, 0]], generator)


real_random_passes = regularization.random_passes


def one_draw_for_every_pass(model, inputs, passes, seed=0):
    """The same pooling windows in every pass: averaging them changes nothing."""
    return torch.cat([real_random_passes(model, inputs, 1, seed) for _ in range(passes)])


def never_skipped(num_blocks, final_survival_probability):
    """Survival probabilities that are all 1: stochastic depth switched off."""
    return [1.0] * num_blocks


WRONG = {
    "claim-27-augmentation": ("random_circular_shift", no_shift, augmentation),
    "claim-27-fmp-torch": ("fractional_max_pool2d", width_and_height_swapped, regularization),
    "claim-27-fmp": ("random_passes", one_draw_for_every_pass, regularization),
    "claim-27-stochastic-depth": ("linear_survival_probabilities", never_skipped, regularization),
}


def test_every_claim_cell_has_a_wrong_input():
    tagged = tagged_sources(NOTEBOOK)
    assert {tag for tag in tagged if tag.startswith("claim-")} == set(WRONG)


@pytest.mark.parametrize("tag", sorted(WRONG))
def test_the_claim_check_fails_on_a_wrong_input(tag, monkeypatch):
    name, wrong, module = WRONG[tag]
    monkeypatch.setattr(module, name, wrong)
    with pytest.raises(AssertionError):
        run_tagged_cell(NOTEBOOK, tag)
