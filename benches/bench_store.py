"""The store against its peers on the same generated turns (docs/performance.md).

- peers.append.h<H>: the per-turn cost of appending one turn (2 × ~1 KiB messages) to a
  session that already holds H messages, one durable transaction per turn, WAL +
  synchronous=FULL everywhere. mobstore does apply_runtime_turn (messages + digest state +
  receipt + events); "mobstore-append" is append_messages alone (no receipt) for scale.
  The peers' histories are built through their own APIs in one call; mobstore's is the
  cached history fixture (with its receipts and events, so mobstore carries more rows).
- peers.load: read back a 4,000-message session as a list of dicts.
- peers.disk: append N messages turn by turn to an empty store (timed once, FULL), close,
  and divide the growth of the file by N; against the raw message JSON (compact, as
  engine.digest.message_bytes writes it: the smallest honest "raw"). The whole file (with the
  fixed cost of an empty store) is recorded too.

Plus a plain test that the bulk fixture builders write exactly what the API writes.
"""

from __future__ import annotations

import os

import pytest

import engine
import peers
from conftest import (
    BASE_MS, HISTORY_SESSION, KNOBS, Feed, build_history_store, build_mob_store, copy_db, file_bytes,
    history_metadata, history_store, interleaved, messages, mob_layout, settle, tag, turns, write_history_session,
)
from engine import digest

SYSTEMS = ("mobstore", "mobstore-append", "openai-agents", "langgraph", "naive")


def enabled(system: str) -> None:
    base = "mobstore" if system.startswith("mobstore") else system.split("-on-")[0]
    if base != "mobstore" and base not in KNOBS.peers:
        pytest.skip(f"{base} not in MOBSTORE_BENCH_PEERS")


def history_messages(h: int) -> list[dict]:
    """The messages of the cached mobstore history of length h (same stream, same order)."""
    return list(messages("history", 1024, h))


class MobstoreSystem:
    def __init__(self, work_dir: str, h: int, *, receipts: bool = True):
        self.path = copy_db(history_store(h), work_dir, "mobstore.db")
        self.store = engine.open(self.path, synchronous="FULL")
        con = self.store._connection
        assert (con.execute("PRAGMA journal_mode").fetchone()[0], con.execute("PRAGMA synchronous").fetchone()[0]) \
            == ("wal", 2)
        self.receipts = receipts

    def check(self) -> None:
        pass

    def append_turn(self, turn):
        if self.receipts:
            self.store.apply_runtime_turn(HISTORY_SESSION, "bench-run", turn)
        else:
            self.store.append_messages(HISTORY_SESSION, turn)

    def load(self):
        return self.store.messages(HISTORY_SESSION)

    def close(self):
        self.store.close()


def open_system(system: str, work_dir: str, h: int):
    """A store of `system` holding one session with the first h history messages."""
    if system in ("mobstore", "mobstore-append"):
        return MobstoreSystem(work_dir, h, receipts=system == "mobstore")
    history = history_messages(h)
    path = os.path.join(work_dir, f"{system}.db")
    if system == "openai-agents":
        s = peers.OpenAIAgents(path)
        s.append_turn(history)  # one add_items call holding the whole history
    elif system == "langgraph":
        s = peers.LangGraph(path)
        s.append_turn(history)  # one checkpoint holding the whole history
    elif system == "naive":
        s = peers.Naive(path)
        s.create_session(s.session_id, history_metadata())
        s.append_turn(history)
    elif system == "naive-on-mobstore":
        return peers.NaiveMobstoreReader(copy_db(history_store(h), work_dir, "mobstore.db"), 1)
    else:
        raise ValueError(system)
    s.check()
    return s


def open_fleet(work_dir: str, h: int, names, me: str) -> dict:
    """Every system of the group at history h, each in its own directory. A peer that is not
    installed or not enabled is left out of the neighbours (and skips its own test)."""
    fleet = {}
    for name in names:
        d = os.path.join(work_dir, name)
        os.makedirs(d)
        if name != me:
            try:
                enabled(name)
                fleet[name] = open_system(name, d, h)
            except pytest.skip.Exception:
                pass
        else:
            fleet[name] = open_system(name, d, h)
    return fleet


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("h", KNOBS.peer_histories)
def test_append_turn(benchmark, work_dir, h, system):
    """Neighbours: every other (system, history length) of the append rows, so that both the
    ratios between systems and each system's growth from 100 to 4,000 messages come from
    rounds taken in turn on the same machine. LangGraph is nobody's neighbour: its turn
    writes the whole history (4 MB at 4,000 messages) and would slow down whoever comes next."""
    enabled(system)
    rounds, warmup = KNOBS.n(20, 60), 2
    me = open_system(system, _subdir(work_dir, f"{system}-h{h}"), h)
    fleet = {(system, h): me}
    for other_h in KNOBS.peer_histories:
        for name in SYSTEMS:
            if (name, other_h) == (system, h) or name == "langgraph":
                continue
            try:
                enabled(name)
                fleet[(name, other_h)] = open_system(name, _subdir(work_dir, f"{name}-h{other_h}"), other_h)
            except pytest.skip.Exception:
                pass
    feeds = {key: Feed(turns("bench", 1024, rounds + warmup)) for key in fleet}
    ops = {key: (lambda s=s, f=feeds[key]: s.append_turn(f.next())) for key, s in fleet.items()}
    benchmark.group = f"peers.append.h{h}"
    tag(benchmark, f"store.append.h{h}.{system}", history=h, messages=2, ops=1, system=system,
        baseline=system == "openai-agents", synchronous="FULL", journal_mode="WAL",
        interleaved_with=sorted(f"{n}@{k}" for n, k in fleet if (n, k) != (system, h)))
    interleaved(benchmark, ops[(system, h)], {f"{n}@{k}": o for (n, k), o in ops.items() if (n, k) != (system, h)},
                rounds=rounds, warmup=warmup)
    loaded = me.load()
    used = feeds[(system, h)].used
    assert len(loaded) == h + 2 * used
    assert loaded[-2:] == turns("bench", 1024, used)[-1]
    for other in fleet.values():
        other.close()


def _subdir(work_dir: str, name: str) -> str:
    path = os.path.join(work_dir, name)
    os.makedirs(path)
    return path


LOAD_SYSTEMS = ("mobstore", "naive", "naive-on-mobstore", "openai-agents", "langgraph")


@pytest.mark.benchmark(group="peers.load")
@pytest.mark.parametrize("system", LOAD_SYSTEMS)
def test_load(benchmark, work_dir, system):
    enabled(system)
    n = KNOBS.transcript
    fleet = open_fleet(work_dir, n, LOAD_SYSTEMS, system)
    expected = history_messages(n)
    assert fleet[system].load() == expected  # every system gives back the very same messages
    tag(benchmark, f"store.load.{system}", messages=n, ops=1, system=system, baseline=system == "naive",
        interleaved_with=sorted(x for x in fleet if x != system))
    out = interleaved(benchmark, fleet[system].load, {x: s.load for x, s in fleet.items() if x != system},
                      rounds=KNOBS.n(10, 40), warmup=1)
    assert len(out) == n
    for s in fleet.values():
        s.close()


DISK_CASES = [("mobstore", size) for size in KNOBS.sizes] + [
    (peer, 1024) for peer in ("openai-agents", "langgraph", "naive")]


class MobstoreDisk:
    """mobstore as the disk rows use it: a fresh store, turns applied with receipts."""

    def __init__(self, path: str):
        self.store = engine.open(path, synchronous="FULL")
        found = [s.id for s in self.store.sessions(limit=1)]
        self.sid = found[0] if found else self.store.create_session(history_metadata())
        self.t = 0

    def check(self) -> None:
        pass

    def append_turn(self, turn):
        self.store.apply_runtime_turn(self.sid, f"run-{self.t:06d}", turn, contributing_input_ids=[f"input-{self.t}"])
        self.t += 1

    def close(self):
        self.store.close()


def open_empty(system: str, path: str):
    if system == "mobstore":
        return MobstoreDisk(path)
    if system == "openai-agents":
        s = peers.OpenAIAgents(path)
    elif system == "langgraph":
        s = peers.LangGraph(path)
    else:
        s = peers.Naive(path)
        if not s.conn.execute("SELECT 1 FROM sessions").fetchone():
            s.create_session(s.session_id, history_metadata())
    s.check()
    return s


def table_bytes(path: str) -> dict[str, int]:
    import apsw

    con = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return dict(con.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
    except apsw.SQLError:  # SQLite built without dbstat
        return {}
    finally:
        con.close()


@pytest.mark.parametrize("system,size", DISK_CASES)
def test_disk(benchmark, work_dir, system, size):
    """Bytes per message = (file after N messages - file of the empty store with its session)
    / N, against the raw message JSON; the total file is recorded too. Timed: writing the N
    messages turn by turn, durable (one round)."""
    enabled(system)
    n_turns = KNOBS.disk_messages // 2
    batch = turns("disk", size, n_turns)
    raw = sum(len(digest.message_bytes(m)) for turn in batch for m in turn)
    path = os.path.join(work_dir, f"{system}.db")
    open_empty(system, path).close()
    empty = file_bytes(path)
    s = open_empty(system, path)

    def write_all():
        for turn in batch:
            s.append_turn(turn)

    benchmark.group = "peers.disk"
    settle()
    benchmark.pedantic(write_all, rounds=1)
    s.close()
    total = file_bytes(path)
    n = 2 * n_turns
    extra = {}
    if system == "mobstore":
        tables = table_bytes(path)
        if tables:
            extra["messages_table_bytes"] = tables.get("ms_messages", 0)
            extra["messages_table_ratio"] = tables.get("ms_messages", 0) / raw
    tag(benchmark, f"store.disk.{system}.{size}", system=system, size=size, messages=n, ops=n, bytes=total,
        empty_bytes=empty, raw_bytes=raw, bytes_per_message=(total - empty) / n,
        raw_bytes_per_message=raw / n, ratio=(total - empty) / raw, total_ratio=total / raw,
        baseline=system == "naive", **extra)


def _rows(con, sql):
    return con.execute(sql).fetchall()


def test_bulk_builder_matches_api(tmp_path):
    """The cached fixtures are built with bulk inserts; this proves they hold exactly the rows
    the public API writes (timestamps aside) and that the result verifies."""
    bulk, api = str(tmp_path / "bulk.db"), str(tmp_path / "api.db")
    build_history_store(bulk, 8, 1024)
    with engine.open(api, synchronous="OFF") as store:
        store.create_session(history_metadata(), session_id=HISTORY_SESSION)
        for t, turn in enumerate(turns("history", 1024, 4)):
            store.apply_runtime_turn(HISTORY_SESSION, f"run-{t:06d}", turn, contributing_input_ids=[f"input-{t}"])
    queries = [
        "SELECT num, id, message_count, message_bytes, metadata_json, digest_profile, sha256_state, head_revision, "
        "head_message_count, head_profile FROM ms_sessions ORDER BY num",
        "SELECT key, body FROM ms_messages ORDER BY key",
        "SELECT * FROM ms_bindings ORDER BY session_id",
        "SELECT session_num, run_id, sequence, boundary, conversation_digest, message_count, profile, runtime_id, "
        "contributing_input_ids, receipt_json FROM ms_receipts ORDER BY 1, 2, 3",
        "SELECT seq, kind, session_id, detail FROM ms_events ORDER BY seq",
    ]
    with engine.open(bulk) as b, engine.open(api) as a:
        for q in queries:
            assert _rows(b._connection, q) == _rows(a._connection, q), q
        assert b.verify().ok

    # Many one-turn sessions sharing a turn (the peers' 10,000-session store) go through the memo.
    few_bulk, few_api = str(tmp_path / "few_bulk.db"), str(tmp_path / "few_api.db")
    turn = turns("peerpool", 1024, 1)[0]
    ids = [f"0190f000-0000-7000-8000-00000000010{i}" for i in range(3)]
    memo: dict = {}
    with engine.open(few_bulk, synchronous="OFF") as store, store.transaction() as con:
        for i, sid in enumerate(ids):
            write_history_session(con, i + 1, sid, history_metadata(), [turn], BASE_MS, memo)
    with engine.open(few_api, synchronous="OFF") as store:
        for sid in ids:
            store.create_session(history_metadata(), session_id=sid)
            store.apply_runtime_turn(sid, "run-000000", turn, contributing_input_ids=["input-0"])
    with engine.open(few_bulk) as b, engine.open(few_api) as a:
        for q in queries:
            assert _rows(b._connection, q) == _rows(a._connection, q), q
        assert b.verify().ok

    mobs_bulk, mobs_api = str(tmp_path / "mobs_bulk.db"), str(tmp_path / "mobs_api.db")
    build_mob_store(mobs_bulk, 60, 20)
    layout = mob_layout(60, 20)
    with engine.open(mobs_api, synchronous="OFF") as store:
        for sid, md in zip(layout.session_ids, layout.metadata):
            store.create_session(md, session_id=sid)
    with engine.open(mobs_bulk) as b, engine.open(mobs_api) as a:
        for q in queries[:3]:
            assert _rows(b._connection, q) == _rows(a._connection, q), q
        assert {(m.session_id, m.profile, m.meerkat_id) for m in b.mob_members("mob-0000")} == layout.target_members
