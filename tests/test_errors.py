"""Every public call raises only the package's errors (engine/errors.py maps apsw's): each
public Store method, both session services and every CLI command, driven through SQLite-level
failures — a full disk, I/O errors (tests/faults/vfs.py), a read-only connection, a file
locked by another connection, a corrupt file, a closed store, a FIFO, a non-database."""

from __future__ import annotations

import asyncio
import functools
import io
import os
import tempfile
import threading

import apsw
import pytest

import engine
from engine import services
from engine import store as store_module
from engine.cli.app import main as cli_main
from engine.errors import (
    DiskFullError,
    MobstoreError,
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    StoreIOError,
    StoreReadOnlyError,
)
from tests.conftest import MEERKAT_DIR
from tests.faults import vfs

MSG = {"role": "user", "content": "hello"}
BOUND = {"session_metadata": {"comms_name": "crew/coder/m1", "realm_id": "mob:crew",
                              "peer_meta": {"labels": {"mob_id": "crew", "role": "coder", "meerkat_id": "m1"}}}}
REALM = os.path.join(MEERKAT_DIR, "realm-0.7.5-attempted-turn.sqlite3")


def _populate(store) -> None:
    store.create_session(BOUND, session_id="s", messages=[MSG, MSG, MSG])
    store.apply_runtime_turn("s", "run-1", [MSG])
    store.truncate_messages("s", 3)  # rewrite 0, so transcript_before has something to return
    store.create_session(session_id="d", messages=[MSG])
    store.create_session(session_id="p", messages=[MSG, MSG])


def _in_transaction(store):
    with store.transaction():
        store.append_messages("s", [MSG])


def _in_reading(store):
    with store.reading():
        return store.messages("s") + store.messages("p")


_SCRATCH = tempfile.mkdtemp(prefix="mobstore-errors-")


def _scratch_path() -> str:
    """A new file name for each snapshot (the copy goes outside the store under test)."""
    return os.path.join(_SCRATCH, f"snapshot-{len(os.listdir(_SCRATCH))}-{threading.get_ident()}.db")


# Every public method of Store, called with valid arguments. WRITES must fail when writing fails.
WRITES = {
    "append_messages": lambda s: s.append_messages("s", [MSG]),
    "apply_runtime_turn": lambda s: s.apply_runtime_turn("s", "run-2", [MSG]),
    "apply_runtime_turns": lambda s: s.apply_runtime_turns([("s", "run-3", [MSG]), ("p", "run-3", [MSG])]),
    "create_session": lambda s: s.create_session(BOUND, session_id="new", messages=[MSG]),
    "delete_session": lambda s: s.delete_session("d"),
    "pop_message": lambda s: s.pop_message("p"),
    "prune_events": lambda s: s.prune_events(before_seq=2),
    "purge_history": lambda s: s.purge_history("s"),
    "set_metadata": lambda s: s.set_metadata("s", {"note": "x"}),
    "transaction": _in_transaction,
    "truncate_messages": lambda s: s.truncate_messages("p", 1),
    "vacuum": lambda s: s.vacuum(),
}
READS = {
    "events": lambda s: s.events(),
    "export_jsonl": lambda s: s.export_jsonl(io.BytesIO(), "s"),
    "iter_receipts": lambda s: list(s.iter_receipts()),
    "message_count": lambda s: s.message_count("s"),
    "messages": lambda s: s.messages("s"),
    "mob_members": lambda s: s.mob_members("crew"),
    "mobs": lambda s: s.mobs(),
    "query": lambda s: s.query("SELECT count(*) FROM ms_messages"),
    "raw_messages": lambda s: s.raw_messages("s"),
    "iter_messages": lambda s: list(s.iter_messages("s")),
    "raw_transcript_before": lambda s: s.raw_transcript_before("s", 0),
    "snapshot": lambda s: s.snapshot(_scratch_path()),
    "reading": _in_reading,
    "receipts": lambda s: s.receipts("s"),
    "reconcile_mob": lambda s: s.reconcile_mob("crew", [("coder", "m1")]),
    "rewrites": lambda s: s.rewrites("s"),
    "session": lambda s: s.session("s"),
    "session_belongs_to_mob": lambda s: s.session_belongs_to_mob("s", "crew"),
    "session_count": lambda s: s.session_count(),
    "sessions": lambda s: list(s.sessions()),
    "stats": lambda s: s.stats(),
    "transcript_before": lambda s: s.transcript_before("s", 0),
    "transcript_digest": lambda s: s.transcript_digest("s"),
    "verify": lambda s: s.verify(),
}
FACTS = {"path", "schema_version", "group_commit_stats", "close"}  # properties; close: last


def test_every_public_store_method_is_driven():
    public = {n for n in dir(engine.Store) if not n.startswith("_")}
    assert public == set(WRITES) | set(READS) | FACTS, (
        f"not driven: {sorted(public - set(WRITES) - set(READS) - FACTS)}; "
        f"gone: {sorted((set(WRITES) | set(READS) | FACTS) - public)}")


def _outcome(fn, store):
    """None when fn(store) returned, else the package's exception it raised (anything
    else fails the test, naming the call)."""
    try:
        fn(store)
    except MobstoreError as exc:
        return exc
    except BaseException as exc:  # noqa: BLE001
        raise AssertionError(f"raised {type(exc).__module__}.{type(exc).__name__}: {exc}") from exc
    return None


def _drive(store, write_error: type | None, read_error: type | None = None, before=None,
           reads_may_fail: bool = False) -> dict:
    """Every method; writes must raise write_error (None: either way), reads read_error
    (None: they succeed, or with reads_may_fail either way). `before()` runs before each call."""
    seen = {}
    for name, fn in {**READS, **WRITES}.items():
        if before is not None:
            before()
        try:
            exc = _outcome(fn, store)
        except AssertionError as error:
            raise AssertionError(f"Store.{name}: {error}") from None
        seen[name] = type(exc).__name__ if exc else "ok"
        expected = write_error if name in WRITES else read_error
        if expected is not None:
            assert isinstance(exc, expected), f"Store.{name}: expected {expected.__name__}, got {exc!r}"
        elif name in READS and not reads_may_fail and exc is not None:
            assert not isinstance(exc, StoreError), f"Store.{name} failed a read: {exc!r}"
    return seen


@pytest.fixture
def populated(db_path):
    with engine.open(db_path) as s:
        _populate(s)
    return db_path


@pytest.mark.parametrize("kind, error", [("full", DiskFullError), ("eio", StoreIOError)])
def test_store_methods_under_persistent_write_faults(populated, kind, error):
    plan = vfs.install()
    store = engine.open(populated, vfs=vfs.FAULT_VFS)
    plan.arm(1, kind=kind, persistent=True)
    with vfs.expected_unraisable():
        _drive(store, error, read_error=None)
        exc = _outcome(lambda s: s.close(), store)
    plan.disarm()
    assert exc is None or isinstance(exc, StoreIOError)
    with engine.open(populated) as again:  # nothing half-written
        assert again.verify().ok and again.message_count("s") == 3 and again.session("d") is not None


def test_store_methods_on_a_query_only_connection(populated):
    with engine.open(populated) as store:
        # SQLite answers every write SQLITE_READONLY (Store.query switches it off again after itself)
        _drive(store, StoreReadOnlyError, before=lambda: store._connection.execute("PRAGMA query_only = 1"))


def test_store_methods_while_another_connection_holds_the_write_lock(populated):
    other = apsw.Connection(populated)
    other.execute("BEGIN IMMEDIATE")
    try:
        with engine.open(populated) as store:
            store._connection.set_busy_timeout(20)  # instead of 60 s per write
            _drive(store, StoreBusyError)
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_store_methods_on_a_closed_store(populated):
    store = engine.open(populated)
    store.close()
    seen = _drive(store, StoreError, read_error=StoreError)
    assert set(seen.values()) == {"StoreError"}
    store.close()


def _corrupt_table(path: str, table: str) -> None:
    """Overwrite the root page of `table` with garbage (the file is closed and checkpointed)."""
    con = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
    (root,) = con.execute("SELECT rootpage FROM sqlite_schema WHERE name = ?", (table,)).fetchone()
    (size,) = con.execute("PRAGMA page_size").fetchone()
    con.close()
    with open(path, "r+b") as fh:
        fh.seek((root - 1) * size)
        fh.write(bytes(range(256)) * (size // 256))


def test_store_methods_on_a_corrupt_file(populated):
    _corrupt_table(populated, "ms_messages")
    with engine.open(populated) as store:  # opening reads the schema only
        seen = _drive(store, None, reads_may_fail=True)
    assert seen["messages"] == "StoreCorruptError" and seen["append_messages"] == "StoreCorruptError"


def test_open_of_a_file_that_is_not_a_database(tmp_path):
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database" * 500)
    with pytest.raises(StoreCorruptError):
        engine.open(str(garbage))
    assert garbage.read_bytes() == b"not a database" * 500


# -- the services --------------------------------------------------------------------------------

def _full_after_open(path, **kw):
    """A store that cannot grow by a page: every write that needs one fails SQLITE_FULL."""
    s = store_module.open(path, **kw)
    (pages,) = s._connection.execute("PRAGMA page_count").fetchone()
    s._connection.execute(f"PRAGMA max_page_count = {int(pages)}")  # sql-safe: our own integer
    return s


SERVICE_CALLS = {
    "append_live": lambda v: v.append_live("s", [MSG]),
    "apply_runtime_turn": lambda v: v.apply_runtime_turn("s", "run-9", [MSG] * 200),
    "cancel_all_checkpointers": lambda v: v.cancel_all_checkpointers(),
    "checkpoint": lambda v: v.checkpoint("s"),
    "create_session": lambda v: v.create_session(BOUND, session_id="svc-new", messages=[MSG] * 200),
    "discard_live_session": lambda v: v.discard_live_session("p"),
    "live_messages": lambda v: v.live_messages("s"),
    "live_sessions": lambda v: v.live_sessions(),
    "load_persisted_session": lambda v: v.load_persisted_session("s"),
    "rearm_all_checkpointers": lambda v: v.rearm_all_checkpointers(),
    "session_belongs_to_mob": lambda v: v.session_belongs_to_mob("s", "crew"),
    "set_live_metadata": lambda v: v.set_live_metadata("s", {"note": "y" * 20000}),
    "subscribe_session_events": lambda v: v.subscribe_session_events("s"),
    "list_sessions": lambda v: v.list_sessions(mob_id="crew"),
    "mob_members": lambda v: v.mob_members("crew"),
    "mobs": lambda v: v.mobs(),
    "receipts": lambda v: v.receipts("s"),
    "reconcile_mob": lambda v: v.reconcile_mob("crew"),
    "verify": lambda v: v.verify(),
    "delete_session": lambda v: v.delete_session("d"),
}
SERVICE_FACTS = {"batches", "close", "closed", "path", "runtime_adapter", "supports_persistent_sessions"}


@pytest.mark.parametrize("persistent", [True, False], ids=["persistent", "ephemeral"])
def test_service_calls_on_a_full_disk(db_path, monkeypatch, persistent):
    public = {n for n in dir(services.PersistentSessionService) if not n.startswith("_")}
    assert public == set(SERVICE_CALLS) | SERVICE_FACTS
    if persistent:
        with engine.open(db_path) as s:
            _populate(s)
    monkeypatch.setattr(services, "_store", type("_S", (), {
        "open": staticmethod(_full_after_open), "MEMORY": store_module.MEMORY, "Store": store_module.Store}))

    async def go():
        svc = services.PersistentSessionService(db_path, checkpoint_interval=None) if persistent \
            else services.EphemeralSessionService()
        if not persistent:  # the in-memory store is empty: its sessions come first (pages fit)
            await svc.create_session(BOUND, session_id="s")
            await svc.create_session(session_id="p")
        seen = {}
        for name, call in SERVICE_CALLS.items():
            try:
                await call(svc)
                seen[name] = "ok"
            except MobstoreError as exc:
                seen[name] = type(exc).__name__
            except BaseException as exc:  # noqa: BLE001
                raise AssertionError(f"{type(svc).__name__}.{name}: raised {type(exc).__name__}: {exc}") from exc
        try:
            await svc.close()
        except MobstoreError:
            pass
        return seen

    seen = asyncio.run(go())
    assert seen["apply_runtime_turn"] == "DiskFullError", seen
    assert seen["create_session"] == "DiskFullError", seen


# -- the command line ----------------------------------------------------------------------------

def _commands(db: str, tmp: str) -> dict[str, list[str]]:
    return {
        "demo": ["demo", "--db", db, "--agents", "2", "--turns", "1"],
        "import-meerkat": ["import-meerkat", REALM, "--into", db],
        "export-parquet": ["export-parquet", db, os.path.join(tmp, "parquet")],
        "fleet": ["fleet", "verify", db],
        "fleet reconcile": ["fleet", "reconcile", db, "crew"],
        "fleet members": ["fleet", "members", db, "crew"],
        "fleet stats": ["fleet", "stats", db],
        "snapshot": ["snapshot", db, os.path.join(tmp, "snap.db")],
        "members": ["members", db, "crew"],
        "messages": ["messages", db, "s"],
        "mobs": ["mobs", db],
        "prune-events": ["prune-events", db, "--before-seq", "2"],
        "reconcile": ["reconcile", db, "crew"],
        "sessions": ["sessions", db],
        "sql": ["sql", db, "SELECT count(*) FROM ms_sessions"],
        "stats": ["stats", db],
        "vacuum": ["vacuum", db],
        "verify": ["verify", db],
    }


def _run_cli(argv: list[str], capsys, seconds: float = 20.0) -> tuple[int, str]:
    box: dict = {}

    def run():
        try:
            cli_main(argv)
            box["code"] = 0
        except SystemExit as exc:
            box["code"] = exc.code
        except BaseException as exc:  # noqa: BLE001
            box["code"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"mobstore {' '.join(argv)} blocked"
    err = capsys.readouterr().err
    assert isinstance(box["code"], int), f"mobstore {' '.join(argv)} raised {box['code']!r}"
    return box["code"], err


def test_every_cli_command_is_driven():
    from engine.cli.app import cli
    names = {n for n in _commands("DB", "T") if " " not in n}
    assert set(cli.commands) == names
    assert {f"fleet {n}" for n in cli.commands["fleet"].commands} - {"fleet verify"} <= set(_commands("DB", "T"))


def _assert_clean_failure(argv, code, err):
    assert code == 2, f"mobstore {' '.join(argv)}: exit {code}, stderr {err!r}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("mobstore: error:") and "Traceback" not in err, err


@pytest.mark.parametrize("target", ["fifo", "corrupt", "not-a-database", "directory"])
def test_every_cli_command_on_a_bad_file(tmp_path, capsys, populated, target):
    path = str(tmp_path / "bad.db")
    if target == "fifo":
        os.mkfifo(path)
    elif target == "corrupt":
        _corrupt_table(populated, "ms_sessions")
        path = populated
    elif target == "not-a-database":
        with open(path, "wb") as fh:
            fh.write(b"\x00garbage" * 2000)
    else:
        os.mkdir(path)
    for name, argv in _commands(path, str(tmp_path)).items():
        code, err = _run_cli(argv, capsys)
        if target == "corrupt" and code in (0, 1):
            continue  # a command that never reads the damaged table may succeed
        _assert_clean_failure(argv, code, err)


def test_every_cli_command_on_a_full_disk(tmp_path, capsys, populated, monkeypatch):
    plan = vfs.install()
    monkeypatch.setattr(engine, "open", functools.partial(store_module.open, vfs=vfs.FAULT_VFS))
    outcomes = {}
    with vfs.expected_unraisable():
        for name, argv in _commands(populated, str(tmp_path)).items():
            if name == "demo":
                argv = ["demo", "--db", str(tmp_path / "demo.db"), "--agents", "2", "--turns", "1"]
            plan.arm(1, kind="full", persistent=True)
            code, err = _run_cli(argv, capsys)
            plan.disarm()
            outcomes[name] = code
            if code == 2:
                _assert_clean_failure(argv, code, err)
            else:
                assert code in (0, 1), (argv, code, err)
    for writer in ("demo", "import-meerkat", "prune-events", "vacuum"):
        assert outcomes[writer] == 2, outcomes
    with engine.open(populated) as s:
        assert s.verify().ok
