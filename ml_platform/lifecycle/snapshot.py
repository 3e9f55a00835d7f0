"""Immutable, content-addressed dataset snapshots (platform-owned).

A snapshot is the landing data as it arrived, frozen: ``<root>/<snapshot_id>/data.parquet`` beside a
``manifest.json`` that records the source files with their own hashes and the data file's hash.

- The id is a hash of the canonical content: columns in name order, rows in landing-file-name order,
  each row hashed by value with pandas' ``hash_pandas_object``. The same landing data gives the same
  id, so a second snapshot of it finds the first instead of writing a copy.
- A snapshot is written to a hidden temporary folder and renamed into place, so a reader sees either
  nothing or a whole snapshot; an existing snapshot is never overwritten.
- Reading verifies the data file against the manifest's hash: a file changed on disk is refused.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from ml_platform.lifecycle.evidence import ContractViolation, SnapshotCorrupted, capped

LANDING_SUFFIXES = (".csv", ".parquet", ".pq")
HASH_CHUNK_ROWS = 500_000
FILE_CHUNK_BYTES = 8 << 20


@dataclass(frozen=True)
class SourceFile:
    name: str
    sha256: str
    bytes: int
    rows: int


@dataclass(frozen=True)
class Snapshot:
    """Where a snapshot lives and what it was made from."""

    snapshot_id: str
    path: Path
    rows: int
    columns: tuple[str, ...]
    sources: tuple[SourceFile, ...]
    data_sha256: str
    created_at: str
    reused: bool = False

    @property
    def data_file(self) -> Path:
        return self.path / "data.parquet"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(FILE_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def content_id(frame: pd.DataFrame) -> str:
    """The canonical content hash: column names and dtypes, then every row's value hash, in chunks."""
    ordered = frame[sorted(frame.columns)]
    digest = hashlib.sha256(json.dumps([[c, str(ordered[c].dtype)] for c in ordered.columns]).encode())
    for start in range(0, len(ordered), HASH_CHUNK_ROWS):
        chunk = ordered.iloc[start : start + HASH_CHUNK_ROWS]
        digest.update(pd.util.hash_pandas_object(chunk, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def list_landing_files(landing: Path) -> list[Path]:
    """The CSV and Parquet files in a landing folder, by name; hidden and partial files are skipped."""
    if not landing.is_dir():
        return []
    return sorted(
        p for p in landing.iterdir()
        if p.is_file() and p.suffix.lower() in LANDING_SUFFIXES and not p.name.startswith((".", "_"))
    )


def _check_csv_not_truncated(path: Path, header_fields: int) -> None:
    """A cut-off export ends mid-row; pandas would quietly fill the missing fields with NaN."""
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - 65536))
        tail = handle.read().decode("utf-8", errors="replace")
    if tail.endswith("\n"):
        return
    last_line = tail.rsplit("\n", 1)[-1]
    fields = next(csv.reader(io.StringIO(last_line)), [])
    if len(fields) < header_fields:
        raise ContractViolation(
            f"landing file {path.name!r} is truncated: its last line has {len(fields)} of {header_fields} "
            "fields and no line ending. Re-export the file completely."
        )


def read_landing_file(path: Path) -> pd.DataFrame:
    """Read one CSV or Parquet file, turning every reader error into one that names the file."""
    try:
        if path.suffix.lower() == ".csv":
            if path.stat().st_size == 0:
                raise ContractViolation(f"landing file {path.name!r} is empty (0 bytes): expected a CSV header and rows")
            frame = pd.read_csv(path, encoding="utf-8")
            _check_csv_not_truncated(path, len(frame.columns))
        else:
            frame = pd.read_parquet(path)
    except ContractViolation:
        raise
    except UnicodeDecodeError as error:
        raise ContractViolation(f"landing file {path.name!r} is not UTF-8 text ({error.reason} at byte {error.start})") from error
    except Exception as error:  # pandas and pyarrow raise many types for one cause: a broken file
        raise ContractViolation(
            f"landing file {path.name!r} cannot be read as {path.suffix.lstrip('.').upper()}: "
            f"{type(error).__name__}: {str(error).strip()[:300]}"
        ) from error
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed:")]
    if unnamed:
        raise ContractViolation(f"landing file {path.name!r} has columns without a name in its header: {capped(unnamed)}")
    return frame


def read_landing(landing: Path, model: str) -> tuple[pd.DataFrame, list[SourceFile]]:
    """Read and concatenate a model's landing files, refusing a folder that holds no usable rows."""
    files = list_landing_files(landing)
    if not files:
        raise ContractViolation(
            f"dataset_snapshot {model!r}: no landing files in {landing} (expected at least one "
            f"{'/'.join(LANDING_SUFFIXES)} file). Run `ml-platform demo-data {model}` or copy the export there."
        )
    frames, sources = [], []
    for path in files:
        frame = read_landing_file(path)
        if frames and list(frame.columns) != list(frames[0].columns):
            if set(frame.columns) != set(frames[0].columns):
                raise ContractViolation(
                    f"landing file {path.name!r} has columns {capped(sorted(map(str, frame.columns)), 12)}, but "
                    f"{files[0].name!r} has {capped(sorted(map(str, frames[0].columns)), 12)}: all files of one "
                    "snapshot must share one header"
                )
            frame = frame[list(frames[0].columns)]
        frames.append(frame)
        sources.append(SourceFile(path.name, file_sha256(path), path.stat().st_size, len(frame)))
    data = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if data.empty:
        raise ContractViolation(
            f"dataset_snapshot {model!r}: the landing files {capped([s.name for s in sources])} hold a header "
            "but no rows (expected at least one row)"
        )
    return data, sources


def take_snapshot(frame: pd.DataFrame, sources: Sequence[SourceFile], root: Path) -> Snapshot:
    """Freeze a frame under ``root/<content id>``, or return the snapshot that already holds it."""
    snapshot_id = content_id(frame)
    final = root / snapshot_id
    if final.exists():
        return _replace(read_manifest(final), reused=True)
    root.mkdir(parents=True, exist_ok=True)
    staging = root / f".tmp-{snapshot_id[:12]}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        data_file = staging / "data.parquet"
        frame.to_parquet(data_file, index=False)
        snapshot = Snapshot(
            snapshot_id=snapshot_id,
            path=final,
            rows=len(frame),
            columns=tuple(map(str, frame.columns)),
            sources=tuple(sources),
            data_sha256=file_sha256(data_file),
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        manifest = {**asdict(snapshot), "path": None, "sources": [asdict(s) for s in sources]}
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2))
        for written in staging.iterdir():
            written.chmod(0o444)
        try:
            staging.rename(final)
        except OSError:
            if not final.exists():
                raise
            return _replace(read_manifest(final), reused=True)  # a concurrent writer got there first
        return snapshot
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def read_manifest(path: Path) -> Snapshot:
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError) as error:
        raise SnapshotCorrupted(f"snapshot {path.name}: manifest.json is missing or unreadable ({error})") from error
    manifest["path"] = path
    manifest["columns"] = tuple(manifest["columns"])
    manifest["sources"] = tuple(SourceFile(**s) for s in manifest["sources"])
    manifest.pop("reused", None)
    return Snapshot(**manifest)


def load_snapshot(root: Path, snapshot_id: str) -> tuple[Snapshot, pd.DataFrame]:
    """Read a snapshot after verifying that its data file is the one that was written."""
    path = root / snapshot_id
    if not path.is_dir():
        raise ContractViolation(f"snapshot {snapshot_id} does not exist under {root}")
    snapshot = read_manifest(path)
    found = file_sha256(snapshot.data_file)
    if snapshot.snapshot_id != snapshot_id or found != snapshot.data_sha256:
        raise SnapshotCorrupted(
            f"snapshot {snapshot_id}: {snapshot.data_file} has sha256 {found[:16]}…, but its manifest recorded "
            f"{snapshot.data_sha256[:16]}…. The file was changed after it was written; it will not be used. "
            "Take a new snapshot from the landing files."
        )
    return snapshot, pd.read_parquet(snapshot.data_file)


def _replace(snapshot: Snapshot, **changes) -> Snapshot:
    return Snapshot(**{**snapshot.__dict__, **changes})
