"""Group commit (engine/groupcommit.py): writes of several threads on one Store share one
transaction; each turn is rolled back alone when it fails; every caller is answered only
after the shared COMMIT returned; Store.apply_runtime_turns commits a caller's turns at once.

Batches are made deterministic by holding the store's lock (a reading() scope) while the
writer threads queue up, then releasing it: the first writer leads and takes all the others.
"""

from __future__ import annotations

import asyncio

import threading
import time

import apsw
import pytest

import engine
from engine import InvalidInputError, SessionNotFoundError, StoreError, Turn, digest

from .conftest import fingerprint


def msg(text: str) -> dict:
    return {"role": "user", "content": text, "created_at": "2026-01-01T00:00:00Z"}


def queued(store) -> int:
    with store._group._mutex:
        return len(store._group._queue)


def wait_until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def gathered(store, calls):
    """Run calls (functions of no argument) on one thread each while the store's lock is
    held, so all of them queue; release it; return [(value | exception)] in call order."""
    out: list = [None] * len(calls)

    def worker(i, call):
        try:
            out[i] = call()
        except BaseException as exc:  # noqa: BLE001 - the test inspects it
            out[i] = exc

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(calls)]
    with store.reading():  # holds the store's lock: the first writer waits for it as leader
        for t in threads:
            t.start()
        wait_until(lambda: queued(store) == len(calls) - 1)
    for t in threads:
        t.join(60)
        assert not t.is_alive()
    return out


def test_turns_of_waiting_threads_share_one_commit(store):
    sids = [store.create_session() for _ in range(8)]
    before = store.group_commit_stats
    out = gathered(store, [lambda s=s: store.apply_runtime_turn(s, "r", [msg(s)]) for s in sids])
    after = store.group_commit_stats
    assert after["batches"] - before["batches"] == 1
    assert after["jobs"] - before["jobs"] == 8 and after["largest_batch"] == 8
    for sid, receipt in zip(sids, out):
        assert receipt.message_count == 1 and receipt.sequence == 0
        assert receipt.conversation_digest == digest.transcript_digest([digest.message_bytes(msg(sid))])
        assert store.messages(sid) == [msg(sid)]
    assert store.verify().ok


def test_a_failing_turn_is_rolled_back_alone(store, db_path):
    good = [store.create_session() for _ in range(3)]
    fp_sessions = [store.session(s) for s in good]
    calls = [
        lambda: store.apply_runtime_turn(good[0], "r", [msg("a")]),
        lambda: store.apply_runtime_turn("no-such-session", "r", [msg("x")]),      # fails inside the batch
        lambda: store.apply_runtime_turn(good[1], "r", [b'{"role":"user"}']),      # schema error inside
        lambda: store.apply_runtime_turn(good[2], "r", [msg("c")]),
    ]
    out = gathered(store, calls)
    assert isinstance(out[1], SessionNotFoundError)
    assert isinstance(out[2], InvalidInputError)
    assert out[0].message_count == 1 and out[3].message_count == 1
    assert store.message_count(good[1]) == 0
    assert store.session(good[1]).digest == fp_sessions[1].digest
    assert [e.kind for e in store.events(session_id=good[1])] == ["session_created"]
    assert store.verify().ok


def test_a_job_that_wrote_then_raised_leaves_nothing(store, db_path):
    sid = store.create_session()

    def half_then_boom(con):
        store._append_locked(con, sid, [digest.message_bytes(msg("half"))], 1)
        raise RuntimeError("boom")

    other = store.create_session()
    before = store.message_count(sid)
    out = gathered(store, [lambda: store._write(half_then_boom),
                           lambda: store.apply_runtime_turn(other, "r", [msg("kept")])])
    assert isinstance(out[0], RuntimeError)
    assert out[1].message_count == 1
    assert store.message_count(sid) == before
    assert store.raw_messages(sid) == []
    assert store.verify().ok


def test_a_failed_commit_fails_every_caller_and_writes_nothing(store, db_path):
    sids = [store.create_session() for _ in range(4)]
    store._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = fingerprint(db_path)
    store._connection.set_commit_hook(lambda: True)  # True turns the COMMIT into a rollback
    try:
        out = gathered(store, [lambda s=s: store.apply_runtime_turn(s, "r", [msg(s)]) for s in sids])
    finally:
        store._connection.set_commit_hook(None)
    assert all(isinstance(x, StoreError) for x in out), out
    assert fingerprint(db_path) == before
    # The store goes on working.
    assert store.apply_runtime_turn(sids[0], "r", [msg("after")]).sequence == 0


def test_many_threads_on_one_store(store):
    threads_n, turns_n = 16, 25
    sids = [store.create_session() for _ in range(threads_n)]
    errors: list = []
    receipts: dict[str, list] = {s: [] for s in sids}
    start = threading.Barrier(threads_n)

    def agent(sid):
        try:
            start.wait(30)
            for t in range(turns_n):
                receipts[sid].append(store.apply_runtime_turn(sid, f"run-{t % 3}", [msg(f"{sid}-{t}"), msg("x")]))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    before = store.group_commit_stats
    threads = [threading.Thread(target=agent, args=(s,)) for s in sids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    stats = store.group_commit_stats
    jobs, batches = stats["jobs"] - before["jobs"], stats["batches"] - before["batches"]
    assert jobs == threads_n * turns_n
    assert batches < jobs, stats  # some commits were shared (16 threads, one fsync at a time)
    for sid in sids:
        got = receipts[sid]
        assert [r.message_count for r in got] == [2 * (t + 1) for t in range(turns_n)]
        assert [r.sequence for r in got] == [t // 3 for t in range(turns_n)]
        assert store.messages(sid)[::2] == [msg(f"{sid}-{t}") for t in range(turns_n)]
    assert store.verify().ok


def test_apply_runtime_turns_is_one_commit_and_chains(store):
    a, b = store.create_session(), store.create_session()
    before = store.group_commit_stats["batches"]
    out = store.apply_runtime_turns([
        Turn(a, "r", [msg("1")]),
        (b, "r", [msg("2")], "immediate", ["in-1"]),
        Turn(a, "r", [msg("3"), msg("4")], contributing_input_ids=["x"]),
    ])
    assert store.group_commit_stats["batches"] == before + 1
    assert [(r.run_id, r.sequence, r.message_count) for r in out] == [("r", 0, 1), ("r", 0, 1), ("r", 1, 3)]
    assert out[1].boundary == "immediate" and out[1].contributing_input_ids == ("in-1",)
    assert out[2].conversation_digest == store.transcript_digest(a)
    assert store.receipts(a) == [out[0], out[2]]
    assert store.apply_runtime_turns([]) == []
    assert store.verify().ok


def test_apply_runtime_turns_all_or_nothing(store, db_path):
    a = store.create_session()
    store.apply_runtime_turn(a, "r", [msg("0")])
    store._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = fingerprint(db_path)
    with pytest.raises(SessionNotFoundError, match=r"turns\[1\]"):
        store.apply_runtime_turns([Turn(a, "r", [msg("1")]), Turn("ghost", "r", [msg("2")])])
    with pytest.raises(InvalidInputError, match=r"turns\[2\]"):
        store.apply_runtime_turns([Turn(a, "r", [msg("1")]), Turn(a, "r", []), Turn(a, "", [msg("2")])])
    with pytest.raises(InvalidInputError, match=r"turns\[0\]"):
        store.apply_runtime_turns([Turn(a, "r", [b"{}"])])
    for bad in ("abc", {"session_id": a}, [["a", "r"]], 7):
        with pytest.raises(InvalidInputError):
            store.apply_runtime_turns(bad)
    assert fingerprint(db_path) == before


def test_apply_runtime_turns_return_exceptions(store):
    a, b = store.create_session(), store.create_session()
    out = store.apply_runtime_turns([
        Turn(a, "r", [msg("1")]),
        Turn("ghost", "r", [msg("x")]),
        Turn(b, "r", [b"not json"]),
        Turn(a, "", [msg("y")]),
        Turn(b, "r", [msg("2")]),
    ], return_exceptions=True)
    assert out[0].message_count == 1 and out[4].message_count == 1
    assert isinstance(out[1], SessionNotFoundError)
    assert isinstance(out[2], InvalidInputError)
    assert isinstance(out[3], InvalidInputError)
    assert store.message_count(a) == 1 and store.message_count(b) == 1
    assert store.verify().ok


def test_writes_inside_a_transaction_run_nested(store):
    sid = store.create_session()
    before = store.group_commit_stats["batches"]
    with store.transaction():
        store.apply_runtime_turn(sid, "r", [msg("1")])
        store.apply_runtime_turns([Turn(sid, "r", [msg("2")])])
        assert store.message_count(sid) == 2
    assert store.group_commit_stats["batches"] == before  # no group commit of their own
    with pytest.raises(StoreError, match="reading"):
        with store.reading():
            store.apply_runtime_turn(sid, "r", [msg("3")])
    assert store.message_count(sid) == 2


def test_every_write_api_goes_through_group_commit(store):
    sids: list[str] = []
    calls = [
        lambda: sids.append(store.create_session({"k": 1})) or sids[-1],
        lambda: store.create_session(messages=[msg("m")]),
    ]
    out = gathered(store, calls)
    assert all(isinstance(x, str) for x in out)
    s = out[1]
    out = gathered(store, [lambda: store.append_messages(s, [msg("n")]),
                           lambda: store.set_metadata(s, {"v": 2}),
                           lambda: store.delete_session(out[0])])
    assert out == [2, None, True]
    assert store.session(s).metadata == {"v": 2} and store.session(s).message_count == 2
    assert store.session(sids[0]) is None


def test_closed_and_readonly_stores_fail_every_caller(db_path):
    with engine.open(db_path) as s:
        sid = s.create_session()
    with engine.open(db_path, readonly=True) as ro:
        with pytest.raises(StoreError, match="read-only"):
            ro.apply_runtime_turn(sid, "r", [msg("x")])
    s = engine.open(db_path)
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.apply_runtime_turn(sid, "r", [msg("x")])


def test_busy_file_writer_waits_and_batches(db_path):
    """Another connection holds the write lock: the leader waits on SQLite's busy handler
    while more turns queue behind it; all of them then commit together."""
    with engine.open(db_path) as store:
        sids = [store.create_session() for _ in range(6)]
        other = apsw.Connection(db_path)
        other.execute("BEGIN IMMEDIATE")
        out: list = []
        threads = [threading.Thread(target=lambda s=s: out.append(store.apply_runtime_turn(s, "r", [msg(s)])))
                   for s in sids]
        before = store.group_commit_stats["batches"]
        for t in threads:
            t.start()
        wait_until(lambda: queued(store) == len(sids) - 1)
        other.execute("ROLLBACK")
        other.close()
        for t in threads:
            t.join(60)
        assert len(out) == len(sids)
        assert store.group_commit_stats["batches"] == before + 1
        assert store.verify().ok


# -- the session services: concurrent calls go to the worker as one batch --------------------


async def _blocked_worker(service):
    """Occupy the service's worker until the returned event is set (a batch 'running')."""
    release = threading.Event()
    entered = threading.Event()

    def hold(_store):
        entered.set()
        assert release.wait(30)

    task = asyncio.ensure_future(service._call(hold))
    await asyncio.to_thread(entered.wait, 30)
    return release, task


async def test_service_turns_waiting_on_a_running_batch_share_one_commit(db_path):
    from engine.services import PersistentSessionService

    async with PersistentSessionService(db_path, checkpoint_interval=None) as svc:
        live = [await svc.create_session() for _ in range(3)]
        with engine.open(db_path) as other:  # sessions this service does not hold live
            cold = [other.create_session() for _ in range(3)]
        await svc.append_live(live[0], [msg("buffered")])
        events = await svc.subscribe_session_events(live[0])
        release, holder = await _blocked_worker(svc)
        before_batches = svc.batches
        calls = [svc.apply_runtime_turn(s, "r", [msg(s)]) for s in live + cold]
        calls.append(svc.apply_runtime_turn("ghost", "r", [msg("x")]))
        calls.append(svc.checkpoint(live[1]))
        tasks = [asyncio.ensure_future(c) for c in calls]
        await asyncio.sleep(0.05)
        assert not any(t.done() for t in tasks)  # all waiting behind the running batch
        assert svc.batches == before_batches
        release.set()
        await holder
        out = await asyncio.gather(*tasks, return_exceptions=True)
        assert svc.batches == before_batches + 1  # one hop, one transaction for all of them
        assert isinstance(out[6], SessionNotFoundError)
        assert out[7] is False  # live[1] had nothing to write after its turn
        for sid, result in zip(live + cold, out[:6]):
            assert result.receipt.sequence == 0
        assert out[0].receipt.message_count == 2  # the buffered message went first
        kinds = [(await asyncio.wait_for(events.__anext__(), 5)).kind for _ in range(2)]
        assert kinds == ["messages_appended", "receipt_committed"]
    with engine.open(db_path) as store:
        assert store.verify().ok
        assert [m["content"] for m in store.messages(live[0])] == ["buffered", live[0]]
        for sid in cold:
            assert store.messages(sid) == [msg(sid)]


async def test_service_events_follow_commit_order_across_a_batch(db_path):
    from engine.services import PersistentSessionService

    async with PersistentSessionService(db_path, checkpoint_interval=None) as svc:
        sid = await svc.create_session()
        sub = await svc.subscribe_session_events(sid)
        release, holder = await _blocked_worker(svc)
        tasks = [asyncio.ensure_future(svc.apply_runtime_turn(sid, "r", [msg(str(i))])) for i in range(5)]
        await asyncio.sleep(0.02)
        release.set()
        await holder
        receipts = [o.receipt for o in await asyncio.gather(*tasks)]
        assert [r.sequence for r in receipts] == [0, 1, 2, 3, 4]
        assert [r.message_count for r in receipts] == [1, 2, 3, 4, 5]
        seen = []
        for _ in range(10):
            ev = await asyncio.wait_for(sub.__anext__(), 5)
            seen.append((ev.kind, ev.detail.get("sequence")))
        assert seen == [x for i in range(5) for x in (("messages_appended", None), ("receipt_committed", i))]


async def test_sixteen_agents_on_one_service_share_commits(db_path):
    from engine.services import PersistentSessionService

    agents, turns = 16, 10
    async with PersistentSessionService(db_path, checkpoint_interval=None) as svc:
        sids = [await svc.create_session() for _ in range(agents)]
        first = svc.batches

        async def agent(sid):
            return [(await svc.apply_runtime_turn(sid, "r", [msg(f"{sid}-{t}")])).receipt for t in range(turns)]

        results = await asyncio.gather(*(agent(s) for s in sids))
        batches = svc.batches - first
        assert batches <= agents * turns // 4, batches  # measured: ~turns + a few
        for sid, receipts in zip(sids, results):
            assert [r.message_count for r in receipts] == list(range(1, turns + 1))
    with engine.open(db_path) as store:
        assert store.verify().ok
        for sid in sids:
            assert [m["content"] for m in store.messages(sid)] == [f"{sid}-{t}" for t in range(turns)]


# -- the write path's head memory (engine/heads.py) is never believed when wrong ------------


def test_heads_follow_another_connection(db_path):
    with engine.open(db_path) as a, engine.open(db_path) as b:
        sid = a.create_session()
        for i in range(6):
            writer = (a, b)[i % 2]  # each Store remembers the head it wrote; the other moved it
            r = writer.apply_runtime_turn(sid, "r", [msg(str(i))])
            assert (r.sequence, r.message_count) == (i, i + 1)
            assert r.conversation_digest == a.transcript_digest(sid)
        assert a.verify().ok


def test_heads_forget_a_rolled_back_batch_turn(store):
    sid = store.create_session()
    store.apply_runtime_turn(sid, "r", [msg("0")])
    with pytest.raises(InvalidInputError):  # turn 0 of the batch ran (and was remembered), turn 1 failed
        store.apply_runtime_turns([Turn(sid, "r", [msg("1")]), Turn(sid, "r", [b'{"role":"user"}'])])
    r = store.apply_runtime_turn(sid, "r", [msg("2")])
    assert (r.sequence, r.message_count) == (1, 2)
    assert store.verify().ok and [m["content"] for m in store.messages(sid)] == ["0", "2"]


def test_heads_forget_a_rolled_back_transaction_and_a_failed_commit(store):
    sid = store.create_session()
    store.apply_runtime_turn(sid, "r", [msg("0")])
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.apply_runtime_turn(sid, "r", [msg("gone")])
            raise RuntimeError("roll back")
    store._connection.set_commit_hook(lambda: True)
    with pytest.raises(StoreError):
        store.apply_runtime_turn(sid, "r", [msg("gone too")])
    store._connection.set_commit_hook(None)
    r = store.apply_runtime_turn(sid, "r", [msg("1")])
    assert (r.sequence, r.message_count) == (1, 2)
    assert store.verify().ok


def test_heads_after_rewrites_and_deletes(store):
    sid = store.create_session(session_id="same-id")
    for i in range(4):
        store.apply_runtime_turn(sid, "r", [msg(str(i))])
    store.truncate_messages(sid, 2)
    r = store.apply_runtime_turn(sid, "r", [msg("x")])
    assert r.message_count == 3 and r.conversation_digest == store.transcript_digest(sid)
    store.delete_session(sid)
    store.create_session(session_id="same-id")  # may reuse the row number
    r = store.apply_runtime_turn("same-id", "r", [msg("fresh")])
    assert (r.sequence, r.message_count) == (0, 1)
    assert store.verify().ok
