"""JupyterLab on 127.0.0.1 driven by Debian's Chromium through Playwright: shared by the browser tests
(tests/browser/) and the benchmark (bench/bench.py).

    server = LabServer(root_dir, scratch_dir).start()          # free port, known token, isolated config
    with sync_playwright() as playwright:
        context = launch_chromium(playwright, scratch_dir / "chromium-profile")
        notebook = NotebookPage(context.new_page(), server, "01_problems_of_optimization.ipynb").open()
        notebook.run_all()                                      # Run All, past unfinished exercises' checks
    server.shutdown()                                           # POST /api/shutdown, then wait, then kill

Every wait has a timeout. JupyterLab gets its own config, data, runtime and IPython directories (so no user
setting, workspace or kernelspec of this machine leaks in), all cells rendered (windowingMode "none"), and the
lab extensions that only the developer stack installs (nbgrader, jupytext, notebook 7) switched off, as
students do not have them.
"""

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

CHROMIUM = Path(os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium"))
# Keeps Chromium off the network (see /work/shared/guides/toolchain.md); --no-sandbox because CI runs as root.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# Lab extensions of the developer stack (requirements-dev.lock) that students' requirements.lock lacks.
DEV_ONLY_LAB_EXTENSIONS = ("@jupyter/nbgrader", "jupyterlab-jupytext", "@jupyter-notebook/lab-extension")
# stderr that ipywidgets' front end provokes in every fresh kernel before `import ipywidgets` (harmless).
HARMLESS_STDERR = ("No such comm target registered: jupyter.widget.control", "No such comm: ")


def find_chromium():
    """The Chromium executable, or None."""
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return None


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LabServer:
    """A JupyterLab server on 127.0.0.1 serving ``root_dir``; its config and logs live in ``scratch``."""

    def __init__(self, root_dir, scratch, startup_timeout=90.0):
        self.root_dir = Path(root_dir)
        self.scratch = Path(scratch)
        self.startup_timeout = startup_timeout
        self.token = secrets.token_hex(16)
        self.port = None
        self.process = None
        self.log_path = self.scratch / "jupyterlab.log"

    @property
    def base_url(self):
        return f"http://127.0.0.1:{self.port}/"

    def url(self, path, **query):
        query = {"token": self.token, **query}
        return self.base_url + path + "?" + "&".join(f"{k}={quote(str(v))}" if v != "" else k
                                                     for k, v in query.items())

    def _environment(self):
        env = dict(os.environ)
        for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
            path = self.scratch / name.lower()
            path.mkdir(parents=True, exist_ok=True)
            env[name] = str(path)
        config = Path(env["JUPYTER_CONFIG_DIR"])
        (config / "labconfig").mkdir(exist_ok=True)
        (config / "labconfig" / "page_config.json").write_text(
            json.dumps({"disabledExtensions": {name: True for name in DEV_ONLY_LAB_EXTENSIONS}}))
        settings = config / "lab" / "user-settings" / "@jupyterlab"
        _write_json(settings / "notebook-extension" / "tracker.jupyterlab-settings", {"windowingMode": "none"})
        _write_json(settings / "apputils-extension" / "notification.jupyterlab-settings",
                    {"checkForUpdates": False, "fetchNews": "false"})
        # The kernel must be this interpreter (the venv with course_lib): jupyter_client maps the python3
        # kernelspec's "python" to sys.executable of the server.
        env.pop("PYTHONSTARTUP", None)
        return env

    def _command(self):
        command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
                   "--ServerApp.port_retries=0", f"--IdentityProvider.token={self.token}",
                   f"--ServerApp.root_dir={self.root_dir}", "--LabApp.expose_app_in_browser=True",
                   "--ServerApp.shutdown_no_activity_timeout=0", "--MappingKernelManager.cull_idle_timeout=0"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--ServerApp.allow_root=True")
        return command

    def start(self):
        self.scratch.mkdir(parents=True, exist_ok=True)
        env = self._environment()
        last_error = None
        for _attempt in range(3):  # a free port can be taken between the probe and the bind: retry
            self.port = free_port()
            log = open(self.log_path, "ab")  # noqa: SIM115 (closed in shutdown)
            self.process = subprocess.Popen(self._command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                            stdin=subprocess.DEVNULL, cwd=self.root_dir,
                                            preexec_fn=_die_with_parent)
            self._log = log
            try:
                self._wait_until_up()
                return self
            except RuntimeError as error:
                last_error = error
                self._kill()
        raise RuntimeError(f"JupyterLab did not start: {last_error}\n{self.log_tail()}")

    def _wait_until_up(self):
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"exited with code {self.process.returncode}")
            try:
                self.api("GET", "api/status", timeout=2)
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                time.sleep(0.2)
        raise RuntimeError(f"not answering on port {self.port} after {self.startup_timeout:.0f} s")

    def api(self, method, path, body=None, timeout=10.0):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method,
                                         headers={"Authorization": f"token {self.token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read().decode()
        return json.loads(text) if text.strip() else None

    def kernel_pids(self):
        """Process ids of the server's kernels (children of the server that run ipykernel)."""
        import psutil

        try:
            children = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.Error:
            return []
        pids = []
        for child in children:
            try:
                if any("ipykernel" in part for part in child.cmdline()):
                    pids.append(child.pid)
            except psutil.Error:
                continue
        return pids

    def shut_down_sessions(self):
        """Shut every session's kernel down (between notebooks), ignoring errors."""
        try:
            for session in self.api("GET", "api/sessions"):
                self.api("DELETE", f"api/sessions/{session['id']}", timeout=20)
        except (urllib.error.URLError, OSError, ValueError):
            pass

    def shutdown(self, timeout=20.0):
        """POST /api/shutdown (which also stops the kernels); kill the process if it has not gone in time."""
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self.api("POST", "api/shutdown", timeout=5)
            except (urllib.error.URLError, OSError, ValueError):
                pass
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self._kill()

    def _kill(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines=60):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _die_with_parent():
    """In the child: get SIGTERM when the process that started the server dies (pytest killed with -9, say),
    so that no JupyterLab outlives its test run. Linux only; elsewhere a no-op."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _write_json(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value))


def launch_chromium(playwright, user_data_dir, viewport=(1280, 1600)):
    """A fresh Chromium profile in ``user_data_dir`` (deleted first), headless and off the network."""
    user_data_dir = Path(user_data_dir)
    shutil.rmtree(user_data_dir, ignore_errors=True)
    user_data_dir.mkdir(parents=True)
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir), executable_path=str(find_chromium() or CHROMIUM), args=CHROMIUM_FLAGS,
        headless=True, viewport={"width": viewport[0], "height": viewport[1]}, timeout=60_000)


# ---- the notebook page ------------------------------------------------------------------------------------
_PANEL_JS = """(path) => {
    const app = window.jupyterapp;
    if (!app || !app.shell) return null;
    for (const widget of app.shell.widgets('main')) {
        if (widget.context && widget.context.path === path && widget.content && widget.sessionContext)
            return widget;
    }
    return null;
}"""

_READY_JS = """(path) => {
    const dialog = document.querySelector('.jp-Dialog');
    if (dialog) return 'dialog: ' + dialog.innerText.slice(0, 300);
    const panel = (__PANEL__)(path);
    if (!panel || !panel.context.isReady) return false;
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    return !!kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle';
}""".replace("__PANEL__", _PANEL_JS)

_HOOK_JS = """(path) => {
    const panel = (__PANEL__)(path);
    const log = window.__course = {path, messages: [], idle: 0, runAll: 'not started'};
    panel.sessionContext.iopubMessage.connect((_, msg) => {
        const type = msg.header.msg_type;
        if (type === 'status' && msg.content.execution_state === 'idle') log.idle += 1;
        if (type === 'error' || (type === 'stream' && msg.content.name === 'stderr'))
            log.messages.push({type, parent: msg.parent_header ? msg.parent_header.msg_type || null : null,
                               ename: msg.content.ename || null, evalue: msg.content.evalue || null,
                               text: msg.content.text || (msg.content.traceback || []).join('\\n')});
    });
    return true;
}""".replace("__PANEL__", _PANEL_JS)

_RUN_JS = """([path, command, index]) => {
    const panel = (__PANEL__)(path);
    if (index !== null) panel.content.activeCellIndex = index;
    window.__course.runAll = 'running';
    window.jupyterapp.commands.execute(command).then(
        () => { window.__course.runAll = 'done'; },
        (error) => { window.__course.runAll = 'failed: ' + error; });
}""".replace("__PANEL__", _PANEL_JS)

_SETTLED_JS = """(path) => {
    const panel = (__PANEL__)(path);
    const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
    return window.__course.runAll !== 'running' && !!kernel && kernel.status === 'idle';
}""".replace("__PANEL__", _PANEL_JS)

_IDLE_AGAIN_JS = """([path, idle]) => window.__course.idle > idle &&
    (__PANEL__)(path).sessionContext.session.kernel.status === 'idle'""".replace("__PANEL__", _PANEL_JS)

_WIDGETS_RENDERED_JS = """() => {
    const outputs = [...document.querySelectorAll(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.widget-view+json"]')];
    const pending = outputs.filter((node) => !node.querySelector('.jupyter-widgets')
        || /Loading widget/.test(node.innerText));
    const images = [...document.querySelectorAll('img.widget-image')];
    const undecoded = images.filter((img) => !(img.complete && img.naturalWidth > 0));
    return {outputs: outputs.length, pending: pending.length, images: images.length,
            undecoded: undecoded.length};
}"""


class NotebookError(AssertionError):
    """The notebook did something a learner would see as broken."""


class NotebookPage:
    """One student notebook open in its own JupyterLab workspace of a Playwright ``page``."""

    def __init__(self, page, server, path, timeout_s=180.0):
        self.page, self.server, self.path = page, server, path
        self.timeout_ms = int(timeout_s * 1000)
        self.console = []
        self.run_all_stops = []  # check cells at which Run All stopped (an unfinished exercise), in order
        page.on("console", lambda message: self.console.append(f"[{message.type}] {message.text}"))
        page.on("pageerror", lambda error: self.console.append(f"[pageerror] {error}"))
        page.set_default_timeout(30_000)

    def open(self):
        workspace = "t" + secrets.token_hex(4)
        self.page.goto(self.server.url(f"lab/workspaces/{workspace}/tree/{quote(self.path)}", reset=""),
                       wait_until="domcontentloaded", timeout=60_000)
        state = self.page.wait_for_function(_READY_JS, arg=self.path, timeout=90_000).json_value()
        if isinstance(state, str):
            raise NotebookError(f"{self.path}: JupyterLab opened a blocking dialog instead of the notebook "
                                f"(no kernelspec metadata?): {state}")
        self.page.evaluate(_HOOK_JS, self.path)
        return self

    # ---- running ------------------------------------------------------------------------------------------
    def model(self):
        """The notebook as JupyterLab holds it (nbformat JSON, outputs included)."""
        return self.page.evaluate(f"(path) => ({_PANEL_JS})(path).content.model.toJSON()", self.path)

    def _run(self, command, index=None):
        self.page.evaluate(_RUN_JS, [self.path, command, index])
        self.page.wait_for_function(_SETTLED_JS, arg=self.path, timeout=self.timeout_ms, polling=100)
        state = self.page.evaluate("() => window.__course.runAll")
        if state != "done":
            raise NotebookError(f"{self.path}: {command} {state}")

    def run_all(self):
        """Run All; where the kernel stopped at an unfinished exercise's check cell, go on with the next cell
        (as a learner who skips that exercise would), so that every cell runs. Returns the executed model."""
        self._run("notebook:run-all-cells")
        for _ in range(200):
            cells = self.model()["cells"]
            unrun = [i for i, cell in enumerate(cells) if _is_code(cell) and cell["execution_count"] is None]
            if not unrun:
                break
            first = unrun[0]
            stopped_at = max((i for i, cell in enumerate(cells[:first]) if _is_code(cell)
                              and cell["execution_count"] is not None), default=None)
            if stopped_at is None or not is_unfinished_exercise_check(cells[stopped_at]):
                if self._still_running(cells):
                    continue
                errors = _cell_errors(cells[stopped_at]) if stopped_at is not None else ""
                raise NotebookError(f"{self.path}: Run All stopped before cell {first} "
                                    f"(it stopped after cell {stopped_at}, which is not an unfinished "
                                    f"exercise's check): {errors}")
            self.run_all_stops.append(stopped_at)
            self._run("notebook:run-all-below", index=first)
        else:
            raise NotebookError(f"{self.path}: cells still unrun after 200 attempts")
        return self.model()

    def _still_running(self, cells, wait_s=10.0):
        """Whether the notebook executes more cells than ``cells`` shows within ``wait_s`` (then waits until it
        settles again). On a loaded machine Run All can look settled for a moment between two cells (its command
        resolved, the kernel idle) with the next cell still to run: seen twice in notebook 02, the cell after an
        exercise's definition unrun when read, run a moment later. A real stop runs nothing more."""
        def executed(model_cells):
            return sum(_is_code(cell) and cell["execution_count"] is not None for cell in model_cells)

        before, deadline = executed(cells), time.monotonic() + wait_s
        while time.monotonic() < deadline:
            self.page.wait_for_timeout(250)
            if executed(self.model()["cells"]) > before:
                self.page.wait_for_function(_SETTLED_JS, arg=self.path, timeout=self.timeout_ms, polling=100)
                return True
        return False

    def wait_for_widgets(self, timeout_s=60.0):
        """Wait until every widget output has rendered and every widget image has decoded."""
        try:
            self.page.wait_for_function(f"() => {{ const s = ({_WIDGETS_RENDERED_JS})(); "
                                        "return s.pending === 0 && s.undecoded === 0; }",
                                        timeout=int(timeout_s * 1000), polling=100)
        except Exception as error:  # noqa: BLE001 (re-raised with the state)
            state = self.page.evaluate(_WIDGETS_RENDERED_JS)
            raise NotebookError(f"{self.path}: widgets did not render in {timeout_s:.0f} s: {state}") from error
        return self.page.evaluate(_WIDGETS_RENDERED_JS)

    # ---- what went wrong ----------------------------------------------------------------------------------
    def kernel_messages(self):
        return self.page.evaluate("() => window.__course.messages")

    def idle_count(self):
        return self.page.evaluate("() => window.__course.idle")

    def problems(self, model=None, cells=True):
        """Everything a learner would see as an error: error outputs other than unfinished exercises' own
        (and those of cells tagged raises-exception, which show an error on purpose), tracebacks on stderr,
        errors from widget callbacks (these reach only the kernel's iopub channel, never the notebook), and
        'Error displaying widget'. ``cells=False`` skips the cells' outputs (which
        only running a cell changes) and reads only the kernel's messages and the page."""
        model = model or (self.model() if cells else {"cells": []})
        found = [problem for index, cell in enumerate(model["cells"]) if _is_code(cell)
                 for output in cell.get("outputs", []) for problem in _output_problems(index, cell, output)]
        for message in self.kernel_messages():
            found += _kernel_message_problems(message)
        shown = self.page.locator("text=Error displaying widget")
        if shown.count():
            found.append(f"'Error displaying widget' shown {shown.count()} time(s): "
                         f"{shown.first.inner_text()[:300]}")
        return found

    def save_artifacts(self, directory, stem):
        """Screenshot, console log, kernel messages, server log tail and the executed notebook."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        saved = []
        try:
            self.page.screenshot(path=str(directory / f"{stem}.png"), full_page=True, timeout=15_000)
            saved.append(f"{stem}.png")
        except Exception as error:  # noqa: BLE001 (best effort on an already failing test)
            self.console.append(f"[artifact] screenshot failed: {error}")
        try:
            (directory / f"{stem}.ipynb").write_text(json.dumps(self.model(), indent=1))
            saved.append(f"{stem}.ipynb")
        except Exception as error:  # noqa: BLE001
            self.console.append(f"[artifact] notebook model unavailable: {error}")
        try:
            messages = json.dumps(self.kernel_messages(), indent=1)
        except Exception as error:  # noqa: BLE001
            messages = f"unavailable: {error}"
        (directory / f"{stem}.log").write_text(
            "== browser console ==\n" + "\n".join(self.console)
            + "\n\n== kernel errors and stderr (iopub) ==\n" + messages
            + "\n\n== JupyterLab server log (tail) ==\n" + self.server.log_tail(200) + "\n")
        saved.append(f"{stem}.log")
        return [directory / name for name in saved]


# ---- widgets ----------------------------------------------------------------------------------------------
class RaceWidget:
    """A race widget on the page: its ipywidgets Image and the slider handles beside it."""

    def __init__(self, notebook, index):
        self.notebook = notebook
        self.page = notebook.page
        self.index = index
        self.image = self.page.locator("img.widget-image").nth(index)
        self.box = self.image.locator("xpath=ancestor::div[contains(@class, 'widget-vbox')][1]")
        self.handles = self.box.locator(".noUi-handle")

    def sliders(self):
        """(label, handle locator) for each visible slider, in order (a widget may hide the sliders that do
        not apply, e.g. a schedule's parameters)."""
        found = self.box.locator(".widget-slider").evaluate_all(
            "nodes => nodes.map(n => [(n.querySelector('.widget-label') || {}).textContent || '',"
            " n.offsetParent !== null && !!n.querySelector('.noUi-handle')])")
        sliders, handle_index = [], 0
        for i, (label, visible) in enumerate(found):
            if visible:
                sliders.append((label.strip() or f"slider {i}", self.handles.nth(handle_index)))
            handle_index += 1
        return sliders

    def src(self):
        return self.image.get_attribute("src")

    def decoded(self):
        return self.image.evaluate("img => img.complete && img.naturalWidth > 0")

    def cell_index(self):
        """The index of the notebook cell whose output holds this widget."""
        return self.image.evaluate("img => [...document.querySelectorAll('.jp-Notebook .jp-Cell')]"
                                   ".indexOf(img.closest('.jp-Cell'))")

    def dropdowns(self):
        """(label, select locator) for each visible dropdown, in order."""
        selects = self.box.locator("select")
        found = []
        for i in range(selects.count()):
            select = selects.nth(i)
            if select.is_visible():
                label = select.evaluate("node => (node.closest('.widget-dropdown') || node).querySelector('label')"
                                        "?.textContent || ''")
                found.append((label.strip() or f"dropdown {i}", select))
        return found

    def press(self, handle, key, expect_change=False, timeout_s=30.0):
        """Press ``key`` on a slider ``handle``; wait until the kernel has handled the change and the image has
        re-rendered (with ``expect_change``, until the picture has changed, up to ``timeout_s``).
        Returns (old aria-valuetext, new aria-valuetext, picture changed?)."""
        def act():
            handle.scroll_into_view_if_needed()
            handle.focus()
            handle.press(key)

        return self._change(act, lambda: handle.get_attribute("aria-valuetext"), expect_change, timeout_s)

    def select_next(self, select, expect_change=False, timeout_s=30.0):
        """Choose the next option of a dropdown; as ``press``: (old value, new value, picture changed?)."""
        def act():
            count = select.locator("option").count()
            index = select.evaluate("node => node.selectedIndex")
            select.select_option(index=(index + 1) % count)

        return self._change(act, lambda: select.evaluate("node => node.value"), expect_change, timeout_s)

    def _change(self, act, read, expect_change, timeout_s):
        before_value, before_src = read(), self.src()
        idle_before = self.notebook.idle_count()
        act()
        after_value = read()
        if after_value == before_value:
            return before_value, after_value, False  # at the end already: nothing is sent to the kernel
        # The kernel answers a change with busy, the new image, idle; the image arrives before idle.
        self.page.wait_for_function(
            _IDLE_AGAIN_JS,
            arg=[self.notebook.path, idle_before], timeout=int(timeout_s * 1000), polling=50)
        try:  # the new PNG is swapped in asynchronously after the comm message: allow it a moment
            self.page.wait_for_function("([img, src]) => img.getAttribute('src') !== src",
                                        arg=[self.image.element_handle(), before_src],
                                        timeout=int(timeout_s * 1000) if expect_change else 3_000, polling="raf")
        except Exception:  # noqa: BLE001 (an unchanged picture is judged by the caller)
            pass
        self.page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                                    arg=self.image.element_handle(), timeout=int(timeout_s * 1000))
        return before_value, after_value, self.src() != before_src


def race_widgets(notebook):
    return [RaceWidget(notebook, i) for i in range(notebook.page.locator("img.widget-image").count())]


# ---- cells ------------------------------------------------------------------------------------------------
def _is_code(cell):
    return cell["cell_type"] == "code" and _text(cell.get("source")).strip() != ""


def _text(value):
    return "".join(value) if isinstance(value, list) else (value or "")


def is_unfinished_exercise_check(cell):
    """A check cell whose error is the unfinished exercise's own (nbgrader grade cell or ExerciseError)."""
    errors = [output for output in cell.get("outputs", []) if output["output_type"] == "error"]
    return bool(errors) and all(is_unfinished_exercise_error(cell, output) for output in errors)


def is_unfinished_exercise_error(cell, output):
    grade_cell = bool(cell.get("metadata", {}).get("nbgrader", {}).get("grade"))
    exercise_error = output.get("ename") == "ExerciseError"
    return exercise_error and (grade_cell or "not done yet" in output.get("evalue", ""))


def _cell_errors(cell):
    return "; ".join(f"{o['ename']}: {o['evalue']}" for o in cell.get("outputs", [])
                     if o["output_type"] == "error")


def _output_problems(index, cell, output):
    """An error output a learner was not meant to see, or a traceback on stderr, of cell ``index``."""
    if output["output_type"] == "error":
        expected = "raises-exception" in cell.get("metadata", {}).get("tags", [])
        if not (expected or is_unfinished_exercise_error(cell, output)):
            return [f"cell {index}: {output['ename']}: {output['evalue']}"]
    elif output["output_type"] == "stream" and output["name"] == "stderr":
        text = _text(output.get("text"))
        if _looks_like_a_traceback(text):
            return [f"cell {index} stderr: {text[:500]}"]
    return []


def _kernel_message_problems(message):
    """An error or a traceback the kernel sent outside any cell's execution (a widget callback's)."""
    if message["parent"] == "execute_request":
        return []  # shown in a cell's output, judged there
    if message["type"] == "error":
        return [f"kernel error during {message['parent']}: {message['ename']}: {message['evalue']}"
                f"\n{_strip_ansi(message['text'])[-1500:]}"]
    harmless = all(line.startswith(HARMLESS_STDERR) for line in message["text"].strip().splitlines())
    if not harmless and _looks_like_a_traceback(message["text"]):
        return [f"kernel stderr during {message['parent']}: {message['text'][:1500]}"]
    return []


def _looks_like_a_traceback(text):
    return "Traceback" in text or "Error:" in text or "Exception" in text


def _strip_ansi(text):
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)
