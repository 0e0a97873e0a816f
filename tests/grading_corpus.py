"""Synthetic submissions for the grading test, built from the committed student notebooks.

Each student answers some notebooks; each answer is the student notebook with exercise cells filled (or test
cells tampered with), or raw bytes for a broken file. ``EXPECTED`` holds the per-exercise scores nbgrader
must give each (student, notebook), or an error for a submission that cannot be graded.

    write_corpus(folder)  # writes folder/<student>/<notebook>.ipynb for every case below
"""

import copy
import json
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
STUDENT_NOTEBOOKS = ROOT / "notebooks"
SOURCE = ROOT / "instructor" / "source"

NB1 = "01_problems_of_optimization"
NB2 = "02_momentum_and_nesterov"
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")


def grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def student_notebook(name):
    return nbformat.read(STUDENT_NOTEBOOKS / f"{name}.ipynb", as_version=4)


def reference_solutions(name):
    """grade_id -> the instructor's solution cell with the marker lines removed (a correct answer)."""
    source = nbformat.read(SOURCE / name / f"{name}.ipynb", as_version=4)
    return {grade_id(cell): "\n".join(line for line in cell.source.splitlines()
                                      if line.strip() not in MARKERS)
            for cell in source.cells
            if cell.get("metadata", {}).get("nbgrader", {}).get("solution")}


def find_cell(nb, cell_id):
    for index, cell in enumerate(nb.cells):
        if grade_id(cell) == cell_id:
            return index, cell
    raise KeyError(f"no cell {cell_id!r} in the notebook")


def replacing(text, old, new):
    """``text`` with ``old`` replaced by ``new``; fails if ``old`` is not there (the notebook changed)."""
    assert old in text, f"{old!r} not found in {text!r}"
    return text.replace(old, new)


class Answer:
    """A student notebook being filled in."""

    def __init__(self, name):
        self.name = name
        self.nb = student_notebook(name)
        self.solutions = reference_solutions(name)

    def solve(self, *cell_ids):
        for cell_id in cell_ids:
            self.write(cell_id, self.solutions[cell_id])
        return self

    def write(self, cell_id, source):
        find_cell(self.nb, cell_id)[1].source = source
        return self

    def edit(self, cell_id, old, new):
        """Write the reference solution of ``cell_id`` with ``old`` replaced by ``new``."""
        return self.write(cell_id, replacing(self.solutions[cell_id], old, new))

    def delete(self, cell_id):
        index, _ = find_cell(self.nb, cell_id)
        del self.nb.cells[index]
        return self

    def to_bytes(self):
        return nbformat.writes(copy.deepcopy(self.nb)).encode()


LOOP_FOREVER = "while True:\n    pass"
# sgd_momentum that reads the learning rate from config but always uses rho = 0.9
HARDCODED_RHO = ('rho = config.get("rho", 0.9)', "rho = 0.9")


def corpus():
    """{student: {notebook: bytes}} for every case; the expected scores are in ``EXPECTED``."""
    nb1_ids = ("condition_number", "gradient_descent_rate")
    nb2_ids = ("sgd_momentum", "nesterov")
    cases = {
        # Everything right, both notebooks.
        "correct": {NB1: Answer(NB1).solve(*nb1_ids), NB2: Answer(NB2).solve(*nb2_ids)},
        # sgd_momentum passes the visible check (default rho) but ignores config["rho"]: the hidden tests use
        # rho 0.5 and 0. nesterov has a syntax error.
        "hardcoded_rho_and_syntax_error": {NB2: Answer(NB2).edit(
            "sgd_momentum", HARDCODED_RHO[0], HARDCODED_RHO[1]).write(
            "nesterov", "def nesterov(x, dx, config=None)\n    return x, config")},
        # An infinite loop inside a function: every cell that calls it times out; the rest still scores.
        "loop_in_function": {NB2: Answer(NB2).solve("nesterov").write(
            "sgd_momentum", f"def sgd_momentum(x, dx, config=None):\n{_indent(LOOP_FOREVER)}")},
        # An infinite loop at the top level of a cell, before the def (which never runs); the next exercise
        # still scores.
        "loop_top_level": {NB1: Answer(NB1).solve("gradient_descent_rate").write(
            "condition_number", f"{LOOP_FOREVER}\n\n{reference_solutions(NB1)['condition_number']}")},
        # The kernel dies in exercise 2.2, after exercise 2.1 was graded.
        "kernel_killed": {NB2: Answer(NB2).solve("sgd_momentum").write("nesterov", "import os\nos._exit(1)")},
        # Test cells weakened or deleted: nbgrader restores them from its gradebook and runs the real tests.
        # sgd_momentum raises (its check cell replaced by `pass` would have given full points); nesterov is
        # right and its deleted check cell comes back.
        "tampered_and_raises": {NB2: Answer(NB2)
                                .write("sgd_momentum", "def sgd_momentum(x, dx, config=None):\n"
                                                       "    raise ValueError('not today')")
                                .write("check_sgd_momentum", "pass")
                                .solve("nesterov").delete("check_nesterov")},
        # The student notebook as released.
        "blank": {NB1: Answer(NB1)},
        # Not a notebook at all.
        "malformed": {NB2: b'{"cells": [ this is not JSON'},
    }
    return {student: {name: answer if isinstance(answer, bytes) else answer.to_bytes()
                      for name, answer in answers.items()}
            for student, answers in cases.items()}


def _indent(text):
    return "\n".join("    " + line for line in text.splitlines())


# (student, notebook) -> {grade cell: points}, or the start of the error note for an ungradable submission
EXPECTED = {
    ("correct", NB1): {"check_condition_number": 1, "check_gradient_descent_rate": 1},
    ("correct", NB2): {"check_sgd_momentum": 2, "check_nesterov": 2},
    ("hardcoded_rho_and_syntax_error", NB2): {"check_sgd_momentum": 0, "check_nesterov": 0},
    ("loop_in_function", NB2): {"check_sgd_momentum": 0, "check_nesterov": 2},
    ("loop_top_level", NB1): {"check_condition_number": 0, "check_gradient_descent_rate": 1},
    ("kernel_killed", NB2): {"check_sgd_momentum": 2, "check_nesterov": 0},
    ("tampered_and_raises", NB2): {"check_sgd_momentum": 0, "check_nesterov": 2},
    ("blank", NB1): {"check_condition_number": 0, "check_gradient_descent_rate": 0},
    ("malformed", NB2): "malformed",
}


def write_corpus(folder):
    folder = Path(folder)
    for student, answers in corpus().items():
        (folder / student).mkdir(parents=True, exist_ok=True)
        for name, data in answers.items():
            (folder / student / f"{name}.ipynb").write_bytes(data)
    return folder


if __name__ == "__main__":
    import sys

    print(json.dumps(sorted(str(p) for p in write_corpus(sys.argv[1]).rglob("*.ipynb")), indent=1))
