"""`mobstore snapshot`, `mobstore fleet ...` and `mobstore export-parquet` as a user runs
them: exit codes, one JSON document on stdout, progress on stderr, one-line errors; offline
(no network, an empty home: the sqlite extension comes from the installed package); and
the rest of mobstore working when the fleet extra is not installed."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from importlib import metadata

import pytest

import engine
from engine import demo, fleet

from .conftest import fingerprint
from .fleet_stores import MOB, ROSTER, build_fleet

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = int(os.environ.get("MOBSTORE_TEST_SEED", random.randrange(1 << 30)))


def run(*args, env=None, code=None):
    cmd = [sys.executable, "-m", "engine", *args] if code is None else [sys.executable, "-c", code, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)


@pytest.fixture(scope="module")
def fleet_root(tmp_path_factory):
    print(f"\n[test_fleet_cli] MOBSTORE_TEST_SEED={SEED}")
    root = str(tmp_path_factory.mktemp("fleet-cli"))
    build_fleet(root, SEED, n_stores=12)
    return root


@pytest.fixture(scope="module")
def roster_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("roster") / "roster.json"
    path.write_text(json.dumps([list(p) for p in ROSTER]))
    return str(path)


@pytest.mark.parametrize("command", [["snapshot"], ["export-parquet"], ["fleet"], ["fleet", "reconcile"],
                                     ["fleet", "members"], ["fleet", "stats"], ["fleet", "verify"]])
def test_help(command):
    proc = run(*command, "--help")
    assert proc.returncode == 0 and "Usage:" in proc.stdout


def test_fleet_reconcile_json_is_the_api_answer(fleet_root, roster_file):
    proc = run("fleet", "reconcile", fleet_root, MOB, "--roster", roster_file, "--json")
    assert proc.returncode == 1, proc.stderr  # duplicates, broken claims, missing: not clean
    doc = json.loads(proc.stdout)
    with fleet.Fleet([fleet_root]) as f:
        expected = f.reconcile(MOB, ROSTER).to_dict()
    assert doc == expected
    assert doc["duplicates"] and doc["broken"] and {"profile": "coder", "meerkat_id": "agent-nobody"} in doc["missing"]
    assert "reconciling: 12/12 stores" in proc.stderr  # progress on stderr, never stdout
    # the text form: a summary line and one line per finding
    text = run("fleet", "reconcile", os.path.join(fleet_root, "*.db"), os.path.join(fleet_root, "machine-*"), MOB,
               "--quiet")
    assert text.returncode == 1 and text.stderr == ""
    assert text.stdout.startswith(f"mob {MOB} over 12 stores: {len(doc['members'])} members")
    assert sum(1 for line in text.stdout.splitlines() if line.startswith("duplicate\t")) == len(doc["duplicates"])


def test_fleet_members_stats_verify(fleet_root):
    members = run("fleet", "members", fleet_root, MOB, "--json", "-q")
    assert members.returncode == 0 and members.stderr == ""
    with fleet.Fleet([fleet_root]) as f:
        assert json.loads(members.stdout) == f.members(MOB).to_dict()
        expected_stats = f.stats().to_dict()
    stats = run("fleet", "stats", fleet_root, "--json", "-q")
    assert stats.returncode == 0
    doc = json.loads(stats.stdout)
    assert doc["totals"] == expected_stats["totals"] and doc["sessions_in_several_stores"] == 1
    verify = run("fleet", "verify", fleet_root, "--workers", "2")
    assert verify.returncode == 0, verify.stderr
    assert verify.stdout.startswith("12/12 stores ok") and "(2 processes)" in verify.stdout
    assert "skipped " in verify.stderr and "other-program.sqlite" in verify.stderr


def test_a_clean_fleet_exits_0(tmp_path):
    for k in range(3):
        with engine.open(str(tmp_path / f"s{k}.db")) as s:
            s.create_session(demo.mob_metadata("solo", "coder", f"agent-{k}"))
    roster = tmp_path / "roster.txt"
    roster.write_text("".join(f"coder/agent-{k}\n" for k in range(3)))
    proc = run("fleet", "reconcile", str(tmp_path), "solo", "--roster", str(roster), "-q")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert proc.stdout.startswith("mob solo over 3 stores: 3 members, 0 broken claims, 0 duplicated slots")


@pytest.mark.parametrize("args, message", [
    (["fleet", "reconcile", "crew"], "Missing argument"),
    (["fleet", "reconcile", "/nonexistent/x.db", "crew"], "no such file"),
    (["fleet", "reconcile", "/nonexistent/*.db", "crew"], "matches no file"),
    (["fleet", "stats", "/"], None),
    (["export-parquet", "out"], "OUTDIR"),
    (["fleet", "verify", "x", "--workers", "0"], "workers"),
])
def test_usage_errors_exit_2_with_one_line(args, message, tmp_path):
    if args == ["fleet", "stats", "/"]:
        args = ["fleet", "stats", str(tmp_path)]  # an empty directory: no store
        message = "no mobstore store"
    proc = run(*args)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert proc.stdout == "" and proc.stderr.count("\n") == 1 and message in proc.stderr


def test_bad_roster_exits_2_and_changes_nothing(fleet_root, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[[1, 2]]")
    before = [fingerprint(os.path.join(fleet_root, f"store-{k:02d}.db")) for k in (1, 3)]
    proc = run("fleet", "reconcile", fleet_root, MOB, "--roster", str(bad))
    assert proc.returncode == 2 and "roster" in proc.stderr
    assert [fingerprint(os.path.join(fleet_root, f"store-{k:02d}.db")) for k in (1, 3)] == before


def test_snapshot_command(tmp_path):
    db = str(tmp_path / "live.db")
    with engine.open(db) as s:
        sid = s.create_session(demo.mob_metadata(MOB, "coder", "a"))
        s.apply_runtime_turn(sid, "r", [{"role": "user", "content": "hi"}])
    out = str(tmp_path / "snap.db")
    proc = run("snapshot", db, out, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["path"] == out and doc["method"] == "backup" and doc["bytes"] == os.path.getsize(out)
    assert fingerprint(out) == fingerprint(db)
    again = run("snapshot", db, out)
    assert again.returncode == 2 and "exists" in again.stderr and again.stderr.count("\n") == 1
    forced = run("snapshot", db, out, "--force", "--method", "vacuum")
    assert forced.returncode == 0 and forced.stdout.startswith(out) and "vacuum" in forced.stdout
    missing = run("snapshot", str(tmp_path / "nope.db"), str(tmp_path / "o.db"))
    assert missing.returncode == 2 and "no such database" in missing.stderr
    assert not os.path.exists(tmp_path / "nope.db") and not os.path.exists(tmp_path / "o.db")


def test_export_parquet_command(fleet_root, tmp_path):
    out = str(tmp_path / "pq")
    proc = run("export-parquet", fleet_root, out, "--json", "-q")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["totals"]["stores_exported"] == 12 and doc["ok"] is True
    assert sorted(os.listdir(out)) == ["bindings", "messages", "receipts", "reconcile.sql", "sessions", "stores"]
    assert len(os.listdir(os.path.join(out, "messages"))) == 12
    again = run("export-parquet", fleet_root, out)
    assert again.returncode == 2 and "overwrite" in again.stderr
    assert run("export-parquet", fleet_root, out, "--overwrite", "-q").returncode == 0


# ------------------------------------------------------------------------------------------
# offline, and without the extra


def test_fleet_runs_offline_from_the_packaged_extension(fleet_root, tmp_path):
    """No network (every proxy a closed port), an empty home (no ~/.duckdb extension cache):
    the extension can only come from the installed package."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(HOME=str(home), http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9",
               HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", no_proxy="")
    proc = run("fleet", "reconcile", fleet_root, MOB, "--json", "-q", env=env)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["members"]
    assert os.listdir(home) == []  # nothing installed or downloaded into the home
    probe = run(code=(
        "from engine.fleet import _extra; c = _extra.connect(); "
        "print(c.execute(\"SELECT loaded, installed FROM duckdb_extensions() WHERE extension_name = 'sqlite_scanner'\")"
        ".fetchone()); print(c.execute(\"SELECT current_setting('autoinstall_known_extensions'), "
        "current_setting('autoload_known_extensions')\").fetchone())"), env=env)
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.splitlines() == ["(True, False)", "(False, False)"]


BLOCK = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None          # `import name` now raises ImportError
from engine.cli import main
main(sys.argv[2:])
"""


def test_without_the_extra_the_rest_works_and_fleet_names_it(fleet_root, tmp_path):
    db = os.path.join(fleet_root, "store-01.db")
    blocked = "duckdb,duckdb_extension_sqlite_scanner,pyarrow"
    assert run(blocked, "stats", db, code=BLOCK).returncode == 0
    assert run(blocked, "reconcile", db, MOB, "--json", code=BLOCK).returncode in (0, 1)
    snap = run(blocked, "snapshot", db, str(tmp_path / "s.db"), code=BLOCK)
    assert snap.returncode == 0, snap.stderr
    verify = run(blocked, "fleet", "verify", fleet_root, "-q", code=BLOCK)  # mobstore's own engine only
    assert verify.returncode == 0, verify.stderr
    for args in (["fleet", "reconcile", fleet_root, MOB], ["fleet", "stats", fleet_root],
                 ["export-parquet", fleet_root, str(tmp_path / "pq")]):
        proc = run(blocked, *args, code=BLOCK)
        assert proc.returncode == 2, (args, proc.stderr)
        assert 'pip install "mobstore[fleet]"' in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not os.path.exists(tmp_path / "pq")
    # the extension package alone missing, duckdb present
    proc = run("duckdb_extension_sqlite_scanner", "fleet", "members", fleet_root, MOB, code=BLOCK)
    assert proc.returncode == 2 and "duckdb-extension-sqlite-scanner" in proc.stderr


def test_the_extra_pins_duckdb_and_its_extension_as_a_pair():
    tomllib = pytest.importorskip("tomllib", reason="Python < 3.11 has no tomllib")
    with open(os.path.join(HERE, "..", "pyproject.toml"), "rb") as fh:
        extras = tomllib.load(fh)["project"]["optional-dependencies"]
    pins = dict(r.split("==") for r in extras["fleet"] if "==" in r)
    assert set(pins) == {"duckdb", "duckdb-extension-sqlite-scanner"}
    assert pins["duckdb"] == pins["duckdb-extension-sqlite-scanner"]
    assert set(extras["fleet"]) <= set(extras["test"])  # CI installs .[test]: the fleet tests run there
    assert metadata.version("duckdb") == pins["duckdb"]
    assert metadata.version("duckdb-extension-sqlite-scanner") == pins["duckdb"]
