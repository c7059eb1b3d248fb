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
        tables = {r[0] for r in s.connection.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
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
        assert s.connection.execute("SELECT note FROM ms_sessions WHERE id = 'old'").fetchone()[0] == "upgraded"
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
