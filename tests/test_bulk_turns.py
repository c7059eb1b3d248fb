"""Turns written together (engine/bulk_turns.py): the rows, their order and every answer are
those of applying the turns one by one; a turn that fails is rolled back alone; a failure
while writing the rows falls back to one savepoint per turn; a diverted turn keeps its place."""

from __future__ import annotations

import apsw
import pytest

import engine
from engine import InvalidInputError, SessionNotFoundError, StoreError, Turn
from engine import bulk_turns
from engine.bulk_turns import apply_turns
from engine.receipts import _PreparedTurn

from .test_group_commit import gathered


def msg(text: str) -> dict:
    return {"role": "user", "content": text, "created_at": "2026-01-01T00:00:00Z"}


# Rows as the API writes them, timestamps and the writer's name aside.
ROWS = [
    "SELECT num, id, message_count, message_bytes, sha256_state FROM ms_sessions ORDER BY num",
    "SELECT key, body FROM ms_messages ORDER BY key",
    "SELECT session_num, run_id, sequence, boundary, conversation_digest, message_count, profile, "
    "contributing_input_ids, superseded_by FROM ms_receipts ORDER BY 1, 2, 3",
    "SELECT seq, kind, session_id, detail FROM ms_events ORDER BY seq",
]


def rows(store) -> list:
    return [store._connection.execute(q).fetchall() for q in ROWS]


@pytest.fixture
def spy(monkeypatch):
    """How the turns went in: [("together", n turns)] per executemany round, [("alone", session)]
    per turn written in a savepoint of its own."""
    seen = []
    real_write, real_one = bulk_turns._write, bulk_turns._one

    def write(store, con, turns, planned, out):
        if planned.members:
            seen.append(("together", len(planned.members)))
        return real_write(store, con, turns, planned, out)

    def one(store, con, turn):
        seen.append(("alone", turn.session_id))
        return real_one(store, con, turn)

    monkeypatch.setattr(bulk_turns, "_write", write)
    monkeypatch.setattr(bulk_turns, "_one", one)
    return seen


def setup(store) -> list[str]:
    """Three sessions, one with history and a receipt of run "r" already (its next sequence
    comes from the table, not from the head memory: the store is reopened after this)."""
    sids = [store.create_session(session_id=f"s{i}") for i in range(3)]
    store.apply_runtime_turn("s1", "r", [msg("old")])
    return sids


TURNS = [  # (session, run, messages): two turns of s0 chain, s1 continues run r
    ("s0", "r", [msg("a"), msg("b")]),
    ("s1", "r", [msg("c")]),
    ("s0", "r", [msg("d")]),
    ("s2", "x", [msg("e"), msg("f"), msg("g")]),
    ("s1", "other", []),
]


def test_rows_and_receipts_equal_turn_by_turn(tmp_path, spy):
    one, bulk = str(tmp_path / "one.db"), str(tmp_path / "bulk.db")
    for path in (one, bulk):
        with engine.open(path) as s:
            setup(s)
    with engine.open(one) as s:
        expected = [s.apply_runtime_turn(*t) for t in TURNS]
        want = rows(s)
    with engine.open(bulk) as s:  # reopened: no head in memory, sequences from the table
        got = s.apply_runtime_turns([Turn(*t) for t in TURNS])
        assert spy == [("together", 5)]
        assert got == expected
        assert rows(s) == want
        assert s.verify().ok
        # and through the head memory this time
        again = s.apply_runtime_turns([Turn(*t) for t in TURNS])
    with engine.open(one) as s:
        assert again == [s.apply_runtime_turn(*t) for t in TURNS]
        want = rows(s)
    with engine.open(bulk) as s:
        assert rows(s) == want


def test_failing_turns_are_left_out_alone(store, spy):
    setup(store)
    before = store.transcript_digest("s0")
    out = store.apply_runtime_turns([
        ("s0", "r", [msg("a")]),
        ("ghost", "r", [msg("x")]),
        ("s1", "r", [b'{"role":"user","content":1}']),  # not a meerkat message: fails in its digest
        ("s0", "r", [msg("b")]),
    ], return_exceptions=True)
    assert spy == [("together", 2)]
    assert isinstance(out[1], SessionNotFoundError) and isinstance(out[2], InvalidInputError)
    assert [r.message_count for r in (out[0], out[3])] == [1, 2]
    assert [r.sequence for r in (out[0], out[3])] == [0, 1]
    assert [m["content"] for m in store.messages("s0")] == ["a", "b"]
    assert store.message_count("s1") == 1 and before != store.transcript_digest("s0")
    kinds = [(e.kind, e.session_id) for e in store.events()][-2:]
    assert kinds == [("receipt_committed", "s0"), ("receipt_committed", "s0")]
    assert store.verify().ok


def test_all_or_nothing_names_the_turn(store, db_path):
    setup(store)
    before = rows(store)
    with pytest.raises(InvalidInputError, match=r"^turns\[1\]: "):
        store.apply_runtime_turns([("s0", "r", [msg("a")]), ("s1", "r", [b'{"role":"user","content":1}'])])
    assert rows(store) == before
    # the head memory did not keep the rolled-back head of s0
    assert store.apply_runtime_turn("s0", "r", [msg("z")]).message_count == 1


def test_a_failure_while_writing_the_rows_falls_back_to_one_savepoint_per_turn(store, spy):
    """A stray message row where s1's next message goes (a file another tool wrote into):
    the INSERT of all the rows fails; written one by one, only s1's turn fails."""
    setup(store)
    store._connection.execute("INSERT INTO ms_messages (key, body) VALUES (?, ?)", ((2 << 32) + 1, b"{}"))
    out = store.apply_runtime_turns([("s0", "r", [msg("a")]), ("s1", "r", [msg("b")]), ("s2", "r", [msg("c")])],
                                    return_exceptions=True)
    assert spy == [("together", 3), ("alone", "s0"), ("alone", "s1"), ("alone", "s2")]
    assert isinstance(out[1], StoreError) and "UNIQUE" in str(out[1])
    assert [out[0].message_count, out[2].message_count] == [1, 1]
    assert store.message_count("s1") == 1  # its old message, nothing of the failed turn
    assert [e.session_id for e in store.events() if e.kind == "receipt_committed"][-2:] == ["s0", "s2"]
    store._connection.execute("DELETE FROM ms_messages WHERE key = ?", ((2 << 32) + 1,))
    assert store.apply_runtime_turn("s1", "r", [msg("b")]).message_count == 2
    assert store.verify().ok


def test_a_diverted_turn_keeps_its_place(store, spy):
    setup(store)
    turns = [_PreparedTurn(sid, "r", [engine.digest.message_bytes(msg(sid))], "run_start", ())
             for sid in ("s0", "s1", "s2")]
    slow_calls = []

    def slow(i):
        slow_calls.append(i)
        store._log_event(store._connection, "checkpoint_written", turns[i].session_id, {"diverted": True})
        return "slow"

    def job(con):
        return apply_turns(store, con, turns, 0, expected=[0, 0, None], slow=slow)  # s1 has 1 message

    out = store._write(job, keeps_heads=True)
    assert slow_calls == [1] and out[1] == (None, "slow")
    assert spy == [("together", 1), ("together", 1)]  # s0 written before the diverted s1, then s2
    assert [o[1][1] for o in (out[0], out[2])] == [0, 0]  # the count each turn appended to
    order = [(e.kind, e.session_id) for e in store.events()][-3:]
    assert order == [("receipt_committed", "s0"), ("checkpoint_written", "s1"), ("receipt_committed", "s2")]


def test_an_io_error_while_writing_the_rows_fails_the_batch(store, monkeypatch):
    """When SQLite ends the transaction itself (an I/O error, a full disk) nothing is tried
    again: the error is raised and nothing of the batch is in the file."""
    setup(store)
    before = rows(store)

    class Gone(apsw.IOError):
        pass

    real = store._connection

    def fail(con):
        con.execute("ROLLBACK")  # what SQLite does on SQLITE_FULL / most I/O errors
        raise Gone("disk I/O error")

    class Con:
        def __getattr__(self, name):
            return getattr(real, name)

        def executemany(self, sql, rows):
            if sql.startswith("INSERT INTO ms_messages"):
                fail(real)
            return real.executemany(sql, rows)

    with pytest.raises(StoreError, match="disk I/O error"):
        store._write(lambda con: apply_turns(store, Con(), [
            _PreparedTurn("s0", "r", [engine.digest.message_bytes(msg("a"))], "run_start", ()),
            _PreparedTurn("s2", "r", [engine.digest.message_bytes(msg("b"))], "run_start", ())], 0),
            keeps_heads=True)
    assert rows(store) == before
    assert store.apply_runtime_turn("s0", "r", [msg("a")]).message_count == 1


def test_threads_turns_written_together_answer_each_caller(store, spy):
    """apply_runtime_turn of several threads in one batch: one unit of turns, each caller
    its own receipt or error; the same rows as one by one."""
    setup(store)
    calls = [lambda i=i: store.apply_runtime_turn(f"s{i % 3}", "t", [msg(str(i))]) for i in range(6)]
    calls.insert(3, lambda: store.apply_runtime_turn("ghost", "t", [msg("x")]))
    out = gathered(store, calls)
    assert store.group_commit_stats["largest_batch"] == 7
    assert spy == [("together", 6)]  # the ghost's turn failed while planned
    assert isinstance(out[3], SessionNotFoundError)
    receipts = [o for o in out if not isinstance(o, BaseException)]
    assert sorted((r.session_id, r.sequence) for r in receipts) == sorted(
        (f"s{i}", k) for i in range(3) for k in range(2))
    for sid in ("s0", "s1", "s2"):
        mine = sorted((r for r in receipts if r.session_id == sid), key=lambda r: r.sequence)
        assert [r.message_count for r in mine] == [store.message_count(sid) - 1, store.message_count(sid)]
    assert store.verify().ok
