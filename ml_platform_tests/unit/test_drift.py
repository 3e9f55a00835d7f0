"""Drift measures on known distributions, the decision rules, and bad input."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ml_platform.rules import drift
from ml_platform.rules.drift import Reference, measure_drift, population_stability_index, required_drifted


def sample(rows: int, seed: int, shift: float = 0.0, apac: float = 0.15) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    others = (1 - apac) / 4
    return pd.DataFrame(
        {
            "price": np.exp(rng.normal(4.0 + shift, 0.6, rows)),
            "pages": 1 + rng.poisson(3.0, rows),
            "region": rng.choice(
                ["us-east", "us-west", "eu-west", "eu-central", "apac"], rows, p=[others] * 4 + [apac]
            ),
            "returning": rng.random(rows) < 0.35,
        }
    )


FEATURES = ["price", "pages", "region", "returning"]


def by_feature(report):
    return {f.feature: f for f in report.features}


def test_identical_samples_give_zero_psi_and_no_drift():
    frame = sample(5000, seed=1)
    report = measure_drift(frame, frame, FEATURES)
    assert report.drifted is False
    assert all(f.psi == pytest.approx(0.0, abs=1e-12) for f in report.features)
    assert all(f.statistic_value == pytest.approx(0.0, abs=1e-12) for f in report.features)


def test_two_samples_of_one_distribution_give_near_zero_psi():
    report = measure_drift(sample(20_000, seed=1), sample(20_000, seed=2), FEATURES)
    assert report.drifted is False
    assert max(f.psi for f in report.features) < 0.01
    kinds = {f.feature: (f.kind, f.statistic) for f in report.features}
    assert kinds == {
        "price": ("numeric", "ks"),
        "pages": ("numeric", "ks"),
        "region": ("categorical", "jensen_shannon"),
        "returning": ("categorical", "jensen_shannon"),
    }


def test_a_known_mean_shift_gives_the_expected_psi():
    """A shift of half a standard deviation of a normal has a PSI of about 0.25 on deciles."""
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(0.0, 1.0, 200_000)})
    batch = pd.DataFrame({"x": rng.normal(0.5, 1.0, 200_000)})
    result = by_feature(measure_drift(reference, batch, ["x"]))["x"]
    # the decile PSI of N(0.5, 1) against N(0, 1), computed from the normal CDF
    cuts = stats.norm.ppf(np.arange(1, 10) / 10)
    expected = population_stability_index(np.full(10, 0.1), np.diff(stats.norm.cdf(np.r_[-np.inf, cuts, np.inf], 0.5)))
    assert result.psi == pytest.approx(expected, rel=0.05)
    assert 0.2 < result.psi < 0.35
    assert result.drifted
    assert result.statistic_value == pytest.approx(stats.norm.cdf(0.25) - stats.norm.cdf(-0.25), abs=0.01)


def test_a_campaign_shift_drifts_price_and_region_but_not_the_unchanged_features():
    report = measure_drift(sample(5000, seed=1), sample(5000, seed=2, shift=0.5, apac=0.5), FEATURES, drift_share=0.5)
    scores = by_feature(report)
    assert scores["price"].drifted and scores["price"].psi > 0.5
    assert scores["region"].drifted and scores["region"].statistic_value > 0.2
    assert not scores["pages"].drifted and not scores["returning"].drifted
    assert report.drifted is True
    assert report.drifted_features == ("price", "region")
    assert "2 of 4 monitored features drifted" in report.reason


def test_drift_share_and_per_feature_thresholds_decide():
    reference, batch = sample(5000, seed=1), sample(5000, seed=2, shift=0.5)
    only_price = measure_drift(reference, batch, FEATURES, drift_share=0.5)
    assert only_price.drifted_features == ("price",) and only_price.drifted is False
    assert "1 of 4 monitored features drifted" in only_price.reason and "2 needed" in only_price.reason
    lenient = measure_drift(reference, batch, FEATURES, thresholds={"price": 5.0})
    assert lenient.drifted is False and by_feature(lenient)["price"].threshold == 5.0
    assert required_drifted(7, 0.25) == 2 and required_drifted(4, 0.25) == 1 and required_drifted(3, 0.01) == 1


def test_a_batch_below_the_minimum_gives_no_decision_and_says_so():
    report = measure_drift(sample(5000, seed=1), sample(120, seed=2, shift=1.0), FEATURES, min_batch_rows=500)
    assert report.drifted is None and not report.decided
    assert "no decision: the batch has 120 rows, fewer than the minimum of 500" in report.reason
    assert by_feature(report)["price"].psi > 0.2  # measured and shown, not acted on


def test_a_category_unseen_in_the_reference_counts_as_drift():
    reference = pd.DataFrame({"region": ["a", "b"] * 500})
    batch = pd.DataFrame({"region": ["a", "b", "c", "c"] * 250})
    result = by_feature(measure_drift(reference, batch, ["region"]))["region"]
    assert result.psi > 1.0 and result.drifted


def test_the_large_sample_ks_agrees_with_scipys_exact_statistic():
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"x": rng.gamma(2.0, 30.0, 150_000)})
    batch = pd.DataFrame({"x": rng.gamma(2.2, 30.0, 150_000)})
    assert len(reference) + len(batch) > drift.EXACT_KS_MAX_ROWS
    result = by_feature(measure_drift(reference, batch, ["x"]))["x"]
    exact = stats.ks_2samp(reference["x"], batch["x"])
    assert result.statistic_value == pytest.approx(exact.statistic, abs=0.002)
    assert result.p_value < 1e-10


def test_a_prepared_reference_gives_the_same_report_and_nulls_are_reported():
    reference, batch = sample(5000, seed=1), sample(5000, seed=2, shift=0.3)
    batch.loc[:99, "price"] = np.nan
    prepared = Reference.from_frame(reference, FEATURES)
    assert measure_drift(prepared, batch) == measure_drift(reference, batch, FEATURES)
    assert by_feature(measure_drift(prepared, batch))["price"].batch_null_share == pytest.approx(0.02)
    assert {"feature", "psi", "drifted"} <= set(measure_drift(prepared, batch).as_dict()["features"][0])
    assert "| price | numeric |" in measure_drift(prepared, batch).table()


def test_bad_input_is_refused_with_a_clear_message():
    reference = sample(1000, seed=1)
    with pytest.raises(ValueError, match=r"the batch has no rows \(expected at least one row"):
        measure_drift(reference, reference.iloc[:0], FEATURES)
    with pytest.raises(ValueError, match=r"the batch lacks monitored column\(s\) \['pages'\]"):
        measure_drift(reference, reference.drop(columns="pages"), FEATURES)
    with pytest.raises(ValueError, match=r"the batch's column\(s\) \['price'\] hold only nulls \(1,000 rows\)"):
        measure_drift(reference, reference.assign(price=np.nan), FEATURES)
    with pytest.raises(ValueError, match=r"the reference lacks monitored column\(s\) \['discount'\]"):
        measure_drift(reference, reference, [*FEATURES, "discount"])
    with pytest.raises(ValueError, match=r"the PSI threshold of price is 0; expected a number > 0"):
        measure_drift(reference, reference, FEATURES, thresholds={"price": 0})
    with pytest.raises(ValueError, match=r"prepared reference has no feature\(s\) \['discount'\]"):
        measure_drift(Reference.from_frame(reference, FEATURES), reference, ["discount"])


def test_the_spec_declares_monitoring_with_safe_defaults_and_refuses_unknown_features():
    from ml_platform_tests.models import CONVERSION

    assert CONVERSION.monitoring.psi_threshold == 0.2 and CONVERSION.promotion == "auto"
    assert CONVERSION.monitored_features == CONVERSION.features
    data = CONVERSION.model_dump()
    data["monitoring"] = {"feature_thresholds": {"colour": 0.3}}
    with pytest.raises(ValueError, match=r"monitoring names \['colour'\] which are not monitored features"):
        type(CONVERSION).model_validate(data)
    data["monitoring"] = {"features": ["price"], "feature_thresholds": {"price": -1}}
    with pytest.raises(ValueError, match=r"feature_thresholds\['price'\] is -1.0: a PSI threshold must be > 0"):
        type(CONVERSION).model_validate(data)
    data["promotion"] = "sometimes"
    data["monitoring"] = {}
    with pytest.raises(ValueError, match="promotion"):
        type(CONVERSION).model_validate(data)
