"""Snapshots: a consistent, self-contained copy of a live store, the unit an agent ships to
shared storage (docs/fleet.md).

Both methods read the source in one SQLite read transaction, so the copy is the database
as of one commit: every transaction committed before the read began, none after, whatever
other connections and processes write meanwhile (in WAL mode writers are not blocked; the
WAL cannot be checkpointed past the reader until the copy ends). The copy is written
beside the target under a temporary name, switched to rollback-journal mode (one file, no
-wal/-shm, so it opens read-only from any storage), fsynced, then renamed into place: a
reader of the target sees the old file or the whole new one, never half a snapshot.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import time

import apsw

from . import _args
from .errors import InvalidInputError, StoreError

METHODS = ("backup", "vacuum")


@dataclasses.dataclass(frozen=True)
class SnapshotInfo:
    """What Store.snapshot wrote: the copy's path, how, its size and how long it took."""

    source: str
    path: str
    method: str
    bytes: int
    seconds: float
    schema_version: int

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _fsync_path(path: str, *, directory: bool = False) -> None:
    fd = os.open(path, (os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)) if directory else os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _target_path(path) -> str:
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str) or not path:
        raise InvalidInputError(f"path must be a non-empty file path, not {path!r}")
    if path == ":memory:" or path.startswith("file:"):
        raise InvalidInputError(f"path must be a plain file path, not {path!r}")
    return os.path.abspath(path)


class SnapshotMixin:
    """snapshot() of Store."""

    def snapshot(self, path, *, method: str = "backup", overwrite: bool = False) -> SnapshotInfo:
        """Write a consistent copy of the store to `path` (a new file; with overwrite=True an
        existing file there is replaced atomically). Safe while other connections and
        processes write: the copy is the database as of one commit.

        method "backup" copies the pages with SQLite's online backup API in one step (the
        fastest); "vacuum" writes a compacted copy with VACUUM INTO (no free pages, indexes
        rebuilt; slower on big stores, smaller when much was deleted). Either way the copy
        is in rollback-journal mode, fsynced and renamed into place. Raises
        InvalidInputError for a bad argument or an existing target, StoreError if the copy
        cannot be written (nothing is left at `path` then, and the store is unchanged).

        Runs: sqlite3_backup_step(-1) into a temporary file, or VACUUM INTO ?"""
        _args.choice(method, "method", METHODS)
        _args.flag(overwrite, "overwrite")
        target = _target_path(path)
        directory = os.path.dirname(target)
        if not os.path.isdir(directory):
            raise InvalidInputError(f"path: no such directory {directory!r}")
        if os.path.isdir(target):
            raise InvalidInputError(f"path is a directory: {target!r}")
        if os.path.exists(target) and not overwrite:
            raise InvalidInputError(f"path exists: {target!r} (pass overwrite=True to replace it)")
        source = self._path
        if source != ":memory:" and os.path.exists(target):
            with contextlib.suppress(OSError):
                if os.path.samefile(source, target):
                    raise InvalidInputError("path is the store's own file")
        tmp = f"{target}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
        started = time.perf_counter()
        with self._lock:
            con = self._db()
            if self._depth:
                raise StoreError("cannot snapshot inside transaction(): the copy would include uncommitted writes")
            if method == "vacuum" and self._read_depth:
                raise StoreError("cannot snapshot with method='vacuum' inside reading() (VACUUM needs no open transaction)")
            try:
                fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)  # owner-only, like the store
                os.close(fd)
                if method == "backup":
                    self._snapshot_backup(con, tmp)
                else:
                    con.execute("VACUUM INTO ?", (tmp,))
                    _rollback_journal(tmp)
                _fsync_path(tmp)
                os.replace(tmp, target)
                _fsync_path(directory, directory=True)
            except BaseException as exc:
                for leftover in (tmp, tmp + "-journal", tmp + "-wal", tmp + "-shm"):
                    with contextlib.suppress(OSError):
                        os.remove(leftover)
                if isinstance(exc, apsw.Error):
                    raise StoreError(f"cannot snapshot {source!r} to {target!r}: {exc}") from None
                if isinstance(exc, OSError):
                    raise StoreError(f"cannot snapshot {source!r} to {target!r}: {exc.strerror or exc}") from None
                raise
        return SnapshotInfo(
            source=source,
            path=target,
            method=method,
            bytes=os.path.getsize(target),
            seconds=time.perf_counter() - started,
            schema_version=self._schema_version,
        )

    def _snapshot_backup(self, con: apsw.Connection, tmp: str) -> None:
        dest = apsw.Connection(tmp)
        try:
            # One step of -1 pages: the whole copy under one read transaction of the source,
            # so it cannot restart when another connection writes and is one commit's state.
            with dest.backup("main", con, "main") as backup:
                backup.step(-1)
                if not backup.done:
                    raise StoreError("the online backup did not finish in one step")
            # The copied header says WAL when the source is; a shipped file must open alone.
            mode = dest.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
            if mode.lower() != "delete":
                raise StoreError(f"cannot switch the snapshot to rollback-journal mode (got {mode!r})")
        finally:
            dest.close()


def _rollback_journal(path: str) -> None:
    """VACUUM INTO writes a rollback-journal file already; check it rather than assume."""
    dest = apsw.Connection(path)
    try:
        mode = dest.execute("PRAGMA journal_mode").fetchone()[0]
        if mode.lower() == "wal":
            dest.execute("PRAGMA journal_mode = DELETE")
    finally:
        dest.close()
