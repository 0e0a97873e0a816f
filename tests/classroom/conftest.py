"""tests/classroom: the class recipe in classroom/.

test_classroom_files.py is quick and runs with the unit tests. test_hub.py (a real JupyterHub with learners on
it) and test_exchange.py (a dozen nbgrader runs) are marked ``hub`` and run only when selected (``pytest
tests/classroom -m hub``, what ``make classroom-test`` runs), never as part of ``make unit``. test_hub.py needs
the course environment and the proxy that ``make classroom-env`` installs; without them it skips, except under
CI=true, where it fails. bench_classroom.py (``make classroom-bench``) measures learners x memory x time.
"""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
BUILD = Path(os.environ.get("CLASSROOM_BUILD", ROOT / "build" / "classroom"))
ENVIRONMENT = BUILD / "env"
PROXY = BUILD / "proxy" / "node_modules" / ".bin" / "configurable-http-proxy"


def pytest_configure(config):
    config.addinivalue_line("markers", "hub: a real JupyterHub with simulated learners (make classroom-test)")


def pytest_collection_modifyitems(config, items):
    """Leave the hub tests out unless the -m expression names them."""
    if "hub" in (config.getoption("markexpr") or ""):
        return
    kept, deselected = [], []
    for item in items:
        (deselected if item.get_closest_marker("hub") else kept).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(scope="session")
def classroom_build():
    """(course environment, configurable-http-proxy) made by `make classroom-env`."""
    missing = [str(path) for path in (ENVIRONMENT / "bin" / "jupyterhub", PROXY) if not path.exists()]
    if missing:
        reason = f"run `make classroom-env` first: missing {', '.join(missing)}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
    return ENVIRONMENT, PROXY
