"""data/digits.npz: the copy of scikit-learn's 8x8 digits that course_lib.data.digits() reads."""

import importlib.util
import subprocess
import sys

import numpy as np
import torch

from course_lib import data


def _make_digits():
    spec = importlib.util.spec_from_file_location("make_digits", data.DATA_DIR / "make_digits.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_digits_are_scikit_learns():
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    shipped = np.load(data.DATA_DIR / "digits.npz")
    np.testing.assert_array_equal(shipped["images"], images)
    np.testing.assert_array_equal(shipped["labels"], labels)
    fresh = _make_digits().generate()  # the regeneration script makes the same arrays
    for key, array in fresh.items():
        np.testing.assert_array_equal(shipped[key], array, err_msg=key)
        assert shipped[key].dtype == array.dtype == np.uint8


def test_the_split_is_the_one_scikit_learns_digits_gave():
    # The split and scaling of data.digits() before the copy was shipped: load_digits(), pixels / 16, a
    # permutation by numpy's default_rng(seed), the first quarter for testing.
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(labels))
    test, train = order[:449], order[449:]
    split = data.digits.__wrapped__()
    assert torch.equal(split.x_train, torch.from_numpy((images[train] / 16.0).astype(np.float32)))
    assert torch.equal(split.y_test, torch.from_numpy(labels[test].astype(np.int64)))


def test_loading_the_digits_does_not_import_scikit_learn():
    code = ("import sys; from course_lib import data; split = data.digits(); "
            "print(len(split.y_train), 'sklearn' in sys.modules)")
    printed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert printed.stdout.split() == ["1348", "False"]
