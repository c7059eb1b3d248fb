"""A generator of meerkat realm files in the layouts meerkat >= 0.8.11 writes (ledger v3
and v4, runtime store v2/v3), for tests: meerkat ships no such realm.

Our own code; the facts it writes are meerkat's, cited per item at v0.8.26 (c7b8518b4):

* DDL: tests/fixtures/meerkat/ddl/*.sql, extracted from meerkat's migration constants by
  ddl/extract_ddl.py (session store v1-v3 DDL, v4 adds none; runtime store v1-v3;
  schedule store v1-v3 with its triggers). The runtime store's 26 and the schedule store's
  7 triggers are there, as in a real file.
* Message rows: serde output of the current `Message` (field declaration order,
  meerkat-core/src/types.rs:1538-2700@c7b8518b4). Each message is built twice by the same
  constructor, as stored and as its f3 canonical form (meerkat-core/src/session.rs:588-645:
  created_at set to the epoch, user/block_assistant identity cleared; HEAD rows are
  already in typed order with opaque slots key-sorted, types.rs:177-193), so the expected
  digests come from meerkat's rules, not from engine.digest.
* Heads: `SessionHead` serde (meerkat-core/src/session_store.rs:2010-2085), row-lineage
  prefix and anchor (session_store.rs:1536-1700), the empty realtime component prefix
  (meerkat-core/src/session_component_sidecar.rs:168-236, 779-818), the metadata identity
  (meerkat-core/src/session/head_metadata.rs), `head-v5-sha256:` tokens (session_store.rs:
  3021-3087) or `head-sha256:` for inline ledger-v3 heads; the head row as
  write_head_row_only_in_txn writes it (meerkat-store/src/sqlite_store.rs:3432-3500).
* Metadata cells: canonical JSON value bytes (key-sorted, compact), key routes and exact
  value digests, `current` rows, one state and the physical-head ref
  (sqlite_store.rs:173-262, 2560-2660).
* Receipts: RunBoundaryReceipt JSON (meerkat-core/src/lifecycle/run_receipt.rs:56-71),
  sequence = boundary counter + 1 since v0.8.12, stored as i64.
* migrate_0810(): what meerkat >= 0.8.21 does to a released 0.8.10 realm: session-store
  migration 3 rewrites the head strand through the current Message type (the system row's
  `mutation_kind` dropped, types.rs:1597-1618) into a version-3 head with an f3 revision
  (sqlite_store.rs:890-1053), migration 4 crosses it to head-canonical v2 authority
  (sqlite_store.rs:283-345); runtime-store migration 2 records the SHA-256 of every exact
  released receipt body (meerkat-runtime/src/store/sqlite.rs:1298-1369) and freezes
  `runtime_session_snapshots`; the receipts themselves are kept.

Simplifications, none of which the importer reads: no `session_head_metadata_state_deltas`
or head lineage rows, no runtime authority rows, no schedules.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import shutil
import uuid
from dataclasses import dataclass, field

import apsw

DDL = pathlib.Path(__file__).parent / "fixtures" / "meerkat" / "ddl"
EPOCH = "1970-01-01T00:00:00Z"


def _j(value) -> bytes:
    """serde_json compact output of a float-free value in the given key order."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _canonical_value(value) -> bytes:
    """meerkat's canonical JSON of a float-free Value: keys sorted by code point (=UTF-8 bytes)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode()


def sha(*parts: bytes) -> bytes:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


# ---------------------------------------------------------------------------
# Messages: (stored bytes, f3 canonical bytes) from one constructor
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Msg:
    kind: str
    stored: bytes
    f3: bytes


def _msg(kind: str, fields: list[tuple[str, object]], created_at: str, *, erase_identity: bool) -> Msg:
    stored = dict(fields + [("created_at", created_at)])
    canon = dict([(k, v) for k, v in fields if not (erase_identity and k == "identity")] + [("created_at", EPOCH)])
    return Msg(kind, _j(stored), _j(canon))


def ts(n: int) -> str:
    return f"2026-09-01T10:00:{n % 60:02d}.{n:06d}Z"


def every_kind(run_id: str) -> list[Msg]:
    """One message of every kind meerkat writes, in HEAD's declaration order."""
    ident = {"run_id": run_id}
    return [
        _msg("system", [("role", "system"), ("content", "You are a careful agent.")], ts(0), erase_identity=False),
        _msg("user text", [("role", "user"), ("content", "fix the bug in parser.rs"), ("identity", ident)], ts(1),
             erase_identity=True),
        _msg("user blocks", [("role", "user"), ("content", [
            {"type": "text", "text": "here is the screenshot"},
            {"type": "image", "media_type": "image/png", "source": "blob",
             "blob_id": "sha256:" + "1f" * 32},
            {"type": "structured", "data": {"a": [1, 2], "b": {"c": None}}},
        ]), ("render_metadata", {"class": "user_prompt", "salience": "normal"})], ts(2), erase_identity=True),
        _msg("assistant reasoning+tool_use", [("role", "block_assistant"), ("blocks", [
            {"block_type": "reasoning", "data": {"text": "look at the parser"}},
            {"block_type": "text", "data": {"text": "Reading the file."}},
            {"block_type": "tool_use", "data": {"id": "toolu_1", "name": "read_file",
                                                "args": {"limit": 200, "path": "src/parser.rs"}}},
        ]), ("stop_reason", "tool_use"), ("identity", ident)], ts(3), erase_identity=True),
        _msg("tool_results", [("role", "tool_results"), ("results", [
            {"tool_use_id": "toolu_1", "content": "fn parse() {}", "is_error": False},
        ])], ts(4), erase_identity=False),
        _msg("notice generic", [("role", "system_notice"), ("kind", "generic"), ("body", "context compacted")], ts(5),
             erase_identity=False),
        _msg("notice tool_config", [("role", "system_notice"), ("kind", "tool_scope"), ("blocks", [
            {"type": "tool_config", "payload": {
                "operation": "add", "target": "mcp:github",
                "status_info": {"kind": "boundary_applied", "base_changed": True, "visible_changed": False,
                                "revision": 3},
                "persisted": True, "applied_at_turn": 2, "domain": "tool_scope"}},
        ])], ts(6), erase_identity=False),
        _msg("notice comms", [("role", "system_notice"), ("kind", "comms"), ("blocks", [
            {"type": "comms", "kind": "message", "direction": "incoming",
             "peer": {"id": "0190e5a2-0000-7000-8000-000000000001", "display_name": "reviewer"},
             "summary": "LGTM", "payload": {"n": 1, "text": "LGTM"}},  # a Value: key-sorted
        ])], ts(7), erase_identity=False),
        _msg("assistant end_turn", [("role", "block_assistant"), ("blocks", [
            {"block_type": "text", "data": {"text": "Fixed: the parser now handles empty input."}},
        ]), ("stop_reason", "end_turn"), ("identity", ident)], ts(8), erase_identity=True),
    ]


def simple_kinds(run_id: str, n: int) -> list[Msg]:
    """Plain user/assistant text turns."""
    out = [_msg("system", [("role", "system"), ("content", "You are terse.")], ts(0), erase_identity=False)]
    for i in range(n):
        out.append(_msg("user text", [("role", "user"), ("content", f"question {i}")], ts(2 * i + 1),
                        erase_identity=True))
        out.append(_msg("assistant end_turn", [("role", "block_assistant"), ("blocks", [
            {"block_type": "text", "data": {"text": f"answer {i}"}}]), ("stop_reason", "end_turn"),
            ("identity", {"run_id": run_id})], ts(2 * i + 2), erase_identity=True))
    return out


def f3_digest(messages: list[Msg]) -> str:
    return "sha256:" + hashlib.sha256(b"[" + b",".join(m.f3 for m in messages) + b"]").hexdigest()


# ---------------------------------------------------------------------------
# Head-side authorities
# ---------------------------------------------------------------------------

_ROW_EMPTY = b"meerkat.session-message-row-lineage.v1.empty\0"
_ROW_APPEND = b"meerkat.session-message-row-lineage.v1.append\0"


def row_prefix(rows: list[bytes]) -> dict:
    state = sha(_ROW_EMPTY)
    for i, row in enumerate(rows):
        state = sha(_ROW_APPEND, state, i.to_bytes(8, "big"), len(row).to_bytes(8, "big"), row)
    return {"version": 1, "row_count": len(rows), "digest": "row-lineage-v1-sha256:" + state.hex()}


def realtime_empty(session_id: str) -> dict:
    h = hashlib.sha256(b"meerkat.session-component-prefix.empty.v1\0")
    for part in (session_id.encode(), b"realtime"):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return {"version": 1, "session_id": session_id, "component": "realtime", "event_count": 0,
            "root_digest": "sha256:" + h.hexdigest()}


REWRITE_PREFIX_EMPTY = {"occurrence_count": 0,
                        "digest": "sha256:" + hashlib.sha256(b"meerkat.transcript-rewrite-prefix.chain.v1\0").hexdigest()}

_ROUTE = b"rkat:session-head-metadata:key-route:v1\0"
_VALUE = b"rkat:session-head-metadata:value-exact:v1\0"
_LEAF = b"rkat:session-head-metadata:leaf-exact:v1\0"
_NODE = b"rkat:session-head-metadata:node-exact:v1\0"
_EMPTY_LEAF = b"rkat:session-head-metadata:empty-leaf-exact:v1\0"


@dataclass
class Cell:
    key: str
    canonical: bytes
    route: bytes = b""
    digest: str = ""

    def __post_init__(self):
        self.route = sha(_ROUTE, self.key.encode())
        self.digest = "head-metadata-value-sha256:" + sha(_VALUE, self.canonical).hex()


class SparseTree:
    """meerkat's fixed-depth (256) sparse-Merkle map, built by inserting one key at a time
    along its route (head_metadata.rs:1165-1223 update_node), every node kept in a dict."""

    def __init__(self):
        self.defaults = [b""] * 257
        self.defaults[256] = sha(_EMPTY_LEAF)
        for d in range(255, -1, -1):
            self.defaults[d] = sha(_NODE, d.to_bytes(2, "big"), self.defaults[d + 1], self.defaults[d + 1])
        self.nodes: dict[tuple[int, str], bytes] = {}

    @staticmethod
    def _bits(route: bytes) -> str:
        return "".join(f"{b:08b}" for b in route)

    def insert(self, cell: Cell) -> None:
        bits = self._bits(cell.route)
        key = cell.key.encode()
        h = sha(_LEAF, len(key).to_bytes(8, "big"), key, cell.route, bytes.fromhex(cell.digest.split(":", 1)[1]))
        self.nodes[(256, bits)] = h
        for d in range(255, -1, -1):
            prefix = bits[:d]
            left = self.nodes.get((d + 1, prefix + "0"), self.defaults[d + 1])
            right = self.nodes.get((d + 1, prefix + "1"), self.defaults[d + 1])
            self.nodes[(d, prefix)] = sha(_NODE, d.to_bytes(2, "big"), left, right)

    def root(self) -> str:
        return "head-metadata-smt-sha256:" + self.nodes.get((0, ""), self.defaults[0]).hex()


def metadata_cells(metadata: dict) -> tuple[list[Cell], dict]:
    cells = [Cell(k, _canonical_value(v)) for k, v in sorted(metadata.items())]
    tree = SparseTree()
    for c in cells:
        tree.insert(c)
    return cells, {"format_version": 1, "entry_count": len(cells), "exact_root_digest": tree.root()}


def v5_token(head: dict) -> str:
    """head-v5-sha256 over DigestAddressedSessionHeadCas built from the head's values."""
    pre = {"format_version": 5}
    for name in ("id", "version", "strand", "head_revision", "message_count", "message_row_prefix",
                 "row_lineage_anchor", "rewrite_count", "rewrite_prefix", "graph_prefix", "realtime_event_prefix",
                 "created_at", "updated_at", "usage", "metadata_identity"):
        pre[name] = head.get(name, REWRITE_PREFIX_EMPTY if name == "rewrite_prefix" else None)
    return "head-v5-sha256:" + hashlib.sha256(_j(pre)).hexdigest()


# ---------------------------------------------------------------------------
# Realm files
# ---------------------------------------------------------------------------


def mob_metadata(mob: str, profile: str, member: str) -> dict:
    """Session metadata as meerkat-mob 0.8.26 stamps a member (meerkat-mob/src/build.rs:64-74,
    realm `mob.<mob>` since a76478f9b; connection.rs:423-430 mob_member_binding)."""
    return {
        "session_build_state": {"assembled_system_prompt": "You are a careful agent."},
        "session_metadata": {
            "comms_name": f"{mob}/{profile}/{member}", "keep_alive": True, "max_tokens": 8192,
            "mob_member_binding": {"member": member, "mob_id": mob, "role": profile},
            "model": "fixture-model",
            "peer_meta": {"labels": {"agent_identity": f"{mob}:{member}", "meerkat_id": member, "mob_id": mob,
                                     "profile_name": profile, "role": profile}},
            "provider": "self_hosted", "realm_id": f"mob.{mob}", "schema_version": 2,
            "structured_output_retries": 2,
        },
    }


@dataclass
class SessionSpec:
    session_id: str
    messages: list[Msg]
    metadata: dict
    receipts: list[tuple[str, int, int]] = field(default_factory=list)  # (run_id, sequence, message_count)
    created_ms: int = 1788256800000
    updated_ms: int = 1788256860000


def _time(ms: int) -> dict:
    return {"secs_since_epoch": ms // 1000, "nanos_since_epoch": (ms % 1000) * 1_000_000}


def new_realm(path: pathlib.Path, *, ledger: int = 4) -> apsw.Connection:
    db = apsw.Connection(str(path))
    db.execute("PRAGMA synchronous=OFF")
    db.execute("CREATE TABLE meerkat_schema (domain TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    for name in ("session-store-v4.sql", "runtime-store-v1.sql", "runtime-store-v1-additions-v3.sql",
                 "schedule-store-v3.sql"):
        db.execute((DDL / name).read_text())
    db.execute("INSERT INTO meerkat_schema VALUES ('session-store', ?), ('runtime-store', ?), ('schedule-store', 3)",
               (ledger, 3 if ledger == 4 else 2))
    return db


def write_session(db: apsw.Connection, spec: SessionSpec, *, ledger: int = 4) -> dict:
    """Strand rows, head row (+ metadata cells for ledger v4) and receipts of one session.
    Returns the expected facts (head revision, receipt digests, token)."""
    sid = spec.session_id
    rows = [m.stored for m in spec.messages]
    for i, row in enumerate(rows):
        db.execute("INSERT INTO session_strand_messages VALUES (?, 'root', ?, ?, ?)", (sid, i, row, spec.updated_ms))
    prefix = row_prefix(rows)
    head: dict = {"id": sid, "version": 3, "strand": "root", "head_revision": f3_digest(spec.messages),
                  "message_count": len(rows), "message_row_prefix": prefix,
                  "row_lineage_anchor": {"rewrite_count": 0, "strand": "root", "message_count": len(rows),
                                         "materialized_prefix": prefix, "prefix": prefix},
                  "rewrite_count": 0}
    usage = {"input_tokens": 10 * len(rows), "output_tokens": 5 * len(rows), "cache_creation_tokens": None,
             "cache_read_tokens": None}
    if ledger == 4:
        cells, identity = metadata_cells(spec.metadata)
        head |= {"realtime_event_prefix": realtime_empty(sid), "created_at": _time(spec.created_ms),
                 "updated_at": _time(spec.updated_ms), "usage": usage, "metadata_identity": identity, "metadata": {}}
        token = v5_token(head)
        state_id = "state-" + identity["exact_root_digest"][-16:]
        for c in cells:
            db.execute("INSERT INTO session_head_metadata_cells VALUES (?, ?, ?, ?, ?, ?)",
                       (sid, c.key, c.route, c.digest, c.canonical, spec.updated_ms))
            db.execute("INSERT INTO session_head_metadata_current VALUES (?, ?, ?, ?)", (sid, c.key, c.route, c.digest))
        db.execute("INSERT INTO session_head_metadata_states VALUES (?, ?, NULL, ?, ?, ?)",
                   (sid, state_id, _j(identity), "transition-" + state_id, spec.updated_ms))
        db.execute("INSERT INTO session_head_metadata_refs VALUES (?, 'physical_head', ?, ?)", (sid, token, state_id))
    else:
        head |= {"created_at": _time(spec.created_ms), "updated_at": _time(spec.updated_ms), "usage": usage,
                 "metadata": spec.metadata}
        token = None
    head_json = _j(head)
    if token is None:
        token = "head-sha256:" + hashlib.sha256(head_json).hexdigest()
    db.execute("INSERT INTO session_heads VALUES (?, 3, 'root', ?, ?, 0, ?, ?, ?, ?, ?, ?)",
               (sid, head["head_revision"], len(rows), usage["input_tokens"] + usage["output_tokens"],
                spec.created_ms, spec.updated_ms, _j(head["metadata"]).decode(), head_json, token))
    receipts = {}
    for run_id, sequence, count in spec.receipts:
        digest = f3_digest(spec.messages[:count])
        body = _j({"run_id": run_id, "boundary": "run_start", "contributing_input_ids": [str(uuid.uuid5(
            uuid.NAMESPACE_URL, f"{run_id}/{sequence}"))], "conversation_digest": digest, "message_count": count,
            "sequence": sequence})
        db.execute("INSERT INTO runtime_boundary_receipts VALUES (?, ?, ?, ?)",
                   ("rt:session:" + sid, run_id, sequence - 2**64 if sequence >= 2**63 else sequence, body))
        receipts[(run_id, sequence)] = digest
    return {"head_revision": head["head_revision"], "token": token, "receipts": receipts, "rows": rows}


RUN_A = "0190e5a2-1111-7000-8000-00000000000a"
RUN_B = "0190e5a2-1111-7000-8000-00000000000b"


def current_realm(path: pathlib.Path, *, ledger: int = 4, kinds: str = "simple") -> dict:
    """A realm of three mob members (crew: coder, tester; ops: pager) written by a
    0.8.21+ (ledger 4) or 0.8.11-0.8.20 (ledger 3) producer, with receipts."""
    db = new_realm(path, ledger=ledger)
    make = (lambda run: every_kind(run)) if kinds == "every" else (lambda run: simple_kinds(run, 3))
    specs = [
        SessionSpec("0190e5a2-0000-7000-8000-0000000000c1", make(RUN_A), mob_metadata("crew", "coder", "agent-1"),
                    receipts=[(RUN_A, 1, 4), (RUN_A, 2, 7 if kinds == "simple" else 9)]),
        SessionSpec("0190e5a2-0000-7000-8000-0000000000c2", make(RUN_B), mob_metadata("crew", "tester", "agent-2"),
                    receipts=[(RUN_B, 1, 3)]),
        SessionSpec("0190e5a2-0000-7000-8000-0000000000c3", make(RUN_A), mob_metadata("ops", "pager", "agent-3"),
                    receipts=[]),
    ]
    facts = {s.session_id: write_session(db, s, ledger=ledger) | {"spec": s} for s in specs}
    db.close()
    return facts


# ---------------------------------------------------------------------------
# Tampered copies
# ---------------------------------------------------------------------------


def tamper(src: pathlib.Path, dst: pathlib.Path, sql: str, params: tuple = ()) -> pathlib.Path:
    shutil.copyfile(src, dst)
    db = apsw.Connection(str(dst))
    db.execute(sql, params)
    db.close()
    return dst


# ---------------------------------------------------------------------------
# A released 0.8.10 realm migrated the way >= 0.8.21 migrates it
# ---------------------------------------------------------------------------

_NOT_CELLS = ("session_transcript_history_state_v1", "realtime_transcript_state")  # session.rs:212-220, realtime_transcript.rs:18


def _current_row(row: bytes) -> tuple[bytes, bytes]:
    """(row re-serialised through the current Message type, its f3 canonical form) for the
    message kinds of the released 0.8.10 fixture: `system` loses `mutation_kind`
    (types.rs:1597-1618@c7b8518b4 has no such field); user and block_assistant rows are
    already in HEAD's declaration order."""
    msg = json.loads(row)
    if msg["role"] == "system":
        msg.pop("mutation_kind", None)
    elif msg["role"] not in ("user", "block_assistant"):
        raise ValueError(f"the 0.8.10 fixture has no {msg['role']} row")
    canon = {k: v for k, v in msg.items() if not (k == "identity" and msg["role"] in ("user", "block_assistant"))}
    canon["created_at"] = EPOCH
    return _j(msg), _j(canon)


def migrate_0810(src: pathlib.Path, dst: pathlib.Path, *, keep_snapshot: bool = True) -> dict:
    shutil.copyfile(src, dst)
    db = apsw.Connection(str(dst))
    db.execute("PRAGMA synchronous=OFF")
    session = (DDL / "session-store-v4.sql").read_text()
    db.execute(session[session.index("-- migration_0003"):])
    runtime = (DDL / "runtime-store-v1-additions-v3.sql").read_text()
    db.execute(runtime)
    schedule = (DDL / "schedule-store-v3.sql").read_text()
    db.execute(schedule[schedule.index("-- migration_0002"):])
    # runtime migration 2: the exact released receipt bodies' hashes (sqlite.rs:1318-1369)
    for runtime_id, run_id, sequence, body in list(db.execute(
            "SELECT runtime_id, run_id, sequence, receipt_json FROM runtime_boundary_receipts")):
        db.execute("INSERT INTO runtime_released_0810_boundary_receipts VALUES (?, ?, ?, ?)",
                   (runtime_id, run_id, sequence, "sha256:" + hashlib.sha256(body).hexdigest()))
    facts = {}
    for sid, head_json, created, updated in list(db.execute(
            "SELECT session_id, head_json, created_at_ms, updated_at_ms FROM session_heads")):
        old = json.loads(head_json)
        pairs = [_current_row(bytes(r)) for (r,) in db.execute(
            "SELECT message_json FROM session_strand_messages WHERE session_id = ? AND strand = ? ORDER BY seq",
            (sid, old["strand"]))]
        db.execute("DELETE FROM session_strand_messages WHERE session_id = ?", (sid,))
        db.execute("DELETE FROM session_strand_links WHERE session_id = ?", (sid,))
        messages = [Msg("migrated", stored, canon) for stored, canon in pairs]
        metadata = {k: v for k, v in old["metadata"].items() if k not in _NOT_CELLS}
        db.execute("DELETE FROM session_heads WHERE session_id = ?", (sid,))
        spec = SessionSpec(sid, messages, metadata, created_ms=created, updated_ms=updated)
        facts[sid] = write_session(db, spec, ledger=4) | {"old_rows_head": old["head_revision"]}
    if not keep_snapshot:
        db.execute("DELETE FROM runtime_session_snapshots")
    db.execute("UPDATE meerkat_schema SET version = 4 WHERE domain = 'session-store'")
    db.execute("UPDATE meerkat_schema SET version = 3 WHERE domain IN ('runtime-store', 'schedule-store')")
    db.close()
    return facts
