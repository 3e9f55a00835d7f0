"""Data gates through real in-process materializations of ``dataset_snapshot`` (and ``validated_features``).

Each bad input of the issue is landed as an export job would land it, then only the snapshot is
materialized with its checks, so no model is trained. Unreadable input must fail the snapshot step with
a message naming the model, the asset and the file, and write no snapshot; readable but invalid data
must be frozen in exactly one complete snapshot and fail the right gate, saying what it found and what
it expected.
"""

import os
import re
from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest
from growth.conversion.contract import ConversionFeatures
from growth.conversion.demo_data import generate
from growth.conversion.spec import REGIONS
from pandera.typing import Series

from ml_platform_tests.harness import check_results, failed_checks, failure_messages, materialized

ROWS = 2000
SNAPSHOT_GATES = [
    "has_enough_rows",
    "has_every_segment",
    "has_no_nulls",
    "is_fresh",
    "keys_are_unique",
    "labels_are_known",
    "schema_holds",
]


class StricterFeatures(ConversionFeatures):
    """The conversion feature contract plus a price ceiling the demo data breaks."""

    price: Series[float] = pa.Field(gt=0, le=50, coerce=True)


def sessions(seed: int = 1, **options) -> pd.DataFrame:
    return generate(rows=ROWS, seed=seed, **options)


def folders(root) -> list[str]:
    return sorted(os.listdir(root)) if root.exists() else []


def snapshot_folders(platform) -> list[str]:
    return folders(platform.paths.snapshots(platform.spec.name))


def latest_value(platform, asset: str, field: str):
    event = platform.instance.get_latest_materialization_event(platform.keys.asset(asset))
    return event.asset_materialization.metadata[field].value


def assert_one_complete_snapshot(platform) -> str:
    """Exactly one snapshot folder, holding both files, named by the id the materialization recorded."""
    snapshot_id = latest_value(platform, "dataset_snapshot", "snapshot_id")
    assert snapshot_folders(platform) == [snapshot_id]  # and no .tmp-* folder beside it
    root = platform.paths.snapshots(platform.spec.name)
    assert folders(root / snapshot_id) == ["data.parquet", "manifest.json"]
    return snapshot_id


# Unreadable input: the snapshot step fails, naming the model, the asset and the file; nothing is written.


def land_nothing(platform) -> None:
    platform.landing.mkdir(parents=True, exist_ok=True)


def land_empty_file(platform) -> None:
    land_nothing(platform)
    (platform.landing / "export.csv").write_bytes(b"")


def land_header_only(platform) -> None:
    platform.land(sessions().iloc[:0], "export.csv")


def land_truncated_csv(platform) -> None:
    path = platform.land(sessions(), "export.csv")
    text = path.read_bytes()
    path.write_bytes(text[: text.rindex(b"\n", 0, len(text) - 1) + 30])  # cut inside the last row


def land_corrupt_parquet(platform) -> None:
    path = platform.land(sessions(), "export.parquet")
    path.write_bytes(os.urandom(path.stat().st_size))


@pytest.mark.parametrize(
    ("land", "expected"),
    [
        (
            land_nothing,
            r"no landing files in \S*landing/{model} \(expected at least one \.csv/\.csv\.gz/.*\.parquet/\.pq file",
        ),
        (land_empty_file, r"landing file 'export\.csv' is empty \(0 bytes\): expected a CSV file with a"),
        (land_header_only, r"the landing files \['export\.csv'\] hold a header but no rows"),
        (land_truncated_csv, r"landing file 'export\.csv' is truncated: its last line has 2 of 10 fields"),
        (land_corrupt_parquet, r"landing file 'export\.parquet' cannot be read as Parquet: ArrowInvalid"),
    ],
    ids=["no-landing-files", "empty-file", "header-only", "truncated-csv", "corrupt-parquet"],
)
def test_unreadable_input_fails_the_snapshot_and_writes_nothing(conversion, land, expected):
    land(conversion)
    model = conversion.spec.name

    result = conversion.materialize("dataset_snapshot")

    assert not result.success
    assert materialized(result) == []
    assert check_results(result) == {}  # the gates never ran: there is nothing to gate
    [failure] = result.get_step_failure_events()  # once: evidence is not retried
    assert failure.step_key.endswith("dataset_snapshot")
    message = failure_messages(result)
    assert message.startswith(f"dataset_snapshot {model!r}: "), message
    assert re.search(expected.format(model=re.escape(model)), message), message
    assert failure.step_failure_data.user_failure_data.metadata["contract"].value == "ContractViolation"
    assert snapshot_folders(conversion) == []


# Readable but invalid data: one complete snapshot, and the right gates fail with observed vs required.


def missing_column(frame):
    return frame.drop(columns=["device"])


def wrong_type(frame):
    frame = frame.astype({"price": object})
    frame.loc[5, "price"] = "abc"
    return frame


def nulls(frame):
    frame.loc[[3, 8], "price"] = np.nan
    return frame


def duplicate_key(frame):
    frame.loc[10, "session_id"] = frame.loc[9, "session_id"]
    return frame


def unknown_label(frame):
    frame.loc[[0, 1, 2], "converted"] = 2
    return frame


def unknown_region(frame):
    frame.loc[0, "region"] = "mars"
    return frame


def partial_export(frame):
    return sessions(regions=("us-east",), days=2)


def stale(frame):
    return sessions(end=datetime.now(UTC) - timedelta(days=10))


MISSING_REGIONS = ["apac", "eu-central", "eu-west", "us-west"]

INVALID = {
    "missing-column": (
        missing_column,
        {
            "schema_holds": "required columns present: observed missing ['device'], required every column of "
            "ConversionRecord",
            "has_no_nulls": "column device present: observed missing, required present",
        },
    ),
    "wrong-type": (
        wrong_type,
        {
            "schema_holds": "column price: coerce_dtype('float64'): observed 1 failing value(s), e.g. ['abc'] in "
            "'export.csv' rows [5], required every value convertible to float64",
        },
    ),
    "nulls": (
        nulls,
        {
            "schema_holds": "column price: not_nullable: observed 2 null value(s) in 'export.csv' rows [3, 8], "
            "required no nulls",
            "has_no_nulls": "nulls in price: observed 2, required 0 (e.g. rows [3, 8])",
        },
    ),
    "duplicate-key": (
        duplicate_key,
        {
            "keys_are_unique": "duplicate session_id values: observed 1, required 0 (2 rows share ['s-1-",
        },
    ),
    "unknown-label": (
        unknown_label,
        {
            "labels_are_known": "unknown label values: observed ['2'], required only ['0', '1'] (3 rows)",
        },
    ),
    "unknown-region": (
        unknown_region,
        {
            "schema_holds": f"column region: isin({list(REGIONS)}): observed 1 failing value(s), e.g. ['mars'] in "
            "'export.csv' rows [0]",
            "has_every_segment": "unexpected region values: observed ['mars'], required none outside "
            f"{sorted(REGIONS)}",
        },
    ),
    "partial-export": (
        partial_export,
        {
            "has_every_segment": (
                *(
                    f"region '{region}' share: observed 0.0% (0 rows), required >= 5.0% of 2,000"
                    for region in MISSING_REGIONS
                ),
                f"region values present: observed ['us-east'], required all of {sorted(REGIONS)} (missing "
                f"{MISSING_REGIONS}: the snapshot covers only ['us-east'] from ",
                "Is this a partial export?",
            ),
        },
    ),
    "stale-events": (
        stale,
        {
            "is_fresh": "age of newest event_time: observed 10.0 days, required <= 3.0 days (max_age) (newest event ",
        },
    ),
}


@pytest.mark.parametrize(("corrupt", "expected"), INVALID.values(), ids=INVALID.keys())
def test_invalid_data_fails_the_right_gates(conversion, corrupt, expected):
    conversion.land(corrupt(sessions()))

    result = conversion.materialize("dataset_snapshot")

    assert not result.success
    assert failed_checks(result) == sorted(expected)
    assert sorted(check_results(result)) == SNAPSHOT_GATES  # every gate ran and reported, not only the first
    snapshot_id = assert_one_complete_snapshot(conversion)
    model = conversion.spec.name
    for gate, found in expected.items():
        evaluation = check_results(result)[gate]
        subject = f"dataset_snapshot {model!r} {snapshot_id[:12]}"
        assert evaluation.description.startswith(f"{gate} failed on {subject}:")
        for fragment in [found] if isinstance(found, str) else found:
            assert fragment in evaluation.description, evaluation.description
        assert evaluation.metadata["snapshot_id"].value == snapshot_id
        assert evaluation.metadata["violations"].value >= 1
        assert "| **NO** |" in evaluation.metadata["gate"].value


def test_clean_data_passes_every_snapshot_gate_and_the_feature_contract(conversion):
    conversion.land(sessions())

    result = conversion.materialize("dataset_snapshot", "validated_features")

    assert result.success, failure_messages(result)
    assert materialized(result) == ["dataset_snapshot", "validated_features"]
    checks = check_results(result)
    assert sorted(checks) == sorted([*SNAPSHOT_GATES, "feature_contract_holds"])
    assert failed_checks(result) == []
    assert_one_complete_snapshot(conversion)
    features_id = latest_value(conversion, "validated_features", "features_id")
    assert checks["feature_contract_holds"].metadata["features_id"].value == features_id
    passed = f"feature_contract_holds passed on validated_features {conversion.spec.name!r} {features_id[:12]}"
    assert checks["feature_contract_holds"].description.startswith(passed)


def test_each_rule_s_number_and_threshold_are_check_metadata_on_a_passing_snapshot(conversion):
    conversion.land(sessions())

    checks = check_results(conversion.materialize("dataset_snapshot"))

    spec = conversion.spec
    rows = checks["has_enough_rows"].metadata
    assert rows["rows"] == dg.MetadataValue.int(ROWS)
    assert rows["rows.threshold"] == dg.MetadataValue.int(spec.min_rows)
    fresh = checks["is_fresh"].metadata
    assert isinstance(fresh["age of newest event_time (hours)"], dg.FloatMetadataValue)
    assert 0 <= fresh["age of newest event_time (hours)"].value < 24  # the demo data ends about now
    assert fresh["age of newest event_time (hours).threshold"].value == spec.freshness.max_age.total_seconds() / 3600
    segments = checks["has_every_segment"].metadata
    for region, min_share in spec.segments.min_share.items():
        share = segments[f"region '{region}' share"].value
        assert segments[f"region '{region}' share.threshold"].value == min_share
        assert min_share <= share < 1
    assert segments["unexpected region values"].value == 0
    assert checks["has_no_nulls"].metadata["nulls in price"] == dg.MetadataValue.int(0)
    assert checks["schema_holds"].metadata["failing values"].value == 0


def test_each_rule_s_number_and_threshold_are_check_metadata_on_a_failing_snapshot(conversion):
    stale_partial = sessions(regions=("us-east",), days=2, end=datetime.now(UTC) - timedelta(days=10))
    conversion.land(stale_partial)

    result = conversion.materialize("dataset_snapshot")

    assert failed_checks(result) == ["has_every_segment", "is_fresh"]
    checks = check_results(result)
    fresh = checks["is_fresh"].metadata
    assert 240 <= fresh["age of newest event_time (hours)"].value < 241  # ten days and the test's own seconds
    assert fresh["age of newest event_time (hours).threshold"].value == 72.0
    segments = checks["has_every_segment"].metadata
    assert segments["region 'us-east' share"].value == 1.0
    assert segments["region 'eu-west' share"].value == 0.0
    assert segments["region 'eu-west' share.threshold"].value == conversion.spec.segments.min_share["eu-west"]
    assert segments["region values present"].value == 1
    assert segments["region values present.threshold"].value == len(REGIONS)


def test_the_feature_contract_stops_features_that_break_it(make_platform):
    platform = make_platform(feature_contract="ml_platform_tests.gates.test_data_gates:StricterFeatures")
    platform.land(sessions())

    result = platform.materialize("dataset_snapshot", "validated_features")

    assert not result.success
    assert failed_checks(result) == ["feature_contract_holds"]  # the snapshot itself is fine
    assert materialized(result) == ["dataset_snapshot", "validated_features"]
    evaluation = check_results(result)["feature_contract_holds"]
    features_id = latest_value(platform, "validated_features", "features_id")
    assert evaluation.metadata["features_id"].value == features_id
    assert evaluation.description.startswith(
        f"feature_contract_holds failed on validated_features {platform.spec.name!r} {features_id[:12]}:"
    )
    found = r"column price: less_than_or_equal_to\(50\): observed [\d,]+ failing value\(s\), e.g. \['"
    assert re.search(found, evaluation.description), evaluation.description
    assert "required less_than_or_equal_to(50)" in evaluation.description


def test_a_failed_gate_holds_in_a_later_run(conversion):
    conversion.land(duplicate_key(sessions()))
    first = conversion.materialize("dataset_snapshot")
    assert failed_checks(first) == ["keys_are_unique"]

    later = conversion.materialize("validated_features")

    assert not later.success
    assert materialized(later) == []
    message = failure_messages(later)
    model = conversion.spec.name
    refusal = f"validated_features {model!r} refuses to continue: 1 upstream gate(s) did not pass"
    assert message.startswith(refusal), message
    assert f"{model}/dataset_snapshot:keys_are_unique FAILED: keys_are_unique failed on " in message
    assert "duplicate session_id values: observed 1, required 0" in message
    assert folders(conversion.paths.features(model)) == []
