"""Widget builders: sliders that drive update rules on landscapes, so that a notebook cell reads like a sentence.

    race({"SGD": optim.sgd, "momentum": optim.sgd_momentum}, landscape="Rosenbrock",
         controls=("learning_rate", "rho"), learning_rate=1e-3)

Every slider's range is a valid range for its hyperparameter, so dragging one to an end gives a picture: a run
that blows up is drawn up to the step where it diverged and the plot says "diverged at step k"; a rule that
raises (a learner's unfinished exercise, say) is named on the plot with its error, never with a traceback.
"""

import math
import warnings

import ipywidgets as W
import numpy as np

from . import landscapes as L
from .plots import RacePicture
from .trajectories import run

__all__ = ["CONTROLS", "Method", "Race", "race"]

_STYLE = {"description_width": "initial"}
_LAYOUT = W.Layout(width="300px")


def _log_slider(description, value, low, high, step=0.05, fmt=".2e"):
    return W.FloatLogSlider(value=value, base=10, min=math.log10(low), max=math.log10(high), step=step,
                            description=description, readout_format=fmt, continuous_update=False,
                            style=_STYLE, layout=_LAYOUT)


def _slider(description, value, low, high, step, fmt=".3f"):
    return W.FloatSlider(value=value, min=low, max=high, step=step, description=description,
                         readout_format=fmt, continuous_update=False, style=_STYLE, layout=_LAYOUT)


# name -> (builder of the control given an initial value, the default initial value)
CONTROLS = {
    "learning_rate": (lambda v: _log_slider("learning rate α", v, 1e-4, 10.0), 1e-2),
    "rho": (lambda v: _slider("ρ (momentum)", v, 0.0, 0.99, 0.01, ".2f"), 0.9),
    "decay_rate": (lambda v: _slider("decay rate", v, 0.0, 0.999, 0.001), 0.99),
    "beta1": (lambda v: _slider("β1", v, 0.0, 0.99, 0.01, ".2f"), 0.9),
    "beta2": (lambda v: _slider("β2", v, 0.0, 0.9999, 0.0001, ".4f"), 0.999),
    "kappa": (lambda v: _log_slider("condition number κ", v, 1.0, 1000.0, 0.05, ".1f"), 10.0),
    "steps": (lambda v: W.IntSlider(value=v, min=1, max=500, step=1, description="steps",
                                    continuous_update=False, style=_STYLE, layout=_LAYOUT), 100),
    "gradient_noise": (lambda v: _slider("gradient noise σ", v, 0.0, 2.0, 0.01, ".2f"), 0.0),
    "start_x": (lambda v: _slider("start x", v, -1.0, 1.0, 0.01, ".2f"), None),
    "start_y": (lambda v: _slider("start y", v, -1.0, 1.0, 0.01, ".2f"), None),
    "landscape": (lambda v: W.Dropdown(options=list(L.LANDSCAPES), value=v, description="landscape",
                                       style=_STYLE, layout=_LAYOUT), "ill-conditioned quadratic"),
}
HYPERPARAMETERS = ("learning_rate", "rho", "decay_rate", "beta1", "beta2")


class Method:
    """A method that needs the whole landscape, not just gradients (Newton's Hessian, L-BFGS's line search),
    as a racer: ``Method(second_order.newton)`` or ``Method(second_order.lbfgs_on_landscape, "max_iter")``.

    It is called as ``function(landscape, start=..., <steps_argument>=steps, **fixed)`` and returns a
    Trajectory; the race's hyperparameter sliders do not apply to it.
    """

    def __init__(self, function, steps_argument="steps", **fixed):
        self.function, self.steps_argument, self.fixed = function, steps_argument, fixed
        self.__name__ = getattr(function, "__name__", "method")

    def __call__(self, landscape, start, steps):
        return self.function(landscape, start=start, **{self.steps_argument: steps}, **self.fixed)


class Race:
    """Several update rules racing from the same start on the same landscape, under sliders.

    ``runners``: label -> rule, label -> (rule, fixed config), label -> ``Method``, or label -> message (a
    runner that cannot run yet, e.g. "finish Exercise 2.2 first"; the message is shown on the plot).
    ``controls``: names from ``CONTROLS``; slider values go to every rule (fixed configs win).
    """

    def __init__(self, runners, landscape="ill-conditioned quadratic", controls=("learning_rate",),
                 steps=100, **values):
        unknown = [name for name in (*controls, *values) if name not in CONTROLS]
        if unknown:
            raise ValueError(f"controls must be among {sorted(CONTROLS)}, got {unknown}")
        self.runners = {label: _as_runner(entry) for label, entry in runners.items()}
        self.values = {name: default for name, (_, default) in CONTROLS.items()}
        self.values.update(landscape=landscape, steps=steps, **values)
        self.landscape = self._build_landscape()
        for name, coordinate in zip(("start_x", "start_y"), self.landscape.start[:2], strict=True):
            if self.values[name] is None:
                self.values[name] = float(coordinate)
        self.controls = {name: CONTROLS[name][0](self.values[name]) for name in controls}
        self._quiet = False
        self._fit_start_sliders()
        self.picture = RacePicture(self.runners)
        self.image = W.Image(format="png", layout=W.Layout(width="auto"))
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        rows = list(self.controls.values())
        self.widget = W.VBox([W.GridBox(rows, layout=W.Layout(grid_template_columns="repeat(3, 310px)")),
                              self.image])
        self.results = {}
        self.refresh()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    # ----------------------------------------------------------------------------------------------------
    def refresh(self):
        """Run every rule with the current values and redraw the picture."""
        start = np.array([self.values["start_x"], self.values["start_y"]], dtype=float)
        config = {name: self.values[name] for name in HYPERPARAMETERS}
        self.results = {label: self._run(runner, config, start) for label, runner in self.runners.items()}
        self.picture.update(self.landscape, self.results, self.values["steps"], start)
        self.image.value = self.picture.png()

    def _run(self, runner, config, start):
        if isinstance(runner, str):
            return runner
        rule, fixed = runner
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                if isinstance(rule, Method):
                    return rule(self.landscape, start, self.values["steps"])
                return run(rule, self.landscape, start=start, steps=self.values["steps"],
                           config={**config, **fixed}, gradient_noise=self.values["gradient_noise"])
        except NotImplementedError:
            return f"{getattr(rule, '__name__', 'this rule')} is not written yet"
        except Exception as error:  # a learner's rule may raise anything: name it, never a traceback
            return f"{type(error).__name__}: {error}"[:160]

    def _on_change(self, change):
        if self._quiet:
            return
        name = next(n for n, control in self.controls.items() if control is change["owner"])
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
        rule, fixed = entry
        return rule, dict(fixed)
    if callable(entry):  # a rule or a Method
        return entry, {}
    raise ValueError(f"a runner must be a rule, a (rule, config) pair or a message, got {entry!r}")


def race(runners, landscape="ill-conditioned quadratic", controls=("learning_rate",), steps=100, **values):
    """Build and return a ``Race`` widget (see ``Race``); the notebook displays it."""
    return Race(runners, landscape=landscape, controls=controls, steps=steps, **values)
