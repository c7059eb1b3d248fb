"""Reading meerkat realm files (`sessions.sqlite3`) into plain records.

This module only reads; the Store consumes the records (`mobstore
import-meerkat`). Layout facts come from FORMAT.md §4; nothing here writes to
the source file or to mobstore.

Layouts (FORMAT.md §4.1), detected from the tables `sqlite_master` lists:

* ``"sessions-0.7"`` — meerkat 0.7.0–0.7.24: one `sessions` row per session,
  the whole Session envelope in `session_json`; messages are the exact byte
  spans of the elements of its `messages` array.
* ``"heads-0.7.28"`` — `session_heads` + `session_strand_messages` (0.7.25+,
  fixture 0.7.28). A session with a head row is read from the head strand's
  rows; its `sessions` row, if any, is a frozen archive and is ignored. A
  session with only a `sessions` row is read as in 0.7.x.
* ``"ledger-0.8.10"`` — as heads, plus the `meerkat_schema` ledger
  (session-store ≤ 2) and `session_strand_links` (strand supersession, §4.2).

Safety: the file is opened through a `file:` URI with ``mode=ro&immutable=1``,
defensive mode, no extension loading, triggers and views disabled,
``trusted_schema=OFF``, ``query_only=ON`` and an authorizer that allows only
SELECTs that read the meerkat tables we name ourselves. A meerkat table name
that `sqlite_master` lists as anything but a plain table (a view, a virtual
table) makes the file "not a meerkat realm". Triggers and other views are
never run and are reported by :meth:`Realm.problems_outside_sessions`.
``immutable=1`` ignores `-wal`/`-journal` side files, so a file whose side
file holds data is refused rather than read stale.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import re
import urllib.parse
from dataclasses import dataclass, replace
from typing import Any, Iterator

import apsw
import orjson

from .errors import ImportFormatError

__all__ = [
    "LAYOUT_SESSIONS_07",
    "LAYOUT_HEADS_0728",
    "LAYOUT_LEDGER_0810",
    "RealmReceipt",
    "RealmHead",
    "RealmSession",
    "RealmProblem",
    "Realm",
    "open_realm",
]

LAYOUT_SESSIONS_07 = "sessions-0.7"
LAYOUT_HEADS_0728 = "heads-0.7.28"
LAYOUT_LEDGER_0810 = "ledger-0.8.10"

# Newest session-store ledger version whose tables this reader understands
# (0.8.10 = 2; v3/v4 move metadata into `session_head_metadata_*`, §3).
MAX_SESSION_STORE_VERSION = 2

RUNTIME_PREFIX = "rt:session:"  # since 2026-04-30; seed era used the bare id (§4.2)

_SQLITE_MAGIC = b"SQLite format 3\x00"
_PAGE = 256  # session ids fetched per keyset page

# Columns we read, per table; a table missing one is not the meerkat table.
_COLUMNS: dict[str, frozenset[str]] = {
    "sessions": frozenset(
        ("session_id", "created_at_ms", "updated_at_ms", "message_count", "metadata_json", "session_json")
    ),
    "session_heads": frozenset(
        (
            "session_id", "version", "strand", "head_revision", "message_count", "created_at_ms",
            "updated_at_ms", "metadata_json", "head_json", "cas_token",
        )
    ),
    "session_strand_messages": frozenset(("session_id", "strand", "seq", "message_json")),
    "session_strand_links": frozenset(
        ("session_id", "strand", "successor", "strand_len", "splice_start", "splice_end", "successor_end")
    ),
    "runtime_boundary_receipts": frozenset(("runtime_id", "run_id", "sequence", "receipt_json")),
    "runtime_session_snapshots": frozenset(("runtime_id", "session_snapshot")),
    "meerkat_schema": frozenset(("domain", "version")),
}
_SYSTEM_TABLES = frozenset(("sqlite_master", "sqlite_schema", "pragma_table_xinfo"))
_FUNCTIONS = frozenset(("count", "typeof"))

_BOUNDARIES = frozenset(("immediate", "run_start", "run_checkpoint"))
_BARE_HEX = re.compile(r"[0-9a-f]{64}")
_PREFIXED_HEX = re.compile(r"sha256:[0-9a-f]{64}")
_VERSION_PROFILE = {2: "f2", 3: "f3"}  # envelope/head version -> digest profile (§2.2)


@dataclass(frozen=True)
class RealmReceipt:
    """One `runtime_boundary_receipts` row (FORMAT.md §4.3)."""

    runtime_id: str
    run_id: str
    sequence: int  # the receipt JSON's u64 (the column holds it as i64)
    boundary: str
    contributing_input_ids: tuple[str, ...]
    conversation_digest: str | None
    message_count: int
    profile: str  # "bare" | "f2" | "f3" (FORMAT.md §2.2)
    receipt_json: bytes  # exact stored bytes


@dataclass(frozen=True)
class RealmHead:
    """A `session_heads` row; `profile` is "f2" for version 2, "f3" for 3."""

    revision: str
    message_count: int
    version: int
    strand: str
    profile: str


@dataclass(frozen=True)
class RealmSession:
    """One session, complete and consistent."""

    session_id: str
    created_at_ms: int
    updated_at_ms: int
    messages: tuple[bytes, ...]  # exact stored bytes, transcript order
    metadata: dict
    envelope_version: int | None
    head: RealmHead | None
    receipts: tuple[RealmReceipt, ...]  # sorted by (run_id, sequence)


@dataclass(frozen=True)
class RealmProblem:
    """Something that could not be read faithfully; nothing of it is imported."""

    where: str  # table name
    key: str  # row key (session id, runtime id, ...)
    reason: str


class _Damaged(Exception):
    """Internal: one reason a session cannot be read (becomes a RealmProblem)."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(reason)
        self.where = where
        self.reason = reason


# ---------------------------------------------------------------------------
# Opening
# ---------------------------------------------------------------------------


def open_realm(path: str | os.PathLike, *, check_digests: bool = True) -> Realm:
    """Open a meerkat realm file read-only and detect its layout.

    With `check_digests`, each head revision and receipt digest is recomputed
    from the messages read (engine.digest), and a mismatch makes that session a
    RealmProblem.

    Raises ImportFormatError (one-line reason) when the file is missing or
    unreadable, not SQLite, not a meerkat realm, of a newer session-store
    schema, or has a `-wal`/`-journal` side file holding data.
    """
    path = os.fspath(path)
    _check_header(path)
    conn = _connect_readonly(path)
    try:
        layout, tables, versions, schema_problems = _inspect_schema(conn)
    except BaseException:
        conn.close()
        raise
    canon = _load_canon() if check_digests else None
    return Realm(path, conn, layout, tables, versions, schema_problems, canon)


def _check_header(path: str) -> None:
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except OSError as exc:
        raise ImportFormatError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise ImportFormatError(f"{path}: not a SQLite database file")
    if int.from_bytes(header[56:60], "big") not in (0, 1):
        # CAST(x AS BLOB) must yield UTF-8 bytes; meerkat files are UTF-8.
        raise ImportFormatError(f"{path}: SQLite text encoding is not UTF-8")
    for side in ("-wal", "-journal"):
        try:
            size = os.path.getsize(path + side)
        except OSError:
            continue
        if size > 0:
            raise ImportFormatError(
                f"{path}: has a non-empty {side} file (a writer is active or crashed); "
                "open it once with meerkat or sqlite3 to checkpoint, then retry"
            )


def _connect_readonly(path: str) -> apsw.Connection:
    """The one place the source connection is configured; each step says why."""
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=ro&immutable=1"
    try:
        conn = apsw.Connection(uri, flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI)
    except apsw.Error as exc:
        raise ImportFormatError(f"{path}: cannot open: {exc}") from None
    try:
        # Refuse writes to the schema / shadow tables even by a hostile schema.
        conn.config(apsw.SQLITE_DBCONFIG_DEFENSIVE, 1)
        # Functions used inside the schema (views, triggers, generated
        # columns, defaults) must be innocuous.
        conn.config(apsw.SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0)
        # Meerkat files have no triggers or views; nothing of theirs may run.
        conn.config(apsw.SQLITE_DBCONFIG_ENABLE_TRIGGER, 0)
        conn.config(apsw.SQLITE_DBCONFIG_ENABLE_VIEW, 0)
        # No shared library may be loaded through this connection.
        conn.config(apsw.SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0)
        conn.enable_load_extension(False)
        conn.execute("PRAGMA trusted_schema=OFF")
        # Belt and braces on top of mode=ro: no statement may write.
        conn.execute("PRAGMA query_only=ON")
        # Last: only reads of the tables we name, via count()/typeof().
        conn.authorizer = _authorize
    except apsw.Error as exc:
        conn.close()
        raise ImportFormatError(f"{path}: cannot configure a safe read-only connection: {exc}") from None
    return conn


def _authorize(op: int, p1: str | None, p2: str | None, db: str | None, inner: str | None) -> int:
    if op == apsw.SQLITE_SELECT:
        return apsw.SQLITE_OK
    if op == apsw.SQLITE_READ:
        # `inner` names the trigger or view a read comes from: never allowed.
        if inner is None and db == "main" and (p1 in _COLUMNS or p1 in _SYSTEM_TABLES):
            return apsw.SQLITE_OK
        return apsw.SQLITE_DENY
    if op == apsw.SQLITE_FUNCTION:
        return apsw.SQLITE_OK if p2 in _FUNCTIONS else apsw.SQLITE_DENY
    if op == apsw.SQLITE_PRAGMA:
        return apsw.SQLITE_OK if p1 == "table_xinfo" else apsw.SQLITE_DENY
    return apsw.SQLITE_DENY


def _inspect_schema(conn: apsw.Connection) -> tuple[str, frozenset[str], dict[str, int], list[RealmProblem]]:
    try:
        entries = list(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
    except apsw.Error as exc:
        raise ImportFormatError(f"unreadable SQLite schema: {exc}") from None
    problems: list[RealmProblem] = []
    tables: set[str] = set()
    for kind, name, tbl_name, sql in entries:
        if name in _COLUMNS:
            if kind != "table":
                raise ImportFormatError(f"not a meerkat realm: {name!r} is a {kind}, not a table")
            if isinstance(sql, str) and re.match(r"\s*CREATE\s+VIRTUAL\b", sql, re.I):
                raise ImportFormatError(f"not a meerkat realm: {name!r} is a virtual table")
            tables.add(name)
        elif kind in ("trigger", "view"):
            # Never executed (triggers/views are disabled and never selected).
            problems.append(RealmProblem("sqlite_master", str(name), f"unexpected {kind} on {tbl_name!r} ignored"))
    if "sessions" not in tables and "session_heads" not in tables:
        raise ImportFormatError("not a meerkat realm: no 'sessions' or 'session_heads' table")
    if "session_heads" in tables and "session_strand_messages" not in tables:
        raise ImportFormatError("damaged meerkat realm: 'session_heads' without 'session_strand_messages'")
    for table in tables:
        try:
            cols = {
                name: hidden
                for name, hidden in conn.execute("SELECT name, hidden FROM pragma_table_xinfo(?)", (table,))
            }
        except apsw.Error as exc:
            raise ImportFormatError(f"unreadable schema of {table!r}: {exc}") from None
        missing = sorted(_COLUMNS[table] - cols.keys())
        if missing:
            raise ImportFormatError(f"not a meerkat realm: table {table!r} lacks {', '.join(missing)}")
        generated = sorted(c for c in _COLUMNS[table] if cols[c] in (2, 3))
        if generated:
            raise ImportFormatError(f"not a meerkat realm: {table}.{generated[0]} is a generated column")
    versions: dict[str, int] = {}
    if "meerkat_schema" in tables:
        try:
            for domain, version in conn.execute("SELECT domain, version FROM meerkat_schema"):
                if isinstance(domain, str) and isinstance(version, int):
                    versions[domain] = version
                else:
                    problems.append(RealmProblem("meerkat_schema", repr(domain), f"malformed version {version!r}"))
        except apsw.Error as exc:
            raise ImportFormatError(f"unreadable meerkat_schema: {exc}") from None
        store = versions.get("session-store", 0)
        if store > MAX_SESSION_STORE_VERSION:
            raise ImportFormatError(
                f"meerkat session-store schema version {store} is newer than this reader "
                f"(at most {MAX_SESSION_STORE_VERSION}, meerkat 0.8.10)"
            )
        layout = LAYOUT_LEDGER_0810
    elif "session_heads" in tables:
        layout = LAYOUT_HEADS_0728
    else:
        layout = LAYOUT_SESSIONS_07
    return layout, frozenset(tables), versions, problems


def _load_canon():
    """A prefix-digest function over engine.digest (the native path when built):
    (messages, profile, sorted counts) -> [(count, digest), ...] in one streaming pass."""
    from . import digest  # noqa: PLC0415 - imported late: the reader itself needs no digests

    def prefix_digests(messages, profile, counts):
        state = digest.TranscriptState.new(profile)
        out = []
        for count in counts:
            if count > len(messages):
                raise ValueError(f"{count} messages asked, {len(messages)} stored")
            state.absorb(list(messages[state.count:count]))
            out.append((count, state.digest()))
        return out

    return prefix_digests


# ---------------------------------------------------------------------------
# The realm
# ---------------------------------------------------------------------------


class Realm:
    """An open meerkat realm file. Not thread-safe; one reader at a time."""

    def __init__(self, path, conn, layout, tables, versions, schema_problems, canon) -> None:
        self._path = path
        self._conn: apsw.Connection | None = conn
        self._layout = layout
        self._tables = tables
        self._versions = versions
        self._schema_problems = schema_problems
        self._canon = canon

    # -- facts ------------------------------------------------------------

    @property
    def layout(self) -> str:
        """One of LAYOUT_SESSIONS_07, LAYOUT_HEADS_0728, LAYOUT_LEDGER_0810."""
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
        return self._canon is not None

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

    def _rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        return list(self._db().execute(sql, params))

    def _id_tables(self) -> tuple[str, ...]:
        return tuple(t for t in ("session_heads", "sessions") if t in self._tables)

    # -- counting and iteration --------------------------------------------

    def session_count(self) -> int:
        """How many items `sessions()` yields (one per distinct session id)."""
        try:
            text = self._rows(
                "SELECT count(*) FROM " + self._id_tables()[0] + " WHERE typeof(session_id) = 'text'"  # sql-safe: table name from our fixed list
            )[0][0]
            if self._id_tables() == ("session_heads", "sessions"):
                text += self._rows(
                    "SELECT count(*) FROM sessions s WHERE typeof(s.session_id) = 'text' AND NOT EXISTS "
                    "(SELECT 1 FROM session_heads h WHERE h.session_id = s.session_id)"
                )[0][0]
            return text + len(self._non_text_ids())
        except apsw.Error as exc:
            raise ImportFormatError(f"{self._path}: cannot count sessions: {exc}") from None

    def sessions(self) -> Iterator[RealmSession | RealmProblem]:
        """Every session in session-id order, one at a time; a session that
        cannot be read faithfully is yielded as a RealmProblem instead.

        Raises ImportFormatError only if the session index itself cannot be
        read (a corrupt file); per-session damage never raises.
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
        # Keyset pages over the primary-key index: no cursor stays open
        # while the caller holds a yielded session.
        # `>=` on the first page so that an empty-string id is not skipped.
        sql = (
            f"SELECT session_id FROM {table} WHERE typeof(session_id) = 'text' AND session_id {{}} ? "  # sql-safe: table name from our fixed list
            "ORDER BY session_id LIMIT ?"
        )
        after, op = "", ">="
        while True:
            try:
                page = [row[0] for row in self._db().execute(sql.format(op), (after, _PAGE))]  # sql-safe: comparison operator from our two constants
            except apsw.Error as exc:
                raise ImportFormatError(f"{self._path}: cannot list {table}: {exc}") from None
            yield from page
            if len(page) < _PAGE:
                return
            after, op = page[-1], ">"

    def _non_text_ids(self) -> list[tuple[Any, str]]:
        found: dict[Any, str] = {}
        for table in self._id_tables():
            for (value,) in self._rows(f"SELECT DISTINCT session_id FROM {table} WHERE typeof(session_id) != 'text'"):  # sql-safe: table name from our fixed list
                found.setdefault(value, table)
        return list(found.items())

    def session(self, session_id: str) -> RealmSession | RealmProblem | None:
        """One session by id; None when neither table has it."""
        try:
            return self._read_session(session_id)
        except _Damaged as damage:
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
        if "session_heads" in self._tables:
            head_row = self._rows(
                "SELECT version, strand, head_revision, message_count, created_at_ms, updated_at_ms, "
                "typeof(metadata_json), CAST(metadata_json AS BLOB), typeof(head_json), "
                "CAST(head_json AS BLOB), cas_token FROM session_heads WHERE session_id = ?",
                (session_id,),
            )
        if head_row:
            version, head, created, updated, messages, metadata = self._read_head(session_id, head_row[0])
        else:
            if "sessions" not in self._tables:
                return None
            rows = self._rows(
                "SELECT created_at_ms, updated_at_ms, message_count, typeof(metadata_json), "
                "CAST(metadata_json AS BLOB), typeof(session_json), CAST(session_json AS BLOB) "
                "FROM sessions WHERE session_id = ?",
                (session_id,),
            )
            if not rows:
                return None
            head = None
            version, created, updated, messages, metadata = self._read_blob_session(session_id, rows[0])
        receipts = self._read_receipts(session_id, version, len(messages))
        if self._canon is not None:
            receipts = self._check_digests(session_id, head, messages, receipts)
        return RealmSession(
            session_id=session_id,
            created_at_ms=created,
            updated_at_ms=updated,
            messages=tuple(messages),
            metadata=metadata,
            envelope_version=version,
            head=head,
            receipts=tuple(receipts),
        )

    # -- 0.7.x whole-document sessions ---------------------------------------

    def _read_blob_session(self, sid: str, row: tuple):
        created, updated, count, md_type, md_bytes, doc_type, doc = row
        where = "sessions"
        _require_int(where, "created_at_ms", created)
        _require_int(where, "updated_at_ms", updated)
        doc = _json_column(where, "session_json", doc_type, doc)
        try:
            envelope = orjson.loads(doc)
        except orjson.JSONDecodeError as exc:
            raise _Damaged(where, f"session_json is not valid JSON ({exc})") from None
        if not isinstance(envelope, dict):
            raise _Damaged(where, "session_json is not a JSON object")
        version = envelope.get("version")
        if type(version) is not int or version not in (1, 2, 3):
            raise _Damaged(where, f"unknown session envelope version {version!r}")
        if envelope.get("id") != sid:
            raise _Damaged(where, f"session_json id {envelope.get('id')!r} differs from session_id")
        parsed = envelope.get("messages")
        if not isinstance(parsed, list):
            raise _Damaged(where, "session_json has no messages array")
        try:
            spans = _message_spans(doc)
        except ValueError as exc:
            raise _Damaged(where, f"session_json: {exc}") from None
        if len(spans) != len(parsed):
            raise _Damaged(where, "session_json messages could not be delimited")
        messages = [doc[a:b] for a, b in spans]
        for index, message in enumerate(parsed):
            _check_message(where, f"message {index}", message)
        if count != len(messages):
            raise _Damaged(where, f"message_count {count!r} but session_json holds {len(messages)} messages")
        metadata = envelope.get("metadata", {})
        if not isinstance(metadata, dict):
            raise _Damaged(where, "session_json metadata is not an object")
        column = _parse_json(where, "metadata_json", _json_column(where, "metadata_json", md_type, md_bytes))
        if column != metadata:
            raise _Damaged(where, "metadata_json disagrees with session_json.metadata")
        return version, created, updated, messages, metadata

    # -- 0.7.28+ heads and strands -----------------------------------------

    def _read_head(self, sid: str, row: tuple):
        (version, strand, revision, count, created, updated,
         md_type, md_bytes, head_type, head_bytes, cas_token) = row
        where = "session_heads"
        if type(version) is not int or version not in _VERSION_PROFILE:
            raise _Damaged(where, f"unknown head version {version!r}")
        if not isinstance(strand, str) or not strand:
            raise _Damaged(where, f"strand {strand!r} is not a name")
        if not isinstance(revision, str) or not _PREFIXED_HEX.fullmatch(revision):
            raise _Damaged(where, f"head_revision {revision!r} is not sha256:<64 hex>")
        _require_int(where, "message_count", count)
        if count < 0:
            raise _Damaged(where, f"negative message_count {count}")
        _require_int(where, "created_at_ms", created)
        _require_int(where, "updated_at_ms", updated)
        head_bytes = _json_column(where, "head_json", head_type, head_bytes)
        if isinstance(cas_token, str) and cas_token.startswith("head-sha256:"):
            # 0.7.28–0.8.10 token over the exact head_json bytes (§2.5).
            if cas_token != "head-sha256:" + hashlib.sha256(head_bytes).hexdigest():
                raise _Damaged(where, "cas_token does not match the head_json bytes")
        head_doc = _parse_json(where, "head_json", head_bytes)
        if not isinstance(head_doc, dict):
            raise _Damaged(where, "head_json is not a JSON object")
        expected = {"id": sid, "version": version, "strand": strand, "head_revision": revision, "message_count": count}
        for key, value in expected.items():
            if head_doc.get(key) != value:
                raise _Damaged(where, f"head_json {key} {head_doc.get(key)!r} disagrees with the row ({value!r})")
        metadata = head_doc.get("metadata", {})
        if not isinstance(metadata, dict):
            raise _Damaged(where, "head_json metadata is not an object")
        column = _parse_json(where, "metadata_json", _json_column(where, "metadata_json", md_type, md_bytes))
        if column != metadata:
            raise _Damaged(where, "metadata_json disagrees with head_json.metadata")
        links = self._strand_links(sid)
        messages = self._resolve_strand(sid, strand, 0, count, links, len(links))
        for index, message in enumerate(messages):
            _check_message("session_strand_messages", f"{strand} row {index}", _parse_json(
                "session_strand_messages", f"strand {strand!r} row {index}", message))
        head = RealmHead(revision=revision, message_count=count, version=version, strand=strand,
                         profile=_VERSION_PROFILE[version])
        return version, head, created, updated, messages, metadata

    def _strand_links(self, sid: str) -> dict[str, tuple[str, int, int, int, int]]:
        if "session_strand_links" not in self._tables:
            return {}
        links = {}
        for strand, successor, length, start, end, succ_end in self._rows(
            "SELECT strand, successor, strand_len, splice_start, splice_end, successor_end "
            "FROM session_strand_links WHERE session_id = ?",
            (sid,),
        ):
            numbers = (length, start, end, succ_end)
            if not (isinstance(strand, str) and isinstance(successor, str) and all(type(n) is int for n in numbers)
                    and 0 <= start <= end <= length and 0 <= start <= succ_end):
                raise _Damaged("session_strand_links", f"malformed link of strand {strand!r}")
            links[strand] = (successor, length, start, end, succ_end)
        return links

    def _resolve_strand(self, sid, strand, start, end, links, hops) -> list[bytes]:
        """Logical rows [start, end) of `strand`, following supersession links
        (FORMAT.md §4.2): a linked strand owns [splice_start, splice_end) and
        any tail beyond strand_len; i < splice_start is successor row i, and
        splice_end <= i < strand_len is successor row i - splice_end + successor_end."""
        if start >= end:
            return []
        link = links.get(strand)
        if link is None:
            return self._physical_rows(sid, strand, start, end)
        if hops <= 0:
            raise _Damaged("session_strand_links", f"strand links cycle through {strand!r}")
        successor, length, s_start, s_end, succ_end = link
        out: list[bytes] = []
        linked_end = min(end, length)
        if start < min(s_start, linked_end):  # shared prefix
            out += self._resolve_strand(sid, successor, start, min(s_start, linked_end), links, hops - 1)
        lo, hi = max(start, s_start), min(s_end, linked_end)
        if lo < hi:  # the span this strand owns
            out += self._physical_rows(sid, strand, lo, hi)
        lo = max(start, s_end)
        if lo < linked_end:  # shared suffix
            out += self._resolve_strand(
                sid, successor, lo - s_end + succ_end, linked_end - s_end + succ_end, links, hops - 1
            )
        if max(start, length) < end:  # tail appended after the link was written
            out += self._physical_rows(sid, strand, max(start, length), end)
        return out

    def _physical_rows(self, sid: str, strand: str, start: int, end: int) -> list[bytes]:
        where = "session_strand_messages"
        rows = self._rows(
            "SELECT seq, typeof(message_json), CAST(message_json AS BLOB) FROM session_strand_messages "
            "WHERE session_id = ? AND strand = ? AND seq >= ? AND seq < ? ORDER BY seq",
            (sid, strand, start, end),
        )
        seqs = [row[0] for row in rows]
        if seqs != list(range(start, end)):
            missing = sorted(set(range(start, end)) - set(seqs))
            first = f" (first missing seq {missing[0]})" if missing else ""
            raise _Damaged(where, f"missing strand rows: strand {strand!r} has {len(rows)} of rows "
                                  f"[{start}, {end}){first}")
        return [_json_column(where, f"strand {strand!r} seq {seq}", kind, value) for seq, kind, value in rows]

    # -- receipts ------------------------------------------------------------

    def _read_receipts(self, sid: str, version: int, message_total: int) -> list[RealmReceipt]:
        if "runtime_boundary_receipts" not in self._tables:
            return []
        where = "runtime_boundary_receipts"
        receipts = []
        seen = set()
        for runtime_id, run_id, column_seq, kind, raw in self._rows(
            "SELECT runtime_id, run_id, sequence, typeof(receipt_json), CAST(receipt_json AS BLOB) "
            "FROM runtime_boundary_receipts WHERE runtime_id IN (?, ?)",
            (RUNTIME_PREFIX + sid, sid),
        ):
            label = f"receipt {run_id!r}#{column_seq!r}"
            raw = _json_column(where, label, kind, raw)
            doc = _parse_json(where, label, raw)
            receipt = _receipt(where, label, runtime_id, run_id, column_seq, doc, raw, version, self._layout)
            if receipt.message_count > message_total:
                raise _Damaged(where, f"{label} covers {receipt.message_count} messages; "
                                      f"the transcript has {message_total}")
            if (receipt.run_id, receipt.sequence) in seen:
                raise _Damaged(where, f"duplicate {label} under both runtime id forms")
            seen.add((receipt.run_id, receipt.sequence))
            receipts.append(receipt)
        receipts.sort(key=lambda r: (r.run_id, r.sequence))
        return receipts

    def _check_digests(self, sid, head, messages, receipts):
        """Recompute the head revision and receipt digests in one streaming pass per
        profile (engine.digest: native when built); a prefixed receipt digest that
        matches the other prefixed profile is re-labelled (an upgraded realm keeps its
        older receipts)."""
        wanted: dict[str, set[int]] = {}
        if head is not None:
            wanted.setdefault(head.profile, set()).add(head.message_count)
        for receipt in receipts:
            if receipt.conversation_digest is not None:
                profiles = {receipt.profile} | ({"f2", "f3"} if receipt.profile in ("f2", "f3") else set())
                for profile in profiles:
                    wanted.setdefault(profile, set()).add(receipt.message_count)
        computed: dict[tuple[int, str], str] = {}
        for profile, counts in wanted.items():
            try:
                computed.update(((n, profile), d) for n, d in self._canon(messages, profile, sorted(counts)))
            except Exception as exc:
                raise _Damaged("session_strand_messages" if head else "sessions",
                               f"digest check failed ({profile}): {type(exc).__name__}: {exc}") from None

        if head is not None and (got := computed[head.message_count, head.profile]) != head.revision:
            raise _Damaged("session_heads", f"head_revision does not match the {head.profile} digest "
                                            f"of the head's {head.message_count} messages (computed {got})")
        checked = []
        for receipt in receipts:
            if receipt.conversation_digest is not None:
                if computed[receipt.message_count, receipt.profile] != receipt.conversation_digest:
                    other = {"f2": "f3", "f3": "f2"}.get(receipt.profile)
                    if other and computed[receipt.message_count, other] == receipt.conversation_digest:
                        receipt = replace(receipt, profile=other)
                    else:
                        raise _Damaged("runtime_boundary_receipts",
                                       f"receipt {receipt.run_id}#{receipt.sequence} conversation_digest does "
                                       f"not match the {receipt.profile} digest of {receipt.message_count} messages")
            checked.append(receipt)
        return checked

    # -- rows belonging to no session --------------------------------------

    def problems_outside_sessions(self) -> list[RealmProblem]:
        """Schema oddities (triggers/views, never run), receipts and runtime
        snapshots whose runtime id names no session, and strand rows of a
        session that has no head."""
        problems = list(self._schema_problems)
        try:
            for table, column, what in (
                ("runtime_boundary_receipts", "runtime_id", "receipt(s)"),
                ("runtime_session_snapshots", "runtime_id", "runtime snapshot(s)"),
            ):
                if table not in self._tables:
                    continue
                for runtime_id, n in self._rows(f"SELECT {column}, count(*) FROM {table} GROUP BY {column}"):  # sql-safe: table and column from our fixed tuple
                    if not isinstance(runtime_id, str):
                        problems.append(RealmProblem(table, repr(runtime_id), f"{n} {what} with a non-text runtime id"))
                        continue
                    sid = runtime_id[len(RUNTIME_PREFIX):] if runtime_id.startswith(RUNTIME_PREFIX) else runtime_id
                    if not self._session_exists(sid):
                        problems.append(
                            RealmProblem(table, runtime_id, f"{n} {what} whose runtime id names no session")
                        )
            if "session_heads" in self._tables:
                for sid, n in self._rows(
                    "SELECT session_id, count(*) FROM session_strand_messages m WHERE NOT EXISTS "
                    "(SELECT 1 FROM session_heads h WHERE h.session_id = m.session_id) GROUP BY session_id"
                ):
                    problems.append(RealmProblem("session_strand_messages", repr(sid) if not isinstance(sid, str)
                                                 else sid, f"{n} strand row(s) of a session without a head"))
        except apsw.Error as exc:
            problems.append(RealmProblem("sqlite_master", self._path, f"unreadable: {exc}"))
        return problems

    def _session_exists(self, sid: str) -> bool:
        return any(
            self._rows(f"SELECT count(*) FROM {table} WHERE session_id = ?", (sid,))[0][0]  # sql-safe: table name from our fixed list
            for table in self._id_tables()
        )


# ---------------------------------------------------------------------------
# Row helpers
# ---------------------------------------------------------------------------


def _require_int(where: str, name: str, value: object) -> None:
    if type(value) is not int:
        raise _Damaged(where, f"{name} {value!r} is not an integer")


def _json_column(where: str, name: str, kind: str, value: object) -> bytes:
    """Exact stored bytes of a JSON column (BLOB or TEXT, §4.1)."""
    if kind not in ("blob", "text") or not isinstance(value, bytes):
        raise _Damaged(where, f"{name} is {kind}, not JSON text")
    return value


def _parse_json(where: str, name: str, raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _Damaged(where, f"damaged JSON in {name} ({exc})") from None


def _check_message(where: str, name: str, message: Any) -> None:
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise _Damaged(where, f"{name} is not a message object with a role")


def _receipt(where, label, runtime_id, run_id, column_seq, doc, raw, version, layout) -> RealmReceipt:
    if not isinstance(doc, dict):
        raise _Damaged(where, f"{label} is not a JSON object")
    seq = doc.get("sequence")
    count = doc.get("message_count")
    inputs = doc.get("contributing_input_ids")
    digest = doc.get("conversation_digest")
    if doc.get("run_id") != run_id or not isinstance(run_id, str):
        raise _Damaged(where, f"{label} run_id disagrees with its row")
    if doc.get("boundary") not in _BOUNDARIES:
        raise _Damaged(where, f"{label} has unknown boundary {doc.get('boundary')!r}")
    if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
        raise _Damaged(where, f"{label} contributing_input_ids is not a list of strings")
    if type(count) is not int or count < 0 or type(seq) is not int or not 0 <= seq < 2**64:
        raise _Damaged(where, f"{label} message_count/sequence are not unsigned integers")
    # The column stores the u64 bit-reinterpreted as i64; older code clamped (§4.3).
    if column_seq not in (seq if seq < 2**63 else seq - 2**64, min(seq, 2**63 - 1)):
        raise _Damaged(where, f"{label} sequence disagrees with receipt_json ({seq})")
    default = {3: "f3"}.get(version, "f2" if layout == LAYOUT_LEDGER_0810 else "bare")
    if digest is None:
        profile = default  # nothing to verify; the realm's era decides
    elif isinstance(digest, str) and _BARE_HEX.fullmatch(digest):
        profile = "bare"
    elif isinstance(digest, str) and _PREFIXED_HEX.fullmatch(digest) and version in _VERSION_PROFILE:
        profile = _VERSION_PROFILE[version]
    else:
        raise _Damaged(where, f"{label} has an unrecognised conversation_digest {digest!r} "
                              f"(envelope version {version})")
    return RealmReceipt(
        runtime_id=runtime_id, run_id=run_id, sequence=seq, boundary=doc["boundary"],
        contributing_input_ids=tuple(inputs), conversation_digest=digest, message_count=count,
        profile=profile, receipt_json=raw,
    )


# ---------------------------------------------------------------------------
# Byte spans of the messages of a whole-session document
# ---------------------------------------------------------------------------
# The document has already parsed with orjson, so this scanner only has to
# find boundaries in valid JSON; it never decodes values.

_WS = re.compile(rb"[ \t\n\r]*")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_SCALAR = re.compile(rb"[^,\]} \t\n\r]+")
_STRUCTURE = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.S)


def _message_spans(doc: bytes) -> list[tuple[int, int]]:
    """[start, end) byte offsets of each element of the top-level `messages`
    array. ValueError on a duplicate top-level key or a missing array."""
    pos = _WS.match(doc, 0).end()
    if doc[pos:pos + 1] != b"{":
        raise ValueError("not a JSON object")
    pos = _WS.match(doc, pos + 1).end()
    keys: set[str] = set()
    spans = None
    while doc[pos:pos + 1] != b"}":
        m = _STRING.match(doc, pos)
        if m is None:
            raise ValueError(f"expected a key at byte {pos}")
        key = orjson.loads(m.group())
        if key in keys:
            raise ValueError(f"duplicate top-level key {key!r}")
        keys.add(key)
        pos = _WS.match(doc, m.end()).end()
        if doc[pos:pos + 1] != b":":
            raise ValueError(f"expected ':' at byte {pos}")
        pos = _WS.match(doc, pos + 1).end()
        if key == "messages":
            spans, pos = _array_spans(doc, pos)
        else:
            pos = _value_end(doc, pos)
        pos = _WS.match(doc, pos).end()
        if doc[pos:pos + 1] == b",":
            pos = _WS.match(doc, pos + 1).end()
        elif doc[pos:pos + 1] != b"}":
            raise ValueError(f"expected ',' or '}}' at byte {pos}")
    if spans is None:
        raise ValueError("no messages array")
    return spans


def _array_spans(doc: bytes, pos: int) -> tuple[list[tuple[int, int]], int]:
    if doc[pos:pos + 1] != b"[":
        raise ValueError("messages is not an array")
    spans = []
    pos = _WS.match(doc, pos + 1).end()
    if doc[pos:pos + 1] == b"]":
        return spans, pos + 1
    while True:
        end = _value_end(doc, pos)
        spans.append((pos, end))
        pos = _WS.match(doc, end).end()
        if doc[pos:pos + 1] == b"]":
            return spans, pos + 1
        if doc[pos:pos + 1] != b",":
            raise ValueError(f"expected ',' or ']' at byte {pos}")
        pos = _WS.match(doc, pos + 1).end()


def _value_end(doc: bytes, pos: int) -> int:
    first = doc[pos:pos + 1]
    if first == b'"':
        m = _STRING.match(doc, pos)
        if m is None:
            raise ValueError(f"unterminated string at byte {pos}")
        return m.end()
    if first in (b"{", b"["):
        depth = 0
        for m in _STRUCTURE.finditer(doc, pos):
            ch = doc[m.start()]
            if ch == 0x22:  # a string: skipped whole
                continue
            depth += 1 if ch in (0x5B, 0x7B) else -1
            if depth == 0:
                return m.end()
        raise ValueError(f"unterminated value at byte {pos}")
    m = _SCALAR.match(doc, pos)
    if m is None:
        raise ValueError(f"expected a value at byte {pos}")
    return m.end()
