"""engine/store.py: what open and close refuse or survive, each found by a hostile tester:
a read-only file, a dangling or foreign symbolic link, a FIFO, an I/O error in the final
checkpoint, and SQLite rolling a transaction back on its own inside a nested write."""

from __future__ import annotations

import os
import pickle
import shutil
import stat
import tempfile
import threading

import apsw
import pytest

import engine
from engine import store as store_module
from engine.errors import (
    DiskFullError,
    MobstoreError,
    StoreError,
    StoreIOError,
    StoreReadOnlyError,
)
from tests.faults import vfs

NOBODY = 65534
MSG = {"role": "user", "content": "hello"}


def _as_other_user(fn):
    """fn() in a forked child running as uid/gid 65534 ('nobody') when we are root (root
    writes any file), else in this process; returns fn's result or re-raises its error."""
    if os.geteuid() != 0:
        return fn()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            try:
                out = ("ok", fn())
            except BaseException as exc:  # noqa: BLE001 - sent to the parent as data
                out = ("raised", type(exc).__name__, str(exc), isinstance(exc, MobstoreError))
            os.write(write, pickle.dumps(out))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    return pickle.loads(data)


@pytest.fixture
def shared_dir():
    """A directory another user can use (tmp_path is private to root)."""
    path = tempfile.mkdtemp(prefix="mobstore-shared-")
    os.chmod(path, 0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _make_store(path: str) -> None:
    with engine.open(path) as s:
        s.create_session(session_id="s1", messages=[MSG])


# -- a read-only file ---------------------------------------------------------------------------

def test_read_only_file_is_refused_for_writing_and_opens_with_readonly(shared_dir):
    path = os.path.join(shared_dir, "ro.db")
    _make_store(path)
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)
    os.chmod(path, 0o400)

    def attempt():
        out = {}
        try:
            s = engine.open(path)
        except StoreError as exc:
            out["writable_open"] = (type(exc).__name__, str(exc))
        else:  # the old behaviour: opened "writable", every write then fails
            try:
                s.append_messages("s1", [MSG])
                out["writable_open"] = ("opened and wrote",)
            except Exception as exc:  # noqa: BLE001
                out["writable_open"] = ("opened, then " + type(exc).__name__, str(exc))
            s.close()
        with engine.open(path, readonly=True) as s:
            out["readonly"] = (s.message_count("s1"), s.verify().ok)
            try:
                s.append_messages("s1", [MSG])
            except StoreError as exc:
                out["readonly_write"] = type(exc).__name__
        return out

    result = _as_other_user(attempt)
    assert result[0] == "ok", result
    out = result[1]
    assert out["writable_open"][0] == "StoreReadOnlyError", out
    assert "readonly=True" in out["writable_open"][1] and "ro.db" in out["writable_open"][1]
    assert out["readonly"] == (1, True)
    assert out["readonly_write"] == "StoreError"
    os.chmod(path, 0o600)
    with engine.open(path) as s:  # nothing was written by the refused opens
        assert s.message_count("s1") == 1


def test_write_to_a_file_made_read_only_underneath_is_the_packages_error(db_path):
    """A ReadOnlyError from SQLite itself maps to StoreReadOnlyError (engine/errors.py)."""
    with engine.open(db_path) as s:
        sid = s.create_session(messages=[MSG])
        s._connection.execute("PRAGMA query_only = 1")  # SQLite now answers writes with SQLITE_READONLY
        before = s.message_count(sid)
        with pytest.raises(StoreError):
            s.append_messages(sid, [MSG])
        s._connection.execute("PRAGMA query_only = 0")
        assert s.message_count(sid) == before
        s.append_messages(sid, [MSG])  # still usable


def test_store_read_only_error_is_the_mapping_of_apsw_read_only():
    err = engine.errors.from_apsw(apsw.ReadOnlyError("attempt to write a readonly database"), "writing")
    assert type(err) is StoreReadOnlyError and str(err) == "writing: attempt to write a readonly database"


# -- symbolic links and other non-regular files -------------------------------------------------

def test_dangling_symlink_is_refused_and_nothing_is_created(tmp_path):
    target = tmp_path / "elsewhere" / "target.db"
    target.parent.mkdir()
    link = tmp_path / "agents.db"
    link.symlink_to(target)
    with pytest.raises(StoreError, match="symbolic link to a missing file"):
        engine.open(str(link))
    assert not target.exists()
    assert os.path.islink(link)  # the link itself is left alone
    assert sorted(os.listdir(tmp_path)) == ["agents.db", "elsewhere"]
    assert os.listdir(target.parent) == []


def test_symlink_planted_between_check_and_create_is_refused(tmp_path, monkeypatch):
    """The race: the path is free when checked, a link appears before the exclusive create."""
    target = tmp_path / "target.db"
    link = tmp_path / "agents.db"
    real_open = os.open

    def plant_then_open(path, flags, mode=0o777, **kw):
        if path == str(link) and flags & os.O_EXCL and not os.path.lexists(link):
            link.symlink_to(target)
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(store_module.os, "open", plant_then_open)
    with pytest.raises(StoreError, match="symbolic link to a missing file"):
        engine.open(str(link))
    assert not target.exists()


def test_symlink_owned_by_another_user_is_refused(shared_dir):
    target = os.path.join(shared_dir, "victim.db")
    _make_store(target)
    link = os.path.join(shared_dir, "agents.db")
    os.symlink(target, link)
    if os.geteuid() == 0:
        os.lchown(link, NOBODY, NOBODY)  # planted by another user
        with pytest.raises(StoreError, match="owned by another user"):
            engine.open(link)
    else:
        pytest.skip("needs root to create a link owned by another user")


def test_own_symlink_to_an_existing_store_opens(tmp_path):
    target = str(tmp_path / "real.db")
    _make_store(target)
    link = tmp_path / "agents.db"
    link.symlink_to(target)
    with engine.open(str(link)) as s:
        assert s.message_count("s1") == 1
        s.append_messages("s1", [MSG])
    with engine.open(target) as s:
        assert s.message_count("s1") == 2


def test_new_file_is_owner_only_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        with engine.open(str(tmp_path / "new.db")) as s:
            s.create_session(messages=[MSG])
            wal_mode = stat.S_IMODE(os.stat(tmp_path / "new.db-wal").st_mode)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.db").st_mode) == 0o600
    assert wal_mode == 0o600


def _opens_promptly(fn, seconds: float = 10.0):
    """fn() on a thread; the exception it raised, failing the test if it blocks."""
    box: dict = {}

    def run():
        try:
            fn()
            box["result"] = None
        except BaseException as exc:  # noqa: BLE001
            box["result"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "blocked opening a FIFO"
    return box["result"]


@pytest.mark.parametrize("readonly", [False, True])
def test_fifo_is_refused_promptly(tmp_path, readonly):
    fifo = str(tmp_path / "pipe.db")
    os.mkfifo(fifo)
    exc = _opens_promptly(lambda: engine.open(fifo, readonly=readonly))
    assert isinstance(exc, StoreError) and "a FIFO" in str(exc), exc
    assert sorted(os.listdir(tmp_path)) == ["pipe.db"]


def test_directory_is_refused(tmp_path):
    with pytest.raises(StoreError, match="is a directory"):
        engine.open(str(tmp_path))


# -- close: an I/O error in the final checkpoint --------------------------------------------------

@pytest.mark.parametrize("kind", vfs.KINDS)
def test_close_with_failing_checkpoint_raises_packages_error_and_closes(db_path, kind):
    plan = vfs.install()
    s = engine.open(db_path, vfs=vfs.FAULT_VFS)
    sid = s.create_session(messages=[MSG])
    s.apply_runtime_turn(sid, "run-1", [MSG, MSG])
    plan.arm(1, kind=kind, persistent=True)  # the checkpoint's first write/sync fails, and all after
    with pytest.raises(StoreIOError) as info:
        s.close()
    plan.disarm()
    assert type(info.value) is (DiskFullError if kind == "full" else StoreIOError)
    assert plan.injected >= 1
    with pytest.raises(StoreError, match="closed"):
        s.message_count(sid)
    s.close()  # closing again is a no-op
    assert os.path.exists(db_path + "-wal")  # the commits are still in the WAL ...
    with engine.open(db_path) as again:  # ... and the next open recovers them
        assert again.message_count(sid) == 3
        assert again.verify().ok
        assert again._connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


# -- SQLite rolls back on its own ----------------------------------------------------------------

def test_disk_full_inside_a_nested_write_is_the_packages_error(tmp_path):
    """SQLITE_FULL inside a savepoint ends the whole transaction in SQLite; the nested
    rollback must not then fail with a raw 'no such savepoint'."""
    plan = vfs.install()
    path = str(tmp_path / "n.db")
    with engine.open(path, vfs=vfs.FAULT_VFS) as s:
        sid = s.create_session(messages=[MSG])
        s._connection.execute("PRAGMA cache_size = 1")  # spill dirty pages to the WAL mid-transaction
        plan.arm(1, kind="full")
        with pytest.raises(DiskFullError):
            with s.transaction():
                s.append_messages(sid, [{"role": "user", "content": "x" * 4000}] * 50)
        plan.disarm()
        assert not s._connection.in_transaction
        assert s.message_count(sid) == 1
        assert s.append_messages(sid, [MSG]) == 2  # still usable
    assert plan.injected == 1


def test_a_swallowed_rollback_never_turns_into_autocommit(tmp_path):
    """A caller that catches the failed inner write and goes on must not commit the rest
    statement by statement: the next nested write and the outer commit both refuse."""
    plan = vfs.install()
    path = str(tmp_path / "n.db")
    with engine.open(path, vfs=vfs.FAULT_VFS) as s:
        sid = s.create_session(messages=[MSG])
        s._connection.execute("PRAGMA cache_size = 1")
        with pytest.raises(StoreError, match="rolled back"):
            with s.transaction():
                s.append_messages(sid, [MSG])
                plan.arm(1, kind="eio")
                with pytest.raises(StoreIOError):
                    s.append_messages(sid, [{"role": "user", "content": "x" * 4000}] * 50)
                plan.disarm()
                with pytest.raises(StoreError, match="enclosing transaction was rolled back"):
                    s.append_messages(sid, [MSG])
        assert s.message_count(sid) == 1


# -- a checkpoint's error is not the commit's ----------------------------------------------------

@pytest.mark.parametrize("kind", vfs.KINDS)
def test_checkpoint_failure_after_a_durable_commit_does_not_fail_the_call(tmp_path, kind, caplog):
    """SQLite's automatic checkpoint runs inside COMMIT after the commit is durable and
    reports its I/O error as COMMIT's: apply_runtime_turn raised although the turn was in
    the file, and a retry applied it twice. The store checkpoints after the commit instead.
    A turn of ~9 MB (over 1,000 WAL frames of 8 KiB) makes the checkpoint due."""
    plan = vfs.install()
    big = [{"role": "user", "content": "x" * 300_000} for _ in range(30)]

    def turn(path: str, fail_at: int | None):
        with engine.open(path, vfs=vfs.FAULT_VFS) as s:
            sid = s.create_session(session_id="s", messages=[MSG])
            plan.arm(fail_at, kind=kind, persistent=True)
            try:
                return s.apply_runtime_turn(sid, "run-1", big), list(plan.log), plan.injected
            finally:
                plan.disarm()

    _receipt, calls, _ = turn(str(tmp_path / "count.db"), None)
    first_db_write = next(i for i, (op, name) in enumerate(calls, 1) if not name.endswith("-wal"))
    assert calls[first_db_write - 2][0] == "sync"  # the commit's WAL fsync came first: the turn is durable
    path = str(tmp_path / "t.db")
    receipt, _calls, injected = turn(path, first_db_write)  # every checkpoint call fails
    assert injected >= 1
    assert receipt.message_count == 31
    assert "checkpoint" in caplog.text
    with engine.open(path) as s:
        assert [r.run_id for r in s.receipts("s")] == ["run-1"] and s.message_count("s") == 31
        assert s.verify().ok


def test_import_stops_at_the_first_store_error(tmp_path):
    """A failing target (I/O error, disk full) ends the import with the package's error;
    it used to be reported as a skipped realm session per remaining session, exit 1."""
    from engine.importer import import_realm
    from tests.conftest import MEERKAT_DIR

    plan = vfs.install()
    realm = os.path.join(MEERKAT_DIR, "realm-0.7.5-attempted-turn.sqlite3")
    path = str(tmp_path / "t.db")
    with engine.open(path, vfs=vfs.FAULT_VFS) as s:
        plan.arm(1, kind="full", persistent=True)
        with vfs.expected_unraisable(), pytest.raises(DiskFullError):
            import_realm(s, realm)
        plan.disarm()
        assert s.session_count() == 0
        report = import_realm(s, realm)  # a re-run completes it
        assert report.sessions_imported == 1 and not report.problems
