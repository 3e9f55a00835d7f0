"""One sensor per trigger kind for a code location's models, evaluated as the daemon would.

The location's sensor must decide exactly what each model's own sensor decides: the same run requests
(same job, tags and decision id), ledger records and cursors, for every model, in one evaluation.
"""

from __future__ import annotations

import json
import shutil
from datetime import timedelta

import dagster as dg
import pytest

from ml_platform.defs import location_sensors
from ml_platform.defs.decisions import decisions_definitions
from ml_platform.defs.factory import model_definitions
from ml_platform.defs.location_sensors import ModelTrigger, judge_models, one_sensor_per_kind
from ml_platform.defs.release import release_definitions
from ml_platform.defs.scoring import scoring_definitions
from ml_platform.defs.triggers import trigger_definitions
from ml_platform.keys import ModelKeys, location_sensor
from ml_platform.rules.spec import Release
from ml_platform.settings import PlatformPaths
from ml_platform.stores.ledger import Ledger
from ml_platform_tests.harness import unique_spec
from ml_platform_tests.sensors.conftest import generate  # the conversion demo data, wherever it is declared


def location(watch, *specs) -> dg.Definitions:
    """A code location serving ``specs`` on the watcher's home, with one sensor per kind."""
    platform_resources = watch.definitions().resources
    return one_sensor_per_kind(
        dg.Definitions.merge(
            *(model_definitions(spec) for spec in specs),
            *(decisions_definitions(spec) for spec in specs),
            *(trigger_definitions(spec) for spec in specs),
            *(scoring_definitions(spec) for spec in specs),
            *(release_definitions(spec) for spec in specs),
            dg.Definitions(resources=platform_resources),
        )
    )


def tick(defs: dg.Definitions, instance, kind: str, cursor: str | None = None):
    """One evaluation of the location's ``kind`` sensor, as the daemon runs it (the instance's reference lets
    Dagster resolve run requests for the dynamic partitions the same tick adds)."""
    name = location_sensor(kind)
    with dg.build_sensor_context(
        instance=instance,
        instance_ref=instance.get_ref(),
        cursor=cursor,
        definitions=defs,
        sensor_name=name,
        resources=defs.resources,
    ) as context:
        return defs.resolve_sensor_def(name).evaluate_tick(context)


@pytest.fixture
def two_models(watcher, monkeypatch):
    """The trained champion's model and a second model of the same location that has no champion yet.

    The tick's time budget is lifted: these tests expect both models judged in one tick, and on a loaded
    machine the first model's judgment alone can outlast the 20 s budget (its own test sets it below).
    """
    monkeypatch.setattr(location_sensors, "TICK_BUDGET_S", 3600.0)
    watch = watcher(cooldown=timedelta(0), new_data_rows=500)
    return watch, unique_spec(watch.spec)


def test_a_location_serves_each_trigger_kind_as_one_sensor_over_every_model(two_models):
    watch, other = two_models
    defs = location(watch, watch.spec, other)

    names = {sensor.name for sensor in defs.sensors}
    assert names == {location_sensor(kind) for kind in ("drift", "new_data", "scoring", "performance", "release")}
    drift = defs.get_sensor_def(location_sensor("drift"))
    assert sorted(target.job_name for target in drift.targets) == sorted(
        ModelKeys(spec.name).lifecycle_job for spec in (watch.spec, other)
    )
    repository = defs.get_repository_def()
    assert repository.get_sensor_def(location_sensor("scoring")).asset_selection is not None
    release = repository.get_sensor_def(location_sensor("release"))  # it only records: no job, no asset
    assert release.targets == [] and release.asset_selection is None


def test_the_location_sensor_decides_for_each_model_what_its_own_sensor_decides(two_models, tmp_path):
    watch, other = two_models
    watch.land(generate(1000, seed=2, campaign=True), "campaign.csv")
    twin_home = tmp_path / "twin"
    shutil.copytree(watch.paths.home, twin_home)  # the same files, down to their modification times
    twin = type(watch)(watch.spec, PlatformPaths(twin_home), watch.instance, watch.store)

    own = twin.tick("drift_sensor")
    result = tick(location(watch, watch.spec, other), watch.instance, "drift")

    def requested(requests):  # the platform's own part of each request: everything but Dagster's sensor tag
        ours = [{k: v for k, v in r.tags.items() if k != "dagster/sensor_name"} for r in requests]
        return [(r.run_key, r.job_name, tags) for r, tags in zip(requests, ours, strict=True)]

    assert requested(result.run_requests) == requested(own.run_requests)  # same run key, job, tags, decision
    (request,) = result.run_requests
    assert request.job_name == ModelKeys(watch.spec.name).lifecycle_job
    assert request.tags["dagster/sensor_name"] == location_sensor("drift")
    cursor = json.loads(result.cursor)
    assert cursor["models"][watch.spec.name] == own.cursor
    assert cursor["resume_after"] is None
    [record] = watch.ledger.query(watch.spec.name)
    assert record.decision == "retrain" and [r.decision for r in twin.ledger.query(watch.spec.name)] == ["retrain"]
    assert [event.asset_key for event in result.asset_events] == [ModelKeys(watch.spec.name).decisions]
    assert Ledger.for_home(watch.paths.home).query(other.name) == []

    again = tick(location(watch, watch.spec, other), watch.instance, "drift", result.cursor)
    assert again.run_requests == []
    assert f"{watch.spec.name}: no new batch since the last judgment" in again.skip_message
    assert f"{other.name}: " in again.skip_message and "no champion" in again.skip_message
    assert len(watch.ledger.query(watch.spec.name)) == 1


def test_a_scoring_batch_of_one_model_is_requested_for_that_models_partition(two_models):
    watch, other = two_models
    folder = watch.paths.scoring(watch.spec.name)
    folder.mkdir(parents=True)
    generate(50, seed=7).drop(columns=["converted"]).to_csv(folder / "batch-1.csv", index=False)

    served = watch.spec.model_copy(update={"release": Release(deployed_alias="champion")})  # scored at once
    result = tick(location(watch, served, other), watch.instance, "scoring")

    (request,) = result.run_requests
    assert request.partition_key == "batch-1.csv"
    assert request.asset_selection == [ModelKeys(watch.spec.name).batch_predictions]
    (added,) = result.dynamic_partitions_requests
    assert added.partitions_def_name == ModelKeys(watch.spec.name).scoring_partitions
    assert added.partition_keys == ["batch-1.csv"]


def _triggers(spec, *judges) -> list[ModelTrigger]:
    return [
        ModelTrigger(spec.model_copy(update={"name": f"m{index}"}), "drift", judge)
        for index, judge in enumerate(judges)
    ]


def _judge_once(calls: list[str]):
    def judge(spec, paths, store, instance, cursor):
        calls.append(spec.name)
        return dg.SensorResult(skip_reason=dg.SkipReason("nothing new"), cursor=f"{spec.name}-seen")

    return judge


def test_a_model_whose_judge_raises_keeps_its_cursor_and_the_others_are_judged(champion, instance):
    calls: list[str] = []

    def broken(spec, paths, store, instance, cursor):
        raise OSError("the landing folder is unreadable")

    triggers = _triggers(champion.spec, _judge_once(calls), broken, _judge_once(calls))
    context = dg.build_sensor_context(instance=instance, cursor=json.dumps({"models": {"m1": "m1-before"}}))
    result = judge_models(triggers, context, paths=None, store=None)

    assert calls == ["m0", "m2"]
    assert json.loads(result.cursor)["models"] == {"m0": "m0-seen", "m1": "m1-before", "m2": "m2-seen"}
    assert "m1: FAILED (OSError: the landing folder is unreadable)" in result.skip_reason.skip_message


def test_a_tick_over_its_time_budget_leaves_the_rest_for_the_next_tick_in_turn(champion, instance, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(location_sensors, "TICK_BUDGET_S", -1.0)  # every tick stops after its first model
    triggers = _triggers(champion.spec, *[_judge_once(calls)] * 3)
    cursor = None
    for _ in range(4):
        result = judge_models(triggers, dg.build_sensor_context(instance=instance, cursor=cursor), None, None)
        cursor = result.cursor
        assert "2 model(s) wait for the next tick (time budget" in result.skip_reason.skip_message

    assert calls == ["m0", "m1", "m2", "m0"]
    assert json.loads(cursor)["resume_after"] == "m0"
