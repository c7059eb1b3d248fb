"""What every meerkat layout reader shares: the records it yields, the one safe read-only
connection, row helpers and the receipt parser (docs/meerkat.md).

Nothing here writes to the source file; the Store consumes the records
(engine/importer.py). A file is opened through a `file:` URI with
``mode=ro&immutable=1``, defensive mode, no extension loading, triggers and views
disabled, ``trusted_schema=OFF``, ``query_only=ON`` and an authorizer that allows only
SELECTs of the meerkat tables the readers name themselves. Triggers and views are
expected in current realms (meerkat's runtime and schedule stores declare them); they
are never executed: nothing here inserts, updates or deletes, views are never selected,
and the authorizer refuses a read that comes from inside a trigger or view.
"""

from __future__ import annotations

import os
import re
import stat
import urllib.parse
from dataclasses import dataclass
from typing import Any

import apsw
import orjson

from ..errors import ImportFormatError

LAYOUT_SESSIONS_07 = "sessions-0.7"
LAYOUT_HEADS_0728 = "heads-0.7.28"
LAYOUT_LEDGER_0810 = "ledger-0.8.10"
LAYOUT_LEDGER_V3 = "ledger-v3-0.8.11"
LAYOUT_LEDGER_V4 = "ledger-v4-0.8.21"

RUNTIME_PREFIX = "rt:session:"  # since 2026-04-30; seed era used the bare id (meerkat-runtime/src/identifiers.rs:38-49@c7b8518b4)

_SQLITE_MAGIC = b"SQLite format 3\x00"
PAGE = 256  # session ids fetched per keyset page

# Columns read per table; a table missing one is not the meerkat table.
COLUMNS: dict[str, frozenset[str]] = {
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
    # ledger v3/v4 (meerkat-store/src/sqlite_store.rs:173-195@c7b8518b4)
    "session_head_metadata_current": frozenset(("session_id", "metadata_key", "key_route", "exact_value_digest")),
    "session_head_metadata_cells": frozenset(
        ("session_id", "metadata_key", "key_route", "exact_value_digest", "metadata_json")
    ),
    # runtime store v2: hashes of the exact released 0.8.10 receipt bodies
    # (meerkat-runtime/src/store/sqlite.rs:1298-1369@c7b8518b4)
    "runtime_released_0810_boundary_receipts": frozenset(("runtime_id", "run_id", "sequence", "receipt_sha256")),
}
_SYSTEM_TABLES = frozenset(("sqlite_master", "sqlite_schema", "pragma_table_xinfo"))
_FUNCTIONS = frozenset(("count", "typeof", "length", "min", "max"))

BOUNDARIES = frozenset(("immediate", "run_start", "run_checkpoint"))
BARE_HEX = re.compile(r"[0-9a-f]{64}")
PREFIXED_HEX = re.compile(r"sha256:[0-9a-f]{64}")
VERSION_PROFILE = {2: "f2", 3: "f3"}  # envelope/head version -> digest profile

# Work bounds on hostile files: nothing is allocated in proportion to a count the file
# claims; these cap what a single session may make the reader hold or hash.
MAX_MESSAGES = 1 << 22            # rows of one transcript
MAX_METADATA_CELLS = 1 << 12      # current metadata cells of one ledger-v4 head (root: 256 hashes each)
MAX_RECEIPTS = 1 << 20            # receipts of one session


@dataclass(frozen=True)
class RealmReceipt:
    """One `runtime_boundary_receipts` row (meerkat-core/src/lifecycle/run_receipt.rs:56-71@c7b8518b4).
    `run_id`/`sequence`/`contributing_input_ids` are as the file holds them; the importer
    validates them as the Store API does."""

    runtime_id: str
    run_id: str
    sequence: int  # the receipt JSON's u64 (the column holds it as i64)
    boundary: str
    contributing_input_ids: tuple[str, ...]
    conversation_digest: str | None
    message_count: int
    profile: str  # "bare" | "f2" | "f3"
    receipt_json: bytes  # exact stored bytes


@dataclass(frozen=True)
class RealmHead:
    """A `session_heads` row; `profile` is "f2" for version 2, "f3" for 3."""

    revision: str
    message_count: int
    version: int
    strand: str
    profile: str
    cas_token: str = ""


@dataclass(frozen=True)
class RealmFinding:
    """Something of a readable session that did not verify, or could not be checked.

    subject: "receipt" | "head" | "head_token" | "metadata";
    status:  "mismatch"       - a digest or token recomputed from the file differs;
             "unrecomputable" - a receipt whose inputs a meerkat migration rewrote (reason says
                                what was checked instead);
             "unchecked"      - the file does not hold what the check needs (reason says what).
    """

    subject: str
    status: str
    reason: str
    run_id: str | None = None
    sequence: int | None = None
    expected: str | None = None
    actual: str | None = None
    # False when the check used data the Store does not keep (head_json, metadata cells,
    # marker hashes, runtime snapshots): the importer records it for verify to report.
    recheckable: bool = True

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "recheckable"}


@dataclass(frozen=True)
class RealmSession:
    """One readable session. `findings` lists what did not verify; the session's data is
    kept whatever they say (an auditor wants the evidence)."""

    session_id: str
    created_at_ms: int
    updated_at_ms: int
    messages: tuple[bytes, ...]  # exact stored bytes, transcript order
    metadata: dict
    envelope_version: int | None
    head: RealmHead | None
    receipts: tuple[RealmReceipt, ...]  # sorted by (run_id, sequence)
    findings: tuple[RealmFinding, ...] = ()
    # Rows of this session that cannot be read faithfully (a damaged receipt): reported,
    # not imported; the rest of the session is.
    problems: tuple["RealmProblem", ...] = ()

    @property
    def verified(self) -> bool:
        """True when nothing of this session failed a check (unchecked items aside)."""
        return not any(f.status in ("mismatch", "unrecomputable") for f in self.findings)


@dataclass(frozen=True)
class RealmProblem:
    """Something that could not be read faithfully; nothing of it is imported."""

    where: str  # table name
    key: str  # row key (session id, runtime id, ...)
    reason: str


class Damaged(Exception):
    """One reason a session cannot be read (becomes a RealmProblem)."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(reason)
        self.where = where
        self.reason = reason


# ---------------------------------------------------------------------------
# Opening
# ---------------------------------------------------------------------------


def check_header(path: str) -> None:
    """Refuse what is not a regular SQLite file before SQLite sees it. The file is opened
    non-blocking and checked with fstat, so a FIFO or device is refused at once (a plain
    open() of a FIFO would wait for a writer forever)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise ImportFormatError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "not a regular file"
            raise ImportFormatError(f"{path}: cannot read: {kind}, not a realm file")
        header = os.read(fd, 100)
    except OSError as exc:
        raise ImportFormatError(f"{path}: cannot read: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC):
        raise ImportFormatError(f"{path}: not a SQLite database file")
    if int.from_bytes(header[56:60], "big") not in (0, 1):
        # CAST(x AS BLOB) must yield UTF-8 bytes; meerkat files are UTF-8.
        raise ImportFormatError(f"{path}: SQLite text encoding is not UTF-8")
    for side in ("-wal", "-journal"):
        try:
            info = os.stat(path + side)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode) or info.st_size > 0:
            raise ImportFormatError(
                f"{path}: has a non-empty {side} file (a writer is active or crashed); "
                "open it once with meerkat or sqlite3 to checkpoint, then retry"
            )


def connect_readonly(path: str) -> apsw.Connection:
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
        # Current realms declare triggers and views (runtime and schedule stores); we only
        # read, so none could fire, and disabling them makes that a property of the
        # connection rather than of our statements.
        conn.config(apsw.SQLITE_DBCONFIG_ENABLE_TRIGGER, 0)
        conn.config(apsw.SQLITE_DBCONFIG_ENABLE_VIEW, 0)
        # No shared library may be loaded through this connection.
        conn.config(apsw.SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0)
        conn.enable_load_extension(False)
        conn.execute("PRAGMA trusted_schema=OFF")
        # Belt and braces on top of mode=ro: no statement may write.
        conn.execute("PRAGMA query_only=ON")
        # Last: only reads of the tables we name, through a few pure functions.
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
        if inner is None and db == "main" and (p1 in COLUMNS or p1 in _SYSTEM_TABLES):
            return apsw.SQLITE_OK
        return apsw.SQLITE_DENY
    if op == apsw.SQLITE_FUNCTION:
        return apsw.SQLITE_OK if p2 in _FUNCTIONS else apsw.SQLITE_DENY
    if op == apsw.SQLITE_PRAGMA:
        return apsw.SQLITE_OK if p1 == "table_xinfo" else apsw.SQLITE_DENY
    return apsw.SQLITE_DENY


# ---------------------------------------------------------------------------
# Row helpers
# ---------------------------------------------------------------------------


def require_int(where: str, name: str, value: object) -> None:
    if type(value) is not int:
        raise Damaged(where, f"{name} {value!r} is not an integer")


def json_column(where: str, name: str, kind: str, value: object) -> bytes:
    """Exact stored bytes of a JSON column (BLOB or TEXT: both occur)."""
    if kind not in ("blob", "text") or not isinstance(value, bytes):
        raise Damaged(where, f"{name} is {kind}, not JSON text")
    return value


def parse_json(where: str, name: str, raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Damaged(where, f"damaged JSON in {name} ({exc})") from None


def check_message(where: str, name: str, message: Any) -> None:
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise Damaged(where, f"{name} is not a message object with a role")


def parse_receipt(where, label, runtime_id, run_id, column_seq, doc, raw, version, ledger) -> RealmReceipt:
    """A receipt row as the file holds it. Shape errors make the session Damaged; ids and
    sequence ranges are the importer's to judge (it applies the Store API's rules)."""
    if not isinstance(doc, dict):
        raise Damaged(where, f"{label} is not a JSON object")
    seq = doc.get("sequence")
    count = doc.get("message_count")
    inputs = doc.get("contributing_input_ids")
    digest = doc.get("conversation_digest")
    if doc.get("run_id") != run_id or not isinstance(run_id, str):
        raise Damaged(where, f"{label} run_id disagrees with its row")
    if doc.get("boundary") not in BOUNDARIES:
        raise Damaged(where, f"{label} has unknown boundary {doc.get('boundary')!r}")
    if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
        raise Damaged(where, f"{label} contributing_input_ids is not a list of strings")
    if type(count) is not int or count < 0 or type(seq) is not int or not 0 <= seq < 2**64:
        raise Damaged(where, f"{label} message_count/sequence are not unsigned integers")
    # The column stores the u64 bit-reinterpreted as i64 (meerkat-runtime/src/store/sqlite.rs:7515-7517@c7b8518b4);
    # older code clamped.
    if column_seq not in (seq if seq < 2**63 else seq - 2**64, min(seq, 2**63 - 1)):
        raise Damaged(where, f"{label} sequence disagrees with receipt_json ({seq})")
    default = {3: "f3"}.get(version, "f2" if ledger else "bare")
    if digest is None:
        profile = default  # nothing to verify; the realm's era decides
    elif isinstance(digest, str) and BARE_HEX.fullmatch(digest):
        profile = "bare"
    elif isinstance(digest, str) and PREFIXED_HEX.fullmatch(digest) and version in VERSION_PROFILE:
        profile = VERSION_PROFILE[version]
    else:
        raise Damaged(where, f"{label} has an unrecognised conversation_digest {digest!r} "
                             f"(envelope version {version})")
    return RealmReceipt(
        runtime_id=runtime_id, run_id=run_id, sequence=seq, boundary=doc["boundary"],
        contributing_input_ids=tuple(inputs), conversation_digest=digest, message_count=count,
        profile=profile, receipt_json=raw,
    )
