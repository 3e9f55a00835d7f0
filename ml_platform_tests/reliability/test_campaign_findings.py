"""What the fault-injection campaign (``bench/bench_campaign.py``) found, each as a regression test.

Racing runs: two ``ml-platform run iris`` at once on PostgreSQL. The second run's ``dataset_snapshot``
step planned its checks while the first run's ``validated_features`` asked whether the snapshot's
gates had passed; the newest check execution was the second run's, still planned, so the first run
refused to continue ("has no completed evaluation") although its own snapshot had passed every gate.
A planned execution has no verdict: the guard now judges the newest *completed* one.
"""

from __future__ import annotations

import dagster as dg
import pytest
from botany.iris.demo_data import generate as iris_rows

from ml_platform.defs.gating import unpassed_gates, upstream_gates
from ml_platform.rules import contracts
from ml_platform.settings import PlatformPaths
from ml_platform_tests.harness import Platform, unique_spec
from ml_platform_tests.models import IRIS

pytestmark = pytest.mark.reliability


def test_a_snapshot_attempt_stopped_before_its_checks_does_not_hide_the_completed_gates(tmp_path, mlflow_store):
    """The completed, passing evaluation on this snapshot counts; one on another snapshot still does not."""
    home, dagster_home = tmp_path / "home", tmp_path / "dagster"
    home.mkdir()
    dagster_home.mkdir()
    with dg.instance_for_test(temp_dir=str(dagster_home)) as instance:
        platform = Platform(unique_spec(IRIS), PlatformPaths(home), instance, mlflow_store)
        platform.land(iris_rows())
        first = platform.materialize("dataset_snapshot")
        assert first.success
        (event,) = first.get_asset_materialization_events()
        snapshot_id = event.step_materialization_data.materialization.metadata["snapshot_id"].value

        for landed in platform.landing.iterdir():  # the next attempt fails in the step, before its checks
            landed.unlink()
        second = platform.materialize("dataset_snapshot")
        assert not second.success
        keys = [dg.AssetCheckKey(platform.keys.snapshot, name) for name in contracts.snapshot_gate_names(platform.spec)]
        latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
        assert {record.run_id for record in latest.values()} == {second.run_id}, "the planned attempt is the newest"
        assert {record.status.value for record in latest.values()} == {"PLANNED"}

        assert unpassed_gates(instance, upstream_gates(platform.spec, {"snapshot_id": snapshot_id})) == []
        other = upstream_gates(platform.spec, {"snapshot_id": "0" * 64})
        problems = unpassed_gates(instance, other)
        assert len(problems) == len(keys)
        assert all(f"last evaluated on snapshot_id {snapshot_id[:12]}" in problem for problem in problems)


def test_a_gate_is_judged_on_its_own_subject_when_a_racing_run_evaluated_another_since(tmp_path, mlflow_store):
    """Two racing runs each train a candidate; each run's guard judges the checks of *its* candidate.

    Found by the campaign (race, 0.2 s apart): both runs' ``registry_entry`` refused with
    "``candidate_model:…`` was last evaluated on mlflow_run_id <the other run's>…": the guard read the newest
    completed evaluation of the check, whatever it was about. It now reads the newest evaluation *about its
    subject*; a newer evaluation of another subject neither passes nor hides it, and a failed one still refuses.
    """
    home, dagster_home = tmp_path / "home", tmp_path / "dagster"
    home.mkdir()
    dagster_home.mkdir()
    with dg.instance_for_test(temp_dir=str(dagster_home)) as instance:
        platform = Platform(unique_spec(IRIS), PlatformPaths(home), instance, mlflow_store)

        def snapshot_of(rows) -> str:
            for landed in platform.landing.glob("*"):
                landed.unlink()
            platform.land(rows)
            result = platform.materialize("dataset_snapshot")
            (event,) = result.get_asset_materialization_events()
            return event.step_materialization_data.materialization.metadata["snapshot_id"].value

        too_few = snapshot_of(iris_rows().head(IRIS.min_rows - 1))  # has_enough_rows fails on it
        first = snapshot_of(iris_rows())
        second = snapshot_of(iris_rows(rows=300, seed=1))
        assert len({too_few, first, second}) == 3

        assert unpassed_gates(instance, upstream_gates(platform.spec, {"snapshot_id": second})) == []
        assert unpassed_gates(instance, upstream_gates(platform.spec, {"snapshot_id": first})) == []
        failed = unpassed_gates(instance, upstream_gates(platform.spec, {"snapshot_id": too_few}))
        assert f"{platform.keys.snapshot.to_user_string()}:has_enough_rows FAILED" in "\n".join(failed)
        assert failed and all(" FAILED: " in problem for problem in failed)
        never = unpassed_gates(instance, upstream_gates(platform.spec, {"snapshot_id": "0" * 64}))
        assert never and all(f"last evaluated on snapshot_id {second[:12]}" in problem for problem in never)
