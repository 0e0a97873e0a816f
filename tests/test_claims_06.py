"""Notebook 06's claim checks can fail: each claim cell (tagged claim-NN), re-run with a known-wrong input
injected into the library it calls, must raise AssertionError.

The cells are run as the notebook runs them, after its import cell, in a fresh namespace; the wrong input is
patched into course_lib with pytest's monkeypatch (undone after each test). Each claim trains for a few
seconds on one thread.
"""

import json
from pathlib import Path

import pytest
import torch

from course_lib import averaging, ensembles

NOTEBOOK = (Path(__file__).resolve().parents[1] / "instructor" / "source" / "06_ensembles_and_averaging"
            / "06_ensembles_and_averaging.ipynb")


def cells():
    notebook = json.loads(NOTEBOOK.read_text())
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def source(cell):
    return "".join(cell["source"])


def claim_cell(number):
    tagged = [cell for cell in cells() if f"claim-{number}" in cell.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"expected one cell tagged claim-{number}, found {len(tagged)}"
    return source(tagged[0])


def run_claim(number):
    namespace = {}
    exec(source(cells()[0]), namespace)  # the import cell
    exec(claim_cell(number), namespace)
    return namespace


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
        assert "assert " in claim_cell(number)


@pytest.mark.parametrize("number", sorted(WRONG_INPUTS))
def test_a_claim_check_fails_on_a_known_wrong_input(number, monkeypatch):
    module, name, wrong = WRONG_INPUTS[number]
    monkeypatch.setattr(module, name, wrong)
    with pytest.raises(AssertionError):
        run_claim(number)
