"""The learners' copy of the workbook, without the solutions, as a git repository that nbgitpuller can pull.

    python classroom/handout.py --out ../tnn2-handout     # what `make handout HANDOUT=../tnn2-handout` runs
    python classroom/handout.py link --hub https://hub.example.org --repo https://github.com/you/tnn2-handout

The handout holds what a learner works with and what the server's course environment is installed from:
notebooks/ (the student notebooks, exercises blank), course_lib/, data/, pyproject.toml, requirements.lock and
classroom/ (install script and settings), plus a short README for learners. Never instructor/ (solutions and
hidden tests), tests/ or bench/. It is taken from the committed HEAD, never from uncommitted files, and checked:
no file may carry nbgrader's solution or hidden-test markers.

--out is a git repository (created if missing). Each run replaces its files with the new handout and adds one
commit on its branch, so the history learners pull stays linear and nbgitpuller can merge their edits with
yours. Push that repository where the hub can clone it (a repository of its own: the solutions are then not one
`git fetch` away).

The nbgitpuller link pulls the handout into ~/training-neural-networks-2 (the folder classroom/nbgrader_config.py
submits from) and opens a notebook in JupyterLab.
"""

import argparse
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from urllib.parse import urlencode

import nbformat

ROOT = Path(__file__).resolve().parent.parent
CONTENTS = ["notebooks", "course_lib", "data", "classroom", "pyproject.toml", "requirements.lock"]
# Lines that exist only in instructor notebooks; nbgrader's generate_assignment removes them with what they
# enclose.
# (Spelled out in pieces so that this file, which is handed out too, does not carry them.)
FORBIDDEN = [f"### {edge} {block}" for block in ("SOLUTION", "HIDDEN TESTS") for edge in ("BEGIN", "END")]
TARGET_FOLDER = "training-neural-networks-2"
FIRST_NOTEBOOK = "01_problems_of_optimization"
LEARNER_README = """# Training Neural Networks II: the workbook

The notebooks are in `notebooks/`; open one in JupyterLab and run it from the top. Each exercise has a check
cell that says what is wrong with an answer; once your answer passes, the sliders race your code against the
reference.

Your class's link pulls this folder into your home as `{folder}/`. Clicking the link again fetches the
instructor's updates and keeps your edits: git merges the two, and where you both changed the same lines your
version wins; a file you deleted comes back.

Submit from JupyterLab's **Assignments** tab (course `training-neural-networks-2`, assignment `notebooks`):
it sends your whole `notebooks/` folder, and you may submit again; the last submission counts.

Made from commit {commit} of the workbook.
"""


def git(*arguments, cwd=ROOT, **kwargs):
    return subprocess.run(["git", *arguments], cwd=cwd, check=True, capture_output=True, **kwargs).stdout


def committed_tree(destination, revision="HEAD"):
    """Write the handout's files as committed at ``revision`` into ``destination``; return the commit."""
    commit = git("rev-parse", revision, text=True).strip()
    archive = git("archive", "--format=tar", commit, *CONTENTS)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(destination, filter="data")
    withhold_solutions(Path(destination) / "notebooks")
    (Path(destination) / "README.md").write_text(LEARNER_README.format(folder=TARGET_FOLDER, commit=commit))
    return commit


SOLUTIONS_LINK = re.compile(r"\*Stuck after trying\?\* The worked solutions: \[[^]]*\]\(solutions/[^)]*\)\.")
ANY_SOLUTIONS_LINK = re.compile(r"\[([^]]*)\]\(solutions/[^)]*\)")


def withhold_solutions(notebooks):
    """Leave out notebooks/solutions/ (the worked solutions `make release` writes for learners on their own) and
    point each notebook's link to them at the instructor instead."""
    shutil.rmtree(notebooks / "solutions", ignore_errors=True)
    for path in notebooks.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        changed = False
        for cell in nb.cells:
            if cell.cell_type == "markdown" and ANY_SOLUTIONS_LINK.search(cell.source):
                text = SOLUTIONS_LINK.sub("*Stuck after trying?* Ask your instructor.", cell.source)
                cell.source = ANY_SOLUTIONS_LINK.sub(r"\1", text)  # any other link: its words, unlinked
                changed = True
        if changed:
            nbformat.write(nb, path)


def leaks(folder):
    """[(path, marker)] for every file under ``folder`` that carries a solution or hidden-test marker."""
    found = []
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and ".git" not in path.relative_to(folder).parts:
            text = path.read_bytes().decode("utf-8", errors="replace")
            found += [(path.relative_to(folder), marker) for marker in FORBIDDEN if marker in text]
    return found


def build(out, revision="HEAD"):
    """Make or update the handout repository ``out``; return (commit of the workbook, handout commit or None
    when nothing changed)."""
    out = Path(out).resolve()
    if out == ROOT or out.is_relative_to(ROOT / ".git"):
        raise SystemExit("--out must be a folder of its own, not this repository")
    out.mkdir(parents=True, exist_ok=True)
    if not (out / ".git").exists():
        git("init", "--quiet", "--initial-branch=main", cwd=out)
    for entry in out.iterdir():
        if entry.name != ".git":
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    commit = committed_tree(out, revision)
    problems = leaks(out)
    if (out / "notebooks" / "solutions").exists():
        problems.append((Path("notebooks/solutions"), "the worked solutions"))
    if problems or (out / "instructor").exists():
        shutil.rmtree(out / "notebooks", ignore_errors=True)
        raise SystemExit("refusing to hand out solutions: "
                         + "; ".join(f"{path} has {marker!r}" for path, marker in problems))
    git("add", "--all", cwd=out)
    if not git("status", "--porcelain", cwd=out, text=True).strip():
        return commit, None
    identity = ["-c", f"user.name={os.environ.get('GIT_AUTHOR_NAME', 'workbook handout')}",
                "-c", f"user.email={os.environ.get('GIT_AUTHOR_EMAIL', 'handout@localhost')}"]
    git(*identity, "commit", "--quiet", "-m", f"Handout of the workbook at {commit[:12]}", cwd=out)
    return commit, git("rev-parse", "HEAD", cwd=out, text=True).strip()


def nbgitpuller_link(hub, repo, branch="main", notebook=FIRST_NOTEBOOK):
    """The link that pulls ``repo`` into ~/training-neural-networks-2 and opens ``notebook`` in JupyterLab."""
    query = urlencode({
        "repo": repo,
        "branch": branch,
        "targetpath": TARGET_FOLDER,
        "urlpath": f"lab/tree/{TARGET_FOLDER}/notebooks/{notebook}.ipynb",
    })
    return f"{hub.rstrip('/')}/hub/user-redirect/git-pull?{query}"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["link"]:
        parser = argparse.ArgumentParser(prog="handout.py link", description="print the nbgitpuller link")
        parser.add_argument("--hub", required=True, help="the hub's address, e.g. https://hub.example.org")
        parser.add_argument("--repo", required=True, help="where the hub's server can clone the handout from")
        parser.add_argument("--branch", default="main")
        parser.add_argument("--notebook", default=FIRST_NOTEBOOK, help="the notebook the link opens")
        args = parser.parse_args(argv[1:])
        print(nbgitpuller_link(args.hub, args.repo, args.branch, args.notebook))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="the handout git repository (made if missing)")
    parser.add_argument("--revision", default="HEAD", help="the workbook commit to hand out (default HEAD)")
    args = parser.parse_args(argv)
    commit, handout_commit = build(args.out, args.revision)
    if handout_commit:
        print(f"{args.out}: handout of {commit[:12]} committed as {handout_commit[:12]} on branch main")
    else:
        print(f"{args.out}: already the handout of {commit[:12]}; nothing to commit")
    print("push it where your hub can clone it, then give learners the link from:\n"
          "  python classroom/handout.py link --hub https://YOUR-HUB --repo https://YOUR-GIT-HOST/YOUR-HANDOUT")


if __name__ == "__main__":
    main()
