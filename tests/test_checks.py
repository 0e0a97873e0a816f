"""The exercise checks: right answers pass however they are written, each likely bug gets its own diagnosis (one
that explains every call, not just the first that differs), structural mistakes are named, nothing leaks a
traceback, and the judge decides from returned numbers alone."""

import copy
import math
import threading

import numpy as np
import pytest
import torch

from course_lib import (
    bugs,
    checks,
    data,
    exercises,
    harness,
    optim,
    schedules,
    second_order,
    theory,
    training,
    transfer,
)
from course_lib.checks import ExerciseError
from course_lib.exercises import EXERCISES

BUG_CASES = [(name, variant, explanation) for name, exercise in EXERCISES.items()
             for variant, explanation in exercise.likely_bugs]


def verdict(name, candidate, suite="visible"):
    """The check's message, or None when it passes."""
    try:
        checks.check(name, candidate, suite=suite, quiet=True)
    except ExerciseError as error:
        return str(error)
    return None


@pytest.mark.parametrize("name", list(EXERCISES))
@pytest.mark.parametrize("suite", ["visible", "hidden"])
def test_the_reference_passes(name, suite):
    assert verdict(name, EXERCISES[name].reference, suite) is None


def test_a_passing_check_says_so(capsys):
    checks.check("adam", optim.adam)
    out = capsys.readouterr().out
    assert out.startswith("✓ Exercise 3.2 (adam) passed") and "numpy and torch" in out


@pytest.mark.parametrize("name, variant, explanation", BUG_CASES,
                         ids=[f"{case[0]}-{i}" for i, case in enumerate(BUG_CASES)])
def test_each_likely_bug_gets_its_own_diagnosis(name, variant, explanation):
    for suite in ("visible", "hidden"):
        message = verdict(name, variant, suite)
        assert message is not None, f"{name}: a known-wrong answer passed the {suite} check"
        assert explanation in message, message
        assert message.startswith(f"Exercise {EXERCISES[name].number} ({name}): ")


def test_the_hidden_suite_contains_the_visible_one():
    for name, exercise in EXERCISES.items():
        visible, hidden = exercise.cases("visible"), exercise.cases("hidden")
        assert len(hidden) >= len(visible)
        assert sum(len(c[0]["calls"]) for c in hidden) > sum(len(c[0]["calls"]) for c in visible), name
        for (spec, arrays), (hidden_spec, hidden_arrays) in zip(visible, hidden, strict=False):
            assert spec == hidden_spec and all(np.array_equal(arrays[k], hidden_arrays[k]) for k in arrays)


def test_an_unknown_suite_is_refused():
    with pytest.raises(ValueError, match="suite must be 'visible' or 'hidden'"):
        EXERCISES["adam"].cases("secret")


# ---- correct answers written differently ---------------------------------------------------------------------

def momentum_lazy_state(x, dx, config=None):
    config = dict(config or {})
    learning_rate, rho = config.get("learning_rate", 1e-2), config.get("rho", 0.9)
    velocity = rho * config.get("velocity", 0 * x) + dx
    config["velocity"] = velocity
    return x - learning_rate * velocity, config


def momentum_setdefault_on_the_callers_dict(x, dx, config=None):
    if config is None:
        config = {}
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("rho", 0.9)
    config["velocity"] = config["rho"] * config.get("velocity", x * 0) + dx
    return x - config["learning_rate"] * config["velocity"], config


def momentum_deep_copy(x, dx, config=None):
    config = copy.deepcopy(config) if config is not None else {}
    velocity = config.get("rho", 0.9) * config.get("velocity", x * 0.0) + dx
    next_x = x * 1
    next_x = next_x - config.get("learning_rate", 1e-2) * velocity
    config["velocity"] = velocity
    return next_x, config


def rmsprop_with_np_sqrt(x, dx, config=None):
    config = dict(config or {})
    decay_rate = config.get("decay_rate", 0.99)
    grad_squared = decay_rate * config.get("grad_squared", 0 * x) + (1 - decay_rate) * dx**2
    config["grad_squared"] = grad_squared
    scale = np.sqrt(grad_squared) + config.get("epsilon", 1e-7)
    return x - config.get("learning_rate", 1e-2) * dx / scale, config


def adam_folded_corrections(x, dx, config=None):
    config = {"learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-7, **(config or {})}
    t = config.get("t", 0) + 1
    m = config["beta1"] * config.get("first_moment", 0 * x) + (1 - config["beta1"]) * dx
    v = config["beta2"] * config.get("second_moment", 0 * x) + (1 - config["beta2"]) * dx * dx
    step = config["learning_rate"] * math.sqrt(1 - config["beta2"] ** t) / (1 - config["beta1"] ** t)
    epsilon_hat = config["epsilon"] * math.sqrt(1 - config["beta2"] ** t)
    config.update(t=t, first_moment=m, second_moment=v)
    return x - step * m / (v**0.5 + epsilon_hat), config


def step_decay_with_floor(t, learning_rate, step_size, gamma=0.5):
    return learning_rate * gamma ** math.floor(t / step_size)


def two_loop_with_copies(gradient, s_history, y_history):
    q, alphas = gradient * 1, []
    pairs = list(zip(s_history, y_history, strict=True))
    for s, y in pairs[::-1]:
        alpha = (s @ q) / (s @ y)
        q = q - alpha * y
        alphas.insert(0, alpha)
    if pairs:
        s, y = pairs[-1]
        q = q * ((s @ y) / (y @ y))
    for (s, y), alpha in zip(pairs, alphas, strict=True):
        q = q + (alpha - (y @ q) / (y @ s)) * s
    return -q


@pytest.mark.parametrize("name, candidate", [
    ("sgd_momentum", momentum_lazy_state), ("sgd_momentum", momentum_setdefault_on_the_callers_dict),
    ("sgd_momentum", momentum_deep_copy), ("rmsprop", rmsprop_with_np_sqrt), ("adam", adam_folded_corrections),
    ("step_decay", step_decay_with_floor), ("two_loop_direction", two_loop_with_copies),
    ("best_learning_rate", lambda h: 2 / (np.linalg.eigvals(h).real.max() + np.linalg.eigvals(h).real.min())),
    ("best_learning_rate", lambda h: 2 / np.sum(np.linalg.svd(h)[1][[0, -1]])),
    ("steps_to_shrink", lambda kappa, factor: int(np.ceil(np.log10(factor)
                                                          / np.log10((kappa - 1) / (kappa + 1))))),
    ("steps_to_shrink", lambda kappa, factor: next(k for k in range(10**7) if ((kappa - 1) / (kappa + 1)) ** k
                                                    <= factor)),
])
def test_correct_answers_written_differently_pass(name, candidate):
    for suite in ("visible", "hidden"):
        assert verdict(name, candidate, suite) is None


# ---- mistakes in how a rule is written --------------------------------------------------------------------------

def momentum_in_place(x, dx, config=None):
    config = dict(config or {})
    velocity = config.get("rho", 0.9) * config.get("velocity", 0 * x) + dx
    config["velocity"] = velocity
    x -= config.get("learning_rate", 1e-2) * velocity
    return x, config


def momentum_state_in_place(x, dx, config=None):
    config = dict(config or {})
    if "velocity" not in config:
        config["velocity"] = 0 * x
    config["velocity"] *= config.get("rho", 0.9)
    config["velocity"] += dx
    return x - config.get("learning_rate", 1e-2) * config["velocity"], config


def momentum_without_or(x, dx, config=None):
    config = dict(config)
    config["velocity"] = config.get("rho", 0.9) * config.get("velocity", 0 * x) + dx
    return x - config.get("learning_rate", 1e-2) * config["velocity"], config


def momentum_with_numpy_copy(x, dx, config=None):
    config = dict(config or {})
    velocity = config.get("rho", 0.9) * config.get("velocity", 0 * x) + dx
    config["velocity"] = velocity
    next_x = x.copy()
    return next_x - config.get("learning_rate", 1e-2) * velocity, config


def momentum_with_zeros_like(x, dx, config=None):
    config = dict(config or {})
    velocity = config.get("rho", 0.9) * config.get("velocity", np.zeros_like(x)) + dx
    config["velocity"] = velocity
    return x - config.get("learning_rate", 1e-2) * velocity, config


def momentum_state_on_the_function(x, dx, config=None):
    """Keeps its velocity as an attribute of the function, reset whenever the shape changes: right for a run
    alone, wrong when two runs are stepped in turn."""
    config = dict(config or {})
    store = momentum_state_on_the_function.__dict__
    if "velocity" not in config or store.get("shape") != np.shape(x):
        store.update(velocity=0 * x, shape=np.shape(x))
    store["velocity"] = config.get("rho", 0.9) * store["velocity"] + dx
    config["velocity"] = store["velocity"]
    return x - config.get("learning_rate", 1e-2) * store["velocity"], config


def momentum_default_argument(x, dx, config=None, memory={}):  # noqa: B006 (the bug under test)
    config = dict(config or {})
    previous = memory.get("velocity")
    if previous is None or np.shape(previous) != np.shape(x):
        previous = 0 * x
    memory["velocity"] = config.get("rho", 0.9) * previous + dx
    config["velocity"] = memory["velocity"]
    return x - config.get("learning_rate", 1e-2) * memory["velocity"], config


@pytest.mark.parametrize("candidate, expected", [
    (momentum_in_place, "modified its input x in place"),
    (momentum_state_in_place, "modified config['velocity'] in place"),
    (lambda x, dx, config=None: (x.sum(), {}), "of shape (), expected (5,)"),
    (lambda x, dx, config=None: x - dx, "a rule returns the pair (next_x, config)"),
    (lambda x, dx, config=None: 1 / 0, "your function raised ZeroDivisionError"),
    (momentum_without_or, "start from config = dict(config or {})"),
    (momentum_with_numpy_copy, "The same function must work on torch tensors"),
    (momentum_with_zeros_like, "The same function must work on torch tensors"),
    (momentum_state_on_the_function, "keeps its state outside the config it returns"),
    (momentum_default_argument, "keeps its state outside the config it returns"),
    ("not a function", "expected a function"),
])
def test_structural_mistakes_are_named(candidate, expected):
    message = verdict("sgd_momentum", candidate)
    assert message is not None and expected in message, message
    assert message.startswith("Exercise 2.1 (sgd_momentum): ")


def test_state_leaking_between_runs_is_named_when_it_raises():
    leftover = {}

    def sgd_momentum(x, dx, config=None):
        config = dict(config or {})
        leftover["velocity"] = config.get("rho", 0.9) * leftover.get("velocity", 0 * x) + dx
        config["velocity"] = leftover["velocity"]
        return x - config.get("learning_rate", 1e-2) * leftover["velocity"], config

    message = verdict("sgd_momentum", sgd_momentum)
    assert "at step 1 of run B" in message and "state left over from an earlier run" in message


def test_state_under_another_name_is_pointed_out():
    def sgd_momentum(x, dx, config=None):
        config = dict(config or {})
        config["v"] = config.get("rho", 0.9) * config.get("v", 0 * x) + dx
        return x - config.get("learning_rate", 1e-2) * config["v"], config

    assert "next_x is right, but config has no ['velocity']" in verdict("sgd_momentum", sgd_momentum)


def test_nan_is_reported_where_it_appears():
    def adam(x, dx, config=None):  # the second moment averages dx, not dx * dx: its root turns NaN
        config = dict(config or {})
        t = config.get("t", 0) + 1
        m = 0.9 * config.get("first_moment", 0 * x) + 0.1 * dx
        v = 0.999 * config.get("second_moment", 0 * x) + 0.001 * dx
        config.update(t=t, first_moment=m, second_moment=v)
        return x - config.get("learning_rate", 1e-3) * (m / (1 - 0.9**t)) / ((v / (1 - 0.999**t)) ** 0.5
                                                                             + 1e-7), config

    message = verdict("adam", adam)
    assert "at step 1 of run A" in message and "NaN appeared in next_x" in message


def test_a_bug_seen_at_one_step_only_is_not_given_another_bugs_name():
    def sgd_momentum(x, dx, config=None):  # damped only on the first step: not "an exponential average"
        config = dict(config or {})
        rho = config.get("rho", 0.9)
        velocity = (1 - rho) * dx if "velocity" not in config else rho * config["velocity"] + dx
        config["velocity"] = velocity
        return x - config.get("learning_rate", 1e-2) * velocity, config

    message = verdict("sgd_momentum", sgd_momentum)
    damped = next(text for variant, text in EXERCISES["sgd_momentum"].likely_bugs if "exponential average" in text)
    assert damped not in message
    assert "at step 1 of run A" in message and "no likely bug we know of explains all of them" in message


def test_a_warm_started_rmsprop_is_not_called_adagrad():
    def rmsprop(x, dx, config=None):
        config = dict(config or {})
        decay_rate = config.get("decay_rate", 0.99)
        grad_squared = decay_rate * config.get("grad_squared", dx * dx) + (1 - decay_rate) * dx * dx
        config["grad_squared"] = grad_squared
        return x - config.get("learning_rate", 1e-2) * dx / (grad_squared**0.5 + config.get("epsilon", 1e-7)), \
            config

    message = verdict("rmsprop", rmsprop)
    assert "AdaGrad" not in message and "no likely bug we know of explains all of them" in message


def test_plain_momentum_written_as_x_plus_velocity_is_called_plain_momentum():
    def nesterov(x, dx, config=None):
        config = dict(config or {})
        velocity = config.get("rho", 0.9) * config.get("velocity", 0 * x) - config.get("learning_rate", 1e-2) * dx
        config["velocity"] = velocity
        return x + velocity, config

    assert verdict("nesterov", nesterov).startswith("Exercise 2.2 (nesterov): that is plain momentum")


def test_two_loop_in_place_changes_are_named():
    def two_loop_direction(gradient, s_history, y_history):  # right, but reverses the caller's lists
        s_history.reverse()
        y_history.reverse()
        q, alphas = gradient, []
        for s, y in zip(s_history, y_history, strict=True):
            alphas.append((s @ q) / (y @ s))
            q = q - alphas[-1] * y
        r = q * ((s_history[0] @ y_history[0]) / (y_history[0] @ y_history[0]) if s_history else 1.0)
        for s, y, alpha in zip(reversed(s_history), reversed(y_history), reversed(alphas), strict=True):
            r = r + (alpha - (y @ r) / (y @ s)) * s
        return -r

    assert "changed its argument s_history in place" in verdict("two_loop_direction", two_loop_direction)

    def two_loop_subtracting_in_place(gradient, s_history, y_history):
        q = gradient
        for s, y in zip(reversed(s_history), reversed(y_history), strict=True):
            q -= (s @ q) / (y @ s) * y
        return -q

    assert "q = gradient, then q -= ..." in verdict("two_loop_direction", two_loop_subtracting_in_place)


def test_unfinished_exercise_says_not_done_yet():
    def sgd_momentum(x, dx, config=None):
        raise NotImplementedError()

    assert "not done yet: write the body of sgd_momentum" in verdict("sgd_momentum", sgd_momentum)
    with pytest.raises(checks.NotReady, match="finish Exercise 2.1 first"):
        checks.your_rule(sgd_momentum).current()


# ---- the judge trusts numbers only ------------------------------------------------------------------------------

def test_the_judge_decides_from_saved_outputs(tmp_path):
    """Cases written to disk and read back (what the grader's sandbox sees), outputs computed there: the same
    verdicts as in the learner's process."""
    exercise = EXERCISES["adam"]
    cases = exercise.cases("hidden")
    harness.save_cases(tmp_path, cases)
    loaded = harness.load_cases(tmp_path)
    assert [spec for spec, _ in loaded] == [spec for spec, _ in cases]
    right = harness.run_all(optim.adam, loaded)
    assert checks.judge(exercise, cases, right) is None
    wrong_variant, explanation = exercise.likely_bugs[2]
    assert checks.judge(exercise, cases, harness.run_all(wrong_variant, loaded)) == explanation


def test_missing_or_malformed_outputs_are_wrong_answers():
    exercise = EXERCISES["sgd_momentum"]
    cases = exercise.cases("visible")
    right = harness.run_all(optim.sgd_momentum, cases)
    assert checks.judge(exercise, cases, right) is None
    assert checks.judge(exercise, cases, [({}, []) for _ in cases]) is not None  # nothing came back
    emptied = [({key: np.full_like(value, np.nan) for key, value in outputs.items()}, events)
               for outputs, events in right]
    assert "NaN appeared" in checks.judge(exercise, cases, emptied)
    reshaped = [({key: value.reshape(-1)[:1] for key, value in outputs.items()}, events)
                for outputs, events in right]
    assert checks.judge(exercise, cases, reshaped) is not None
    assert "did not finish" not in (checks.judge(exercise, cases, right, setup=[]) or "")
    setup = [{"what": "raised", "type": "SyntaxError", "message": "invalid syntax", "call": -1}]
    assert "running your exercise's cell raised SyntaxError" in checks.judge(exercise, cases, right, setup=setup)


def test_harness_turns_odd_returns_into_events():
    spec, arrays = EXERCISES["sgd_momentum"].cases("visible")[0]
    for candidate, what in [(lambda x, dx, config=None: (x, None), "returned"),
                            (lambda x, dx, config=None: ("text", {}), "not numbers"),
                            (lambda x, dx, config=None: (np.array([object()]), {}), "not numbers"),
                            (lambda x, dx, config=None: (x, {"velocity": "fast"}), "not numbers"),
                            (lambda x, dx, config=None: exit(), "raised")]:
        outputs, events = harness.run(candidate, (spec, arrays))
        assert events and events[0]["what"] == what, events


# ---- learners' functions in the widgets ------------------------------------------------------------------------

def test_your_rule_hands_over_a_passing_rule_and_a_message_otherwise():
    assert checks.your_rule(optim.nesterov).current() is optim.nesterov
    wrong = EXERCISES["nesterov"].likely_bugs[0][0]
    with pytest.raises(checks.NotReady, match=r"does not pass Exercise 2.2 yet \(see its check cell\)"):
        checks.your_rule(wrong, "nesterov")(np.zeros(2), np.ones(2))


def test_your_rule_follows_the_learners_latest_definition():
    def nesterov(x, dx, config=None):
        raise NotImplementedError()

    notebook = {"nesterov": nesterov}
    yours = checks.YourFunction(nesterov, "nesterov", namespace=notebook)
    with pytest.raises(checks.NotReady, match="finish Exercise 2.2 first"):
        yours.current()
    notebook["nesterov"] = optim.nesterov
    assert yours.current() is optim.nesterov
    notebook["nesterov"] = EXERCISES["nesterov"].likely_bugs[0][0]
    with pytest.raises(checks.NotReady, match="does not pass"):
        yours(np.zeros(2), np.ones(2))


def test_schedules_race_through_your_rule():
    yours = checks.your_rule(schedules.step_decay)
    assert yours(25, learning_rate=0.1, step_size=10, gamma=0.5) == pytest.approx(0.025)


# ---- the exercises of notebooks 01 and 05 at work --------------------------------------------------------------

def test_predict_and_measure_agree_for_right_answers(capsys):
    predicted, measured = checks.predict_and_measure(exercises.best_learning_rate, theory.gradient_descent_steps,
                                                     kappa=50)
    assert predicted == measured == theory.gradient_descent_steps(50, 1e-6)
    assert "gradient descent at that rate took" in capsys.readouterr().out


def test_predict_and_measure_waits_for_both_exercises(capsys):
    assert checks.predict_and_measure(exercises.best_learning_rate, lambda kappa, factor: 3) is None
    assert "Finish this first. Exercise 1.2 (steps_to_shrink)" in capsys.readouterr().out


def test_lbfgs_with_your_two_loop(capsys):
    checks.lbfgs_with_your_two_loop(second_order.two_loop_direction)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].split(":")[1] == lines[1].split(":")[1]


def test_torch_cases_really_use_tensors():
    specs = [spec for spec, _ in EXERCISES["adam"].cases("visible")]
    assert {spec["backend"] for spec in specs} == {"numpy", "torch"}
    seen = []

    def adam(x, dx, config=None):
        seen.append(type(x))
        return optim.adam(x, dx, config)

    checks.check("adam", adam, quiet=True)
    assert torch.Tensor in seen and np.ndarray in seen


# ---- notebook 06: functions of torch models ------------------------------------------------------------------

def ema_with_lerp(average_model, model, decay):
    new_average = copy.deepcopy(average_model)
    with torch.no_grad():
        for average, weights in zip(new_average.parameters(), model.parameters(), strict=True):
            average.lerp_(weights, 1 - decay)
        for kept, live in zip(new_average.buffers(), model.buffers(), strict=True):
            kept.copy_(live)
    return new_average


def ema_through_the_state_dict(average_model, model, decay):
    new_average = copy.deepcopy(average_model)
    parameters = dict(model.named_parameters())
    old, live = new_average.state_dict(), model.state_dict()
    new_average.load_state_dict({key: decay * old[key] + (1 - decay) * live[key] if key in parameters
                                 else live[key].clone() for key in old})
    return new_average


def ema_as_one_vector(average_model, model, decay):
    new_average = copy.deepcopy(average_model)
    average = torch.nn.utils.parameters_to_vector(new_average.parameters())
    weights = torch.nn.utils.parameters_to_vector(model.parameters())
    averaged = (decay * average + (1 - decay) * weights).detach()
    torch.nn.utils.vector_to_parameters(averaged, new_average.parameters())
    for kept, live in zip(new_average.buffers(), model.buffers(), strict=True):
        kept.data = live.data.clone()
    return new_average


def ema_by_torchs_averaged_model(average_model, model, decay):
    """torch.optim.swa_utils.AveragedModel (an independent reference): its EMA with buffers kept in sync."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    averaged = AveragedModel(average_model, multi_avg_fn=get_ema_multi_avg_fn(decay))
    averaged.n_averaged.fill_(1)  # average_model already holds an average: its next update is an EMA step
    averaged.update_parameters(model)
    return averaged.module


def ensemble_summing(models, inputs):
    total = 0
    for model in models:
        model.eval()
        total = total + torch.nn.functional.softmax(model(inputs), dim=1)
    return total / len(models)


def ensemble_in_inference_mode(models, inputs):
    with torch.inference_mode():
        return torch.stack([model.eval()(inputs).log_softmax(-1).exp() for model in models]).mean(dim=0)


def ensemble_on_copies(models, inputs):
    probabilities = []
    for model in models:
        member = copy.deepcopy(model)
        member.eval()
        probabilities.append(torch.softmax(member(inputs), -1))
    return sum(probabilities) / len(probabilities)


def ensemble_restoring_modes(models, inputs):
    probabilities = []
    with torch.no_grad():
        for model in models:
            was_training = model.training
            model.eval()
            probabilities.append(torch.softmax(model(inputs), -1))
            model.train(was_training)
    return torch.stack(probabilities).mean(0)


def ensemble_into_float32_zeros(models, inputs):
    total = torch.zeros(inputs.shape[0], 1)
    for model in models:
        model.eval()
        total = total + torch.softmax(model(inputs), -1).detach()
    return total / len(models)


@pytest.mark.parametrize("name, candidate", [
    ("ema_update", ema_with_lerp), ("ema_update", ema_through_the_state_dict), ("ema_update", ema_as_one_vector),
    ("ema_update", ema_by_torchs_averaged_model), ("ensemble_predict", ensemble_summing),
    ("ensemble_predict", ensemble_in_inference_mode), ("ensemble_predict", ensemble_on_copies),
    ("ensemble_predict", ensemble_restoring_modes), ("ensemble_predict", ensemble_into_float32_zeros),
])
def test_correct_model_answers_written_differently_pass(name, candidate):
    for suite in ("visible", "hidden"):
        assert verdict(name, candidate, suite) is None


def test_the_ema_reference_is_torchs_averaged_model_and_the_ensemble_a_distribution():
    """On every hidden case, the reference's numbers are AveragedModel's (passing the check means matching the
    reference to rtol 1e-5), and the reference's ensemble rows sum to 1."""
    exercise = EXERCISES["ema_update"]
    cases = exercise.cases("hidden")
    assert checks.judge(exercise, cases, harness.run_all(ema_by_torchs_averaged_model, cases)) is None
    for outputs, events in harness.run_all(EXERCISES["ensemble_predict"].reference,
                                           EXERCISES["ensemble_predict"].cases("hidden")):
        assert outputs and all(np.allclose(value.sum(axis=-1), 1.0) for value in outputs.values())
        assert [event["changed"] for event in events] == []  # member_logits restores each model's mode


def ema_returning_a_state_dict(average_model, model, decay):
    return ema_with_lerp(average_model, model, decay).state_dict()


def ema_zeroing_the_gradients(average_model, model, decay):
    new_average = ema_with_lerp(average_model, model, decay)
    model.zero_grad()
    return new_average


def ema_switching_the_model_to_eval(average_model, model, decay):
    model.eval()
    return ema_with_lerp(average_model, model, decay)


def ema_freezing_the_average(average_model, model, decay):
    average_model.requires_grad_(False)
    return ema_with_lerp(average_model, model, decay)


def ema_in_place_then_copied(average_model, model, decay):
    with torch.no_grad():
        for average, weights in zip(average_model.parameters(), model.parameters(), strict=True):
            average.mul_(decay).add_((1 - decay) * weights)
    new_average = copy.deepcopy(average_model)
    for kept, live in zip(new_average.buffers(), model.buffers(), strict=True):
        kept.copy_(live)
    return new_average


def ema_multiplying_the_buffers_in_place(average_model, model, decay):
    new_average = copy.deepcopy(average_model)
    with torch.no_grad():
        for kept, live in zip([*new_average.parameters(), *new_average.buffers()],
                              [*model.parameters(), *model.buffers()], strict=True):
            kept.mul_(decay).add_((1 - decay) * live)
    return new_average


def ema_of_the_whole_state_dict(average_model, model, decay):
    new_average = copy.deepcopy(average_model)
    old, live = new_average.state_dict(), model.state_dict()
    new_average.load_state_dict({key: decay * old[key] + (1 - decay) * live[key] for key in old})
    return new_average


@pytest.mark.parametrize("candidate, expected", [
    (ema_returning_a_state_dict, "returned collections.OrderedDict as result; a torch model (a torch.nn.Module) "
                                 "was expected"),
    (ema_zeroing_the_gradients, "changed its argument model (the .grad of its parameters, model.0.weight first) "
                                "in place: training goes on from the trained model"),
    (ema_switching_the_model_to_eval, "changed its argument model (the train/eval mode of model) in place"),
    (ema_freezing_the_average, "changed its argument average_model (the requires_grad flag of "
                               "average_model.0.weight) in place: the caller's previous average changed too"),
    (ema_in_place_then_copied, "the numbers are right, but you changed average_model in place"),
    (ema_multiplying_the_buffers_in_place, "That is batch norm's num_batches_tracked, an integer buffer"),
    (ema_of_the_whole_state_dict, "you averaged batch norm's buffers (running_mean, running_var) like the "
                                  "weights"),
    (lambda average_model, model, decay: ema_with_lerp(model, average_model, decay),
     "no likely bug we know of explains all of them"),
])
def test_mistakes_with_models_are_named(candidate, expected):
    message = verdict("ema_update", candidate)
    assert message is not None and expected in message, message
    assert message.startswith("Exercise 6.1 (ema_update): ")


def ensemble_popping_the_list(models, inputs):
    probabilities = []
    while models:
        model = models.pop()
        model.eval()
        probabilities.append(torch.softmax(model(inputs), -1))
    return torch.stack(probabilities).mean(0)


def ensemble_scaling_the_inputs_in_place(models, inputs):
    inputs *= 1.0
    inputs += 1e-3
    return ensemble_summing(models, inputs)


def ensemble_relying_on_an_import_elsewhere(models, inputs):
    raise NameError("name 'copy' is not defined")  # what a cell using copy without importing it raises


def ensemble_forgetting_eval_on_copies(models, inputs):
    return torch.stack([torch.softmax(copy.deepcopy(model)(inputs), -1) for model in models]).mean(0)


def ensemble_forgetting_eval(models, inputs):
    with torch.no_grad():
        return sum(torch.softmax(model(inputs), -1) for model in models) / len(models)


@pytest.mark.parametrize("candidate, expected", [
    (lambda models, inputs: ensemble_summing(models, inputs).detach().numpy(),
     "returned numpy.ndarray as result; a torch Tensor was expected"),
    (lambda models, inputs: torch.stack([torch.softmax(m.eval()(inputs), -1) for m in models]),
     "your result has shape (3, 12, 4), expected (12, 4)"),
    (lambda models, inputs: ensemble_summing(models, inputs).T, "your result has shape (4, 12), expected (12, 4)"),
    (lambda models, inputs: [torch.softmax(m.eval()(inputs), -1) for m in models],
     "returned list as result, which is not an array of numbers"),
    (ensemble_popping_the_list, "changed its argument models (the list itself: its models replaced, added, "
                                "removed or reordered) in place"),
    (ensemble_scaling_the_inputs_in_place, "changed its argument inputs in place: build new tensors instead"),
    (ensemble_relying_on_an_import_elsewhere, "raised NameError: name 'copy' is not defined. The grader runs your "
                                              "exercise's cell on its own"),
    (ensemble_forgetting_eval_on_copies, "the models ran in training mode"),  # numbers alone, no change in place
    (ensemble_forgetting_eval, "the models ran in training mode"),  # batch norm's statistics changed in place too
])
def test_mistakes_with_ensembles_are_named(candidate, expected):
    message = verdict("ensemble_predict", candidate)
    assert message is not None and expected in message, message
    assert message.startswith("Exercise 6.2 (ensemble_predict): ")


def test_a_forgotten_eval_shows_through_dropout_alone_and_through_batch_norm():
    """Case 0 has dropout and no batch norm, case 1 batch norm and no dropout: each alone makes the forgotten
    eval() differ from the reference, and only batch norm changes the models in place."""
    exercise = EXERCISES["ensemble_predict"]
    cases = exercise.cases("visible")
    layers = [[layer[0] for layer in spec["calls"][0]["args"][0]["models"][0]["layers"]] for spec, _ in cases]
    assert "Dropout" in layers[0] and "BatchNorm1d" not in layers[0]
    assert "BatchNorm1d" in layers[1] and "Dropout" not in layers[1]
    expected = harness.run_all(exercise.reference, cases)
    forgotten = harness.run_all(ensemble_forgetting_eval, cases)
    for (outputs, _), (reference, _) in zip(forgotten, expected, strict=True):
        assert not all(np.allclose(outputs[key], reference[key]) for key in reference)
    assert [event["changed"] for event in forgotten[0][1]] == []
    assert {event["changed"] for event in forgotten[1][1]} == {"buffers"}


def test_a_model_case_is_repeatable_and_leaves_the_callers_random_generator_alone():
    cases = EXERCISES["ensemble_predict"].cases("visible")
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = harness.run_all(ensemble_forgetting_eval_on_copies, cases)  # dropout draws random numbers
    assert torch.equal(torch.rand(3), expected_next)
    second = harness.run_all(ensemble_forgetting_eval_on_copies, cases)
    for (a, _), (b, _) in zip(first, second, strict=True):
        assert a.keys() == b.keys() and all(np.array_equal(a[key], b[key]) for key in a)


def test_only_the_ensembles_mode_change_is_tolerated():
    """Switching the models to evaluation mode in place is what the exercise asks; the harness still reports
    it, and the judge lets it pass for ensemble_predict only."""
    cases = EXERCISES["ensemble_predict"].cases("visible")
    events = [event for _, case_events in harness.run_all(ensemble_summing, cases) for event in case_events]
    assert events and {event["changed"] for event in events} == {"mode"}
    assert verdict("ensemble_predict", ensemble_summing) is None
    assert "train/eval mode" in verdict("ema_update", ema_switching_the_model_to_eval)


def test_model_cases_survive_the_trip_to_the_sandbox(tmp_path):
    """Cases of kind "model" written to disk and read back: the same outputs, events and verdicts."""
    for name in ("ema_update", "ensemble_predict"):
        exercise = EXERCISES[name]
        cases = exercise.cases("hidden")
        folder = tmp_path / name
        folder.mkdir()
        harness.save_cases(folder, cases)
        loaded = harness.load_cases(folder)
        assert checks.judge(exercise, cases, harness.run_all(exercise.reference, loaded)) is None
        variant, explanation = exercise.likely_bugs[-1]
        assert checks.judge(exercise, cases, harness.run_all(variant, loaded)) == explanation


def test_unfinished_model_exercises_say_not_done_yet():
    def ema_update(average_model, model, decay):
        raise NotImplementedError()

    def ensemble_predict(models, inputs):
        raise NotImplementedError()

    assert "not done yet: write the body of ema_update" in verdict("ema_update", ema_update)
    assert "not done yet: write the body of ensemble_predict" in verdict("ensemble_predict", ensemble_predict)


def test_your_ema_and_ensemble_at_work(capsys):
    mnist1d = data.mnist1d()
    checks.ema_with_your_update(ema_with_lerp, mnist1d, epochs=1)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split(":")[1] == lines[1].split(":")[1]  # your average's test loss is the library's
    assert lines[-1].endswith("(to float32 round-off): True")
    members = [training.mlp([40, 32, 10], seed=seed) for seed in range(3)]
    checks.ensemble_with_your_predict(ensemble_summing, members, mnist1d)
    first, second = capsys.readouterr().out.splitlines()
    assert first.split(":")[1] == second.split(":")[1]
    checks.ensemble_with_your_predict(ensemble_forgetting_eval, members, mnist1d)
    assert capsys.readouterr().out.startswith("Finish this first. Exercise 6.2 (ensemble_predict): ")


# ---- random exercises (7.1 inverted_dropout, 8.1 random_circular_shift): judged by properties -------------------

RANDOM_EXERCISES = [name for name, exercise in EXERCISES.items() if exercise.properties is not None]


def drawing_differently(function, offset):
    """``function`` given, instead of rng, a generator seeded from one number drawn from rng and ``offset``:
    other random numbers for each offset, still the same for the same seed and different for another."""
    def redrawn(*arguments):
        *others, rng = arguments
        return function(*others, np.random.default_rng([int(rng.integers(2**62)), offset]))

    return redrawn


def dropout_binomial(x, drop_probability, training, rng):
    if not training:
        return x.copy()
    keep = 1 - drop_probability
    return x * rng.binomial(1, keep, size=x.shape) / keep


def dropout_choice(x, drop_probability, training, rng):
    if not training:
        return x
    mask = rng.choice([0.0, 1.0], size=x.shape, p=[drop_probability, 1 - drop_probability])
    return mask * x / (1 - drop_probability)


def dropout_where(x, drop_probability, training, rng):
    if training:
        return np.where(rng.uniform(size=x.shape) >= drop_probability, x / (1 - drop_probability), 0.0)
    return x


def dropout_float32_draws(x, drop_probability, training, rng):
    keep = 1 - drop_probability
    mask = rng.random(x.shape, dtype=np.float32) < keep if training else np.ones_like(x)
    return (x * mask / (keep if training else 1)).astype(np.float32)  # float32 out: rounding passes


def dropout_flat_loop(x, drop_probability, training, rng):
    out = np.array(x, dtype=float)
    if training:
        flat = out.reshape(-1)
        for i in range(flat.size):
            flat[i] = 0.0 if rng.random() < drop_probability else flat[i] / (1 - drop_probability)
    return out


def shift_endpoint(signals, max_shift, rng):
    shifts = rng.integers(-max_shift, max_shift, endpoint=True, size=len(signals))
    return np.stack([np.roll(signal, shift) for signal, shift in zip(signals, shifts, strict=True)])


def shift_choice_gather(signals, max_shift, rng):
    shifts = rng.choice(np.arange(-max_shift, max_shift + 1), size=signals.shape[0])
    columns = (np.arange(signals.shape[1]) - shifts[:, None]) % signals.shape[1]
    return np.take_along_axis(signals, columns, axis=1)


def shift_row_by_row_concatenate(signals, max_shift, rng):
    rows = []
    for signal in signals:  # one draw per row, MNIST-1D's own translation
        shift = int(rng.integers(0, 2 * max_shift + 1)) - max_shift
        rows.append(np.concatenate([signal[-shift:], signal[:-shift]]) if shift else signal.copy())
    return np.array(rows)


def shift_floor_of_uniform(signals, max_shift, rng):
    shifts = np.floor(rng.uniform(-max_shift, max_shift + 1, size=len(signals))).astype(int)
    return np.stack([np.roll(signal, shift) for signal, shift in zip(signals, shifts, strict=True)])


def shift_with_torch_roll(signals, max_shift, rng):
    shifts = rng.integers(-max_shift, max_shift + 1, size=len(signals))
    return torch.stack([torch.roll(torch.from_numpy(signal), int(shift))
                        for signal, shift in zip(signals, shifts, strict=True)]).numpy()


RIGHT_RANDOM_ANSWERS = [
    ("inverted_dropout", dropout_binomial), ("inverted_dropout", dropout_choice),
    ("inverted_dropout", dropout_where),
    ("inverted_dropout", dropout_float32_draws), ("inverted_dropout", dropout_flat_loop),
    ("random_circular_shift", shift_endpoint), ("random_circular_shift", shift_choice_gather),
    ("random_circular_shift", shift_row_by_row_concatenate), ("random_circular_shift", shift_floor_of_uniform),
    ("random_circular_shift", shift_with_torch_roll),
]


@pytest.mark.parametrize("name, candidate", RIGHT_RANDOM_ANSWERS,
                         ids=[candidate.__name__ for _, candidate in RIGHT_RANDOM_ANSWERS])
def test_right_random_answers_drawing_differently_pass(name, candidate):
    """Each way of drawing passes both suites as written, and on 8 other sets of draws (hidden suite)."""
    assert verdict(name, candidate, "visible") is None
    assert verdict(name, candidate, "hidden") is None
    for offset in range(8):
        assert verdict(name, drawing_differently(candidate, offset), "hidden") is None, offset


@pytest.mark.parametrize("name", RANDOM_EXERCISES)
def test_the_reference_passes_whatever_it_draws(name):
    for offset in range(30):
        assert verdict(name, drawing_differently(EXERCISES[name].reference, offset), "hidden") is None, offset


@pytest.mark.parametrize("name, variant, explanation", [case for case in BUG_CASES if case[0] in RANDOM_EXERCISES],
                         ids=[case[1].__name__ for case in BUG_CASES if case[0] in RANDOM_EXERCISES])
def test_each_random_likely_bug_is_named_whatever_it_draws(name, variant, explanation):
    for offset in range(6):
        message = verdict(name, drawing_differently(variant, offset), "hidden")
        assert message is not None and explanation in message, (offset, message)


@pytest.mark.parametrize("name", RANDOM_EXERCISES)
def test_random_likely_bugs_are_told_apart_on_the_visible_suite(name):
    """On the visible cases the reference and the likely bugs have pairwise different properties: none of them
    could be named for another."""
    exercise = EXERCISES[name]
    cases = exercise.cases("visible")
    labelled = {}
    for candidate in [exercise.reference, *(variant for variant, _ in exercise.likely_bugs)]:
        results = harness.run_all(candidate, cases)
        labelled[candidate.__name__] = [checks._labels(checks._properties(exercise, case, outputs))
                                        for case, (outputs, _) in zip(cases, results, strict=True)]
    names = list(labelled)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            assert labelled[first] != labelled[second], (first, second)


def test_a_right_answer_fails_with_negligible_probability():
    """Every label that depends on chance is set so that it changes with probability at most
    FAILURE_PROBABILITY; a right answer's verdict rests on all the labels of the hidden suite together."""
    assert 2 * math.exp(-2 * 60_000 * exercises.share_tolerance(60_000) ** 2) == pytest.approx(1e-10)
    assert 2 * 11 * math.exp(-2 * 16_000 * exercises.share_tolerance(16_000, 11) ** 2) == pytest.approx(1e-10)
    for name in RANDOM_EXERCISES:
        exercise = EXERCISES[name]
        cases = exercise.cases("hidden")
        labels = sum(len(checks._properties(exercise, case, outputs))
                     for case, (outputs, _) in zip(cases, harness.run_all(exercise.reference, cases), strict=True))
        assert labels * exercises.FAILURE_PROBABILITY < 1e-8, (name, labels)


def dropout_global_numpy(x, drop_probability, training, rng):
    if not training:
        return x
    return x * (np.random.random(x.shape) >= drop_probability) / (1 - drop_probability)  # noqa: NPY002 (the bug)


def dropout_own_generator(x, drop_probability, training, rng):
    if not training:
        return x
    return x * (np.random.default_rng(0).random(x.shape) >= drop_probability) / (1 - drop_probability)


def dropout_in_place(x, drop_probability, training, rng):
    if training:
        x[rng.random(x.shape) < drop_probability] = 0
        x /= 1 - drop_probability
    return x


def dropout_two_dimensional_mask(x, drop_probability, training, rng):
    if not training:
        return x
    return x * (rng.random((x.shape[0], x.shape[1])) >= drop_probability) / (1 - drop_probability)


def dropout_slightly_off_rate(x, drop_probability, training, rng):  # drops at 1.1 times the rate
    if not training:
        return x
    return x * (rng.random(x.shape) >= 1.1 * drop_probability) / (1 - drop_probability)


def dropout_returning_the_mask(x, drop_probability, training, rng):
    mask = rng.random(x.shape) >= drop_probability if training else np.ones(x.shape, dtype=bool)
    return x * mask / (1 - drop_probability if training else 1), mask


def dropout_survivors_a_hundredth_too_large(x, drop_probability, training, rng):
    if not training:
        return x
    return x * (rng.random(x.shape) >= drop_probability) / (1 - drop_probability) * 1.01


def shift_list_of_rows(signals, max_shift, rng):
    shifts = rng.integers(-max_shift, max_shift + 1, size=len(signals))
    return [np.roll(signal, shift) for signal, shift in zip(signals, shifts, strict=True)]


def shift_in_place(signals, max_shift, rng):
    for row, shift in enumerate(rng.integers(-max_shift, max_shift + 1, size=len(signals))):
        signals[row] = np.roll(signals[row], shift)
    return signals


def shift_global_numpy(signals, max_shift, rng):
    shifts = np.random.randint(-max_shift, max_shift + 1, size=len(signals))  # noqa: NPY002 (the bug under test)
    return np.stack([np.roll(signal, shift) for signal, shift in zip(signals, shifts, strict=True)])


def shift_own_generator(signals, max_shift, rng):
    shifts = np.random.default_rng(1).integers(-max_shift, max_shift + 1, size=len(signals))
    return np.stack([np.roll(signal, shift) for signal, shift in zip(signals, shifts, strict=True)])


def shift_flattened(signals, max_shift, rng):  # np.roll without an axis rolls the flattened array
    return np.roll(signals, rng.integers(-max_shift, max_shift + 1))


def shift_clipped_normal(signals, max_shift, rng):  # all shifts occur, the middle ones far more often
    shifts = np.clip(np.round(rng.normal(0, max_shift / 2, len(signals))), -max_shift, max_shift).astype(int)
    return np.stack([np.roll(signal, shift) for signal, shift in zip(signals, shifts, strict=True)])


@pytest.mark.parametrize("name, candidate, expected", [
    ("inverted_dropout", dropout_global_numpy, "called again with rng seeded alike: the result, next to that "
     "call's: different; expected: the same"),
    ("inverted_dropout", dropout_global_numpy, "not from np.random.random or a generator made inside"),
    ("inverted_dropout", dropout_own_generator, "the results with other seeds, next to this call's: the same; "
     "expected: different"),
    ("inverted_dropout", dropout_in_place, "your function changed its argument x in place: x *= mask or x[mask] = "
     "0 changes the caller's activations"),
    ("inverted_dropout", dropout_two_dimensional_mask, "with drop_probability=0.5 on x of shape (300, 3, 100) "
     "your function raised ValueError"),
    ("inverted_dropout", dropout_slightly_off_rate, "the share of zeros: neither about drop_probability nor about "
     "1 - drop_probability (3"),
    ("inverted_dropout", dropout_returning_the_mask, "the result: a tuple or list of 2 values, not one array; "
     "expected: an array of x's shape"),
    ("inverted_dropout", lambda x, drop_probability, training, rng: torch.from_numpy(x),
     "returned torch.Tensor as result; a numpy array was expected"),
    ("inverted_dropout", lambda x, drop_probability, training, rng: x * 1.01, "the results with other seeds, next "
     "to this call's: the same; expected: different"),
    ("inverted_dropout", dropout_survivors_a_hundredth_too_large, "in training (training=True) with "
     "drop_probability=0.3 on x of shape (300, 200): its elements: 0 or other multiples of x; expected: 0 or x / "
     "(1 - drop_probability)"),
    ("random_circular_shift", shift_list_of_rows, "what a call returns: a tuple or list of 1000 values, not one "
     "array (call 1); expected: an array of the signals' shape"),
    ("random_circular_shift", shift_in_place, "(call 1 of 16) your function changed its argument signals in "
     "place: the caller's training data would change at every call"),
    ("random_circular_shift", shift_global_numpy, "the result, next to that call's: different; expected: the "
     "same"),
    ("random_circular_shift", shift_own_generator, "the results with other seeds, next to this call's: the same"),
    ("random_circular_shift", shift_flattened, "each row of the results: some rows are no circular shift of their "
     "own signal; expected: every row is its own signal, rolled circularly"),
    ("random_circular_shift", shift_clipped_normal, "how often each shift occurs: some more often than others"),
    ("random_circular_shift", lambda signals, max_shift, rng: signals[:, :-1],
     "what a call returns: an array of shape (1000, 39), not signals's (1000, 40)"),
])
def test_structural_mistakes_in_random_exercises_are_named(name, candidate, expected):
    message = verdict(name, candidate, "hidden")
    assert message is not None and expected in message, message
    assert message.startswith(f"Exercise {EXERCISES[name].number} ({name}): ")


def dropout_never_scaled_in_place(x, drop_probability, training, rng):
    if training:
        x[rng.random(x.shape) < drop_probability] = 0
    return x


def test_a_random_likely_bug_is_named_only_if_it_did_what_the_answer_did(monkeypatch):
    """As for the deterministic exercises: a likely bug that changes its argument in place is named for an answer
    that does the same and has its labels; an answer that only shares the in-place change (its labels are a right
    answer's) is told about the change, and one that only shares the labels gets the variant without it."""
    in_place = "survivors never scaled, and x changed in place (a likely bug of this test)"
    known = bugs.LIKELY_BUGS["inverted_dropout"]
    never_scaled = dict(known)[bugs._dropout_never_scaled]
    monkeypatch.setitem(bugs.LIKELY_BUGS, "inverted_dropout", [*known, (dropout_never_scaled_in_place, in_place)])
    assert verdict("inverted_dropout", dropout_never_scaled_in_place, "hidden").endswith(in_place)
    assert "changed its argument x in place" in verdict("inverted_dropout", dropout_in_place, "hidden")
    assert verdict("inverted_dropout", bugs._dropout_never_scaled, "hidden").endswith(never_scaled)
    monkeypatch.setitem(bugs.LIKELY_BUGS, "inverted_dropout", known)
    message = verdict("inverted_dropout", dropout_never_scaled_in_place, "hidden")
    assert "changed its argument x in place" in message


def test_your_dropout_and_shifts_at_work(capsys):
    """Once 7.1 passes, the mean of its training passes meets its test pass as closely as theory says; once 8.1
    passes, it augments a training run that repeats (the same printout twice). Until then: what to finish."""
    activations = np.random.default_rng(0).uniform(0.5, 1.5, 50)
    checks.your_dropout_on_average(EXERCISES["inverted_dropout"].reference, activations, passes=4000)
    out = capsys.readouterr().out
    measured = float(out.split(" is ")[1].split("%")[0])
    theory = float(out.split("about ")[1].split("%")[0])
    assert out.startswith("your inverted_dropout, drop probability 0.5: the mean of 4,000 training passes")
    assert theory / 2 < measured < 2 * theory
    checks.your_dropout_on_average(bugs._dropout_never_scaled, activations)
    assert capsys.readouterr().out.startswith("Finish this first. Exercise 7.1 (inverted_dropout): ")
    printed, small = [], {"epochs": 2, "training_examples": 500}
    for _ in range(2):
        checks.train_with_your_shifts(EXERCISES["random_circular_shift"].reference, **small)
        printed.append(capsys.readouterr().out)
    assert printed[0] == printed[1]
    assert printed[0].startswith("trained with your random_circular_shift (max_shift=5)")
    checks.train_with_your_shifts(bugs._shift_only_positive, **small)
    assert capsys.readouterr().out.startswith("Finish this first. Exercise 8.1 (random_circular_shift): ")


def test_a_random_check_says_what_it_measured(capsys):
    checks.check("inverted_dropout", exercises.EXERCISES["inverted_dropout"].reference)
    out = capsys.readouterr().out
    assert out.startswith("✓ Exercise 7.1 (inverted_dropout) passed: on all 6 calls it has the properties of a "
                          "right answer: 0 or x / (1 - drop_probability) in training")


@pytest.mark.parametrize("name", RANDOM_EXERCISES)
def test_random_exercises_judged_from_saved_outputs(name, tmp_path):
    """The cases (seeds included) written to disk and read back, as the grader's sandbox sees them: the same
    verdicts, for the reference and a likely bug."""
    exercise = EXERCISES[name]
    cases = exercise.cases("hidden")
    harness.save_cases(tmp_path, cases)
    loaded = harness.load_cases(tmp_path)
    assert [spec for spec, _ in loaded] == [spec for spec, _ in cases]
    assert checks.judge(exercise, cases, harness.run_all(exercise.reference, loaded)) is None
    variant, explanation = exercise.likely_bugs[-1]
    assert checks.judge(exercise, cases, harness.run_all(variant, loaded)) == explanation


def test_the_harness_hands_over_seeded_generators_and_booleans():
    spec = {"kind": "function", "backend": "numpy", "returns": "array",
            "calls": [{"args": [{"rng": 5}, {"boolean": False}], "where": "a"},
                      {"args": [{"rng": 5}, {"boolean": True}], "where": "b"}]}
    seen = []

    def draw(rng, flag):
        seen.append((type(rng), type(flag), flag))
        return rng.random(3)

    outputs, events = harness.run(draw, (spec, {}))
    assert not events and np.array_equal(outputs["0.result"], outputs["1.result"])
    assert np.array_equal(outputs["0.result"], np.random.default_rng(5).random(3))
    assert seen == [(np.random.Generator, bool, False), (np.random.Generator, bool, True)]


def test_the_instructor_solutions_pass(tmp_path):
    """The solution cell of every exercise, run on its own as the grader runs it (numpy as np, math, torch), passes
    both suites."""
    import json
    from pathlib import Path

    source = Path(__file__).resolve().parent.parent / "instructor" / "source"
    found = set()
    for path in sorted(source.glob("*/*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
            if grade_id in EXERCISES and cell["metadata"]["nbgrader"].get("solution"):
                namespace = {"np": np, "math": math, "torch": torch}
                exec(compile("".join(cell["source"]), f"{path.name}: {grade_id}", "exec"), namespace)
                assert verdict(grade_id, namespace[grade_id], "visible") is None, grade_id
                assert verdict(grade_id, namespace[grade_id], "hidden") is None, grade_id
                found.add(grade_id)
    assert found == set(EXERCISES)


# ---- notebook 09: batch norm's forward and backward passes ----------------------------------------------------

def forward_with_np_var(x, gamma, beta, running_mean, running_var, momentum=0.1, epsilon=1e-5, training=True):
    """Right, with np.var and np.sqrt, and the running averages returned as they came in test mode."""
    if not training:
        return gamma * (x - running_mean) / np.sqrt(running_var + epsilon) + beta, running_mean, running_var
    mean, variance = np.mean(x, axis=0), np.var(x, axis=0)
    out = gamma * ((x - mean) / np.sqrt(variance + epsilon)) + beta
    return (out, momentum * mean + (1 - momentum) * running_mean,
            momentum * np.var(x, axis=0, ddof=1) + (1 - momentum) * running_var)


def forward_from_moments(x, gamma, beta, running_mean, running_var, momentum=0.1, epsilon=1e-5, training=True):
    """Right, with the variance as E[x^2] - E[x]^2 (x around 1000 in the hidden cases: still close enough)."""
    mean = running_mean if not training else x.mean(0)
    variance = running_var if not training else (x * x).mean(0) - mean * mean
    out = (x - mean) * gamma / (variance + epsilon) ** 0.5 + beta
    if not training:
        return out, running_mean.copy(), running_var.copy()
    n = x.shape[0]
    return out, running_mean + momentum * (mean - running_mean), running_var + momentum * (variance * n / (n - 1)
                                                                                           - running_var)


def forward_through_torch(x, gamma, beta, running_mean, running_var, momentum=0.1, epsilon=1e-5, training=True):
    """Right: torch's own batch norm on copies, converted back to numpy arrays."""
    new_mean, new_var = torch.tensor(running_mean), torch.tensor(running_var)
    out = torch.nn.functional.batch_norm(torch.tensor(x), new_mean, new_var, torch.tensor(gamma),
                                         torch.tensor(beta), training, momentum, epsilon)
    return out.numpy(), new_mean.numpy(), new_var.numpy()


def backward_staged(dout, x, gamma, epsilon=1e-5):
    """Right: the forward pass's computational graph walked back one node at a time (CS231n's staged form)."""
    n = x.shape[0]
    mean = x.sum(axis=0) / n
    centred = x - mean
    variance = (centred**2).sum(axis=0) / n
    root = np.sqrt(variance + epsilon)
    x_hat = centred / root
    dx_hat = dout * gamma
    droot = -(dx_hat * centred).sum(axis=0) / root**2
    dvariance = 0.5 / root * droot
    dcentred = dx_hat / root + 2 * centred * dvariance / n
    dx = dcentred - dcentred.sum(axis=0) / n
    return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)


def backward_by_autograd(dout, x, gamma, epsilon=1e-5):
    """Right: torch's autograd through the forward pass, in float64."""
    x, gamma = torch.tensor(x, requires_grad=True), torch.tensor(gamma, requires_grad=True)
    beta = torch.zeros_like(gamma, requires_grad=True)
    mean = x.mean(dim=0)
    out = gamma * (x - mean) / ((x - mean).pow(2).mean(dim=0) + epsilon).sqrt() + beta
    out.backward(torch.tensor(dout))
    return x.grad.numpy(), gamma.grad.numpy(), beta.grad.numpy()


@pytest.mark.parametrize("name, candidate", [
    ("batchnorm_forward", forward_with_np_var), ("batchnorm_forward", forward_from_moments),
    ("batchnorm_forward", forward_through_torch), ("batchnorm_backward", backward_staged),
    ("batchnorm_backward", backward_by_autograd),
])
def test_right_batch_norm_passes_written_differently_pass(name, candidate):
    for suite in ("visible", "hidden"):
        assert verdict(name, candidate, suite) is None, verdict(name, candidate, suite)


def forward_updating_in_place(x, gamma, beta, running_mean, running_var, momentum=0.1, epsilon=1e-5,
                              training=True):
    out, new_mean, new_var = forward_with_np_var(x, gamma, beta, running_mean, running_var, momentum, epsilon,
                                                 training)
    if training:
        running_mean *= 1 - momentum
        running_mean += momentum * x.mean(axis=0)
    return out, running_mean, new_var


def forward_without_the_variance(*arguments):
    out, new_mean, _ = forward_with_np_var(*arguments)
    return out, new_mean


def forward_returning_tensors(*arguments):
    return tuple(torch.from_numpy(np.asarray(value)) for value in forward_with_np_var(*arguments))


def backward_keeping_dims(dout, x, gamma, epsilon=1e-5):
    dx, dgamma, dbeta = backward_staged(dout, x, gamma, epsilon)
    return dx, dgamma[None, :], dbeta[None, :]


def forward_refusing_one_example(x, *arguments):
    if len(x) < 2:
        raise ValueError("need at least two examples")
    return forward_with_np_var(x, *arguments)


@pytest.mark.parametrize("name, candidate, suite, expected", [
    ("batchnorm_forward", forward_updating_in_place, "visible",
     "in training mode, x of shape (16, 5), momentum=0.1, epsilon=1e-05 your function changed its argument "
     "running_mean in place: return a new array instead"),
    ("batchnorm_forward", forward_without_the_variance, "visible", "new_running_var is missing"),
    ("batchnorm_forward", forward_returning_tensors, "visible",
     "returned torch.Tensor as out; a numpy array was expected."),
    ("batchnorm_backward", backward_keeping_dims, "visible", "dgamma has shape (1, 5), expected (5,)"),
    ("batchnorm_forward", forward_refusing_one_example, "hidden",
     "in test mode, x of shape (1, 6), momentum=0.1, epsilon=1e-05 your function raised ValueError: need at least "
     "two examples"),
    ("batchnorm_backward", lambda dout, x, gamma, epsilon=1e-5: exercises.EXERCISES["batchnorm_backward"]
     .reference(dout, x, gamma, 2 * epsilon), "visible", "dx is"),
])
def test_batch_norm_mistakes_are_named(name, candidate, suite, expected):
    message = verdict(name, candidate, suite)
    assert message is not None and expected in message, message
    if suite == "hidden":
        assert verdict(name, candidate) is None  # one example at a time comes only in the hidden cases


def test_a_raising_bug_is_named_only_where_it_raises():
    """The wrong axis without keepdims raises in training mode (shapes (N, D) and (N,)): named; a function that
    raises the same error in test mode too is not that bug."""
    wrong_axis = bugs.LIKELY_BUGS["batchnorm_forward"][0][0]
    with pytest.raises(ValueError, match="broadcast"):
        wrong_axis(*[np.ones(shape) for shape in ((16, 5), (5,), (5,), (5,), (5,))], 0.1, 1e-5, True)
    assert verdict("batchnorm_forward", wrong_axis).startswith("Exercise 9.1 (batchnorm_forward): you normalise "
                                                                 "each example over its features (axis=1)")

    def always_raises(x, gamma, beta, running_mean, running_var, momentum=0.1, epsilon=1e-5, training=True):
        return x - x.mean(axis=1), running_mean, running_var

    message = verdict("batchnorm_forward", always_raises)
    assert "axis=1" not in message and "your function raised ValueError" in message


def test_the_test_mode_bugs_show_only_in_test_mode():
    """The two test-time bugs give the reference's numbers on every training-mode call and differ on every
    test-mode call of the visible suite: the cases must call both modes."""
    exercise = EXERCISES["batchnorm_forward"]
    cases = exercise.cases("visible")
    reference = harness.run_all(exercise.reference, cases)
    for words in ("change in test mode", "the test batch's own mean"):
        variant = next(v for v, explanation in exercise.likely_bugs if words in explanation)
        with np.errstate(all="ignore"):
            results = harness.run_all(variant, cases)
        for case, (outputs, _), (expected, _) in zip(cases, results, reference, strict=True):
            for index, call in enumerate(case[0]["calls"]):
                keys = [key for key in expected if key.startswith(f"{index}.")]
                same = all(np.allclose(outputs[key], expected[key], equal_nan=True) for key in keys)
                assert same == call["where"].startswith("in training mode"), (words, call["where"])


def test_the_epsilon_bugs_need_the_large_epsilon_case():
    """With epsilon = 1e-5 the epsilon mistakes change the outputs by ~1e-5 only: the visible suite has a case with
    epsilon = 0.5 against features of small variance, where they stand out."""
    exercise = EXERCISES["batchnorm_forward"]
    cases = exercise.cases("visible")
    reference = harness.run_all(exercise.reference, cases)[0][0]
    outside = next(v for v, explanation in exercise.likely_bugs if "sqrt(var) + epsilon" in explanation)
    outputs = harness.run_all(outside, cases)[0][0]
    differences = {call["where"]: np.abs(outputs[f"{i}.result0"] - reference[f"{i}.result0"]).max()
                   for i, call in enumerate(cases[0][0]["calls"])}
    small, large = (differences[where] for where in differences if "training mode" in where)
    assert small < 1e-4 < 0.05 < large


def test_train_with_your_batch_norm(capsys):
    checks.train_with_your_batch_norm(forward_with_np_var, backward_staged, epochs=1)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].split(":")[1] == lines[1].split(":")[1]
    assert lines[2].endswith("agree to 1e-8: True")
    wrong_backward = bugs.LIKELY_BUGS["batchnorm_backward"][0][0]
    checks.train_with_your_batch_norm(forward_with_np_var, wrong_backward)
    assert capsys.readouterr().out.startswith("Finish this first. Exercise 9.2 (batchnorm_backward): your dx "
                                              "treats the batch mean and variance as constants")


# ---- notebook 10: freeze the body, replace the head ----------------------------------------------------------

def freeze_everything_then_replace(model, num_classes, seed=0):
    """Right: everything frozen and in eval mode first, then a new head (trainable, in training mode), handed
    over as a generator."""
    model = copy.deepcopy(model)
    model.requires_grad_(False)
    model.eval()
    torch.manual_seed(seed)
    model.head = torch.nn.Linear(model.head.in_features, num_classes)
    return model, model.head.parameters()


def freeze_by_name(model, num_classes, seed=0):
    """Right: parameters frozen by name, layers switched one by one, the optimizer given what requires grad."""
    new = copy.deepcopy(model)
    for name, parameter in new.named_parameters():
        parameter.requires_grad = not name.startswith("body.")
    for layer in new.body.modules():
        layer.training = False
    torch.manual_seed(seed)
    new.head = torch.nn.Linear(new.head.weight.shape[1], num_classes)
    return new, [parameter for parameter in new.parameters() if parameter.requires_grad]


@pytest.mark.parametrize("candidate", [freeze_everything_then_replace, freeze_by_name])
def test_right_freezes_written_differently_pass(candidate):
    for suite in ("visible", "hidden"):
        assert verdict("freeze_body_and_replace_head", candidate, suite) is None


def freezing(copy_model=True, in_features=None, bias=True, clone=False, returns="pair"):
    """The right recipe with one structural mistake."""

    def freeze_body_and_replace_head(model, num_classes, seed=0):
        model = copy.deepcopy(model) if copy_model else model
        for parameter in model.body.parameters():
            parameter.requires_grad_(False)
        model.body.eval()
        torch.manual_seed(seed)
        model.head = torch.nn.Linear(in_features or model.head.in_features, num_classes, bias=bias)
        trainable = [p.detach().clone().requires_grad_() if clone else p for p in model.head.parameters()]
        return {"pair": (model, trainable), "model": model, "head": (model, model.head)}[returns]

    return freeze_body_and_replace_head


CNN_CALL = "for the pretrained CNN (Conv1d-BatchNorm1d-ReLU body, head Linear(32, 5)), handed over in training " \
           "mode, num_classes=5, seed=3"


@pytest.mark.parametrize("candidate, suite, expected", [
    (freezing(copy_model=False), "visible",
     f"{CNN_CALL} your function changed its argument model (the values of its parameters, model.head.weight "
     "first) in place: it is the caller's model"),
    (freezing(returns="model"), "visible", "your function returned torch.nn.modules.container.Sequential; it must "
                                           "return a tuple of 2: (model, parameters)"),
    (freezing(returns="head"), "visible", "returned torch.nn.modules.linear.Linear as the parameters to train; a "
                                          "list of parameters (tensors), e.g. list(model.head.parameters()) was "
                                          "expected."),
    (freezing(clone=True), "visible", "2 of the tensors in the parameters to train are not parameters of the "
                                      "model you returned (copies, or another model's?)"),
    (freezing(bias=False), "visible", "the model you returned has no head.bias"),
    (freezing(in_features=32), "hidden",
     "num_classes=2, seed=7 running the model it returned raised RuntimeError"),
])
def test_freeze_mistakes_are_named(candidate, suite, expected):
    message = verdict("freeze_body_and_replace_head", candidate, suite)
    assert message is not None and expected in message, message
    assert message.startswith("Exercise 10.1 (freeze_body_and_replace_head): ")


def test_an_unexplained_freeze_mistake_says_which_flags_differ():
    def freeze_body_and_replace_head(model, num_classes, seed=0):  # the body's convolutions only
        model, trainable = freezing()(model, num_classes, seed)
        for name, parameter in model.body.named_parameters():
            parameter.requires_grad_(name.endswith(("2.weight", "2.bias", "5.weight", "5.bias", "8.weight",
                                                    "8.bias")))
        return model, trainable

    message = verdict("freeze_body_and_replace_head", freeze_body_and_replace_head)
    assert (f"{CNN_CALL} in the model you returned, body.2.weight, body.2.bias, body.5.weight, body.5.bias and 2 "
            "more require gradients, expected them frozen") in message
    assert "no likely bug we know of explains all of them" in message


def test_what_each_freeze_bug_changes():
    """Where each likely bug shows in what the harness makes of the returned model (its state_dict as
    <call>.result0.<key>, the rest as <call>.<result>:<what>:<name>), so that each can be told apart and named."""
    exercise = EXERCISES["freeze_body_and_replace_head"]
    cases = exercise.cases("visible")
    (reference, _), = harness.run_all(exercise.reference, cases)

    def differing(variant):
        (outputs, _), = harness.run_all(variant, cases)
        return {key.split(":")[1] if ":" in key else "state" for key in reference
                if key.startswith("0.") and not (key in outputs and np.array_equal(outputs[key], reference[key]))}

    shows = {explanation.split(":")[0][:40]: differing(variant) for variant, explanation in exercise.likely_bugs}
    assert list(shows.values()) == [{"state", "outputs"}, {"requires_grad"}, {"includes"},
                                    {"requires_grad", "includes"}, {"training", "outputs"}, {"requires_grad"},
                                    {"state", "outputs"}, {"training"}], shows


def test_the_model_kind_builds_the_model_it_describes():
    """exercises.layers_of describes the pretrained SmallCNN (named parts: body, head); the harness builds from
    that and its state a torch.nn.Sequential with the same state, layers and outputs, in the mode asked for."""
    pretrained = transfer.pretrained_cnn()
    arrays = {f"cnn/{key}": value.numpy() for key, value in pretrained.state_dict().items()}
    network = {"layers": exercises.layers_of(pretrained), "state": "cnn", "dtype": "float32", "training": False}
    built = harness._build_model(network, arrays, torch)
    assert not built.training and isinstance(built.body, torch.nn.Sequential) and built.head.in_features == 32
    assert list(built.state_dict()) == list(pretrained.state_dict())
    signals = torch.randn(7, 40)
    with torch.no_grad():
        assert torch.equal(built(signals), pretrained(signals))
    assert harness._build_model({**network, "training": True}, arrays, torch).body[2].training
    with pytest.raises(ValueError, match="'tensor' is not a torch.nn layer"):
        harness._layer(["tensor", 1.0], torch)


def test_the_model_kind_puts_the_random_generator_back():
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    checks.check("freeze_body_and_replace_head", transfer.freeze_body_and_replace_head, quiet=True)
    assert torch.equal(torch.rand(3), expected)


def test_the_model_kind_round_trips_through_files(tmp_path):
    """What the grader's sandbox sees: the cases written to disk and read back give the same verdicts."""
    exercise = EXERCISES["freeze_body_and_replace_head"]
    cases = exercise.cases("hidden")
    harness.save_cases(tmp_path, cases)
    loaded = harness.load_cases(tmp_path)
    assert checks.judge(exercise, cases, harness.run_all(exercise.reference, loaded)) is None
    variant, explanation = exercise.likely_bugs[4]
    assert checks.judge(exercise, cases, harness.run_all(variant, loaded)) == explanation


def test_adapt_with_your_freeze(capsys):
    checks.adapt_with_your_freeze(freeze_by_name)
    first, second = capsys.readouterr().out.splitlines()
    ours, table = first.split("test accuracy ")[1].split(" (the shipped table's run: ")
    assert abs(float(ours) - float(table.rstrip(")"))) < 0.02
    assert second.endswith("the pretrained ones: True")
    checks.adapt_with_your_freeze(freezing(copy_model=False))
    assert capsys.readouterr().out.startswith("Finish this first. Exercise 10.1 (freeze_body_and_replace_head): ")


def test_judging_in_threads_at_once_gives_the_same_verdicts():
    """The grader judges two exercises at once in threads; the model kind seeds torch's random generator (the
    process's), so runs in one process must not interleave: a likely bug with dropout left in training mode is
    still named every time (without checks' lock, 5 of these 15 verdicts differed)."""
    exercise = EXERCISES["freeze_body_and_replace_head"]
    cases = exercise.cases("hidden")
    variant, explanation = exercise.likely_bugs[4]
    results = harness.run_all(variant, cases)
    verdicts = []

    def judge_five_times():
        verdicts.extend(checks.judge(exercise, cases, results) for _ in range(5))

    threads = [threading.Thread(target=judge_five_times) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert verdicts == [explanation] * 15
