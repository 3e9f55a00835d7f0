"""The performance trigger on a real instance, registry and ledger: score, log, join outcomes, alert, roll back."""

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
import pandas as pd
import pytest
from growth.conversion.demo_data import generate

from ml_platform.cli import main
from ml_platform.defs.decisions import decisions_definitions
from ml_platform.defs.factory import model_definitions
from ml_platform.defs.scoring import scoring_definitions
from ml_platform.defs.triggers import trigger_definitions
from ml_platform.keys import ModelKeys
from ml_platform.rules.spec import Release
from ml_platform.stores.ledger import Ledger
from ml_platform.stores.registry import current_champion
from ml_platform.stores.release import alias_holders, conclude_release, start_release
from ml_platform.stores.snapshot import file_sha256
from ml_platform_tests.harness import Platform, declare_only, failure_messages
from ml_platform_tests.sensors.conftest import FAST

DAY = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)  # every session of a batch falls in the window of 2026-11-20
PERFORMANCE = {"performance_tolerance": 0.05, "min_feedback_rows": 300, "cooldown": timedelta(0)}


def sessions(rows: int, seed: int, shifted_outcomes: bool = False) -> pd.DataFrame:
    return generate(rows, seed=seed, end=DAY, days=0.5, shifted_outcomes=shifted_outcomes)


@dataclass
class Live:
    """A platform home with a champion, its scoring and feedback folders, and its sensors."""

    platform: Platform

    @property
    def spec(self):
        return self.platform.spec

    @property
    def paths(self):
        return self.platform.paths

    @property
    def ledger(self) -> Ledger:
        return Ledger.for_home(self.paths.home)

    def definitions(self) -> dg.Definitions:
        return dg.Definitions.merge(
            model_definitions(self.spec),
            decisions_definitions(self.spec),
            trigger_definitions(self.spec),
            scoring_definitions(self.spec),
            dg.Definitions(resources=self.platform.resources()),
        )

    def tick(self, sensor: str, cursor: str | None = None):
        """One evaluation of the named sensor, as the daemon runs it (the instance's reference lets Dagster
        resolve run requests for the dynamic partitions the same tick adds)."""
        defs = self.definitions()
        name = f"{self.spec.dagster_name}_{sensor}"
        instance = self.platform.instance
        with dg.build_sensor_context(
            instance=instance,
            instance_ref=instance.get_ref(),
            cursor=cursor,
            definitions=defs,
            sensor_name=name,
            resources=defs.resources,
        ) as context:
            return defs.resolve_sensor_def(name).evaluate_tick(context)

    def drop(self, folder, frame: pd.DataFrame, name: str):
        folder.mkdir(parents=True, exist_ok=True)
        frame.to_csv(folder / name, index=False)
        return folder / name

    def score(self, partition: str) -> dg.ExecuteInProcessResult:
        """Run what the scoring sensor requested for one batch: a materialization of its partition."""
        defs = scoring_definitions(self.spec)
        return dg.materialize(
            list(defs.assets),
            partition_key=partition,
            instance=self.platform.instance,
            resources=self.platform.resources(),
            raise_on_error=False,
        )

    def land_and_score(self, rows: int, seed: int, name: str = "day.csv") -> tuple[dict, str]:
        """A scoring batch lands; the scoring sensor adds its partition and asks for it; the run scores it."""
        self.drop(self.paths.scoring(self.spec.name), sessions(rows, seed).drop(columns="converted"), name)
        tick = self.tick("scoring_sensor")
        (request,) = tick.run_requests
        (added,) = tick.dynamic_partitions_requests
        self.platform.instance.add_dynamic_partitions(added.partitions_def_name, list(added.partition_keys))
        result = self.score(request.partition_key)
        assert result.success, failure_messages(result)
        (materialization,) = result.get_asset_materialization_events()
        metadata = {k: v.value for k, v in materialization.materialization.metadata.items()}
        return metadata, tick.cursor


@pytest.fixture
def live(watcher):
    """The module's champion (v1) on a fresh home, with the performance trigger's rules as overrides."""

    def make(**monitoring) -> Live:
        watch = watcher(**{**PERFORMANCE, **monitoring})
        spec = watch.spec.model_copy(update={"release": Release(deployed_alias="champion")})  # the monitor judges it
        return Live(Platform(spec, watch.paths, watch.instance, watch.store))

    return make


def decisions(live: Live) -> list[tuple[str, str]]:
    return [(r.decision, r.trigger) for r in live.ledger.query(live.spec.name)]


def observed(result) -> list[dict]:
    return [{k: v.value for k, v in event.metadata.items()} for event in result.asset_events or []]


def test_a_scored_batch_then_degraded_outcomes_raise_an_alert_and_request_a_candidate(live):
    live = live(rollback_on_drop=True)
    model = live.spec.name

    # 1. a batch lands in the scoring folder: the champion scores it, the inference log keeps who did
    metadata, cursor = live.land_and_score(1000, seed=21)
    batch = live.paths.scoring(model) / "day.csv"
    assert metadata["model_version"] == "1" and metadata["rows"] == 1000 and metadata["reused"] is False
    assert metadata["batch_sha256"] == file_sha256(batch) and metadata["batch_file"] == "day.csv"
    (log_file,) = live.paths.inference(model).glob("*.parquet")
    assert metadata["inference_log"] == str(log_file)
    log = pd.read_parquet(log_file)
    assert set(log["model_version"]) == {"1"} and set(log["batch_sha256"]) == {file_sha256(batch)}
    assert {"session_id", "event_time", "price", "prediction", "confidence", "scored_at"} <= set(log.columns)
    assert "no new scoring batch" in live.tick("scoring_sensor", cursor).skip_message

    # the same partition again: the log written then is kept, never overwritten
    again = live.score("day.csv")
    (event,) = again.get_asset_materialization_events()
    assert event.materialization.metadata["reused"].value is True
    assert list(live.paths.inference(model).glob("*.parquet")) == [log_file]

    # 2. outcomes land, from a market that changed: the champion's live f1_macro drops
    outcomes = sessions(1000, seed=21, shifted_outcomes=True)[["session_id", "converted"]]
    live.drop(live.paths.feedback(model), outcomes, "outcomes-1.csv")
    tick = live.tick("performance_sensor")
    (request,) = tick.run_requests
    assert request.job_name == f"{live.spec.dagster_name}_lifecycle"
    assert request.tags["ml_platform/trigger"] == "performance" and request.tags["ml_platform/champion"] == "1"
    assert request.tags["ml_platform/metric"] == "f1_macro" and request.tags["ml_platform/feedback"] == "outcomes-1.csv"

    alert, retrain = live.ledger.query(model)
    assert (alert.decision, alert.trigger, alert.version) == ("alert", "performance", "1")
    assert alert.scores["worst_drop"] > 0.05 and alert.scores["metric"] == "f1_macro"
    assert alert.scores["windows"]["2026-11-20T00:00:00+00:00"]["rows"] == 1000
    assert "dropped beyond its tolerance in 1 of 1 judged window(s)" in alert.reason
    assert alert.scores["previous_champion"] == "no previous-champion to roll back to"
    assert retrain.decision == "retrain" and retrain.evidence["alert_id"] == alert.id
    assert request.tags["ml_platform/decision_id"] == str(retrain.id)
    assert request.tags["ml_platform/alert_id"] == str(alert.id)
    assert json.loads(request.tags["ml_platform/live"])["2026-11-20"] < float(request.tags["ml_platform/reference"])
    first, second = observed(tick)
    assert first["decision"] == "alert" and "| 2026-11-20T00:00:00+00:00 | 1,000 |" in first["performance"]
    assert second["decision"] == "retrain"
    assert tick.asset_events[0].asset_key == dg.AssetKey([model, "decisions"])
    assert current_champion(live.platform.store, model).version == "1"

    # 3. a feedback file is judged once
    assert "no new feedback" in live.tick("performance_sensor", tick.cursor).skip_message
    assert decisions(live) == [("alert", "performance"), ("retrain", "performance")]


def test_outcomes_as_expected_are_a_recorded_no_op(live):
    live = live()
    live.land_and_score(1000, seed=22)
    live.drop(live.paths.feedback(live.spec.name), sessions(1000, seed=22)[["session_id", "converted"]], "ok.csv")

    tick = live.tick("performance_sensor")
    assert tick.run_requests == [] and tick.skip_message.startswith("no-op: no drop: live f1_macro of champion v1")
    (record,) = live.ledger.query(live.spec.name)
    assert record.decision == "no-op" and record.trigger == "performance"
    assert record.scores["worst_drop"] <= 0.05 and record.evidence["feedback_files"] == ["ok.csv"]
    assert observed(tick)[0]["decision"] == "no-op"


def test_too_few_outcomes_give_no_decision_and_are_judged_with_the_next_ones(live):
    live = live()
    live.land_and_score(1000, seed=23)
    outcomes = sessions(1000, seed=23)[["session_id", "converted"]]
    feedback = live.paths.feedback(live.spec.name)
    live.drop(feedback, outcomes.iloc[:200], "early.csv")

    first = live.tick("performance_sensor")
    assert first.run_requests == [] and "not enough feedback: no window has 300 labelled predictions" in (
        first.skip_message
    )
    assert decisions(live) == [("no-decision", "performance")]
    assert live.ledger.latest(live.spec.name).scores["windows"]["2026-11-20T00:00:00+00:00"]["rows"] == 200

    live.drop(feedback, outcomes.iloc[200:], "late.csv")
    second = live.tick("performance_sensor", first.cursor)
    assert second.skip_message.startswith("no-op: no drop")
    latest = live.ledger.latest(live.spec.name)
    assert latest.scores["windows"]["2026-11-20T00:00:00+00:00"]["rows"] == 1000
    assert latest.evidence["feedback_files"] == ["late.csv"]


def test_broken_feedback_is_a_no_decision_naming_the_asset_the_contract_and_what_was_found(live):
    live = live()
    live.land_and_score(600, seed=24)
    feedback = live.paths.feedback(live.spec.name)
    live.drop(feedback, pd.DataFrame({"session_id": ["s-24-000000001"], "outcome": [1]}), "a-no-label.csv")
    live.drop(feedback, pd.DataFrame({"session_id": ["nobody", "s-24-000000001"], "converted": [1, 0]}), "b-keys.csv")

    tick = live.tick("performance_sensor")
    assert tick.run_requests == [] and "feedback refused" in tick.skip_message
    no_label, unknown = live.ledger.query(live.spec.name)
    asset = ModelKeys(live.spec.name).batch_predictions.to_user_string()
    assert no_label.decision == "no-decision" and no_label.reason == (
        f"{asset}: feedback 'a-no-label.csv' lacks column(s) ['converted']: observed columns ['session_id', "
        "'outcome']; expected the key column 'session_id' and the label column 'converted'. Is this an outcome "
        "export for this model?"
    )
    assert unknown.reason.startswith(
        f"{asset}: feedback 'b-keys.csv' has 1 of 2 key(s) that no logged prediction has, e.g. ['nobody']; "
        "expected only keys of predictions in the inference log (600 keys logged)"
    )
    assert [e["decision"] for e in observed(tick)] == ["no-decision", "no-decision"]

    # a refused file is not read again; a good file later is judged on its own
    good = sessions(600, seed=24)[["session_id", "converted"]]
    live.drop(feedback, good, "c-good.csv")
    later = live.tick("performance_sensor", tick.cursor)
    assert later.skip_message.startswith("no-op: no drop") and len(live.ledger.query(live.spec.name)) == 3


@pytest.mark.parametrize("deployed", ["champion", "production"])
def test_a_drop_rolls_back_the_deployed_alias_to_its_previous_version_that_did_better(
    make_platform, monkeypatch, capsys, deployed
):
    """v2 learned a market that did not last; the outcomes look like v1's world again, and v1 comes back to the
    alias that served v2's predictions -- that alias only."""
    monitoring = {**PERFORMANCE, "rollback_on_drop": True, "rollback_margin": 0.02}
    platform = make_platform(params=FAST)
    platform.spec = platform.spec.model_copy(  # the monitor judges, and the batches are scored by, the deployed alias
        update={
            "monitoring": platform.spec.monitoring.model_copy(update=monitoring),
            "release": Release(deployed_alias=deployed),
        }
    )
    model, store = platform.spec.name, platform.store
    platform.land(generate(2500, seed=1), "week-1.csv")
    assert (result := platform.materialize()).success, failure_messages(result)
    platform.land(generate(2500, seed=2, shifted_outcomes=True), "week-2.csv")
    assert (result := platform.materialize()).success, failure_messages(result)
    assert current_champion(store, model).version == "2"
    if deployed == "production":  # released as `ml-platform release` does: v1 first, then v2 promoted over it
        start_release(store, platform.spec, "1", None, False, "test")
        move = start_release(store, platform.spec, "2", None, False, "test")
        conclude_release(store, model, move.release_id, "promote", "the gate held")
    live = Live(platform)

    metadata, _ = live.land_and_score(1000, seed=25)
    assert metadata["model_version"] == "2"
    live.drop(live.paths.feedback(model), sessions(1000, seed=25)[["session_id", "converted"]], "outcomes.csv")
    tick = live.tick("performance_sensor")

    holders = alias_holders(store, model)
    if deployed == "champion":
        assert (holders["champion"], holders["previous-champion"], holders["production"]) == ("1", "2", None)
    else:  # production rolled back; champion, which served nothing, untouched
        assert (holders["production"], holders["previous-production"]) == ("1", "2")
        assert (holders["champion"], holders["previous-champion"]) == ("2", "1")
    (request,) = tick.run_requests
    assert request.tags["ml_platform/champion"] == "2"
    records = live.ledger.query(model)
    assert [r.decision for r in records] == ["promoted", "promoted", "alert", "rolled-back", "retrain"]
    alert, rolled_back = records[2], records[3]
    comparison = alert.scores[f"previous_{deployed}"]
    assert comparison["better"] and comparison["previous"] - comparison["champion"] >= 0.02 and comparison["low"] > 0
    assert (rolled_back.version, rolled_back.actor, rolled_back.trigger) == ("1", "performance-trigger", "performance")
    assert rolled_back.evidence["alias"] == deployed and alert.evidence["alias"] == deployed
    assert (rolled_back.evidence["rolled_back_from"], rolled_back.evidence["restored"]) == ("2", "1")
    assert f"{deployed} from v2 to v1" in rolled_back.reason
    assert f"previous-{deployed} v1 measurably better than {deployed} v2 on the same 1,000 labelled rows" in (
        rolled_back.reason
    )  # the alias judged, by name
    assert [e["decision"] for e in observed(tick)] == ["alert", "rolled-back", "retrain"]
    declare_only(monkeypatch, platform.spec)  # the CLI finds the test's model by name
    for variable, value in (("TRACKING", store.tracking_uri), ("REGISTRY", store.registry_uri)):
        monkeypatch.setenv(f"MLFLOW_{variable}_URI", value)
    assert main(["history", model]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1:3] for line in lines[1:]] == [["promoted", "v1"], ["promoted", "v2"], ["rolled-back", "v1"]]
    assert "[performance by performance-trigger]" in lines[3]
    moved = {"champion": "champion v2->v1", "production": "production v2->v1"}[deployed]
    assert moved in lines[3]


def test_the_drift_sensor_judges_scoring_batches_when_the_spec_says_so_and_shows_histograms(live):
    campaign = generate(1000, seed=26, campaign=True).drop(columns="converted")
    off = live(drift_on_scoring=False)
    off.drop(off.paths.scoring(off.spec.name), campaign, "campaign.csv")
    assert "no new batch since the last judgment" in off.tick("drift_sensor").skip_message

    on = Live(Platform(off.spec.model_copy(update={"monitoring": off.spec.monitoring.model_copy(
        update={"drift_on_scoring": True})}), off.paths, off.platform.instance, off.platform.store))  # fmt: skip
    tick = on.tick("drift_sensor")
    (request,) = tick.run_requests
    assert request.tags["ml_platform/batch"] == "scoring/campaign.csv"
    assert set(request.tags["ml_platform/drifted"].split(",")) == {"region", "price", "discount"}
    (record,) = on.ledger.query(on.spec.name)
    assert record.decision == "retrain" and record.evidence["batch_files"] == ["scoring/campaign.csv"]
    (event,) = observed(tick)
    assert event["drift_histograms"].startswith("![") and "data:image/png;base64," in event["drift_histograms"]
    assert "drift_histograms" not in record.evidence  # the picture is for the UI; the ledger keeps the numbers
    assert "no new batch" in on.tick("drift_sensor", tick.cursor).skip_message


def test_a_scoring_batch_that_breaks_the_contract_fails_its_partition_naming_every_problem(live):
    live = live()
    broken = sessions(300, seed=27).drop(columns=["converted", "price"]).assign(region="mars")
    live.drop(live.paths.scoring(live.spec.name), broken, "broken.csv")
    tick = live.tick("scoring_sensor")
    (added,) = tick.dynamic_partitions_requests
    live.platform.instance.add_dynamic_partitions(added.partitions_def_name, list(added.partition_keys))

    result = live.score("broken.csv")
    assert not result.success
    message = failure_messages(result)
    assert f"batch_predictions {live.spec.name!r}: scoring batch 'broken.csv' breaks ConversionRecord without " in (
        message
    )
    assert "column_in_dataframe (e.g. ['price'])" in message and "region: isin" in message and "'mars'" in message
    assert not live.paths.inference(live.spec.name).exists()
