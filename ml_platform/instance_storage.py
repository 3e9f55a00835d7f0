"""The embedded Dagster instance's SQLite storage, changed in one respect: engines are kept.

Dagster's ``SqliteEventLogStorage`` builds a new SQLAlchemy engine for every read and every write
(``create_engine``, one statement, ``dispose``). A lifecycle run writes about 70 events and reads the
gate history before each step, so that is some 400 engines a run, and each new engine sets up its
dialect and starts with an empty compiled-statement cache. Profiled on ``ml-platform run iris`` this
was about 2 s of a 19 s CPU run (docs/benchmarks.md). Here the event log keeps one engine per shard
instead. It is still ``NullPool``: every operation opens and closes its own SQLite connection, as
before, so locking and concurrency between the webserver, the daemon and run processes are
unchanged; only the engine object (and SQLAlchemy's statement cache) survives between operations.
At most ``KEPT_ENGINES`` shards keep theirs, so a long-lived webserver that reads thousands of runs
does not grow.

The storage layout on disk is Dagster's own (``history/runs.db``, ``history/runs/<run>.db``,
``schedules/``): a home written by either class is read by the other.
"""

from __future__ import annotations

import os
import tempfile
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory

KEPT_ENGINES = 16


class EngineKeepingSqliteEventLogStorage(SqliteEventLogStorage):
    """``SqliteEventLogStorage`` with one SQLAlchemy engine per shard, kept between operations."""

    def __init__(self, base_dir: str, inst_data=None):
        self._engines: OrderedDict[str, object] = OrderedDict()  # before: the parent reindexes through _connect
        super().__init__(base_dir, inst_data)

    @contextmanager
    def _connect(self, shard: str) -> Iterator:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        with self._db_lock:
            engine = self._engines.pop(shard, None)
            if engine is None:
                engine = create_engine(
                    self.conn_string_for_shard(shard),
                    poolclass=NullPool,
                    connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS},
                )
            self._engines[shard] = engine  # most recently used last
            while len(self._engines) > KEPT_ENGINES:
                self._engines.popitem(last=False)[1].dispose()
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn


class SqliteStorage(DagsterSqliteStorage):
    """Dagster's SQLite storage (runs, event logs, schedules) with the engine-keeping event log.

    Configured in ``dagster.yaml`` as ``storage: custom:`` with ``base_dir`` (``env: DAGSTER_HOME``).
    """

    def __init__(self, base_dir: str, inst_data=None):
        super().__init__(base_dir, inst_data=inst_data)
        self._event_log_storage = EngineKeepingSqliteEventLogStorage(_event_logs_directory(base_dir))

    @classmethod
    def config_type(cls):
        from dagster import Field, StringSource

        return {"base_dir": Field(StringSource, is_required=False)}

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> SqliteStorage:
        """``base_dir`` defaults to ``$DAGSTER_HOME``; without it (``dagster definitions validate`` run
        from the repository, which reads ``./dagster.yaml``) to a temporary folder, as Dagster's own
        ephemeral instances do: nothing outside a DAGSTER_HOME is meant to persist."""
        base_dir = config_value.get("base_dir") or os.environ.get("DAGSTER_HOME")
        return cls.from_local(base_dir or tempfile.mkdtemp(prefix="dagster-storage-"), inst_data=inst_data)
