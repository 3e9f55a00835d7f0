"""The decision ledger: every retraining judgment and every promotion outcome, durable and queryable.

Platform-owned, no Dagster here. Sensor ticks (and their skip reasons) are purged after days, and
MLflow keeps no history of alias moves, so the ledger is where an auditor reads what the system
looked at, what it measured and what it did -- a decision *not* to retrain included.

Records live in one SQLite file under the platform home (``<home>/decisions.db``), append-only: the
table refuses updates and deletes. Each record says which model, which decision, what triggered it,
why, the scores or metric deltas it rested on, and the evidence it links to (run ids, snapshot ids,
model versions). An ``alert`` is a finding rather than an action: the champion's live metric fell
beyond its tolerance; the ``retrain`` or ``rolled-back`` records that follow it say what was done. An
``unrecorded-move`` is a finding too: ``champion`` or ``production`` points somewhere the ledger never
moved it (a person with registry rights moved it by hand); it names the alias, the two versions and when
it was noticed.

A record may carry a key (``record(decision, key=...)``): the first record under a key is the only one,
so a step that is re-executed, or a recovery that finishes what a killed run began, records its
decision exactly once (``ml_platform.stores.recovery``).
The Dagster wiring mirrors each record as an observation of ``<model>/decisions`` so it also shows in
the UI.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

DecisionKind = Literal[
    "retrain",
    "no-op",
    "no-decision",
    "alert",
    "promoted",
    "held",
    "rejected",
    "rolled-back",
    "canary-started",  # a release put a version beside production; its gate's verdict is promoted or rolled-back
    "unrecorded-move",
]
DECISIONS: tuple[str, ...] = get_args(DecisionKind)
CHAMPION_CHANGES = ("promoted", "rolled-back", "unrecorded-move")
LEDGER_FILE = "decisions.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded_at TEXT NOT NULL,
    model TEXT NOT NULL,
    decision TEXT NOT NULL,
    trigger TEXT NOT NULL,
    reason TEXT NOT NULL,
    version TEXT,
    actor TEXT,
    scores TEXT NOT NULL,
    evidence TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_by_model ON decisions (model, id);
CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'the decision ledger is append-only'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'the decision ledger is append-only'); END;
CREATE TABLE IF NOT EXISTS decision_keys (
    key TEXT PRIMARY KEY,
    decision_id INTEGER NOT NULL REFERENCES decisions (id)
);
"""
_COLUMNS = "id, recorded_at, model, decision, trigger, reason, version, actor, scores, evidence"


@dataclass(frozen=True)
class Decision:
    """One record of the ledger.

    Attributes:
        model: the model's name.
        decision: one of ``DECISIONS``.
        trigger: what made the judgment: ``drift``, ``new-data``, ``schedule``, ``performance``, ``gates``,
            ``approval``, ``rollback``, ``manual`` …
        reason: one or more sentences a reviewer can read without opening anything.
        scores: the numbers the decision rested on (PSI per feature, rows, metric deltas).
        evidence: links to what it judged (batch files, snapshot ids, run ids, versions, checks).
        version: the model version concerned, if any.
        actor: who decided, for a human decision (approval, rollback).
    """

    model: str
    decision: DecisionKind
    trigger: str
    reason: str
    scores: dict[str, Any] = field(default_factory=dict)
    evidence: dict[str, Any] = field(default_factory=dict)
    version: str | None = None
    actor: str | None = None
    recorded_at: str = ""
    id: int | None = None

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(f"decision {self.decision!r} is not one of {list(DECISIONS)}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "recorded_at": self.recorded_at,
            "model": self.model,
            "decision": self.decision,
            "trigger": self.trigger,
            "reason": self.reason,
            "version": self.version,
            "actor": self.actor,
            "scores": self.scores,
            "evidence": self.evidence,
        }


class Ledger:
    """The append-only decision ledger in one SQLite file."""

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def for_home(cls, home: Path) -> Ledger:
        return cls(Path(home) / LEDGER_FILE)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=30.0)
        connection.executescript(_SCHEMA)
        return connection

    def record(self, decision: Decision, key: str | None = None) -> Decision:
        """Append a record; returns it with its id and time.

        With ``key``, the record is appended only if no record was made under that key before, in the
        same transaction; otherwise the earlier record is returned.
        """
        return self._append(decision, key)[0]

    def record_once(self, decision: Decision, key: str) -> Decision | None:
        """Append a record under ``key`` unless one was made under it before; ``None`` when one was."""
        recorded, new = self._append(decision, key)
        return recorded if new else None

    def _append(self, decision: Decision, key: str | None) -> tuple[Decision, bool]:
        recorded = replace(decision, recorded_at=decision.recorded_at or _now())
        with closing(self._connect()) as connection, connection:
            connection.execute("BEGIN IMMEDIATE")  # two recorders of one key: the second waits, then finds it
            if key is not None:
                earlier = _by_key(connection, key)
                if earlier is not None:
                    return earlier, False
            cursor = connection.execute(
                "INSERT INTO decisions (recorded_at, model, decision, trigger, reason, version, actor, scores,"
                " evidence) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    recorded.recorded_at,
                    recorded.model,
                    recorded.decision,
                    recorded.trigger,
                    recorded.reason,
                    recorded.version,
                    recorded.actor,
                    _json(recorded.scores),
                    _json(recorded.evidence),
                ),
            )
            if key is not None:
                connection.execute(
                    "INSERT INTO decision_keys (key, decision_id) VALUES (?, ?)", (key, cursor.lastrowid)
                )
        return replace(recorded, id=cursor.lastrowid), True

    def recorded(self, key: str) -> Decision | None:
        """The record made under ``key``, if any."""
        if not self.path.exists():
            return None
        with closing(self._connect()) as connection:
            return _by_key(connection, key)

    def query(
        self,
        model: str | None = None,
        decisions: Iterable[str] | None = None,
        trigger: str | None = None,
        since: str | None = None,
        limit: int | None = None,
    ) -> list[Decision]:
        """Records in the order they were made, optionally filtered; ``limit`` keeps the latest ones."""
        clauses, values = [], []
        if model is not None:
            clauses.append("model = ?")
            values.append(model)
        if decisions is not None:
            kinds = list(decisions)
            unknown = sorted(set(kinds) - set(DECISIONS))
            if unknown:
                raise ValueError(f"unknown decision kind(s) {unknown}; known: {list(DECISIONS)}")
            clauses.append(f"decision IN ({', '.join('?' * len(kinds))})")
            values += kinds
        if trigger is not None:
            clauses.append("trigger = ?")
            values.append(trigger)
        if since is not None:
            clauses.append("recorded_at >= ?")
            values.append(since)
        if not self.path.exists():
            return []
        sql = f"SELECT {_COLUMNS} FROM decisions"
        sql += (" WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with closing(self._connect()) as connection:
            rows = connection.execute(sql, values).fetchall()
        return [_decision(row) for row in reversed(rows)]

    def latest(self, model: str, decisions: Iterable[str] | None = None) -> Decision | None:
        found = self.query(model, decisions, limit=1)
        return found[0] if found else None


def champion_history(ledger: Ledger, model: str) -> list[Decision]:
    """Every change of ``champion`` for ``model``, oldest first: promotions (automatic or approved) and rollbacks."""
    return ledger.query(model, CHAMPION_CHANGES)


def format_history(records: Iterable[Decision]) -> str:
    """The ledger records as aligned lines: time, decision, version, trigger, actor, reason."""
    lines = []
    for record in records:
        who = f" by {record.actor}" if record.actor else ""
        version = f"v{record.version}" if record.version else "-"
        lines.append(
            f"{record.recorded_at}  {record.decision:<11} {version:<5} [{record.trigger}{who}]  {record.reason}"
        )
    return "\n".join(lines)


def _by_key(connection: sqlite3.Connection, key: str) -> Decision | None:
    row = connection.execute(
        f"SELECT {_COLUMNS} FROM decisions WHERE id = (SELECT decision_id FROM decision_keys WHERE key = ?)", (key,)
    ).fetchone()
    return _decision(row) if row else None


def _decision(row: tuple) -> Decision:
    identifier, recorded_at, model, decision, trigger, reason, version, actor, scores, evidence = row
    return Decision(
        model,
        decision,
        trigger,
        reason,
        json.loads(scores),
        json.loads(evidence),
        version,
        actor,
        recorded_at,
        identifier,
    )


def _json(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")
