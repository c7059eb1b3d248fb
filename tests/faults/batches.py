"""Group-commit batches that threads form, under the fault loop of harness.py.

Several threads call apply_runtime_turn / append_messages on ONE shared Store, and their
jobs form one batch of the group committer (engine/groupcommit.py) the same way every run,
so the reference run's I/O count is stable and failing its k-th call means the same thing
in every run. The choreography (ThreadBatch.run):

1. thread A makes the first call. It leads (nothing is queued) and its job blocks at its
   first statement after BEGIN IMMEDIATE: an apsw exec_trace on the store's connection,
   so the engine needs no hook of its own;
2. thread B calls; the test waits until B's job is in the group committer's queue; then C
   (and so on), so the queue holds B, C, ... in that order;
3. A's job goes on and commits alone; B, the oldest job waiting, is promoted to leader and
   takes every queued job: one batch of B, C, ... in one transaction.

The reference run checks that it happened so: two commits, the second of len(batch) jobs
(Store.group_commit_stats). A wait that does not come true within WAIT_S fails the run
(AssertionError) rather than hanging, and no thread may be left running.

What commits together is a *unit*: A's call alone, and the batch's calls that pass
validation. A call marked `refused` fails validation inside the batch (an unknown session,
a message its session's profile rejects): its caller gets that error, alone, and it is
never in the file. After a fault (harness.py's steps 3-5 follow, the same as for any
write path), every thread's outcome is its value or a MobstoreError, and:

- the calls of a unit all returned or all raised (a batch commits whole or not at all);
- the file holds the units of some subset S: every unit whose calls returned is in S; a
  unit whose calls raised is absent (a transient fault) or, counted as "raised yet
  whole", present (a persistent fault may fail the report after the commit);
- the refused call raised its error, or the batch's StoreError, never a value.

The allowed states are those of S's calls made one after another on one thread (no
batching): the reference run's contents must equal the state of every unit, and its
answers those of the sequential calls -- a batch is invisible in what it writes and returns.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from typing import Any, Callable

import engine
from engine import groupcommit
from engine.errors import MobstoreError, StoreError

from . import harness, vfs
from .harness import Context

WAIT_S = 10.0  # how long a step of the choreography may take before the run fails


@dataclasses.dataclass(frozen=True)
class Call:
    """One thread's call on the shared Store. `refused`: the error class it gets from
    validation inside the batch (it writes nothing, ever)."""

    name: str
    fn: Callable[[engine.Store], Any]
    refused: type[MobstoreError] | None = None


@dataclasses.dataclass(frozen=True)
class ThreadBatch:
    """A first call that commits alone, then `batch`: calls that queue while it runs and
    commit as one batch (module docstring). `setup(ctx)` runs before the fault is armed.
    `max_batch`: the group committer's limit during the run (engine/groupcommit.py
    MAX_BATCH); the queued calls then commit as consecutive batches of at most that many,
    each led by the oldest job left waiting."""

    name: str
    first: Call
    batch: tuple[Call, ...]
    setup: Callable[[Context], None] | None = None
    max_batch: int = groupcommit.MAX_BATCH

    @property
    def calls(self) -> tuple[Call, ...]:
        return (self.first, *self.batch)

    @property
    def chunks(self) -> list[tuple[Call, ...]]:
        """The batches the queued calls form, in order."""
        return [self.batch[i:i + self.max_batch] for i in range(0, len(self.batch), self.max_batch)]

    @property
    def units(self) -> tuple[tuple[str, ...], ...]:
        """The calls that commit together: the first alone; each batch's accepted calls."""
        accepted = [tuple(c.name for c in chunk if c.refused is None) for chunk in self.chunks]
        return ((self.first.name,), *(unit for unit in accepted if unit))

    def run(self, store: engine.Store) -> tuple[dict[str, Any], dict[str, int]]:
        """The choreography on `store`: every call's outcome (its value or the exception it
        raised) by name, and what the group committer did (commits, jobs, largest batch)."""
        con = store._connection
        first_thread: list[threading.Thread] = []
        blocked, go = threading.Event(), threading.Event()

        def trace(_cursor, _sql, _bindings):
            if (not blocked.is_set() and first_thread and threading.current_thread() is first_thread[0]
                    and con.in_transaction):
                blocked.set()
                go.wait(3 * WAIT_S)  # released by the test thread; bounded so nothing hangs
            return True

        outcomes: dict[str, Any] = {}

        def call(c: Call) -> None:
            try:
                outcomes[c.name] = c.fn(store)
            except BaseException as exc:  # noqa: BLE001 - classified by the caller
                outcomes[c.name] = exc

        threads = [threading.Thread(target=call, args=(c,), name=f"batch-{c.name}", daemon=True)
                   for c in self.calls]
        first_thread.append(threads[0])
        before = store.group_commit_stats
        failure = None
        con.exec_trace = trace
        limit, groupcommit.MAX_BATCH = groupcommit.MAX_BATCH, self.max_batch
        try:
            threads[0].start()
            if not _until(lambda: blocked.is_set() or not threads[0].is_alive()) or not blocked.is_set():
                failure = f"{self.first.name}'s job did not block inside its transaction"
            else:
                queue = store._group._queue  # the group committer's waiting jobs, in order
                for n, thread in enumerate(threads[1:], 1):
                    thread.start()
                    if not _until(lambda n=n: len(queue) == n):
                        failure = f"{thread.name}: {len(queue)} jobs queued, not {n}"
                        break
        finally:
            go.set()
            for thread in threads:
                if thread.ident is not None:
                    thread.join(3 * WAIT_S)
            con.exec_trace = None
            groupcommit.MAX_BATCH = limit
        alive = [t.name for t in threads if t.is_alive()]
        assert not alive, f"{self.name}: threads still running: {alive}"
        assert failure is None, f"{self.name}: {failure}"
        after = store.group_commit_stats
        return outcomes, {"batches": after["batches"] - before["batches"], "jobs": after["jobs"] - before["jobs"],
                          "largest_batch": after["largest_batch"]}

    def check_formed(self, stats: dict[str, int]) -> None:
        """The first call committed alone and the others as the batches of `chunks`."""
        want = {"batches": 1 + len(self.chunks), "jobs": len(self.calls),
                "largest_batch": max(map(len, self.chunks))}
        assert stats == want, f"{self.name}: the group committer made {stats}, not {want}"


def _until(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.0002)
    return True


# -- the allowed states ---------------------------------------------------------------------------

def _state_name(present: tuple[tuple[str, ...], ...]) -> str:
    return " ".join("+".join(unit) for unit in present) or "none"


def _sequential(op: ThreadBatch, template: str, path: str, present) -> tuple[dict, dict, dict[str, Any]]:
    """The calls of the units `present`, one after another on this thread: the contents
    without and with the probe, and the calls' answers."""
    harness._fresh(template, path)
    ctx = Context(path, harness._open(path))
    if op.setup:
        op.setup(ctx)
    names = {name for unit in present for name in unit}
    answers = {c.name: c.fn(ctx.store) for c in op.calls if c.name in names}
    without = harness.contents(path)
    harness.probe(ctx.store)
    with_probe = harness.contents(path)
    ctx.store.close()
    return without, with_probe, answers


def reference(op: ThreadBatch, template: str, path: str, ops=vfs.OPS) -> tuple[int, dict[tuple, dict]]:
    """The I/O count of the threaded run (checked twice: it must not vary) and the allowed
    states, keyed by (units present, probe present)."""
    vfs.install()
    states: dict[tuple, dict] = {}
    answers: dict[str, Any] = {}
    for r in range(len(op.units) + 1):
        for present in itertools.combinations(op.units, r):
            without, with_probe, got = _sequential(op, template, path, present)
            states[present, False], states[present, True] = without, with_probe
            if present == op.units:
                answers = got
    counts = []
    for _ in range(2):
        plan = vfs.install()
        harness._fresh(template, path)
        ctx = Context(path, harness._open(path))
        if op.setup:
            op.setup(ctx)
        plan.arm(None, ops=ops)
        outcomes, stats = op.run(ctx.store)
        counts.append(plan.count)
        plan.reset()
        op.check_formed(stats)
        for c in op.calls:
            got = outcomes[c.name]
            if c.refused is not None:
                assert type(got) is c.refused, f"{op.name}: {c.name} gave {got!r}, not {c.refused.__name__}"
            else:
                assert got == answers[c.name], f"{op.name}: {c.name} answered {got!r} in the batch, " \
                                               f"{answers[c.name]!r} alone"
        assert harness.contents(path) == states[op.units, False], \
            f"{op.name}: the batch wrote other rows than the same calls one by one"
        ctx.store.close()
    assert counts[0] == counts[1], f"{op.name}: the I/O count varies between runs: {counts}"
    return counts[0], states


# -- one faulted run --------------------------------------------------------------------------

@dataclasses.dataclass
class Run:
    outcomes: str      # "A=ok B=StoreIOError C=StoreIOError"
    state: str         # the units in the file ("A B+C", "none", ...) and "+probe"
    raised_yet_whole: int


def faulted(op: ThreadBatch, template: str, path: str, k: int, kind: str, persistent: bool,
            states: dict[tuple, dict], ops=vfs.OPS) -> Run:
    what = f"{op.name} k={k} {kind}{' persistent' if persistent else ''}"
    plan = vfs.install()
    harness._fresh(template, path)
    ctx = Context(path, harness._open(path))
    if op.setup:
        op.setup(ctx)
    plan.arm(k, kind=kind, persistent=persistent, ops=ops)
    outcomes, stats = op.run(ctx.store)
    if not persistent:
        plan.disarm()
    op.check_formed(stats)  # a fault never changes how the batch forms: it strikes at COMMIT
    errors = {name: harness._error_name(out) for name, out in outcomes.items() if isinstance(out, BaseException)}
    for c in op.calls:
        if c.refused is not None:
            assert isinstance(outcomes[c.name], (c.refused, StoreError)), \
                f"{what}: the refused call {c.name} gave {outcomes[c.name]!r}"
    acknowledged = []
    for unit in op.units:
        raised = [name for name in unit if name in errors]
        assert raised in ([], list(unit)), f"{what}: unit {'+'.join(unit)} split: {errors}"
        if not raised:
            acknowledged.append(unit)
    assert plan.injected >= 1 or all(name not in errors for unit in op.units for name in unit), \
        f"{what}: {errors} but no fault was injected"
    probe_error, _close_error = harness.probe_and_close(ctx.store, persistent, what)
    plan.disarm()
    harness.check_file(path)
    found = harness.contents(path)
    for (present, with_probe), state in states.items():
        if any(unit not in present for unit in acknowledged):
            continue
        if probe_error is None and not with_probe:
            continue
        if found == state:
            summary = " ".join(f"{c.name}={errors.get(c.name, 'ok')}" for c in op.calls)
            whole = sum(1 for unit in present if unit not in acknowledged)
            return Run(summary, _state_name(present) + ("+probe" if with_probe else ""), whole)
    raise AssertionError(f"{what}: the file holds none of the allowed states (errors {errors}, "
                         f"probe error {probe_error})")


def sweep(op: ThreadBatch, template: str, workdir: str, kind: str, persistent: bool, *, ops=vfs.OPS) -> harness.Tally:
    """Every k in 1..N for one fault kind and mode (harness.sweep for a ThreadBatch).
    false_failures: runs where a unit raised yet is whole in the file."""
    started = time.perf_counter()
    path = f"{workdir}/threads.db"
    count, states = reference(op, template, path, ops)
    tally = harness.Tally(op.name, kind, persistent, tuple(ops), io_count=count)
    with vfs.expected_unraisable():
        for k in range(1, count + 1):
            run = faulted(op, template, path, k, kind, persistent, states, ops)
            tally.runs += 1
            tally.outcomes[run.outcomes] += 1
            tally.states[run.state] += 1
            tally.false_failures += run.raised_yet_whole > 0
    tally.seconds = time.perf_counter() - started
    return tally
