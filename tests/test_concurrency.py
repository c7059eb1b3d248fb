"""Several processes on one file (docs/durability.md): writers on their own sessions, writers racing on
one shared session and run, and readers calling verify / mob_members / messages / events the
whole time. No error of any kind (`database is locked` included) may reach a caller, no write
may be lost, sequences on the shared run must come out exactly 0..n-1, and the file verifies.

Workers are separate interpreters (multiprocessing "spawn"); each reports what it wrote or the
traceback of anything that escaped. Seeded: MOBSTORE_TEST_SEED reproduces the messages.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import queue as queue_module
import random
import time
import traceback

import apsw

import engine
from engine import demo

WRITERS = 4
TURNS = 500                # per own-session writer, and for the shared-session writer
SESSIONS_PER_WRITER = 2
EXTRA_SHARED = 10          # turns each own-session writer also puts on the shared session
READERS = 2
MOB = "cmob"
SHARED_RUN = "common-run"  # the run id every writer appends to on the common session
JOIN_TIMEOUT = 300


def turn_batch(rng: random.Random) -> list[dict]:
    """1-3 small meerkat-shaped messages (the store cost, not message size, is under test)."""
    makers = (demo.user_message, demo.assistant_message, demo.tool_results_message)
    return [rng.choice(makers)(rng, rng.randint(40, 240)) for _ in range(rng.randint(1, 3))]


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


# ------------------------------------------------------------------------------------------
# workers (module-level: spawn pickles them by name)


def _writer(db, name, own, seed, turns, extra_shared, shared_id, barrier, results):
    """Apply `turns` turns round-robin to `own` sessions (and `extra_shared` turns, spread out,
    to the shared session's shared run); report every receipt and message hash."""
    try:
        rng = random.Random(seed)
        sent: dict[str, list[str]] = {sid: [] for sid in own if sid != shared_id}
        shared_sent: list[str] = []
        receipts = []
        every = turns // extra_shared if extra_shared else 0
        with engine.open(db) as store:
            barrier.wait(60)
            for t in range(turns):
                sid = own[t % len(own)]
                run = SHARED_RUN if sid == shared_id else f"{name}-run{t // 100}"
                batch = turn_batch(rng)
                r = store.apply_runtime_turn(sid, run, batch, boundary="run_checkpoint",
                                             contributing_input_ids=[f"{name}-{t}"])
                hashes = [body_hash(engine.digest.message_bytes(m)) for m in batch]
                (shared_sent if sid == shared_id else sent[sid]).extend(hashes)
                receipts.append((sid, run, r.sequence, r.message_count, len(batch)))
                if every and t % every == every - 1:
                    batch = turn_batch(rng)
                    r = store.apply_runtime_turn(shared_id, SHARED_RUN, batch)
                    shared_sent.extend(body_hash(engine.digest.message_bytes(m)) for m in batch)
                    receipts.append((shared_id, SHARED_RUN, r.sequence, r.message_count, len(batch)))
        results.put(("ok", name, {"sent": sent, "shared_sent": shared_sent, "receipts": receipts}))
    except BaseException:
        results.put(("error", name, traceback.format_exc()))


def _reader(db, name, session_ids, members, seed, readonly, barrier, stop, results):
    """Until told to stop: verify a random session, check the mob's members, read messages and
    receipts (counts never go backwards, the transcript ends at its newest receipt), follow the
    event log (strictly increasing), and now and then verify the whole file."""
    try:
        rng = random.Random(seed)
        seen_count = {sid: 0 for sid in session_ids}
        cursor = 0
        ops = {"verify_session": 0, "verify_all": 0, "members": 0, "messages": 0, "events": 0}
        raw = apsw.Connection(db, flags=apsw.SQLITE_OPEN_READONLY)
        raw.set_busy_timeout(60_000)
        with engine.open(db, readonly=readonly) as store:
            barrier.wait(60)
            i = 0
            while not stop.is_set() or i < 3:
                i += 1
                sid = rng.choice(session_ids)
                report = store.verify(sid)
                assert report.ok, report.mismatches
                ops["verify_session"] += 1
                got = sorted((m.profile, m.meerkat_id, m.session_id) for m in store.mob_members(MOB))
                assert got == members, got
                ops["members"] += 1
                msgs = store.messages(sid)
                assert len(msgs) >= seen_count[sid], "a session lost messages between two reads"
                seen_count[sid] = len(msgs)
                ops["messages"] += 1
                # One snapshot of the file itself: the transcript ends at its newest receipt.
                raw.execute("BEGIN")
                try:
                    count, newest = raw.execute(
                        "SELECT s.message_count, (SELECT max(r.message_count) FROM ms_receipts r "
                        "WHERE r.session_num = s.num) FROM ms_sessions s WHERE s.id = ?", (sid,)).fetchone()
                finally:
                    raw.execute("COMMIT")
                assert count == (newest or 0), (sid, count, newest)
                events = store.events(after=cursor, limit=500)
                seqs = [e.seq for e in events]
                assert seqs == sorted(set(seqs)) and all(s > cursor for s in seqs)
                cursor = seqs[-1] if seqs else cursor
                ops["events"] += 1
                if i % 25 == 0:
                    assert store.verify().ok
                    ops["verify_all"] += 1
        raw.close()
        results.put(("ok", name, ops))
    except BaseException:
        results.put(("error", name, traceback.format_exc()))


# ------------------------------------------------------------------------------------------


def test_writers_and_readers_on_one_file(db_path, rng):
    own = [[f"w{w}-s{k}" for k in range(SESSIONS_PER_WRITER)] for w in range(WRITERS)]
    shared = "shared-session"
    every = [sid for group in own for sid in group] + [shared]
    with engine.open(db_path) as store:
        for sid in every:
            store.create_session(demo.mob_metadata(MOB, "worker", sid), session_id=sid)
        members = sorted((m.profile, m.meerkat_id, m.session_id) for m in store.mob_members(MOB))
    assert len(members) == len(every)

    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    stop = ctx.Event()
    barrier = ctx.Barrier(WRITERS + 1 + READERS)
    writers = [ctx.Process(target=_writer, args=(db_path, f"w{w}", own[w], rng.randrange(1 << 30), TURNS,
                                                 EXTRA_SHARED, shared, barrier, results))
               for w in range(WRITERS)]
    writers.append(ctx.Process(target=_writer, args=(db_path, "shared-writer", [shared], rng.randrange(1 << 30),
                                                     TURNS, 0, shared, barrier, results)))
    readers = [ctx.Process(target=_reader, args=(db_path, f"r{k}", every, members, rng.randrange(1 << 30),
                                                 k == 0, barrier, stop, results))
               for k in range(READERS)]
    started = time.monotonic()
    for p in writers + readers:
        p.start()
    outcomes: dict[str, tuple] = {}
    try:
        deadline = time.monotonic() + JOIN_TIMEOUT
        while len(outcomes) < len(writers):
            status, name, payload = results.get(timeout=max(1, deadline - time.monotonic()))
            outcomes[name] = (status, payload)
            if status == "error":
                break
        writing_seconds = time.monotonic() - started
        stop.set()
        while len(outcomes) < len(writers) + len(readers):
            status, name, payload = results.get(timeout=max(1, deadline - time.monotonic()))
            outcomes[name] = (status, payload)
    except queue_module.Empty:
        pass
    finally:
        stop.set()
        for p in writers + readers:
            p.join(30)
            if p.exitcode is None:
                p.kill()
                p.join()
    errors = {name: payload for name, (status, payload) in outcomes.items() if status == "error"}
    assert not errors, "\n".join(f"--- {name}\n{tb}" for name, tb in errors.items())
    assert len(outcomes) == len(writers) + len(readers), f"workers never reported: {sorted(outcomes)}"
    assert all(p.exitcode == 0 for p in writers + readers)
    reader_ops = {name: payload for name, (_s, payload) in outcomes.items() if name.startswith("r")}
    print(f"\nconcurrency: writes took {writing_seconds:.1f} s; reader ops {reader_ops}")
    assert all(ops["verify_session"] >= 3 for ops in reader_ops.values())

    writes = [payload for name, (_s, payload) in outcomes.items() if not name.startswith("r")]
    con = apsw.Connection(db_path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        con.close()
    with engine.open(db_path) as store:
        # Own sessions: exactly the writer's messages, in its order; one receipt per turn.
        for w in writes:
            for sid, hashes in w["sent"].items():
                assert [body_hash(b) for b in store.raw_messages(sid)] == hashes, sid
                mine = sorted((r[1], r[2], r[3]) for r in w["receipts"] if r[0] == sid)
                stored = sorted((r.run_id, r.sequence, r.message_count) for r in store.receipts(sid))
                assert stored == mine and len(mine) == TURNS // SESSIONS_PER_WRITER
        # The shared session: every writer's messages (interleaved), and the shared run's
        # sequences handed out exactly once each, 0..n-1, each at the count its writer saw.
        shared_turns = TURNS + WRITERS * EXTRA_SHARED
        expected_hashes = sorted(h for w in writes for h in w["shared_sent"])
        assert sorted(body_hash(b) for b in store.raw_messages(shared)) == expected_hashes
        claimed = sorted((r[2], r[3]) for w in writes for r in w["receipts"] if r[0] == shared)
        stored = [(r.sequence, r.message_count) for r in store.receipts(shared, run_id=SHARED_RUN)]
        assert [seq for seq, _count in stored] == list(range(shared_turns))
        assert stored == claimed
        # A turn's receipt covers its own messages: counts rise by exactly the turn's size.
        sizes = {(r[2]): r[4] for w in writes for r in w["receipts"] if r[0] == shared}
        by_count = sorted(stored, key=lambda sc: sc[1])
        previous = 0
        for seq, count in by_count:
            assert count - previous == sizes[seq]
            previous = count
        stats = store.stats()
        assert stats["receipts"] == WRITERS * TURNS + shared_turns
        assert stats["messages"] == sum(len(h) for w in writes for h in w["sent"].values()) + len(expected_hashes)
        committed = [e for e in store.events() if e.kind == "receipt_committed"]
        assert len(committed) == stats["receipts"]
        report = store.verify()
        assert report.ok, report.mismatches
        assert report.receipts_ok == stats["receipts"]


def test_several_calls_can_share_one_read_snapshot(store):
    """Store.reading() is documented as "a consistent read scope: several SELECTs see one
    snapshot"; a reader that wants message_count and receipts from the same snapshot nests
    public calls inside it. That must work (or fail with a MobstoreError), never leak a raw
    apsw.SQLError ("cannot start a transaction within a transaction")."""
    sid = store.create_session()
    store.apply_runtime_turn(sid, "r", turn_batch(random.Random(1)))
    with store.reading():
        count = store.session(sid).message_count
        newest = max(r.message_count for r in store.receipts(sid))
    assert count == newest
