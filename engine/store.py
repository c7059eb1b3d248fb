"""Opening a store: the one place that configures the SQLite connection, the
transaction context manager, and the `Store` class assembled from the
sessions, receipts, rewrites and membership capabilities.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import threading
import urllib.parse
from typing import Iterator, TypeVar

import apsw
import apsw.bestpractice

from . import _args, schema
from .errors import InvalidInputError, SchemaTooNewError, StoreError, StoreReadOnlyError, from_apsw
from .groupcommit import GroupCommit
from .heads import Heads
from .export import ExportMixin
from .maintenance import MaintenanceMixin
from .membership import MembershipMixin
from .query import QueryMixin
from .receipts import ReceiptsMixin
from .rewrites import RewritesMixin
from .sessions import SessionsMixin
from .snapshot import SnapshotMixin

MEMORY = ":memory:"

_StoreT = TypeVar("_StoreT", bound="StoreBase")

log = logging.getLogger(__name__)

# SQLite's own automatic-checkpoint threshold (WAL frames). We checkpoint after the commit
# ourselves (StoreBase._checkpoint_if_due): SQLite's automatic checkpoint runs inside COMMIT,
# after the commit is durable, and reports its I/O error as COMMIT's, so a caller would
# see a failed write that is in fact committed (and apply a turn twice on retry).
WAL_CHECKPOINT_PAGES = 1000

# Long enough that a writer waiting behind others (each commit is milliseconds)
# never gives up under any load we test; SQLite's busy handler sleeps between tries.
BUSY_TIMEOUT_MS = 60_000

_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")


def _connect(path: str, *, synchronous: str, readonly: bool, vfs: str | None = None) -> apsw.Connection:
    """Open and configure one connection. Every setting has its reason beside it."""
    flags = apsw.SQLITE_OPEN_READONLY if readonly else apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE
    flags |= apsw.SQLITE_OPEN_URI if path.startswith("file:") else 0
    con = apsw.Connection(path, flags=flags, vfs=vfs)
    try:
        # SQLite quietly opens a file it may not write read-only; every write would then
        # fail. Say so now, with the way out.
        if not readonly and con.readonly("main"):
            raise StoreReadOnlyError(
                f"{path!r} is not writable by this user; open it with readonly=True to read it")
        # Wait for other writers instead of failing with "database is locked".
        con.set_busy_timeout(BUSY_TIMEOUT_MS)
        # Double-quoted strings are identifiers only: a typo cannot turn into a string literal.
        apsw.bestpractice.connection_dqs(con)
        # ms_receipts -> ms_sessions cascades rely on enforced foreign keys.
        apsw.bestpractice.connection_enable_foreign_keys(con)
        # Functions named in a schema (triggers, views, defaults) never run from a file we open.
        con.config(apsw.SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0)
        # Defensive mode: no writable_schema tricks, no corrupting the file through SQL.
        con.config(apsw.SQLITE_DBCONFIG_DEFENSIVE, 1)
        # No extension loading through SQL.
        con.config(apsw.SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0)
        schema.refuse_unusable(con)
        # 8 KiB pages (new files only; must precede WAL): fewer half-empty pages when sessions
        # append in turn (measured: file 1.10x the raw message bytes, 1.18x with 4 KiB pages).
        con.execute("PRAGMA page_size = 8192")
        if path != MEMORY and not readonly:
            # WAL: readers never block the writer and a commit is one append + fsync.
            mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError(f"cannot switch {path!r} to WAL mode (got {mode!r})")
        # FULL: a commit is on disk (WAL fsynced) when the call returns (README: Durability).
        con.execute(f"PRAGMA synchronous = {synchronous}")  # sql-safe: validated against _SYNCHRONOUS names
        # 32 MiB page cache: keeps indexes of large stores hot across calls.
        con.execute("PRAGMA cache_size = -32768")
        # Sorts and temp indexes in memory (reconciliation uses small temp tables).
        con.execute("PRAGMA temp_store = MEMORY")
        # Deleted content is overwritten with zeros: a deleted transcript does not linger in
        # free pages of an agent's desktop file (engine/maintenance.py, docs/durability.md).
        con.execute("PRAGMA secure_delete = ON")
    except BaseException:
        con.close()
        raise
    return con


_FILE_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _check_file(fs_path: str) -> tuple[int, int] | None:
    """(st_dev, st_ino) of the database file at fs_path, None when there is none yet.

    Refused: anything but a regular file (SQLite would block forever reading a FIFO),
    a symbolic link to nothing (SQLite would create its target with the umask's mode,
    wherever the link points), and a symbolic link owned by another user (in a shared
    directory that user would choose the file; the kernel's fs.protected_symlinks rule)."""
    try:
        st = os.lstat(fs_path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        if st.st_uid not in (os.geteuid(), 0):
            raise StoreError(f"{fs_path!r} is a symbolic link owned by another user (uid {st.st_uid}); "
                             "refusing to open the file it points to")
        try:
            st = os.stat(fs_path)
        except FileNotFoundError:
            raise StoreError(f"{fs_path!r} is a symbolic link to a missing file ({os.readlink(fs_path)!r}); "
                             "a new database is never created through a symbolic link") from None
    for is_kind, kind in _FILE_KINDS:
        if is_kind(st.st_mode):
            raise StoreError(f"{fs_path!r} is {kind}, not a database file")
    return st.st_dev, st.st_ino


def _precreate_private(fs_path: str) -> tuple[int, int]:
    """Create a new database file owner-only (SQLite gives -wal/-shm the same mode), never
    through a symbolic link; return the identity of the file SQLite must then open."""
    identity = _check_file(fs_path)
    if identity is not None:
        return identity
    try:
        fd = os.open(fs_path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:  # appeared since the check (another opener, or a planted link)
        identity = _check_file(fs_path)
        if identity is None:
            raise StoreError(f"{fs_path!r} appeared and vanished while it was being created") from None
        return identity
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    return st.st_dev, st.st_ino


def _identity(fs_path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(fs_path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _filesystem_path(path: str) -> str:
    """The file behind a plain path or a `file:` URI (SQLite's URI filename rules)."""
    if not path.startswith("file:"):
        return path
    parsed = urllib.parse.urlsplit(path)
    return urllib.parse.unquote(parsed.path or parsed.netloc)


def _side_files(fs_path: str | None) -> list[str]:
    return [] if fs_path is None else [fs_path, fs_path + "-wal", fs_path + "-shm", fs_path + "-journal"]


class StoreBase:
    """Connection, lock and transactions shared by the capability mixins."""

    def __init__(self, path: str, *, synchronous: str = "FULL", readonly: bool = False, vfs: str | None = None):
        synchronous = synchronous.upper()
        if synchronous not in _SYNCHRONOUS:
            raise StoreError(f"synchronous must be one of {', '.join(_SYNCHRONOUS)}, not {synchronous!r}")
        self._path = path
        self._readonly = readonly
        self._lock = threading.RLock()
        self._depth = 0  # transaction() nesting
        self._read_depth = 0  # reading() nesting
        self._owner: int | None = None  # thread id inside transaction()/reading()/a group commit
        self._group = GroupCommit(self)
        self._wal_frames = 0  # the WAL's size after the last commit (SQLite's wal hook)
        self._checkpoint_frames = WAL_CHECKPOINT_PAGES
        self._heads = Heads()  # the write path's session heads (engine/heads.py)
        fs_path = None if path == MEMORY else _filesystem_path(path)
        self._fs_path = fs_path
        # Names this connection in the event log (ms_events.writer): readers tell their own
        # writes from other processes' (engine/event_tail.py).
        self._writer_id = f"{os.getpid()}:{os.urandom(4).hex()}"
        existed = {p for p in _side_files(fs_path) if os.path.lexists(p)}
        self._con = None
        try:
            identity = None
            if fs_path is not None:
                identity = _check_file(fs_path) if readonly else _precreate_private(fs_path)
            self._con = _connect(path, synchronous=synchronous, readonly=readonly, vfs=vfs)
            if identity is not None and _identity(fs_path) != identity:
                raise StoreError(f"{fs_path!r} was replaced while it was being opened")
            self._schema_version = schema.ensure_schema(self._con, readonly=readonly)
            if fs_path is not None and not readonly:
                self._con.set_wal_hook(self._on_wal_commit)  # replaces SQLite's automatic checkpoint
        except BaseException as exc:
            if self._con is not None:
                with contextlib.suppress(apsw.Error):
                    self._con.close(True)
            # A failed open leaves no trace: remove the files this attempt created
            # (an empty new database, -wal/-shm beside a file that is not ours).
            for created in set(_side_files(fs_path)) - existed:
                with contextlib.suppress(OSError):
                    os.remove(created)
            if isinstance(exc, apsw.Error):
                raise from_apsw(exc, f"cannot use {path!r} as a mobstore database") from None
            if isinstance(exc, OSError):
                raise StoreError(f"cannot open {path!r}: {exc.strerror or exc}") from None
            raise

    # -- facts ---------------------------------------------------------------------------------
    @property
    def path(self) -> str:
        return self._path

    @property
    def schema_version(self) -> int:
        return self._schema_version

    @property
    def _connection(self) -> apsw.Connection:
        """The underlying apsw connection, for inspection by mobstore's own tests and tools.
        Not public: writing through it would bypass the digest state, bindings and event log
        (read with Store.query instead)."""
        return self._con

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (SQLite checkpoints the WAL into the file). The store is
        closed afterwards even when this raises: an I/O error of the final checkpoint
        (StoreIOError, DiskFullError) leaves the WAL beside the file, and the next open
        recovers every committed write from it."""
        with self._lock:
            con, self._con = self._con, None
            if con is None:
                return
            try:
                con.close()
            except apsw.Error as exc:
                with contextlib.suppress(apsw.Error):
                    con.close(True)  # already closed by SQLite in every case we test; make sure
                raise from_apsw(exc, f"closing {self._path!r}") from None

    def __enter__(self: _StoreT) -> _StoreT:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _on_wal_commit(self, _con, _name: str, frames: int) -> int:
        self._wal_frames = frames
        return apsw.SQLITE_OK

    def _checkpoint_if_due(self, con: apsw.Connection) -> None:
        """After a durable commit: a PASSIVE checkpoint once the WAL has grown past the
        threshold. Its failure is logged, not raised: the commit it follows succeeded, and
        the next commit (or close) checkpoints again."""
        if self._wal_frames < self._checkpoint_frames:
            return
        self._wal_frames = 0
        try:
            con.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)
        except apsw.Error as exc:
            log.warning("WAL checkpoint of %r failed (the commit before it is durable): %s", self._path, exc)

    def _db(self) -> apsw.Connection:
        if self._con is None:
            raise StoreError("the store is closed")
        return self._con

    @property
    def group_commit_stats(self) -> dict:
        """{"batches", "jobs", "largest_batch"} of the writes this Store committed through
        group commit (engine/groupcommit.py): jobs / batches is the fsyncs shared."""
        return self._group.stats()

    # -- transactions --------------------------------------------------------------------------
    def _write(self, fn, *, keeps_heads: bool = False, turn=None):
        """fn(con) in a write transaction shared with the writes of other threads waiting at
        the same time (group commit); returns once the commit is durable. Unless the caller
        says fn keeps the write path's head memory right (keeps_heads: fn changes heads only
        through _append_locked / the receipt path, engine/heads.py), it is emptied before
        and after fn. `turn`: fn is exactly the write of that prepared turn (group commit may
        write it together with others, engine/groupcommit.py)."""
        if not keeps_heads:
            job = fn

            def fn(con):
                self._heads.clear()
                try:
                    return job(con)
                finally:
                    self._heads.clear()

        return self._group.run(fn, turn if keeps_heads else None)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[apsw.Connection]:
        """Atomic write scope: BEGIN IMMEDIATE at the outermost level (the write lock is
        taken up front, so it never fails half-way with a busy upgrade), SAVEPOINT inside.
        Commits when the block ends normally, rolls back on any exception.

        An apsw error (raised by the block or by BEGIN/COMMIT) leaves as the package's
        error (engine/errors.py). After an I/O error or a full disk SQLite may already have
        rolled the whole transaction back: an inner level then fails, and so does every
        later statement of the enclosing levels (a StoreError, never an autocommit)."""
        with self._lock:
            con = self._db()
            if self._readonly:
                raise StoreError("the store is open read-only")
            if self._read_depth:
                raise StoreError("cannot write inside reading(): its snapshot is read-only")
            outer = self._depth == 0
            if not outer and not con.in_transaction:
                raise StoreError("the enclosing transaction was rolled back by SQLite after an earlier error")
            name = f"ms_sp{self._depth}"  # our own counter, not data
            self._heads.clear()  # whatever runs in here may change heads by other paths
            try:
                con.execute("BEGIN IMMEDIATE" if outer else f"SAVEPOINT {name}")  # sql-safe: name from our depth counter
            except apsw.Error as exc:
                raise from_apsw(exc, "cannot start a transaction") from None
            self._depth += 1
            if outer:
                self._owner = threading.get_ident()
            try:
                yield con
            except BaseException as exc:
                self._heads.clear()  # what the scope wrote (and remembered) is rolled back
                self._depth -= 1
                if outer:
                    self._owner = None
                _undo(con, None if outer else name)
                if isinstance(exc, apsw.Error):
                    raise from_apsw(exc, "the write was rolled back") from None
                raise
            self._depth -= 1
            if outer:
                self._owner = None
            self._heads.clear()  # the scope may have changed heads by other paths
            if not con.in_transaction:  # the block swallowed an error that ended the transaction
                raise StoreError("the transaction was rolled back by SQLite after an error inside it")
            try:
                con.execute("COMMIT" if outer else f"RELEASE {name}")  # sql-safe: name from our depth counter
            except apsw.Error as exc:
                if outer:
                    _undo(con, None)
                raise from_apsw(exc, "the commit failed") from None
            if outer:
                self._checkpoint_if_due(con)

    @contextlib.contextmanager
    def reading(self) -> Iterator[apsw.Connection]:
        """A consistent read scope: several SELECTs see one snapshot of the file.
        Re-entrant, and inside transaction() it reads the transaction's own view."""
        with self._lock:
            con = self._db()
            if self._depth or self._read_depth:
                self._read_depth += 1
                try:
                    yield con
                finally:
                    self._read_depth -= 1
                return
            try:
                con.execute("BEGIN")
            except apsw.Error as exc:
                raise from_apsw(exc, "cannot start a read") from None
            self._read_depth = 1
            self._owner = threading.get_ident()
            try:
                yield con
            except apsw.Error as exc:
                raise from_apsw(exc, "the read failed") from None
            finally:
                self._read_depth = 0
                self._owner = None
                if con.in_transaction:
                    try:
                        con.execute("COMMIT")
                    except apsw.Error as exc:
                        _undo(con, None)
                        raise from_apsw(exc, "cannot end a read") from None

    @contextlib.contextmanager
    def _statement(self) -> Iterator[apsw.Connection]:
        """The connection for a single statement (its own implicit snapshot) under the
        store's lock, apsw errors mapped as everywhere else."""
        with self._lock:
            con = self._db()
            try:
                yield con
            except apsw.Error as exc:
                raise from_apsw(exc, "the read failed") from None


def _undo(con: apsw.Connection, savepoint: str | None) -> None:
    """Roll back the whole transaction (savepoint None) or to a savepoint, unless SQLite
    has already rolled the transaction back itself (I/O error, full disk)."""
    if not con.in_transaction:
        return
    with contextlib.suppress(apsw.Error):
        if savepoint is None:
            con.execute("ROLLBACK")
        else:
            con.execute(f"ROLLBACK TO {savepoint}")  # sql-safe: name from our depth counter
            con.execute(f"RELEASE {savepoint}")  # sql-safe: name from our depth counter


class Store(SessionsMixin, ReceiptsMixin, RewritesMixin, MembershipMixin, QueryMixin, ExportMixin, MaintenanceMixin,
            SnapshotMixin, StoreBase):
    """A mobstore database: sessions, peer metadata, runtime receipts and the event log.

    Thread-safe (one lock per store); one process may open a file several times and
    several processes may open it at once (WAL, busy timeout).
    """

    def __repr__(self) -> str:
        return f"<mobstore.Store {self._path!r}>"


def open(path: str | os.PathLike = MEMORY, *, synchronous: str = "FULL", readonly: bool = False,  # noqa: A001
         vfs: str | None = None) -> Store:
    """Open (creating if needed) a store. A file path gives a persistent store in WAL mode;
    ":memory:" an ephemeral one with the same API. `synchronous` is SQLite's level for
    commits (FULL: every committed call is on disk when it returns).

    A file this user may not write is refused (StoreReadOnlyError) unless `readonly`
    is true; a path that is not a regular file (FIFO, directory, device) or a symbolic
    link to nothing is refused (StoreError). `vfs` names a registered SQLite VFS
    (apsw.VFS) to open the file through; the default is SQLite's own (the fault-injection
    tests in tests/faults/ use it, docs/durability.md)."""
    try:
        path = os.fspath(path)
    except TypeError:
        raise InvalidInputError(f"path must be a str or os.PathLike, not {type(path).__name__}") from None
    if not isinstance(path, str):
        path = os.fsdecode(path)
    if not path or "\x00" in path:
        raise InvalidInputError(f"path must be a non-empty file name without NUL characters, not {path!r}")
    _args.choice(synchronous.upper() if isinstance(synchronous, str) else synchronous, "synchronous", _SYNCHRONOUS)
    _args.flag(readonly, "readonly")
    if vfs is not None and not isinstance(vfs, str):
        raise InvalidInputError(f"vfs must be the name of a registered SQLite VFS (str) or None, not {type(vfs).__name__}")
    return Store(path, synchronous=synchronous, readonly=readonly, vfs=vfs)


__all__ = ["Store", "open", "MEMORY", "SchemaTooNewError"]
