"""The whole graph on a temporary Dagster instance and a temporary MLflow store, as a team lives it."""

import pytest
from growth.conversion.demo_data import generate

from ml_platform.stores.registry import current_champion
from ml_platform.stores.snapshot import list_landing_files
from ml_platform_tests.harness import check_results, failed_checks, failure_messages, materialized

pytestmark = pytest.mark.e2e

FAST = {"max_iter": 60, "learning_rate": 0.15, "max_leaf_nodes": 31, "early_stopping": False, "random_state": 42}
WEAK = {"max_iter": 5, "max_depth": 1, "learning_rate": 0.5, "early_stopping": False, "random_state": 0}


def test_normal_data_promotes_then_a_partial_export_and_a_weaker_candidate_leave_the_champion_alone(make_platform):
    platform = make_platform(params=FAST)
    snapshots = platform.paths.snapshots(platform.spec.name)

    # 1. a normal export: every gate passes, version 1 becomes champion
    platform.land(generate(3000, seed=1))
    first = platform.materialize()
    assert first.success, failure_messages(first)
    assert materialized(first) == ["candidate_model", "dataset_snapshot", "registry_entry", "validated_features"]
    champion = current_champion(platform.store, platform.spec.name)
    assert champion.version == "1"
    assert champion.tags["ml_platform.snapshot_id"] == next(iter(snapshots.iterdir())).name

    # 2. a partial export (one region, two days): the segment gate stops the graph at the snapshot
    platform.land(generate(3000, seed=2, regions=("us-east",), days=2))
    partial = platform.materialize()
    assert not partial.success
    assert failed_checks(partial) == ["has_every_segment"]
    description = check_results(partial)["has_every_segment"].description
    assert "region 'eu-west' share: observed 0.0% (0 rows), required >= 5.0% of 3,000" in description
    assert materialized(partial) == ["dataset_snapshot"]
    assert current_champion(platform.store, platform.spec.name) == champion

    # 3. a weaker candidate on complete data: the champion gate stops it before the registry
    platform.spec = platform.spec.model_copy(update={"params": WEAK})
    platform.land(generate(3000, seed=3))
    weaker = platform.materialize()
    assert not weaker.success
    assert failed_checks(weaker) == ["no_worse_than_champion"]
    assert "registry_entry" not in materialized(weaker)
    assert current_champion(platform.store, platform.spec.name) == champion

    # the evidence is all still there: three complete snapshots, no partial one, one registered version
    assert sorted(p.name.startswith(".tmp") for p in snapshots.iterdir()) == [False, False, False]
    assert [str(v.version) for v in platform.store.client().search_model_versions(f"name='{platform.spec.name}'")] == [
        "1"
    ]
    assert len(list_landing_files(platform.landing)) == 1


def test_the_same_landing_data_gives_the_same_snapshot_and_no_second_copy(conversion):
    conversion.land(generate(2000, seed=5))
    first = conversion.materialize("dataset_snapshot")
    second = conversion.materialize("dataset_snapshot")

    def snapshot_metadata(result):
        event = result.get_asset_materialization_events()[0]
        return event.step_materialization_data.materialization.metadata

    assert snapshot_metadata(first)["snapshot_id"].value == snapshot_metadata(second)["snapshot_id"].value
    assert snapshot_metadata(second)["reused"].value is True
    assert len(list(conversion.paths.snapshots(conversion.spec.name).iterdir())) == 1


def test_iris_reaches_champion_with_the_course_modules_thresholds(iris):
    from botany.iris.demo_data import generate as iris_data

    iris.land(iris_data())
    result = iris.materialize()
    assert result.success, failure_messages(result)
    minimums = check_results(result)["meets_absolute_minimums"]
    assert minimums.passed and ">= 0.9" in minimums.metadata["gate"].value
    assert current_champion(iris.store, iris.spec.name).version == "1"
