"""Regenerate binder/environment.yml and environment.yml from requirements.lock.

requirements.lock is the one source of truth for the student stack's pins. Both YAML files are generated
from it, so they cannot drift:

    .venv/bin/python tools/sync_environments.py          # rewrite both files
    .venv/bin/python tools/sync_environments.py --check  # exit 1 if either file is out of date

tests/test_environment.py fails when a committed file differs from what this script generates.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STUDENT_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
BINDER_ENV = ROOT / "binder" / "environment.yml"
ROOT_ENV = ROOT / "environment.yml"

PYTHON = "3.11"
# conda-forge pip; the same version repo2docker's own Python 3.11 base environment ships.
CONDA_PIP = "25.2"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"

# Packages the YAML files pin although requirements.lock does not list them. The version comes from
# requirements.lock if it lists the package, else from requirements-dev.lock, else from the fallback here.
#   setuptools: torch 2.13 requires setuptools>=77.0.3 unconditionally, but `pip freeze` leaves setuptools
#               out of a lock; pinned to the version in the project venv (and used by postBuild, which
#               installs course_lib without build isolation).
#   notebook:   Binder only. repo2docker's base image already contains Notebook 7.4, which requires
#               jupyterlab<4.5; pinning the version from requirements-dev.lock keeps it compatible with
#               JupyterLab 4.6 (no Notebook-only feature is used; JupyterLab is the interface).
EXTRA_FALLBACKS = {"setuptools": "84.2.1", "notebook": "7.6.5"}
BINDER_EXTRAS = ("notebook", "setuptools")
ROOT_EXTRAS = ("setuptools",)

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)\s*(?:;[^#]*)?(?:#.*)?$")


def normalize(name: str) -> str:
    """PEP 503 name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, tuple[str, str]]:
    """Return {normalised name: (name as written, version)} for every `name==version` line (a `; marker` after
    it is allowed; the version is given without a local label such as +cpu)."""
    pins: dict[str, tuple[str, str]] = {}
    if not path.exists():
        return pins
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", "-")):
            continue
        match = _PIN.match(line)
        if not match:
            raise ValueError(f"{path.name}: not a `name==version` line: {raw!r}")
        # torch is pinned twice, with environment markers: +cpu off macOS, plain on macOS. Its version is the
        # public part, without the local label.
        pins[normalize(match[1])] = (match[1], match[2].split("+", 1)[0])
    return pins


def _extra_pins(names: tuple[str, ...], student: dict, dev: dict) -> list[str]:
    lines = []
    for name in names:
        key = normalize(name)
        if key in student:
            continue  # already pinned by the lock itself
        version = dev[key][1] if key in dev else EXTRA_FALLBACKS[name]
        lines.append(f"{name}=={version}")
    return lines


def _pip_lines(student: dict, torch_lines: list[str]) -> list[str]:
    lines = []
    for key, (name, version) in student.items():
        if key == "torch":
            lines.extend(torch_lines)
        else:
            lines.append(f"{name}=={version}")
    return lines


def _yaml(header: str, name: str | None, pip_lines: list[str]) -> str:
    out = [header.rstrip("\n"), ""]
    if name:
        out.append(f"name: {name}")
    out += ["channels:", "  - conda-forge", "dependencies:", f"  - python={PYTHON}", f"  - pip={CONDA_PIP}"]
    out.append("  - pip:")
    out += [f"      - {line}" for line in pip_lines]
    return "\n".join(out) + "\n"


BINDER_HEADER = """\
# GENERATED from requirements.lock by tools/sync_environments.py -- do not edit by hand.
#
# The student environment for Binder (repo2docker). Because binder/ exists, repo2docker ignores every
# configuration file in the repository root: this folder is self-sufficient. Build steps, in order:
# repo2docker's own Python 3.11 base environment, this file (`mamba env update`), then binder/postBuild,
# which installs course_lib. No labextension step: JupyterLab 4 and ipywidgets 8 need none.
#
# Design: conda supplies only Python 3.11 and pip; every Python package is installed by pip with exactly the
# pins of requirements.lock, so Binder runs the same wheels as `make lab` and a pin changes in one place.
# torch: on PyPI, torch==2.13.0 for Linux x86_64 is the multi-GB CUDA build. Here it is pinned as
# torch==<lock version>+cpu with PyTorch's CPU wheel index as an extra index. A `+cpu` local version only
# matches a CPU-only wheel, so pip cannot fall back to a CUDA build: without the CPU index it fails instead.
# conda-forge's pytorch-cpu was not chosen because conda-forge's names and versions differ from PyPI's
# (mnist1d and post-releases such as certifi's are PyPI-only), so its pins could not match requirements.lock.
# Packages not in requirements.lock: setuptools (required by torch, left out by pip freeze) and notebook
# (repo2docker's base image ships Notebook 7.4, which needs jupyterlab<4.5; pinned as in requirements-dev.lock).
"""

ROOT_HEADER = """\
# GENERATED from requirements.lock by tools/sync_environments.py -- do not edit by hand.
#
# The student environment for conda users:
#     conda env create -f environment.yml && conda activate course-workbook
# conda supplies Python 3.11 and pip; pip installs exactly the pins of requirements.lock, then course_lib
# itself (`-e .`, relative to this file's folder). torch comes from PyTorch's CPU wheel index: the `+cpu` build
# on Linux and Windows (PyPI's Linux torch is the multi-GB CUDA build); macOS wheels have no `+cpu` label.
# setuptools is pinned too: torch requires it and pip freeze leaves it out of requirements.lock.
# Binder does not read this file (binder/ exists): it uses binder/environment.yml.
"""


def render_binder(student: dict, dev: dict) -> str:
    torch = student["torch"][1]
    pip_lines = [f"--extra-index-url {TORCH_CPU_INDEX}"]
    pip_lines += _pip_lines(student, [f"torch=={torch}+cpu"])
    pip_lines += _extra_pins(BINDER_EXTRAS, student, dev)
    return _yaml(BINDER_HEADER, None, pip_lines)


def render_root(student: dict, dev: dict) -> str:
    torch = student["torch"][1]
    torch_lines = [
        f"'torch=={torch}+cpu; sys_platform != \"darwin\"'",
        f"'torch=={torch}; sys_platform == \"darwin\"'",
    ]
    pip_lines = [f"--extra-index-url {TORCH_CPU_INDEX}"]
    pip_lines += _pip_lines(student, torch_lines)
    pip_lines += _extra_pins(ROOT_EXTRAS, student, dev)
    pip_lines.append("-e .")
    return _yaml(ROOT_HEADER, "course-workbook", pip_lines)


def rendered(root: Path = ROOT) -> dict[Path, str]:
    student = read_lock(root / STUDENT_LOCK.name)
    dev = read_lock(root / DEV_LOCK.name)
    if "torch" not in student:
        raise ValueError("requirements.lock pins no torch")
    return {
        root / "binder" / "environment.yml": render_binder(student, dev),
        root / "environment.yml": render_root(student, dev),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report files that are out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in rendered().items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        stale.append(path.relative_to(ROOT))
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for path in stale:
        print(f"{'out of date' if args.check else 'wrote'}: {path}")
    return 1 if (args.check and stale) else 0


if __name__ == "__main__":
    sys.exit(main())
