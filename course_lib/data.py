"""Datasets that need no download: MNIST-1D (shipped in data/) and scikit-learn's 8x8 digits (in its wheel).

Each loader returns a ``Dataset`` of float32 inputs and int64 labels as torch tensors, split into train and
test the same way on every call.
"""

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

__all__ = ["DATA_DIR", "Dataset", "digits", "mnist1d"]

DATA_DIR = Path(os.environ.get("COURSE_DATA_DIR", Path(__file__).resolve().parent.parent / "data"))


@dataclass(frozen=True)
class Dataset:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    name: str

    @property
    def num_features(self):
        return self.x_train.shape[1]

    @property
    def num_classes(self):
        return int(self.y_train.max()) + 1


@lru_cache(maxsize=1)
def mnist1d():
    """MNIST-1D (Greydanus 2020): 4000 train / 1000 test signals of 40 samples, 10 classes.

    Published baselines: logistic regression 32%, MLP 68%, CNN 94% test accuracy. data/make_mnist1d.py
    regenerates the file with the mnist1d package.
    """
    arrays = np.load(_verified("mnist1d.npz"))
    return Dataset(*(torch.from_numpy(arrays[key]) for key in ("x_train", "y_train", "x_test", "y_test")),
                   name="MNIST-1D")


@lru_cache(maxsize=1)
def digits(test_fraction=0.25, seed=0):
    """scikit-learn's 1797 handwritten 8x8 digits, pixels scaled to [0, 1], a fixed shuffled split."""
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    order = np.random.default_rng(seed).permutation(len(labels))
    n_test = int(round(test_fraction * len(labels)))
    test, train = order[:n_test], order[n_test:]
    x = torch.from_numpy((images / 16.0).astype(np.float32))
    y = torch.from_numpy(labels.astype(np.int64))
    return Dataset(x[train], y[train], x[test], y[test], name="digits")


def _verified(filename):
    """The path of a shipped data file, after checking it against data/SHA256SUMS."""
    path = DATA_DIR / filename
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: the workbook ships it in data/ (see data/README.md)")
    expected = dict(line.split()[::-1] for line in (DATA_DIR / "SHA256SUMS").read_text().splitlines() if line)
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if expected.get(filename) != actual:
        raise ValueError(f"{path} does not match its sha256 in data/SHA256SUMS: the file is damaged or stale")
    return path
