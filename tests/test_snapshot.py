"""Store.snapshot: a consistent, self-contained copy of a live store.

The copy must hold exactly the committed rows (same fingerprint as the source when nothing
writes), be one file in rollback-journal mode, and — taken while other processes apply
turns — always be one commit's state: integrity_check clean, verify clean, every
transcript ending at its newest receipt, counts never going backwards from one snapshot
to the next. Failed calls leave the source and the target as they were.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import time
import traceback

import apsw
import pytest

import engine
from engine import demo

from .conftest import fingerprint

WRITERS = 2
SNAPSHOTS = 12


def fill(store, rng, sessions=5, turns=4):
    ids = []
    for i in range(sessions):
        sid = store.create_session(demo.mob_metadata("crew", "coder", f"agent-{i}"))
        for t in range(turns):
            store.apply_runtime_turn(sid, f"run-{t}", [demo.user_message(rng, 80), demo.assistant_message(rng, 200)])
        ids.append(sid)
    return ids


def leftovers(directory):
    return sorted(n for n in os.listdir(directory) if ".tmp-" in n or n.endswith(("-wal", "-shm", "-journal")))


def check_consistent(path) -> dict:
    """The checks every snapshot must pass; returns its counts."""
    con = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        torn = con.execute(
            "SELECT s.id, s.message_count, (SELECT count(*) FROM ms_messages m WHERE m.key >= s.num * 4294967296 "
            "AND m.key < (s.num + 1) * 4294967296), (SELECT max(message_count) FROM ms_receipts r "
            "WHERE r.session_num = s.num) FROM ms_sessions s").fetchall()
        for sid, count, stored, newest in torn:
            assert count == stored, f"{sid}: message_count {count} but {stored} messages"
            assert newest is None or newest == count, f"{sid}: transcript of {count} ends past its receipt {newest}"
        sessions, messages = con.execute("SELECT count(*), coalesce(sum(message_count), 0) FROM ms_sessions").fetchone()
        (receipts,) = con.execute("SELECT count(*) FROM ms_receipts").fetchone()
    finally:
        con.close()
    with engine.open(path, readonly=True) as snap:
        report = snap.verify()
        assert report.ok, report.mismatches[:3]
    return {"sessions": sessions, "messages": messages, "receipts": receipts}


@pytest.mark.parametrize("method", ["backup", "vacuum"])
def test_snapshot_is_an_exact_single_file_copy(tmp_path, rng, method):
    src = str(tmp_path / "live.db")
    with engine.open(src) as store:
        fill(store, rng)
        out = str(tmp_path / "snap" / "copy.db")
        os.makedirs(os.path.dirname(out))
        info = store.snapshot(out, method=method)
        assert fingerprint(out) == fingerprint(src)
    assert info.path == out and info.method == method and info.bytes == os.path.getsize(out)
    assert info.schema_version == engine.schema.SCHEMA_VERSION
    assert leftovers(os.path.dirname(out)) == []
    assert os.stat(out).st_mode & 0o777 == 0o600
    counts = check_consistent(out)
    assert counts == {"sessions": 5, "messages": 40, "receipts": 20}
    # opens read-only on its own, with no -wal/-shm created beside it
    uri = "file:" + out + "?immutable=1"
    with engine.open(uri, readonly=True) as snap:
        assert snap.stats()["sessions"] == 5
    assert leftovers(os.path.dirname(out)) == []


def test_snapshot_of_a_memory_store_and_inside_reading(tmp_path, rng):
    with engine.open() as store:
        fill(store, rng, sessions=2)
        info = store.snapshot(tmp_path / "mem.db")
        assert check_consistent(info.path)["sessions"] == 2
        with store.reading():  # a backup inside a read scope copies that scope's view
            store.snapshot(str(tmp_path / "reading.db"))
        assert fingerprint(str(tmp_path / "reading.db")) == fingerprint(info.path)


def test_failed_snapshots_change_nothing(tmp_path, rng):
    src = str(tmp_path / "live.db")
    with engine.open(src) as store:
        fill(store, rng, sessions=2)
        out = str(tmp_path / "out.db")
        store.snapshot(out)
        src_print, out_print = fingerprint(src), fingerprint(out)
        store.create_session({"title": "later"})
        src_print = fingerprint(src)
        with pytest.raises(engine.InvalidInputError, match="exists"):
            store.snapshot(out)
        assert fingerprint(out) == out_print
        with pytest.raises(engine.InvalidInputError, match="method"):
            store.snapshot(str(tmp_path / "x.db"), method="copy")
        with pytest.raises(engine.InvalidInputError, match="overwrite"):
            store.snapshot(str(tmp_path / "x.db"), overwrite=1)
        with pytest.raises(engine.InvalidInputError, match="no such directory"):
            store.snapshot(str(tmp_path / "nowhere" / "x.db"))
        with pytest.raises(engine.InvalidInputError, match="directory"):
            store.snapshot(str(tmp_path))
        with pytest.raises(engine.InvalidInputError, match="path"):
            store.snapshot(":memory:")
        with pytest.raises(engine.InvalidInputError, match="own file"):
            store.snapshot(src, overwrite=True)
        with store.transaction():
            with pytest.raises(engine.StoreError, match="inside transaction"):
                store.snapshot(str(tmp_path / "x.db"))
        with store.reading():
            with pytest.raises(engine.StoreError, match="vacuum"):
                store.snapshot(str(tmp_path / "x.db"), method="vacuum")
        assert not os.path.exists(tmp_path / "x.db")
        assert fingerprint(src) == src_print
        # overwrite=True replaces the old copy with the current state
        store.snapshot(out, overwrite=True, method="vacuum")
        assert fingerprint(out) == src_print
    assert leftovers(tmp_path) == []


def test_a_read_only_store_snapshots(tmp_path, rng):
    src = str(tmp_path / "live.db")
    with engine.open(src) as store:
        fill(store, rng, sessions=1)
    with engine.open(src, readonly=True) as store:
        info = store.snapshot(str(tmp_path / "ro.db"))
    assert fingerprint(info.path) == fingerprint(src)


# ------------------------------------------------------------------------------------------
# snapshots while other processes write


def _writer(db, seed, started, stop, results):
    """Apply 1-3-message turns to two own sessions until told to stop; report how many."""
    try:
        rng = random.Random(seed)
        n = 0
        with engine.open(db) as store:
            own = [store.create_session(demo.mob_metadata("crew", "coder", f"w{seed}-{i}")) for i in range(2)]
            started.set()
            while not stop.is_set():
                sid = own[n % 2]
                batch = [demo.user_message(rng, rng.randint(40, 400)) for _ in range(rng.randint(1, 3))]
                store.apply_runtime_turn(sid, f"run-{n // 50}", batch)
                n += 1
        results.put(("ok", seed, n))
    except BaseException:
        results.put(("error", seed, traceback.format_exc()))


def test_snapshots_during_concurrent_writes_are_consistent(tmp_path, rng):
    db = str(tmp_path / "live.db")
    with engine.open(db) as store:
        fill(store, rng, sessions=2, turns=2)
        initial = store.stats()["receipts"]
    ctx = multiprocessing.get_context("spawn")
    stop, results = ctx.Event(), ctx.Queue()
    started = [ctx.Event() for _ in range(WRITERS)]
    seeds = [rng.randrange(1 << 30) for _ in range(WRITERS)]
    procs = [ctx.Process(target=_writer, args=(db, seeds[i], started[i], stop, results)) for i in range(WRITERS)]
    for p in procs:
        p.start()
    counts = []
    try:
        for ev in started:
            assert ev.wait(60), "a writer did not start"
        with engine.open(db, readonly=True) as reader:
            for i in range(SNAPSHOTS):
                out = str(tmp_path / f"snap-{i:02d}.db")
                reader.snapshot(out, method=("backup", "vacuum")[i % 2])
                counts.append(check_consistent(out))
                time.sleep(0.02)
    finally:
        stop.set()
        outcomes = [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(60)
    errors = [o for o in outcomes if o[0] != "ok"]
    assert not errors, errors[0][2]
    turns = sum(o[2] for o in outcomes)
    for a, b in zip(counts, counts[1:]):  # one commit's state each, in order
        assert all(b[k] >= a[k] for k in a), (a, b)
    with engine.open(db, readonly=True) as store:
        final = store.stats()
    assert final["receipts"] == initial + turns
    # the snapshots really were taken while the writers wrote
    assert counts[-1]["receipts"] > counts[0]["receipts"] >= initial
    assert counts[-1]["receipts"] <= final["receipts"]
