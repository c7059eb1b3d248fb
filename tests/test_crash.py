"""Crash safety (docs/durability.md): a real writer process is killed with SIGKILL at seeded random
moments; the file it leaves must pass `PRAGMA integrity_check`, hold every acknowledged
turn with exactly its messages, hold no partial turn, verify, and carry an O(delta)
digest state equal to a full recompute.

The writer's work is a deterministic plan (`turn_plan`, its source is sent to the child),
so the parent replays the same plan and knows the exact bytes every acknowledged turn
appended. A turn is acknowledged only when its line reached our pipe, which the child
writes after `apply_runtime_turn` returned; the one turn in flight at the kill may or
may not be committed, and must be all-or-nothing.

Also killed at random moments: `mobstore import-meerkat` (the target stays consistent and a
re-run completes it, identical to an uninterrupted import) and a PersistentSessionService with
live sessions and fast periodic checkpointers (the stored transcript is an untorn prefix of what
was appended). And: files mobstore creates are owner-only (0600).

Normal run: CRASH_ITERATIONS turn-writer kills, 6 import kills, 10 checkpointer kills.
`-m stress`: MOBSTORE_CRASH_ITERATIONS (default 200) turn-writer kills, a quarter of that (at
least 20) import kills, half of it (at least 50) checkpointer kills.
Reproduce a run with MOBSTORE_TEST_SEED=<printed seed>.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import random
import select
import signal
import subprocess
import sys
import textwrap
import time

import apsw
import pytest

import engine
from engine import digest

from .conftest import MEERKAT_DIR

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))
CRASH_ITERATIONS = 20
STRESS_ITERATIONS = int(os.environ.get("MOBSTORE_CRASH_ITERATIONS", "200"))
ITERATIONS_PER_FILE = 10  # a fresh database every N kills keeps the checks O(1) per kill
SESSIONS = 4
MAX_RUN_SECONDS = 0.35  # kill at most this long after the writer reported READY
EARLY_KILL_SHARE = 0.15  # share of kills aimed at start-up: imports, open, WAL recovery, schema creation
REALM = os.path.join(MEERKAT_DIR, "realm-0.7.28-attempted-turn.sqlite3")


def require_stress(request) -> None:
    """Stress tests run only when selected (`-m stress`); a plain `pytest` stays fast."""
    if "stress" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("stress run: select it with -m stress")


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


# ------------------------------------------------------------------------------------------
# The writer's plan. Its source is sent verbatim to the child: keep it self-contained
# (it may use only `random` and engine.demo).


def turn_plan(seed, session_ids, tag):
    """Yield (session_id, run_id, messages, boundary, contributing_input_ids) forever,
    deterministically from `seed`. 1-3 meerkat-shaped messages per turn; a few runs per
    session so sequences climb; run ids carry `tag` so each writer process has its own."""
    import random as _random

    from engine import demo as _demo

    rng = _random.Random(seed)
    runs = {sid: 0 for sid in session_ids}
    makers = (_demo.user_message, _demo.assistant_message, _demo.tool_results_message)
    turn = 0
    while True:
        sid = rng.choice(session_ids)
        if rng.random() < 0.2:
            runs[sid] += 1
        run_id = f"{tag}-run{runs[sid] % 3}"
        messages = [rng.choice(makers)(rng, rng.randint(40, 500)) for _ in range(rng.randint(1, 3))]
        boundary = rng.choice(("immediate", "run_start", "run_checkpoint"))
        input_ids = [f"{tag}-in{turn}-{k}" for k in range(rng.randint(0, 2))]
        yield sid, run_id, messages, boundary, input_ids
        turn += 1


def session_metadata(sid: str) -> dict:
    return {"session_metadata": {"comms_name": f"crashmob/worker/{sid}", "realm_id": "mob:crashmob",
                                 "peer_meta": {"labels": {"mob_id": "crashmob", "role": "worker",
                                                          "meerkat_id": sid}}}}


CHILD = (
    "import os, sys\n"
    "import engine\n"
    + textwrap.dedent(inspect.getsource(session_metadata))
    + textwrap.dedent(inspect.getsource(turn_plan))
    + textwrap.dedent("""
    db, seed, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    sids = sys.argv[4].split(",")
    store = engine.open(db)
    for sid in sids:
        if store.session(sid) is None:
            store.create_session(session_metadata(sid), session_id=sid)
            os.write(1, f"CREATED {sid}\\n".encode())
    os.write(1, b"READY\\n")
    for sid, run, msgs, boundary, ids in turn_plan(seed, sids, tag):
        r = store.apply_runtime_turn(sid, run, msgs, boundary=boundary, contributing_input_ids=ids)
        # One write(2) per line, after the call returned: a line we read is an acknowledged commit.
        os.write(1, f"ACK {sid} {run} {r.sequence} {r.message_count} {r.conversation_digest}\\n".encode())
    """)
)


# ------------------------------------------------------------------------------------------
# The parent's model of what must be in the file.


class Model:
    """Expected content: per session the exact message bytes, and every receipt."""

    def __init__(self, session_ids):
        self.session_ids = list(session_ids)
        self.created: set[str] = set()
        self.messages: dict[str, list[bytes]] = {sid: [] for sid in session_ids}
        self.receipts: dict[str, set[tuple]] = {sid: set() for sid in session_ids}  # (run, seq, count, digest)
        self.next_seq: dict[tuple[str, str], int] = {}
        self.turns = 0

    def expect_turn(self, turn) -> tuple:
        """The receipt the plan's next turn must produce (before it is known to be committed)."""
        sid, run, msgs, _boundary, _ids = turn
        bodies = [digest.message_bytes(m) for m in msgs]
        count = len(self.messages[sid]) + len(bodies)
        seq = self.next_seq.get((sid, run), 0)
        return sid, run, seq, count, bodies

    def commit_turn(self, sid, run, seq, count, bodies) -> str:
        self.messages[sid].extend(bodies)
        assert len(self.messages[sid]) == count
        receipt_digest = digest.transcript_digest(self.messages[sid])
        self.receipts[sid].add((run, seq, count, receipt_digest))
        self.next_seq[(sid, run)] = seq + 1
        self.turns += 1
        return receipt_digest


def kill_child(proc, *, wait_ready: bool, delay: float, what: str) -> list[str]:
    """Optionally wait for the child's READY line, sleep `delay`, SIGKILL it; return the
    complete stdout lines it wrote before dying (an unterminated last line was never
    acknowledged)."""
    out = b""
    try:
        deadline = time.monotonic() + 60
        while wait_ready and b"READY\n" not in out:
            assert time.monotonic() < deadline, f"{what} never became ready"
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                out += chunk
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out += rest
    assert proc.returncode == -signal.SIGKILL, f"{what} died on its own (rc={proc.returncode}):\n{err.decode()}"
    return [line.decode() for line in out.split(b"\n")[:-1]]


def run_writer(db: str, seed: int, tag: str, session_ids, rng: random.Random):
    """Start the writer, SIGKILL it at a random moment; return (lines, how) — the complete
    stdout lines it wrote before dying."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, db, str(seed), tag, ",".join(session_ids)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=ROOT,
    )
    early = rng.random() < EARLY_KILL_SHARE
    delay = rng.uniform(0.0, 0.25) if early else rng.uniform(0.0, MAX_RUN_SECONDS)
    lines = kill_child(proc, wait_ready=not early, delay=delay, what="writer")
    return lines, "early" if early else "running"


def check_file(db: str, model: Model, plan, acks: list[str], created: list[str]) -> None:
    """Everything docs/durability.md promises about a file a killed writer left behind."""
    if not os.path.exists(db) or os.path.getsize(db) == 0:
        assert not acks and not created, "acknowledged work, but there is no database"
        return
    # A raw connection first: it runs WAL recovery and checks the b-trees, whatever mobstore thinks.
    con = apsw.Connection(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        has_schema = con.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'ms_sessions'").fetchone()[0]
    finally:
        con.close()
    if not has_schema:  # killed before the schema transaction committed
        assert not acks and not created
        return

    with engine.open(db) as store:
        model.created.update(created)
        for sid in model.session_ids:
            if store.session(sid) is not None:
                model.created.add(sid)  # a create in flight at the kill may have committed
        for sid in model.created:
            s = store.session(sid)
            assert s is not None, f"acknowledged session {sid} is missing"
            assert s.metadata == session_metadata(sid)

        # Replay the plan: every ACK must be exactly the plan's next turn; then the one turn in
        # flight is either wholly present or wholly absent.
        for line in acks:
            sid, run, seq, count, bodies = model.expect_turn(next(plan))
            expected_digest = model.commit_turn(sid, run, seq, count, bodies)
            assert line == f"ACK {sid} {run} {seq} {count} {expected_digest}"
        sid, run, seq, count, bodies = model.expect_turn(next(plan))
        if sid in model.created:
            stored = store.session(sid).message_count
            if stored == count:
                model.commit_turn(sid, run, seq, count, bodies)
            else:
                assert stored == count - len(bodies), f"{sid}: partial turn ({stored} messages, turn ends at {count})"

        report = store.verify()
        assert report.ok, report.mismatches
        assert report.receipts == report.receipts_ok == sum(len(r) for r in model.receipts.values())

        con = store._connection
        for sid in model.session_ids:
            if sid not in model.created:
                assert store.session(sid) is None
                continue
            raw = store.raw_messages(sid)
            assert raw == model.messages[sid], f"{sid}: stored messages differ from the acknowledged ones"
            got = {(r.run_id, r.sequence, r.message_count, r.conversation_digest) for r in store.receipts(sid)}
            assert got == model.receipts[sid]
            # No partial turn: the transcript ends exactly at the newest receipt, and no message row
            # lies beyond message_count.
            count = store.session(sid).message_count
            assert count == max((r[2] for r in got), default=0)
            num, state_bytes = con.execute(
                "SELECT num, sha256_state FROM ms_sessions WHERE id = ?", (sid,)).fetchone()
            rows = con.execute("SELECT count(*) FROM ms_messages WHERE key >= ? AND key < ?",
                               (num << 32, (num + 1) << 32)).fetchone()[0]
            assert rows == count
            # The O(delta) state agrees with a full recompute.
            state = digest.TranscriptState.from_bytes(state_bytes)
            assert state.count == count
            assert state.digest() == digest.transcript_digest(raw) == store.transcript_digest(sid)
            appended = sum(e.detail.get("appended", 0) for e in store.events(session_id=sid))
            assert appended == count, f"{sid}: event log says {appended} messages appended, {count} stored"
        # The event log was written in the same transactions.
        kinds = dict(con.execute("SELECT kind, count(*) FROM ms_events GROUP BY kind").fetchall())
        assert kinds.get("receipt_committed", 0) == model.turns
        assert kinds.get("session_created", 0) == len(model.created)


def crash_loop(tmp_path, rng: random.Random, iterations: int) -> dict:
    stats = {"kills": 0, "early": 0, "running": 0, "acked_turns": 0, "in_flight_committed": 0, "files": 0}
    model = db = None
    for i in range(iterations):
        if i % ITERATIONS_PER_FILE == 0:
            stats["files"] += 1
            db = str(tmp_path / f"crash-{i // ITERATIONS_PER_FILE}.db")
            model = Model([f"sess-{i}-{k}" for k in range(SESSIONS)])
            # The writer starts from an absent file: kills also land in schema creation.
        seed = rng.randrange(1 << 30)
        tag = f"w{i}"
        lines, how = run_writer(db, seed, tag, model.session_ids, rng)
        created = [line.split()[1] for line in lines if line.startswith("CREATED ")]
        acks = [line for line in lines if line.startswith("ACK ")]
        before = model.turns
        try:
            check_file(db, model, turn_plan(seed, model.session_ids, tag), acks, created)
        except AssertionError as exc:
            raise AssertionError(f"after kill {i} ({how}, writer seed {seed}, {len(acks)} acks): {exc}") from exc
        stats["kills"] += 1
        stats[how] += 1
        stats["acked_turns"] += len(acks)
        stats["in_flight_committed"] += model.turns - before - len(acks)
    return stats


def test_sigkill_during_turns_loses_nothing_acknowledged(tmp_path, rng):
    stats = crash_loop(tmp_path, rng, CRASH_ITERATIONS)
    print(f"crash loop: {stats}")
    assert stats["kills"] == CRASH_ITERATIONS
    assert stats["acked_turns"] > 0  # the loop really exercised commits


@pytest.mark.stress
def test_stress_sigkill_during_turns(tmp_path, rng, request):
    require_stress(request)
    stats = crash_loop(tmp_path, rng, STRESS_ITERATIONS)
    print(f"stress crash loop: {stats}")
    assert stats["kills"] == STRESS_ITERATIONS


# ------------------------------------------------------------------------------------------
# Group commits: several threads share one Store, so their turns commit together (one
# BEGIN IMMEDIATE ... COMMIT, each turn in its savepoint; engine/groupcommit.py), and now and
# then a thread hands several turns to apply_runtime_turns at once. Each thread has its own
# sessions and its own plan, so the parent replays every thread like the single writer above;
# each thread has at most one call in flight at the kill, whole or absent (a batch call: all
# of its turns or none).

GROUP_THREADS = 4
GROUP_SESSIONS_PER_THREAD = 2


def group_plan(seed, session_ids, tag):
    """Yield lists of turns: one turn (apply_runtime_turn) or 2-3 (apply_runtime_turns)."""
    import random as _random

    rng = _random.Random(seed ^ 0x5EED)
    turns = turn_plan(seed, session_ids, tag)
    while True:
        yield [next(turns) for _ in range(1 if rng.random() < 0.8 else rng.randint(2, 3))]


GROUP_CHILD = (
    "import os, sys, threading\n"
    "import engine\n"
    + textwrap.dedent(inspect.getsource(session_metadata))
    + textwrap.dedent(inspect.getsource(turn_plan))
    + textwrap.dedent(inspect.getsource(group_plan))
    + textwrap.dedent("""
    db, seed, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    groups = [g.split(",") for g in sys.argv[4].split(";")]
    store = engine.open(db)
    for sids in groups:
        for sid in sids:
            if store.session(sid) is None:
                store.create_session(session_metadata(sid), session_id=sid)
                os.write(1, f"CREATED {sid}\\n".encode())
    go = threading.Barrier(len(groups) + 1)

    def agent(k, sids):
        go.wait()
        for item in group_plan(seed + k, sids, f"{tag}t{k}"):
            if len(item) == 1:
                sid, run, msgs, boundary, ids = item[0]
                receipts = [store.apply_runtime_turn(sid, run, msgs, boundary=boundary, contributing_input_ids=ids)]
            else:
                receipts = store.apply_runtime_turns([engine.Turn(*t) for t in item])
            batches = store.group_commit_stats["batches"]
            # One write(2) for the call's lines, after it returned: all acknowledged at once.
            os.write(1, "".join(f"ACK {k} {t[0]} {t[1]} {r.sequence} {r.message_count} {r.conversation_digest} {batches}\\n"
                                for t, r in zip(item, receipts)).encode())

    threads = [threading.Thread(target=agent, args=(k, sids), daemon=True) for k, sids in enumerate(groups)]
    for t in threads:
        t.start()
    os.write(1, b"READY\\n")
    go.wait()
    for t in threads:
        t.join()
    """)
)


def check_group_file(db: str, models: list, seeds: list, tags: list, lines: list[str]) -> dict:
    """check_file for a file several threads wrote through group commits."""
    created = [line.split()[1] for line in lines if line.startswith("CREATED ")]
    acks = [line.split() for line in lines if line.startswith("ACK ")]
    if not os.path.exists(db) or os.path.getsize(db) == 0:
        assert not acks and not created
        return {"acked": 0, "batches": 0, "in_flight_committed": 0}
    con = apsw.Connection(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        has_schema = con.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'ms_sessions'").fetchone()[0]
    finally:
        con.close()
    if not has_schema:
        assert not acks and not created
        return {"acked": 0, "batches": 0, "in_flight_committed": 0}
    in_flight_committed = 0
    with engine.open(db) as store:
        for k, model in enumerate(models):
            model.created.update(sid for sid in model.session_ids if sid in created or store.session(sid))
            for sid in model.created:
                assert store.session(sid) is not None, f"acknowledged session {sid} is missing"
            plan = group_plan(seeds[k], model.session_ids, tags[k])
            mine = [a for a in acks if a[1] == str(k)]
            done = 0
            while done < len(mine):
                item = next(plan)
                assert done + len(item) <= len(mine), f"thread {k}: a call acknowledged only in part"
                for turn in item:
                    sid, run, seq, count, bodies = model.expect_turn(turn)
                    expected_digest = model.commit_turn(sid, run, seq, count, bodies)
                    assert mine[done][2:7] == [sid, run, str(seq), str(count), expected_digest], (k, mine[done])
                    done += 1
            # The call in flight: every one of its turns, or none.
            item = next(plan)
            trial = Model(model.session_ids)
            trial.messages = {sid: list(v) for sid, v in model.messages.items()}
            trial.next_seq = dict(model.next_seq)
            before = {sid: len(v) for sid, v in model.messages.items()}
            expected = []
            for turn in item:
                sid, run, seq, count, bodies = trial.expect_turn(turn)
                trial.commit_turn(sid, run, seq, count, bodies)
                expected.append((sid, run, seq, count, bodies))
            touched = {t[0] for t in expected}
            stored = {sid: store.message_count(sid) for sid in touched if sid in model.created}
            if stored and all(stored[sid] == len(trial.messages[sid]) for sid in stored):
                for sid, run, seq, count, bodies in expected:
                    model.commit_turn(sid, run, seq, count, bodies)
                in_flight_committed += 1
            else:
                assert all(stored[sid] == before[sid] for sid in stored), f"thread {k}: a call committed in part"
        report = store.verify()
        assert report.ok, report.mismatches
        assert report.receipts == report.receipts_ok == sum(len(r) for m in models for r in m.receipts.values())
        for model in models:
            for sid in model.session_ids:
                if sid not in model.created:
                    continue
                assert store.raw_messages(sid) == model.messages[sid], f"{sid}: stored messages differ"
                got = {(r.run_id, r.sequence, r.message_count, r.conversation_digest) for r in store.receipts(sid)}
                assert got == model.receipts[sid]
                state = digest.TranscriptState.from_bytes(store._connection.execute(
                    "SELECT sha256_state FROM ms_sessions WHERE id = ?", (sid,)).fetchone()[0])
                assert state.digest() == digest.transcript_digest(model.messages[sid])
        kinds = dict(store._connection.execute("SELECT kind, count(*) FROM ms_events GROUP BY kind").fetchall())
        assert kinds.get("receipt_committed", 0) == sum(m.turns for m in models)
    return {"acked": len(acks), "batches": max((int(a[7]) for a in acks), default=0),
            "in_flight_committed": in_flight_committed}


def group_crash_loop(tmp_path, rng: random.Random, iterations: int) -> dict:
    stats = {"kills": 0, "acked_turns": 0, "commits_seen": 0, "in_flight_committed": 0}
    for i in range(iterations):
        db = str(tmp_path / f"group-{i}.db")
        models = [Model([f"g{i}-t{k}-s{j}" for j in range(GROUP_SESSIONS_PER_THREAD)]) for k in range(GROUP_THREADS)]
        seed = rng.randrange(1 << 30)
        seeds = [seed + k for k in range(GROUP_THREADS)]
        tags = [f"g{i}t{k}" for k in range(GROUP_THREADS)]
        proc = subprocess.Popen(
            [sys.executable, "-c", GROUP_CHILD, db, str(seed), f"g{i}", ";".join(",".join(m.session_ids) for m in models)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=ROOT,
        )
        lines = kill_child(proc, wait_ready=True, delay=rng.uniform(0.0, MAX_RUN_SECONDS), what="group writer")
        try:
            got = check_group_file(db, models, seeds, tags, lines)
        except AssertionError as exc:
            raise AssertionError(f"after group kill {i} (seed {seed}): {exc}") from exc
        stats["kills"] += 1
        stats["acked_turns"] += got["acked"]
        stats["commits_seen"] += got["batches"]
        stats["in_flight_committed"] += got["in_flight_committed"]
    return stats


def test_sigkill_during_group_commits_loses_nothing_acknowledged(tmp_path, rng):
    stats = group_crash_loop(tmp_path, rng, 10)
    print(f"group commit crash loop: {stats}")
    assert stats["kills"] == 10 and stats["acked_turns"] > 0
    # The threads really shared commits: fewer commits than acknowledged turns.
    assert stats["commits_seen"] < stats["acked_turns"], stats


@pytest.mark.stress
def test_stress_sigkill_during_group_commits(tmp_path, rng, request):
    require_stress(request)
    stats = group_crash_loop(tmp_path, rng, max(50, STRESS_ITERATIONS // 2))
    print(f"stress group commit crash loop: {stats}")


# ------------------------------------------------------------------------------------------
# A killed import-meerkat


def normalised_fingerprint(path: str) -> str:
    """conftest.fingerprint without the columns an import stamps per run: wall-clock times
    (event and receipt commit times) and the writing connection's id; everything else must be
    byte-identical."""
    skip = {("ms_events", "at_ms"), ("ms_events", "writer"), ("ms_receipts", "committed_at_ms")}
    h = hashlib.sha256()
    con = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
            "ORDER BY name")]
        for table in tables:
            cols = [r[1] for r in con.execute("SELECT * FROM pragma_table_info(?)", (table,))]
            keep = [c for c in cols if (table, c) not in skip]
            h.update(f"{table}:{keep}".encode())
            # Identifiers come from sqlite_schema / pragma_table_info, never from data.
            select_sql = f'SELECT {", ".join(chr(34) + c + chr(34) for c in keep)} FROM "{table}" ORDER BY 1, 2'
            for row in con.execute(select_sql):
                h.update(repr(row).encode())
    finally:
        con.close()
    return h.hexdigest()


def run_import(target: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", "import-meerkat", REALM, "--into", target, "--json"],
                          capture_output=True, env=_env(), cwd=ROOT, timeout=300)


def import_crash_loop(tmp_path, rng: random.Random, kills: int) -> dict:
    reference = str(tmp_path / "reference.db")
    started = time.monotonic()
    ref = run_import(reference)
    duration = time.monotonic() - started
    assert ref.returncode in (0, 1), ref.stderr.decode()
    ref_report = json.loads(ref.stdout)
    assert ref_report["sessions_imported"] >= 1, f"the reference import imported nothing: {ref_report}"
    with engine.open(reference) as store:
        report = store.verify()
        assert report.ok, f"the uninterrupted import does not verify: {report.mismatches}"
    expected = normalised_fingerprint(reference)
    stats = {"kills": 0, "target_written": 0}
    for i in range(kills):
        target = str(tmp_path / f"killed-{i}.db")
        proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "import-meerkat", REALM, "--into", target, "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=ROOT,
        )
        time.sleep(rng.uniform(0.0, duration * 1.1))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        context = f"import kill {i} (rc={proc.returncode})"
        if os.path.exists(target) and os.path.getsize(target) > 0:
            stats["target_written"] += 1
            con = apsw.Connection(target)
            try:
                assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)], context
            finally:
                con.close()
            with engine.open(target) as store:
                report = store.verify()
                assert report.ok, (context, report.mismatches)
        rerun = run_import(target)
        assert rerun.returncode == ref.returncode, (context, rerun.stderr.decode())
        assert normalised_fingerprint(target) == expected, f"{context}: the re-run did not complete the import"
        with engine.open(target) as store:
            assert store.verify().ok
        stats["kills"] += 1
    return stats


def test_killed_import_meerkat_is_consistent_and_rerun_completes(tmp_path, rng):
    stats = import_crash_loop(tmp_path, rng, 6)
    print(f"import crash loop: {stats}")


@pytest.mark.stress
def test_stress_killed_import_meerkat(tmp_path, rng, request):
    require_stress(request)
    stats = import_crash_loop(tmp_path, rng, max(20, STRESS_ITERATIONS // 4))
    print(f"stress import crash loop: {stats}")


# ------------------------------------------------------------------------------------------
# Files mobstore creates are owner-only (they hold every agent's transcript). The process umask
# is cleared first, so a file created with SQLite's default 0644 fails the test.


def _modes(path: str) -> dict[str, int]:
    import stat

    return {os.path.basename(p): stat.S_IMODE(os.stat(p).st_mode)
            for p in (path, path + "-wal", path + "-shm") if os.path.exists(p)}


@pytest.fixture
def no_umask():
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.parametrize("spelling", ["path", "pathlike", "uri"])
def test_new_database_and_its_wal_are_owner_only(tmp_path, no_umask, spelling):
    path = str(tmp_path / "private.db")
    target = {"path": path, "pathlike": tmp_path / "private.db", "uri": f"file:{path}"}[spelling]
    with engine.open(target) as store:
        store.apply_runtime_turn(store.create_session(), "r", [{"role": "user", "content": "x",
                                                                "created_at": "2026-01-01T00:00:00Z"}])
        modes = _modes(path)
        assert set(modes) == {"private.db", "private.db-wal", "private.db-shm"}
        assert modes == dict.fromkeys(modes, 0o600), {k: oct(v) for k, v in modes.items()}


@pytest.mark.parametrize("command", ["import-meerkat", "demo"])
def test_cli_creates_owner_only_databases(tmp_path, command):
    path = str(tmp_path / "cli.db")
    argv = (["import-meerkat", REALM, "--into", path] if command == "import-meerkat"
            else ["demo", "--db", path, "--agents", "2", "--turns", "1"])
    proc = subprocess.run([sys.executable, "-m", "engine", *argv], capture_output=True, env=_env(), cwd=ROOT,
                          timeout=300, preexec_fn=lambda: os.umask(0))
    assert proc.returncode in (0, 1), proc.stderr.decode()
    modes = _modes(path)
    assert modes and modes == dict.fromkeys(modes, 0o600), {k: oct(v) for k, v in modes.items()}


# ------------------------------------------------------------------------------------------
# A killed checkpointer (engine.services.PersistentSessionService, docs/services.md): live sessions are
# appended to in memory and written by periodic checkpointers (a short interval, so saves land
# anywhere between appends), by explicit checkpoint() and by turns (buffered messages + turn +
# receipt in one transaction); checkpointers are cancelled and re-armed now and then.
# After the kill, each session's stored transcript must be a prefix of what the writer
# appended (in order, nothing torn), end on no turn's inside, cover every acknowledged
# checkpoint and turn, and stay exactly where it was while the checkpointers were cancelled.

CHECKPOINT_INTERVAL = 0.01


def checkpointer_plan(seed, session_ids, tag):
    """Yield service operations forever, deterministically from `seed`:
    ("append", sid, messages) | ("turn", sid, run_id, messages) | ("checkpoint", sid) |
    ("metadata", sid, doc) | ("sleep", seconds) | ("cancel",) | ("rearm",).
    While cancelled only append / metadata / sleep / rearm come (no turns, no checkpoints)."""
    import random as _random

    from engine import demo as _demo

    rng = _random.Random(seed)
    makers = (_demo.user_message, _demo.assistant_message, _demo.tool_results_message)
    cancelled = False
    step = 0
    while True:
        step += 1
        sid = rng.choice(session_ids)
        r = rng.random()
        msgs = [rng.choice(makers)(rng, rng.randint(40, 300)) for _ in range(rng.randint(1, 3))]
        if r < 0.5:
            yield ("append", sid, msgs)
        elif r < 0.6:
            yield ("metadata", sid, {"v": step, "tag": tag})
        elif r < 0.75:
            yield ("sleep", rng.uniform(0.0, 0.03))
        elif cancelled:
            cancelled = r >= 0.85
            if not cancelled:
                yield ("rearm",)
        elif r < 0.87:
            yield ("turn", sid, f"{tag}-run{rng.randrange(2)}", msgs)
        elif r < 0.97:
            yield ("checkpoint", sid)
        else:
            cancelled = True
            yield ("cancel",)


CHECKPOINTER_CHILD = (
    "import asyncio, os, sys\n"
    "from engine.services import PersistentSessionService\n"
    + textwrap.dedent(inspect.getsource(checkpointer_plan))
    + textwrap.dedent("""
    def out(line):
        os.write(1, (line + "\\n").encode())  # one write(2) per acknowledgement

    async def main(db, seed, tag, sids, interval):
        svc = PersistentSessionService(db, checkpoint_interval=interval)
        for sid in sids:
            await svc.create_session({"v": -1, "tag": tag}, session_id=sid)
            out(f"CREATED {sid}")
        out("READY")
        for op in checkpointer_plan(seed, sids, tag):
            if op[0] == "append":
                await svc.append_live(op[1], op[2])
            elif op[0] == "metadata":
                await svc.set_live_metadata(op[1], op[2])
            elif op[0] == "sleep":
                await asyncio.sleep(op[1])
            elif op[0] == "turn":
                r = (await svc.apply_runtime_turn(op[1], op[2], op[3])).receipt
                out(f"TURN {op[1]} {op[2]} {r.sequence} {r.message_count}")
            elif op[0] == "checkpoint":
                await svc.checkpoint(op[1])
                out(f"CKPT {op[1]}")
            elif op[0] == "cancel":
                await svc.cancel_all_checkpointers()
                for sid in sids:  # waits for a save already past the gate; writes nothing
                    assert not await svc.checkpoint(sid)
                counts = [(await svc.load_persisted_session(sid)).message_count for sid in sids]
                out("CANCELLED " + " ".join(f"{sid}={n}" for sid, n in zip(sids, counts)))
            elif op[0] == "rearm":
                await svc.rearm_all_checkpointers()
                out("REARMED")

    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].split(","), float(sys.argv[5])))
    """)
)


def _walk_checkpointer_plan(seed, sids, tag, lines, stored_counts, min_steps=0, cap=200_000):
    """Replay the plan against the acknowledgements; returns per session: the planned message
    bytes in order, the turns as (end, run, seq), the metadata versions as (messages before it,
    v), the acknowledged minimum count, the acknowledged minimum metadata version, and the
    counts frozen by a CANCELLED that no REARMED followed (or None)."""
    acks = [line for line in lines if line.split(" ", 1)[0] in ("TURN", "CKPT", "CANCELLED", "REARMED")]
    seq = {sid: [] for sid in sids}
    turns = {sid: [] for sid in sids}
    versions = {sid: [(0, -1)] for sid in sids}
    acked_count = dict.fromkeys(sids, 0)
    acked_version = dict.fromkeys(sids, -1)
    next_seq: dict = {}
    frozen = None
    k = 0
    for steps, op in enumerate(checkpointer_plan(seed, sids, tag)):
        done_acks = k >= len(acks)
        if done_acks and steps >= min_steps and all(len(seq[s]) >= stored_counts.get(s, 0) for s in sids):
            break
        assert steps < cap, "the stored transcripts are longer than anything the writer appended"
        kind = op[0]
        if kind == "append":
            seq[op[1]].extend(digest.message_bytes(m) for m in op[2])
        elif kind == "metadata":
            versions[op[1]].append((len(seq[op[1]]), op[2]["v"]))
        elif kind == "turn":
            sid, run = op[1], op[2]
            seq[sid].extend(digest.message_bytes(m) for m in op[3])
            sequence = next_seq.get((sid, run), 0)
            next_seq[(sid, run)] = sequence + 1
            turns[sid].append((len(seq[sid]), len(op[3]), run, sequence))
            if not done_acks:
                assert acks[k] == f"TURN {sid} {run} {sequence} {len(seq[sid])}", (acks[k], op[:3])
                acked_count[sid] = len(seq[sid])  # the whole live state was written with the turn
                acked_version[sid] = versions[sid][-1][1]
                k += 1
        elif kind == "checkpoint":
            if not done_acks:
                assert acks[k] == f"CKPT {op[1]}", (acks[k], op[:2])
                acked_count[op[1]] = len(seq[op[1]])
                acked_version[op[1]] = versions[op[1]][-1][1]
                k += 1
        elif kind == "cancel":
            if not done_acks:
                assert acks[k].startswith("CANCELLED "), acks[k]
                frozen = {pair.split("=")[0]: int(pair.split("=")[1]) for pair in acks[k].split()[1:]}
                k += 1
        elif kind == "rearm":
            if not done_acks:
                assert acks[k] == "REARMED", acks[k]
                frozen = None
                k += 1
    return seq, turns, versions, acked_count, acked_version, frozen


def check_checkpointer_file(db, seed, sids, tag, lines):
    created = [line.split()[1] for line in lines if line.startswith("CREATED ")]
    if not os.path.exists(db) or os.path.getsize(db) == 0:
        assert not created
        return
    con = apsw.Connection(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        has_schema = con.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'ms_sessions'").fetchone()[0]
    finally:
        con.close()
    if not has_schema:
        assert not created
        return
    with engine.open(db) as store:
        report = store.verify()
        assert report.ok, report.mismatches
        present = [sid for sid in sids if store.session(sid) is not None]
        assert set(created) <= set(present)
        stored = {sid: store.raw_messages(sid) for sid in present}
        # Metadata version v was set at plan step v: walk at least that far.
        newest_version = max(store.session(sid).metadata["v"] for sid in present)
        seq, turns, versions, acked_count, acked_version, frozen = _walk_checkpointer_plan(
            seed, sids, tag, lines, {sid: len(v) for sid, v in stored.items()}, newest_version)
        for sid in present:
            n = len(stored[sid])
            assert stored[sid] == seq[sid][:n], f"{sid}: stored transcript is not a prefix of what was appended"
            assert n >= acked_count[sid], f"{sid}: {n} messages stored, {acked_count[sid]} acknowledged"
            if frozen is not None:
                assert n == frozen[sid], f"{sid}: written while its checkpointer was cancelled"
            expected_receipts = set()
            for end, size, run, sequence in turns[sid]:
                assert not end - size < n < end, f"{sid}: {n} messages stored, inside a turn ending at {end}"
                if end <= n:
                    expected_receipts.add((run, sequence, end))
            got = {(r.run_id, r.sequence, r.message_count) for r in store.receipts(sid)}
            assert got == expected_receipts, f"{sid}: receipts {sorted(got)} != {sorted(expected_receipts)}"
            meta = store.session(sid).metadata
            assert meta["tag"] == tag
            allowed = [v for _at, v in versions[sid]]
            assert meta["v"] in allowed and meta["v"] >= acked_version[sid], (sid, meta, acked_version[sid])
            num, state_bytes = store._connection.execute(
                "SELECT num, sha256_state FROM ms_sessions WHERE id = ?", (sid,)).fetchone()
            assert digest.TranscriptState.from_bytes(state_bytes).digest() == digest.transcript_digest(stored[sid])
            appended = sum(e.detail.get("appended", 0) for e in store.events(session_id=sid))
            assert appended == n, f"{sid}: event log says {appended} messages appended, {n} stored"


def checkpointer_crash_loop(tmp_path, rng: random.Random, iterations: int) -> dict:
    stats = {"kills": 0, "cancelled_at_kill": 0, "acks": 0, "stored_messages": 0}
    for i in range(iterations):
        db = str(tmp_path / f"live-{i}.db")
        sids = [f"live-{i}-{k}" for k in range(3)]
        seed = rng.randrange(1 << 30)
        tag = f"c{i}"
        proc = subprocess.Popen(
            [sys.executable, "-c", CHECKPOINTER_CHILD, db, str(seed), tag, ",".join(sids), str(CHECKPOINT_INTERVAL)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=ROOT,
        )
        lines = kill_child(proc, wait_ready=True, delay=rng.uniform(0.0, 0.6), what="service")
        try:
            check_checkpointer_file(db, seed, sids, tag, lines)
        except AssertionError as exc:
            raise AssertionError(f"after checkpointer kill {i} (seed {seed}, {len(lines)} lines): {exc}") from exc
        stats["kills"] += 1
        stats["acks"] += sum(1 for line in lines if line.startswith(("TURN", "CKPT")))
        cancels = [line for line in lines if line.startswith(("CANCELLED", "REARMED"))]
        stats["cancelled_at_kill"] += bool(cancels and cancels[-1].startswith("CANCELLED"))
        with engine.open(db) as store:
            stats["stored_messages"] += store.stats()["messages"]
    return stats


def test_killed_checkpointer_leaves_a_consistent_prefix(tmp_path, rng):
    stats = checkpointer_crash_loop(tmp_path, rng, 10)
    print(f"checkpointer crash loop: {stats}")
    assert stats["acks"] > 0 and stats["stored_messages"] > 0


@pytest.mark.stress
def test_stress_killed_checkpointer(tmp_path, rng, request):
    require_stress(request)
    stats = checkpointer_crash_loop(tmp_path, rng, max(50, STRESS_ITERATIONS // 2))
    print(f"stress checkpointer crash loop: {stats}")
