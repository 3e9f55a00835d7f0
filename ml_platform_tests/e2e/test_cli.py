"""The ``ml-platform`` command as a user types it, on a fresh platform home."""

import os
import re
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
from ml_platform_tests.harness import declare_only
from ml_platform_tests.models import CONVERSION, IRIS

pytestmark = pytest.mark.e2e


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("ML_PLATFORM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home" / "dagster"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    return tmp_path / "home"


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo-data", "run", "explain", "demo", "logs", "rerun", "dev", "mlflow-ui"):
        assert command in out


def test_run_promotes_then_stops_a_partial_export_and_explain_traces_the_champion(home, capsys):
    assert main(["demo-data", "conversion", "--rows", "3000", "--seed", "1"]) == ExitCode.PASSED
    assert (home / "landing" / "conversion" / "demo-seed1.csv").is_file()

    assert main(["run", "conversion"]) == ExitCode.PASSED
    out = capsys.readouterr().out
    assert "[pass] conversion/dataset_snapshot:has_every_segment" in out
    assert "version 1 is now champion (first champion)" in out

    assert main(["explain", "conversion"]) == ExitCode.PASSED
    explained = capsys.readouterr().out
    assert "conversion version 1  aliases: champion" in explained
    assert "demo-seed1.csv  sha256 " in explained
    assert "passed  dataset_snapshot:has_every_segment" in explained

    from growth.conversion.demo_data import generate

    (home / "landing" / "conversion" / "demo-seed1.csv").unlink()
    generate(3000, seed=2, regions=("us-east",), days=2).to_csv(
        home / "landing" / "conversion" / "partial.csv", index=False
    )
    assert main(["run", "conversion"]) == ExitCode.GATE_FAILED
    out = capsys.readouterr().out
    assert "[FAIL] conversion/dataset_snapshot:has_every_segment" in out
    assert "champion: version 1" in out


def test_run_with_no_landing_files_exits_as_a_gate_failure_naming_the_folder(home, capsys):
    assert main(["run", "iris"]) == ExitCode.GATE_FAILED
    out = capsys.readouterr().out
    assert "no landing files in" in out and "ml-platform demo-data iris" in out


@pytest.mark.parametrize("name", ["../etc", "Iris", "iris/../../x", "unknown-model"])
def test_bad_model_names_are_usage_errors(home, capsys, name):
    assert main(["run", name]) == ExitCode.USAGE
    captured = capsys.readouterr()
    assert "is not allowed" in captured.err or "no model named" in captured.err
    assert "== run " in captured.out and "USAGE_ERROR" in captured.out


def test_demo_data_writes_atomically_and_replaces_its_own_file(home):
    first = write_demo_data("iris", seed=3)
    second = write_demo_data("iris", seed=3)
    assert first == second and first.is_file()
    assert [p.name for p in first.parent.iterdir()] == ["demo-seed3.csv"]


def test_an_unreachable_postgres_is_an_infrastructure_error_with_no_password_echoed(home, monkeypatch, capsys):
    monkeypatch.setenv("ML_PLATFORM_POSTGRES_URL", "postgresql://mlp:s3cr3t-pw@127.0.0.1:1/nowhere")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert main(["run", "iris"]) == ExitCode.INFRASTRUCTURE
    captured = capsys.readouterr()
    assert "infrastructure error, worth a retry" in captured.err
    assert "Connection refused" in captured.err
    assert "s3cr3t-pw" not in captured.err + captured.out


def _cli(home: Path, *argv: str, cwd: Path) -> subprocess.CompletedProcess:
    """``ml-platform <argv>`` in a process of its own, as a user's terminal shows it (stdout and stderr)."""
    env = {**os.environ, "ML_PLATFORM_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "ML_PLATFORM_ARTIFACT_ROOT", "ML_PLATFORM_POSTGRES_URL"):
        env.pop(name, None)
    command = [sys.executable, "-m", "ml_platform.cli", *argv]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=cwd)


def test_a_refused_run_shows_the_gate_summary_and_where_the_full_log_is_not_stack_traces(home, tmp_path, capsys):
    landing = home / "landing" / "iris"
    write_demo_data("iris", seed=0)
    renamed = landing / "demo-seed0.csv"
    renamed.write_text(renamed.read_text().replace("sepal_length", "sepal_len", 1))  # a different header

    refused = _cli(home, "run", "iris", cwd=tmp_path)
    shown = refused.stdout + refused.stderr
    assert refused.returncode == ExitCode.GATE_FAILED, shown
    assert "[FAIL] iris/dataset_snapshot:schema_holds" in refused.stdout
    assert "observed missing ['sepal_length']" in refused.stdout
    assert "Traceback" not in shown and "Stack Trace" not in shown
    run_id = re.search(r"dagster_run_id: (\S+)", refused.stdout).group(1)
    assert f"full_log: ml-platform logs {run_id}" in refused.stdout

    capsys.readouterr()
    assert main(["logs", run_id]) == ExitCode.PASSED  # the full log is where the summary says
    full_log = capsys.readouterr().out
    assert "DagsterAssetCheckFailedError" in full_log and "Stack Trace" in full_log

    renamed.unlink()
    (landing / "export.xlsx").write_bytes(b"PK\x03\x04 a spreadsheet, not a landing format")
    refused = _cli(home, "run", "iris", cwd=tmp_path)
    shown = refused.stdout + refused.stderr
    assert refused.returncode == ExitCode.GATE_FAILED, shown
    assert "[stop] iris__dataset_snapshot:" in refused.stdout
    assert "['export.xlsx']" in refused.stdout and "not a supported landing format" in refused.stdout
    assert "Traceback" not in shown and "Stack Trace" not in shown
    assert "full_log: ml-platform logs " in refused.stdout


def test_logs_of_an_unknown_run_is_a_usage_error(home, capsys):
    assert main(["logs", "no-such-run"]) == ExitCode.USAGE
    assert "no Dagster run 'no-such-run'" in capsys.readouterr().err


def test_demo_prints_the_home_it_used_not_the_working_folder(home, tmp_path, monkeypatch, capsys):
    smaller = CONVERSION.demo_data.model_copy(update={"rows": 3000})  # the demo's graph on less data
    declare_only(monkeypatch, IRIS, CONVERSION.model_copy(update={"demo_data": smaller}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["demo"]) == ExitCode.PASSED
    out = capsys.readouterr().out
    assert out.rstrip().endswith(f"state: {home.resolve()}")
    assert "== run iris: PASSED" in out and "== run conversion: PASSED" in out
    assert out.count("release: first release: version 1 is production") == 2  # each model servable at once
    assert not (elsewhere / ".ml_platform").exists()


@pytest.mark.parametrize(("command", "tool"), [("dev", "dagster"), ("mlflow-ui", "mlflow")])
def test_a_missing_tool_is_a_one_line_usage_error(home, tmp_path, monkeypatch, capsys, command, tool):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bare" / "bin" / "python"))  # an env without the tool
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main([command]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert f"ml-platform: error: {tool!r} is not installed beside" in err and "nor on PATH" in err
    assert not home.exists()  # refused before touching the platform home


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_mlflow_ui_starts_its_environments_mlflow_without_that_bin_on_path(home, tmp_path):
    """``.venv/bin/ml-platform mlflow-ui`` from a shell whose PATH lacks .venv/bin (the README's form)."""
    port = _free_port()
    env = {**os.environ, "PATH": "/usr/bin:/bin", "ML_PLATFORM_HOME": str(home)}
    log = (tmp_path / "mlflow-ui.log").open("w")
    command = [str(Path(sys.executable).parent / "ml-platform"), "mlflow-ui", "--port", str(port)]
    process = subprocess.Popen(
        command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 300  # generous: the machine may be busy; this is no timing test
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "mlflow-ui.log").read_text()[-3000:]
            try:
                if requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(1)
        else:
            pytest.fail("mlflow ui did not answer in 300 s:\n" + (tmp_path / "mlflow-ui.log").read_text()[-3000:])
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        log.close()
    assert (home / "mlflow.db").is_file()  # the UI served this platform home's store
