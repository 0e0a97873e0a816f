"""Each method at its best on a landscape: a small search over an update rule's hyperparameters.

A race between methods is fair only if each runs at hyperparameters that suit it: their good learning rates
differ by orders of magnitude. ``best_hyperparameters(rule, landscape, names, ...)`` finds, for one rule,
the values of ``names`` (among ``learning_rate``, ``rho``, ``decay_rate``, ``beta1``, ``beta2``) that make
a run of ``steps`` steps from ``start`` reach low loss soonest. "Soonest" is the mean over the run of
log10(f(x_k) - f*) (floored at ``FLOOR``): the area under the log-scaled loss curve, so reaching 1e-6 in 20
steps beats reaching it in 80; a run that diverges scores infinity.

The search, per rule (about 30-70 runs of ``steps`` steps):

1. the learning rate on a grid of every half decade from 10 down to 1e-4, the other hyperparameters at their
   given values (from the top down: a diverging run stops early; the scan stops once smaller rates only get
   worse);
2. each other hyperparameter over a few typical values (``CANDIDATES``), each with the learning rate at the
   best so far and half a decade either side;
3. the learning rate on a fine grid (a twelfth of a decade) within half a decade of the best so far: near the
   edge of stability runs turn chaotic and the score bumpy, where a local search would stop early;
4. all of them refined together by compass search (a step up and down along
   each, the step halved when nothing improves), on the learning rate's logarithm and on -log10(1 - value)
   for the others (0.9 -> 1, 0.99 -> 2: the length of their memory);
5. every value rounded to three significant digits (the learning rate downwards, towards stability), which is
   what a slider shows and a learner can type back in.

Results are cached per (rule, landscape and its parameters, start, steps, noise, seed, names, fixed config):
asking again costs nothing.
"""

import math
import warnings

import numpy as np

from course_lib.trajectories import run

__all__ = ["CANDIDATES", "FLOOR", "LEARNING_RATES", "best_hyperparameters", "score"]

FLOOR = 1e-12  # loss gaps below this count as reached: rounding, not the method, sets them
LEARNING_RATES = tuple(float(10.0**e) for e in np.arange(-8, 3) / 2)  # 1e-4 ... 10, half a decade apart
CANDIDATES = {
    "rho": (0.0, 0.5, 0.8, 0.9, 0.95, 0.99),
    "decay_rate": (0.9, 0.99, 0.999),
    "beta1": (0.0, 0.5, 0.9),
    "beta2": (0.9, 0.99, 0.999),
}
_HALF = 0.5
_cache = {}


def score(trajectory, landscape):
    """The mean of log10(f(x_k) - f*) over the run (lower is better; infinity if it diverged)."""
    if trajectory.diverged:
        return math.inf
    gaps = np.maximum(trajectory.losses - landscape.minimum_value, FLOOR)
    return float(np.mean(np.log10(gaps)))


def best_hyperparameters(rule, landscape, names, start=None, steps=100, config=None, gradient_noise=0.0,
                         seed=0):
    """The values of ``names`` that give ``rule`` its best ``score`` on ``landscape`` (see the module).

    ``config`` holds the values to start from (and any fixed ones, e.g. ``bias_correction``); a name missing
    from it starts at the rule's default. Returns a dict of ``names`` -> value.
    """
    unknown = [name for name in names if name != "learning_rate" and name not in CANDIDATES]
    if unknown:
        raise ValueError(f"names must be among {['learning_rate', *CANDIDATES]}, got {unknown}")
    start = np.array(landscape.start if start is None else start, dtype=float)
    config = dict(config or {})
    key = (getattr(rule, "__module__", None), getattr(rule, "__qualname__", repr(rule)), landscape.name,
           _hashable(landscape.params), tuple(start), steps, gradient_noise, seed, tuple(names),
           _hashable(config))
    if key not in _cache:
        _cache[key] = _search(rule, landscape, list(names), start, steps, config, gradient_noise, seed)
    return dict(_cache[key])


def _hashable(value):
    """``value`` (a landscape's parameters, a config: dicts, arrays, numbers) as a key for the cache."""
    if isinstance(value, dict):
        return tuple(sorted((name, _hashable(item)) for name, item in value.items()))
    if isinstance(value, np.ndarray | list | tuple):
        array = np.asarray(value)
        return array.shape, tuple(array.ravel().tolist())
    return value


def _search(rule, landscape, names, start, steps, config, gradient_noise, seed):
    evaluate = _Scores(rule, landscape, start, steps, config, gradient_noise, seed)
    rate_too = "learning_rate" in names
    best = {name: _starting_value(name, config) for name in names}
    if rate_too:
        best["learning_rate"] = _scan_down(lambda rate: evaluate({**best, "learning_rate": rate}))
    for name in names:
        if name != "learning_rate":
            best = _best_candidate(evaluate, best, name, rate_too)
    if rate_too:  # a fine scan around the best rate: the score is bumpy where runs turn chaotic
        rates = [_clip_rate(best["learning_rate"] * 10.0 ** (k / 12)) for k in range(-6, 7)]
        best["learning_rate"] = min(rates, key=lambda rate: evaluate({**best, "learning_rate": rate}))
    best = _compass_search(evaluate, best, names)
    return _rounded(best, evaluate)


def _starting_value(name, config):
    """The value ``config`` gives, else the middle candidate (the learning rate is scanned first anyway)."""
    if name in config or name == "learning_rate":
        return config.get(name, LEARNING_RATES[len(LEARNING_RATES) // 2])
    return CANDIDATES[name][len(CANDIDATES[name]) // 2]


class _Scores:
    """The score of the rule's run with given hyperparameter values, each run once."""

    def __init__(self, rule, landscape, start, steps, config, gradient_noise, seed):
        self.rule, self.landscape, self.start, self.steps = rule, landscape, start, steps
        self.config, self.gradient_noise, self.seed = config, gradient_noise, seed
        self.known = {}

    def __call__(self, values):
        values = {**self.config, **values}
        key = tuple(sorted(values.items()))
        if key not in self.known:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                try:
                    trajectory = run(self.rule, self.landscape, start=self.start, steps=self.steps, config=values,
                                     gradient_noise=self.gradient_noise, seed=self.seed)
                except ValueError:  # a value outside the rule's range: not a candidate
                    self.known[key] = math.inf
                else:
                    self.known[key] = score(trajectory, self.landscape)
        return self.known[key]


def _best_candidate(evaluate, best, name, rate_too):
    """``best`` with ``name`` set to its best candidate, each tried with the learning rate (if it is searched
    too) at its best so far and half a decade either side."""
    trials = []
    for candidate in CANDIDATES[name]:
        for shift in (-_HALF, 0.0, _HALF) if rate_too else (0.0,):
            trial = {**best, name: candidate}
            if rate_too:
                trial["learning_rate"] = _clip_rate(best["learning_rate"] * 10.0**shift)
            trials.append((evaluate(trial), trial))
    return min(trials, key=lambda item: item[0])[1]


def _scan_down(objective, patience=2):
    """The best of ``LEARNING_RATES``, tried from the largest down (a diverging run stops early, so the large
    ones cost little); the scan stops once ``patience`` rates in a row after a finite score did not improve
    on the best (smaller rates only crawl more slowly)."""
    best_rate, best_value, worse = None, math.inf, 0
    for rate in reversed(LEARNING_RATES):
        value = objective(rate)
        if value < best_value:
            best_rate, best_value, worse = rate, value, 0
        elif math.isfinite(best_value):
            worse += 1
            if worse >= patience:
                break
    return LEARNING_RATES[0] if best_rate is None else best_rate


# The search moves each hyperparameter on a scale where equal moves matter about equally: the learning rate's
# logarithm, and -log10(1 - value) for the averaging constants (0.9 -> 1, 0.99 -> 2: the memory's length).
_UPPER = {"rho": 0.99, "decay_rate": 0.999, "beta1": 0.99, "beta2": 0.9999}


def _to_scale(name, value):
    return math.log10(value) if name == "learning_rate" else -math.log10(1.0 - value)


def _from_scale(name, position):
    if name == "learning_rate":
        return _clip_rate(10.0**position)
    return min(max(1.0 - 10.0**-position, 0.0), _UPPER[name])


def _clip_rate(rate):
    return min(max(rate, LEARNING_RATES[0]), LEARNING_RATES[-1])


def _compass_search(objective, best, names, first_step=1 / 12, smallest_step=1 / 48):
    """Refine ``best`` by compass search: try a step up and down along each hyperparameter's scale, move to
    the first improvement, halve the step when none improves, stop below ``smallest_step``."""
    position = {name: _to_scale(name, best[name]) for name in names}
    best_value, step = objective(best), first_step
    while step >= smallest_step:
        moved = False
        for name in names:
            for sign in (1, -1):
                trial_position = {**position, name: position[name] + sign * step}
                trial = {n: _from_scale(n, p) for n, p in trial_position.items()}
                value = objective(trial)
                if value < best_value:
                    position, best, best_value, moved = trial_position, trial, value, True
                    break
        if not moved:
            step /= 2
    return best


def _rounded(best, evaluate):
    """Three significant digits: the learning rate rounded down (a run on the edge of stability stays on the
    stable side), the others to the nearest, as a slider shows them and a learner can type them back in;
    kept unless the rounded values diverge where the exact ones did not."""
    rounded = {}
    for name, value in best.items():
        if value == 0:
            rounded[name] = 0.0
            continue
        factor = 10.0 ** (2 - math.floor(math.log10(abs(value))))
        rounded[name] = (math.floor(value * factor) if name == "learning_rate" else round(value * factor)) / factor
    if _within_ranges(rounded) and math.isfinite(evaluate(rounded)):
        return rounded
    return best


def _within_ranges(values):
    return all(0 <= value <= _UPPER[name] for name, value in values.items() if name in _UPPER)
