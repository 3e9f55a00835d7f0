"""One error-to-exit-code mapping for every command: evidence 1, usage 2, infrastructure 3.

``classify`` is what both ``main`` (an error escaping any command) and the stage reports use; the last
two tests drive it through real commands.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
import requests

from ml_platform.cli import ExitCode, main
from ml_platform.cli.exit_codes import classify
from ml_platform.cli.report import fail
from ml_platform.errors import ChampionMoved, ContractViolation, PromotionBlocked, SnapshotCorrupted


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ContractViolation("landing file 'a.csv' is truncated"), ExitCode.GATE_FAILED),  # a ValueError, but evidence
        (SnapshotCorrupted("snapshot 1f2e no longer matches its hash"), ExitCode.GATE_FAILED),
        (PromotionBlocked("its recorded gates are missing"), ExitCode.GATE_FAILED),
        (ChampionMoved("the champion moved", "3", "4"), ExitCode.GATE_FAILED),
        (ValueError("no model named 'Iris' is declared"), ExitCode.USAGE),
        (LookupError("model 'iris' has no version 7"), ExitCode.USAGE),
        (ModuleNotFoundError("No module named 'teams.fraud'"), ExitCode.USAGE),
        (ConnectionError("the Dagster webserver at http://dagster:3000 is unreachable"), ExitCode.INFRASTRUCTURE),
        (TimeoutError("dagster run 42 is still STARTED after 60 s"), ExitCode.INFRASTRUCTURE),
        (sqlite3.OperationalError("database is locked"), ExitCode.INFRASTRUCTURE),
        (requests.ConnectionError("Max retries exceeded"), ExitCode.INFRASTRUCTURE),
        (ValueError("Connection refused by the tracking server"), ExitCode.INFRASTRUCTURE),  # transient wins
        (ZeroDivisionError("division by zero"), ExitCode.INFRASTRUCTURE),  # a crash is not a gate result
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value.name,
)
def test_each_kind_of_error_gets_its_one_exit_code(error, code):
    assert classify(error).code == code


def test_only_an_unclassified_crash_is_reported_as_one_with_its_stack_trace(capsys):
    assert classify(ZeroDivisionError("x")).crashed
    assert not any(classify(e).crashed for e in (ContractViolation("x"), ValueError("x"), ConnectionError("x")))

    def crash():
        raise ZeroDivisionError("division by zero")

    try:
        crash()
    except ZeroDivisionError as error:
        assert fail(error) == ExitCode.INFRASTRUCTURE
    err = capsys.readouterr().err
    assert "Traceback" in err and "in crash" in err
    assert err.rstrip().endswith(
        "crashed (not a gate result; retry once, then report it): ZeroDivisionError: division by zero"
    )


def test_an_error_escaping_a_command_is_printed_once_with_its_code_and_no_password(capsys):
    assert fail(ContractViolation("landing file 'a.csv' is truncated")) == ExitCode.GATE_FAILED
    assert capsys.readouterr().err == "ml-platform: landing file 'a.csv' is truncated\n"
    error = ConnectionError("API request to http://viewer:hunter2@mlflow:5000/api failed: connection refused")
    assert fail(error) == ExitCode.INFRASTRUCTURE
    err = capsys.readouterr().err
    assert "infrastructure error, worth a retry: ConnectionError" in err
    assert "viewer:***@mlflow" in err and "hunter2" not in err


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ML_PLATFORM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "ML_PLATFORM_ARTIFACT_ROOT", "ML_PLATFORM_POSTGRES_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


@pytest.mark.e2e
def test_a_contract_violation_exits_1_and_a_usage_error_2_from_the_same_command(home, capsys):
    """``decide`` reads the landing folder itself: an empty one is a broken contract, not a typo."""
    assert main(["decide", "iris", "--json"]) == ExitCode.GATE_FAILED
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "gate_failed" and "no landing files in" in report["message"]

    assert main(["decide", "Iris", "--json"]) == ExitCode.USAGE
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "usage_error" and "no model named 'Iris'" in report["message"]


@pytest.mark.e2e
def test_a_bad_option_value_outside_a_run_is_a_usage_error(home, capsys):
    assert main(["demo-data", "iris", "--rows", "0"]) == ExitCode.USAGE
    assert capsys.readouterr().err == "ml-platform: error: --rows must be at least 1, got 0\n"
