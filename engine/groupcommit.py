"""Group commit: concurrent writes on one Store share one transaction and one fsync.

A write is a *job*: a function of the open connection, run inside a transaction. Threads
that write at once queue their jobs; the first one becomes the *leader*. The leader takes
the store's lock, then takes every job queued by then (up to MAX_BATCH), runs them in
arrival order inside one ``BEGIN IMMEDIATE ... COMMIT`` -- each job inside its own
SAVEPOINT, so a job that raises is rolled back alone and its caller gets the exception --
and only after COMMIT returned (the WAL is fsynced at synchronous=FULL) hands every caller
its result. Then it runs the WAL checkpoint if one is due (the other callers are already
on their way), and the oldest job queued meanwhile becomes the next leader: a caller waits
for at most the batch in progress and its own.

Nothing waits on purpose: the batch is whatever queued while the previous commit ran (its
fsync releases the GIL), so one writer alone pays no extra latency and N writers share
about one fsync between them. A batch of one job runs without a savepoint (its failure
rolls back the whole transaction, which holds nothing else).

A thread that already holds an open transaction() or reading() of this store runs its job
inline (nested), as before group commit; everything else goes through the queue.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Callable

import apsw

from .errors import StoreError, from_apsw

# Jobs per transaction at most: bounds a batch's latency and the WAL growth of one commit.
MAX_BATCH = 512

_allocate = threading.Lock  # a plain lock, acquired up front, is the cheapest one-shot signal


class _Job:
    __slots__ = ("fn", "turn", "value", "error", "promoted", "signal")

    def __init__(self, fn: Callable, turn=None):
        self.fn = fn
        self.turn = turn  # a prepared turn when fn is exactly apply_runtime_turn's write of it
        self.value = None
        self.error: BaseException | None = None
        self.promoted = False
        self.signal = None  # created only when the job has to wait

    def outcome(self):
        if self.error is not None:
            error, self.error = self.error, None  # no reference cycle through the traceback
            raise error
        return self.value


class GroupCommit:
    """The job queue and leader hand-off of one StoreBase (see the module docstring)."""

    def __init__(self, store) -> None:
        self._store = store
        self._mutex = threading.Lock()
        self._queue: list[_Job] = []
        self._active = False  # a leader exists (running, or promoted and about to run)
        self.batches = 0
        self.jobs = 0
        self.largest = 0

    def stats(self) -> dict:
        """Commits made by the group committer, jobs they carried, the largest batch."""
        return {"batches": self.batches, "jobs": self.jobs, "largest_batch": self.largest}

    # -- entry points ------------------------------------------------------------------------
    def run(self, fn: Callable, turn=None):
        """fn(con) inside a shared transaction; its value once the commit is durable, or the
        exception it (or the commit) raised. Nothing of fn stays in the file if it raised.
        `turn`: fn writes exactly that prepared turn (its value is the receipt); turns next
        to each other in a batch are then written together (engine/bulk_turns.py)."""
        store = self._store
        if store._owner == threading.get_ident():
            return self._inline(fn)
        job = _Job(fn, turn)
        if self._enqueue(job):
            self._lead(job)
        return job.outcome()

    def _inline(self, fn: Callable):
        """fn(con) nested in the transaction this thread already holds (its own transaction(),
        or a job of the batch it leads), in a savepoint of its own."""
        store = self._store
        if store._read_depth:
            raise StoreError("cannot write inside reading(): its snapshot is read-only")
        con = store._db()
        con.execute("SAVEPOINT ms_inline")
        try:
            value = fn(con)
        except BaseException:
            store._heads.clear()
            if con.in_transaction:  # else SQLite already rolled it all back (I/O error, full disk)
                con.execute("ROLLBACK TO ms_inline")
                con.execute("RELEASE ms_inline")
            raise
        con.execute("RELEASE ms_inline")
        return value

    def run_each(self, fns: list[Callable]) -> list[_Job]:
        """Several functions of one caller in ONE job: each in its own savepoint (one that
        raises is rolled back alone), all in the same commit. Returns the finished jobs
        (call .outcome() on each); a failed commit fails every one of them."""
        parts = [_Job(fn) for fn in fns]

        def each(con):
            for part in parts:
                con.execute("SAVEPOINT ms_part")
                try:
                    part.value = part.fn(con)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller by outcome()
                    part.error = _mapped(exc)
                    self._store._heads.clear()
                    if not con.in_transaction:  # SQLite rolled everything back (I/O error, full disk)
                        raise part.error from None
                    con.execute("ROLLBACK TO ms_part")
                con.execute("RELEASE ms_part")

        try:
            self.run(each)
        except BaseException as exc:  # the commit (or BEGIN) failed: none of them holds
            for part in parts:
                if part.error is None:
                    part.value, part.error = None, exc
        return parts

    # -- the queue -----------------------------------------------------------------------------
    def _enqueue(self, job: _Job) -> bool:
        """True: the caller leads now. False: its job is done (it waited for a leader)."""
        with self._mutex:
            if not self._active:
                self._active = True
                return True
            job.signal = _allocate()
            job.signal.acquire()
            self._queue.append(job)
        job.signal.acquire()  # released when done, or when promoted to lead
        return job.promoted

    def _lead(self, own: _Job) -> None:
        store = self._store
        with store._lock:
            batch = [own]
            try:
                batch = self._execute(own)
            finally:
                with self._mutex:
                    self.batches += 1
                    self.jobs += len(batch)
                    self.largest = max(self.largest, len(batch))
                # The other callers first: their threads go on while the checkpoint runs (the
                # next leader waits for the lock, as it would for the commit).
                for job in batch[1:]:
                    job.signal.release()
                try:
                    if store._con is not None:
                        store._checkpoint_if_due(store._con)  # after the commit is durable (engine/store.py)
                finally:
                    with self._mutex:
                        if self._queue:
                            nxt = self._queue.pop(0)
                            nxt.promoted = True
                            nxt.signal.release()
                        else:
                            self._active = False

    def _take(self, own: _Job) -> list[_Job]:
        with self._mutex:
            taken = self._queue[:MAX_BATCH - 1]
            del self._queue[:len(taken)]
        return [own, *taken]

    # -- one transaction -----------------------------------------------------------------------
    def _execute(self, own: _Job) -> list[_Job]:
        """BEGIN IMMEDIATE, then take the batch (everything queued while the write lock was
        being acquired joins it), run it, COMMIT. Returns the batch, every job finished."""
        store = self._store
        try:
            con = store._db()
            if store._readonly:
                raise StoreError("the store is open read-only")
            con.execute("BEGIN IMMEDIATE")
        except apsw.Error as exc:
            batch = self._take(own)
            self._fail_all(batch, from_apsw(exc, "cannot start a transaction"))
            return batch
        except StoreError as exc:
            batch = self._take(own)
            self._fail_all(batch, exc)
            return batch
        batch = self._take(own)
        store._depth = 1
        store._owner = threading.get_ident()
        single = len(batch) == 1
        heads = store._heads
        try:
            heads.check(con)
            for fn, members in _units(store, batch):
                if not single:
                    con.execute("SAVEPOINT ms_job")
                try:
                    value = fn(con)
                except BaseException as exc:  # noqa: BLE001 - handed to its caller by outcome()
                    error = _mapped(exc)
                    for job in members:
                        job.error = error
                    heads.clear()  # it may have remembered what is now rolled back
                    if single or not con.in_transaction:
                        # Alone in the batch, or SQLite ended the transaction itself (an I/O
                        # error, a full disk): nothing of the batch holds; never go on in autocommit.
                        _undo(con, None)
                        self._fail_all(batch, StoreError(
                            f"rolled back with another write of the same commit: {error}"), keep_failures=True)
                        return batch
                    _undo(con, "ms_job")
                else:
                    if not single:
                        con.execute("RELEASE ms_job")
                    if len(members) == 1 and fn is members[0].fn:
                        members[0].value = value
                    else:
                        for job, (error, outcome) in zip(members, value):
                            job.value, job.error = (None, error) if error is not None else (outcome[0], None)
        except apsw.Error as exc:  # a savepoint statement failed: nothing of the batch holds
            heads.clear()
            _undo(con, None)
            self._fail_all(batch, from_apsw(exc, "the write was rolled back"), keep_failures=True)
            return batch
        finally:
            store._depth = 0
            store._owner = None
        try:
            con.execute("COMMIT")
        except apsw.Error as exc:
            heads.clear()
            _undo(con, None)
            self._fail_all(batch, from_apsw(exc, "the commit failed"), keep_failures=True)
            return batch
        return batch

    @staticmethod
    def _fail_all(batch: list[_Job], error: BaseException, keep_failures: bool = False) -> None:
        for job in batch:
            if keep_failures and job.error is not None:
                continue
            job.value = None
            job.error = error


def _units(store, batch: list[_Job]) -> list[tuple[Callable, list[_Job]]]:
    """The batch as (fn, jobs) units, in order: a job alone, or two or more turn jobs next to
    each other as one unit whose fn writes them together and returns [(error, (receipt,
    count before))] (engine/bulk_turns.py)."""
    from .bulk_turns import apply_turns  # (it builds on the receipts module, which builds on this one)
    from .sessions import now_ms

    units: list[tuple[Callable, list[_Job]]] = []
    i = 0
    while i < len(batch):
        k = i
        while k < len(batch) and batch[k].turn is not None:
            k += 1
        if k - i >= 2:
            group = batch[i:k]
            units.append((lambda con, group=group: apply_turns(store, con, [j.turn for j in group], now_ms()), group))
            i = k
        else:
            units.append((batch[i].fn, [batch[i]]))
            i += 1
    return units


def _mapped(exc: BaseException) -> BaseException:
    """A job's exception as its caller gets it: apsw errors as the package's (engine/errors.py)."""
    return from_apsw(exc, "the write was rolled back") if isinstance(exc, apsw.Error) else exc


def _undo(con: apsw.Connection, savepoint: str | None) -> None:
    """Roll back the transaction (or to the savepoint and release it) unless SQLite already
    rolled the whole transaction back on its own."""
    if not con.in_transaction:
        return
    with contextlib.suppress(apsw.Error):
        if savepoint is None:
            con.execute("ROLLBACK")
        else:
            con.execute(f"ROLLBACK TO {savepoint}")  # sql-safe: our own constant name
            con.execute(f"RELEASE {savepoint}")  # sql-safe: our own constant name
