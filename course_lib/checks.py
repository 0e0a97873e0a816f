"""Instant checks for the exercises, and the judge that grading shares with them.

A check is two steps, kept apart so that grading can put a wall between them:

1. **run**: course_lib.harness calls the learner's function on the exercise's cases and keeps only what came
   back, as float arrays, and what happened (an exception, an argument changed in place, ...). In a notebook
   this runs in the learner's kernel; for grading, in a sandboxed process (instructor/grade.py).
2. **judge**: ``judge`` compares those outputs with the reference's on the same cases and, when they differ,
   names the likely bug (course_lib.bugs): a variant whose outputs match the learner's on *every* call, or,
   when none does, what differs and where. It runs where the verdict is made and trusts nothing but the numbers.

    checks.check("sgd_momentum", sgd_momentum)                    # the visible check under Exercise 2.1
    checks.check("sgd_momentum", sgd_momentum, suite="hidden")    # the hidden tests, what grading runs

A random exercise (dropout, random shifts: ``exercise.properties`` is set) is judged by properties instead of
values: two right answers that draw their random numbers differently return different arrays. Its cases pass
seeded generators and large inputs; ``course_lib.exercises`` turns each case's outputs into labelled properties
(the share of zeros is "about drop_probability", "each row has its own mask", ...), chosen so that a right
answer's labels, and each likely bug's, come out the same whatever is drawn. The answer passes when its labels
are the reference's on every case; a likely bug is named when its labels are the answer's on every case. The
judge adds two properties of its own wherever a case asks for them: a call repeated with a generator seeded
alike returns the same result, one with another seed a different result (the random numbers come from rng).

A passing check prints one line starting with ✓. A failing one raises ``ExerciseError`` (an AssertionError,
so nbgrader scores the cell 0) whose message is the diagnosis; in a notebook it shows without a traceback.
``your_rule(fn)`` gives a widget the learner's function once its exercise passes, and a message until then.
"""

import copy
import threading
import warnings

import numpy as np
import torch

from course_lib import (
    averaging,
    batch_norm,
    data,
    ensembles,
    harness,
    landscapes,
    measure,
    optim,
    regularization,
    second_order,
    theory,
    training,
    transfer,
)
from course_lib.exercises import EXERCISES
from course_lib.trajectories import run

__all__ = [
    "EXERCISES",
    "ExerciseError",
    "NotReady",
    "YourFunction",
    "adapt_with_your_freeze",
    "check",
    "ema_with_your_update",
    "ensemble_with_your_predict",
    "judge",
    "lbfgs_with_your_two_loop",
    "predict_and_measure",
    "train_with_your_batch_norm",
    "train_with_your_shifts",
    "your_dropout_on_average",
    "your_rule",
]


class ExerciseError(AssertionError):
    """A failed check. Its message is the diagnosis; IPython shows it without a traceback."""

    def _render_traceback_(self):
        return [f"\x1b[1;31m✗ {self}\x1b[0m"]


def check(name, candidate, suite="visible", quiet=False):
    """Run the learner's ``candidate`` for exercise ``name`` on the suite's cases in this process; judge it."""
    exercise = EXERCISES[name]
    heading = f"Exercise {exercise.number} ({name})"
    if not callable(candidate):
        raise ExerciseError(f"{heading}: expected a function, got {type(candidate).__name__}")
    cases = exercise.cases(suite)
    verdict = _verdict(exercise, candidate, cases)
    if verdict is not None:
        raise ExerciseError(f"{heading}: {verdict}")
    if not quiet:
        print(f"✓ {heading} passed: {_summary(exercise, cases)}")


def _verdict(exercise, candidate, cases):
    """``judge`` of the candidate's results on ``cases``. A random exercise's cases are large (Exercise 7.1's
    hidden suite returns 6 MB of arrays), and a right answer passes each of them on its own: they are run and
    judged one at a time, so that one case's arrays are held at once. Only if one fails are all the cases run
    together, for the diagnosis, which compares the answer with the likely bugs over every case."""
    if exercise.properties is not None and all(_case_passes(exercise, candidate, case) for case in cases):
        return None
    return judge(exercise, cases, _run(candidate, cases))


def _case_passes(exercise, candidate, case):
    """Whether a random exercise's candidate passes ``case`` (as ``judge`` says): the reference's properties are
    taken first and its arrays dropped, then the candidate runs, so that one of them at a time holds arrays."""
    expected = _reference_properties(exercise, [case])
    results = [(outputs, _not_tolerated(exercise, events)) for outputs, events in _run(candidate, [case])]
    return _judge_properties(exercise, [case], results, expected) is None


def judge(exercise, cases, results, setup=()):
    """The diagnosis of a learner's answer (None if it is right), from ``results``: one (outputs, events) per
    case, as course_lib.harness gives them. ``setup``: events from before any call (the learner's cell raised,
    or does not define the function)."""
    if setup:
        return _describe_setup(exercise, setup[0])
    results = [(outputs, _not_tolerated(exercise, events)) for outputs, events in results]
    if exercise.properties is not None:
        return _judge_properties(exercise, cases, results)
    expected = _reference_results(exercise, cases)
    started = {}  # backend -> first steps of runs taken without trouble so far
    for number, (case, (outputs, events)) in enumerate(zip(cases, results, strict=True)):
        spec = case[0]
        first_event = {}
        for event in events:
            first_event.setdefault(event["call"], event)
        for index, call in enumerate(spec["calls"]):
            if index in first_event:
                unfinished = first_event[index].get("type") == "NotImplementedError"
                explanation = None if unfinished else _likely_bug(exercise, cases, results, expected)
                if explanation is not None:  # e.g. a variant that changes the same argument in place
                    return explanation
                event = {**first_event[index], "earlier_first_steps": started.get(spec["backend"], 0)}
                return _describe_event(exercise, spec, call, event)
            if call.get("step") == 1:
                started[spec["backend"]] = started.get(spec["backend"], 0) + 1
            if _differing(expected[number][0], outputs, index, exercise):
                return _describe_difference(exercise, cases, results, expected, number, index)
    return None


def _not_tolerated(exercise, events):
    """``events`` without the in-place changes the exercise allows (e.g. a model switched to evaluation mode)."""
    return [event for event in events
            if not (event.get("what") == "modified" and event.get("changed") in exercise.tolerated)]


def _likely_bug(exercise, cases, results, expected):
    """The explanation of the first likely bug whose variant gives the learner's outputs on every call of every
    case and did, at least, whatever the learner's function did besides (raised, changed an argument in place),
    or None."""
    for variant, explanation in exercise.likely_bugs:
        variant_results = _run(variant, cases)
        if all(_signatures(events) <= _signatures(_not_tolerated(exercise, variant_events))
               and all(_close(outputs.get(key), variant_outputs.get(key), exercise) for key in reference)
               for (outputs, events), (variant_outputs, variant_events), (reference, _)
               in zip(results, variant_results, expected, strict=True)):
            return explanation
    return None


def _signatures(events):
    return {(event.get("call"), event.get("what"), event.get("argument"), event.get("changed"), event.get("type"))
            for event in events}


# ---- what happened, in words -------------------------------------------------------------------------------

def _describe_setup(exercise, event):
    if event.get("what") == "missing":
        return f"{event['message']}: the grader runs your exercise's cell on its own, with numpy as np, math " \
               "and torch imported; define the function there under this name."
    if event.get("type") == "NotImplementedError":
        return f"not done yet: write the body of {exercise.name} (it still raises NotImplementedError)."
    missing = event.get("type") in ("NameError", "ModuleNotFoundError", "ImportError")
    hint = f" {_SELF_CONTAINED}" if missing else ""
    return f"running your exercise's cell raised {event['type']}: {event['message']}.{hint}"


_SELF_CONTAINED = ("The grader runs your exercise's cell on its own, with numpy as np, math and torch imported: "
                   "everything else the function needs must be defined or imported in that cell (course_lib is "
                   "not available: it holds the answers).")


def _describe_event(exercise, spec, call, event):
    where, what = call["where"], event["what"]
    if "output" in event and exercise.results:  # the exercise's names for what its function returns
        event = {**event, "output": _label(exercise, spec, event["output"])}
    if what == "raised":
        return _describe_raise(exercise, spec, call, event)
    if what == "modified":
        return _describe_modification(exercise, where, event)
    if what == "returned":
        if "expected" in event:
            return f"{where} your function returned {event.get('got')}; it must return {event['expected']}."
        return f"{where} returned {event.get('got')}; a rule returns the pair (next_x, config)."
    if what == "type":
        tensors = "" if event.get("expected") != "a torch Tensor" else (
            " (a torch Tensor in must give a torch Tensor out: np.zeros_like(x) and other numpy functions turn "
            "tensors into numpy arrays; 0 * x and ** 0.5 keep the type)")
        return (f"{where} returned {event.get('got')} as {event.get('output')}; {event.get('expected')} was "
                f"expected{tensors}.")
    if what == "shape":
        return (f"{where} returned {event.get('output')} of shape {tuple(event.get('got', ()))}, expected "
                f"{tuple(event.get('expected', ()))}: the wrong shape (did you sum or flatten?).")
    if what == "not numbers":
        return f"{where} returned {event.get('got')} as {event.get('output')}, which is not an array of numbers."
    return f"{where}: {event}"


def _describe_raise(exercise, spec, call, event):
    """The learner's function raised: say what, and what usually causes it here."""
    if event.get("type") == "NotImplementedError":
        return f"not done yet: write the body of {exercise.name} (it still raises NotImplementedError)."
    message = str(event.get("message", ""))
    doing = event.get("during", "your function")  # e.g. running the model it returned
    raised = f"{call['where']} {doing} raised {event.get('type')}: {message.rstrip('.')}"
    if event.get("type") == "NameError":  # e.g. a module imported in another cell of the notebook
        return f"{raised}. {_SELF_CONTAINED}"
    rule = spec["kind"] == "rule"
    if rule and "none" in call["config"] and "NoneType" in message:
        return (f"{raised}. A rule is first called as rule(x, dx), with no config at all (the contract): "
                "start from config = dict(config or {}).")
    if rule and call["step"] == 1 and event.get("earlier_first_steps"):
        return (f"{raised}. It ran the first step of an earlier run but not of this new one: state left over "
                "from an earlier run (a global variable, a default argument, an attribute of the function) "
                "reaches it. Keep every piece of state in config: a new run starts with none.")
    for fragment, hint in exercise.error_hints:
        if fragment in message:
            return f"{raised}. {hint}"
    if spec["backend"] == "torch" and spec["kind"] != "model":
        return (f"{raised}. The same function must work on torch tensors (RuleOptimizer and the hidden tests "
                "pass tensors): numpy-only calls such as x.copy() or np.zeros_like(x) fail or return numpy "
                "arrays; 0 * x, x * 1 and ** 0.5 work on both.")
    return raised


_CHANGED = {  # what a function of torch models changed in an argument (course_lib.harness's kinds of change)
    "parameters": "the values of its parameters, {item} first",
    "buffers": "its buffers (batch norm's running statistics), {item} first",
    "gradients": "the .grad of its parameters, {item} first",
    "requires_grad": "the requires_grad flag of {item}",
    "mode": "the train/eval mode of {item}",
    "items": "the list itself: its models replaced, added, removed or reordered",
}


def _describe_modification(exercise, where, event):
    argument = str(event.get("argument"))
    if argument in ("x", "dx"):
        return (f"{where} your function modified its input {argument} in place (e.g. x -= ... or x += ...). "
                "Build a new array instead: next_x = x - ..., so the caller's arrays stay as they were.")
    if argument.startswith("config["):
        key = argument[len("config["):-1]
        return (f"{where} your function modified {argument} in place (e.g. velocity *= rho). Compute a new "
                f"array and store it: config[{key}] = ...")
    position = int(argument.split()[-1]) - 1
    name = exercise.arguments[position] if position < len(exercise.arguments) else argument
    hint = exercise.hints.get(name, "Build new arrays instead; the caller keeps using its own.")
    changed = _CHANGED.get(event.get("changed"))
    if changed:
        item = str(event.get("item", ""))
        item = name + (item if item.startswith("[") or not item else f".{item}")
        name = f"{name} ({changed.format(item=item)})"
    return f"{where} your function changed its argument {name} in place: {hint}"


# ---- comparing numbers ----------------------------------------------------------------------------------------

_ONE_RUN_AT_A_TIME = threading.Lock()


def _run(candidate, cases):
    """harness.run_all on one torch thread (the cases are small: more threads only add their start-up costs),
    with warnings silenced (a learner's NaN or a numpy call on a tensor: the verdict says what went wrong). One
    run at a time in a process: the model kind seeds torch's random generator, which is the whole process's, and
    the grader judges several exercises at once in threads."""
    with _ONE_RUN_AT_A_TIME, training.single_thread(), np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return harness.run_all(candidate, cases)


def _reference_results(exercise, cases):
    return _run(exercise.reference, cases)


def _keys_of_call(reference_outputs, index):
    prefix = f"{index}."
    return [key for key in reference_outputs if key.startswith(prefix)]


def _close(a, b, exercise):
    if a is None or b is None:
        return a is None and b is None
    if np.shape(a) != np.shape(b):
        return False
    with np.errstate(all="ignore"):
        return bool(np.allclose(a, b, rtol=exercise.rtol, atol=exercise.atol, equal_nan=True))


def _differing(reference_outputs, outputs, index, exercise):
    """The output names of call ``index`` where the learner's value differs from the reference's."""
    return [key for key in _keys_of_call(reference_outputs, index)
            if not _close(outputs.get(key), reference_outputs[key], exercise)]


def _describe_difference(exercise, cases, results, expected, number, index):
    """The learner's value differs from the reference's at call ``index`` of case ``number``: say why."""
    explanation = _likely_bug(exercise, cases, results, expected)
    if explanation is not None:
        return explanation
    spec = cases[number][0]
    call = spec["calls"][index]
    differing = _differing(expected[number][0], results[number][0], index, exercise)
    outputs, reference = results[number][0], expected[number][0]
    if spec["kind"] == "rule":
        state_message = _describe_state_outside_config(exercise, cases, results, expected)
        if state_message:
            return state_message
    nan_message = _describe_new_nan(exercise, spec, call, differing, outputs, reference)
    if nan_message:
        return nan_message
    total = sum(bool(_differing(reference_outputs, case_outputs, i, exercise))
                for (case_outputs, _), (reference_outputs, _), case in zip(results, expected, cases, strict=True)
                for i in range(len(case[0]["calls"])))
    calls = sum(len(case[0]["calls"]) for case in cases)
    tally = f" ({total} of the {calls} calls differ; no likely bug we know of explains all of them)"
    names = [_output_name(key) for key in differing]
    if spec["kind"] == "rule" and "next_x" not in names:
        return _describe_config_only(call, index, names, differing, outputs, reference, tally)
    if spec["kind"] == "model":
        observed = _describe_observations(exercise, spec, call["where"], differing, outputs, reference, tally)
        if observed:
            return observed
    key = differing[0]
    ours = outputs.get(key)
    label = _label(exercise, spec, _output_name(key))
    if ours is None:
        return f"{call['where']} {label} is missing, expected {_show(reference[key])}{tally}."
    if np.shape(ours) != np.shape(reference[key]):
        return (f"{call['where']} {label} has shape {np.shape(ours)}, expected {np.shape(reference[key])}"
                f"{tally}.")
    return (f"{call['where']} {label} is {_show(ours)}, expected {_show(reference[key])} (largest difference "
            f"{_largest_difference(ours, reference[key]):.3g}){tally}.")


# ---- random exercises: properties instead of values --------------------------------------------------------

SAME_SEED = "the result, next to that call's"
OTHER_SEED = "the results with other seeds, next to this call's"
DRAW_HINTS = {
    SAME_SEED: " Draw every random number from rng, the generator passed in (not from np.random.random or a "
               "generator made inside the function): the same seed must give the same result, so that a seeded "
               "run can be repeated.",
    OTHER_SEED: " Draw the random numbers from rng, the generator passed in: with another seed the result must "
                "change (a generator seeded inside the function gives the same numbers at every call).",
}


def _judge_properties(exercise, cases, results, expected=None):
    """A random exercise: on each case, the labels of the answer's properties must be the reference's
    (``expected``: the reference's properties, if already taken)."""
    if expected is None:
        expected = _reference_properties(exercise, cases)
    for number, (case, (outputs, events)) in enumerate(zip(cases, results, strict=True)):
        if events:
            return _describe_property_event(exercise, cases, results, number)
        if _labels(_properties(exercise, case, outputs)) != _labels(expected[number]):
            return _describe_property_difference(exercise, cases, results, expected, number)
    return None


def _reference_properties(exercise, cases):
    """The reference's properties on each case. It runs case by case, each case's arrays dropped once their
    properties are taken: all of them at once would hold as much again as the answer's results (6 MB for
    Exercise 7.1's hidden suite)."""
    return [_properties(exercise, case, _reference_results(exercise, [case])[0][0]) for case in cases]


def _describe_property_event(exercise, cases, results, number):
    """The answer raised or changed an argument on case ``number``: a likely bug that did the same (and has the
    answer's labels on every case), or what happened, where."""
    spec, (_, events) = cases[number][0], results[number]
    event, calls = events[0], spec["calls"]
    if event.get("type") != "NotImplementedError":
        found = [_properties(exercise, case, outputs) for case, (outputs, _) in zip(cases, results, strict=True)]
        explanation = _likely_bug_by_properties(exercise, cases, results, found, number)
        if explanation is not None:
            return explanation
    call = calls[event["call"]] if 0 <= event.get("call", -1) < len(calls) else {"where": spec["where"]}
    return _describe_event(exercise, spec, call, event)


def _properties(exercise, case, outputs):
    """The case's properties in the order they are judged: the form of what each call returned, then the judge's
    own about the draws, then what the exercise measures."""
    form, measured = exercise.properties(case, outputs)
    return {**form, **_draw_properties(case[0], outputs), **measured}


def _draw_properties(spec, outputs):
    """A call marked "repeat_of": i had a generator seeded as call i's, and must return the same. Calls marked
    "reseed_of": i had other seeds: if every one of them returns call i's result, the function does not draw
    from rng (a right answer's chance of that is nil on these cases' large inputs; a function that draws one
    number per call from k values, several such calls make it negligible: k**-calls)."""
    found, reseeded = {}, {}
    for index, call in enumerate(spec["calls"]):
        if "repeat_of" in call:
            same = _same_outputs(outputs, index, call["repeat_of"])
            found[(call["where"], SAME_SEED)] = ("the same" if same else "different", "")
        if "reseed_of" in call:
            reseeded.setdefault(call["reseed_of"], []).append(index)
    for first, others in reseeded.items():
        same = all(_same_outputs(outputs, index, first) for index in others)
        found[(spec["calls"][first]["where"], OTHER_SEED)] = ("the same" if same else "different", "")
    return found


def _same_outputs(outputs, index, other):
    def of_call(number):
        return {key.split(".", 1)[1]: value for key, value in outputs.items() if key.startswith(f"{number}.")}

    mine, theirs = of_call(index), of_call(other)
    return mine.keys() == theirs.keys() and all(
        np.shape(mine[key]) == np.shape(theirs[key]) and np.array_equal(mine[key], theirs[key], equal_nan=True)
        for key in mine)


def _labels(properties):
    return {key: label for key, (label, _) in properties.items()}


def _describe_property_difference(exercise, cases, results, expected, number):
    """The answer's properties differ from the reference's on case ``number``: name the likely bug whose
    properties are the answer's on every case, or say which property differs first, and where."""
    found = [_properties(exercise, case, outputs) for case, (outputs, _) in zip(cases, results, strict=True)]
    explanation = _likely_bug_by_properties(exercise, cases, results, found, number)
    if explanation is not None:
        return explanation
    mine, theirs = found[number], expected[number]
    key = next(key for key in [*theirs, *mine] if _property_label(mine, key) != _property_label(theirs, key))
    differing = sum(_property_label(a, key) != _property_label(b, key)
                    for a, b in zip(found, expected, strict=True) for key in {**b, **a})
    total = sum(len({**a, **b}) for a, b in zip(found, expected, strict=True))
    where, name = key
    label, detail = mine.get(key, ("missing", ""))
    shown = f"{label} ({detail})" if detail else label
    expected_label = _property_label(theirs, key) or "nothing"
    return (f"{where}: {name}: {shown}; expected: {expected_label} ({differing} of the {total} properties differ; "
            f"no likely bug we know of explains all of them).{DRAW_HINTS.get(name, '')}")


def _property_label(properties, key):
    return properties[key][0] if key in properties else None


def _likely_bug_by_properties(exercise, cases, results, found, first):
    """The explanation of the first likely bug whose properties have the answer's labels (``found``) on every
    case and that did, at least, whatever the answer did besides (raised, changed an argument in place), as
    _likely_bug asks of a deterministic exercise's variants. The case that differed first is tried first, so a
    variant that differs there costs one run of one case."""
    order = [first, *(number for number in range(len(cases)) if number != first)]
    for variant, explanation in exercise.likely_bugs:
        for number in order:
            [(outputs, events)] = _run(variant, [cases[number]])
            if not _signatures(results[number][1]) <= _signatures(_not_tolerated(exercise, events)) \
                    or _labels(_properties(exercise, cases[number], outputs)) != _labels(found[number]):
                break
        else:
            return explanation
    return None


def _describe_new_nan(exercise, spec, call, differing, outputs, reference):
    """A message if a NaN appears in the learner's value where the reference's is finite, else None."""
    for key in differing:
        ours, theirs = outputs.get(key), reference[key]
        if ours is not None and np.shape(ours) == np.shape(theirs) and np.isnan(ours).any() \
                and not np.isnan(theirs).any():
            name = _label(exercise, spec, _output_name(key))
            return (f"{call['where']} NaN appeared in {name} (the reference's is finite): a division by zero, or "
                    "the square root of a negative number?")
    return None


def _describe_config_only(call, index, names, differing, outputs, reference, tally):
    """An update rule whose next_x is right and whose config is not: which state is missing or wrong."""
    missing = [name for name, key in zip(names, differing, strict=True) if outputs.get(key) is None]
    if missing:
        state = [_output_name(k) for k in _keys_of_call(reference, index) if not k.endswith(".next_x")]
        return (f"{call['where']} next_x is right, but config has no {missing}: keep the rule's state in "
                f"config under the lecture's names {state}.")
    key = differing[0]
    return (f"{call['where']} next_x is right but config[{names[0]!r}] is {_show(outputs[key])}, expected "
            f"{_show(reference[key])}{tally}.")


def _describe_state_outside_config(exercise, cases, results, expected):
    """A message if the rule is right on every call of a run alone and wrong only where runs are stepped in turn
    or a run is replayed from a saved config: its state lives outside the config."""
    alone_right, first_wrong = True, None
    for case, (outputs, _), (reference, _) in zip(cases, results, expected, strict=True):
        spec = case[0]
        for index, call in enumerate(spec["calls"]):
            wrong = _differing(reference, outputs, index, exercise)
            shared = spec["interleaved"] or "replay_of" in call
            if wrong and not shared:
                alone_right = False
            if wrong and shared and first_wrong is None:
                first_wrong = call
    if alone_right and first_wrong is not None:
        return (f"right on a run alone, but wrong {first_wrong['where']}: your rule "
                "keeps its state outside the config it returns (a global variable, a default argument, an "
                "attribute of the function). Keep every piece of state in config, so that two parameters stepped "
                "in turn, or a run restarted from a saved config, each see only their own.")
    return None


def _output_name(key):
    return key.split(".", 1)[1]


def _label(exercise, spec, name):
    """How a message names an output ``name`` (its key without the call's number): a rule's by its name
    (next_x, velocity, ...); a function's result by the exercise's name for it (``results``) or "your result";
    an entry of a returned model as "<key> of the model you returned"."""
    if spec["kind"] == "rule":
        return name
    value, _, entry = name.split(":", 1)[0].partition(".")
    if entry:
        return f"{entry} of the model you returned"
    position = value.removeprefix("result")
    if exercise.results and int(position or 0) < len(exercise.results):
        return exercise.results[int(position or 0)]
    return "your result" if position == "" else f"your result [{position}]"


# What the model kind observes of a returned model besides its state (course_lib.harness: outputs named
# "<call>.<result>:<what>:<name>"), most telling first, and how a message says that it differs.
_OBSERVED = {"others": None, "includes": ("{label} include {names}, which should not be there",
                                          "{label} leave out {names}"),
             "requires_grad": ("in {model}, {names} require gradients, expected them frozen",
                               "in {model}, {names} do not require gradients, expected them to"),
             "training": ("in {model}, the layers {names} are in training mode, expected eval mode",
                          "in {model}, the layers {names} are in eval mode, expected training mode")}


def _describe_observations(exercise, spec, where, differing, outputs, reference, tally):
    """What differs in what the model kind observed (requires_grad flags, layers' modes, the parameters handed
    to an optimizer, the outputs), when that says more than a weight's value; None otherwise."""
    parsed = [(key, *_output_name(key).split(":", 1)[1].partition(":")[::2]) for key in differing
              if ":" in _output_name(key)]
    model = "the model you returned"
    missing = list(dict.fromkeys(name for key, what, name in parsed if outputs.get(key) is None and name))
    if missing:
        return (f"{where} {model} has no {_names(missing)}, which the reference's has (a layer missing, or built "
                f"differently?){tally}.")
    flags = [item for item in parsed if item[1] in _OBSERVED]
    if flags:
        key, what, _ = min(flags, key=lambda item: list(_OBSERVED).index(item[1]))
        label = _label(exercise, spec, _output_name(key))
        if what == "others":
            return (f"{where} {int(outputs[key])} of the tensors in {label} are not parameters of {model} "
                    f"(copies, or another model's?): an optimizer must be given the model's own "
                    f"parameters{tally}.")
        same = [(k, name) for k, w, name in parsed if w == what]
        raised = [name for k, name in same if outputs[k] > reference[k]]
        lowered = [name for k, name in same if outputs[k] < reference[k]]
        parts = [template.format(label=label, model=model, names=_names(names))
                 for template, names in zip(_OBSERVED[what], (raised, lowered), strict=True) if names]
        return f"{where} {'; '.join(parts)}{tally}."
    if any(":" not in _output_name(key) for key in differing):
        return None  # a weight or a buffer differs: said as for any returned model
    key = parsed[0][0]
    ours, theirs = outputs[key], reference[key]
    if np.shape(ours) != np.shape(theirs):
        return f"{where} what {model} computes has shape {np.shape(ours)}, expected {np.shape(theirs)}{tally}."
    return (f"{where} what {model} computes on the case's inputs is {_show(ours)}, expected {_show(theirs)} "
            f"(largest difference {_largest_difference(ours, theirs):.3g}){tally}.")


def _names(names, shown=4):
    listed = ", ".join(names[:shown])
    return listed if len(names) <= shown else f"{listed} and {len(names) - shown} more"


def _show(value):
    return np.array2string(np.asarray(value), precision=4, threshold=6, edgeitems=2)


def _largest_difference(a, b):
    with np.errstate(all="ignore"):
        return float(np.nanmax(np.abs(np.asarray(a) - np.asarray(b)))) if np.size(a) else 0.0


def _summary(exercise, cases):
    calls = sum(len(case[0]["calls"]) for case in cases)
    backends = " and ".join(sorted({case[0]["backend"] for case in cases}))
    if exercise.properties is not None:
        return f"on all {calls} calls it has the properties of a right answer: {exercise.passes_when}."
    if exercise.kind == "rule":
        return (f"matches the reference on all {calls} calls ({backends}): a first call with no config, runs "
                "stepped in turn, and a run replayed from a saved config.")
    if exercise.kind == "model":
        return (f"matches the reference on all {calls} calls, and changes nothing in its arguments it must leave "
                "alone.")
    return f"matches the reference on all {calls} inputs ({backends})."


# ---- learners' functions in the widgets ----------------------------------------------------------------------

class NotReady(Exception):
    """A learner's function that cannot race yet; the message is what a widget shows in its place."""


class YourFunction:
    """A learner's function as a widget racer, looked up by name in the notebook.

    ``current()`` looks it up and returns the definition the notebook holds now; a widget calls it once per run
    (a run takes hundreds of steps, and a lookup in IPython's namespace costs more than a step), then steps the
    function it got. Fixing the exercise cell is enough: the next slider move races the new version, once its
    check passes. Until then, ``current()`` raises ``NotReady`` with what to do, which the widgets draw on the
    plot. Calling the object itself looks the function up at that call (convenient, but slow in a loop).
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
    try:
        check(name, candidate, quiet=True)
    except ExerciseError as error:
        number = EXERCISES[name].number
        if "not done yet" in str(error):
            return f"finish Exercise {number} first"
        return f"does not pass Exercise {number} yet (see its check cell)"
    return None


def _notebook_namespace():
    """The notebook's variables (IPython's user namespace), or {} outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return {}
    shell = get_ipython()
    return shell.user_ns if shell is not None else {}


# ---- after an exercise passes: the learner's function at work ------------------------------------------------

def _passes(name, candidate):
    try:
        check(name, candidate, quiet=True)
    except ExerciseError as error:
        print(f"Finish this first. {error}")
        return False
    return True


def predict_and_measure(best_learning_rate, steps_to_shrink, kappa=50.0, factor=1e-6, angle=0.4):
    """Exercises 1.1 and 1.2 at work: on a rotated valley with condition number ``kappa``, the learner's
    best_learning_rate picks the rate from the Hessian and steps_to_shrink predicts the steps gradient descent
    needs to shrink the error by ``factor``; then gradient descent runs at that rate and the steps are counted."""
    if not (_passes("best_learning_rate", best_learning_rate) and _passes("steps_to_shrink", steps_to_shrink)):
        return None
    valley = landscapes.ill_conditioned_quadratic(kappa, angle=angle)
    hessian = valley.hessian(valley.global_minimum)
    learning_rate = float(best_learning_rate(hessian))
    predicted = int(steps_to_shrink(theory.condition_number(hessian), factor))
    trajectory = run(optim.sgd, valley, steps=3 * predicted, config={"learning_rate": learning_rate})
    distances = trajectory.distances(valley.global_minimum)
    measured = measure.steps_to_reach(trajectory, valley.global_minimum, factor * distances[0] * (1 + 1e-9))
    print(f"kappa = {kappa:g}: your best_learning_rate gives {learning_rate:.4f}; your steps_to_shrink predicts "
          f"{predicted} steps to shrink the error by {factor:g}; gradient descent at that rate took {measured}.")
    return predicted, measured


def lbfgs_with_your_two_loop(candidate, max_iter=100):
    """Once Exercise 5.1 passes: L-BFGS on Rosenbrock driven by the learner's two-loop recursion, beside the
    same L-BFGS with the reference's (course_lib.second_order.lbfgs with ``direction=``)."""
    if not _passes("two_loop_direction", candidate):
        return
    valley = landscapes.rosenbrock()
    for label, direction in (("your two_loop_direction", candidate),
                             ("the reference", second_order.two_loop_direction)):
        result = second_order.lbfgs(lambda x: (valley.f(x), valley.grad(x)), np.array(valley.start),
                                    max_iter=max_iter, tolerance=1e-10, direction=direction)
        distance = np.linalg.norm(result.final - valley.global_minimum)
        print(f"L-BFGS with {label:23s}: {result.iterations} steps, {result.evaluations} gradient "
              f"evaluations, distance to the minimum {distance:.1e}")


def your_dropout_on_average(candidate, activations, drop_probability=0.5, passes=20_000, seed=0):
    """Once Exercise 7.1 passes: claim 25 with the learner's inverted_dropout. The mean of ``passes`` training
    passes over ``activations`` (regularization.mean_of_dropout_passes: batches of 1,000 copies at a time, from one
    generator seeded with ``seed``) against the test pass, beside what independent masks give in theory (a
    relative RMS error of sqrt(drop / (keep * passes))). Prints; returns nothing."""
    if not _passes("inverted_dropout", candidate):
        return
    activations = np.asarray(activations, dtype=float).ravel()
    mean = regularization.mean_of_dropout_passes(candidate, activations, drop_probability, passes,
                                                 np.random.default_rng(seed))
    test = candidate(activations[None, :], drop_probability, False, np.random.default_rng(seed))[0]
    apart = np.linalg.norm(mean - test) / np.linalg.norm(test)
    theory_apart = np.sqrt(drop_probability / ((1 - drop_probability) * passes))
    print(f"your inverted_dropout, drop probability {drop_probability:g}: the mean of {passes:,} training passes "
          f"is {apart:.2%} from the test pass (independent masks: about {theory_apart:.2%})")


def train_with_your_shifts(candidate, max_shift=5, seed=0, **settings):
    """Once Exercise 8.1 passes: the experiment of claim 27 (``regularization.train_with_shifts``: the network
    40-256-256-10, Adam at 3e-3, batches of 128, 1,000 MNIST-1D signals) with the learner's random_circular_shift
    as its augmentation, from the weights and batches of the claim's run with the same ``seed``; prints its
    accuracies. ``settings`` (``epochs``, ``training_examples``) change the experiment's, for tests. Each batch
    is handed over as a numpy array with a generator seeded from the run's own, so the run repeats."""
    if not _passes("random_circular_shift", candidate):
        return

    def your_shift(inputs, generator, *, max_shift):
        rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
        return torch.as_tensor(np.asarray(candidate(inputs.numpy(), max_shift, rng)), dtype=inputs.dtype)

    _, history = regularization.train_with_shifts(your_shift, max_shift, seed, **settings)
    print(f"trained with your random_circular_shift (max_shift={max_shift}): train accuracy "
          f"{history.train_accuracy[-1]:.3f}, test accuracy {history.test_accuracy[-1]:.3f}")


def ema_with_your_update(candidate, dataset, decay=0.9, epochs=5, learning_rate=0.05):
    """Once Exercise 6.1 passes: SGD with momentum at a constant rate on ``dataset`` (an MLP, as in claim check
    23), with two moving averages of the weights updated after every step, one by the learner's ema_update and
    one by course_lib.averaging.ExponentialAverage; their test losses beside the trained weights'."""
    if not _passes("ema_update", candidate):
        return
    model = training.mlp([dataset.x_train.shape[1], 128, 128, 10], seed=1)
    optimizer = optim.RuleOptimizer(model.parameters(), optim.sgd_momentum, learning_rate=learning_rate, rho=0.9)
    library = averaging.ExponentialAverage(model, decay)
    yours = {"average": copy.deepcopy(model)}

    def your_update(trained, step):
        yours["average"] = candidate(yours["average"], trained, decay)

    training.train(model, optimizer, dataset, epochs=epochs, on_step=[library, your_update], evaluate_every=None)
    losses = {label: training.evaluate(network, dataset.x_test, dataset.y_test)[0]
              for label, network in (("your ema_update", yours["average"]), ("ExponentialAverage", library.model),
                                     ("the trained weights", model))}
    for label, loss in losses.items():
        print(f"{label:20s} test loss after {epochs} epochs: {loss:.3f}")
    same = all(torch.allclose(mine.double(), theirs.double(), rtol=1e-4, atol=1e-6) for mine, theirs in
               zip(yours["average"].state_dict().values(), library.model.state_dict().values(), strict=True))
    print(f"your average's weights are the library's (to float32 round-off): {same}")


def ensemble_with_your_predict(candidate, members, dataset):
    """Once Exercise 6.2 passes: the learner's ensemble_predict on ``members`` (trained models) and the test set
    of ``dataset``, scored beside course_lib.ensembles' prediction."""
    if not _passes("ensemble_predict", candidate):
        return
    predictions = {"your ensemble_predict": torch.as_tensor(candidate(members, dataset.x_test)).detach(),
                   "course_lib.ensembles": ensembles.average_probabilities(
                       ensembles.member_logits(members, dataset.x_test))}
    for label, probabilities in predictions.items():
        print(f"{label:22s} on the {len(dataset.y_test)} test signals: accuracy "
              f"{ensembles.accuracy(probabilities, dataset.y_test):.3f}, NLL "
              f"{ensembles.negative_log_likelihood(probabilities, dataset.y_test):.3f}")


def train_with_your_batch_norm(batchnorm_forward, batchnorm_backward, epochs=3, learning_rate=0.1):
    """Once Exercises 9.1 and 9.2 pass: notebook 09's network (40 -> 4 x 128 -> 10) trained on MNIST-1D with the
    learner's two functions in its batch-norm layers, beside the same network with torch.nn.BatchNorm1d
    (course_lib.batch_norm.beside_torch: same initial weights, same batches, float64)."""
    if not (_passes("batchnorm_forward", batchnorm_forward) and _passes("batchnorm_backward", batchnorm_backward)):
        return
    mnist1d = data.mnist1d()
    runs = batch_norm.beside_torch(batchnorm_forward, batchnorm_backward, mnist1d, epochs=epochs,
                                   learning_rate=learning_rate)
    for label, name in (("yours", "your batchnorm_forward and batchnorm_backward"),
                        ("torch", "torch.nn.BatchNorm1d")):
        print(f"{name:46s}: test accuracy {runs[label][1].test_accuracy[-1]:.3f} after {epochs} epochs of SGD "
              f"at rate {learning_rate:g}")
    with torch.no_grad():
        inputs = mnist1d.x_test.double()
        difference = (runs["yours"][0](inputs) - runs["torch"][0](inputs)).abs().max().item()
    print(f"the two trained networks' test outputs agree to 1e-8: {difference < 1e-8}")


def adapt_with_your_freeze(freeze_body_and_replace_head, count=10, seed=0):
    """Once Exercise 10.1 passes: the regime "frozen body + new head" of notebook 10 run with the learner's
    function (course_lib.transfer.adapt) on ``count`` labelled examples per class, beside the shipped table's run
    of the same setting (made with the reference)."""
    if not _passes("freeze_body_and_replace_head", freeze_body_and_replace_head):
        return
    pretrained = transfer.pretrained_cnn()
    labelled = data.mnist1d().classes_only(transfer.TARGET_CLASSES).per_class(count, seed)
    regime = "frozen body + new head"
    model, history = transfer.adapt(pretrained, labelled, regime, seed=seed, freeze=freeze_body_and_replace_head)
    body_kept = all(torch.equal(a, b) for a, b in zip(model.body.state_dict().values(),
                                                       pretrained.body.state_dict().values(), strict=True))
    print(f"{regime}, N = {count} per class, with your function: test accuracy {history.test_accuracy[-1]:.3f} "
          f"(the shipped table's run: {transfer.shipped_table().run(regime, count, seed):.3f})")
    print(f"after {len(history.step_loss)} steps of Adam the body's weights and batch-norm statistics are the "
          f"pretrained ones: {body_kept}")
