"""Regenerate data/regularizer_table.json: notebook 08's claim-27 experiments over 5 seeds, every setting.

    python data/make_regularizer_table.py      # about a minute of CPU on one thread

The notebook trains only what its claim cells assert, on seed 0 (its CPU budget is 10 s); this table holds
the same experiments, run by the same course_lib functions, over seeds 0-4 (a seed draws the training subset
and sets the initial weights, the order of the batches and the run's random draws; seed 0 is the notebook's
live run):

- augmentation (``regularization.train_with_shifts`` with ``augmentation.random_circular_shift``): random
  circular shifts of up to 0, 2, 5, 10 and 20 samples; final train and test accuracy;
- fractional max pooling (``regularization.train_pooling_cnn``): the network with random windows, tested
  by 10 random passes (``random_passes``, seeded with the run's seed; each pass's accuracy and the accuracy of
  their averaged softmax, ``pass_accuracies``), and the same network trained and tested with fixed windows
  (u = 0.5); final test accuracy;
- stochastic depth (``regularization.train_residual_mlp``): the plain residual MLP (final survival
  probability 1) and stochastic depth (0.5); the share of blocks training computed, final test loss, test
  accuracy and train accuracy.

``made_with`` records the commit the code was at (and whether it had uncommitted changes), the versions
of Python, torch and numpy, and torch's thread count. The runs are deterministic on one machine; across
machines and thread counts training through BLAS is chaotic, so tests/test_regularizer_table.py re-runs a
part and compares within a tolerance, never bytes. After regenerating, update data/SHA256SUMS.
"""

import hashlib
import json
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from course_lib import augmentation, data, regularization

SEEDS = (0, 1, 2, 3, 4)
MAX_SHIFTS = (0, 2, 5, 10, 20)
FINAL_SURVIVAL_PROBABILITIES = (1.0, 0.5)
PASSES, FIXED_SAMPLE = 10, 0.5
# The experiments' settings: the defaults of the course_lib functions (tests/test_regularizer_table.py checks).
SETTINGS = {"augmentation": {"epochs": 30, "training_examples": 1000},
            "fractional_pooling": {"epochs": 20, "training_examples": 2000, "channels": 16},
            "stochastic_depth": {"epochs": 15, "training_examples": 1000}}


def rounded(value):
    return round(float(value), 4)


def augmentation_rows(seeds=SEEDS, max_shifts=MAX_SHIFTS):
    rows = []
    for seed in seeds:
        for max_shift in max_shifts:
            _, history = regularization.train_with_shifts(augmentation.random_circular_shift, max_shift, seed)
            rows.append({"seed": seed, "max_shift": max_shift,
                         "train_accuracy": rounded(history.train_accuracy[-1]),
                         "test_accuracy": rounded(history.test_accuracy[-1])})
    return rows


def fractional_pooling_rows(seeds=SEEDS):
    test = data.mnist1d()
    rows = []
    for seed in seeds:
        random_windows, _ = regularization.train_pooling_cnn(seed)
        passes = regularization.random_passes(random_windows, test.x_test, PASSES, seed=seed)
        single, averaged = regularization.pass_accuracies(passes, test.y_test)
        _, fixed = regularization.train_pooling_cnn(seed, fixed_sample=FIXED_SAMPLE)
        rows.append({"seed": seed, "one_pass": [rounded(a) for a in single], "averaged": rounded(averaged),
                     "fixed_windows": rounded(fixed.test_accuracy[-1])})
    return rows


def stochastic_depth_rows(seeds=SEEDS, final_survival_probabilities=FINAL_SURVIVAL_PROBABILITIES):
    rows = []
    for seed in seeds:
        for final in final_survival_probabilities:
            model, history = regularization.train_residual_mlp(final, seed)
            rows.append({"seed": seed, "final_survival_probability": final,
                         "blocks_computed": rounded(model.evaluated_fraction()),
                         "test_loss": rounded(history.test_loss[-1]),
                         "test_accuracy": rounded(history.test_accuracy[-1]),
                         "train_accuracy": rounded(history.train_accuracy[-1])})
    return rows


def made_with():
    def git(*arguments):
        return subprocess.run(["git", *arguments], cwd=Path(__file__).parent, capture_output=True, text=True,
                              check=True).stdout.strip()

    # Uncommitted changes to anything but the table itself (which this script rewrites).
    changes = [line for line in git("status", "--porcelain").splitlines()
               if not line.endswith(regularization.TABLE_FILE)]
    return {"commit": git("rev-parse", "HEAD"), "uncommitted_changes": bool(changes),
            "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "torch_threads": torch.get_num_threads(), "machine": platform.machine()}


def generate(seeds=SEEDS):
    """The whole table (a JSON-ready dict)."""
    started = time.process_time()
    table = {"made_with": made_with(),
             "settings": {"seeds": list(seeds),
                          "augmentation": {"max_shifts": list(MAX_SHIFTS), **SETTINGS["augmentation"]},
                          "fractional_pooling": {"passes": PASSES, "fixed_sample": FIXED_SAMPLE,
                                                 **SETTINGS["fractional_pooling"]},
                          "stochastic_depth": {"final_survival_probabilities": list(FINAL_SURVIVAL_PROBABILITIES),
                                               **SETTINGS["stochastic_depth"]}},
             "augmentation": augmentation_rows(seeds),
             "fractional_pooling": fractional_pooling_rows(seeds),
             "stochastic_depth": stochastic_depth_rows(seeds)}
    table["made_with"]["cpu_seconds"] = round(time.process_time() - started)
    return table


if __name__ == "__main__":
    torch.set_num_threads(1)  # as the notebooks' trainings run (training.train), the test passes too
    target = data.DATA_DIR / regularization.TABLE_FILE
    table = generate()
    regularization.RegularizerTable(table)  # the loader's validation, before anything is written
    target.write_text(json.dumps(table, indent=1) + "\n")
    print(f"wrote {target} ({table['made_with']['cpu_seconds']} s of CPU)")
    print(f"sha256 {hashlib.sha256(target.read_bytes()).hexdigest()}  (update data/SHA256SUMS)")
