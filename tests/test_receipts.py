"""apply_runtime_turn, O(delta) digests across reopen, prefixes, verify against tampering."""

from __future__ import annotations

import json

import pytest

import engine
from engine import demo, digest
from engine.errors import InvalidInputError

from .conftest import fingerprint


def msg(text: str) -> dict:
    return {"role": "user", "content": text, "created_at": "2026-03-04T05:06:07.123Z"}


def full_digest(store, sid, upto=None, profile="f3"):
    return digest.transcript_digest(store.raw_messages(sid, 0, upto), profile)


def test_receipt_json_is_meerkats_shape(store):
    sid = store.create_session()
    r = store.apply_runtime_turn(sid, "run-1", [msg("a"), msg("b")], boundary="immediate",
                                 contributing_input_ids=["in-1", "in-2"])
    assert r.message_count == 2 and r.sequence == 0
    assert r.conversation_digest == full_digest(store, sid)
    expected = ('{"run_id":"run-1","boundary":"immediate","contributing_input_ids":["in-1","in-2"],'
                f'"conversation_digest":"{r.conversation_digest}","message_count":2,"sequence":0}}').encode()
    assert r.to_json() == expected
    no_digest = engine.RunBoundaryReceipt("r", "run_start", (), None, 0, 3)
    assert no_digest.to_json() == b'{"run_id":"r","boundary":"run_start","contributing_input_ids":[],"message_count":0,"sequence":3}'
    stored = store._connection.execute(
        "SELECT receipt_json, profile, contributing_input_ids FROM ms_receipts").fetchone()
    assert stored == (None, "f3", b'["in-1","in-2"]')  # JSON regenerated from the columns
    assert store.receipts(sid) == [r]
    # orjson (to_json) and the serde-rules writer agree on receipts, escapes included
    tricky = engine.RunBoundaryReceipt("r\u2028\"\x01é🦊/", "run_checkpoint", ("a\tb",), "sha256:00", 2**63, 2**64 - 1)
    assert tricky.to_json() == digest.dumps_value(tricky.to_dict())


def test_sequences_per_run(store):
    sid = store.create_session()
    other = store.create_session()
    seqs = [store.apply_runtime_turn(sid, run, [msg(run)]).sequence for run in ("a", "a", "b", "a", "b")]
    assert seqs == [0, 1, 0, 2, 1]
    assert store.apply_runtime_turn(other, "a", [msg("x")]).sequence == 0
    assert [r.sequence for r in store.receipts(sid, run_id="a")] == [0, 1, 2]
    assert [r.message_count for r in store.receipts(sid)] == [1, 2, 4, 3, 5]  # by run, then sequence
    assert len(store.receipts(run_id="a")) == 4


def test_invalid_turn_writes_nothing_and_consumes_no_sequence(store, db_path):
    sid = store.create_session()
    store.apply_runtime_turn(sid, "r", [msg("a")])
    before = fingerprint(db_path)
    with pytest.raises(InvalidInputError):
        store.apply_runtime_turn(sid, "r", [msg("b"), {"role": "user"}])
    with pytest.raises(InvalidInputError):
        store.apply_runtime_turn(sid, "r", [msg("b")], boundary="sometime")
    with pytest.raises(InvalidInputError):
        store.apply_runtime_turn(sid, "r", [msg("b")], contributing_input_ids="in-1")
    with pytest.raises(InvalidInputError):
        store.apply_runtime_turn(sid, "r", [msg("b")], contributing_input_ids=[1])
    assert fingerprint(db_path) == before
    assert store.apply_runtime_turn(sid, "r", [msg("b")]).sequence == 1


@pytest.mark.parametrize("appends", [1, 2, 1000])
def test_digest_after_reopen_equals_full_recompute(db_path, rng, appends):
    with engine.open(db_path) as s:
        sid = s.create_session()
        for _ in range(appends):
            s.append_messages(sid, [demo.user_message(rng, 100)])
    with engine.open(db_path) as s:
        assert s.transcript_digest(sid) == full_digest(s, sid)
        r = s.apply_runtime_turn(sid, "after-reopen", demo.turn_messages(rng, 300))
        assert r.conversation_digest == full_digest(s, sid)


def test_prefix_digests(store, rng):
    sid = store.create_session()
    receipts = [store.apply_runtime_turn(sid, "r", demo.turn_messages(rng, 200)) for _ in range(4)]
    for r in receipts:
        assert store.transcript_digest(sid, upto=r.message_count) == r.conversation_digest
    for k in (0, 1, 3, 7):
        assert store.transcript_digest(sid, upto=k) == full_digest(store, sid, k)
    assert store.transcript_digest(sid, profile="bare") == full_digest(store, sid, profile="bare")
    assert store.transcript_digest(sid, upto=0) == digest.transcript_digest([])
    with pytest.raises(InvalidInputError):
        store.transcript_digest(sid, upto=9)


def _tamper(store, sql, args=()):
    store._connection.execute(sql, args)


def _setup(store, rng):
    sid = store.create_session(session_id="victim")
    for i in range(3):
        store.apply_runtime_turn(sid, f"run-{i}", demo.turn_messages(rng, 200))
    assert store.verify().ok
    return sid


def test_verify_clean(store, rng):
    _setup(store, rng)
    report = store.verify()
    assert (report.sessions, report.receipts, report.receipts_ok, report.heads, report.heads_ok) == (1, 3, 3, 1, 1)


def test_raise_for_mismatch(store, rng):
    sid = _setup(store, rng)
    assert store.verify().raise_for_mismatch().receipts_ok == 3
    _tamper(store, "UPDATE ms_receipts SET conversation_digest = 'sha256:00' WHERE run_id = 'run-1'")
    with pytest.raises(engine.DigestMismatchError, match="1 digest mismatch.*'victim' run run-1 sequence 0"):
        store.verify(sid).raise_for_mismatch()


def test_verify_catches_a_changed_byte(store, rng):
    sid = _setup(store, rng)
    body = store.raw_messages(sid, 1, 2)[0]
    changed = body.replace(b'"text":"', b'"text":"X', 1)
    assert changed != body
    _tamper(store, "UPDATE ms_messages SET body = ? WHERE key = (SELECT num FROM ms_sessions WHERE id = ?) * 4294967296 + 1",
            (changed, sid))
    report = store.verify()
    assert not report.ok
    assert {(m.session_id, m.run_id, m.sequence) for m in report.mismatches if m.kind == "receipt"} == {
        ("victim", "run-0", 0), ("victim", "run-1", 0), ("victim", "run-2", 0)}
    assert any(m.kind == "state" for m in report.mismatches)


def test_verify_catches_a_deleted_message(store, rng):
    sid = _setup(store, rng)
    _tamper(store, "DELETE FROM ms_messages WHERE key = (SELECT num FROM ms_sessions WHERE id = ?) * 4294967296 + 3", (sid,))
    report = store.verify()
    assert [(m.run_id, m.detail) for m in report.mismatches if m.kind == "receipt"] == [
        ("run-1", "message 3 is missing"), ("run-2", "message 3 is missing")]
    assert report.receipts_ok == 1


def test_verify_catches_reordered_messages(store, rng):
    sid = _setup(store, rng)
    a, b = store.raw_messages(sid, 2, 4)
    base = "(SELECT num FROM ms_sessions WHERE id = ?) * 4294967296"
    _tamper(store, f"UPDATE ms_messages SET body = ? WHERE key = {base} + 2", (b, sid))
    _tamper(store, f"UPDATE ms_messages SET body = ? WHERE key = {base} + 3", (a, sid))
    report = store.verify()
    assert {m.run_id for m in report.mismatches if m.kind == "receipt"} == {"run-1", "run-2"}


def test_verify_catches_a_wrong_message_count(store, rng):
    _setup(store, rng)
    _tamper(store, "UPDATE ms_receipts SET message_count = 3 WHERE run_id = 'run-1'")
    report = store.verify()
    assert [(m.run_id, m.expected is not None) for m in report.mismatches] == [("run-1", True)]


def test_verify_catches_a_stale_digest_state(store, rng):
    sid = _setup(store, rng)
    stale = digest.TranscriptState.new("f3").to_bytes()
    _tamper(store, "UPDATE ms_sessions SET sha256_state = ? WHERE id = ?", (stale, sid))
    report = store.verify()
    assert [m.kind for m in report.mismatches] == ["state", "state"]
    assert report.receipts_ok == 3


def test_profile_recorded_per_receipt(store):
    sid = store.create_session(digest_profile="bare")
    r = store.apply_runtime_turn(sid, "r", [msg("a")])
    assert len(r.conversation_digest) == 64 and not r.conversation_digest.startswith("sha256:")
    assert r.conversation_digest == full_digest(store, sid, profile="bare")
    assert store._connection.execute("SELECT profile FROM ms_receipts").fetchone()[0] == "bare"
    assert store.verify().ok


def test_receipt_digest_matches_meerkat_vector(store):
    """A receipt's digest is meerkat's f3 of the transcript (a known answer of meerkat's compiled
    types); the vector's messages carry keys the typed decode drops, so the session is lenient."""
    from .conftest import SAMPLE_VECTORS

    with open(SAMPLE_VECTORS) as fh:
        vector = json.loads(fh.readline())
    sid = store.create_session(decode="lenient")
    r = store.apply_runtime_turn(sid, "r", [m.encode() for m in vector["messages"]])
    assert r.conversation_digest == vector["f3"]
