"""verify reads the next chunk of messages in a thread while the native digest works on this
one (engine.receipts._read_ahead). The report must be the same as reading chunk by chunk in
one thread -- on a clean session, a changed, a missing and an unreadable message --, an error
of the reader must reach the caller as the same error, and no reader thread may outlive the
call. Chunks are made small here so that short sessions take many of them."""

from __future__ import annotations

import threading

import apsw
import pytest

import engine
from engine import digest, receipts

native = pytest.mark.skipif(digest.DIGEST_IMPL != "native", reason="read-ahead runs on the native path only")


def _message(i: int) -> dict:
    return {"role": "user", "content": f"message {i} " + "x" * (i % 50)}


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setattr(receipts, "VERIFY_CHUNK", 8)
    s = engine.open(str(tmp_path / "s.db"))
    sid = s.create_session(session_id="long", messages=[_message(0)])
    for turn in range(30):
        s.apply_runtime_turn(sid, f"run-{turn}", [_message(2 * turn + 1), _message(2 * turn + 2)])
    yield s
    s.close()


def _key(store, index: int) -> int:
    num = store._connection.execute("SELECT num FROM ms_sessions WHERE id = 'long'").fetchone()[0]
    return (num << 32) + index


def _report(store, monkeypatch, read_ahead: bool):
    monkeypatch.setattr(receipts, "_SPARE_CPU", read_ahead)
    calls = []
    real = receipts._read_ahead
    monkeypatch.setattr(receipts, "_read_ahead", lambda chunks: calls.append(1) or real(chunks))
    report = store.verify()
    assert bool(calls) == read_ahead  # the path under test was taken (or not)
    assert not [t for t in threading.enumerate() if t.name == "mobstore-verify-read"]
    return (report.sessions, report.receipts, report.receipts_ok, report.heads, report.heads_ok,
            [(m.run_id, m.sequence, m.kind, m.detail, m.actual) for m in report.mismatches])


def _tamper(store, sql, args=()):
    store._connection.execute(sql, args)


def _same_both_ways(store, monkeypatch):
    threaded = _report(store, monkeypatch, True)
    assert threaded == _report(store, monkeypatch, False)
    return threaded


@native
def test_a_clean_session_verifies_the_same_with_read_ahead(store, monkeypatch):
    sessions, receipts_n, ok, heads, heads_ok, mismatches = _same_both_ways(store, monkeypatch)
    assert (sessions, receipts_n, ok, heads_ok, mismatches) == (1, 30, 30, heads, [])


@native
def test_a_changed_message_is_reported_the_same(store, monkeypatch):
    _tamper(store, "UPDATE ms_messages SET body = ? WHERE key = ?",
            (b'{"role":"user","content":"forged"}', _key(store, 33)))
    report = _same_both_ways(store, monkeypatch)
    bad = {m[0] for m in report[5] if m[2] == "receipt"}
    assert bad == {f"run-{t}" for t in range(16, 30)}  # every receipt covering message 33


@native
def test_a_missing_message_is_reported_the_same(store, monkeypatch):
    _tamper(store, "DELETE FROM ms_messages WHERE key = ?", (_key(store, 20),))
    report = _same_both_ways(store, monkeypatch)
    assert {m[3] for m in report[5] if m[2] == "receipt"} == {"message 20 is missing"}
    assert report[2] == 9  # run-t covers 2t + 3 messages: runs 0-8 end before message 20


@native
def test_a_message_that_no_longer_canonicalises_stops_the_walk_the_same(store, monkeypatch):
    # Early in the session: the reader has chunks queued when the walk stops, and must stop too.
    _tamper(store, "UPDATE ms_messages SET body = ? WHERE key = ?", (b'{"role":"human"}', _key(store, 3)))
    report = _same_both_ways(store, monkeypatch)
    details = {m[3] for m in report[5] if m[2] == "receipt"}
    assert len(details) == 1 and details.pop().startswith("messages from 3 on no longer canonicalise")
    assert report[2] == 1  # run-0 covers messages 0-2


@native
def test_an_error_of_the_reader_reaches_the_caller(store, monkeypatch):
    monkeypatch.setattr(receipts, "_SPARE_CPU", True)
    real = receipts._body_chunks

    def failing(con, num, start, stop):
        chunks = real(con, num, start, stop)
        yield next(chunks)
        raise apsw.IOError("disk I/O error")

    monkeypatch.setattr(receipts, "_body_chunks", failing)
    with pytest.raises(engine.StoreIOError, match="disk I/O error"):
        store.verify()
    assert not [t for t in threading.enumerate() if t.name == "mobstore-verify-read"]
    monkeypatch.setattr(receipts, "_body_chunks", real)
    assert store.verify().ok  # the store is usable afterwards


def test_the_python_path_reads_in_one_thread(store, monkeypatch):
    monkeypatch.setattr(receipts, "_SPARE_CPU", True)
    monkeypatch.setattr(receipts, "_read_ahead", lambda chunks: pytest.fail("read-ahead on the Python path"))
    with digest._python_path():
        assert store.verify().receipts_ok == 30
