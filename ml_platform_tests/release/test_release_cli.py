"""`ml-platform release` and `history` in process on a fresh platform home: the exit-code contract.

0 promoted (or started), 1 rolled back or refused with the evidence, 2 usage, 3 no verdict in time:
each is reached through the real registry, ledger and Dagster instance of the home.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from botany.iris.demo_data import generate

from ml_platform.cli import main
from ml_platform.cli.exit_codes import ExitCode
from ml_platform.demo import write_demo_data
from ml_platform.keys import RELEASE_STARTED_AT_TAG
from ml_platform.settings import PlatformPaths
from ml_platform.stores.registry import Store
from ml_platform_tests.models import IRIS
from ml_platform_tests.release.conftest import Releases, register

pytestmark = pytest.mark.e2e


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ML_PLATFORM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "ML_PLATFORM_ARTIFACT_ROOT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


def release(capsys, *argv: str) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["release", "iris", *argv, "--json"])
    report = json.loads(capsys.readouterr().out)
    assert report["exit_code"] == code
    return code, report


def test_start_status_promote_abort_and_history_keep_the_exit_code_contract(home, capsys, tmp_path):
    write_demo_data("iris", seed=0)
    assert main(["train", "iris"]) == ExitCode.PASSED
    code, report = release(capsys, "status")
    assert code == ExitCode.GATE_FAILED and "no release has been decided yet" in report["message"]

    code, report = release(capsys, "start")
    assert code == ExitCode.PASSED and report["outputs"]["release"] == "first-release"
    assert report["outputs"]["moves"] == {"production": [None, "1"]}
    code, report = release(capsys, "start")
    assert code == ExitCode.PASSED and report["outputs"]["note"] == "no-op: version 1 is already production"

    store = Store.from_paths(PlatformPaths.from_environment())
    good = register(IRIS, store, generate(600, seed=11), 7, "a second version")
    code, report = release(capsys, "start", "--version", good, "--canary", "50", "--evidence", str(tmp_path / "ev"))
    assert code == ExitCode.PASSED and report["outputs"]["release"] == "canary-started"
    assert json.loads((tmp_path / "ev" / "release-start.json").read_text())["outputs"]["version"] == good
    code, report = release(capsys, "start", "--version", "1")
    assert code == ExitCode.GATE_FAILED and f"of canary v{good} has been in progress" in report["message"]
    code, report = release(capsys, "start", "--version", "99")
    assert code == ExitCode.USAGE and "has no registered version '99'" in report["message"]
    code, report = release(capsys, "status")
    assert code == ExitCode.PASSED and report["outputs"]["verdict"] == "wait" and report["outputs"]["canary"] == good
    code, report = release(capsys, "status", "--wait", "--timeout", "0")
    assert code == ExitCode.INFRASTRUCTURE and "no verdict within 0 s" in report["message"]

    code, report = release(capsys, "promote", "--reason", "looked fine")
    assert code == ExitCode.PASSED and report["outputs"]["moves"]["production"] == ["1", good]
    code, report = release(capsys, "status")
    assert code == ExitCode.PASSED and report["outputs"]["decision"] == "promoted"

    assert release(capsys, "start", "--version", "1")[0] == ExitCode.PASSED
    code, report = release(capsys, "abort", "--reason", "not today")
    assert code == ExitCode.GATE_FAILED and report["outputs"]["moves"] == {"canary": ["1", None]}
    code, report = release(capsys, "abort")
    assert code == ExitCode.GATE_FAILED and "no release is in progress" in report["message"]

    assert release(capsys, "start", "--version", "1", "--canary", "50")[0] == ExitCode.PASSED
    Releases(IRIS, store, PlatformPaths.from_environment(), None, good, "").serve(400, seed=31, canary_errors=20)
    code, report = release(capsys, "promote")
    assert (
        code == ExitCode.GATE_FAILED
        and "refused, the online gate says canary rolled back: canary error" in (report["message"])
    )
    code, report = release(capsys, "status", "--wait", "--judge", "--timeout", "120")
    assert code == ExitCode.GATE_FAILED and "canary error rate observed 0.0" in report["message"]

    assert release(capsys, "start", "--version", "1")[0] == ExitCode.PASSED
    started = datetime.now(UTC) - timedelta(minutes=30)  # the window has elapsed and no traffic came
    store.client().set_model_version_tag("iris", "1", RELEASE_STARTED_AT_TAG, started.isoformat(timespec="seconds"))
    code, report = release(capsys, "status", "--wait", "--judge", "--timeout", "120")
    assert code == ExitCode.GATE_FAILED and report["outputs"]["decision"] == "rolled-back"
    assert "ended with 0 canary and 0 production requests" in report["message"]

    capsys.readouterr()
    assert main(["promote", "iris", "--to", "production"]) == ExitCode.USAGE
    assert main(["promote", "iris", "--to", "staging"]) == ExitCode.PASSED
    assert main(["history", "iris"]) == ExitCode.PASSED
    history = capsys.readouterr().out
    assert f"iris: champion now v1; production v{good}, canary none, previous-production v1, staging v1, " in history
    for line in (
        "champion none->v1",
        "production none->v1",
        f"canary none->v{good}",
        f"production v1->v{good}",
        "previous-production none->v1",
        "canary v1->none",
        "staging none->v1",
    ):
        assert line in history, (line, history)

    store.client().set_registered_model_alias("iris", "production", "1")  # by hand, in MLflow
    assert main(["history", "iris"]) == ExitCode.PASSED
    history = capsys.readouterr().out
    assert "reconciled: recorded #" in history and "'production' was moved outside the platform" in history
    assert "WARNING: production was moved outside the platform" in history and f"production v{good}->v1" in history
