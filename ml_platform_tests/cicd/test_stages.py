"""The exit-code contract of the CI stage commands, through real runs on small data.

0 passed, 1 a gate failed (with the evidence), 2 usage or configuration error, 3 infrastructure error
worth a retry: each stage is driven to each code it can give, on a temporary platform home with a
real Dagster instance and a real MLflow store, as ``ml-platform <stage> --json`` prints it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ml_platform.cli import ExitCode, main
from ml_platform.demo import write_demo_data

pytestmark = pytest.mark.e2e


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ML_PLATFORM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "ML_PLATFORM_ARTIFACT_ROOT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


def stage(capsys, *argv: str) -> tuple[int, dict]:
    """Run ``ml-platform <argv> --json`` in process: its exit code and the one JSON object it printed."""
    capsys.readouterr()
    code = main([*argv, "--json"])
    out = capsys.readouterr().out
    report = json.loads(out)
    assert report["exit_code"] == code
    return code, report


def failed_gates(report: dict) -> list[str]:
    return sorted(gate["check"] for gate in report["gates"] if not gate["passed"])


def test_check_data_passes_on_complete_data_and_fails_with_evidence_on_a_partial_export(home, capsys, tmp_path):
    from growth.conversion.demo_data import generate

    write_demo_data("conversion", rows=3000, seed=1)
    evidence = tmp_path / "evidence"
    code, report = stage(capsys, "check-data", "conversion", "--evidence", str(evidence))
    assert code == ExitCode.PASSED and report["status"] == "passed"
    assert failed_gates(report) == [] and len(report["gates"]) >= 6
    assert len(report["outputs"]["snapshot_id"]) == 64
    assert "| rule | observed | required | passed |" in (evidence / "check-data-gates.md").read_text()

    landing = home / "landing" / "conversion"
    for old in landing.iterdir():
        old.unlink()
    generate(3000, seed=2, regions=("us-east",), days=2).to_csv(landing / "partial.csv", index=False)
    code, report = stage(capsys, "check-data", "conversion", "--evidence", str(evidence))
    assert code == ExitCode.GATE_FAILED and report["status"] == "gate_failed"
    assert "has_every_segment" in failed_gates(report)
    gate = next(g for g in report["gates"] if g["check"] == "has_every_segment")
    assert "eu-west" in gate["description"] and "**NO**" in gate["table"]
    assert json.loads((evidence / "check-data.json").read_text())["exit_code"] == ExitCode.GATE_FAILED


def test_check_data_without_landing_files_is_a_gate_failure_naming_the_folder(home, capsys):
    code, report = stage(capsys, "check-data", "iris")
    assert code == ExitCode.GATE_FAILED
    assert any("no landing files in" in failure for failure in report["failures"])


def test_decide_train_and_promote_through_a_real_run(home, capsys, tmp_path):
    write_demo_data("iris", seed=0)
    evidence = tmp_path / "evidence"

    code, decision = stage(capsys, "decide", "iris")
    assert code == ExitCode.PASSED and decision["outputs"]["retrain"] is True
    assert decision["outputs"]["reasons"] == ["there is no champion yet"]

    code, report = stage(capsys, "promote", "iris", "--to", "staging")
    assert code == ExitCode.GATE_FAILED and "nothing has passed every gate yet" in report["message"]

    code, report = stage(capsys, "train", "iris", "--evidence", str(evidence))
    assert code == ExitCode.PASSED, report
    assert report["outputs"]["version"] == "1" and report["outputs"]["promoted"] is True
    assert {"meets_absolute_minimums", "beats_trivial_baseline"} <= {g["check"] for g in report["gates"]}
    card = (evidence / "model-card.md").read_text()
    assert "iris version 1  aliases: champion" in card and "demo-seed0.csv  sha256" in card
    assert "meets_absolute_minimums" in (evidence / "train-gates.md").read_text()

    code, decision = stage(capsys, "decide", "iris")
    assert code == ExitCode.PASSED and decision["outputs"]["retrain"] is False
    assert decision["outputs"]["champion_snapshot_id"] == decision["outputs"]["snapshot_id"]
    code, decision = stage(capsys, "decide", "iris", "--force-retrain")
    assert code == ExitCode.PASSED and decision["outputs"]["retrain"] is True
    assert decision["outputs"]["reasons"] == ["forced (force_retrain)"]

    code, report = stage(capsys, "promote", "iris", "--to", "production")
    assert code == ExitCode.USAGE and "production moves only through a release" in report["message"]
    code, report = stage(capsys, "promote", "iris", "--to", "staging", "--version", "7")
    assert code == ExitCode.GATE_FAILED and "does not hold the 'champion' alias" in report["message"]
    code, report = stage(capsys, "promote", "iris", "--to", "staging")
    assert code == ExitCode.PASSED and report["outputs"]["model_uri"] == "models:/iris@staging"
    assert all(gate["passed"] for gate in report["gates"]) and len(report["gates"]) >= 8
    code, report = stage(capsys, "promote", "iris", "--to", "staging")
    assert code == ExitCode.PASSED and report["outputs"]["note"].startswith("no-op")

    write_demo_data("iris", rows=150, seed=1)  # a second landing file: the data moved on
    code, decision = stage(capsys, "decide", "iris")
    assert code == ExitCode.PASSED and decision["outputs"]["retrain"] is True
    assert decision["outputs"]["reasons"][0].startswith("new data: snapshot")
    assert decision["outputs"]["drift"]["evaluated"] is True  # against the champion's snapshot, on this machine


def test_train_stops_at_a_model_gate_and_nothing_can_be_promoted(home, capsys):
    from botany.iris.demo_data import generate

    frame = generate(300, seed=4)
    frame["species"] = frame["species"].sample(frac=1.0, random_state=0).to_numpy()  # labels unrelated to features
    landing = home / "landing" / "iris"
    landing.mkdir(parents=True)
    frame.to_csv(landing / "shuffled.csv", index=False)

    code, report = stage(capsys, "train", "iris")
    assert code == ExitCode.GATE_FAILED and report["status"] == "gate_failed"
    assert "meets_absolute_minimums" in failed_gates(report)
    assert "version" not in report["outputs"]
    code, _ = stage(capsys, "promote", "iris", "--to", "staging")
    assert code == ExitCode.GATE_FAILED


@pytest.mark.parametrize(
    "argv",
    [
        ["check-data", "no-such-model"],
        ["decide", "Iris"],
        ["train", "../iris"],
        ["promote", "no-such-model", "--to", "staging"],
        ["promote", "iris", "--to", "qa"],
        ["promote", "iris"],
    ],
)
def test_usage_and_configuration_errors_exit_2_from_a_real_process(home, argv):
    run = subprocess.run(
        [sys.executable, "-m", "ml_platform.cli", *argv, "--json"], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == ExitCode.USAGE, run.stdout + run.stderr
    if "--to" in argv and "qa" not in argv:
        assert json.loads(run.stdout)["status"] == "usage_error"


def test_an_unreachable_tracking_server_is_an_infrastructure_error_for_every_stage(home, capsys, monkeypatch):
    write_demo_data("iris", seed=0)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # the discard port: nothing listens
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    for argv in (["check-data", "iris"], ["decide", "iris"], ["train", "iris"], ["promote", "iris", "--to", "staging"]):
        code, report = stage(capsys, *argv)
        assert code == ExitCode.INFRASTRUCTURE, report
        assert report["status"] == "infrastructure_error" and "worth a retry" in report["message"]
