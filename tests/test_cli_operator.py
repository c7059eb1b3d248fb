"""The operator's commands (sessions, messages, mobs, sql, vacuum, prune-events) and the
shell manners every command keeps: help with no arguments, a closed pipe is not an error,
progress on stderr, --json / --csv output."""

from __future__ import annotations

import csv
import io
import json
import os
import pty
import subprocess
import sys

import pytest

import engine
from engine.demo import mob_metadata

from .test_cli import run

USER = {"role": "user", "content": "hello", "created_at": "2026-01-02T03:04:05Z"}


@pytest.fixture
def ops_db(tmp_path):
    db = str(tmp_path / "ops.db")
    with engine.open(db) as s:
        a = s.create_session(mob_metadata("crew", "coder", "a"), messages=[USER])
        s.apply_runtime_turn(a, "run-1", [USER, b'{"role":"user",\n "content":"two lines"}'])
        b = s.create_session(mob_metadata("crew", "coder", "a"))  # the same slot twice
        c = s.create_session(mob_metadata("zoo", "tester", "z", realm_id="mob.zoo"))
        s.create_session()
    return db, a, b, c


def test_no_arguments_prints_help_and_exits_0():
    proc = run()
    assert proc.returncode == 0
    assert proc.stdout.startswith("Usage: mobstore") and "Commands:" in proc.stdout
    assert proc.stderr == ""


def test_closed_pipe_exits_0_quietly(ops_db):
    db, *_ = ops_db
    with engine.open(db) as s:
        for i in range(3000):
            s.create_session(mob_metadata("big", "coder", f"m{i}"))
    proc = subprocess.Popen([sys.executable, "-m", "engine", "members", db, "big"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0, err
    assert first.startswith(b"session_id")
    assert b"Traceback" not in err and b"BrokenPipe" not in err and b"Exception ignored" not in err


def test_progress_goes_to_stderr_and_stdout_stays_data(ops_db, tmp_path):
    db, *_ = ops_db
    out_path = tmp_path / "out.txt"
    leader, follower = pty.openpty()
    with open(out_path, "wb") as out:
        proc = subprocess.run([sys.executable, "-m", "engine", "verify", db], stdout=out, stderr=follower,
                              timeout=60)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert proc.returncode == 0
    assert out_path.read_text().startswith("4 sessions, 1/1 receipts ok")
    assert "\x1b" not in out_path.read_text()  # no terminal control codes in the data
    assert b"verifying" in seen  # the bar was drawn on the terminal (stderr)


def test_sessions_table_json_csv(ops_db):
    db, a, b, c = ops_db
    proc = run("sessions", db)
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[0].split("\t") == ["session_id", "created_at", "updated_at", "messages", "profile", "comms_name"]
    assert len(lines) == 5 and "4 sessions" in proc.stderr
    proc, doc = run("sessions", db, "--mob", "crew", "--json", check_json=True)
    assert [d["session_id"] for d in doc] == [b, a]
    assert doc[1]["messages"] == 3 and doc[1]["comms_name"] == "crew/coder/a"
    assert doc[1]["created_at"].endswith("+00:00")
    proc = run("sessions", db, "--csv", "--limit", "1")
    rows = list(csv.reader(io.StringIO(proc.stdout)))
    assert rows[0][0] == "session_id" and len(rows) == 2 and rows[1][4] == "f3"


def test_messages_jsonl_byte_for_byte(ops_db):
    db, a, *_ = ops_db
    proc = subprocess.run([sys.executable, "-m", "engine", "messages", db, a], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    with engine.open(db, readonly=True) as s:
        raw = s.raw_messages(a)
    assert lines[:2] == raw[:2]
    assert lines[2] == raw[2].replace(b"\n", b" ")  # a raw line break in JSON whitespace becomes a space
    assert [json.loads(x) for x in lines] == [json.loads(x) for x in raw]
    proc = subprocess.run([sys.executable, "-m", "engine", "messages", db, a, "--start", "-1"],
                          capture_output=True, timeout=60)
    assert json.loads(proc.stdout) == {"role": "user", "content": "two lines"}
    proc = subprocess.run([sys.executable, "-m", "engine", "messages", db, "--all"], capture_output=True, timeout=60)
    wrapped = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [(w["session_id"], w["index"]) for w in wrapped] == [(a, 0), (a, 1), (a, 2)]
    assert wrapped[0]["message"] == USER
    assert run("messages", db).returncode == 2  # neither SESSION_ID nor --all
    assert run("messages", db, "nope").returncode == 2


def test_mobs_lists_the_mob_ids(ops_db):
    db, *_ = ops_db
    proc, doc = run("mobs", db, "--json", check_json=True)
    assert doc == [
        {"mob_id": "crew", "claims": 2, "members": 2, "broken": 0, "duplicated_slots": 1},
        {"mob_id": "zoo", "claims": 1, "members": 0, "broken": 1, "duplicated_slots": 0},
    ]
    proc, doc = run("mobs", db, "--accept-newer", "--json", check_json=True)
    assert doc[1]["members"] == 1  # realm mob.zoo is what newer meerkat writes


def test_sql_is_read_only(ops_db):
    db, a, *_ = ops_db
    proc, doc = run("sql", db, "SELECT id, message_count FROM ms_sessions WHERE id = ?", "--param", a, "--json",
                    check_json=True)
    assert doc == {"columns": ["id", "message_count"], "rows": [[a, 3]]}
    proc = run("sql", db, "SELECT count(*) AS n FROM ms_messages", "--csv")
    assert proc.stdout.splitlines() == ["n", "3"]
    before = open(db, "rb").read()
    for statement in ("DELETE FROM ms_events", "UPDATE ms_sessions SET message_count = 0",
                      "PRAGMA query_only = OFF", "ATTACH 'x.db' AS x", "SELECT 1; DROP TABLE ms_events",
                      "PRAGMA user_version = 9", "SELEKT 1"):
        proc = run("sql", db, statement)
        assert proc.returncode == 2 and proc.stderr.startswith("mobstore: error: "), (statement, proc.stderr)
    assert open(db, "rb").read() == before


def test_store_query_api(ops_db):
    db, a, *_ = ops_db
    with engine.open(db) as s:
        result = s.query("SELECT kind FROM ms_events WHERE session_id = ? ORDER BY seq", [a])
        assert result.columns == ("kind",) and result.rows == [("session_created",), ("receipt_committed",)]
        assert s.query("SELECT * FROM ms_events WHERE 0").columns[0] == "seq"  # columns even with no row
        with pytest.raises(engine.InvalidInputError):
            s.query("DELETE FROM ms_events")
        with pytest.raises(engine.InvalidInputError, match="LIMIT"):
            s.query("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c", max_rows=10)
        s.append_messages(a, [USER])  # the connection is writable again afterwards
        assert s.message_count(a) == 4


def test_reconcile_without_roster_says_so(ops_db):
    db, *_ = ops_db
    proc = run("reconcile", db, "crew")
    assert "roster: not checked (no --roster given)" in proc.stdout
    assert "missing" not in proc.stdout.split("\n")[0]


def test_stats_explains_each_figure(ops_db):
    db, *_ = ops_db
    proc = run("stats", db)
    lines = {line.split()[0]: line for line in proc.stdout.splitlines()}
    assert "write-ahead log" in lines["file_bytes"] and "logical size" in lines["database_bytes"]
    assert lines["messages"].split()[1] == "3"


def test_prune_events_and_vacuum(ops_db):
    db, a, b, c = ops_db
    with engine.open(db) as s:
        s.delete_session(c)
        n_events = s.stats()["events"]
        last = s.events()[-1].seq
    proc, doc = run("prune-events", db, "--before-seq", str(last), "--json", check_json=True)
    assert doc == {"deleted": n_events - 1, "remaining": 1}
    with engine.open(db) as s:
        assert [e.seq for e in s.events()] == [last]
        assert [e.seq for e in s.events(after=1)] == [last]  # an old cursor continues with what is kept
    assert run("prune-events", db).returncode == 2
    assert run("prune-events", db, "--older-than", "soon").returncode == 2
    proc, doc = run("vacuum", db, "--json", check_json=True)
    assert proc.returncode == 0 and doc["bytes_after"] <= doc["bytes_before"]
    assert not os.path.exists(db + "-wal") or os.path.getsize(db + "-wal") == 0


def test_deleted_transcript_leaves_no_trace_after_vacuum(tmp_path):
    db = str(tmp_path / "private.db")
    secret = "the secret plan " * 200
    with engine.open(db) as s:
        keep = s.create_session(messages=[USER])
        gone = s.create_session(messages=[{"role": "user", "content": secret}])
        s.delete_session(gone)
        s.vacuum()
        assert s.message_count(keep) == 1
    for name in (db, db + "-wal"):
        if os.path.exists(name):
            assert b"the secret plan" not in open(name, "rb").read()


def test_demo_refuses_existing_db(tmp_path):
    db = tmp_path / "there.db"
    db.write_bytes(b"")
    proc = run("demo", "--db", str(db))
    assert proc.returncode == 2 and "already exists" in proc.stderr


def test_query_restores_query_only(ops_db):
    db, *_ = ops_db
    with engine.open(db) as s:
        con = s._db()
        con.execute("PRAGMA query_only = ON")
        s.query("SELECT 1")
        assert con.execute("PRAGMA query_only").fetchone()[0] == 1  # left as it was
        con.execute("PRAGMA query_only = OFF")
        s.query("SELECT 1")
        assert con.execute("PRAGMA query_only").fetchone()[0] == 0
