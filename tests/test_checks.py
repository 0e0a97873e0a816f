"""The exercise checks: right answers pass, each likely bug gets its own diagnosis, nothing leaks a traceback."""

import re

import numpy as np
import pytest
import torch

from course_lib import checks, optim
from course_lib.bugs import LIKELY_BUGS
from course_lib.checks import ExerciseError

RULE_BUGS = {name: bugs for name, bugs in LIKELY_BUGS.items() if name in optim.RULES}
BUG_CASES = [(name, variant, explanation) for name, bugs in RULE_BUGS.items() for variant, explanation in bugs]


@pytest.mark.parametrize("name", list(RULE_BUGS))
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_reference_rules_pass(name, backend, capsys):
    checks.check_rule(name, optim.RULES[name], backend=backend)
    assert capsys.readouterr().out.startswith(f"✓ Exercise {checks.EXERCISES[name]}")


@pytest.mark.parametrize("name, variant, explanation", BUG_CASES,
                         ids=[f"{case[0]}-{i}" for i, case in enumerate(BUG_CASES)])
def test_each_likely_bug_gets_its_own_diagnosis(name, variant, explanation):
    with pytest.raises(ExerciseError) as error:
        checks.check_rule(name, variant)
    assert explanation in str(error.value)
    assert f"Exercise {checks.EXERCISES[name]}" in str(error.value)


def _momentum_in_place(x, dx, config=None):
    config = dict(config or {})
    velocity = 0.9 * config.get("velocity", 0 * x) + dx
    config["velocity"] = velocity
    x -= config.get("learning_rate", 1e-2) * velocity
    return x, config


def _momentum_state_in_place(x, dx, config=None):
    config = dict(config or {})
    if "velocity" not in config:
        config["velocity"] = np.zeros_like(x)
    config["velocity"] *= config.get("rho", 0.9)
    config["velocity"] += dx
    return x - config.get("learning_rate", 1e-2) * config["velocity"], config


def _momentum_hard_coded_rho(x, dx, config=None):
    config = dict(config or {})
    config["velocity"] = 0.9 * config.get("velocity", 0 * x) + dx
    return x - config.get("learning_rate", 1e-2) * config["velocity"], config


def _momentum_numpy_only(x, dx, config=None):
    config = dict(config or {})
    config["velocity"] = config.get("rho", 0.9) * config.get("velocity", np.zeros(np.shape(x))) + np.asarray(dx)
    return np.asarray(x) - config.get("learning_rate", 1e-2) * config["velocity"], config


@pytest.mark.parametrize("candidate, expected", [
    (_momentum_in_place, "modified its input x in place"),
    (_momentum_state_in_place, "modified config['velocity'] in place"),
    (lambda x, dx, config=None: (x.sum(), {}), "a numpy array in must give a numpy array out"),
    (lambda x, dx, config=None: (x[:1] - dx[:1], {"velocity": dx}), "the wrong shape"),
    (lambda x, dx, config=None: x - dx, "returns the pair (next_x, config)"),
    (lambda x, dx, config=None: 1 / 0, "raised ZeroDivisionError"),
    ("not a function", "expected a function"),
])
def test_structural_mistakes_are_named(candidate, expected):
    with pytest.raises(ExerciseError, match="Exercise 2.1") as error:
        checks.check_rule("sgd_momentum", candidate)
    assert expected in str(error.value)


def test_unfinished_exercise_says_not_done_yet():
    def sgd_momentum(x, dx, config=None):
        raise NotImplementedError()

    with pytest.raises(ExerciseError, match="not done yet: write the body of sgd_momentum"):
        checks.check_rule("sgd_momentum", sgd_momentum)
    with pytest.raises(checks.NotReady, match="finish Exercise 2.1 first"):
        checks.your_rule(sgd_momentum).current()


def test_hidden_configurations_catch_what_the_visible_check_misses():
    checks.check_rule("sgd_momentum", _momentum_hard_coded_rho, quiet=True)  # visible: default rho only
    with pytest.raises(ExerciseError, match="next_x is"):
        checks.check_rule("sgd_momentum", _momentum_hard_coded_rho, configs=[{"rho": 0.5}])
    checks.check_rule("sgd_momentum", _momentum_numpy_only, quiet=True)
    with pytest.raises(ExerciseError, match="a torch Tensor in must give a torch Tensor out"):
        checks.check_rule("sgd_momentum", _momentum_numpy_only, backend="torch")


def test_state_under_another_name_is_pointed_out():
    def sgd_momentum(x, dx, config=None):
        config = dict(config or {})
        config["v"] = 0.9 * config.get("v", 0 * x) + dx
        return x - 0.01 * config["v"], config

    with pytest.raises(ExerciseError, match=r"config has no \['velocity'\]"):
        checks.check_rule("sgd_momentum", sgd_momentum)


def test_your_rule_hands_over_a_passing_rule_and_a_message_otherwise():
    assert checks.your_rule(optim.nesterov).current() is optim.nesterov
    wrong = LIKELY_BUGS["nesterov"][0][0]
    with pytest.raises(checks.NotReady, match=r"does not pass Exercise 2.2 yet \(its check cell says why\)"):
        checks.your_rule(wrong, "nesterov")(np.zeros(2), np.ones(2))


def test_your_rule_follows_the_learners_latest_definition():
    def nesterov(x, dx, config=None):
        raise NotImplementedError()

    notebook = {"nesterov": nesterov}
    yours = checks.YourFunction(nesterov, "nesterov", namespace=notebook)
    with pytest.raises(checks.NotReady, match="finish Exercise 2.2 first"):
        yours.current()
    notebook["nesterov"] = LIKELY_BUGS["nesterov"][0][0]  # the learner types the misprint and re-runs the cell
    with pytest.raises(checks.NotReady, match="does not pass"):
        yours.current()
    notebook["nesterov"] = optim.nesterov  # ... and then the fix
    x, _ = yours(np.zeros(2), np.ones(2))
    np.testing.assert_array_equal(x, optim.nesterov(np.zeros(2), np.ones(2))[0])


def test_exercise_error_renders_as_one_line_without_traceback():
    error = ExerciseError("Exercise 2.1 (sgd_momentum): the step goes uphill")
    lines = error._render_traceback_()
    assert len(lines) == 1 and "✗ Exercise 2.1" in lines[0] and "Traceback" not in lines[0]
    assert isinstance(error, AssertionError)  # nbgrader scores a failing check cell 0


def _eigen(h):
    return np.linalg.eigvalsh(h)


@pytest.mark.parametrize("candidate, expected", [
    (lambda h: _eigen(h)[0] / _eigen(h)[-1], "smallest / largest"),
    (lambda h: np.diag(h).max() / np.diag(h).min(), "diagonal entries"),
    (lambda h: (_eigen(h)[-1] / _eigen(h)[0]) ** 2, "kappa squared"),
    (lambda h: "big", "expected a number"),
    (lambda h: 3.0, "you returned 3.0"),
])
def test_condition_number_mistakes_are_named(candidate, expected):
    with pytest.raises(ExerciseError, match="Exercise 1.1") as error:
        checks.check_condition_number(candidate)
    assert expected in str(error.value)


@pytest.mark.parametrize("candidate, expected", [
    (lambda k: 1 - 1 / k, "learning_rate = 1/L"),
    (lambda k: (k + 1) / (k - 1) if k != 1 else float("inf"), "upside down"),
    (lambda k: k / (k + 1), "expected"),
])
def test_rate_mistakes_are_named(candidate, expected):
    with pytest.raises(ExerciseError, match="Exercise 1.2") as error:
        checks.check_gradient_descent_rate(candidate)
    assert expected in str(error.value)


def test_predict_and_measure_agrees_with_a_run(capsys):
    checks.predict_and_measure(lambda h: _eigen(h)[-1] / _eigen(h)[0], lambda k: (k - 1) / (k + 1), kappa=20)
    out = capsys.readouterr().out
    predicted = int(re.search(r"predict (\d+) steps", out).group(1))
    measured = int(re.search(r"the run took (\d+)", out).group(1))
    assert abs(predicted - measured) <= 1


def test_predict_and_measure_waits_for_the_exercises(capsys):
    def unfinished(_):
        raise NotImplementedError()

    checks.predict_and_measure(unfinished, lambda k: (k - 1) / (k + 1))
    assert "Finish this first" in capsys.readouterr().out


def test_torch_rules_are_checked_on_tensors():
    checks.check_rule("adam", optim.adam, backend="torch", shapes=[(4, 3)], steps=30, quiet=True)
    x = torch.zeros(3, dtype=torch.float64)
    assert isinstance(optim.adam(x, x + 1)[0], torch.Tensor)


def test_schedule_reference_passes_and_each_bug_is_named(capsys):
    from course_lib import schedules

    checks.check_schedule("step_decay", schedules.step_decay)
    assert capsys.readouterr().out.startswith("✓ Exercise 4.1")
    for variant, explanation in LIKELY_BUGS["step_decay"]:
        with pytest.raises(ExerciseError) as error:
            checks.check_schedule("step_decay", variant)
        assert explanation in str(error.value)
    with pytest.raises(ExerciseError, match="at t = 0 you returned 1.0"):
        checks.check_schedule("step_decay", lambda t, learning_rate, step_size, gamma=0.5: 1.0)


# ---- Exercise 5.1: the two-loop recursion -----------------------------------------------------------------------

def _reference_two_loop():
    from course_lib.second_order import two_loop_direction

    return two_loop_direction


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_two_loop_reference_passes(backend, capsys):
    checks.check_two_loop_direction(_reference_two_loop(), backend=backend)
    assert capsys.readouterr().out.startswith("✓ Exercise 5.1 (two_loop_direction) passed")
    checks.check_two_loop_direction(_reference_two_loop(), dimensions=(2, 12), max_history=10, seed=52, quiet=True)


def test_the_bug_variants_reproduce_the_reference_when_they_have_no_bug():
    from course_lib.bugs import _two_loop_variant

    checks.check_two_loop_direction(_two_loop_variant(), backend="torch", quiet=True)


TWO_LOOP_BUGS = LIKELY_BUGS["two_loop_direction"]


@pytest.mark.parametrize("variant, explanation", TWO_LOOP_BUGS,
                         ids=[f"bug-{i}" for i in range(len(TWO_LOOP_BUGS))])
@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_each_two_loop_bug_gets_its_own_diagnosis(variant, explanation, backend):
    with pytest.raises(ExerciseError, match=r"^Exercise 5\.1 \(two_loop_direction\): ") as error:
        checks.check_two_loop_direction(variant, backend=backend)
    assert str(error.value).endswith(explanation)


def test_two_loop_bug_explanations_are_distinct():
    explanations = [explanation for _, explanation in TWO_LOOP_BUGS]
    assert len(set(explanations)) == len(explanations)


def _two_loop_in_place_on_gradient(gradient, s_history, y_history):
    q = gradient
    for s, y in zip(reversed(s_history), reversed(y_history), strict=True):
        q -= (s @ q) / (y @ s) * y
    return -q


def _two_loop_reversing_the_history(gradient, s_history, y_history):
    s_history.reverse()
    y_history.reverse()
    return _reference_two_loop()(gradient, s_history[::-1], y_history[::-1])


def _two_loop_scaling_the_history(gradient, s_history, y_history):
    for s in s_history:
        s *= 1.0
        s += 1e-3
    return -gradient


def _unfinished_two_loop(gradient, s_history, y_history):
    raise NotImplementedError()


@pytest.mark.parametrize("candidate, expected", [
    (_two_loop_in_place_on_gradient, "modified gradient in place"),
    (_two_loop_reversing_the_history, "changed s_history"),
    (_two_loop_scaling_the_history, "changed s_history"),
    (_unfinished_two_loop, "not done yet: write the body of two_loop_direction"),
    (lambda gradient, s_history, y_history: list(-gradient), "a numpy array in must give a numpy array out"),
    (lambda gradient, s_history, y_history: -gradient[:1], "the direction has the gradient's shape"),
    (lambda gradient, s_history, y_history: 1 / 0, "raised ZeroDivisionError"),
    (lambda gradient, s_history, y_history: -0.5 * gradient, "with 0 pairs in 3 dimensions your direction is"),
    ("not a function", "expected a function"),
])
def test_two_loop_structural_mistakes_are_named(candidate, expected):
    with pytest.raises(ExerciseError, match=r"^Exercise 5\.1") as error:
        checks.check_two_loop_direction(candidate)
    assert expected in str(error.value)


def test_two_loop_numpy_only_answer_fails_the_hidden_torch_check():
    def numpy_only(gradient, s_history, y_history):
        as_numpy = [np.asarray(v) for v in (gradient, *s_history, *y_history)]
        m = len(s_history)
        return _reference_two_loop()(as_numpy[0], as_numpy[1:1 + m], as_numpy[1 + m:])

    checks.check_two_loop_direction(numpy_only, quiet=True)
    with pytest.raises(ExerciseError, match="a torch Tensor in must give a torch Tensor out"):
        checks.check_two_loop_direction(numpy_only, backend="torch")


def test_lbfgs_with_your_two_loop_runs_it_beside_the_reference_once_it_passes(capsys):
    checks.lbfgs_with_your_two_loop(_reference_two_loop())
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("L-BFGS with your two_loop_direction")
    assert lines[0].split(":")[1] == lines[1].split(":")[1]  # same steps, evaluations and distance
    checks.lbfgs_with_your_two_loop(_unfinished_two_loop)
    assert capsys.readouterr().out.startswith("Finish this first. Exercise 5.1 (two_loop_direction): not done yet")
    checks.lbfgs_with_your_two_loop(TWO_LOOP_BUGS[0][0])
    assert "the sign is flipped" in capsys.readouterr().out
