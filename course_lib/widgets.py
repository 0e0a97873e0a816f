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

from course_lib import landscapes as L
from course_lib import optim, schedules
from course_lib.checks import NotReady
from course_lib.plots import RacePicture, SchedulePicture
from course_lib.trajectories import run

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
    each shift range reached (a sweep computed beforehand: the slider only redraws).

    ``signals``: a few training signals (rows); ``sweep``: max shift -> test accuracy, including 0 (no
    augmentation). The slider covers 0 to the largest shift in the sweep; a range the sweep did not train is
    shown and the summary names the nearest trained ones.
    """

    COPIES = 4

    def __init__(self, signals, sweep, max_shift=5, signal=0, seed=0):
        from course_lib.augmentation import random_circular_shift
        from course_lib.plots import AugmentationPicture

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
