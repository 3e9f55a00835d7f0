"""The release gate names a feedback file it cannot read, once in the ledger and in every tick's skip reason.

Real registry, ledger and Dagster instance (``conftest.py``): a canary baking with outcomes in
``outcomes.csv`` and a ``scores.json`` beside them; the gate judges the CSV as before.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from ml_platform.keys import ModelKeys
from ml_platform.stores.landing import unsupported_refusal
from ml_platform.stores.release import start_release

pytestmark = pytest.mark.e2e


def test_a_feedback_file_the_gate_cannot_read_is_named_while_the_canary_bakes_and_recorded_once(releases):
    start_release(releases.store, releases.spec, None, None, False, "test")
    start_release(releases.store, releases.spec, releases.good, None, False, "test")
    started = releases.backdate(minutes=5)
    releases.feedback(releases.serve(400, seed=41, at=started + timedelta(minutes=1)), "outcomes.csv")
    folder = releases.paths.feedback(releases.spec.name)
    (folder / "scores.json").write_text('[{"sample_id": "x", "species": "setosa"}]')
    (folder / "_scores.json").write_text("[]")
    refusal = f"feedback not read: {unsupported_refusal(['scores.json'], folder, 'feedback')}"

    first = releases.tick()
    assert first.skip_message.startswith(f"canary v{releases.good}: ") and "baking until" in first.skip_message
    assert first.skip_message.endswith(f"; {refusal}") and "_scores.json" not in first.skip_message
    (record,) = releases.ledger.query(releases.spec.name, ["no-decision"])
    asset = ModelKeys(releases.spec.name).batch_predictions.to_user_string()
    assert record.trigger == "release" and record.reason == f"{asset}: {refusal}"
    assert record.evidence == {"feedback_file": "scores.json", "folder": str(folder)}

    second = releases.tick()
    assert second.skip_message == first.skip_message
    assert [r.id for r in releases.ledger.query(releases.spec.name, ["no-decision"])] == [record.id]
    assert releases.active().version == releases.good  # still baking: the readable outcomes were judged as before
