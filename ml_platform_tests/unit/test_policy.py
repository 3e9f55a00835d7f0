"""Unit tests for the model gates, judged on hand-built evaluations (no training)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from ml_platform.rules.policy import (
    MODEL_GATES,
    beats_trivial_baseline,
    meets_absolute_minimums,
    meets_segment_minimums,
    model_gate_names,
    model_gates,
    no_worse_than_champion,
    unpassed_gates,
)
from ml_platform.rules.spec import ModelSpec
from ml_platform.rules.training import CandidateReport, Evaluation
from ml_platform_tests.models import CONVERSION

SUBJECT = "candidate run-1"
REGIONS = ("us-east", "eu-west", "apac")

# Thresholds spelled out here, so a team retuning its shipped spec cannot change what these tests check.
SPEC = ModelSpec.model_validate(
    CONVERSION.model_dump()
    | {
        "segments": {"column": "region", "min_share": dict.fromkeys(REGIONS, 0.1)},
        "policy": {
            "min_metrics": {"accuracy": 0.75, "f1_macro": 0.72},
            "comparison_metric": "f1_macro",
            "baseline_margin": 0.05,
            "champion_tolerance": 0.01,
            "min_segment_f1": 0.65,
        },
    }
)
SPEC_WITHOUT_SEGMENT_FLOOR = ModelSpec.model_validate(
    SPEC.model_dump() | {"policy": SPEC.policy.model_dump() | {"min_segment_f1": None}}
)


def evaluation(**changes) -> Evaluation:
    """A good candidate on 600 test rows, 200 per region, with changes."""
    values = {
        "accuracy": 0.84,
        "f1_weighted": 0.83,
        "f1_macro": 0.80,
        "balanced_accuracy": 0.81,
        "f1_per_class": {"0": 0.86, "1": 0.74},
        "f1_per_segment": dict.fromkeys(REGIONS, 0.80),
        "rows_per_segment": dict.fromkeys(REGIONS, 200),
        "confusion": [[300, 40], [56, 204]],
        "classes": ["0", "1"],
        "test_rows": 600,
    }
    return Evaluation(**(values | changes))


def chance_level(**changes) -> Evaluation:
    """A majority-class predictor on the same split."""
    values = {
        "accuracy": 0.567,
        "f1_weighted": 0.41,
        "f1_macro": 0.36,
        "balanced_accuracy": 0.5,
        "f1_per_class": {"0": 0.72, "1": 0.0},
        "f1_per_segment": dict.fromkeys(REGIONS, 0.4),
        "confusion": [[340, 0], [260, 0]],
    }
    return evaluation(**(values | changes))


def report(candidate: Evaluation | None = None, **changes) -> CandidateReport:
    return CandidateReport(candidate=candidate or evaluation(), baseline=chance_level(), **changes)


# --- meets_absolute_minimums -------------------------------------------------------------------------------


def test_absolute_minimums_pass_and_list_every_floor():
    result = meets_absolute_minimums(report(), SPEC, SUBJECT)
    assert result.passed
    assert result.gate == "meets_absolute_minimums"
    assert [(rule.rule, rule.observed, rule.required) for rule in result.rules] == [
        ("accuracy", 0.84, ">= 0.75"),
        ("f1_macro", 0.80, ">= 0.72"),
    ]
    assert result.summary() == f"meets_absolute_minimums passed on {SUBJECT} (2 rules)"


def test_absolute_minimums_pass_exactly_at_the_floor():
    assert meets_absolute_minimums(report(evaluation(accuracy=0.75, f1_macro=0.72)), SPEC, SUBJECT).passed


def test_absolute_minimums_fail_on_one_metric():
    result = meets_absolute_minimums(report(evaluation(accuracy=0.70)), SPEC, SUBJECT)
    assert not result.passed
    assert [rule.rule for rule in result.violations] == ["accuracy"]
    assert result.summary() == (
        f"meets_absolute_minimums failed on {SUBJECT}:\n  - accuracy: observed 0.7000, required >= 0.75"
    )


def test_absolute_minimums_report_every_violated_metric_at_once():
    result = meets_absolute_minimums(report(evaluation(accuracy=0.70, f1_macro=0.5)), SPEC, SUBJECT)
    assert [rule.rule for rule in result.violations] == ["accuracy", "f1_macro"]
    summary = result.summary()
    assert "accuracy: observed 0.7000, required >= 0.75" in summary
    assert "f1_macro: observed 0.5000, required >= 0.72" in summary


# --- beats_trivial_baseline --------------------------------------------------------------------------------


def test_baseline_gate_passes_a_candidate_well_above_chance():
    result = beats_trivial_baseline(report(), SPEC, SUBJECT)
    assert result.passed
    (rule,) = result.rules
    assert rule.rule == "f1_macro over DummyClassifier(prior)"
    assert rule.note == "baseline 0.3600"


def test_baseline_gate_names_the_baseline_strategy():
    result = beats_trivial_baseline(report(baseline_strategy="stratified"), SPEC, SUBJECT)
    assert result.rules[0].rule == "f1_macro over DummyClassifier(stratified)"


def test_baseline_gate_fails_a_chance_level_candidate():
    result = beats_trivial_baseline(report(chance_level()), SPEC, SUBJECT)
    assert not result.passed
    assert "f1_macro over DummyClassifier(prior): observed 0.3600, required > 0.3600 + 0.05 (baseline 0.3600)" in (
        result.summary()
    )


def test_baseline_gate_fails_a_chance_level_candidate_even_with_no_absolute_floor_in_its_way():
    lax = ModelSpec.model_validate(
        SPEC.model_dump() | {"policy": SPEC.policy.model_dump() | {"min_metrics": {"accuracy": 0.0}}}
    )
    weak = report(chance_level())
    assert meets_absolute_minimums(weak, lax, SUBJECT).passed
    assert not beats_trivial_baseline(weak, lax, SUBJECT).passed


@pytest.mark.parametrize(("f1_macro", "passed"), [(0.40, False), (0.41, False), (0.4101, True), (0.45, True)])
def test_baseline_gate_respects_the_margin(f1_macro, passed):
    result = beats_trivial_baseline(report(evaluation(f1_macro=f1_macro)), SPEC, SUBJECT)
    assert result.passed is passed


def test_baseline_gate_uses_the_comparison_metric_not_accuracy():
    candidate = evaluation(accuracy=0.99, f1_macro=0.37)
    assert not beats_trivial_baseline(report(candidate), SPEC, SUBJECT).passed


# --- no_worse_than_champion --------------------------------------------------------------------------------


def test_first_model_passes_with_no_champion_yet():
    result = no_worse_than_champion(report(), SPEC, SUBJECT)
    assert result.passed
    assert result.note == "no champion yet: the first model passes"
    assert result.rules[0].required == "no champion yet"
    assert result.summary().endswith("(1 rules): no champion yet: the first model passes")


@pytest.mark.parametrize("candidate_f1", [0.80, 0.81, 0.79])
def test_champion_gate_passes_a_candidate_within_tolerance(candidate_f1):
    champion = evaluation(f1_macro=0.80)
    result = no_worse_than_champion(
        report(evaluation(f1_macro=candidate_f1), champion=champion, champion_version="3"), SPEC, SUBJECT
    )
    assert result.passed
    assert result.details == {"champion_version": "3"}
    assert result.rules[0].note == "champion re-scored on this test split: 0.8000"


def test_champion_gate_fails_a_candidate_below_tolerance_and_names_the_champion():
    champion = evaluation(f1_macro=0.80)
    result = no_worse_than_champion(
        report(evaluation(f1_macro=0.78), champion=champion, champion_version="3"), SPEC, SUBJECT
    )
    assert not result.passed
    assert result.summary() == (
        f"no_worse_than_champion failed on {SUBJECT}:\n"
        "  - f1_macro vs champion v3: observed 0.7800, required >= 0.8000 - 0.01 "
        "(champion re-scored on this test split: 0.8000)"
    )


def test_champion_gate_with_zero_tolerance_fails_any_drop():
    strict = ModelSpec.model_validate(
        SPEC.model_dump() | {"policy": SPEC.policy.model_dump() | {"champion_tolerance": 0.0}}
    )
    champion = evaluation(f1_macro=0.80)
    assert not no_worse_than_champion(
        report(evaluation(f1_macro=0.7999), champion=champion, champion_version="1"), strict, SUBJECT
    ).passed


def test_champion_that_could_not_be_rescored_fails_the_gate():
    result = no_worse_than_champion(
        report(champion_version="4", champion_error="skops refused the artifact"), SPEC, SUBJECT
    )
    assert not result.passed
    summary = result.summary()
    assert "f1_macro vs champion v4" in summary
    assert "the champion could not be re-scored: skops refused the artifact" in summary


def test_champion_error_wins_over_a_stale_champion_evaluation():
    stale = report(champion=evaluation(f1_macro=0.1), champion_version="4", champion_error="input schema changed")
    assert not no_worse_than_champion(stale, SPEC, SUBJECT).passed


# --- meets_segment_minimums --------------------------------------------------------------------------------


def test_segment_gate_passes_when_every_segment_clears_the_floor():
    result = meets_segment_minimums(report(), SPEC, SUBJECT)
    assert result.passed
    assert [rule.rule for rule in result.rules] == [f"f1 in {region}" for region in REGIONS]
    assert {rule.note for rule in result.rules} == {"200 test rows"}


def test_segment_gate_fails_a_segment_below_the_floor():
    candidate = evaluation(f1_per_segment=dict.fromkeys(REGIONS, 0.80) | {"eu-west": 0.60})
    result = meets_segment_minimums(report(candidate), SPEC, SUBJECT)
    assert not result.passed
    assert [rule.rule for rule in result.violations] == ["f1 in eu-west"]
    assert "f1 in eu-west: observed 0.6000, required >= 0.65 (200 test rows)" in result.summary()


def test_segment_gate_fails_a_segment_with_no_test_rows():
    candidate = evaluation(
        f1_per_segment={"us-east": 0.8, "eu-west": 0.8},
        rows_per_segment={"us-east": 300, "eu-west": 300, "apac": 0},
    )
    result = meets_segment_minimums(report(candidate), SPEC, SUBJECT)
    assert not result.passed
    assert "f1 in apac: observed no test rows, required >= 0.65" in result.summary()


def test_segment_gate_fails_a_segment_absent_from_the_evaluation():
    candidate = evaluation(
        f1_per_segment={"us-east": 0.8, "eu-west": 0.8}, rows_per_segment={"us-east": 300, "eu-west": 300}
    )
    result = meets_segment_minimums(report(candidate), SPEC, SUBJECT)
    assert [rule.rule for rule in result.violations] == ["f1 in apac"]


def test_segment_gate_ignores_segments_the_spec_does_not_expect():
    candidate = evaluation(
        f1_per_segment=dict.fromkeys(REGIONS, 0.8) | {"mars": 0.0},
        rows_per_segment=dict.fromkeys(REGIONS, 200) | {"mars": 3},
    )
    assert meets_segment_minimums(report(candidate), SPEC, SUBJECT).passed


# --- which gates apply -------------------------------------------------------------------------------------


def test_every_gate_applies_with_a_segment_floor():
    assert model_gate_names(SPEC) == list(MODEL_GATES)


def test_segment_gate_is_left_out_without_a_segment_floor():
    assert model_gate_names(SPEC_WITHOUT_SEGMENT_FLOOR) == [
        "meets_absolute_minimums",
        "beats_trivial_baseline",
        "no_worse_than_champion",
    ]


def test_model_gates_judge_in_declared_order_and_report_each_verdict():
    candidate = evaluation(accuracy=0.6, f1_per_segment=dict.fromkeys(REGIONS, 0.8) | {"apac": 0.1})
    results = model_gates(report(candidate), SPEC, SUBJECT)
    assert [result.gate for result in results] == list(MODEL_GATES)
    assert [result.passed for result in results] == [False, True, True, False]
    assert {result.subject for result in results} == {SUBJECT}


def test_model_gates_without_segment_floor_never_need_segments():
    candidate = evaluation(f1_per_segment={}, rows_per_segment={})
    results = model_gates(report(candidate), SPEC_WITHOUT_SEGMENT_FLOOR, SUBJECT)
    assert [result.gate for result in results] == list(MODEL_GATES[:3])
    assert all(result.passed for result in results)


# --- the report as data ------------------------------------------------------------------------------------


def test_metric_reads_a_named_metric_as_float():
    assert evaluation().metric("balanced_accuracy") == 0.81
    assert isinstance(evaluation(accuracy=1).metric("accuracy"), float)


@pytest.mark.parametrize(
    "original",
    [
        report(),
        report(champion=evaluation(f1_macro=0.7), champion_version="12", notes=["re-scored on split abc"]),
        report(champion_version="2", champion_error="artifact missing"),
        report(baseline_strategy="uniform"),
    ],
    ids=["first-model", "with-champion", "champion-error", "uniform-baseline"],
)
def test_candidate_report_round_trips_through_json(original):
    data = json.loads(json.dumps(original.as_dict()))
    restored = CandidateReport.from_dict(data)
    assert restored == original
    assert restored.as_dict() == original.as_dict()


def test_candidate_report_as_dict_has_every_field():
    data = report().as_dict()
    assert set(data) == {field.name for field in dataclasses.fields(CandidateReport)}
    assert data["champion"] is None
    assert set(data["candidate"]) == {field.name for field in dataclasses.fields(Evaluation)}


def test_candidate_report_from_an_older_record_defaults_the_optional_fields():
    data = report().as_dict()
    for optional in ("champion", "champion_version", "champion_error", "baseline_strategy", "notes"):
        data.pop(optional)
    restored = CandidateReport.from_dict(data)
    assert restored == report()


# --- every recorded gate passed: what lets a registered version hold an alias ---------------------------------


def test_a_version_whose_recorded_gates_all_passed_has_no_problem():
    assert unpassed_gates({"conversion/candidate_model:meets_absolute_minimums": "passed", "x:y": "passed"}) == []


def test_a_failed_or_unjudged_gate_is_named_with_its_verdict():
    recorded = {"m/registry_entry:b": "passed", "m/candidate_model:a": "failed", "m/features:c": "skipped"}
    assert unpassed_gates(recorded) == ["m/candidate_model:a: failed", "m/features:c: skipped"]


@pytest.mark.parametrize("recorded", [None, {}, [], "passed", 3], ids=repr)
def test_no_recorded_gates_is_a_problem_too(recorded):
    assert unpassed_gates(recorded) == [
        "no gate results recorded (the version was not registered through the gated graph)"
    ]


def test_the_registry_reads_the_recorded_gates_from_the_versions_tag():
    from ml_platform.stores.registry import gate_problems

    assert gate_problems({"ml_platform.gates": json.dumps({"a:b": "passed"})}) == []
    assert gate_problems({"ml_platform.gates": json.dumps({"a:b": "failed"})}) == ["a:b: failed"]
    assert gate_problems({"ml_platform.gates": "{not json"}) == unpassed_gates(None)
    assert gate_problems({}) == unpassed_gates(None)
