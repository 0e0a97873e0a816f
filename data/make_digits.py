"""Regenerate data/digits.npz: scikit-learn's 1797 handwritten 8x8 digits (UCI ML hand-written digits,
Alpaydin & Kaynak 1998, as load_digits() ships them), stored as they come: pixels 0-16 and labels 0-9.

    python data/make_digits.py

Shipping the 45 KB file spares every notebook that uses the digits the import of scikit-learn (about 40-70
MB of memory and a second or more in a kernel); course_lib.data.digits() reads this file.
"""

from pathlib import Path

import numpy as np


def generate():
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    return {"images": images.astype(np.uint8), "labels": labels.astype(np.uint8)}


if __name__ == "__main__":
    target = Path(__file__).with_name("digits.npz")
    np.savez_compressed(target, **generate())
    print(f"wrote {target}")
