"""A class on a real JupyterHub: N learners (CLASSROOM_LEARNERS, default 5) at once log in, pull the handout with
the nbgitpuller link, run notebook 01 over the kernel websocket with answers of their own, save it and submit
through nbgrader's exchange (the Assignments tab's API). The instructor collects with classroom/exchange.py and
grades with instructor/grade.py. One more learner opens a kernel and leaves: the idle kernel and then the idle
server must be stopped by the culling settings.

Learner i answers the notebook's first exercise right when i is even (else leaves it blank) and its second right
unless i % 3 == 1 (then wrongly: the body returns 0.5), and leaves any other blank, so every learner's row in
grades.csv is predictable and a submission collected under the wrong name, or one that overwrote another, shows
as a wrong score. The exercises are read from the instructor source, so the test follows the notebook.

Writes learners x memory x time to test-results/classroom/hub.json (CLASSROOM_REPORT to change) and prints it.
"""

import csv
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest
from hubtest import CLASSROOM, ROOT, CullingTimes, Hub, Learner, Sampler

sys.path.insert(0, str(CLASSROOM))
import handout  # noqa: E402
from traitlets.config.loader import PyFileConfigLoader  # noqa: E402

pytestmark = [pytest.mark.hub, pytest.mark.timeout(900)]

LEARNERS = int(os.environ.get("CLASSROOM_LEARNERS", "5"))
REPORT = Path(os.environ.get("CLASSROOM_REPORT", ROOT / "test-results" / "classroom" / "hub.json"))
NOTEBOOK = "01_problems_of_optimization"
PULLED = f"{handout.TARGET_FOLDER}/notebooks/{NOTEBOOK}.ipynb"
COURSE_ID = PyFileConfigLoader("nbgrader_config.py", path=str(CLASSROOM)).load_config().CourseDirectory.course_id
MARKERS = handout.FORBIDDEN
UNFINISHED = "raise NotImplementedError()"
WRONG = "return 0.5  # a wrong answer"
MB = 1024 ** 2


def names():
    return [f"learner-{i}" for i in range(LEARNERS)]


def instructor_source():
    return nbformat.read(ROOT / "instructor" / "source" / NOTEBOOK / f"{NOTEBOOK}.ipynb", as_version=4)


def exercises():
    """[(solution cell id, check cell id, points)] of the notebook, in order: each solution cell and the first
    graded cell after it."""
    found, solution = [], None
    for cell in instructor_source().cells:
        grading = cell.metadata.get("nbgrader", {})
        if grading.get("solution"):
            solution = grading["grade_id"]
        elif grading.get("grade") and solution:
            found.append((solution, grading["grade_id"], float(grading.get("points", 0))))
            solution = None
    assert len(found) >= 2, f"{NOTEBOOK} needs two exercises for this test, has {found}"
    return found


def expected_scores(index):
    """check cell id -> the points learner ``index`` must get."""
    (_, first, first_points), (_, second, second_points), *others = exercises()
    scores = {first: first_points if index % 2 == 0 else 0.0, second: 0.0 if index % 3 == 1 else second_points}
    scores.update({check: 0.0 for _, check, _ in others})
    return scores


def reference_solutions():
    """solution cell id -> the instructor's solution without nbgrader's markers."""
    return {cell.metadata["nbgrader"]["grade_id"]: "\n".join(
                line for line in cell.source.splitlines() if line.strip() not in MARKERS)
            for cell in instructor_source().cells if cell.metadata.get("nbgrader", {}).get("solution")}


def answer(notebook, index, solutions):
    """The learner's answers written into the pulled notebook (JSON dict from the contents API)."""
    checks = {solution: check for solution, check, _ in exercises()}
    (first, _, _), (second, _, _), *_ = exercises()
    for cell in notebook["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id not in (first, second):
            continue
        if expected_scores(index)[checks[grade_id]] > 0:
            cell["source"] = solutions[grade_id]
        elif grade_id == second:
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            assert UNFINISHED in source, source
            cell["source"] = source.replace(UNFINISHED, WRONG)
    return notebook


def a_learners_class(learner, index, link, solutions, start, record):
    """Everything one learner does; fills record (timings, errors, memory, outcomes)."""
    start.wait()
    began = time.monotonic()
    learner.log_in()
    learner.start_server()
    page = learner.open_link(link)
    record["link_page"] = (page.status_code, page.url)
    record["pull"] = learner.pull(link)
    notebook = answer(learner.get_notebook(PULLED), index, solutions)
    kernel_id, cells = learner.run_notebook(PULLED, notebook)
    code_cells = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    for cell, ran in zip(code_cells, cells, strict=True):
        cell["outputs"] = ran.outputs
    record["errors"] = {notebook["cells"][ran.index]["metadata"].get("nbgrader", {}).get("grade_id")
                        or f"cell {ran.index}": ran.error for ran in cells if ran.error}
    record["slowest_cell_seconds"] = max(ran.seconds for ran in cells)
    record["memory"] = learner.memory_report(kernel_id)
    learner.save_notebook(PULLED, notebook)
    record["submit"] = learner.submit(COURSE_ID)
    record["timings"] = dict(learner.timings, total=time.monotonic() - began)


def idle_learner(hub, link, record):
    """Logs in, runs one cell, leaves the tab: when do the kernel and then the server go away? Watched from
    outside (the server's processes, the hub's API): a request to the server would count as activity."""
    learner = Learner(hub, "idle-learner")
    learner.log_in()
    learner.start_server()
    learner.open_link(link)
    learner.pull(link)
    notebook = learner.get_notebook(PULLED)
    notebook["cells"] = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"][:1]
    learner.run_notebook(PULLED, notebook)
    left = time.monotonic()
    record["kernels_after_run"] = len(learner.kernel_processes())
    culling = hub.culling
    deadline = left + culling.idle_kernel + 60 + 30  # timeout + the production cull interval (60 s) + slack
    while time.monotonic() < deadline:
        if not learner.kernel_processes():
            record["kernel_culled_after"] = time.monotonic() - left
            break
        time.sleep(1)
    record["server_running_when_kernel_culled"] = learner.process.is_running()
    deadline = left + culling.idle_server + 3 * culling.cull_every + 2 * culling.activity_interval + 30
    while time.monotonic() < deadline:
        if not hub.user(learner.name).get("servers"):
            record["server_culled_after"] = time.monotonic() - left
            break
        time.sleep(2)


@pytest.fixture(scope="module")
def a_class(classroom_build, tmp_path_factory):
    environment, proxy = classroom_build
    work = tmp_path_factory.mktemp("classroom")
    exchange = work / "exchange"
    instructor_env = dict(os.environ, CLASSROOM_EXCHANGE=str(exchange))
    subprocess.run([sys.executable, str(CLASSROOM / "exchange.py"), "release"], env=instructor_env, check=True)
    handout.build(work / "handout")
    hub = Hub(work / "hub", environment, proxy, exchange, CullingTimes())
    link = handout.nbgitpuller_link(hub.url, f"file://{work / 'handout'}")
    solutions = reference_solutions()
    learners = [Learner(hub, name) for name in names()]
    records = [{} for _ in learners]
    failures = {}
    idle = {}
    hub.start()
    started = time.monotonic()
    try:
        sampler = Sampler(learners)
        sampler.start()
        start = threading.Barrier(len(learners) + 1)

        def run(index):
            try:
                a_learners_class(learners[index], index, link, solutions, start, records[index])
            except Exception as error:  # noqa: BLE001  (reported by the tests below)
                failures[learners[index].name] = f"{type(error).__name__}: {error}"

        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(learners))]
        for thread in threads:
            thread.start()

        def watch_idle_learner():
            try:
                idle_learner(hub, link, idle)
            except Exception as error:  # noqa: BLE001  (reported by the culling test)
                idle["error"] = f"{type(error).__name__}: {error}"

        idle_thread = threading.Thread(target=watch_idle_learner)
        start.wait()
        for thread in threads:
            thread.join()
        class_seconds = time.monotonic() - started
        sampler.stop()
        hub_memory = sum(process.memory_info().rss for process in hub.processes())
        for learner, record in zip(learners, records, strict=True):
            record.setdefault("memory", {})["tree_peak_sampled"] = learner.peak_rss
        # The culling check starts once the class is done, so that it measures this learner alone; the
        # instructor collects and grades meanwhile.
        idle_thread.start()

        # The instructor: collect (as a hub user, with the learners' nbgrader settings in force), then grade.
        submissions, graded = work / "submissions", work / "graded"
        collect_env = dict(instructor_env, JUPYTERHUB_USER="instructor",
                           JUPYTER_CONFIG_PATH=str(environment / "etc" / "jupyter"))
        collected = subprocess.run([sys.executable, str(CLASSROOM / "exchange.py"), "collect",
                                    "--out", str(submissions), "--notebooks", NOTEBOOK],
                                   env=collect_env, capture_output=True, text=True)
        grading_started = time.monotonic()
        grading = subprocess.run([sys.executable, str(ROOT / "instructor" / "grade.py"), str(submissions),
                                  "--out", str(graded)], cwd=ROOT, capture_output=True, text=True, timeout=600)
        grading_seconds = time.monotonic() - grading_started
        idle_thread.join()
    finally:
        hub.stop()

    rows = {}
    if (graded / "grades.csv").is_file():
        with open(graded / "grades.csv", newline="", encoding="utf-8") as handle:
            rows = {(row["student"], row["notebook"]): row for row in csv.DictReader(handle)}

    report = summarize(learners, records, failures, idle, class_seconds, hub_memory, grading_seconds)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(report, indent=2) + "\n")
    shutil.copy2(hub.log_path, REPORT.parent / "jupyterhub.log")  # the first thing to read when a learner failed
    print_report(report)
    return dict(learners=learners, records=records, failures=failures, idle=idle, hub=hub, work=work,
                collected=collected, grading=grading, rows=rows, submissions=submissions, report=report)


def summarize(learners, records, failures, idle, class_seconds, hub_memory, grading_seconds):
    per_learner = []
    for learner, record in zip(learners, records, strict=True):
        memory = record.get("memory", {})
        per_learner.append({
            "learner": learner.name,
            "server_rss_mb": memory.get("server_rss", 0) / MB,
            "kernel_peak_mb": memory.get("kernels_peak", 0) / MB,
            "server_plus_kernel_peak_mb": (memory.get("server_peak", 0) + memory.get("kernels_peak", 0)) / MB,
            "sampled_peak_mb": memory.get("tree_peak_sampled", 0) / MB,
            "uss_after_run_mb": memory.get("uss", 0) / MB,
            "kernel_cpu_seconds": memory.get("kernel_cpu_seconds", 0.0),
            "seconds": {key: round(value, 2) for key, value in record.get("timings", {}).items()},
        })
    return {
        "learners": len(learners), "cores": os.cpu_count(), "failures": failures,
        "class_wall_seconds": round(class_seconds, 1),
        "hub_and_proxy_rss_mb": round(hub_memory / MB, 1),
        "grading_seconds": round(grading_seconds, 1),
        "idle_learner": {key: round(value, 1) if isinstance(value, float) else value
                         for key, value in idle.items()},
        "per_learner": per_learner,
    }


def print_report(report):
    print(f"\n{report['learners']} learners at once on {report['cores']} cores: the class took "
          f"{report['class_wall_seconds']} s; hub + proxy {report['hub_and_proxy_rss_mb']} MB; "
          f"grading {report['grading_seconds']} s")
    print(f"{'learner':<12} {'server MB':>9} {'kernel peak MB':>14} {'sum of peaks MB':>15} {'USS MB':>7} "
          f"{'kernel CPU s':>12}  seconds (log in, server start, pull, run notebook, submit, total)")
    for row in report["per_learner"]:
        seconds = row["seconds"]
        times = ", ".join(f"{seconds.get(key, float('nan')):.1f}" for key in
                          ("log in", "server start", "pull", "run notebook", "submit", "total"))
        print(f"{row['learner']:<12} {row['server_rss_mb']:>9.0f} {row['kernel_peak_mb']:>14.0f} "
              f"{row['server_plus_kernel_peak_mb']:>15.0f} {row['uss_after_run_mb']:>7.0f} "
              f"{row['kernel_cpu_seconds']:>12.1f}  {times}")
    print(f"idle learner: {report['idle_learner']}")


# ---- the learners ------------------------------------------------------------------------------------------

def test_every_learner_finished(a_class):
    assert a_class["failures"] == {}, a_class["failures"]


def test_link_opens_the_pull_page_on_the_learners_own_server(a_class):
    for learner, record in zip(a_class["learners"], a_class["records"], strict=True):
        status, url = record["link_page"]
        assert status == 200 and f"/user/{learner.name}/git-pull?" in url, record["link_page"]


def test_nbgitpuller_pulled_the_handout_without_solutions(a_class):
    for learner, record in zip(a_class["learners"], a_class["records"], strict=True):
        assert record["pull"][-1] == {"phase": "finished"}, record["pull"]
        folder = a_class["hub"].workdir / "home" / learner.name / handout.TARGET_FOLDER
        assert (folder / "notebooks" / f"{NOTEBOOK}.ipynb").is_file()
        assert not (folder / "instructor").exists()
        assert handout.leaks(folder) == []


def test_notebook_errors_only_where_the_learners_answer_is_unfinished_or_wrong(a_class):
    for index, record in enumerate(a_class["records"]):
        expected = {cell for cell, points in expected_scores(index).items() if points == 0}
        assert set(record["errors"]) == expected, (index, record["errors"])
        assert all(error["ename"] == "ExerciseError" for error in record["errors"].values()), record["errors"]


def test_each_submission_went_through_nbgraders_exchange(a_class):
    for learner, record in zip(a_class["learners"], a_class["records"], strict=True):
        listed = record["submit"]
        assert listed["success"], listed
        submitted = [entry for entry in listed["value"] if entry["status"] == "submitted"]
        assert [entry["student_id"] for entry in submitted] == [learner.name], submitted


# ---- the instructor ----------------------------------------------------------------------------------------

def test_collected_one_submission_per_learner_under_their_name(a_class):
    run = a_class["collected"]
    assert run.returncode == 0, run.stdout + run.stderr
    folders = sorted(path.name for path in a_class["submissions"].iterdir())
    assert folders == sorted(names())
    for name in names():
        assert [path.name for path in (a_class["submissions"] / name).iterdir()] == [f"{NOTEBOOK}.ipynb"]


def test_graded_each_learner_on_their_own_answers(a_class):
    run = a_class["grading"]
    assert run.returncode == 0, run.stdout + run.stderr
    assert sorted(a_class["rows"]) == sorted((name, NOTEBOOK) for name in names())
    for index, name in enumerate(names()):
        row = a_class["rows"][(name, NOTEBOOK)]
        scores = {cell: float(row[cell]) for cell in expected_scores(index)}
        assert scores == expected_scores(index), (name, row)
        assert float(row["total"]) == sum(expected_scores(index).values()), row
        assert float(row["max"]) == sum(points for _, _, points in exercises()), row
        assert row["error"] == "", row


# ---- culling and memory ------------------------------------------------------------------------------------

def test_idle_kernel_then_idle_server_are_stopped(a_class):
    idle, culling = a_class["idle"], a_class["hub"].culling
    assert "error" not in idle, idle
    assert idle.get("kernels_after_run") == 1, idle
    # The kernel goes first, by the server's own culler (cull interval 60 s from jupyter_server_config.json;
    # without that file it would be 300 s and this would fail)...
    assert "kernel_culled_after" in idle, f"the idle kernel was never stopped: {idle}"
    assert culling.idle_kernel <= idle["kernel_culled_after"] <= culling.idle_kernel + 60 + 20, idle
    assert idle["server_running_when_kernel_culled"], idle
    # ...then the server, by the hub's idle-culler service.
    assert "server_culled_after" in idle, f"the idle server was never stopped: {idle}"
    assert idle["server_culled_after"] >= culling.idle_server, idle


def test_memory_per_learner_fits_the_configured_guarantee(a_class):
    """The guarantee in classroom/jupyterhub_config.py covers a learner's server with one notebook's kernel
    (the sum of each process's peak, an upper bound of their joint peak). If the workbook grows past it,
    this fails: measure again (make classroom-bench) and raise the numbers in the config and the values file."""
    config = PyFileConfigLoader("jupyterhub_config.py", path=str(CLASSROOM)).load_config()
    guarantee = parse_bytes(config.Spawner.mem_guarantee)
    for row in a_class["report"]["per_learner"]:
        assert 0 < row["server_plus_kernel_peak_mb"] * MB <= guarantee, row


def parse_bytes(text):
    units = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}
    return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
