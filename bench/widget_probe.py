"""Kernel-side widget latency probe: bench.py sends this file's source into the kernel that has just run a
notebook and calls ``probe()``, which prints one JSON line (prefixed with ``MARKER``).

For every course widget the notebook built (an object from ``course_lib.widgets`` with ``controls`` and an
``image``), and every visible control: set the control to ``changes`` values across its range (log-spaced for
a log slider, every option in turn for a dropdown) and time each assignment. The observer runs synchronously
inside the assignment, so that time is the whole kernel-side update: the callback's compute, the redraw,
the PNG encoding and handing the new PNG to the Image (which queues the comm message to the browser).
Each change is also split into compute / draw / encode / rest by timing wrappers around the widget's
methods, and a control whose median misses the budget is profiled with cProfile.
"""

import cProfile
import gc
import io
import json
import pstats
import statistics
import time

MARKER = "WIDGET-PROBE-JSON:"
COMPUTE_METHODS = ("_run", "_rates_and_losses", "_build_landscape")


def _course_widgets():
    found = []
    for obj in gc.get_objects():
        try:
            module = type(obj).__module__
        except Exception:  # noqa: BLE001 (gc returns every kind of object)
            continue
        if module == "course_lib.widgets" and isinstance(getattr(obj, "controls", None), dict) \
                and hasattr(obj, "image") and hasattr(obj, "widget"):
            found.append(obj)
    return found


def _values(control, changes):
    import ipywidgets as W
    import numpy as np

    current = control.value
    if isinstance(control, (W.Dropdown, W.SelectionSlider)):  # a choice among options, shown either way
        options = [value for _, value in control._options_full] if hasattr(control, "_options_full") \
            else list(control.options)
        if len(options) < 2:
            return []
        start = options.index(current) if current in options else 0
        return [options[(start + 1 + i) % len(options)] for i in range(changes)]
    if isinstance(control, W.FloatLogSlider):
        values = [float(v) for v in control.base ** np.linspace(control.min, control.max, changes)]
    elif isinstance(control, W.IntSlider):
        values = sorted({int(round(v)) for v in np.linspace(control.min, control.max, changes)})
    elif isinstance(control, W.FloatSlider):
        values = [float(v) for v in np.linspace(control.min, control.max, changes)]
    else:
        return []
    # Start next to the current value's far side, so that the first change is a real change.
    return [v for v in values if v != current]


def _kind(control):
    return type(control).__name__


class _Timers:
    """Timing wrappers installed as instance attributes (removed afterwards)."""

    def __init__(self, widget):
        self.totals = {"compute": 0.0, "draw": 0.0, "encode": 0.0}
        self.installed = []
        for name in COMPUTE_METHODS:
            if hasattr(widget, name):
                self._wrap(widget, name, "compute")
        picture = getattr(widget, "picture", None)
        if picture is not None:
            for name, part in (("update", "draw"), ("png", "encode")):
                if hasattr(picture, name):
                    self._wrap(picture, name, part)

    def _wrap(self, owner, name, part):
        original = getattr(owner, name)
        totals = self.totals

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                totals[part] += time.perf_counter() - start

        setattr(owner, name, timed)
        self.installed.append((owner, name))

    def take(self):
        taken = dict(self.totals)
        for key in self.totals:
            self.totals[key] = 0.0
        return taken

    def remove(self):
        for owner, name in self.installed:
            try:
                delattr(owner, name)
            except AttributeError:
                pass


def _profile(control, values, top):
    profiler = cProfile.Profile()
    for value in values:
        profiler.enable()
        control.value = value
        profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    rows = []
    # The course's own functions by cumulative time (where in the widget), then everything by own time (what).
    for sort, keep in (("cumulative", lambda filename: "course_lib" in filename), ("tottime", lambda _: True)):
        chosen = sorted((item for item in stats.stats.items() if keep(item[0][0])),
                        key=lambda item: -item[1][3 if sort == "cumulative" else 2])[:top]
        for (filename, line, name), (_cc, ncalls, tottime, cumtime, _callers) in chosen:
            rows.append({"sort": sort, "function": f"{_short(filename)}:{line}({name})",
                         "calls": ncalls / len(values), "tottime_ms": round(tottime * 1000 / len(values), 3),
                         "cumtime_ms": round(cumtime * 1000 / len(values), 3)})
    return rows


def _short(filename):
    for marker in ("site-packages/", "/course_lib/"):
        if marker in filename:
            return ("course_lib/" if marker == "/course_lib/" else "") + filename.split(marker)[-1]
    return filename


def probe(changes=20, budget_s=0.05, profile_top=14, model_cells=None):
    """Measure every widget; print MARKER + JSON. ``model_cells``: model_id -> notebook cell index."""
    model_cells = model_cells or {}
    results = []
    for widget in _course_widgets():
        model_id = getattr(widget.widget, "model_id", None)
        entry = {"class": type(widget).__name__, "model_id": model_id, "cell": model_cells.get(model_id),
                 "runners": list(getattr(widget, "runners", {}) or {}),
                 "landscape": getattr(getattr(widget, "landscape", None), "name", None), "controls": []}
        for name, control in list(widget.controls.items()):
            if getattr(control.layout, "display", None) == "none":
                entry["controls"].append({"control": name, "skipped": "hidden"})
                continue
            values = _values(control, changes)
            if not values:
                entry["controls"].append({"control": name, "skipped": f"cannot sweep a {_kind(control)}"})
                continue
            original = control.value
            timers = _Timers(widget)
            times, parts, changed = [], [], 0
            try:
                for value in values:
                    before = widget.image.value
                    start = time.perf_counter()
                    control.value = value
                    times.append(time.perf_counter() - start)
                    parts.append(timers.take())
                    changed += widget.image.value != before
            finally:
                timers.remove()
            median = statistics.median(times)
            row = {"control": name, "kind": _kind(control), "changes": len(times), "pictures_changed": changed,
                   "median_ms": round(median * 1000, 2), "max_ms": round(max(times) * 1000, 2),
                   "min_ms": round(min(times) * 1000, 2),
                   "parts_median_ms": {part: round(statistics.median(p[part] for p in parts) * 1000, 2)
                                       for part in parts[0]},
                   "range": [_plain(values[0]), _plain(values[-1])]}
            row["parts_median_ms"]["rest"] = round(
                statistics.median(t - sum(p.values()) for t, p in zip(times, parts, strict=True)) * 1000, 2)
            if median > budget_s:
                row["profile"] = _profile(control, values[: max(4, len(values) // 2)], profile_top)
            control.value = original
            entry["controls"].append(row)
        if hasattr(widget, "each_at_its_best"):
            entry["best_button_ms"] = _time_the_search(widget)
        results.append(entry)
    print(MARKER + json.dumps(results))


def _time_the_search(widget):
    """One click on a race's "each at its best on this landscape", with nothing cached (the search itself, as a
    learner's first click meets it), then back to the race's values. Milliseconds."""
    from course_lib import tuning

    tuning._cache.clear()
    start = time.perf_counter()
    widget.each_at_its_best()
    elapsed = time.perf_counter() - start
    widget.reset()
    return round(elapsed * 1000, 1)


def _plain(value):
    return value if isinstance(value, (int, float, str)) else str(value)
