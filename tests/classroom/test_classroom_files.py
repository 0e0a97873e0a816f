"""The class recipe's files agree with each other and with the rest of the repository (quick; part of make unit).

- classroom/requirements.txt pins every package, and the versions the locks also pin are the locks' versions;
- the one-server config (classroom/jupyterhub_config.py) and the Kubernetes values (classroom/z2jh-values.yaml)
  give the same memory, CPU and culling numbers; the guarantee is at most the limit;
- the install script installs torch's CPU build, in its own step, before the lock;
- the handout is the committed student workbook, with nothing of instructor/ and no solution markers; the leak
  check fires on a planted marker; the nbgitpuller link pulls into the folder nbgrader submits from;
- the Dockerfile copies only what the handout holds and runs the install script.
The Zero to JupyterHub values are NOT validated against the chart's values schema: the chart is not on PyPI or
npm, and nothing else reaches the network here.
"""

import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import nbformat
import pytest
import yaml
from packaging.requirements import Requirement
from traitlets.config.loader import PyFileConfigLoader

ROOT = Path(__file__).resolve().parent.parent.parent
CLASSROOM = ROOT / "classroom"
sys.path.insert(0, str(CLASSROOM))
import handout  # noqa: E402

LINUX = {"sys_platform": "linux", "platform_system": "Linux"}


def pins(path):
    """{normalised name: version} of a requirements file's `name==version` lines for Linux (the servers'
    platform), its -r includes too."""
    found = {}
    for raw in Path(path).read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found.update(pins(Path(path).parent / line[3:].strip()))
        elif line:
            requirement = Requirement(line)
            assert len(requirement.specifier) == 1, f"{path}: not pinned: {line!r}"
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", f"{path}: not pinned: {line!r}"
            if requirement.marker is None or requirement.marker.evaluate(LINUX):
                found[re.sub(r"[-_.]+", "-", requirement.name).lower()] = specifier.version
    return found


def test_class_extras_are_pinned_like_the_locks():
    locks = {**pins(ROOT / "requirements-dev.lock"), **pins(ROOT / "requirements.lock")}
    for path in (CLASSROOM / "requirements.txt", CLASSROOM / "requirements-hub.txt"):
        for name, version in pins(path).items():
            if name in locks:
                assert version == locks[name], f"{path.name}: {name}=={version}, the locks pin {locks[name]}"


def test_class_environment_includes_the_student_lock():
    assert set(pins(ROOT / "requirements.lock")) <= set(pins(CLASSROOM / "requirements.txt"))
    extras = set(pins(CLASSROOM / "requirements.txt")) - set(pins(ROOT / "requirements.lock"))
    assert {"jupyterhub", "nbgitpuller", "nbgrader"} <= extras
    # The learners' jupyterhub-singleuser and the test hub are the same version.
    learners, hub = pins(CLASSROOM / "requirements.txt"), pins(CLASSROOM / "requirements-hub.txt")
    assert learners["jupyterhub"] == hub["jupyterhub"]


def hub_config():
    return PyFileConfigLoader("jupyterhub_config.py", path=str(CLASSROOM)).load_config()


def values():
    return yaml.safe_load((CLASSROOM / "z2jh-values.yaml").read_text())


def to_bytes(text):
    match = re.fullmatch(r"([0-9.]+)([KMGT]?)", str(text))
    assert match, f"not a memory size: {text!r}"
    return float(match[1]) * 1024 ** "_KMGT".index(match[2] or "_")


def culler_option(config, option):
    (service,) = [s for s in config.JupyterHub.services.get_value([]) if s["name"] == "idle-culler"]
    (value,) = [a.split("=", 1)[1] for a in service["command"] if a.startswith(f"--{option}=")]
    return int(value)


def test_one_server_and_kubernetes_give_the_same_numbers():
    config, z2jh = hub_config(), values()["singleuser"]
    assert to_bytes(config.Spawner.mem_guarantee) == to_bytes(z2jh["memory"]["guarantee"])
    assert to_bytes(config.Spawner.mem_limit) == to_bytes(z2jh["memory"]["limit"])
    assert config.Spawner.cpu_guarantee == z2jh["cpu"]["guarantee"]
    assert config.Spawner.cpu_limit == z2jh["cpu"]["limit"]
    assert culler_option(config, "timeout") == values()["cull"]["timeout"]
    assert culler_option(config, "cull-every") == values()["cull"]["every"]
    assert values()["cull"]["enabled"] is True
    assert dict(config.Spawner.environment) == z2jh["extraEnv"]
    assert config.Spawner.default_url == z2jh["defaultUrl"]


def test_guarantee_below_limit_and_kernels_culled_before_servers():
    config = hub_config()
    assert 0 < to_bytes(config.Spawner.mem_guarantee) <= to_bytes(config.Spawner.mem_limit)
    assert 0 < config.Spawner.cpu_guarantee <= config.Spawner.cpu_limit
    assert (config.SystemdSpawner.mem_limit, config.SystemdSpawner.cpu_limit) == (
        config.Spawner.mem_limit, config.Spawner.cpu_limit)
    kernels = json.loads((CLASSROOM / "jupyter_server_config.json").read_text())["MappingKernelManager"]
    assert 0 < kernels["cull_idle_timeout"] < culler_option(config, "timeout")
    assert kernels["cull_busy"] is False  # a long training cell is never killed for being "idle"


def test_exchange_volume_is_where_learners_submit():
    mount = values()["singleuser"]["storage"]["extraVolumeMounts"][0]["mountPath"]
    settings = (CLASSROOM / "nbgrader_config.py").read_text()
    assert f'"{mount}"' in settings


def test_install_script_puts_cpu_torch_first():
    script = (CLASSROOM / "install-environment.sh").read_text()
    subprocess.run(["bash", "-n", str(CLASSROOM / "install-environment.sh")], check=True)
    torch_step = script.index('-r "$TORCH_PINS"')
    assert "TORCH_INDEX-https://download.pytorch.org/whl/cpu" in script
    assert torch_step < script.index('-r "$HERE/requirements.txt"')
    # What the step installs on a Linux server: the CPU build, whatever index serves it.
    assert pins(ROOT / "requirements.lock")["torch"].endswith("+cpu")


def test_handout_is_the_committed_student_workbook(tmp_path):
    commit, handout_commit = handout.build(tmp_path / "handout")
    out = tmp_path / "handout"
    assert handout_commit is not None
    assert not (out / "instructor").exists() and not (out / "tests").exists()
    assert handout.leaks(out) == []
    committed = subprocess.run(["git", "ls-tree", "-r", "--name-only", commit, "notebooks"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.split()
    # the worked solutions stay behind, and the notebooks' links to them point at the instructor instead
    assert any(name.startswith("notebooks/solutions/") for name in committed)
    assert not (out / "notebooks" / "solutions").exists()
    learners = [name for name in committed if not name.startswith("notebooks/solutions/")]
    assert sorted(str(p.relative_to(out)) for p in (out / "notebooks").iterdir()) == sorted(learners)
    for name in learners:
        shipped = nbformat.reads(subprocess.run(["git", "show", f"{commit}:{name}"], cwd=ROOT, capture_output=True,
                                                check=True, text=True).stdout, as_version=4)
        handed = nbformat.read(out / name, as_version=4)
        assert "(solutions/" not in (out / name).read_text()
        assert len(handed.cells) == len(shipped.cells)
        for mine, theirs in zip(handed.cells, shipped.cells, strict=True):
            if "Stuck after trying?" in theirs.source:
                assert "*Stuck after trying?* Ask your instructor." in mine.source
            elif "(solutions/" not in theirs.source:
                assert mine == theirs
    # A second build of the same commit adds no commit: learners' pulls stay quiet.
    assert handout.build(out) == (commit, None)


def test_leak_check_fires_on_a_solution_marker(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "x.ipynb").write_text('{"source": "### BEGIN ' + 'SOLUTION\\nanswer"}')
    assert handout.leaks(tmp_path) == [(Path("notebooks/x.ipynb"), "### BEGIN " + "SOLUTION")]


def test_link_pulls_into_the_folder_nbgrader_submits_from():
    link = handout.nbgitpuller_link("https://hub.example.org/", "https://git.example.org/me/handout")
    parts = urlsplit(link)
    assert parts.path == "/hub/user-redirect/git-pull"
    query = {key: values[0] for key, values in parse_qs(parts.query).items()}
    assert query["repo"] == "https://git.example.org/me/handout" and query["branch"] == "main"
    assert query["urlpath"] == f"lab/tree/{query['targetpath']}/notebooks/{handout.FIRST_NOTEBOOK}.ipynb"
    settings = (CLASSROOM / "nbgrader_config.py").read_text()
    assert f'os.path.expanduser("~"), "{query["targetpath"]}"' in settings


@pytest.mark.parametrize("line", [line for line in (CLASSROOM / "Dockerfile").read_text().splitlines()
                                  if line.startswith("COPY ")])
def test_dockerfile_copies_only_what_the_handout_holds(line):
    sources = line.split()[1:-1]
    for source in sources:
        assert source == "README.md" or source in handout.CONTENTS, line


def test_dockerfile_installs_with_the_install_script():
    text = (CLASSROOM / "Dockerfile").read_text()
    assert "FROM python:3.11" in text
    assert "bash /srv/course/classroom/install-environment.sh /opt/course-env" in text
