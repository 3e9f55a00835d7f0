"""Model gates through real materializations with a real MLflow store: each passes and fails."""

import dagster as dg
import numpy as np
import pytest
from growth.conversion.demo_data import generate

from ml_platform.defs.factory import model_definitions
from ml_platform.stores.registry import PREVIOUS_CHAMPION, current_champion
from ml_platform_tests.harness import check_results, failed_checks, failure_messages, materialized

pytestmark = pytest.mark.e2e

FAST = {"max_iter": 60, "learning_rate": 0.15, "max_leaf_nodes": 31, "early_stopping": False, "random_state": 42}
WEAK = {"max_iter": 5, "max_depth": 1, "learning_rate": 0.5, "early_stopping": False, "random_state": 0}
MODEL_GATES = ["beats_trivial_baseline", "meets_absolute_minimums", "meets_segment_minimums", "no_worse_than_champion"]


def _champion(platform):
    return current_champion(platform.store, platform.spec.name)


def test_a_good_first_candidate_passes_every_model_gate_and_becomes_champion(make_platform):
    platform = make_platform(params=FAST)
    platform.land(generate(3000, seed=1))
    result = platform.materialize()
    checks = check_results(result)
    assert result.success, failure_messages(result)
    assert all(checks[name].passed for name in MODEL_GATES)
    assert "no champion yet" in checks["no_worse_than_champion"].description
    assert "registry_entry" in materialized(result)
    assert _champion(platform).version == "1"

    # Each rule's number and threshold are metadata, under names that are the same on every run.
    policy = platform.spec.policy
    minimums = checks["meets_absolute_minimums"].metadata
    for metric, floor in policy.min_metrics.items():
        assert isinstance(minimums[metric], dg.FloatMetadataValue)
        assert minimums[f"{metric}.threshold"].value == floor <= minimums[metric].value
    metric = policy.comparison_metric
    baseline = checks["beats_trivial_baseline"].metadata
    assert baseline[f"{metric} over baseline"].value > baseline[f"{metric} over baseline.threshold"].value
    first = checks["no_worse_than_champion"].metadata
    assert 0 < first[f"{metric} vs champion"].value <= 1
    assert f"{metric} vs champion.threshold" not in first  # nothing to compare with yet
    segments = checks["meets_segment_minimums"].metadata
    for segment in platform.spec.segments.min_share:
        assert (
            segments[f"f1 in {segment}.threshold"].value == policy.min_segment_f1 <= segments[f"f1 in {segment}"].value
        )


def test_a_candidate_below_the_absolute_minimums_is_stopped(make_platform):
    base = make_platform()
    policy = base.spec.policy.model_copy(update={"min_metrics": {"accuracy": 0.99, "f1_macro": 0.98}})
    platform = make_platform(params=FAST, policy=policy)
    platform.land(generate(3000, seed=1))
    result = platform.materialize()
    assert not result.success
    assert failed_checks(result) == ["meets_absolute_minimums"]
    description = check_results(result)["meets_absolute_minimums"].description
    assert "accuracy: observed 0.8" in description and "required >= 0.99" in description
    assert "f1_macro" in description  # every violated floor, at once
    metadata = check_results(result)["meets_absolute_minimums"].metadata
    assert 0.8 <= metadata["accuracy"].value < 0.99
    assert metadata["accuracy.threshold"] == dg.MetadataValue.float(0.99)
    assert metadata["f1_macro"].value < metadata["f1_macro.threshold"].value == 0.98
    assert "registry_entry" not in materialized(result)
    assert _champion(platform) is None


def test_a_chance_level_candidate_does_not_beat_the_trivial_baseline(make_platform):
    base = make_platform()
    policy = base.spec.policy.model_copy(update={"min_metrics": {"accuracy": 0.0}, "min_segment_f1": 0.0})
    platform = make_platform(params=FAST, policy=policy)
    data = generate(3000, seed=1)
    data["converted"] = np.random.default_rng(7).permutation(data["converted"].to_numpy())  # labels carry no signal
    platform.land(data)
    result = platform.materialize()
    assert not result.success
    assert "beats_trivial_baseline" in failed_checks(result)
    assert "baseline" in check_results(result)["beats_trivial_baseline"].description
    assert _champion(platform) is None


def test_a_weak_segment_stops_promotion(make_platform):
    base = make_platform()
    policy = base.spec.policy.model_copy(update={"min_segment_f1": 0.99})
    platform = make_platform(params=FAST, policy=policy)
    platform.land(generate(3000, seed=1))
    result = platform.materialize()
    assert failed_checks(result) == ["meets_segment_minimums"]
    description = check_results(result)["meets_segment_minimums"].description
    assert "f1 in apac" in description and ">= 0.99" in description
    assert _champion(platform) is None


def test_a_candidate_worse_than_the_champion_leaves_the_champion_in_place(make_platform):
    platform = make_platform(params=FAST)
    platform.land(generate(3000, seed=1))
    assert platform.materialize().success
    champion = _champion(platform)

    platform.spec = platform.spec.model_copy(update={"params": WEAK})  # a team's bad hyperparameter change
    platform.land(generate(3000, seed=2))
    result = platform.materialize()
    assert not result.success
    assert failed_checks(result) == ["no_worse_than_champion"]
    gate = check_results(result)["no_worse_than_champion"]
    assert f"champion v{champion.version}" in gate.description
    metric = platform.spec.policy.comparison_metric
    candidate = [e for e in result.get_asset_materialization_events() if e.asset_key == platform.keys.candidate][0]
    report = candidate.step_materialization_data.materialization.metadata["evaluation"].value
    floor = report["champion"][metric] - platform.spec.policy.champion_tolerance
    assert gate.metadata[f"{metric} vs champion.threshold"].value == pytest.approx(floor)
    assert gate.metadata[f"{metric} vs champion"].value < floor
    assert _champion(platform) == champion
    assert "registry_entry" not in materialized(result)


def test_a_failed_gate_holds_in_a_later_run_that_asks_for_registry_entry_alone(make_platform):
    base = make_platform()
    policy = base.spec.policy.model_copy(update={"min_metrics": {"accuracy": 0.99}})
    platform = make_platform(params=FAST, policy=policy)
    platform.land(generate(3000, seed=1))
    assert not platform.materialize().success  # the candidate is stored, its gate failed

    later = platform.materialize("registry_entry")
    assert not later.success
    message = failure_messages(later)
    assert "registry_entry" in message and "meets_absolute_minimums FAILED" in message
    assert _champion(platform) is None


def test_registry_entry_refuses_a_candidate_whose_gates_never_ran(make_platform):
    platform = make_platform(params=FAST)
    platform.land(generate(3000, seed=1))
    assert platform.materialize("dataset_snapshot", "validated_features").success
    defs = model_definitions(platform.spec)
    without_model_gates = dg.AssetSelection.assets(platform.keys.candidate, platform.keys.registry).without_checks()
    result = dg.materialize(
        [*defs.assets, *defs.asset_checks],
        instance=platform.instance,
        resources=platform.resources(),
        selection=without_model_gates,
        raise_on_error=False,
    )
    assert not result.success
    assert "no completed evaluation" in failure_messages(result)
    assert _champion(platform) is None


def test_an_identical_candidate_is_not_registered_twice(make_platform):
    platform = make_platform(params=FAST)
    platform.land(generate(3000, seed=1))
    assert platform.materialize().success
    again = platform.materialize()
    assert again.success
    registry = [e for e in again.get_asset_materialization_events() if e.asset_key == platform.keys.registry][0]
    metadata = registry.step_materialization_data.materialization.metadata
    assert metadata["promoted"].value is False
    assert "no-op: version 1 already holds this candidate" in metadata["note"].value
    assert _champion(platform).version == "1"


def test_a_better_candidate_moves_champion_and_keeps_the_previous_one_reachable(make_platform):
    platform = make_platform(params=WEAK)
    base_policy = platform.spec.policy
    platform.spec = platform.spec.model_copy(
        update={"policy": base_policy.model_copy(update={"min_metrics": {"accuracy": 0.5}, "min_segment_f1": 0.0})}
    )
    platform.land(generate(3000, seed=1))
    assert platform.materialize().success

    platform.spec = platform.spec.model_copy(update={"params": FAST})
    platform.land(generate(3000, seed=2))
    assert platform.materialize().success
    champion = _champion(platform)
    assert champion.version == "2"
    assert champion.tags["ml_platform.previous_champion"] == "1"
    client = platform.store.client()
    assert str(client.get_model_version_by_alias(platform.spec.name, PREVIOUS_CHAMPION).version) == "1"
    assert client.get_model_version(platform.spec.name, "1").tags["ml_platform.replaced_by"] == "2"


def test_rows_the_champion_trained_on_are_left_out_of_the_champion_comparison(make_platform):
    platform = make_platform(params=FAST)
    last_week = generate(3000, seed=1)
    platform.land(last_week, "week-1.csv")
    assert platform.materialize().success

    platform.land(generate(3000, seed=2), "week-2.csv", replace=False)  # the folder keeps last week's export
    result = platform.materialize()
    gate = check_results(result)["no_worse_than_champion"]
    assert gate.passed, gate.description  # twice the data, same parameters, compared fairly
    candidate = [e for e in result.get_asset_materialization_events() if e.asset_key == platform.keys.candidate][0]
    report = candidate.step_materialization_data.materialization.metadata["evaluation"].value
    assert report["champion_rows_excluded"] > 0
    assert report["candidate_on_champion_rows"]["test_rows"] == report["champion"]["test_rows"]
    assert report["champion"]["test_rows"] == report["candidate"]["test_rows"] - report["champion_rows_excluded"]
