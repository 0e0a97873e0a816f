"""Benchmarks of the workbook against its budgets: `make bench` (= .venv/bin/python bench/bench.py).

Prints a table and writes bench-results/bench.json. Every figure is marked ok or MISSED against its budget;
the exit status is 0 unless --strict is given and a budget is missed (then 1).

    notebooks   headless run with nbclient in a kernel limited to --threads threads (default 1, as on Binder):
                the kernel's CPU time (user + system, from /proc: what the budget judges, since the wall clock
                grows with the machine's load) and the wall time (kernel start + every cell; median of --runs,
                per-cell timeout), and the kernel's peak memory (VmHWM of the kernel process, read from /proc
                just before the kernel shuts down; a 50 ms psutil RSS sampler runs beside it as a
                cross-check), for every instructor source (solutions in) and every student copy (exercises
                unfinished); a cell's error is recorded, not raised
    widgets     kernel-side update latency of every slider/dropdown of every widget the instructor notebooks
                build: a value change -> callback compute + redraw + PNG in the Image, median of 20 changes
                across the control's range, split into compute / draw / encode / rest (bench/widget_probe.py)
    browser     (when Chromium is installed) in JupyterLab in headless Chromium, kernels on --threads threads:
                Run All of every instructor notebook until every widget is drawn (wall clock), the memory of the
                session (the server's VmHWM + the kernel's VmHWM), and keypress on a slider handle -> the image's
                src changes, median of 10, for the first slider, κ and every dropdown
    optimizer   each training cell of the notebooks (its model, data, batch size, epochs and scheduler) with
                course_lib.optim.RuleOptimizer / the same cell with the torch.optim twin: CPU seconds of
                training.train (one thread, as the notebooks train), median of interleaved runs; and, without a
                budget, optimizer.step() alone at ~1M parameters, RuleOptimizer(adam) / torch.optim.Adam, one
                thread and the default thread count
    grading     `make grade` on a class of --class-size students, each handing in every notebook (two in three
                solved, one in three blank), with --jobs 1 and 2: seconds and notebooks graded per minute
                (no budget; each exercise is a sandboxed process that imports numpy and torch)

Budgets (``BUDGETS``): a notebook <= 10 s of CPU headless on one thread and <= 20 s Run All in Chromium; its kernel
<= 350 MB at its peak, and the JupyterLab server plus that kernel <= 450 MB (Binder's guarantee); a widget update
<= 50 ms in the kernel and <= 150 ms in the browser; a training cell with RuleOptimizer <= 1.5x the same cell with
torch.optim.

    .venv/bin/python bench/bench.py [--strict] [--quick] [--only notebooks,widgets,browser,optimizer]
                                    [--no-student] [--runs 3] [--out bench-results/bench.json]

Timings depend on what else the machine does: the JSON records the load average before and after.
"""

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tests" / "browser"))  # the JupyterLab + Chromium helpers the browser tests use

# Binder gives a session one CPU and guarantees it 450 MB (server and kernels together).
BUDGETS = {
    "notebook_s": 10.0,  # headless run of a notebook, kernel start included: the kernel's CPU time, one thread
    "notebook_browser_s": 20.0,  # Run All in JupyterLab in Chromium, until every widget is drawn (wall clock)
    "kernel_mb": 350.0,  # a notebook's kernel at its peak (VmHWM)
    "session_mb": 450.0,  # the JupyterLab server's peak and one notebook's kernel's peak, added
    "widget_kernel_ms": 50.0,
    "widget_browser_ms": 150.0,
    "optimizer_ratio": 1.5,
}
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
SECTIONS = ("notebooks", "widgets", "browser", "optimizer", "grading")


# ---- notebooks -------------------------------------------------------------------------------------------
def instructor_notebooks():
    return sorted(p for folder in (ROOT / "instructor" / "source").iterdir() if folder.is_dir()
                  for p in [folder / f"{folder.name}.ipynb"] if p.is_file())


def student_notebooks():
    return sorted((ROOT / "notebooks").glob("*.ipynb"))


def read_kib(pid, field):
    """A /proc/<pid>/status field in KiB (VmHWM: peak resident set size; VmRSS: current)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


class RssSampler(threading.Thread):
    """Samples the RSS of a process (and its children) every ``interval`` seconds; ``peak`` in bytes."""

    def __init__(self, pid, interval=0.05):
        super().__init__(daemon=True)
        import psutil

        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self):
        import psutil

        while not self._stop_event.is_set():
            try:
                rss = self.process.memory_info().rss
                rss += sum(child.memory_info().rss for child in self.process.children(recursive=True))
            except psutil.Error:
                break
            self.peak = max(self.peak, rss)
            self.samples += 1
            self._stop_event.wait(self.interval)

    def stop(self):
        self._stop_event.set()
        self.join(timeout=2)
        return self.peak


def _kernel_pid(client):
    provisioner = getattr(client.km, "provisioner", None)
    pid = getattr(provisioner, "pid", None) or getattr(getattr(provisioner, "process", None), "pid", None)
    if pid is None:
        raise RuntimeError("cannot find the kernel's process id")
    return pid


def _errors(nb):
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.output_type == "error":
                found.append((index, cell, output))
    return found


def _unfinished_exercise(cell, output):
    grade = bool(cell.get("metadata", {}).get("nbgrader", {}).get("grade"))
    return output.ename == "ExerciseError" and (grade or "not done yet" in output.evalue)


def _model_cells(nb):
    cells = {}
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            view = output.get("data", {}).get(WIDGET_MIME)
            if view:
                cells[view["model_id"]] = index
    return cells


def cpu_seconds(pid):
    """User + system CPU time of a process so far (its threads included), from /proc/<pid>/stat: unlike the
    wall clock, it does not grow when other work shares the cores."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kernel_environment(threads):
    """The kernel's environment: with ``threads`` set, every thread pool (OpenMP, MKL, OpenBLAS, torch's) is
    limited to that many threads, as on a one-CPU Binder session."""
    env = dict(os.environ)
    if threads:
        for name in THREAD_VARIABLES:
            env[name] = str(threads)
    return env


def run_notebook(path, kind, cell_timeout, probe_widgets=None, threads=1):
    """Execute ``path`` in a fresh kernel, in a temporary copy of its folder. Returns the measurements, and
    the widget probe's results if ``probe_widgets`` (a dict of probe() arguments) is given."""
    import nbformat
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory(prefix="bench-nb-") as temporary:
        work = Path(temporary) / path.parent.name
        if kind == "instructor":
            shutil.copytree(path.parent, work, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        else:
            work.mkdir()
            shutil.copy2(path, work / path.name)
        nb = nbformat.read(work / path.name, as_version=4)
        # Errors are recorded (an instructor notebook's count as misses), not raised: one failing claim on a busy
        # machine must not cost the whole benchmark.
        client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(work)}})
        started = time.perf_counter()
        result = {"notebook": path.name, "kind": kind}
        # The kernel's own stderr (ipykernel's start-up warnings, a crash) goes to a log, not into the table.
        kernel_log = ROOT / "bench-results" / "kernel-stderr.log"
        kernel_log.parent.mkdir(parents=True, exist_ok=True)
        with open(kernel_log, "ab") as stderr, client.setup_kernel(cwd=str(work), stderr=stderr,
                                                                    env=kernel_environment(threads)):
            pid = _kernel_pid(client)
            sampler = RssSampler(pid)
            sampler.start()
            ready = time.perf_counter()
            cell_times = []
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                cell_start = time.perf_counter()
                client.execute_cell(cell, index)
                cell_times.append((time.perf_counter() - cell_start, index))
            finished = time.perf_counter()
            result["cpu_s"] = cpu_seconds(pid)
            result["hwm_mb"] = read_kib(pid, "VmHWM") / 1024
            result["rss_end_mb"] = read_kib(pid, "VmRSS") / 1024
            result["sampled_peak_mb"] = sampler.stop() / 2**20
            result["samples"] = sampler.samples
            if probe_widgets is not None:
                result["widgets"] = _probe(client, nb, probe_widgets)
        result["total_s"] = finished - started
        result["kernel_start_s"] = ready - started
        result["cells_s"] = finished - ready
        result["slowest_cells"] = [{"cell": i, "s": round(t, 2)} for t, i in sorted(cell_times, reverse=True)[:3]]
        unexpected = [f"cell {i}: {o.ename}: {o.evalue}" for i, c, o in _errors(nb)
                      if not (kind == "student" and _unfinished_exercise(c, o))]
        result["unexpected_errors"] = unexpected
        return result


def _probe(client, nb, arguments):
    import nbformat
    from widget_probe import MARKER

    source = (BENCH / "widget_probe.py").read_text()
    code = (f"exec(compile({source!r}, 'widget_probe.py', 'exec'), __widget_probe := {{}})\n"
            f"__widget_probe['probe'](model_cells={_model_cells(nb)!r}, **{arguments!r})")
    cell = nbformat.v4.new_code_cell(code)
    nb.cells.append(cell)
    timeout, client.timeout = client.timeout, 1800
    try:
        client.execute_cell(cell, len(nb.cells) - 1)
    finally:
        client.timeout = timeout
    for output in cell.outputs:
        if output.output_type == "stream" and MARKER in output.text:
            line = next(line for line in output.text.splitlines() if line.startswith(MARKER))
            return json.loads(line[len(MARKER):])
        if output.output_type == "error":
            raise RuntimeError(f"widget probe failed: {output.ename}: {output.evalue}")
    raise RuntimeError("widget probe printed nothing")


def bench_notebooks(args, report):
    kinds = [("instructor", instructor_notebooks())]
    if not args.no_student:
        kinds.append(("student", student_notebooks()))
    rows, widgets = [], []
    for kind, paths in kinds:
        for path in paths:
            runs = _run_notebook_repeatedly(args, path, kind, widgets)
            if "notebooks" in args.only:
                rows.append(_notebook_row(args, path, kind, runs))
    if "notebooks" in args.only:
        report["notebooks"] = rows
    if "widgets" in args.only:
        report["widgets"] = widgets


def _run_notebook_repeatedly(args, path, kind, widgets):
    """``args.runs`` runs of the notebook (one when only the widgets are measured); the first run of an
    instructor notebook also probes its widgets, appending to ``widgets``."""
    runs = []
    for run in range(args.runs if "notebooks" in args.only else 1):
        probe = None
        if kind == "instructor" and run == 0 and "widgets" in args.only:
            probe = {"changes": args.changes, "budget_s": BUDGETS["widget_kernel_ms"] / 1000}
        print(f"  {kind} {path.name} run {run + 1}/{args.runs}" + (" + widget probe" if probe else ""), flush=True)
        measured = run_notebook(path, kind, args.cell_timeout, probe, threads=args.threads)
        widgets += [{"notebook": path.name, **widget} for widget in measured.pop("widgets", [])]
        runs.append(measured)
    return runs


def _notebook_row(args, path, kind, runs):
    return {
        "notebook": path.name, "kind": kind, "runs": len(runs),
        "total_s": statistics.median(r["total_s"] for r in runs),
        "total_s_all": [round(r["total_s"], 2) for r in runs],
        "kernel_start_s": statistics.median(r["kernel_start_s"] for r in runs),
        "cells_s": statistics.median(r["cells_s"] for r in runs),
        "cpu_s": statistics.median(r["cpu_s"] for r in runs),
        "threads": args.threads,
        "hwm_mb": max(r["hwm_mb"] for r in runs),
        "sampled_peak_mb": max(r["sampled_peak_mb"] for r in runs),
        "rss_end_mb": statistics.median(r["rss_end_mb"] for r in runs),
        "slowest_cells": runs[-1]["slowest_cells"],
        "unexpected_errors": sorted({e for r in runs for e in r["unexpected_errors"]}),
    }


# ---- browser ---------------------------------------------------------------------------------------------
_LATENCY_ARM_JS = """([handle, img, trigger]) => {
    const before = img.getAttribute('src');
    window.__latency = new Promise((resolve) => {
        let t0 = null;
        const timer = setTimeout(() => { observer.disconnect(); resolve(null); }, 20000);
        const observer = new MutationObserver(() => {
            if (t0 === null || img.getAttribute('src') === before) return;
            const changed = performance.now() - t0;
            observer.disconnect();
            clearTimeout(timer);
            img.decode().then(() => resolve({src: changed, decoded: performance.now() - t0}),
                              () => resolve({src: changed, decoded: null}));
        });
        observer.observe(img, {attributes: true, attributeFilter: ['src']});
        handle.addEventListener(trigger, () => { t0 = performance.now(); }, {once: true, capture: true});
    });
}"""


def _browser_latency(widget, control, trigger, act, presses, settle):
    """``presses`` timed changes of one control: (src-change ms list, decoded ms list)."""
    src_ms, decoded_ms = [], []
    for i in range(presses):
        widget.page.evaluate(_LATENCY_ARM_JS, [control.element_handle(), widget.image.element_handle(), trigger])
        act(i)
        measured = widget.page.evaluate("() => window.__latency")
        if measured is not None:
            src_ms.append(measured["src"])
            if measured["decoded"] is not None:
                decoded_ms.append(measured["decoded"])
        settle()
    return src_ms, decoded_ms


def bench_browser(args, report):
    from lab_in_browser import LabServer, find_chromium, launch_chromium

    chromium = find_chromium()
    if chromium is None:
        report["browser"] = {"skipped": "Chromium not found at /usr/bin/chromium (apt-get install -y chromium)"}
        print("  skipped: no Chromium", flush=True)
        return
    from playwright.sync_api import sync_playwright

    rows, runs_all = [], []
    with tempfile.TemporaryDirectory(prefix="bench-lab-") as temporary:
        scratch = Path(temporary)
        root = scratch / "notebooks"
        root.mkdir()
        for path in instructor_notebooks():  # solutions in: every widget races every runner
            shutil.copy2(path, root / path.name)
        # The kernels get one thread, as on a one-CPU Binder session (the server passes its environment on).
        saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
        os.environ.update(kernel_environment(args.threads))
        try:
            server = LabServer(root, scratch / "server").start()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        try:
            with sync_playwright() as playwright:
                context = launch_chromium(playwright, scratch / "chromium-profile")
                try:
                    for path in instructor_notebooks():
                        print(f"  browser {path.name}", flush=True)
                        measured, run_all = _bench_browser_notebook(context, server, path.name, args.presses)
                        rows.extend(measured)
                        if run_all is not None:
                            runs_all.append(run_all)
                        server.shut_down_sessions()
                finally:
                    context.close()
        finally:
            server.shutdown()
    version = subprocess.run([str(chromium), "--version"], capture_output=True, text=True, timeout=30).stdout
    report["browser"] = {"chromium": version.strip(), "rows": rows, "run_all": runs_all}


def _bench_browser_notebook(context, server, name, presses):
    from lab_in_browser import NotebookPage, race_widgets

    notebook = NotebookPage(context.new_page(), server, name).open()
    rows = []
    try:
        started = time.perf_counter()
        notebook.run_all()
        notebook.wait_for_widgets()
        run_all = {"notebook": name, "run_all_s": time.perf_counter() - started, **_session_memory(server)}
        for widget in race_widgets(notebook):
            settle = _settler(notebook, widget)
            sliders = widget.sliders()
            if not sliders:
                hidden = widget.box.locator(".widget-slider").count()
                rows.append({"notebook": name, "problems": [f"widget {widget.index + 1} (cell "
                             f"{widget.cell_index()}): no visible slider "
                             f"({hidden} hidden)"]})
            chosen = sliders[:1] + [s for s in sliders[1:] if "κ" in s[0] or "condition" in s[0]]
            for label, handle in chosen:
                handle.scroll_into_view_if_needed()
                handle.focus()
                at_end = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
                keys = ("ArrowLeft", "ArrowRight") if at_end else ("ArrowRight", "ArrowLeft")
                src, decoded = _browser_latency(widget, handle, "keydown",
                                                lambda i, h=handle, k=keys: h.press(k[i % 2]), presses, settle)
                rows.append(_browser_row(name, widget, label, "keypress", src, decoded, presses))
            for label, select in widget.dropdowns():
                count = select.locator("option").count()
                current = select.evaluate("node => node.selectedIndex")

                def choose(i, select=select, count=count, current=current):
                    select.select_option(index=(current + 1 + i) % count)

                src, decoded = _browser_latency(widget, select, "change", choose, presses if count > 1 else 0,
                                                settle)
                rows.append(_browser_row(name, widget, label, "select", src, decoded, presses))
        problems = notebook.problems()
        if problems:
            rows.append({"notebook": name, "problems": problems})
        run_all.update({f"after_widgets_{key}": value for key, value in _session_memory(server).items()})
    finally:
        notebook.page.close()
    return rows, run_all


def _session_memory(server):
    """What a Binder session holds: the JupyterLab server's memory (its peak so far, VmHWM, and now, VmRSS) and
    its kernel's peak, in MB. The server's peak and the kernel's peak added up bound the session's peak."""
    kernels = server.kernel_pids()
    memory = {"server_hwm_mb": read_kib(server.process.pid, "VmHWM") / 1024,
              "server_rss_mb": read_kib(server.process.pid, "VmRSS") / 1024,
              "kernel_hwm_mb": max((read_kib(pid, "VmHWM") / 1024 for pid in kernels), default=None),
              "kernels": len(kernels)}
    if memory["kernel_hwm_mb"] is not None:
        memory["session_mb"] = memory["server_hwm_mb"] + memory["kernel_hwm_mb"]
    return memory


def _settler(notebook, widget):
    def settle():  # the kernel idle again before the next change, so that changes do not queue up
        notebook.page.wait_for_function(
            "() => { const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;"
            " return k.status === 'idle'; }", timeout=30_000, polling=20)
    return settle


def _browser_row(name, widget, label, action, src, decoded, wanted):
    return {"notebook": name, "widget": widget.index + 1, "cell": widget.cell_index(), "control": label,
            "action": action, "changes": len(src), "wanted": wanted,
            "median_ms": statistics.median(src) if src else None,
            "max_ms": max(src) if src else None,
            "decoded_median_ms": statistics.median(decoded) if decoded else None}


# ---- optimizer -------------------------------------------------------------------------------------------
def _training_cells():
    """The notebooks' training cells, each as (label, run(optimizer_kind) -> seconds of CPU, final loss).

    A cell builds its model, its optimizer (RuleOptimizer with a rule of course_lib.optim, or the torch.optim
    twin) and, where the notebook does, its learning-rate scheduler, then trains with training.train, as the
    notebook's cell does (one runner of 03's race; 04's step decay; one setting of 04's rate-against-decay grid).
    """
    import torch

    from course_lib import data, optim, schedules, training

    mnist1d, digits = data.mnist1d(), data.digits()
    cells = [
        ("03 Adam, MLP 40-128-128-10, MNIST-1D, batch 128, 8 epochs", [40, 128, 128, 10], mnist1d, 128, 8,
         lambda p: optim.RuleOptimizer(p, optim.adam, learning_rate=1e-3),
         lambda p: torch.optim.Adam(p, lr=1e-3, eps=1e-7), None),
        ("03 SGD, MLP 40-128-128-10, MNIST-1D, batch 128, 8 epochs", [40, 128, 128, 10], mnist1d, 128, 8,
         lambda p: optim.RuleOptimizer(p, optim.sgd, learning_rate=1e-2),
         lambda p: torch.optim.SGD(p, lr=1e-2), None),
        ("04 SGD + step decay, MLP 40-64-10, MNIST-1D, batch 32, 9 epochs", [40, 64, 10], mnist1d, 32, 9,
         lambda p: optim.RuleOptimizer(p, optim.sgd, learning_rate=1.0),
         lambda p: torch.optim.SGD(p, lr=1.0), (schedules.step_decay, {"step_size": 3, "gamma": 0.1})),
        ("04 momentum + cosine, MLP 64-64-10, digits, batch 64, 9 epochs", [64, 64, 10], digits, 64, 9,
         lambda p: optim.RuleOptimizer(p, optim.sgd_momentum, learning_rate=0.1),
         lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), (schedules.cosine, {"total_steps": 9})),
    ]

    def runner(sizes, dataset, batch_size, epochs, make_optimizers, schedule):
        def run(kind):
            model = training.mlp(sizes, seed=0)
            optimizer = make_optimizers[kind](model.parameters())
            scheduler = None if schedule is None else schedules.lambda_lr(optimizer, schedule[0], **schedule[1])
            began = time.thread_time()  # training.train runs torch on this one thread
            history = training.train(model, optimizer, dataset, epochs=epochs, batch_size=batch_size,
                                     scheduler=scheduler, evaluate_every=None)
            return time.thread_time() - began, history.step_loss[-1]

        return run

    return [(label, runner(sizes, dataset, batch_size, epochs, {"rule": rule, "torch": twin}, schedule))
            for label, sizes, dataset, batch_size, epochs, rule, twin, schedule in cells]


def bench_training_cells(args, report):
    """Each training cell with RuleOptimizer and with torch.optim, interleaved; median CPU seconds."""
    import torch

    runs = 2 if args.quick else 5
    rows = []
    for label, run in _training_cells():
        for kind in ("torch", "rule"):  # warm up (torch.optim's first step imports its compiler)
            run(kind)
        seconds = {"rule": [], "torch": []}
        losses = {}
        for _ in range(runs):
            for kind in seconds:
                spent, losses[kind] = run(kind)
                seconds[kind].append(spent)
        rule_s, torch_s = statistics.median(seconds["rule"]), statistics.median(seconds["torch"])
        row = {"cell": label, "runs": runs, "rule_s": rule_s, "torch_s": torch_s, "ratio": rule_s / torch_s,
               "rule_s_all": seconds["rule"], "torch_s_all": seconds["torch"],
               "final_loss": {kind: round(loss, 4) for kind, loss in losses.items()}}
        if row["ratio"] > BUDGETS["optimizer_ratio"]:
            row["profile"] = _profile(lambda run=run: run("rule"))
        rows.append(row)
    report["optimizer"] = {"torch": torch.__version__, "training_cells": rows}


def _mlp(sizes, seed=0):
    import torch

    torch.manual_seed(seed)
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def _step_times(optimizer, steps, clock=time.perf_counter):
    times = []
    for _ in range(steps):
        start = clock()
        optimizer.step()
        times.append(clock() - start)
    return times


def bench_million_step(args, report):
    """optimizer.step() alone at ~1M parameters (no notebook trains that size; no budget): RuleOptimizer(adam),
    whose rule returns new arrays, against torch.optim.Adam, which updates in place. On one thread the clock is
    that thread's CPU time (other processes' load does not count); with the default thread count, wall time."""
    import torch

    from course_lib.optim import RuleOptimizer

    default_threads = torch.get_num_threads()
    blocks, per_block = (4, 5) if args.quick else (20, 10)
    rows = []
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        models = {name: _mlp([784, 1024, 256, 10]) for name in ("torch", "rule")}
        generator = torch.Generator().manual_seed(1)
        for ours, theirs in zip(models["rule"].parameters(), models["torch"].parameters(), strict=True):
            theirs.grad = torch.randn(theirs.shape, generator=generator)
            ours.grad = theirs.grad.clone()
        optimizers = {"torch": torch.optim.Adam(models["torch"].parameters(), lr=1e-3, eps=1e-8),
                      "rule": RuleOptimizer(models["rule"].parameters(), "adam", learning_rate=1e-3, epsilon=1e-8)}
        for optimizer in optimizers.values():  # warm up; also the state is created here
            _step_times(optimizer, 5)
        agree = all(torch.allclose(a, b, rtol=1e-5, atol=1e-7) for a, b in
                    zip(models["rule"].parameters(), models["torch"].parameters(), strict=True))
        times, clock = {"torch": [], "rule": []}, time.thread_time if threads == 1 else time.perf_counter
        for _ in range(blocks):  # interleaved, so that a busy moment of the machine hits both
            for name, optimizer in optimizers.items():
                times[name] += _step_times(optimizer, per_block, clock)
        torch_us = statistics.median(times["torch"]) * 1e6
        rule_us = statistics.median(times["rule"]) * 1e6
        rows.append({"parameters": sum(p.numel() for p in models["torch"].parameters()), "threads": threads,
                     "steps": len(times["rule"]), "torch_adam_us": torch_us, "rule_adam_us": rule_us,
                     "ratio": rule_us / torch_us, "same_update": agree, "clock": clock.__name__,
                     "ops": {name: _op_breakdown(optimizer, 5) for name, optimizer in optimizers.items()}})
    torch.set_num_threads(default_threads)
    report.setdefault("optimizer", {})["million_step"] = {"default_threads": default_threads, "rows": rows,
                                                          "torch_adam_implementation": "torch defaults (foreach="
                                                          "None, fused=None: the single-tensor for-loop on CPU)"}


def _profile(function, repeats=1):
    """cProfile of ``function()``: the 12 functions with the most own time, per call."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(repeats):
        function()
    profiler.disable()
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, name), (_cc, ncalls, tottime, cumtime, _callers) in sorted(
            stats.stats.items(), key=lambda item: -item[1][2])[:12]:
        rows.append({"function": f"{filename.split('site-packages/')[-1].replace(str(ROOT) + '/', '')}:{line}"
                                 f"({name})", "calls": ncalls / repeats, "tottime_ms": tottime * 1e3 / repeats,
                     "cumtime_ms": cumtime * 1e3 / repeats})
    return rows


@contextlib.contextmanager
def _stderr_silenced():
    """Silence file descriptor 2 (the profiler's C++ start/stop lines), not only sys.stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _op_breakdown(optimizer, steps):
    """The tensor operations of one step (torch.profiler): name -> calls per step, own time per step (us)."""
    from torch.profiler import ProfilerActivity, profile

    with _stderr_silenced(), profile(activities=[ProfilerActivity.CPU]) as profiler:
        for _ in range(steps):
            optimizer.step()
    ops = [(event.key, event.count / steps, event.self_cpu_time_total / steps)
           for event in profiler.key_averages() if event.key.startswith("aten::")]
    return [{"op": key, "calls_per_step": calls, "self_us_per_step": round(us, 1)}
            for key, calls, us in sorted(ops, key=lambda op: -op[2])[:8]]


# ---- the table -------------------------------------------------------------------------------------------
# ---- grading ---------------------------------------------------------------------------------------------
def bench_grading(args, report):
    """make grade on a synthetic class: every student hands in every notebook, two in three solved."""
    sys.path.insert(0, str(ROOT / "tests"))
    from grading_corpus import Answer

    names = instructor_notebooks()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as scratch:
        submissions = Path(scratch) / "submissions"
        for number in range(args.class_size):
            folder = submissions / f"student{number:02d}"
            folder.mkdir(parents=True)
            for path in names:
                answer = Answer(path.stem)
                if number % 3:
                    answer.solve(*answer.solutions)
                (folder / path.name).write_bytes(answer.to_bytes())
        exercises = sum(len(Answer(path.stem).solutions) for path in names) * args.class_size
        for jobs in (1, 2):
            out = Path(scratch) / f"graded-{jobs}"
            started = time.monotonic()
            completed = subprocess.run([sys.executable, str(ROOT / "instructor" / "grade.py"), str(submissions),
                                        "--out", str(out), "--jobs", str(jobs)], capture_output=True, text=True)
            seconds = time.monotonic() - started
            notebooks = args.class_size * len(names)
            rows.append({"jobs": jobs, "students": args.class_size, "notebooks": notebooks,
                         "exercises": exercises, "seconds": round(seconds, 1),
                         "notebooks_per_minute": round(notebooks / seconds * 60, 1),
                         "ok": completed.returncode == 0,
                         "tail": completed.stdout[-300:] + completed.stderr[-300:]})
            print(f"  jobs={jobs}: {seconds:.0f} s, {notebooks / seconds * 60:.1f} notebooks per minute",
                  flush=True)
    report["grading"] = rows


def _mark(value, budget):
    if value is None:
        return "n/a"
    return "ok" if value <= budget else "MISSED"


def print_table(report):
    env = report["environment"]
    lines = [f"bench {env['time']}  {env['cpus']} CPUs  load {env['load_before']} -> {env['load_after']}  "
             f"python {env['python']}  commit {env['commit']}"]
    misses = []
    for table in (_notebooks_table, _widgets_table, _browser_table, _optimizer_table):
        lines += table(report, misses)
    lines += _grading_table(report)
    lines.append("")
    if misses:
        lines.append(f"MISSED ({len(misses)}):")
        lines += [f"  - {miss}" for miss in misses]
    else:
        lines.append("every budget met")
    print("\n".join(lines))
    return misses


def _notebooks_table(report, misses):
    if "notebooks" not in report:
        return []
    threads = report["notebooks"][0].get("threads", 0) if report["notebooks"] else 0
    lines = ["", f"NOTEBOOKS (nbclient, {threads or 'default'} thread(s), median of runs; budgets "
                 f"{BUDGETS['notebook_s']:.0f} s of the kernel's CPU time, {BUDGETS['kernel_mb']:.0f} MB peak)",
             f"{'notebook':44} {'kind':10} {'cpu s':>7} {'':6} {'wall s':>7} {'start':>6} {'cells':>6} "
             f"{'peak MB':>8} {'':6} {'sampled':>8}  runs (wall s)"]
    for row in report["notebooks"]:
        cpu = row.get("cpu_s", row["total_s"])
        time_mark = _mark(cpu, BUDGETS["notebook_s"])
        mem_mark = _mark(row["hwm_mb"], BUDGETS["kernel_mb"])
        lines.append(f"{row['notebook']:44} {row['kind']:10} {cpu:7.2f} {time_mark:6} {row['total_s']:7.2f} "
                     f"{row['kernel_start_s']:6.2f} {row['cells_s']:6.2f} {row['hwm_mb']:8.0f} {mem_mark:6} "
                     f"{row['sampled_peak_mb']:8.0f}  {row['total_s_all']}")
        for error in row["unexpected_errors"]:
            lines.append(f"    ERROR {error}")
            misses.append(f"{row['notebook']} ({row['kind']}): {error}")
        if time_mark == "MISSED":
            misses.append(f"{row['notebook']} ({row['kind']}) took {cpu:.1f} s of CPU; slowest cells "
                          f"{row['slowest_cells']}")
        if mem_mark == "MISSED":
            misses.append(f"{row['notebook']} ({row['kind']}) peaked at {row['hwm_mb']:.0f} MB")
    return lines


def _widgets_table(report, misses):
    if "widgets" not in report:
        return []
    lines = ["", f"WIDGETS, kernel side (value change -> new PNG in the Image; median of up to 20 changes "
                 f"across the range; budget {BUDGETS['widget_kernel_ms']:.0f} ms)",
             f"{'notebook':30} {'cell':>4} {'widget (runners)':38} {'control':16} {'median ms':>9} {'':6} "
             f"{'max':>6}  compute/draw/encode/rest ms"]
    for widget in report["widgets"]:
        if widget["controls"] and all(row.get("skipped") == "hidden" for row in widget["controls"]):
            misses.append(f"widget {widget['notebook']} cell {widget['cell']} ({widget['class']}): every "
                          "control is hidden (layout.display == 'none'), the learner sees no control")
        if widget.get("best_button_ms") is not None:
            runners = ", ".join(widget["runners"]) if widget["runners"] else widget["class"]
            cell = widget["cell"] if widget["cell"] is not None else "-"
            lines.append(f"{widget['notebook'][:30]:30} {cell:>4} {runners[:38]:38} {'each at its best':16} "
                         f"{widget['best_button_ms']:9.0f}        (one click, nothing cached; no budget)")
        lines += [_widget_row(widget, row, misses) for row in widget["controls"]]
    return lines


def _widget_row(widget, row, misses):
    runners = ", ".join(widget["runners"]) if widget["runners"] else widget["class"]
    cell = widget["cell"] if widget["cell"] is not None else "-"
    head = f"{widget['notebook'][:30]:30} {cell:>4} {runners[:38]:38} {row['control']:16}"
    if "skipped" in row:
        return f"{head} {'-':>9} {'':6} {'':>6}  ({row['skipped']})"
    mark = _mark(row["median_ms"], BUDGETS["widget_kernel_ms"])
    parts = "/".join(f"{row['parts_median_ms'][p]:.0f}" for p in ("compute", "draw", "encode", "rest"))
    if mark == "MISSED":
        misses.append(f"widget {widget['notebook']} cell {widget['cell']} '{row['control']}': "
                      f"{row['median_ms']:.0f} ms (compute/draw/encode/rest {parts})")
    return (f"{head} {row['median_ms']:9.1f} {mark:6} {row['max_ms']:6.0f}  {parts}"
            + ("" if row["pictures_changed"] == row["changes"]
               else f"  (picture changed {row['pictures_changed']}/{row['changes']})"))


def _browser_table(report, misses):
    if "browser" not in report:
        return []
    browser = report["browser"]
    lines = ["", f"WIDGETS, in the browser (keypress/select -> the image's src changes; median; budget "
                 f"{BUDGETS['widget_browser_ms']:.0f} ms)"]
    if "skipped" in browser:
        return lines + [f"  skipped: {browser['skipped']}"]
    lines.append(f"  {browser['chromium']}")
    lines += _run_all_table(browser, misses)
    lines.append(f"{'notebook':30} {'cell':>4} {'w':>2} {'control':22} {'n':>3} {'median ms':>9} {'':6} "
                 f"{'max':>6} {'decoded':>8}")
    for row in browser["rows"]:
        if "problems" in row:
            lines.append(f"  PROBLEMS in {row['notebook']}: {row['problems']}")
            misses.append(f"browser {row['notebook']}: {row['problems']}")
            continue
        mark = _mark(row["median_ms"], BUDGETS["widget_browser_ms"])
        median = f"{row['median_ms']:9.0f}" if row["median_ms"] is not None else f"{'-':>9}"
        high = f"{row['max_ms']:6.0f}" if row["max_ms"] is not None else f"{'-':>6}"
        decoded = f"{row['decoded_median_ms']:8.0f}" if row["decoded_median_ms"] is not None else ""
        lines.append(f"{row['notebook'][:30]:30} {row['cell'] if row['cell'] is not None else '-':>4} "
                     f"{row['widget']:>2} {row['control'][:22]:22} {row['changes']:>3} {median} {mark:6} "
                     f"{high} {decoded}")
        what = f"browser {row['notebook']} widget {row['widget']} '{row['control']}'"
        if mark == "MISSED":
            misses.append(f"{what}: {row['median_ms']:.0f} ms")
        if row["median_ms"] is None:
            misses.append(f"{what}: the picture never changed")
    return lines


def _run_all_table(browser, misses):
    lines = [f"Run All in JupyterLab (open -> every cell run, every widget drawn; budget "
             f"{BUDGETS['notebook_browser_s']:.0f} s) and the session's memory (server peak + kernel peak; budget "
             f"{BUDGETS['session_mb']:.0f} MB)",
             f"{'notebook':44} {'run all s':>9} {'':6} {'server MB':>9} {'kernel MB':>9} "
             f"{'session MB':>10} {'':6}"]
    for row in browser.get("run_all", []):
        run_mark = _mark(row["run_all_s"], BUDGETS["notebook_browser_s"])
        server_mb = max(row["server_hwm_mb"], row.get("after_widgets_server_hwm_mb", 0))
        kernel_mb = max(row["kernel_hwm_mb"] or 0, row.get("after_widgets_kernel_hwm_mb") or 0)
        session_mark = _mark(server_mb + kernel_mb, BUDGETS["session_mb"])
        lines.append(f"{row['notebook']:44} {row['run_all_s']:9.1f} {run_mark:6} {server_mb:9.0f} "
                     f"{kernel_mb:9.0f} {server_mb + kernel_mb:10.0f} {session_mark:6}")
        if run_mark == "MISSED":
            misses.append(f"browser {row['notebook']}: Run All took {row['run_all_s']:.1f} s")
        if session_mark == "MISSED":
            misses.append(f"browser {row['notebook']}: server {server_mb:.0f} MB + kernel {kernel_mb:.0f} MB")
    return lines


def _optimizer_table(report, misses):
    if "optimizer" not in report:
        return []
    optimizer = report["optimizer"]
    lines = ["", f"OPTIMIZER: a notebook's training cell with RuleOptimizer / the same cell with torch.optim (CPU "
                 f"seconds, one thread, median of runs; budget {BUDGETS['optimizer_ratio']}x; torch "
                 f"{optimizer['torch']})",
             f"{'training cell':66} {'torch s':>8} {'rule s':>8} {'ratio':>6} {'':6} final loss torch/rule"]
    for row in optimizer["training_cells"]:
        mark = _mark(row["ratio"], BUDGETS["optimizer_ratio"])
        lines.append(f"{row['cell']:66} {row['torch_s']:8.3f} {row['rule_s']:8.3f} {row['ratio']:6.2f} {mark:6} "
                     f"{row['final_loss']['torch']:.4f}/{row['final_loss']['rule']:.4f}")
        if mark == "MISSED":
            misses.append(f"{row['cell']}: RuleOptimizer {row['ratio']:.2f}x torch.optim")
    million = optimizer["million_step"]
    lines += ["", f"optimizer.step() alone at ~1M parameters, RuleOptimizer(adam) / torch.optim.Adam (median per "
                  f"step; no budget: no notebook trains this size; default threads {million['default_threads']})",
              f"{'parameters':>10} {'threads':>7} {'torch Adam us':>13} {'RuleOptimizer us':>16} {'ratio':>6} "
              "same update  clock"]
    for row in million["rows"]:
        lines.append(f"{row['parameters']:>10,} {row['threads']:>7} {row['torch_adam_us']:13.1f} "
                     f"{row['rule_adam_us']:16.1f} {row['ratio']:6.2f} {row['same_update']!s:11}  {row['clock']}")
        if not row["same_update"]:
            misses.append(f"RuleOptimizer(adam) and torch.optim.Adam disagree at {row['parameters']:,} parameters")
    return lines


def _grading_table(report):
    lines = []
    if report.get("grading"):
        lines += ["", "GRADING (make grade on a synthetic class; no budget)"]
        for row in report["grading"]:
            status = "" if row["ok"] else "  FAILED: " + row["tail"]
            lines.append(f"  --jobs {row['jobs']}: {row['students']} students, {row['notebooks']} notebooks, "
                         f"{row['exercises']} exercises in {row['seconds']:.0f} s = "
                         f"{row['notebooks_per_minute']:.1f} notebooks per minute{status}")
    return lines


def _print_profiles(report, worst=3):
    """cProfile of the ``worst`` slowest widget controls over budget (all of them are in the JSON), of a
    training cell with RuleOptimizer that missed its budget, and the tensor operations of a step at 1M
    parameters."""
    profiled = sorted(((row["median_ms"], widget, row) for widget in report.get("widgets", [])
                       for row in widget["controls"] if "profile" in row), key=lambda item: -item[0])
    for _, widget, row in profiled[:worst]:
        print(f"\nprofile: {widget['notebook']} cell {widget['cell']} '{row['control']}' "
              f"({row['median_ms']:.0f} ms; cProfile, per change: course_lib by cumulative time, then "
              f"everything by own time)")
        for entry in row["profile"]:
            print(f"  {entry['cumtime_ms']:8.1f} ms cum {entry['tottime_ms']:8.1f} ms own "
                  f"x{entry['calls']:<7g} {entry['function']}")
    optimizer = report.get("optimizer", {})
    for row in optimizer.get("training_cells", []):
        if "profile" in row:
            print(f"\nprofile: {row['cell']} with RuleOptimizer (one run, top by own time)")
            for entry in row["profile"][:8]:
                print(f"  {entry['tottime_ms']:9.1f} ms own {entry['cumtime_ms']:9.1f} ms cum  "
                      f"x{entry['calls']:g}  {entry['function']}")
    for row in optimizer.get("million_step", {}).get("rows", []):
        for name, ops in row["ops"].items():
            label = "torch.optim.Adam" if name == "torch" else "RuleOptimizer(adam)"
            print(f"\n1M parameters, {row['threads']} thread(s), tensor ops per step, {label}: " + ", ".join(
                f"{op['op'][6:]} x{op['calls_per_step']:g} {op['self_us_per_step']:.0f} us" for op in ops))


def _environment():
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "?"
    return {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count(),
            "python": platform.python_version(), "commit": commit,
            "load_before": [round(x, 2) for x in os.getloadavg()]}


def _isolate_jupyter(scratch):
    """Kernels from this venv only, no user IPython profile or Jupyter config of this machine."""
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        path = Path(scratch) / name.lower()
        path.mkdir(parents=True, exist_ok=True)
        os.environ[name] = str(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--strict", action="store_true", help="exit 1 if any budget is missed")
    parser.add_argument("--quick", action="store_true", help="1 run, 5 changes, 3 presses: a smoke test")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated among {', '.join(SECTIONS)}")
    parser.add_argument("--no-student", action="store_true", help="skip the student copies in notebooks/")
    parser.add_argument("--runs", type=int, default=3, help="runs per notebook (median)")
    parser.add_argument("--changes", type=int, default=20, help="value changes per widget control")
    parser.add_argument("--presses", type=int, default=10, help="keypresses per control in the browser")
    parser.add_argument("--cell-timeout", type=int, default=120, help="per-cell timeout (s)")
    parser.add_argument("--threads", type=int, default=1,
                        help="thread pools of the notebooks' kernels (default 1, as on Binder; 0: unlimited)")
    parser.add_argument("--class-size", type=int, default=30, help="students in the grading benchmark")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "bench.json")
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(args.only) - set(SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose among {SECTIONS}")
    if args.quick:
        args.runs, args.changes, args.presses = 1, 5, 3

    report = {"environment": _environment(), "budgets": BUDGETS}
    with tempfile.TemporaryDirectory(prefix="bench-jupyter-") as scratch:
        _isolate_jupyter(scratch)
        sys.path.insert(0, str(BENCH))
        if "optimizer" in args.only:
            print("training cells with RuleOptimizer and torch.optim; optimizer steps at 1M parameters ...",
                  flush=True)
            bench_training_cells(args, report)
            bench_million_step(args, report)
        if "notebooks" in args.only or "widgets" in args.only:
            print("notebooks ...", flush=True)
            bench_notebooks(args, report)
        if "browser" in args.only:
            print("browser ...", flush=True)
            bench_browser(args, report)
        if "grading" in args.only:
            print(f"grading a class of {args.class_size} ...", flush=True)
            bench_grading(args, report)
    report["environment"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print()
    misses = print_table(report)
    _print_profiles(report)
    report["missed"] = misses
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    return 1 if (misses and args.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
