"""Every likely bug of notebook 09's exercises differs from the reference on typical inputs, so that a check
comparing outputs can tell it apart (and name it) — and no two variants are the same function."""

import numpy as np
import pytest

from course_lib import batch_norm as bn
from course_lib.bugs_09 import LIKELY_BUGS

REFERENCES = {"batchnorm_forward": bn.batchnorm_forward, "batchnorm_backward": bn.batchnorm_backward}


def typical_inputs(name, seed=0):
    """A few argument tuples a check would use: training and test mode, N != D, and a large epsilon (0.5)
    against features of small variance, which makes the epsilon bugs stand out (with epsilon = 1e-5 they
    change the outputs by only ~1e-5)."""
    rng = np.random.default_rng(seed)
    cases = []
    for n, d, epsilon in ((16, 5, 1e-5), (4, 7, 0.5)):
        x = rng.normal(2, 3 if epsilon < 0.1 else 0.5, (n, d))
        gamma, beta = rng.uniform(0.5, 2, d), rng.normal(size=d)
        if name == "batchnorm_forward":
            running_mean, running_var = rng.normal(size=d), rng.uniform(0.5, 2, d)
            cases += [(x, gamma, beta, running_mean, running_var, 0.1, epsilon, True),
                      (x, gamma, beta, running_mean, running_var, 0.1, epsilon, False)]
        else:
            cases.append((rng.normal(size=(n, d)), x, gamma, epsilon))
    return cases


def outputs(function, args):
    """The outputs as float arrays, as a generic check would turn them; None when the function raises (the
    reference never does)."""
    copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
    try:
        return [np.asarray(value, dtype=float) for value in function(*copies)]
    except Exception:
        if function in REFERENCES.values():
            raise
        return None


def same(a, b, tolerance=1e-3):
    if a is None or b is None:
        return a is b
    return len(a) == len(b) and all(x.shape == y.shape and np.allclose(x, y, rtol=tolerance, atol=tolerance)
                                    for x, y in zip(a, b, strict=True))


CASES = [(name, variant, explanation) for name, variants in LIKELY_BUGS.items()
         for variant, explanation in variants]


@pytest.mark.parametrize("name, variant, explanation", CASES, ids=[v.__name__ for _, v, _ in CASES])
def test_each_variant_differs_from_the_reference(name, variant, explanation):
    assert len(explanation) > 40
    reference = REFERENCES[name]
    differing = [not same(outputs(reference, args), outputs(variant, args)) for args in typical_inputs(name)]
    assert any(differing), f"{variant.__name__} gives the reference's outputs on every typical input"


@pytest.mark.parametrize("name", LIKELY_BUGS)
def test_no_two_variants_give_the_same_outputs(name):
    variants = [variant for variant, _ in LIKELY_BUGS[name]]
    signatures = [[outputs(v, args) for args in typical_inputs(name)] for v in variants]
    for i in range(len(variants)):
        for j in range(i + 1, len(variants)):
            assert not all(same(a, b) for a, b in zip(signatures[i], signatures[j], strict=True)), (
                f"{variants[i].__name__} and {variants[j].__name__} cannot be told apart")


def test_the_test_mode_bugs_show_only_in_test_mode():
    """The test-time bugs leave training mode right: a check must try both modes."""
    forward_bugs = dict((v.__name__, v) for v, _ in LIKELY_BUGS["batchnorm_forward"])
    train, test = typical_inputs("batchnorm_forward")[:2]
    for name in ("_forward_updates_at_test_time", "_forward_batch_statistics_at_test_time"):
        assert same(outputs(bn.batchnorm_forward, train), outputs(forward_bugs[name], train))
        assert not same(outputs(bn.batchnorm_forward, test), outputs(forward_bugs[name], test))
