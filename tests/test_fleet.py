"""engine.fleet: many stores answered at once through DuckDB, and the Parquet export.

The oracle is mobstore's own single-store API: over the 50 seeded stores of
tests/fleet_stores.py, Fleet.reconcile must be exactly the union of every store's
reconcile_mob (members and broken claims tagged with their store) plus the duplicates and
roster diff of that union; the Parquet export read back by DuckDB with the shipped
reconcile.sql must give the same rows. A differential test holds DuckDB's reading of the
rule to SQLite's on generated binding rows. MOBSTORE_TEST_SEED reproduces a run.
"""

from __future__ import annotations

import json
import os
import random
import shutil

import apsw
import duckdb
import orjson
import pytest

import engine
from engine import fleet
from engine.fleet import sql as fleet_sql
from engine.fleet.discover import discover

from .conftest import HERE, fingerprint
from .fleet_stores import MOB, ROSTER, TRAVELLER, build_fleet

SEED = int(os.environ.get("MOBSTORE_TEST_SEED", random.randrange(1 << 30)))


@pytest.fixture(scope="module")
def fleet_root(tmp_path_factory):
    print(f"\n[test_fleet] MOBSTORE_TEST_SEED={SEED}")
    root = str(tmp_path_factory.mktemp("fleet"))
    build_fleet(root, SEED)
    return root


@pytest.fixture(scope="module")
def the_fleet(fleet_root):
    with fleet.Fleet([fleet_root]) as f:
        yield f


def per_store(the_fleet, fn):
    """{store id: fn(store)} with each store opened read-only by the single-store API."""
    out = {}
    for s in the_fleet.stores:
        with engine.open(s.path, readonly=True) as store:
            out[s.store] = fn(store)
    return out


def expected_reconciliation(the_fleet, roster, accept_newer):
    """What the fleet answer must be, built from reconcile_mob of every store."""
    recs = per_store(the_fleet, lambda st: st.reconcile_mob(MOB, roster, accept_newer=accept_newer))
    members = {(sid, m.session_id, m.profile, m.meerkat_id) for sid, r in recs.items() for m in r.members}
    broken = {(sid, b.session_id, b.reason, b.comms_name, b.realm_id) for sid, r in recs.items() for b in r.broken}
    slots: dict = {}
    for store, session_id, profile, meerkat_id in members:
        slots.setdefault((profile, meerkat_id), set()).add((store, session_id))
    duplicates = {slot: claims for slot, claims in slots.items() if len(claims) > 1}
    wanted = set(roster) if roster is not None else None
    missing = set() if wanted is None else wanted - set(slots)
    unexpected = set() if wanted is None else {m for m in members if (m[2], m[3]) not in wanted}
    return recs, members, broken, duplicates, missing, unexpected


def as_sets(rec):
    return (
        {tuple(m) for m in rec.members},
        {(b.store, b.session_id, b.reason, b.comms_name, b.realm_id) for b in rec.broken},
        {(d.profile, d.meerkat_id): set(d.claims) for d in rec.duplicates},
        set(rec.missing),
        {tuple(m) for m in rec.unexpected},
    )


# ------------------------------------------------------------------------------------------
# discovery


def test_discovery_finds_every_store_and_skips_the_rest(fleet_root, the_fleet):
    assert len(the_fleet.stores) == 50
    assert the_fleet.problems == ()
    assert [os.path.basename(p.path) for p in the_fleet.skipped] == ["other-program.sqlite"]
    ids = [s.store for s in the_fleet.stores]
    assert len(set(ids)) == 50
    assert "machine-00.agents" in ids and "store-01" in ids
    for s in the_fleet.stores:  # partition-safe names
        assert all(c.isalnum() or c in "._-" for c in s.store), s.store
    # a glob (quoted: expanded by us) and explicit files give the same stores
    globbed = discover([os.path.join(fleet_root, "machine-*", "*.db"), os.path.join(fleet_root, "store-*.db")])
    assert sorted(s.path for s in globbed.stores) == sorted(s.path for s in the_fleet.stores)
    # a file named twice (and a symlink to it) is read once; -wal/-shm beside a store never count
    one = the_fleet.stores[0].path
    link = os.path.join(os.path.dirname(fleet_root), "link.db")
    if not os.path.exists(link):
        os.symlink(one, link)
    twice = discover([one, one, link])
    assert len(twice.stores) == 1 and twice.problems == ()


def test_discovery_errors(tmp_path):
    with pytest.raises(engine.InvalidInputError, match="no such file"):
        discover([str(tmp_path / "missing.db")])
    with pytest.raises(engine.InvalidInputError, match="matches no file"):
        discover([str(tmp_path / "*.db")])
    with pytest.raises(engine.InvalidInputError, match="list of paths"):
        discover(str(tmp_path))
    with pytest.raises(engine.InvalidInputError, match="no mobstore store"):
        discover([str(tmp_path)])
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"SQLite format 3\x00" + b"\x01" * 4000)
    notes = tmp_path / "notes.db"
    notes.write_text("hello")
    found = discover([str(junk), str(notes)])
    assert found.stores == ()
    assert {os.path.basename(p.path) for p in found.problems} == {"junk.db", "notes.db"}


def test_newer_schema_is_a_problem_not_a_crash(tmp_path):
    good = str(tmp_path / "good.db")
    with engine.open(good) as s:
        s.create_session(engine.demo.mob_metadata(MOB, "coder", "a"))
    newer = str(tmp_path / "newer.db")
    with engine.open(newer) as s:
        s.create_session(engine.demo.mob_metadata(MOB, "coder", "a"))
    con = apsw.Connection(newer)
    con.execute("PRAGMA user_version = 99")
    con.close()
    with fleet.Fleet([str(tmp_path)]) as f:
        rec = f.reconcile(MOB)
    assert [s.store for s in rec.stores] == ["good"]
    assert [(os.path.basename(p.path), "newer than this mobstore" in p.problem) for p in rec.problems] == [
        ("newer.db", True)]
    assert len(rec.members) == 1 and not rec.ok


def test_an_older_schema_is_read_and_never_written(tmp_path):
    """A store of schema version 1 (tests/fixtures/schema/v1.sql: schema.sql as released at
    version 1), as an agent on an older mobstore ships it: reconcile and stats read it as it
    is; verify and export read an upgraded private copy; the file is never written."""
    old = str(tmp_path / "old.db")
    con = apsw.Connection(old)
    with open(os.path.join(HERE, "fixtures", "schema", "v1.sql"), encoding="utf-8") as fh:
        con.execute(fh.read())
    md = engine.demo.mob_metadata(MOB, "coder", "a")
    bodies = [engine.digest.message_bytes({"role": "user", "content": "hi"})]
    state = engine.digest.TranscriptState.new("f3")
    state.absorb(bodies)
    con.execute("INSERT INTO ms_sessions (num, id, created_at_ms, updated_at_ms, message_count, message_bytes, "
                "metadata_json, sha256_state) VALUES (1, 's-old', 0, 0, 1, ?, ?, ?)",
                (len(bodies[0]), engine.digest.dumps_value(md), state.to_bytes()))
    con.execute("INSERT INTO ms_messages (key, body) VALUES (?, ?)", ((1 << 32), bodies[0]))
    con.execute(f"INSERT INTO ms_bindings VALUES ({', '.join('?' * 14)})",
                engine.sessions.BindingFacts.from_metadata(md).row("s-old"))
    con.execute("INSERT INTO ms_receipts (session_num, run_id, sequence, boundary, conversation_digest, "
                "message_count, profile, contributing_input_ids, committed_at_ms) VALUES (1, 'r', 0, 'run_start', ?, "
                "1, 'f3', '[]', 0)", (state.digest(),))
    con.execute("PRAGMA user_version = 1")
    con.close()
    before = fingerprint(old)
    with fleet.Fleet([old]) as f:
        assert [m.session_id for m in f.reconcile(MOB).members] == ["s-old"]
        assert f.stats().totals["receipts"] == 1
        report = f.verify(workers=1)
        export = f.export_parquet(str(tmp_path / "out"))
    assert report.ok and report.problems == () and report.totals["receipts_ok"] == 1
    assert report.stores[0].report["schema_version"] == 1
    assert export.ok and export.totals["receipts"] == 1
    assert fingerprint(old) == before
    con = apsw.Connection(old, flags=apsw.SQLITE_OPEN_READONLY)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 1
    con.close()


# ------------------------------------------------------------------------------------------
# reconcile and members against the single-store API


@pytest.mark.parametrize("accept_newer", [False, True])
@pytest.mark.parametrize("with_roster", [True, False])
def test_reconcile_is_the_union_of_reconcile_mob(the_fleet, accept_newer, with_roster):
    roster = ROSTER if with_roster else None
    recs, members, broken, duplicates, missing, unexpected = expected_reconciliation(the_fleet, roster, accept_newer)
    rec = the_fleet.reconcile(MOB, roster, accept_newer=accept_newer)
    got_members, got_broken, got_dups, got_missing, got_unexpected = as_sets(rec)
    assert got_members == members
    assert got_broken == broken
    assert got_dups == duplicates
    assert got_missing == missing
    assert got_unexpected == unexpected
    assert rec.roster_given is with_roster and rec.accept_newer is accept_newer and rec.problems == ()
    # the fixture really has what the test is about
    assert any(d.cross_store for d in rec.duplicates)
    in_store = [(st, d) for st, r in recs.items() for d in r.duplicates]
    assert in_store, "no store has an in-store duplicate"
    for st, d in in_store:  # every in-store duplicate is a fleet duplicate with at least those claims
        assert {(st, sid) for sid in d.session_ids} <= got_dups[(d.profile, d.meerkat_id)]
    travel = got_dups[("tester", "agent-travel")]
    assert {sid for _st, sid in travel} == {TRAVELLER} and len(travel) == 10  # one session on ten machines
    assert len({b[2] for b in broken}) >= 6
    if with_roster:
        assert ("coder", "agent-nobody") in got_missing and got_unexpected
    assert not rec.ok
    # order: members by (profile, meerkat_id, session_id, store), like reconcile_mob within a store
    assert list(rec.members) == sorted(rec.members, key=lambda m: (m.profile, m.meerkat_id, m.session_id, m.store))
    # JSON shape
    doc = rec.to_dict()
    assert doc["ok"] is False and len(doc["members"]) == len(members) and len(doc["stores"]) == 50


def test_members_is_the_union_of_mob_members(the_fleet):
    expected = {(st, m.session_id, m.profile, m.meerkat_id)
                for st, ms in per_store(the_fleet, lambda s: s.mob_members(MOB)).items() for m in ms}
    got = the_fleet.members(MOB)
    assert {tuple(m) for m in got.members} == expected and expected
    assert the_fleet.members("no-such-mob").members == ()


def test_reconcile_bad_arguments(the_fleet):
    with pytest.raises(engine.InvalidInputError, match="mob_id"):
        the_fleet.reconcile(7)
    with pytest.raises(engine.InvalidInputError, match=r"roster\[0\]"):
        the_fleet.reconcile(MOB, ["coder/agent-1"])
    with pytest.raises(engine.InvalidInputError, match="accept_newer"):
        the_fleet.reconcile(MOB, accept_newer="yes")
    with pytest.raises(engine.InvalidInputError, match="batch"):
        fleet.Fleet([the_fleet.stores[0].path], batch=0)


def test_a_damaged_store_is_reported_and_the_others_answer(tmp_path, the_fleet):
    for s in the_fleet.stores[:3]:
        shutil.copy(s.path, tmp_path / (s.store + ".db"))
    damaged = tmp_path / "damaged.db"
    shutil.copy(the_fleet.stores[0].path, damaged)
    with open(damaged, "r+b") as fh:  # keep the header (it still looks like a store), wreck the pages
        fh.seek(100)
        fh.write(os.urandom(os.path.getsize(damaged) - 100))
    with fleet.Fleet([str(tmp_path)], batch=4) as f:
        rec = f.reconcile(MOB)
        stats = f.stats()
    assert [os.path.basename(p.path) for p in rec.problems] == ["damaged.db"]
    assert len(rec.stores) == 3
    expected = set()
    for s in the_fleet.stores[:3]:
        with engine.open(s.path, readonly=True) as st:
            expected |= {(m.session_id, m.profile) for m in st.reconcile_mob(MOB).members}
    assert {(m.session_id, m.profile) for m in rec.members} == expected
    assert [os.path.basename(p.path) for p in stats.problems] == ["damaged.db"] and len(stats.stores) == 3


# ------------------------------------------------------------------------------------------
# stats and verify


def test_stats_sum_the_stores(the_fleet):
    single = per_store(the_fleet, lambda s: s.stats())
    got = the_fleet.stats()
    assert {s.store: (s.sessions, s.messages, s.message_bytes, s.receipts, s.events) for s in got.stores} == {
        k: (v["sessions"], v["messages"], v["message_bytes"], v["receipts"], v["events"]) for k, v in single.items()}
    assert got.totals["sessions"] == sum(v["sessions"] for v in single.values())
    assert got.totals["messages"] > 0 and got.totals["receipts"] > 0
    assert got.shared_sessions == ((TRAVELLER, tuple(sorted(s.store for i, s in enumerate(the_fleet.stores)
                                                             if TRAVELLER in _ids(s.path)))),)
    assert len(got.shared_sessions[0][1]) == 10
    assert got.mobs == 2  # crew and other


def _ids(path):
    with engine.open(path, readonly=True) as s:
        return {x.id for x in s.sessions()}


def test_verify_in_parallel_finds_the_tampered_store(tmp_path, the_fleet):
    report = the_fleet.verify(workers=2)
    assert report.ok and report.workers == 2 and len(report.stores) == 50
    single = per_store(the_fleet, lambda s: {**s.verify().to_dict(), "schema_version": s.schema_version})
    assert {s.store: s.report for s in report.stores} == single
    # tamper with one message of one copied store: only that store fails, naming the session
    for s in the_fleet.stores[:4]:
        shutil.copy(s.path, tmp_path / (s.store + ".db"))
    victim = str(tmp_path / (the_fleet.stores[2].store + ".db"))
    con = apsw.Connection(victim)
    key, sid = con.execute("SELECT m.key, s.id FROM ms_messages m JOIN ms_sessions s ON s.num = m.key >> 32 "
                           "ORDER BY m.key LIMIT 1").fetchone()
    con.execute("UPDATE ms_messages SET body = ? WHERE key = ?", (b'{"role":"user","content":"forged"}', key))
    con.close()
    with fleet.Fleet([str(tmp_path)]) as f:
        bad = f.verify(workers=2)
        serial = f.verify(workers=1)
    assert not bad.ok
    failing = [s for s in bad.stores if not s.ok]
    assert [s.path for s in failing] == [victim]
    assert {m["session_id"] for m in failing[0].report["mismatches"]} == {sid}
    assert [s.report for s in serial.stores] == [s.report for s in bad.stores]


# ------------------------------------------------------------------------------------------
# Parquet export and the shipped reconcile.sql


def test_reconcile_sql_file_is_the_rendered_query():
    assert fleet.packaged_reconcile_sql() == fleet.reconcile_sql_file(), (
        "engine/fleet/reconcile.sql is stale; regenerate it: python -c \"from engine.fleet.sql import "
        "reconcile_sql_file as r; open('engine/fleet/reconcile.sql', 'w').write(r())\"")


@pytest.fixture(scope="module")
def export_dir(the_fleet, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("export") / "out")
    report = the_fleet.export_parquet(out)
    assert report.ok and report.totals["stores_exported"] == 50
    return out


def run_reconcile_sql(export_dir, *, roster=None, accept_newer=None, cwd=None):
    con = duckdb.connect()
    if cwd is None:
        con.execute("SET VARIABLE export_dir = ?", [export_dir])
    con.execute("SET VARIABLE mob_id = ?", [MOB])
    if accept_newer is not None:
        con.execute("SET VARIABLE accept_newer = ?", [accept_newer])
    if roster is not None:
        # JSON text: binding a Python list costs DuckDB's client ~0.1 ms per value
        con.execute("SET VARIABLE roster = from_json(?, '[{\"profile\": \"VARCHAR\", \"meerkat_id\": \"VARCHAR\"}]')",
                    [json.dumps([{"profile": p, "meerkat_id": m} for p, m in roster])])
    with open(os.path.join(export_dir, "reconcile.sql"), encoding="utf-8") as fh:
        text = fh.read()
    old = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        return con.execute(text).fetchall()
    finally:
        os.chdir(old)
        con.close()


def fleet_rows(the_fleet, roster, accept_newer):
    """The fleet's own result rows over the SQLite files (the same query, other inputs)."""
    rec = the_fleet.reconcile(MOB, roster, accept_newer=accept_newer)
    rows = [("member", *m, None, None, None) for m in rec.members]
    rows += [("broken", b.store, b.session_id, None, None, b.reason, b.comms_name, b.realm_id) for b in rec.broken]
    rows += [("duplicate", st, sid, d.profile, d.meerkat_id, None, None, None) for d in rec.duplicates
             for st, sid in d.claims]
    rows += [("missing", None, None, p, m, None, None, None) for p, m in rec.missing]
    rows += [("unexpected", *m, None, None, None) for m in rec.unexpected]
    return rec, rows


@pytest.mark.parametrize("accept_newer", [False, True])
@pytest.mark.parametrize("with_roster", [True, False])
def test_reconcile_sql_over_parquet_gives_the_same_answers(the_fleet, export_dir, accept_newer, with_roster):
    roster = ROSTER if with_roster else None
    _rec, expected = fleet_rows(the_fleet, roster, accept_newer)
    got = run_reconcile_sql(export_dir, roster=roster, accept_newer=accept_newer)
    # broken rows carry profile/meerkat_id in the SQL; compare on the fields both have
    norm = [(r[0], r[1], r[2], None if r[0] == "broken" else r[3], None if r[0] == "broken" else r[4], *r[5:])
            for r in got]
    assert sorted(norm, key=repr) == sorted(expected, key=repr)
    # and against the single-store API directly
    _recs, members, broken, duplicates, missing, unexpected = expected_reconciliation(the_fleet, roster, accept_newer)
    assert {r[1:5] for r in got if r[0] == "member"} == members
    assert {(r[1], r[2], r[5], r[6], r[7]) for r in got if r[0] == "broken"} == broken
    assert {(r[3], r[4]) for r in got if r[0] == "duplicate"} == set(duplicates)
    assert {(r[3], r[4]) for r in got if r[0] == "missing"} == missing
    assert {r[1:5] for r in got if r[0] == "unexpected"} == unexpected
    # sorted as the query promises
    assert [r[0] for r in got] == sorted(r[0] for r in got)


def test_reconcile_sql_with_a_roster_from_a_csv_file(the_fleet, export_dir, tmp_path):
    """The way docs/fleet.md and the file's header give for a roster kept in a file."""
    csv = tmp_path / "roster.csv"
    csv.write_text("profile,meerkat_id\n" + "".join(f"{p},{m}\n" for p, m in ROSTER))
    con = duckdb.connect()
    try:
        con.execute("SET VARIABLE export_dir = ?", [export_dir])
        con.execute("SET VARIABLE mob_id = ?", [MOB])
        con.execute("SET VARIABLE roster = (SELECT list({'profile': profile, 'meerkat_id': meerkat_id}) "
                    "FROM read_csv(?, all_varchar = true))", [str(csv)])
        with open(os.path.join(export_dir, "reconcile.sql"), encoding="utf-8") as fh:
            rows = con.execute(fh.read()).fetchall()
    finally:
        con.close()
    assert sorted(rows, key=repr) == sorted(run_reconcile_sql(export_dir, roster=ROSTER), key=repr)
    assert ("missing", None, None, "coder", "agent-nobody", None, None, None) in rows


def test_reconcile_sql_defaults_and_its_one_required_input(export_dir):
    # run from the export directory with only mob_id set: export_dir defaults to '.'
    rows = run_reconcile_sql(export_dir, cwd=export_dir)
    assert rows and {r[0] for r in rows} <= {"member", "broken", "duplicate"}
    con = duckdb.connect()
    try:
        with open(os.path.join(export_dir, "reconcile.sql"), encoding="utf-8") as fh:
            with pytest.raises(duckdb.Error, match="SET VARIABLE mob_id"):
                con.execute("SET VARIABLE export_dir = ?", [export_dir])
                con.execute(fh.read()).fetchall()
    finally:
        con.close()


def test_parquet_tables_hold_the_stores(the_fleet, export_dir):
    con = duckdb.connect()

    def table(name):
        return f"read_parquet('{export_dir}/{name}/*/*.parquet', hive_partitioning = true, hive_types = {{'store': VARCHAR}})"

    try:
        stores = dict(con.execute(f"SELECT store, source_path FROM {table('stores')}").fetchall())
        assert stores == {s.store: s.path for s in the_fleet.stores}
        for s in the_fleet.stores[:10]:
            with engine.open(s.path, readonly=True) as st:
                sessions = {x.id: x for x in st.sessions()}
                got = con.execute(f"SELECT session_id, message_count, metadata_json FROM {table('sessions')} "
                                  "WHERE store = ? ORDER BY session_id", [s.store]).fetchall()
                assert [(sid, n) for sid, n, _m in got] == sorted((x.id, x.message_count) for x in sessions.values())
                for sid, _n, md in got:
                    assert orjson.loads(md) == sessions[sid].metadata
                msgs = con.execute(f"SELECT session_id, index, body FROM {table('messages')} WHERE store = ? "
                                   "ORDER BY session_id, index", [s.store]).fetchall()
                want = []
                for sid in sorted(sessions):
                    want += [(sid, i, b.decode()) for i, b in enumerate(st.raw_messages(sid))]
                assert msgs == want
                receipts = con.execute(f"SELECT session_id, run_id, sequence, conversation_digest, message_count "
                                       f"FROM {table('receipts')} WHERE store = ? ORDER BY 1, 2, 3", [s.store]).fetchall()
                assert receipts == sorted((r.session_id, r.run_id, r.sequence, r.conversation_digest, r.message_count)
                                          for r in st.receipts())
    finally:
        con.close()


def test_export_refuses_to_overwrite_unless_asked(the_fleet, export_dir):
    before = sorted(os.listdir(os.path.join(export_dir, "bindings")))
    with pytest.raises(engine.InvalidInputError, match="overwrite"):
        the_fleet.export_parquet(export_dir)
    assert sorted(os.listdir(os.path.join(export_dir, "bindings"))) == before
    assert not [n for n in os.listdir(export_dir) if n.startswith(".tmp-")]


# ------------------------------------------------------------------------------------------
# the rule read by DuckDB is the rule read by SQLite (differential, generated rows)


def _random_binding(rng: random.Random, i: int) -> tuple:
    """A binding row for mob "m" that is valid, then has 0-2 of its fields perturbed
    (case, trailing space, empty, NULL, other mob, accented, malformed comms_name), so every
    branch of the rule is reached; a third of the rows also carry a typed binding."""
    mob, profile, member = "m", rng.choice(["coder", "tester"]), rng.choice(["a", "b", "c"])
    f = {"mob": mob, "profile": profile, "member": member, "parts": 3, "realm": "mob:m", "has_peer": 1,
         "l_mob": mob, "l_role": profile, "l_member": member}
    perturb = {
        "mob": ["M", "m ", "", "other", "m\u00e9"], "profile": ["", "Coder"], "member": ["", "A"],
        "parts": [2, 4, 1], "realm": ["mob.m", "mob:M", "mob:", None, "mob:other", "mob.other"],
        "has_peer": [0], "l_mob": ["M", None], "l_role": ["Coder", None], "l_member": ["b", None],
    }
    for key in rng.sample(sorted(perturb), rng.choice([0, 0, 1, 1, 2])):
        f[key] = rng.choice(perturb[key])
    if rng.random() < 0.05:  # no comms_name at all
        facts = (None, None, None, None, None)
    else:
        comms_name = "/".join([f["mob"], f["profile"], f["member"], "x"][:f["parts"]])
        split = comms_name.split("/")
        facts = (comms_name, len(split), split[0], *(split[1:3] if len(split) == 3 else (None, None)))
    labels = (f["l_mob"], f["l_role"], f["l_member"]) if f["has_peer"] else (None, None, None)
    if f["has_peer"] and rng.random() < 0.1:
        labels = (None, None, None)  # peer_meta without labels
    binding = (None, None, None)
    if rng.random() < 0.33:
        binding = (rng.choice(["m", "m", "other"]), rng.choice([profile, profile, "", "x"]),
                   rng.choice([member, member, "", "z"]))
    return (f"s{i:04d}", *facts, f["realm"], f["has_peer"], *labels, *binding)


@pytest.mark.parametrize("accept_newer", [False, True])
def test_duckdb_reads_the_rule_as_sqlite_does(tmp_path, rng, accept_newer):
    path = str(tmp_path / "rows.db")
    with engine.open(path) as store:
        with store.transaction() as con:
            con.executemany(f"INSERT INTO ms_bindings VALUES ({', '.join('?' * 14)})",
                            [_random_binding(rng, i) for i in range(600)])
        sqlite_rec = store.reconcile_mob("m", [("coder", "a"), ("x", "y")], accept_newer=accept_newer)
        sqlite_members = store.mob_members("m")
    with fleet.Fleet([path]) as f:
        rec = f.reconcile("m", [("coder", "a"), ("x", "y")], accept_newer=accept_newer)
        members = f.members("m")
    assert [m[1:] for m in rec.members] == [tuple(m) for m in sqlite_rec.members]
    assert [(b.session_id, b.reason, b.comms_name, b.realm_id) for b in rec.broken] == [
        (b.session_id, b.reason, b.comms_name, b.realm_id) for b in sqlite_rec.broken]
    assert {(d.profile, d.meerkat_id, d.session_ids) for d in rec.duplicates} == {
        (d.profile, d.meerkat_id, d.session_ids) for d in sqlite_rec.duplicates}
    assert rec.missing == sqlite_rec.missing
    assert [m[1:] for m in rec.unexpected] == [tuple(m) for m in sqlite_rec.unexpected]
    assert [m[1:] for m in members.members] == [tuple(m) for m in sqlite_members]
    assert len({b.reason for b in sqlite_rec.broken}) >= 8 and sqlite_rec.members and sqlite_rec.duplicates  # the rows reach the rule's branches


def test_binding_columns_match_the_schema(store):
    cols = [(r[1], r[2]) for r in store._connection.execute("PRAGMA table_info(ms_bindings)")]
    assert [c for c, _t in cols] == [c for c, _t in fleet_sql.BINDING_COLUMNS]
    assert [("BIGINT" if t == "INTEGER" else "VARCHAR") for _c, t in cols] == [t for _c, t in fleet_sql.BINDING_COLUMNS]
