"""Widget builders: sliders that drive update rules on landscapes, so that a notebook cell reads like a sentence.

    race({"SGD": optim.sgd, "momentum": optim.sgd_momentum}, landscape="Rosenbrock",
         controls=("learning_rate", "rho", "steps"), tuned=True)

A race is fair: every method has sliders of its own for the hyperparameters it uses (its learning rate, and
its ρ or β where it has them), and one click sets each to its best on the landscape shown
(``course_lib.tuning``). The legend and the line of text under the picture say which values each method ran
with, what loss it reached and where it diverged.

Every slider's range is a valid range for its hyperparameter, so dragging one to an end gives a picture: a run
that blows up is drawn up to the step where it diverged and the plot says "diverged at step k"; a rule that
raises (a learner's unfinished exercise, say) is named on the plot with its error, never with a traceback.
"""

import html
import math
import warnings

import ipywidgets as W
import numpy as np

from course_lib import landscapes as L
from course_lib import optim, schedules, tuning
from course_lib.checks import NotReady, YourFunction
from course_lib.plots import LOSS_FLOOR, RacePicture, SchedulePicture
from course_lib.trajectories import run

__all__ = ["CONTROLS", "HYPERPARAMETERS", "AugmentationExplorer", "DropoutExplorer", "Method", "Race",
           "ScheduleExplorer", "augmentation_explorer", "dropout_explorer", "race", "schedule_explorer"]

_STYLE = {"description_width": "initial"}


def _layout(width="300px"):
    """A layout of its own for every control: a shared one would hide them all when one is hidden."""
    return W.Layout(width=width)


def _log_slider(description, value, low, high, step=0.05, fmt=".2e", width="300px"):
    return W.FloatLogSlider(value=value, base=10, min=math.log10(low), max=math.log10(high), step=step,
                            description=description, readout_format=fmt, continuous_update=False,
                            style=_STYLE, layout=_layout(width))


def _slider(description, value, low, high, step, fmt=".3f", width="300px"):
    return W.FloatSlider(value=value, min=low, max=high, step=step, description=description,
                         readout_format=fmt, continuous_update=False, style=_STYLE, layout=_layout(width))


# name -> (builder of the control given an initial value and, optionally, a description; the default value).
# The first five are hyperparameters: each method of a race gets sliders of its own for those it uses.
CONTROLS = {
    "learning_rate": (lambda v, d="learning rate α", **k: _log_slider(d, v, 1e-4, 10.0, 0.05, ".3g", **k), 1e-2),
    "rho": (lambda v, d="ρ (momentum)", **k: _slider(d, v, 0.0, 0.99, 0.01, ".3f", **k), 0.9),
    "decay_rate": (lambda v, d="decay rate", **k: _slider(d, v, 0.0, 0.999, 0.001, ".3f", **k), 0.99),
    "beta1": (lambda v, d="β1", **k: _slider(d, v, 0.0, 0.99, 0.01, ".3f", **k), 0.9),
    "beta2": (lambda v, d="β2", **k: _slider(d, v, 0.0, 0.9999, 0.0001, ".4f", **k), 0.999),
    "kappa": (lambda v, d="condition number κ": _log_slider(d, v, 1.0, 1000.0, 0.05, ".1f"), 10.0),
    "steps": (lambda v, d="steps": W.IntSlider(value=v, min=1, max=500, step=1, description=d,
                                                continuous_update=False, style=_STYLE, layout=_layout()), 100),
    "gradient_noise": (lambda v, d="gradient noise σ": _slider(d, v, 0.0, 2.0, 0.01, ".2f"), 0.0),
    "start_x": (lambda v, d="start x": _slider(d, v, -1.0, 1.0, 0.01, ".2f"), None),
    "start_y": (lambda v, d="start y": _slider(d, v, -1.0, 1.0, 0.01, ".2f"), None),
    # The start's y on a log scale, down to 1e-9: how close to the saddle's line y = 0 a run starts.
    "start_offset": (lambda v, d="start y (log scale)": _log_slider(d, v, 1e-9, 1.0, 0.25, ".0e"), 1e-3),
    "landscape": (lambda v, d="landscape": W.Dropdown(options=list(L.LANDSCAPES), value=v, description=d,
                                                       style=_STYLE, layout=_layout()),
                  "ill-conditioned quadratic"),
}
HYPERPARAMETERS = ("learning_rate", "rho", "decay_rate", "beta1", "beta2")
SYMBOLS = {"learning_rate": "α", "rho": "ρ", "decay_rate": "decay rate", "beta1": "β1", "beta2": "β2"}


class Method:
    """A method that needs the whole landscape, not just gradients (Newton's Hessian, L-BFGS's line search),
    as a racer: ``Method(second_order.newton)`` or ``Method(second_order.lbfgs_on_landscape, "max_iter")``.

    It is called as ``function(landscape, start=..., <steps_argument>=steps, **fixed)`` and returns a
    Trajectory; it has no hyperparameter sliders.
    """

    def __init__(self, function, steps_argument="steps", **fixed):
        self.function, self.steps_argument, self.fixed = function, steps_argument, fixed
        self.__name__ = getattr(function, "__name__", "method")

    def __call__(self, landscape, start, steps):
        return self.function(landscape, start=start, **{self.steps_argument: steps}, **self.fixed)


class _Group:
    """The runners that share one set of hyperparameter sliders: one method, or a learner's rule and the
    reference it is meant to match (the same rule name and configuration)."""

    def __init__(self, labels, rule, config, names, values):
        self.labels, self.rule, self.config, self.names, self.values = labels, rule, config, names, values
        self.sliders = {}

    @property
    def title(self):
        return " & ".join(self.labels)

    def describe(self):
        """'α=1.98, ρ=0.669': the values this group runs with."""
        return ", ".join(f"{SYMBOLS[name]}={_number(self.values[name])}" for name in self.names)


class Race:
    """Several update rules racing from the same start on the same landscape, under sliders.

    ``runners``: label -> rule, label -> (rule, config), label -> ``Method``, or label -> message (a runner
    that cannot run yet, e.g. "finish Exercise 2.2 first"; the message is shown on the plot). A (rule, config)
    pair's config starts that rule's sliders at its values; entries without a slider stay fixed.
    ``controls``: names from ``CONTROLS``. A hyperparameter among them (``HYPERPARAMETERS``) gives every method
    that uses it a slider of its own (a learner's rule shares the sliders of the reference of the same name);
    the others (landscape, κ, steps, start, noise) are shared.
    ``values``: starting values; a hyperparameter's may be one number for every method or a dict label ->
    number. A method without a starting value starts at its rule's default (``optim.DEFAULTS``).
    ``tuned``: start every method at its best on the landscape (``course_lib.tuning``; the button "each at its
    best on this landscape" does the same later).
    """

    def __init__(self, runners, landscape="ill-conditioned quadratic", controls=("learning_rate",),
                 steps=100, tuned=False, **values):
        unknown = [name for name in (*controls, *values) if name not in CONTROLS]
        if unknown:
            raise ValueError(f"controls must be among {sorted(CONTROLS)}, got {unknown}")
        self.runners = {label: _as_runner(entry) for label, entry in runners.items()}
        offered = [name for name in controls if name in HYPERPARAMETERS]
        self.groups = _groups(self.runners, offered, values)
        self.values = {name: default for name, (_, default) in CONTROLS.items() if name not in HYPERPARAMETERS}
        self.values.update(landscape=landscape, steps=steps,
                           **{name: value for name, value in values.items() if name not in HYPERPARAMETERS})
        self.landscape = self._build_landscape()
        for name, coordinate in zip(("start_x", "start_y"), self.landscape.start[:2], strict=True):
            if self.values[name] is None:
                self.values[name] = float(coordinate)
        self._quiet = False
        self.controls = {name: CONTROLS[name][0](self.values[name]) for name in controls
                         if name not in HYPERPARAMETERS}
        self._fit_start_sliders()
        if tuned:
            self._tune()
        for group in self.groups:
            for name in group.names:
                description = f"{group.title}: {SYMBOLS[name]}"
                width = f"{max(300, 7 * len(description) + 210)}px"
                group.sliders[name] = CONTROLS[name][0](group.values[name], description, width=width)
                self.controls[f"{name}[{group.title}]"] = group.sliders[name]
        self._start_values = {group.title: dict(group.values) for group in self.groups}
        self.tuned_for = self._setting() if tuned else None
        self.picture = RacePicture(self.runners)
        self.image = W.Image(format="png", layout=W.Layout(width="auto"))
        self.summary = W.HTML(layout=W.Layout(width="auto"))
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.widget = W.VBox(self._rows() + [self.image, self.summary])
        self.results, self._cache = {}, {}
        self.refresh()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def _rows(self):
        shared = [control for name, control in self.controls.items() if name in CONTROLS]
        rows = [W.GridBox(shared, layout=W.Layout(grid_template_columns="repeat(3, 310px)"))] if shared else []
        rows += [W.HBox(list(group.sliders.values())) for group in self.groups if group.sliders]
        if any(group.sliders for group in self.groups):
            self.best_button = W.Button(description="each at its best on this landscape", icon="search",
                                        tooltip="search each method's hyperparameters for the lowest loss soonest "
                                                "on this landscape, from this start, in this many steps",
                                        layout=W.Layout(width="290px"))
            self.reset_button = W.Button(description="back to the notebook's values",
                                         layout=W.Layout(width="230px"))
            self.best_button.on_click(lambda _: self.each_at_its_best())
            self.reset_button.on_click(lambda _: self.reset())
            rows.append(W.HBox([self.best_button, self.reset_button]))
        return rows

    # ----------------------------------------------------------------------------------------------------
    @property
    def hyperparameters(self):
        """label -> the hyperparameter values that runner races with now (fixed ones included)."""
        return {label: {**group.config, **group.values} for group in self.groups for label in group.labels}

    def slider(self, name, label):
        """The slider of hyperparameter ``name`` for the runner ``label``."""
        for group in self.groups:
            if label in group.labels and name in group.sliders:
                return group.sliders[name]
        raise KeyError(f"{label!r} has no {name} slider")

    def each_at_its_best(self):
        """Set every method's sliders to its best on the current landscape, start and steps, and redraw."""
        self._tune()
        self._set_sliders(lambda group: group.values)
        self.tuned_for = self._setting()
        self.refresh()

    def reset(self):
        """Back to the values the race started with."""
        self._set_sliders(lambda group: self._start_values[group.title])
        self.refresh()

    def _set_sliders(self, values_of):
        self._quiet = True
        try:
            for group in self.groups:
                group.values = dict(values_of(group))
                for name, slider in group.sliders.items():
                    slider.value = group.values[name]
        finally:
            self._quiet = False

    def _tune(self):
        start = self._start()
        for group in self.groups:
            if not group.names:
                continue
            rule = group.rule
            if isinstance(rule, YourFunction):  # a learner's rule is tuned as the reference of its name
                rule = optim.RULES.get(rule.__name__, rule)
            try:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    best = tuning.best_hyperparameters(rule, self.landscape, group.names, start=start,
                                                       steps=self.values["steps"], config=group.config,
                                                       gradient_noise=self.values["gradient_noise"])
            except NotReady:
                continue
            group.values.update({name: _clip(name, value) for name, value in best.items()})

    def _setting(self):
        return (self.landscape.name, tuple(self._start()), self.values["steps"], self.values["gradient_noise"],
                tuple(tuple(sorted(group.values.items())) for group in self.groups))

    def _start(self):
        y = self.values["start_offset"] if "start_offset" in self.controls else self.values["start_y"]
        return np.array([self.values["start_x"], y], dtype=float)

    def refresh(self):
        """Run every rule with the current values and redraw the picture and the summary."""
        start = self._start()
        group_of = {label: group for group in self.groups for label in group.labels}
        self.results = {}
        for label, runner in self.runners.items():
            if isinstance(runner, str):
                self.results[label] = runner
                continue
            group = group_of.get(label)
            config = {**group.config, **group.values} if group is not None else dict(runner[1])
            self.results[label] = self._result(label, runner[0], config, start)
        names = {label: self._legend_name(label, "\n") for label in self.runners}
        matches = self._matches(_matching(self.results))
        notes = [f"{match}: the same path" for match in matches]
        self.picture.update(self.landscape, self.results, self.values["steps"], start, names=names, notes=notes)
        self.image.value = self.picture.png()
        self.summary.value = self._summary(matches)

    def _result(self, label, rule, config, start):
        """The run of one runner; an unchanged run of a library rule is reused (a learner's may change)."""
        key = (self.landscape.name, tuple(start), self.values["steps"], self.values["gradient_noise"],
               tuple(sorted(config.items())))
        cached = self._cache.get(label)
        if cached is not None and cached[0] == key and not isinstance(rule, YourFunction):
            return cached[1]
        result = self._run(rule, config, start)
        self._cache[label] = (key, result)
        return result

    def _run(self, rule, config, start):
        try:
            if isinstance(rule, YourFunction):  # the learner's definition now, once for the whole run
                rule = rule.current()
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                if isinstance(rule, Method):
                    return rule(self.landscape, start, self.values["steps"])
                return run(rule, self.landscape, start=start, steps=self.values["steps"], config=config,
                           gradient_noise=self.values["gradient_noise"])
        except NotReady as not_ready:  # a learner's rule whose exercise does not pass yet
            return str(not_ready)
        except NotImplementedError:
            return f"{getattr(rule, '__name__', 'this rule')} is not written yet"
        except Exception as error:  # a learner's rule may raise anything: name it, never a traceback
            return f"{type(error).__name__}: {error}"[:160]

    def _legend_name(self, label, separator=" "):
        group = next((group for group in self.groups if label in group.labels), None)
        described = group.describe() if group is not None else ""
        return f"{label}{separator}({described})" if described else label

    def _matches(self, matches):
        """'your nesterov matches the reference': a learner's rule named first."""
        said = []
        for later, earlier in matches:
            rules = {label: runner[0] for label, runner in self.runners.items() if not isinstance(runner, str)}
            first, second = (earlier, later) if isinstance(rules.get(earlier), YourFunction) else (later, earlier)
            other = "the reference" if second == "reference" else second
            said.append(f"{first} matches {other}")
        return said

    def _summary(self, matches):
        """One line: where each method got to (loss reached or the step it diverged at), with its values."""
        steps = self.values["steps"]
        if self.tuned_for is not None and self.tuned_for == self._setting():
            head = "Each at its best on this landscape (searched)"
        else:
            head = "With the values on the sliders"
        parts = []
        for label, result in self.results.items():
            name = self._legend_name(label)
            if isinstance(result, str):
                parts.append(f"{name}: {result}")
            elif result.diverged:
                parts.append(f"{name}: diverged at step {result.diverged_at}")
            else:
                gap = float(result.losses[-1] - self.landscape.minimum_value)
                reached = f"below {LOSS_FLOOR:.0e}" if gap < LOSS_FLOOR else f"{gap:.1e}"
                parts.append(f"{name}: f − f* = {reached}")
        parts += matches
        text = f"{head}, after {steps} steps on {self.landscape.name}: " + "; ".join(parts) + "."
        return f'<div class="course-race-summary" style="line-height:1.4">{html.escape(text)}</div>'

    def _on_change(self, change):
        if self._quiet:
            return
        owner = change["owner"]
        for group in self.groups:
            for name, slider in group.sliders.items():
                if slider is owner:
                    group.values[name] = change["new"]
                    self.refresh()
                    return
        name = next(n for n, control in self.controls.items() if control is owner)
        self.values[name] = change["new"]
        if name in ("landscape", "kappa"):
            previous = self.landscape
            self.landscape = self._build_landscape()
            if name == "landscape" or previous.start != self.landscape.start:
                self.values["start_x"], self.values["start_y"] = map(float, self.landscape.start[:2])
            self._fit_start_sliders()
        self.refresh()

    def _build_landscape(self):
        name = self.values["landscape"]
        params = {"kappa": self.values["kappa"]} if name == "ill-conditioned quadratic" else {}
        return L.make(name, **params)

    def _fit_start_sliders(self):
        """Keep the start sliders' ranges on the landscape's window, without triggering a refresh."""
        for name, limits in (("start_x", self.landscape.xlim), ("start_y", self.landscape.ylim)):
            control = self.controls.get(name)
            if control is None:
                continue
            low, high = float(limits[0]), float(limits[1])
            self._quiet = True
            try:
                # Widen first so that min <= max holds at every step, then narrow to the new window.
                control.min, control.max = min(low, control.min), max(high, control.max)
                control.value = float(np.clip(self.values[name], low, high))
                control.min, control.max, control.step = low, high, (high - low) / 200
            finally:
                self._quiet = False


def _as_runner(entry):
    if isinstance(entry, str):
        return entry
    if isinstance(entry, tuple):
        rule, config = entry
        return rule, dict(config or {})
    if callable(entry):  # a rule or a Method
        return entry, {}
    raise ValueError(f"a runner must be a rule, a (rule, config) pair or a message, got {entry!r}")


def _own_hyperparameters(rule, offered):
    """The hyperparameters among ``offered`` that ``rule`` uses: a library rule's (or a learner's rule's, by
    its exercise name) from optim.DEFAULTS; none for a Method; every offered one for a rule unknown here."""
    if isinstance(rule, Method):
        return []
    defaults = optim.DEFAULTS.get(getattr(rule, "__name__", None))
    return [name for name in offered if defaults is None or name in defaults]


def _groups(runners, offered, values):
    """The runners that share sliders, in order, with each one's starting values."""
    groups, by_key = [], {}
    for label, runner in runners.items():
        if isinstance(runner, str):
            continue
        rule, config = runner
        if isinstance(rule, Method):
            continue
        names = _own_hyperparameters(rule, offered)
        key = (getattr(rule, "__name__", id(rule)), tuple(sorted(config.items())))
        if key in by_key:
            by_key[key].labels.append(label)
            continue
        defaults = optim.DEFAULTS.get(getattr(rule, "__name__", None), {})
        start = {}
        for name in names:
            given = values.get(name)
            if isinstance(given, dict):
                given = given.get(label)
            for candidate in (config.get(name), given, defaults.get(name), CONTROLS[name][1]):
                if candidate is not None:
                    start[name] = _clip(name, float(candidate))
                    break
        fixed = {name: value for name, value in config.items() if name not in names}
        by_key[key] = _Group([label], rule, fixed, names, start)
        groups.append(by_key[key])
    unknown = [label for name in HYPERPARAMETERS if isinstance(values.get(name), dict)
               for label in values[name] if label not in runners]
    if unknown:
        raise ValueError(f"hyperparameter values given for unknown runners {unknown}; runners: {list(runners)}")
    return groups


_LIMITS = {"learning_rate": (1e-4, 10.0), "rho": (0.0, 0.99), "decay_rate": (0.0, 0.999), "beta1": (0.0, 0.99),
           "beta2": (0.0, 0.9999)}


def _clip(name, value):
    low, high = _LIMITS[name]
    return float(min(max(value, low), high))


def _number(value):
    """Three significant digits, plainly: 1.98, 0.669, 0.001, 1e-04."""
    return f"{value:.3g}"


def _matching(results, relative=1e-9, fewest_steps=3):
    """(later label, earlier label) for each runner whose path is the same as an earlier runner's. A path of
    fewer than ``fewest_steps`` steps (a run that diverged at once) says too little to call two rules the same:
    SGD and momentum take the same first step."""
    found = []
    labels = [label for label, result in results.items()
              if not isinstance(result, str) and len(result.points) > fewest_steps]
    for i, later in enumerate(labels):
        for earlier in labels[:i]:
            a, b = results[later].points, results[earlier].points
            scale = max(float(np.abs(b).max()), 1.0)
            if a.shape == b.shape and np.allclose(a, b, rtol=0.0, atol=relative * scale):
                found.append((later, earlier))
                break
    return found


def race(runners, landscape="ill-conditioned quadratic", controls=("learning_rate",), steps=100, tuned=False,
         **values):
    """Build and return a ``Race`` widget (see ``Race``); the notebook displays it."""
    return Race(runners, landscape=landscape, controls=controls, steps=steps, tuned=tuned, **values)


def _int_slider(description, value, low, high):
    return W.IntSlider(value=value, min=low, max=high, step=1, description=description, continuous_update=False,
                       style=_STYLE, layout=_layout())


# The schedules' own parameters: name -> (builder, default value). A schedule shows the sliders it takes.
SCHEDULE_CONTROLS = {
    "step_size": (lambda v: _int_slider("step size", v, 10, 500), 150),
    "gamma": (lambda v: _slider("γ (decay factor)", v, 0.05, 1.0, 0.05, ".2f"), 0.3),
    "k": (lambda v: _log_slider("k", v, 1e-4, 0.1), 8e-3),
    "total_steps": (lambda v: _int_slider("total steps", v, 10, 600), 600),
    "period": (lambda v: _int_slider("period", v, 10, 500), 150),
    "period_mult": (lambda v: _int_slider("period multiplier", v, 1, 3), 1),
    "max_learning_rate": (lambda v: _log_slider("max learning rate", v, 1e-3, 1.9), 1.0),
    "half_period": (lambda v: _int_slider("half period", v, 10, 500), 100),
}
SCHEDULE_ARGUMENTS = {
    "step_decay": ("step_size", "gamma"), "exponential_decay": ("k",), "inverse_time_decay": ("k",),
    "cosine": ("total_steps",), "cosine_warm_restarts": ("period", "period_mult"),
    "triangular_cyclic": ("max_learning_rate", "half_period"),
}


class ScheduleExplorer:
    """A learning-rate schedule under sliders, and what it does to SGD with noisy gradients.

    Left: the learning rate at every step for the chosen schedule and for a constant rate. Right: the loss
    of SGD on the ill-conditioned valley (kappa = 10) with gradient noise, under each (running mean): a
    constant rate stalls at a noise floor that grows with the rate; a decaying one goes below it.
    ``yours``: a learner's version of a schedule (or the message to show until its exercise passes),
    drawn beside the reference when that schedule is chosen.
    """

    STEPS = 600
    WINDOW = 50

    def __init__(self, schedule="step_decay", learning_rate=0.5, gradient_noise=0.5, yours=None, **values):
        if schedule not in schedules.SCHEDULES:
            raise ValueError(f"schedule must be one of {sorted(schedules.SCHEDULES)}, got {schedule!r}")
        self.yours = yours
        self.landscape = L.ill_conditioned_quadratic(kappa=10.0)
        self.controls = {
            "schedule": W.Dropdown(options=list(schedules.SCHEDULES), value=schedule, description="schedule",
                                   style=_STYLE, layout=_layout()),
            "learning_rate": _log_slider("learning rate α0", learning_rate, 1e-3, 1.9),
            "gradient_noise": _slider("gradient noise σ", gradient_noise, 0.0, 2.0, 0.01, ".2f"),
            **{name: builder(values.get(name, default)) for name, (builder, default) in SCHEDULE_CONTROLS.items()},
        }
        labels = ["constant α0", "schedule"] + (["yours"] if yours is not None else [])
        self.picture = SchedulePicture(labels)
        self.image = W.Image(format="png", layout=W.Layout(width="auto"))
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.summary = W.HTML(layout=W.Layout(width="auto"))
        self.widget = W.VBox([W.GridBox(list(self.controls.values()),
                                        layout=W.Layout(grid_template_columns="repeat(3, 310px)")), self.image,
                              self.summary])
        self.curves, self.message = {}, ""
        self._constant_run = (None, None)
        self.refresh()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def arguments(self):
        """The chosen schedule's keyword arguments, from the sliders."""
        name = self.controls["schedule"].value
        return {"learning_rate": self.controls["learning_rate"].value,
                **{arg: self.controls[arg].value for arg in SCHEDULE_ARGUMENTS.get(name, ())}}

    def refresh(self):
        name = self.controls["schedule"].value
        for arg, control in self.controls.items():
            if arg in SCHEDULE_CONTROLS:
                control.layout.display = None if arg in SCHEDULE_ARGUMENTS.get(name, ()) else "none"
        arguments = self.arguments()
        runners = {"constant α0": (optim.sgd, None), "schedule": (schedules.SCHEDULES[name], arguments)}
        notes = []
        if isinstance(self.yours, str):
            notes.append(f"yours: {self.yours}")
        elif self.yours is not None and self.yours.__name__ == name:
            runners["yours"] = (self.yours, arguments)
        self.curves = {}
        for label, (function, args) in runners.items():
            try:
                if isinstance(function, YourFunction):  # the learner's definition now, once for every step
                    function = function.current()
                self.curves[label] = self._rates_and_losses(function, args)
            except NotImplementedError:
                notes.append(f"{label}: not written yet")
            except Exception as error:  # a learner's schedule, or arguments out of range: say so on the plot
                notes.append(f"{label}: {error}")
        if "yours" in self.curves and np.allclose(self.curves["yours"][0], self.curves["schedule"][0]):
            notes.append("yours matches the reference schedule")
        self.message = "\n".join(notes)
        self.picture.update(self.curves, self.STEPS, self.message)
        self.image.value = self.picture.png()
        self.summary.value = self._summary(name, arguments, notes)

    def _summary(self, name, arguments, notes):
        """One line: the loss each curve ends at (its running mean), and what could not be drawn."""
        described = ", ".join(f"{arg}={_number(value)}" for arg, value in arguments.items())
        parts = [f"{label}: loss {losses[-1]:.3g} at the end" for label, (_, losses) in self.curves.items()]
        text = (f"{name} ({described}), SGD with gradient noise σ={self.controls['gradient_noise'].value:.2f} "
                f"for {self.STEPS} steps: " + "; ".join(parts + notes) + ".")
        return f'<div class="course-schedule-summary" style="line-height:1.4">{html.escape(text)}</div>'

    def _rates_and_losses(self, function, arguments):
        learning_rate = self.controls["learning_rate"].value
        if arguments is None:  # the constant rate: the same run until the rate or the noise changes
            key = (learning_rate, self.controls["gradient_noise"].value)
            if self._constant_run[0] != key:
                self._constant_run = (key, self._run_sgd(function, np.full(self.STEPS, learning_rate)))
            return self._constant_run[1]
        rates = np.array([function(t, **arguments) for t in range(self.STEPS)], dtype=float)
        rule = schedules.scheduled(optim.sgd, lambda t, **_: float(rates[min(t, self.STEPS - 1)]))
        return self._run_sgd(rule, rates)

    def _run_sgd(self, rule, rates):
        """(rates, running mean of the losses) of ``rule`` on the noisy valley; a diverged run raises."""
        learning_rate = self.controls["learning_rate"].value
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            trajectory = run(rule, self.landscape, steps=self.STEPS, config={"learning_rate": learning_rate},
                             gradient_noise=self.controls["gradient_noise"].value, seed=0)
        losses = np.convolve(trajectory.losses, np.ones(self.WINDOW) / self.WINDOW, mode="valid")
        if trajectory.diverged:
            raise ValueError(f"diverged at step {trajectory.diverged_at}")
        return rates, losses

    def _on_change(self, change):
        self.refresh()


def schedule_explorer(schedule="step_decay", learning_rate=0.5, gradient_noise=0.5, yours=None, **values):
    """Build and return a ``ScheduleExplorer`` widget (see ``ScheduleExplorer``); the notebook displays it."""
    return ScheduleExplorer(schedule, learning_rate, gradient_noise, yours, **values)


# ---- Notebook 06: ensembles and weight averages ----------------------------------------------------------------
class EnsembleExplorer:
    """The ensemble of the first K members against K, for one of several sets of members (precomputed logits:
    a slider only averages and redraws). ``member_sets``: label -> logits of shape (members, examples, classes)
    on the test set; ``labels``: the test labels."""

    def __init__(self, member_sets, labels, size=None):
        from course_lib.ensembles import growing_ensemble, member_scores
        from course_lib.plots import EnsemblePicture

        if not member_sets:
            raise ValueError("member_sets must name at least one set of members, got none")
        self.scores = {}
        for name, logits in member_sets.items():
            member_nll, member_accuracy = member_scores(logits, labels)
            ensemble_nll, ensemble_accuracy = growing_ensemble(logits, labels)
            self.scores[name] = (member_nll, member_accuracy, ensemble_nll, ensemble_accuracy)
        largest = max(len(scores[0]) for scores in self.scores.values())
        first = next(iter(self.scores))
        every = [np.concatenate([scores[i] for scores in self.scores.values()]) for i in range(4)]
        self.controls = {
            "members": W.Dropdown(options=list(self.scores), value=first, description="members",
                                  style=_STYLE, layout=W.Layout(width="420px")),
            "size": _int_slider("ensemble size K", size or len(self.scores[first][0]), 1, largest),
        }
        self.picture = EnsemblePicture(largest, accuracy_range=np.concatenate([every[1], every[3]]),
                                       nll_range=np.concatenate([every[0], every[2]]))
        self.image = W.Image(format="png", layout=W.Layout(width="auto"))
        self.summary = W.HTML()
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.widget = W.VBox([W.HBox(list(self.controls.values())), self.image, self.summary])
        self.refresh()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def refresh(self):
        name = self.controls["members"].value
        member_nll, member_accuracy, ensemble_nll, ensemble_accuracy = self.scores[name]
        size = self.controls["size"]
        size.max = len(member_nll)  # sets of different sizes: the slider never goes past this set's members
        k = min(size.value, len(member_nll))
        self.picture.update(member_nll, member_accuracy, ensemble_nll, ensemble_accuracy, k)
        self.image.value = self.picture.png()
        own_accuracy, own_nll = member_accuracy[:k], member_nll[:k]
        self.summary.value = (
            f"<b>{name}</b>, the first {k}: ensemble accuracy <b>{ensemble_accuracy[k - 1]:.3f}</b>, NLL "
            f"<b>{ensemble_nll[k - 1]:.3f}</b>; those members on their own: accuracy "
            f"{own_accuracy.min():.3f}–{own_accuracy.max():.3f} (mean {own_accuracy.mean():.3f}), "
            f"NLL {own_nll.min():.3f}–{own_nll.max():.3f} (mean {own_nll.mean():.3f}).")

    def _on_change(self, change):
        self.refresh()


def ensemble_explorer(member_sets, labels, size=None):
    """Build and return an ``EnsembleExplorer`` widget (see ``EnsembleExplorer``); the notebook displays it."""
    return EnsembleExplorer(member_sets, labels, size)


class AveragingExplorer:
    """The test loss of a run's trained weights against their exponential moving average, one decay at a time
    (a slider over the decays measured during training by ``course_lib.averaging.LossCurves``: it only
    redraws). ``curves.losses`` must hold "raw" (the trained weights), "uniform" and one entry per decay."""

    def __init__(self, curves, decay=0.99):
        from course_lib.averaging import first_below, roughness
        from course_lib.plots import AveragingPicture

        self.steps = np.asarray(curves.steps)
        self.losses = {label: np.asarray(values) for label, values in curves.losses.items()}
        missing = [label for label in ("raw", "uniform") if label not in self.losses]
        self.decays = sorted(label for label in self.losses if not isinstance(label, str))
        if missing or not self.decays:
            raise ValueError(f"curves must hold 'raw', 'uniform' and at least one decay, got {list(self.losses)}")
        if decay not in self.decays:
            raise ValueError(f"decay must be one of the measured decays {self.decays}, got {decay!r}")
        raw, half = self.losses["raw"], self.steps >= self.steps[-1] / 2
        self.facts = {d: (first_below(self.steps, self.losses[d], raw),
                          roughness(raw[half]) / max(roughness(self.losses[d][half]), 1e-12)) for d in self.decays}
        self.controls = {"decay": W.SelectionSlider(options=[(f"{d:g}", d) for d in self.decays], value=decay,
                                                    description="decay", continuous_update=False, style=_STYLE,
                                                    layout=W.Layout(width="420px"))}
        self.picture = AveragingPicture(self.steps, raw, self.losses["uniform"], self.decays,
                                        [self.losses[d][-1] for d in self.decays])
        self.image = W.Image(format="png", layout=W.Layout(width="auto"))
        self.summary = W.HTML()
        self.controls["decay"].observe(self._on_change, names="value")
        self.widget = W.VBox([self.controls["decay"], self.image, self.summary])
        self.refresh()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def refresh(self):
        decay = self.controls["decay"].value
        averaged = self.losses[decay]
        better_from, calmer = self.facts[decay]
        self.picture.update(self.steps, averaged, decay, averaged[-1], better_from)
        self.image.value = self.picture.png()
        epoch = int(self.steps[1]) if len(self.steps) > 1 else 1
        lag = (f"first below the trained weights at step {better_from}" if better_from is not None
               else "never below the trained weights")
        self.summary.value = (
            f"decay <b>{decay:g}</b> remembers about {1 / (1 - decay):.0f} steps: final test loss "
            f"<b>{averaged[-1]:.3f}</b> (trained weights {self.losses['raw'][-1]:.3f}, uniform average "
            f"{self.losses['uniform'][-1]:.3f}). Lag: {lag}; after {epoch} steps it still holds "
            f"{decay ** epoch:.0%} of the initial weights. Noise: in the second half its curve wiggles "
            f"{calmer:.1f}× less than the trained weights'.")

    def _on_change(self, change):
        self.refresh()


def averaging_explorer(curves, decay=0.99):
    """Build and return an ``AveragingExplorer`` widget (see ``AveragingExplorer``); the notebook displays it."""
    return AveragingExplorer(curves, decay)


# ---- Pictures under sliders, with a summary in words (notebooks 07-10) ----------------------------------------

class _PictureWidget:
    """Sliders (``self.controls``) above a picture (an ipywidgets.Image) and a one-line summary in words below
    it; every change of a control calls ``refresh()``. ``columns``: a CSS grid template to lay the controls out
    in columns (one row of them otherwise)."""

    def _assemble(self, columns=None):
        self.image = W.Image(format="png", layout=W.Layout(width="auto"))
        self.summary = W.HTML()
        for control in self.controls.values():
            control.observe(lambda change: self.refresh(), names="value")
        controls = list(self.controls.values())
        row = W.HBox(controls) if columns is None else W.GridBox(controls,
                                                                 layout=W.Layout(grid_template_columns=columns))
        self.widget = W.VBox([row, self.image, self.summary])
        self.refresh()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


def _selection_slider(description, options, value):
    return W.SelectionSlider(options=options, value=value, description=description, continuous_update=False,
                             style=_STYLE, layout=_layout())


# ---- Regularization (notebooks 07-08): dropout's masks, augmentation --------------------------------------------

class DropoutExplorer(_PictureWidget):
    """Dropout on one layer's activations, under sliders: the drop probability, the number M of training
    passes averaged, and the form (inverted; vanilla; vanilla with its test-time scaling forgotten).

    Left: one training pass over the activations without dropout. Right: the average of M training passes
    over what the layer outputs at test time. The masks come from one seeded generator, so raising the drop
    probability drops more of the same units, and raising M adds passes to the same first ones. The line
    under the picture says what it shows in words.
    """

    MAX_PASSES = 1000
    FORMS = {"inverted (scaled in training)": "inverted", "vanilla (scaled at test)": "vanilla",
             "vanilla, test-time scaling forgotten": "forgotten"}

    def __init__(self, activations, drop_probability=0.5, passes=20, form="inverted", seed=0):
        from course_lib.plots import DropoutPicture
        from course_lib.regularization import inverted_dropout, vanilla_dropout

        self.activations = np.asarray(activations, dtype=float).reshape(-1)
        if self.activations.size == 0 or not np.isfinite(self.activations).all():
            raise ValueError(f"activations must be a non-empty array of finite numbers, got {activations!r}")
        labels = {value: label for label, value in self.FORMS.items()}
        if form not in labels:
            raise ValueError(f"form must be one of {sorted(labels)}, got {form!r}")
        self._dropout = {"inverted": inverted_dropout, "vanilla": vanilla_dropout, "forgotten": vanilla_dropout}
        self.seed = seed
        self.controls = {
            "drop_probability": _slider("drop probability", drop_probability, 0.0, 0.9, 0.05, ".2f"),
            "passes": _int_slider("passes averaged M", passes, 1, self.MAX_PASSES),
            "form": W.Dropdown(options=list(self.FORMS), value=labels[form], description="dropout",
                               style=_STYLE, layout=W.Layout(width="340px")),
        }
        self.picture = DropoutPicture(self.activations.size)
        self._assemble("310px 310px 350px")

    def refresh(self):
        drop = float(self.controls["drop_probability"].value)
        passes = int(self.controls["passes"].value)
        form = self.FORMS[self.controls["form"].value]
        keep = 1 - drop
        dropout = self._dropout[form]
        stacked = np.broadcast_to(self.activations, (passes, self.activations.size))
        training = dropout(stacked, drop, True, np.random.default_rng(self.seed))
        test = self.activations if form == "forgotten" else dropout(self.activations, drop, False)
        average = training.mean(axis=0)
        first = training[0]
        dropped = (first == 0) & (self.activations != 0)
        title = "average of M passes (black ticks: test output)"
        self.picture.update(first, dropped, average, test, self.activations, title)
        self.image.value = self.picture.png()
        self.summary.value = self._describe(drop, keep, passes, form, first, average, test)

    def _describe(self, drop, keep, passes, form, first, average, test):
        units = self.activations.size
        kept = int(np.count_nonzero(first != 0)) if drop > 0 else units
        scaling = f", each ×{1 / keep:.2f}" if form == "inverted" and drop > 0 else ""
        pass_text = f"Drop probability {drop:.2f} (keep {keep:.2f}): the pass shown keeps {kept} of {units} units"
        size = np.sqrt(np.mean(test**2))
        error = np.sqrt(np.mean((average - test) ** 2)) / size if size > 0 else 0.0
        if form == "forgotten" and drop > 0:
            return (f"{pass_text}. Without the test-time factor keep = {keep:.2f}, the test output is "
                    f"{1 / keep:.2f}× the training average: the average of {passes} passes is off by "
                    f"{error:.0%}, and more passes do not help.")
        expected = np.sqrt(drop / (keep * passes))
        return (f"{pass_text}{scaling}. The average of {passes} passes is within {error:.0%} (RMS) of the "
                f"test-time output; theory for independent masks: √(drop / (keep·M)) = {expected:.0%}.")


def dropout_explorer(activations, drop_probability=0.5, passes=20, form="inverted", seed=0):
    """Build and return a ``DropoutExplorer`` widget (see ``DropoutExplorer``); the notebook displays it."""
    return DropoutExplorer(activations, drop_probability, passes, form, seed)


class AugmentationExplorer(_PictureWidget):
    """Random circular shifts of MNIST-1D signals under a slider, beside the test accuracy that training with
    each shift range reached (computed beforehand, e.g. notebook 08's shipped table: the slider only redraws).

    ``signals``: a few training signals (rows); ``sweep``: max shift -> test accuracy, or -> the test
    accuracies of several runs (seeds), including 0 (no augmentation). With several runs the picture shows their
    mean and the band from the lowest to the highest. The slider covers 0 to the largest shift in the sweep; a
    range the sweep did not train is shown and the summary names the nearest trained ones.
    """

    COPIES = 4

    def __init__(self, signals, sweep, max_shift=5, signal=0, seed=0):
        from course_lib.augmentation import random_circular_shift
        from course_lib.plots import AugmentationPicture

        self.signals = np.asarray(signals, dtype=float)
        if self.signals.ndim != 2 or len(self.signals) == 0:
            raise ValueError(f"signals must be a (count, length) array, got shape {self.signals.shape}")
        self.sweep = {int(shift): np.atleast_1d(np.asarray(accuracy, dtype=float))
                      for shift, accuracy in sorted(dict(sweep).items())}
        if 0 not in self.sweep:
            raise ValueError(f"sweep must include max shift 0 (no augmentation), got {sorted(self.sweep)}")
        runs = {len(accuracies) for accuracies in self.sweep.values()}
        if len(runs) != 1 or 0 in runs:
            raise ValueError("sweep must give every max shift a test accuracy, or the same number of them, "
                             f"got {sorted(runs)} accuracies")
        self.runs = runs.pop()
        self.mean = {shift: float(accuracies.mean()) for shift, accuracies in self.sweep.items()}
        self._shift = random_circular_shift
        self.seed = seed
        largest = max(self.sweep)
        self.controls = {
            "max_shift": _int_slider("max shift ± (samples)", int(np.clip(max_shift, 0, largest)), 0, largest),
            "signal": _int_slider("training signal", int(np.clip(signal, 0, len(self.signals) - 1)), 0,
                                  len(self.signals) - 1),
        }
        spread = float(np.abs(self.signals).max())
        accuracies = np.array(list(self.sweep.values()))
        self.picture = AugmentationPicture(list(self.sweep), accuracies.mean(axis=1), self.signals.shape[1],
                                           self.COPIES, "max shift ± (samples)", (-1.15 * spread, 1.15 * spread),
                                           band=(accuracies.min(axis=1), accuracies.max(axis=1))
                                           if self.runs > 1 else None)
        self._assemble("repeat(2, 310px)")

    def refresh(self):
        shift = int(self.controls["max_shift"].value)
        original = self.signals[int(self.controls["signal"].value)]
        copies = self._shift(np.repeat(original[None], self.COPIES, axis=0), np.random.default_rng(self.seed),
                             max_shift=shift)
        self.picture.update(original, list(copies), shift)
        self.image.value = self.picture.png()
        self.summary.value = self._describe(shift)

    def _reached(self, shift):
        accuracies = self.sweep[shift]
        if self.runs == 1:
            return f"{accuracies[0]:.2f}"
        return f"{accuracies.mean():.2f} ({accuracies.min():.2f} to {accuracies.max():.2f})"

    def _describe(self, shift):
        best = max(self.mean, key=self.mean.get)
        text = f"Copies shifted by up to ±{shift} samples (circularly). "
        if shift in self.sweep:
            text += (f"Training with this range reached test accuracy {self._reached(shift)} "
                     f"(no augmentation: {self._reached(0)}).")
        else:
            below = max(s for s in self.sweep if s < shift)
            above = min(s for s in self.sweep if s > shift)
            text += (f"The sweep did not train ±{shift}: ±{below} reached {self._reached(below)}, ±{above} "
                     f"reached {self._reached(above)} (no augmentation: {self._reached(0)}).")
        if self.runs > 1:
            text += f" Test accuracies: the mean over {self.runs} runs (the lowest to the highest)."
        return text + f" Best in the sweep: ±{best} ({self.mean[best]:.2f})."


def augmentation_explorer(signals, sweep, max_shift=5, signal=0, seed=0):
    """Build and return an ``AugmentationExplorer`` widget (see ``AugmentationExplorer``)."""
    return AugmentationExplorer(signals, sweep, max_shift, signal, seed)


# ---- Batch normalization (notebook 09) -------------------------------------------------------------------------

class BatchNoiseExplorer(_PictureWidget):
    """The noise batch norm puts into training: one example's normalised value at one input position, in
    random batches of the chosen size (training mode), against its test-time value (running averages, here
    the statistics of the whole training set). Sliders: the batch size and the position."""

    BATCH_SIZES = (2, 4, 8, 16, 32, 64, 128, 256)

    def __init__(self, inputs, batch_size=16, position=20, draws=200, seed=0):
        import torch

        from course_lib.batch_norm import normalised_across_batches
        from course_lib.plots import BatchNoisePicture

        inputs = torch.as_tensor(inputs, dtype=torch.float64)
        self.values = {size: normalised_across_batches(inputs, size, draws=draws, seed=seed)
                       for size in self.BATCH_SIZES}
        mean, variance = inputs.mean(axis=0), inputs.var(axis=0, unbiased=False)
        self.test_values = ((inputs[0] - mean) / (variance + 1e-5) ** 0.5).numpy()
        self.spreads = np.array([self.values[size].std(axis=0).mean() for size in self.BATCH_SIZES])
        self.picture = BatchNoisePicture(self.BATCH_SIZES, self.spreads)
        self.controls = {
            "batch_size": _selection_slider("batch size B", self.BATCH_SIZES, batch_size),
            "position": _int_slider("input position", position, 0, inputs.shape[1] - 1),
        }
        self._assemble()

    def refresh(self):
        size, position = self.controls["batch_size"].value, self.controls["position"].value
        values = self.values[size][:, position]
        spread = self.spreads[self.BATCH_SIZES.index(size)]
        self.picture.update(values, self.test_values[position], size, spread)
        self.image.value = self.picture.png()
        self.summary.value = (
            f"Batches of {size}: the example's normalised value at position {position} is "
            f"{values.mean():.2f} ± {values.std():.2f} (std over {len(values)} random batches); at test time it "
            f"is always {self.test_values[position]:.2f}. Averaged over positions the spread is {spread:.2f}.")


class LearningRateExplorer(_PictureWidget):
    """A ``batch_norm.LearningRateSweep`` under a learning-rate slider: both runs' training losses at the
    chosen rate, and every run's final test accuracy."""

    def __init__(self, sweep, learning_rate=None):
        from course_lib.plots import LearningRatePicture

        self.sweep = sweep
        self.picture = LearningRatePicture(sweep)
        rates = [(f"{rate:g}", index) for index, rate in enumerate(sweep.learning_rates)]
        start = len(rates) // 2 if learning_rate is None else sweep.learning_rates.index(learning_rate)
        self.controls = {"learning_rate": _selection_slider("learning rate", rates, start)}
        self._assemble()

    def refresh(self):
        index = self.controls["learning_rate"].value
        self.picture.update(index)
        self.image.value = self.picture.png()
        parts = []
        for label, histories in self.sweep.histories.items():
            history = histories[index]
            if history.diverged_at is not None:
                parts.append(f"{label}: diverged at step {history.diverged_at}")
                continue
            growth = self.sweep.weight_growth[label][index]
            parts.append(f"{label}: test accuracy {history.test_accuracy[-1]:.2f} (first layer's weights "
                         f"×{growth:.1f} in norm)")
        self.summary.value = (f"Learning rate {self.sweep.learning_rates[index]:g}: " + "; ".join(parts)
                              + ". Chance is 0.10.")


def batch_noise(inputs, batch_size=16, position=20):
    """Build and return a ``BatchNoiseExplorer`` (see there); the notebook displays it."""
    return BatchNoiseExplorer(inputs, batch_size=batch_size, position=position)


def learning_rate_sweep(sweep, learning_rate=None):
    """Build and return a ``LearningRateExplorer`` of ``sweep`` (see there); the notebook displays it."""
    return LearningRateExplorer(sweep, learning_rate)


# ---- Transfer learning (notebook 10) ---------------------------------------------------------------------------

class TransferExplorer(_PictureWidget):
    """A ``transfer.TransferTable`` under a slider for the number of labelled examples per class: each regime's
    test accuracy during training at that number, beside the whole table."""

    def __init__(self, table, count=None):
        from course_lib.plots import TransferPicture

        self.table = table
        self.picture = TransferPicture(table)
        count = table.counts[0] if count is None else count
        self.controls = {"count": _selection_slider("labelled examples per class N", table.counts, count)}
        self._assemble()

    def refresh(self):
        count = self.controls["count"].value
        self.picture.update(count)
        self.image.value = self.picture.png()
        means = sorted(((self.table.mean(regime, count), regime) for regime in self.table.regimes), reverse=True)
        self.summary.value = (f"N = {count} labelled examples per class, final test accuracy (mean of "
                              f"{len(self.table.settings['seeds'])} seeds), best first: "
                              + "; ".join(f"{regime} {mean:.2f}" for mean, regime in means) + ".")


def transfer_table(table, count=None):
    """Build and return a ``TransferExplorer`` of ``table`` (see there); the notebook displays it."""
    return TransferExplorer(table, count)
