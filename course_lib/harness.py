"""Call a learner's function on given inputs and hand back what it returned as plain float arrays.

This is the only part of the workbook that runs beside a learner's code: in the notebook, for an instant
check, and when grading, inside a sandbox where the rest of course_lib cannot be imported (it holds the
answers). So it knows how to *call* each kind of exercise and never what the right answer is; it imports
nothing from course_lib, and the verdict is made elsewhere (course_lib.checks), from its outputs alone.

A case is ``(spec, arrays)``: ``spec`` a JSON-able dict saying what to call and how, ``arrays`` a dict of
named numpy arrays it refers to. ``run(candidate, case)`` returns ``(outputs, events)``:

- ``outputs``: name -> float64 numpy array, e.g. ``"3.next_x"`` (what call 3 returned as next_x) or
  ``"3.velocity"`` (the state it left in config);
- ``events``: what happened that is not a number, in order: a call that raised, an argument changed in place,
  a result of the wrong type or shape. Each is a small dict of strings and numbers.

Kinds of case (``spec["kind"]``):

- ``"rule"``: an update rule ``next_x, config = rule(x, dx, config=None)`` (the contract of course_lib.optim),
  called by a program: ``spec["calls"]`` lists ``{"run": label, "x": name, "dx": name, "config": how}`` with
  ``how`` one of ``{"none": true}`` (the first call, ``rule(x, dx)``: no config at all), ``{"fresh": {...}}``
  (a new dict of hyperparameters), ``{"continue": true}`` (the config this run's previous call returned, as a
  training loop passes it on) or ``{"replay": k}`` (a copy of the config call k returned, saved at once: a
  checkpoint). ``spec["state"]`` names the config entries to read back after every call. A run whose call
  raised stops there.
- ``"function"``: ``result = function(*arguments)`` for each entry of ``spec["calls"]``, whose ``"args"`` are
  ``{"array": name}``, ``{"arrays": [names]}`` (a list of arrays), ``{"number": v}``, ``{"integer": v}``,
  ``{"boolean": v}`` or ``{"rng": seed}`` (a new ``numpy.random.Generator``, ``np.random.default_rng(seed)``:
  a random exercise draws from it, and two calls given the same seed get generators in the same state).
  The result (a number, an array, or a tuple or list of them) becomes ``"<i>.result"`` (``"<i>.result<j>"``
  for the j-th of a tuple or list).

``spec["backend"]`` is ``"numpy"`` or ``"torch"``: with torch, every array is handed over as a float64 tensor
and a tensor must come back.

Run as a script (``python harness.py CASES_DIR CODE_FILE OUT_DIR NAME``) it executes the learner's code from
CODE_FILE (after ``import math, numpy as np, torch``), calls the function NAME on every case saved in CASES_DIR
and writes OUT_DIR/outputs.npz and OUT_DIR/events.json: what the grader's sandbox runs.
"""

import copy
import json
import sys
import traceback

import numpy as np

__all__ = ["MESSAGE_LIMIT", "load_cases", "run", "run_all", "save_cases"]

MESSAGE_LIMIT = 300  # characters kept of an exception's message


def run(candidate, case):
    """Call ``candidate`` as ``case`` says; return (outputs, events)."""
    spec, arrays = case
    calls = {"rule": _run_rule, "function": _run_function}[spec["kind"]]
    return calls(candidate, spec, arrays, _backend(spec))


def run_all(candidate, cases):
    """``run`` on every case: a list of (outputs, events), one per case."""
    return [run(candidate, case) for case in cases]


# ---- update rules ---------------------------------------------------------------------------------------

def _run_rule(rule, spec, arrays, backend):
    outputs, events = {}, []
    returned, saved, stopped = {}, {}, set()  # run -> its latest config; call -> a checkpoint of its config
    for index, call in enumerate(spec["calls"]):
        label, how = call["run"], call["config"]
        if label in stopped or ("replay" in how and how["replay"] not in saved):
            stopped.add(label)  # this run, or the run it replays, raised: there is no config to go on with
            continue
        x, dx = backend.array(arrays[call["x"]]), backend.array(arrays[call["dx"]])
        arguments = (x, dx, *_config_argument(how, label, returned, saved))
        config = _rule_call(rule, index, arguments, spec["state"], backend, outputs, events)
        if config is None:
            stopped.add(label)
            continue
        returned[label] = config
        try:
            saved[index] = copy.deepcopy(config)
        except Exception as error:
            events.append(_raised(index, error, during="copying the config it returned"))
            stopped.add(label)
    return outputs, events


def _config_argument(how, label, returned, saved):
    """The config argument of a call, as a tuple: empty for a first call made without one."""
    if "none" in how:
        return ()
    if "fresh" in how:
        return (dict(how["fresh"]),)
    if "continue" in how:
        return (returned[label],)
    return (copy.deepcopy(saved[how["replay"]]),)


def _rule_call(rule, index, arguments, state, backend, outputs, events):
    """One call of the rule: record what it returned and did; the config it returned, or None when its run
    cannot go on (it raised, or did not return the pair (next_x, config))."""
    x, dx = arguments[:2]
    config_in = arguments[2] if len(arguments) == 3 else {}
    # The arrays handed over, and copies of them: a rule may put new arrays into the dict it was given
    # (config.setdefault, config[key] = ...), but must not change the arrays themselves.
    handed = {"x": x, "dx": dx, **{f"config[{key!r}]": config_in[key] for key in state
                                   if _is_array_like(config_in.get(key))}}
    before = {argument: _snapshot(value) for argument, value in handed.items()}
    try:
        result = rule(*arguments)
    except BaseException as error:  # a learner's code may raise anything, SystemExit included
        events.append(_raised(index, error))
        return None
    events.extend({"call": index, "what": "modified", "argument": argument}
                  for argument, value in handed.items() if not _unchanged(value, before[argument]))
    if not (isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], dict)):
        events.append({"call": index, "what": "returned", "got": _describe(result)})
        return None
    next_x, config = result
    _record(outputs, events, index, "next_x", next_x, backend, tuple(x.shape))
    for key in state:
        if key in config:
            _record(outputs, events, index, key, config[key], backend, None, check_kind=False)
    return config


# ---- plain functions ------------------------------------------------------------------------------------

def _run_function(function, spec, arrays, backend):
    outputs, events = {}, []
    for index, call in enumerate(spec["calls"]):
        arguments = [_argument(argument, arrays, backend) for argument in call["args"]]
        before = [_snapshot_argument(argument) for argument in arguments]
        try:
            result = function(*arguments)
        except BaseException as error:
            events.append(_raised(index, error))
            continue
        for position, (argument, snapshot) in enumerate(zip(arguments, before, strict=True)):
            if not _argument_unchanged(argument, snapshot):
                events.append({"call": index, "what": "modified", "argument": f"argument {position + 1}"})
        results = tuple(result) if isinstance(result, tuple | list) else (result,)
        for number, value in enumerate(results):
            name = "result" if len(results) == 1 else f"result{number}"
            _record(outputs, events, index, name, value, backend, None,
                    check_kind=_is_array_like(value) or spec.get("returns") == "array")
    return outputs, events


def _argument(argument, arrays, backend):
    if "array" in argument:
        return backend.array(arrays[argument["array"]])
    if "arrays" in argument:
        return [backend.array(arrays[name]) for name in argument["arrays"]]
    if "integer" in argument:
        return int(argument["integer"])
    if "boolean" in argument:
        return bool(argument["boolean"])
    if "rng" in argument:
        return np.random.default_rng(int(argument["rng"]))
    return float(argument["number"])


def _snapshot_argument(argument):
    if isinstance(argument, list):
        return [_snapshot(item) for item in argument], list(argument)
    return _snapshot(argument) if _is_array_like(argument) else None


def _argument_unchanged(argument, snapshot):
    if isinstance(argument, list):
        copies, items = snapshot
        if len(argument) != len(items) or any(now is not then for now, then in zip(argument, items, strict=True)):
            return False
        return all(_unchanged(item, copied) for item, copied in zip(argument, copies, strict=True))
    return snapshot is None or _unchanged(argument, snapshot)


# ---- turning values into float arrays -------------------------------------------------------------------

class _Numpy:
    name = "numpy"

    @staticmethod
    def array(values):
        return np.array(values, dtype=float)

    @staticmethod
    def is_native(value):
        return isinstance(value, np.ndarray)


class _Torch:
    name = "torch"

    def __init__(self):
        import torch

        self.torch = torch

    def array(self, values):
        return self.torch.tensor(np.asarray(values, dtype=float))

    def is_native(self, value):
        return isinstance(value, self.torch.Tensor)


def _backend(spec):
    return _Torch() if spec.get("backend") == "torch" else _Numpy()


def _record(outputs, events, index, name, value, backend, shape, check_kind=True):
    """Store ``value`` as outputs["<index>.<name>"] if it is numbers; otherwise record why not. A wrong shape
    is recorded before a wrong type: it says more about the mistake."""
    try:
        array = _as_float_array(value)
    except Exception:
        events.append({"call": index, "what": "not numbers", "output": name, "got": _describe(value)})
        return
    if shape is not None and array.shape != shape:
        events.append({"call": index, "what": "shape", "output": name, "got": list(array.shape),
                       "expected": list(shape)})
    if check_kind and not backend.is_native(value):
        events.append({"call": index, "what": "type", "output": name, "got": _describe(value),
                       "expected": "a torch Tensor" if backend.name == "torch" else "a numpy array"})
    outputs[f"{index}.{name}"] = array


def _as_float_array(value):
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu().double().numpy()
    array = np.array(value, dtype=np.float64)
    if array.dtype != np.float64:
        raise TypeError("not real numbers")
    return array


def _is_array_like(value):
    return isinstance(value, np.ndarray) or (hasattr(value, "detach") and hasattr(value, "clone"))


def _snapshot(value):
    if value is None:
        return None
    return value.detach().clone() if hasattr(value, "detach") else np.array(value, copy=True)


def _unchanged(value, snapshot):
    try:
        return np.array_equal(_as_float_array(value), _as_float_array(snapshot), equal_nan=True)
    except Exception:
        return False


def _describe(value):
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    kind = type(value)
    return f"{kind.__module__}.{kind.__qualname__}" if kind.__module__ not in ("builtins",) else kind.__name__


def _raised(index, error, during=None):
    message = " ".join(str(error).split())[:MESSAGE_LIMIT]
    event = {"call": index, "what": "raised", "type": type(error).__name__, "message": message}
    if during:
        event["during"] = during
    return event


# ---- the sandbox's side: cases and outputs as files -----------------------------------------------------

def save_cases(directory, cases):
    """Write ``cases`` to ``directory``/cases.json and cases.npz (array names prefixed with the case number)."""
    from pathlib import Path

    directory = Path(directory)
    specs, arrays = [], {}
    for number, (spec, case_arrays) in enumerate(cases):
        specs.append(spec)
        arrays.update({f"{number}/{name}": np.asarray(array, dtype=float) for name, array in case_arrays.items()})
    (directory / "cases.json").write_text(json.dumps(specs))
    np.savez(directory / "cases.npz", **arrays)


def load_cases(directory):
    """The cases ``save_cases`` wrote."""
    from pathlib import Path

    directory = Path(directory)
    specs = json.loads((directory / "cases.json").read_text())
    cases = [(spec, {}) for spec in specs]
    with np.load(directory / "cases.npz", allow_pickle=False) as stored:
        for key in stored.files:
            number, name = key.split("/", 1)
            cases[int(number)][1][name] = stored[key]
    return cases


def _main(cases_dir, code_path, out_dir, name):
    """Execute the learner's code, call ``name`` on every case, write outputs.npz and events.json."""
    from pathlib import Path

    out_dir = Path(out_dir)
    cases = load_cases(cases_dir)
    namespace = {"__name__": "__learner__"}
    source = Path(code_path).read_text(encoding="utf-8")
    events = []
    try:
        exec(compile("import math\nimport numpy as np\nimport torch\n", "<preamble>", "exec"), namespace)
        exec(compile(source, "<your exercise cell>", "exec"), namespace)
    except BaseException as error:  # SystemExit and KeyboardInterrupt from a learner's cell included
        events.append({"case": -1, **_raised(-1, error, during="running your exercise cell"),
                       "trace": traceback.format_exc(limit=-3)[-2000:]})
    candidate = namespace.get(name)
    outputs = {}
    if not events and not callable(candidate):
        events.append({"case": -1, "call": -1, "what": "missing",
                       "message": f"the cell does not define a function called {name}"})
    if not events:
        for number, case in enumerate(cases):
            try:
                case_outputs, case_events = run(candidate, case)
            except BaseException as error:  # the harness itself broken by the learner's code
                case_outputs, case_events = {}, [_raised(-1, error, during="calling your function")]
            outputs.update({f"{number}/{key}": value for key, value in case_outputs.items()})
            events.extend({"case": number, **event} for event in case_events)
    np.savez(out_dir / "outputs.npz", **outputs)
    (out_dir / "events.json").write_text(json.dumps(events, default=str))


if __name__ == "__main__":
    _main(*sys.argv[1:5])
