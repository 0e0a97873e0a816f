"""Datasets that need no download: MNIST-1D and scikit-learn's 8x8 digits, both shipped in data/.

Each loader returns a ``Dataset`` of float32 inputs and int64 labels as torch tensors, split into train and
test the same way on every call.
"""

import hashlib
import os
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from course_lib.validation import is_integer, require

__all__ = ["DATA_DIR", "Dataset", "digits", "mnist1d", "verified"]

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

    def training_subset(self, size, seed=0):
        """The same dataset with only ``size`` training examples, drawn at random (the test set is unchanged)."""
        require(is_integer(size, 1) and size <= len(self.y_train), "size",
                f"an integer in [1, {len(self.y_train)}]", size)
        chosen = torch.randperm(len(self.y_train), generator=torch.Generator().manual_seed(seed))[:size]
        return replace(self, x_train=self.x_train[chosen], y_train=self.y_train[chosen],
                       name=f"{self.name} ({size} training examples)")

    def per_class(self, count, seed=0):
        """The same dataset with ``count`` training examples of each class, drawn at random."""
        require(is_integer(count, 1), "count", "an integer >= 1", count)
        generator = torch.Generator().manual_seed(seed)
        chosen = []
        for label in range(self.num_classes):
            members = torch.nonzero(self.y_train == label).flatten()
            require(len(members) >= count, "count", f"at most {len(members)} (the examples of class {label})",
                    count)
            chosen.append(members[torch.randperm(len(members), generator=generator)[:count]])
        chosen = torch.cat(chosen)
        return replace(self, x_train=self.x_train[chosen], y_train=self.y_train[chosen],
                       name=f"{self.name} ({count} per class)")

    def classes_only(self, classes):
        """The examples of ``classes`` only, relabelled 0, 1, ... in the order given (e.g. (5, 6, 7, 8, 9))."""
        classes = list(classes)
        require(len(classes) > 0 and len(set(classes)) == len(classes)
                and all(is_integer(c, 0) and c < self.num_classes for c in classes), "classes",
                f"distinct class labels in [0, {self.num_classes - 1}]", classes)
        relabel = torch.full((self.num_classes,), -1, dtype=torch.int64)
        relabel[torch.tensor(classes)] = torch.arange(len(classes))
        keep_train, keep_test = relabel[self.y_train] >= 0, relabel[self.y_test] >= 0
        return Dataset(self.x_train[keep_train], relabel[self.y_train[keep_train]], self.x_test[keep_test],
                       relabel[self.y_test[keep_test]], name=f"{self.name} (classes {classes})")


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
    """scikit-learn's 1797 handwritten 8x8 digits, pixels scaled to [0, 1], a fixed shuffled split.

    Read from data/digits.npz (the copy data/make_digits.py takes from scikit-learn's wheel), so that a notebook
    does not import scikit-learn for them.
    """
    arrays = np.load(_verified("digits.npz"))
    images, labels = arrays["images"].astype(np.float64), arrays["labels"]
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
        raise ValueError(f"{path} does not match its sha256 in data/SHA256SUMS: the file is damaged or stale "
                         "(data/README.md says which script regenerates it)")
    return path


def verified(filename):
    """The path of the shipped file ``data/<filename>``, after checking its sha256 against data/SHA256SUMS.

    A missing file raises FileNotFoundError, a file whose hash differs (damaged, tampered with, or regenerated
    without updating SHA256SUMS) raises ValueError: nothing unverified is ever loaded.
    """
    return _verified(filename)
