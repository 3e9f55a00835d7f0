"""The retraining triggers, evaluated as the daemon would, on a real instance, registry and ledger."""

import json
import os
from datetime import UTC, datetime, timedelta

import dagster as dg
from growth.conversion.demo_data import generate

from ml_platform.rules.spec import LandingLimits


def observed(result) -> list[dict]:
    return [{k: v.value for k, v in event.metadata.items()} for event in result.asset_events or []]


def test_a_shifted_batch_requests_a_candidate_run_with_its_scores_and_is_judged_once(watcher):
    watch = watcher(cooldown=timedelta(0))
    watch.land(generate(1000, seed=2, campaign=True), "campaign.csv")

    result = watch.tick("drift_sensor")
    assert result.skip_message is None
    (request,) = result.run_requests
    assert request.job_name == f"{watch.spec.dagster_name}_lifecycle"
    assert request.tags["ml_platform/trigger"] == "drift"
    assert set(request.tags["ml_platform/drifted"].split(",")) == {"region", "price", "discount"}
    psi = json.loads(request.tags["ml_platform/psi"])
    assert psi["discount"] > 1.0 and psi["price"] > 0.2 and psi["pages_viewed"] < 0.1
    assert request.tags["ml_platform/champion"] == "1"

    (record,) = watch.ledger.query(watch.spec.name)
    assert record.decision == "retrain" and record.trigger == "drift"
    assert request.tags["ml_platform/decision_id"] == str(record.id)
    assert record.scores["psi"] == psi and record.evidence["batch_files"] == ["campaign.csv"]
    assert "3 of 7 monitored features drifted" in record.reason
    (event,) = observed(result)
    assert event["decision"] == "retrain" and event["ledger_id"] == record.id
    assert result.asset_events[0].asset_key == dg.AssetKey([watch.spec.name, "decisions"])

    again = watch.tick("drift_sensor", cursor=result.cursor)
    assert again.run_requests == [] and "no new batch since the last judgment" in again.skip_message
    assert len(watch.ledger.query(watch.spec.name)) == 1


def test_an_unshifted_batch_is_a_recorded_no_op_with_its_scores(watcher):
    watch = watcher()
    watch.land(generate(1000, seed=3), "ordinary.csv")

    result = watch.tick("drift_sensor")
    assert result.run_requests == []
    assert result.skip_message.startswith("no-op: 0 of 7 monitored features drifted")
    assert "price=0.0" in result.skip_message and "region=0.0" in result.skip_message
    (record,) = watch.ledger.query(watch.spec.name)
    assert record.decision == "no-op" and max(record.scores["psi"].values()) < 0.05
    assert "| price | numeric |" in record.evidence["table"]
    assert observed(result)[0]["decision"] == "no-op"
    assert "no new batch" in watch.tick("drift_sensor", cursor=result.cursor).skip_message


def test_a_small_batch_gives_one_no_decision_record_and_is_judged_when_more_rows_arrive(watcher):
    watch = watcher(min_batch_rows=500)
    watch.land(generate(200, seed=4, campaign=True), "small.csv")

    first = watch.tick("drift_sensor")
    assert first.run_requests == [] and "no decision: the batch has 200 rows, fewer than the minimum of 500" in (
        first.skip_message
    )
    assert [r.decision for r in watch.ledger.query(watch.spec.name)] == ["no-decision"]

    waiting = watch.tick("drift_sensor", cursor=first.cursor)
    assert "still below monitoring.min_batch_rows=500" in waiting.skip_message
    assert len(watch.ledger.query(watch.spec.name)) == 1  # the same small batch is not recorded twice

    watch.land(generate(400, seed=5, campaign=True), "more.csv")
    judged = watch.tick("drift_sensor", cursor=waiting.cursor or first.cursor)
    (request,) = judged.run_requests
    latest = watch.ledger.latest(watch.spec.name)
    assert latest.decision == "retrain" and latest.scores["batch_rows"] == 600
    assert latest.evidence["batch_files"] == ["more.csv", "small.csv"]


def test_the_cool_down_holds_back_a_second_request(watcher):
    watch = watcher(cooldown=timedelta(hours=1))
    watch.land(generate(1000, seed=2, campaign=True), "campaign.csv")
    first = watch.tick("drift_sensor")
    assert len(first.run_requests) == 1

    watch.land(generate(1000, seed=6, campaign=True), "campaign-2.csv")
    second = watch.tick("drift_sensor", cursor=first.cursor)
    assert second.run_requests == [] and second.skip_message.startswith("cool-down: the last retrain decision (drift")
    assert [r.decision for r in watch.ledger.query(watch.spec.name)] == ["retrain"]


def test_a_batch_without_a_monitored_column_is_a_no_decision_naming_it(watcher):
    watch = watcher()
    watch.land(generate(1000, seed=7).drop(columns="discount"), "broken.csv")
    result = watch.tick("drift_sensor")
    assert result.run_requests == []
    (record,) = watch.ledger.query(watch.spec.name)
    assert record.decision == "no-decision"
    assert "the batch lacks monitored column(s) ['discount']" in record.reason
    assert "no new batch" in watch.tick("drift_sensor", cursor=result.cursor).skip_message


def test_the_triggers_read_a_batch_with_the_spec_s_delimiter_as_the_snapshot_does(watcher):
    watch = watcher({"csv_delimiter": ";"}, cooldown=timedelta(0), new_data_rows=500)
    watch.land(generate(1000, seed=2, campaign=True), "campaign.csv", sep=";")

    drift = watch.tick("drift_sensor")
    (request,) = drift.run_requests
    assert set(request.tags["ml_platform/drifted"].split(",")) == {"region", "price", "discount"}
    (request,) = watch.tick("new_data_sensor").run_requests
    assert request.tags["ml_platform/new_rows"] == "1000"


def test_a_batch_over_the_spec_s_limits_is_a_no_decision_naming_the_limit_never_read_whole(watcher):
    watch = watcher({"limits": LandingLimits(max_rows=500)}, new_data_rows=500)
    watch.land(generate(1000, seed=2, campaign=True), "too-long.csv")

    drift = watch.tick("drift_sensor")
    assert drift.run_requests == []
    (record,) = watch.ledger.query(watch.spec.name)
    assert record.decision == "no-decision"
    assert "too-long.csv" in record.reason and "max_rows" in record.reason and "500" in record.reason
    new_data = watch.tick("new_data_sensor")
    assert new_data.run_requests == [] and "max_rows" in new_data.skip_message


def test_an_unsupported_landing_file_is_a_no_decision_named_once_not_nothing_landed(watcher):
    watch = watcher(new_data_rows=500, cooldown=timedelta(0))
    watch.land(generate(1000, seed=8), "day-1.csv")
    (watch.landing / "export.xlsx").write_bytes(b"PK\x03\x04 a spreadsheet")  # would refuse the whole snapshot
    (watch.landing / "_notes.xlsx").write_bytes(b"PK\x03\x04 kept there unread")

    first = watch.tick("new_data_sensor")
    assert first.run_requests == [] and first.skip_message.startswith("no decision: new data not judged: ")
    assert "landing file(s) ['export.xlsx']" in first.skip_message and "_notes" not in first.skip_message
    (record,) = watch.ledger.query(watch.spec.name)
    assert (record.decision, record.trigger) == ("no-decision", "new-data")
    assert record.reason.startswith(f"{watch.spec.name}/dataset_snapshot: new data not judged: landing file(s)")
    assert watch.tick("new_data_sensor", cursor=first.cursor).skip_message == first.skip_message
    assert len(watch.ledger.query(watch.spec.name)) == 1  # recorded once, however often it ticks

    (watch.landing / "export.xlsx").unlink()  # taken out, as the refusal says: judged again
    (request,) = watch.tick("new_data_sensor").run_requests
    assert request.tags["ml_platform/new_rows"] == "1000"


def test_the_new_data_trigger_counts_rows_the_champion_never_saw(watcher):
    watch = watcher(new_data_rows=1500, cooldown=timedelta(0))
    nothing = watch.tick("new_data_sensor")
    assert "nothing landed since champion v1's snapshot" in nothing.skip_message

    watch.land(generate(1000, seed=8), "day-1.csv")
    first = watch.tick("new_data_sensor")
    assert first.run_requests == [] and first.skip_message == (
        "no-op: 1,000 new rows since champion v1's snapshot, 1,500 needed"
    )
    assert "already evaluated" in watch.tick("new_data_sensor", cursor=first.cursor).skip_message

    watch.land(generate(1000, seed=9), "day-2.csv")
    second = watch.tick("new_data_sensor", cursor=first.cursor)
    (request,) = second.run_requests
    assert request.tags["ml_platform/trigger"] == "new-data" and request.tags["ml_platform/new_rows"] == "2000"
    assert [(r.decision, r.trigger) for r in watch.ledger.query(watch.spec.name)] == [
        ("no-op", "new-data"),
        ("retrain", "new-data"),
    ]


def test_the_new_data_sensor_reads_only_files_it_has_not_counted(watcher):
    """A pile of small files arriving one by one must not be re-read on every tick (bench/bench_load.py)."""
    watch = watcher(new_data_rows=1500, cooldown=timedelta(0))
    first_file = watch.land(generate(1000, seed=8), "day-1.csv")
    first = watch.tick("new_data_sensor")
    assert "1,000 new rows" in first.skip_message

    # Same name, size and modification time, but no longer readable as CSV: reading it again would fail.
    stat = first_file.stat()
    first_file.write_bytes(b"\x00" * stat.st_size)
    os.utime(first_file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    watch.land(generate(1000, seed=9), "day-2.csv")
    second = watch.tick("new_data_sensor", cursor=first.cursor)

    (request,) = second.run_requests
    assert request.tags["ml_platform/new_rows"] == "2000"
    assert sorted(json.loads(second.cursor)["rows"].values()) == [1000, 1000]  # counts of the files present


def test_the_new_data_sensor_exists_only_when_the_spec_sets_a_volume_and_sensors_can_be_turned_off(watcher):
    names = lambda watch: sorted(s.name for s in watch.definitions().sensors)  # noqa: E731
    base = watcher().spec.dagster_name
    assert names(watcher()) == [f"{base}_drift_sensor"]
    assert names(watcher(new_data_rows=10)) == [f"{base}_drift_sensor", f"{base}_new_data_sensor"]
    assert names(watcher(drift_sensor=False)) == []
    assert [s.name for s in watcher(schedule=None).definitions().schedules] == []
    assert watcher().definitions().resolve_sensor_def(f"{base}_drift_sensor").default_status == (
        dg.DefaultSensorStatus.RUNNING
    )


def test_the_hybrid_schedule_weighs_age_volume_and_drift_and_records_its_answer(watcher):
    watch = watcher(max_champion_age=timedelta(days=30), cooldown=timedelta(0))
    defs = watch.definitions()
    schedule = defs.resolve_schedule_def(f"{watch.spec.dagster_name}_retraining_check")
    watch.land(generate(1000, seed=3), "ordinary.csv")

    def tick(when: datetime):
        # As a context manager: the context opens an instance from the reference, which must be closed.
        with dg.build_schedule_context(
            instance=watch.instance, scheduled_execution_time=when, resources=defs.resources
        ) as context:
            return schedule.evaluate_tick(context)

    today = tick(datetime.now(UTC))
    assert today.run_requests == [] and "not justified" in today.skip_message
    later = tick(datetime.now(UTC) + timedelta(days=45))
    (request,) = later.run_requests
    assert request.tags["ml_platform/trigger"] == "schedule"
    records = watch.ledger.query(watch.spec.name, trigger="schedule")
    assert [r.decision for r in records] == ["no-op", "retrain"]
    assert "days old (max_champion_age 30 days)" in records[1].reason
    assert records[0].scores["new_rows"] == 1000 and max(records[0].scores["psi"].values()) < 0.05
    observations = watch.instance.fetch_observations(dg.AssetKey([watch.spec.name, "decisions"]), limit=10)
    assert len(observations.records) == 2


def test_no_champion_means_nothing_to_judge(champion, tmp_path, instance, watcher):
    watch = watcher()
    orphan = watch.spec.model_copy(update={"name": watch.spec.name + "-none"})
    from ml_platform_tests.sensors.conftest import Watcher

    result = Watcher(orphan, watch.paths, instance, watch.store).tick("drift_sensor")
    assert "has no champion yet" in result.skip_message
