"""Every likely bug of notebook 10's exercise differs from the reference in what bugs_10.observed() shows a
check (the arrays a model is turned into), and no two variants look the same."""

import numpy as np
import pytest

from course_lib import data, transfer
from course_lib.bugs_10 import LIKELY_BUGS, observed

VARIANTS = LIKELY_BUGS["freeze_body_and_replace_head"]


@pytest.fixture(scope="module")
def seen():
    """observed() of the reference and of every variant, on the pretrained network and 20 target signals."""
    target = data.mnist1d().classes_only(transfer.TARGET_CLASSES).per_class(4, seed=0)
    pretrained = transfer.pretrained_cnn()

    def look(function):
        return observed(function, pretrained, 5, 3, target.x_train, target.y_train)

    return {"reference": look(transfer.freeze_body_and_replace_head),
            **{variant.__name__: look(variant) for variant, _ in VARIANTS}}


def differing_keys(a, b, tolerance=1e-6):
    return sorted(key for key in a if a[key].shape != b[key].shape
                  or not np.allclose(a[key], b[key], rtol=tolerance, atol=tolerance))


def test_the_reference_trains_only_a_new_head(seen):
    reference = seen["reference"]
    again = seen["reference"]
    assert differing_keys(reference, again) == []
    assert reference["requires_grad"].sum() == 2 and reference["given_to_optimizer"].sum() == 2
    assert reference["foreign_parameters"][0] == 0 and reference["original_unchanged"][0] == 1
    assert not np.allclose(reference["head_at_start"], reference["head_after"])


@pytest.mark.parametrize("variant, explanation", VARIANTS, ids=[v.__name__ for v, _ in VARIANTS])
def test_each_variant_differs_from_the_reference(seen, variant, explanation):
    assert len(explanation) > 40
    assert differing_keys(seen["reference"], seen[variant.__name__]), variant.__name__


def test_no_two_variants_look_the_same(seen):
    names = [variant.__name__ for variant, _ in VARIANTS]
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            assert differing_keys(seen[first], seen[second]), f"{first} and {second} cannot be told apart"


def test_what_each_bug_changes(seen):
    """Where each bug shows (so that a check can say precisely what is wrong)."""
    reference = seen["reference"]

    def where(name):
        return differing_keys(reference, seen[name])

    assert "head_at_start" in where("_head_not_reinitialised")
    assert where("_body_still_trainable") == ["requires_grad"]  # the optimizer does not get them: no change
    assert where("_optimizer_given_everything") == ["given_to_optimizer"]
    assert "body_after" in where("_body_trainable_and_given_to_optimizer")
    assert {"training_mode", "body_after", "outputs_after"} <= set(where("_batch_norm_statistics_still_updating"))
    assert "head_after" in where("_head_frozen_too")
