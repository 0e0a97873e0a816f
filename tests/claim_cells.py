"""Re-run a notebook's claim cells (tagged ``claim-NN``) outside the notebook, so that a test can inject a
known-wrong input (a buggy implementation, a handicapped model, tampered data) and see the claim's assert fail.

A claim cell is self-contained given the notebook's import cell (its first code cell): ``run_claim`` executes
that cell and then the claim cell in one fresh namespace, with whatever the test has monkeypatched in place.
"""

from pathlib import Path

import nbformat

SOURCE = Path(__file__).resolve().parent.parent / "instructor" / "source"


def notebook(name):
    return nbformat.read(SOURCE / name / f"{name}.ipynb", as_version=4)


def claim_cells(name, claim):
    """The sources of the code cells tagged ``claim-<claim>``, in order."""
    tag = f"claim-{claim}"
    return [cell.source for cell in notebook(name).cells
            if cell.cell_type == "code" and tag in cell.metadata.get("tags", [])]


def import_cell(name):
    return next(cell.source for cell in notebook(name).cells if cell.cell_type == "code")


def run_claim(name, source, **names):
    """Execute the import cell, then ``source``, in a fresh namespace where ``names`` override the import
    cell's names; return the namespace."""
    namespace = {"__name__": "__claim__"}
    exec(compile(import_cell(name), f"{name}: import cell", "exec"), namespace)
    namespace.update(names)
    exec(compile(source, f"{name}: claim cell", "exec"), namespace)
    return namespace
