"""Unit tests of the data gates on small hand-made frames: each passes, fails, and reports every violation."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from growth.conversion.contract import DEVICES, ConversionFeatures, ConversionRecord
from growth.conversion.spec import REGIONS

from ml_platform.rules import contracts
from ml_platform.rules.spec import LandingLimits
from ml_platform_tests.models import CONVERSION

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SPEC = CONVERSION.model_copy(update={"min_rows": 10})
SUBJECT = "dataset_snapshot 'conversion' abc123"


def sessions(rows: int = 10) -> pd.DataFrame:
    """Ten valid sessions, two per region, both labels, the newest an hour old: every gate passes."""
    index = np.arange(rows)
    return pd.DataFrame(
        {
            "session_id": [f"s-{i}" for i in index],
            "event_time": [(NOW - timedelta(hours=1 + int(i))).isoformat() for i in index],
            "region": [REGIONS[i % len(REGIONS)] for i in index],
            "device": [DEVICES[i % len(DEVICES)] for i in index],
            "price": 20.0 + index,
            "discount": np.where(index % 2 == 0, 0.0, 0.25),
            "pages_viewed": 1 + index,
            "time_on_site_s": 30.0 * index,
            "returning_customer": index % 3 == 0,
            "converted": index % 2,
        }
    )


def rules(result) -> dict[str, contracts.Rule]:
    return {rule.rule: rule for rule in result.rules}


def violated(result) -> dict[str, contracts.Rule]:
    return {rule.rule: rule for rule in result.violations}


def test_every_gate_passes_on_valid_sessions():
    results = contracts.snapshot_gates(sessions(), SPEC, ConversionRecord, SUBJECT, now=NOW)

    assert [r.gate for r in results] == contracts.snapshot_gate_names(SPEC)
    assert [r.gate for r in results if not r.passed] == []
    assert all(r.subject == SUBJECT for r in results)


def test_the_gate_list_follows_the_spec():
    bare = SPEC.model_copy(update={"key_column": None, "segments": None, "freshness": None})
    expected = ["schema_holds", "has_enough_rows", "has_no_nulls", "labels_are_known"]
    assert contracts.snapshot_gate_names(bare) == expected


# schema_holds


def test_schema_holds_passes_and_names_the_contract():
    result = contracts.schema_holds(sessions(), ConversionRecord, SUBJECT)
    assert result.passed
    assert rules(result)["ConversionRecord holds"].observed == "10 rows x 10 columns valid"


def test_schema_holds_reports_every_broken_column_at_once():
    frame = sessions().drop(columns=["device"]).assign(coupon="X").astype({"price": object})
    frame.loc[3, "price"] = "abc"
    frame.loc[4, "region"] = "mars"
    frame.loc[5, "discount"] = 0.95

    result = contracts.schema_holds(frame, ConversionRecord, SUBJECT)

    assert not result.passed
    found = {rule: (found.observed, found.required) for rule, found in violated(result).items()}
    assert found == {  # price is reported once, by its coercion, not again by its dtype and range checks
        "required columns present": ("missing ['device']", "every column of ConversionRecord"),
        "no unexpected columns": ("unexpected ['coupon']", "only the columns of ConversionRecord"),
        "column price: coerce_dtype('float64')": (
            "1 failing value(s), e.g. ['abc'] in rows [3]",
            "every value convertible to float64",
        ),
        f"column region: isin({list(REGIONS)})": (
            "1 failing value(s), e.g. ['mars'] in rows [4]",
            f"isin({list(REGIONS)})",
        ),
        "column discount: less_than_or_equal_to(0.9)": (
            "1 failing value(s), e.g. ['0.95'] in rows [5]",
            "less_than_or_equal_to(0.9)",
        ),
    }
    case = {"column": "price", "check": "coerce_dtype('float64')", "failure_case": "abc", "index": "3"}
    assert case in result.details["failure_cases"]
    summary = result.summary()
    assert summary.startswith(f"schema_holds failed on {SUBJECT}:")
    assert "observed missing ['device'], required every column of ConversionRecord" in summary


def test_schema_holds_reports_nulls_with_their_rows():
    frame = sessions()
    frame.loc[[2, 7], "price"] = np.nan

    found = violated(contracts.schema_holds(frame, ConversionRecord, SUBJECT))

    assert found["column price: not_nullable"].observed == "2 null value(s) in rows [2, 7]"
    assert found["column price: not_nullable"].required == "no nulls"


def test_schema_holds_under_another_gate_name_for_the_feature_contract():
    features = sessions().assign(split=["train"] * 7 + ["test", "test", "validation"])

    result = contracts.schema_holds(features, ConversionFeatures, SUBJECT, gate="feature_contract_holds")

    assert result.gate == "feature_contract_holds"
    [rule] = result.violations
    assert rule.rule == "column split: isin(['train', 'test'])"
    assert rule.observed == "1 failing value(s), e.g. ['validation'] in rows [9]"


def test_schema_holds_lets_a_crash_through():
    class Broken:
        __name__ = "Broken"

        @staticmethod
        def validate(frame, lazy, inplace=False):
            raise RuntimeError("pandera is broken")

    with pytest.raises(RuntimeError, match="pandera is broken"):  # a crashed check is not a failed check
        contracts.schema_holds(sessions(), Broken, SUBJECT)


# has_enough_rows


def test_has_enough_rows():
    assert contracts.has_enough_rows(sessions(10), SPEC, SUBJECT).passed

    result = contracts.has_enough_rows(sessions(3), SPEC, SUBJECT)

    assert not result.passed
    assert (violated(result)["rows"].observed, violated(result)["rows"].required) == (3, ">= 10 (min_rows)")
    assert "rows: observed 3, required >= 10 (min_rows)" in result.summary()


# has_no_nulls


def test_has_no_nulls_passes_and_checks_every_required_column():
    result = contracts.has_no_nulls(sessions(), SPEC, SUBJECT)
    assert result.passed
    assert len(result.rules) == len(SPEC.required_columns)


def test_has_no_nulls_reports_every_column_with_nulls():
    frame = sessions()
    frame.loc[[1, 4], "price"] = np.nan
    frame.loc[6, "converted"] = None
    frame = frame.drop(columns=["device"])

    found = violated(contracts.has_no_nulls(frame, SPEC, SUBJECT))

    assert set(found) == {"nulls in price", "nulls in converted", "column device present"}
    assert (found["nulls in price"].observed, found["nulls in price"].required) == (2, "0")
    assert found["nulls in price"].note == "e.g. rows [1, 4]"
    assert found["nulls in converted"].observed == 1
    assert found["column device present"].observed == "missing"


# labels_are_known


def test_labels_are_known_passes_and_counts_the_classes():
    result = contracts.labels_are_known(sessions(), SPEC, SUBJECT)
    assert result.passed
    assert result.details["label_counts"] == {"0": 5, "1": 5}


def test_labels_are_known_reports_an_unknown_and_an_absent_class_at_once():
    frame = sessions().assign(converted=[0, 2, 0, 2, 0, 2, 0, 0, 0, 0])

    found = violated(contracts.labels_are_known(frame, SPEC, SUBJECT))

    unknown = found["unknown label values"]
    assert (unknown.observed, unknown.required, unknown.note) == ("['2']", "only ['0', '1']", "3 rows")
    absent = found["declared classes present"]
    assert (absent.observed, absent.required, absent.note) == ("1 of 2", "all of ['0', '1']", "missing ['1']")


def test_labels_are_known_reads_float_coded_labels_as_their_classes():
    frame = sessions()
    frame["converted"] = frame["converted"].astype(float)
    frame.loc[0, "converted"] = np.nan  # what one empty cell does to a CSV's integer column

    result = contracts.labels_are_known(frame, SPEC, SUBJECT)

    assert result.passed, result.summary()  # the null is has_no_nulls' to report, not an unknown '0.0'


def test_labels_are_known_names_a_missing_label_column():
    result = contracts.labels_are_known(sessions().drop(columns=["converted"]), SPEC, SUBJECT)
    assert violated(result)["column converted present"].observed == "missing"


# keys_are_unique


def test_keys_are_unique():
    assert contracts.keys_are_unique(sessions(), SPEC, SUBJECT).passed

    keys = ["s-0", "s-1", "s-1", "s-3", "s-4", "s-4", "s-4", "s-7", "s-8", "s-9"]
    frame = sessions().assign(session_id=keys)
    rule = violated(contracts.keys_are_unique(frame, SPEC, SUBJECT))["duplicate session_id values"]

    assert (rule.observed, rule.required) == (2, "0")
    assert rule.note == "5 rows share ['s-1', 's-4']"


def test_keys_are_unique_names_a_missing_key_column():
    result = contracts.keys_are_unique(sessions().drop(columns=["session_id"]), SPEC, SUBJECT)
    assert violated(result)["column session_id present"].observed == "missing"


# has_every_segment


def test_has_every_segment_passes_and_counts_rows_per_segment():
    result = contracts.has_every_segment(sessions(), SPEC, SUBJECT)
    assert result.passed
    assert result.details["rows_per_segment"] == dict.fromkeys(REGIONS, 2)
    assert rules(result)["region 'apac' share"].observed == "20.0% (2 rows)"


def test_has_every_segment_names_the_missing_segments_of_a_partial_export():
    frame = sessions().assign(region="us-east")

    result = contracts.has_every_segment(frame, SPEC, SUBJECT)

    found = violated(result)
    missing = ["us-west", "eu-west", "eu-central", "apac"]
    assert list(found) == [*(f"region '{region}' share" for region in missing), "region values present"]
    for region in missing:
        assert (found[f"region '{region}' share"].observed, found[f"region '{region}' share"].required) == (
            "0.0% (0 rows)",
            ">= 5.0% of 10",
        )
    coverage = found["region values present"]
    assert coverage.observed == "['us-east']"
    assert coverage.required == f"all of {sorted(REGIONS)}"
    assert coverage.note == (
        "missing ['apac', 'eu-central', 'eu-west', 'us-west']: the snapshot covers only ['us-east'] "
        "from 2026-11-27 to 2026-11-27. Is this a partial export?"
    )
    assert "Is this a partial export?" in result.summary()


def test_has_every_segment_fails_a_segment_below_its_share():
    frame = pd.concat([sessions(10), sessions(40).query("region != 'apac'")], ignore_index=True)

    [rule] = violated(contracts.has_every_segment(frame, SPEC, SUBJECT)).values()

    assert rule.rule == "region 'apac' share"
    assert (rule.observed, rule.required) == ("4.8% (2 rows)", ">= 5.0% of 42")


def test_has_every_segment_reports_an_unknown_segment():
    frame = sessions()
    frame.loc[0, "region"] = "mars"

    found = violated(contracts.has_every_segment(frame, SPEC, SUBJECT))

    assert list(found) == ["unexpected region values"]
    assert found["unexpected region values"].observed == "['mars']"


# is_fresh


def test_is_fresh_passes_on_recent_events():
    result = contracts.is_fresh(sessions(), SPEC, SUBJECT, now=NOW)
    assert result.passed
    assert rules(result)["age of newest event_time"].observed == "1.0 hours"
    assert result.details["event_time_range"][1] == "2026-11-27T11:00:00+00:00"


def test_is_fresh_fails_when_the_newest_event_is_too_old():
    result = contracts.is_fresh(sessions(), SPEC, SUBJECT, now=NOW + timedelta(days=10))

    rule = violated(result)["age of newest event_time"]
    assert (rule.observed, rule.required) == ("10.0 days", "<= 3.0 days (max_age)")
    assert rule.note.startswith("newest event 2026-11-27T11:00:00+00:00")


def test_is_fresh_fails_on_events_in_the_future():
    result = contracts.is_fresh(sessions(), SPEC, SUBJECT, now=NOW - timedelta(hours=2))

    rule = violated(result)["newest event_time not in the future"]
    assert (rule.observed, rule.required) == ("2026-11-27T11:00:00+00:00", "<= 2026-11-27T10:00:00+00:00")


def test_is_fresh_fails_without_a_parseable_event_time():
    result = contracts.is_fresh(sessions().assign(event_time="yesterday"), SPEC, SUBJECT, now=NOW)
    assert violated(result)["newest event_time"].observed == "no parseable timestamps"


# event times, parsed once


@pytest.mark.parametrize(
    "stamps",
    [
        ["2026-11-13 11:44:49.394749871+00:00", "2026-11-13T11:44:49Z", "2026-11-13T11:44:49.5-05:30", None],
        ["2026-11-13T11:44:49", "2026-11-13", "2026-11-13 11:44+02:00", None],  # naive stamps: pandas' path
        ["2026-11-13T11:44:49+00:00", "not a time", None, "2026-11-13T11:44:49+01:00"],
    ],
    ids=["with-offsets", "naive-or-mixed", "unparseable"],
)
def test_event_times_parse_to_the_same_instants_on_either_path(stamps):
    text = pd.Series(stamps, dtype="str", name="event_time")
    parsed = contracts.event_time(text.to_frame(), "event_time")
    expected = pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601")

    assert parsed.dt.tz is not None and str(parsed.dt.tz) == "UTC"
    assert parsed.isna().tolist() == expected.isna().tolist()
    assert (parsed.dropna().astype("int64") // 1000).tolist() == (expected.dropna().astype("int64") // 1000).tolist()


def test_event_times_are_parsed_once_for_every_gate_when_they_all_parse():
    frame = sessions()
    typed = contracts.with_typed_event_times(frame, SPEC, ConversionRecord)

    assert isinstance(typed["event_time"].dtype, pd.DatetimeTZDtype)
    assert frame["event_time"].dtype != typed["event_time"].dtype  # the caller's frame is not changed
    assert contracts.schema_holds(typed, ConversionRecord, SUBJECT).passed


def test_an_unparseable_event_time_stays_text_so_the_schema_gate_names_it():
    frame = sessions()
    frame.loc[3, "event_time"] = "yesterday"
    assert contracts.with_typed_event_times(frame, SPEC, ConversionRecord) is frame

    results = {r.gate: r for r in contracts.snapshot_gates(frame, SPEC, ConversionRecord, SUBJECT, now=NOW)}
    failed = violated(results["schema_holds"])
    assert any("event_time" in name and "yesterday" in str(rule.observed) for name, rule in failed.items()), failed


# landing files, before any gate: delimiters, limits, the contract's columns


@pytest.mark.parametrize(
    ("header", "expected", "found"),
    [
        ("session_id,region,price", ",", None),
        ("session_id;region;price", ",", ";"),
        ("session_id\tregion\tprice", ",", "\t"),
        ("session_id|region|price", ",", "|"),
        ('"a;b",c', ",", None),  # a semicolon inside a quoted name is not a delimiter
        ("session_id;region", ";", None),
        ("session_id,region", ";", ","),
        ("only_one_column", ",", None),
        ('"a,b";c', ";", None),
    ],
)
def test_foreign_delimiter_names_the_delimiter_a_header_uses_instead(header, expected, found):
    assert contracts.foreign_delimiter(header, expected) == found


def test_the_delimiter_refusal_names_the_file_both_delimiters_and_the_spec_choice():
    message = contracts.delimiter_refusal("export.csv", ";", ",", "a;b;c")
    assert message.startswith("landing file 'export.csv' looks semicolon-delimited: its header 'a;b;c' splits into 3")
    assert "expected comma-delimited CSV, the spec's csv_delimiter ','" in message
    assert "set csv_delimiter=';' in the model's spec" in message


@pytest.mark.parametrize(
    ("limit", "observed", "how", "at_least", "expected"),
    [
        ("max_rows", 150, "its metadata lists", False, "limits.max_rows: its metadata lists 150 rows (allowed 100)"),
        ("max_rows", 101, "it holds", True, "limits.max_rows: it holds more than 100 rows (allowed 100)"),
        ("max_columns", 12, "its header has", False, "limits.max_columns: its header has 12 columns (allowed 10)"),
        ("max_file_bytes", 2_048, "it is", False, "limits.max_file_bytes: it is 2,048 bytes (allowed 1,000)"),
        (
            "max_decompressed_bytes",
            5_000_000,
            "it decompresses to",
            True,
            "limits.max_decompressed_bytes: it decompresses to more than 4,000,000 bytes (allowed 4,000,000)",
        ),
    ],
)
def test_a_limit_refusal_names_the_file_the_limit_observed_allowed_and_the_way_to_raise_it(
    limit, observed, how, at_least, expected
):
    limits = LandingLimits(max_rows=100, max_columns=10, max_file_bytes=1_000, max_decompressed_bytes=4_000_000)
    message = contracts.limit_refusal("export.csv.gz", limits, limit, observed, how, at_least)
    assert message.startswith(f"landing file 'export.csv.gz' is over the landing limit {expected}")
    assert message.endswith(f"raise the limit in the model's spec: limits=LandingLimits({limit}=...).")


def test_landing_limits_have_defaults_and_refuse_a_limit_below_one():
    assert CONVERSION.limits == LandingLimits() and LandingLimits().max_rows >= 1_000_000
    with pytest.raises(ValueError, match="max_rows"):
        LandingLimits(max_rows=0)
    with pytest.raises(ValueError, match="unexpected_columns"):
        type(CONVERSION).model_validate({**CONVERSION.model_dump(), "unexpected_columns": "keep"})


def test_contract_columns_are_the_declared_columns_in_order():
    assert contracts.contract_columns(ConversionRecord) == tuple(sessions().columns)


# schema_holds: the failing values and where they came from


def test_a_wrong_type_in_an_uncoerced_column_is_reported_by_its_values_not_its_type():
    frame = sessions().assign(returning_customer=["yes", "no"] * 5)
    result = contracts.schema_holds(frame, ConversionRecord, SUBJECT)
    rule = violated(result)["column returning_customer: dtype('bool')"]
    assert rule.observed == "10 failing value(s), e.g. ['yes', 'no'] in rows [0, 1, 2, … 7 more]"
    assert {case["failure_case"] for case in result.details["failure_cases"]} == {"yes", "no"}


def test_text_that_reads_as_the_type_is_not_named_beside_the_values_that_do_not():
    """Files that disagreed on a column's type are kept as text: ``True`` from one file is right, ``yes`` not."""
    frame = sessions().assign(returning_customer=["True", "False", "yes", "True", "no"] * 2)
    rule = violated(contracts.schema_holds(frame, ConversionRecord, SUBJECT))[
        "column returning_customer: dtype('bool')"
    ]
    assert rule.observed == "4 failing value(s), e.g. ['yes', 'no'] in rows [2, 4, 7, … 1 more]"


def test_failing_rows_are_named_by_their_landing_file_and_their_row_in_it():
    frame = sessions().assign(region=["us-east"] * 6 + ["mars", "us-east", "venus", "us-east"])
    sources = [("a.csv", 4), ("b.csv.gz", 4), ("c.parquet", 2)]
    result = contracts.schema_holds(frame, ConversionRecord, SUBJECT, sources=sources)
    (rule,) = [r for name, r in violated(result).items() if name.startswith("column region: isin")]
    assert rule.observed == "2 failing value(s), e.g. ['mars', 'venus'] in 'b.csv.gz' rows [2], 'c.parquet' rows [0]"
    assert [case["file"] for case in result.details["failure_cases"]] == ["b.csv.gz", "c.parquet"]


def test_an_unexpected_column_says_how_a_spec_drops_it():
    result = contracts.schema_holds(sessions().assign(utm_source="mail"), ConversionRecord, SUBJECT)
    rule = violated(result)["no unexpected columns"]
    assert rule.observed == "unexpected ['utm_source']"
    assert "set unexpected_columns='drop' in the model's spec" in rule.note
