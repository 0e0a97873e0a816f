"""The exercises: what each asks for, the reference it is judged against, and the cases it is judged on.

``EXERCISES[name]`` is an ``Exercise``; ``name`` is the function the learner writes. Each exercise has two
suites of cases (see course_lib.harness for what a case is):

- ``"visible"``: what the check cell under the exercise runs in the learner's notebook;
- ``"hidden"``: the visible cases and more (other hyperparameters, longer runs, torch tensors, other sizes),
  what the hidden tests and the grader run.

The cases are built from fixed seeds, so every run of a suite is the same; the reference and the likely bugs
(course_lib.bugs) are run on the same cases by the judge (course_lib.checks).

Most exercises are judged value by value against the reference. A *random* exercise (dropout, random shifts)
cannot be: two right answers that draw their random numbers differently return different arrays. Its cases
hand the function seeded generators (``{"rng": seed}``) and large inputs, and its ``properties`` measure what
every right answer has whatever it draws (see "Random exercises" below).
"""

import math
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch

from course_lib import (
    augmentation,
    averaging,
    batch_norm,
    ensembles,
    optim,
    regularization,
    schedules,
    second_order,
    theory,
    transfer,
)
from course_lib.bugs import LIKELY_BUGS

__all__ = ["EXERCISES", "FAILURE_PROBABILITY", "Exercise", "random_circular_shift", "share_tolerance"]


@dataclass(frozen=True)
class Exercise:
    """One exercise: the function ``name`` the learner writes, judged against ``reference``."""

    name: str
    number: str  # as the notebooks number it, e.g. "3.2"
    kind: str  # "rule", "function" or "model": how course_lib.harness calls it
    reference: object
    build_cases: object  # suite name -> list of cases
    arguments: tuple = ()  # the argument names, to say which one a learner changed in place
    rtol: float = 1e-8
    atol: float = 1e-10
    hints: dict = field(default_factory=dict)  # argument name -> what to do instead of changing it in place
    tolerated: frozenset = frozenset()  # in-place changes allowed (kinds of course_lib.harness, e.g. "mode")
    error_hints: tuple = ()  # (part of an error message, what usually causes it in this exercise)
    results: tuple = ()  # the names of the values a function returns as a tuple, for the messages
    # A random exercise: properties(case, outputs) -> (form, measured), two dicts {(where, property): (label,
    # detail)} whose labels the judge compares (see "Random exercises"); None: the outputs are compared value by
    # value with the reference's.
    properties: object = None
    passes_when: str = ""  # for a random exercise: what a passing answer was seen to do, in a few words

    @property
    def likely_bugs(self):
        return LIKELY_BUGS.get(self.name, [])

    def cases(self, suite="visible"):
        if suite not in ("visible", "hidden"):
            raise ValueError(f"suite must be 'visible' or 'hidden', got {suite!r}")
        return self.build_cases(suite)


# ---- update rules --------------------------------------------------------------------------------------------

def rule_case(seed, backend, shape, runs, steps, replay=None, state=()):
    """A case for an update rule: ``runs`` ((label, how its first call gets its config), ...) stepped in turn
    for ``steps`` steps each, on random x and dx; ``replay`` = (label, step) adds a run that restarts from a copy
    of the config ``label`` returned at ``step`` and must repeat that run's later steps exactly."""
    rng = np.random.default_rng(seed)
    arrays, calls = {}, []
    for step in range(1, steps + 1):
        for label, first in runs:
            x, dx = f"x {label} {step}", f"dx {label} {step}"
            arrays[x], arrays[dx] = rng.standard_normal(shape), rng.standard_normal(shape)
            how = first if step == 1 else {"continue": True}
            calls.append({"run": label, "step": step, "x": x, "dx": dx, "config": how,
                          "where": _where(backend, shape, label, step, runs, first)})
    if replay is not None:
        label, saved_step = replay
        saved = next(i for i, call in enumerate(calls) if call["run"] == label and call["step"] == saved_step)
        copy_label = f"{label} (replayed)"
        for step in range(saved_step + 1, steps + 1):
            how = {"replay": saved} if step == saved_step + 1 else {"continue": True}
            calls.append({"run": copy_label, "step": step, "x": f"x {label} {step}", "dx": f"dx {label} {step}",
                          "config": how, "replay_of": label,
                          "where": f"when run {label} was replayed from a copy of the config it returned at step "
                                   f"{saved_step}, at step {step} ({backend}, x of shape {shape})"})
    spec = {"kind": "rule", "backend": backend, "state": list(state), "calls": calls,
            "interleaved": len(runs) > 1}
    return spec, arrays


def _where(backend, shape, label, step, runs, first):
    if "none" in first:
        config = "called as rule(x, dx) with no config"
    else:
        config = "config " + ", ".join(f"{key}={value:g}" for key, value in first["fresh"].items())
    together = f"; runs {' and '.join(r for r, _ in runs)} stepped in turn" if len(runs) > 1 else ""
    return f"at step {step} of run {label} ({backend}, x of shape {shape}, {config}{together})"


def _rule_suites(state, visible_configs, hidden_configs, seed):
    """The suites of an update rule: ``visible_configs`` and ``hidden_configs`` are two and three dicts of
    hyperparameters (learning_rate included) for the fresh runs."""
    first, second = ({"fresh": config} for config in visible_configs)
    third, fourth, fifth = ({"fresh": config} for config in hidden_configs)
    return visible_and_more(
        lambda: [rule_case(seed, "numpy", (5,), [("A", {"none": True})], 6, state=state),
                 rule_case(seed + 1, "numpy", (2, 3), [("B", first), ("C", second)], 5, replay=("B", 2),
                           state=state),
                 rule_case(seed + 2, "torch", (4,), [("D", {"none": True})], 5, state=state)],
        lambda: [rule_case(seed + 10, "torch", (4, 3), [("E", third)], 40, state=state),
                 rule_case(seed + 11, "numpy", (3,), [("F", fourth), ("G", fifth)], 25, replay=("F", 10),
                           state=state),
                 rule_case(seed + 12, "torch", (2, 2), [("H", fourth), ("I", third)], 8, replay=("I", 3),
                           state=state)])


def _rule(name, number, state, visible_configs, hidden_configs, seed):
    return Exercise(name, number, "rule", optim.RULES[name],
                    _rule_suites(state, visible_configs, hidden_configs, seed))


# ---- functions of numbers and arrays --------------------------------------------------------------------------

def function_case(backend, calls, arrays, returns="number"):
    """A case for a plain function: ``calls`` is a list of (arguments, where) with arguments as in
    course_lib.harness (``{"array": name}``, ``{"arrays": [names]}``, ``{"number": v}``, ``{"integer": v}``)."""
    spec = {"kind": "function", "backend": backend, "returns": returns,
            "calls": [{"args": list(arguments), "where": where} for arguments, where in calls]}
    return spec, arrays


def _random_spd(rng, eigenvalues):
    q, _ = np.linalg.qr(rng.standard_normal((len(eigenvalues), len(eigenvalues))))
    return q @ np.diag(eigenvalues) @ q.T


def visible_and_more(visible, more):
    """The suites of an exercise whose hidden suite is its visible cases and ``more`` ones."""

    def build(suite):
        return visible() if suite == "visible" else visible() + more()

    return build


def _hessian_case(sizes, seed):
    """Rotated symmetric positive-definite Hessians whose curvatures span (0.1, 10)."""
    rng = np.random.default_rng(seed)
    arrays, calls = {}, []
    for number, size in enumerate(sizes):
        eigenvalues = np.sort(rng.uniform(0.1, 10.0, size))
        arrays[f"H{number}"] = _random_spd(rng, eigenvalues)
        calls.append(([{"array": f"H{number}"}], f"for a {size}x{size} Hessian with curvatures "
                                                 f"{np.round(eigenvalues, 3).tolist()}"))
    return [function_case("numpy", calls, arrays)]


def best_learning_rate(hessian):
    """The reference of Exercise 1.1: 2 / (L + mu) from the Hessian's extreme eigenvalues."""
    eigenvalues = np.linalg.eigvalsh(np.asarray(hessian, dtype=float))
    return theory.gradient_descent_best_learning_rate(eigenvalues[-1], eigenvalues[0])


def _steps_case(kappas, factors):
    calls = []
    for kappa in kappas:
        for factor in factors:
            exact = math.log(factor) / math.log(theory.gradient_descent_rate(kappa))
            if abs(exact - round(exact)) > 1e-6:  # far from a whole number: every correct rounding agrees
                where = f"for kappa = {kappa:g}, factor = {factor:g}"
                calls.append(([{"number": kappa}, {"number": factor}], where))
    return [function_case("numpy", calls, {})]


def _step_decay_case(settings, steps):
    calls = [([{"integer": t}, {"number": rate}, {"integer": size}, {"number": gamma}],
              f"with learning_rate={rate:g}, step_size={size}, gamma={gamma:g}, at t = {t}")
             for rate, size, gamma in settings for t in range(steps)]
    return [function_case("numpy", calls, {})]


def _two_loop_case(backend, dimensions, max_history, seed):
    """For each dimension a random SPD Hessian H, and histories of 0 .. max_history random steps s_i with
    y_i = H s_i (so s^T y > 0, as L-BFGS keeps its pairs); oldest first."""
    rng = np.random.default_rng(seed)
    arrays, calls = {}, []
    for dimension in dimensions:
        hessian = _random_spd(rng, np.sort(rng.uniform(0.1, 10.0, dimension)))
        for length in range(max_history + 1):
            key = f"{dimension}-{length}"
            arrays[f"g {key}"] = rng.standard_normal(dimension)
            names_s, names_y = [], []
            for i in range(length):
                s = rng.standard_normal(dimension)
                arrays[f"s{i} {key}"], arrays[f"y{i} {key}"] = s, hessian @ s
                names_s.append(f"s{i} {key}")
                names_y.append(f"y{i} {key}")
            calls.append(([{"array": f"g {key}"}, {"arrays": names_s}, {"arrays": names_y}],
                          f"with {length} pair{'' if length == 1 else 's'} in {dimension} dimensions ({backend})"))
    return function_case(backend, calls, arrays, returns="array")


# ---- Random exercises: judged by their properties -----------------------------------------------------------
#
# ``properties(case, outputs)`` turns what a function returned on a case into two ordered dicts
# {(where, property): (label, detail)}: ``form``, whether each call returned one array of the right shape, and
# ``measured``, what those arrays show (measured only where the form is right). A label is a category, never a
# raw measurement ("about drop_probability", "each row has its own mask"); the detail is the measurement behind
# it, shown in messages only. The judge checks the form first, then that the draws come from rng (its own
# properties, see course_lib.checks), then the measured properties. The judge
# (course_lib.checks) passes an answer whose labels are the reference's on every case, and names a likely bug
# whose labels are the answer's on every case. So each label must come out the same on every run, whatever the
# random numbers: for the reference and for every likely bug, each category boundary is set so that a label
# changes with probability below FAILURE_PROBABILITY (each bound is stated where it is computed), and the inputs
# are large enough for that.

FAILURE_PROBABILITY = 1e-10  # the most a label of a right answer (or of a likely bug) may depend on chance


def share_tolerance(draws, shares=1):
    """The half-width t within which ``shares`` observed shares of ``draws`` independent draws all lie around
    their probabilities, except with probability at most FAILURE_PROBABILITY: by Hoeffding's inequality
    P(|share - probability| > t) <= 2 exp(-2 draws t^2) for each, and a union bound over the ``shares``."""
    return math.sqrt(math.log(2 * shares / FAILURE_PROBABILITY) / (2 * draws))


def random_case(arrays, calls, where):
    """A case of a random function: ``calls`` are dicts {"args": [...], "where": ...} (arguments as in
    course_lib.harness, ``{"rng": seed}`` among them); a call may say ``"repeat_of": i`` (the same arguments and
    seed as call i: it must return the same) or ``"reseed_of": i`` (the same arguments, another seed: it must
    not: with several such calls, not all of them). ``where`` describes the case as a whole."""
    return {"kind": "function", "backend": "numpy", "returns": "array", "where": where, "calls": calls}, arrays


def _argument(call, position):
    value = call["args"][position]
    return next(iter(value.values()))


def _single_result(outputs, index, expected_shape, what):
    """(the array call ``index`` returned, None) if it is one array of ``expected_shape``; otherwise (None, a
    label saying what came back instead)."""
    result = outputs.get(f"{index}.result")
    if result is None:
        parts = [key for key in outputs if key.startswith(f"{index}.result")]
        return None, (f"a tuple or list of {len(parts)} values, not one array" if parts else "missing")
    if result.shape != tuple(expected_shape):
        return None, f"an array of shape {result.shape}, not {what}'s {tuple(expected_shape)}"
    return result, None


def _factors(ratio, factors):
    """Which of ``factors`` (name, value) the elements of ``ratio`` take, joined by " or " (each found within a
    relative 1e-6, so float32 rounding counts as equal; 0 exactly); "NaN" and "other multiples of x" for the
    rest."""
    left, names = ratio.ravel(), []
    for name, value in factors:
        hit = left == 0 if value == 0 else np.isclose(left, value, rtol=1e-6, atol=0)
        if hit.any():
            names.append(name)
            left = left[~hit]
    if np.isnan(left).any():
        names.append("NaN")
    if (~np.isnan(left)).any():
        names.append("other multiples of x")
    return " or ".join(names)


def _nearest_share(share, draws, candidates, otherwise):
    """The label of the first (label, probability) of ``candidates`` that ``share``, observed over ``draws``
    independent draws, lies within share_tolerance(draws) of (``otherwise`` if none), and that tolerance."""
    tolerance = share_tolerance(draws)
    for label, probability in candidates:
        if abs(share - probability) <= tolerance:
            return label, tolerance
    return otherwise, tolerance


# ---- Exercise 7.1: inverted dropout ---------------------------------------------------------------------------

def _dropout_masks(zero):
    """What the rows' zeros look like, and how many independent draws the share of zeros rests on.

    Rows are examples (the rest of an element's index flattened). Over the cases below (at least 300 rows of at
    least 200 elements, drop probabilities 0.1 to 0.9) a right answer's rows all coincide, or all are all-zero or
    all-kept, with probability below 0.9**300 < 1e-13: its label is always "each row has its own mask"; one
    mask broadcast over the rows, or one coin per row, are as stable.
    """
    rows = zero.reshape(len(zero), -1)
    if not rows.any():
        return "no element is zero", rows.size
    if rows.all():
        return "every element is zero", rows.size
    if (rows == rows[0]).all():
        return "every row (example) has the same mask", rows.shape[1]
    if (rows.all(axis=1) | ~rows.any(axis=1)).all():
        return "each row (example) is kept or zeroed whole", len(rows)
    return "each row (example) has its own mask", rows.size


def _dropout_call_properties(x, drop_probability, result):
    """The properties of one call: how the result relates to x element by element, the share of zeros (within
    share_tolerance of the drop probability: Hoeffding, counting as independent only what the mask's shape
    allows), and whether the rows share their masks. x has no zero element, so a zero is a dropped element."""
    keep = 1 - drop_probability
    factors = [("0", 0.0), ("x / (1 - drop_probability)", 1 / keep), ("x", 1.0),
               ("x * (1 - drop_probability)", keep),
               ("x / drop_probability", 1 / drop_probability if drop_probability else math.inf),
               ("x * drop_probability", drop_probability)]
    with np.errstate(all="ignore"):
        elements = _factors(result / x, factors)
    zero = result == 0
    masks, draws = _dropout_masks(zero)
    share = float(zero.mean())
    label, tolerance = _nearest_share(share, draws, [("about drop_probability", drop_probability),
                                                     ("about 1 - drop_probability", keep), ("none", 0.0),
                                                     ("all", 1.0)],
                                      "neither about drop_probability nor about 1 - drop_probability")
    return {"its elements": (elements, ""),
            "the share of zeros": (label, f"{share:.1%} of the elements; drop_probability = {drop_probability:g}, "
                                          f"a right answer is within ±{tolerance:.1%} of it"),
            "the masks": (masks, "")}


def _dropout_properties(case, outputs):
    spec, arrays = case
    form, measured = {}, {}
    for index, call in enumerate(spec["calls"]):
        x = arrays[_argument(call, 0)]
        result, problem = _single_result(outputs, index, x.shape, "x")
        form[(call["where"], "the result")] = (problem or "an array of x's shape", "")
        if result is not None:
            properties = _dropout_call_properties(x, _argument(call, 1), result)
            measured.update({(call["where"], name): value for name, value in properties.items()})
    return form, measured


def _activations(rng, shape):
    """Activations with no zero element: |x| uniform in [0.5, 1.5], random signs."""
    return rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)


def _dropout_case(shape, settings, seed, repeat=False):
    """x of ``shape`` and calls (drop_probability, training), each with its own seed; ``repeat`` adds a call
    repeating the first one's seed and one with another seed (a right answer draws from rng: the same seed gives
    the same result, another seed another)."""
    rng = np.random.default_rng(seed)
    arrays = {"x": _activations(rng, shape)}
    calls = []
    for number, (drop_probability, training) in enumerate(settings):
        mode = "in training (training=True)" if training else "at test time (training=False)"
        calls.append({"args": [{"array": "x"}, {"number": drop_probability}, {"boolean": training},
                               {"rng": seed * 100 + number}],
                      "where": f"{mode} with drop_probability={drop_probability:g} on x of shape {shape}"})
    if repeat:
        first = calls[0]
        calls.append({**first, "repeat_of": 0,
                      "where": f"{first['where']}, called again with rng seeded alike"})
        calls.append({**first, "args": [*first["args"][:3], {"rng": seed * 100 + 99}], "reseed_of": 0,
                      "where": f"{first['where']}, called again with rng seeded differently"})
    return random_case(arrays, calls, f"x of shape {shape}")


# ---- Exercise 8.1: random circular shifts ---------------------------------------------------------------------

def random_circular_shift(signals, max_shift, rng):
    """The reference of Exercise 8.1: course_lib.augmentation's, with the exercise's order of arguments."""
    return augmentation.random_circular_shift(signals, rng, max_shift=max_shift)


def _rolled_from(signals, order, result):
    """For each row of ``result``: the row of ``signals`` it is a circular shift of (-1 if none) and the shift,
    as np.roll counts it, in (-length/2, length/2]. The signals' values are all distinct (random normals), so a
    row's first value says where it came from (``order`` sorts the signals' values); the whole row is then
    compared."""
    length = signals.shape[1]
    flat = signals.ravel()
    position = order[np.searchsorted(flat[order], result[:, 0]).clip(0, flat.size - 1)]
    row, column = np.divmod(position, length)
    shift = (-column) % length
    rolled = signals[row[:, None], (np.arange(length)[None, :] - shift[:, None]) % length]
    found = (rolled == result).all(axis=1)
    return np.where(found, row, -1), np.where(shift > length // 2, shift - length, shift)


def _zero_filled(signals, result):
    """Whether each row of ``result`` is its own signal moved by some shift with zeros where samples left (the
    signals have no zero sample, so the zeros at a row's start, or end, give the shift)."""
    length = signals.shape[1]
    nonzero = result != 0
    leading, trailing = np.argmax(nonzero, axis=1), np.argmax(nonzero[:, ::-1], axis=1)
    shift = np.where(leading > 0, leading, -trailing)
    source = np.arange(length)[None, :] - shift[:, None]
    moved = np.where((source >= 0) & (source < length),
                     np.take_along_axis(signals, source.clip(0, length - 1), axis=1), 0.0)
    return (moved == result).all(axis=1)


def _what_rows_are(signals, results):
    """One label for the rows of all results (the first that applies), and each result's shifts when every row is
    its own signal rolled."""
    own, order = np.arange(len(signals)), np.argsort(signals.ravel())
    kinds, shifts = set(), []
    for result in results:
        row, shift = _rolled_from(signals, order, result)
        shifts.append(shift)
        kinds.update({"other"} if ((row >= 0) & (row != own)).any() else set())
        lost = row < 0
        if lost.any():
            kinds.add("zeros" if _zero_filled(signals[lost], result[lost]).any() else "neither")
    for kind, label in (("other", "some rows are other rows' signals: the examples changed places"),
                        ("zeros", "some rows are shifted with zeros where samples left"),
                        ("neither", "some rows are no circular shift of their own signal")):
        if kind in kinds:
            return label, None
    return "every row is its own signal, rolled circularly", shifts


def _shift_range_label(present, max_shift):
    if present == list(range(-max_shift, max_shift + 1)):
        return "every one of -max_shift, ..., max_shift"
    if len(present) > 3 and present == list(range(present[0], present[-1] + 1)):
        return f"only {present[0]} to {present[-1]}"
    return "only " + ", ".join(str(value) for value in present)


def _shift_statistics(shifts, max_shift):
    """The properties of the shifts drawn (one draw per row, or per batch where a whole batch shares one).

    Every value of the 2 max_shift + 1 is missed by n uniform draws with probability at most
    (2 max_shift + 1)(1 - 1/(2 max_shift + 1))^n (a union bound); where that exceeds FAILURE_PROBABILITY the
    draws are too few to tell, and the label says so. The shares of the values are within share_tolerance(n,
    2 max_shift + 1) of 1/(2 max_shift + 1) for a right answer. Rounding a uniform number from [-max_shift,
    max_shift] gives the two extremes 1/(4 max_shift) and the others 1/(2 max_shift): that pattern has its own
    label (for the cases below, its extremes lie at least 7 standard deviations beyond the right answer's
    tolerance, so it never reads "equally often").
    """
    shared = [bool((shift == shift[0]).all()) for shift in shifts]
    batches = ("all rows of a batch share one shift" if all(shared) else
               "each row gets its own shift" if not any(shared) else "in some batches all rows share one shift")
    draws = np.concatenate([shift[:1] if same else shift for shift, same in zip(shifts, shared, strict=True)])
    values = 2 * max_shift + 1
    outside = sorted({int(value) for value in draws if abs(value) > max_shift})
    found = {"the rows of a batch": (batches, ""),
             "shifts outside -max_shift, ..., max_shift": ("some" if outside else "none",
                                                          f"{outside[:6]}" if outside else "")}
    if values * (1 - 1 / values) ** len(draws) > FAILURE_PROBABILITY:
        few = (f"too few independent draws to tell ({len(draws)})", "")
        return {**found, "which shifts occur": few, "how often each shift occurs": few}
    present = sorted({int(value) for value in draws if abs(value) <= max_shift})
    shares = np.array([np.mean(draws == value) for value in range(-max_shift, max_shift + 1)])
    tolerance = share_tolerance(len(draws), values)
    rounded = np.full(values, 1 / (2 * max_shift) if max_shift else 1.0)
    rounded[[0, -1]] = 1 / (4 * max_shift) if max_shift else 1.0
    found["which shifts occur"] = (_shift_range_label(present, max_shift), "")
    found["how often each shift occurs"] = (
        "all about equally often" if np.abs(shares - 1 / values).max() <= tolerance else
        "-max_shift and max_shift about half as often as each of the others"
        if np.abs(shares - rounded).max() <= tolerance else "some more often than others",
        f"shares {np.round(shares, 3).tolist()} of {len(draws)} draws for shifts {-max_shift} to {max_shift}; a "
        f"right answer's are within ±{tolerance:.3f} of 1/{values}")
    return found


def _shift_properties(case, outputs):
    spec, arrays = case
    signals, where = arrays["signals"], spec["where"]
    results = []
    for index, call in enumerate(spec["calls"]):
        result, problem = _single_result(outputs, index, signals.shape, "signals")
        if problem:
            return {(where, "what a call returns"): (problem, f"call {index + 1}")}, {}
        if "repeat_of" not in call:  # a repeated call draws nothing new
            results.append(result)
    form = {(where, "what a call returns"): ("an array of the signals' shape", "")}
    label, shifts = _what_rows_are(signals, results)
    measured = {(where, "each row of the results"): (label, "")}
    if shifts is not None:
        max_shift = _argument(spec["calls"][0], 1)
        measured.update({(where, name): value for name, value in _shift_statistics(shifts, max_shift).items()})
    return form, measured


def _shift_case(rows, length, max_shift, calls, seed, repeat=True):
    """``rows`` random normal signals of ``length`` samples, shifted by ``calls`` calls with their own seeds, then
    once more with the first call's seed (``repeat``: the others, seeded differently, must not all return the
    first one's result). With 1000 rows and 16 calls a right answer's 16,000 shifts pin each
    share of 11 values within ±0.029 (share_tolerance); a rounding bug that halves the two extreme shares
    (1/20 instead of 1/11) is then 7 standard deviations beyond that bound."""
    rng = np.random.default_rng(seed)
    arrays = {"signals": rng.standard_normal((rows, length))}
    shape = f"{rows} signals of length {length}"
    specs = [{"args": [{"array": "signals"}, {"integer": max_shift}, {"rng": seed * 100 + number}],
              "where": f"with max_shift={max_shift} on {shape} (call {number + 1} of {calls})"}
             for number in range(calls)]
    if repeat:
        for spec in specs[1:]:
            spec["reseed_of"] = 0
        specs.append({**specs[0], "repeat_of": 0,
                      "where": f"with max_shift={max_shift} on {shape}, called again with rng seeded as for "
                               "call 1"})
    return random_case(arrays, specs, f"over {calls} calls with max_shift={max_shift} on {shape}")


_DROPOUT_HINTS = {"x": "x *= mask or x[mask] = 0 changes the caller's activations (the next layer, the backward "
                       "pass use them). Return a new array: x * mask / (1 - drop_probability)."}
_SHIFT_HINTS = {"signals": "the caller's training data would change at every call. Build a new array: "
                           "np.roll(signal, shift) returns a new one; stack them with np.stack."}


# ---- batch norm's forward and backward passes ------------------------------------------------------------------

@dataclass(frozen=True)
class _Batch:
    """One batch-norm setting: x of shape (n, d) around ``offset`` with spread ``spread``; ``constant``: a feature
    that is constant over the batch (a power of 2, so its mean is exact and x - mean is exactly 0)."""

    n: int
    d: int
    epsilon: float
    momentum: float
    spread: float = 3.0
    offset: float = 2.0
    constant: int | None = None

    def arrays(self, rng, key):
        x = self.offset + self.spread * rng.standard_normal((self.n, self.d))
        if self.constant is not None:
            x[:, self.constant] = 1.5
        return {f"x {key}": x, f"gamma {key}": rng.uniform(0.5, 2.0, self.d),
                f"beta {key}": rng.standard_normal(self.d), f"running_mean {key}": rng.standard_normal(self.d),
                f"running_var {key}": rng.uniform(0.5, 2.0, self.d),
                f"dout {key}": rng.standard_normal((self.n, self.d))}

    def describe(self):
        notes = [f"x of shape ({self.n}, {self.d})"]
        if self.spread < 1:
            notes.append(f"features of small variance (spread {self.spread:g})")
        if abs(self.offset) >= 100:
            notes.append(f"x around {self.offset:g}")
        if self.constant is not None:
            notes.append(f"feature {self.constant} constant over the batch")
        return ", ".join(notes)


def _forward_case(batches, seed, modes=("training", "test")):
    """batchnorm_forward in the given modes on each batch, numpy."""
    rng = np.random.default_rng(seed)
    arrays, calls = {}, []
    for key, batch in enumerate(batches):
        arrays.update(batch.arrays(rng, key))
        names = [{"array": f"{name} {key}"} for name in ("x", "gamma", "beta", "running_mean", "running_var")]
        for mode in modes:
            where = (f"in {mode} mode, {batch.describe()}, momentum={batch.momentum:g}, "
                     f"epsilon={batch.epsilon:g}")
            calls.append(([*names, {"number": batch.momentum}, {"number": batch.epsilon},
                           {"boolean": mode == "training"}], where))
    return function_case("numpy", calls, arrays, returns="array")


def _backward_case(batches, seed):
    rng = np.random.default_rng(seed)
    arrays, calls = {}, []
    for key, batch in enumerate(batches):
        arrays.update(batch.arrays(rng, key))
        calls.append(([{"array": f"dout {key}"}, {"array": f"x {key}"}, {"array": f"gamma {key}"},
                       {"number": batch.epsilon}], f"with {batch.describe()}, epsilon={batch.epsilon:g}"))
    return function_case("numpy", calls, arrays, returns="array")


# The visible batches: a typical one, and one with a large epsilon against features of small variance, where the
# epsilon mistakes change the results by far more than rounding (with epsilon = 1e-5, by ~1e-5 only). N != D
# everywhere, so that a sum over the wrong axis cannot have the right shape.
_BATCHES = (_Batch(16, 5, 1e-5, 0.1), _Batch(4, 7, 0.5, 0.3, spread=0.5))
_MORE_BATCHES = (_Batch(2, 3, 1e-3, 0.9), _Batch(64, 1, 1e-5, 0.0, spread=1.0, offset=1000.0),
                 _Batch(8, 4, 1e-5, 1.0, constant=2), _Batch(3, 8, 0.1, 0.5))
_ONE_EXAMPLE = _Batch(1, 6, 1e-5, 0.1)  # test mode only: one example predicted on its own


_BATCH_NORM_HINTS = {
    "running_mean": "return a new array instead, new_running_mean = (1 - momentum) * running_mean + momentum * "
                    "mean; the layer that calls the function decides when to store it.",
    "running_var": "return a new array instead, new_running_var = (1 - momentum) * running_var + momentum * "
                   "unbiased_variance; the layer that calls the function decides when to store it.",
}


_TWO_LOOP_HINTS = {
    "gradient": "q = gradient, then q -= ...: both names are the same array. Write q = q - alpha * y, which "
                "builds a new array.",
    "s_history": "e.g. with .reverse(), .pop(), or -= on one of its vectors. L-BFGS keeps using the history "
                 "after this call: loop over reversed(s_history) instead, and build new vectors.",
    "y_history": "e.g. with .reverse(), .pop(), or -= on one of its vectors. L-BFGS keeps using the history "
                 "after this call: loop over reversed(y_history) instead, and build new vectors.",
}

# ---- functions of small torch models (notebook 06) ------------------------------------------------------------

def model_case(calls, arrays, returns, observe=()):
    """A case for a function of torch models (kind "model" of course_lib.harness): ``calls`` is a list of
    (arguments, where) or (arguments, where, extra), with arguments as the harness takes them (``{"model":
    network}``, ``{"models": [networks]}``, ``{"array": name}``, ``{"number": v}``) and extra the call's
    "inputs" and "seed"; ``returns`` is "model", "array", or a list of them and "parameters" (a tuple);
    ``observe``: what to see of a returned model besides its state ("requires_grad", "modes")."""
    spec = {"kind": "model", "backend": "torch", "returns": returns if isinstance(returns, str) else list(returns),
            "calls": [{"args": list(arguments), "where": where, **(extra[0] if extra else {})}
                      for arguments, where, *extra in calls]}
    if observe:
        spec["observe"] = list(observe)
    return spec, arrays


def _layers(layers):
    return torch.nn.Sequential(*(getattr(torch.nn, layer)(*arguments) for layer, *arguments in layers))


def _architecture(layers):
    return "-".join(f"{layer}({', '.join(map(str, arguments))})" if arguments else layer
                    for layer, *arguments in layers)


def _random_state(rng, layers):
    """Random entries for every item of the state_dict of ``layers``: weights of scale 1.5 / sqrt(fan-in),
    running means around 0, running variances in (0.5, 2), a count of batches."""
    state = {}
    for key, value in _layers(layers).state_dict().items():
        shape = tuple(value.shape)
        if key.endswith("num_batches_tracked"):
            state[key] = np.array(rng.integers(10, 100), dtype=float)
        elif key.endswith("running_var"):
            state[key] = rng.uniform(0.5, 2.0, shape)
        elif key.endswith("weight") and len(shape) == 2:
            state[key] = 1.5 * rng.standard_normal(shape) / math.sqrt(shape[1])
        else:
            state[key] = 0.5 * rng.standard_normal(shape)
    return state


def _network(layers, prefix, arrays, state, gradients=None, dtype="float64", training=True):
    """Put ``state`` (and the parameters' gradients) into ``arrays`` under ``prefix``; the harness's network."""
    arrays.update({f"{prefix}/{key}": value for key, value in state.items()})
    arrays.update({f"{prefix}/{name}.grad": value for name, value in (gradients or {}).items()})
    return {"layers": [layer if isinstance(layer, dict) else list(layer) for layer in layers], "state": prefix,
            "dtype": dtype, "training": training}


def _ema_case(layers, decays, seed, dtype="float64", training=True, average_gradients=False):
    """An average and a trained model a few steps apart (other weights, other running statistics, one more batch
    counted), the trained model's .grad set (and the average's, if ``average_gradients``); one call per decay."""
    rng = np.random.default_rng(seed)
    arrays = {}
    average = _random_state(rng, layers)
    parameters = [name for name, _ in _layers(layers).named_parameters()]
    trained = {key: value + 0.5 * rng.standard_normal(np.shape(value)) if key in parameters else value
               for key, value in average.items()}
    statistics = _random_state(rng, layers)
    trained.update({key: statistics[key] for key in average if key.endswith(("running_mean", "running_var"))})
    trained.update({key: value + 1 for key, value in average.items() if key.endswith("num_batches_tracked")})

    def gradients():
        return {name: rng.standard_normal(np.shape(average[name])) for name in parameters}

    average_network = _network(layers, "average", arrays, average, gradients() if average_gradients else None,
                               dtype)
    trained_network = _network(layers, "model", arrays, trained, gradients(), dtype, training)
    where = (f"{_architecture(layers)} ({dtype}; the trained model in {'training' if training else 'evaluation'} "
             f"mode, its .grad set{'; the average with .grad set too' if average_gradients else ''})")
    calls = [([{"model": average_network}, {"model": trained_network}, {"number": decay}],
              f"with decay = {decay:g}, for the network {where}") for decay in decays]
    return model_case(calls, arrays, "model")


def ema_update(average_model, model, decay):
    """The reference of Exercise 6.1: a new model, the average's parameters moved towards the trained model's
    (course_lib.averaging's exponential moving average), its buffers copied from the trained model."""
    average = averaging.ExponentialAverage(average_model, decay)
    average.update(model)
    return average.model


def _ensemble_case(members, layers, batches, seed, dtype="float64", modes=None):
    """``members`` models with random weights and running statistics, in training mode unless ``modes`` (one
    bool per member: training?) says otherwise; one call per batch of random inputs (``batches``: their sizes)."""
    rng = np.random.default_rng(seed)
    modes = [True] * members if modes is None else modes
    arrays = {f"inputs {number}": rng.standard_normal((examples, layers[0][1]))
              for number, examples in enumerate(batches)}
    networks = [_network(layers, f"member {k}", arrays, _random_state(rng, layers), dtype=dtype, training=mode)
                for k, mode in enumerate(modes)]
    if all(modes):
        left = "all left in training mode"
    else:
        left = f"{sum(modes)} left in training mode and {len(modes) - sum(modes)} in evaluation mode"
    models = f"{members} model{'s' if members > 1 else ''} {_architecture(layers)} ({left})"
    calls = [([{"models": networks}, {"array": f"inputs {number}", "dtype": dtype}],
              f"for {models}, on {examples} input{'s' if examples > 1 else ''} ({dtype})")
             for number, examples in enumerate(batches)]
    return model_case(calls, arrays, "array")


def ensemble_predict(models, inputs):
    """The reference of Exercise 6.2: the mean over the models of softmax(model(inputs)), each in evaluation
    mode (course_lib.ensembles)."""
    return ensembles.average_probabilities(ensembles.member_logits(models, inputs))


_BATCH_NORM_NET = (("Linear", 4, 6), ("BatchNorm1d", 6), ("ReLU",), ("Dropout", 0.3), ("Linear", 6, 3))
_PLAIN_NET = (("Linear", 3, 5), ("ReLU",), ("Linear", 5, 2))
_DEEP_NET = (("Linear", 6, 8), ("BatchNorm1d", 8), ("Tanh",), ("Linear", 8, 8), ("BatchNorm1d", 8), ("ReLU",),
             ("Linear", 8, 4))
_WIDE_NET = (("Linear", 20, 32), ("ReLU",), ("Dropout", 0.5), ("Linear", 32, 10))
_DROPOUT_MEMBER = (("Linear", 5, 16), ("ReLU",), ("Dropout", 0.5), ("Linear", 16, 4))
_BATCH_NORM_MEMBER = (("Linear", 3, 8), ("BatchNorm1d", 8), ("ReLU",), ("Linear", 8, 3))
_WIDE_MEMBER = (("Linear", 6, 12), ("ReLU",), ("Dropout", 0.2), ("Linear", 12, 10))
_BOTH_MEMBER = (("Linear", 4, 10), ("BatchNorm1d", 10), ("ReLU",), ("Dropout", 0.3), ("Linear", 10, 5))

# ---- freezing a pretrained body (notebook 10) ------------------------------------------------------------------

# torch.nn layers -> the attributes that hold their constructor's positional arguments
_LAYER_ARGUMENTS = {"Conv1d": ("in_channels", "out_channels", "kernel_size", "stride", "padding"),
                    "Linear": ("in_features", "out_features"), "BatchNorm1d": ("num_features", "eps", "momentum"),
                    "ReLU": (), "Dropout": ("p",), "Flatten": ("start_dim", "end_dim"),
                    "Unflatten": ("dim", "unflattened_size"), "AdaptiveAvgPool1d": ("output_size",)}


def layers_of(model):
    """The layers of ``model`` as course_lib.harness describes them: ``model`` is a container whose forward
    applies its children in turn (torch.nn.Sequential; transfer.SmallCNN, head(body(x))), built of the layers of
    ``_LAYER_ARGUMENTS`` and of such containers; named children keep their names (model.body, model.head)."""
    entries = []
    for name, child in model.named_children():
        kind = type(child).__name__
        if kind in _LAYER_ARGUMENTS:
            entry = [kind, *(_plain(getattr(child, attribute)) for attribute in _LAYER_ARGUMENTS[kind])]
            entries.append(entry if name.isdigit() else {"name": name, "layer": entry})
        else:
            entries.append({"name": name, "layers": layers_of(child)})
    return entries


def _plain(value):
    return [_plain(item) for item in value] if isinstance(value, tuple | list) else value


def _state_of(model):
    return {key: value.detach().double().numpy() for key, value in model.state_dict().items()}


def _mlp_with_dropout(seed):
    """A small network shaped like the pretrained CNN (a body, then a linear head) with batch norm and dropout in
    its body, its running averages moved away from their initial values by one batch."""
    torch.manual_seed(seed)
    body = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                               torch.nn.Dropout(0.3), torch.nn.Linear(8, 8), torch.nn.ReLU())
    model = torch.nn.Sequential(OrderedDict(body=body, head=torch.nn.Linear(8, 3)))
    with torch.no_grad():
        model.train()(torch.randn(16, 6) * 2 + 1)
    return model


def _freeze_case(more):
    """Exercise 10.1's cases: the pretrained CNN handed over in training mode and in eval mode; with ``more``, a
    small network with dropout (mode-dependent layers everywhere) and other class counts and seeds. Building
    them leaves torch's random generator as it was (a check must not reseed the learner's notebook)."""
    with torch.random.fork_rng(devices=[]):
        return _freeze_cases(more)


def _freeze_cases(more):
    rng = np.random.default_rng(100 + more)
    arrays = {"signals": rng.standard_normal((12, 40)), "features": rng.standard_normal((10, 6))}
    pretrained = transfer.pretrained_cnn()
    models = {"CNN": (pretrained, "the pretrained CNN (Conv1d-BatchNorm1d-ReLU body, head Linear(32, 5))",
                      "signals"),
              "MLP": (_mlp_with_dropout(5), "a network with dropout (Linear-BatchNorm1d-ReLU-Dropout-Linear-ReLU "
                                            "body, head Linear(8, 3))", "features")}

    def call(model, training, num_classes, seed, harness_seed):
        network, described, inputs = models[model]
        prefix = f"{model} in {'training' if training else 'eval'} mode"
        description = _network(layers_of(network), prefix, arrays, _state_of(network), dtype="float32",
                               training=training)
        where = (f"for {described}, handed over in {'training' if training else 'eval'} mode, "
                 f"num_classes={num_classes}, seed={seed}")
        return ([{"model": description}, {"integer": num_classes}, {"integer": seed}], where,
                {"inputs": inputs, "seed": harness_seed})

    if not more:
        calls = [call("CNN", True, 5, 3, 10), call("CNN", False, 3, 0, 11)]
    else:
        calls = [call("MLP", True, 2, 7, 12), call("MLP", False, 4, 1, 13), call("CNN", True, 10, 12, 14)]
    return [model_case(calls, arrays, ("model", "parameters"), observe=("requires_grad", "modes"))]


_FREEZE_HINTS = {
    "model": "it is the caller's model (the pretrained network, which the notebook uses again): change a copy, "
             "model = copy.deepcopy(model), as the exercise's first line does.",
}

_EMA_HINTS = {
    "average_model": "the caller's previous average changed too. Start from a copy, new_average = "
                     "copy.deepcopy(average_model), and write only into it.",
    "model": "training goes on from the trained model, so it must stay exactly as it was (weights, .grad, "
             "buffers, train/eval mode). Only read it; write into your copy of the average.",
}
_ENSEMBLE_HINTS = {
    "models": "predicting must leave the list of models, their weights and their buffers as they were "
              "(switching the models to evaluation mode with model.eval() is fine).",
    "inputs": "build new tensors instead (x = inputs * 2, not inputs *= 2); the caller keeps using its inputs.",
}

EXERCISES = {exercise.name: exercise for exercise in (
    Exercise("best_learning_rate", "1.1", "function", best_learning_rate,
             visible_and_more(lambda: _hessian_case((2, 5), 7), lambda: _hessian_case((3, 8, 20), 8)),
             ("hessian",), rtol=1e-6, atol=0),
    Exercise("steps_to_shrink", "1.2", "function", theory.gradient_descent_steps,
             visible_and_more(lambda: _steps_case((10.0, 50.0, 1000.0), (1e-6, 1e-3)),
                              lambda: _steps_case((2.0, 3.7, 77.0, 1e5), (1e-6, 1e-3, 0.5))),
             ("kappa", "factor"), rtol=0, atol=0),
    _rule("sgd_momentum", "2.1", ("velocity",), ({"learning_rate": 0.05, "rho": 0.5},
                                                 {"learning_rate": 0.3, "rho": 0.99}),
          ({"learning_rate": 0.3, "rho": 0.5}, {"rho": 0.0}, {"rho": 0.99, "learning_rate": 0.02}), 10),
    _rule("nesterov", "2.2", ("velocity",), ({"learning_rate": 0.05, "rho": 0.5},
                                             {"learning_rate": 0.3, "rho": 0.99}),
          ({"learning_rate": 0.3, "rho": 0.5}, {"rho": 0.0}, {"rho": 0.99, "learning_rate": 0.02}), 20),
    _rule("rmsprop", "3.1", ("grad_squared",), ({"learning_rate": 0.05, "decay_rate": 0.9},
                                                {"learning_rate": 0.3, "decay_rate": 0.7, "epsilon": 1e-3}),
          ({"learning_rate": 0.3, "decay_rate": 0.6}, {"decay_rate": 0.0}, {"epsilon": 1e-3}), 30),
    _rule("adam", "3.2", ("first_moment", "second_moment", "t"),
          ({"learning_rate": 0.05, "beta1": 0.8, "beta2": 0.95},
           {"learning_rate": 0.3, "beta1": 0.0, "epsilon": 1e-3}),
          ({"learning_rate": 0.3, "beta1": 0.5, "beta2": 0.9}, {"beta1": 0.0}, {"epsilon": 1e-3}), 40),
    Exercise("step_decay", "4.1", "function", schedules.step_decay,
             visible_and_more(lambda: _step_decay_case([(0.1, 10, 0.5)], 60),
                              lambda: _step_decay_case([(0.3, 1, 0.9), (2.0, 7, 1.0), (1e-3, 25, 0.1)], 120)),
             ("t", "learning_rate", "step_size", "gamma"), rtol=1e-12, atol=0),
    Exercise("two_loop_direction", "5.1", "function", second_order.two_loop_direction,
             visible_and_more(lambda: [_two_loop_case("numpy", (3, 6), 4, 0)],
                              lambda: [_two_loop_case("torch", (7,), 6, 51),
                                       _two_loop_case("numpy", (2, 12), 10, 52),
                                       _two_loop_case("torch", (3,), 2, 53)]),
             ("gradient", "s_history", "y_history"), hints=_TWO_LOOP_HINTS),
    Exercise("ema_update", "6.1", "model", ema_update,
             visible_and_more(lambda: [_ema_case(_BATCH_NORM_NET, (0.9, 0.99), 60),
                                       _ema_case(_PLAIN_NET, (0.75,), 61, average_gradients=True)],
                              lambda: [_ema_case(_DEEP_NET, (0.0, 0.3, 0.999), 62, "float32", training=False,
                                                 average_gradients=True),
                                       _ema_case(_WIDE_NET, (0.995, 0.9), 63)]),
             ("average_model", "model", "decay"), rtol=1e-5, atol=1e-6, hints=_EMA_HINTS,
             error_hints=(("can't be cast to the desired output type Long",
                           "That is batch norm's num_batches_tracked, an integer buffer, changed in place by "
                           "float arithmetic (e.g. mul_(decay)). Buffers are not averaged anyway: copy them from "
                           "the trained model, kept.copy_(live)."),)),
    Exercise("ensemble_predict", "6.2", "model", ensemble_predict,
             visible_and_more(lambda: [_ensemble_case(3, _DROPOUT_MEMBER, (12, 5), 70),
                                       _ensemble_case(2, _BATCH_NORM_MEMBER, (10,), 71)],
                              lambda: [_ensemble_case(1, _DROPOUT_MEMBER, (7,), 72),
                                       _ensemble_case(5, _WIDE_MEMBER, (20, 9), 73,
                                                      modes=[True, False, True, False, True]),
                                       _ensemble_case(4, _BOTH_MEMBER, (16,), 74, "float32"),
                                       _ensemble_case(3, _DROPOUT_MEMBER, (1,), 75)]),
             ("models", "inputs"), rtol=1e-5, atol=1e-6, hints=_ENSEMBLE_HINTS, tolerated=frozenset({"mode"})),
    Exercise("inverted_dropout", "7.1", "function", regularization.inverted_dropout,
             visible_and_more(lambda: [_dropout_case((300, 200), [(0.3, True), (0.3, False), (0.8, True),
                                                                   (0.8, False)], 71, repeat=True)],
                              lambda: [_dropout_case((300, 3, 100), [(0.5, True), (0.5, False), (0.1, True),
                                                                     (0.9, True)], 72),
                                       _dropout_case((300, 200), [(0.0, True), (0.0, False)], 73)]),
             ("x", "drop_probability", "training", "rng"), hints=_DROPOUT_HINTS, properties=_dropout_properties,
             passes_when="0 or x / (1 - drop_probability) in training with zeros at the drop probability, a mask "
                         "per example, x at test time, draws from rng"),
    Exercise("random_circular_shift", "8.1", "function", random_circular_shift,
             visible_and_more(lambda: [_shift_case(1000, 40, 5, 16, 81)],
                              lambda: [_shift_case(1000, 24, 2, 16, 82),
                                       _shift_case(50, 10, 0, 2, 83, repeat=False)]),
             ("signals", "max_shift", "rng"), hints=_SHIFT_HINTS, properties=_shift_properties,
             passes_when="every row its own signal rolled circularly, a shift per row, every shift from "
                         "-max_shift to max_shift about equally often, draws from rng"),
    Exercise("batchnorm_forward", "9.1", "function", batch_norm.batchnorm_forward,
             visible_and_more(lambda: [_forward_case(_BATCHES, 90)],
                              lambda: [_forward_case(_MORE_BATCHES, 91),
                                       _forward_case((_ONE_EXAMPLE,), 92, modes=("test",))]),
             ("x", "gamma", "beta", "running_mean", "running_var", "momentum", "epsilon", "training"),
             hints=_BATCH_NORM_HINTS, results=("out", "new_running_mean", "new_running_var")),
    Exercise("batchnorm_backward", "9.2", "function", batch_norm.batchnorm_backward,
             visible_and_more(lambda: [_backward_case(_BATCHES, 93)], lambda: [_backward_case(_MORE_BATCHES, 94)]),
             ("dout", "x", "gamma", "epsilon"), results=("dx", "dgamma", "dbeta")),
    Exercise("freeze_body_and_replace_head", "10.1", "model", transfer.freeze_body_and_replace_head,
             visible_and_more(lambda: _freeze_case(False), lambda: _freeze_case(True)),
             ("model", "num_classes", "seed"), rtol=1e-6, atol=1e-7, hints=_FREEZE_HINTS,
             results=("the model", "the parameters to train")),
)}
