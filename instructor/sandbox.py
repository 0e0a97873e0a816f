"""Run a learner's exercise cell where it can touch nothing, and bring back only numbers.

    sandbox = Sandbox.create(hidden=[submissions, out])      # bubblewrap; refuses if it cannot isolate
    run = sandbox.run(code, "adam", cases_dir)               # -> SandboxRun(results, setup, notes, output)

Each run is a fresh process, course_lib/harness.py executing the learner's cell and calling its function on the
judge's cases (course_lib.exercises), inside bubblewrap (Flatpak's sandbox, Debian package ``bubblewrap``):

- the whole file system read-only; a private, empty /tmp; no network; its own process tree (it sees no other
  process, not the grader's arguments in /proc);
- hidden (an empty folder in their place): the workbook's folder (course_lib, whose functions are the answers,
  the instructor sources, the data), course_lib wherever it is installed, the home folder, the submissions,
  the grader's output and working folders; the Python installation is visible again, read-only;
- run as user ``nobody`` when the grader runs as root (so that the process limit applies), and ended with
  the grader (--die-with-parent);
- resource limits: address space (``memory`` bytes: a larger allocation fails with MemoryError), CPU seconds,
  file size, processes, open files; a wall-clock limit (the process tree is killed); at most ``output_bytes``
  of what it prints are kept.

What comes back is read as data only: outputs.npz with allow_pickle=False (float64 arrays; its uncompressed
size checked first) and events.json (at most 1 MB, only strings and numbers used). The verdict is made by the
grader's process (course_lib.checks.judge) against references computed there.

``Sandbox.create(unsandboxed=True)`` runs the same process with the resource limits only: no hiding, no
read-only file system. It is for machines without bubblewrap and must be asked for explicitly.
"""

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

import course_lib
import course_lib.harness

HARNESS = Path(course_lib.harness.__file__).resolve()
PACKAGE = Path(course_lib.__file__).resolve().parent
WORKBOOK = PACKAGE.parent
NOBODY = 65534
IMPORTABLE = "course_lib can be imported from "
JUDGE = "/tmp/judge"  # where the harness, the learner's code, the cases and the output folder appear inside
GiB = 2**30
MAX_OUTPUT_FILE = 64 * 2**20  # outputs.npz, uncompressed
MAX_EVENTS_FILE = 2**20
PROBE_TIMEOUT = 120


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot isolate a process on this machine."""


@dataclass
class SandboxRun:
    """What came back from one learner's cell: results per case as course_lib.harness gives them, events from
    before any call (``setup``), notes on limits hit, and the first bytes the process printed."""

    results: dict = field(default_factory=dict)  # case number -> (outputs, events)
    setup: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    output: str = ""
    seconds: float = 0.0


@dataclass
class Sandbox:
    command_prefix: list
    drop_to_nobody: bool
    timeout: float = 60.0
    memory: int = 2 * GiB
    output_bytes: int = 64 * 1024
    file_bytes: int = MAX_OUTPUT_FILE
    processes: int = 64
    sandboxed: bool = True

    @classmethod
    def create(cls, hidden=(), unsandboxed=False, **limits):
        """A sandbox hiding ``hidden`` folders (besides the workbook's), checked by a probe before use."""
        if unsandboxed:
            return cls([], drop_to_nobody=False, sandboxed=False, **limits)
        bwrap = shutil.which("bwrap")
        if bwrap is None:
            raise SandboxUnavailable(
                "bubblewrap (bwrap) is not installed: learner code would run with the grader's rights. Install it "
                "(Debian/Ubuntu: apt-get install bubblewrap) or, knowingly, pass --unsandboxed (resource limits "
                "only, nothing hidden).")
        hidden = [Path(path).resolve() for path in hidden]
        drop = os.geteuid() == 0 and shutil.which("setpriv") is not None
        sandbox = cls(_bwrap_arguments(bwrap, hidden, drop), drop_to_nobody=drop, **limits)
        problem = sandbox.probe()
        for _ in range(3):  # another copy of course_lib on the interpreter's path (an install elsewhere): hide it
            if not (problem and problem.startswith(IMPORTABLE)):
                break
            hidden.append(Path(problem[len(IMPORTABLE):].strip()))
            sandbox.command_prefix = _bwrap_arguments(bwrap, hidden, drop)
            problem = sandbox.probe()
        if problem:
            raise SandboxUnavailable(f"bubblewrap cannot isolate the grader's child processes here: {problem}")
        return sandbox

    def probe(self):
        """None if a sandboxed process starts, imports numpy and torch, and can neither import course_lib, nor
        see the workbook's folders, nor write to the file system; otherwise what went wrong."""
        script = (
            "import os, sys\n"
            "import numpy, torch\n"
            "try:\n"
            "    import course_lib\n"
            f"    sys.exit({IMPORTABLE!r} + os.path.dirname(course_lib.__file__))\n"
            "except ImportError:\n"
            "    pass\n"
            f"for name in ('course_lib', 'instructor', 'data', 'notebooks', '.git'):\n"
            f"    if os.path.exists(os.path.join({str(WORKBOOK)!r}, name)):\n"
            "        sys.exit(f'the workbook folder is visible: {name}')\n"
            "for path in ('/usr/probe-write', '/etc/probe-write'):\n"
            "    try:\n"
            "        open(path, 'w').close()\n"
            "        sys.exit(f'{path} is writable')\n"
            "    except OSError:\n"
            "        pass\n"
            "print('sandbox ok')\n")
        # A generous time limit: on a busy machine starting numpy and torch alone can take many seconds.
        completed = replace(self, timeout=max(self.timeout, PROBE_TIMEOUT)).execute(script)
        if completed.timed_out:
            return f"the probe did not finish within {max(self.timeout, PROBE_TIMEOUT)} s"
        if completed.returncode != 0 or "sandbox ok" not in completed.output:
            lines = completed.output.strip().splitlines()
            if lines and lines[-1].startswith(IMPORTABLE):
                return lines[-1]
            return f"exit status {completed.returncode}: {completed.output.strip()[-500:] or 'no output'}"
        return None

    def execute(self, script):
        """Run a Python ``script`` in the sandbox, under its limits; an ``Executed``."""
        with tempfile.TemporaryDirectory(prefix="sandbox-script-") as scratch:
            code = Path(scratch) / "script.py"
            code.write_text(script, encoding="utf-8")
            out = Path(scratch) / "out"
            out.mkdir()
            completed, timed_out, truncated = self._execute([sys.executable, "-I", f"{JUDGE}/code.py"], code,
                                                            None, out)
        return Executed(completed.returncode, completed.output, timed_out, truncated)

    def run(self, code, name, cases_dir):
        """Execute ``code`` (a learner's exercise cell), call ``name`` on the cases in ``cases_dir``, and read
        back the outputs; never raises for anything the learner's code does."""
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="sandbox-run-") as scratch:
            code_file = Path(scratch) / "code.py"
            code_file.write_text(code, encoding="utf-8")
            out = Path(scratch) / "out"
            out.mkdir()
            command = [sys.executable, "-I", f"{JUDGE}/harness.py", f"{JUDGE}/cases", f"{JUDGE}/code.py",
                       f"{JUDGE}/out", name]
            completed, timed_out, truncated = self._execute(command, code_file, cases_dir, out)
            sandbox_run = SandboxRun(output=completed.output)
            if timed_out:
                sandbox_run.notes.append(f"time limit: stopped after {self.timeout:g} s")
            elif completed.returncode in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
                sandbox_run.notes.append(f"CPU time limit: stopped after {self.timeout:g} s of CPU time")
            elif completed.returncode in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ):
                sandbox_run.notes.append(f"file size limit: a file grew past {self.file_bytes} bytes")
            elif completed.returncode != 0:
                sandbox_run.notes.append(f"the process ended with status {completed.returncode}")
            if truncated:
                sandbox_run.notes.append(f"output over {self.output_bytes} bytes: the rest was discarded")
            _read_back(out, sandbox_run)
        if any(event.get("type") == "MemoryError" for event in sandbox_run.setup + _all_events(sandbox_run)):
            sandbox_run.notes.append(f"memory limit: an allocation beyond {self.memory / GiB:g} GiB failed")
        sandbox_run.seconds = time.monotonic() - started
        return sandbox_run

    # ------------------------------------------------------------------------------------------------------
    def _execute(self, command, code_file, cases_dir, out):
        if self.sandboxed:
            if self.drop_to_nobody:
                os.chown(out, NOBODY, NOBODY)
            binds = ["--ro-bind", str(HARNESS), f"{JUDGE}/harness.py", "--ro-bind", str(code_file),
                     f"{JUDGE}/code.py", "--bind", str(out), f"{JUDGE}/out"]
            if cases_dir is not None:
                binds += ["--ro-bind", str(cases_dir), f"{JUDGE}/cases"]
            prefix = self.command_prefix
            split = prefix.index("--") if "--" in prefix else len(prefix)  # bwrap's options, then setpriv's
            # bwrap's options go through a pipe (--args): as the sandbox's process 1, bwrap's command line is
            # readable inside, and it must not show the paths of the folders it hides.
            options = "".join(f"{option}\0" for option in [*prefix[1:split], *binds]).encode()
            reader, writer = os.pipe()
            os.write(writer, options)  # far below a pipe's capacity
            os.close(writer)
            full, passed = [prefix[0], "--args", str(reader), "--", *prefix[split + 1:], *command], (reader,)
        else:  # the same paths, without the sandbox: point the arguments at the real files
            real = {f"{JUDGE}/harness.py": str(HARNESS), f"{JUDGE}/code.py": str(code_file),
                    f"{JUDGE}/out": str(out), f"{JUDGE}/cases": str(cases_dir)}
            full, passed = [real.get(part, part) for part in command], ()
        try:
            process = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, env=_environment(), preexec_fn=self._limit,
                                       start_new_session=True, pass_fds=passed)
        finally:
            for descriptor in passed:
                os.close(descriptor)
        kept, truncated = _Drain(process.stdout, self.output_bytes), False
        kept.start()
        timed_out = False
        try:
            process.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(process)
        finally:
            _kill(process)  # whatever it left behind in its session
        kept.join(timeout=5)
        truncated = kept.truncated
        return _Completed(process.returncode, kept.text()), timed_out, truncated

    def _limit(self):
        """Runs in the child before exec; bwrap and everything it starts inherit the limits."""
        resource.setrlimit(resource.RLIMIT_AS, (self.memory, self.memory))
        cpu = int(self.timeout) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.file_bytes, self.file_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if self.sandboxed:  # counted per user: nobody's processes (or the grader's, when not root)
            resource.setrlimit(resource.RLIMIT_NPROC, (self.processes, self.processes))


@dataclass
class _Completed:
    returncode: int
    output: str


@dataclass
class Executed:
    returncode: int
    output: str
    timed_out: bool
    truncated: bool


class _Drain(threading.Thread):
    """Reads a pipe to its end, keeping the first ``limit`` bytes: a flood of output cannot block the child
    or fill the grader's memory."""

    def __init__(self, pipe, limit):
        super().__init__(daemon=True)
        self.pipe, self.limit, self.kept, self.truncated = pipe, limit, bytearray(), False

    def run(self):
        while chunk := self.pipe.read(65536):
            room = self.limit - len(self.kept)
            if len(chunk) > room:
                self.truncated = True
            self.kept += chunk[:max(room, 0)]

    def text(self):
        return self.kept.decode("utf-8", errors="replace")


def _kill(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


def _environment():
    return {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "LANG": "C.UTF-8",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def _bwrap_arguments(bwrap, hidden, drop_to_nobody):
    """bwrap's arguments up to the command: read-only root, hidden folders, the interpreter visible again.

    As root, bwrap builds the sandbox with root's rights (so it can reach an interpreter in root's home) and
    the sandboxed command starts through setpriv as user nobody, with no capabilities: then the process limit
    applies (the kernel exempts root from it). As another user, bwrap uses a user namespace as usual."""
    arguments = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
                 "--perms", "1777", "--tmpfs", "/tmp", "--perms", "0755", "--dir", JUDGE,
                 "--die-with-parent", "--new-session", "--chdir", "/tmp"]
    if drop_to_nobody:
        arguments += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
                      "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        arguments += ["--unshare-all"]
    home = Path(os.path.expanduser("~")).resolve()
    hide = [home, WORKBOOK, *(Path(path).resolve() for path in hidden)]
    for path in _unique(hide):
        if path.is_dir() and path != Path("/"):
            arguments += ["--tmpfs", str(path)]
    # The interpreter and its packages may live under a hidden folder (a venv in the workbook, pyenv in home).
    for prefix in _unique(Path(p).resolve() for p in {sys.prefix, sys.base_prefix, sys.exec_prefix}):
        if any(prefix.is_relative_to(path) for path in hide):
            arguments += ["--ro-bind", str(prefix), str(prefix)]
    # course_lib may be installed inside them (a non-editable install): hide it again.
    if any(PACKAGE.is_relative_to(Path(p).resolve()) for p in {sys.prefix, sys.base_prefix}):
        arguments += ["--tmpfs", str(PACKAGE)]
    if drop_to_nobody:
        arguments += ["--", shutil.which("setpriv") or "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                      "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"]
    return arguments


def _unique(paths):
    seen = []
    for path in paths:
        if path not in seen:
            seen.append(path)
    return seen


def _all_events(sandbox_run):
    return [event for _, events in sandbox_run.results.values() for event in events]


def _read_back(out, sandbox_run):
    """Fill ``sandbox_run`` from the files the process wrote, trusting nothing about them."""
    outputs_path, events_path = out / "outputs.npz", out / "events.json"
    if not outputs_path.is_file() or not events_path.is_file():
        sandbox_run.setup.append({"what": "raised", "type": "ProcessEnded",
                                  "message": "the process ended before it returned any result"})
        return
    try:
        events = _events(events_path)
        outputs = _outputs(outputs_path)
    except ValueError as error:
        sandbox_run.setup.append({"what": "raised", "type": "MalformedResult", "message": str(error)})
        return
    cases = {}
    for key, value in outputs.items():
        number, name = key.split("/", 1) if "/" in key else ("", key)
        if number.isdigit():
            cases.setdefault(int(number), ({}, []))[0][name] = value
    for event in events:
        number = event.get("case")
        if number == -1:
            sandbox_run.setup.append(event)
        elif isinstance(number, int) and number >= 0:
            cases.setdefault(number, ({}, []))[1].append(event)
    sandbox_run.results = cases  # case number -> (outputs, events); the grader orders them by its cases


def _events(path):
    if path.stat().st_size > MAX_EVENTS_FILE:
        raise ValueError("events.json is larger than 1 MB")
    try:
        events = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"events.json is not JSON: {error}") from None
    if not isinstance(events, list):
        raise ValueError("events.json is not a list")
    clean = [_tidy(event) for event in events if isinstance(event, dict)]
    return [event for event in clean if isinstance(event.get("call"), int) and isinstance(event.get("what"), str)]


def _tidy(event):
    """An event from the sandbox with only short strings, numbers and short lists of integers in it."""
    tidy = {}
    for key, value in event.items():
        if isinstance(value, bool) or not isinstance(value, int | float | str | list):
            continue
        if isinstance(value, str):
            value = value[:2000]
        elif isinstance(value, list):
            value = [item for item in value if isinstance(item, int) and not isinstance(item, bool)][:8]
        tidy[str(key)[:40]] = value
    return tidy


def _outputs(path):
    try:
        with zipfile.ZipFile(path) as archive:
            if sum(info.file_size for info in archive.infolist()) > MAX_OUTPUT_FILE:
                raise ValueError("outputs.npz holds more than 64 MB")
        with np.load(path, allow_pickle=False) as stored:
            outputs = {}
            for key in stored.files:
                value = stored[key]
                if value.dtype == np.float64 and value.ndim <= 4:
                    outputs[key] = value
            return outputs
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"outputs.npz cannot be read: {error}") from None
