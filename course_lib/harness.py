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
- ``"model"``: like ``"function"``, for functions that take or return small torch models. An argument may
  also be ``{"model": network}`` or ``{"models": [network, ...]}`` (a list), where ``network`` is
  ``{"layers": [[layer, *arguments], ...], "state": prefix, "dtype": "float64", "training": true}``: the model
  ``torch.nn.Sequential(torch.nn.<layer>(*arguments), ...)`` in that dtype (JSON lists among the arguments are
  passed as lists); a layer may be named, ``{"name": "head", "layer": [layer, *arguments]}``, or be a named
  Sequential of its own, ``{"name": "body", "layers": [...]}``, reachable as ``model.head`` and ``model.body``
  (a network whose forward applies its parts in turn, as ``head(body(x))``); every entry of its state_dict set
  from the array ``"<prefix>/<key>"`` (weights, biases, batch norm's running statistics), each parameter's
  ``.grad`` from ``"<prefix>/<name>.grad"`` when that array is there (None otherwise), and left in training
  (``"training": true``) or evaluation mode. ``{"array": name}`` may carry ``"dtype"``. Each call runs with
  torch's random generator seeded (``call["seed"]``, default the call's number) inside
  ``torch.random.fork_rng``, so that dropout left on in training mode drops the same units at every run and
  the caller's generator is left as it was. ``spec["returns"]``: ``"model"`` (every entry of the returned
  model's state_dict becomes ``"<i>.result.<key>"``) or ``"array"`` (``"<i>.result"``), or a list of these and
  ``"parameters"`` for a function that returns a tuple (its values named ``result0``, ``result1``, ...): a
  ``"parameters"`` value is what an optimizer is given, any iterable of tensors, which becomes
  ``"<i>.<result>:includes:<name>"`` (1 or 0) for each parameter of the first model returned and
  ``"<i>.<result>:others"`` (how many of the tensors are none of them). ``spec["observe"]`` adds, for every
  model returned: ``"requires_grad"`` (``"<i>.<result>:requires_grad:<parameter>"``, 1 or 0) and ``"modes"``
  (``"<i>.<result>:training:<layer>"`` for each layer without sublayers: containers' modes change nothing);
  a call with ``"inputs"`` (an array's name) also records ``"<i>.<result>:outputs"``, what a float64 copy of
  the model computes on them in its own modes. What a call changes in its arguments is an event ``{"what":
  "modified", "argument": "argument k", "changed": kind, "item": which}``, one per kind of change, in this
  order: ``"items"`` (a list's items replaced, added, removed or reordered), ``"parameters"``, ``"buffers"``,
  ``"gradients"``, ``"requires_grad"``, ``"mode"`` (train/eval) or ``"values"`` (a tensor's); ``item`` names
  the first thing changed, e.g. ``"1.running_mean"`` or ``"[2].0.weight"`` (the third model of a list).
  Whether a change is a mistake is for the judge to say.

``spec["backend"]`` is ``"numpy"`` or ``"torch"``: with torch, every array is handed over as a float64 tensor
(unless its argument says another dtype) and a tensor must come back. Cases of kind ``"model"`` are torch's.

Run as a script (``python harness.py CASES_DIR CODE_FILE OUT_DIR NAME``) it executes the learner's code from
CODE_FILE (after ``import math, numpy as np, torch``), calls the function NAME on every case saved in CASES_DIR
and writes OUT_DIR/outputs.npz and OUT_DIR/events.json: what the grader's sandbox runs.
"""

import copy
import json
import sys
import traceback
from collections import OrderedDict

import numpy as np

__all__ = ["MESSAGE_LIMIT", "load_cases", "run", "run_all", "save_cases"]

MESSAGE_LIMIT = 300  # characters kept of an exception's message


def run(candidate, case):
    """Call ``candidate`` as ``case`` says; return (outputs, events)."""
    spec, arrays = case
    calls = {"rule": _run_rule, "function": _run_function, "model": _run_model}[spec["kind"]]
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


# ---- functions of torch models --------------------------------------------------------------------------

# The kinds of change to an argument, in the order they are reported.
CHANGES = ("items", "parameters", "buffers", "gradients", "requires_grad", "mode", "values")


def _run_model(function, spec, arrays, backend):
    torch = backend.torch
    outputs, events = {}, []
    with torch.random.fork_rng(devices=[]):
        for index, call in enumerate(spec["calls"]):
            torch.manual_seed(call.get("seed", index))
            arguments = [_model_argument(argument, arrays, backend) for argument in call["args"]]
            before = [_state(argument) for argument in arguments]
            try:
                result = function(*arguments)
            except BaseException as error:
                events.append(_raised(index, error))
                continue
            for position, (argument, state) in enumerate(zip(arguments, before, strict=True)):
                events.extend({"call": index, "what": "modified", "argument": f"argument {position + 1}",
                               "changed": kind, "item": item} for kind, item in _changes(state, _state(argument)))
            _record_results(outputs, events, index, call, spec, arrays, result, backend)
    return outputs, events


def _record_results(outputs, events, index, call, spec, arrays, result, backend):
    """What a call of a function of models returned, as ``spec["returns"]`` says it is."""
    returns = spec.get("returns", "array")
    if isinstance(returns, str):
        kinds, values = [returns], [result]
    elif isinstance(result, tuple | list) and len(result) == len(returns):
        kinds, values = returns, list(result)
    else:
        events.append({"call": index, "what": "returned", "got": _describe(result),
                       "expected": f"a tuple of {len(returns)}: ({', '.join(returns)})"})
        return
    names = ["result"] if isinstance(returns, str) else [f"result{k}" for k in range(len(returns))]
    model = next((value for kind, value in zip(kinds, values, strict=True)
                  if kind == "model" and isinstance(value, backend.torch.nn.Module)), None)
    for kind, name, value in zip(kinds, names, values, strict=True):
        if kind == "model":
            _record_model(outputs, events, index, value, backend, name)
            if isinstance(value, backend.torch.nn.Module):
                _observe_model(outputs, events, index, call, spec, arrays, value, backend, name)
        elif kind == "parameters":
            _record_parameters(outputs, events, index, name, value, model, backend)
        else:
            _record(outputs, events, index, name, value, backend, None)


def _model_argument(argument, arrays, backend):
    if "model" in argument:
        return _build_model(argument["model"], arrays, backend.torch)
    if "models" in argument:
        return [_build_model(network, arrays, backend.torch) for network in argument["models"]]
    if "array" in argument:
        return backend.array(arrays[argument["array"]], argument.get("dtype", "float64"))
    return _argument(argument, arrays, backend)


def _build_model(network, arrays, torch):
    """The torch.nn.Sequential that ``network`` describes, its state and gradients from ``arrays``."""
    dtype = getattr(torch, network.get("dtype", "float64"))
    model = _sequential(network["layers"], torch)
    model.to(dtype)
    prefix = network["state"]
    model.load_state_dict({key: torch.tensor(np.asarray(arrays[f"{prefix}/{key}"]), dtype=value.dtype)
                           for key, value in model.state_dict().items()})
    for name, parameter in model.named_parameters():
        gradient = arrays.get(f"{prefix}/{name}.grad")
        parameter.grad = None if gradient is None else torch.tensor(np.asarray(gradient), dtype=dtype)
    model.train(network.get("training", True))
    return model


def _sequential(layers, torch):
    """torch.nn.Sequential of ``layers``: [layer, *arguments], or named, {"name": ..., "layer": [...]} or
    {"name": ..., "layers": [...]} (a Sequential of its own)."""
    parts = []
    for position, entry in enumerate(layers):
        if isinstance(entry, dict):
            part = _sequential(entry["layers"], torch) if "layers" in entry else _layer(entry["layer"], torch)
            parts.append((entry["name"], part))
        else:
            parts.append((str(position), _layer(entry, torch)))
    return torch.nn.Sequential(OrderedDict(parts))


def _layer(entry, torch):
    name, *arguments = entry
    layer = getattr(torch.nn, name, None)
    if not (isinstance(layer, type) and issubclass(layer, torch.nn.Module)):
        raise ValueError(f"{name!r} is not a torch.nn layer")
    return layer(*arguments)


def _state(value):
    """(kind of change, item) -> a copy of everything a call could change in an argument: a model's
    parameters, buffers, gradients, requires_grad flags and train/eval modes; a list's items (and theirs); a
    tensor's values."""
    if isinstance(value, list):
        state = {("items", ""): tuple(value)}  # the items themselves: replacing one is a change
        for number, item in enumerate(value):
            state.update({(kind, f"[{number}]" + (f".{name}" if name else "")): copied
                          for (kind, name), copied in _state(item).items()})
        return state
    if hasattr(value, "named_parameters") and hasattr(value, "named_buffers"):  # a torch model
        state = {}
        for name, parameter in value.named_parameters():
            state["parameters", name] = _snapshot(parameter)
            state["gradients", name] = _snapshot(parameter.grad)
            state["requires_grad", name] = parameter.requires_grad
        state.update({("buffers", name): _snapshot(buffer) for name, buffer in value.named_buffers()})
        state.update({("mode", name): module.training for name, module in value.named_modules()})
        return state
    return {("values", ""): _snapshot(value)} if _is_array_like(value) else {}


def _changes(before, after):
    """[(kind, first item changed)] between two ``_state``s, one per kind of change, in the order of CHANGES."""
    first = {}
    for key in [*before, *(key for key in after if key not in before)]:
        if key not in before or key not in after or not _same(before[key], after[key]):
            first.setdefault(key[0], key[1])
    return [(kind, first[kind]) for kind in CHANGES if kind in first]


def _same(then, now):
    if then is None or now is None:  # a gradient that was not there, or is gone
        return then is None and now is None
    if isinstance(then, bool):  # a requires_grad flag, a train/eval mode
        return then == now
    if isinstance(then, tuple):  # a list's items
        return len(then) == len(now) and all(old is new for old, new in zip(then, now, strict=True))
    return _unchanged(now, then)


def _record_model(outputs, events, index, value, backend, name="result"):
    """Store every entry of a returned model's state_dict as outputs["<index>.<name>.<key>"]."""
    if not isinstance(value, backend.torch.nn.Module):
        events.append({"call": index, "what": "type", "output": name, "got": _describe(value),
                       "expected": "a torch model (a torch.nn.Module)"})
        return
    for key, tensor in value.state_dict().items():
        _record(outputs, events, index, f"{name}.{key}", tensor, backend, None)


def _observe_model(outputs, events, index, call, spec, arrays, model, backend, name):
    """What ``spec["observe"]`` and the call's ``"inputs"`` ask to see of a returned model besides its state."""
    torch, prefix, observe = backend.torch, f"{index}.{name}", spec.get("observe", ())
    try:
        if "requires_grad" in observe:
            for key, parameter in model.named_parameters():
                outputs[f"{prefix}:requires_grad:{key}"] = np.array(float(parameter.requires_grad))
        if "modes" in observe:
            for key, layer in model.named_modules():
                if next(layer.children(), None) is None:
                    outputs[f"{prefix}:training:{key}"] = np.array(float(layer.training))
        if "inputs" in call:
            torch.manual_seed(call.get("seed", index))  # dropout left on: the same units at every run
            with torch.no_grad():
                computed = copy.deepcopy(model).double()(torch.tensor(np.asarray(arrays[call["inputs"]],
                                                                                 dtype=float)))
            outputs[f"{prefix}:outputs"] = _as_float_array(computed)
    except BaseException as error:  # a learner's layer may raise anything, in its forward or when copied
        events.append(_raised(index, error, during="running the model it returned"))


def _record_parameters(outputs, events, index, name, value, model, backend):
    """What a function hands an optimizer: which parameters of the returned ``model`` are among the tensors
    of ``value``, and how many of those tensors are none of them."""
    try:
        listed = list(value)
    except Exception:  # not iterable, or a generator that raised
        listed = None
    if listed is None or not all(isinstance(item, backend.torch.Tensor) for item in listed):
        events.append({"call": index, "what": "type", "output": name, "got": _describe(value),
                       "expected": "a list of parameters (tensors), e.g. list(model.head.parameters())"})
        return
    owned = dict(model.named_parameters()) if model is not None else {}
    for key, parameter in owned.items():
        outputs[f"{index}.{name}:includes:{key}"] = np.array(float(any(item is parameter for item in listed)))
    outputs[f"{index}.{name}:others"] = np.array(float(sum(not any(item is parameter for parameter in
                                                                    owned.values()) for item in listed)))


# ---- turning values into float arrays -------------------------------------------------------------------

class _Numpy:
    name = "numpy"

    @staticmethod
    def array(values, dtype="float64"):
        return np.array(values, dtype=dtype)

    @staticmethod
    def is_native(value):
        return isinstance(value, np.ndarray)


class _Torch:
    name = "torch"

    def __init__(self):
        import torch

        self.torch = torch

    def array(self, values, dtype="float64"):
        return self.torch.tensor(np.asarray(values, dtype=float), dtype=getattr(self.torch, dtype))

    def is_native(self, value):
        return isinstance(value, self.torch.Tensor)


def _backend(spec):
    return _Torch() if spec.get("backend") == "torch" or spec["kind"] == "model" else _Numpy()


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


def _as_float_array(value, copy=True):
    """``value`` as a float64 numpy array: a copy of its own, or (``copy=False``, to compare) the value itself
    where it already is one."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu().double().numpy()
    array = np.array(value, dtype=np.float64) if copy else np.asarray(value, dtype=np.float64)
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
        return np.array_equal(_as_float_array(value, copy=False), _as_float_array(snapshot, copy=False),
                              equal_nan=True)
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
