"""Instant checks for the exercises: compare a learner's function with the reference and name the likely bug.

A check prints one line starting with ✓ when the answer is right. When it is wrong it raises
``ExerciseError`` (an AssertionError, so nbgrader scores the cell 0) whose message says what is wrong; in a
notebook the error shows as that message alone, without a traceback.

    checks.check_rule("sgd_momentum", sgd_momentum)                       # the visible check
    checks.check_rule("sgd_momentum", sgd_momentum, backend="torch", configs=[{"rho": 0.5}], steps=40)

``your_rule(fn)`` gives a widget the learner's rule once its exercise passes, and a message until then.
"""

import copy

import numpy as np
import torch

from . import landscapes, measure, optim, schedules, theory
from .bugs import LIKELY_BUGS
from .trajectories import run

__all__ = [
    "EXERCISES",
    "ExerciseError",
    "NotReady",
    "YourFunction",
    "check_condition_number",
    "check_gradient_descent_rate",
    "check_rule",
    "check_schedule",
    "check_two_loop_direction",
    "lbfgs_with_your_two_loop",
    "predict_and_measure",
    "your_rule",
]

# function name -> exercise number, as the notebooks number them
EXERCISES = {
    "condition_number": "1.1",
    "gradient_descent_rate": "1.2",
    "sgd_momentum": "2.1",
    "nesterov": "2.2",
    "rmsprop": "3.1",
    "adam": "3.2",
    "step_decay": "4.1",
    "two_loop_direction": "5.1",
}

VISIBLE_CONFIGS = ({}, {"learning_rate": 0.05})
RTOL, ATOL = 1e-8, 1e-10


class ExerciseError(AssertionError):
    """A failed check. Its message is the diagnosis; IPython shows it without a traceback."""

    def _render_traceback_(self):
        return [f"\x1b[1;31m✗ {self}\x1b[0m"]


def _fail(name, message):
    raise ExerciseError(f"Exercise {EXERCISES.get(name, '?')} ({name}): {message}")


def _passed(name, message):
    print(f"✓ Exercise {EXERCISES.get(name, '?')} ({name}) passed: {message}")


def check_rule(name, candidate, backend="numpy", configs=VISIBLE_CONFIGS, shapes=((5,), (2, 3)), steps=6,
               seed=0, quiet=False):
    """Check the learner's update rule ``candidate`` against ``course_lib.optim.<name>``.

    Each config (hyperparameters; the rule's defaults fill the rest) runs ``steps`` steps from random x and
    dx of each shape, feeding the returned config back in, as a training loop does.
    """
    reference = optim.RULES[name]
    if not callable(candidate):
        _fail(name, f"expected a function, got {type(candidate).__name__}")
    rng = np.random.default_rng(seed)
    for config in configs:
        for shape in shapes:
            xs = [rng.standard_normal(shape) for _ in range(steps + 1)]
            dxs = [rng.standard_normal(shape) for _ in range(steps)]
            if backend == "torch":
                xs, dxs = [torch.tensor(a) for a in xs], [torch.tensor(a) for a in dxs]
            _compare_runs(name, candidate, reference, xs, dxs, dict(config))
    if not quiet:
        described = ", ".join(str(c) or "defaults" for c in configs).replace("{}", "defaults")
        _passed(name, f"matches the reference over {steps} steps for shapes {list(shapes)}, configs "
                      f"{described} ({backend}).")


def _compare_runs(name, candidate, reference, xs, dxs, config):
    """Run both rules on the same points and gradients; fail at the first step where they disagree."""
    ours, theirs = copy.deepcopy(config), copy.deepcopy(config)
    candidate_outputs = []
    for step, (x, dx) in enumerate(zip(xs, dxs, strict=False), start=1):
        where = f"at step {step} (x of shape {tuple(x.shape)}, config {_brief(config)})"
        passed_state = {key: ours[key] for key in _state_keys(ours)}
        x_before, dx_before, state_before = _copy(x), _copy(dx), copy.deepcopy(passed_state)
        next_x, ours = _call(name, candidate, x, dx, ours, where)
        _check_untouched(name, (x, x_before), (dx, dx_before), passed_state, state_before, where)
        expected_x, theirs = reference(x, dx, theirs)
        candidate_outputs.append((_as_numpy(next_x), _state_of(ours, theirs)))
        if type(next_x) is not type(expected_x):
            _fail(name, f"{where} returned a {_kind(next_x)}; a {_kind(expected_x)} in must give a "
                        f"{_kind(expected_x)} out.")
        if tuple(next_x.shape) != tuple(expected_x.shape):
            _fail(name, f"{where} returned next_x of shape {tuple(next_x.shape)}, expected "
                        f"{tuple(expected_x.shape)}: the wrong shape (did you sum or flatten?).")
        x_right = _close(next_x, expected_x)
        state_wrong = [key for key in _state_keys(theirs) if not _close(ours.get(key), theirs[key])]
        if x_right and not state_wrong:
            continue
        diagnosis = _diagnose(name, xs[:step], dxs[:step], config, candidate_outputs)
        if diagnosis:
            _fail(name, diagnosis)
        if x_right:
            missing = [key for key in state_wrong if key not in ours]
            if missing:
                _fail(name, f"{where} next_x is right, but config has no {missing}: keep the rule's state in "
                            f"config under the lecture's names {list(_state_keys(theirs))}.")
            _fail(name, f"{where} next_x is right but config[{state_wrong[0]!r}] is "
                        f"{_show(ours[state_wrong[0]])}, expected {_show(theirs[state_wrong[0]])}.")
        _fail(name, f"{where} next_x is {_show(next_x)}, expected {_show(expected_x)} (largest difference "
                    f"{_largest_difference(next_x, expected_x):.3g}).")


def _invoke(name, candidate, *arguments, where=""):
    """The learner's function called on ``arguments``; an unfinished or raising function becomes a failed check."""
    try:
        return candidate(*arguments)
    except NotImplementedError:
        _fail(name, f"not done yet: write the body of {name} (it still raises NotImplementedError).")
    except Exception as error:
        _fail(name, f"{where} your function raised {type(error).__name__}: {error}".lstrip())


def _call(name, candidate, x, dx, config, where):
    result = _invoke(name, candidate, x, dx, config, where=where)
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
        _fail(name, f"{where} returned {type(result).__name__}; a rule returns the pair (next_x, config).")
    return result


def _check_untouched(name, x_pair, dx_pair, passed_state, state_before, where):
    """Fail if the rule changed, in place, an array it was given (x, dx, or a state array in config)."""
    for argument, (now, before) in (("x", x_pair), ("dx", dx_pair)):
        if not _identical(now, before):
            _fail(name, f"{where} your function modified its input {argument} in place (e.g. x -= ... or "
                        "x += ...). Build a new array instead: next_x = x - ..., so the caller's arrays stay "
                        "as they were.")
    for key, array in passed_state.items():
        if not _identical(array, state_before[key]):
            _fail(name, f"{where} your function modified config[{key!r}] in place (e.g. velocity *= rho). "
                        f"Compute a new array and store it: config[{key!r}] = ...")


_STATE_NAMES = ("velocity", "grad_squared", "first_moment", "second_moment", "t")


def _state_keys(config):
    return [key for key in _STATE_NAMES if key in config]


def _state_of(ours, theirs):
    return {key: _as_numpy(ours.get(key)) for key in _state_keys(theirs)}


def _diagnose(name, xs, dxs, config, candidate_outputs):
    """The explanation of the first likely bug whose outputs match the learner's on every step so far."""
    for variant, explanation in LIKELY_BUGS.get(name, []):
        state = copy.deepcopy(config)
        matches = True
        for (x, dx), (candidate_x, candidate_state) in zip(zip(xs, dxs, strict=True), candidate_outputs,
                                                           strict=True):
            try:
                with np.errstate(all="ignore"):
                    variant_x, state = variant(x, dx, state)
            except Exception:
                matches = False
                break
            same_x = _close(candidate_x, variant_x)
            same_state = all(_close(candidate_state.get(key), state.get(key)) for key in candidate_state)
            if not (same_x and same_state):
                matches = False
                break
        if matches:
            return explanation
    return None


class NotReady(Exception):
    """A learner's function that cannot race yet; the message is what a widget shows in its place."""


class YourFunction:
    """A learner's function as a widget racer, looked up by name in the notebook at every use.

    Fixing the exercise cell is enough: the next slider move races the new version, once its check passes.
    Until then, using it raises ``NotReady`` with what to do, which the widgets draw on the plot.
    """

    def __init__(self, candidate, name, namespace=None):
        self.__name__ = name
        self._candidate = candidate
        self._namespace = namespace
        self._verdict = (None, None)  # (the function last checked, its message or None)

    def current(self):
        """The learner's current definition, if its exercise passes; otherwise raise NotReady."""
        namespace = self._namespace if self._namespace is not None else _notebook_namespace()
        candidate = namespace.get(self.__name__, self._candidate)
        if self._verdict[0] is not candidate:
            self._verdict = (candidate, _readiness(self.__name__, candidate))
        if self._verdict[1]:
            raise NotReady(self._verdict[1])
        return candidate

    def __call__(self, *arguments, **keywords):
        return self.current()(*arguments, **keywords)


def your_rule(candidate, name=None):
    """The learner's function (an update rule, a schedule, ...) for a widget: see ``YourFunction``."""
    return YourFunction(candidate, name or getattr(candidate, "__name__", ""))


def _readiness(name, candidate):
    """None if ``candidate`` passes its exercise's check, else the message a widget shows instead."""
    checker = QUIET_CHECKS.get(name, lambda candidate: check_rule(name, candidate, quiet=True))
    try:
        checker(candidate)
    except ExerciseError as error:
        exercise = EXERCISES.get(name, "?")
        if "not done yet" in str(error):
            return f"finish Exercise {exercise} first"
        return f"does not pass Exercise {exercise} yet (its check cell says why)"
    return None


def _notebook_namespace():
    """The notebook's variables (IPython's user namespace), or {} outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return {}
    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


# ---- Notebook 01: conditioning ----------------------------------------------------------------------------

def _random_spd(rng, eigenvalues):
    q, _ = np.linalg.qr(rng.standard_normal((len(eigenvalues), len(eigenvalues))))
    return q @ np.diag(eigenvalues) @ q.T


def check_condition_number(candidate, sizes=(2, 5), seed=0, quiet=False):
    """Check ``condition_number(hessian)`` on rotated symmetric positive-definite Hessians."""
    name = "condition_number"
    rng = np.random.default_rng(seed)
    for size in sizes:
        eigenvalues = np.sort(rng.uniform(0.1, 10.0, size))
        hessian = _random_spd(rng, eigenvalues)
        expected = eigenvalues[-1] / eigenvalues[0]
        answer = _call_value(name, candidate, hessian.copy())
        if np.isclose(answer, expected, rtol=1e-6):
            continue
        diagonal = np.diag(hessian)
        if np.isclose(answer, 1 / expected, rtol=1e-6):
            _fail(name, f"you returned smallest / largest ({answer:.4g}); kappa = largest / smallest "
                        f"eigenvalue = {expected:.4g}, never below 1.")
        if np.isclose(answer, expected**2, rtol=1e-6):
            _fail(name, f"you returned kappa squared ({answer:.4g}): perhaps the singular values of H^T H. "
                        "Use the eigenvalues of H itself.")
        if np.isclose(answer, diagonal.max() / diagonal.min(), rtol=1e-6):
            _fail(name, "you used the diagonal entries of the Hessian. They are its eigenvalues only when the "
                        "valley is aligned with the axes; use np.linalg.eigvalsh(hessian).")
        _fail(name, f"for a {size}x{size} Hessian with eigenvalues {np.round(eigenvalues, 3)} you returned "
                    f"{answer!r}, expected {expected:.6g}.")
    if not quiet:
        _passed(name, f"right on rotated Hessians of sizes {list(sizes)}.")


def check_gradient_descent_rate(candidate, kappas=(4.0, 10.0, 1000.0, 1.0), quiet=False):
    """Check ``gradient_descent_rate(kappa)``: the error factor per step at the best learning rate."""
    name = "gradient_descent_rate"
    for kappa in kappas:
        expected = theory.gradient_descent_rate(kappa)
        answer = _call_value(name, candidate, kappa)
        if np.isclose(answer, expected, rtol=1e-9, atol=1e-12):
            continue
        if np.isclose(answer, 1 - 1 / kappa, rtol=1e-9):
            _fail(name, f"1 - 1/kappa is the rate with learning_rate = 1/L. At the best learning rate "
                        f"2/(L + mu) it is (kappa - 1)/(kappa + 1) = {expected:.4g} for kappa = {kappa:g}.")
        if kappa != 1 and np.isclose(answer, 1 / expected, rtol=1e-9):
            _fail(name, "the fraction is upside down: (kappa - 1)/(kappa + 1) is below 1, so the error shrinks.")
        _fail(name, f"for kappa = {kappa:g} you returned {answer!r}, expected {expected:.6g}.")
    if not quiet:
        _passed(name, f"right for kappa in {list(kappas)}.")


def predict_and_measure(condition_number, gradient_descent_rate, kappa=50.0, reduction=1e-6):
    """Predict, with the learner's two functions, the steps gradient descent needs to shrink the error by
    ``reduction`` on an ill-conditioned quadratic; then measure them with the reference rule."""
    for check, candidate in ((check_condition_number, condition_number),
                             (check_gradient_descent_rate, gradient_descent_rate)):
        try:
            check(candidate, quiet=True)
        except ExerciseError as error:
            print(f"Finish this first. {error}")
            return
    valley = landscapes.ill_conditioned_quadratic(kappa)
    rate = gradient_descent_rate(condition_number(valley.hessian(valley.global_minimum)))
    predicted = int(np.ceil(np.log(reduction) / np.log(rate)))
    best = theory.gradient_descent_best_learning_rate(1.0, 1.0 / kappa)
    trajectory = run(optim.sgd, valley, steps=3 * predicted, config={"learning_rate": best})
    start_distance = trajectory.distances(valley.global_minimum)[0]
    measured = measure.steps_to_reach(trajectory, valley.global_minimum, reduction * start_distance)
    print(f"kappa = {kappa:g}: your functions predict {predicted} steps to shrink the error by {reduction:g}; "
          f"the run took {measured}.")


def _call_value(name, candidate, *arguments):
    answer = _invoke(name, candidate, *arguments)
    try:
        return float(answer)
    except (TypeError, ValueError):
        _fail(name, f"expected a number, got {type(answer).__name__}: {answer!r}")


# ---- Notebook 04: schedules -------------------------------------------------------------------------------

VISIBLE_SCHEDULE_ARGUMENTS = ({"learning_rate": 0.1, "step_size": 10, "gamma": 0.5},)


def check_schedule(name, candidate, arguments=VISIBLE_SCHEDULE_ARGUMENTS, steps=60, quiet=False):
    """Check a learner's schedule ``candidate(t, **arguments)`` against ``course_lib.schedules.<name>``."""
    reference = schedules.SCHEDULES[name]
    for args in arguments:
        ts = range(steps)
        answers = [_call_value(name, candidate, t, *args.values()) for t in ts]
        expected = [reference(t, **args) for t in ts]
        if np.allclose(answers, expected, rtol=1e-12, atol=0):
            continue
        for variant, explanation in LIKELY_BUGS.get(name, []):
            if np.allclose(answers, [variant(t, **args) for t in ts], rtol=1e-12, atol=0):
                _fail(name, explanation)
        first = next(t for t in ts if not np.isclose(answers[t], expected[t], rtol=1e-12, atol=0))
        _fail(name, f"with {args}, at t = {first} you returned {answers[first]!r}, expected {expected[first]!r}.")
    if not quiet:
        _passed(name, f"matches the reference for t = 0..{steps - 1} with {list(arguments)}.")


# exercise name -> its check without output, for your_rule (update rules need no entry: check_rule is the default)
QUIET_CHECKS = {"step_decay": lambda candidate: check_schedule("step_decay", candidate, quiet=True)}


# ---- small helpers ----------------------------------------------------------------------------------------

def _kind(value):
    if isinstance(value, torch.Tensor):
        return "torch Tensor"
    return "numpy array" if isinstance(value, np.ndarray) else type(value).__name__


def _as_numpy(value):
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return value if value is None else np.asarray(value)


def _copy(value):
    return value.clone() if isinstance(value, torch.Tensor) else np.array(value, copy=True)


def _identical(a, b):
    return np.array_equal(_as_numpy(a), _as_numpy(b), equal_nan=True)


def _close(a, b):
    if a is None or b is None:
        return a is None and b is None
    a, b = _as_numpy(a), _as_numpy(b)
    if np.shape(a) != np.shape(b):
        return False
    with np.errstate(all="ignore"):
        return bool(np.allclose(a.astype(float), b.astype(float), rtol=RTOL, atol=ATOL, equal_nan=True))


def _largest_difference(a, b):
    with np.errstate(all="ignore"):
        return float(np.nanmax(np.abs(_as_numpy(a) - _as_numpy(b))))


def _show(value):
    return np.array2string(_as_numpy(value), precision=4, threshold=6, edgeitems=2)


def _brief(config):
    return {key: value for key, value in config.items() if key not in _STATE_NAMES} or "defaults"


# ---- Notebook 05: the two-loop recursion of L-BFGS ----------------------------------------------------------

def _quadratic_histories(rng, dimensions, max_history):
    """(gradient, s_history, y_history) cases: for each dimension a random SPD Hessian H, and histories of
    0 .. max_history random steps s_i with y_i = H s_i (so s^T y > 0, as L-BFGS keeps its pairs)."""
    cases = []
    for dimension in dimensions:
        hessian = _random_spd(rng, np.sort(rng.uniform(0.1, 10.0, dimension)))
        for length in range(max_history + 1):
            s_history = [rng.standard_normal(dimension) for _ in range(length)]
            cases.append((rng.standard_normal(dimension), s_history, [hessian @ s for s in s_history]))
    return cases


def check_two_loop_direction(candidate, dimensions=(3, 6), max_history=4, backend="numpy", seed=0, quiet=False):
    """Check ``two_loop_direction(gradient, s_history, y_history)`` against course_lib.second_order's on
    histories of every length from 0 to ``max_history`` (oldest pair first) from random SPD quadratics."""
    from .second_order import two_loop_direction as reference

    name = "two_loop_direction"
    if not callable(candidate):
        _fail(name, f"expected a function, got {type(candidate).__name__}")
    cases = _quadratic_histories(np.random.default_rng(seed), dimensions, max_history)
    if backend == "torch":
        cases = [(torch.tensor(g), [torch.tensor(s) for s in ss], [torch.tensor(y) for y in ys])
                 for g, ss, ys in cases]
    answers = [_call_direction(name, candidate, *case) for case in cases]
    expected = [reference(*case) for case in cases]
    wrong = [i for i, (answer, right) in enumerate(zip(answers, expected, strict=True))
             if not _close(answer, right)]
    if wrong:
        for variant, explanation in LIKELY_BUGS.get(name, []):
            with np.errstate(all="ignore"):
                if all(_close(answer, variant(*case)) for answer, case in zip(answers, cases, strict=True)):
                    _fail(name, explanation)
        gradient, s_history, _ = cases[wrong[0]]
        _fail(name, f"{_pairs_in(gradient, s_history)} your direction is "
                    f"{_show(answers[wrong[0]])}, expected {_show(expected[wrong[0]])} (largest difference "
                    f"{_largest_difference(answers[wrong[0]], expected[wrong[0]]):.3g}).")
    if not quiet:
        _passed(name, f"matches the reference for histories of 0 to {max_history} pairs in dimensions "
                      f"{list(dimensions)} ({backend}).")


def _call_direction(name, candidate, gradient, s_history, y_history):
    """The learner's direction for one case, after checking that the call left its arguments as they were."""
    where = _pairs_in(gradient, s_history)
    s_list, y_list = list(s_history), list(y_history)
    before = (_copy(gradient), [_copy(s) for s in s_history], [_copy(y) for y in y_history])
    answer = _invoke(name, candidate, gradient, s_list, y_list, where=where)
    if not _identical(gradient, before[0]):
        _fail(name, f"{where} your function modified gradient in place (q = gradient, then q -= ...: both names "
                    "are the same array). Write q = q - alpha * y, which builds a new array.")
    for label, now, then in (("s_history", s_list, before[1]), ("y_history", y_list, before[2])):
        if len(now) != len(then) or not all(_identical(a, b) for a, b in zip(now, then, strict=False)):
            _fail(name, f"{where} your function changed {label} (e.g. with .reverse(), .pop(), or -= on one of "
                        "its vectors). L-BFGS keeps using the history after this call: loop over "
                        f"reversed({label}) instead, and build new vectors.")
    expected_kind = _kind(gradient)
    if _kind(answer) != expected_kind:
        _fail(name, f"{where} you returned a {_kind(answer)}; a {expected_kind} in must give a {expected_kind} "
                    "out.")
    if tuple(answer.shape) != tuple(gradient.shape):
        _fail(name, f"{where} you returned shape {tuple(answer.shape)}; the direction has the gradient's shape "
                    f"{tuple(gradient.shape)}.")
    return answer


def _pairs_in(gradient, s_history):
    return f"with {len(s_history)} pair{'' if len(s_history) == 1 else 's'} in {len(gradient)} dimensions"


def lbfgs_with_your_two_loop(candidate, max_iter=100):
    """Once Exercise 5.1 passes: L-BFGS on Rosenbrock driven by the learner's two-loop recursion, beside the
    same L-BFGS with the reference's (course_lib.second_order.lbfgs with ``direction=``)."""
    from . import second_order

    try:
        check_two_loop_direction(candidate, quiet=True)
    except ExerciseError as error:
        print(f"Finish this first. {error}")
        return
    valley = landscapes.rosenbrock()
    for label, direction in (("your two_loop_direction", candidate),
                             ("the reference", second_order.two_loop_direction)):
        result = second_order.lbfgs(lambda x: (valley.f(x), valley.grad(x)), np.array(valley.start),
                                    max_iter=max_iter, tolerance=1e-10, direction=direction)
        distance = np.linalg.norm(result.final - valley.global_minimum)
        print(f"L-BFGS with {label:23s}: {result.iterations} steps, {result.evaluations} gradient "
              f"evaluations, distance to the minimum {distance:.1e}")
