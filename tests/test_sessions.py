"""Sessions, messages, metadata, events: real SQLite files, reopened."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat

import pytest

import engine
from engine import demo, schema
from engine.errors import InvalidInputError, SessionExistsError, SessionNotFoundError, StoreError

from .conftest import fingerprint


def msg(text: str, role: str = "user") -> dict:
    return {"role": role, "content": text, "created_at": "2026-01-02T03:04:05Z"}


def test_round_trip_across_reopen(db_path):
    with engine.open(db_path) as s:
        sid = s.create_session({"title": "t", "session_metadata": {"comms_name": None}},
                               messages=[msg("hello"), b'{"role":"user","content":"raw bytes"}'])
        assert s.append_messages(sid, [msg("again")]) == 3
        digest_before = s.session(sid).digest
    with engine.open(db_path) as s:
        got = s.session(sid)
        assert got.message_count == 3
        assert got.metadata == {"title": "t", "session_metadata": {"comms_name": None}}
        assert got.digest == digest_before
        assert [m["content"] for m in s.messages(sid)] == ["hello", "raw bytes", "again"]
        # bytes given are stored exactly
        assert s.raw_messages(sid, 1, 2) == [b'{"role":"user","content":"raw bytes"}']


def test_new_id_is_uuidv7(store):
    sid = store.create_session()
    assert len(sid) == 36 and sid[14] == "7" and sid[19] in "89ab"
    assert store.create_session() != sid


def test_message_ranges(store):
    sid = store.create_session(messages=[msg(str(i)) for i in range(10)])
    assert [m["content"] for m in store.messages(sid, 3, 6)] == ["3", "4", "5"]
    assert [m["content"] for m in store.messages(sid, -2)] == ["8", "9"]
    assert store.messages(sid, 8, 100) == store.messages(sid, 8)
    assert store.messages(sid, 6, 3) == []


def test_unknown_session_errors(store):
    with pytest.raises(SessionNotFoundError):
        store.append_messages("nope", [msg("x")])
    with pytest.raises(SessionNotFoundError):
        store.messages("nope")
    assert store.session("nope") is None
    assert store.delete_session("nope") is False
    with pytest.raises(SessionNotFoundError):
        store.set_metadata("nope", {})


def test_duplicate_session_id(store):
    store.create_session(session_id="a")
    with pytest.raises(SessionExistsError):
        store.create_session(session_id="a")


def test_failing_append_in_the_middle_writes_nothing(store, db_path):
    sid = store.create_session(messages=[msg("first")])
    before = fingerprint(db_path)
    bad = [msg("ok 1"), msg("ok 2"), b'{"role":"user","content":"x","content":"dup"}', msg("ok 3")]
    with pytest.raises(InvalidInputError, match="message 2"):
        store.append_messages(sid, bad)
    assert fingerprint(db_path) == before
    assert store.session(sid).message_count == 1


def test_listing_newest_first_and_paging(store):
    ids = [store.create_session(session_id=f"s{i:03d}") for i in range(25)]
    listed = [s.id for s in store.sessions(page_size=4)]
    assert listed == list(reversed(ids))  # same ms: the later insert is newer
    assert [s.id for s in store.sessions(limit=7, page_size=3)] == list(reversed(ids))[:7]


def test_set_metadata_and_delete(store):
    sid = store.create_session({"a": 1}, messages=[msg("x")])
    store.set_metadata(sid, {"b": [1, 2.5, None]})
    assert store.session(sid).metadata == {"b": [1, 2.5, None]}
    assert store.delete_session(sid) is True
    assert store.session(sid) is None
    con = store._connection
    assert con.execute("SELECT count(*) FROM ms_messages").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM ms_bindings").fetchone()[0] == 0


def test_pragmas_after_open(store, db_path):
    con = store._connection
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert con.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert con.execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000
    assert con.execute("PRAGMA user_version").fetchone()[0] == store.schema_version == schema.SCHEMA_VERSION
    assert stat.S_IMODE(os.stat(db_path).st_mode) == 0o600


def test_memory_store_same_api():
    with engine.open() as s:
        sid = s.create_session(messages=[msg("x")])
        r = s.apply_runtime_turn(sid, "run", [msg("y")])
        assert r.message_count == 2 and s.verify().ok


def test_refuses_foreign_database(tmp_path):
    import apsw

    path = str(tmp_path / "other.db")
    con = apsw.Connection(path)
    con.execute("CREATE TABLE t(x)")
    con.close()
    with pytest.raises(StoreError, match="not a mobstore database"):
        engine.open(path)
    con = apsw.Connection(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # untouched


def test_events_in_order(store):
    sid = store.create_session(messages=[msg("a")])
    store.append_messages(sid, [msg("b")])
    store.set_metadata(sid, {"x": 1})
    store.apply_runtime_turn(sid, "r1", [msg("c")])
    store.delete_session(sid)
    kinds = [e.kind for e in store.events()]
    assert kinds == ["session_created", "messages_appended", "metadata_changed",
                     "receipt_committed", "session_deleted"]
    turn = [e for e in store.events() if e.kind == "receipt_committed"][0]
    assert turn.detail == {"run_id": "r1", "sequence": 0, "message_count": 3, "appended": 1}
    first = store.events()[0].seq
    assert [e.kind for e in store.events(after=first, limit=2)] == ["messages_appended", "metadata_changed"]
    assert all(e.session_id == sid for e in store.events(session_id=sid))


def _append_worker(path: str, sid: str, n: int) -> None:
    with engine.open(path) as s:
        for i in range(n):
            s.append_messages(sid, [msg(f"{sid}-{i}")])


def _events_reader(path: str, queue) -> None:
    with engine.open(path) as s:
        queue.put([(e.seq, e.kind, e.session_id) for e in s.events()])


def test_two_processes_append_and_events_visible_elsewhere(db_path):
    with engine.open(db_path) as s:
        a = s.create_session(session_id="proc-a")
        b = s.create_session(session_id="proc-b")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_append_worker, args=(db_path, sid, 150)) for sid in (a, b)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with engine.open(db_path) as s:
        for sid in (a, b):
            got = [m["content"] for m in s.messages(sid)]
            assert got == [f"{sid}-{i}" for i in range(150)]
        assert s.verify().ok
    queue = ctx.Queue()
    reader = ctx.Process(target=_events_reader, args=(db_path, queue))
    reader.start()
    events = queue.get(timeout=60)
    reader.join(60)
    assert len([e for e in events if e[1] == "messages_appended"]) == 300
    assert [e[0] for e in events] == sorted(e[0] for e in events)


@pytest.mark.parametrize("bad", [
    {"role": "wizard", "content": "x"},
    {"content": "no role"},
    ["not", "an", "object"],
    b'{"role":"user","content":"x"',
    b'{"role":"user","content":NaN}',
    b'{"role":"user","content":"\\ud800"}',
    b'{"role":"user","content":"\xc0\xaf"}',
    b'{"role":"user","content":"x"} trailing',
    b'{"role":"user","content":' + b"[" * 200 + b"]" * 200 + b"}",
    {"role": "user", "content": float("nan")},
    {"role": "user", "content": "\ud800"},
    {"role": "user", "content": 12},
])
def test_bad_messages_rejected_and_nothing_written(store, db_path, bad):
    sid = store.create_session(messages=[msg("keep")])
    before = fingerprint(db_path)
    with pytest.raises(InvalidInputError):
        store.append_messages(sid, [msg("fine"), bad])
    with pytest.raises(InvalidInputError):
        store.create_session(messages=[bad])
    assert fingerprint(db_path) == before


@pytest.mark.parametrize("metadata", [
    {"session_metadata": {"peer_meta": {"labels": {"mob_id": 3}}}},
    {"session_metadata": {"comms_name": 5}},
    {"session_metadata": "text"},
    {"session_metadata": {"peer_meta": []}},
    {"x": float("inf")},
    {"x": "\udfff"},
    {1: "non-string key"},
    {"x": 2 ** 70},
    "not a dict",
    {"deep": json.loads("[" * 200 + "]" * 200)},
])
def test_bad_metadata_rejected(store, db_path, metadata):
    sid = store.create_session({"ok": True})
    before = fingerprint(db_path)
    with pytest.raises(InvalidInputError):
        store.create_session(metadata)
    with pytest.raises(InvalidInputError):
        store.set_metadata(sid, metadata)
    assert fingerprint(db_path) == before


@pytest.mark.parametrize("sid", ["", "a\x00b", "line\nbreak", 42, "x" * 2000, "\ud800"])
def test_bad_session_ids(store, sid):
    with pytest.raises(InvalidInputError):
        store.create_session(session_id=sid)


def test_sql_metacharacters_in_ids_are_plain_data(store):
    sid = "x'); DROP TABLE ms_sessions; --%_*"
    store.create_session(session_id=sid, messages=[msg("a")])
    assert store.session(sid).message_count == 1
    assert store.session("x'%") is None


def test_demo_messages_are_valid_meerkat(store, rng):
    sid = store.create_session()
    for _ in range(5):
        store.append_messages(sid, demo.turn_messages(rng))
    assert store.session(sid).message_count == 10
