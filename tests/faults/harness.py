"""The fault loop: run one write path of the public API with the k-th counted I/O call
failing (tests/faults/vfs.py), for every k up to the path's I/O count, and check what
docs/durability.md promises after each fault.

One run of (operation, k, kind, persistent):
1. a copy of the template store is opened through the fault VFS; the operation's setup
   (acknowledged writes, e.g. the turn that close() must checkpoint) runs unfaulted;
2. the fault is armed and the operation runs: it must return or raise a MobstoreError;
3. a transient fault is then disarmed and the SAME Store must still work: a probe write
   (append to the "probe" session) must succeed; under a persistent fault the probe may
   fail with a MobstoreError;
4. close() returns or raises a MobstoreError, and the Store is closed either way;
5. the file is reopened through SQLite's own VFS: integrity_check and foreign_key_check
   are clean, Store.verify() is ok, and the logical contents (every row of every table,
   timestamps aside) equal one of the states the acknowledgements allow: the operation
   whole or absent (whole if it was acknowledged), the probe present if acknowledged.

The allowed states come from fault-free reference runs of the same steps, which also
count the operation's I/O calls (N): k runs over 1..N.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import shutil
import time
from typing import Any, Callable, ClassVar

import apsw

import engine
from engine.errors import MobstoreError, StoreError

from . import vfs

PROBE = "probe"
MSG = {"role": "user", "content": "probe"}


@dataclasses.dataclass
class Context:
    path: str
    store: engine.Store | None
    realm: ClassVar[str | None] = None  # the meerkat realm file import operations read (set by the test)


@dataclasses.dataclass(frozen=True)
class Operation:
    """One write path. `run(ctx)` performs it on ctx.store (or opens its own connection);
    `setup(ctx)` runs before the fault is armed. `closes`: run() closes ctx.store itself
    (no probe afterwards). `opens`: run() opens ctx.store (the template is not copied,
    ctx.store is None until then). `per_session`: a partial result is allowed when each
    session is whole or absent (an import commits session by session); a fault-free rerun
    must then complete it."""

    name: str
    run: Callable[[Context], Any]
    setup: Callable[[Context], None] | None = None
    closes: bool = False
    opens: bool = False
    per_session: bool = False
    rerun: Callable[[Context], Any] | None = None


# -- logical contents ---------------------------------------------------------------------------

def _is_incidental(table: str, column: str) -> bool:
    """Columns that differ between a reference run and a faulted one by design: wall-clock
    times, and the event log's writer (each connection's own "<pid>:<random>" name)."""
    return column == "at_ms" or column.endswith("_at_ms") or (table == "ms_events" and column == "writer")


def contents(path: str, *, with_events: bool = True) -> dict[str, tuple]:
    """Every row of every mobstore table, incidental columns left out (_is_incidental).
    Read through SQLite's own VFS."""
    con = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
    try:
        out = {}
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
            "ORDER BY name")]
        for table in tables:
            if table == "ms_events" and not with_events:
                continue
            columns = [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]  # names from sqlite_schema
            keep = [c for c in columns if not _is_incidental(table, c)]
            select = ", ".join(f'"{c}"' for c in keep)
            out[table] = tuple(con.execute(f'SELECT {select} FROM "{table}" ORDER BY {select}').fetchall())
        return out
    finally:
        con.close()


def check_file(path: str) -> None:
    """integrity_check, foreign_key_check and verify() through SQLite's own VFS."""
    con = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READWRITE)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)], f"{path}: integrity_check failed"
        assert con.execute("PRAGMA foreign_key_check").fetchall() == [], f"{path}: foreign_key_check failed"
    finally:
        con.close()
    with engine.open(path) as store:
        report = store.verify()
        assert report.ok, f"{path}: verify found {report.mismatches[:3]}"


def probe(store: engine.Store) -> int:
    """The write that shows the Store still works: one message appended to "probe"
    (created first on a new file)."""
    if store.session(PROBE) is None:
        store.create_session(session_id=PROBE)
    n = store.append_messages(PROBE, [MSG])
    assert store.messages(PROBE, -1) == [MSG]
    return n


# -- one run ------------------------------------------------------------------------------------

@dataclasses.dataclass
class Run:
    op_error: str | None          # None: acknowledged
    probe_error: str | None       # None: acknowledged ("n/a" for operations that close)
    close_error: str | None
    state: str                    # which allowed state the file holds ("absent", "whole", ...)
    injected: int


def _fresh(template: str | None, path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.lexists(path + suffix):
            os.remove(path + suffix)
    if template is not None:
        shutil.copyfile(template, path)


def _error_name(exc: BaseException) -> str:
    if not isinstance(exc, MobstoreError):
        raise AssertionError(f"not the package's error: {type(exc).__module__}.{type(exc).__name__}: {exc}") from exc
    return type(exc).__name__


def _open(path: str) -> engine.Store:
    return engine.open(path, vfs=vfs.FAULT_VFS)


def reference(op: Operation, template: str | None, path: str, ops=vfs.OPS) -> tuple[int, dict[str, dict]]:
    """Fault-free runs: the operation's I/O count and the states a faulted run may end in:
    "absent"/"whole" (without/with the operation), each "+probe" after the probe write."""
    plan = vfs.install()
    states: dict[str, dict] = {}
    _fresh(template, path)
    ctx = Context(path, None if op.opens else _open(path))
    if op.setup:
        op.setup(ctx)
    if not op.opens:
        states["absent"] = contents(path)
    plan.arm(None, ops=ops)
    op.run(ctx)
    count = plan.count
    plan.reset()
    states["whole"] = contents(path)
    if not op.closes:
        probe(ctx.store)
        states["whole+probe"] = contents(path)
        ctx.store.close()
        if not op.opens:
            _fresh(template, path)
            ctx = Context(path, _open(path))
            if op.setup:
                op.setup(ctx)
            probe(ctx.store)
            states["absent+probe"] = contents(path)
            ctx.store.close()
    return count, states


def faulted(op: Operation, template: str | None, path: str, k: int, kind: str, persistent: bool,
            states: dict[str, dict], ops=vfs.OPS) -> Run:
    plan = vfs.install()
    _fresh(template, path)
    ctx = Context(path, None if op.opens else _open(path))
    if op.setup:
        op.setup(ctx)
    plan.arm(k, kind=kind, persistent=persistent, ops=ops)
    op_error = None
    try:
        op.run(ctx)
    except BaseException as exc:  # noqa: BLE001 - classified; anything foreign fails the test
        op_error = _error_name(exc)
    if not persistent:
        plan.disarm()
    injected = plan.injected
    assert injected >= 1 or op_error is None, f"{op.name} failed with {op_error} but no fault was injected"
    if op.opens and ctx.store is None:
        # The open failed and left no trace (engine/store.py removes what it created): the
        # next open, unfaulted, must create a working store.
        plan.disarm()
        ctx.store = _open(path)
    probe_error, close_error = probe_and_close(ctx.store, persistent, f"{op.name} k={k} {kind}",
                                               with_probe=not op.closes)
    plan.disarm()
    check_file(path)
    state = _match(op, contents(path), states, op_error, probe_error, path)
    return Run(op_error, probe_error, close_error, state, injected)


def probe_and_close(store: engine.Store, persistent: bool, what: str, *,
                    with_probe: bool = True) -> tuple[str | None, str | None]:
    """Steps 3 and 4 of a faulted run (module docstring): the probe write (unless the
    operation closed the store itself: "n/a"), then close(); returns (probe error, close
    error), None where the call succeeded. After a transient fault both must succeed."""
    probe_error = close_error = None
    if not with_probe:
        probe_error = "n/a"
    else:
        try:
            probe(store)
        except BaseException as exc:  # noqa: BLE001
            probe_error = _error_name(exc)
            assert persistent, f"{what}: the Store is unusable after a transient fault: {exc}"
    try:
        store.close()
    except BaseException as exc:  # noqa: BLE001
        close_error = _error_name(exc)
        assert persistent, f"{what}: close failed after a transient fault: {exc}"
    try:
        store.message_count(PROBE)
    except StoreError as exc:
        assert "closed" in str(exc), exc
    else:
        raise AssertionError("the Store is not closed after close()")
    return probe_error, close_error


def _match(op: Operation, found: dict, states: dict[str, dict], op_error, probe_error, path: str) -> str:
    """Which allowed state the file holds: the operation whole (required when acknowledged)
    or absent; the probe present when acknowledged, either way when it failed, absent when
    there was none."""
    allowed = []
    for name in states:
        with_op, with_probe = name.startswith("whole"), name.endswith("+probe")
        if op_error is None and not with_op:
            continue
        if probe_error is None and not with_probe:
            continue
        if probe_error == "n/a" and with_probe:
            continue
        allowed.append(name)
    for name in allowed:
        if found == states[name]:
            return name
    if op.per_session and op_error is not None:
        return _match_partial(op, found, states, path)
    raise AssertionError(
        f"{op.name}: the file holds none of the allowed states {allowed} "
        f"(op error {op_error}, probe error {probe_error}); differing tables: "
        + ", ".join(t for t in found if any(found[t] != states[n].get(t) for n in allowed)))


def _match_partial(op: Operation, found: dict, states: dict[str, dict], path: str) -> str:
    """Each session of a per-session operation is whole or absent, and a fault-free rerun
    completes the operation."""
    whole = states["whole"]
    for table, rows in found.items():
        if table == "ms_events":
            continue
        extra = set(rows) - set(whole[table]) - set(states.get("absent+probe", {}).get(table, ())) \
            - set(states.get("whole+probe", {}).get(table, ()))
        assert not extra, f"{op.name}: rows in {table} that no allowed state has: {sorted(extra)[:2]}"
    assert op.rerun is not None
    with engine.open(path) as store:
        op.rerun(Context(path, store))
    check_file(path)
    done = contents(path, with_events=False)
    target = {t: r for t, r in states["whole+probe"].items() if t != "ms_events"}
    without_probe = {t: r for t, r in whole.items() if t != "ms_events"}
    assert done in (target, without_probe), f"{op.name}: a rerun does not complete the partial operation"
    return "partial, completed by a rerun"


# -- the loop -----------------------------------------------------------------------------------

@dataclasses.dataclass
class Tally:
    op: str
    kind: str
    persistent: bool
    ops: tuple = vfs.OPS
    io_count: int = 0
    runs: int = 0
    false_failures: int = 0  # raised, yet the change is whole in the file (a misleading error)
    outcomes: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    states: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    seconds: float = 0.0

    def line(self) -> str:
        mode = ("persistent" if self.persistent else "transient") + (
            "" if self.ops == vfs.OPS else f" ({'/'.join(self.ops)} only)")
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items()))
        states = ", ".join(f"{k} {v}" for k, v in sorted(self.states.items()))
        return (f"{self.op:<32} {self.kind:<4} {mode:<10} I/O calls {self.io_count:>4}, runs {self.runs:>4}: "
                f"{outcomes}; final state: {states}; raised yet whole: {self.false_failures} ({self.seconds:.1f} s)")


def sweep(op: Operation, template: str | None, workdir: str, kind: str, persistent: bool, *,
          indexes: Callable[[int], list[int]] | None = None, ops=vfs.OPS) -> Tally:
    """Every k in 1..N (or the chosen subset) for one fault kind and mode; `ops` are the
    calls counted and failed (default: writes, syncs and truncates alike)."""
    started = time.perf_counter()
    path = os.path.join(workdir, "faulted.db")
    count, states = reference(op, template, path, ops)
    tally = Tally(op.name, kind, persistent, tuple(ops), io_count=count)
    assert count > 0, f"{op.name} does no counted I/O"
    with vfs.expected_unraisable():
        for k in (indexes(count) if indexes else range(1, count + 1)):
            run = faulted(op, template, path, k, kind, persistent, states, ops)
            tally.runs += 1
            tally.outcomes["ok" if run.op_error is None else run.op_error] += 1
            tally.states[run.state] += 1
            if run.op_error is not None and run.state.startswith("whole") and not (op.opens or op.closes):
                tally.false_failures += 1
    tally.seconds = time.perf_counter() - started
    return tally
