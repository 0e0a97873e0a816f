"""Races that compare fairly, played in JupyterLab in Chromium as a learner meets them.

1. Notebook 03's race of all six rules on Rosenbrock: after Run All, its first view shows no divergence (the
   line under the picture, and the kernel's runs), and names each rule's learning rate; the slider of each
   rule's learning rate reads the rate named.
2. Notebook 02's tuned race: gradient descent at its best learning rate 2/(L + mu) and momentum at its best
   (alpha, rho), side by side on the kappa = 100 valley. The test computes those values from the kappa slider's
   readout, and compares them with the sliders' readouts and the line under the picture; then measures, in
   the kernel, the rate at which each run's error shrank: (kappa-1)/(kappa+1) and (sqrt(kappa)-1)/(sqrt(kappa)+1).
   Then one click on "each at its best on this landscape": the search's values, no divergence, and momentum
   still far ahead.

    .venv/bin/python -m pytest -q tests/browser/test_fair_races.py
"""

import math
import re

from lab_in_browser import race_widgets

RULES = ("sgd", "sgd_momentum", "nesterov", "adagrad", "rmsprop", "adam")


def _race_in_cell(notebook, index):
    notebook.wait_for_widgets()
    found = [widget for widget in race_widgets(notebook) if widget.cell_index() == index]
    assert len(found) == 1, f"{notebook.path} cell {index}: {len(found)} race pictures, expected 1"
    return found[0]


def _named(summary, label):
    """{'α': '1.98', 'ρ': '0.669'}: the values the line under the picture gives ``label``."""
    found = re.search(rf"(?:^|[:;] ){re.escape(label)} \(([^)]*)\)", summary)
    assert found, f"{label!r} is not named with its values in: {summary!r}"
    return dict(part.split("=") for part in found.group(1).split(", "))


def test_the_six_rule_race_opens_with_no_divergence_and_names_each_rate(open_notebook):
    notebook = open_notebook("03_adaptive_methods.ipynb")
    notebook.run_all()
    cell = notebook.cell_index(lambda source: "optim.RULES" in source and "widgets.race" in source)
    race = _race_in_cell(notebook, cell)
    summary = race.summary()
    assert summary.startswith("Each at its best on this landscape"), summary
    assert "diverged" not in summary, f"the first view shows a divergence: {summary}"
    readouts = race.readouts()
    for rule in RULES:
        rate = _named(summary, rule)["α"]
        assert float(rate) > 0
        shown = readouts.get(f"{rule}: α")
        assert shown is not None and float(shown) == float(rate), (
            f"{rule}'s α slider reads {shown!r}, the line under the picture says {rate}")
    state = notebook.peek(diverged=f"[r.diverged_at for r in {notebook.output_of(cell)}.results.values()]",
                          message=f"{notebook.output_of(cell)}.picture.message.get_text()")
    assert state["diverged"] == repr([None] * 6), state
    assert "diverged" not in state["message"], state
    problems = notebook.problems()
    assert not problems, "\n".join(problems)


def test_the_tuned_race_shows_both_at_their_best_rates_side_by_side(open_notebook):
    notebook = open_notebook("02_momentum_and_nesterov.ipynb")
    notebook.run_all()
    cell = notebook.cell_index(lambda text: "momentum_best_hyperparameters" in text and "widgets.race" in text)
    race = _race_in_cell(notebook, cell)
    readouts = race.readouts()
    kappa = float(readouts["condition number κ"])
    root = math.sqrt(kappa)
    # Theory, computed here: gradient descent's best step 2 / (L + mu), with L = 1 and mu = 1 / kappa, shrinks the
    # error by (kappa-1)/(kappa+1) per step; the heavy ball's best (Polyak) by (sqrt(kappa)-1)/(sqrt(kappa)+1).
    descent_rate = 2 / (1 + 1 / kappa)
    momentum_rate, momentum_rho = 4 / (1 + 1 / root) ** 2, ((root - 1) / (root + 1)) ** 2
    summary = race.summary()
    labels = {"gradient descent": {"α": descent_rate}, "momentum": {"α": momentum_rate, "ρ": momentum_rho}}
    for label, values in labels.items():
        named = _named(summary, label)
        for symbol, value in values.items():
            assert float(named[symbol]) == float(f"{value:.3g}"), f"{label} {symbol}: {named} vs theory {value}"
            slider = readouts[f"{label}: {symbol}"]
            assert abs(float(slider) - value) <= 0.0051 * value, f"{label}'s {symbol} slider reads {slider}"
    assert "diverged" not in summary
    race_object = notebook.output_of(cell)
    measured = notebook.peek(rates=f"[__import__('course_lib').measure.convergence_rate("
                                   f"{race_object}.results[label], (0.0, 0.0)) for label in ('gradient descent', "
                                   f"'momentum')]")
    descent_measured, momentum_measured = (float(x) for x in measured["rates"].strip("[]").split(","))
    assert abs(descent_measured - (kappa - 1) / (kappa + 1)) < 0.002, measured
    assert abs(momentum_measured - (root - 1) / (root + 1)) < 0.01 * (root - 1) / (root + 1), measured

    # One click: each at its best on this landscape by search, still side by side, none diverging.
    before = race.src()
    race.button("each at its best on this landscape").click()
    notebook.page.wait_for_function("([img, src]) => img.getAttribute('src') !== src",
                                    arg=[race.image.element_handle(), before], timeout=60_000)
    notebook.page.wait_for_function(
        "(box) => /Each at its best on this landscape/.test(box.innerText)", arg=race.box.element_handle(),
        timeout=30_000)
    searched = race.summary()
    assert "diverged" not in searched, searched
    readouts = race.readouts()
    for label in labels:
        assert float(readouts[f"{label}: α"]) == float(_named(searched, label)["α"]), (readouts, searched)
    gaps = notebook.peek(gaps=f"[float({race_object}.results[label].losses[-1]) for label in ('gradient descent', "
                              f"'momentum')]")
    descent_gap, momentum_gap = (float(x) for x in gaps["gaps"].strip("[]").split(","))
    assert momentum_gap < 1e-6 * descent_gap, gaps
    problems = notebook.problems()
    assert not problems, "\n".join(problems)
