"""The environment files stay honest.

- binder/environment.yml (Binder/repo2docker) and environment.yml (conda users) pin exactly what
  requirements.lock pins, and are what tools/sync_environments.py generates from it;
- the Binder configuration is self-sufficient (binder/ hides every root config file), pins Python 3.11 and every
  package, holds no instructor/test tools, installs course_lib in postBuild and cannot install a CUDA torch;
- every mybinder.org link in README.md opens a notebook that exists;
- where jupyter-repo2docker is installed, the Dockerfile it would build uses binder/ (required in CI).

Each checker returns a list of problems; the tests at the bottom feed them deliberately broken configurations to
show that they fail.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
BINDER_ENV = BINDER / "environment.yml"
ROOT_ENV = ROOT / "environment.yml"
POSTBUILD = BINDER / "postBuild"
STUDENT_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
README = ROOT / "README.md"

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# conda supplies only the interpreter and pip; every Python package comes from pip with the lock's pins.
CONDA_ALLOWED = {"python", "pip"}
# Pinned by the YAML files although requirements.lock does not list them (reasons in
# tools/sync_environments.py): setuptools is required by torch and left out by pip freeze; notebook keeps
# repo2docker's preinstalled Notebook 7 compatible with JupyterLab 4.6.
BINDER_EXTRAS = {"notebook", "setuptools"}
ROOT_EXTRAS = {"setuptools"}
# Never in the student environment, whether or not requirements-dev.lock lists them.
INSTRUCTOR_TOOLS = {
    "nbgrader", "pytest", "pytest-timeout", "nbval", "playwright", "ruff", "coverage", "jupyter-repo2docker",
    "mypy", "jupytext", "otter-grader",
}
# Config files repo2docker reads from the root only when there is no binder/ folder.
R2D_ROOT_ONLY = [
    "requirements.txt", "requirements3.txt", "Pipfile", "Pipfile.lock", "setup.py", "apt.txt", "postBuild",
    "start", "runtime.txt", "install.R", "DESCRIPTION", "Project.toml", "JuliaProject.toml", "REQUIRE",
    "default.nix", "Dockerfile", "environment.yaml",
]
# What binder/ may hold: anything else would be ignored (requirements.txt next to environment.yml) or take
# over the build (Dockerfile).
BINDER_ALLOWED_FILES = {"environment.yml", "postBuild", "apt.txt", "start", "README.md"}
LINUX = {"sys_platform": "linux", "platform_system": "Linux"}
WINDOWS = {"sys_platform": "win32", "platform_system": "Windows"}
MACOS = {"sys_platform": "darwin", "platform_system": "Darwin"}


# --------------------------------------------------------------------------------------------- parsing
def normalize(name: str) -> str:
    """PEP 503 name normalisation."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_requirements(path: Path) -> list[Requirement]:
    """Every requirement line of a lock (options such as `-r other` skipped), each an exact `==` pin."""
    requirements = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(line)
        specs = list(requirement.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"{path.name}: not a `name==version` line: {raw!r}"
        requirements.append(requirement)
    return requirements


def parse_lock(path: Path) -> dict[str, str]:
    """{normalised name: version} for each `name==version` line (the public version: torch's +cpu dropped)."""
    return {normalize(r.name): Version(next(iter(r.specifier)).version).public for r in lock_requirements(path)}


def split_env(env: dict) -> tuple[list, list]:
    """(conda specs, pip lines) of an environment.yml mapping."""
    conda, pip = [], []
    for dep in env.get("dependencies") or []:
        if isinstance(dep, dict):
            pip.extend(dep.get("pip") or [])
        else:
            conda.append(dep)
    return conda, pip


def pip_requirements(pip_lines: list) -> tuple[list[Requirement], list[str], list[str]]:
    """(requirements, option lines such as `--extra-index-url URL` or `-e .`, problems)."""
    reqs, options, problems = [], [], []
    for line in pip_lines:
        if not isinstance(line, str):
            problems.append(f"pip entry is not a string: {line!r}")
        elif line.strip().startswith("-"):
            options.append(line.strip())
        else:
            try:
                reqs.append(Requirement(line))
            except InvalidRequirement as exc:
                problems.append(f"pip entry {line!r} is not a requirement: {exc}")
    return reqs, options, problems


def conda_name_version(spec: str) -> tuple[str, str | None]:
    match = re.match(r"^\s*([A-Za-z0-9_.-]+)\s*(?:==?\s*([^\s=<>!,|*]+(?:\.\*)?))?\s*$", spec)
    if not match:
        return spec.strip(), None
    return match[1].lower(), match[2]


def load_env(path: Path) -> dict:
    env = yaml.safe_load(path.read_text())
    assert isinstance(env, dict), f"{path} is not a YAML mapping"
    return env


# --------------------------------------------------------------------------------------------- checkers
def check_pins(env: dict, lock: dict[str, str], dev_lock: dict[str, str], extras: set[str],
               allowed_options: set[str]) -> list[str]:
    """Every package pinned with ==, same version as requirements.lock, every lock package present."""
    conda, pip_lines = split_env(env)
    problems = [problem for spec in conda for problem in _conda_pin_problems(spec)]
    reqs, options, parse_problems = pip_requirements(pip_lines)
    problems += parse_problems
    for option in options:
        if option not in allowed_options:
            problems.append(f"pip option line {option!r} is not allowed here (allowed: {sorted(allowed_options)})")
    for req in reqs:
        problems += _pip_pin_problems(req, lock, dev_lock, extras)
    seen = {normalize(req.name) for req in reqs}
    for name in sorted(set(lock) - seen):
        problems.append(f"{name} (requirements.lock) is missing: pip would not pin it")
    names = [normalize(r.name) for r in reqs if r.marker is None]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{name} is pinned more than once")
    return problems


def _conda_pin_problems(spec) -> list[str]:
    name, version = conda_name_version(str(spec))
    if name not in CONDA_ALLOWED:
        return [f"conda package {spec!r}: only {sorted(CONDA_ALLOWED)} come from conda; "
                "Python packages are pip-installed with the pins of requirements.lock"]
    if not version or not re.fullmatch(r"\d+(\.\d+)+", version):
        return [f"conda package {spec!r} is not pinned to an exact version (name=X.Y[.Z])"]
    return []


def _pip_pin_problems(req, lock: dict[str, str], dev_lock: dict[str, str], extras: set[str]) -> list[str]:
    name = normalize(req.name)
    specs = list(req.specifier)
    if len(specs) != 1 or specs[0].operator != "==" or "*" in specs[0].version:
        return [f"pip package {str(req)!r} is not pinned with a single `==version`"]
    try:
        version = Version(specs[0].version)
    except InvalidVersion:
        return [f"pip package {str(req)!r} has an invalid version"]
    if name in lock:
        wanted = Version(lock[name])
        # torch may carry a local label (+cpu); everything else must match exactly.
        same = version.public == wanted.public if name == "torch" else version == wanted
        return [] if same else [f"{req.name}: pinned {version}, requirements.lock has {lock[name]}"]
    if name in {normalize(e) for e in extras}:
        if name in dev_lock and version != Version(dev_lock[name]):
            return [f"{req.name}: pinned {version}, requirements-dev.lock has {dev_lock[name]}"]
        return []
    return [f"{req.name} is not in requirements.lock (and not an allowed extra {sorted(extras)})"]


def check_python_311(env: dict) -> list[str]:
    conda, _ = split_env(env)
    pythons = [conda_name_version(str(s)) for s in conda if conda_name_version(str(s))[0] == "python"]
    if len(pythons) != 1:
        return [f"expected exactly one conda `python=3.11` spec, found {len(pythons)}"]
    version = pythons[0][1] or ""
    if version.split(".")[:2] != ["3", "11"]:
        return [f"python is pinned to {version or 'nothing'!r}, not 3.11"]
    return []


def check_no_instructor_packages(env: dict, lock: dict[str, str], dev_lock: dict[str, str],
                                 extras: set[str]) -> list[str]:
    dev_only = (set(dev_lock) - set(lock)) | INSTRUCTOR_TOOLS
    dev_only -= {normalize(e) for e in extras}
    conda, pip_lines = split_env(env)
    reqs, _, _ = pip_requirements(pip_lines)
    names = {normalize(r.name) for r in reqs} | {normalize(conda_name_version(str(s))[0]) for s in conda}
    return [f"{name} is an instructor/test tool, not in the student stack" for name in sorted(names & dev_only)]


def check_torch_cpu(env: dict, platforms: list[dict]) -> list[str]:
    """torch can only be a CPU build on each platform in `platforms`."""
    problems = []
    conda, pip_lines = split_env(env)
    for spec in conda:
        if re.search(r"torch|cuda|cudnn|nccl|nvidia", str(spec), re.IGNORECASE):
            problems.append(f"conda spec {spec!r}: torch/CUDA must not come from conda in this design")
    reqs, options, _ = pip_requirements(pip_lines)
    for req in reqs:
        if normalize(req.name).startswith("nvidia-") or normalize(req.name) in {"triton", "pytorch-triton"}:
            problems.append(f"{req.name} is a CUDA-only dependency")
    problems += _index_problems(options)
    torch = [r for r in reqs if normalize(r.name) == "torch"]
    for platform in platforms:
        problems += _torch_platform_problems(torch, platform)
    return problems


def _index_problems(options: list[str]) -> list[str]:
    """The CPU index is there; no other index could serve a CUDA torch."""
    urls = []
    for option in options:
        match = re.match(r"^(--extra-index-url|--index-url|-i|--find-links|-f)(?:\s+|=)(\S+)$", option)
        if match:
            urls.append(match[2])
    problems = []
    if CPU_INDEX not in urls:
        problems.append(f"pip has no `--extra-index-url {CPU_INDEX}`: a +cpu torch cannot be found")
    for url in urls:
        if url != CPU_INDEX and re.search(r"pytorch|/whl/|cu\d|rocm|nvidia", url):
            problems.append(f"index {url!r} could serve a non-CPU torch")
    return problems


def _torch_platform_problems(torch: list, platform: dict) -> list[str]:
    """Exactly one torch requirement applies on ``platform``, pinned to a +cpu build."""
    applies = [r for r in torch if r.marker is None or r.marker.evaluate(platform)]
    where = platform["sys_platform"]
    if len(applies) != 1:
        return [f"{len(applies)} torch requirements apply on {where}, expected exactly 1"]
    specs = list(applies[0].specifier)
    local = Version(specs[0].version).local if len(specs) == 1 and specs[0].operator == "==" else None
    if local != "cpu":
        return [f"torch on {where} is {str(applies[0])!r}: pin `torch==X.Y.Z+cpu`, "
                "otherwise pip may take the multi-GB CUDA build"]
    return []


def check_postbuild(path: Path, repo: Path | None = None) -> list[str]:
    """#!/bin/bash, set -e before any command, executable, installs course_lib, no labextension step."""
    if not path.is_file():
        return [f"{path.name} is missing: nothing installs course_lib"]
    problems = []
    lines = path.read_text().splitlines()
    if not lines or lines[0].strip() != "#!/bin/bash":
        problems.append(f"{path.name} must start with `#!/bin/bash`")
    commands = [ln.strip() for ln in lines[1:] if ln.strip() and not ln.strip().startswith("#")]
    if not commands or not re.match(r"^set\s+-[a-z]*e", commands[0]):
        problems.append(f"{path.name}: the first command must be `set -e` (or `set -euo pipefail`)")
    problems += _executable_problems(path, repo)
    installs = [c for c in commands if re.search(r"\bpip install\b", c)
                and re.search(r"(\s-e|--editable)\s+\.(\s|$)", c)]
    if not installs:
        problems.append(f"{path.name} does not `pip install --no-deps -e .` (course_lib)")
    elif not all("--no-deps" in c for c in installs):
        problems.append(f"{path.name}: install course_lib with --no-deps, the environment already pins its deps")
    for c in commands:
        if re.search(r"labextension|nbextension|jupyter\s+lab\s+build", c):
            problems.append(f"{path.name}: no labextension step is needed with JupyterLab 4 + ipywidgets 8: {c!r}")
    return problems


def _executable_problems(path: Path, repo: Path | None) -> list[str]:
    """The file is executable, and git (when ``repo`` is given) tracks it so."""
    problems = []
    if not path.stat().st_mode & stat.S_IXUSR:
        problems.append(f"{path.name} is not executable (chmod +x)")
    if repo is not None and shutil.which("git"):
        staged = subprocess.run(["git", "ls-files", "-s", str(path)], cwd=repo, capture_output=True, text=True)
        if staged.returncode == 0 and staged.stdout and not staged.stdout.startswith("100755"):
            problems.append(f"{path.name} is tracked without the executable bit (git update-index --chmod=+x)")
    return problems


def check_binder_dir(repo: Path) -> list[str]:
    """binder/ exists, holds the environment file, and no root-only repo2docker config is silently ignored."""
    binder = repo / "binder"
    if not binder.is_dir():
        return ["binder/ is missing: repo2docker would build from root files"]
    problems = []
    if (repo / ".binder").exists():
        problems.append("both binder/ and .binder/ exist: repo2docker refuses to build")
    if not (binder / "environment.yml").is_file():
        problems.append("binder/environment.yml is missing")
    for item in sorted(binder.iterdir()):
        if item.name not in BINDER_ALLOWED_FILES:
            problems.append(f"binder/{item.name} is unexpected: it would be ignored or take over the build")
    for name in R2D_ROOT_ONLY:
        if (repo / name).exists():
            problems.append(f"{name} in the root is ignored by repo2docker because binder/ exists: move it")
    if (binder / "environment.yml").is_file():
        problems += _local_pip_entries(binder / "environment.yml")
    return problems


def _local_pip_entries(environment: Path) -> list[str]:
    """pip entries of binder/environment.yml that rely on a local file or folder (repo2docker has none)."""
    _, pip_lines = split_env(load_env(environment))
    problems = []
    for line in pip_lines:
        text = str(line).strip()
        if re.match(r"^(-r|-c|--requirement|--constraint|-e|--editable)\b", text) or text.startswith(
                (".", "/", "file:")):
            problems.append(f"binder/environment.yml pip entry {text!r} relies on a local file or folder")
    return problems


BINDER_LINK = re.compile(r"https?://mybinder\.org/v2/[^\s)\]\"'`]+")


def check_readme_binder_links(readme: Path, repo: Path) -> list[str]:
    """Every mybinder.org launch link opens a notebook that exists. Links with <PLACEHOLDER> parts are
    templates and are not checked, but at least one real link is required."""
    if not readme.is_file():
        return [f"{readme.name} is missing: it must carry the Binder badge"]
    links = [u for u in BINDER_LINK.findall(readme.read_text()) if not re.search(r"[<>{}]", u)]
    if not links:
        return [f"{readme.name} has no mybinder.org/v2/gh/ORG/REPO/REF?urlpath=lab/tree/notebooks/NB.ipynb link"]
    return [problem for url in links for problem in _binder_link_problems(url, repo)]


def _binder_link_problems(url: str, repo: Path) -> list[str]:
    problems = []
    parts = urlsplit(url)
    segments = parts.path.strip("/").split("/")
    if len(segments) < 5 or segments[1] != "gh":
        problems.append(f"{url}: expected /v2/gh/ORG/REPO/REF")
    target = _binder_link_target(parse_qs(parts.query))
    if not target:
        problems.append(f"{url}: opens no notebook (needs ?urlpath=lab/tree/<path>.ipynb)")
    elif not target.endswith(".ipynb"):
        problems.append(f"{url}: target {target!r} is not a notebook")
    elif not (repo / target).is_file():
        problems.append(f"{url}: {target} does not exist in the repository")
    return problems


def _binder_link_target(query: dict) -> str | None:
    """The file a Binder link opens (its urlpath's lab/tree/... or its labpath), or None."""
    if "urlpath" in query:
        urlpath = query["urlpath"][0].lstrip("/")
        return urlpath.split("tree/", 1)[1] if urlpath.startswith(("lab/tree/", "tree/")) else None
    if "labpath" in query:
        return query["labpath"][0].lstrip("/")
    return None


def check_dockerfile(text: str) -> list[str]:
    """The Dockerfile repo2docker prints (plus its log) installs binder/environment.yml with Python 3.11 and
    runs binder/postBuild."""
    problems = []
    if '--file "binder/environment.yml"' not in text:
        problems.append("the Dockerfile does not install binder/environment.yml")
    if re.search(r'--file "environment\.ya?ml"', text):
        problems.append("the Dockerfile installs the root environment.yml")
    if "RUN ./binder/postBuild" not in text:
        problems.append("the Dockerfile does not run binder/postBuild")
    # repo2docker's base environment lock for Python 3.11; build-script file names are escaped (. -> -2e).
    base_lock = re.search(r"environment(\.|-2e)py(-|-2d)3(\.|-2e)11(-|-2d)", text)
    if not base_lock or "conda environment for python=3.11" not in text:
        problems.append("the Dockerfile does not build a Python 3.11 environment")
    if "requirements.txt" in text and "/tmp/env/requirements.txt" not in text:
        problems.append("the Dockerfile installs a requirements.txt")
    return problems


# --------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def lock() -> dict[str, str]:
    return parse_lock(STUDENT_LOCK)


@pytest.fixture(scope="module")
def dev_lock() -> dict[str, str]:
    return parse_lock(DEV_LOCK)


@pytest.fixture(scope="module")
def binder_env() -> dict:
    assert BINDER_ENV.is_file(), "binder/environment.yml is missing"
    return load_env(BINDER_ENV)


@pytest.fixture(scope="module")
def root_env() -> dict:
    assert ROOT_ENV.is_file(), "environment.yml is missing"
    return load_env(ROOT_ENV)


def binder_pin_problems(env, lock, dev_lock):
    return check_pins(env, lock, dev_lock, BINDER_EXTRAS, {f"--extra-index-url {CPU_INDEX}"})


def root_pin_problems(env, lock, dev_lock):
    return check_pins(env, lock, dev_lock, ROOT_EXTRAS, {f"--extra-index-url {CPU_INDEX}", "-e ."})


def assert_ok(problems: list[str]) -> None:
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------------------------- the real files
def test_lock_is_fully_pinned(lock):
    assert "torch" in lock and len(lock) > 50


def linux_torch_problems(lock_path: Path, makefile: Path) -> list[str]:
    """Ways a Linux install of the lock could end with PyPI's CUDA torch (several GB of nvidia packages)."""
    problems = []
    torch = [r for r in lock_requirements(lock_path) if normalize(r.name) == "torch"]
    for platform in (LINUX, WINDOWS, MACOS):
        applies = [r for r in torch if r.marker is None or r.marker.evaluate(platform)]
        if len(applies) != 1:
            problems.append(f"{len(applies)} torch pins apply on {platform['sys_platform']}")
            continue
        version = Version(next(iter(applies[0].specifier)).version)
        if platform is not MACOS and version.local != "cpu":
            problems.append(f"on {platform['sys_platform']} the lock asks for torch=={version}: PyPI serves the "
                            "CUDA build under that name; pin the +cpu build")
    text = makefile.read_text()
    install = re.search(r"pip install --no-deps --extra-index-url " + re.escape(CPU_INDEX) + r" -r (\S+)", text)
    if not install:
        problems.append("the Makefile does not install torch from PyTorch's CPU index in a step of its own")
    if re.search(r"(extra-)?index-url", text.replace(install[0], "") if install else text):
        problems.append("the Makefile names another index, or the CPU index for more than torch's step")
    return problems


def test_a_linux_install_cannot_get_a_cuda_torch():
    assert_ok(linux_torch_problems(STUDENT_LOCK, ROOT / "Makefile"))
    # torch goes in with --no-deps: everything it needs must be pinned in the lock itself
    import importlib.metadata as metadata

    lock = parse_lock(STUDENT_LOCK)
    needed = {normalize(Requirement(r).name) for r in metadata.requires("torch") or []
              if Requirement(r).marker is None or Requirement(r).marker.evaluate(LINUX)}
    assert needed <= set(lock) | {"setuptools"}, needed - set(lock)


def test_the_cuda_checker_catches_plain_torch(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text(STUDENT_LOCK.read_text().replace('torch==2.13.0+cpu; sys_platform != "darwin"',
                                                     'torch==2.13.0; sys_platform != "darwin"'))
    assert any("CUDA build" in p for p in linux_torch_problems(lock, ROOT / "Makefile"))
    makefile = tmp_path / "Makefile"
    makefile.write_text((ROOT / "Makefile").read_text().replace("--extra-index-url", "--index-url"))
    assert any("step of its own" in p for p in linux_torch_problems(STUDENT_LOCK, makefile))


def test_binder_env_pins_agree_with_lock(binder_env, lock, dev_lock):
    assert_ok(binder_pin_problems(binder_env, lock, dev_lock))


def test_root_env_pins_agree_with_lock(root_env, lock, dev_lock):
    assert_ok(root_pin_problems(root_env, lock, dev_lock))
    assert_ok(check_python_311(root_env))
    assert_ok(check_no_instructor_packages(root_env, lock, dev_lock, ROOT_EXTRAS))
    # Linux and Windows get the +cpu build from the CPU index; macOS wheels carry no local label.
    assert_ok(check_torch_cpu(root_env, [LINUX, WINDOWS]))
    assert "-e ." in split_env(root_env)[1], "environment.yml must install course_lib (`-e .`)"


def test_root_env_has_one_torch_per_platform(root_env):
    reqs, _, _ = pip_requirements(split_env(root_env)[1])
    torch = [r for r in reqs if normalize(r.name) == "torch"]
    for platform in (LINUX, WINDOWS, MACOS):
        assert len([r for r in torch if r.marker is None or r.marker.evaluate(platform)]) == 1, platform


def test_yaml_files_are_generated_from_lock():
    spec = importlib.util.spec_from_file_location("sync_environments", ROOT / "tools" / "sync_environments.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for path, text in module.rendered(ROOT).items():
        assert path.read_text() == text, (
            f"{path.relative_to(ROOT)} is out of date with requirements.lock: "
            "run `.venv/bin/python tools/sync_environments.py`")


def test_binder_dir_is_self_sufficient():
    assert_ok(check_binder_dir(ROOT))


def test_binder_python_is_311(binder_env):
    assert_ok(check_python_311(binder_env))


def test_binder_has_no_instructor_packages(binder_env, lock, dev_lock):
    assert_ok(check_no_instructor_packages(binder_env, lock, dev_lock, BINDER_EXTRAS))


def test_binder_torch_is_cpu_only(binder_env):
    assert_ok(check_torch_cpu(binder_env, [LINUX]))
    # Binder is Linux only: one unconditional torch pin.
    reqs, _, _ = pip_requirements(split_env(binder_env)[1])
    torch = [str(r) for r in reqs if normalize(r.name) == "torch"]
    assert torch == [f"torch=={parse_lock(STUDENT_LOCK)['torch']}+cpu"]


def test_binder_postbuild_installs_course_lib():
    assert_ok(check_postbuild(POSTBUILD, ROOT))


def test_readme_binder_links_point_at_existing_notebooks():
    assert_ok(check_readme_binder_links(README, ROOT))


# --------------------------------------------------------------------------------------------- repo2docker
def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _clean_copy(dest: Path) -> Path:
    """Tracked and not-ignored files of the work tree, as a fresh clone plus uncommitted work would have them."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def _repo2docker_dockerfile(repo: Path) -> str:
    if importlib.util.find_spec("repo2docker") is None:
        message = "jupyter-repo2docker is not installed in this venv (pip install -r requirements-dev.lock)"
        if _in_ci():
            pytest.fail(message + ": CI must check the Binder build")
        pytest.skip(message)
    result = subprocess.run([sys.executable, "-m", "repo2docker", "--no-build", "--no-run", "--debug", "."],
                            cwd=repo, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout + "\n" + result.stderr


def test_repo2docker_dockerfile_uses_binder_config(tmp_path):
    repo = _clean_copy(tmp_path / "repo")
    assert_ok(check_dockerfile(_repo2docker_dockerfile(repo)))


def test_repo2docker_check_fails_without_binder(tmp_path):
    repo = _clean_copy(tmp_path / "repo")
    shutil.rmtree(repo / "binder")
    problems = check_dockerfile(_repo2docker_dockerfile(repo))
    assert any("binder/environment.yml" in p for p in problems)
    assert any("root environment.yml" in p for p in problems)
    assert any("postBuild" in p for p in problems)


# --------------------------------------------------------------------------------------------- the checkers fail
def _replace_pip(env: dict, old: str, new: str | None) -> dict:
    env = copy.deepcopy(env)
    pip = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    index = pip.index(old)
    if new is None:
        pip.pop(index)
    else:
        pip[index] = new
    return env


def _add_pip(env: dict, line: str) -> dict:
    env = copy.deepcopy(env)
    next(d for d in env["dependencies"] if isinstance(d, dict))["pip"].append(line)
    return env


def _with_conda(env: dict, *specs: str) -> dict:
    """The same environment with its conda specs replaced by `specs`."""
    env = copy.deepcopy(env)
    env["dependencies"] = [*specs, *(d for d in env["dependencies"] if isinstance(d, dict))]
    return env


def test_pin_checker_catches_drift(binder_env, lock, dev_lock):
    numpy = f"numpy=={lock['numpy']}"
    cases = {
        "numpy: pinned 1.0.0": _replace_pip(binder_env, numpy, "numpy==1.0.0"),
        "not pinned with a single": _replace_pip(binder_env, numpy, "numpy>=2"),
        "numpy (requirements.lock) is missing": _replace_pip(binder_env, numpy, None),
        "not in requirements.lock": _add_pip(binder_env, "rich==14.0.0"),
        "numpy is pinned more than once": _add_pip(binder_env, numpy),
        "is not allowed here": _add_pip(binder_env, "-r ../requirements.lock"),
        "only ['pip', 'python'] come": _with_conda(binder_env, "python=3.11", "pip=25.2", "numpy=2.4.6"),
        "not pinned to an exact version": _with_conda(binder_env, "python=3.11", "pip"),
        "notebook: pinned 7.0.0": _replace_pip(binder_env, f"notebook=={dev_lock['notebook']}", "notebook==7.0.0"),
    }
    for expected, env in cases.items():
        problems = binder_pin_problems(env, lock, dev_lock)
        assert any(expected in p for p in problems), (expected, problems)


def test_pin_checker_normalises_names(binder_env, lock, dev_lock):
    # Same version, different spelling of the name (PEP 503): still consistent.
    env = _replace_pip(binder_env, f"typing_extensions=={lock['typing-extensions']}",
                       f"Typing.Extensions=={lock['typing-extensions']}")
    assert_ok(binder_pin_problems(env, lock, dev_lock))


def test_python_checker_catches_wrong_python(binder_env):
    assert check_python_311(_with_conda(binder_env, "python=3.12", "pip=25.2"))
    assert check_python_311(_with_conda(binder_env, "python", "pip=25.2"))
    assert check_python_311(_with_conda(binder_env, "pip=25.2"))


def test_instructor_checker_catches_dev_packages(binder_env, lock, dev_lock):
    for line in ("pytest==9.2.0", "nbgrader==0.9.6", "jupyter-repo2docker==2026.4.0"):
        problems = check_no_instructor_packages(_add_pip(binder_env, line), lock, dev_lock, BINDER_EXTRAS)
        assert any("instructor/test tool" in p for p in problems), line


def test_torch_checker_catches_cuda(binder_env, lock):
    torch_cpu = f"torch=={lock['torch']}+cpu"
    index = f"--extra-index-url {CPU_INDEX}"
    cases = [
        _replace_pip(binder_env, torch_cpu, f"torch=={lock['torch']}"),  # PyPI's Linux wheel is CUDA
        _replace_pip(binder_env, torch_cpu, f"torch=={lock['torch']}+cu126"),
        _replace_pip(binder_env, index, None),
        _replace_pip(binder_env, index, "--extra-index-url https://download.pytorch.org/whl/cu126"),
        _add_pip(binder_env, "--extra-index-url https://download.pytorch.org/whl/cu126"),
        _add_pip(binder_env, "nvidia-cublas-cu12==12.8.4.1"),
        _with_conda(binder_env, "python=3.11", "pip=25.2", "pytorch-gpu=2.13.0"),
        _add_pip(binder_env, f"torch=={lock['torch']}"),  # two torch pins
    ]
    for env in cases:
        assert check_torch_cpu(env, [LINUX]), split_env(env)


def test_postbuild_checker_catches_mistakes(tmp_path):
    good = POSTBUILD.read_text()
    cases = {
        "start with `#!/bin/bash`": good.replace("#!/bin/bash", "#!/bin/sh"),
        "`set -e`": re.sub(r"(?m)^set .*$", "", good),
        "does not `pip install": re.sub(r"(?m)^.*pip install.*$", "echo nothing", good),
        "--no-deps": good.replace("--no-deps ", ""),
        "no labextension step": good + "jupyter labextension install @jupyter-widgets/jupyterlab-manager\n",
    }
    for expected, text in cases.items():
        path = tmp_path / "postBuild"
        path.write_text(text)
        path.chmod(0o755)
        assert any(expected in p for p in check_postbuild(path)), expected
    path.write_text(good)
    path.chmod(0o644)
    assert any("not executable" in p for p in check_postbuild(path))
    assert check_postbuild(tmp_path / "absent")


def test_binder_dir_checker_catches_mistakes(tmp_path):
    repo = tmp_path / "repo"
    assert check_binder_dir(repo) == ["binder/ is missing: repo2docker would build from root files"]
    (repo / "binder").mkdir(parents=True)
    assert any("binder/environment.yml is missing" in p for p in check_binder_dir(repo))
    shutil.copy(BINDER_ENV, repo / "binder" / "environment.yml")
    assert_ok(check_binder_dir(repo))
    (repo / "apt.txt").write_text("graphviz\n")
    (repo / "binder" / "requirements.txt").write_text("numpy\n")
    (repo / ".binder").mkdir()
    problems = " | ".join(check_binder_dir(repo))
    assert "apt.txt in the root is ignored" in problems
    assert "binder/requirements.txt is unexpected" in problems
    assert "both binder/ and .binder/" in problems
    env = _add_pip(load_env(BINDER_ENV), "-e ..")
    (repo / "binder" / "environment.yml").write_text(yaml.safe_dump(env))
    assert "relies on a local file" in " | ".join(check_binder_dir(repo))


def test_readme_checker(tmp_path):
    repo = tmp_path
    (repo / "notebooks").mkdir()
    (repo / "notebooks" / "01_intro.ipynb").write_text("{}")
    readme = repo / "README.md"
    assert check_readme_binder_links(readme, repo)  # missing README
    readme.write_text("# Course\nNo badge yet.\n")
    assert "no mybinder.org" in check_readme_binder_links(readme, repo)[0]
    good = "https://mybinder.org/v2/gh/org/repo/HEAD?urlpath=lab/tree/notebooks/01_intro.ipynb"
    encoded = "https://mybinder.org/v2/gh/org/repo/0123abc?urlpath=lab%2Ftree%2Fnotebooks%2F01_intro.ipynb"
    template = "https://mybinder.org/v2/gh/org/repo/<SHA>?urlpath=lab/tree/notebooks/<NB>.ipynb"
    readme.write_text(f"[![Binder](https://mybinder.org/badge_logo.svg)]({good})\n`{encoded}`\n`{template}`\n")
    assert_ok(check_readme_binder_links(readme, repo))
    readme.write_text(f"[![Binder](https://mybinder.org/badge_logo.svg)]({good.replace('01_intro', '02_gone')})\n")
    assert "does not exist" in check_readme_binder_links(readme, repo)[0]
    readme.write_text("[launch](https://mybinder.org/v2/gh/org/repo/HEAD)\n")
    assert "opens no notebook" in check_readme_binder_links(readme, repo)[0]
