"""Synthetic submissions for the grading tests, built from the committed student notebooks.

Each student answers some notebooks; each answer is the student notebook with exercise cells filled, or raw
bytes for a broken file. Besides honest mistakes (wrong, looping, raising, blank, malformed) the corpus holds
the attacks of a class's most inventive student: a WRONG adam (no bias correction) wrapped in every trick that
could make it score, code that tries to change files outside its sandbox (other students' submissions, the
instructor sources, the library, the grader's output), to read the grader's arguments, to reach the network, to
exhaust memory, processes or the feedback page. ``expected(submissions, out)`` holds the per-exercise scores the
grader must give each (student, notebook), or the start of the error for a submission that cannot be graded.

    write_corpus(folder, out)  # writes folder/<student>/<notebook>.ipynb; attacks aim at ``folder`` and ``out``
"""

import copy
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
STUDENT_NOTEBOOKS = ROOT / "notebooks"
SOURCE = ROOT / "instructor" / "source"

NB1 = "01_problems_of_optimization"
NB2 = "02_momentum_and_nesterov"
NB3 = "03_adaptive_methods"
NB6 = "06_ensembles_and_averaging"
NB7 = "07_dropout"
NB8 = "08_randomness_regularizers"
NB9 = "09_batch_norm"
NB10 = "10_transfer_learning"
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")


def grade_id(cell):
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def reference_solutions(name):
    """grade_id -> the instructor's solution cell with the marker lines removed (a correct answer)."""
    source = nbformat.read(SOURCE / name / f"{name}.ipynb", as_version=4)
    return {grade_id(cell): "\n".join(line for line in cell.source.splitlines() if line.strip() not in MARKERS)
            for cell in source.cells if cell.get("metadata", {}).get("nbgrader", {}).get("solution")}


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
        self.nb = nbformat.read(STUDENT_NOTEBOOKS / f"{name}.ipynb", as_version=4)
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

    def insert_before(self, cell_id, source):
        """A new code cell (no nbgrader metadata) just above ``cell_id``."""
        index, _ = find_cell(self.nb, cell_id)
        self.nb.cells.insert(index, nbformat.v4.new_code_cell(source))
        return self

    def delete(self, cell_id):
        index, _ = find_cell(self.nb, cell_id)
        del self.nb.cells[index]
        return self

    def to_bytes(self):
        return nbformat.writes(copy.deepcopy(self.nb)).encode()


LOOP_FOREVER = "while True:\n    pass"
HARDCODED_RHO = ('rho = config.get("rho", 0.9)', "rho = 0.9")
# Batch norm's running averages with CS231n's momentum convention (the old value weighted by momentum).
MOMENTUM_SWAPPED = [(f"(1 - momentum) * running_{name} + momentum * {batch}",
                     f"momentum * running_{name} + (1 - momentum) * {batch}")
                    for name, batch in (("mean", "mean"), ("var", "variance * n / (n - 1)"))]
NO_BIAS_CORRECTION = ("first_unbiased = first_moment / (1 - beta1**t)", "first_unbiased = first_moment")
EMA_SWAPPED = ("decay * average + (1 - decay) * weights", "decay * weights + (1 - decay) * average")
EVAL_FORGOTTEN = ("            model.eval()\n", "")
EMA_IN_PLACE = ("new_average = copy.deepcopy(average_model)", "new_average = average_model")
# Random exercises, judged by properties: survivors never scaled (a likely bug); shifts drawn from numpy's global
# generator instead of rng (no likely bug: the judge says what differs).
DROPOUT_NEVER_SCALED = ("return x * mask / keep", "return x * mask")
SHIFTS_FROM_GLOBAL_NUMPY = ("rng.integers(-max_shift, max_shift + 1, size=len(signals))",
                            "np.random.randint(-max_shift, max_shift + 1, size=len(signals))")


def wrong_adam():
    """Adam without the bias correction of the first moment: wrong, and passes no check."""
    return replacing(reference_solutions(NB3)["adam"], *NO_BIAS_CORRECTION)


def _indent(text):
    return "\n".join("    " + line for line in text.splitlines())


def attacks(submissions, out):
    """name -> code put in the adam cell (around a wrong adam) or in a cell of its own just above the check."""
    targets = [str(submissions), str(out), str(SOURCE), str(ROOT / "course_lib"), str(ROOT / "notebooks")]
    vandal = (
        "import os\n"
        f"for top in {targets!r}:\n"
        "    for folder, _, files in os.walk(top):\n"
        "        for file in files:\n"
        "            try:\n"
        "                with open(os.path.join(folder, file), 'a') as handle:\n"
        "                    handle.write('pwned')\n"
        "            except OSError:\n"
        "                pass\n"
        "    try:\n"
        "        open(os.path.join(top, 'planted.py'), 'w').write('pwned')\n"
        "    except OSError:\n"
        "        pass\n")
    return {
        # The checks are made to pass in the learner's process: only numbers leave the sandbox.
        "noop_checks": "import course_lib.checks as c\nc.check = lambda *a, **k: None\n"
                       "c.judge = lambda *a: None\n",
        "allclose_always_true": "import numpy as np\nnp.allclose = lambda *a, **k: True\n"
                                "np.array_equal = lambda *a, **k: True\n",
        "replace_reference": "from course_lib import optim\nimport course_lib.optim\n"
                             "course_lib.optim.adam = adam\noptim.RULES['adam'] = adam\n",
        "hidden_import": "lib = __import__('course' + '_lib' + '.optim', fromlist=['adam'])\nadam = lib.adam\n",
        "vandal": vandal,
        "read_grader_arguments": "import os\n"
                                 "print('SPIED', [open(f'/proc/{p}/cmdline').read() for p in os.listdir('/proc')\n"
                                 "                if p.isdigit()])\n",
        "network": "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:9/', timeout=3)\n",
        "memory_3gb": "import numpy as np\nhog = np.ones(3 * 2**30 // 8)\n",
        "flood_output": "print('x' * 50_000_000)\n",
        "fork_bomb": "import os\nfor _ in range(200):\n    try:\n        os.fork()\n"
                     "    except OSError:\n        break\n",
        "fake_outputs": "import numpy as np, os\n"
                        "np.savez('/tmp/judge/out/outputs.npz', **{'0/0.next_x': np.zeros(5)})\n"
                        "open('/tmp/judge/out/events.json', 'w').write('[]')\nos._exit(0)\n",
        "pickled_outputs": "import numpy as np, os\n"
                           "np.savez('/tmp/judge/out/outputs.npz', a=np.array([object()]))\n"
                           "open('/tmp/judge/out/events.json', 'w').write('[]')\nos._exit(0)\n",
        "lying_equality": "class Anything(float):\n    def __eq__(self, other):\n        return True\n"
                          "    __hash__ = float.__hash__\n",
        "exit_early": "raise SystemExit(0)\n",
    }


# Attacks that would work in a kernel shared with the tests, tried again from a cell of their own.
OWN_CELL_ATTACKS = ("noop_checks", "allclose_always_true", "replace_reference", "vandal", "exit_early")


def corpus(submissions, out):
    """{student: {notebook: bytes}} for every case; the expected scores are in ``expected``."""
    nb1_ids = ("best_learning_rate", "steps_to_shrink")
    nb2_ids = ("sgd_momentum", "nesterov")
    nb3_ids = ("rmsprop", "adam")
    nb6_ids = ("ema_update", "ensemble_predict")
    nb9_ids = ("batchnorm_forward", "batchnorm_backward")
    freeze = "freeze_body_and_replace_head"
    momentum_swapped = reference_solutions(NB9)["batchnorm_forward"]
    for old, new in MOMENTUM_SWAPPED:
        momentum_swapped = replacing(momentum_swapped, old, new)
    cases = {
        "correct": {NB1: Answer(NB1).solve(*nb1_ids), NB2: Answer(NB2).solve(*nb2_ids),
                    NB3: Answer(NB3).solve(*nb3_ids), NB6: Answer(NB6).solve(*nb6_ids),
                    NB7: Answer(NB7).solve("inverted_dropout"), NB8: Answer(NB8).solve("random_circular_shift"),
                    NB9: Answer(NB9).solve(*nb9_ids), NB10: Answer(NB10).solve(freeze)},
        # Random exercises, judged by properties: 7.1 with a likely bug, 8.1 drawing from numpy's global generator.
        "random_mistakes": {NB7: Answer(NB7).edit("inverted_dropout", *DROPOUT_NEVER_SCALED),
                            NB8: Answer(NB8).edit("random_circular_shift", *SHIFTS_FROM_GLOBAL_NUMPY)},
        # Notebook 06's functions of torch models: old and new weights swapped, and eval() forgotten ...
        "swapped_ema_and_eval_forgotten": {NB6: Answer(NB6).edit("ema_update", *EMA_SWAPPED)
                                           .edit("ensemble_predict", *EVAL_FORGOTTEN)},
        # ... the right numbers from an average changed in place, and a cell that relies on an import made
        # elsewhere in the notebook (the grader runs the exercise's cell alone).
        "ema_in_place_and_missing_import": {NB6: Answer(NB6).edit("ema_update", *EMA_IN_PLACE).write(
            "ensemble_predict", "def ensemble_predict(models, inputs):\n"
                                "    members = [copy.deepcopy(model).eval() for model in models]\n"
                                "    return torch.stack([m(inputs).softmax(-1) for m in members]).mean(0)")},
        # Batch norm: a likely bug in 9.1 (named in the feedback), 9.2 right; 10.1 with the body left in
        # training mode (a likely bug), and 10.1 changing the caller's model (a structural mistake).
        "batch_norm_momentum_swapped": {NB9: Answer(NB9).solve("batchnorm_backward").write("batchnorm_forward",
                                                                                           momentum_swapped)},
        "frozen_body_left_training": {NB10: Answer(NB10).edit(freeze, "    model.body.eval()\n", "")},
        "frozen_in_place": {NB10: Answer(NB10).edit(freeze, "model = copy.deepcopy(model)", "model = model")},
        # sgd_momentum ignores config["rho"]; nesterov has a syntax error.
        "hardcoded_rho_and_syntax_error": {NB2: Answer(NB2).edit("sgd_momentum", *HARDCODED_RHO).write(
            "nesterov", "def nesterov(x, dx, config=None)\n    return x, config")},
        # An infinite loop inside a function, and one at the top level of a cell: each costs its exercise only.
        "loop_in_function": {NB2: Answer(NB2).solve("nesterov").write(
            "sgd_momentum", f"def sgd_momentum(x, dx, config=None):\n{_indent(LOOP_FOREVER)}")},
        "loop_top_level": {NB1: Answer(NB1).solve("steps_to_shrink").write(
            "best_learning_rate", f"{LOOP_FOREVER}\n\n{reference_solutions(NB1)['best_learning_rate']}")},
        # The process dies in exercise 2.2; exercise 2.1 is graded on its own.
        "process_killed": {NB2: Answer(NB2).solve("sgd_momentum").write("nesterov", "import os\nos._exit(1)")},
        # Check cells weakened or deleted: they are not what grading runs.
        "tampered_checks": {NB2: Answer(NB2).write("sgd_momentum", "def sgd_momentum(x, dx, config=None):\n"
                                                                   "    raise ValueError('not today')")
                            .write("check_sgd_momentum", "pass").solve("nesterov").delete("check_nesterov")},
        # The library's own answer, plainly.
        "library_answer": {NB3: Answer(NB3).solve("rmsprop").write(
            "adam", "import course_lib\n\ndef adam(x, dx, config=None):\n"
                    "    return course_lib.optim.adam(x, dx, config)")},
        # A right answer whose cell lost its nbgrader metadata (copied and pasted): found by its def.
        "lost_metadata": {NB2: _without_metadata(Answer(NB2).solve(*nb2_ids), "nesterov")},
        "blank": {NB1: Answer(NB1)},
        "malformed": {NB2: b'{"cells": [ this is not JSON'},
    }
    for name, code in attacks(submissions, out).items():
        in_cell = f"{code}\n{wrong_adam()}" if name not in ("hidden_import", "replace_reference") else \
            f"{wrong_adam()}\n{code}"
        cases[f"attack_{name}"] = {NB3: Answer(NB3).write("adam", in_cell)}
        if name in OWN_CELL_ATTACKS:
            # the code in a cell of its own above the check, a right answer in the exercise cell: what a
            # notebook's own kernel would have let it change does not count (only the exercise's cell runs)
            cases[f"attack_{name}_own_cell"] = {NB3: Answer(NB3).solve("adam").insert_before("check_adam", code)}
    return {student: {name: answer if isinstance(answer, bytes) else answer.to_bytes()
                      for name, answer in answers.items()}
            for student, answers in cases.items()}


def _without_metadata(answer, cell_id):
    del find_cell(answer.nb, cell_id)[1].metadata["nbgrader"]
    return answer


def expected(submissions, out):
    """(student, notebook) -> {check cell: points}, or the start of the error for an ungradable submission."""
    full = {NB1: {"check_best_learning_rate": 1, "check_steps_to_shrink": 1},
            NB2: {"check_sgd_momentum": 2, "check_nesterov": 2},
            NB3: {"check_rmsprop": 2, "check_adam": 2},
            NB6: {"check_ema_update": 2, "check_ensemble_predict": 2},
            NB7: {"check_inverted_dropout": 2}, NB8: {"check_random_circular_shift": 2},
            NB9: {"check_batchnorm_forward": 2, "check_batchnorm_backward": 2},
            NB10: {"check_freeze_body_and_replace_head": 2}}
    scores = {
        ("correct", NB1): full[NB1], ("correct", NB2): full[NB2], ("correct", NB3): full[NB3],
        ("correct", NB6): full[NB6], ("correct", NB7): full[NB7], ("correct", NB8): full[NB8],
        ("correct", NB9): full[NB9], ("correct", NB10): full[NB10],
        ("random_mistakes", NB7): {"check_inverted_dropout": 0},
        ("random_mistakes", NB8): {"check_random_circular_shift": 0},
        ("swapped_ema_and_eval_forgotten", NB6): {"check_ema_update": 0, "check_ensemble_predict": 0},
        ("ema_in_place_and_missing_import", NB6): {"check_ema_update": 0, "check_ensemble_predict": 0},
        ("batch_norm_momentum_swapped", NB9): {"check_batchnorm_forward": 0, "check_batchnorm_backward": 2},
        ("frozen_body_left_training", NB10): {"check_freeze_body_and_replace_head": 0},
        ("frozen_in_place", NB10): {"check_freeze_body_and_replace_head": 0},
        ("hardcoded_rho_and_syntax_error", NB2): {"check_sgd_momentum": 0, "check_nesterov": 0},
        ("loop_in_function", NB2): {"check_sgd_momentum": 0, "check_nesterov": 2},
        ("loop_top_level", NB1): {"check_best_learning_rate": 0, "check_steps_to_shrink": 1},
        ("process_killed", NB2): {"check_sgd_momentum": 2, "check_nesterov": 0},
        ("tampered_checks", NB2): {"check_sgd_momentum": 0, "check_nesterov": 2},
        ("library_answer", NB3): {"check_rmsprop": 2, "check_adam": 0},
        ("lost_metadata", NB2): full[NB2],
        ("blank", NB1): {"check_best_learning_rate": 0, "check_steps_to_shrink": 0},
        ("malformed", NB2): "malformed",
    }
    for name in attacks(submissions, out):
        scores[(f"attack_{name}", NB3)] = {"check_rmsprop": 0, "check_adam": 0}
        if name in OWN_CELL_ATTACKS:
            scores[(f"attack_{name}_own_cell", NB3)] = {"check_rmsprop": 0, "check_adam": 2}
    return scores


def write_corpus(folder, out):
    folder = Path(folder)
    for student, answers in corpus(folder, out).items():
        (folder / student).mkdir(parents=True, exist_ok=True)
        for name, data in answers.items():
            (folder / student / f"{name}.ipynb").write_bytes(data)
    (folder / "no_notebook").mkdir(exist_ok=True)  # a student who handed in nothing still gets a row
    return folder
