"""A server that accepts connections and never answers: the MLflow tracking server, PostgreSQL.

Worse than a server that is down: a refused connection fails at once, a silent one holds every
client that has no timeout of its own. Here a real socket on 127.0.0.1 accepts every connection
(the kernel completes the handshake and acknowledges what is sent) and never writes a byte. Each
command runs in a child process with the platform's bound on waits (``ML_PLATFORM_SERVER_TIMEOUT``,
lowered to 2 s to keep the suite short; docs/reliability.md gives the times with the default) and
must exit 3 naming the server, password masked, and leave no run in progress. The tests assert the
outcome, not the time; the pytest timeout is what keeps a regression from hanging the suite.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import dagster as dg
import pytest

from ml_platform.settings import (
    DAGSTER_POSTGRES_URL_VARIABLE,
    POSTGRES_URL_VARIABLE,
    PROJECT_ROOT,
    SERVER_TIMEOUT_VARIABLE,
    postgres_instance_yaml,
    sqlalchemy_url,
    with_connect_timeout,
)

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]
SECRET = "s3cret-silent"
TIMEOUT = "2"


class SilentServer:
    """Accepts every connection on a free port of 127.0.0.1 and never sends a byte."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:  # closed
                return
            self.accepted.append(connection)  # kept open, never written to

    def close(self) -> None:
        self.listener.close()
        for connection in self.accepted:
            connection.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def environment(tmp_path) -> dict[str, str]:
    """A fresh home and Dagster home, nothing of the caller's stores, the platform's bound lowered."""
    (tmp_path / "home").mkdir()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "ML_PLATFORM_", "DAGSTER_"))}
    return {
        **base,
        "ML_PLATFORM_HOME": str(tmp_path / "home"),
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        SERVER_TIMEOUT_VARIABLE: TIMEOUT,
    }


def ml_platform(environment: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "ml_platform.cli", *args], env=environment, capture_output=True, text=True, timeout=150
    )
    return done, time.monotonic() - started


def runs_in_progress(dagster_home: str) -> list[dg.DagsterRun]:
    with dg.DagsterInstance.from_config(dagster_home) as instance:
        return [run for run in instance.get_runs() if not run.is_finished]


@pytest.mark.parametrize("command", [["history", "iris"], ["run", "iris"]], ids=["history", "run"])
def test_a_silent_tracking_server_ends_a_command_with_exit_3_naming_it_masked(silent, environment, command):
    uri = f"http://platform:{SECRET}@127.0.0.1:{silent.port}"
    environment |= {"MLFLOW_TRACKING_URI": uri}
    if command[0] == "run":
        subprocess.run([sys.executable, "-m", "ml_platform.cli", "demo-data", "iris"], env=environment, check=True)

    done, seconds = ml_platform(environment, *command)

    print(f"ml-platform {command[0]} against a silent tracking server: exit {done.returncode} in {seconds:.1f} s")
    assert done.returncode == 3, done.stdout[-2000:] + done.stderr[-3000:]
    assert f"the MLflow tracking server http://platform:***@127.0.0.1:{silent.port}" in done.stderr, done.stderr
    assert "timed out" in done.stderr.lower(), done.stderr[-3000:]
    assert SECRET not in done.stdout + done.stderr
    assert silent.accepted, "the client never reached the silent server"
    assert runs_in_progress(environment["DAGSTER_HOME"]) == []


def test_a_silent_postgres_ends_a_command_with_exit_3_naming_it_masked(silent, environment):
    url = f"postgresql://platform:{SECRET}@127.0.0.1:{silent.port}/platform"
    environment |= {POSTGRES_URL_VARIABLE: url}

    done, seconds = ml_platform(environment, "history", "iris")

    print(f"ml-platform history against a silent PostgreSQL: exit {done.returncode} in {seconds:.1f} s")
    assert done.returncode == 3, done.stdout[-2000:] + done.stderr[-3000:]
    expected = f"the PostgreSQL server postgresql://platform:***@127.0.0.1:{silent.port}/platform did not answer"
    assert expected in done.stderr, done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert silent.accepted


DAGSTER_INSTANCE = """
import dagster as dg
with dg.DagsterInstance.get() as instance:
    instance.get_runs(limit=1)
"""


def test_the_dagster_instance_on_a_silent_postgres_fails_instead_of_waiting(silent, environment, tmp_path):
    """The instance config the platform writes for PostgreSQL, pointed at the silent port: Dagster's own
    storage gives up (after its own retries) instead of waiting for an answer forever."""
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text(postgres_instance_yaml(PROJECT_ROOT / "dagster.yaml"))
    url = f"postgresql://platform:{SECRET}@127.0.0.1:{silent.port}/platform"
    environment |= {DAGSTER_POSTGRES_URL_VARIABLE: with_connect_timeout_in(environment, url)}

    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", DAGSTER_INSTANCE], env=environment, capture_output=True, text=True,
                          timeout=150)  # fmt: skip
    print(f"Dagster instance on a silent PostgreSQL: exit {done.returncode} in {time.monotonic() - started:.1f} s")
    assert done.returncode != 0
    assert "timeout expired" in done.stderr, done.stderr[-3000:]
    assert silent.accepted


def with_connect_timeout_in(environment: dict[str, str], url: str) -> str:
    """The URL as ``ensure_dagster_home`` derives it, with the environment's bound."""
    saved = os.environ.get(SERVER_TIMEOUT_VARIABLE)
    os.environ[SERVER_TIMEOUT_VARIABLE] = environment[SERVER_TIMEOUT_VARIABLE]
    try:
        return with_connect_timeout(sqlalchemy_url(url))
    finally:
        if saved is None:
            del os.environ[SERVER_TIMEOUT_VARIABLE]
        else:
            os.environ[SERVER_TIMEOUT_VARIABLE] = saved


def test_the_bound_is_a_setting_and_an_explicit_mlflow_setting_wins(monkeypatch):
    from ml_platform.settings import bound_server_waits, server_timeout

    for name in ("MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_MAX_RETRIES", SERVER_TIMEOUT_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    assert server_timeout() == 10
    monkeypatch.setenv(SERVER_TIMEOUT_VARIABLE, "4")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")
    bound_server_waits("http://127.0.0.1:1")
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "4" and os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "5"
    assert with_connect_timeout("postgresql://u:p@h/db?sslmode=require") == (
        "postgresql://u:p@h/db?sslmode=require&connect_timeout=4"
    )
    assert with_connect_timeout("postgresql://u:p@h/db?connect_timeout=30").endswith("connect_timeout=30")
    monkeypatch.setenv(SERVER_TIMEOUT_VARIABLE, "soon")
    with pytest.raises(ValueError, match=r"ML_PLATFORM_SERVER_TIMEOUT='soon' is not a whole number of seconds"):
        server_timeout()
