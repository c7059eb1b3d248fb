"""Fleet reconciliation: one mob across many store files (docs/fleet.md).

The fleet fixture is MOBSTORE_BENCH_FLEET_STORES[-1] store files of
MOBSTORE_BENCH_FLEET_SESSIONS sessions each (full: 1,000 x 1,000; quick: 40 x 200),
bulk-built like the membership stores and cached as a directory. In every store the target
mob has 10 members (each store its own ten slots; 2% of the claims take a slot of another
store: cross-store duplicates) and one broken claim; the other sessions belong to mobs of
1,000, 5% have no mob metadata. The roster is every store's slots minus two, plus two
nobody claims. A point of the ladder with n files reads the first n files.

- fleet.reconcile.n<N>.fleet: `with Fleet(paths) as f: f.reconcile(mob, roster)` — what a
  `mobstore fleet reconcile` costs after Python started: discovery, DuckDB with the sqlite
  extension loaded from its package, every file read, the reconciliation.
- fleet.reconcile.n<N>.fleet_warm: reconcile again on an open Fleet (the DuckDB connection
  and extension already loaded): the per-file cost alone.
- fleet.reconcile.n<N>.loop: the same answer by looping Store.reconcile_mob over the files
  (engine.open read-only each) and merging in Python (union of members, duplicates of the
  union, roster diff): the baseline of the ratio.
- fleet.reconcile.n<N>.parquet: the shipped reconcile.sql on a fresh DuckDB connection over
  the Parquet export of the same files (exported once, cached).
Before timing, every side must give the same members, duplicates and roster diff.
- fleet.export.n<N>: export_parquet of the N files into a new directory (one process per core).
- fleet.verify.n<N>: Fleet.verify (one process per core) against Store.verify looped in this
  process, on the smallest ladder point.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import resource
import shutil
import time

import duckdb
import pytest

import engine
from conftest import (
    BASE_MS, KNOBS, PROFILES, _INSERT_BINDING, _INSERT_SESSION, _code_fingerprint, _env_int, _env_ints, interleaved,
    seeded, tag, uuid7_text,
)
from engine import demo, digest, fleet
from engine.fleet import parquet as fleet_parquet
from engine.sessions import BindingFacts

FLEET_STORES = _env_ints("MOBSTORE_BENCH_FLEET_STORES", "10,40" if KNOBS.quick else "100,1000")
FLEET_SESSIONS = _env_int("MOBSTORE_BENCH_FLEET_SESSIONS", 200 if KNOBS.quick else 1000)
FLEET_MOB = "mob-0000"
MEMBERS_PER_STORE = 10


def store_specs(k: int, n_sessions: int, n_stores: int) -> list[tuple[str, dict]]:
    """(session id, metadata) of store k: 10 members of FLEET_MOB, 1 broken claim, the rest
    spread over mobs of 1,000 (5% without mob metadata), in shuffled order."""
    rng = seeded("fleet", k, n_sessions)
    specs = []
    for j in range(MEMBERS_PER_STORE):
        slot = k * MEMBERS_PER_STORE + j
        if rng.random() < 0.02:  # claims a slot of another store: a duplicate across machines
            slot = rng.randrange(n_stores * MEMBERS_PER_STORE)
        specs.append(demo.mob_metadata(FLEET_MOB, PROFILES[slot % 4], f"agent-{slot:06d}"))
    broken = demo.mob_metadata(FLEET_MOB, "coder", f"broken-{k:04d}")
    broken["session_metadata"]["realm_id"] = "mob:elsewhere"
    specs.append(broken)
    for i in range(n_sessions - len(specs)):
        if rng.random() < 0.05:
            specs.append({"title": f"scratch {k}-{i}"})
        else:
            g = k * n_sessions + i
            specs.append(demo.mob_metadata(f"mob-{g // 1000 + 1:04d}", PROFILES[g % 4], f"agent-{g % 1000:05d}"))
    rng.shuffle(specs)
    return [(uuid7_text(rng, BASE_MS + i), md) for i, md in enumerate(specs)]


def roster(n_stores: int) -> list[tuple[str, str]]:
    slots = [(PROFILES[s % 4], f"agent-{s:06d}") for s in range(n_stores * MEMBERS_PER_STORE)]
    return slots[2:] + [("planner", "agent-missing-1"), ("coder", "agent-missing-2")]


def build_store(path: str, k: int, n_sessions: int, n_stores: int) -> None:
    """Sessions and binding rows as create_session writes them (no messages: reconciliation
    never reads them), one transaction."""
    empty_state = digest.TranscriptState.new("f3").to_bytes()
    specs = store_specs(k, n_sessions, n_stores)
    with engine.open(path, synchronous="OFF") as store:
        with store.transaction() as con:
            con.executemany(_INSERT_SESSION, (
                (i + 1, sid, BASE_MS + i, BASE_MS + i, 0, 0, digest.dumps_value(md), empty_state)
                for i, (sid, md) in enumerate(specs)))
            con.executemany(_INSERT_BINDING, (BindingFacts.from_metadata(md).row(sid) for sid, md in specs))


def fleet_dir(n_stores: int, n_sessions: int) -> str:
    """The cached fixture directory (stores s0000.db ...), built on a miss into a temporary
    name and renamed, keyed by the parameters and the code that writes the bytes."""
    code = hashlib.sha256((_code_fingerprint() + inspect.getsource(store_specs) + inspect.getsource(build_store))
                          .encode()).hexdigest()[:12]
    os.makedirs(KNOBS.cache_dir, exist_ok=True)
    path = os.path.join(KNOBS.cache_dir, f"fleet-n{n_stores}-s{n_sessions}-{code}")
    if os.path.isdir(path):
        return path
    tmp = f"{path}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    started = time.perf_counter()
    for k in range(n_stores):
        build_store(os.path.join(tmp, f"s{k:04d}.db"), k, n_sessions, n_stores)
    leftovers = [n for n in os.listdir(tmp) if n.endswith(("-wal", "-shm"))]
    for name in leftovers:
        if os.path.getsize(os.path.join(tmp, name)):
            raise RuntimeError(f"fixture store {name} was not closed cleanly")
        os.remove(os.path.join(tmp, name))
    os.replace(tmp, path)
    print(f"\n[bench cache] built {os.path.basename(path)} ({n_stores} stores) in {time.perf_counter() - started:.1f} s")
    return path


def fleet_paths(n: int) -> list[str]:
    root = fleet_dir(max(FLEET_STORES), FLEET_SESSIONS)
    return [os.path.join(root, f"s{k:04d}.db") for k in range(n)]


def export_dir(n: int) -> str:
    """The Parquet export of the first n fleet files, cached beside the fleet."""
    root = fleet_dir(max(FLEET_STORES), FLEET_SESSIONS)
    code = hashlib.sha256(inspect.getsource(fleet_parquet).encode() + fleet.reconcile_sql_file().encode()).hexdigest()[:8]
    path = f"{root}-parquet-n{n}-{code}"
    if not os.path.isdir(path):
        tmp = f"{path}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        with fleet.Fleet(fleet_paths(n)) as f:
            report = f.export_parquet(tmp)
        assert report.ok, report.problems
        os.replace(tmp, path)
    return path


def parquet_reconcile(out: str, wanted: list[tuple[str, str]]) -> dict:
    """reconcile.sql as a user runs it: a new DuckDB connection, the inputs as variables."""
    con = duckdb.connect()
    try:
        con.execute("SET VARIABLE export_dir = ?", [out])
        con.execute("SET VARIABLE mob_id = ?", [FLEET_MOB])
        # JSON text: binding a Python list costs DuckDB's client ~0.1 ms per value
        con.execute("SET VARIABLE roster = from_json(?, '[{\"profile\": \"VARCHAR\", \"meerkat_id\": \"VARCHAR\"}]')",
                    [json.dumps([{"profile": p, "meerkat_id": m} for p, m in wanted])])
        with open(os.path.join(out, "reconcile.sql"), encoding="utf-8") as fh:
            rows = con.execute(fh.read()).fetchall()
    finally:
        con.close()
    return {
        "members": {r[2] for r in rows if r[0] == "member"},
        "broken": sum(1 for r in rows if r[0] == "broken"),
        "duplicates": {(r[3], r[4]) for r in rows if r[0] == "duplicate"},
        "missing": {(r[3], r[4]) for r in rows if r[0] == "missing"},
        "unexpected": {r[2] for r in rows if r[0] == "unexpected"},
    }


def loop_reconcile(paths: list[str], wanted: list[tuple[str, str]]) -> dict:
    """The fleet answer from reconcile_mob per file, merged in Python."""
    members, broken, slots = [], [], {}
    for p in paths:
        with engine.open(p, readonly=True) as store:
            rec = store.reconcile_mob(FLEET_MOB)
        members += [(p, m) for m in rec.members]
        broken += [(p, b) for b in rec.broken]
        for m in rec.members:
            slots.setdefault((m.profile, m.meerkat_id), []).append((p, m.session_id))
    given = set(wanted)
    return {
        "members": {m.session_id for _p, m in members},
        "broken": len(broken),
        "duplicates": {slot for slot, claims in slots.items() if len(claims) > 1},
        "missing": given - slots.keys(),
        "unexpected": {m.session_id for _p, m in members if (m.profile, m.meerkat_id) not in given},
    }


def summary(rec) -> dict:
    return {"members": {m.session_id for m in rec.members}, "broken": len(rec.broken),
            "duplicates": {(d.profile, d.meerkat_id) for d in rec.duplicates}, "missing": set(rec.missing),
            "unexpected": {m.session_id for m in rec.unexpected}}


@pytest.mark.parametrize("system", ["fleet", "fleet_warm", "parquet", "loop"])
@pytest.mark.parametrize("n", FLEET_STORES)
def test_fleet_reconcile(benchmark, n, system):
    benchmark.group = f"fleet.reconcile.n{n}"
    paths = fleet_paths(n)
    wanted = roster(n)

    def cold():
        with fleet.Fleet(paths) as f:
            return f.reconcile(FLEET_MOB, wanted)

    warm_fleet = fleet.Fleet(paths)

    def warm():
        return warm_fleet.reconcile(FLEET_MOB, wanted)

    def loop():
        return loop_reconcile(paths, wanted)

    out = export_dir(n)

    def parquet():
        return parquet_reconcile(out, wanted)

    try:
        expected = loop()
        assert summary(warm()) == expected
        assert parquet() == expected
        assert len(expected["members"]) >= MEMBERS_PER_STORE * n - 5 and expected["broken"] == n
        assert expected["missing"] >= {("planner", "agent-missing-1"), ("coder", "agent-missing-2")}
        runs = {"fleet": cold, "fleet_warm": warm, "parquet": parquet, "loop": loop}
        target = runs.pop(system)
        interleaved(benchmark, target, runs, rounds=KNOBS.n(3, 7))
    finally:
        warm_fleet.close()
    tag(benchmark, f"fleet.reconcile.n{n}.{system}", stores=n, sessions_per_store=FLEET_SESSIONS,
        duplicates=len(expected["duplicates"]), baseline=system == "loop")


def test_fleet_export(benchmark, work_dir):
    n = max(FLEET_STORES)
    benchmark.group = f"fleet.export.n{n}"
    paths = fleet_paths(n)
    targets = iter(range(1_000_000))

    def export():
        with fleet.Fleet(paths) as f:
            return f.export_parquet(os.path.join(work_dir, f"out-{next(targets)}"))

    report = benchmark.pedantic(export, rounds=KNOBS.n(2, 1), warmup_rounds=0)
    assert report.ok and report.totals["sessions"] == n * FLEET_SESSIONS
    tag(benchmark, f"fleet.export.n{n}", stores=n, sessions_per_store=FLEET_SESSIONS, workers=report.workers)


@pytest.mark.parametrize("system", ["fleet", "loop"])
def test_fleet_verify(benchmark, system):
    n = min(FLEET_STORES)
    benchmark.group = f"fleet.verify.n{n}"
    paths = fleet_paths(n)

    def parallel():
        with fleet.Fleet(paths) as f:
            return f.verify()

    def loop():
        out = []
        for p in paths:
            with engine.open(p, readonly=True) as store:
                out.append(store.verify())
        return out

    assert parallel().ok and all(r.ok for r in loop())
    runs = {"fleet": parallel, "loop": loop}
    cpu = cpu_seconds(runs[system])  # this process and its workers: on a busy machine wall time hides it
    target = runs.pop(system)
    interleaved(benchmark, target, runs, rounds=KNOBS.n(2, 3))
    tag(benchmark, f"fleet.verify.n{n}.{system}", stores=n, sessions_per_store=FLEET_SESSIONS,
        workers=os.cpu_count(), cpu_seconds=round(cpu, 3), baseline=system == "loop")


def cpu_seconds(fn) -> float:
    """CPU time (user + system) of one call of fn, its child processes included."""
    def now() -> float:
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    before = now()
    fn()
    return now() - before
