"""The online inference log (platform-owned): every online prediction, beside the batch scoring log.

Files are ``<home>/inference/<model>/online-<UTC yyyymmddTHHMMSS>-<pid>-<seq>.parquet``, in the columns
batch scoring writes (``rules.performance.inference_log_frame``) plus ``cohort`` (production, canary or
shadow), ``request_id``, ``latency_ms`` and ``status`` (ok or error); error rows also carry
``http_status`` and ``error``, and null inputs and prediction (a refused request's inputs cannot be
typed). Rows are buffered and written every ``flush_rows`` rows or ``flush_seconds`` seconds and at
shutdown; the append that fills the buffer calls ``on_full`` at once, so a writer woken by it (the server's
flush task) bounds what a kill can lose to about ``flush_rows``, not to whatever arrived between two
periodic checks. Each file is written once: to a hidden partial first, then linked to its name (``os.link``
fails rather than overwrite), so a reader sees a whole file or none. A server killed mid-write leaves
only a hidden partial, which readers never match and the next server removes (``remove_partials``).

Readers that judge the deployed model (drift, the performance monitor: ``serving_rows``) ignore shadow
and error rows; the release gate reads every row (``stores.release.read_online_log``).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.extensions import ExtensionArray

from ml_platform.rules.release import (  # the column names and values the release gate reads
    CANARY_COHORT,
    COHORT,
    HTTP_STATUS,
    LATENCY_MS,
    OK,
    PRODUCTION_COHORT,
    REQUEST_ID,
    SHADOW_COHORT,
    STATUS,
)
from ml_platform.rules.release import ERROR as FAILED

ERROR = "error"  # error rows only, beside HTTP_STATUS: the message answered
__all__ = [
    "CANARY_COHORT", "COHORT", "ERROR", "FAILED", "HTTP_STATUS", "LATENCY_MS", "OK", "ONLINE", "OnlineLog",
    "PRODUCTION_COHORT", "REQUEST_ID", "SHADOW_COHORT", "STATUS", "remove_partials", "serving_rows",
]  # fmt: skip
ONLINE = "online"  # the batch_file of every online row
PARTIAL = re.compile(r"^\.online-\d{8}T\d{6}-(?P<pid>\d+)-\d+\.parquet\.partial$")


def serving_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows that judge the deployed model: answered (``status`` ok) and returned (not shadow)."""
    if frame.empty:
        return frame
    keep = pd.Series(True, index=frame.index)
    if COHORT in frame.columns:
        keep &= frame[COHORT].astype(str) != SHADOW_COHORT
    if STATUS in frame.columns:
        keep &= frame[STATUS].astype(str) != FAILED
    return frame[keep]


def remove_partials(folder: Path) -> list[Path]:
    """Delete the hidden partial files of online writers that are no longer running; the paths removed."""
    removed = []
    for path in folder.glob(".online-*.partial") if folder.is_dir() else ():
        match = PARTIAL.match(path.name)
        if match and not _alive(int(match["pid"])):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a partial of this very process is left from a crash before a restart under the same pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class _Piece:
    """Rows as the server hands them over: the typed inputs per column, and the log's own columns (a list or
    one value)."""

    inputs: dict[str, Any]
    rows: int
    columns: dict[str, Any]


class OnlineLog:
    """The buffered writer of one model's online log; ``append`` from the server, ``flush`` from any thread.

    The server hands over its pieces as they are (the typed input columns, arrays of predictions); they
    become one frame only when flushed, column by column, so that the cost of building it is paid once per
    file, not per request: a frame per request cost about 1 ms to cut out of its batch and 0.1 ms more to
    concatenate, and each one left objects behind for the garbage collector (docs/benchmarks.md profile 15).
    """

    def __init__(self, folder: Path, *, flush_rows: int = 5_000, flush_seconds: float = 5.0):
        self.folder, self.flush_rows, self.flush_seconds = folder, flush_rows, flush_seconds
        self.on_full: Callable[[], None] | None = None  # called (from the appending thread) when a buffer fills
        self._answered: list[_Piece] = []
        self._errors: list[_Piece] = []
        self._rows = 0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._sequence = 0
        self.last_flush = time.monotonic()
        self.written: list[Path] = []
        folder.mkdir(parents=True, exist_ok=True)
        remove_partials(folder)

    def append(self, inputs: pd.DataFrame | Mapping[str, Any], columns: dict[str, Any], ok: bool = True) -> None:
        """Buffer rows: ``inputs`` (a frame, or its columns as arrays of equal length) and the log's columns,
        each a sequence or one value for all."""
        if isinstance(inputs, pd.DataFrame):
            piece = _Piece({name: column.array for name, column in inputs.items()}, len(inputs), columns)
        else:
            piece = _Piece(dict(inputs), len(next(iter(inputs.values()), ())), columns)
        with self._lock:
            if not self._rows:
                self.last_flush = time.monotonic()  # the wait starts with the first buffered row
            (self._answered if ok else self._errors).append(piece)
            filled = self._rows < self.flush_rows <= self._rows + piece.rows
            self._rows += piece.rows
        if filled and self.on_full is not None:
            self.on_full()

    def due(self) -> bool:
        """Whether buffered rows have waited ``flush_seconds`` or number ``flush_rows``."""
        with self._lock:
            if not self._rows:
                return False
            return self._rows >= self.flush_rows or time.monotonic() - self.last_flush >= self.flush_seconds

    def flush(self) -> list[Path]:
        """Write what is buffered: one file for the answered rows, one for the errors (their columns have
        different types); the files written."""
        with self._lock:
            groups = [group for group in (self._answered, self._errors) if group]
            self._answered, self._errors, self._rows = [], [], 0
            self.last_flush = time.monotonic()
        with self._write_lock:
            written = [self._write_once(_assemble(group)) for group in groups]
            self.written.extend(written)
        return written

    def _write_once(self, frame: pd.DataFrame) -> Path:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        while True:
            self._sequence += 1
            name = f"online-{stamp}-{os.getpid()}-{self._sequence}.parquet"
            partial = self.folder / f".{name}.partial"
            frame.to_parquet(partial, index=False)
            try:
                os.link(partial, self.folder / name)  # never replaces a file: another writer's name is skipped
                return self.folder / name
            except FileExistsError:
                continue
            finally:
                partial.unlink(missing_ok=True)


def _assemble(pieces: list[_Piece]) -> pd.DataFrame:
    frame = pd.DataFrame({name: _concatenated([piece.inputs[name] for piece in pieces]) for name in pieces[0].inputs})
    for name in pieces[0].columns:
        values: list[Any] = []
        for piece in pieces:
            value = piece.columns[name]
            values.extend(value if isinstance(value, list) else [value] * piece.rows)
        frame[name] = values
    return frame


def _concatenated(parts: list[Any]) -> Any:
    """One column from its pieces, keeping its type: NumPy arrays, pandas arrays (text, zoned times) or lists."""
    first = parts[0]
    if all(type(part) is type(first) for part in parts):
        if isinstance(first, list):
            return [value for part in parts for value in part]
        if isinstance(first, np.ndarray):
            return np.concatenate(parts)
        if isinstance(first, ExtensionArray):
            return type(first)._concat_same_type(parts)
    return pd.concat([pd.Series(part, dtype=object if isinstance(part, list) else None) for part in parts],
                     ignore_index=True).array  # fmt: skip
