"""The process running a training step is killed (SIGKILL), and the run is re-executed from failure.

A real ``dagster.execute_job`` runs the iris lifecycle job in a child process on a persistent instance
(a temporary ``DAGSTER_HOME``, SQLite). The model's pipeline reference is a test pipeline that holds
the ``candidate_model`` step while it fits (it waits for a release file), so the kill lands mid-step
every time, without a hook in the platform. SIGKILL leaves the run STARTED, as a lost pod or an OOM
kill does; the test then marks it failed as Dagster's run monitoring would, and re-executes it from
failure with ``ReexecutionOptions.from_failure``, as the UI's "Re-execute from failure" does.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import dagster as dg
import pytest

from ml_platform.settings import PROJECT_ROOT, PlatformPaths
from ml_platform.stores.ledger import Ledger
from ml_platform.stores.registry import current_champion
from ml_platform_tests.harness import Platform, failure_messages, materialized, unique_spec
from ml_platform_tests.reliability.conftest import (
    HOLD_VARIABLE,
    MODEL_VARIABLE,
    assert_promises,
    file_hashes,
    held_iris_spec,
    lifecycle_job,
    registered_versions,
    stored_ids,
)

pytestmark = pytest.mark.reliability

WORKER = """
import dagster as dg

from ml_platform_tests.reliability.conftest import lifecycle_job

with dg.DagsterInstance.get() as instance:
    dg.execute_job(dg.reconstructable(lifecycle_job), instance=instance)
"""


def kill_mid_training(tmp_path, mlflow_store, iris_frame) -> tuple:
    """A lifecycle run of a held iris spec, SIGKILLed while ``candidate_model`` fits: its spec, paths, the
    environment it ran in and the landing folder's hashes."""
    from ml_platform_tests.models import IRIS

    model = unique_spec(IRIS).name
    home, dagster_home, hold = tmp_path / "home", tmp_path / "dagster", tmp_path / "hold"
    for folder in (home, dagster_home, hold):
        folder.mkdir()
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    environment = {
        "DAGSTER_HOME": str(dagster_home),
        "ML_PLATFORM_HOME": str(home),
        "MLFLOW_TRACKING_URI": mlflow_store.tracking_uri,
        "MLFLOW_REGISTRY_URI": mlflow_store.registry_uri,
        "ML_PLATFORM_ARTIFACT_ROOT": mlflow_store.artifact_root,
        MODEL_VARIABLE: model,
    }
    paths = PlatformPaths(home)
    spec = held_iris_spec(model)
    Platform(spec, paths, None, mlflow_store).land(iris_frame)
    landing = file_hashes(spec.landing_path(home))

    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER],
        env={**os.environ, **environment, HOLD_VARIABLE: str(hold)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not (hold / "fitting").exists():
            assert worker.poll() is None, f"the worker exited before training: {worker.stderr.read()[-3000:]}"
            assert time.monotonic() < deadline, "the worker never reached candidate_model"
            time.sleep(0.1)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    assert worker.returncode == -signal.SIGKILL
    return spec, paths, environment, landing


def test_a_worker_killed_mid_training_is_reexecuted_from_failure_without_duplicates(
    tmp_path, mlflow_store, iris_frame, monkeypatch
):
    """Re-execution reuses the snapshot and feature frame of the killed run and registers one version.

    Re-executing from failure a second time (an operator clicking twice) registers nothing new: the
    candidate is recognized by its fingerprint.
    """
    spec, paths, environment, landing = kill_mid_training(tmp_path, mlflow_store, iris_frame)
    model, home = spec.name, paths.home

    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.get() as instance:
        (killed,) = instance.get_runs()
        assert killed.status == dg.DagsterRunStatus.STARTED, "SIGKILL leaves the run looking alive"
        instance.report_run_failed(killed)  # what run monitoring does for a run whose worker is gone
        snapshot_id = _metadata(instance, spec, "dataset_snapshot")["snapshot_id"]
        features_id = _metadata(instance, spec, "validated_features")["features_id"]

        job = dg.reconstructable(lifecycle_job)
        result = dg.execute_job(
            job, instance, reexecution_options=dg.ReexecutionOptions.from_failure(killed.run_id, instance)
        )
        assert result.success, failure_messages(result)
        assert materialized(result) == ["candidate_model", "registry_entry"], "a finished step was run again"
        again = dg.execute_job(
            job, instance, reexecution_options=dg.ReexecutionOptions.from_failure(killed.run_id, instance)
        )
        assert again.success, failure_messages(again)
        runs = instance.get_runs()

    assert len(runs) == 3 and {run.parent_run_id for run in runs[:2]} == {killed.run_id}
    assert stored_ids(paths.snapshots(model)) == [snapshot_id], "the snapshot was taken again"
    assert stored_ids(paths.features(model)) == [features_id]
    versions = registered_versions(mlflow_store, model)
    assert list(versions) == ["1"], f"expected one registered version, found {sorted(versions)}"
    assert versions["1"]["ml_platform.snapshot_id"] == snapshot_id
    assert versions["1"]["ml_platform.dagster_run_id"] == runs[1].run_id
    assert current_champion(mlflow_store, model).version == "1"
    promotions = Ledger.for_home(home).query(model, ["promoted"])
    assert [record.version for record in promotions] == ["1"]
    assert_promises(Platform(spec, paths, None, mlflow_store), landing)


def _metadata(instance: dg.DagsterInstance, spec, asset: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey([spec.name, asset]))
    return {name: value.value for name, value in event.asset_materialization.metadata.items()}


def test_ml_platform_rerun_reexecutes_a_failed_run_from_its_failed_step_and_refuses_what_it_cannot(
    tmp_path, mlflow_store, iris_frame, monkeypatch, capsys
):
    from ml_platform.cli import main
    from ml_platform.cli.exit_codes import ExitCode
    from ml_platform_tests.harness import declare_only

    spec, paths, environment, _ = kill_mid_training(tmp_path, mlflow_store, iris_frame)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    declare_only(monkeypatch, spec)  # the CLI finds the test's model by name
    with dg.DagsterInstance.get() as instance:
        (killed,) = instance.get_runs()
    assert main(["rerun", killed.run_id]) == ExitCode.USAGE  # still STARTED: nothing failed to start from
    assert "the run is STARTED, not FAILURE" in capsys.readouterr().err
    with dg.DagsterInstance.get() as instance:
        instance.report_run_failed(killed)  # what run monitoring does for a run whose worker is gone

    assert main(["rerun", killed.run_id]) == ExitCode.PASSED
    out = capsys.readouterr().out
    assert f"== rerun {spec.name}: PASSED" in out and f"reexecuted: {killed.run_id}" in out, out
    with dg.DagsterInstance.get() as instance:
        child = next(run for run in instance.get_runs() if run.parent_run_id == killed.run_id)
        steps = sorted(
            record.event_log_entry.dagster_event.step_key
            for record in instance.get_records_for_run(child.run_id).records
            if record.event_log_entry.dagster_event is not None
            and record.event_log_entry.dagster_event.event_type_value == "STEP_SUCCESS"
        )
    assert child.status == dg.DagsterRunStatus.SUCCESS and child.tags["ml_platform/model"] == spec.name
    assert not any("dataset_snapshot" in step or "validated_features" in step for step in steps), steps
    assert current_champion(mlflow_store, spec.name).version == "1"

    assert main(["rerun", child.run_id]) == ExitCode.USAGE
    assert "the run is SUCCESS, not FAILURE" in capsys.readouterr().err
    assert main(["rerun", "0" * 36]) == ExitCode.USAGE
    assert "no run with that id" in capsys.readouterr().err
