"""A real Dagster webserver (``dagster dev`` on workspace.yaml) and Debian's Chromium, for UI tests.

The server runs on 127.0.0.1 against a temporary platform home and DAGSTER_HOME, with the conversion
model's demo data already landed and the MLflow store already created (two step processes migrating a
fresh SQLite store at once fail). Playwright drives the system Chromium through ``executable_path``;
Playwright's own browser download is never used (CI installs Chromium with .ci/setup-chromium.sh).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ml_platform.discovery import declared_models
from ml_platform.settings import PROJECT_ROOT, PlatformPaths

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "ui"
CHROMIUM_CANDIDATES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
]
DEMO_ROWS = 3_000
SERVER_READY_SECONDS = 240
LOCATION = declared_models()["conversion"].location  # the team code location that declares the model


def chromium_executable() -> str:
    """The system Chromium (``ML_PLATFORM_CHROMIUM`` overrides); skip loudly, or fail in CI, without one."""
    candidates = [os.environ["ML_PLATFORM_CHROMIUM"]] if os.environ.get("ML_PLATFORM_CHROMIUM") else []
    for candidate in [*candidates, *CHROMIUM_CANDIDATES]:
        if os.access(candidate, os.X_OK):
            return candidate
    reason = (
        "NO BROWSER: the Dagster UI browser test needs Debian's Chromium and found none at "
        f"{[*candidates, *CHROMIUM_CANDIDATES]}. Install it with `apt-get install -y --no-install-recommends "
        "chromium` (CI does it in .ci/setup-chromium.sh) or point ML_PLATFORM_CHROMIUM at a Chromium binary."
    )
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class DagsterUI:
    """A running ``dagster dev`` and the platform home it serves."""

    url: str
    paths: PlatformPaths
    process: subprocess.Popen
    log: Path

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.loads(response.read())
        if body.get("errors"):
            raise AssertionError(f"GraphQL errors from {self.url}: {body['errors']}")
        return body["data"]

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _create_mlflow_store(paths: PlatformPaths) -> None:
    """Create and migrate the store before any run can, without moving this process's MLflow URIs."""
    import mlflow

    from ml_platform.stores.registry import ensure_mlflow_store

    tracking, registry = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    try:
        ensure_mlflow_store(paths)
    finally:
        mlflow.set_tracking_uri(tracking)
        mlflow.set_registry_uri(registry)


def _wait_until_loaded(ui: DagsterUI) -> None:
    """Ready when GraphQL reports every team's code location LOADED; fail with the server's log otherwise."""
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
    deadline = time.monotonic() + SERVER_READY_SECONDS
    status = "no answer"
    while time.monotonic() < deadline:
        if ui.process.poll() is not None:
            raise AssertionError(f"dagster dev exited with {ui.process.returncode}:\n{ui.log_tail()}")
        try:
            entries = ui.graphql(query)["workspaceOrError"]["locationEntries"]
            status = {entry["name"]: entry["loadStatus"] for entry in entries}
            if LOCATION in status and set(status.values()) == {"LOADED"}:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(2)
    raise AssertionError(
        f"dagster dev on {ui.url} did not load {LOCATION!r} within {SERVER_READY_SECONDS} s "
        f"(last status: {status}):\n{ui.log_tail()}"
    )


def _stop(process: subprocess.Popen) -> None:
    """Stop dagster dev and everything it started (webserver, daemon, code server, runs): its process group."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory) -> Iterator[DagsterUI]:
    """``dagster dev`` on workspace.yaml, a temporary home, the conversion demo data landed."""
    from ml_platform.demo import write_demo_data

    chromium_executable()  # skip (or fail in CI) before paying for a server no browser can use
    home = tmp_path_factory.mktemp("ui-home")
    paths = PlatformPaths(home)
    dagster_home = home / "dagster"
    dagster_home.mkdir()
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    write_demo_data("conversion", rows=DEMO_ROWS, paths=paths)
    _create_mlflow_store(paths)

    env = {
        key: value
        for key, value in os.environ.items()
        if key
        not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "ML_PLATFORM_ARTIFACT_ROOT", "ML_PLATFORM_MLFLOW_UI_URL")
    }
    env |= {
        "ML_PLATFORM_HOME": str(home),
        "DAGSTER_HOME": str(dagster_home),
        "GIT_PYTHON_REFRESH": "quiet",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    port = _free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "dagster-dev.log"
    dagster = Path(sys.executable).parent / "dagster"
    with log.open("w") as output:
        # Its own process group, so that stopping it stops what it started; `env --default-signal`
        # because a background process started from a non-interactive shell ignores SIGINT/SIGTERM.
        process = subprocess.Popen(
            ["env", "--default-signal=INT,TERM", str(dagster), "dev", "-w", "workspace.yaml"]
            + ["-h", "127.0.0.1", "-p", str(port)],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    ui = DagsterUI(f"http://127.0.0.1:{port}", paths, process, log)
    try:
        _wait_until_loaded(ui)
        yield ui
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, through Playwright (never `playwright install`)."""
    executable = chromium_executable()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
