"""The MLflow tracking and registry server goes away during training.

A real ``mlflow server`` (uvicorn, SQLite backend, proxied artifacts) runs on a free localhost port,
and the platform's MLflow resource points at it over HTTP, as a deployment's does. The fault is real:
the server's whole process group gets SIGKILL while ``candidate_model`` runs, so every request meets
a refused connection, artifact uploads included.

Restarting ``mlflow server`` costs 20-40 s of imports on a small shared machine, so the replacement
is started beforehand as a warm standby: a process with the same environment as the killed server's
worker that has already imported MLflow's server application (``mlflow.server.fastapi_app:app``,
what ``mlflow server`` runs under uvicorn) and binds the port when told to, as a supervisor with a
warm spare would. The server comes back only once the step has failed on it and Dagster has scheduled
the retry, so the step's RetryPolicy is what carries the run across the outage (MLflow's own HTTP
retries are set to none, to keep the test short).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pytest
from botany.iris.demo_data import generate as iris_rows

from ml_platform.settings import PlatformPaths
from ml_platform.stores.registry import Store, current_champion
from ml_platform_tests.harness import Platform, failure_messages, materialized, unique_spec
from ml_platform_tests.models import IRIS
from ml_platform_tests.reliability.conftest import assert_promises, file_hashes, registered_versions

pytestmark = pytest.mark.reliability

MLFLOW = Path(sys.executable).with_name("mlflow")
START, RETRY = dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_UP_FOR_RETRY
STANDBY = """
import sys, time
from pathlib import Path

host, port, ready, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
import uvicorn
from mlflow.server.fastapi_app import app

ready.touch()
while not go.exists():
    time.sleep(0.02)
uvicorn.run(app, host=host, port=port, log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def wait_until(condition, timeout: float, what: str, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.2)


@dataclass
class TrackingServer:
    """A real MLflow server, its warm standby, and the SQLite file behind both."""

    root: Path
    port: int
    processes: list[subprocess.Popen] = field(default_factory=list)
    standby_go: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def backend(self) -> Store:
        """The server's own store, read directly: how a test looks at the registry while the server is down."""
        uri = f"sqlite:///{self.root / 'mlflow.db'}"
        return Store(uri, uri, (self.root / "artifacts").as_uri())

    def start(self) -> None:
        log = (self.root / "server.log").open("ab")
        server = subprocess.Popen(
            [str(MLFLOW), "server", "--backend-store-uri", self.backend.tracking_uri, "--artifacts-destination",
             str(self.root / "artifacts"), "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"],
            env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self.processes.append(server)
        wait_until(lambda: healthy(self.url), 300, f"mlflow server on {self.url}", server)

    def prepare_standby(self) -> None:
        """Start the replacement now (it imports for seconds) with the running worker's environment."""
        server = self.processes[-1]
        children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        worker = next(pid for pid in children if b"uvicorn" in Path(f"/proc/{pid}/cmdline").read_bytes())
        environment = dict(
            item.split("=", 1) for item in Path(f"/proc/{worker}/environ").read_text().split("\0") if "=" in item
        )
        ready, self.standby_go = self.root / "standby-ready", self.root / "standby-go"
        standby = subprocess.Popen(
            [sys.executable, "-c", STANDBY, "127.0.0.1", str(self.port), str(ready), str(self.standby_go)],
            env=environment, stdout=(self.root / "standby.log").open("ab"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.processes.append(standby)
        wait_until(ready.exists, 300, "the standby MLflow server's imports", standby)

    def kill(self) -> None:
        """SIGKILL every server process group that is still running: no clean shutdown, as in a crash."""
        for process in self.processes:
            if process.poll() is None and process is not self._waiting_standby():
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def restart(self) -> None:
        assert self.standby_go is not None, "prepare_standby first"
        self.standby_go.touch()
        wait_until(lambda: healthy(self.url), 60, f"the standby MLflow server on {self.url}", self.processes[-1])
        self.standby_go = None

    def _waiting_standby(self) -> subprocess.Popen | None:
        return self.processes[-1] if self.standby_go is not None else None

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory) -> Iterator[TrackingServer]:
    """One server per module (start-up is the expensive part), with its standby importing meanwhile."""
    server = TrackingServer(tmp_path_factory.mktemp("mlflow-server"), free_port())
    try:
        server.start()
        server.prepare_standby()
        yield server
    finally:
        server.stop_all()


@pytest.fixture(scope="module")
def served_iris(tracking_server, tmp_path_factory) -> Iterator[Platform]:
    """An iris platform whose MLflow resource talks to the server over HTTP, artifacts proxied by it."""
    root = tmp_path_factory.mktemp("served-iris")
    (root / "home").mkdir()
    store = Store(tracking_server.url, tracking_server.url, "mlflow-artifacts:/")
    with dg.instance_for_test(temp_dir=str(root)) as instance:
        yield Platform(unique_spec(IRIS), PlatformPaths(root / "home"), instance, store)


@pytest.fixture
def quick_mlflow_client(monkeypatch):
    """No HTTP retries inside MLflow's client: the step's RetryPolicy is what must carry the run."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


def step_event(instance: dg.DagsterInstance, step_key: str, kind: dg.DagsterEventType) -> bool:
    """Whether the latest run logged ``kind`` for ``step_key`` (read from the instance, as the UI does)."""
    runs = instance.get_runs(limit=1)
    if not runs:
        return False
    return any(event.step_key == step_key for event in instance.all_logs(runs[0].run_id, of_type=kind))


def error_chain(error) -> str:
    """Every message in a serialized error and its causes (Dagster wraps a retried error in its own)."""
    messages = []
    while error is not None:
        messages.append(error.message)
        error = error.cause or error.context
    return "\n".join(messages)


def retries_of(result: dg.ExecuteInProcessResult, step_key: str) -> list[dg.DagsterEvent]:
    return [
        event
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY and event.step_key == step_key
    ]


def test_a_server_killed_during_training_and_restarted_is_retried_and_the_run_completes(
    served_iris, tracking_server, quick_mlflow_client
):
    """The step fails on the refused connection, waits (exponential backoff), retries, and completes.

    The server is killed when ``candidate_model`` starts and restarted once Dagster has scheduled the
    step's retry.

    Exactly one version is registered, it is champion, and its gates passed; the retry's error names
    the server.
    """
    iris = served_iris
    iris.land(iris_rows())
    step = f"{iris.spec.dagster_name}__candidate_model"
    fault = {}

    def crash_and_restart() -> None:
        try:
            wait_until(lambda: step_event(iris.instance, step, START), 300, f"{step} to start")
            tracking_server.kill()
            wait_until(lambda: step_event(iris.instance, step, RETRY), 300, f"{step} to fail on the dead server")
            tracking_server.restart()
        except Exception as error:  # reported by the assertions below
            fault["error"] = repr(error)

    injector = threading.Thread(target=crash_and_restart)
    injector.start()
    result = iris.materialize()
    injector.join(timeout=120)

    assert "error" not in fault, fault
    assert result.success, failure_messages(result)
    retries = retries_of(result, step)
    assert retries, f"{step} was not retried: the server was down from the moment it started"
    first = retries[0].event_specific_data
    assert f"the MLflow tracking server {tracking_server.url} did not answer" in error_chain(first.error)
    assert first.seconds_to_wait and first.seconds_to_wait > 0
    versions = registered_versions(iris.store, iris.spec.name)
    assert list(versions) == ["1"], f"expected one version, found {sorted(versions)}"
    assert current_champion(iris.store, iris.spec.name).version == "1"
    assert_promises(iris)


def test_a_server_that_stays_down_fails_the_run_naming_the_server_and_moves_no_alias(
    served_iris, tracking_server, quick_mlflow_client
):
    """After the retries (2, 4, 8 s of backoff) the run fails; the message names the server without
    its password; nothing downstream ran and no alias moved (read from the server's own database)."""
    iris = served_iris
    iris.land(iris_rows(rows=200, seed=5), name="export-2.csv")
    landing = file_hashes(iris.landing)
    before = current_champion(tracking_server.backend, iris.spec.name)
    versions_before = registered_versions(tracking_server.backend, iris.spec.name)
    tracking_server.kill()
    with_password = f"http://platform:s3cret-token@127.0.0.1:{tracking_server.port}"
    iris.store = Store(with_password, with_password, "mlflow-artifacts:/")

    result = iris.materialize()

    assert not result.success
    step = f"{iris.spec.dagster_name}__candidate_model"
    assert len(retries_of(result, step)) == 3, "expected the RetryPolicy's three retries"
    message = failure_messages(result)
    assert f"candidate_model '{iris.spec.name}'" in message, message
    assert f"the MLflow tracking server http://platform:***@127.0.0.1:{tracking_server.port} did not answer" in message
    assert "Gave up after 4 attempts" in message
    everything = "\n".join(str(event) for event in result.all_events)
    assert "s3cret-token" not in everything, "the tracking URI's password reached the run's events"
    assert "registry_entry" not in materialized(result) and "candidate_model" not in materialized(result)
    after = current_champion(tracking_server.backend, iris.spec.name)
    assert (after and after.version) == (before and before.version), "an alias moved while the server was down"
    assert registered_versions(tracking_server.backend, iris.spec.name) == versions_before
    iris.store = tracking_server.backend
    assert_promises(iris, landing)
