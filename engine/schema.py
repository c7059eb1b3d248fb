"""The schema: schema.sql for a new file, numbered upgrade steps for an older one.

`PRAGMA user_version` holds the schema version. A new file gets schema.sql whole;
a file at version N < SCHEMA_VERSION runs UPGRADES[N+1], UPGRADES[N+2], ... each
in its own transaction (a crash between steps leaves a valid older version that
the next open continues from). A file above SCHEMA_VERSION is refused untouched.
"""

from __future__ import annotations

import contextlib
import time
from importlib import resources
from typing import Callable

import apsw

from .errors import SchemaTooNewError, StoreError

SCHEMA_VERSION = 5


def _v2_rewrites(con: apsw.Connection) -> None:
    """Version 2: transcript rewrites (engine/rewrites.py). The DDL is written out here as it
    was at version 2, not read from schema.sql, so later edits there never change this step."""
    con.execute("ALTER TABLE ms_receipts ADD COLUMN superseded_by INTEGER")
    con.execute(
        "CREATE TABLE ms_rewrites ("
        " session_num INTEGER NOT NULL REFERENCES ms_sessions (num) ON DELETE CASCADE,"
        " rewrite INTEGER NOT NULL, at_ms INTEGER NOT NULL, old_count INTEGER NOT NULL,"
        " new_count INTEGER NOT NULL, old_digest TEXT NOT NULL, profile TEXT NOT NULL,"
        " removed_bytes INTEGER NOT NULL, reason TEXT, head_revision TEXT, head_message_count INTEGER,"
        " head_profile TEXT, purged_at_ms INTEGER, PRIMARY KEY (session_num, rewrite)) WITHOUT ROWID"
    )
    con.execute(
        "CREATE TABLE ms_history ("
        " session_num INTEGER NOT NULL, rewrite INTEGER NOT NULL, idx INTEGER NOT NULL, body BLOB NOT NULL,"
        " PRIMARY KEY (session_num, rewrite, idx),"
        " FOREIGN KEY (session_num, rewrite) REFERENCES ms_rewrites (session_num, rewrite) ON DELETE CASCADE)"
    )


def _v3_import_checks(con: apsw.Connection) -> None:
    """Version 3: ms_import_checks, what a meerkat import checked against realm data the store
    does not keep (engine/importer.py, docs/meerkat.md). Written out as at version 3."""
    con.execute(
        "CREATE TABLE ms_import_checks ("
        " check_num INTEGER PRIMARY KEY,"
        " session_num INTEGER NOT NULL REFERENCES ms_sessions (num) ON DELETE CASCADE,"
        " subject TEXT NOT NULL, run_id TEXT, sequence INTEGER, status TEXT NOT NULL,"
        " expected TEXT, actual TEXT, reason TEXT NOT NULL, source TEXT NOT NULL)"
    )
    con.execute("CREATE INDEX ms_import_checks_session ON ms_import_checks (session_num)")


def _v4_event_writer(con: apsw.Connection) -> None:
    """Version 4: ms_events.writer, which Store connection wrote each event (so a reader can
    tell its own writes from another process's; engine/event_tail.py). Old rows: NULL."""
    con.execute("ALTER TABLE ms_events ADD COLUMN writer TEXT")


def _v5_event_seq(con: apsw.Connection) -> None:
    """Version 5: ms_events.seq is a plain INTEGER PRIMARY KEY (the rowid) instead of
    AUTOINCREMENT, whose counter row in sqlite_sequence was one more page in every commit
    (docs/performance.md). A new event still gets max(seq) + 1, and numbers are never reused
    because prune_events keeps the newest event (engine/maintenance.py). The table is rebuilt
    with every seq kept. If an older prune deleted the newest events, the old counter is kept
    as one "events_pruned" event at that seq (session_id "", detail {"through_seq": seq}), so
    the next event is numbered after it. Written out as at version 5."""
    (newest,) = con.execute("SELECT coalesce(max(seq), 0) FROM ms_events").fetchone()
    row = con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'ms_events'").fetchone()
    counter = 0 if row is None else row[0]
    con.execute("ALTER TABLE ms_events RENAME TO ms_events_v4")
    con.execute(
        "CREATE TABLE ms_events ("
        " seq INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, kind TEXT NOT NULL, session_id TEXT NOT NULL,"
        " detail BLOB, writer TEXT)"
    )
    con.execute(
        "INSERT INTO ms_events (seq, at_ms, kind, session_id, detail, writer) "
        "SELECT seq, at_ms, kind, session_id, detail, writer FROM ms_events_v4 ORDER BY seq"
    )
    if counter > newest:
        con.execute(
            "INSERT INTO ms_events (seq, at_ms, kind, session_id, detail, writer) "
            "VALUES (?, ?, 'events_pruned', '', ?, NULL)",
            (counter, time.time_ns() // 1_000_000, b'{"through_seq":%d}' % counter),
        )
    con.execute("DROP TABLE ms_events_v4")  # and its sqlite_sequence row


# UPGRADES[n] takes a connection inside a transaction from version n-1 to n.
# Version 1 is the first released layout (tests/fixtures/schema/v1.sql).
UPGRADES: dict[int, Callable[[apsw.Connection], None]] = {
    2: _v2_rewrites,
    3: _v3_import_checks,
    4: _v4_event_writer,
    5: _v5_event_seq,
}


def schema_sql() -> str:
    """The DDL shipped inside the package (engine/schema.sql, a copy of the top-level file)."""
    return resources.files("engine").joinpath("schema.sql").read_text(encoding="utf-8")


def user_version(con: apsw.Connection) -> int:
    return con.execute("PRAGMA user_version").fetchone()[0]


def refuse_unusable(con: apsw.Connection) -> None:
    """Before anything is written to a file: refuse a newer schema and somebody else's
    database (a non-SQLite file fails here too, on the first read)."""
    version = user_version(con)
    if version > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"database schema version {version} is newer than this mobstore "
            f"(knows up to {SCHEMA_VERSION}); upgrade mobstore to open it"
        )
    if version == 0:
        _require_empty(con)


def ensure_schema(con: apsw.Connection, *, readonly: bool = False) -> int:
    """Create or upgrade the schema; return the file's version.

    Each step runs under BEGIN IMMEDIATE and re-reads user_version inside the
    transaction, so two processes opening a new file at once do not both create it.
    """
    version = user_version(con)
    if version > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"database schema version {version} is newer than this mobstore "
            f"(knows up to {SCHEMA_VERSION}); upgrade mobstore to open it"
        )
    if version == SCHEMA_VERSION or readonly:
        if readonly and version == 0:
            raise StoreError("not a mobstore database (it has no mobstore schema)")
        if readonly and version < SCHEMA_VERSION:
            raise StoreError(f"database schema version {version} needs an upgrade; open it writable first")
        return version
    while True:
        con.execute("BEGIN IMMEDIATE")
        try:
            version = user_version(con)
            if version > SCHEMA_VERSION:
                raise SchemaTooNewError(
                    f"database schema version {version} is newer than this mobstore "
                    f"(knows up to {SCHEMA_VERSION})"
                )
            if version == SCHEMA_VERSION:
                con.execute("COMMIT")
                return version
            if version == 0:
                _require_empty(con)
                con.execute(schema_sql())
                target = SCHEMA_VERSION
            else:
                target = version + 1
                UPGRADES[target](con)
            # user_version cannot be bound; target is our own integer.
            con.execute(f"PRAGMA user_version = {int(target)}")  # sql-safe: our own integer, pragmas take no parameters
            con.execute("COMMIT")
        except BaseException:
            # After an I/O error or a full disk SQLite may have rolled back already; the
            # error to report is the one that got us here, not ROLLBACK's.
            if con.in_transaction:
                with contextlib.suppress(apsw.Error):
                    con.execute("ROLLBACK")
            raise


def _require_empty(con: apsw.Connection) -> None:
    """Refuse to put our tables into somebody else's database."""
    row = con.execute(
        "SELECT name FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' LIMIT 1"
    ).fetchone()
    if row is not None:
        raise StoreError(
            f"not a mobstore database: it has user_version 0 and already holds {row[0]!r}"
        )
