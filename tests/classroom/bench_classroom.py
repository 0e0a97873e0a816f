"""Learners x memory x time on a real JupyterHub (`make classroom-bench`; the numbers in classroom/README.md).

    python tests/classroom/bench_classroom.py [--learners 1 5 10] [--out bench-results/classroom.json]

1. For each N in --learners: N learners at once log in, pull the handout with the nbgitpuller link and run
   notebook 01 (Run All, exercises blank) over the kernel websocket. Per learner: the server's and the kernel's
   peak resident memory (VmHWM), CPU seconds of the kernel, wall time of each step. A fresh hub per N.
2. One learner runs all five notebooks one after the other and leaves every kernel open (no culling): the
   memory of the heaviest learner, and each notebook's kernel peak and CPU seconds.

Memory is read from /proc (psutil); CPU seconds are the kernel's own (user + system), which do not depend on
how busy the machine is; wall times do. Needs `make classroom-env` (the course environment and the proxy).
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from conftest import ENVIRONMENT, PROXY
from hubtest import CLASSROOM, ROOT, CullingTimes, Hub, Learner, Sampler, vm_hwm

sys.path.insert(0, str(CLASSROOM))
import exchange  # noqa: E402,I001
import handout  # noqa: E402

MB = 1024 ** 2
NOTEBOOKS = ["01_problems_of_optimization", "02_momentum_and_nesterov", "03_adaptive_methods",
             "04_learning_rate_schedules", "05_second_order"]
# No culling during the measurement: a kernel left open must stay.
NO_CULLING = CullingTimes(idle_kernel=24 * 3600, idle_server=24 * 3600, cull_every=600, activity_interval=300)


def pulled(name):
    return f"{handout.TARGET_FOLDER}/notebooks/{name}.ipynb"


def kernel_stats(learner, kernel_id):
    """(peak RSS, CPU seconds) of the kernel process started for ``kernel_id``."""
    for process in learner.kernel_processes():
        if kernel_id in " ".join(process.cmdline()):
            cpu = process.cpu_times()
            return vm_hwm(process.pid), cpu.user + cpu.system
    return 0, 0.0


def one_class(work, repo, learners_count):
    hub = Hub(work / f"hub-{learners_count}", ENVIRONMENT, PROXY, work / "exchange", NO_CULLING).start()
    link = handout.nbgitpuller_link(hub.url, repo)
    learners = [Learner(hub, f"learner-{i}") for i in range(learners_count)]
    rows, failures = [{} for _ in learners], {}
    start = threading.Barrier(learners_count + 1)

    def run(index):
        learner, row = learners[index], rows[index]
        try:
            start.wait()
            began = time.monotonic()
            learner.log_in()
            learner.start_server()
            learner.open_link(link)
            learner.pull(link)
            notebook = learner.get_notebook(pulled(NOTEBOOKS[0]))
            kernel_id, _ = learner.run_notebook(pulled(NOTEBOOKS[0]), notebook)
            row["kernel_peak_mb"], row["kernel_cpu_seconds"] = (value / MB if i == 0 else value for i, value in
                                                                enumerate(kernel_stats(learner, kernel_id)))
            row["server_peak_mb"] = vm_hwm(learner.process.pid) / MB
            row["seconds"] = dict(learner.timings, total=time.monotonic() - began)
        except Exception as error:  # noqa: BLE001
            failures[learner.name] = f"{type(error).__name__}: {error}"

    sampler = Sampler(learners)
    sampler.start()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(learners_count)]
    try:
        for thread in threads:
            thread.start()
        began = time.monotonic()
        start.wait()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - began
        sampler.stop()
        hub_rss = sum(process.memory_info().rss for process in hub.processes()) / MB
    finally:
        hub.stop()
    for row, learner in zip(rows, learners, strict=True):
        row["sampled_peak_mb"] = learner.peak_rss / MB
    ok = [row for row in rows if "seconds" in row]
    return {
        "learners": learners_count, "failures": failures, "wall_seconds": round(wall, 1),
        "hub_and_proxy_mb": round(hub_rss),
        "server_peak_mb": round(max(row["server_peak_mb"] for row in ok)),
        "kernel_peak_mb": round(max(row["kernel_peak_mb"] for row in ok)),
        "learner_peak_mb": round(max(row["server_peak_mb"] + row["kernel_peak_mb"] for row in ok)),
        "kernel_cpu_seconds_median": round(statistics.median(row["kernel_cpu_seconds"] for row in ok), 2),
        "server_start_seconds_median": round(statistics.median(row["seconds"]["server start"] for row in ok), 1),
        "run_notebook_seconds_median": round(statistics.median(row["seconds"]["run notebook"] for row in ok), 1),
        "learner_total_seconds_max": round(max(row["seconds"]["total"] for row in ok), 1),
    }


def heaviest_learner(work, repo):
    hub = Hub(work / "hub-heavy", ENVIRONMENT, PROXY, work / "exchange", NO_CULLING).start()
    link = handout.nbgitpuller_link(hub.url, repo)
    learner = Learner(hub, "all-five")
    notebooks = []
    try:
        learner.log_in()
        learner.start_server()
        learner.open_link(link)
        learner.pull(link)
        for name in NOTEBOOKS:
            kernel_id, _ = learner.run_notebook(pulled(name), learner.get_notebook(pulled(name)))
            peak, cpu = kernel_stats(learner, kernel_id)
            notebooks.append({"notebook": name, "kernel_peak_mb": round(peak / MB),
                              "kernel_cpu_seconds": round(cpu, 2),
                              "run_seconds": round(learner.timings["run notebook"], 1)})
        rss = sum(process.memory_info().rss for process in learner.tree()) / MB
        uss = sum(process.memory_full_info().uss for process in learner.tree()) / MB
        server_peak = vm_hwm(learner.process.pid) / MB
        kernels = len(learner.kernel_processes())
    finally:
        hub.stop()
    return {"notebooks": notebooks, "kernels_open": kernels, "server_peak_mb": round(server_peak),
            "rss_all_open_mb": round(rss), "uss_all_open_mb": round(uss),
            "sum_of_peaks_mb": round(server_peak + sum(n["kernel_peak_mb"] for n in notebooks))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, nargs="+", default=[1, 5, 10])
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "classroom.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="classroom-bench-") as temporary:
        work = Path(temporary)
        os.environ["CLASSROOM_EXCHANGE"] = str(work / "exchange")
        exchange.release()
        handout.build(work / "handout")
        repo = f"file://{work / 'handout'}"
        classes = []
        for count in args.learners:
            classes.append(one_class(work, repo, count))
            print(json.dumps(classes[-1]), flush=True)
        heavy = heaviest_learner(work, repo)
        print(json.dumps(heavy), flush=True)
    result = {"cores": os.cpu_count(), "load_average": os.getloadavg(), "classes": classes, "all_five": heavy}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)
    failures = {name: error for c in classes for name, error in c["failures"].items()}
    if failures:
        raise SystemExit(f"learners failed: {failures}")


def print_table(result):
    print(f"\nclasses on {result['cores']} cores (load average before: {result['load_average'][0]:.1f})")
    print(f"{'learners':>8} {'wall s':>7} {'server MB':>9} {'kernel MB':>9} {'learner MB':>10} "
          f"{'kernel CPU s':>12} {'start s':>7} {'run s':>6} {'hub MB':>6}")
    for c in result["classes"]:
        print(f"{c['learners']:>8} {c['wall_seconds']:>7} {c['server_peak_mb']:>9} {c['kernel_peak_mb']:>9} "
              f"{c['learner_peak_mb']:>10} {c['kernel_cpu_seconds_median']:>12} "
              f"{c['server_start_seconds_median']:>7} {c['run_notebook_seconds_median']:>6} "
              f"{c['hub_and_proxy_mb']:>6}")
    heavy = result["all_five"]
    print(f"\none learner, all five notebooks run and left open: {heavy['kernels_open']} kernels, "
          f"RSS {heavy['rss_all_open_mb']} MB (USS {heavy['uss_all_open_mb']} MB; sum of peaks "
          f"{heavy['sum_of_peaks_mb']} MB)")
    for n in heavy["notebooks"]:
        print(f"  {n['notebook']:<28} kernel peak {n['kernel_peak_mb']:>4} MB  "
              f"CPU {n['kernel_cpu_seconds']:>5} s  run {n['run_seconds']} s")


if __name__ == "__main__":
    main()
