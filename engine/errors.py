"""The package's exception types, and how SQLite's (apsw's) errors map onto them.

Every public call raises only these (or a subclass); each docstring says the
condition and whether retrying the same call can help.

apsw error (SQLite result code)                    -> mobstore class
-------------------------------------------------     -----------------------
BusyError, LockedError (SQLITE_BUSY, _LOCKED)         StoreBusyError
ReadOnlyError (SQLITE_READONLY)                       StoreReadOnlyError
FullError (SQLITE_FULL: disk or quota full)           DiskFullError
IOError (SQLITE_IOERR_*: read, write, fsync, ...)     StoreIOError
CorruptError, NotADBError (SQLITE_CORRUPT, _NOTADB)   StoreCorruptError
TooBigError (SQLITE_TOOBIG: over SQLite's limits)     InvalidInputError
ConnectionClosedError                                 StoreError ("the store is closed")
every other apsw.Error (CantOpenError, SQLError,
  ConstraintError, InterruptError, NoMemError, ...)   StoreError

`from_apsw` is the one place that applies this table; engine/store.py calls it at
the boundaries of open, transaction(), reading(), single statements and close.
What the caller can rely on after each of them is in docs/durability.md.
"""

from __future__ import annotations

import apsw


class MobstoreError(Exception):
    """Base of every mobstore error."""


class InvalidInputError(MobstoreError, ValueError):
    """A message, metadata document, id or argument is malformed; nothing was
    written. Retrying the same input fails the same way."""


class SessionNotFoundError(MobstoreError, KeyError):
    """The named session does not exist (never created, or deleted). Retrying
    helps only after the session is created."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "session not found"


class SchemaTooNewError(MobstoreError):
    """The database file was written by a newer mobstore (its user_version is
    above what this code knows); nothing was changed. Upgrade mobstore."""


class DigestMismatchError(MobstoreError):
    """A stored digest does not match the recomputed one: the transcript or a
    receipt was changed outside mobstore. Retrying does not help."""


class StoreError(MobstoreError):
    """The database file cannot be used (not SQLite, not a regular file, closed,
    or SQLite refused the operation). Retrying helps only if the cause was transient."""


class StoreBusyError(StoreError):
    """Another connection held the lock for longer than the busy timeout; nothing
    was written. Retrying later helps."""


class StoreReadOnlyError(StoreError):
    """The file (or its directory) is not writable by this process: a writable open
    is refused, and so is a write. Retrying does not help; open with readonly=True
    to read it."""


class StoreIOError(StoreError):
    """The operating system reported an I/O error (read, write, fsync, truncate);
    the call's change is absent, or whole when the error came after its commit
    reached the file. The Store stays usable; retrying helps if the fault was transient."""


class DiskFullError(StoreIOError):
    """The disk (or quota) is full; the call's change is absent. Retrying helps
    after space is freed."""


class StoreCorruptError(StoreError):
    """SQLite found the file damaged (or not a database). Retrying does not help;
    restore the file from a copy."""


class ImportFormatError(MobstoreError):
    """A file given to the meerkat importer is not a meerkat realm of a known
    layout, or is damaged. Nothing was imported from it."""


class SessionExistsError(InvalidInputError):
    """create_session was given the id of an existing session; nothing was written.
    Retrying with the same id fails the same way."""


class MissingExtraError(MobstoreError, ImportError):
    """An optional feature needs packages that are not installed (the message names the
    pip extra, e.g. `pip install "mobstore[fleet]"`); nothing was read or written.
    Retrying helps after installing them."""


# The table of the module docstring, most specific first.
_APSW_CLASSES: tuple[tuple[tuple[type[apsw.Error], ...], type[MobstoreError]], ...] = (
    ((apsw.BusyError, apsw.LockedError), StoreBusyError),
    ((apsw.ReadOnlyError,), StoreReadOnlyError),
    ((apsw.FullError,), DiskFullError),
    ((apsw.IOError,), StoreIOError),
    ((apsw.CorruptError, apsw.NotADBError), StoreCorruptError),
    ((apsw.TooBigError,), InvalidInputError),
)


def from_apsw(exc: apsw.Error, context: str = "SQLite error") -> MobstoreError:
    """The package's exception for an apsw error (the table above), its message
    prefixed with what was being done."""
    if isinstance(exc, apsw.ConnectionClosedError):
        return StoreError("the store is closed")
    for sources, target in _APSW_CLASSES:
        if isinstance(exc, sources):
            return target(f"{context}: {exc}")
    return StoreError(f"{context}: {exc}")
