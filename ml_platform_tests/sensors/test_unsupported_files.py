"""A file the platform does not read, dropped in a scoring or feedback folder, is named and recorded once.

Real sensors on a real instance, registry and ledger: the scoring sensor and the performance sensor
name an unsupported file (``batch.xlsx``, ``scores.json``) in their skip reason and record it once in
the ledger, however often they tick, while the supported files beside it are scored and judged as
before; hidden and ``_``-prefixed files stay unread and unreported, as in a landing folder.
"""

import dagster as dg
import pytest

from ml_platform.keys import ModelKeys
from ml_platform.rules.spec import Release
from ml_platform.stores.landing import unsupported_refusal
from ml_platform_tests.harness import Platform
from ml_platform_tests.sensors.test_performance_trigger import PERFORMANCE, Live, sessions

SPREADSHEET = b"PK\x03\x04 not a CSV"  # the first bytes of a zip container, as an .xlsx holds


@pytest.fixture
def live(watcher):
    """The package's champion (v1) deployed as ``champion``, with the performance trigger on."""
    watch = watcher(**PERFORMANCE)
    spec = watch.spec.model_copy(update={"release": Release(deployed_alias="champion")})
    return Live(Platform(spec, watch.paths, watch.instance, watch.store))


def observed_decisions(live: Live) -> list[str]:
    records = live.platform.instance.fetch_observations(ModelKeys(live.spec.name).decisions, limit=20).records
    return [record.asset_observation.metadata["reason"].value for record in records]


def test_an_unsupported_scoring_file_is_named_once_and_the_batch_beside_it_is_still_requested(live):
    folder = live.paths.scoring(live.spec.name)
    live.drop(folder, sessions(200, seed=31).drop(columns="converted"), "day.csv")
    (folder / "batch.xlsx").write_bytes(SPREADSHEET)
    (folder / "_batch.xlsx").write_bytes(SPREADSHEET)  # kept there unread, as the refusal suggests
    (folder / ".~lock.batch.xlsx#").write_bytes(b"")

    first = live.tick("scoring_sensor")
    (request,) = first.run_requests
    assert request.partition_key == "day.csv" and first.skip_message is None
    (record,) = live.ledger.query(live.spec.name)
    asset = ModelKeys(live.spec.name).batch_predictions.to_user_string()
    assert (record.decision, record.trigger) == ("rejected", "scoring")
    refusal = unsupported_refusal(["batch.xlsx"], folder, "scoring")
    assert record.reason == f"{asset}: scoring batch not scored: {refusal}"
    assert "(a spreadsheet: save it as CSV (UTF-8))" in record.reason and "prefix a name with '_'" in record.reason
    assert "scoring file(s) ['batch.xlsx'] in " in record.reason and "not a supported scoring format" in record.reason
    assert record.evidence == {"scoring_file": "batch.xlsx", "folder": str(folder)}
    assert observed_decisions(live) == [record.reason]

    second = live.tick("scoring_sensor", first.cursor)
    assert second.run_requests == []
    assert second.skip_message == (f"no new scoring batch in {folder}; scoring batch not scored: {refusal}")
    assert "_batch.xlsx" not in second.skip_message and ".~lock" not in second.skip_message
    assert len(live.ledger.query(live.spec.name)) == 1 and len(observed_decisions(live)) == 1

    (folder / "batch.xlsx").write_bytes(SPREADSHEET + b" saved again")  # another file under the same name
    live.tick("scoring_sensor", second.cursor)
    assert [r.evidence["scoring_file"] for r in live.ledger.query(live.spec.name)] == ["batch.xlsx", "batch.xlsx"]


def test_an_unsupported_feedback_file_is_a_no_decision_named_once_and_the_outcomes_beside_it_are_judged(live):
    live.land_and_score(1000, seed=32)
    folder = live.paths.feedback(live.spec.name)
    folder.mkdir(parents=True)
    (folder / "scores.json").write_text('[{"session_id": "s-32-000000001", "converted": 1}]')
    (folder / "_scores.json").write_text("[]")
    refusal = f"feedback not read: {unsupported_refusal(['scores.json'], folder, 'feedback')}"

    first = live.tick("performance_sensor")
    assert first.skip_message == f"no new feedback in {folder} since the last judgment; {refusal}"
    (record,) = live.ledger.query(live.spec.name)
    asset = ModelKeys(live.spec.name).batch_predictions.to_user_string()
    assert (record.decision, record.trigger) == ("no-decision", "performance")
    assert record.reason == f"{asset}: {refusal}" and "(JSON: export it as CSV or Parquet)" in record.reason
    assert record.evidence == {"feedback_file": "scores.json", "folder": str(folder)}

    live.drop(folder, sessions(1000, seed=32)[["session_id", "converted"]], "outcomes.csv")
    second = live.tick("performance_sensor", first.cursor)
    assert second.skip_message.startswith("no-op: no drop: live f1_macro of champion v1")
    assert second.skip_message.endswith(f"; {refusal}") and "_scores.json" not in second.skip_message
    unsupported, judged = live.ledger.query(live.spec.name)
    assert unsupported.id == record.id and judged.decision == "no-op"
    assert judged.evidence["feedback_files"] == ["outcomes.csv"]
    assert [o["decision"] for o in map(_metadata, second.asset_events)] == ["no-op"]


def _metadata(event: dg.AssetObservation) -> dict:
    return {k: v.value for k, v in event.metadata.items()}
