"""Retention and space: pruning the event log, and vacuuming free pages away.

The event log (ms_events) grows with every write; readers tail it with a cursor
(Store.events(after=seq)), so pruning old entries never renumbers the rest: a reader whose
cursor points into the pruned range simply continues with the oldest entry kept. Pruning
never deletes the newest entry: seq is the rowid (max + 1 for a new entry), and the newest
entry is what keeps a number from being handed out twice.

Deleted data: connections run with `PRAGMA secure_delete = ON` (engine/store.py), so the
content of deleted rows is overwritten with zeros in the file; vacuum() also rebuilds the
file without free pages and truncates the write-ahead log, so a deleted transcript leaves
no readable trace in the database files.
"""

from __future__ import annotations

import dataclasses
import os

from . import _args
from .errors import InvalidInputError, StoreError
from .sessions import now_ms


@dataclasses.dataclass(frozen=True)
class VacuumReport:
    """File sizes (the database file plus its -wal) before and after, in bytes."""

    bytes_before: int
    bytes_after: int
    free_pages_before: int


class MaintenanceMixin:
    """prune_events and vacuum of Store."""

    def prune_events(self, *, before_seq: int | None = None, older_than_ms: int | None = None) -> int:
        """Delete event-log entries with seq < before_seq and/or written more than
        older_than_ms milliseconds ago (both given: entries matching either), except the
        newest entry, which is always kept. Returns how many were deleted. Atomic.

        Sequence numbers are never reused: seq is the table's rowid and a new entry gets
        the largest seq + 1, so the newest entry stays as the high-water mark (a reader's
        cursor never meets a number twice).

        Runs: DELETE FROM ms_events WHERE (seq < ? OR at_ms < ?) AND seq < (SELECT max(seq) FROM ms_events)"""
        before_seq = _args.optional_integer(before_seq, "before_seq", minimum=0)
        older_than_ms = _args.optional_integer(older_than_ms, "older_than_ms", minimum=0)
        if before_seq is None and older_than_ms is None:
            raise InvalidInputError("prune_events needs before_seq, older_than_ms, or both")
        cutoff_ms = -1 if older_than_ms is None else now_ms() - older_than_ms
        with self.transaction() as con:
            con.execute(
                "DELETE FROM ms_events WHERE (seq < ? OR at_ms < ?) AND seq < (SELECT max(seq) FROM ms_events)",
                (-1 if before_seq is None else before_seq, cutoff_ms),
            )
            return con.changes()

    def vacuum(self) -> VacuumReport:
        """Rebuild the database file without free pages (SQLite VACUUM), then checkpoint and
        truncate the write-ahead log. Needs exclusive use of the file for its duration
        (other connections' writes wait on the busy timeout). Not inside a transaction.

        Runs: VACUUM; PRAGMA wal_checkpoint(TRUNCATE)"""
        with self._statement() as con:
            if self._readonly:
                raise StoreError("the store is open read-only")
            if self._depth or self._read_depth:
                raise InvalidInputError("vacuum() cannot run inside transaction() or reading()")
            before = self._file_bytes()
            (free,) = con.execute("PRAGMA freelist_count").fetchone()
            con.execute("VACUUM")
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            return VacuumReport(before, self._file_bytes(), free)

    def _file_bytes(self) -> int:
        fs = self._fs_path  # None for ":memory:"
        if fs is None:
            return 0
        return sum(os.path.getsize(p) for p in (fs, fs + "-wal") if os.path.exists(p))
