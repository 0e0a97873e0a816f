"""Notebook 08's claim checks fail when their claim fails.

Claim 27 is shown in two notebooks: DropConnect in 07 (tests/test_claims_07.py), data augmentation, fractional
max pooling and stochastic depth here, in four cells tagged ``claim-27``. Each cell runs again after the
notebook's import cell with a known-wrong input patched into course_lib (tests/claim_cells.py), and the
notebook's own ``assert`` must fail, at the line named. nbval runs the same cells with the real library and sees
them pass. The cells train through course_lib.regularization's experiment functions (train_with_shifts,
train_pooling_cnn, train_residual_mlp), which look the patched names up when they run.

    cell                 wrong input                                       the notebook assert that fails
    -------------------  ------------------------------------------------  ----------------------------------
    0 augmentation       "shifts" that change nothing                      ±5 beats no shift by > 6 points
    0 augmentation       shifts capped at ±5 (±20 asked, ±5 drawn)         ±5 beats ±20 by > 2.5 points
    1 torch's FMP        torch's _random_samples read height first         ours = nn.FractionalMaxPool2d
    2 FMP averaged       the same pooling windows in every test pass       10 passes beat one by > 1 point
    3 stochastic depth   p_l read as the drop probability (torchvision's)  blocks computed = mean of p_l
    3 stochastic depth   survival probabilities all 1 (nothing skipped)    the test loss falls by > 0.2
"""

from dataclasses import dataclass

import pytest
import torch
from claim_cells import claim_cells, failing_assert, run_claim

from course_lib import augmentation, regularization

NOTEBOOK = "08_randomness_regularizers"
AUGMENTATION, TORCH_POOLING, AVERAGING, STOCHASTIC_DEPTH = range(4)  # claim 27's cells here, in order
# The originals, for wrong inputs that call them after the module attribute has been replaced.
SHIFT, POOL = augmentation.random_circular_shift, regularization.fractional_max_pool2d
RANDOM_PASSES, STOCHASTIC_DEPTH_BLOCK = regularization.random_passes, regularization.stochastic_depth


def no_shift(signals, generator=None, *, max_shift):
    """An 'augmentation' that changes nothing."""
    return signals


def capped_at_five(signals, generator=None, *, max_shift):
    """Shifts clipped to a fixed range: the ±20 run draws the ±5 run's shifts."""
    return SHIFT(signals, generator, max_shift=min(max_shift, 5))


def height_first(x, output_size, kernel_size=2, samples=None, generator=None):
    """torch's _random_samples read the wrong way round (index 0 taken as the height)."""
    return POOL(x, output_size, kernel_size, None if samples is None else samples[..., [1, 0]], generator)


def one_draw_for_every_pass(model, inputs, passes, seed=0):
    """The generator reseeded before every pass: the same pooling windows each time, nothing to average."""
    return torch.cat([RANDOM_PASSES(model, inputs, 1, seed) for _ in range(passes)])


def never_skipped(num_blocks, final_survival_probability):
    """Survival probabilities that are all 1: stochastic depth switched off."""
    return [1.0] * num_blocks


def survival_read_as_drop(x, branch, survival_probability, training=True, generator=None):
    """A block run with probability 1 - p_l: p_l taken for the drop probability, as torchvision's p is."""
    drop = survival_probability if survival_probability < 1 else 0.0
    return STOCHASTIC_DEPTH_BLOCK(x, branch, 1 - drop, training, generator)


@dataclass(frozen=True)
class WrongInput:
    cell: int
    what: str
    module: object
    name: str
    wrong: object
    fails_at: str  # a piece of the notebook's assert line that must fail


WRONG_INPUTS = [
    WrongInput(AUGMENTATION, "no shift", augmentation, "random_circular_shift", no_shift,
               "sweep[5] > sweep[0] + 0.06"),
    WrongInput(AUGMENTATION, "capped at five", augmentation, "random_circular_shift", capped_at_five,
               "sweep[5] > sweep[20] + 0.025"),
    WrongInput(TORCH_POOLING, "height first", regularization, "fractional_max_pool2d", height_first,
               "torch.equal(ours, theirs)"),
    WrongInput(AVERAGING, "one draw for every pass", regularization, "random_passes", one_draw_for_every_pass,
               "averaged > single.mean() + 0.01"),
    WrongInput(STOCHASTIC_DEPTH, "survival read as drop", regularization, "stochastic_depth",
               survival_read_as_drop,
               'abs(runs["stochastic depth"]["blocks computed"] - expected) < 0.03'),
    WrongInput(STOCHASTIC_DEPTH, "never skipped", regularization, "linear_survival_probabilities", never_skipped,
               'runs["stochastic depth"]["test loss"] < runs["plain residual"]["test loss"] - 0.2'),
]


def test_the_claim_cells_are_found_and_each_has_a_wrong_input():
    cells = claim_cells(27, NOTEBOOK).cells
    names = ("random_circular_shift", "FractionalMaxPool2d", "random_passes", "train_residual_mlp")
    assert all(name in source for name, source in zip(names, cells, strict=True))
    assert all("assert " in source for source in cells)
    assert {wrong.cell for wrong in WRONG_INPUTS} == set(range(len(cells)))


@pytest.mark.parametrize("wrong", WRONG_INPUTS, ids=[f"cell{w.cell}-{w.what}" for w in WRONG_INPUTS])
def test_claim_check_fails_on_a_wrong_input(wrong, monkeypatch):
    monkeypatch.setattr(wrong.module, wrong.name, wrong.wrong)
    with pytest.raises(AssertionError) as error:
        run_claim(27, cells=(wrong.cell,), notebook=NOTEBOOK)
    line = failing_assert(27, error.value, NOTEBOOK)
    assert line is not None, "claim 27: the AssertionError did not come from the cell's own assert"
    assert wrong.fails_at in line, f"claim 27 cell {wrong.cell}: failed at {line!r}, expected {wrong.fails_at!r}"
