"""Several turns of one write transaction written with one statement per table.

A batch of group commit (engine/groupcommit.py) is mostly turns: apply_runtime_turn calls of
many agents, each the same four writes (its messages, its session row, its receipt, its
event). Written turn by turn, each in its own savepoint, that is eight statements per turn;
here every turn is first *planned* in Python -- its session head, its digest (which
validates its messages), its sequence, its rows -- and then the rows of all of them go in
with one executemany per table, inside one savepoint. The rows, their order and every
answer are those of the turn-by-turn path:

- A turn that fails while planned (unknown session, a message that does not canonicalise,
  too many messages) gets its error and writes nothing; planning wrote nothing either.
- Two turns of one session chain: the second is planned from the first one's head.
- If writing the rows fails, everything of them is rolled back to the savepoint and the
  turns are written again one by one, each in its own savepoint, so every error reaches its
  own caller as on the turn-by-turn path (and when SQLite ended the whole transaction
  itself -- an I/O error, a full disk -- the error is raised: the batch fails).
- A turn the caller wants diverted (its `slow` path: a live session whose stored count is
  not the one expected, engine/live.py) is written by that path in its own savepoint, after
  the turns planned before it are written, so the log keeps the order of the calls.

The head memory (engine/heads.py) carries the planned heads, so it is emptied whenever rows
that were planned are not written.
"""

from __future__ import annotations

from typing import Callable, Sequence

import apsw
import orjson

from .errors import InvalidInputError, MobstoreError, from_apsw
from .receipts import RunBoundaryReceipt, _PreparedTurn
from .sessions import MAX_MESSAGES_PER_SESSION

_INSERT_MESSAGE = "INSERT INTO ms_messages (key, body) VALUES (?, ?)"
_UPDATE_SESSION = ("UPDATE ms_sessions SET message_count = ?, message_bytes = message_bytes + ?, "
                   "sha256_state = ?, updated_at_ms = ? WHERE num = ?")
_INSERT_RECEIPT = ("INSERT INTO ms_receipts (session_num, run_id, sequence, boundary, conversation_digest, "
                   "message_count, profile, contributing_input_ids, committed_at_ms) VALUES (?,?,?,?,?,?,?,?,?)")
_INSERT_EVENT = "INSERT INTO ms_events (at_ms, kind, session_id, detail, writer) VALUES (?, ?, ?, ?, ?)"


class _Rows:
    __slots__ = ("messages", "sessions", "receipts", "events", "members")

    def __init__(self) -> None:
        self.messages: list[tuple] = []
        self.sessions: list[tuple] = []
        self.receipts: list[tuple] = []
        self.events: list[tuple] = []
        self.members: list[int] = []  # indexes of the turns these rows are


def apply_turns(store, con, turns: Sequence[_PreparedTurn], at: int, *,
                expected: Sequence[int | None] | None = None,
                slow: Callable[[int], object] | None = None) -> list[tuple]:
    """Write `turns` (checked and normalised) inside the open transaction; returns one
    (error, value) per turn: value (receipt, message count before the turn), or, for a turn
    diverted because its session's count is not expected[i], whatever slow(i) returned."""
    heads = store._heads
    out: list[tuple] = [(None, None)] * len(turns)
    rows = _Rows()
    writer = store._writer_id
    for i, turn in enumerate(turns):
        sid = turn.session_id
        bodies = turn.bodies
        try:
            num, count, state, profile = store._head_of(con, sid)
            divert = expected is not None and expected[i] is not None and count != expected[i]
            if not divert:
                if count + len(bodies) > MAX_MESSAGES_PER_SESSION:
                    raise InvalidInputError(f"session {sid!r} would exceed {MAX_MESSAGES_PER_SESSION} messages")
                state.absorb(bodies)  # validates; all or nothing
        except MobstoreError as exc:
            out[i] = (exc, None)
            continue
        except apsw.Error as exc:
            raise from_apsw(exc, "the write was rolled back") from None
        if divert:
            _write(store, con, turns, rows, out)
            rows = _Rows()
            out[i] = _in_savepoint(store, con, lambda i=i: slow(i))
            continue
        new_count = count + len(bodies)
        heads.put(sid, (num, new_count, state, profile))
        key = (num, turn.run_id)
        last = heads.sequences.get(key)
        if last is None:
            (last,) = con.execute(
                "SELECT max(sequence) FROM ms_receipts WHERE session_num = ? AND run_id = ?", key).fetchone()
        sequence = 0 if last is None else last + 1
        heads.put_sequence(key, sequence)
        conversation_digest = state.digest()
        base = num << 32 | count
        rows.messages.extend(zip(range(base, base + len(bodies)), bodies))
        rows.sessions.append((new_count, sum(map(len, bodies)), state.to_bytes(), at, num))
        rows.receipts.append((num, turn.run_id, sequence, turn.boundary, conversation_digest, new_count, profile,
                              orjson.dumps(turn.input_ids), at))
        rows.events.append((at, "receipt_committed", sid, orjson.dumps(
            {"run_id": turn.run_id, "sequence": sequence, "message_count": new_count, "appended": len(bodies)}),
            writer))
        rows.members.append(i)
        out[i] = (None, (RunBoundaryReceipt(
            session_id=sid, run_id=turn.run_id, boundary=turn.boundary, contributing_input_ids=turn.input_ids,
            conversation_digest=conversation_digest, message_count=new_count, sequence=sequence), count))
    _write(store, con, turns, rows, out)
    return out


def _write(store, con, turns, rows: _Rows, out: list) -> None:
    """The planned rows, one executemany per table in one savepoint; on failure, the turns
    one by one (module docstring)."""
    if not rows.members:
        return
    try:
        con.execute("SAVEPOINT ms_bulk")
        if rows.messages:
            con.executemany(_INSERT_MESSAGE, rows.messages)
        con.executemany(_UPDATE_SESSION, rows.sessions)
        con.executemany(_INSERT_RECEIPT, rows.receipts)
        con.executemany(_INSERT_EVENT, rows.events)
        con.execute("RELEASE ms_bulk")
        return
    except apsw.Error as exc:
        store._heads.clear()  # it holds planned heads that are not in the file
        if not con.in_transaction:  # SQLite rolled the whole transaction back (I/O error, full disk)
            raise from_apsw(exc, "the write was rolled back") from None
        con.execute("ROLLBACK TO ms_bulk")
        con.execute("RELEASE ms_bulk")
    for i in rows.members:
        turn = turns[i]
        out[i] = _in_savepoint(store, con, lambda turn=turn: _one(store, con, turn))


def _one(store, con, turn: _PreparedTurn):
    count = store._heads.sessions.get(turn.session_id)
    before = count[1] if count is not None else store._session_row(con, turn.session_id)[1]
    return store._apply_turn_locked(con, turn), before


def _in_savepoint(store, con, fn) -> tuple:
    """(None, fn()) with fn's writes, or (its error, None) and nothing of it."""
    con.execute("SAVEPOINT ms_turn")
    try:
        value = fn()
    except BaseException as exc:  # noqa: BLE001 - handed to the turn's caller
        store._heads.clear()
        if not con.in_transaction:
            raise (from_apsw(exc, "the write was rolled back") if isinstance(exc, apsw.Error) else exc) from None
        con.execute("ROLLBACK TO ms_turn")
        con.execute("RELEASE ms_turn")
        if isinstance(exc, apsw.Error):
            return from_apsw(exc, "the write was rolled back"), None
        if not isinstance(exc, Exception):
            raise
        return exc, None
    con.execute("RELEASE ms_turn")
    return None, value

