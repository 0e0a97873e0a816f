"""JupyterHub settings for a class on this workbook: where each learner's server comes from, how much memory and
CPU it gets, and when idle kernels and servers are stopped.

The Littlest JupyterHub (one server) loads it as a drop-in:
    sudo cp classroom/jupyterhub_config.py /opt/tljh/config/jupyterhub_config.d/classroom.py
    sudo tljh-config set services.cull.enabled false   # this file brings its own culler (settings below)
    sudo tljh-config reload hub
A plain JupyterHub loads it from its own config with ``load_subconfig("classroom/jupyterhub_config.py")``
(tests/classroom/ does that with a real hub). Kubernetes gets the same numbers from classroom/z2jh-values.yaml.

The numbers come from measurements with the test hub (``make classroom-bench``, figures in classroom/README.md).
"""

import os
import sys

c = get_config()  # noqa: F821  (JupyterHub injects get_config)

# The course environment made by classroom/install-environment.sh (requirements.lock + classroom extras).
COURSE_ENV = os.environ.get("CLASSROOM_ENV", "/opt/course-env")

# ---- the learner's server ----------------------------------------------------------------------------------
c.Spawner.cmd = [os.path.join(COURSE_ENV, "bin", "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
# TLJH's SystemdSpawner: the course environment first on PATH (terminals, `pip list`, `nbgrader submit`).
c.SystemdSpawner.extra_paths = [os.path.join(COURSE_ENV, "bin")]
c.Spawner.environment = {
    # One BLAS/torch thread per kernel: the notebooks' models are tiny, and dozens of kernels each starting a
    # thread per core of a big server would fight over the cores.
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
if "CLASSROOM_EXCHANGE" in os.environ:  # nbgrader's exchange somewhere else than /srv/nbgrader/exchange
    c.Spawner.environment["CLASSROOM_EXCHANGE"] = os.environ["CLASSROOM_EXCHANGE"]

# ---- memory and CPU per learner ----------------------------------------------------------------------------
# Measured with the test hub (make classroom-bench; classroom/README.md): a learner's server is ~155 MB, a
# notebook's kernel peaks at 310-460 MB, so a learner working in one notebook needs 0.47-0.62 GB; one who runs all
# five and leaves every kernel open reaches 2.08 GB. Guarantee: one notebook, with room to spare. Limit: all five
# kernels open, with room for the learner's own experiments (idle kernels are stopped after 20 minutes anyway,
# classroom/jupyter_server_config.json). SystemdSpawner (TLJH) enforces the limit and the CPU cap and ignores the
# guarantees; KubeSpawner enforces all four (classroom/z2jh-values.yaml).
c.Spawner.mem_guarantee = "768M"
c.Spawner.mem_limit = "2.5G"
c.Spawner.cpu_guarantee = 0.1
c.Spawner.cpu_limit = 1.0
# TLJH sets the limits from `tljh-config set limits.*` (older releases on SystemdSpawner, which would win over
# Spawner): this file's numbers win either way.
c.SystemdSpawner.mem_limit = c.Spawner.mem_limit
c.SystemdSpawner.cpu_limit = c.Spawner.cpu_limit

# ---- idle servers ------------------------------------------------------------------------------------------
# A server with no activity for an hour is stopped (work is saved on disk; only kernel state is lost). Idle
# kernels go sooner, after 20 minutes, by the server itself (classroom/jupyter_server_config.json).
IDLE_SERVER_SECONDS = 3600
c.JupyterHub.load_roles.append({
    "name": "idle-culler",
    "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
    "services": ["idle-culler"],
})
c.JupyterHub.services.append({
    "name": "idle-culler",
    "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                f"--timeout={IDLE_SERVER_SECONDS}", "--cull-every=300"],
})
