"""Offline data (shipped and verified) and the training loop (repeatable, stops on divergence)."""

import shutil

import numpy as np
import pytest
import torch

from course_lib import data, optim, training


def test_shipped_mnist1d_is_what_the_generator_makes():
    pytest.importorskip("mnist1d")
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("make_mnist1d", data.DATA_DIR / "make_mnist1d.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["make_mnist1d"] = module
    spec.loader.exec_module(module)
    fresh = module.generate()
    shipped = np.load(data.DATA_DIR / "mnist1d.npz")
    for key, array in fresh.items():
        np.testing.assert_allclose(shipped[key], array, rtol=1e-6, atol=1e-6, err_msg=key)


def test_mnist1d_shapes_and_published_size():
    dataset = data.mnist1d()
    assert tuple(dataset.x_train.shape) == (4000, 40) and tuple(dataset.x_test.shape) == (1000, 40)
    assert dataset.num_classes == 10 and dataset.x_train.dtype == torch.float32


def test_a_damaged_data_file_is_refused(tmp_path, monkeypatch):
    shutil.copy(data.DATA_DIR / "SHA256SUMS", tmp_path / "SHA256SUMS")
    damaged = bytearray((data.DATA_DIR / "mnist1d.npz").read_bytes())
    damaged[100] ^= 0xFF
    (tmp_path / "mnist1d.npz").write_bytes(bytes(damaged))
    monkeypatch.setattr(data, "DATA_DIR", tmp_path)
    with pytest.raises(ValueError, match="does not match its sha256"):
        data._verified("mnist1d.npz")


def _rows(x, y):
    """The (pixels, label) rows of a split, as a sorted array: a multiset that can be compared."""
    rows = np.c_[np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)]
    return rows[np.lexsort(rows.T[::-1])]


def test_digits_split_is_fixed_and_disjoint():
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    split = data.digits.__wrapped__()  # a fresh split, not the cached one
    # Train and test together are the 1797 digits, each exactly once: no digit is in both, none is lost.
    np.testing.assert_array_equal(_rows(torch.cat([split.x_train, split.x_test]), torch.cat([split.y_train,
                                                                                            split.y_test])),
                                  _rows(images / 16.0, labels))
    assert (len(split.y_train), len(split.y_test)) == (1348, 449)
    again, other_seed = data.digits.__wrapped__(), data.digits.__wrapped__(seed=1)
    assert torch.equal(again.x_test, split.x_test) and torch.equal(again.y_train, split.y_train)
    assert not torch.equal(other_seed.y_test, split.y_test)  # the seed, not the file order, fixes the split
    assert float(split.x_train.min()) == 0.0 and float(split.x_train.max()) == 1.0


def run_once(rule, learning_rate, epochs=2):
    model = training.mlp([40, 32, 10], seed=0)
    optimizer = optim.RuleOptimizer(model.parameters(), rule, learning_rate=learning_rate)
    return training.train(model, optimizer, data.mnist1d(), epochs=epochs, seed=0)


def test_training_is_repeatable_and_learns():
    first, again = run_once(optim.adam, 1e-2), run_once(optim.adam, 1e-2)
    assert first.step_loss == again.step_loss and first.test_accuracy == again.test_accuracy
    assert first.step_loss[-1] < first.step_loss[0] and first.test_accuracy[-1] > 0.2


def test_training_stops_when_the_loss_is_not_finite():
    history = run_once(optim.sgd, 1e6, epochs=3)
    assert history.diverged_at is not None and len(history.step_loss) == history.diverged_at - 1


def test_single_thread_restores_the_thread_count():
    before = torch.get_num_threads()
    with training.single_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
