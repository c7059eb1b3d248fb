"""engine/importer.py (and the import-meerkat / verify commands) on meerkat realms: every
realm fixture meerkat ships, ledger v3/v4 realms built by tests/meerkat_realms.py, tampered
and migrated copies, realms that claim more than they hold (docs/meerkat.md)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import apsw
import pytest

from engine.errors import ImportFormatError
from engine.meerkat import RealmSession, open_realm
from tests import meerkat_realms as mr
from tests.test_meerkat import (  # the crafted-realm helpers of the reader's tests
    BARE_DIGEST,
    FIXTURES,
    REALM_0728,
    REV,
    SID_0728,
    Crafted,
    _digest,
    evil_calls,  # noqa: F401 - a fixture
    file_sha,
    msg,
    only,
)

# ---------------------------------------------------------------------------
# Imports keep the evidence; receipts are held to the API's rules
# ---------------------------------------------------------------------------


def _import(realm_path, db_path, **kwargs):
    import engine
    from engine.importer import import_realm

    with engine.open(db_path) as store:
        report = import_realm(store, str(realm_path), **kwargs)
        verify = store.verify()
        sessions = {s: store.raw_messages(s) for s in
                    [row[0] for row in store._con.execute("SELECT id FROM ms_sessions ORDER BY id")]}
    return report, verify, sessions


def _evidence_realm(tmp_path) -> tuple[Path, dict]:
    rows = [msg("user", i) for i in range(3)]
    good = _digest(rows, "f2")
    c = Crafted(tmp_path / "evidence.sqlite3", ledger=True)
    c.rows("clean", "root", dict(enumerate(rows)))
    c.head("clean", "root", 3, good)
    c.receipt("rt:session:clean", "r", 0, count=3, digest=good)
    c.rows("tampered", "root", dict(enumerate(rows)))
    c.head("tampered", "root", 3, _digest(rows[:2], "f2"))                     # head over 2 of 3 rows
    c.receipt("rt:session:tampered", "run-1", 0, count=2, digest=_digest(rows[:2], "f2"))   # fine
    c.receipt("rt:session:tampered", "run-1", 1, count=3, digest=_digest(rows[:1], "f2"))   # wrong
    c.receipt("rt:session:tampered", "run-2", 4, count=1, digest="sha256:" + "0" * 64)       # wrong
    c.receipt("rt:session:tampered", "bad\nrun", 0, count=1, digest=_digest(rows[:1], "f2"))  # API refuses the id
    c.receipt("rt:session:tampered", "run-3", 2**63, count=1, digest=_digest(rows[:1], "f2"),
              column_sequence=-(2**63))                                          # beyond i64
    c.receipt("rt:session:tampered", "run-4", 0, count=1, digest=_digest(rows[:1], "f2"), inputs=("",))
    return c.close(), {"rows": rows, "good": good}


def test_import_keeps_the_evidence_and_verify_names_exactly_the_tampered(tmp_path):
    path, facts = _evidence_realm(tmp_path)
    report, verify, sessions = _import(path, tmp_path / "store.db")
    assert (report.sessions_imported, report.sessions_unverified, report.ok) == (2, 1, False)
    assert sessions == {"clean": facts["rows"], "tampered": facts["rows"]}   # every readable message kept
    assert sorted((f["subject"], f["run_id"], f["sequence"]) for f in report.not_verified) == [
        ("head", None, None), ("receipt", "run-1", 1), ("receipt", "run-2", 4)]
    refused = sorted(p["key"] for p in report.problems)
    assert refused == ["rt:session:tampered/'bad\\nrun'/0", "rt:session:tampered/'run-3'/9223372036854775808",
                       "rt:session:tampered/'run-4'/0"]
    assert any("beyond 2^63-1" in p["reason"] for p in report.problems)
    assert any("contributing_input_ids[0] must not be empty" in p["reason"] for p in report.problems)
    assert report.receipts_imported == 4
    # verify names exactly the tampered receipts and head, with expected and actual.
    got = sorted((m.session_id, m.kind, m.run_id, m.sequence, m.expected, m.actual) for m in verify.mismatches)
    rows = facts["rows"]
    assert got == [
        ("tampered", "head", None, None, _digest(rows[:2], "f2"), facts["good"]),
        ("tampered", "receipt", "run-1", 1, _digest(rows[:1], "f2"), facts["good"]),
        ("tampered", "receipt", "run-2", 4, "sha256:" + "0" * 64, _digest(rows[:1], "f2")),
    ]
    assert (verify.receipts, verify.receipts_ok) == (4, 2)


def test_strict_import_refuses_what_does_not_verify(tmp_path):
    path, _facts = _evidence_realm(tmp_path)
    report, verify, sessions = _import(path, tmp_path / "strict.db", strict=True)
    assert list(sessions) == ["clean"] and verify.ok
    assert any(p["key"] == "tampered" and "refused (--strict): 3 check(s)" in p["reason"] for p in report.problems)


def test_cli_import_exit_codes(tmp_path):
    import subprocess
    import sys

    path, _ = _evidence_realm(tmp_path)
    run = lambda *a: subprocess.run([sys.executable, "-m", "engine", *a], capture_output=True, text=True,  # noqa: E731
                                    timeout=120)
    proc = run("import-meerkat", str(path), "--into", str(tmp_path / "a.db"), "--json")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 1 and doc["sessions_imported"] == 2 and len(doc["not_verified"]) == 3
    proc = run("verify", str(tmp_path / "a.db"), "--json")
    assert proc.returncode == 1 and len(json.loads(proc.stdout)["mismatches"]) == 3
    proc = run("import-meerkat", str(REALM_0728), "--into", str(tmp_path / "b.db"), "--strict")
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---------------------------------------------------------------------------
# Bounded work on hostile realms
# ---------------------------------------------------------------------------


def test_fifo_is_refused_at_once(tmp_path):
    import os
    import subprocess
    import sys
    import time

    fifo = tmp_path / "realm.sqlite3"
    os.mkfifo(fifo)
    with pytest.raises(ImportFormatError, match="a FIFO, not a realm file"):
        open_realm(fifo)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "engine", "import-meerkat", str(fifo), "--into",
                           str(tmp_path / "x.db")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "FIFO" in proc.stderr and time.monotonic() - started < 30
    assert not (tmp_path / "x.db").exists()


HOSTILE_CLAIM = 60_000_000


def _hostile_realm(tmp_path) -> Path:
    """~240 KB: heads claiming 6e7 messages over a few rows (contiguous, sparse, linked), a
    receipt covering 6e7 messages, and padding to the size."""
    c = Crafted(tmp_path / "hostile.sqlite3", ledger=True)
    c.rows("claim", "root", {i: msg("user", i) for i in range(3)})
    c.head("claim", "root", HOSTILE_CLAIM, REV)
    c.rows("sparse", "root", {0: msg("user", 0), HOSTILE_CLAIM - 1: msg("user", 1)})
    c.head("sparse", "root", HOSTILE_CLAIM, REV)
    c.rows("linked", "root", {0: msg("user", 0)})
    c.rows("linked", "x", {0: msg("user", 1)})
    c.link("linked", "x", "root", HOSTILE_CLAIM, 0, 1, 1)
    c.head("linked", "x", HOSTILE_CLAIM, REV)
    c.blob_session("receipt", [msg("user", 1)])
    c.receipt("rt:session:receipt", "r", 0, count=HOSTILE_CLAIM, digest=BARE_DIGEST)
    c.blob_session("claimed-count", [msg("user", 1)], count=HOSTILE_CLAIM)
    c.db.execute("CREATE TABLE padding (x BLOB)")
    c.db.execute("INSERT INTO padding VALUES (randomblob(80000))")
    return c.close()


def test_hostile_claims_cost_bounded_time_and_memory(tmp_path):
    import os
    import subprocess
    import sys
    import time

    path = _hostile_realm(tmp_path)
    assert 200_000 < os.path.getsize(path) < 300_000
    script = (
        "import json, sys, time; import engine; from engine.importer import import_realm\n"
        "t = time.monotonic()\n"
        "with engine.open(sys.argv[2]) as s: r = import_realm(s, sys.argv[1])\n"
        # VmHWM: this process image's peak RSS (ru_maxrss would carry the forking parent's over exec)
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
        "print(json.dumps({'seconds': time.monotonic() - t, 'maxrss_kb': int(hwm), 'problems': r.problems}))\n"
    )
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "h.db")],
                          capture_output=True, text=True, timeout=120)
    wall = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    print(f"hostile realm ({os.path.getsize(path)} bytes): {doc['seconds']:.3f} s import, "
          f"max RSS {doc['maxrss_kb'] / 1024:.1f} MiB, {wall:.2f} s with interpreter start")
    reasons = {p["key"]: p["reason"] for p in doc["problems"]}
    assert reasons["claim"] == "missing strand rows: strand 'root' has 3 of rows [0, 60000000) (first missing seq 3)"
    assert reasons["sparse"].startswith("missing strand rows: strand 'root' has 2 of rows [0, 60000000)")
    assert "missing strand rows" in reasons["linked"]
    assert reasons["rt:session:receipt/'r'/0"].endswith("covers 60000000 messages; the transcript has 1")
    assert "message_count 60000000 but session_json holds 1" in reasons["claimed-count"]
    assert doc["seconds"] < 10 and doc["maxrss_kb"] < 200 * 1024


def test_older_store_gains_import_checks_on_open(tmp_path):
    """A store made before ms_import_checks (the released version-1 layout) opens, upgrades
    in place, and takes an import."""
    import engine
    from engine import schema

    path = tmp_path / "v1.db"
    con = apsw.Connection(str(path))
    con.execute((Path(__file__).parent / "fixtures" / "schema" / "v1.sql").read_text())
    con.execute("PRAGMA user_version = 1")
    con.close()
    with engine.open(path) as store:
        assert store.schema_version == schema.SCHEMA_VERSION
    report, verify, sessions = _import(REALM_0728, path)
    assert report.ok and verify.ok and list(sessions) == [SID_0728]


# ---------------------------------------------------------------------------
# Every sqlite fixture meerkat ships at 0.8.26
# ---------------------------------------------------------------------------

REALM_FIXTURES = sorted(p.name for p in FIXTURES.glob("realm-*.sqlite3"))


@pytest.mark.parametrize("name", REALM_FIXTURES)
def test_every_meerkat_realm_fixture_imports_and_verifies(tmp_path, name):
    report, verify, sessions = _import(FIXTURES / name, tmp_path / "store.db")
    assert report.ok, (report.problems, report.not_verified)
    assert (report.not_verified, report.unrecomputable, report.problems) == ([], [], [])
    assert verify.ok and verify.receipts_ok == verify.receipts and verify.heads_ok == verify.heads
    # bootstrap-only realms hold no session; the attempted turn and the released realm one each
    assert len(sessions) == (0 if "bootstrap-only" in name else 1)


@pytest.mark.parametrize("name, what", [("workgraph-0.7.5.sqlite3", "workgraph"), ("jobs-0.8.10.sqlite3", "jobs")])
def test_other_meerkat_stores_are_refused_clearly(name, what):
    with pytest.raises(ImportFormatError, match=f"not a meerkat session realm: this is a meerkat {what} store"):
        open_realm(FIXTURES / name)


# ---------------------------------------------------------------------------
# Ledger v3 / v4 realms (tests/meerkat_realms.py builds them from meerkat's DDL and formats)
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def current_realms(tmp_path_factory):
    base = tmp_path_factory.mktemp("current")
    out = {}
    for ledger in (3, 4):
        path = base / f"ledger-v{ledger}.sqlite3"
        out[ledger] = (path, mr.current_realm(path, ledger=ledger))
    path = base / "every-kind.sqlite3"
    out["every"] = (path, mr.current_realm(path, ledger=4, kinds="every"))
    return out


@pytest.mark.parametrize("ledger, layout", [(3, "ledger-v3-0.8.11"), (4, "ledger-v4-0.8.21")])
def test_current_realm_imports_with_metadata_membership_and_receipts(tmp_path, current_realms, ledger, layout):
    import engine

    path, facts = current_realms[ledger]
    before = file_sha(path)
    with open_realm(path) as realm:
        assert realm.layout == layout
        got = {s.session_id: s for s in realm.sessions()}
    assert file_sha(path) == before
    for sid, fact in facts.items():
        s = got[sid]
        assert s.findings == (), s.findings  # head revision, token, metadata identity and row prefix verified
        assert list(s.messages) == fact["rows"] and s.metadata == fact["spec"].metadata
        assert s.head.revision == fact["head_revision"] and s.head.cas_token == fact["token"]
        assert s.head.cas_token.startswith("head-v5-sha256:" if ledger == 4 else "head-sha256:")
        assert {(r.run_id, r.sequence): r.conversation_digest for r in s.receipts} == fact["receipts"]
    report, verify, sessions = _import(path, tmp_path / "store.db")
    assert report.ok and report.receipts_imported == 3 and report.heads_imported == 3
    assert verify.ok and (verify.receipts_ok, verify.receipts) == (3, 3)
    with engine.open(tmp_path / "store.db") as store:
        # HEAD writes realm ids as "mob.<mob>": the seed rule does not match, accept_newer does.
        assert store.mob_members("crew") == []
        rec = store.reconcile_mob("crew", roster=[("coder", "agent-1"), ("tester", "agent-2")], accept_newer=True)
        assert sorted((m.profile, m.meerkat_id) for m in rec.members) == [("coder", "agent-1"), ("tester", "agent-2")]
        assert rec.ok and not rec.missing and not rec.unexpected
        strict = store.reconcile_mob("crew")
        assert {b.reason for b in strict.broken} == {"realm_mismatch"}
        ops = store.reconcile_mob("ops", accept_newer=True)
        assert [(m.profile, m.meerkat_id) for m in ops.members] == [("pager", "agent-3")]


def test_current_realm_triggers_are_there_and_never_run(current_realms, evil_calls):  # noqa: F811 - the fixture
    path, _ = current_realms[4]
    db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    triggers = db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").fetchone()[0]
    db.close()
    assert triggers == 33  # meerkat's runtime (26) and schedule (7) stores
    before = file_sha(path)
    with open_realm(path) as realm:
        assert all(isinstance(s, RealmSession) for s in realm.sessions())
        assert realm.problems_outside_sessions() == []
    assert file_sha(path) == before and evil_calls == []


def test_every_kind_realm_keeps_every_message_byte_for_byte(tmp_path, current_realms):
    path, facts = current_realms["every"]
    report, verify, sessions = _import(path, tmp_path / "store.db")
    assert report.problems == [] and report.receipts_imported == 3
    assert sessions == {sid: f["rows"] for sid, f in facts.items()}
    kinds = {m.kind for f in facts.values() for m in f["spec"].messages}
    assert {"notice tool_config", "notice comms", "tool_results", "user blocks"} <= kinds


def test_every_kind_realm_digests_verify(tmp_path, current_realms):
    """tool_config notices digest in declaration order (meerkat-core/src/event.rs:1264-1413@c7b8518b4)."""
    path, _ = current_realms["every"]
    report, verify, _ = _import(path, tmp_path / "store.db")
    assert report.ok and verify.ok and verify.receipts_ok == 3


def test_tampered_current_realm_verify_names_exactly_what_was_changed(tmp_path, current_realms):
    path, facts = current_realms[4]
    c1, c2, c3 = sorted(facts)
    edits = [
        # a receipt's digest
        ("UPDATE runtime_boundary_receipts SET receipt_json = replace(CAST(receipt_json AS TEXT), "
         "'\"message_count\":3', '\"message_count\":2') WHERE runtime_id = ?", ("rt:session:" + c2,)),
        # one strand row (index 5 of c1: after receipt (RUN_A, 1) at 4, before (RUN_A, 2) at 7)
        ("UPDATE session_strand_messages SET message_json = CAST(replace(CAST(message_json AS TEXT), "
         "'question 2', 'question 2!') AS BLOB) WHERE session_id = ? AND seq = 5", (c1,)),
        # a metadata cell's value
        ("UPDATE session_head_metadata_cells SET metadata_json = CAST(replace(CAST(metadata_json AS TEXT), "
         "'agent-3', 'agent-9') AS BLOB) WHERE session_id = ? AND metadata_key = 'session_metadata'", (c3,)),
    ]
    tampered = tmp_path / "tampered.sqlite3"
    shutil.copyfile(path, tampered)
    db = apsw.Connection(str(tampered))
    for sql, params in edits:
        db.execute(sql, params)
    # head_json of c3 edited without re-minting its token
    db.execute("UPDATE session_heads SET head_json = CAST(replace(CAST(head_json AS TEXT), "
               "'\"input_tokens\":70', '\"input_tokens\":71') AS BLOB) WHERE session_id = ?", (c3,))
    db.close()
    report, verify, sessions = _import(tampered, tmp_path / "store.db")
    assert report.problems == [] and len(sessions) == 3  # everything readable kept
    assert b"question 2!" in sessions[c1][5]
    got = sorted((m.session_id, m.kind, m.run_id, m.sequence) for m in verify.mismatches)
    assert got == sorted([
        (c1, "head", None, None), (c1, "receipt", mr.RUN_A, 2), (c1, "row_prefix", None, None),
        (c2, "receipt", mr.RUN_B, 1),
        # the cell's bytes no longer match its recorded value digest (the map root is over the
        # recorded digests, so it still matches the head's identity)
        (c3, "head_token", None, None), (c3, "metadata", None, None),
    ]), got
    by = {(m.session_id, m.kind, m.run_id): m for m in verify.mismatches}
    assert by[c1, "receipt", mr.RUN_A].expected == facts[c1]["receipts"][(mr.RUN_A, 2)]
    assert by[c2, "receipt", mr.RUN_B].expected == facts[c2]["receipts"][(mr.RUN_B, 1)]
    assert by[c2, "receipt", mr.RUN_B].actual == mr.f3_digest(facts[c2]["spec"].messages[:2])
    assert by[c3, "head_token", None].expected == facts[c3]["token"]
    assert verify.receipts_ok == 1  # (RUN_A, 1) of c1 covers the untouched first 4 rows
    import engine

    with engine.open(tmp_path / "store.db") as store:  # the tampered value is what was imported (the evidence)
        meta = store.session(c3).metadata["session_metadata"]
        assert meta["mob_member_binding"]["member"] == "agent-9"


def test_migrated_0810_realm_receipts_are_unrecomputable_not_mismatched(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "migrated.sqlite3"
    facts = mr.migrate_0810(FIXTURES / "realm-0.8.10-released.sqlite3", path)
    (sid, fact), = facts.items()
    with open_realm(path) as realm:
        assert realm.layout == "ledger-v4-0.8.21"
        session = only(realm.sessions())
    assert session.head.revision == fact["head_revision"] != fact["old_rows_head"]
    assert [f.status for f in session.findings] == ["unrecomputable", "unrecomputable"]
    assert all("matched the frozen runtime_session_snapshots transcript" in f.reason for f in session.findings)
    assert all(r.profile == "f2" for r in session.receipts)
    report, verify, _ = _import(path, tmp_path / "store.db")
    assert report.ok and report.receipts_unrecomputable == 2 and report.receipts_imported == 2
    assert verify.ok and verify.mismatches == []
    assert (verify.receipts, verify.receipts_ok, verify.receipts_unrecomputable) == (2, 0, 2)
    assert verify.heads_ok == verify.heads == 2
    assert {(u["run_id"], u["sequence"]) for u in verify.unrecomputable} == {(r.run_id, r.sequence)
                                                                             for r in session.receipts}
    again, verify_again, _ = _import(path, tmp_path / "store.db")  # a re-import adds nothing, twice nothing
    assert (again.sessions_unchanged, again.receipts_imported, verify_again.receipts_unrecomputable) == (1, 0, 2)
    proc = subprocess.run([sys.executable, "-m", "engine", "verify", str(tmp_path / "store.db"), "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0 and doc["receipts_unrecomputable"] == 2 and doc["receipts_ok"] == 0

    # Without the frozen snapshot nothing can recompute them: still unrecomputable, and it says so.
    bare = tmp_path / "no-snapshot.sqlite3"
    mr.migrate_0810(FIXTURES / "realm-0.8.10-released.sqlite3", bare, keep_snapshot=False)
    with open_realm(bare) as realm:
        session = only(realm.sessions())
    assert [f.status for f in session.findings] == ["unrecomputable", "unrecomputable"]
    assert all("no runtime snapshot" in f.reason for f in session.findings)

    # A receipt changed after the migration: its bytes no longer match the recorded hash.
    changed = mr.tamper(path, tmp_path / "changed.sqlite3",
                        "UPDATE runtime_boundary_receipts SET receipt_json = CAST(replace(CAST(receipt_json AS TEXT), "
                        "'run_start', 'immediate') AS BLOB) WHERE run_id = ?", (session.receipts[0].run_id,))
    report, verify, _ = _import(changed, tmp_path / "changed.db")
    assert [(m.kind, m.run_id) for m in verify.mismatches] == [("receipt", session.receipts[0].run_id)]
    assert "released-0.8.10 receipt hash" in verify.mismatches[0].detail
    assert verify.receipts_unrecomputable == 1 and not report.ok


def _rewrite_head(path: Path, sid: str, **changes) -> None:
    """Edit one head_json's fields and mint its head-v5 token again (as meerkat would)."""
    db = apsw.Connection(str(path))
    (raw,) = db.execute("SELECT head_json FROM session_heads WHERE session_id = ?", (sid,)).fetchone()
    head = json.loads(raw)
    head.update(changes)
    body = mr._j(head)
    db.execute("UPDATE session_heads SET head_json = ?, cas_token = ?, message_count = ?, rewrite_count = ? "
               "WHERE session_id = ?", (body, mr.v5_token(head), head["message_count"], head["rewrite_count"], sid))
    db.close()


def test_what_cannot_be_checked_is_reported_unchecked(tmp_path, current_realms):
    """A head with rewrites: its row lineage is an operation history the file does not hold
    whole, so it is reported unchecked (by import and by verify), never counted as verified."""
    src, facts = current_realms[4]
    path = tmp_path / "rewritten.sqlite3"
    shutil.copyfile(src, path)
    sid = sorted(facts)[1]
    _rewrite_head(path, sid, rewrite_count=1, rewrite_prefix={"occurrence_count": 1, "digest": "sha256:" + "ab" * 32},
                  graph_prefix={"occurrence_count": 1, "digest": "sha256:" + "cd" * 32})
    with open_realm(path) as realm:
        session = realm.session(sid)
    assert [(f.subject, f.status) for f in session.findings] == [("row_prefix", "unchecked")]
    assert session.verified and "operation history" in session.findings[0].reason
    report, verify, _ = _import(path, tmp_path / "store.db")
    assert report.ok and [(u["session_id"], u["subject"]) for u in report.unchecked] == [(sid, "row_prefix")]
    assert verify.ok and [(u["session_id"], u["subject"], u["status"]) for u in verify.unchecked] == [
        (sid, "row_prefix", "unchecked")]


def test_hostile_ledger_v4_claims_cost_bounded_time_and_memory(tmp_path, current_realms):
    """A v4 head (token minted to match) claiming 6e7 messages, a 6e7-row lineage and a
    6e7-entry metadata map over a few rows and cells: reported, in bounded time and memory."""
    import time
    import tracemalloc

    src, facts = current_realms[4]
    path = tmp_path / "hostile-v4.sqlite3"
    shutil.copyfile(src, path)
    sid = sorted(facts)[0]
    db = apsw.Connection(str(path))
    (raw,) = db.execute("SELECT head_json FROM session_heads WHERE session_id = ?", (sid,)).fetchone()
    db.close()
    head = json.loads(raw)
    identity = dict(head["metadata_identity"], entry_count=HOSTILE_CLAIM)
    prefix = dict(head["message_row_prefix"], row_count=HOSTILE_CLAIM)
    _rewrite_head(path, sid, message_count=HOSTILE_CLAIM, message_row_prefix=prefix, metadata_identity=identity)
    tracemalloc.start()
    started = time.monotonic()
    with open_realm(path) as realm:
        items = {getattr(i, "session_id", getattr(i, "key", None)): i for i in realm.sessions()}
    seconds = time.monotonic() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"hostile v4 realm: {seconds:.3f} s, peak Python allocation {peak / 2**20:.1f} MiB")
    problem = items[sid]
    assert problem.where == "session_strand_messages"
    assert problem.reason == f"missing strand rows: strand 'root' has 7 of rows [0, {HOSTILE_CLAIM}) (first missing seq 7)"
    assert all(isinstance(items[s], RealmSession) for s in facts if s != sid)
    assert seconds < 5 and peak < 50 * 2**20
