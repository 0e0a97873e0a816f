"""Regenerate data/mnist1d.npz: the MNIST-1D benchmark (Greydanus 2020), generated offline.

    python data/make_mnist1d.py

The mnist1d package generates the published data from its default arguments (seed 42) in a few seconds;
shipping the result keeps that time out of every notebook. Never call mnist1d's get_dataset(): it downloads.
"""

from pathlib import Path

import numpy as np
from mnist1d.data import get_dataset_args, make_dataset


def generate():
    data = make_dataset(get_dataset_args())
    return {
        "x_train": data["x"].astype(np.float32), "y_train": data["y"].astype(np.int64),
        "x_test": data["x_test"].astype(np.float32), "y_test": data["y_test"].astype(np.int64),
    }


if __name__ == "__main__":
    target = Path(__file__).with_name("mnist1d.npz")
    np.savez_compressed(target, **generate())
    print(f"wrote {target}")
