"""Live performance: metrics, feedback contracts, the join, windows, the drop and the rollback evidence."""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from ml_platform.errors import ContractViolation
from ml_platform.rules.performance import (
    MODEL_VERSION,
    OUTCOME,
    PREDICTION,
    SCORED_AT,
    compare_on_same_rows,
    inference_log_frame,
    join_outcomes,
    judge_windows,
    live_metric,
    read_feedback,
    window_starts,
)
from ml_platform.rules.spec import Monitoring
from ml_platform.stores.ledger import Decision, Ledger
from ml_platform_tests.models import CONVERSION

ASSET = "conversion/batch_predictions"
SKLEARN = {
    "accuracy": accuracy_score,
    "balanced_accuracy": balanced_accuracy_score,
    "f1_macro": lambda t, p: f1_score(t, p, average="macro", zero_division=0),
    "f1_weighted": lambda t, p: f1_score(t, p, average="weighted", zero_division=0),
}


@settings(max_examples=60, deadline=None)
@given(
    pairs=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2)), min_size=1, max_size=60),
    metric=st.sampled_from(sorted(SKLEARN)),
)
def test_metrics_from_confusion_counts_agree_with_scikit_learn(pairs, metric):
    truth, predicted = (np.array(v) for v in zip(*pairs, strict=True))
    expected = SKLEARN[metric](truth, predicted)
    assert live_metric(truth, predicted, metric, classes=(0, 1, 2)) == pytest.approx(expected, abs=1e-12)


def test_a_metric_outside_the_known_four_is_refused():
    with pytest.raises(ValueError, match="unknown metric 'roc_auc'; expected one of"):
        live_metric([0, 1], [0, 1], "roc_auc", (0, 1))


def _log(keys, predictions, version="1", times=None, scored_at="2026-11-20T12:00:00Z"):
    batch = pd.DataFrame(
        {
            "session_id": keys,
            "event_time": pd.to_datetime(times or ["2026-11-20T10:00:00Z"] * len(keys), utc=True),
            "price": np.linspace(10, 20, len(keys)),
        }
    )
    return inference_log_frame(
        batch,
        ["session_id", "event_time", "price"],
        predictions,
        None,
        version=version,
        batch_file="day.csv",
        batch_sha256="ab" * 32,
        scored_at=pd.Timestamp(scored_at),
    )


def test_the_inference_log_keeps_inputs_prediction_version_file_hash_and_time():
    log = _log(["a", "b"], [1, 0], version="3")
    assert list(log["session_id"]) == ["a", "b"] and list(log[PREDICTION]) == [1, 0]
    assert set(log[MODEL_VERSION]) == {"3"} and set(log["batch_sha256"]) == {"ab" * 32}
    assert log[SCORED_AT].iloc[0] == pd.Timestamp("2026-11-20T12:00:00Z") and "price" in log
    with pytest.raises(ValueError, match="3 predictions for a batch of 2 rows"):
        inference_log_frame(
            log,
            ["session_id"],
            [1, 0, 1],
            None,
            version="1",
            batch_file="x",
            batch_sha256="",
            scored_at=pd.Timestamp(0),
        )


def feedback(frame, **overrides):
    arguments = {"key": "session_id", "label": "converted", "label_values": (0, 1), "source": "day.csv", "asset": ASSET}
    return read_feedback(frame, **{**arguments, **overrides})


def test_feedback_becomes_one_outcome_per_key_with_the_spec_classes():
    frame = pd.DataFrame({"session_id": ["a", "b", "b"], "converted": ["1", 0, 0], "note": ["x", "y", "z"]})
    outcomes = feedback(frame)
    assert outcomes.to_dict("records") == [{"session_id": "a", OUTCOME: 1}, {"session_id": "b", OUTCOME: 0}]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (
            pd.DataFrame({"session_id": ["a"], "outcome": [1]}),
            r"conversion/batch_predictions: feedback 'day.csv' lacks column\(s\) \['converted'\]: observed columns "
            r"\['session_id', 'outcome'\]; expected the key column 'session_id' and the label column 'converted'",
        ),
        (pd.DataFrame({"session_id": [], "converted": []}), "has a header but no rows"),
        (pd.DataFrame({"session_id": ["a", None], "converted": [1, 0]}), r"1 null key\(s\) or label\(s\)"),
        (
            pd.DataFrame({"session_id": ["a", "b"], "converted": [1, 7]}),
            r"column 'converted' holds unknown label\(s\) \['7'\]; expected only the spec's label_values \['0', '1'\]",
        ),
        (
            pd.DataFrame({"session_id": ["a", "a"], "converted": [1, 0]}),
            r"1 key\(s\) labelled twice with different outcomes, e.g. \['a'\]; expected one outcome per key",
        ),
    ],
)
def test_a_broken_feedback_file_is_refused_naming_asset_contract_observed_and_expected(frame, message):
    with pytest.raises(ContractViolation, match=message):
        feedback(frame)


def test_feedback_for_keys_never_predicted_is_refused_with_examples():
    log = _log(["a", "b"], [1, 0])
    outcomes = feedback(pd.DataFrame({"session_id": ["a", "zz", "yy"], "converted": [1, 0, 1]}))
    with pytest.raises(
        ContractViolation,
        match=r"feedback 'day.csv' has 2 of 3 key\(s\) that no logged prediction has, e.g. \['yy', 'zz'\]; "
        r"expected only keys of predictions in the inference log \(2 keys logged\)",
    ):
        join_outcomes(log, outcomes, key="session_id", source="day.csv", asset=ASSET)


def test_the_join_keeps_one_prediction_per_key_and_version_the_latest():
    first = _log(["a", "b"], [0, 0], scored_at="2026-11-20T12:00:00Z")
    again = _log(["a"], [1], scored_at="2026-11-21T12:00:00Z")  # the same session in a later batch
    other = _log(["a"], [0], version="2")
    outcomes = feedback(pd.DataFrame({"session_id": ["a", "b"], "converted": [1, 0]}))
    joined = join_outcomes(pd.concat([first, again, other]), outcomes, key="session_id", source="f", asset=ASSET)
    mine = joined[joined[MODEL_VERSION] == "1"].set_index("session_id")
    assert mine.loc["a", PREDICTION] == 1 and len(mine) == 2
    assert len(joined[joined[MODEL_VERSION] == "2"]) == 1


def test_windows_are_fixed_widths_aligned_to_midnight_utc():
    times = pd.Series(["2026-11-20T23:59:00+00:00", "2026-11-21T00:00:00+00:00", "2026-11-21T05:00:00-03:00"])
    starts = window_starts(times, timedelta(days=1))
    assert [s.isoformat() for s in starts] == [
        "2026-11-20T00:00:00+00:00",
        "2026-11-21T00:00:00+00:00",
        "2026-11-21T00:00:00+00:00",  # 05:00 at -03:00 is 08:00 UTC
    ]
    assert window_starts(times, timedelta(hours=6)).iloc[2].isoformat() == "2026-11-21T06:00:00+00:00"


def _joined(rows_per_day: dict[str, tuple[int, float]], version="1", seed=0):
    """Labelled predictions: per day, (rows, share of correct predictions)."""
    rng = np.random.default_rng(seed)
    parts = []
    for day, (rows, correct) in rows_per_day.items():
        truth = rng.integers(0, 2, rows)
        right = rng.random(rows) < correct
        parts.append(
            pd.DataFrame(
                {
                    "event_time": pd.Timestamp(day, tz="UTC") + pd.to_timedelta(rng.uniform(0, 86000, rows), unit="s"),
                    OUTCOME: truth,
                    PREDICTION: np.where(right, truth, 1 - truth),
                    MODEL_VERSION: version,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def judge(joined, **overrides):
    arguments = dict(
        version="1",
        metric="accuracy",
        classes=(0, 1),
        reference=0.9,
        tolerance=0.05,
        min_rows=100,
        width=timedelta(days=1),
        time_column="event_time",
    )
    return judge_windows(joined, **{**arguments, **overrides})


def test_a_window_whose_live_metric_falls_beyond_the_tolerance_is_a_drop():
    joined = _joined({"2026-11-20": (400, 0.9), "2026-11-21": (400, 0.7)})
    report = judge(joined)
    assert report.verdict == "drop"
    assert [w.dropped for w in report.windows] == [False, True]
    assert report.windows[1].live == pytest.approx(0.7, abs=0.05) and report.worst_drop > 0.1
    assert "live accuracy of champion v1 dropped beyond its tolerance in 1 of 2 judged window(s)" in report.reason
    assert "| 2026-11-21T00:00:00+00:00 | 400 |" in report.table() and "**yes**" in report.table()
    assert report.scores()["windows"]["2026-11-21T00:00:00+00:00"]["rows"] == 400


def test_within_tolerance_is_no_drop_and_only_touched_windows_are_judged():
    joined = _joined({"2026-11-20": (400, 0.6), "2026-11-21": (400, 0.9)})
    report = judge(joined, touched=[pd.Timestamp("2026-11-21", tz="UTC")])
    assert report.verdict == "no-drop" and len(report.windows) == 1
    assert report.reason.startswith("no drop: live accuracy of champion v1 within tolerance 0.05 of 0.9000")


def test_too_few_labelled_rows_is_not_enough_feedback_and_other_versions_do_not_count():
    joined = pd.concat([_joined({"2026-11-20": (50, 0.2)}), _joined({"2026-11-20": (500, 0.2)}, version="2")])
    report = judge(joined)
    assert report.verdict == "not-enough-feedback" and report.windows[0].rows == 50
    assert not report.windows[0].judged and report.windows[0].live is not None
    assert "no window has 100 labelled predictions of champion v1 (at most 50" in report.reason
    assert "500 labelled prediction(s) of other versions not counted" in report.reason
    assert "no (< 100)" in report.table()


def test_judging_needs_its_time_column():
    with pytest.raises(ValueError, match="no time column 'scored_at'"):
        judge(_joined({"2026-11-20": (10, 0.9)}), time_column="scored_at")


def test_a_clearly_better_previous_champion_is_measurably_better_on_the_same_rows():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 2, 2000)
    champion = np.where(rng.random(2000) < 0.70, truth, 1 - truth)
    previous = np.where(rng.random(2000) < 0.85, truth, 1 - truth)
    comparison = compare_on_same_rows(
        truth, champion, previous, metric="f1_macro", classes=(0, 1), margin=0.02, champion="2", previous="1"
    )
    assert comparison.better and comparison.low > 0.1 and comparison.low < comparison.difference < comparison.high
    assert comparison.previous == pytest.approx(f1_score(truth, previous, average="macro"))
    assert comparison.reason.startswith("previous champion v1 measurably better than champion v2 on the same 2,000")


def test_an_equal_previous_champion_is_not_measurably_better_and_the_bootstrap_is_seeded():
    rng = np.random.default_rng(2)
    truth = rng.integers(0, 2, 600)
    champion = np.where(rng.random(600) < 0.8, truth, 1 - truth)
    previous = np.where(rng.random(600) < 0.8, truth, 1 - truth)
    arguments = dict(metric="accuracy", classes=(0, 1), margin=0.02, champion="2", previous="1")
    first = compare_on_same_rows(truth, champion, previous, **arguments)
    assert not first.better and first.low < 0 < first.high
    assert "not measurably better" in first.reason
    assert compare_on_same_rows(truth, champion, previous, **arguments) == first
    with pytest.raises(ValueError, match="the same, non-zero number of outcomes and predictions"):
        compare_on_same_rows(truth[:3], champion[:2], previous[:2], **arguments)


def test_the_spec_turns_the_trigger_on_explicitly_and_refuses_a_rollback_without_it():
    monitoring = Monitoring()
    assert monitoring.performance_tolerance is None and not monitoring.rollback_on_drop
    assert not monitoring.drift_on_scoring and monitoring.performance_window == timedelta(days=1)
    with pytest.raises(ValidationError, match="rollback_on_drop is set but performance_tolerance is None"):
        Monitoring(rollback_on_drop=True)
    with pytest.raises(ValidationError, match="a window must be longer than zero"):
        Monitoring(performance_tolerance=0.05, performance_window=timedelta(0))
    assert CONVERSION.monitoring.performance_tolerance == 0.05 and CONVERSION.monitoring.rollback_on_drop


def test_an_alert_is_a_ledger_decision_like_the_others(tmp_path):
    ledger = Ledger.for_home(tmp_path)
    ledger.record(Decision("conversion", "alert", "performance", "live f1_macro dropped", {"worst_drop": 0.12}))
    ledger.record(Decision("conversion", "no-op", "performance", "no drop"))
    (alert,) = ledger.query("conversion", ["alert"])
    assert alert.trigger == "performance" and alert.scores == {"worst_drop": 0.12}
