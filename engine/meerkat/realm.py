"""An open meerkat realm file: layout detection from `sqlite_master` and the schema
ledger, and the per-session reader that dispatches to the layout modules
(docs/meerkat.md lists what is read and checked per version).

Layouts:

* ``sessions-0.7``     0.7.0-0.7.24 whole-document `sessions` rows (sessions07)
* ``heads-0.7.28``     heads + strands, no ledger (heads)
* ``ledger-0.8.10``    session-store ledger v2: + strand links (ledger_v2)
* ``ledger-v3-0.8.11`` ledger v3: version-3 heads, metadata sidecar tables (ledger_v4)
* ``ledger-v4-0.8.21`` ledger v4: head-canonical v2 authority, metadata in cells (ledger_v4)
"""

from __future__ import annotations

import heapq
import os
import re
from dataclasses import replace
from typing import Any, Iterator

import apsw

from ..errors import ImportFormatError
from . import heads, ledger_v4, sessions07
from ._common import (
    COLUMNS,
    LAYOUT_HEADS_0728,
    LAYOUT_LEDGER_0810,
    LAYOUT_LEDGER_V3,
    LAYOUT_LEDGER_V4,
    LAYOUT_SESSIONS_07,
    MAX_RECEIPTS,
    PAGE,
    RUNTIME_PREFIX,
    Damaged,
    RealmFinding,
    RealmProblem,
    RealmReceipt,
    RealmSession,
    check_header,
    connect_readonly,
    json_column,
    parse_json,
    parse_receipt,
)

# Newest session-store ledger version this reader understands (0.8.21+ = 4,
# meerkat-store/src/sqlite_store.rs:1259-1290@c7b8518b4).
MAX_SESSION_STORE_VERSION = 4
_LEDGER_LAYOUT = {2: LAYOUT_LEDGER_0810, 3: LAYOUT_LEDGER_V3, 4: LAYOUT_LEDGER_V4}
_OTHER_MEERKAT_FILES = (("workgraph_items", "workgraph"), ("detached_jobs", "jobs"), ("schedule_schedules", "schedule"))


def open_realm(path: str | os.PathLike, *, check_digests: bool = True) -> Realm:
    """Open a meerkat realm file read-only and detect its layout.

    With `check_digests`, head revisions and receipt digests are recomputed from the
    messages read (engine.digest); what does not match becomes a RealmFinding of the
    session, whose data is still yielded.

    Raises ImportFormatError (one-line reason) when the path is missing, not a regular
    file (a FIFO is refused at once), not SQLite, not a meerkat session realm, of a
    newer session-store schema, or has a `-wal`/`-journal` side file holding data.
    """
    path = os.fspath(path)
    check_header(path)
    conn = connect_readonly(path)
    try:
        layout, tables, versions, schema_problems = _inspect_schema(conn)
    except BaseException:
        conn.close()
        raise
    return Realm(path, conn, layout, tables, versions, schema_problems, check_digests)


def _inspect_schema(conn: apsw.Connection) -> tuple[str, frozenset[str], dict[str, int], list[RealmProblem]]:
    try:
        entries = list(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
    except apsw.Error as exc:
        raise ImportFormatError(f"unreadable SQLite schema: {exc}") from None
    problems: list[RealmProblem] = []
    tables: set[str] = set()
    names = set()
    for kind, name, _tbl_name, sql in entries:
        names.add(name)
        if name in COLUMNS:
            if kind != "table":
                raise ImportFormatError(f"not a meerkat realm: {name!r} is a {kind}, not a table")
            if isinstance(sql, str) and re.match(r"\s*CREATE\s+VIRTUAL\b", sql, re.I):
                raise ImportFormatError(f"not a meerkat realm: {name!r} is a virtual table")
            tables.add(name)
        # Triggers and views are part of current meerkat files; none ever runs here.
    if "sessions" not in tables and "session_heads" not in tables:
        other = next((what for table, what in _OTHER_MEERKAT_FILES if table in names), None)
        if other:
            raise ImportFormatError(f"not a meerkat session realm: this is a meerkat {other} store "
                                    "(no 'sessions' or 'session_heads' table)")
        raise ImportFormatError("not a meerkat realm: no 'sessions' or 'session_heads' table")
    if "session_heads" in tables and "session_strand_messages" not in tables:
        raise ImportFormatError("damaged meerkat realm: 'session_heads' without 'session_strand_messages'")
    for table in tables:
        try:
            cols = dict(conn.execute("SELECT name, hidden FROM pragma_table_xinfo(?)", (table,)))
        except apsw.Error as exc:
            raise ImportFormatError(f"unreadable schema of {table!r}: {exc}") from None
        missing = sorted(COLUMNS[table] - cols.keys())
        if missing:
            raise ImportFormatError(f"not a meerkat realm: table {table!r} lacks {', '.join(missing)}")
        generated = sorted(c for c in COLUMNS[table] if cols[c] in (2, 3))
        if generated:
            raise ImportFormatError(f"not a meerkat realm: {table}.{generated[0]} is a generated column")
    versions: dict[str, int] = {}
    if "meerkat_schema" in tables:
        try:
            for domain, version in conn.execute("SELECT domain, version FROM meerkat_schema"):
                if isinstance(domain, str) and type(version) is int:
                    versions[domain] = version
                else:
                    problems.append(RealmProblem("meerkat_schema", repr(domain), f"malformed version {version!r}"))
        except apsw.Error as exc:
            raise ImportFormatError(f"unreadable meerkat_schema: {exc}") from None
        store = versions.get("session-store", 2)
        if store > MAX_SESSION_STORE_VERSION:
            raise ImportFormatError(
                f"meerkat session-store schema version {store} is newer than this reader "
                f"(at most {MAX_SESSION_STORE_VERSION}, meerkat 0.8.21-0.8.26)"
            )
        layout = _LEDGER_LAYOUT.get(store, LAYOUT_LEDGER_0810)
    elif "session_heads" in tables:
        layout = LAYOUT_HEADS_0728
    else:
        layout = LAYOUT_SESSIONS_07
    return layout, frozenset(tables), versions, problems


def _transcript_digest(messages, profile):
    from .. import digest  # noqa: PLC0415 - the reader itself needs no digests

    return digest.transcript_digest(messages, profile)


def _prefix_digests(messages, profile, counts):
    """(count, digest) at each of the sorted `counts` in one streaming pass (engine.digest)."""
    from .. import digest  # noqa: PLC0415

    state = digest.TranscriptState.new(profile)
    out = []
    for count in counts:
        state.absorb(list(messages[state.count:count]))
        out.append((count, state.digest()))
    return out


class Realm:
    """An open meerkat realm file. Not thread-safe; one reader at a time."""

    def __init__(self, path, conn, layout, tables, versions, schema_problems, check_digests) -> None:
        self._path = path
        self._conn: apsw.Connection | None = conn
        self._layout = layout
        self.tables: frozenset[str] = tables
        self._versions = versions
        self._schema_problems = schema_problems
        self._check = check_digests

    # -- facts ------------------------------------------------------------

    @property
    def layout(self) -> str:
        """One of the LAYOUT_* names."""
        return self._layout

    @property
    def path(self) -> str:
        return self._path

    @property
    def schema_versions(self) -> dict[str, int]:
        """The `meerkat_schema` ledger (domain -> version); empty before 0.8.10."""
        return dict(self._versions)

    @property
    def digests_checked(self) -> bool:
        """True when head revisions and receipt digests are recomputed."""
        return self._check

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Realm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _db(self) -> apsw.Connection:
        if self._conn is None:
            raise ImportFormatError(f"{self._path}: realm is closed")
        return self._conn

    def rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        return list(self._db().execute(sql, params))

    def _id_tables(self) -> tuple[str, ...]:
        return tuple(t for t in ("session_heads", "sessions") if t in self.tables)

    # -- counting and iteration --------------------------------------------

    def session_count(self) -> int:
        """How many items `sessions()` yields (one per distinct session id)."""
        try:
            text = self.rows(
                "SELECT count(*) FROM " + self._id_tables()[0] + " WHERE typeof(session_id) = 'text'"  # sql-safe: table name from our fixed list
            )[0][0]
            if self._id_tables() == ("session_heads", "sessions"):
                text += self.rows(
                    "SELECT count(*) FROM sessions s WHERE typeof(s.session_id) = 'text' AND NOT EXISTS "
                    "(SELECT 1 FROM session_heads h WHERE h.session_id = s.session_id)"
                )[0][0]
            return text + len(self._non_text_ids())
        except apsw.Error as exc:
            raise ImportFormatError(f"{self._path}: cannot count sessions: {exc}") from None

    def sessions(self) -> Iterator[RealmSession | RealmProblem]:
        """Every session in session-id order, one at a time; a session that cannot be
        read faithfully is yielded as a RealmProblem instead.

        Raises ImportFormatError only if the session index itself cannot be read (a
        corrupt file); per-session damage never raises.
        """
        streams = [self._text_ids(table) for table in self._id_tables()]
        previous = None
        for session_id in heapq.merge(*streams):
            if session_id == previous:
                continue
            previous = session_id
            yield self.session(session_id)
        for value, table in self._non_text_ids():
            yield RealmProblem(table, repr(value), "session_id is not text")

    def _text_ids(self, table: str) -> Iterator[str]:
        # Keyset pages over the primary-key index: no cursor stays open while the caller
        # holds a yielded session. `>=` on the first page so an empty-string id is not skipped.
        sql = (
            f"SELECT session_id FROM {table} WHERE typeof(session_id) = 'text' AND session_id {{}} ? "  # sql-safe: table name from our fixed list
            "ORDER BY session_id LIMIT ?"
        )
        after, op = "", ">="
        while True:
            try:
                page = [row[0] for row in self._db().execute(sql.format(op), (after, PAGE))]  # sql-safe: comparison operator from our two constants
            except apsw.Error as exc:
                raise ImportFormatError(f"{self._path}: cannot list {table}: {exc}") from None
            yield from page
            if len(page) < PAGE:
                return
            after, op = page[-1], ">"

    def _non_text_ids(self) -> list[tuple[Any, str]]:
        found: dict[Any, str] = {}
        for table in self._id_tables():
            for (value,) in self.rows(f"SELECT DISTINCT session_id FROM {table} WHERE typeof(session_id) != 'text' LIMIT 1000"):  # sql-safe: table name from our fixed list
                found.setdefault(value, table)
        return list(found.items())

    def session(self, session_id: str) -> RealmSession | RealmProblem | None:
        """One session by id; None when neither table has it."""
        try:
            return self._read_session(session_id)
        except Damaged as damage:
            return RealmProblem(damage.where, session_id, damage.reason)
        except ImportFormatError:
            raise
        except Exception as exc:  # the contract: per-session damage never raises
            return RealmProblem(
                "session_heads" if self._layout != LAYOUT_SESSIONS_07 else "sessions",
                session_id,
                f"unreadable: {type(exc).__name__}: {exc}",
            )

    def _read_session(self, session_id: str) -> RealmSession | None:
        head_row = None
        findings: list[RealmFinding] = []
        if "session_heads" in self.tables:
            head_row = self.rows(
                "SELECT version, strand, head_revision, message_count, created_at_ms, updated_at_ms, "
                "typeof(metadata_json), CAST(metadata_json AS BLOB), typeof(head_json), "
                "CAST(head_json AS BLOB), cas_token FROM session_heads WHERE session_id = ?",
                (session_id,),
            )
        if head_row:
            version, head, created, updated, messages, metadata, findings = heads.read_head(
                self, session_id, head_row[0])
        else:
            if "sessions" not in self.tables:
                return None
            rows = self.rows(
                "SELECT created_at_ms, updated_at_ms, message_count, typeof(metadata_json), "
                "CAST(metadata_json AS BLOB), typeof(session_json), CAST(session_json AS BLOB) "
                "FROM sessions WHERE session_id = ?",
                (session_id,),
            )
            if not rows:
                return None
            head = None
            version, created, updated, messages, metadata = sessions07.read_blob_session(session_id, rows[0])
        receipts, problems = self._read_receipts(session_id, version, len(messages))
        if self._check:
            receipts, more = self._check_digests(session_id, head, messages, receipts)
            findings += more
        return RealmSession(
            session_id=session_id, created_at_ms=created, updated_at_ms=updated, messages=tuple(messages),
            metadata=metadata, envelope_version=version, head=head, receipts=tuple(receipts),
            findings=tuple(findings), problems=tuple(problems),
        )

    # -- receipts ------------------------------------------------------------

    def _read_receipts(self, sid: str, version: int, message_total: int) -> tuple[list[RealmReceipt], list[RealmProblem]]:
        """The session's receipts, and a problem for each receipt row that cannot be read
        faithfully (that receipt is left out; the session is not)."""
        if "runtime_boundary_receipts" not in self.tables:
            return [], []
        where = "runtime_boundary_receipts"
        receipts: list[RealmReceipt] = []
        problems: list[RealmProblem] = []
        seen = set()
        ledger = self._layout not in (LAYOUT_SESSIONS_07, LAYOUT_HEADS_0728)
        rows = self.rows(
            "SELECT runtime_id, run_id, sequence, typeof(receipt_json), CAST(receipt_json AS BLOB) "
            "FROM runtime_boundary_receipts WHERE runtime_id IN (?, ?) LIMIT ?",
            (RUNTIME_PREFIX + sid, sid, MAX_RECEIPTS + 1),
        )
        if len(rows) > MAX_RECEIPTS:
            raise Damaged(where, f"more than {MAX_RECEIPTS} receipts")
        for runtime_id, run_id, column_seq, kind, raw in rows:
            label = f"receipt {run_id!r}#{column_seq!r}"
            try:
                raw = json_column(where, label, kind, raw)
                doc = parse_json(where, label, raw)
                receipt = parse_receipt(where, label, runtime_id, run_id, column_seq, doc, raw, version, ledger)
                if receipt.message_count > message_total:
                    raise Damaged(where, f"{label} covers {receipt.message_count} messages; "
                                         f"the transcript has {message_total}")
                if (receipt.run_id, receipt.sequence) in seen:
                    raise Damaged(where, f"duplicate {label} under both runtime id forms")
            except Damaged as damage:
                problems.append(RealmProblem(damage.where, f"{runtime_id}/{run_id!r}/{column_seq!r}",
                                             f"session {sid}: {damage.reason}"))
                continue
            seen.add((receipt.run_id, receipt.sequence))
            receipts.append(receipt)
        receipts.sort(key=lambda r: (r.run_id, r.sequence))
        return receipts, problems

    def _check_digests(self, sid, head, messages, receipts):
        """Recompute the head revision and receipt digests in one streaming pass per
        profile (engine.digest: native when built). A prefixed receipt digest that matches
        the other prefixed profile is re-labelled (an upgraded realm keeps its older
        receipts); one that matches neither keeps its era's profile, so the store's verify
        names it too. Returns (receipts, findings)."""
        findings: list[RealmFinding] = []
        wanted: dict[str, set[int]] = {}
        if head is not None:
            wanted.setdefault(head.profile, set()).add(head.message_count)
        for receipt in receipts:
            if receipt.conversation_digest is not None:
                profiles = {receipt.profile} | ({"f2", "f3"} if receipt.profile in ("f2", "f3") else set())
                for profile in profiles:
                    wanted.setdefault(profile, set()).add(receipt.message_count)
        computed: dict[tuple[int, str], str | None] = {}
        failed: dict[str, str] = {}
        for profile, counts in wanted.items():
            try:
                computed.update(((n, profile), d) for n, d in _prefix_digests(messages, profile, sorted(counts)))
            except Exception as exc:  # noqa: BLE001 - a row the canonicalizer refuses is a finding
                failed[profile] = f"{type(exc).__name__}: {exc}"
        if head is not None:
            got = computed.get((head.message_count, head.profile))
            if got is None:
                findings.append(RealmFinding("head", "mismatch", f"the head's messages do not canonicalise under "
                                             f"{head.profile}: {failed.get(head.profile)}", expected=head.revision))
            elif got != head.revision:
                findings.append(RealmFinding("head", "mismatch", f"head_revision is not the {head.profile} digest of "
                                             f"the head's {head.message_count} messages",
                                             expected=head.revision, actual=got))
        checked = []
        for receipt in receipts:
            if receipt.conversation_digest is not None:
                got = computed.get((receipt.message_count, receipt.profile))
                if got != receipt.conversation_digest:
                    other = {"f2": "f3", "f3": "f2"}.get(receipt.profile)
                    if other and computed.get((receipt.message_count, other)) == receipt.conversation_digest:
                        receipt = replace(receipt, profile=other)
                    else:
                        finding = ledger_v4.migrated_receipt(self, sid, receipt, _transcript_digest)
                        if finding is not None and receipt.profile != "bare":
                            receipt = replace(receipt, profile="f2")
                        if finding is None:
                            reason = (f"conversation_digest is not the {receipt.profile} digest of the first "
                                      f"{receipt.message_count} messages")
                            if got is None:
                                reason += f" (they do not canonicalise: {failed.get(receipt.profile)})"
                            finding = RealmFinding("receipt", "mismatch", reason, receipt.run_id, receipt.sequence,
                                                   receipt.conversation_digest, got)
                        findings.append(finding)
            checked.append(receipt)
        return checked, findings

    # -- rows belonging to no session --------------------------------------

    def problems_outside_sessions(self) -> list[RealmProblem]:
        """Receipts and runtime snapshots whose runtime id names no session, and strand
        rows of a session that has no head."""
        problems = list(self._schema_problems)
        try:
            for table, column, what in (
                ("runtime_boundary_receipts", "runtime_id", "receipt(s)"),
                ("runtime_session_snapshots", "runtime_id", "runtime snapshot(s)"),
            ):
                if table not in self.tables:
                    continue
                for runtime_id, n in self.rows(
                    f"SELECT {column}, count(*) FROM {table} GROUP BY {column} LIMIT 10000"  # sql-safe: table and column from our fixed tuple
                ):
                    if not isinstance(runtime_id, str):
                        problems.append(RealmProblem(table, repr(runtime_id), f"{n} {what} with a non-text runtime id"))
                        continue
                    sid = runtime_id[len(RUNTIME_PREFIX):] if runtime_id.startswith(RUNTIME_PREFIX) else runtime_id
                    if not self._session_exists(sid):
                        problems.append(
                            RealmProblem(table, runtime_id, f"{n} {what} whose runtime id names no session")
                        )
            if "session_heads" in self.tables:
                for sid, n in self.rows(
                    "SELECT session_id, count(*) FROM session_strand_messages m WHERE NOT EXISTS "
                    "(SELECT 1 FROM session_heads h WHERE h.session_id = m.session_id) GROUP BY session_id LIMIT 10000"
                ):
                    problems.append(RealmProblem("session_strand_messages", repr(sid) if not isinstance(sid, str)
                                                 else sid, f"{n} strand row(s) of a session without a head"))
        except apsw.Error as exc:
            problems.append(RealmProblem("sqlite_master", self._path, f"unreadable: {exc}"))
        return problems

    def _session_exists(self, sid: str) -> bool:
        return any(
            self.rows(f"SELECT count(*) FROM {table} WHERE session_id = ?", (sid,))[0][0]  # sql-safe: table name from our fixed list
            for table in self._id_tables()
        )
