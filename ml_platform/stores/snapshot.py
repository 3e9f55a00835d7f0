"""Immutable, content-addressed dataset snapshots (platform-owned).

A snapshot is the landing data as it arrived, frozen: ``<root>/<snapshot_id>/data.parquet`` beside a
``manifest.json`` that records the source files with their own hashes and the data file's hash.

- The id is a hash of the canonical content: columns in name order, rows in landing-file-name order,
  each row hashed by value with pandas' ``hash_pandas_object``. The same landing data gives the same
  id, so a second snapshot of it finds the first instead of writing a copy.
- A snapshot is written to a hidden temporary folder and renamed into place, so a reader sees either
  nothing or a whole snapshot; an existing snapshot is never overwritten.
- Hashing and writing stream: the content hash is built ``HASH_CHUNK_ROWS`` rows at a time (the id
  does not depend on the chunk size), the Parquet file one ``PARQUET_ROW_GROUP_ROWS`` row group at a
  time, and files are hashed ``FILE_CHUNK_BYTES`` at a time, so taking a snapshot needs the frame plus
  one chunk of memory, not two or three copies of the frame.
- Reading verifies the data file against the manifest's hash: a file changed on disk is refused.
  Taking the same snapshot again moves a damaged copy aside (``.corrupt-…``) and writes it anew.
- Given a run id, a snapshot just written (or read and verified) is kept for that run's next step in
  this process, which then takes it instead of reading the file back (``ml_platform.stores.run_frames``
  says why that is safe); without one, or in another process, every read verifies the file.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import io
import json
import os
import re
import shutil
import socket
import uuid
from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ml_platform.errors import ContractViolation, SnapshotCorrupted, SnapshotWriteFailed
from ml_platform.rules.contracts import contract_columns
from ml_platform.rules.evidence import capped
from ml_platform.rules.spec import LandingLimits, ModelSpec, resolve_ref
from ml_platform.stores import landing as formats
from ml_platform.stores import run_frames
from ml_platform.stores.landing import DEFAULT_LIMITS

LANDING_SUFFIXES = formats.SUPPORTED
HASH_CHUNK_ROWS = 100_000  # hashing turns a chunk's text columns into Python strings: keep it small
PARQUET_ROW_GROUP_ROWS = 500_000
FILE_CHUNK_BYTES = 8 << 20
SNAPSHOT_ID_PATTERN = re.compile(r"[0-9a-f]{1,64}")  # content_id's sha256 hex digest


@dataclass(frozen=True)
class SourceFile:
    """One landing file a snapshot was made from; ``dropped_columns`` are those the spec chose not to keep."""

    name: str
    sha256: str
    bytes: int
    rows: int
    dropped_columns: tuple[str, ...] = ()


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
    """The canonical content hash: column names and dtypes, then every row's value hash, in chunks.

    Columns are put in name order one chunk at a time, never for the whole frame at once: the same
    hash as reordering first, with one chunk's copy in memory instead of the frame's.
    """
    columns = sorted(frame.columns)
    digest = hashlib.sha256(json.dumps([[c, str(frame[c].dtype)] for c in columns]).encode())
    for start in range(0, len(frame), HASH_CHUNK_ROWS):
        chunk = frame.iloc[start : start + HASH_CHUNK_ROWS][columns]
        digest.update(pd.util.hash_pandas_object(chunk, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def list_landing_files(landing: Path) -> list[Path]:
    """The files of a landing folder that are read (CSV, compressed CSV, Parquet), by name.

    Hidden, ``_``-prefixed and in-transfer files are ignored; files of other formats are not listed here
    but refused by ``read_landing`` (``stores.landing.survey`` tells them apart).
    """
    return list(formats.survey(landing).files)


def _check_csv_not_truncated(path: Path, tail_bytes: bytes, header_fields: int, delimiter: str) -> None:
    """A cut-off export ends mid-row; pandas would quietly fill the missing fields with NaN."""
    tail = tail_bytes.decode("utf-8", errors="replace")
    if tail.endswith("\n"):
        return
    last_line = tail.rsplit("\n", 1)[-1]
    fields = next(csv.reader(io.StringIO(last_line), delimiter=delimiter), [])
    if len(fields) < header_fields:
        raise ContractViolation(
            f"landing file {path.name!r} is truncated: its last line has {len(fields)} of {header_fields} "
            "fields and no line ending. Re-export the file completely."
        )


def _first_invalid_utf8(path: Path, suffix: str) -> str:
    """Where a file stops being UTF-8, as "byte 0x.. at offset N (line L)" (of its decompressed text).

    The decoding error pandas raises counts offsets from the start of its read buffer, not of the file.
    """
    offset, line, pending = 0, 1, b""
    with formats.opened(path, suffix) as handle:
        while chunk := handle.read(FILE_CHUNK_BYTES):
            data = pending + chunk
            try:
                data.decode("utf-8")
            except UnicodeDecodeError as error:
                if error.reason != "unexpected end of data":
                    return _invalid_byte(data, error.start, offset, line)
                data, pending = data[: error.start], data[error.start :]  # a character cut by the chunk
            else:
                pending = b""
            offset, line = offset + len(data), line + data.count(b"\n")
    return _invalid_byte(pending, 0, offset, line) if pending else "a byte"


def _invalid_byte(data: bytes, start: int, offset: int, line: int) -> str:
    line += data[:start].count(b"\n")
    return f"byte 0x{data[start]:02x} at offset {offset + start:,} (line {line})"


def read_landing_file(path: Path, limits: LandingLimits = DEFAULT_LIMITS, delimiter: str = ",") -> pd.DataFrame:
    """Read one landing file within ``limits``, turning every reader error into one that names the file.

    The limits are checked before the file is read whole (``stores.landing``): its size on disk, then a
    Parquet footer or one streamed pass through a CSV, which also checks the header's delimiter.
    """
    suffix = formats.landing_format(path.name)
    if suffix is None:
        raise ContractViolation(formats.unsupported_refusal([path.name], path.parent))
    kind = formats.format_name(suffix)
    _refuse_escaping_link(path)
    try:
        if path.stat().st_size == 0:
            raise ContractViolation(
                f"landing file {path.name!r} is empty (0 bytes): expected a {kind} file with a header and "
                "rows. Re-export the file."
            )
        formats.check_file_size(path, limits)
        frame = _read_csv(path, suffix, limits, delimiter) if kind != "Parquet" else _read_parquet(path, limits)
    except ContractViolation:
        raise
    except UnicodeDecodeError as error:
        raise ContractViolation(
            f"landing file {path.name!r} is not UTF-8 text: {_first_invalid_utf8(path, suffix)} is not valid UTF-8 "
            f"({error.reason}). Re-export the file as UTF-8."
        ) from error
    except Exception as error:  # pandas, pyarrow and the decompressors raise many types for one cause: a broken file
        raise ContractViolation(
            f"landing file {path.name!r} cannot be read as {kind}: "
            f"{type(error).__name__}: {str(error).strip().rstrip('.')[:300]}. Re-export the file completely."
        ) from error
    unnamed = [c for c in frame.columns if str(c).startswith("Unnamed:")]
    if unnamed:
        raise ContractViolation(
            f"landing file {path.name!r} has columns without a name in its header: {capped(unnamed)} "
            "(expected a name for every column). Re-export the file with a full header."
        )
    return _scalar_columns(path, frame)


def _read_csv(path: Path, suffix: str, limits: LandingLimits, delimiter: str) -> pd.DataFrame:
    shape = formats.measure_csv(path, suffix, limits, delimiter)
    if shape.bytes == 0:
        raise ContractViolation(
            f"landing file {path.name!r} is empty once decompressed: expected a CSV with a header and rows. "
            "Re-export the file."
        )
    with formats.opened(path, suffix) as stream:
        frame = pd.read_csv(stream, encoding="utf-8", sep=delimiter)
    _check_csv_not_truncated(path, shape.tail, len(frame.columns), delimiter)
    return frame


def _read_parquet(path: Path, limits: LandingLimits) -> pd.DataFrame:
    formats.check_parquet(path, limits)
    return pd.read_parquet(path)


def _refuse_escaping_link(path: Path) -> None:
    """Refuse a landing file that is a symbolic link to a file outside its landing folder.

    Whoever can drop files in a landing folder could otherwise make the platform read, snapshot and
    echo into gate metadata any file the platform itself can read (``export.csv -> ~/.pgpass``). A
    link to another file inside the same folder is harmless and read as usual.
    """
    if not path.is_symlink():
        return
    folder = path.parent.resolve()
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError) as error:  # a dangling link or a loop
        raise ContractViolation(
            f"landing file {path.name!r} is a symbolic link that does not resolve ({type(error).__name__}). "
            "Copy the export into the landing folder instead of linking it."
        ) from error
    if not target.is_relative_to(folder):
        raise ContractViolation(
            f"landing file {path.name!r} is a symbolic link to {str(target)!r}, outside its landing folder "
            f"{str(folder)!r} (expected files inside it). Copy the export into the landing folder instead of "
            "linking it."
        )


def _scalar_columns(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """One storable scalar type per column, or a refusal that names the file and the column.

    Text columns can surprise: a damaged Parquet page can hold text that is not UTF-8 (Parquet readers
    do not check); a CSV integer beyond 64 bits comes back as a Python int Arrow cannot store (kept as
    text here, so the contract's coercion names it); a Parquet binary column comes back as bytes
    (decoded as UTF-8 text, as a CSV would be); a Parquet list, map or struct column comes back as
    collections that can neither be hashed nor checked as one value.
    """
    import pyarrow as pa

    for column in frame.columns[frame.dtypes.map(lambda dtype: isinstance(dtype, pd.StringDtype))]:
        try:  # Parquet readers do not check that text is UTF-8: a damaged page only fails later, when hashed
            pa.array(frame[column]).validate(full=True)
        except pa.ArrowInvalid as error:
            raise ContractViolation(
                f"landing file {path.name!r}: column {str(column)!r} holds text that is not valid UTF-8 "
                f"({str(error)[:120]}); expected UTF-8 text. Is the file damaged? Re-export it."
            ) from error
    replaced = {}
    for column in frame.columns[frame.dtypes.map(pd.api.types.is_object_dtype)]:
        values = frame[column]
        kind = pd.api.types.infer_dtype(values, skipna=True)
        if kind in ("string", "empty"):
            continue
        nested = values.map(lambda value: isinstance(value, list | tuple | dict | set | np.ndarray))
        if nested.any():
            row = int(nested.to_numpy().argmax())
            raise ContractViolation(
                f"landing file {path.name!r}: column {str(column)!r} holds nested values ("
                f"{type(values.iloc[row]).__name__} in row {row:,}); expected one scalar value per cell. "
                "Flatten the column in the export."
            )
        if kind in ("bytes", "mixed"):
            values = replaced[column] = _decoded(path, column, values)
        try:
            pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
            replaced[column] = _as_text(values)
    return frame.assign(**replaced) if replaced else frame


def _decoded(path: Path, column, values: pd.Series) -> pd.Series:
    """Bytes as UTF-8 text (what a CSV reader would give), refusing bytes that are not UTF-8."""

    def decode(value):
        return value.decode("utf-8") if isinstance(value, bytes | bytearray) else value

    try:
        return values.map(decode)
    except UnicodeDecodeError as error:
        undecodable = values.map(lambda value: isinstance(value, bytes | bytearray) and not _is_utf8(value))
        row = int(undecodable.to_numpy().argmax())
        raise ContractViolation(
            f"landing file {path.name!r}: column {str(column)!r} holds bytes that are not UTF-8 text (row {row:,}: "
            f"{bytes(values.iloc[row][:20])!r}); expected text. Re-export the column as UTF-8 strings."
        ) from error


def _is_utf8(value: bytes) -> bool:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def read_model_landing(spec: ModelSpec, landing: Path) -> tuple[pd.DataFrame, list[SourceFile]]:
    """A model's landing files read as its spec says: its limits, its delimiter, its unexpected columns."""
    keep = contract_columns(resolve_ref(spec.contract)) if spec.unexpected_columns == "drop" else None
    return read_landing(landing, spec.name, spec.limits, spec.csv_delimiter, keep)


def read_landing(
    landing: Path,
    model: str,
    limits: LandingLimits = DEFAULT_LIMITS,
    delimiter: str = ",",
    keep: Collection[str] | None = None,
) -> tuple[pd.DataFrame, list[SourceFile]]:
    """Read and concatenate a model's landing files, refusing a folder that holds no usable rows.

    A file of a format the platform does not read refuses the whole folder by name, rather than a
    snapshot being taken without it. ``keep``: the only columns kept (the contract's, when the spec
    drops unexpected columns); each file's other columns are named in its ``SourceFile``.
    """
    folder = formats.survey(landing)
    if folder.unsupported:
        refusal = formats.unsupported_refusal(folder.unsupported, landing)
        raise ContractViolation(f"dataset_snapshot {model!r}: {refusal}")
    files = folder.files
    if not files:
        ignored = f"; ignored: {capped(list(folder.ignored))}" if folder.ignored else ""
        raise ContractViolation(
            f"dataset_snapshot {model!r}: no landing files in {landing} (expected at least one "
            f"{'/'.join(LANDING_SUFFIXES)} file{ignored}). Run `ml-platform demo-data {model}` or copy the export "
            "there."
        )
    frames, sources = [], []
    for path in files:
        frame = read_landing_file(path, limits, delimiter)
        dropped = tuple(str(c) for c in frame.columns if c not in keep) if keep is not None else ()
        if dropped:
            frame = frame.drop(columns=list(dropped))
        if frames and list(frame.columns) != list(frames[0].columns):
            if set(frame.columns) != set(frames[0].columns):
                raise _header_mismatch(path, frame, files[0], frames[0])
            frame = frame[list(frames[0].columns)]
        frames.append(frame)
        sources.append(SourceFile(path.name, file_sha256(path), path.stat().st_size, len(frame), dropped))
    data = _storable(pd.concat(frames, ignore_index=True)) if len(frames) > 1 else frames[0]
    if data.empty:
        raise ContractViolation(
            f"dataset_snapshot {model!r}: the landing files {capped([s.name for s in sources])} hold a "
            "header but no rows (expected at least one row). Is the export complete?"
        )
    return data, sources


def _header_mismatch(path: Path, frame: pd.DataFrame, first: Path, reference: pd.DataFrame) -> ContractViolation:
    """The error for a file whose columns are not those of the first file, naming what differs."""
    missing = sorted(map(str, set(reference.columns) - set(frame.columns)))
    extra = sorted(map(str, set(frame.columns) - set(reference.columns)))
    differences = [f"lacks {capped(missing)}"] * bool(missing) + [f"adds {capped(extra)}"] * bool(extra)
    return ContractViolation(
        f"landing file {path.name!r} has a different header from {first.name!r}: it "
        f"{' and '.join(differences)} (expected the same columns in every file of one snapshot). "
        "Re-export the files with one header."
    )


def _storable(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep as text each column whose files disagreed on its type, so the frame can be stored as Parquet.

    A CSV carries no types and a Parquet file does: concatenating a CSV's text timestamps with a Parquet
    file's timestamps gives one column of mixed objects, which Parquet cannot hold. As text (nulls kept),
    the values read as they do in the CSV, and the contract's coercion types them like any CSV column.
    """
    import pyarrow as pa

    mixed = []
    for column in frame.columns[frame.dtypes.map(pd.api.types.is_object_dtype)]:
        try:
            pa.array(frame[column], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
            mixed.append(column)
    if not mixed:
        return frame
    return frame.assign(**{column: _as_text(frame[column]) for column in mixed})


def _as_text(values: pd.Series) -> pd.Series:
    return values.map(lambda value: value if pd.isna(value) else str(value)).astype("str")


def take_snapshot(
    frame: pd.DataFrame, sources: Sequence[SourceFile], root: Path, run_id: str | None = None
) -> Snapshot:
    """Freeze a frame under ``root/<content id>``, or return the snapshot that already holds it.

    The data file is written (into a hidden staging folder) while the content id is computed: Arrow
    encodes and compresses Parquet without Python's lock, so on two cores the write costs little more
    than the hash. An existing snapshot is reused only if its data file still has the hash its manifest
    recorded (the staged copy is then dropped); a damaged one is moved aside to a hidden
    ``.corrupt-…`` folder (kept for inspection) and written anew, so "take a new snapshot" is always a
    way out of a corrupted one.

    Args:
        run_id: the Dagster run taking it: its later steps in this process take the frame from memory
            (``load_snapshot`` with the same run id) instead of reading the file back.

    Raises:
        SnapshotWriteFailed: the storage refused the write; no folder named after the id exists, and
            the hidden staging folder is removed.
    """
    remove_abandoned_staging(root)
    staging = root / f"{STAGING_PREFIX}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    snapshot_id = ""
    try:
        snapshot_id, data_sha256, write_error = _hashed_while_written(frame, staging)
        snapshot = _intact_or_moved_aside(root / snapshot_id) if (root / snapshot_id).exists() else None
        if snapshot is not None:
            snapshot = _replace(snapshot, reused=True)
        else:
            if write_error is not None:
                raise write_error
            snapshot = _publish(staging, frame, sources, root, snapshot_id, data_sha256)
    except OSError as error:
        raise SnapshotWriteFailed(
            f"cannot write snapshot {snapshot_id[:12] or '(not hashed)'} under {root}: {_storage_problem(error)}"
        ) from error
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    if run_id is not None:
        run_frames.keep(run_id, str(root), snapshot_id, frame, _replace(snapshot, reused=False))
    return snapshot


STAGING_PREFIX = ".tmp-"
ABANDONED_AFTER_S = 24 * 3600  # a staging folder of another machine, or of an older naming, this old is abandoned


def remove_abandoned_staging(root: Path, now: float | None = None) -> list[Path]:
    """Remove staging folders whose writer is gone; the ones removed.

    A writer killed between creating its staging folder and renaming it into place (SIGKILL, OOM, a
    node lost) leaves a hidden ``.tmp-<host>-<pid>-…`` folder that nothing else would ever remove (found
    by the fault-injection campaign: a kill as ``dataset_snapshot`` started). The next writer removes
    it when its process is gone: same host, no such process. A folder of another host, or without a
    host and pid in its name, is removed only when it is a day old, since a live writer elsewhere on a
    shared volume cannot be asked. A live writer's folder is never touched.
    """
    import time

    removed = []
    if not root.is_dir():
        return removed
    now = time.time() if now is None else now
    for folder in root.glob(f"{STAGING_PREFIX}*"):
        host, pid = _staging_owner(folder.name)
        try:
            stale = now - folder.stat().st_mtime > ABANDONED_AFTER_S
        except FileNotFoundError:
            continue  # its writer renamed or removed it meanwhile
        mine = host == socket.gethostname() and pid is not None
        if (mine and not _process_alive(pid)) or (not mine and stale):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _staging_owner(name: str) -> tuple[str | None, int | None]:
    """The host and pid a ``.tmp-<host>-<pid>-<hex>`` name records, or ``(None, None)``."""
    parts = name.removeprefix(STAGING_PREFIX).rsplit("-", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return None, None
    return parts[0], int(parts[1])


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def _hashed_while_written(frame: pd.DataFrame, staging: Path) -> tuple[str, str | None, OSError | None]:
    """The content id, computed here while another thread writes ``staging/data.parquet``.

    Returns the id, the data file's sha256 and the storage error that stopped the write, if any (an
    existing intact snapshot makes that error moot). Any other error of the write (a frame Parquet
    cannot hold) is raised, as is any error of the hash.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot-write") as pool:
        written = pool.submit(_write_data, frame, staging)
        try:
            snapshot_id = content_id(frame)
        finally:
            error = written.exception()  # wait for the write either way: the staging folder must be settled
    if isinstance(error, OSError):
        return snapshot_id, None, error
    if error is not None:
        raise error
    return snapshot_id, written.result(), None


def _write_data(frame: pd.DataFrame, staging: Path) -> str:
    """Write ``staging/data.parquet`` and make it durable; returns its sha256."""
    staging.parent.mkdir(parents=True, exist_ok=True)
    staging.mkdir()
    data_file = staging / "data.parquet"
    _write_parquet(frame, data_file)
    _fsync(data_file)  # a full disk can surface only when the data reach it: fail here, not after the rename
    return file_sha256(data_file)


def _publish(
    staging: Path, frame: pd.DataFrame, sources: Sequence[SourceFile], root: Path, snapshot_id: str, data_sha256: str
) -> Snapshot:
    """Add the manifest to the staged data file, make both read-only and rename the folder into place."""
    final = root / snapshot_id
    snapshot = Snapshot(
        snapshot_id=snapshot_id,
        path=final,
        rows=len(frame),
        columns=tuple(map(str, frame.columns)),
        sources=tuple(sources),
        data_sha256=data_sha256,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    manifest = {**asdict(snapshot), "path": None, "sources": [asdict(s) for s in sources]}
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=2))
    _fsync(staging / "manifest.json")
    for written in staging.iterdir():
        written.chmod(0o444)
    try:
        staging.rename(final)
    except OSError:
        if not final.exists():
            raise
        return _replace(read_manifest(final), reused=True)  # a concurrent writer got there first
    return snapshot


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _intact_or_moved_aside(path: Path) -> Snapshot | None:
    """The snapshot at ``path`` if its data file matches its manifest; else move it aside and return None."""
    try:
        snapshot = read_manifest(path)
        intact = snapshot.data_file.is_file() and file_sha256(snapshot.data_file) == snapshot.data_sha256
    except SnapshotCorrupted:
        intact = False
    if intact:
        return snapshot
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path.rename(path.with_name(f".corrupt-{path.name[:12]}-{stamp}-{uuid.uuid4().hex[:6]}"))
    return None


def _storage_problem(error: OSError) -> str:
    """The cause of a refused write, with what to do about it."""
    text = f"{type(error).__name__}: {error}"
    lowered = text.lower()
    if error.errno in (errno.ENOSPC, errno.EDQUOT) or "no space left" in lowered or "quota" in lowered:
        hint = "the disk is full: free space there, or move ML_PLATFORM_HOME to a larger disk"
    elif error.errno == errno.EFBIG or "file too large" in lowered:
        hint = "a file size limit was reached (`ulimit -f`, or the file system's largest file)"
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS) or "permission" in lowered or "read-only" in lowered:
        hint = "the folder is not writable by this process: fix its permissions or mount"
    elif error.errno in (errno.EEXIST, errno.ENOTDIR):
        hint = "a file stands where the snapshot folder should be: move it away"
    else:
        hint = "the storage refused the write"
    return f"{text} ({hint}). No partial snapshot was left behind."


def release_arrow_memory() -> None:
    """Hand the pages Arrow's memory pool keeps after a read or a write back to the system.

    The pool (mimalloc) holds freed memory for reuse: after reading and dropping a 1M-row snapshot and
    its feature frame, 230 MiB stayed resident, and the next step (the estimator's fit, a run's peak)
    started that much higher (docs/benchmarks.md, profile 8). Returning it costs milliseconds.
    """
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def _write_parquet(frame: pd.DataFrame, data_file: Path) -> None:
    """Write the frame as Parquet one row group of ``PARQUET_ROW_GROUP_ROWS`` rows at a time.

    ``DataFrame.to_parquet`` converts the whole frame to Arrow first, a second copy of it in memory;
    converting chunk by chunk against the whole frame's schema keeps one chunk's copy instead. The
    file reads back as ``to_parquet``'s would (the pandas metadata is the same).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pa.Schema.from_pandas(frame, preserve_index=False)
        # The file is opened here, not by the writer: if the writer's close fails (a full disk), the
        # handle still closes at once, so the space of the deleted staging file is freed.
        with data_file.open("wb") as sink, pq.ParquetWriter(sink, schema, compression="snappy") as writer:
            for start in range(0, max(len(frame), 1), PARQUET_ROW_GROUP_ROWS):
                chunk = frame.iloc[start : start + PARQUET_ROW_GROUP_ROWS]
                writer.write_table(pa.Table.from_pandas(chunk, schema=schema, preserve_index=False))
        release_arrow_memory()
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as error:
        columns = _unstorable_columns(frame)
        where = f"; conversion failed for column(s) {capped(columns)}" if columns else ""
        raise ContractViolation(
            f"the frame cannot be stored as Parquet: {type(error).__name__}: {str(error)[:300]}{where} "
            "(expected one type per column)"
        ) from error


def _unstorable_columns(frame: pd.DataFrame) -> list[str]:
    """The columns Arrow cannot convert as one type: what a chunked write's error does not name."""
    import pyarrow as pa

    unstorable = []
    for column in frame.columns:
        try:
            pa.array(frame[column], from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            unstorable.append(str(column))
    return unstorable


def read_manifest(path: Path) -> Snapshot:
    try:
        manifest = json.loads((path / "manifest.json").read_text())
        manifest["path"] = path
        manifest["columns"] = tuple(manifest["columns"])
        manifest["sources"] = tuple(
            SourceFile(**{**s, "dropped_columns": tuple(s.get("dropped_columns", ()))}) for s in manifest["sources"]
        )
        manifest.pop("reused", None)
        return Snapshot(**manifest)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SnapshotCorrupted(
            f"snapshot {path.name}: {path / 'manifest.json'} is missing or unreadable "
            f"({type(error).__name__}: {error}). Take a new snapshot from the landing files."
        ) from error


def load_snapshot(
    root: Path, snapshot_id: str, run_id: str | None = None, release: bool = False
) -> tuple[Snapshot, pd.DataFrame]:
    """Read a snapshot after verifying that its data file is the one that was written.

    The id comes from outside the snapshot store (run metadata, registry tags), so it is checked to be
    a content hash before it becomes a path: ``root / "/etc"`` would be ``/etc``.

    Args:
        run_id: the Dagster run reading it. If this run wrote or verified the snapshot in this process,
            that frame is returned without reading the file again; otherwise the file is read and
            verified, and kept for the run's next step.
        release: this step is the run's last reader of the snapshot: do not keep it any longer.
    """
    if run_id is not None and (found := run_frames.kept(run_id, str(root), snapshot_id, release)) is not None:
        return found
    snapshot, frame = _read_verified(root, snapshot_id)
    if run_id is not None and not release:
        run_frames.keep(run_id, str(root), snapshot_id, frame, snapshot)
    return snapshot, frame


def _read_verified(root: Path, snapshot_id: str) -> tuple[Snapshot, pd.DataFrame]:
    if not isinstance(snapshot_id, str) or not SNAPSHOT_ID_PATTERN.fullmatch(snapshot_id):
        raise ContractViolation(
            f"snapshot id {str(snapshot_id)[:80]!r} is not a snapshot id: expected lowercase hexadecimal digits "
            f"(a content hash), e.g. {'0' * 12}…; a path or any other name is refused."
        )
    path = root / snapshot_id
    if not path.is_dir():
        raise ContractViolation(f"snapshot {snapshot_id} does not exist under {root}")
    snapshot = read_manifest(path)
    if snapshot.snapshot_id != snapshot_id:
        raise SnapshotCorrupted(
            f"snapshot {snapshot_id}: {path / 'manifest.json'} describes snapshot {snapshot.snapshot_id}: "
            "the folder was renamed or its manifest replaced; it will not be used. Take a new snapshot."
        )
    if not snapshot.data_file.is_file():
        raise SnapshotCorrupted(
            f"snapshot {snapshot_id}: {snapshot.data_file} is missing (expected the data file its manifest "
            "describes). Take a new snapshot from the landing files."
        )
    found = file_sha256(snapshot.data_file)
    if found != snapshot.data_sha256:
        raise SnapshotCorrupted(
            f"snapshot {snapshot_id}: {snapshot.data_file} has sha256 {found[:16]}…, but its manifest "
            f"recorded {snapshot.data_sha256[:16]}…. The file was changed after it was written; it will not "
            "be used. Take a new snapshot from the landing files."
        )
    frame = pd.read_parquet(snapshot.data_file)
    release_arrow_memory()
    return snapshot, frame


def _replace(snapshot: Snapshot, **changes) -> Snapshot:
    return Snapshot(**{**snapshot.__dict__, **changes})


def keep_typed(run_id: str, root: Path, snapshot_id: str, contract: str, typed: pd.DataFrame) -> None:
    """Keep, for run ``run_id``'s next step, the snapshot as ``contract`` (an import reference) typed it.

    The snapshot gates type the snapshot to validate it; ``validated_features`` needs the same typed
    frame. Kept under the snapshot's content id and the contract's reference, it is found only for
    that snapshot and that contract, and only by the same run in this process.
    """
    run_frames.keep(run_id, str(root), (snapshot_id, contract), typed)


def take_typed(run_id: str, root: Path, snapshot_id: str, contract: str) -> pd.DataFrame | None:
    """The frame ``keep_typed`` kept for this run, snapshot and contract (then no longer kept), or None."""
    found = run_frames.kept(run_id, str(root), (snapshot_id, contract), release=True)
    return None if found is None else found[1]
