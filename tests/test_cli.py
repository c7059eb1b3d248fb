"""The mobstore command: exit codes, --json, one-line errors, --help everywhere."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

import engine
from engine.demo import mob_metadata

from .conftest import MEERKAT_DIR

COMMANDS = ["demo", "import-meerkat", "verify", "members", "reconcile", "stats", "sessions", "messages", "mobs",
            "sql", "vacuum", "prune-events"]


def run(*args, check_json=False):
    proc = subprocess.run([sys.executable, "-m", "engine", *args], capture_output=True, text=True, timeout=300)
    if check_json:
        return proc, json.loads(proc.stdout)
    return proc


def test_version():
    proc = run("--version")
    assert proc.returncode == 0
    assert engine.__version__ in proc.stdout and "digest" in proc.stdout and "SQLite" in proc.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    proc = run(command, "--help")
    assert proc.returncode == 0 and "Usage:" in proc.stdout


def test_demo_json(tmp_path):
    db = str(tmp_path / "d.db")
    proc, doc = run("demo", "--db", db, "--agents", "6", "--turns", "3", "--json", check_json=True)
    assert proc.returncode == 0, proc.stderr
    assert doc["turns"] == 18 and doc["messages"] == 36
    assert doc["receipts_ok"] == doc["receipts"] == 18 and doc["verify_ok"] is True
    assert doc["turns_per_second"] > 0 and doc["member_sessions"] == 7  # 6 agents + 1 duplicate claim
    assert doc["planted_found"] is True and doc["roster_entries"] == 7
    assert {b["reason"] for b in doc["broken"]} == {"realm_mismatch", "label_role_mismatch", "comms_name_not_three_parts"}
    assert doc["missing"] == [["planner", "agent-missing"]]
    proc, stats = run("stats", db, "--json", check_json=True)
    assert stats["receipts"] == 18 and stats["messages"] == 36 and stats["schema_version"] == engine.schema.SCHEMA_VERSION


def test_demo_default_human_output():
    proc = run("demo")
    assert proc.returncode == 0, proc.stderr
    assert "turns/s" in proc.stdout and "Exactly what was planted." in proc.stdout
    assert "Verified 192 of 192 receipts" in proc.stdout


@pytest.fixture
def mob_db(tmp_path):
    db = str(tmp_path / "m.db")
    with engine.open(db) as s:
        s.create_session(mob_metadata("crew", "coder", "k1"), session_id="s1")
        s.create_session(mob_metadata("crew", "tester", "k2"), session_id="s2")
        s.create_session(mob_metadata("crew", "tester", "k3", realm_id="mob:x"), session_id="s3")
        s.apply_runtime_turn("s1", "r", [{"role": "user", "content": "hi"}])
    return db


def test_members_and_reconcile(mob_db, tmp_path):
    proc, doc = run("members", mob_db, "crew", "--json", check_json=True)
    assert proc.returncode == 0
    assert doc["members"] == [{"session_id": "s1", "profile": "coder", "meerkat_id": "k1"},
                              {"session_id": "s2", "profile": "tester", "meerkat_id": "k2"}]
    roster = tmp_path / "roster.txt"
    roster.write_text("coder/k1\n# comment\nlead/k0\n")
    proc, doc = run("reconcile", mob_db, "crew", "--roster", str(roster), "--json", check_json=True)
    assert proc.returncode == 1
    assert doc["missing"] == [{"profile": "lead", "meerkat_id": "k0"}]
    assert [u["session_id"] for u in doc["unexpected"]] == ["s2"]
    assert [(b["session_id"], b["reason"]) for b in doc["broken"]] == [("s3", "realm_mismatch")]
    roster.write_text(json.dumps([["coder", "k1"], ["tester", "k2"]]))
    proc = run("reconcile", mob_db, "crew", "--roster", str(roster))
    assert proc.returncode == 1 and "s3" in proc.stdout  # still the broken claim


def test_verify_exit_codes(mob_db, tmp_path):
    proc, doc = run("verify", mob_db, "--json", check_json=True)
    assert proc.returncode == 0
    assert {"sessions", "receipts", "receipts_ok", "mismatches", "heads_ok"} <= doc.keys()
    tampered = str(tmp_path / "t.db")
    shutil.copy(mob_db, tampered)
    with engine.open(tampered) as s:
        s._connection.execute("UPDATE ms_messages SET body = ?", (b'{"role":"user","content":"hj"}',))
    proc, doc = run("verify", tampered, "--json", check_json=True)
    assert proc.returncode == 1
    assert doc["mismatches"][0]["session_id"] == "s1"
    proc = run("verify", tampered)
    assert proc.returncode == 1 and "MISMATCH session s1" in proc.stdout


@pytest.mark.parametrize("command", ["verify", "members", "reconcile", "stats"])
@pytest.mark.parametrize("kind", ["missing", "not-sqlite", "truncated", "directory"])
def test_bad_database_is_exit_2_one_line(command, kind, tmp_path, mob_db):
    path = tmp_path / "bad.db"
    if kind == "not-sqlite":
        path.write_bytes(b"this is not a database\n" * 100)
    elif kind == "truncated":
        data = open(mob_db, "rb").read()
        path.write_bytes(data[: len(data) // 3 or 100])
    elif kind == "directory":
        path.mkdir()
    args = [command, str(path)] + (["crew"] if command in ("members", "reconcile") else [])
    before = path.read_bytes() if path.is_file() else None
    proc = run(*args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stderr.startswith("mobstore: error: ") and proc.stderr.count("\n") == 1
    assert "Traceback" not in proc.stderr
    if before is not None:
        assert path.read_bytes() == before
    assert not os.path.exists(str(path) + "-wal") or kind == "truncated"


def test_import_and_verify_vendored_realms(tmp_path):
    db = str(tmp_path / "imported.db")
    for name in ("realm-0.7.5-attempted-turn.sqlite3", "realm-0.7.28-attempted-turn.sqlite3"):
        proc, doc = run("import-meerkat", os.path.join(MEERKAT_DIR, name), "--into", db, "--json", check_json=True)
        assert proc.returncode in (0, 1), proc.stderr
        assert doc["sessions_imported"] >= 1
    proc, again = run("import-meerkat", os.path.join(MEERKAT_DIR, "realm-0.7.28-attempted-turn.sqlite3"),
                      "--into", db, "--json", check_json=True)
    assert again["sessions_imported"] == again["sessions_extended"] == again["messages_imported"] == 0
    proc, report = run("verify", db, "--json", check_json=True)
    assert proc.returncode == 0, report["mismatches"]
    # two sessions (no receipts in these fixtures): both digest states + the 0.7.28 meerkat head
    assert (report["sessions"], report["heads"], report["heads_ok"]) == (2, 3, 3)
    with engine.open(db) as s:
        assert s.session("01a00703-2762-7c22-8c30-d3ed99b3ad42").digest_profile == "f2"
        assert len(s.raw_messages("01a00703-2118-7712-8d1b-5fd002e2a7d1")[0]) == 14_083


def test_import_rejects_non_realm(tmp_path):
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not sqlite at all" * 64)
    proc = run("import-meerkat", str(junk), "--into", str(tmp_path / "x.db"))
    assert proc.returncode == 2 and proc.stderr.startswith("mobstore: error: ")
    proc = run("import-meerkat", str(tmp_path / "absent"), "--into", str(tmp_path / "x.db"))
    assert proc.returncode == 2
