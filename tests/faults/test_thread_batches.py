"""I/O faults at every write, sync and truncate of a group-commit batch formed by threads
on one shared Store (tests/faults/batches.py says how the batch is formed and what is
checked; docs/durability.md the promise).

Default run (CI): each batch below x both fault kinds x transient / persistent, at every
index of the I/O of the first call's commit and the batch's. `pytest -m stress
tests/faults` adds wider batches and the sweeps over syncs only and writes only. Each
sweep prints its tally line (run with -s).
"""

from __future__ import annotations

from typing import Callable

import pytest

import engine

from . import batches, harness, vfs
from .batches import Call, ThreadBatch
from .test_io_faults import (MODE_IDS, MODES, ONLY, ONLY_IDS, _checkpoint_every_commit, _msg,  # noqa: F401
                             template)  # (template: the fixture every faulted run starts from)


def _append(sid: str, *texts: str) -> Callable:
    return lambda s: s.append_messages(sid, [_msg(t) for t in texts])


def _turn(sid: str, run: str, *texts: str, ids=()) -> Callable:
    return lambda s: s.apply_runtime_turn(sid, run, [_msg(t) for t in texts], contributing_input_ids=list(ids))


def _create(sid: str, *texts: str) -> Callable:
    return lambda s: s.create_session(session_id=sid, messages=[_msg(t) for t in texts])


def _bad_turn(sid: str, run: str) -> Callable:
    return lambda s: s.apply_runtime_turn(sid, run, [{"role": "bogus", "content": "x"}])


# A, the first call, appends to "b"; its job blocks until the batch's calls are queued.
FIRST = Call("A", _append("b", "b2", "b3"))

# A session created, turned, deleted and created again under the same id (and row number)
# in one batch: the write path's head memory (engine/heads.py) must forget the deleted one,
# so the last turn is sequence 0 of a transcript of one message.
REBORN = ThreadBatch("threads: create, turn, delete, re-create, turn", FIRST, (
    Call("B", _create("c", "c0")),
    Call("C", _turn("c", "run-1", "c1")),
    Call("D", lambda s: s.delete_session("c")),
    Call("E", _create("c")),
    Call("F", _turn("c", "run-1", "c2"))))
# The group committer's limit at 2: B leads B+C, then D, the oldest left waiting, leads D+E.
SPLIT = ThreadBatch("threads: 4 jobs, batches of 2", FIRST, (
    Call("B", _turn("a", "run-2", "a3")),
    Call("C", _turn("b", "run-2", "b4")),
    Call("D", _append("a", "a4")),
    Call("E", _turn("b", "run-2", "b5"))), max_batch=2)

BATCHES = [
    # Two turns of two sessions, next to each other in the batch: written together
    # (engine/bulk_turns.py). C's session is the one A just wrote: it chains over A's commit.
    ThreadBatch("threads: 2 turns, 2 sessions", FIRST, (
        Call("B", _turn("a", "run-2", "a3", "a4", ids=["in-1"])),
        Call("C", _turn("b", "run-2", "b4")))),
    # A turn and an append of ONE session: the append is planned from the turn's head.
    ThreadBatch("threads: turn + append, 1 session", FIRST, (
        Call("B", _turn("a", "run-2", "a3")),
        Call("C", _append("a", "a4", "a5")))),
    # A turn refused inside the batch (unknown session) next to one that commits.
    ThreadBatch("threads: refused turn + turn", FIRST, (
        Call("B", _turn("missing", "run-2", "x"), refused=engine.SessionNotFoundError),
        Call("C", _turn("a", "run-2", "a3")))),
    # A turn whose message the session's strict profile rejects while the batch plans it,
    # then a turn of the same session: planned from the head without the refused one.
    ThreadBatch("threads: invalid turn + turn, 1 session", FIRST, (
        Call("B", _bad_turn("a", "run-2"), refused=engine.InvalidInputError),
        Call("C", _turn("a", "run-2", "a3")))),
    # The WAL checkpoint due after every commit: A's runs before B is promoted to lead.
    ThreadBatch("threads: 2 turns + checkpoints", FIRST, (
        Call("B", _turn("a", "run-2", "a3")),
        Call("C", _turn("b", "run-2", "b4"))), setup=_checkpoint_every_commit),
    REBORN,
    SPLIT,
]
# Seven jobs from seven threads: two turns written together, an append between, then four
# turns together of which two are refused (a message its profile rejects, an unknown session).
WIDE = ThreadBatch("threads: 7-job batch", FIRST, (
    Call("B", _turn("a", "run-2", "a3")),
    Call("C", _turn("b", "run-2", "b4")),
    Call("D", _append("a", "a4")),
    Call("E", _turn("a", "run-2", "a5")),
    Call("F", _bad_turn("a", "run-3"), refused=engine.InvalidInputError),
    Call("G", _turn("missing", "run-2", "x"), refused=engine.SessionNotFoundError),
    Call("H", _turn("b", "run-2", "b5", ids=["in-2"]))))
IDS = [b.name.split(": ")[1].replace(" + ", "-").replace(" ", "-").replace(",", "") for b in BATCHES]


@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("op", BATCHES, ids=IDS)
def test_fault_at_every_io_index_of_a_thread_batch(op, mode, template, workdir):
    _sweep(op, mode, template, workdir)


@pytest.mark.stress
@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
def test_fault_at_every_io_index_of_a_wide_thread_batch(mode, template, workdir):
    _sweep(WIDE, mode, template, workdir)


@pytest.mark.stress
@pytest.mark.parametrize("only", ONLY, ids=ONLY_IDS)
@pytest.mark.parametrize("mode", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("op", [*BATCHES, WIDE], ids=[*IDS, "7-job-batch"])
def test_fault_at_every_index_of_one_call_kind_of_a_thread_batch(op, mode, only, template, workdir):
    _sweep(op, mode, template, workdir, ops=only)


def _sweep(op, mode, template, workdir, ops=vfs.OPS):
    kind, persistent = mode
    tally = batches.sweep(op, template, workdir, kind, persistent, ops=ops)
    print("\n" + tally.line())
    assert tally.runs == tally.io_count > 0
    # Some fault reached a caller (or the shim is not in the path) ...
    accepted = [name for unit in op.units for name in unit]
    assert any(f"{name}=ok" not in key for key in tally.outcomes for name in accepted), tally.line()
    # ... and a transient one that did never hid a commit (a retry would apply it twice).
    if not persistent:
        assert tally.false_failures == 0, tally.line()


def test_a_session_recreated_in_a_batch_starts_over(template, tmp_path):
    """Fault-free, REBORN's batch answers what a fresh session answers: the last turn is
    sequence 0 of run-1 over one message (the deleted session's heads are forgotten, though
    the new one has its row number), and verify() agrees with the file."""
    path = str(tmp_path / "reborn.db")
    vfs.install()
    harness._fresh(template, path)
    with harness._open(path) as store:
        outcomes, stats = REBORN.run(store)
        REBORN.check_formed(stats)
        receipt = outcomes["F"]
        assert (receipt.sequence, receipt.message_count) == (0, 1), receipt
        assert outcomes["C"].message_count == 2 and outcomes["D"] is True
        assert store.messages("c") == [_msg("c2")]
        assert store.verify().ok
