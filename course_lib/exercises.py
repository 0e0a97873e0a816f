"""The exercises: what each asks for, the reference it is judged against, and the cases it is judged on.

``EXERCISES[name]`` is an ``Exercise``; ``name`` is the function the learner writes. Each exercise has two
suites of cases (see course_lib.harness for what a case is):

- ``"visible"``: what the check cell under the exercise runs in the learner's notebook;
- ``"hidden"``: the visible cases and more (other hyperparameters, longer runs, torch tensors, other sizes),
  what the hidden tests and the grader run.

The cases are built from fixed seeds, so every run of a suite is the same; the reference and the likely bugs
(course_lib.bugs) are run on the same cases by the judge (course_lib.checks).
"""

import math
from dataclasses import dataclass, field

import numpy as np

from course_lib import optim, schedules, second_order, theory
from course_lib.bugs import LIKELY_BUGS

__all__ = ["EXERCISES", "Exercise"]


@dataclass(frozen=True)
class Exercise:
    """One exercise: the function ``name`` the learner writes, judged against ``reference``."""

    name: str
    number: str  # as the notebooks number it, e.g. "3.2"
    kind: str  # "rule" or "function": how course_lib.harness calls it
    reference: object
    build_cases: object  # suite name -> list of cases
    arguments: tuple = ()  # the argument names, to say which one a learner changed in place
    rtol: float = 1e-8
    atol: float = 1e-10
    hints: dict = field(default_factory=dict)  # argument name -> what to do instead of changing it in place

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


_TWO_LOOP_HINTS = {
    "gradient": "q = gradient, then q -= ...: both names are the same array. Write q = q - alpha * y, which "
                "builds a new array.",
    "s_history": "e.g. with .reverse(), .pop(), or -= on one of its vectors. L-BFGS keeps using the history "
                 "after this call: loop over reversed(s_history) instead, and build new vectors.",
    "y_history": "e.g. with .reverse(), .pop(), or -= on one of its vectors. L-BFGS keeps using the history "
                 "after this call: loop over reversed(y_history) instead, and build new vectors.",
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
)}
