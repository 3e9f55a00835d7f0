"""Real exports: landing files as spreadsheets, warehouses and export jobs write them, and files sized to hurt.

A BOM, CRLF, reordered columns, mixed UTC offsets and typed Parquet were accepted before; these are the
rest. Compressed CSV is read like plain CSV (same snapshot id); a file the platform does not read is
refused by name, never passed over; a semicolon-delimited file is refused naming its delimiter (or read,
when the spec says so); a boolean column of ``yes``/``no`` is refused naming those values and the file;
a new upstream column is refused by default and dropped-and-recorded when the spec asks; the spec's
size limits refuse a gzip bomb while streaming, with little memory, and an oversized Parquet file from
its footer. Every refusal before a snapshot is a ``rejected`` record in the ledger and in
``ml-platform history``.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import tracemalloc
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pytest
from growth.conversion.demo_data import generate

from ml_platform.errors import ContractViolation
from ml_platform.rules.contracts import snapshot_gates
from ml_platform.rules.spec import LandingLimits, resolve_ref
from ml_platform.stores import landing as formats
from ml_platform.stores.ledger import Ledger
from ml_platform.stores.snapshot import content_id, load_snapshot, read_landing, read_model_landing, take_snapshot
from ml_platform_tests.harness import check_results, declare_only, failed_checks, failure_messages, materialized
from ml_platform_tests.models import CONVERSION

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(300)]

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SPEC = CONVERSION.model_copy(update={"min_rows": 50})
CONTRACT = resolve_ref(SPEC.contract)
BASE = generate(120, seed=11, end=NOW)
FRESH = generate(120, seed=11)  # for a real materialization, whose freshness gate reads the clock
MiB = 1 << 20


def csv_text(frame: pd.DataFrame = BASE, **options) -> bytes:
    return frame.to_csv(index=False, **options).encode()


def zstd_bytes(data: bytes) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.CompressedOutputStream(sink, "zstd") as stream:
        stream.write(data)
    return sink.getvalue().to_pybytes()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


COMPRESSED = {
    "export.csv.gz": gzip.compress,
    "export.csv.bz2": bz2.compress,
    "export.csv.xz": lzma.compress,
    "export.csv.zst": zstd_bytes,
    "export.zip": lambda data: zip_bytes({"export.csv": data}),
}


@pytest.fixture
def landing(tmp_path) -> Path:
    folder = tmp_path / "landing"
    folder.mkdir()
    return folder


# ------------------------------------------------------------------ compressed and unsupported files


@pytest.mark.parametrize("name", sorted(COMPRESSED))
def test_a_compressed_csv_is_read_and_snapshotted_like_the_csv(landing, tmp_path, name):
    """``export.csv.gz`` was reported as "no landing files in …": the file was there and passed over."""
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "export.csv").write_bytes(csv_text())
    (landing / name).write_bytes(COMPRESSED[name](csv_text()))

    expected, _ = read_landing(plain, SPEC.name)
    frame, sources = read_landing(landing, SPEC.name)
    snapshot = take_snapshot(frame, sources, tmp_path / "snapshots")

    assert [(s.name, s.rows) for s in sources] == [(name, len(BASE))]
    assert snapshot.snapshot_id == content_id(expected)
    _, stored = load_snapshot(tmp_path / "snapshots", snapshot.snapshot_id)
    assert all(result.passed for result in snapshot_gates(stored, SPEC, CONTRACT, "s", NOW))


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        (
            "export.xlsx",
            b"PK\x03\x04 a spreadsheet",
            r"\['export\.xlsx'\] .* not a supported landing format \(a spreadsheet",
        ),
        ("export.json", b"[]", r"\['export\.json'\] .* not a supported landing format \(JSON"),
        ("export.csv.7z", b"7z", r"\['export\.csv\.7z'\] .* not a supported landing format \(an archive"),
    ],
)
def test_a_file_the_platform_does_not_read_is_refused_by_name(landing, name, data, expected):
    (landing / "export.csv").write_bytes(csv_text())
    (landing / name).write_bytes(data)
    with pytest.raises(ContractViolation, match=expected) as refused:
        read_landing(landing, SPEC.name)
    assert "supported: .csv, .csv.gz, .csv.bz2, .csv.xz, .csv.zst" in str(refused.value)
    assert "prefix a name with '_'" in str(refused.value)


def test_a_zip_with_several_members_is_refused_naming_them(landing):
    (landing / "exports.zip").write_bytes(zip_bytes({"monday.csv": csv_text(), "tuesday.csv": csv_text()}))
    expected = r"'exports\.zip' is a zip archive holding \['monday\.csv', 'tuesday\.csv'\] \(expected exactly one"
    with pytest.raises(ContractViolation, match=expected):
        read_landing(landing, SPEC.name)


def test_a_broken_gzip_file_is_refused_by_name(landing):
    (landing / "export.csv.gz").write_bytes(gzip.compress(csv_text())[:-40])
    with pytest.raises(ContractViolation, match=r"'export\.csv\.gz' cannot be read as gzip-compressed CSV: EOFError"):
        read_landing(landing, SPEC.name)


# ------------------------------------------------------------------ size limits, before a file is read whole


def write_gzip_bomb(path: Path, decompressed_bytes: int) -> int:
    """A valid conversion CSV, gzip-compressed, that decompresses to ``decompressed_bytes``: its size on disk."""
    header, first_row = csv_text(BASE.iloc[:1]).split(b"\n", 1)
    block = first_row * (MiB // len(first_row))
    with gzip.open(path, "wb", compresslevel=6) as stream:
        stream.write(header + b"\n")
        for _ in range(decompressed_bytes // len(block)):
            stream.write(block)
    return path.stat().st_size


def test_a_gzip_bomb_is_refused_while_streaming_with_little_memory(landing):
    """256 MiB of CSV in well under 1 MiB of gzip: refused at the spec's 4 MiB, one chunk in memory at a time."""
    on_disk = write_gzip_bomb(landing / "export.csv.gz", 256 * MiB)
    limits = LandingLimits(max_decompressed_bytes=4 * MiB)
    assert on_disk < MiB < limits.max_decompressed_bytes

    tracemalloc.start()
    try:
        with pytest.raises(ContractViolation) as refused:
            read_landing(landing, SPEC.name, limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    message = str(refused.value)
    assert "landing file 'export.csv.gz' is over the landing limit limits.max_decompressed_bytes" in message
    assert "it decompresses to more than 4,194,304 bytes (allowed 4,194,304)" in message
    assert (
        "refused before being read whole" in message and "limits=LandingLimits(max_decompressed_bytes=...)" in message
    )
    assert peak < 16 * MiB, f"peak traced memory {peak / MiB:.1f} MiB while refusing a 256 MiB bomb"


def test_a_csv_with_more_rows_than_allowed_is_refused_while_streaming(landing):
    (landing / "export.csv.gz").write_bytes(gzip.compress(csv_text()))
    with pytest.raises(ContractViolation, match=r"limits\.max_rows: it holds .* 100 rows \(allowed 100\)"):
        read_landing(landing, SPEC.name, LandingLimits(max_rows=100))
    assert len(read_landing(landing, SPEC.name, LandingLimits(max_rows=len(BASE)))[0]) == len(BASE)


def test_a_file_larger_on_disk_than_allowed_is_refused(landing):
    (landing / "export.csv").write_bytes(csv_text())
    size = (landing / "export.csv").stat().st_size
    with pytest.raises(ContractViolation, match=rf"limits\.max_file_bytes: it is {size:,} bytes \(allowed 1,000\)"):
        read_landing(landing, SPEC.name, LandingLimits(max_file_bytes=1_000))


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        (LandingLimits(max_rows=100), r"limits\.max_rows: its metadata lists 120 rows \(allowed 100\)"),
        (LandingLimits(max_columns=5), r"limits\.max_columns: its metadata lists 10 columns \(allowed 5\)"),
        (
            LandingLimits(max_decompressed_bytes=1_000),
            r"limits\.max_decompressed_bytes: its metadata gives its uncompressed data as [\d,]+ bytes "
            r"\(allowed 1,000\)",
        ),
    ],
)
def test_a_parquet_file_over_a_limit_is_refused_from_its_metadata(landing, monkeypatch, limits, expected):
    """From the footer alone: the data pages are never read (``read_parquet`` would fail the test)."""
    BASE.to_parquet(landing / "export.parquet", index=False, compression="zstd")

    def never(*args, **kwargs):
        raise AssertionError("the Parquet data was read before its limits were checked")

    monkeypatch.setattr(pd, "read_parquet", never)
    with pytest.raises(
        ContractViolation, match=r"landing file 'export\.parquet' is over the landing limit " + expected
    ):
        read_landing(landing, SPEC.name, limits)


def test_a_header_with_more_columns_than_allowed_is_refused(landing):
    (landing / "export.csv").write_bytes(csv_text())
    with pytest.raises(ContractViolation, match=r"limits\.max_columns: its header has 10 columns \(allowed 9\)"):
        read_landing(landing, SPEC.name, LandingLimits(max_columns=9))


# ------------------------------------------------------------------ delimiters, booleans, new columns


def test_a_semicolon_delimited_file_is_refused_naming_its_delimiter(landing):
    """It failed six gates as "missing column" without a word about the delimiter."""
    (landing / "export.csv").write_bytes(csv_text(sep=";"))
    expected = (
        r"'export\.csv' looks semicolon-delimited: its header 'session_id;event_time;.*' splits into 10 fields "
        r"on ';' and has no ',' \(expected comma-delimited CSV, the spec's csv_delimiter ','\)"
    )
    with pytest.raises(ContractViolation, match=expected) as refused:
        read_landing(landing, SPEC.name)
    assert "set csv_delimiter=';' in the model's spec" in str(refused.value)


def test_a_semicolon_delimited_file_is_read_when_the_spec_says_so(landing, tmp_path):
    (landing / "export.csv.gz").write_bytes(gzip.compress(csv_text(sep=";")))
    spec = SPEC.model_copy(update={"csv_delimiter": ";"})
    frame, _ = read_model_landing(spec, landing)
    assert all(result.passed for result in snapshot_gates(frame, spec, CONTRACT, "s", NOW))
    (landing / "export.csv.gz").write_bytes(gzip.compress(csv_text()))
    with pytest.raises(ContractViolation, match=r"looks comma-delimited: .* has no ';' \(expected semicolon-delimited"):
        read_model_landing(spec, landing)


def test_yes_no_in_a_boolean_column_is_refused_naming_the_values_and_the_file(make_platform):
    """It was refused as "observed 1 failing value(s), e.g. ['str']": the type, not the values."""
    platform = make_platform(CONVERSION, min_rows=50)
    platform.land(FRESH.iloc[:60], "a.csv")
    platform.land(FRESH.iloc[60:].assign(returning_customer=["yes", "no"] * 30), "b.csv", replace=False)

    result = platform.materialize("dataset_snapshot")

    assert failed_checks(result) == ["schema_holds"]
    rejected = Ledger.for_home(platform.paths.home).latest(platform.spec.name, ["rejected"])
    expected = "observed 60 failing value(s), e.g. ['yes', 'no'] in 'b.csv' rows [0, 1, 2, … 57 more]"
    assert f"column returning_customer: dtype('bool'): {expected}" in rejected.reason, rejected.reason
    cases = check_results(result)["schema_holds"].metadata
    assert "'yes'" in str(cases) and "b.csv" in str(cases)


def test_a_new_upstream_column_is_refused_by_default_saying_how_to_drop_it(make_platform):
    platform = make_platform(CONVERSION, min_rows=50)
    platform.land(FRESH.assign(utm_source="newsletter"))

    result = platform.materialize("dataset_snapshot")

    assert failed_checks(result) == ["schema_holds"]
    rejected = Ledger.for_home(platform.paths.home).latest(platform.spec.name, ["rejected"])
    assert "no unexpected columns: observed unexpected ['utm_source']" in rejected.reason
    assert "set unexpected_columns='drop' in the model's spec" in rejected.reason


def test_a_new_upstream_column_is_dropped_and_recorded_when_the_spec_says_so(make_platform, tmp_path):
    platform = make_platform(CONVERSION, min_rows=50, unexpected_columns="drop")
    platform.land(FRESH.iloc[:60].assign(utm_source="newsletter"), "a.csv")
    platform.land(FRESH.iloc[60:], "b.csv", replace=False)

    result = platform.materialize("dataset_snapshot")

    assert result.success and failed_checks(result) == [] and materialized(result) == ["dataset_snapshot"]
    (event,) = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["dropped_columns"].value == {"a.csv": ["utm_source"]}
    snapshot, stored = load_snapshot(platform.paths.snapshots(platform.spec.name), metadata["snapshot_id"].value)
    without = tmp_path / "without"
    without.mkdir()
    (without / "export.csv").write_bytes(csv_text(FRESH))
    assert "utm_source" not in stored.columns
    assert snapshot.snapshot_id == content_id(read_landing(without, platform.spec.name)[0])
    assert [s.dropped_columns for s in snapshot.sources] == [("utm_source",), ()]
    alert = Ledger.for_home(platform.paths.home).latest(platform.spec.name, ["alert"])
    assert alert.trigger == "landing" and alert.evidence["dropped_columns"] == {"a.csv": ["utm_source"]}
    assert "['utm_source']; dropped from snapshot" in alert.reason


# ------------------------------------------------------------------ every refusal is a ledger decision


def test_a_refusal_before_the_snapshot_is_in_the_ledger_and_in_history(make_platform, monkeypatch, capsys):
    from ml_platform.cli import main

    platform = make_platform(CONVERSION, min_rows=50)
    platform.land(FRESH, "a.csv")
    platform.land(FRESH.rename(columns={"price": "cost"}), "b.csv", replace=False)
    (platform.landing / "_SUCCESS").touch()

    result = platform.materialize("dataset_snapshot")

    assert not result.success and materialized(result) == []
    assert "has a different header from 'a.csv'" in failure_messages(result)
    model = platform.spec.name
    (rejected,) = Ledger.for_home(platform.paths.home).query(model, ["rejected"])
    assert rejected.trigger == "landing" and "'b.csv' has a different header from 'a.csv'" in rejected.reason
    assert rejected.evidence["files"] == ["a.csv", "b.csv"] and rejected.evidence["ignored"] == ["_SUCCESS"]
    observed = platform.instance.fetch_observations(dg.AssetKey([model, "decisions"]), limit=5).records
    assert [r.asset_observation.metadata["decision"].value for r in observed] == ["rejected"]

    declare_only(monkeypatch, platform.spec)  # the CLI finds the test's model by name
    for variable, value in (("TRACKING", platform.store.tracking_uri), ("REGISTRY", platform.store.registry_uri)):
        monkeypatch.setenv(f"MLFLOW_{variable}_URI", value)
    assert main(["history", model, "--all"]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if "rejected" in line]
    assert "[landing]" in line and "different header" in line


def test_an_unsupported_file_and_a_limit_stop_the_graph_and_are_recorded(make_platform):
    platform = make_platform(CONVERSION, min_rows=50, limits=LandingLimits(max_rows=100))
    platform.land(FRESH, "a.csv")
    (platform.landing / "export.xlsx").write_bytes(b"PK\x03\x04")
    first = platform.materialize("dataset_snapshot")
    (platform.landing / "export.xlsx").unlink()
    second = platform.materialize("dataset_snapshot")

    assert "not a supported landing format" in failure_messages(first)
    assert "limits.max_rows" in failure_messages(second)
    records = Ledger.for_home(platform.paths.home).query(platform.spec.name, ["rejected"])
    assert [r.trigger for r in records] == ["landing", "landing"]
    assert (
        "['export.xlsx']" in records[0].reason
        and "'a.csv' is over the landing limit limits.max_rows" in records[1].reason
    )


def test_survey_sorts_every_entry_into_read_ignored_or_refused(landing):
    for name in (
        "a.csv",
        "b.csv.gz",
        "c.parquet",
        "d.txt",
        ".hidden.csv",
        "_SUCCESS",
        "e.csv.part",
        "f.csv.crdownload",
    ):
        (landing / name).write_bytes(b"x")
    (landing / "exports").mkdir()
    (landing / "gone.csv").symlink_to(landing / "nowhere.csv")

    folder = formats.survey(landing)

    assert [p.name for p in folder.files] == ["a.csv", "b.csv.gz", "c.parquet"]
    assert folder.unsupported == ("d.txt",)
    assert folder.ignored == (".hidden.csv", "_SUCCESS", "e.csv.part", "exports/", "f.csv.crdownload", "gone.csv")
