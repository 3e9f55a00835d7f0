"""The frames a run has just written or verified, kept in this process for the run's next step.

A lifecycle run used to write a snapshot, then read it back (hashing the file again) in the very next
step, in the same process, and did the same with the feature frame: four hashed Parquet reads of bytes
the process had in memory (docs/benchmarks.md, profile 10). A step that has just written and hashed
a frame, or read and verified it, keeps it here; a later step *of the same run in the same process*
takes it instead of reading the file.

What keeps this honest:

- **Keyed by content.** A frame is found by its store root and content id, the hash of its contents,
  so what is found is the frame the id names, never another one.
- **Scoped to one run.** Each entry names the Dagster run that kept it and only that run finds it; the
  first entry of another run drops every entry. A re-execution from failure, a later run, another pod
  or another process never finds anything here and reads the file, verifying its hash, as before: a
  file changed on disk is still refused by every reader that reads it.
- **Bounded.** At most ``CAPACITY`` frames are kept (the newest); keeping another drops the oldest,
  and a run's last reader can take its frame out (``release``). A long-lived process (a code server,
  a test session) holds at most one run's last frame.
- **Never changed by a reader.** Each reader gets a shallow copy: pandas' copy-on-write (the default
  in pandas 3) copies any column a reader writes to, so the kept frame stays the frame that was hashed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

import pandas as pd

CAPACITY = 2  # a run's snapshot (or its contract-typed form) and the frame derived from it

_lock = threading.Lock()
_run: str | None = None
_kept: OrderedDict[tuple[str, Hashable], tuple[Any, pd.DataFrame]] = OrderedDict()


def keep(run_id: str, root: str, key: Hashable, frame: pd.DataFrame, about: Any = None) -> None:
    """Keep ``frame`` (and ``about``, e.g. its manifest) for the rest of run ``run_id`` in this process.

    Args:
        root: the store the frame lives in (a snapshot root, or a name for a derived frame).
        key: the frame's content id in that store, or what identifies it as uniquely.
    """
    global _run
    with _lock:
        if _run != run_id:
            _kept.clear()
            _run = run_id
        _kept.pop((root, key), None)
        _kept[(root, key)] = (about, frame.copy(deep=False))
        while len(_kept) > CAPACITY:
            _kept.popitem(last=False)


def kept(run_id: str, root: str, key: Hashable, release: bool = False) -> tuple[Any, pd.DataFrame] | None:
    """``(about, frame)`` if run ``run_id`` kept this frame in this process, else None.

    With ``release`` the entry is dropped: the caller is the run's last reader of it.
    """
    with _lock:
        if _run != run_id or (root, key) not in _kept:
            return None
        about, frame = _kept.pop((root, key)) if release else _kept[(root, key)]
        return about, frame.copy(deep=False)


def forget() -> None:
    """Drop every kept frame (the end of a run, or a test that wants a cold process)."""
    global _run
    with _lock:
        _kept.clear()
        _run = None
