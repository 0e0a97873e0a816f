"""Regenerate data/transfer_table.json: notebook 10's tables of transfer-learning runs, too long to train in the
notebook (60 runs of 1000 Adam steps, a few minutes of CPU on one thread).

    python data/make_transfer_table.py

Every run starts from the shipped pretrained network (data/mnist1d_cnn_classes_0-4.pt, made by
make_pretrained_cnn.py) or, for "from scratch", from a fresh one, and trains in one of the four regimes of
course_lib.transfer.REGIMES for 1000 Adam steps (learning rate 1e-3, the lecture's default) of 50 examples.
Two tables:

- "similar": MNIST-1D's digits 5-9 (the pretraining saw 0-4 from the same generator), N = 10, 50 and 200
  labelled examples per class, tested on all 493 test signals of digits 5-9;
- "different": scikit-learn's 8x8 digits read as 64-sample signals (course_lib.transfer.digits_as_signals),
  N = 10 and 100 labelled examples per class, tested on its 450 test digits;

each with three random draws of the labelled examples (seeds 0, 1, 2; the seed also sets the new head's and
the fresh network's initial weights and the order of the batches). The file holds the settings and every
run's final test accuracy and test-accuracy curve. tests/test_transfer.py re-runs a part and compares.

After regenerating, update data/SHA256SUMS.
"""

import hashlib
import json
from pathlib import Path

from course_lib import data, transfer

SETTINGS = {"steps": 1000, "learning_rate": 1e-3, "batch_size": 50, "evaluate_every": 100}
SEEDS = (0, 1, 2)
COUNTS = {"similar": (10, 50, 200), "different": (10, 100)}


def target_dataset(name):
    """The new task: "similar" (MNIST-1D's digits 5-9, relabelled 0-4) or "different" (8x8 digits)."""
    if name == "similar":
        return data.mnist1d().classes_only(transfer.TARGET_CLASSES)
    return transfer.digits_as_signals()


def generate(name, counts=None, regimes=transfer.REGIMES, seeds=SEEDS):
    """One table (a JSON-ready dict), by default the whole of it."""
    counts = COUNTS[name] if counts is None else counts
    return transfer.transfer_table(transfer.pretrained_cnn(), target_dataset(name), counts, regimes, seeds,
                                   **SETTINGS)


if __name__ == "__main__":
    target = Path(__file__).with_name(transfer.TABLE_FILE)
    target.write_text(json.dumps({name: generate(name) for name in COUNTS}, indent=1) + "\n")
    print(f"wrote {target}")
    print(f"sha256 {hashlib.sha256(target.read_bytes()).hexdigest()}  (update data/SHA256SUMS)")
