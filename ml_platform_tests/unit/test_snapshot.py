"""Unit tests of the snapshot store and the landing reader: content ids, atomic writes, every bad file."""

import json
import os
from datetime import UTC, datetime

import pandas as pd
import pytest
from growth.conversion.contract import ConversionRecord
from growth.conversion.demo_data import generate

from ml_platform.errors import ContractViolation, SnapshotCorrupted
from ml_platform.rules.contracts import schema_holds
from ml_platform.stores import run_frames
from ml_platform.stores import snapshot as snapshots
from ml_platform.stores.snapshot import (
    SourceFile,
    content_id,
    load_snapshot,
    read_landing,
    read_landing_file,
    take_snapshot,
)

END = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
SOURCES = [SourceFile("export.csv", "0" * 64, 100, 3)]


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"id": ["a", "b", "c"], "value": [1.0, 2.5, 3.0], "count": [1, 2, 3]})


@pytest.fixture
def sessions() -> pd.DataFrame:
    return generate(rows=40, seed=7, end=END)


@pytest.fixture
def landing(tmp_path):
    folder = tmp_path / "landing"
    folder.mkdir()
    return folder


def entries(root) -> list[str]:
    return sorted(os.listdir(root)) if root.exists() else []


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


# content_id


def test_content_id_is_the_same_for_the_same_data(frame):
    assert content_id(frame) == content_id(frame.copy())


def test_content_id_does_not_depend_on_column_order(frame):
    assert content_id(frame) == content_id(frame[["count", "value", "id"]])


@pytest.mark.parametrize(
    "change",
    [
        lambda f: f.assign(value=[1.0, 2.5, 3.5]),
        lambda f: f.rename(columns={"count": "total"}),
        lambda f: f.astype({"count": "float64"}),
        lambda f: f.iloc[:2],
    ],
    ids=["one-value", "column-name", "dtype", "one-row-fewer"],
)
def test_content_id_differs_for_different_data(frame, change):
    assert content_id(change(frame)) != content_id(frame)


# take_snapshot


def test_take_snapshot_writes_data_and_manifest(frame, tmp_path):
    root = tmp_path / "snapshots"
    snapshot = take_snapshot(frame, SOURCES, root)

    assert entries(root) == [snapshot.snapshot_id]
    assert snapshot.snapshot_id == content_id(frame)
    assert not snapshot.reused
    assert entries(snapshot.path) == ["data.parquet", "manifest.json"]
    manifest = json.loads((snapshot.path / "manifest.json").read_text())
    assert manifest["snapshot_id"] == snapshot.snapshot_id
    assert manifest["rows"] == 3
    assert manifest["columns"] == ["id", "value", "count"]
    assert manifest["sources"] == [
        {"name": "export.csv", "sha256": "0" * 64, "bytes": 100, "rows": 3, "dropped_columns": []}
    ]
    assert manifest["data_sha256"] == snapshots.file_sha256(snapshot.data_file)
    pd.testing.assert_frame_equal(pd.read_parquet(snapshot.data_file), frame)


def test_a_second_snapshot_of_the_same_frame_reuses_the_first(frame, tmp_path):
    root = tmp_path / "snapshots"
    first = take_snapshot(frame, SOURCES, root)
    written = (first.path / "manifest.json").stat().st_mtime_ns

    second = take_snapshot(frame[["count", "id", "value"]].copy(), SOURCES, root)

    assert second.reused
    assert second.snapshot_id == first.snapshot_id
    assert second.data_sha256 == first.data_sha256
    assert entries(root) == [first.snapshot_id]
    assert (first.path / "manifest.json").stat().st_mtime_ns == written


def test_a_frame_parquet_cannot_hold_leaves_no_folder_behind(tmp_path):
    root = tmp_path / "snapshots"
    times = pd.Series(["2026-11-27", pd.Timestamp("2026-11-27", tz="UTC")], dtype=object)
    mixed = pd.DataFrame({"event_time": times})

    with pytest.raises(ContractViolation, match=r"cannot be stored as Parquet.*event_time"):
        take_snapshot(mixed, SOURCES, root)

    assert entries(root) == []  # neither a snapshot nor a .tmp-* folder


def test_a_write_that_fails_after_the_data_file_leaves_no_folder_behind(frame, tmp_path, monkeypatch):
    root = tmp_path / "snapshots"

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(snapshots.Path, "write_text", disk_full)  # the manifest, written after data.parquet
    with pytest.raises(OSError, match="No space left"):
        take_snapshot(frame, SOURCES, root)

    assert entries(root) == []


# load_snapshot


def test_load_snapshot_returns_the_frame_that_was_written(frame, tmp_path):
    written = take_snapshot(frame, SOURCES, tmp_path)

    snapshot, loaded = load_snapshot(tmp_path, written.snapshot_id)

    assert snapshot.snapshot_id == written.snapshot_id
    assert snapshot.sources == tuple(SOURCES)
    pd.testing.assert_frame_equal(loaded, frame)


def test_load_snapshot_refuses_a_data_file_changed_by_one_byte(frame, tmp_path):
    written = take_snapshot(frame, SOURCES, tmp_path)
    data = bytearray(written.data_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    written.data_file.chmod(0o644)
    written.data_file.write_bytes(bytes(data))

    with pytest.raises(SnapshotCorrupted, match=r"data\.parquet has sha256 .* but its manifest recorded"):
        load_snapshot(tmp_path, written.snapshot_id)


def test_load_snapshot_refuses_a_missing_data_file(frame, tmp_path):
    written = take_snapshot(frame, SOURCES, tmp_path)
    written.data_file.unlink()

    with pytest.raises(SnapshotCorrupted, match=r"data\.parquet is missing"):
        load_snapshot(tmp_path, written.snapshot_id)


def test_load_snapshot_refuses_an_unreadable_manifest(frame, tmp_path):
    written = take_snapshot(frame, SOURCES, tmp_path)
    manifest = written.path / "manifest.json"
    manifest.chmod(0o644)
    manifest.write_text("{not json")

    with pytest.raises(SnapshotCorrupted, match=r"manifest\.json is missing or unreadable"):
        load_snapshot(tmp_path, written.snapshot_id)


def test_load_snapshot_names_an_unknown_snapshot(tmp_path):
    with pytest.raises(ContractViolation, match=r"snapshot f00d does not exist under"):
        load_snapshot(tmp_path, "f00d")


# read_landing and read_landing_file: every bad file is refused with its name


def test_read_landing_refuses_a_missing_folder(tmp_path):
    with pytest.raises(ContractViolation, match=r"dataset_snapshot 'conversion': no landing files in \S*/absent"):
        read_landing(tmp_path / "absent", "conversion")


def test_read_landing_refuses_a_folder_without_landing_files(landing):
    (landing / "_notes.txt").write_text("not data")
    expected = r"'conversion': no landing files in .*expected at least one .*; ignored: \['_notes\.txt'\]\)"
    with pytest.raises(ContractViolation, match=expected):
        read_landing(landing, "conversion")


def test_read_landing_file_refuses_an_empty_file(landing):
    (landing / "export.csv").write_bytes(b"")
    with pytest.raises(ContractViolation, match=r"landing file 'export\.csv' is empty \(0 bytes\)"):
        read_landing_file(landing / "export.csv")


def test_read_landing_refuses_a_header_without_rows(landing, sessions):
    (landing / "export.csv").write_bytes(csv_bytes(sessions.iloc[:0]))
    expected = r"'conversion': the landing files \['export\.csv'\] hold a header but no rows"
    with pytest.raises(ContractViolation, match=expected):
        read_landing(landing, "conversion")


def test_read_landing_file_refuses_a_csv_cut_mid_row(landing, sessions):
    text = csv_bytes(sessions)
    cut = text.rindex(b"\n", 0, len(text) - 1) + 30  # 30 bytes into the last row, inside its third field
    (landing / "export.csv").write_bytes(text[:cut])
    with pytest.raises(ContractViolation, match=r"'export\.csv' is truncated: its last line has 2 of 10 fields\b"):
        read_landing_file(landing / "export.csv")


@pytest.mark.parametrize("damage", ["random-bytes", "cut-in-half"])
def test_read_landing_file_refuses_a_corrupt_parquet(landing, sessions, damage):
    path = landing / "export.parquet"
    sessions.to_parquet(path, index=False)
    data = path.read_bytes()
    path.write_bytes(os.urandom(len(data)) if damage == "random-bytes" else data[: len(data) // 2])
    with pytest.raises(ContractViolation, match=r"landing file 'export\.parquet' cannot be read as Parquet"):
        read_landing_file(path)


def test_read_landing_file_names_where_a_file_stops_being_utf8(landing, sessions):
    text = csv_bytes(sessions.assign(device="café"))
    bad = text.index("café".encode(), len(text) // 2) + 3
    data = text[:bad] + b"\xe9" + text[bad + 2 :]  # Latin-1 é where UTF-8's two bytes were
    (landing / "export.csv").write_bytes(data)
    line = data[:bad].count(b"\n") + 1
    expected = rf"'export\.csv' is not UTF-8 text: byte 0xe9 at offset {bad:,} \(line {line}\)"
    with pytest.raises(ContractViolation, match=expected):
        read_landing_file(landing / "export.csv")


def test_the_utf8_position_is_right_across_read_chunks(landing, monkeypatch):
    data = "é,ü\n" * 20 + "ok,x\n"
    data = data.encode() + b"\xff\n"  # multi-byte characters cut by every chunk boundary, then a bad byte
    (landing / "export.csv").write_bytes(data)
    monkeypatch.setattr(snapshots, "FILE_CHUNK_BYTES", 7)
    with pytest.raises(ContractViolation, match=rf"byte 0xff at offset {len(data) - 2:,} \(line 22\)"):
        read_landing_file(landing / "export.csv")


def test_read_landing_file_refuses_columns_without_a_name(landing, sessions):
    sessions.to_csv(landing / "export.csv")  # with the index, whose header cell is empty
    with pytest.raises(ContractViolation, match=r"'export\.csv' has columns without a name in its header"):
        read_landing_file(landing / "export.csv")


def test_read_landing_refuses_files_with_different_headers(landing, sessions):
    (landing / "a.csv").write_bytes(csv_bytes(sessions))
    (landing / "b.csv").write_bytes(csv_bytes(sessions.rename(columns={"price": "cost"})))
    expected = r"'b\.csv' has a different header from 'a\.csv': it lacks \['price'\] and adds \['cost'\]"
    with pytest.raises(ContractViolation, match=expected):
        read_landing(landing, "conversion")


def test_read_landing_aligns_files_whose_columns_are_in_another_order(landing, sessions):
    (landing / "a.csv").write_bytes(csv_bytes(sessions.iloc[:20]))
    (landing / "b.csv").write_bytes(csv_bytes(sessions.iloc[20:, ::-1]))

    data, sources = read_landing(landing, "conversion")

    assert list(data.columns) == list(sessions.columns)
    assert [s.rows for s in sources] == [20, 20]
    assert data["session_id"].tolist() == sessions["session_id"].tolist()


@pytest.mark.parametrize(
    "name", [".export.csv", "_export.csv", "export.csv.part", "export.csv.tmp", "export.parquet.crdownload"]
)
def test_read_landing_ignores_hidden_and_partial_files(landing, sessions, name):
    (landing / "export.csv").write_bytes(csv_bytes(sessions))
    (landing / name).write_bytes(b"half a row,")

    data, sources = read_landing(landing, "conversion")

    assert [s.name for s in sources] == ["export.csv"]
    assert len(data) == len(sessions)


def test_read_landing_concatenates_csv_and_parquet_into_a_storable_snapshot(landing, sessions, tmp_path):
    (landing / "a.csv").write_bytes(csv_bytes(sessions.iloc[:25]))
    sessions.iloc[25:].to_parquet(landing / "b.parquet", index=False)

    data, sources = read_landing(landing, "conversion")
    snapshot = take_snapshot(data, sources, tmp_path / "snapshots")

    assert [(s.name, s.rows) for s in sources] == [("a.csv", 25), ("b.parquet", 15)]
    assert [s.sha256 for s in sources] == [snapshots.file_sha256(landing / n) for n in ("a.csv", "b.parquet")]
    assert snapshot.rows == 40
    _, stored = load_snapshot(tmp_path / "snapshots", snapshot.snapshot_id)
    assert schema_holds(stored, ConversionRecord, "snapshot").passed
    times = ConversionRecord.validate(stored)["event_time"]
    assert times.tolist() == sessions["event_time"].tolist()


# frames kept for one run (ml_platform.stores.run_frames): what a run wrote, its next step takes from memory


@pytest.fixture
def cold():
    run_frames.forget()
    yield
    run_frames.forget()


def damage(snapshot) -> None:
    data = bytearray(snapshot.data_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    snapshot.data_file.chmod(0o644)
    snapshot.data_file.write_bytes(bytes(data))


def test_the_run_that_wrote_a_snapshot_takes_it_from_memory(frame, tmp_path, cold):
    written = take_snapshot(frame, SOURCES, tmp_path, run_id="run-1")
    damage(written)  # proves no read: the file no longer matches its manifest

    snapshot, kept = load_snapshot(tmp_path, written.snapshot_id, run_id="run-1")

    assert snapshot.snapshot_id == written.snapshot_id and not snapshot.reused
    pd.testing.assert_frame_equal(kept, frame)
    assert content_id(kept) == written.snapshot_id


def test_a_damaged_file_is_refused_by_every_read_from_storage(frame, tmp_path, cold):
    written = take_snapshot(frame, SOURCES, tmp_path, run_id="run-1")
    damage(written)

    for reader in ({}, {"run_id": "run-2"}):  # no run, or another run in this process (a re-execution)
        with pytest.raises(SnapshotCorrupted, match="has sha256 .* but its manifest recorded"):
            load_snapshot(tmp_path, written.snapshot_id, **reader)
    run_frames.forget()
    with pytest.raises(SnapshotCorrupted, match="has sha256 .* but its manifest recorded"):
        load_snapshot(tmp_path, written.snapshot_id, run_id="run-1")  # the same run once the frame is forgotten


def test_a_damaged_file_is_refused_by_a_read_in_another_process(frame, tmp_path, cold):
    import subprocess
    import sys

    written = take_snapshot(frame, SOURCES, tmp_path, run_id="run-1")
    load_snapshot(tmp_path, written.snapshot_id, run_id="run-1")
    damage(written)
    reader = (
        "import sys; from pathlib import Path; from ml_platform.stores.snapshot import load_snapshot; "
        "load_snapshot(Path(sys.argv[1]), sys.argv[2], run_id='run-1')"
    )

    refused = subprocess.run(
        [sys.executable, "-c", reader, str(tmp_path), written.snapshot_id], capture_output=True, text=True
    )

    assert refused.returncode == 1
    assert "SnapshotCorrupted" in refused.stderr and "but its manifest recorded" in refused.stderr


def test_a_verified_read_is_kept_for_the_run_and_released_by_its_last_reader(frame, tmp_path, cold):
    written = take_snapshot(frame, SOURCES, tmp_path)  # no run: nothing kept
    load_snapshot(tmp_path, written.snapshot_id, run_id="run-1")  # read and verified, then kept
    damage(written)

    load_snapshot(tmp_path, written.snapshot_id, run_id="run-1", release=True)  # from memory, then let go

    with pytest.raises(SnapshotCorrupted):
        load_snapshot(tmp_path, written.snapshot_id, run_id="run-1")


def test_a_reader_cannot_change_the_kept_frame(frame, tmp_path, cold):
    written = take_snapshot(frame, SOURCES, tmp_path, run_id="run-1")
    _, first = load_snapshot(tmp_path, written.snapshot_id, run_id="run-1")
    first["value"] = 0.0
    first.loc[0, "id"] = "changed"

    _, second = load_snapshot(tmp_path, written.snapshot_id, run_id="run-1")

    pd.testing.assert_frame_equal(second, frame)


def test_kept_frames_are_bounded_and_belong_to_one_run(tmp_path, cold):
    frames = [pd.DataFrame({"id": [str(i)], "value": [float(i)]}) for i in range(3)]
    ids = [take_snapshot(f, SOURCES, tmp_path, run_id="run-1").snapshot_id for f in frames]

    assert run_frames.kept("run-1", str(tmp_path), ids[0]) is None  # only the newest CAPACITY frames stay
    assert [run_frames.kept("run-1", str(tmp_path), i) is not None for i in ids[1:]] == [True] * run_frames.CAPACITY
    assert run_frames.kept("run-2", str(tmp_path), ids[2]) is None  # another run never sees them

    take_snapshot(frames[0], SOURCES, tmp_path, run_id="run-2")

    assert run_frames.kept("run-1", str(tmp_path), ids[2]) is None  # a new run drops the previous run's frames


def test_a_staging_folder_whose_writer_died_is_removed_by_the_next_writer_and_a_live_one_is_not(frame, tmp_path):
    """A writer SIGKILLed mid-write leaves ``.tmp-<host>-<pid>-…`` (the campaign found one); the next writer
    removes it once that process is gone, never a live writer's, and another host's only when a day old."""
    import socket
    import subprocess
    import sys
    import time

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    host = socket.gethostname()
    root = tmp_path / "snapshots"
    root.mkdir()
    try:
        abandoned = root / f".tmp-{host}-{dead.pid}-0123456789ab"
        in_progress = root / f".tmp-{host}-{alive.pid}-0123456789ab"
        elsewhere_now = root / ".tmp-other-host-42-0123456789ab"
        elsewhere_old = root / ".tmp-other-host-43-0123456789ab"
        for folder in (abandoned, in_progress, elsewhere_now, elsewhere_old):
            folder.mkdir()
            (folder / "data.parquet").write_bytes(b"PAR1 half written")
        two_days_ago = time.time() - 2 * 24 * 3600
        os.utime(elsewhere_old, (two_days_ago, two_days_ago))

        snapshot = take_snapshot(frame, SOURCES, root)

        assert not abandoned.exists() and not elsewhere_old.exists()
        assert in_progress.exists() and elsewhere_now.exists()
        assert {p.name for p in root.iterdir()} == {snapshot.snapshot_id, in_progress.name, elsewhere_now.name}
    finally:
        alive.kill()
        alive.wait()
