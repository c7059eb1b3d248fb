"""The write path's memory of session heads: for each session recently written through this
Store, its row number, message count, digest state (a live TranscriptState, not bytes) and
profile, and the last receipt sequence of each (session, run). With it a turn skips the
SELECT of the session row, the parse of its digest state and the SELECT max(sequence).

It is an optimisation that must never be believed when it could be wrong, so it is emptied:
- when another connection has committed since we last looked (PRAGMA data_version, read once
  per write transaction, after the write lock is held: nothing can change it meanwhile);
- whenever transaction() is entered or left by an exception, at any depth: rewrites, imports,
  deletes and callers' own transactions change heads by other paths, and a rolled-back scope
  may have updated it;
- when any job of a group commit fails, or the commit itself does.
Entries are stored only after a job's statements all succeeded. At most LIMIT sessions and
LIMIT runs are kept (oldest written dropped first).
"""

from __future__ import annotations

LIMIT = 4096


class Heads:
    __slots__ = ("sessions", "sequences", "version")

    def __init__(self) -> None:
        self.sessions: dict[str, tuple] = {}    # session_id -> (num, count, TranscriptState, profile)
        self.sequences: dict[tuple, int] = {}   # (num, run_id) -> last sequence
        self.version: int | None = None         # PRAGMA data_version when last checked

    def clear(self) -> None:
        self.sessions.clear()
        self.sequences.clear()

    def check(self, con) -> None:
        """Inside a write transaction: forget everything if another connection committed."""
        (version,) = con.execute("PRAGMA data_version").fetchone()
        if version != self.version:
            self.clear()
            self.version = version

    def put(self, session_id: str, head: tuple) -> None:
        sessions = self.sessions
        sessions.pop(session_id, None)
        sessions[session_id] = head
        if len(sessions) > LIMIT:
            del sessions[next(iter(sessions))]

    def put_sequence(self, key: tuple, sequence: int) -> None:
        sequences = self.sequences
        sequences.pop(key, None)
        sequences[key] = sequence
        if len(sequences) > LIMIT:
            del sequences[next(iter(sequences))]

    def forget(self, session_id: str, num: int) -> None:
        """A session deleted: its row number may be given to the next new session."""
        self.sessions.pop(session_id, None)
        for key in [k for k in self.sequences if k[0] == num]:
            del self.sequences[key]
