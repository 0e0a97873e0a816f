"""Notebook 07's claim checks fail when their claims fail.

The cells tagged ``claim-24`` ... ``claim-27`` in the instructor notebook (claim 27 is shared with notebook 08:
here its DropConnect part), and the lecture correction the notebook asserts outside any claim (tagged
``correction-weight-decay``), run again after the notebook's import cell with a known-wrong input patched into
course_lib (tests/claim_cells.py), and the notebook's own ``assert`` must fail, at the line named. nbval runs
the same cells with the real library and sees them pass. Claims 26 and 27 build on claim 24's cell (26 on its
network trained with dropout, 27 on its network without) and that cell carries their tags too, so that it runs
first; a wrong input for 26 or 27 leaves it passing and makes the later cell fail.

    claim  wrong input                                                the notebook assert that fails
    -----  ---------------------------------------------------------  -----------------------------------------
     24    the "dropout" network built without dropout                the train-test gap shrinks by > 0.08
     25    inverted dropout reading drop_probability as the keep      ours = the lecture's code with the same
           probability (the lecture's p)                               draws, drop_probability = 1 - its p
     25    inverted dropout that never scales the survivors           mean of 20,000 passes = test (inverted)
     25    vanilla dropout that forgets its test-time factor          mean of 20,000 passes = test (vanilla)
     26    random passes that all draw the same mask                  agreement grows from < 0.85 to > 0.93
     26    random passes in evaluation mode (no dropout at all)       agreement grows from < 0.85 to > 0.93
     26    passes drawn in identical pairs (M/2 independent masks)    the last-layer-only average falls as 1/√M
     27    the "DropConnect" network built without DropConnect        the train-test gap shrinks by > 0.08
     wd    AdamW computed as Adam with L2 in the loss                 ours = torch's, both ways
"""

from dataclasses import dataclass

import pytest
import torch
from claim_cells import failing_assert, run_cells, tagged_cells

from course_lib import optim, regularization, training

NOTEBOOK = "07_dropout"
# The originals, for wrong inputs that call them after the module attribute has been replaced.
INVERTED, VANILLA, EACH_RANDOM_PASS = regularization.inverted_dropout, regularization.vanilla_dropout, \
    regularization.each_random_pass
TORCH_ADAM_STEP = optim.torch_adam_step


def keep_read_as_drop(x, drop_probability, training=True, generator=None):
    """The lecture's p (a keep probability) passed where the drop probability is expected."""
    return INVERTED(x, 1 - drop_probability, training, generator)


def never_scaled(x, drop_probability, training=True, generator=None):
    """'Inverted' dropout without the 1 / keep: its training mean is keep * x, its test pass x."""
    return VANILLA(x, drop_probability, True, generator) if training else x


def vanilla_without_test_factor(x, drop_probability, training=True, generator=None):
    """Vanilla dropout whose test pass forgets the factor keep."""
    return VANILLA(x, drop_probability, training, generator) if training else x


# Claim 26 averages the passes of regularization.each_random_pass (through random_pass_averages): the wrong
# passes replace it.
def one_mask_for_every_pass(model, inputs, passes, seed=0):
    """The generator reseeded before every pass: the same mask each time, nothing to average."""
    for _ in range(passes):
        yield from EACH_RANDOM_PASS(model, inputs, 1, seed)


def masks_in_pairs(model, inputs, passes, seed=0):
    """Each mask used for two passes in a row: M passes average only M/2 independent masks."""
    for index, output in enumerate(EACH_RANDOM_PASS(model, inputs, (passes + 1) // 2, seed)):
        yield output
        if 2 * index + 1 < passes:
            yield output


def passes_in_evaluation_mode(model, inputs, passes, seed=0):
    """The passes run in evaluation mode: every one is the scaled network."""
    was_training = model.training
    with torch.no_grad():
        output = model.eval()(inputs)
    model.train(was_training)
    for _ in range(passes):
        yield output


def adamw_as_adam(x, dx, learning_rate, weight_decay=0.0, decoupled=False, **others):
    """L2 in the loss passed off as decoupled weight decay."""
    return TORCH_ADAM_STEP(x, dx, learning_rate, weight_decay=weight_decay, decoupled=False, **others)


def without_dropout(sizes, drop_probability, seed=0, **_):
    return training.mlp(sizes, seed)


@dataclass(frozen=True)
class WrongInput:
    tag: str
    what: str
    module: object
    name: str
    wrong: object
    fails_at: str  # a piece of the notebook's assert line that must fail
    cells: tuple = None  # which of the tag's cells to run (all by default)


WRONG_INPUTS = [
    WrongInput("claim-24", "no dropout", regularization, "dropout_mlp", without_dropout,
               'gap["dropout 0.3"] < gap["no dropout"] - 0.08'),
    WrongInput("claim-25", "keep read as drop", regularization, "inverted_dropout", keep_read_as_drop,
               "np.array_equal(ours, H1 * U1)", cells=(0,)),
    WrongInput("claim-25", "inverted, never scaled", regularization, "inverted_dropout", never_scaled,
               "assert inverted_off < 0.01", cells=(1,)),
    WrongInput("claim-25", "vanilla, test factor forgotten", regularization, "vanilla_dropout",
               vanilla_without_test_factor, "assert vanilla_off < 0.01", cells=(1,)),
    WrongInput("claim-26", "one mask for every pass", regularization, "each_random_pass", one_mask_for_every_pass,
               "agreement[0] < 0.85 and agreement[-1] > 0.93"),
    WrongInput("claim-26", "passes in evaluation mode", regularization, "each_random_pass",
               passes_in_evaluation_mode, "agreement[0] < 0.85 and agreement[-1] > 0.93"),
    WrongInput("claim-26", "masks in pairs", regularization, "each_random_pass", masks_in_pairs,
               'abs(slope["last layer only"] + 0.5)'),
    WrongInput("claim-27", "no DropConnect", regularization, "dropconnect_mlp", without_dropout,
               'compared["DropConnect 0.3"][0] < compared["no DropConnect"][0] - 0.08'),
    WrongInput("correction-weight-decay", "AdamW as Adam", optim, "torch_adam_step", adamw_as_adam,
               "np.allclose(theirs, ours, rtol=0, atol=1e-12)"),
]


def test_every_claim_cell_has_a_wrong_input_and_asserts():
    for tag in ("claim-24", "claim-25", "claim-26", "claim-27", "correction-weight-decay"):
        cells = tagged_cells(tag, NOTEBOOK).cells
        assert all("assert " in source for source in cells), f"a cell tagged {tag} asserts nothing"
        ran = {index for wrong in WRONG_INPUTS if wrong.tag == tag for index in (wrong.cells or range(len(cells)))}
        assert ran == set(range(len(cells))), f"a cell tagged {tag} has no wrong input"


@pytest.mark.parametrize("wrong", WRONG_INPUTS, ids=[f"{w.tag}-{w.what}" for w in WRONG_INPUTS])
def test_claim_check_fails_on_a_wrong_input(wrong, monkeypatch):
    monkeypatch.setattr(wrong.module, wrong.name, wrong.wrong)
    with pytest.raises(AssertionError) as error:
        run_cells(wrong.tag, wrong.cells, NOTEBOOK)
    line = failing_assert(wrong.tag, error.value, NOTEBOOK)
    assert line is not None, f"{wrong.tag}: the AssertionError did not come from the cell's own assert"
    assert wrong.fails_at in line, f"{wrong.tag}: failed at {line!r}, expected {wrong.fails_at!r}"
