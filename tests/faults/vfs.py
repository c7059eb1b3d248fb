"""An apsw VFS shim that fails the k-th write, sync or truncate, the way SQLite's own
test suite injects I/O errors (its test_vfs / "ioerr" loops): every file SQLite opens
through the VFS named FAULT_VFS (the database, its -wal and its -journal; the -shm is
shared memory and is not counted) inherits the default VFS, and each counted call asks
the one FaultPlan whether to fail.

Fault kinds:
- "eio":  the call returns SQLITE_IOERR and does nothing (a failed write or fsync);
- "full": SQLITE_FULL; a write first writes half its bytes (a short write, as a full
  disk does), a sync or truncate does nothing.
A transient fault fails only the k-th call; a persistent one fails it and every later
counted call until disarm() (a disk that stays full, a device that went away).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from typing import Iterator

import apsw

FAULT_VFS = "mobstore-faults"
OPS = ("write", "sync", "truncate")
KINDS = ("eio", "full")


class FaultPlan:
    """What the shim counts and when it fails. Thread-safe: a service's worker thread
    does the I/O while the test thread arms and reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.count = 0          # counted calls since the last reset()/arm()
            self.fail_at = None     # 1-based index of the first failing call, None = never
            self.kind = "eio"
            self.persistent = False
            self.ops = OPS
            self.injected = 0       # faults injected since the last reset()/arm()
            self.log: list[tuple[str, str]] = []

    def arm(self, fail_at: int | None, *, kind: str = "eio", persistent: bool = False, ops=OPS) -> None:
        """Start counting from zero; fail the fail_at-th counted call (None: only count)."""
        assert kind in KINDS and set(ops) <= set(OPS)
        self.reset()
        with self._lock:
            self.fail_at, self.kind, self.persistent, self.ops = fail_at, kind, persistent, tuple(ops)

    def disarm(self) -> None:
        with self._lock:
            self.fail_at = None

    def tick(self, op: str, filename: str) -> str | None:
        """Count one call; the fault kind to inject now, or None."""
        if op not in self.ops:
            return None
        with self._lock:
            self.count += 1
            self.log.append((op, filename))
            if self.fail_at is None or self.count < self.fail_at:
                return None
            if self.count > self.fail_at and not self.persistent:
                return None
            self.injected += 1
            return self.kind


PLAN = FaultPlan()


def _error(kind: str, op: str) -> apsw.Error:
    if kind == "full":
        return apsw.FullError(f"injected disk full ({op})")
    return apsw.IOError(f"injected I/O error ({op})")


class FaultFile(apsw.VFSFile):
    def excepthook(self, etype, evalue, etraceback) -> bool:
        """SQLite ignores some failed calls on purpose (the truncate of a WAL it resets);
        apsw would then report our injected error as unraisable. It is expected here."""
        if _injected(evalue):
            return True
        return super().excepthook(etype, evalue, etraceback)

    def __init__(self, name, flags):
        super().__init__("", name, flags)
        self._name = name.filename() if isinstance(name, apsw.URIFilename) else str(name)

    def xWrite(self, data, offset):
        kind = PLAN.tick("write", self._name)
        if kind is not None:
            if kind == "full" and len(data) > 1:
                super().xWrite(bytes(data)[: len(data) // 2], offset)
            raise _error(kind, "write")
        return super().xWrite(data, offset)

    def xSync(self, flags):
        kind = PLAN.tick("sync", self._name)
        if kind is not None:
            raise _error(kind, "sync")
        return super().xSync(flags)

    def xTruncate(self, newsize):
        kind = PLAN.tick("truncate", self._name)
        if kind is not None:
            raise _error(kind, "truncate")
        return super().xTruncate(newsize)


class FaultVFS(apsw.VFS):
    def __init__(self) -> None:
        super().__init__(FAULT_VFS, "")

    def xOpen(self, name, flags):
        return FaultFile(name, flags)


_VFS: FaultVFS | None = None


def _injected(exc: BaseException | None) -> bool:
    return isinstance(exc, (apsw.IOError, apsw.FullError)) and str(exc).startswith("injected ")


@contextlib.contextmanager
def expected_unraisable() -> Iterator[None]:
    """apsw reports an injected error as "unraisable" when SQLite decides to carry on
    without it (a failed truncate of a WAL it resets, a sync it retries at the next
    commit); those are expected here. Every other unraisable exception still reaches
    the previous hook (pytest's, which turns it into a warning)."""
    previous = sys.unraisablehook

    def hook(info):
        if not _injected(info.exc_value):
            previous(info)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


def install() -> FaultPlan:
    """Register the shim once per process (a VFS must outlive every connection using it);
    returns the plan, reset."""
    global _VFS
    if _VFS is None:
        _VFS = FaultVFS()
    PLAN.reset()
    return PLAN
