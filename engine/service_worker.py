"""The worker of a session service: one thread that runs every store call, and the batches
the event loop hands to it (engine/services.py; docs/group-commit.md).

Calls are submitted on the loop thread and wait there while a batch is on the worker. The
next batch is everything submitted meanwhile: one executor hop for all of them and, when
any of them writes, ONE store transaction with one fsync, each call in its own savepoint
(engine/groupcommit.py). Results are delivered in submission order, so whatever a caller
does with its result (publishing events) happens in commit order.

When a hand-over happens:
- A call submitted while the worker is idle goes at the end of the loop iteration, with
  every call submitted in the same iteration (agents started together by asyncio.gather
  are one batch, not one call and then the rest).
- After a batch is answered, the callers it woke usually come right back. The next
  hand-over waits until as many calls are pending as the batch answered, or MAX_DEFER loop
  iterations, whichever is first: otherwise the first caller back would go alone.

A call may carry a *hook*: a function run on the loop thread with the call's outcome when
its batch is answered, before its caller sees it, even if the caller was cancelled
meanwhile (a hooked call that is submitted always runs). The live-session writes use it to
absorb what they committed (engine/live.py): a write that reached the store always reaches
the live state, without a task per call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import weakref
from typing import Callable

from . import bulk_turns
from .errors import StoreError
from .sessions import now_ms

log = logging.getLogger(__name__)

# Loop iterations a hand-over waits for the callers of the previous batch to come back.
MAX_DEFER = 6


class Worker:
    """One service's worker thread and its batches. Loop-thread only, except _run_batch."""

    def __init__(self, opened: Callable[[], object]):
        # Worker thread: the service's Store, opened on first use. Held weakly (opened is a
        # bound method of the service): the worker never keeps its service alive.
        self._opened = weakref.WeakMethod(opened)
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="mobstore-service")
        self._pending: list[tuple] = []  # (fn, args, kind, future, hook, turn)
        self._running: asyncio.Future | None = None
        self._scheduled = False  # a hand-over is scheduled (call_soon)
        self._expect = 0         # calls answered by the last batch: how many may come right back
        self._deferred = 0       # loop iterations the scheduled hand-over has waited for them
        self.closing = False     # hand over at once: nobody is coming back
        self.batches = 0         # batches handed to the worker (each one executor hop)

    @property
    def idle(self) -> bool:
        return self._running is None and not self._pending

    def submit(self, fn, args: tuple, kind: str, hook: Callable | None = None,
               turn: tuple | None = None) -> asyncio.Future:
        """Queue fn: kind "write" / "read" run fn(store, *args), "plain" fn(*args). The future
        gets its result; hook(error, value) -> (error, value) runs first (see the module doc).

        A write that is exactly one turn may say so: turn = (prepared turn, the message count
        its session must have or None, finish(receipt, count before) -> its value). Such
        calls next to each other in a batch are written together (engine/bulk_turns.py); fn
        is then only what runs when the session's count is not the one expected."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((fn, args, kind, future, hook, turn))
        if self._running is None and not self._scheduled:
            self._deferred = 0  # idle: at the end of this loop iteration
            self._schedule()
        return future

    def _schedule(self) -> None:
        self._scheduled = True
        asyncio.get_running_loop().call_soon(self._hand_over_when_ready)

    def _hand_over_when_ready(self) -> None:
        """Loop thread, once per iteration while a hand-over is due (module doc: when)."""
        self._scheduled = False
        if self._running is not None:
            return
        waiting = self._deferred and not self.closing and len(self._pending) < self._expect
        if waiting and self._deferred <= MAX_DEFER:
            self._deferred += 1
            self._schedule()
            return
        self._deferred = 0
        if self._pending:
            self._hand_over()

    def _hand_over(self) -> None:
        """Loop thread: send every pending call as one batch (a cancelled caller's call is
        dropped, unless it has a hook: then it runs, so the hook sees its outcome)."""
        batch = [item for item in self._pending if item[4] is not None or not item[3].cancelled()]
        self._pending = []
        if not batch:
            return
        jobs = [(fn, args, kind, turn) for fn, args, kind, _f, _h, turn in batch]
        self.batches += 1
        running = asyncio.wrap_future(self._executor.submit(self._run_batch, jobs))
        self._running = running
        running.add_done_callback(lambda done: self._answer(batch, done))

    def _answer(self, batch: list[tuple], done: asyncio.Future) -> None:
        """Loop thread: run the hooks and resolve the futures in submission order, then
        wait (a few iterations at most) for the woken callers' next calls."""
        self._running = None
        if done.cancelled():
            outcomes = [(asyncio.CancelledError(), None)] * len(batch)
        elif done.exception() is not None:
            outcomes = [(done.exception(), None)] * len(batch)
        else:
            outcomes = done.result()
        for (_fn, _args, _kind, future, hook, _turn), (error, value) in zip(batch, outcomes):
            if hook is not None:
                try:
                    error, value = hook(error, value)
                except BaseException as exc:  # noqa: BLE001 - the caller gets it
                    log.exception("a session service hook failed")
                    error, value = exc, None
            if future.cancelled():
                continue
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(value)
        self._expect = len(batch)
        self._deferred = 1
        if self.closing:  # nobody is coming back; and nothing may keep the service alive
            if self._pending:
                self._hand_over()
        elif not self._scheduled:
            self._schedule()  # runs after the woken callers' next steps (queued before it)

    def _run_batch(self, jobs: list[tuple]) -> list[tuple]:
        """Worker thread: the calls of one batch in order; [(error, value)] for each. With a
        write among them they all run in one store transaction (reads then see the writes
        queued before them, as on a one-thread executor); turns next to each other are one
        part of it, written together."""
        opened = self._opened()
        if opened is None:
            raise StoreError("the session service is gone")

        def call(fn, args, kind, _turn=None):
            return fn(*args) if kind == "plain" else fn(opened(), *args)

        if not any(kind == "write" for _fn, _args, kind, _turn in jobs):
            out = []
            for job in jobs:
                try:
                    out.append((None, call(*job)))
                except BaseException as exc:  # noqa: BLE001 - raised by the caller's await
                    out.append((exc, None))
            return out
        store = opened()
        parts, members = [], []  # run_each parts, and the jobs each one answers
        i = 0
        while i < len(jobs):
            if jobs[i][3] is None:
                parts.append(lambda _con, job=jobs[i]: call(*job))
                members.append(None)
                i += 1
                continue
            k = i
            while k < len(jobs) and jobs[k][3] is not None:
                k += 1
            group = jobs[i:k]
            parts.append(lambda con, group=group: _turns(store, con, group))
            members.append(len(group))
            i = k
        out = []
        for part, n in zip(store._group.run_each(parts), members):
            if n is None:
                out.append((part.error, part.value))
            elif part.error is not None:
                out.extend([(part.error, None)] * n)
            else:
                out.extend(part.value)
        return out

    async def drain(self) -> None:
        """Until every submitted call (hooked ones included) has been answered."""
        while not self.idle:
            if self._running is None:
                self._hand_over()  # no waiting for callers to come back
            if self._running is not None:
                await asyncio.wait([self._running])
            await asyncio.sleep(0)  # the answered callers run (and may submit again)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False)


class _Slow:
    __slots__ = ("value",)

    def __init__(self, value) -> None:
        self.value = value


def _turns(store, con, group: list[tuple]) -> list[tuple]:
    """Worker thread, inside the batch's transaction: the turn calls `group`, written
    together (engine/bulk_turns.py); [(error, value)] for each."""
    specs = [job[3] for job in group]
    outcomes = bulk_turns.apply_turns(
        store, con, [spec[0] for spec in specs], now_ms(), expected=[spec[1] for spec in specs],
        slow=lambda i: _Slow(group[i][0](store, *group[i][1])))
    out = []
    for spec, (error, value) in zip(specs, outcomes):
        if error is not None:
            out.append((error, None))
        elif isinstance(value, _Slow):
            out.append((None, value.value))
        else:
            out.append((None, spec[2](*value)))
    return out
