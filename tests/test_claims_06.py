"""Notebook 06's claim checks can fail: each claim cell (tagged claim-NN), re-run with a known-wrong input
injected into the library it calls, must raise AssertionError.

The cells are run as the notebook runs them, after its import cell, in a fresh namespace (tests/claim_cells.py);
the wrong input is patched into course_lib with pytest's monkeypatch (undone after each test). Each claim
trains for a few seconds on one thread.
"""

import pytest
import torch
from claim_cells import claim_cells, run_claim

from course_lib import averaging, ensembles


def first_member_only(logits):
    """No ensembling: the 'ensemble' is its first member."""
    return torch.softmax(torch.as_tensor(logits)[0], dim=-1)


def last_member_only(logits):
    return torch.softmax(torch.as_tensor(logits)[-1], dim=-1)


def swapped_update(average, weights, decay):
    """The exercise's first likely bug: old and new weights swapped (the 'average' follows the weights)."""
    return decay * weights + (1 - decay) * average


WRONG_INPUTS = {
    21: (ensembles, "average_probabilities", first_member_only),
    22: (ensembles, "average_probabilities", last_member_only),
    23: (averaging, "exponential_update", swapped_update),
}


def test_the_notebook_tags_each_claim_once():
    for number in WRONG_INPUTS:
        (cell,) = claim_cells(number).cells
        assert "assert " in cell


@pytest.mark.parametrize("number", sorted(WRONG_INPUTS))
def test_a_claim_check_fails_on_a_known_wrong_input(number, monkeypatch):
    module, name, wrong = WRONG_INPUTS[number]
    monkeypatch.setattr(module, name, wrong)
    with pytest.raises(AssertionError):
        run_claim(number)
