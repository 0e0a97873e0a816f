"""The instructor's side of nbgrader's exchange on the class's JupyterHub server.

    python classroom/exchange.py release                      # once per class (and after each handout update)
    python classroom/exchange.py collect --out SUBMISSIONS [--notebooks 01_problems_of_optimization ...]
    python instructor/grade.py SUBMISSIONS --out RESULTS      # or: make grade SUBMISSIONS=... OUT=...

The whole workbook is one nbgrader assignment, ``notebooks`` (each learner's ~/training-neural-networks-2/
notebooks/, pulled by the nbgitpuller link). ``release`` puts the student notebooks (notebooks/) in the
exchange's outbound folder, which nbgrader needs before learners can submit. ``collect`` takes every learner's
latest submission and writes SUBMISSIONS/<hub user name>/<notebook>.ipynb, the layout instructor/grade.py
grades; ``--notebooks`` keeps only the notebooks you grade this time.

The exchange folder and the course id come from classroom/nbgrader_config.py (the learners' settings;
CLASSROOM_EXCHANGE overrides the folder). Both commands work in a temporary nbgrader course directory and
never touch the repository.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from traitlets.config.loader import PyFileConfigLoader

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STUDENT_NOTEBOOKS = ROOT / "notebooks"
ASSIGNMENT = "notebooks"


def learner_settings():
    """(exchange root, course id) as the learners' servers see them (classroom/nbgrader_config.py)."""
    config = PyFileConfigLoader("nbgrader_config.py", path=str(HERE)).load_config()
    return Path(config.Exchange.root), config.CourseDirectory.course_id


def nbgrader(course, *arguments):
    """Run nbgrader's command line in ``course`` against the class's exchange; fail loudly."""
    exchange, course_id = learner_settings()
    command = [sys.executable, "-m", "nbgrader", *arguments, f"--course={course_id}",
               f"--Exchange.root={exchange}", f"--CourseDirectory.root={course}",
               # The learners' config names a submission after $JUPYTERHUB_USER; the instructor, often a hub
               # user too, collects every student's, never only their own.
               "--CourseDirectory.student_id=*"]
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    run = subprocess.run(command, cwd=course, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"nbgrader {arguments[0]} failed:\n{run.stdout}{run.stderr}")
    return run.stdout + run.stderr


def release():
    """Put notebooks/*.ipynb in the exchange as the assignment ``notebooks``; return the outbound folder."""
    exchange, course_id = learner_settings()
    exchange.mkdir(parents=True, exist_ok=True)  # nbgrader then opens it to every user (mode 777, as its docs say)
    with tempfile.TemporaryDirectory(prefix="classroom-release-") as temporary:
        course = Path(temporary)
        shutil.copytree(STUDENT_NOTEBOOKS, course / "release" / ASSIGNMENT,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        nbgrader(course, "release_assignment", ASSIGNMENT, "--force")
    return exchange / course_id / "outbound" / ASSIGNMENT


def collect(out, notebooks=None):
    """Every learner's latest submission into out/<student>/<notebook>.ipynb; return {student: [notebook]}."""
    out = Path(out)
    collected = {}
    with tempfile.TemporaryDirectory(prefix="classroom-collect-") as temporary:
        course = Path(temporary)
        nbgrader(course, "collect", ASSIGNMENT, "--update")
        submitted = course / "submitted"
        for student_dir in sorted(submitted.iterdir()) if submitted.is_dir() else []:
            for path in sorted((student_dir / ASSIGNMENT).glob("*.ipynb")):
                if notebooks and path.stem not in notebooks:
                    continue
                target = out / student_dir.name / path.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                collected.setdefault(student_dir.name, []).append(path.stem)
    return collected


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("release", help="put notebooks/ in the exchange (learners can then submit)")
    collecting = commands.add_parser("collect", help="latest submissions into OUT/<student>/<notebook>.ipynb")
    collecting.add_argument("--out", type=Path, required=True, help="the submissions folder to write")
    collecting.add_argument("--notebooks", nargs="+", metavar="NAME",
                            help="only these notebooks (names without .ipynb); default: all")
    args = parser.parse_args(argv)
    if args.command == "release":
        print(f"released {ASSIGNMENT} to {release()}")
    else:
        collected = collect(args.out, args.notebooks)
        for student, names in collected.items():
            print(f"{student}: {', '.join(names)}")
        print(f"{len(collected)} learners' submissions in {args.out}")


if __name__ == "__main__":
    main()
