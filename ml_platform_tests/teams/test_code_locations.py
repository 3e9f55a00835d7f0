"""Each team's code location loads the way Dagster's tools load it: `dagster definitions validate -w` and `dg`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ml_platform.settings import PROJECT_ROOT

BIN = Path(sys.executable).parent


def run(*command: str, cwd: Path) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "DAGSTER_HOME"}
    return subprocess.run(command, cwd=cwd, env=environment, capture_output=True, text=True, timeout=600)


def test_every_code_location_of_the_workspace_validates():
    validated = run(str(BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml", cwd=PROJECT_ROOT)
    output = validated.stdout + validated.stderr
    assert validated.returncode == 0, output[-2000:]
    for location in ("botany", "growth"):
        assert f"Validation successful for code location {location}." in output


@pytest.mark.parametrize(("team", "model"), [("botany", "iris"), ("growth", "conversion")])
def test_dg_checks_and_lists_a_team_project(team, model):
    project = PROJECT_ROOT / "teams" / team
    checked = run(str(BIN / "dg"), "check", "defs", cwd=project)
    assert checked.returncode == 0, (checked.stdout + checked.stderr)[-2000:]
    assert "All definitions loaded successfully." in checked.stdout + checked.stderr
    listed = run(str(BIN / "dg"), "list", "defs", "--json", cwd=project)
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert f'"{model}/registry_entry"' in listed.stdout or f"{model}/registry_entry" in listed.stdout
    assert f"{model}_lifecycle" in listed.stdout


@pytest.mark.parametrize("team", ["botany", "growth"])
def test_building_a_team_location_imports_no_heavy_library(team):
    from ml_platform_tests.unit.test_imports import imported_after

    loaded = imported_after(f"import {team}.definitions\n{team}.definitions.defs()")
    assert loaded == [], f"building {team}'s definitions imported {loaded}: keep them inside the step bodies"
