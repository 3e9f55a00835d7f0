"""Releases end to end on a real registry, ledger and Dagster instance, judged by the release sensor.

A canary of a model fitted on shuffled labels is rolled back within its window on the live traffic and
the outcomes that arrive, and production never changes; a good canary is promoted once its window has
elapsed; every move is in the ledger and on ``<model>/deployment`` with its evidence.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from botany.iris.demo_data import generate

from ml_platform.errors import PromotionBlocked
from ml_platform.keys import CANARY_PERCENT_TAG, RELEASE_ID_TAG, RELEASE_MODE_TAG
from ml_platform.stores.release import conclude_release, start_release
from ml_platform_tests.release.conftest import register

pytestmark = pytest.mark.e2e


def first_release(releases) -> None:
    move = start_release(releases.store, releases.spec, None, None, False, "test")
    assert move.kind == "first-release" and releases.alias("production") == "1"


def observations(tick) -> dict[str, dict]:
    return {
        event.asset_key.path[-1]: {k: v.value for k, v in event.metadata.items()} for event in tick.asset_events or []
    }


def test_the_first_release_goes_to_production_and_a_canary_carries_the_contract_s_tags(releases):
    first_release(releases)
    move = start_release(releases.store, releases.spec, releases.good, 25, False, "test")
    assert move.kind == "canary-started" and move.moves == {"canary": [None, releases.good]}
    tags = releases.store.client().get_model_version(releases.spec.name, releases.good).tags
    assert tags[CANARY_PERCENT_TAG] == "25" and tags[RELEASE_MODE_TAG] == "canary"
    assert tags[RELEASE_ID_TAG] == move.release_id and len(move.release_id) == 32
    assert releases.active().production == "1" and releases.alias("production") == "1"

    with pytest.raises(PromotionBlocked, match=f"release {move.release_id[:12]} of canary v{releases.good} has been"):
        start_release(releases.store, releases.spec, releases.degraded, None, True, "test")
    with pytest.raises(ValueError, match=r"--canary 120 is not a share of traffic in \(0, 100\]"):
        start_release(releases.store, releases.spec, releases.good, 120, False, "test")


def test_a_version_whose_gates_did_not_all_pass_is_refused(releases):
    unpassed = register(releases.spec, releases.store, generate(300, seed=5), 3, "a failed gate", verdict="failed")
    with pytest.raises(PromotionBlocked, match=f"v{unpassed}: refused, its recorded gates did not all pass: "):
        start_release(releases.store, releases.spec, unpassed, None, False, "test")
    assert releases.alias("production") is None and releases.active() is None


def test_a_degraded_canary_is_rolled_back_within_its_window_and_production_never_changes(releases):
    first_release(releases)
    start_release(releases.store, releases.spec, releases.degraded, None, False, "test")
    tick = releases.tick()
    assert "0 canary requests, 100 needed" in tick.skip_message
    assert releases.alias("production") == "1"

    served = releases.serve(400, seed=21)
    releases.feedback(served, "outcomes.csv")
    tick = releases.tick()
    assert releases.alias("production") == "1" and releases.active() is None  # rolled back, production untouched
    deployment = observations(tick)["deployment"]
    assert deployment["verdict"] == "rollback" and deployment["decision"] == "rolled-back"
    assert "live f1_weighted drop (production - canary) | " in deployment["gate"] and "**NO**" in deployment["gate"]
    assert deployment["cohorts"].startswith("![") and "data:image/png;base64," in deployment["cohorts"]
    assert "baking until" not in deployment["reason"] and "canary rolled back: " in deployment["reason"]
    (decision,) = [r for r in releases.ledger.query(releases.spec.name) if r.decision == "rolled-back"]
    assert decision.trigger == "release" and decision.actor == "release-gate" and decision.version == releases.degraded
    assert decision.evidence["moves"] == {"canary": [releases.degraded, None]}
    assert decision.scores["live_metric"]["better"] is True  # production measurably better on the same rows
    assert decision.scores["live_metric"]["reason"].startswith(
        f"production v1 measurably better than canary v{releases.degraded}"
    )

    assert "no release of" in releases.tick().skip_message  # decided once: nothing left to judge
    assert releases.alias("production") == "1"


def test_a_good_canary_waits_for_its_window_then_is_promoted(releases):
    first_release(releases)
    start_release(releases.store, releases.spec, releases.good, None, False, "test")
    started = releases.backdate(minutes=5)
    served = releases.serve(400, seed=22, at=started + timedelta(minutes=1))
    releases.feedback(served, "outcomes.csv")
    tick = releases.tick()
    assert "baking until" in tick.skip_message and releases.active().version == releases.good

    releases.backdate(minutes=11)
    tick = releases.tick()
    assert releases.alias("production") == releases.good and releases.alias("previous-production") == "1"
    assert releases.active() is None
    deployment = observations(tick)["deployment"]
    assert deployment["verdict"] == "promote" and "**NO**" not in deployment["gate"]
    assert "live f1_weighted drop (production - canary)" in deployment["gate"]
    promoted = releases.ledger.latest(releases.spec.name, ["promoted"])
    assert promoted.evidence["moves"] == {
        "production": ["1", releases.good],
        "canary": [releases.good, None],
        "previous-production": [None, "1"],
    }


@pytest.mark.parametrize(("status", "rolled_back"), [(422, False), (500, True)])
def test_only_server_errors_count_against_a_canary_and_client_errors_stay_visible(releases, status, rolled_back):
    """About 40 % of the canary's requests fail: bad clients' payloads (4xx) do not roll it back, 5xx do."""
    first_release(releases)
    start_release(releases.store, releases.spec, releases.good, None, False, "test")
    started = releases.backdate(minutes=11)  # the window has elapsed: the gate decides on this tick
    releases.serve(600, seed=23, at=started + timedelta(minutes=1), canary_errors=120, error_status=status)
    deployment = observations(releases.tick())["deployment"]
    canary = releases.ledger.latest(releases.spec.name, ["promoted", "rolled-back"]).scores["canary"]
    if rolled_back:
        assert deployment["verdict"] == "rollback" and "canary error rate observed" in deployment["reason"]
        assert releases.alias("production") == "1" and (canary["errors"], canary["client_errors"]) == (120, 0)
    else:
        assert deployment["verdict"] == "promote" and releases.alias("production") == releases.good
        assert "| canary error rate | 0.0000 | <= 0.01 | yes |" in deployment["gate"]
        assert "120 more refused as the client's fault (4xx), not counted" in deployment["gate"]
        assert (canary["errors"], canary["client_errors"]) == (0, 120)


def test_a_release_is_decided_once_whoever_decides_first(releases):
    first_release(releases)
    move = start_release(releases.store, releases.spec, releases.good, None, True, "test")
    assert releases.active().mode == "shadow"
    rolled = conclude_release(releases.store, releases.spec.name, move.release_id, "rollback", "aborted by hand")
    assert rolled.kind == "rolled-back" and releases.alias("production") == "1"
    with pytest.raises(PromotionBlocked, match="no longer in progress"):
        conclude_release(releases.store, releases.spec.name, move.release_id, "promote", "the gate, too late")
    assert releases.alias("production") == "1" and releases.active() is None


def test_a_shadow_release_is_judged_on_the_requests_both_versions_scored(releases):
    first_release(releases)
    start_release(releases.store, releases.spec, releases.good, None, True, "test")
    started = releases.backdate(minutes=11)
    served = releases.serve(300, seed=23, at=started + timedelta(minutes=2))
    releases.feedback(served, "outcomes.csv")
    deployment = observations(releases.tick())["deployment"]
    assert deployment["verdict"] == "promote" and releases.alias("production") == releases.good
    assert "| canary | v2 | 300 |" in deployment["gate"] and "| production | v1 | 300 |" in deployment["gate"]
    promoted = releases.ledger.latest(releases.spec.name, ["promoted"])
    assert promoted.scores["live_metric"]["rows"] == 300  # both versions' own predictions of the same requests


def test_a_canary_set_by_hand_is_not_judged_not_promoted_only_aborted_and_a_started_one_is(releases):
    from ml_platform.keys import RELEASE_OUTCOME_TAG

    first_release(releases)
    model, client = releases.spec.name, releases.store.client()
    never = register(releases.spec, releases.store, generate(300, seed=8), 5, "never released")
    client.set_registered_model_alias(model, "canary", never)  # by hand: no `release start`
    active = releases.active()
    assert f"'canary' points at v{never}, which `ml-platform release start` did not start" in active.problem
    assert f"ml-platform release {model} abort" in active.problem
    assert f"canary v{never} not judged: 'canary' points at" in releases.tick().skip_message
    assert f"canary v{never} not judged: 'canary' points at" in releases.tick().skip_message  # a second tick
    (hand_set,) = releases.ledger.query(model, ["unrecorded-move"])  # recorded once, as history shows it
    assert hand_set.evidence["moves"] == {"canary": [None, never]} and hand_set.reason == active.problem
    with pytest.raises(PromotionBlocked, match="promote: refused, 'canary' points at"):
        conclude_release(releases.store, model, active.release_id, "promote", "by hand")
    assert releases.alias("production") == "1" and releases.alias("canary") == never
    move = conclude_release(releases.store, model, active.release_id, "rollback", "aborted")
    assert move.moves == {"canary": [never, None]} and releases.active() is None

    started = start_release(releases.store, releases.spec, releases.good, None, False, "test")
    assert releases.active().problem is None
    conclude_release(releases.store, model, started.release_id, "rollback", "not today")
    assert client.get_model_version(model, releases.good).tags[RELEASE_OUTCOME_TAG] == "rolled-back"
    client.set_registered_model_alias(model, "canary", releases.good)  # set back by hand on a decided release
    assert f"whose release {started.release_id[:12]} was decided already" in releases.active().problem
    conclude_release(releases.store, model, started.release_id, "rollback", "aborted again")
    again = start_release(releases.store, releases.spec, releases.good, None, False, "test")  # a new release of it
    assert releases.active().problem is None and releases.active().release_id == again.release_id
