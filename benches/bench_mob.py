"""A mob on one file, and one agent at the floor (issue rows of group commit and the write path).

- mob.agents<N>: N agents on one event loop, each applying its turns (2 x ~1 KiB dict messages)
  one after the other, all agents at once (asyncio.gather), WAL + synchronous=FULL, one file.
  mobstore: one PersistentSessionService, sessions created through it, apply_runtime_turn
  (messages + receipt + digest state; concurrent calls share commits, docs/group-commit.md).
  openai-agents: N SQLiteSession on the same file, add_items. A round = every agent applies
  MOB_TURNS turns; msgs/s = N x MOB_TURNS x 2 / the round's time.
- single.apply: one agent, Store.apply_runtime_turn of the same turns, against a bare apsw
  transaction inserting the two messages (orjson.dumps of each dict) into a two-column table
  (INTEGER PRIMARY KEY, BLOB), same page size, WAL + synchronous=FULL: the floor of one durable
  write of those bytes.
"""

from __future__ import annotations

import asyncio
import os

import apsw
import orjson
import pytest

import engine
import peers
from conftest import KNOBS, Feed, interleaved, tag, turns
from engine.services import PersistentSessionService

AGENTS = (16, 64)
MOB_TURNS = 2 if KNOBS.quick else 10


class MobstoreMob:
    name = "mobstore"

    def __init__(self, path: str, agents: int):
        self.loop = asyncio.new_event_loop()
        self.service = PersistentSessionService(path, checkpoint_interval=None)
        self.sids = self.loop.run_until_complete(self._create(agents))
        self.applied = 0

    async def _create(self, agents):
        await self.service.__aenter__()
        return [await self.service.create_session() for _ in range(agents)]

    def round(self, turn_lists) -> None:
        async def agent(sid, my_turns):
            for t in my_turns:
                await self.service.apply_runtime_turn(sid, "run", t)

        async def all_agents():
            await asyncio.gather(*(agent(s, ts) for s, ts in zip(self.sids, turn_lists)))

        self.loop.run_until_complete(all_agents())
        self.applied += sum(map(len, turn_lists))

    def count(self) -> int:
        async def total():
            n = 0
            for s in self.sids:
                n += (await self.service.load_persisted_session(s)).message_count
            return n
        return self.loop.run_until_complete(total())

    def close(self) -> None:
        self.loop.run_until_complete(self.service.close())
        self.loop.close()


class OpenAIMob:
    name = "openai-agents"

    def __init__(self, path: str, agents: int):
        cls = peers.openai_session_class()
        self.loop = asyncio.new_event_loop()
        self.sessions = [cls(f"agent-{i}", path) for i in range(agents)]
        async def touch():
            await asyncio.gather(*(s.get_items() for s in self.sessions))

        self.loop.run_until_complete(touch())

        def probe():
            with self.sessions[0]._locked_connection() as conn:
                peers.check_durability(conn, "openai-agents")
        self.loop.run_until_complete(asyncio.to_thread(probe))

    def round(self, turn_lists) -> None:
        async def agent(session, my_turns):
            for t in my_turns:
                await session.add_items(t)

        async def all_agents():
            await asyncio.gather(*(agent(s, ts) for s, ts in zip(self.sessions, turn_lists)))

        self.loop.run_until_complete(all_agents())

    def count(self) -> int:
        async def total():
            n = 0
            for s in self.sessions:
                n += len(await s.get_items())
            return n
        return self.loop.run_until_complete(total())

    def close(self) -> None:
        for s in self.sessions:
            s.close()
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()


MOB_SYSTEMS = {"mobstore": MobstoreMob, "openai-agents": OpenAIMob}


def mob_rounds(agents: int, n_rounds: int) -> list[list[list[list[dict]]]]:
    """n_rounds rounds: for each agent, MOB_TURNS turns (the same for every system)."""
    flat = turns("mob", 1024, agents * MOB_TURNS * n_rounds)
    it = iter(flat)
    return [[[next(it) for _ in range(MOB_TURNS)] for _a in range(agents)] for _r in range(n_rounds)]


@pytest.mark.parametrize("system", list(MOB_SYSTEMS))
@pytest.mark.parametrize("agents", AGENTS)
def test_mob(benchmark, work_dir, agents, system):
    """Neighbours: the other system at the same N, round by round (same machine load)."""
    if system != "mobstore" and system not in KNOBS.peers:
        pytest.skip(f"{system} not in MOBSTORE_BENCH_PEERS")
    peers.openai_session_class()  # skips the mobstore side too when the peer is missing: no ratio
    rounds, warmup = KNOBS.n(3, 6), 1
    fleet = {name: cls(os.path.join(work_dir, f"{name}.db"), agents) for name, cls in MOB_SYSTEMS.items()}
    feeds = {name: Feed(mob_rounds(agents, rounds + warmup)) for name in fleet}
    ops = {name: (lambda s=s, f=feeds[name]: s.round(f.next())) for name, s in fleet.items()}
    benchmark.group = f"mob.agents{agents}"
    tag(benchmark, f"mob.agents{agents}.{system}", agents=agents, turns_per_agent=MOB_TURNS,
        messages=agents * MOB_TURNS * 2, ops=agents * MOB_TURNS * 2, system=system,
        baseline=system == "openai-agents", synchronous="FULL", journal_mode="WAL")
    interleaved(benchmark, ops[system], {k: v for k, v in ops.items() if k != system}, rounds=rounds, warmup=warmup)
    if system == "mobstore":
        benchmark.extra_info["commits"] = fleet["mobstore"].service.batches
    for name, s in fleet.items():
        assert s.count() == 2 * agents * MOB_TURNS * feeds[name].used, name
        s.close()


class Bare:
    """The floor: one apsw transaction inserting the turn's messages, nothing else."""

    def __init__(self, path: str):
        self.con = apsw.Connection(path)
        self.con.execute("PRAGMA page_size = 8192")
        assert self.con.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"
        self.con.execute("PRAGMA synchronous = FULL")
        self.con.execute("CREATE TABLE m (key INTEGER PRIMARY KEY, body BLOB NOT NULL)")
        self.key = 0

    def apply(self, turn) -> None:
        con = self.con
        con.execute("BEGIN IMMEDIATE")
        for m in turn:
            con.execute("INSERT INTO m (key, body) VALUES (?, ?)", (self.key, orjson.dumps(m)))
            self.key += 1
        con.execute("COMMIT")



class Single:
    def __init__(self, path: str):
        self.store = engine.open(path)
        self.sid = self.store.create_session()

    def apply(self, turn) -> None:
        self.store.apply_runtime_turn(self.sid, "run", turn)


@pytest.mark.parametrize("system", ["mobstore", "apsw"])
def test_single_agent(benchmark, work_dir, system):
    rounds, warmup = KNOBS.n(60, 300), 5
    paths = {"mobstore": os.path.join(work_dir, "mobstore.db"), "apsw": os.path.join(work_dir, "bare.db")}
    fleet = {"mobstore": Single(paths["mobstore"]), "apsw": Bare(paths["apsw"])}
    feeds = {k: Feed(turns("single", 1024, rounds + warmup)) for k in fleet}
    ops = {k: (lambda s=s, f=feeds[k]: s.apply(f.next())) for k, s in fleet.items()}
    benchmark.group = "single.apply"
    tag(benchmark, f"single.apply.{system}", messages=2, ops=1, system=system, baseline=system == "apsw",
        synchronous="FULL", journal_mode="WAL")
    interleaved(benchmark, ops[system], {k: v for k, v in ops.items() if k != system}, rounds=rounds, warmup=warmup)
    used = feeds[system].used
    if system == "mobstore":
        assert fleet["mobstore"].store.message_count(fleet["mobstore"].sid) == 2 * used
    # WAL bytes per turn (untimed): 50 more turns with the auto-checkpoint off, so the WAL
    # only grows; includes SQLite's 24-byte frame headers.
    con = fleet[system].store._connection if system == "mobstore" else fleet[system].con
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("PRAGMA wal_autocheckpoint = 0")
    extra = turns("single-wal", 1024, 50)
    for t in extra:
        fleet[system].apply(t)
    benchmark.extra_info["wal_bytes_per_turn"] = os.path.getsize(paths[system] + "-wal") / len(extra)
    con.execute("PRAGMA wal_autocheckpoint = 1000")
