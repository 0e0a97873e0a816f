"""course_lib.tuning: each rule's best hyperparameters on a landscape, found by a small search.

References: a brute-force scan (the search must do as well with a few dozen runs), theory's best values on a
quadratic (the search must do at least as well on its own score), and divergence (never chosen)."""

import math

import numpy as np
import pytest

from course_lib import landscapes, optim, theory, tuning
from course_lib.trajectories import run

NAMES = {"sgd": ["learning_rate"], "sgd_momentum": ["learning_rate", "rho"], "nesterov": ["learning_rate", "rho"],
         "adagrad": ["learning_rate"], "rmsprop": ["learning_rate", "decay_rate"],
         "adam": ["learning_rate", "beta1", "beta2"]}


def score_of(rule, landscape, config, steps):
    return tuning.score(run(rule, landscape, steps=steps, config=config), landscape)


@pytest.mark.parametrize("landscape_name", ["Rosenbrock", "saddle", "local minimum"])
def test_gradient_descent_does_as_well_as_a_brute_force_scan(landscape_name):
    landscape = landscapes.make(landscape_name)
    best = tuning.best_hyperparameters(optim.sgd, landscape, ["learning_rate"], steps=200)
    rates = np.geomspace(1e-4, 10, 121)
    scan = min(score_of(optim.sgd, landscape, {"learning_rate": rate}, 200) for rate in rates)
    found = score_of(optim.sgd, landscape, best, 200)
    assert found <= scan + 0.05, f"search {best} scores {found:.3f}, a 121-point scan {scan:.3f}"


def test_momentum_does_at_least_as_well_as_theorys_best_values_on_a_quadratic():
    # Polyak's values give the best rate in the long run; over 150 steps from the valley's start the search may
    # find values that get there sooner, never ones that do worse on its score.
    valley = landscapes.ill_conditioned_quadratic(100.0)
    polyak = theory.momentum_best_hyperparameters(1.0, 0.01)
    best = tuning.best_hyperparameters(optim.sgd_momentum, valley, ["learning_rate", "rho"], steps=150)
    assert score_of(optim.sgd_momentum, valley, best, 150) <= score_of(optim.sgd_momentum, valley, polyak, 150)
    descent = tuning.best_hyperparameters(optim.sgd, valley, ["learning_rate"], steps=150)
    # Gradient descent's best step for a finite run is a little below 2 / (L + mu) = 1.98 (the steep direction
    # then also shrinks early on), and momentum's run ends more than a million times lower.
    assert 0.85 * 1.98 < descent["learning_rate"] <= 1.98
    final = {name: run(rule, valley, steps=150, config=config).losses[-1]
             for name, rule, config in (("GD", optim.sgd, descent), ("momentum", optim.sgd_momentum, best))}
    assert final["momentum"] < 1e-6 * final["GD"]


@pytest.mark.parametrize("landscape_name", ["ill-conditioned quadratic", "Rosenbrock", "saddle", "local minimum"])
@pytest.mark.parametrize("rule_name", list(NAMES))
def test_the_best_values_never_diverge_and_are_on_three_digits(landscape_name, rule_name):
    landscape = landscapes.make(landscape_name)
    rule = optim.RULES[rule_name]
    best = tuning.best_hyperparameters(rule, landscape, NAMES[rule_name], steps=100)
    assert sorted(best) == sorted(NAMES[rule_name])
    assert math.isfinite(score_of(rule, landscape, best, 100))
    assert 1e-4 <= best["learning_rate"] <= 10.0
    for name, value in best.items():
        assert value == 0 or float(f"{value:.3g}") == value, f"{name} = {value!r} is not on three digits"
        if name != "learning_rate":
            assert 0 <= value < 1


def test_the_search_beats_the_rules_default_on_every_landscape():
    for name in ("ill-conditioned quadratic", "Rosenbrock", "saddle", "local minimum"):
        landscape = landscapes.make(name)
        for rule_name, names in NAMES.items():
            rule = optim.RULES[rule_name]
            best = tuning.best_hyperparameters(rule, landscape, names, steps=100)
            assert score_of(rule, landscape, best, 100) <= score_of(rule, landscape, {}, 100), (name, rule_name)


def test_results_are_cached(monkeypatch):
    calls = []

    def counted(*arguments, **keywords):
        calls.append(1)
        return run(*arguments, **keywords)

    monkeypatch.setattr(tuning, "run", counted)
    landscape = landscapes.saddle()
    first = tuning.best_hyperparameters(optim.adagrad, landscape, ["learning_rate"], start=(-2.0, 1e-4), steps=57)
    searched = len(calls)
    assert 10 <= searched <= 80  # a small search
    again = tuning.best_hyperparameters(optim.adagrad, landscape, ["learning_rate"], start=(-2.0, 1e-4), steps=57)
    assert again == first and len(calls) == searched  # no run at all the second time
    tuning.best_hyperparameters(optim.adagrad, landscape, ["learning_rate"], start=(-2.0, 1e-4), steps=58)
    assert len(calls) > searched  # another number of steps is another question


def test_diverging_runs_score_infinity_and_unknown_names_are_refused():
    valley = landscapes.ill_conditioned_quadratic(10.0)
    assert score_of(optim.sgd, valley, {"learning_rate": 5.0}, 50) == math.inf
    assert score_of(optim.sgd, valley, {"learning_rate": 0.5}, 50) < 0
    with pytest.raises(ValueError, match="names must be among"):
        tuning.best_hyperparameters(optim.sgd, valley, ["momentum"])


def test_the_cache_tells_apart_every_argument_and_returns_what_a_search_returns():
    # Each question differs from the first in one argument (the landscape's parameters included: two
    # Rosenbrocks share a name); each must be answered by a search of its own, as with an empty cache.
    def ask(rule=optim.sgd, landscape=None, names=("learning_rate",), **arguments):
        return tuning.best_hyperparameters(rule, landscape or landscapes.rosenbrock(), list(names), **arguments)

    questions = [{}, {"rule": optim.adagrad}, {"landscape": landscapes.rosenbrock(b=10.0)},
                 {"start": (0.5, 0.5)}, {"steps": 60}, {"gradient_noise": 0.5}, {"gradient_noise": 0.5, "seed": 1},
                 {"rule": optim.sgd_momentum, "names": ("learning_rate", "rho")},
                 {"rule": optim.sgd_momentum, "names": ("learning_rate",), "config": {"rho": 0.5}}]
    tuning._cache.clear()
    cached = [ask(steps=arguments.pop("steps", 100), **arguments) for arguments in map(dict, questions)]
    fresh = []
    for arguments in map(dict, questions):
        tuning._cache.clear()
        fresh.append(ask(steps=arguments.pop("steps", 100), **arguments))
    assert cached == fresh
    assert cached[2] != cached[0]  # another Rosenbrock, another best rate
