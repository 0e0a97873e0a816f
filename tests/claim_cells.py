"""Run a notebook's claim cells in this process, so that a test can hand them a wrong input and watch them fail.

A claim cell is an instructor notebook cell tagged ``claim-N`` (N as in the course's claims.md). It runs on its
own after its notebook's import cell (the first code cell); a claim spread over several cells runs them in
order (``cells`` picks some of them). ``run_claim`` executes the import cell and the claim's cells with
``exec``, so that anything monkeypatched in course_lib beforehand (a rule, a measurement, a theory function)
is what the notebook's own code calls.

A claim shown in two notebooks (claim 27: DropConnect in 07, augmentation, fractional max pooling and stochastic
depth in 08) is looked up with ``notebook=`` (the notebook's name, e.g. "08_randomness_regularizers"). A
correction of the lecture that a cell asserts outside any claim is tagged ``correction-<what>`` and runs the same
way, by its tag (``run_cells``).
"""

import contextlib
import io
import traceback
from dataclasses import dataclass
from pathlib import Path

import nbformat
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "instructor" / "source"


@dataclass(frozen=True)
class ClaimCells:
    notebook: Path
    tag: str  # e.g. "claim-25"
    imports: str  # the notebook's import cell
    cells: tuple  # the sources of the cells tagged ``tag``, in notebook order


def tagged_cells(tag, notebook=None):
    """The import cell and the cells tagged ``tag`` of the one instructor notebook that holds them (of
    ``notebook``, if given)."""
    found = []
    paths = [SOURCE / notebook / f"{notebook}.ipynb"] if notebook else sorted(SOURCE.glob("*/*.ipynb"))
    for path in paths:
        source = nbformat.read(path, as_version=4)
        cells = tuple(cell.source for cell in source.cells if tag in cell.metadata.get("tags", []))
        if cells:
            imports = next(cell.source for cell in source.cells if cell.cell_type == "code")
            found.append(ClaimCells(path, tag, imports, cells))
    if len(found) != 1:
        where = "" if notebook else " (name the notebook of a claim shown in two)"
        raise LookupError(f"{tag} should be tagged in one notebook{where}, found {[f.notebook for f in found]}")
    return found[0]


def claim_cells(number, notebook=None):
    """The import cell and the claim-``number`` cells of the instructor notebook that holds them."""
    return tagged_cells(f"claim-{number}", notebook)


def _filename(found, label):
    return f"<{found.notebook.stem} {label}>"


def run_cells(tag, cells=None, notebook=None):
    """Execute the import cell and the cells tagged ``tag`` (all, or the indices in ``cells``); return what they
    print.

    BLAS thread limits a notebook sets (notebook 05 runs BLAS on one thread) are undone afterwards.
    """
    found = tagged_cells(tag, notebook)
    chosen = [(k, source) for k, source in enumerate(found.cells) if cells is None or k in cells]
    namespace = {"__name__": tag.replace("-", "_")}
    printed = io.StringIO()
    with threadpool_limits(limits=None), contextlib.redirect_stdout(printed):
        exec(compile(found.imports, _filename(found, "imports"), "exec"), namespace)
        for k, source in chosen:
            exec(compile(source, _filename(found, f"{tag} cell {k}"), "exec"), namespace)
    return printed.getvalue()


def run_claim(number, cells=None, notebook=None):
    """``run_cells`` for claim ``number``."""
    return run_cells(f"claim-{number}", cells, notebook)


def failing_assert(number, error, notebook=None):
    """The source line of the claim cell whose ``assert`` raised ``error``, or None if it was not one.
    ``number`` may also be a whole tag (``"correction-weight-decay"``)."""
    found = tagged_cells(number if isinstance(number, str) else f"claim-{number}", notebook)
    prefix = f"<{found.notebook.stem} {found.tag} cell "
    for frame, line_number in reversed(list(traceback.walk_tb(error.__traceback__))):
        name = frame.f_code.co_filename
        if name.startswith(prefix):
            lines = found.cells[int(name[len(prefix):-1])].splitlines()
            line = lines[line_number - 1].strip()
            return line if line.startswith("assert") else None
    return None
