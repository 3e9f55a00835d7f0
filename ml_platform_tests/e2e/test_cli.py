"""The ``ml-platform`` command as a user types it, on a fresh platform home."""

import pytest

from ml_platform.cli import EXIT_GATE_FAILED, EXIT_INFRASTRUCTURE, EXIT_PASSED, EXIT_USAGE, main
from ml_platform.demo import write_demo_data

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
    for command in ("demo-data", "run", "explain", "demo", "dev", "mlflow-ui"):
        assert command in out


def test_run_promotes_then_stops_a_partial_export_and_explain_traces_the_champion(home, capsys):
    assert main(["demo-data", "conversion", "--rows", "3000", "--seed", "1"]) == EXIT_PASSED
    assert (home / "landing" / "conversion" / "demo-seed1.csv").is_file()

    assert main(["run", "conversion"]) == EXIT_PASSED
    out = capsys.readouterr().out
    assert "[pass] conversion/dataset_snapshot:has_every_segment" in out
    assert "version 1 is now champion (first champion)" in out

    assert main(["explain", "conversion"]) == EXIT_PASSED
    explained = capsys.readouterr().out
    assert "conversion version 1  aliases: champion" in explained
    assert "demo-seed1.csv  sha256 " in explained
    assert "passed  dataset_snapshot:has_every_segment" in explained

    from ml_platform.models.conversion.demo_data import generate

    (home / "landing" / "conversion" / "demo-seed1.csv").unlink()
    generate(3000, seed=2, regions=("us-east",), days=2).to_csv(
        home / "landing" / "conversion" / "partial.csv", index=False
    )
    assert main(["run", "conversion"]) == EXIT_GATE_FAILED
    out = capsys.readouterr().out
    assert "[FAIL] conversion/dataset_snapshot:has_every_segment" in out
    assert "champion: version 1" in out


def test_run_with_no_landing_files_exits_as_a_gate_failure_naming_the_folder(home, capsys):
    assert main(["run", "iris"]) == EXIT_GATE_FAILED
    out = capsys.readouterr().out
    assert "no landing files in" in out and "ml-platform demo-data iris" in out


@pytest.mark.parametrize("name", ["../etc", "Iris", "iris/../../x", "unknown-model"])
def test_bad_model_names_are_usage_errors(home, capsys, name):
    assert main(["run", name]) == EXIT_USAGE
    assert "ml-platform: error:" in capsys.readouterr().err


def test_demo_data_writes_atomically_and_replaces_its_own_file(home):
    first = write_demo_data("iris", seed=3)
    second = write_demo_data("iris", seed=3)
    assert first == second and first.is_file()
    assert [p.name for p in first.parent.iterdir()] == ["demo-seed3.csv"]


def test_an_unreachable_postgres_is_an_infrastructure_error_with_no_password_echoed(home, monkeypatch, capsys):
    monkeypatch.setenv("ML_PLATFORM_POSTGRES_URL", "postgresql://mlp:s3cr3t-pw@127.0.0.1:1/nowhere")
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert main(["run", "iris"]) == EXIT_INFRASTRUCTURE
    captured = capsys.readouterr()
    assert "infrastructure error, nothing was run or written" in captured.err
    assert "Connection refused" in captured.err
    assert "s3cr3t-pw" not in captured.err + captured.out
