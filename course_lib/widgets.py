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
from . import optim, schedules
from .augmentation import random_circular_shift
from .checks import NotReady
from .plots import AugmentationPicture, DropoutPicture, RacePicture, SchedulePicture
from .regularization import inverted_dropout, vanilla_dropout
from .trajectories import run

__all__ = ["CONTROLS", "AugmentationExplorer", "DropoutExplorer", "Method", "Race", "ScheduleExplorer",
           "augmentation_explorer", "dropout_explorer", "race", "schedule_explorer"]

_STYLE = {"description_width": "initial"}


def _layout():
    """A layout of its own for every control: a shared one would hide them all when one is hidden."""
    return W.Layout(width="300px")


def _log_slider(description, value, low, high, step=0.05, fmt=".2e"):
    return W.FloatLogSlider(value=value, base=10, min=math.log10(low), max=math.log10(high), step=step,
                            description=description, readout_format=fmt, continuous_update=False,
                            style=_STYLE, layout=_layout())


def _slider(description, value, low, high, step, fmt=".3f"):
    return W.FloatSlider(value=value, min=low, max=high, step=step, description=description,
                         readout_format=fmt, continuous_update=False, style=_STYLE, layout=_layout())


# name -> (builder of the control given an initial value, the default initial value)
CONTROLS = {
    "learning_rate": (lambda v: _log_slider("learning rate α", v, 1e-4, 10.0), 1e-2),
    "rho": (lambda v: _slider("ρ (momentum)", v, 0.0, 0.99, 0.01, ".2f"), 0.9),
    "decay_rate": (lambda v: _slider("decay rate", v, 0.0, 0.999, 0.001), 0.99),
    "beta1": (lambda v: _slider("β1", v, 0.0, 0.99, 0.01, ".2f"), 0.9),
    "beta2": (lambda v: _slider("β2", v, 0.0, 0.9999, 0.0001, ".4f"), 0.999),
    "kappa": (lambda v: _log_slider("condition number κ", v, 1.0, 1000.0, 0.05, ".1f"), 10.0),
    "steps": (lambda v: W.IntSlider(value=v, min=1, max=500, step=1, description="steps",
                                    continuous_update=False, style=_STYLE, layout=_layout()), 100),
    "gradient_noise": (lambda v: _slider("gradient noise σ", v, 0.0, 2.0, 0.01, ".2f"), 0.0),
    "start_x": (lambda v: _slider("start x", v, -1.0, 1.0, 0.01, ".2f"), None),
    "start_y": (lambda v: _slider("start y", v, -1.0, 1.0, 0.01, ".2f"), None),
    "landscape": (lambda v: W.Dropdown(options=list(L.LANDSCAPES), value=v, description="landscape",
                                       style=_STYLE, layout=_layout()), "ill-conditioned quadratic"),
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
        except NotReady as not_ready:  # a learner's rule whose exercise does not pass yet
            return str(not_ready)
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
        self.widget = W.VBox([W.GridBox(list(self.controls.values()),
                                        layout=W.Layout(grid_template_columns="repeat(3, 310px)")), self.image])
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
                self.curves[label] = self._rates_and_losses(function, args)
            except NotImplementedError:
                notes.append(f"{label}: not written yet")
            except Exception as error:  # a learner's schedule, or arguments out of range: say so on the plot
                notes.append(f"{label}: {error}")
        self.message = "\n".join(notes)
        self.picture.update(self.curves, self.STEPS, self.message)
        self.image.value = self.picture.png()

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


# ---- Regularization (notebooks 07-08): dropout's masks, augmentation --------------------------------------------
class _PictureWithSummary:
    """Sliders (``self.controls``) above a picture (``self.image``) and a line of text that says what the
    picture shows (``self.summary``); every change of a control calls ``refresh()``."""

    def _assemble(self, columns):
        self.image = W.Image(format="png", layout=W.Layout(width="auto"))
        self.summary = W.HTML(layout=W.Layout(width="auto"))
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.widget = W.VBox([W.GridBox(list(self.controls.values()),
                                        layout=W.Layout(grid_template_columns=columns)), self.image, self.summary])
        self.refresh()

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)

    def _on_change(self, change):
        self.refresh()


class DropoutExplorer(_PictureWithSummary):
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


class AugmentationExplorer(_PictureWithSummary):
    """Random circular shifts of MNIST-1D signals under a slider, beside the test accuracy that training with
    each shift range reached (a sweep computed beforehand: the slider only redraws).

    ``signals``: a few training signals (rows); ``sweep``: max shift -> test accuracy, including 0 (no
    augmentation). The slider covers 0 to the largest shift in the sweep; a range the sweep did not train is
    shown and the summary names the nearest trained ones.
    """

    COPIES = 4

    def __init__(self, signals, sweep, max_shift=5, signal=0, seed=0):
        self.signals = np.asarray(signals, dtype=float)
        if self.signals.ndim != 2 or len(self.signals) == 0:
            raise ValueError(f"signals must be a (count, length) array, got shape {self.signals.shape}")
        self.sweep = {int(shift): float(accuracy) for shift, accuracy in sorted(dict(sweep).items())}
        if 0 not in self.sweep:
            raise ValueError(f"sweep must include max shift 0 (no augmentation), got {sorted(self.sweep)}")
        self._shift = random_circular_shift
        self.seed = seed
        largest = max(self.sweep)
        self.controls = {
            "max_shift": _int_slider("max shift ± (samples)", int(np.clip(max_shift, 0, largest)), 0, largest),
            "signal": _int_slider("training signal", int(np.clip(signal, 0, len(self.signals) - 1)), 0,
                                  len(self.signals) - 1),
        }
        spread = float(np.abs(self.signals).max())
        self.picture = AugmentationPicture(list(self.sweep), list(self.sweep.values()), self.signals.shape[1],
                                           self.COPIES, "max shift ± (samples)", (-1.15 * spread, 1.15 * spread))
        self._assemble("repeat(2, 310px)")

    def refresh(self):
        shift = int(self.controls["max_shift"].value)
        original = self.signals[int(self.controls["signal"].value)]
        copies = self._shift(np.repeat(original[None], self.COPIES, axis=0), np.random.default_rng(self.seed),
                             max_shift=shift)
        self.picture.update(original, list(copies), shift)
        self.image.value = self.picture.png()
        self.summary.value = self._describe(shift)

    def _describe(self, shift):
        baseline = self.sweep[0]
        best = max(self.sweep, key=self.sweep.get)
        text = f"Copies shifted by up to ±{shift} samples (circularly). "
        if shift in self.sweep:
            text += (f"Training with this range reached test accuracy {self.sweep[shift]:.2f} "
                     f"(no augmentation: {baseline:.2f}).")
        else:
            below = max(s for s in self.sweep if s < shift)
            above = min(s for s in self.sweep if s > shift)
            text += (f"The sweep did not train ±{shift}: ±{below} reached {self.sweep[below]:.2f}, ±{above} "
                     f"reached {self.sweep[above]:.2f} (no augmentation: {baseline:.2f}).")
        return text + f" Best in the sweep: ±{best} ({self.sweep[best]:.2f})."

def augmentation_explorer(signals, sweep, max_shift=5, signal=0, seed=0):
    """Build and return an ``AugmentationExplorer`` widget (see ``AugmentationExplorer``)."""
    return AugmentationExplorer(signals, sweep, max_shift, signal, seed)
