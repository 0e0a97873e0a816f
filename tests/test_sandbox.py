"""The grader's sandbox (instructor/sandbox.py), claim by claim: a script run inside it cannot import course_lib,
see the workbook, the submissions or other processes, write to the file system, reach the network, allocate
3 GB, fork without end, run past its time or flood the grader with output."""

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "instructor"))
import sandbox as sandbox_module  # noqa: E402

# CI installs bubblewrap (.ci/run) and must run these; elsewhere they skip without it.
pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None and not os.environ.get("CI"),
                                reason="bubblewrap is not installed")


@pytest.fixture(scope="module")
def hidden(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    (folder / "alice").mkdir()
    (folder / "alice" / "secret.ipynb").write_text("{}")
    return folder


@pytest.fixture(scope="module")
def sandbox(hidden):
    return sandbox_module.Sandbox.create(hidden=[hidden], timeout=10)


def run(sandbox, script):
    return sandbox.execute(script)


def test_the_library_and_the_workbook_are_out_of_reach(sandbox, hidden):
    paths = [str(ROOT / "course_lib" / "optim.py"), str(ROOT / "instructor" / "source"), str(hidden / "alice")]
    result = run(sandbox, f"""
import importlib.util, os
print("spec", importlib.util.find_spec("course_lib"))
for path in {paths!r}:
    print("exists", path, os.path.exists(path))
""")
    assert result.returncode == 0, result.output
    assert "spec None" in result.output
    assert "True" not in result.output


def test_the_file_system_is_read_only_but_tmp(sandbox):
    result = run(sandbox, f"""
import os
for path in ("/usr/planted", "/etc/planted", {str(ROOT / "planted")!r}, "/tmp/fine"):
    try:
        open(path, "w").write("x")
        print("wrote", path)
    except OSError as error:
        print("refused", path, type(error).__name__)
""")
    assert "wrote /tmp/fine" in result.output
    assert result.output.count("refused") == 3, result.output
    assert not (ROOT / "planted").exists()


def test_no_other_process_and_no_network(sandbox):
    result = run(sandbox, """
import os, socket
pids = [p for p in os.listdir("/proc") if p.isdigit()]
print("processes", len(pids), [open(f"/proc/{p}/cmdline").read() for p in pids])
try:
    socket.create_connection(("127.0.0.1", 22), timeout=2)
    print("connected")
except OSError as error:
    print("network", type(error).__name__)
""")
    assert "pytest" not in result.output and "connected" not in result.output
    assert "network" in result.output
    assert int(result.output.split("processes ")[1].split()[0]) <= 3  # bwrap's init, python (and setpriv)


def test_a_large_allocation_fails(sandbox):
    result = run(sandbox, """
import numpy as np
try:
    np.ones(3 * 2**30 // 8)
    print("allocated 3 GB")
except MemoryError:
    print("MemoryError")
""")
    assert "MemoryError" in result.output and "allocated" not in result.output


def test_forks_are_limited(sandbox):
    result = run(sandbox, """
import os, time
children = 0
for _ in range(1000):
    try:
        if os.fork() == 0:
            time.sleep(5)
            os._exit(0)
        children += 1
    except OSError:
        break
print("children", children)
""")
    children = int(result.output.split("children")[1].split()[0])
    assert children < sandbox.processes, result.output


def test_time_and_output_are_bounded(sandbox):
    looping = run(sandbox, "while True:\n    pass")
    assert looping.timed_out or looping.returncode != 0
    flood = run(sandbox, "print('x' * 10_000_000)")
    assert flood.truncated and len(flood.output.encode()) <= sandbox.output_bytes


def test_without_bubblewrap_the_grader_refuses(monkeypatch):
    monkeypatch.setattr(sandbox_module.shutil, "which", lambda name: None)
    with pytest.raises(sandbox_module.SandboxUnavailable, match="bubblewrap .* is not installed"):
        sandbox_module.Sandbox.create()
    unsandboxed = sandbox_module.Sandbox.create(unsandboxed=True, timeout=10)
    assert not unsandboxed.sandboxed
    result = unsandboxed.execute("import numpy as np\ntry:\n    np.ones(3 * 2**30 // 8)\nexcept MemoryError:\n"
                                 "    print('MemoryError')")
    assert "MemoryError" in result.output  # the resource limits still hold
