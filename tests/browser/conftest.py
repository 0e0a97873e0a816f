"""Fixtures for the browser tests: one JupyterLab (on a temporary copy of notebooks/) and one Chromium per
session, a fresh page per notebook, screenshots and logs in test-results/browser/ when a test fails.

Without Chromium (/usr/bin/chromium, or $COURSE_CHROMIUM) the tests skip, except under CI=true, where they fail:
CI must install it (`apt-get install -y chromium`).
"""

import os
import re
import shutil

import pytest
from lab_in_browser import CHROMIUM, LabServer, NotebookPage, find_chromium, launch_chromium

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = os.path.join(ROOT, "test-results", "browser")


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: runs the notebooks in JupyterLab in a real browser (Chromium)")


def pytest_collection_modifyitems(items):
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def _unavailable(reason):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}; .ci/run must `apt-get install -y chromium`", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path():
    path = find_chromium()
    if path is None:
        _unavailable(f"Chromium not found at {CHROMIUM} (apt-get install -y chromium)")
    return path


@pytest.fixture(scope="session")
def lab_server(chromium_path, tmp_path_factory):
    """JupyterLab serving a temporary copy of notebooks/ (the repository is never written)."""
    scratch = tmp_path_factory.mktemp("jupyterlab")
    root = scratch / "notebooks"
    shutil.copytree(os.path.join(ROOT, "notebooks"), root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    server = LabServer(root, scratch / "server")
    try:
        server.start()
    except RuntimeError as error:
        pytest.fail(str(error), pytrace=False)
    yield server
    server.shutdown()


@pytest.fixture(scope="session")
def browser_context(lab_server, tmp_path_factory):
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed")
    playwright = sync_playwright().start()
    try:
        context = launch_chromium(playwright, tmp_path_factory.mktemp("chromium") / "profile")
    except Exception as error:  # noqa: BLE001
        playwright.stop()
        pytest.fail(f"Chromium did not start: {error}", pytrace=False)
    yield context
    try:
        context.close()
    finally:
        playwright.stop()


@pytest.fixture
def open_notebook(request, browser_context, lab_server):
    """open_notebook(path) -> an opened NotebookPage in a new page; saved to test-results/ if the test fails."""
    opened = []

    def _open(path):
        page = browser_context.new_page()
        notebook = NotebookPage(page, lab_server, path)
        opened.append(notebook)
        return notebook.open()

    yield _open
    failed = any(getattr(getattr(request.node, f"report_{when}", None), "failed", False)
                 for when in ("setup", "call"))
    for notebook in opened:
        if failed:
            stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_").replace(".ipynb", "")
            saved = notebook.save_artifacts(RESULTS, stem)
            print(f"\nbrowser artifacts: {', '.join(str(p.relative_to(ROOT)) for p in saved)}")
        try:
            notebook.page.close()
        except Exception:  # noqa: BLE001 (closing a page of a broken browser)
            pass
    lab_server.shut_down_sessions()  # free the kernel before the next notebook
