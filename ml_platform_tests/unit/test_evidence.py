"""Unit tests for gate evidence: GateResult's verdict, summary and table, and capped lists."""

from __future__ import annotations

import pytest

from ml_platform.errors import ContractViolation, PromotionBlocked, SnapshotCorrupted
from ml_platform.rules.evidence import GateResult, Rule, capped

PASSING = Rule("rows", 12_345, ">= 1,000", True)
FAILING = Rule("accuracy", 0.71234, ">= 0.75", False, "on 500 test rows")
FAILING_TOO = Rule("region", "no test rows", ">= 0.65", False)


def test_gate_passes_when_every_rule_passes():
    result = GateResult("has_enough_rows", "snapshot abc", (PASSING, Rule("other", 1.0, ">= 0.5", True)))
    assert result.passed
    assert result.violations == ()


def test_gate_fails_when_any_rule_fails_and_lists_violations_in_order():
    result = GateResult("meets_absolute_minimums", "candidate", (FAILING, PASSING, FAILING_TOO))
    assert not result.passed
    assert result.violations == (FAILING, FAILING_TOO)


def test_passing_summary_names_gate_subject_and_rule_count():
    result = GateResult("has_enough_rows", "snapshot abc", (PASSING,))
    assert result.summary() == "has_enough_rows passed on snapshot abc (1 rules)"


def test_passing_summary_carries_the_note():
    result = GateResult("no_worse_than_champion", "candidate", (PASSING,), note="no champion yet")
    assert result.summary() == "no_worse_than_champion passed on candidate (1 rules): no champion yet"


def test_failing_summary_lists_each_violation_as_observed_vs_required():
    result = GateResult("meets_absolute_minimums", "candidate run-1", (FAILING, PASSING, FAILING_TOO))
    assert result.summary().splitlines() == [
        "meets_absolute_minimums failed on candidate run-1:",
        "  - accuracy: observed 0.7123, required >= 0.75 (on 500 test rows)",
        "  - region: observed no test rows, required >= 0.65",
    ]


def test_failing_summary_leaves_out_passing_rules():
    result = GateResult("gate", "subject", (FAILING, PASSING))
    assert "12,345" not in result.summary()
    assert len(result.summary().splitlines()) == 2


def test_table_is_markdown_with_every_rule():
    result = GateResult("gate", "subject", (PASSING, FAILING, Rule("flag", True, "True", True)))
    assert result.table().splitlines() == [
        "| rule | observed | required | passed |",
        "|---|---|---|---|",
        "| rows | 12,345 | >= 1,000 | yes |",
        "| accuracy | 0.7123 | >= 0.75 | **NO** |",
        "| flag | True | True | yes |",
    ]


def test_table_ends_with_the_note():
    table = GateResult("gate", "subject", (PASSING,), note="first model: nothing to compare with").table()
    assert table.endswith("| yes |\n\nfirst model: nothing to compare with\n")


def test_a_rule_s_numbers_are_optional_and_go_under_its_name():
    assert (FAILING.value, FAILING.threshold, FAILING.series) == (None, None, "accuracy")
    counted = Rule("rows", 12_345, ">= 1,000 (min_rows)", True, value=12_345, threshold=1_000)
    assert (counted.value, counted.threshold, counted.series) == (12_345, 1_000, "rows")


def test_a_rule_whose_text_changes_between_runs_names_its_numbers_by_its_measure():
    rule = Rule(
        "f1 vs champion v7", 0.81, ">= 0.8000 - 0.01", True, value=0.81, threshold=0.79, measure="f1 vs champion"
    )
    assert rule.series == "f1 vs champion"


def test_numbers_do_not_change_what_a_person_reads():
    plain = GateResult("gate", "subject", (Rule("rows", 12_345, ">= 1,000", False),))
    numbered = GateResult("gate", "subject", (Rule("rows", 12_345, ">= 1,000", False, value=12_345, threshold=1_000),))
    assert (numbered.summary(), numbered.table()) == (plain.summary(), plain.table())


def test_gate_result_is_immutable():
    result = GateResult("gate", "subject", (PASSING,))
    with pytest.raises(AttributeError):
        result.gate = "other"


@pytest.mark.parametrize(
    ("items", "limit", "expected"),
    [
        ([], 5, "[]"),
        (["a"], 5, "['a']"),
        (["a", "b", "c", "d", "e"], 5, "['a', 'b', 'c', 'd', 'e']"),
        (["a", "b", "c", "d", "e", "f", "g"], 5, "['a', 'b', 'c', 'd', 'e', … 2 more]"),
        ([1, 2, 3], 2, "[1, 2, … 1 more]"),
    ],
)
def test_capped_shows_the_first_items_and_counts_the_rest(items, limit, expected):
    assert capped(items, limit) == expected


def test_capped_defaults_to_five_items():
    assert capped(list(range(100))) == "[0, 1, 2, 3, 4, … 95 more]"


def test_exception_types_let_callers_catch_by_cause():
    assert issubclass(ContractViolation, ValueError)
    assert issubclass(SnapshotCorrupted, ContractViolation)
    assert issubclass(PromotionBlocked, RuntimeError)
    assert not issubclass(PromotionBlocked, ValueError)
