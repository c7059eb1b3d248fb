"""Mob membership (the membership rows of docs/performance.md) and "sessions of mob G" against the peers.

The membership stores (conftest.mob_store) hold N sessions with metadata: mob-0000 has
MOBSTORE_BENCH_MEMBERS valid members and 10 broken claims, the rest are spread over mobs
of 1,000, with ~1% broken claims and ~5% sessions without mob metadata, in shuffled order.
Benchmarks only read them, so they open the cached file itself.

- membership.belongs.n<N>: session_belongs_to_mob over a pool of 1,000 ids (half members),
  100 per round, against a bare apsw primary-key lookup of the same ids in the same table
  (ms_bindings), on the store's own connection.
- membership.members.n<N>: mob_members against the naive way: list the session ids, load
  each one's metadata by primary key, parse it (orjson) and check the rule in Python. That
  is the cheapest form of the naive loop (no Session objects, no digests), so the ratio is
  conservative. MOBSTORE_BENCH_NAIVE_WAY_LIMIT=k times it on the first k sessions only and
  extrapolates linearly (said so in the results).
- membership.reconcile: reconcile_mob with a roster (2 missing, 2 unexpected, 10 broken).
- peers.mob_query: "sessions of mob G" among MOBSTORE_BENCH_PEER_SESSIONS sessions of one
  turn each, G with MOBSTORE_BENCH_PEER_MOB_SIZE members, each system the best way its API
  allows (benches/peers.py says how).
"""

from __future__ import annotations

import os
import sqlite3

import orjson
import pytest

import engine
import peers
from conftest import (
    BASE_MS, KNOBS, TARGET_MOB, cached_file, interleaved, mob_layout, mob_store, rotating, seeded, tag, turns,
    write_history_session,
)

SESSIONS = KNOBS.sessions
MEMBERS = KNOBS.members
PER_ROUND = 100  # lookups per timed round (the pool of 1,000 ids in ten rounds)


def open_mobs(n: int):
    store = engine.open(mob_store(n, MEMBERS))
    return store, mob_layout(n, MEMBERS)


def as_set(members) -> set[tuple[str, str, str]]:
    return {(m.session_id, m.profile, m.meerkat_id) for m in members}


@pytest.mark.parametrize("system", ["mobstore", "apsw_pk"])
@pytest.mark.parametrize("n", SESSIONS)
def test_belongs(benchmark, n, system):
    store, layout = open_mobs(n)
    rng = seeded("belongs", n)
    members = sorted(sid for sid, _p, _m in layout.target_members)
    pool = rng.sample(members, min(500, len(members)))
    pool += rng.sample(layout.session_ids, 1000 - len(pool))
    expected = [sid in {m[0] for m in layout.target_members} for sid in pool]
    assert [store.session_belongs_to_mob(sid, TARGET_MOB) for sid in pool] == expected
    con = store._connection
    belongs = store.session_belongs_to_mob
    sql = "SELECT 1 FROM ms_bindings WHERE session_id = ?"
    ops = {
        "mobstore": rotating(pool, PER_ROUND, lambda sid: belongs(sid, TARGET_MOB)),
        "apsw_pk": rotating(pool, PER_ROUND, lambda sid: con.execute(sql, (sid,)).fetchone()),
    }
    benchmark.group = f"membership.belongs.n{n}"
    tag(benchmark, f"membership.belongs.n{n}.{system}", sessions=n, ops=PER_ROUND, baseline=system == "apsw_pk")
    out = interleaved(benchmark, ops[system], {k: v for k, v in ops.items() if k != system},
                      rounds=KNOBS.n(100, 300), warmup=10)
    assert len(out) == PER_ROUND
    store.close()


def naive_way(con, mob: str, limit: int | None):
    """The naive loop: list sessions, then load and check each one's metadata in Python."""
    sql = "SELECT id FROM ms_sessions ORDER BY created_at_ms, num" + (" LIMIT ?" if limit else "")
    ids = [row[0] for row in con.execute(sql, (limit,) if limit else ())]
    out = []
    for sid in ids:
        (md,) = con.execute("SELECT metadata_json FROM ms_sessions WHERE id = ?", (sid,)).fetchone()
        hit = peers.seed_rule(orjson.loads(md), mob)
        if hit is not None:
            out.append((sid, *hit))
    return out


@pytest.mark.parametrize("system", ["mobstore", "naive_way"])
@pytest.mark.parametrize("n", SESSIONS)
def test_members(benchmark, n, system):
    store, layout = open_mobs(n)
    benchmark.group = f"membership.members.n{n}"
    if system == "mobstore":
        tag(benchmark, f"membership.members.n{n}.mobstore", sessions=n, members=MEMBERS, ops=1)
        out = benchmark.pedantic(store.mob_members, (TARGET_MOB,), rounds=KNOBS.n(30, 100), warmup_rounds=3)
        assert as_set(out) == layout.target_members
    else:
        limit = KNOBS.naive_way_limit if 0 < KNOBS.naive_way_limit < n else None
        scanned = limit or n
        tag(benchmark, f"membership.members.n{n}.naive_way", sessions=n, members=MEMBERS, ops=1, scanned=scanned,
            scale=n / scanned, baseline=True)
        rounds = KNOBS.n(3, 3) if scanned > 100_000 else KNOBS.n(5, 10)
        out = benchmark.pedantic(naive_way, (store._connection, TARGET_MOB, limit), rounds=rounds)
        if limit is None:
            assert set(out) == layout.target_members
    store.close()


@pytest.mark.benchmark(group="membership.reconcile")
@pytest.mark.parametrize("n", SESSIONS)
def test_reconcile(benchmark, n):
    store, layout = open_mobs(n)
    tag(benchmark, f"membership.reconcile.n{n}", sessions=n, members=MEMBERS, ops=1)
    rec = benchmark.pedantic(store.reconcile_mob, (TARGET_MOB, layout.roster), rounds=KNOBS.n(10, 30),
                             warmup_rounds=2)
    assert as_set(rec.members) == layout.target_members
    assert len(rec.missing) == 2 and len(rec.unexpected) == 2 and len(rec.broken) == 10 and not rec.duplicates
    store.close()


# ------------------------------------------------------------------------------------------
# peers: sessions of mob G among 10,000 sessions of one turn each


def peer_sessions():
    """(layout, per-session turn): the same sessions, metadata and turns for every system."""
    n, g = KNOBS.peer_sessions, KNOBS.peer_mob_size
    layout = mob_layout(n, g, g)
    pool = turns("peerpool", 1024, 50)
    return layout, [pool[i % len(pool)] for i in range(len(layout.session_ids))]


def build_mobstore_peer(path: str) -> None:
    """Sessions of one turn each, rows exactly as create_session + apply_runtime_turn write them."""
    layout, session_turns = peer_sessions()
    memo: dict = {}
    with engine.open(path, synchronous="OFF") as store:
        with store.transaction() as con:
            for i, (sid, md, turn) in enumerate(zip(layout.session_ids, layout.metadata, session_turns)):
                write_history_session(con, i + 1, sid, md, [turn], BASE_MS + i, memo)


def openai_id(sid: str, md: dict) -> str:
    """openai-agents has no metadata: the comms_name goes in front of the session id."""
    name = (md.get("session_metadata") or {}).get("comms_name")
    return f"{name}|{sid}" if name else sid


def build_peer(system: str, path: str) -> None:
    layout, session_turns = peer_sessions()
    rows = list(zip(layout.session_ids, session_turns, layout.metadata))
    if system == "mobstore":
        build_mobstore_peer(path)
    elif system == "openai-agents":
        peers.build_openai_sessions(path, [(openai_id(sid, md), turn) for sid, turn, md in rows])
    elif system == "langgraph":
        peers.build_langgraph_sessions(path, [(sid, turn, peers.langgraph_metadata(md)) for sid, turn, md in rows])
    else:
        peers.build_naive_sessions(path, rows)


def peer_store(system: str) -> str:
    from importlib import metadata

    version = "" if system in ("mobstore", "naive") else metadata.version(
        {"openai-agents": "openai-agents", "langgraph": "langgraph-checkpoint-sqlite"}[system])
    name = f"peers-{system}{version}-n{KNOBS.peer_sessions}-g{KNOBS.peer_mob_size}"
    return cached_file(name, lambda p: build_peer(system, p))


@pytest.mark.benchmark(group="peers.mob_query")
@pytest.mark.parametrize("system", ["mobstore", "openai-agents", "langgraph", "naive"])
def test_peer_mob_query(benchmark, system):
    if system != "mobstore" and system not in KNOBS.peers:
        pytest.skip(f"{system} not in MOBSTORE_BENCH_PEERS")
    if system == "openai-agents":
        peers.openai_session_class()  # skips when not installed
    elif system == "langgraph":
        peers._langgraph()
    layout, _turns = peer_sessions()
    path = peer_store(system)
    closer = None
    if system == "mobstore":
        store = engine.open(path)
        closer = store.close

        def query():
            return [(m.session_id, m.profile, m.meerkat_id) for m in store.mob_members(TARGET_MOB)]
    elif system == "openai-agents":
        conn = sqlite3.connect(path)
        closer = conn.close

        def query():
            return peers.openai_mob_query(conn, TARGET_MOB)
    elif system == "langgraph":
        lg = peers.LangGraph(path, "query")
        closer = lg.close

        def query():
            return peers.langgraph_mob_query(lg.saver, TARGET_MOB)
    else:
        naive = peers.Naive(path)
        closer = naive.close

        def query():
            return naive.members(TARGET_MOB)

    found = query()
    expected = layout.target_members
    if system == "openai-agents":
        got = {(sid.split("|", 1)[1], p, m) for sid, p, m in found}
        wrong = len(got - expected)
        note = f"session-id prefix only: {len(got)} found, {wrong} of them broken claims" if wrong else "session-id prefix"
    else:
        got, note = set(found), ""
    if system != "openai-agents":
        assert got == expected, (system, len(got), len(expected))
    else:
        assert expected <= got
    tag(benchmark, f"membership.peers.{system}", sessions=KNOBS.peer_sessions, members=len(expected),
        found=len(got), ops=1, note=note, baseline=system == "naive")
    benchmark.pedantic(query, rounds=KNOBS.n(10, 30), warmup_rounds=1)
    if closer:
        closer()
    assert os.path.exists(path)
