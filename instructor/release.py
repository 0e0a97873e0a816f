"""Generate the student notebooks (notebooks/) from the instructor sources (instructor/source/) with nbgrader.

    python instructor/release.py            # what `make release` runs: rewrites notebooks/*.ipynb
    python instructor/release.py --out DIR  # generate elsewhere (tests compare that with notebooks/)

nbgrader's generate_assignment strips the solutions (### BEGIN SOLUTION ... ### END SOLUTION becomes
`raise NotImplementedError()`), the hidden tests and every output. It runs in a temporary copy of the course
directory, so the repository never collects a gradebook or a release/ folder. The worked solutions go to
notebooks/solutions/, linked from each notebook's exercises; a classroom copy can leave that folder out.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

INSTRUCTOR = Path(__file__).resolve().parent
ROOT = INSTRUCTOR.parent
SOURCE = INSTRUCTOR / "source"
STUDENT_NOTEBOOKS = ROOT / "notebooks"


def assignments():
    """The assignment names: one folder per notebook in instructor/source/."""
    return sorted(path.name for path in SOURCE.iterdir() if (path / f"{path.name}.ipynb").is_file())


def nbgrader_environment():
    """The environment for nbgrader's command line: it calls the `alembic` script next to the interpreter."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def make_course_copy(destination):
    """A working copy of the course directory (sources and config) in ``destination``."""
    shutil.copytree(SOURCE, destination / "source")
    shutil.copy2(INSTRUCTOR / "nbgrader_config.py", destination / "nbgrader_config.py")
    return destination


def generate(out_dir):
    """Write every student notebook into ``out_dir``; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as temporary:
        course = make_course_copy(Path(temporary))
        command = [sys.executable, "-m", "nbgrader", "generate_assignment", "*", "--force", "--log-level=WARN"]
        subprocess.run(command, cwd=course, env=nbgrader_environment(), check=True)
        written = []
        for name in assignments():
            target = out_dir / f"{name}.ipynb"
            notebook = nbformat.read(course / "release" / name / f"{name}.ipynb", as_version=4)
            tag_check_cells(notebook)
            if link_solutions(notebook, name):
                solutions = out_dir / SOLUTIONS / f"{name}.ipynb"
                solutions.parent.mkdir(exist_ok=True)
                nbformat.write(worked_solutions(name), solutions)
                written.append(solutions)
            nbformat.write(notebook, target)
            written.append(target)
    return written


SOLUTIONS = "solutions"  # notebooks/solutions/: every notebook with its exercises solved, for learners
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")


def link_solutions(notebook, name):
    """Add a link to the worked solutions under the student notebook's "## Exercises" heading; False if it has
    none (no exercises, nothing to solve)."""
    link = f"*Stuck after trying?* The worked solutions: [{SOLUTIONS}/{name}.ipynb]({SOLUTIONS}/{name}.ipynb)."
    for cell in notebook.cells:
        lines = cell.source.split("\n") if cell.cell_type == "markdown" else []
        if "## Exercises" in lines:
            at = lines.index("## Exercises") + 1
            cell.source = "\n".join([*lines[:at], "", link, *lines[at:]])
            return True
    return False


def worked_solutions(name):
    """The instructor source of ``name`` as learners read it: outputs cleared (run it to see them), nbgrader's
    marker lines removed, a note on top."""
    notebook = nbformat.read(SOURCE / name / f"{name}.ipynb", as_version=4)
    for cell in notebook.cells:
        cell.metadata.pop("nbgrader", None)
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
            cell.source = "\n".join(line for line in cell.source.splitlines() if line.strip() not in MARKERS)
    note = nbformat.v4.new_markdown_cell(
        f"**Worked solutions** of [{name}](../{name}.ipynb): the whole notebook with every exercise solved (and "
        "the hidden tests the grader also runs). Run it to see the outputs.")
    note.id = "worked-solutions"  # a fixed id: a release is the same, byte for byte, every time
    notebook.cells.insert(0, note)
    return notebook


def tag_check_cells(notebook):
    """Tag every exercise check cell ``raises-exception``.

    In a student notebook a check cell fails until its exercise is done. Without the tag JupyterLab's Run All
    stops at the first one and never runs the cells below it (the widgets, the next exercises); with it, Run
    All goes on. nbgrader's checksums ignore tags. Only the student copies get the tag: in the instructor
    sources a failing check is a broken solution, which nbval must catch.
    """
    for cell in notebook.cells:
        grading = cell.metadata.get("nbgrader", {})
        if grading.get("grade") and not grading.get("solution"):
            tags = cell.metadata.setdefault("tags", [])
            if "raises-exception" not in tags:
                tags.append("raises-exception")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=STUDENT_NOTEBOOKS, help="where to write (default notebooks/)")
    for path in generate(parser.parse_args().out):
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
