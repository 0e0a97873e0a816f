"""Notebook 07's claim checks fail when the claim fails: each claim cell (tagged ``claim-NN``) runs again
after the notebook's import cell, with a known-wrong input injected into the library, and must raise
AssertionError. (nbval runs the same cells with the real library and requires them to pass.)"""

import pytest
import torch
from notebook_cells import run_tagged_cell, tagged_sources

from course_lib import optim, regularization, training

NOTEBOOK = "07_dropout"


def no_test_time_scaling(x, drop_probability, training=True, generator=None):
    """'Inverted' dropout that never scales: its training mean is keep * x, not x."""
    return regularization.vanilla_dropout(x, drop_probability, True, generator) if training else x


real_random_passes = regularization.random_passes


def one_mask_for_every_pass(model, inputs, passes, seed=0):
    """The same mask in every pass (the generator reseeded each time): averaging cannot approach anything."""
    return torch.cat([real_random_passes(model, inputs, 1, seed) for _ in range(passes)])


real_torch_adam_step = optim.torch_adam_step


def adam_called_adamw(x, dx, learning_rate, weight_decay=0.0, decoupled=False, **others):
    """L2 in the loss passed off as decoupled weight decay."""
    return real_torch_adam_step(x, dx, learning_rate, weight_decay=weight_decay, decoupled=False, **others)


WRONG = {
    "claim-25": ("inverted_dropout", no_test_time_scaling, regularization),
    "claim-24": ("dropout_mlp", lambda sizes, drop_probability, seed=0: training.mlp(sizes, seed), regularization),
    "claim-26": ("random_passes", one_mask_for_every_pass, regularization),
    "claim-27-dropconnect": ("dropconnect_mlp", lambda sizes, drop_probability, seed=0: training.mlp(sizes, seed),
                             regularization),
    "correction-weight-decay": ("torch_adam_step", adam_called_adamw, optim),
}


def test_every_claim_cell_has_a_wrong_input():
    tagged = tagged_sources(NOTEBOOK)
    claims = {tag for tag in tagged if tag.startswith(("claim-", "correction-"))}
    assert claims == set(WRONG)


@pytest.mark.parametrize("tag", sorted(WRONG))
def test_the_claim_check_fails_on_a_wrong_input(tag, monkeypatch):
    name, wrong, module = WRONG[tag]
    monkeypatch.setattr(module, name, wrong)
    with pytest.raises(AssertionError):
        run_tagged_cell(NOTEBOOK, tag)
