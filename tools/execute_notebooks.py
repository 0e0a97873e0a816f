"""Execute instructor notebooks in place, so that their stored outputs are what the current code prints.

    .venv/bin/python tools/execute_notebooks.py instructor/source/02_momentum_and_nesterov/*.ipynb
    .venv/bin/python tools/execute_notebooks.py            # every instructor notebook

Run it after editing a notebook (then `make release`). Every cell has a finite timeout (a widget cell can hang
an ipykernel forever without one); a cell that raises stops the run and leaves the file untouched. No timing
metadata and no widget state are stored, so a re-execution changes only the outputs.
"""

import argparse
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent


def execute(path, cell_timeout):
    notebook = nbformat.read(path, as_version=4)
    NotebookClient(notebook, timeout=cell_timeout, kernel_name="python3", record_timing=False,
                   store_widget_state=False, resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(notebook, path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: every instructor notebook)")
    parser.add_argument("--cell-timeout", type=int, default=300, help="seconds per cell (default 300)")
    args = parser.parse_args(argv)
    paths = args.paths or sorted((ROOT / "instructor" / "source").glob("*/*.ipynb"))
    for path in paths:
        print(f"executing {path}", file=sys.stderr)
        execute(path.resolve(), args.cell_timeout)


if __name__ == "__main__":
    main()
