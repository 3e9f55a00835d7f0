"""Unit tests for the retraining rules every trigger applies: each rule firing and not, and how they combine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from ml_platform.rules.drift import DriftReport
from ml_platform.rules.retraining import (
    FORCED,
    NO_CHAMPION,
    ChampionFacts,
    Observed,
    champion_age,
    cool_down_until,
    decide_retraining,
    measure_monitored_drift,
)
from ml_platform.rules.spec import ModelSpec
from ml_platform_tests.models import CONVERSION

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SNAPSHOT = "a" * 64
CHAMPION = ChampionFacts("3", SNAPSHOT, (NOW - timedelta(days=10)).isoformat())


def monitored(**monitoring) -> ModelSpec:
    """The conversion spec with monitoring overrides, validated."""
    return ModelSpec.model_validate(
        CONVERSION.model_dump() | {"monitoring": CONVERSION.monitoring.model_dump() | monitoring}
    )


def report(drifted: bool | None, reason: str = "") -> DriftReport:
    reason = reason or {True: "3 of 7 drifted", False: "0 of 7 drifted", None: "no decision: 20 rows"}[drifted]
    return DriftReport(1000, 20 if drifted is None else 1000, 500, 0.25, (), drifted, reason)


# --- drift alone (the drift sensor) ---------------------------------------------------------------------


@pytest.mark.parametrize(("drifted", "action"), [(True, "retrain"), (False, "no-op"), (None, "no-decision")], ids=str)
def test_drift_alone_decides_by_the_report_with_its_reason(drifted, action):
    decided = decide_retraining(CONVERSION, Observed(CHAMPION, drift=report(drifted)))
    assert decided.action == action and decided.retrain is (action == "retrain")
    assert decided.reasons == (report(drifted).reason,) and decided.reason == report(drifted).reason


def test_unreadable_evidence_is_no_decision_whatever_else_was_seen():
    problem = "the batch ['broken.csv'] cannot be judged: drift: the batch lacks monitored column(s) ['discount']"
    decided = decide_retraining(CONVERSION, Observed(CHAMPION, forced=True, drift=report(True), problem=problem))
    assert decided.action == "no-decision" and decided.reason == problem


# --- volume (the new-data sensor) -----------------------------------------------------------------------


def test_new_rows_below_the_volume_are_a_no_op_and_at_the_volume_a_retrain():
    spec = monitored(new_data_rows=1500)
    below = decide_retraining(spec, Observed(CHAMPION, new_rows=1000))
    assert below.action == "no-op" and below.reason == "1,000 new rows since champion v3's snapshot, 1,500 needed"
    at = decide_retraining(spec, Observed(CHAMPION, new_rows=1500))
    assert at.action == "retrain" and at.reason == "1,500 new rows since champion v3's snapshot, 1,500 needed"


def test_new_rows_do_not_count_when_the_spec_sets_no_volume():
    decided = decide_retraining(monitored(new_data_rows=None), Observed(CHAMPION, new_rows=10**9))
    assert decided.action == "no-op" and decided.reasons == ("no retraining rule applies",)


# --- age, volume and drift together (the hybrid schedule) -------------------------------------------------


def test_an_old_champion_is_retrained_and_a_young_one_is_not():
    spec = monitored(max_champion_age=timedelta(days=30))
    old = decide_retraining(spec, Observed(CHAMPION, new_rows=0, now=NOW + timedelta(days=35)))
    assert old.action == "retrain" and old.reasons == ("the champion is 45 days old (max_champion_age 30 days)",)
    young = decide_retraining(spec, Observed(CHAMPION, new_rows=0, now=NOW))
    assert young.action == "no-op" and young.reasons == ("champion v3 is within its age (10 of 30 days)",)


def test_age_is_not_a_rule_without_a_maximum_a_promotion_time_or_a_clock():
    old = NOW + timedelta(days=400)
    assert not decide_retraining(monitored(max_champion_age=None), Observed(CHAMPION, now=old)).retrain
    unknown = ChampionFacts("3", SNAPSHOT, promoted_at=None)
    assert not decide_retraining(CONVERSION, Observed(unknown, now=old)).retrain
    assert not decide_retraining(CONVERSION, Observed(CHAMPION)).retrain


def test_every_rule_that_fires_is_a_reason_in_order_age_drift_volume():
    spec = monitored(max_champion_age=timedelta(days=5), new_data_rows=100)
    decided = decide_retraining(spec, Observed(CHAMPION, new_rows=1000, drift=report(True), now=NOW))
    assert decided.action == "retrain"
    assert decided.reasons == (
        "the champion is 10 days old (max_champion_age 5 days)",
        "3 of 7 drifted",
        "1,000 new rows since champion v3's snapshot, 100 needed",
    )


def test_an_undecided_drift_beside_decided_rules_gives_a_no_op_that_names_all_of_them():
    spec = monitored(new_data_rows=1500)
    decided = decide_retraining(spec, Observed(CHAMPION, new_rows=20, drift=report(None), now=NOW))
    assert decided.action == "no-op"
    assert decided.reasons == (
        "champion v3 is within its age (10 of 30 days)",
        "no decision: 20 rows",
        "20 new rows since champion v3's snapshot, 1,500 needed",
    )


# --- forced, no champion, a new snapshot (the decide stage command) ----------------------------------------


def test_no_champion_is_a_reason_to_train_and_the_champions_rules_do_not_apply():
    decided = decide_retraining(monitored(new_data_rows=1), Observed(None, snapshot_id=SNAPSHOT, new_rows=5, now=NOW))
    assert decided.action == "retrain" and decided.reasons == (NO_CHAMPION,)


def test_the_champions_own_snapshot_is_a_no_op_and_another_one_a_retrain():
    same = decide_retraining(CONVERSION, Observed(CHAMPION, snapshot_id=SNAPSHOT, drift=report(False)))
    assert same.action == "no-op"
    assert same.reasons == (f"the champion was trained on this very snapshot ({SNAPSHOT[:12]})", "0 of 7 drifted")
    moved = decide_retraining(CONVERSION, Observed(CHAMPION, snapshot_id="b" * 64))
    assert moved.action == "retrain"
    assert moved.reasons == (f"new data: snapshot {'b' * 12} differs from the champion's {SNAPSHOT[:12]}",)


def test_forcing_retrains_with_only_the_reasons_that_fired():
    decided = decide_retraining(CONVERSION, Observed(CHAMPION, forced=True, snapshot_id=SNAPSHOT, drift=report(False)))
    assert decided.action == "retrain" and decided.reasons == (FORCED,)
    both = decide_retraining(CONVERSION, Observed(None, forced=True, snapshot_id=SNAPSHOT))
    assert both.reasons == (FORCED, NO_CHAMPION)


# --- the cool-down and the champion's age ------------------------------------------------------------------


def test_the_cool_down_holds_until_its_end_and_not_after():
    spec = monitored(cooldown=timedelta(hours=1))
    last = (NOW - timedelta(minutes=20)).isoformat()
    assert cool_down_until(spec, last, NOW) == NOW + timedelta(minutes=40)
    assert cool_down_until(spec, last, NOW + timedelta(minutes=40)) is None
    assert cool_down_until(spec, None, NOW) is None
    assert cool_down_until(monitored(cooldown=timedelta(0)), last, NOW) is None


def test_champion_age_reads_a_naive_clock_as_utc():
    assert champion_age(CHAMPION, NOW.replace(tzinfo=None)) == timedelta(days=10)


# --- drift measured with the spec's monitoring rules --------------------------------------------------------


def frame(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns = {f: rng.normal(10 + shift, 1, rows) for f in ("price", "discount", "pages_viewed", "time_on_site_s")}
    regions = ("us-east", "eu-west", "apac")
    return pd.DataFrame(columns | {"region": rng.choice(regions, rows), "device": "desktop", "returning_customer": 1})


def test_measured_drift_follows_the_specs_thresholds_share_and_minimum_rows():
    reference, shifted = frame(5000, seed=1), frame(2000, seed=2, shift=1.5)
    features = ["price", "discount", "pages_viewed", "time_on_site_s"]
    spec = monitored(features=tuple(features), drift_share=0.5, min_batch_rows=500)
    drifted = measure_monitored_drift(spec, reference, shifted)
    assert drifted.drifted is True and set(drifted.drifted_features) == set(features)
    lenient = monitored(features=tuple(features), psi_threshold=100.0)
    assert measure_monitored_drift(lenient, reference, shifted).drifted is False
    assert measure_monitored_drift(monitored(min_batch_rows=5000), reference, shifted).drifted is None
    with pytest.raises(ValueError, match=r"lacks monitored column\(s\) \['price'\]"):
        measure_monitored_drift(spec, reference, shifted.drop(columns="price"))
