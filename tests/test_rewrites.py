"""Rewrites that lose nothing: truncate / pop / clear move messages to the history, receipts
made before stay verifiable (superseded), purge_history really deletes, and failures write nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import apsw
import pytest

import engine
from engine import digest, schema
from engine.errors import InvalidInputError, SessionNotFoundError

from .conftest import HERE, fingerprint


def msg(text: str) -> dict:
    return {"role": "user", "content": text}


def fresh_digest(bodies, profile="f3") -> str:
    return digest.transcript_digest(list(bodies), profile)


def test_truncate_moves_the_tail_to_history_and_resets_the_digest(store):
    sid = store.create_session()
    store.append_messages(sid, [msg(f"m{i}") for i in range(6)])
    before = store.raw_messages(sid)
    digest_before = store.session(sid).digest
    cursor = store.events()[-1].seq

    assert store.truncate_messages(sid, 2, reason="test") == 4

    assert store.raw_messages(sid) == before[:2]
    session = store.session(sid)
    assert session.message_count == 2
    assert session.digest == fresh_digest(before[:2]) == store.transcript_digest(sid)
    assert store.stats()["message_bytes"] == sum(map(len, before[:2]))
    [rw] = store.rewrites(sid)
    assert (rw.index, rw.old_count, rw.new_count, rw.removed, rw.reason, rw.purged_at_ms) == (0, 6, 2, 4, "test", None)
    assert rw.old_digest == digest_before and rw.removed_bytes == sum(map(len, before[2:]))
    assert store.raw_transcript_before(sid, 0) == before  # byte for byte
    [event] = store.events(after=cursor)
    assert (event.kind, event.detail) == ("messages_truncated", {
        "old_count": 6, "message_count": 2, "removed": 4, "rewrite": 0, "superseded_receipts": 0, "reason": "test"})
    # appending continues at index 2, with the digest state of the prefix
    store.append_messages(sid, [msg("new")])
    assert store.session(sid).digest == fresh_digest(before[:2] + [digest.message_bytes(msg("new"))])
    assert store.verify().ok


def test_pop_and_clear(store):
    sid = store.create_session()
    assert store.pop_message(sid) is None
    assert store.rewrites(sid) == []  # nothing to pop: nothing written
    store.append_messages(sid, [msg("a"), msg("b")])
    assert store.pop_message(sid) == msg("b")
    assert store.messages(sid) == [msg("a")]
    assert store.truncate_messages(sid, 0, reason="clear_session") == 1
    assert store.messages(sid) == [] and store.session(sid).digest == fresh_digest([])
    assert [r.reason for r in store.rewrites(sid)] == ["pop_message", "clear_session"]
    assert store.transcript_before(sid, 0) == [msg("a"), msg("b")]
    assert store.transcript_before(sid, 1) == [msg("a")]
    assert store.truncate_messages(sid, 0) == 0 and len(store.rewrites(sid)) == 2  # no-op writes nothing


class Model:
    """What the store should hold: the current transcript and every rewritten one."""

    def __init__(self):
        self.current: list[bytes] = []
        self.before: list[list[bytes]] = []   # transcript before rewrite i
        self.receipts: dict[tuple[str, int], tuple[int, str, int | None]] = {}  # -> (count, digest, superseded_by)

    def truncate(self, keep: int) -> None:
        g = len(self.before)
        self.before.append(list(self.current))
        self.current = self.current[:keep]
        for key, (count, dg, by) in self.receipts.items():
            if by is None and count > keep:
                self.receipts[key] = (count, dg, g)


@pytest.mark.parametrize("profile", ["f3", "f2"])
def test_random_rewrites_keep_every_receipt_verifiable(store, rng, profile):
    sid = store.create_session(digest_profile=profile)
    model = Model()
    for step in range(300):
        op = rng.random()
        if op < 0.45:
            turn = [msg(f"s{step}-{i}-" + "x" * rng.randrange(200)) for i in range(rng.randrange(1, 4))]
            run = rng.choice(["run-a", "run-b", "run-c"])
            r = store.apply_runtime_turn(sid, run, turn)
            model.current += [digest.message_bytes(m) for m in turn]
            assert r.conversation_digest == fresh_digest(model.current, profile)
            model.receipts[(run, r.sequence)] = (r.message_count, r.conversation_digest, None)
        elif op < 0.6:
            turn = [msg(f"plain{step}")]
            store.append_messages(sid, turn)
            model.current += [digest.message_bytes(m) for m in turn]
        elif op < 0.8 and model.current:
            assert store.pop_message(sid) == json.loads(model.current[-1])
            model.truncate(len(model.current) - 1)
        elif op < 0.95:
            keep = rng.randrange(len(model.current) + 1)
            removed = store.truncate_messages(sid, keep)
            assert removed == len(model.current) - keep
            if removed:
                model.truncate(keep)
        else:
            store.truncate_messages(sid, 0)
            if model.current:
                model.truncate(0)
    assert store.raw_messages(sid) == model.current
    for g, transcript in enumerate(model.before):
        assert store.raw_transcript_before(sid, g) == transcript
        assert store.rewrites(sid)[g].old_digest == fresh_digest(transcript, profile)
    superseded = {k: v for k, v in model.receipts.items() if v[2] is not None}
    for (run, seq), (count, dg, by) in superseded.items():  # the receipt is the digest of what it was made on
        assert fresh_digest(model.before[by][:count], profile) == dg
    stored_by = dict(((r, s), b) for r, s, b in store._connection.execute(
        "SELECT run_id, sequence, superseded_by FROM ms_receipts"))
    assert stored_by == {k: v[2] for k, v in model.receipts.items()}
    report = store.verify()
    assert report.ok, report.mismatches[:3]
    assert report.receipts == len(model.receipts)
    assert report.receipts_superseded == len(superseded)
    assert report.receipts_ok == len(model.receipts) - len(superseded)
    assert report.rewrites == report.rewrites_ok == len(model.before)
    print(f"{len(model.before)} rewrites, {len(superseded)} superseded receipts")


def test_superseded_receipt_with_tampered_history_is_a_mismatch(store):
    sid = store.create_session()
    kept = store.apply_runtime_turn(sid, "r", [msg("a")])
    gone = store.apply_runtime_turn(sid, "r", [msg("b"), msg("c")])
    store.truncate_messages(sid, 1)
    report = store.verify()
    assert report.ok and (report.receipts_ok, report.receipts_superseded) == (1, 1)
    store._connection.execute("UPDATE ms_history SET body = ? WHERE idx = 2", (json.dumps(msg("C")).encode(),))
    report = store.verify()
    assert not report.ok and report.receipts_superseded == 0 and report.receipts_ok == 1
    assert {(m.kind, m.run_id, m.sequence) for m in report.mismatches} == {("receipt", "r", gone.sequence),
                                                                           ("rewrite", None, None)}
    assert kept.sequence not in {m.sequence for m in report.mismatches}
    store._connection.execute("DELETE FROM ms_history WHERE idx = 2")
    report = store.verify()
    assert len(report.mismatches) == 2 and all("missing" in m.detail for m in report.mismatches)


def test_truncated_prefix_is_found_in_a_later_rewrite(store):
    """A receipt's transcript whose prefix a later rewrite cut: rebuilt from two histories."""
    sid = store.create_session()
    store.apply_runtime_turn(sid, "r", [msg(str(i)) for i in range(5)])      # seq 0 at 5
    store.truncate_messages(sid, 3)                                           # rewrite 0 removes 3..4
    store.apply_runtime_turn(sid, "r", [msg("x")])                            # seq 1 at 4
    store.truncate_messages(sid, 1)                                           # rewrite 1 removes 1..3
    store.apply_runtime_turn(sid, "r", [msg("y")])                            # seq 2 at 2
    assert store.transcript_before(sid, 0) == [msg(str(i)) for i in range(5)]
    assert store.transcript_before(sid, 1) == [msg("0"), msg("1"), msg("2"), msg("x")]
    report = store.verify()
    assert report.ok and (report.receipts_ok, report.receipts_superseded, report.rewrites_ok) == (1, 2, 2)
    # the history of rewrite 1 holds message 1 of rewrite 0's transcript: damage it, both fail
    store._connection.execute("UPDATE ms_history SET body = ? WHERE rewrite = 1 AND idx = 1",
                             (json.dumps(msg("!")).encode(),))
    report = store.verify()
    assert {(m.kind, m.sequence) for m in report.mismatches} == {
        ("receipt", 0), ("receipt", 1), ("rewrite", None)} and len(report.mismatches) == 4


def test_transcript_digest_prefix_ignores_superseded_receipts(store):
    sid = store.create_session()
    store.apply_runtime_turn(sid, "r", [msg("a"), msg("b")])
    store.truncate_messages(sid, 1)
    store.append_messages(sid, [msg("other")])
    assert store.transcript_digest(sid, upto=2) == fresh_digest(store.raw_messages(sid))
    assert store.receipts(sid)[0].message_count == 2  # the old receipt is still listed


def test_sequences_continue_after_a_truncation(store):
    sid = store.create_session()
    store.apply_runtime_turn(sid, "r", [msg("a")])
    store.truncate_messages(sid, 0)
    assert store.apply_runtime_turn(sid, "r", [msg("b")]).sequence == 1


@pytest.mark.parametrize("keep", [-1, 4, True, 1.0, "1", None])
def test_bad_truncation_writes_nothing(store, db_path, keep):
    sid = store.create_session(messages=[msg("a"), msg("b"), msg("c")])
    before = fingerprint(db_path)
    with pytest.raises(InvalidInputError, match="keep"):
        store.truncate_messages(sid, keep)
    assert fingerprint(db_path) == before


def test_bad_calls_write_nothing(store, db_path):
    sid = store.create_session(messages=[msg("a")])
    before = fingerprint(db_path)
    with pytest.raises(SessionNotFoundError):
        store.truncate_messages("nope", 0)
    with pytest.raises(SessionNotFoundError):
        store.pop_message("nope")
    with pytest.raises(SessionNotFoundError):
        store.purge_history("nope")
    with pytest.raises(InvalidInputError, match="reason"):
        store.truncate_messages(sid, 0, reason="")
    with pytest.raises(InvalidInputError, match=r"rewrite must be an integer in \[0, 0\)"):
        store.transcript_before(sid, 0)
    with pytest.raises(InvalidInputError, match="vacuum"):
        store.purge_history(sid, vacuum="yes")
    assert fingerprint(db_path) == before


def test_failure_inside_the_truncation_rolls_it_back(store, db_path, monkeypatch):
    sid = store.create_session()
    store.apply_runtime_turn(sid, "r", [msg("a"), msg("b")])
    before = fingerprint(db_path)

    def boom(*a, **k):
        raise RuntimeError("crash in the event log")

    monkeypatch.setattr(type(store), "_log_event", boom)
    with pytest.raises(RuntimeError):
        store.truncate_messages(sid, 0)
    assert fingerprint(db_path) == before


def _file_bytes(db_path) -> bytes:
    out = b""
    for suffix in ("", "-wal"):
        if os.path.exists(db_path + suffix):
            with open(db_path + suffix, "rb") as fh:
                out += fh.read()
    return out


@pytest.mark.parametrize("vacuum", [False, True])
def test_purge_history_deletes_and_says_so(db_path, vacuum):
    secret = "SECRET-4f1c9e-" * 40  # larger than nothing: spans a good part of a page
    with engine.open(db_path) as store:
        sid = store.create_session()
        store.apply_runtime_turn(sid, "r", [msg("keep me")])
        store.apply_runtime_turn(sid, "r", [msg(secret), msg("also gone")])
        store.truncate_messages(sid, 1)
        store._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert b"SECRET-4f1c9e" in _file_bytes(db_path)  # in the history
        cursor = store.events()[-1].seq
        report = store.purge_history(sid, vacuum=vacuum)
        assert (report.rewrites, report.messages, report.receipts, report.vacuumed) == (1, 2, 1, vacuum)
        assert report.bytes == len(digest.message_bytes(msg(secret))) + len(digest.message_bytes(msg("also gone")))
        assert report.wal_truncated
        [event] = store.events(after=cursor)
        assert event.kind == "history_purged" and event.detail["messages"] == 2
        assert b"SECRET-4f1c9e" not in _file_bytes(db_path)
        assert store.rewrites(sid)[0].purged_at_ms is not None
        verdict = store.verify()
        assert verdict.ok and (verdict.receipts_ok, verdict.receipts_purged, verdict.rewrites) == (1, 1, 0)
        with pytest.raises(InvalidInputError, match="purged"):
            store.transcript_before(sid, 0)
        # later rewrites get a history again
        store.append_messages(sid, [msg("later")])
        store.pop_message(sid)
        assert store.transcript_before(sid, 1) == [msg("keep me"), msg("later")]
        assert store.verify().rewrites_ok == 1


def test_delete_session_removes_its_history(store):
    sid = store.create_session(messages=[msg("a"), msg("b")])
    store.truncate_messages(sid, 0)
    assert store.delete_session(sid)
    con = store._connection
    assert con.execute("SELECT count(*) FROM ms_history").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM ms_rewrites").fetchone()[0] == 0


def test_superseded_imported_head(store):
    """An imported meerkat head that a truncation cuts moves into the rewrite and still verifies."""
    sid = store.create_session()
    store.append_messages(sid, [msg("a"), msg("b"), msg("c")])
    head = store.transcript_digest(sid, upto=3)
    store._connection.execute(
        "UPDATE ms_sessions SET head_revision = ?, head_message_count = 3, head_profile = 'f3' WHERE id = ?",
        (head, sid))
    assert store.verify().heads_ok == 2
    store.truncate_messages(sid, 1)
    assert store._connection.execute("SELECT head_revision FROM ms_sessions").fetchone()[0] is None
    report = store.verify()
    assert report.ok and (report.heads, report.heads_ok, report.heads_superseded) == (2, 1, 1)


def test_cli_verify_reports_superseded(db_path):
    with engine.open(db_path) as store:
        sid = store.create_session()
        store.apply_runtime_turn(sid, "r", [msg("a")])
        store.apply_runtime_turn(sid, "r", [msg("b")])
        store.pop_message(sid)
    cli = [sys.executable, "-m", "engine", "verify", db_path]
    result = subprocess.run([*cli, "--json"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["receipts"], doc["receipts_ok"], doc["receipts_superseded"], doc["rewrites_ok"]) == (2, 1, 1, 1)
    result = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "1 superseded receipts" in result.stdout, result.stdout


def test_upgrade_from_version_1(tmp_path):
    """A file with the version-1 layout (tests/fixtures/schema/v1.sql: schema.sql as released at
    version 1) and a receipt in it opens, upgrades in place and gets the tables of a new file."""
    old = str(tmp_path / "v1.db")
    con = apsw.Connection(old)
    with open(os.path.join(HERE, "fixtures", "schema", "v1.sql"), encoding="utf-8") as fh:
        con.execute(fh.read())
    bodies = [digest.message_bytes(msg("a")), digest.message_bytes(msg("b"))]
    state = digest.TranscriptState.new("f3")
    state.absorb(bodies)
    con.execute("INSERT INTO ms_sessions (num, id, created_at_ms, updated_at_ms, message_count, message_bytes, "
                "metadata_json, sha256_state) VALUES (1, 's', 0, 0, 2, ?, '{}', ?)",
                (sum(map(len, bodies)), state.to_bytes()))
    con.executemany("INSERT INTO ms_messages (key, body) VALUES (?, ?)", [((1 << 32) + i, b) for i, b in enumerate(bodies)])
    con.execute("INSERT INTO ms_receipts (session_num, run_id, sequence, boundary, conversation_digest, "
                "message_count, profile, contributing_input_ids, committed_at_ms) VALUES (1, 'r', 0, 'run_start', ?, "
                "2, 'f3', '[]', 0)", (state.digest(),))
    con.execute("PRAGMA user_version = 1")
    con.close()
    with engine.open(old) as store:
        assert store.schema_version == schema.SCHEMA_VERSION
        assert store.verify().receipts_ok == 1
        assert store.pop_message("s") == msg("b")
        report = store.verify()
        assert report.ok and report.receipts_superseded == 1

    def layout(path):
        c = apsw.Connection(path)
        # Our tables: an upgraded file keeps SQLite's own sqlite_sequence (empty since version 5;
        # SQLite never drops it), which a new file never gets.
        tables = [r[0] for r in c.execute("SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE 'ms\\_%' "
                                          "ESCAPE '\\' ORDER BY name")]
        out = {t: [r[1:] for r in c.execute(f"PRAGMA table_xinfo({t})")] for t in tables}  # names from sqlite_schema
        out["fk"] = {t: list(c.execute(f"PRAGMA foreign_key_list({t})")) for t in tables}
        out["indexes"] = sorted(r[0] for r in c.execute("SELECT sql FROM sqlite_schema WHERE type = 'index' AND sql IS NOT NULL"))
        c.close()
        return out

    new = str(tmp_path / "new.db")
    engine.open(new).close()
    assert layout(old) == layout(new)


def test_truncations_from_many_threads(store):
    """Pops, clears and turns from 8 threads at once (group commit batches them): every session
    ends as its own thread's sequence of calls says, and every receipt verifies."""
    import threading

    sids = [store.create_session() for _ in range(8)]
    expected = {}

    def work(k):
        sid = sids[k]
        model = []
        for i in range(30):
            store.apply_runtime_turn(sid, f"run-{k}", [msg(f"{k}-{i}")])
            model.append(msg(f"{k}-{i}"))
            if i % 3 == 2:
                assert store.pop_message(sid) == model.pop()
            if i % 10 == 9:
                store.truncate_messages(sid, 1)
                model = model[:1]
        expected[sid] = model

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {sid: store.messages(sid) for sid in sids} == expected
    report = store.verify()
    assert report.ok and report.receipts == 240 and report.rewrites_ok == 8 * (10 + 3)
