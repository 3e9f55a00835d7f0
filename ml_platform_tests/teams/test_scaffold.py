"""A new team from nothing: `ml-platform new-model` in a temporary project, then demo-data, run, and its own tests.

Nothing under ml_platform/ is touched: the model is found through the temporary workspace.yaml alone.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ml_platform.cli import main
from ml_platform.cli.exit_codes import ExitCode
from ml_platform.settings import PROJECT_ROOT
from ml_platform_tests.harness import declare_only
from ml_platform_tests.models import IRIS

pytestmark = pytest.mark.e2e

TEAM = f"acme_{os.getpid()}"  # a package name no other test process imports


@pytest.fixture
def project(tmp_path, monkeypatch):
    """An empty project root with its own workspace.yaml and platform home."""
    (tmp_path / "workspace.yaml").write_text("# code locations\nload_from: []\n")
    monkeypatch.setenv("ML_PLATFORM_WORKSPACE", str(tmp_path / "workspace.yaml"))
    monkeypatch.setenv("ML_PLATFORM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    return tmp_path


def test_a_new_team_goes_from_nothing_to_a_champion_and_its_gates_stop_bad_data(project, capsys):
    assert main(["new-model", "churn", "--team", TEAM, "--root", str(project)]) == ExitCode.PASSED
    out = capsys.readouterr().out
    assert f"registered code location {TEAM!r} in workspace.yaml" in out
    team = project / "teams" / TEAM
    for written in (
        "pyproject.toml",
        f"src/{TEAM}/defs/churn/defs.yaml",
        f"src/{TEAM}/churn/contract.py",
        f"src/{TEAM}/churn/pipeline.py",
        f"src/{TEAM}/churn/demo_data.py",
        "tests/test_churn.py",
    ):
        assert (team / written).is_file(), written
    workflow = (project / ".github" / "workflows" / "model-churn.yml").read_text()
    assert f"teams/{TEAM}/**" in workflow and f"dagster definitions validate -m {TEAM}.definitions" in workflow

    assert main(["demo-data", "churn"]) == ExitCode.PASSED
    assert main(["run", "churn"]) == ExitCode.PASSED
    out = capsys.readouterr().out
    assert "[pass] churn/candidate_model:beats_trivial_baseline" in out
    assert "version 1 is now champion (first champion)" in out

    landing = project / "home" / "landing" / "churn"
    for old in landing.iterdir():
        old.unlink()
    frame = importlib.import_module(f"{TEAM}.churn.demo_data").generate(rows=3000, seed=5)
    frame.loc[:20, "channel"] = "fax"  # the contract allows web, store and phone
    frame.to_csv(landing / "bad.csv", index=False)
    assert main(["run", "churn"]) == ExitCode.GATE_FAILED
    out = capsys.readouterr().out
    assert "[FAIL] churn/dataset_snapshot:schema_holds" in out
    assert "champion: version 1" in out


def test_the_scaffolded_project_passes_its_own_tests_lint_and_dagster_validation(project):
    assert main(["new-model", "fraud", "--team", f"{TEAM}_b", "--root", str(project)]) == ExitCode.PASSED
    team = project / "teams" / f"{TEAM}_b"
    environment = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=team,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert "3 passed" in tests.stdout
    lint = subprocess.run(
        [Path(sys.executable).parent / "ruff", "check", "--config", PROJECT_ROOT / "pyproject.toml", team],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert lint.returncode == 0, lint.stdout
    environment.pop("DAGSTER_HOME")  # validation runs on a temporary instance of its own
    validate = subprocess.run(
        [Path(sys.executable).parent / "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert validate.returncode == 0, validate.stderr[-1500:]
    assert f"Validation successful for code location {TEAM}_b" in validate.stdout + validate.stderr


def test_demo_runs_the_models_with_a_generator_and_names_the_ones_it_skipped(project, monkeypatch, capsys):
    with_data = IRIS.model_copy(update={"name": "demo-iris"})
    without = IRIS.model_copy(update={"name": "no-generator", "demo_data": None})
    declare_only(monkeypatch, with_data, without)
    assert main(["demo"]) == ExitCode.PASSED
    out = capsys.readouterr().out
    assert "== run demo-iris: PASSED" in out
    assert "== skipped no-generator (tests): names no demo-data generator (demo_data in its declaration)" in out


def test_demo_with_nothing_to_run_is_a_usage_error(project, monkeypatch, capsys):
    declare_only(monkeypatch, IRIS.model_copy(update={"name": "no-generator", "demo_data": None}))
    assert main(["demo"]) == ExitCode.USAGE
    assert "== skipped no-generator" in capsys.readouterr().out
