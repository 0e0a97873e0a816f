"""Run a notebook's claim cells in this process, so that a test can hand them a wrong input and watch them fail.

A claim cell is an instructor notebook cell tagged ``claim-N`` (N as in the course's claims.md). It runs on its
own after its notebook's import cell (the first code cell); a claim spread over several cells runs them in
order (``cells`` picks some of them). ``run_claim`` executes the import cell and the claim's cells with
``exec``, so that anything monkeypatched in course_lib beforehand (a rule, a measurement, a theory function)
is what the notebook's own code calls.
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
    imports: str  # the notebook's import cell
    cells: tuple  # the sources of the cells tagged claim-N, in notebook order


def claim_cells(number):
    """The import cell and the claim-``number`` cells of the instructor notebook that holds them."""
    found = []
    for path in sorted(SOURCE.glob("*/*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        cells = tuple(cell.source for cell in notebook.cells
                      if f"claim-{number}" in cell.metadata.get("tags", []))
        if cells:
            imports = next(cell.source for cell in notebook.cells if cell.cell_type == "code")
            found.append(ClaimCells(path, imports, cells))
    if len(found) != 1:
        raise LookupError(f"claim {number} should be tagged in one notebook, found {[f.notebook for f in found]}")
    return found[0]


def _filename(notebook, label):
    return f"<{notebook.stem} {label}>"


def run_claim(number, cells=None):
    """Execute the import cell and the claim's cells (all, or the indices in ``cells``); return what they print.

    BLAS thread limits a notebook sets (notebook 05 runs BLAS on one thread) are undone afterwards.
    """
    claim = claim_cells(number)
    chosen = [(k, source) for k, source in enumerate(claim.cells) if cells is None or k in cells]
    namespace = {"__name__": f"claim_{number}"}
    printed = io.StringIO()
    with threadpool_limits(limits=None), contextlib.redirect_stdout(printed):
        exec(compile(claim.imports, _filename(claim.notebook, "imports"), "exec"), namespace)
        for k, source in chosen:
            exec(compile(source, _filename(claim.notebook, f"claim-{number} cell {k}"), "exec"), namespace)
    return printed.getvalue()


def failing_assert(number, error):
    """The source line of the claim cell whose ``assert`` raised ``error``, or None if it was not one."""
    claim = claim_cells(number)
    for frame, line_number in reversed(list(traceback.walk_tb(error.__traceback__))):
        name = frame.f_code.co_filename
        prefix = f"<{claim.notebook.stem} claim-{number} cell "
        if name.startswith(prefix):
            lines = claim.cells[int(name[len(prefix):-1])].splitlines()
            line = lines[line_number - 1].strip()
            return line if line.startswith("assert") else None
    return None
