"""I/O faults injected under SQLite at every write, sync and truncate of every write path
(harness.py says what is checked after each fault; docs/durability.md the promise).

Default run (CI): every operation x both fault kinds (EIO, disk full) x transient /
persistent, at every index of the operation's writes, syncs and truncates counted together.
`pytest -m stress tests/faults` adds the same sweep over syncs only and over writes only
(one kind of call failing while the others work). Each combination prints its tally line;
run with -s to see them (docs/durability.md quotes a full run).
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import types

import apsw
import pytest

import engine
from engine import services
from engine import store as store_module
from engine.importer import import_realm
from tests.conftest import MEERKAT_DIR

from . import harness, vfs
from .harness import Operation


def _msg(text: str, size: int = 0) -> dict:
    return {"role": "user", "content": text + "." * size}


def _binding(mob: str, member: str) -> dict:
    return {"session_metadata": {
        "comms_name": f"{mob}/coder/{member}", "realm_id": f"mob:{mob}",
        "peer_meta": {"labels": {"mob_id": mob, "role": "coder", "meerkat_id": member}}}}


SEED_REALM = os.path.join(MEERKAT_DIR, "realm-0.7.5-attempted-turn.sqlite3")  # meerkat 0.7.5, one session


@pytest.fixture(scope="module")
def realm(tmp_path_factory):
    """meerkat 0.7.5's realm with its one session copied under three more ids (the id
    replaced in the row and in the session document), so an import commits four times."""
    path = str(tmp_path_factory.mktemp("realm") / "sessions.sqlite3")
    shutil.copyfile(SEED_REALM, path)
    con = apsw.Connection(path)
    try:
        (row,) = con.execute("SELECT * FROM sessions").fetchall()
        old = row[0]
        for n in range(1, 4):
            new = old[:-2] + f"{n:02d}"
            con.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (new, *row[1:5], row[5].replace(old, new), bytes(row[6]).replace(old.encode(), new.encode())))
    finally:
        con.close()
    return path


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """The store every faulted run starts from: "a" (bound to mob crew, 3 messages, one
    receipt), "b" (to delete), "probe" (the harness's probe session)."""
    path = str(tmp_path_factory.mktemp("faults") / "template.db")
    with engine.open(path) as s:
        s.create_session(_binding("crew", "a"), session_id="a", messages=[_msg("a0")])
        s.apply_runtime_turn("a", "run-1", [_msg("a1"), _msg("a2")], contributing_input_ids=["in-0"])
        s.create_session(_binding("crew", "b"), session_id="b", messages=[_msg("b0")])
        s.apply_runtime_turn("b", "run-1", [_msg("b1", 3000)])
        s.create_session(session_id=harness.PROBE)
    return path


def _each_or_error(results: list) -> list:
    """apply_runtime_turns(return_exceptions=True): the missing session's turn fails alone,
    as SessionNotFoundError; an I/O error fails the commit and so every turn: raise it."""
    errors = [r for r in results if isinstance(r, BaseException)]
    store_errors = [e for e in errors if isinstance(e, engine.StoreError)]
    if store_errors:
        assert len(store_errors) == len(results) - 1, results  # every other turn fails with the commit
        raise store_errors[0]
    assert [type(e) for e in errors] == [engine.SessionNotFoundError], results
    return results


def _set_open(ctx):
    ctx.store = engine.open(ctx.path, vfs=vfs.FAULT_VFS)


def _close(ctx):
    ctx.store.close()


def _checkpoint_every_commit(ctx):
    ctx.store._checkpoint_frames = 1  # the store's threshold (engine/store.py WAL_CHECKPOINT_PAGES)


class _Service:
    """A PersistentSessionService whose store opens through the fault VFS, driven from
    the harness's synchronous steps on one event loop."""

    def __init__(self, path: str):
        self.loop = asyncio.new_event_loop()
        self._real = services._store
        services._store = types.SimpleNamespace(
            open=functools.partial(store_module.open, vfs=vfs.FAULT_VFS), MEMORY=store_module.MEMORY,
            Store=store_module.Store)
        self.svc = services.PersistentSessionService(path, checkpoint_interval=None)

    def __call__(self, coro):
        return self.loop.run_until_complete(coro)

    def close(self):
        try:
            self(self.svc.close())
        finally:
            services._store = self._real
            self.loop.close()


def _service_setup_live(ctx):
    ctx.service = _Service(ctx.path)
    ctx.service(ctx.service.svc.append_live("a", [_msg("live-1"), _msg("live-2")]))


def _service_checkpoint(ctx):
    try:
        ctx.service(ctx.service.svc.checkpoint("a"))
    finally:
        ctx.service(ctx.service.svc.cancel_all_checkpointers())  # close writes nothing more
        ctx.service.close()


def _service_close(ctx):
    ctx.service.close()  # its final checkpoint writes the buffered messages


def _service_setup(ctx):
    ctx.service = _Service(ctx.path)
    ctx.service(ctx.service.svc.session_belongs_to_mob("a", "crew"))  # the worker opens its store now


def _service_apply(ctx):
    try:
        ctx.service(ctx.service.svc.apply_runtime_turn("a", "run-s", [_msg("s1"), _msg("s2")]))
    finally:
        ctx.service.close()


OPERATIONS = [
    Operation("open (new file)", _set_open, opens=True),
    Operation("create_session", lambda c: c.store.create_session(
        _binding("crew", "c"), session_id="c", messages=[_msg("c0"), _msg("c1")])),
    Operation("append_messages", lambda c: c.store.append_messages("a", [_msg("a3"), _msg("a4")])),
    Operation("apply_runtime_turn", lambda c: c.store.apply_runtime_turn(
        "a", "run-2", [_msg("a3"), _msg("a4")], contributing_input_ids=["in-1"])),
    Operation("apply_runtime_turn 120 KB", lambda c: c.store.apply_runtime_turn(
        "a", "run-2", [_msg(f"big{i}", 3000) for i in range(40)])),
    Operation("apply_runtime_turns (group commit)", lambda c: c.store.apply_runtime_turns([
        ("a", "run-2", [_msg("a3")]), ("b", "run-2", [_msg("b2")]), ("a", "run-3", [_msg("a4"), _msg("a5")])])),
    Operation("apply_runtime_turns return_exceptions", lambda c: _each_or_error(c.store.apply_runtime_turns([
        ("a", "run-2", [_msg("a3")]), ("missing", "run-2", [_msg("x")]), ("b", "run-2", [_msg("b2")])],
        return_exceptions=True))),
    Operation("apply_runtime_turn+checkpoint", lambda c: c.store.apply_runtime_turn(
        "a", "run-2", [_msg("a3"), _msg("a4")]), setup=_checkpoint_every_commit),
    Operation("set_metadata", lambda c: c.store.set_metadata("a", _binding("crew", "a-renamed"))),
    Operation("delete_session", lambda c: c.store.delete_session("b")),
    Operation("truncate_messages", lambda c: c.store.truncate_messages("a", 1)),
    Operation("close (checkpoint)", _close, closes=True, setup=lambda c: c.store.apply_runtime_turn(
        "a", "run-2", [_msg("a3"), _msg("a4")])),
    Operation("import_realm", lambda c: import_realm(c.store, c.realm), per_session=True,
              rerun=lambda c: import_realm(c.store, c.realm)),
    Operation("service apply_runtime_turn", _service_apply, setup=_service_setup),
    Operation("service checkpoint (live)", _service_checkpoint, setup=_service_setup_live),
    Operation("service close (final checkpoint)", _service_close, setup=_service_setup_live),
]
IDS = [op.name.split(" (")[0].replace(" ", "-") for op in OPERATIONS]
MODES = [(kind, persistent) for kind in vfs.KINDS for persistent in (False, True)]
MODE_IDS = [f"{kind}-{'persistent' if p else 'transient'}" for kind, p in MODES]
# The stress run also fails only one kind of call: fsync failing while writes still work
# (a device losing its write-back cache), writes failing while fsync works.
ONLY = [("sync",), ("write",)]
ONLY_IDS = ["sync-only", "write-only"]


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("op", OPERATIONS, ids=IDS)
def test_fault_at_every_io_index(op, mode, template, realm, workdir):
    kind, persistent = mode
    harness.Context.realm = realm
    tally = harness.sweep(op, None if op.opens else template, workdir, kind, persistent)
    print("\n" + tally.line())
    assert tally.runs == tally.io_count
    if not persistent and tally.io_count > 1:
        # Somewhere a fault must have been reported, or the shim is not in the path.
        assert sum(v for k, v in tally.outcomes.items() if k != "ok") > 0, tally.line()
    _truthful(op, persistent, tally)


@pytest.mark.stress
@pytest.mark.parametrize("only", ONLY, ids=ONLY_IDS)
@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("op", OPERATIONS, ids=IDS)
def test_fault_at_every_index_of_one_call_kind(op, mode, only, template, realm, workdir):
    kind, persistent = mode
    harness.Context.realm = realm
    tally = harness.sweep(op, None if op.opens else template, workdir, kind, persistent, ops=only)
    print("\n" + tally.line())
    assert tally.runs == tally.io_count
    _truthful(op, persistent, tally)


def _truthful(op: Operation, persistent: bool, tally) -> None:
    """A transient fault that raised left the change out: an error never hides a commit
    (a caller retrying it would apply it twice). An import that raised may have committed
    some sessions; a persistent fault may fail the report after the commit is durable."""
    if not persistent and not op.per_session:
        assert tally.false_failures == 0, tally.line()
