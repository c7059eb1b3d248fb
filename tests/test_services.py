"""The async session services (engine/services.py, engine/live.py): the seed's
MobSessionService semantics on both services, adapter identity, checkpointers (skip when
unchanged, cancel during an in-flight save, rearm, discard), event subscriptions, close."""

from __future__ import annotations

import asyncio
import gc
import threading
import weakref

import pytest

import engine
from engine import digest, services
from engine.errors import InvalidInputError, SessionNotFoundError, StoreError
from engine.services import (
    ApplyOutput,
    EphemeralSessionService,
    PersistentSessionService,
    RuntimeAdapter,
    SessionSnapshot,
)

MOB_META = {
    "session_metadata": {
        "comms_name": "mob1/planner/alice",
        "realm_id": "mob:mob1",
        "peer_meta": {"labels": {"mob_id": "mob1", "role": "planner", "meerkat_id": "alice"}},
    }
}


def msg(text: str, role: str = "user") -> dict:
    return {"role": role, "content": text, "created_at": "2026-03-04T05:06:07.123Z"}


def contents(messages) -> list[str]:
    return [m["content"] for m in messages]


def durable_events(path: str, kind: str | None = None, session_id: str | None = None) -> list:
    """The store's durable event log, read through a second connection (as another process would)."""
    with engine.open(path) as store:
        return [e for e in store.events(session_id=session_id) if kind is None or e.kind == kind]


def stored_contents(path: str, session_id: str) -> list[str]:
    with engine.open(path) as store:
        return contents(store.messages(session_id))


class WriteGate:
    """Blocks the service's worker inside the next live writes until released: makes "a save
    is in flight" a deterministic state instead of a timing accident."""

    def __init__(self, service: PersistentSessionService):
        self.entered = asyncio.Event()
        self.release = threading.Event()
        self.calls = 0
        loop = asyncio.get_running_loop()
        original = service._write_live

        def blocking_write(store, *args):
            self.calls += 1
            loop.call_soon_threadsafe(self.entered.set)
            assert self.release.wait(10), "the test never released the write"
            return original(store, *args)

        service._write_live = blocking_write


async def next_event(subscription, timeout: float = 5.0):
    return await asyncio.wait_for(subscription.__anext__(), timeout)


@pytest.fixture
async def ephemeral():
    async with EphemeralSessionService() as service:
        yield service


@pytest.fixture
async def persistent(db_path):
    async with PersistentSessionService(db_path, checkpoint_interval=None) as service:
        yield service


# -- the seed's surface, both services ---------------------------------------------------------


async def test_supports_persistent_sessions(ephemeral, persistent):
    assert ephemeral.supports_persistent_sessions() is False
    assert persistent.supports_persistent_sessions() is True


async def test_create_session_ids(ephemeral, persistent):
    for service in (ephemeral, persistent):
        sid = await service.create_session({"title": "t"})
        assert len(sid) == 36 and sid[14] == "7"  # UUIDv7 text
        assert await service.create_session(session_id="given") == "given"
        with pytest.raises(engine.SessionExistsError):
            await service.create_session(session_id="given")
        with pytest.raises(InvalidInputError):
            await service.create_session("not a dict")


async def test_ephemeral_apply_runtime_turn_persists_nothing(ephemeral):
    sid = await ephemeral.create_session({"title": "t"})
    runs = ["a", "a", "b", "a"]
    outputs = []
    for i, run in enumerate(runs):
        out = await ephemeral.apply_runtime_turn(sid, run, [msg(f"q{i}"), msg(f"r{i}", "system")],
                                                 boundary="immediate", contributing_input_ids=[f"in-{i}"])
        assert isinstance(out, ApplyOutput)
        outputs.append(out)
    assert [o.receipt.sequence for o in outputs] == [0, 1, 0, 2]
    assert [o.receipt.message_count for o in outputs] == [2, 4, 6, 8]
    assert outputs[2].receipt.contributing_input_ids == ("in-2",) and outputs[2].receipt.boundary == "immediate"
    sent = [m for i in range(4) for m in (msg(f"q{i}"), msg(f"r{i}", "system"))]
    # The receipt's digest covers the whole transcript after the apply.
    assert outputs[1].receipt.conversation_digest == digest.transcript_digest(sent[:4], "f3")
    assert outputs[3].receipt.conversation_digest == digest.transcript_digest(sent, "f3")
    snapshot = SessionSnapshot.from_json(outputs[3].session_snapshot)
    assert snapshot.id == sid and snapshot.metadata == {"title": "t"}
    assert snapshot.messages == sent and snapshot.message_count == 8
    assert snapshot.digest == outputs[3].receipt.conversation_digest and snapshot.digest_profile == "f3"
    assert SessionSnapshot.from_json(snapshot.to_json()) == snapshot
    assert len(SessionSnapshot.from_json(outputs[0].session_snapshot).messages) == 2  # a snapshot per turn
    assert await ephemeral.load_persisted_session(sid) is None
    assert ephemeral.path == ":memory:"


async def test_ephemeral_seed_profile_is_bare_hex():
    async with EphemeralSessionService(digest_profile="bare") as service:
        sid = await service.create_session()
        out = await service.apply_runtime_turn(sid, "r", [msg("x")])
        expected = digest.transcript_digest([msg("x")], "bare")
        assert out.receipt.conversation_digest == expected and ":" not in expected


async def test_persistent_apply_runtime_turn_commits_once(persistent, db_path):
    sid = await persistent.create_session()
    other = await persistent.create_session()
    seqs = []
    for i, run in enumerate(["a", "a", "b"]):
        out = await persistent.apply_runtime_turn(sid, run, [msg(f"m{i}")], contributing_input_ids=["x"])
        assert out.session_snapshot is None
        seqs.append(out.receipt.sequence)
    assert seqs == [0, 1, 0]
    assert (await persistent.apply_runtime_turn(other, "a", [msg("o")])).receipt.sequence == 0
    with engine.open(db_path) as store:  # a second connection sees every commit
        receipts = store.receipts(sid)
        assert [(r.run_id, r.sequence, r.message_count) for r in receipts] == [("a", 0, 1), ("a", 1, 2), ("b", 0, 3)]
        assert receipts[-1].conversation_digest == store.transcript_digest(sid)
        assert store.verify().ok
    loaded = await persistent.load_persisted_session(sid)
    assert contents(loaded.messages) == ["m0", "m1", "m2"]
    assert loaded.digest == receipts[-1].conversation_digest


async def test_apply_on_a_session_that_is_not_live_does_not_load_it(db_path):
    with engine.open(db_path) as store:
        sid = store.create_session(messages=[msg(str(i)) for i in range(50)])
    async with PersistentSessionService(db_path, checkpoint_interval=None) as service:
        out = await service.apply_runtime_turn(sid, "r", [msg("50")])
        assert out.receipt.message_count == 51 and out.session_snapshot is None
        assert await service.live_sessions() == []  # no O(session) load for a turn


async def test_apply_runtime_turn_unknown_session_and_bad_input(ephemeral, persistent, db_path):
    for service in (ephemeral, persistent):
        with pytest.raises(SessionNotFoundError):
            await service.apply_runtime_turn("nope", "r", [msg("x")])
        sid = await service.create_session()
        with pytest.raises(InvalidInputError):
            await service.apply_runtime_turn(sid, "r", [msg("x")], boundary="sometime")
        with pytest.raises(InvalidInputError):
            await service.apply_runtime_turn(sid, "r", [msg("x"), {"role": "user"}])
        out = await service.apply_runtime_turn(sid, "r", [msg("ok")])
        assert out.receipt.sequence == 0 and out.receipt.message_count == 1  # the failures consumed nothing
    assert len(durable_events(db_path, "receipt_committed")) == 1


async def test_session_belongs_to_mob(ephemeral, persistent):
    eph = await ephemeral.create_session(MOB_META)
    assert await ephemeral.session_belongs_to_mob(eph, "mob1") is False  # the seed's ephemeral default
    per = await persistent.create_session(MOB_META)
    plain = await persistent.create_session({"session_metadata": {"comms_name": "mob1/planner/alice"}})
    assert await persistent.session_belongs_to_mob(per, "mob1") is True
    assert await persistent.session_belongs_to_mob(per, "mob2") is False
    assert await persistent.session_belongs_to_mob(plain, "mob1") is False
    assert await persistent.session_belongs_to_mob("unknown", "mob1") is False
    for service in (ephemeral, persistent):
        with pytest.raises(InvalidInputError):
            await service.session_belongs_to_mob(per, None)


async def test_load_persisted_session(ephemeral, persistent):
    assert await ephemeral.load_persisted_session("unknown") is None
    eph = await ephemeral.create_session(messages=[msg("a")])
    assert await ephemeral.load_persisted_session(eph) is None
    assert await persistent.load_persisted_session("unknown") is None
    sid = await persistent.create_session({"k": [1, 2]}, messages=[msg("a"), msg("b")])
    loaded = await persistent.load_persisted_session(sid)
    assert (loaded.id, loaded.metadata, contents(loaded.messages)) == (sid, {"k": [1, 2]}, ["a", "b"])
    assert loaded.digest == digest.transcript_digest([msg("a"), msg("b")])


# -- runtime adapters --------------------------------------------------------------------------


async def test_runtime_adapter_identity(db_path, tmp_path):
    async with EphemeralSessionService() as a, EphemeralSessionService() as b, \
            PersistentSessionService(db_path, checkpoint_interval=None) as p, \
            PersistentSessionService(db_path, checkpoint_interval=None) as q:
        adapters = [s.runtime_adapter() for s in (a, b, p, q)]
        assert [s.runtime_adapter() for s in (a, b, p, q)] == adapters  # same object each call
        assert all(x is y for x, y in zip([s.runtime_adapter() for s in (a, b, p, q)], adapters))
        assert len({id(x) for x in adapters}) == 4  # never shared, also not on one file
        assert all(isinstance(x, RuntimeAdapter) for x in adapters)
        assert [x.kind for x in adapters] == ["ephemeral", "ephemeral", "persistent", "persistent"]
        assert adapters[2].service is p
        sid = await p.create_session()
        out = await adapters[2].apply_runtime_turn(sid, "r", [msg("via adapter")])
        assert out.receipt.message_count == 1
        assert contents((await p.load_persisted_session(sid)).messages) == ["via adapter"]


async def test_runtime_adapter_does_not_leak():
    service = EphemeralSessionService()
    adapter = service.runtime_adapter()
    key = id(service)
    service_ref, adapter_ref = weakref.ref(service), weakref.ref(adapter)
    await service.close()
    del service, adapter
    gc.collect()
    assert service_ref() is None and adapter_ref() is None  # the cache kept neither alive
    survivor = EphemeralSessionService()
    survivor.runtime_adapter()  # every lookup prunes dead entries
    assert key not in services._ADAPTERS or services._ADAPTERS[key]()._owner() is survivor


def test_adapter_outliving_its_service_is_never_handed_to_a_new_one():
    # CPython reuses a freed object's memory for the next object of the same size, so a new
    # service very often gets the dead one's id(): the seed's address-keyed cache would hand
    # it the old adapter.
    reused = 0
    for _ in range(50):
        old = EphemeralSessionService()
        old_adapter = old.runtime_adapter()
        address = id(old)
        del old  # no cycles: freed now, without a gc pass
        assert old_adapter._owner() is None
        new = EphemeralSessionService()
        if id(new) == address:
            reused += 1
        new_adapter = new.runtime_adapter()
        assert new_adapter is not old_adapter and new_adapter.service is new
        with pytest.raises(StoreError):
            old_adapter.service
        del new, new_adapter, old_adapter
    assert reused > 0, "no address was reused: the test proved nothing"


# -- live sessions and checkpointers ----------------------------------------------------------


async def test_checkpoint_skips_when_unchanged(persistent, db_path):
    sid = await persistent.create_session({"v": 1})
    assert await persistent.checkpoint(sid) is False  # created = saved once (the seed's create)
    assert await persistent.append_live(sid, [msg("a"), msg("b")]) == 2
    assert stored_contents(db_path, sid) == []  # buffered, not written
    assert await persistent.checkpoint(sid) is True
    assert await persistent.checkpoint(sid) is False
    assert await persistent.checkpoint(sid) is False
    assert stored_contents(db_path, sid) == ["a", "b"]
    # Metadata is part of the fingerprint: a change writes, a change that is undone does not.
    await persistent.set_live_metadata(sid, {"v": 2})
    await persistent.set_live_metadata(sid, {"v": 1})
    assert await persistent.checkpoint(sid) is False
    await persistent.set_live_metadata(sid, {"v": 3})
    assert await persistent.checkpoint(sid) is True
    assert (await persistent.load_persisted_session(sid)).metadata == {"v": 3}
    writes = durable_events(db_path, "checkpoint_written", sid)
    assert [(e.detail["flushed"], e.detail["metadata"], e.detail["message_count"]) for e in writes] == [
        (2, False, 2), (0, True, 2)]
    assert await persistent.checkpoint("not-live") is False


async def test_append_live_validates_now(persistent, db_path):
    sid = await persistent.create_session()
    await persistent.append_live(sid, [msg("a")])
    with pytest.raises(InvalidInputError):
        await persistent.append_live(sid, [msg("b"), {"role": "user"}])
    with pytest.raises(InvalidInputError):
        await persistent.set_live_metadata(sid, {"session_metadata": {"comms_name": 7}})
    assert contents(await persistent.live_messages(sid)) == ["a"]
    with pytest.raises(SessionNotFoundError):
        await persistent.append_live("unknown", [msg("x")])
    assert await persistent.checkpoint(sid) is True and stored_contents(db_path, sid) == ["a"]


async def test_apply_on_a_live_session_writes_the_buffer_first_in_one_transaction(persistent, db_path):
    sid = await persistent.create_session()
    await persistent.append_live(sid, [msg("buffered")])
    await persistent.set_live_metadata(sid, MOB_META)
    out = await persistent.apply_runtime_turn(sid, "r", [msg("turn")])
    assert out.receipt.message_count == 2
    assert out.receipt.conversation_digest == digest.transcript_digest([msg("buffered"), msg("turn")])
    assert stored_contents(db_path, sid) == ["buffered", "turn"]
    assert await persistent.session_belongs_to_mob(sid, "mob1") is True  # the live metadata went with it
    assert await persistent.checkpoint(sid) is False  # nothing left to write
    assert contents(await persistent.live_messages(sid)) == ["buffered", "turn"]
    assert durable_events(db_path, "checkpoint_written") == []


async def test_cancel_while_a_save_is_in_flight(persistent, db_path):
    sid = await persistent.create_session()
    other = await persistent.create_session()
    await persistent.append_live(sid, [msg("first")])
    gate = WriteGate(persistent)
    in_flight = asyncio.create_task(persistent.checkpoint(sid))
    await asyncio.wait_for(gate.entered.wait(), 5)  # the save is past the gate, inside the worker
    assert await persistent.cancel_all_checkpointers() == 2
    gate.release.set()
    assert await in_flight is True  # the in-flight save completed
    assert stored_contents(db_path, sid) == ["first"]
    await persistent.append_live(sid, [msg("second")])
    await persistent.append_live(other, [msg("other")])
    assert await persistent.checkpoint(sid) is False  # later saves are no-ops
    assert await persistent.checkpoint(other) is False
    assert gate.calls == 1 and stored_contents(db_path, sid) == ["first"]
    assert await persistent.rearm_all_checkpointers() == 2
    assert await persistent.checkpoint(sid) is True
    assert await persistent.checkpoint(other) is True
    assert stored_contents(db_path, sid) == ["first", "second"] and stored_contents(db_path, other) == ["other"]
    assert len(durable_events(db_path, "checkpoint_written")) == 3


async def test_apply_runtime_turn_is_not_gated(persistent, db_path):
    sid = await persistent.create_session()
    await persistent.append_live(sid, [msg("buffered")])
    await persistent.cancel_all_checkpointers()
    assert await persistent.checkpoint(sid) is False
    out = await persistent.apply_runtime_turn(sid, "r", [msg("turn")])
    assert out.receipt.message_count == 2 and stored_contents(db_path, sid) == ["buffered", "turn"]


async def test_discard_then_load_persisted_session(persistent, db_path):
    sid = await persistent.create_session(messages=[msg("stored")])
    await persistent.append_live(sid, [msg("buffered")])
    assert contents(await persistent.live_messages(sid)) == ["stored", "buffered"]
    assert await persistent.discard_live_session(sid) is True
    assert await persistent.discard_live_session(sid) is False
    assert await persistent.live_sessions() == []
    assert await persistent.checkpoint(sid) is False
    loaded = await persistent.load_persisted_session(sid)
    assert contents(loaded.messages) == ["stored"]  # the persisted session stays, the buffer is gone
    # Using it again loads a fresh live copy from the store.
    assert await persistent.append_live(sid, [msg("again")]) == 2
    assert await persistent.checkpoint(sid) is True
    assert stored_contents(db_path, sid) == ["stored", "again"]


async def test_discard_while_cancelled_is_not_rearmed(persistent, db_path):
    kept = await persistent.create_session()
    dropped = await persistent.create_session()
    assert await persistent.cancel_all_checkpointers() == 2
    await persistent.append_live(dropped, [msg("lost")])
    assert await persistent.discard_live_session(dropped) is True
    assert await persistent.rearm_all_checkpointers() == 1  # only the session still live
    assert await persistent.live_sessions() == [kept]
    assert await persistent.checkpoint(dropped) is False
    assert stored_contents(db_path, dropped) == []


async def test_ephemeral_live_and_checkpointer_calls(ephemeral):
    sid = await ephemeral.create_session()
    assert await ephemeral.append_live(sid, [msg("a")]) == 1
    await ephemeral.set_live_metadata(sid, {"x": 1})
    assert contents(await ephemeral.live_messages(sid)) == ["a"]
    assert await ephemeral.checkpoint(sid) is False
    assert await ephemeral.cancel_all_checkpointers() == 0
    assert await ephemeral.rearm_all_checkpointers() == 0
    assert await ephemeral.live_sessions() == [sid]
    assert await ephemeral.discard_live_session(sid) is True
    assert await ephemeral.discard_live_session(sid) is False
    assert await ephemeral.live_sessions() == []
    with pytest.raises(SessionNotFoundError):
        await ephemeral.apply_runtime_turn(sid, "r", [msg("b")])


async def test_periodic_checkpointer(db_path):
    async with PersistentSessionService(db_path, checkpoint_interval=0.01) as service:
        sid = await service.create_session()
        events = await service.subscribe_session_events(sid)
        await service.append_live(sid, [msg("a")])
        assert (await next_event(events)).kind == "messages_appended"
        written = await next_event(events)
        assert (written.kind, written.detail["reason"], written.detail["message_count"]) == (
            "checkpoint_written", "periodic", 1)
        for _ in range(5):  # several idle ticks write nothing
            await asyncio.sleep(0.01)
    assert len(durable_events(db_path, "checkpoint_written")) == 1
    assert stored_contents(db_path, sid) == ["a"]


async def test_close_flushes_live_sessions_unless_cancelled(db_path):
    service = PersistentSessionService(db_path, checkpoint_interval=None)
    cancelled = await service.create_session()
    await service.append_live(cancelled, [msg("dropped")])
    assert await service.cancel_all_checkpointers() == 1
    # A session that becomes live after the cancel has a fresh, armed gate (as in the seed).
    late = await service.create_session()
    await service.append_live(late, [msg("late")])
    await service.set_live_metadata(late, {"at": "close"})
    await service.close()
    await service.close()  # idempotent
    assert service.closed
    assert stored_contents(db_path, late) == ["late"]
    assert stored_contents(db_path, cancelled) == []
    with engine.open(db_path) as store:
        assert store.session(late).metadata == {"at": "close"}
    assert [(e.session_id, e.detail["reason"]) for e in durable_events(db_path, "checkpoint_written")] == [
        (late, "close")]
    with pytest.raises(StoreError):
        await service.create_session()
    with pytest.raises(StoreError):
        await service.apply_runtime_turn(late, "r", [msg("x")])
    with pytest.raises(StoreError):
        await service.subscribe_session_events(late)


async def test_close_waits_for_a_save_in_flight(db_path):
    service = PersistentSessionService(db_path, checkpoint_interval=None)
    sid = await service.create_session()
    await service.append_live(sid, [msg("a")])
    gate = WriteGate(service)
    in_flight = asyncio.create_task(service.checkpoint(sid))
    await asyncio.wait_for(gate.entered.wait(), 5)
    closing = asyncio.create_task(service.close())
    await asyncio.sleep(0)
    assert not closing.done()
    gate.release.set()
    await closing
    assert await in_flight is True
    assert gate.calls == 1  # the final checkpoint found nothing changed
    assert stored_contents(db_path, sid) == ["a"]


async def test_caller_cancelled_during_a_commit_does_not_write_twice(persistent, db_path):
    sid = await persistent.create_session()
    await persistent.append_live(sid, [msg("buffered")])
    gate = WriteGate(persistent)
    caller = asyncio.create_task(persistent.apply_runtime_turn(sid, "r", [msg("turn")]))
    await asyncio.wait_for(gate.entered.wait(), 5)
    caller.cancel()
    gate.release.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await persistent._drain()
    assert await persistent.checkpoint(sid) is False  # the live copy saw the commit
    assert contents(await persistent.live_messages(sid)) == ["buffered", "turn"]
    assert stored_contents(db_path, sid) == ["buffered", "turn"]


async def test_store_work_never_runs_on_the_loop_thread(db_path):
    loop_thread = threading.get_ident()
    seen = []
    service = PersistentSessionService(db_path, checkpoint_interval=None)
    original = service._worker._run_batch

    def spy(jobs):
        seen.extend(threading.get_ident() for _ in jobs)
        return original(jobs)

    service._worker._run_batch = spy
    async with service:
        sid = await service.create_session(MOB_META)
        await service.append_live(sid, [msg("a")])
        await service.checkpoint(sid)
        await service.apply_runtime_turn(sid, "r", [msg("b")])
        await service.session_belongs_to_mob(sid, "mob1")
        await service.load_persisted_session(sid)
        await service.discard_live_session(sid)
        await service.append_live(sid, [msg("c")])
    assert len(seen) >= 8 and loop_thread not in seen
    assert len(set(seen)) == 1  # one worker per service


# -- events ------------------------------------------------------------------------------------


async def test_events_in_order_and_end_on_close(db_path):
    service = PersistentSessionService(db_path, checkpoint_interval=None)
    sid = await service.create_session()
    other = await service.create_session()
    events = await service.subscribe_session_events(sid)
    with pytest.raises(SessionNotFoundError):
        await service.subscribe_session_events("unknown")
    await service.append_live(sid, [msg("a"), msg("b")])
    await service.append_live(other, [msg("not mine")])
    await service.checkpoint(sid)
    await service.apply_runtime_turn(sid, "run", [msg("c")])
    await service.discard_live_session(sid)
    await service.append_live(sid, [msg("d")])  # live again
    await service.close()  # flushes "d", then ends the subscription
    got = [e async for e in events]
    assert [e.kind for e in got] == [
        "messages_appended", "checkpoint_written", "messages_appended", "receipt_committed",
        "live_session_discarded", "messages_appended", "checkpoint_written"]
    assert [e.seq for e in got] == sorted(e.seq for e in got) and len({e.seq for e in got}) == len(got)
    assert {e.session_id for e in got} == {sid}
    assert got[0].detail == {"appended": 2, "message_count": 2, "persisted": False}
    assert (got[3].detail["sequence"], got[3].detail["message_count"]) == (0, 3)
    assert got[6].detail["reason"] == "close"
    assert [e async for e in events] == []  # stays ended


async def test_ephemeral_events_and_unsubscribe():
    service = EphemeralSessionService()
    sid = await service.create_session()
    a = await service.subscribe_session_events(sid)
    b = await service.subscribe_session_events(sid)
    await service.append_live(sid, [msg("x")])
    b.close()
    await service.apply_runtime_turn(sid, "r", [msg("y")])
    await service.discard_live_session(sid)
    await service.close()
    assert [e.kind for e in [e async for e in a]] == [
        "messages_appended", "messages_appended", "receipt_committed", "live_session_discarded"]
    assert [e.kind for e in [e async for e in b]] == ["messages_appended"]


# -- two services, one file --------------------------------------------------------------------


async def test_two_services_on_one_file_share_nothing_live(db_path):
    async with PersistentSessionService(db_path, checkpoint_interval=None) as one, \
            PersistentSessionService(db_path, checkpoint_interval=None) as two:
        assert one.runtime_adapter() is not two.runtime_adapter()
        sid = await one.create_session()
        assert await one.live_sessions() == [sid] and await two.live_sessions() == []
        await one.append_live(sid, [msg("one-1")])
        assert await two.append_live(sid, [msg("two-1")]) == 1  # its own live copy
        assert contents(await one.live_messages(sid)) == ["one-1"]
        assert await two.checkpoint(sid) is True
        # one's copy is now behind the store: its next commit rebases, losing nothing.
        out = await one.apply_runtime_turn(sid, "r", [msg("one-turn")])
        assert out.receipt.message_count == 3
        assert stored_contents(db_path, sid) == ["two-1", "one-1", "one-turn"]
        assert contents(await one.live_messages(sid)) == ["two-1", "one-1", "one-turn"]
        assert await one.checkpoint(sid) is False
        await one.discard_live_session(sid)
        assert await two.live_sessions() == [sid]  # one's discard is not two's
        with engine.open(db_path) as store:
            assert store.verify().ok


async def test_constructor_arguments(db_path):
    with pytest.raises(InvalidInputError):
        PersistentSessionService(":memory:")
    with pytest.raises(InvalidInputError):
        PersistentSessionService(db_path, checkpoint_interval=0)
    with pytest.raises(InvalidInputError):
        EphemeralSessionService(digest_profile="f9")
    with pytest.raises(StoreError):
        async with PersistentSessionService("/nonexistent-dir/x.db"):
            pass
