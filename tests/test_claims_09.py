"""Notebook 09's claim checks fail on known-wrong inputs: each claim cell, re-run with a handicapped model or a
buggy batch norm in place, must raise AssertionError (nbval runs the cells as they are and sees them pass)."""

import pytest
import torch
from claim_cells import claim_cells, run_claim

from course_lib import batch_norm
from course_lib.bugs import LIKELY_BUGS

TRAIN_AND_TEST, LEARNING_RATES = 0, 1  # the two cells of claim 28


def without_batch_norm(monkeypatch):
    """A handicapped model: batch_norm.mlp builds the same network with no batch-norm layer."""
    real_mlp = batch_norm.mlp
    monkeypatch.setattr(batch_norm, "mlp", lambda sizes, seed=0, batch_norm=True, **kw: real_mlp(
        sizes, seed, batch_norm=False, **kw))


def bug(words):
    """The likely bug of batchnorm_forward whose explanation contains ``words``."""
    return next(variant for variant, explanation in LIKELY_BUGS["batchnorm_forward"] if words in explanation)


def test_the_claim_cells_are_found():
    cells = claim_cells(28).cells
    assert "outputs_in_training_mode" in cells[TRAIN_AND_TEST] and "learning_rate_sweep" in cells[LEARNING_RATES]


def test_train_and_test_mode_claim_fails_without_batch_norm(monkeypatch):
    without_batch_norm(monkeypatch)
    with pytest.raises(AssertionError):
        run_claim(28, cells=[TRAIN_AND_TEST])


def test_train_and_test_mode_claim_fails_when_test_mode_uses_the_batch(monkeypatch):
    """A layer that normalises test batches with their own statistics behaves the same in both modes."""
    wrong = batch_norm.on_arrays(bug("the test batch's own mean and variance"))  # written for numpy arrays
    monkeypatch.setattr(batch_norm, "batchnorm_forward", wrong)
    with pytest.raises(AssertionError):
        run_claim(28, cells=[TRAIN_AND_TEST])


def test_learning_rate_claim_fails_without_batch_norm(monkeypatch):
    without_batch_norm(monkeypatch)
    with pytest.raises(AssertionError):
        run_claim(28, cells=[LEARNING_RATES])


def test_learning_rate_claim_fails_on_shuffled_labels(monkeypatch):
    """With labels shuffled nothing learns, batch norm or not."""
    real = batch_norm.learning_rate_sweep

    def shuffled(dataset, *args, **kwargs):
        labels = dataset.y_train[torch.randperm(len(dataset.y_train), generator=torch.Generator().manual_seed(0))]
        return real(type(dataset)(dataset.x_train, labels, dataset.x_test, dataset.y_test, dataset.name),
                    *args, **kwargs)

    monkeypatch.setattr(batch_norm, "learning_rate_sweep", shuffled)
    with pytest.raises(AssertionError):
        run_claim(28, cells=[LEARNING_RATES])
