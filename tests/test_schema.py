"""Schema versioning: new file, numbered upgrade steps in one transaction, refusal of newer files."""

from __future__ import annotations

import apsw
import pytest

import engine
from engine import schema
from engine.errors import SchemaTooNewError

from .conftest import fingerprint


def test_new_file_gets_current_version(db_path):
    with engine.open(db_path) as s:
        assert s.schema_version == schema.SCHEMA_VERSION
        tables = {r[0] for r in s._connection.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    assert {"ms_sessions", "ms_messages", "ms_bindings", "ms_receipts", "ms_events"} <= tables


def test_refuses_newer_file_untouched(db_path):
    with engine.open(db_path) as s:
        s.create_session(session_id="x")
    con = apsw.Connection(db_path)
    con.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    con.close()
    before = fingerprint(db_path)
    with pytest.raises(SchemaTooNewError, match="newer"):
        engine.open(db_path)
    assert fingerprint(db_path) == before


def test_upgrade_from_previous_version(db_path, monkeypatch):
    """A synthetic version N+1 step runs once, in its own transaction, on a version-N file."""
    with engine.open(db_path) as s:
        s.create_session(session_id="old")
    calls = []

    def step(con):
        calls.append(con.execute("PRAGMA user_version").fetchone()[0])
        con.execute("ALTER TABLE ms_sessions ADD COLUMN note TEXT")
        con.execute("UPDATE ms_sessions SET note = 'upgraded'")

    monkeypatch.setattr(schema, "SCHEMA_VERSION", schema.SCHEMA_VERSION + 1)
    monkeypatch.setitem(schema.UPGRADES, schema.SCHEMA_VERSION, step)
    with engine.open(db_path) as s:
        assert s.schema_version == schema.SCHEMA_VERSION
        assert s._connection.execute("SELECT note FROM ms_sessions WHERE id = 'old'").fetchone()[0] == "upgraded"
    with engine.open(db_path):
        pass
    assert calls == [schema.SCHEMA_VERSION - 1]  # ran exactly once


def test_failing_upgrade_step_rolls_back(db_path, monkeypatch):
    with engine.open(db_path) as s:
        s.create_session(session_id="old")
    before = fingerprint(db_path)

    def step(con):
        con.execute("ALTER TABLE ms_sessions ADD COLUMN note TEXT")
        raise RuntimeError("step failed half-way")

    monkeypatch.setattr(schema, "SCHEMA_VERSION", schema.SCHEMA_VERSION + 1)
    monkeypatch.setitem(schema.UPGRADES, schema.SCHEMA_VERSION, step)
    with pytest.raises(RuntimeError):
        engine.open(db_path)
    assert fingerprint(db_path) == before
    con = apsw.Connection(db_path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION - 1
    assert "note" not in {r[1] for r in con.execute("PRAGMA table_info(ms_sessions)")}


def test_packaged_schema_is_the_top_level_file():
    import os

    top = os.path.join(os.path.dirname(__file__), "..", "schema.sql")
    with open(top, encoding="utf-8") as fh:
        assert schema.schema_sql() == fh.read()


def _v1_file(path, events, pruned_newest: int = 0):
    """A store in the released version-1 layout (tests/fixtures/schema/v1.sql, where ms_events.seq
    was AUTOINCREMENT) holding `events` event rows, the newest `pruned_newest` of them deleted
    again as prune_events of those versions could."""
    import os

    con = apsw.Connection(path)
    with open(os.path.join(os.path.dirname(__file__), "fixtures", "schema", "v1.sql"), encoding="utf-8") as fh:
        con.execute(fh.read())
    con.executemany("INSERT INTO ms_events (at_ms, kind, session_id, detail) VALUES (?, 'session_created', ?, ?)",
                    [(1000 + i, f"s{i}", b'{"message_count":0}') for i in range(events)])
    if pruned_newest:
        con.execute("DELETE FROM ms_events WHERE seq > ?", (events - pruned_newest,))
    con.execute("PRAGMA user_version = 1")
    con.close()


def test_event_log_upgrade_keeps_every_seq_and_drops_the_counter_page(db_path):
    _v1_file(db_path, 5)
    with engine.open(db_path) as s:
        assert [e.seq for e in s.events()] == [1, 2, 3, 4, 5]
        assert [e.session_id for e in s.events()] == [f"s{i}" for i in range(5)]
        sql = s._connection.execute("SELECT sql FROM sqlite_schema WHERE name = 'ms_events'").fetchone()[0]
        assert "AUTOINCREMENT" not in sql.upper()
        assert s._connection.execute("SELECT count(*) FROM sqlite_sequence").fetchone()[0] == 0
        s.create_session(session_id="new")
        assert s.events()[-1].seq == 6 and s.events()[-1].kind == "session_created"


def test_event_log_upgrade_keeps_the_counter_of_pruned_newest_events(db_path):
    """Events 4 and 5 were pruned under AUTOINCREMENT: their numbers stay used after the upgrade."""
    _v1_file(db_path, 5, pruned_newest=2)
    with engine.open(db_path) as s:
        events = s.events()
        assert [e.seq for e in events] == [1, 2, 3, 5]
        assert (events[-1].kind, events[-1].session_id, events[-1].detail) == ("events_pruned", "", {"through_seq": 5})
        s.create_session(session_id="new")
        assert s.events(after=5)[0].seq == 6


def test_prune_events_keeps_the_newest_so_no_number_is_reused(store):
    import time

    sids = [store.create_session() for _ in range(4)]
    newest = store.events()[-1].seq
    assert store.prune_events(before_seq=newest + 100) == 3  # every seq is below, but the newest stays
    assert [e.seq for e in store.events()] == [newest]
    store.append_messages(sids[0], [{"role": "user", "content": "x", "created_at": "2026-01-02T03:04:05Z"}])
    assert [e.seq for e in store.events()] == [newest, newest + 1]
    time.sleep(0.005)
    assert store.prune_events(older_than_ms=0) == 1  # both are older than now; the newest stays
    store.delete_session(sids[1])
    assert [e.seq for e in store.events()] == [newest + 1, newest + 2]
