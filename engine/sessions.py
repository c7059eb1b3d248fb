"""Sessions: append-only messages, the metadata document and its mob-binding facts,
and the event log every write appends to.

Messages are stored exactly as given (JSON bytes; a dict is first serialised
compactly with serde_json's rules, engine.digest.message_bytes) under the key
session_num * 2^32 + index, so a session is one contiguous rowid range.
Every append also advances the session's streaming digest state
(sha256_state) in the same transaction: digests cost O(appended messages).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from typing import Any, Iterable, Iterator

import orjson

from . import _args, digest
from .errors import InvalidInputError, SessionExistsError, SessionNotFoundError, StoreError

MAX_MESSAGES_PER_SESSION = 1 << 32  # the index part of ms_messages.key
# The largest message (its stored JSON bytes) any write takes, checked before any other work:
# below SQLite's length limit (10^9 bytes: apsw.TooBigError inside the transaction) and the
# C canonicalizer's (2^31 - 1). docs/dict-messages.md.
MAX_MESSAGE_BYTES = 256 << 20
# Calls with more messages than this keep each encoded dict in an exact-size copy: orjson's
# result holds a 4 KiB buffer, so 10^6 small dicts would otherwise hold 4 GB at once.
COMPACT_ABOVE = 4096
MAX_ID_LENGTH = 1024
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
MAX_METADATA_DEPTH = 127  # serde_json fails on the 128th nested level, as for messages

# The durable event log's kinds. Every event's detail is a small JSON object; an event that
# adds messages says how many in detail["appended"] (messages_appended, and receipt_committed:
# apply_runtime_turn logs ONE event for its messages and its receipt, not two rows per turn).
EVENT_KINDS = (
    "session_created",
    "messages_appended",
    "metadata_changed",
    "session_deleted",
    "receipt_committed",
    "checkpoint_written",
    "messages_truncated",  # engine/rewrites.py: old_count, message_count, removed, rewrite, superseded_receipts
    "history_purged",      # engine/rewrites.py: rewrites, messages, bytes, receipts, vacuum
    "events_pruned",       # engine/schema.py's version-5 step only: through_seq, the old counter kept
)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def new_session_id() -> str:
    """A UUIDv7 (RFC 9562) as text: 48-bit Unix ms, version 7, 74 random bits."""
    value = (now_ms() & ((1 << 48) - 1)) << 80
    value |= int.from_bytes(os.urandom(10), "big") & ((1 << 80) - 1)
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # variant 10
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def message_key(session_num: int, index: int) -> int:
    return (session_num << 32) | index


@dataclasses.dataclass(frozen=True)
class Session:
    """One session as stored. `digest` is the transcript digest in `digest_profile`; `decode` is
    "strict" (appends refuse keys meerkat's typed decode would drop) or "lenient" (docs/messages.md)."""

    id: str
    metadata: dict
    message_count: int
    created_at_ms: int  # Unix time in milliseconds
    updated_at_ms: int  # Unix time in milliseconds
    digest: str
    digest_profile: str = "f3"
    decode: str = "strict"

    @property
    def created_at(self) -> int:
        """Deprecated spelling of created_at_ms (milliseconds)."""
        return self.created_at_ms

    @property
    def updated_at(self) -> int:
        """Deprecated spelling of updated_at_ms (milliseconds)."""
        return self.updated_at_ms


@dataclasses.dataclass(frozen=True)
class Event:
    """One entry of the durable event log. `seq` is the cursor for Store.events(after=...)."""

    seq: int
    at_ms: int
    kind: str
    session_id: str
    detail: dict
    # Which Store connection wrote it ("<pid>:<random hex>", one per engine.open); None for
    # events written before schema version 4.
    writer: str | None = None


# ------------------------------------------------------------------------------------------
# validation


def check_text(value: Any, what: str) -> str:
    """A str that SQLite can store: valid Unicode (no lone surrogate)."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError(f"{what} contains a lone surrogate: {value!r}") from None
    return value


def check_id(value: Any, what: str = "session_id") -> str:
    """Ids are non-empty text of at most MAX_ID_LENGTH characters, valid Unicode, without
    control characters (a NUL or newline in an id is always a bug upstream)."""
    check_text(value, what)
    if not value:
        raise InvalidInputError(f"{what} must not be empty")
    if len(value) > MAX_ID_LENGTH:
        raise InvalidInputError(f"{what} is longer than {MAX_ID_LENGTH} characters")
    if _CONTROL.search(value):
        raise InvalidInputError(f"{what} contains a control character: {value!r}")
    return value


def encode_metadata(metadata: Any) -> tuple[bytes, "BindingFacts"]:
    """Validate a metadata document; return its compact JSON and its binding facts."""
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise InvalidInputError(f"metadata must be a JSON object (dict), not {type(metadata).__name__}")
    _check_depth(metadata, MAX_METADATA_DEPTH)
    body = digest.dumps_value(metadata)
    return body, BindingFacts.from_metadata(metadata)


def _check_depth(value: Any, limit: int) -> None:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, (list, tuple)):
            children = node
        else:
            continue
        if depth > limit:
            raise InvalidInputError(f"metadata nests deeper than {limit} levels")
        stack.extend((child, depth + 1) for child in children)


def _opt_str(doc: dict, key: str, where: str) -> str | None:
    value = doc.get(key)
    if value is None or isinstance(value, str):
        return value
    raise InvalidInputError(f"{where}.{key} must be a string or null, not {type(value).__name__}")


@dataclasses.dataclass(frozen=True)
class BindingFacts:
    """The membership-relevant fields of metadata.session_metadata, one ms_bindings row.

    comms_name is split here (Python's str.split == Rust's split('/')); the membership rule
    itself is evaluated by SQL over these columns (engine/membership.py)."""

    comms_name: str | None = None
    comms_parts: int | None = None
    comms_mob: str | None = None
    comms_profile: str | None = None
    comms_member: str | None = None
    realm_id: str | None = None
    has_peer_meta: int = 0
    label_mob_id: str | None = None
    label_role: str | None = None
    label_meerkat_id: str | None = None
    binding_mob_id: str | None = None
    binding_role: str | None = None
    binding_member: str | None = None

    @classmethod
    def from_metadata(cls, metadata: dict) -> "BindingFacts":
        sm = metadata.get("session_metadata")
        if sm is None:
            return cls()
        where = "metadata.session_metadata"
        if not isinstance(sm, dict):
            raise InvalidInputError(f"{where} must be an object, not {type(sm).__name__}")
        comms_name = _opt_str(sm, "comms_name", where)
        realm_id = _opt_str(sm, "realm_id", where)
        facts: dict[str, Any] = {"comms_name": comms_name, "realm_id": realm_id}
        if comms_name is not None:
            parts = comms_name.split("/")
            facts.update(comms_parts=len(parts), comms_mob=parts[0])
            if len(parts) == 3:
                facts.update(comms_profile=parts[1], comms_member=parts[2])
        peer_meta = sm.get("peer_meta")
        if peer_meta is not None:
            if not isinstance(peer_meta, dict):
                raise InvalidInputError(f"{where}.peer_meta must be an object, not {type(peer_meta).__name__}")
            _opt_str(peer_meta, "description", f"{where}.peer_meta")
            labels = peer_meta.get("labels")
            facts["has_peer_meta"] = 1
            if labels is not None:
                if not isinstance(labels, dict):
                    raise InvalidInputError(f"{where}.peer_meta.labels must be an object of strings")
                for key, value in labels.items():
                    if not isinstance(value, str):
                        raise InvalidInputError(
                            f"{where}.peer_meta.labels[{key!r}] must be a string, not {type(value).__name__}"
                        )
                facts.update(
                    label_mob_id=labels.get("mob_id"),
                    label_role=labels.get("role"),
                    label_meerkat_id=labels.get("meerkat_id"),
                )
        binding = sm.get("mob_member_binding")
        if binding is not None:
            bwhere = f"{where}.mob_member_binding"
            if not isinstance(binding, dict):
                raise InvalidInputError(f"{bwhere} must be an object, not {type(binding).__name__}")
            for key in ("mob_id", "role", "member"):
                if not isinstance(binding.get(key), str):
                    raise InvalidInputError(f"{bwhere}.{key} must be a string")
            facts.update(
                binding_mob_id=binding["mob_id"], binding_role=binding["role"], binding_member=binding["member"]
            )
        return cls(**facts)

    def row(self, session_id: str) -> tuple:
        return (session_id, *dataclasses.astuple(self))


_BINDING_COLUMNS = ("session_id",) + tuple(f.name for f in dataclasses.fields(BindingFacts))
_UPSERT_BINDING = (
    f"INSERT OR REPLACE INTO ms_bindings ({', '.join(_BINDING_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(_BINDING_COLUMNS))})"
)  # sql-safe: column names from the dataclass, values bound


_SESSIONS_PAGE = (
    "SELECT s.id, s.metadata_json, s.message_count, s.created_at_ms, s.updated_at_ms, s.sha256_state, "
    "s.digest_profile, s.num FROM ms_sessions s "
    "WHERE (s.created_at_ms, s.num) < (?, ?) ORDER BY s.created_at_ms DESC, s.num DESC LIMIT ?"
)
_SESSIONS_OF_MOB_PAGE = (
    "SELECT s.id, s.metadata_json, s.message_count, s.created_at_ms, s.updated_at_ms, s.sha256_state, "
    "s.digest_profile, s.num FROM ms_sessions s JOIN ms_bindings b ON b.session_id = s.id "
    "WHERE (b.comms_mob = ? OR b.binding_mob_id = ?) AND (s.created_at_ms, s.num) < (?, ?) "
    "ORDER BY s.created_at_ms DESC, s.num DESC LIMIT ?"
)


def normalise_messages(messages: Any) -> list[bytes]:
    """Turn a list of dict / JSON bytes messages into stored bytes (validated later,
    by the digest state, in the writing transaction)."""
    if isinstance(messages, (bytes, bytearray, str, dict)):
        raise InvalidInputError("messages must be a list of messages, not a single message")
    try:
        items = list(messages)
    except TypeError:
        raise InvalidInputError(f"messages must be a list, not {type(messages).__name__}") from None
    limit = MAX_MESSAGE_BYTES
    compact = len(items) > COMPACT_ABOVE
    out = []
    append = out.append
    encode = digest.message_bytes
    for index, message in enumerate(items):
        if isinstance(message, str):
            # Ambiguous (JSON text, or a user's words?) and not what the API takes: refuse it.
            raise InvalidInputError(f"message {index}: a message must be a dict or JSON bytes, not str "
                                    "(pass JSON text as bytes: text.encode())")
        try:
            body = encode(message)
        except InvalidInputError as exc:
            raise InvalidInputError(f"message {index}: {exc}") from None
        if len(body) > limit:
            raise InvalidInputError(f"message {index}: {len(body):,} bytes is over the limit of {limit:,} bytes")
        append(bytes(memoryview(body)) if compact and body is not message else body)
    return out


def _decode_rows(rows) -> list[dict]:
    """decode_messages over (body,) rows straight from a cursor: no list of bodies."""
    loads = orjson.loads
    out = []
    append = out.append
    for (body,) in rows:
        try:
            append(loads(body))
        except orjson.JSONDecodeError:
            append(json.loads(body))  # integers beyond 64 bits: orjson refuses, our validator accepts
    return out


def _rewrite_mark(con, num: int):
    """Changes whenever the session's transcript is rewritten (engine/rewrites.py)."""
    return con.execute("SELECT max(rewrite) FROM ms_rewrites WHERE session_num = ?", (num,)).fetchone()[0]


def decode_messages(bodies: list[bytes]) -> list[dict]:
    """Parse stored message bytes with orjson, one call per message (measured faster than
    one call over the joined array: 18.7 vs 22.5 ms for 4,000 1 KiB messages); the stdlib
    parser for what orjson refuses but our validator accepted (integers beyond 64 bits)."""
    loads = orjson.loads
    try:
        return [loads(body) for body in bodies]
    except orjson.JSONDecodeError:
        return [json.loads(body) for body in bodies]


# ------------------------------------------------------------------------------------------


class SessionsMixin:
    """Session, message, metadata and event-log methods of Store."""

    # -- internal helpers used by the other mixins -----------------------------------------------
    def _session_row(self, con, session_id: str):
        """(num, message_count, sha256_state, digest_profile) or SessionNotFoundError."""
        row = con.execute(
            "SELECT num, message_count, sha256_state, digest_profile FROM ms_sessions WHERE id = ?",
            (session_id,),
        ).fetchone()
        if row is None:
            raise SessionNotFoundError(f"no session {session_id!r}")
        return row

    def _log_event(self, con, kind: str, session_id: str, detail: dict, at_ms: int | None = None) -> None:
        """Append to the event log inside an open transaction (con from transaction())."""
        con.execute(
            "INSERT INTO ms_events (at_ms, kind, session_id, detail, writer) VALUES (?, ?, ?, ?, ?)",
            (at_ms or now_ms(), kind, session_id, orjson.dumps(detail), self._writer_id),
        )

    def _head_of(self, con, session_id: str) -> tuple[int, int, "digest.TranscriptState", str]:
        """(num, message_count, digest state, profile) of a session inside an open transaction:
        from the write path's memory (engine/heads.py) when it holds the session, else its row.
        The state may be the remembered object itself: a write that fails after absorbing into
        it must empty the memory, as every failure path does (engine/heads.py)."""
        head = self._heads.sessions.get(session_id)
        if head is not None:
            return head
        num, count, state_bytes, profile = self._session_row(con, session_id)
        return num, count, digest.TranscriptState.from_bytes(state_bytes), profile

    def _append_locked(self, con, session_id: str, bodies: list[bytes], at_ms: int) -> tuple[int, int, "digest.TranscriptState"]:
        """Append inside an open transaction; returns (session_num, new_count, new_state).
        The digest state validates every message before anything is inserted."""
        heads = self._heads
        num, count, state, profile = self._head_of(con, session_id)
        if count + len(bodies) > MAX_MESSAGES_PER_SESSION:
            raise InvalidInputError(f"session {session_id!r} would exceed {MAX_MESSAGES_PER_SESSION} messages")
        state.absorb(bodies)  # all or nothing: on a bad message the state is unchanged
        if bodies:
            base = num << 32 | count
            con.executemany(
                "INSERT INTO ms_messages (key, body) VALUES (?, ?)",
                zip(range(base, base + len(bodies)), bodies),
            )
        new_count = count + len(bodies)
        con.execute(
            "UPDATE ms_sessions SET message_count = ?, message_bytes = message_bytes + ?, "
            "sha256_state = ?, updated_at_ms = ? WHERE num = ?",
            (new_count, sum(map(len, bodies)), state.to_bytes(), at_ms, num),
        )
        heads.put(session_id, (num, new_count, state, profile))
        return num, new_count, state

    # -- public API ----------------------------------------------------------------------------
    def create_session(
        self,
        metadata: dict | None = None,
        *,
        session_id: str | None = None,
        messages: Iterable[dict | bytes] = (),
        digest_profile: str = "f3",
        decode: str = "strict",
    ) -> str:
        """Create a session (a new UUIDv7 id unless given) with its metadata and optional
        first messages; returns its id. Atomic: committed on return, nothing written on error.

        `decode="strict"` (the default) makes every append refuse a message holding a key meerkat's
        typed decode would drop -- an unknown or retired field, a duplicated key -- with an error
        naming it, so nothing is stored outside the digest; `decode="lenient"` stores such messages
        and digests them as meerkat does (dropping the keys). docs/messages.md has the rules.

        Runs: INSERT INTO ms_sessions ...; INSERT INTO ms_bindings ...; INSERT INTO ms_messages ...
        """
        session_id = new_session_id() if session_id is None else check_id(session_id)
        if digest_profile not in digest.PROFILES:
            raise InvalidInputError(f"digest_profile must be one of {digest.PROFILES}, not {digest_profile!r}")
        decode = _args.choice(decode, "decode", ("strict", "lenient"))
        body, facts = encode_metadata(metadata)
        bodies = normalise_messages(messages)
        at = now_ms()

        def create(con):
            if con.execute("SELECT 1 FROM ms_sessions WHERE id = ?", (session_id,)).fetchone():
                raise SessionExistsError(f"session {session_id!r} already exists")
            con.execute(
                "INSERT INTO ms_sessions (id, created_at_ms, updated_at_ms, metadata_json, digest_profile, sha256_state) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (session_id, at, at, body, digest_profile,
                 digest.TranscriptState.new(digest_profile, strict=decode == "strict").to_bytes()),
            )
            con.execute(_UPSERT_BINDING, facts.row(session_id))
            self._log_event(con, "session_created", session_id, {"message_count": len(bodies)}, at)
            if bodies:
                self._append_locked(con, session_id, bodies, at)

        self._write(create, keeps_heads=True)
        return session_id

    def append_messages(self, session_id: str, messages: Iterable[dict | bytes]) -> int:
        """Append messages to the end of the transcript; returns the new message count.
        Atomic: every message is validated first; on any error nothing is written.

        Runs: INSERT INTO ms_messages (key, body) VALUES (num*2^32+i, ?) per message;
              UPDATE ms_sessions SET message_count, sha256_state ... WHERE num = ?
        """
        check_id(session_id)
        bodies = normalise_messages(messages)
        at = now_ms()

        return self._write(lambda con: self._append_logged(con, session_id, bodies, at), keeps_heads=True)

    def _append_logged(self, con, session_id: str, bodies: list[bytes], at_ms: int) -> int:
        """append_messages inside an open transaction (bodies normalised): the messages and
        their messages_appended event. Returns the new message count."""
        _num, new_count, _state = self._append_locked(con, session_id, bodies, at_ms)
        if bodies:
            self._log_event(con, "messages_appended", session_id, {"appended": len(bodies), "message_count": new_count},
                           at_ms)
        return new_count

    def raw_messages(self, session_id: str, start: int = 0, stop: int | None = None) -> list[bytes]:
        """Stored JSON bytes of messages [start, stop) (Python slice rules, negatives allowed).

        Runs: SELECT body FROM ms_messages WHERE key >= ? AND key < ? (a rowid range)."""
        with self.reading() as con:
            return [row[0] for row in self._message_rows(con, session_id, start, stop)]

    def messages(self, session_id: str, start: int = 0, stop: int | None = None) -> list[dict]:
        """Messages [start, stop) as dicts (Python slice rules). SessionNotFoundError if unknown.
        Each row is decoded as it is read, so at most one message's bytes are held besides
        the result (peak ~ the dicts, not dicts + every body: benches/bench_memory.py)."""
        with self.reading() as con:
            return _decode_rows(self._message_rows(con, session_id, start, stop))

    def _message_rows(self, con, session_id: str, start: Any, stop: Any) -> Iterable[tuple[bytes]]:
        """The (body,) rows of messages [start, stop), Python slice rules, inside reading()."""
        check_id(session_id)
        start = _args.slice_bound(start, "start")
        stop = _args.slice_bound(stop, "stop")
        num, count, _state, _profile = self._session_row(con, session_id)
        lo, hi, _ = slice(start, stop).indices(count)
        if hi <= lo:
            return ()
        return con.execute("SELECT body FROM ms_messages WHERE key >= ? AND key < ? ORDER BY key",
                           (message_key(num, lo), message_key(num, hi)))

    def iter_messages(self, session_id: str, start: int = 0, stop: int | None = None, *,
                      chunk: int = 1024) -> Iterator[dict]:
        """Messages [start, stop) as dicts, read `chunk` at a time (each chunk one snapshot;
        the store is free between chunks), for transcripts too long to hold. The range is
        fixed when iteration starts; appends meanwhile do not extend it. If the session is
        deleted or rewritten (truncated) while iterating, StoreError is raised instead of
        a mix of two transcripts."""
        check_id(session_id)
        start = _args.slice_bound(start, "start")
        stop = _args.slice_bound(stop, "stop")
        chunk = _args.integer(chunk, "chunk", minimum=1, maximum=1 << 20)
        with self.reading() as con:
            num, count, _state, _profile = self._session_row(con, session_id)
            version = _rewrite_mark(con, num)
        lo, hi, _ = slice(start, stop).indices(count)
        while lo < hi:
            upto = min(hi, lo + chunk)
            with self.reading() as con:
                row = con.execute("SELECT num, message_count FROM ms_sessions WHERE id = ?", (session_id,)).fetchone()
                if row is None or row[0] != num or row[1] < hi or _rewrite_mark(con, num) != version:
                    raise StoreError(f"session {session_id!r} was deleted or rewritten while iterating its messages")
                items = _decode_rows(con.execute(
                    "SELECT body FROM ms_messages WHERE key >= ? AND key < ? ORDER BY key",
                    (message_key(num, lo), message_key(num, upto))))
            yield from items
            lo = upto

    def session(self, session_id: str) -> Session | None:
        """One session, or None when it does not exist."""
        check_id(session_id)
        with self.reading() as con:
            row = con.execute(
                "SELECT id, metadata_json, message_count, created_at_ms, updated_at_ms, sha256_state, digest_profile "
                "FROM ms_sessions WHERE id = ?",
                (session_id,),
            ).fetchone()
        return None if row is None else _session_from_row(row)

    def sessions(self, *, mob_id: str | None = None, limit: int | None = None, page_size: int = 256) -> Iterator[Session]:
        """Sessions, newest first, read in pages of `page_size` (keyset paging: each page
        is one indexed range read, and sessions created meanwhile never shift a page).
        With `mob_id`, only the sessions whose metadata claims that mob (comms_name's first
        part, or mob_member_binding.mob_id) — valid members and broken claims alike;
        reconcile_mob tells which is which.

        Runs: SELECT ... FROM ms_sessions [JOIN ms_bindings] WHERE (created_at_ms, num) < (?, ?)
              ORDER BY created_at_ms DESC, num DESC LIMIT ?"""
        limit = _args.optional_integer(limit, "limit", minimum=0)
        page_size = _args.integer(page_size, "page_size", minimum=1, maximum=1 << 20)
        if mob_id is not None:
            check_text(mob_id, "mob_id")
        return self._session_pages(mob_id, limit, page_size)

    def _session_pages(self, mob_id: str | None, limit: int | None, page_size: int) -> Iterator[Session]:
        if mob_id is None:
            sql, extra = _SESSIONS_PAGE, ()
        else:
            sql, extra = _SESSIONS_OF_MOB_PAGE, (mob_id, mob_id)
        remaining = limit
        cursor = (1 << 62, 1 << 62)
        while remaining is None or remaining > 0:
            take = page_size if remaining is None else min(page_size, remaining)
            with self.reading() as con:
                rows = con.execute(sql, (*extra, *cursor, take)).fetchall()
            for row in rows:
                yield _session_from_row(row[:7])
            if len(rows) < take:
                return
            cursor = (rows[-1][3], rows[-1][7])
            if remaining is not None:
                remaining -= len(rows)

    def message_count(self, session_id: str) -> int:
        """How many messages the session has (SessionNotFoundError if unknown).

        Runs: SELECT message_count FROM ms_sessions WHERE id = ?"""
        check_id(session_id)
        with self._statement() as con:
            row = con.execute("SELECT message_count FROM ms_sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise SessionNotFoundError(f"no session {session_id!r}")
        return row[0]

    def session_count(self) -> int:
        with self.reading() as con:
            return con.execute("SELECT count(*) FROM ms_sessions").fetchone()[0]

    def stats(self) -> dict:
        """Counts and sizes from one snapshot (cheap: no message bodies are read)."""
        with self.reading() as con:
            sessions, messages, message_bytes = con.execute(
                "SELECT count(*), coalesce(sum(message_count), 0), coalesce(sum(message_bytes), 0) FROM ms_sessions"
            ).fetchone()
            (receipts,) = con.execute("SELECT count(*) FROM ms_receipts").fetchone()
            (events,) = con.execute("SELECT count(*) FROM ms_events").fetchone()
            page_size = con.execute("PRAGMA page_size").fetchone()[0]
            page_count = con.execute("PRAGMA page_count").fetchone()[0]
        return {
            "sessions": sessions,
            "messages": messages,
            "message_bytes": message_bytes,
            "receipts": receipts,
            "events": events,
            "database_bytes": page_size * page_count,
            "schema_version": self.schema_version,
        }

    def set_metadata(self, session_id: str, metadata: dict) -> None:
        """Replace the metadata document; its binding facts change in the same transaction.

        Runs: UPDATE ms_sessions SET metadata_json = ?; INSERT OR REPLACE INTO ms_bindings ..."""
        check_id(session_id)
        body, facts = encode_metadata(metadata)
        at = now_ms()

        def replace(con):
            self._session_row(con, session_id)
            con.execute(
                "UPDATE ms_sessions SET metadata_json = ?, updated_at_ms = ? WHERE id = ?", (body, at, session_id)
            )
            con.execute(_UPSERT_BINDING, facts.row(session_id))
            self._log_event(con, "metadata_changed", session_id, {}, at)

        self._write(replace, keeps_heads=True)

    def delete_session(self, session_id: str) -> bool:
        """Delete a session with its messages, receipts and binding facts. True if it existed.

        Runs: DELETE FROM ms_messages WHERE key >= num*2^32 AND key < (num+1)*2^32; ..."""
        check_id(session_id)

        def delete(con) -> bool:
            row = con.execute("SELECT num, message_count FROM ms_sessions WHERE id = ?", (session_id,)).fetchone()
            if row is None:
                return False
            num, count = row
            con.execute(
                "DELETE FROM ms_messages WHERE key >= ? AND key < ?", (message_key(num, 0), message_key(num + 1, 0))
            )
            con.execute("DELETE FROM ms_bindings WHERE session_id = ?", (session_id,))
            con.execute("DELETE FROM ms_sessions WHERE num = ?", (num,))  # receipts cascade
            self._log_event(con, "session_deleted", session_id, {"message_count": count})
            self._heads.forget(session_id, num)
            return True

        return self._write(delete, keeps_heads=True)

    def events(self, after: int = 0, *, session_id: str | None = None, limit: int | None = None) -> list[Event]:
        """Events with seq > after, oldest first (durable: written in the same transaction as
        the change they describe, so any process reading the file sees them in commit order).
        With session_id, the range after the cursor is filtered (no per-session index: it
        would cost a page in every commit); tail with a recent cursor.

        Runs: SELECT ... FROM ms_events WHERE seq > ? [AND session_id = ?] ORDER BY seq LIMIT ?"""
        after = _args.integer(after, "after", minimum=0)
        take = -1 if limit is None else _args.integer(limit, "limit", minimum=0)
        with self.reading() as con:
            if session_id is None:
                rows = con.execute(
                    "SELECT seq, at_ms, kind, session_id, detail, writer FROM ms_events WHERE seq > ? ORDER BY seq LIMIT ?",
                    (after, take),
                ).fetchall()
            else:
                check_id(session_id)
                rows = con.execute(
                    "SELECT seq, at_ms, kind, session_id, detail, writer FROM ms_events "
                    "WHERE seq > ? AND session_id = ? ORDER BY seq LIMIT ?",
                    (after, session_id, take),
                ).fetchall()
                # A session that never existed is an error, as everywhere else; a deleted one
                # still has its history (ending with session_deleted) to read.
                if not rows and con.execute("SELECT 1 FROM ms_sessions WHERE id = ?", (session_id,)).fetchone() is None \
                        and con.execute("SELECT 1 FROM ms_events WHERE session_id = ? LIMIT 1", (session_id,)).fetchone() is None:
                    raise SessionNotFoundError(f"no session {session_id!r} (and no event ever named it)")
        return [Event(seq, at, kind, sid, orjson.loads(detail) if detail else {}, writer)
                for seq, at, kind, sid, detail, writer in rows]


def _session_from_row(row) -> Session:
    sid, metadata_json, count, created, updated, state_bytes, profile = row
    state = digest.TranscriptState.from_bytes(state_bytes)
    return Session(
        id=sid,
        metadata=orjson.loads(metadata_json) if metadata_json else {},
        message_count=count,
        created_at_ms=created,
        updated_at_ms=updated,
        digest=state.digest(),
        digest_profile=profile,
        decode="strict" if state.strict else "lenient",
    )
