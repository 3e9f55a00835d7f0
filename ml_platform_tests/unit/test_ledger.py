"""The decision ledger: durable, append-only, queryable."""

import sqlite3

import pytest

from ml_platform.stores.ledger import Decision, Ledger, champion_history, format_history


def test_records_survive_a_new_ledger_object_and_are_queried_in_order(tmp_path):
    ledger = Ledger.for_home(tmp_path)
    first = ledger.record(
        Decision(
            "conversion", "no-op", "drift", "0 of 7 drifted", scores={"price": 0.01}, evidence={"files": ["a.csv"]}
        )
    )
    ledger.record(Decision("conversion", "retrain", "drift", "3 of 7 drifted", scores={"price": 0.8}))
    ledger.record(Decision("iris", "promoted", "gates", "every gate passed", version="1"))
    ledger.record(Decision("conversion", "promoted", "gates", "every gate passed", version="2"))
    ledger.record(Decision("conversion", "rolled-back", "rollback", "bad week", version="1", actor="ana"))

    reopened = Ledger(tmp_path / "decisions.db")
    records = reopened.query("conversion")
    assert [r.decision for r in records] == ["no-op", "retrain", "promoted", "rolled-back"]
    assert records[0].id == first.id and records[0].scores == {"price": 0.01}
    assert records[0].evidence == {"files": ["a.csv"]} and records[0].recorded_at == first.recorded_at
    assert [r.decision for r in reopened.query("conversion", ["retrain", "no-op"])] == ["no-op", "retrain"]
    assert reopened.latest("conversion").decision == "rolled-back"
    assert [r.version for r in champion_history(reopened, "conversion")] == ["2", "1"]
    assert "rolled-back v1    [rollback by ana]  bad week" in format_history(champion_history(reopened, "conversion"))
    assert reopened.query("conversion", trigger="drift", limit=1)[0].decision == "retrain"


def test_the_ledger_is_append_only(tmp_path):
    ledger = Ledger.for_home(tmp_path)
    ledger.record(Decision("conversion", "held", "gates", "waiting for approval", version="3"))
    with sqlite3.connect(ledger.path) as connection, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        connection.execute("UPDATE decisions SET decision = 'promoted'")
    with sqlite3.connect(ledger.path) as connection, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        connection.execute("DELETE FROM decisions")
    assert [r.decision for r in ledger.query("conversion")] == ["held"]


def test_unknown_decisions_are_refused_and_an_absent_ledger_is_empty(tmp_path):
    with pytest.raises(ValueError, match=r"decision 'maybe' is not one of \['retrain', 'no-op'"):
        Decision("conversion", "maybe", "drift", "?")
    ledger = Ledger.for_home(tmp_path / "nowhere")
    assert ledger.query("conversion") == [] and ledger.latest("conversion") is None
    with pytest.raises(ValueError, match=r"unknown decision kind\(s\) \['maybe'\]"):
        Ledger.for_home(tmp_path).query("conversion", ["maybe"])


def test_a_keyed_record_is_made_once_and_the_first_one_is_kept(tmp_path):
    """A re-executed step or a recovery records a promotion under the same key: one record, the first."""
    ledger = Ledger.for_home(tmp_path)
    first = ledger.record_once(Decision("iris", "promoted", "gates", "every gate passed", version="2"), "promotion:a")
    recovered = Decision("iris", "promoted", "gates", "finished by a recovery", version="2")
    again = ledger.record_once(recovered, "promotion:a")
    assert first is not None and again is None
    assert ledger.record(Decision("iris", "promoted", "gates", "a third try", version="2"), "promotion:a") == first
    assert ledger.recorded("promotion:a") == first and ledger.recorded("promotion:b") is None
    assert [r.reason for r in ledger.query("iris")] == ["every gate passed"]
    assert ledger.record_once(Decision("iris", "unrecorded-move", "reconcile", "moved by hand", version="1"), "move:x")
    assert [r.decision for r in champion_history(ledger, "iris")] == ["promoted", "unrecorded-move"]
