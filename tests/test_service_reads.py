"""The services' store reads (list, delete, receipts, verify, membership, reconcile, mobs)
and a persistent service's subscriptions seeing what another process writes."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

import engine
from engine.demo import mob_metadata
from engine.services import EphemeralSessionService, PersistentSessionService

USER = {"role": "user", "content": "hi", "created_at": "2026-03-04T05:06:07Z"}


async def next_event(subscription, timeout: float = 5.0):
    return await asyncio.wait_for(subscription.__anext__(), timeout)


@pytest.mark.parametrize("kind", ["ephemeral", "persistent"])
async def test_reads_and_delete(kind, db_path):
    service = EphemeralSessionService() if kind == "ephemeral" else PersistentSessionService(db_path)
    async with service:
        a = await service.create_session(mob_metadata("crew", "coder", "a"))
        b = await service.create_session(mob_metadata("crew", "coder", "b"))
        other = await service.create_session()
        out = await service.apply_runtime_turn(a, "run-1", [USER])
        assert [s.id for s in await service.list_sessions()] == [other, b, a]
        assert [s.id for s in await service.list_sessions(mob_id="crew", limit=1)] == [b]
        assert await service.receipts(a) == [out.receipt]
        assert (await service.receipts())[0].session_id == a
        report = await service.verify()
        assert report.ok and report.receipts_ok == 1
        assert [m.meerkat_id for m in await service.mob_members("crew")] == ["a", "b"]
        rec = await service.reconcile_mob("crew", [("coder", "a"), ("coder", "c")])
        assert rec.missing == (("coder", "c"),) and [m.meerkat_id for m in rec.unexpected] == ["b"]
        assert [(m.mob_id, m.members) for m in await service.mobs()] == [("crew", 2)]
        subscription = await service.subscribe_session_events(b)
        assert await service.delete_session(b) is True
        if kind == "persistent":  # the live copy is discarded first, then the stored session deleted
            assert (await next_event(subscription)).kind == "live_session_discarded"
        assert (await next_event(subscription)).kind == "session_deleted"
        assert await service.delete_session(b) is False
        assert [s.id for s in await service.list_sessions()] == [other, a]
        if kind == "persistent":
            assert b not in await service.live_sessions()  # the live copy went with it


async def test_deleted_live_session_is_not_resurrected_by_close(db_path):
    async with PersistentSessionService(db_path, checkpoint_interval=None) as service:
        sid = await service.create_session()
        await service.append_live(sid, [USER])  # buffered, not yet written
        assert await service.delete_session(sid)
    with engine.open(db_path) as store:
        assert store.session(sid) is None


WRITER = """
import sys, engine
with engine.open(sys.argv[1]) as s:
    s.apply_runtime_turn(sys.argv[2], "other-run", [{"role": "user", "content": "from elsewhere"}])
    s.set_metadata(sys.argv[2], {"k": 1})
"""


async def test_subscription_sees_another_process(db_path):
    async with PersistentSessionService(db_path, event_poll_interval=0.02) as service:
        sid = await service.create_session()
        mine = await service.create_session()
        subscription = await service.subscribe_session_events(sid)
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", WRITER, db_path, sid)
        assert await proc.wait() == 0
        await service.apply_runtime_turn(sid, "own-run", [USER])
        got = [await next_event(subscription) for _ in range(4)]
        own = [e for e in got if not e.detail.get("external")]
        external = [e for e in got if e.detail.get("external")]
        # the other process's turn and metadata change, from the durable log, exactly once
        assert [(e.kind, e.detail.get("run_id")) for e in external] == [("receipt_committed", "other-run"),
                                                                         ("metadata_changed", None)]
        assert external[0].detail["log_seq"] < external[1].detail["log_seq"]
        # our own turn arrives in-process only (messages_appended + receipt_committed), not twice
        assert [e.kind for e in own] == ["messages_appended", "receipt_committed"]
        await asyncio.sleep(0.1)
        assert subscription._queue.empty()
        # events of other sessions, and events older than the subscription, are not delivered
        other = await service.subscribe_session_events(mine)
        await asyncio.sleep(0.1)
        assert other._queue.empty()


def test_event_writer_names_the_connection(db_path):
    with engine.open(db_path) as one, engine.open(db_path) as two:
        a = one.create_session()
        two.append_messages(a, [USER])
        events = one.events()
        assert events[0].writer == one._writer_id and events[1].writer == two._writer_id
        assert one._writer_id != two._writer_id
        assert events[0].writer.split(":")[0] == str(__import__("os").getpid())


def test_cli_subprocess_events_have_writers(db_path):
    with engine.open(db_path) as s:
        sid = s.create_session()
    subprocess.run([sys.executable, "-c", WRITER, db_path, sid], check=True, timeout=60)
    with engine.open(db_path, readonly=True) as s:
        writers = {e.writer for e in s.events()}
    assert len(writers) == 2 and None not in writers
