"""MobstoreSession against the SDK's own SQLiteSession: the per-turn cost of an openai-agents run.

A turn is what Runner.run does to its session in a run with one tool call (counted on
openai-agents 0.24 with a wrapping session): get_items(), add_items([user message]),
add_items([function_call, function_call_output]), add_items([assistant message]) — one read
and three durable commits. Items are openai-agents-shaped (engine.demo has no such
generator; `openai_turns` below makes them from the seed), ~1.3 KiB per turn. Each session
starts with HISTORY items (added in one call, untimed).

Durability is the same on both sides: SQLiteSession as shipped sets journal_mode=WAL and
leaves synchronous at sqlite3's compiled default, which is FULL (2): `check` reads both
pragmas on the connection of the worker thread that does its writes and refuses to measure
otherwise; mobstore's Store opens WAL + synchronous=FULL. Both sides are driven from one event
loop per benchmark and both hop to a worker thread per call (asyncio.to_thread).

- openai_agents.turn.c1.<system>: one session, one turn per round.
- openai_agents.turn.c16.<system>: 16 sessions in one file, each doing one turn
  concurrently (asyncio.gather) per round; per turn = round / 16. SQLiteSession serialises the
  sessions of a file on one lock; MobstoreSession shares one Store (whose commits may batch).

The two systems of a group take turns round by round (conftest.interleaved).
"""

from __future__ import annotations

import asyncio
import json
import os
import random

import pytest

import engine
import peers
from conftest import KNOBS, interleaved, tag

HISTORY = 100
SYSTEMS = ("mobstore", "openai-agents")


def openai_turns(seed: int, count: int) -> list[list[list[dict]]]:
    """`count` turns, each the four add_items batches' worth of openai-agents items."""
    rng = random.Random(seed)
    words = "the a of build test fix patch review merge deploy queue agent session store verify".split()

    def text(n: int) -> str:
        return " ".join(rng.choice(words) for _ in range(n))

    out = []
    for i in range(count):
        call_id = f"call_{seed}_{i}"
        out.append([
            [{"content": text(30), "role": "user"}],
            [{"arguments": json.dumps({"path": f"src/mod_{i}.py", "query": text(8)}), "call_id": call_id,
              "name": "search_code", "type": "function_call", "id": f"fc_{seed}_{i}", "status": "completed"},
             {"call_id": call_id, "output": text(60), "type": "function_call_output"}],
            [{"id": f"msg_{seed}_{i}", "content": [{"annotations": [], "text": text(50), "type": "output_text"}],
              "role": "assistant", "status": "completed", "type": "message"}],
        ])
    return out


def _sdk():
    try:
        from agents.memory import SQLiteSession

        from engine.integrations.openai_agents import MobstoreSession
    except ImportError as exc:
        pytest.skip(f"openai-agents not installed ({exc}); pip install -e '.[openai-agents]'")
    return SQLiteSession, MobstoreSession


class Fleet:
    """`n` sessions of one system in one file, each with HISTORY items, on one event loop."""

    def __init__(self, system: str, work_dir: str, n: int, rounds: int):
        SQLiteSession, MobstoreSession = _sdk()
        self.system, self.n = system, n
        self.loop = asyncio.new_event_loop()
        path = os.path.join(work_dir, f"{system}-c{n}.db")
        self.store = None
        if system == "mobstore":
            self.store = engine.open(path, synchronous="FULL")
            con = self.store._connection
            assert (con.execute("PRAGMA journal_mode").fetchone()[0], con.execute("PRAGMA synchronous").fetchone()[0]) \
                == ("wal", 2)
            self.sessions = [MobstoreSession(f"agent-{i}", self.store) for i in range(n)]
        else:
            self.sessions = [SQLiteSession(f"agent-{i}", path) for i in range(n)]
            for s in self.sessions:
                self.check(s)
        # the same items for both systems: session i gets the turns of seed i
        self.turns = [openai_turns(KNOBS.seed * 100 + i, rounds + 8) for i in range(n)]
        history = [openai_turns(KNOBS.seed * 1000 + i, HISTORY // 4) for i in range(n)]
        for s, h in zip(self.sessions, history):
            self.loop.run_until_complete(s.add_items([item for turn in h for batch in turn for item in batch]))
        self.done = 0

    def check(self, session) -> None:
        def probe():
            with session._locked_connection() as conn:  # the worker thread's own connection
                peers.check_durability(conn, "openai-agents SQLiteSession")
        self.loop.run_until_complete(asyncio.to_thread(probe))

    async def _turn(self, session, batches) -> None:
        await session.get_items()
        for batch in batches:
            await session.add_items(batch)

    async def _round(self, k: int) -> None:
        await asyncio.gather(*(self._turn(s, self.turns[i][k]) for i, s in enumerate(self.sessions)))

    def round(self) -> None:
        k = self.done
        self.done += 1
        self.loop.run_until_complete(self._round(k))

    def finish(self) -> None:
        counts = [len(self.loop.run_until_complete(s.get_items())) for s in self.sessions]
        assert counts == [HISTORY + 4 * self.done] * self.n, counts
        if self.store is not None:
            report = self.store.verify()
            assert report.ok and report.sessions == self.n
        for s in self.sessions:
            s.close()
        if self.store is not None:
            self.store.close()
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("concurrency", (1, 16))
def test_session_turn(benchmark, work_dir, system, concurrency):
    rounds, warmup = KNOBS.n(15, 100) if concurrency == 1 else KNOBS.n(5, 30), 2
    fleets = {name: Fleet(name, os.path.join(work_dir, name), concurrency, rounds + warmup + 2)
              for name in SYSTEMS for _ in [os.makedirs(os.path.join(work_dir, name))]}
    me = fleets[system]
    try:
        tag(benchmark, f"openai_agents.turn.c{concurrency}.{system}", ops=concurrency, history=HISTORY,
            commits_per_turn=3, synchronous="FULL", journal_mode="WAL", baseline=system == "openai-agents")
        benchmark.group = f"openai_agents.turn.c{concurrency}"
        interleaved(benchmark, me.round, {n: f.round for n, f in fleets.items() if n != system},
                    rounds=rounds, warmup=warmup)
    finally:
        for f in fleets.values():
            f.finish()
