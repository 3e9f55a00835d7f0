"""``ml-platform train --dagster-url``: CI launches the run on a Dagster deployment instead of training itself.

A real ``dagster dev`` (webserver, daemon, code server) on loopback stands in for the deployment; the
command submits ``<model>_lifecycle`` over GraphQL, waits for it, and reads the gates back from the
run's event log, with the same exit codes as an in-process run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from ml_platform.cli import ExitCode, main
from ml_platform.demo import write_demo_data
from ml_platform.settings import PROJECT_ROOT, PlatformPaths, ensure_dagster_home

pytestmark = pytest.mark.e2e

READY_QUERY = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ML_PLATFORM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "ML_PLATFORM_ARTIFACT_ROOT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def deployment(home, tmp_path):
    """``dagster dev`` on this test's platform home, in its own process group; its URL once loaded."""
    from ml_platform.stores.registry import ensure_mlflow_store

    paths = PlatformPaths(home)
    ensure_dagster_home(paths)
    ensure_mlflow_store(paths)  # migrate the store once, before the run's process opens it
    port = _free_port()
    log = (tmp_path / "dagster-dev.log").open("w")
    dagster = str(Path(sys.executable).parent / "dagster")
    process = subprocess.Popen(
        [
            "env",
            "--default-signal=INT,TERM",
            dagster,
            "dev",
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=PROJECT_ROOT,
        env=os.environ.copy(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "dagster-dev.log").read_text()[-3000:]
            try:
                reply = requests.post(f"{url}/graphql", json={"query": READY_QUERY}, timeout=5).json()
                entries = reply["data"]["workspaceOrError"]["locationEntries"]
                if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
                    break
            except (requests.RequestException, KeyError, TypeError, ValueError):
                pass
            time.sleep(2)
        else:
            pytest.fail(
                "dagster dev did not load the code location in 300 s:\n"
                + (tmp_path / "dagster-dev.log").read_text()[-3000:]
            )
        yield url
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        log.close()


def _stage(capsys, *argv: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_train_launches_the_run_on_the_deployment_and_reads_its_gates(deployment, home, capsys, tmp_path):
    write_demo_data("iris", seed=0)
    code, report = _stage(capsys, "train", "iris", "--dagster-url", deployment, "--evidence", str(tmp_path / "ev"))
    assert code == ExitCode.PASSED, report
    assert report["outputs"]["dagster_status"] == "SUCCESS"
    assert report["outputs"]["version"] == "1" and report["outputs"]["promoted"] is True
    checks = {gate["check"]: gate for gate in report["gates"]}
    assert checks["meets_absolute_minimums"]["passed"] and "| rule |" in checks["meets_absolute_minimums"]["table"]
    assert "iris version 1  aliases: champion" in (tmp_path / "ev" / "model-card.md").read_text()

    code, report = _stage(capsys, "promote", "iris", "--to", "staging")
    assert code == ExitCode.PASSED and report["outputs"]["version"] == "1"


def test_an_unreachable_deployment_is_an_infrastructure_error_and_a_bad_url_a_usage_error(home, capsys):
    code, report = _stage(capsys, "train", "iris", "--dagster-url", "http://127.0.0.1:9")
    assert code == ExitCode.INFRASTRUCTURE and "unreachable" in report["message"]
    code, report = _stage(capsys, "train", "iris", "--dagster-url", "ftp://dagster")
    assert code == ExitCode.USAGE and "is not an http(s) URL" in report["message"]
