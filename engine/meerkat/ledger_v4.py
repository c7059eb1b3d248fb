"""meerkat 0.8.11+ session-store ledger v3/v4 and runtime store v2/v3.

Ledger v3 (0.8.11, meerkat-store/src/sqlite_store.rs:141-262@c7b8518b4) adds
`session_rewrites.graph_edge_json`, `session_component_events` and the
`session_head_metadata_*` sidecar tables; its migration rewrites every released 0.8.10
head and its strand rows through the current `Message` type (version-3 heads, f3
revisions, sqlite_store.rs:890-1053@c7b8518b4). Ledger v4 (0.8.21, sqlite_store.rs:283-345)
crosses each head to head-canonical v2 authority: the head's `metadata` is `{}`, its
`metadata_identity` names a sparse-Merkle map whose cells are the rows of
`session_head_metadata_cells` selected by `session_head_metadata_current`, and its CAS
token is `head-v5-sha256:` over a preimage of the head's fields
(meerkat-core/src/session_store.rs:3021-3087@c7b8518b4).

Checked here, from what the file holds:
* each current cell's key route and exact value digest, and the map's root and entry
  count against the head's metadata identity (meerkat-core/src/session/head_metadata.rs:
  26-31, 143-275, 1059-1237@c7b8518b4);
* the `head-v5-sha256:` token, its preimage spliced from head_json's own value bytes;
* the head's `message_row_prefix` over the exact strand row bytes when the head has no
  rewrite (session_store.rs:1536-1700@c7b8518b4); after a rewrite that lineage is an
  operation history the file does not hold whole, and it is reported unchecked;
* receipts written by 0.8.10 before the migration (runtime store v2 keeps the SHA-256 of
  each exact released receipt body, meerkat-runtime/src/store/sqlite.rs:1298-1369@c7b8518b4):
  their digests cover rows the migration rewrote, so they are recomputed from the frozen
  `runtime_session_snapshots` transcript when the file has it.
"""

from __future__ import annotations

import hashlib
import re

from ._common import MAX_METADATA_CELLS, Damaged, RealmFinding, json_column, parse_json
from .sessions07 import object_member_spans, read_envelope

CELLS = "session_head_metadata_cells"
CURRENT = "session_head_metadata_current"
MARKERS = "runtime_released_0810_boundary_receipts"
SNAPSHOTS = "runtime_session_snapshots"

_KEY_ROUTE_DOMAIN = b"rkat:session-head-metadata:key-route:v1\0"
_VALUE_EXACT_DOMAIN = b"rkat:session-head-metadata:value-exact:v1\0"
_LEAF_EXACT_DOMAIN = b"rkat:session-head-metadata:leaf-exact:v1\0"
_NODE_EXACT_DOMAIN = b"rkat:session-head-metadata:node-exact:v1\0"
_EMPTY_LEAF_EXACT_DOMAIN = b"rkat:session-head-metadata:empty-leaf-exact:v1\0"
_DEPTH = 256
_VALUE_PREFIX = "head-metadata-value-sha256:"
_ROOT_PREFIX = "head-metadata-smt-sha256:"
_HEX64 = re.compile(r"[0-9a-f]{64}")

# meerkat-core/src/session/transcript_history/graph.rs:147-148, 197-205@c7b8518b4
_REWRITE_PREFIX_EMPTY = (
    b'{"occurrence_count":0,"digest":"sha256:'
    + hashlib.sha256(b"meerkat.transcript-rewrite-prefix.chain.v1\0").hexdigest().encode() + b'"}'
)
_ROW_LINEAGE_EMPTY = b"meerkat.session-message-row-lineage.v1.empty\0"
_ROW_LINEAGE_APPEND = b"meerkat.session-message-row-lineage.v1.append\0"

# DigestAddressedSessionHeadCas field order (session_store.rs:3021-3038@c7b8518b4); an
# absent Option is written `null`, an absent rewrite_prefix is its default value.
_V5_FIELDS = (
    ("id", None), ("version", None), ("strand", None), ("head_revision", None), ("message_count", None),
    ("message_row_prefix", b"null"), ("row_lineage_anchor", b"null"), ("rewrite_count", None),
    ("rewrite_prefix", _REWRITE_PREFIX_EMPTY), ("graph_prefix", b"null"), ("realtime_event_prefix", b"null"),
    ("created_at", None), ("updated_at", None), ("usage", None), ("metadata_identity", None),
)


def _finding(*args, **kwargs) -> RealmFinding:
    """Every check here uses data the Store does not keep."""
    return RealmFinding(*args, recheckable=False, **kwargs)


def _sha(*parts: bytes) -> bytes:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.digest()


def key_route(key: str) -> bytes:
    return _sha(_KEY_ROUTE_DOMAIN, key.encode("utf-8"))


def value_digest(canonical_json: bytes) -> str:
    return _VALUE_PREFIX + _sha(_VALUE_EXACT_DOMAIN, canonical_json).hex()


def _defaults() -> list[bytes]:
    hashes = [b""] * (_DEPTH + 1)
    hashes[_DEPTH] = _sha(_EMPTY_LEAF_EXACT_DOMAIN)
    for depth in range(_DEPTH - 1, -1, -1):
        hashes[depth] = _sha(_NODE_EXACT_DOMAIN, depth.to_bytes(2, "big"), hashes[depth + 1], hashes[depth + 1])
    return hashes


_DEFAULT = _defaults()


def _leaf(key: str, route: bytes, digest_hex: str) -> bytes:
    raw = key.encode("utf-8")
    return _sha(_LEAF_EXACT_DOMAIN, len(raw).to_bytes(8, "big"), raw, route, bytes.fromhex(digest_hex))


def metadata_root(cells: list[tuple[str, bytes, str]]) -> str:
    """Root of the sparse-Merkle map over (key, route, value-digest hex) cells."""
    items = sorted((route, _leaf(key, route, digest_hex)) for key, route, digest_hex in cells)

    def node(depth: int, lo: int, hi: int) -> bytes:
        if lo == hi:
            return _DEFAULT[depth]
        if depth == _DEPTH:
            return items[lo][1]
        byte, mask = depth // 8, 0x80 >> (depth % 8)
        mid = lo
        while mid < hi and not items[mid][0][byte] & mask:
            mid += 1
        return _sha(_NODE_EXACT_DOMAIN, depth.to_bytes(2, "big"), node(depth + 1, lo, mid), node(depth + 1, mid, hi))

    return _ROOT_PREFIX + node(0, 0, len(items)).hex()


def read_metadata(realm, sid: str, identity, inline: dict) -> tuple[dict, list[RealmFinding]]:
    """The session's metadata map from its current cells, and what of it did not verify."""
    if not (isinstance(identity, dict) and identity.get("format_version") == 1
            and type(identity.get("entry_count")) is int and isinstance(identity.get("exact_root_digest"), str)):
        raise Damaged("session_heads", f"head_json metadata_identity {identity!r} is not a format-1 identity")
    if CURRENT not in realm.tables or CELLS not in realm.tables:
        raise Damaged("session_heads", "the head names a metadata identity but the file has no "
                                       "session_head_metadata_current/cells tables")
    findings: list[RealmFinding] = []
    if inline:
        findings.append(_finding("metadata", "mismatch", "the head carries both a metadata identity and "
                                     "inline metadata (meerkat refuses such a head); the cells were read"))
    rows = realm.rows(
        "SELECT c.metadata_key, c.key_route, c.exact_value_digest, typeof(m.metadata_json), "
        "CAST(m.metadata_json AS BLOB), m.key_route FROM session_head_metadata_current c "
        "LEFT JOIN session_head_metadata_cells m ON m.session_id = c.session_id "
        "AND m.metadata_key = c.metadata_key AND m.exact_value_digest = c.exact_value_digest "
        "WHERE c.session_id = ? ORDER BY c.metadata_key LIMIT ?",
        (sid, MAX_METADATA_CELLS + 1),
    )
    if len(rows) > MAX_METADATA_CELLS:
        raise Damaged(CURRENT, f"more than {MAX_METADATA_CELLS} current metadata cells")
    metadata: dict = {}
    leaves: list[tuple[str, bytes, str]] = []
    for key, route, digest, kind, value, cell_route in rows:
        if not isinstance(key, str) or not isinstance(digest, str):
            raise Damaged(CURRENT, f"metadata cell key {key!r} / digest {digest!r} is not text")
        label = f"metadata cell {key!r}"
        if kind is None:
            findings.append(_finding("metadata", "mismatch", f"{label}: {CURRENT} names value {digest} "
                                         f"that {CELLS} does not hold", expected=digest))
            continue
        raw = json_column(CELLS, label, kind, value)
        metadata[key] = parse_json(CELLS, label, raw)
        want_route = key_route(key)
        if route != want_route or cell_route != want_route:
            findings.append(_finding("metadata", "mismatch", f"{label}: key_route is not SHA-256 of its key",
                                         expected=want_route.hex(), actual=(route or b"").hex()))
        actual = value_digest(raw)
        if actual != digest:
            findings.append(_finding("metadata", "mismatch", f"{label}: exact_value_digest does not match "
                                         "its metadata_json bytes", expected=digest, actual=actual))
        hexpart = digest[len(_VALUE_PREFIX):] if digest.startswith(_VALUE_PREFIX) else ""
        if _HEX64.fullmatch(hexpart) and isinstance(route, bytes) and len(route) == 32:
            leaves.append((key, route, hexpart))
    if len(leaves) == len(rows):
        root = metadata_root(leaves)
        if root != identity["exact_root_digest"] or len(rows) != identity["entry_count"]:
            findings.append(_finding(
                "metadata", "mismatch", "the current cells do not make the head's metadata identity "
                f"({len(rows)} cells, head says {identity['entry_count']})",
                expected=identity["exact_root_digest"], actual=root))
    else:
        findings.append(_finding("metadata", "unchecked", "metadata root not recomputed: a cell is "
                                     "missing or malformed", expected=identity["exact_root_digest"]))
    return metadata, findings


def check_head_token(head_bytes: bytes, cas_token: str) -> list[RealmFinding]:
    """The `head-v5-sha256:` token of a head with a metadata identity."""
    try:
        spans = object_member_spans(head_bytes)
    except ValueError as exc:
        return [_finding("head_token", "unchecked", f"head_json not delimited: {exc}", expected=cas_token)]
    parts = [b'{"format_version":5']
    for name, default in _V5_FIELDS:
        span = spans.get(name)
        if span is None and default is None:
            return [_finding("head_token", "unchecked", f"head_json has no {name}", expected=cas_token)]
        parts.append(b',"' + name.encode() + b'":' + (head_bytes[span[0]:span[1]] if span else default))
    parts.append(b"}")
    actual = "head-v5-sha256:" + hashlib.sha256(b"".join(parts)).hexdigest()
    if actual != cas_token:
        return [_finding("head_token", "mismatch", "cas_token does not match the head-v5 preimage of head_json",
                             expected=cas_token, actual=actual)]
    return []


def row_prefix(rows: list[bytes]) -> str:
    """`row-lineage-v1-sha256:` commitment of serialized rows appended from empty."""
    state = _sha(_ROW_LINEAGE_EMPTY)
    for index, row in enumerate(rows):
        state = _sha(_ROW_LINEAGE_APPEND, state, index.to_bytes(8, "big"), len(row).to_bytes(8, "big"), row)
    return "row-lineage-v1-sha256:" + state.hex()


def check_row_prefix(head_doc: dict, rows: list[bytes]) -> list[RealmFinding]:
    prefix = head_doc.get("message_row_prefix")
    if prefix is None:
        return [_finding("row_prefix", "unchecked", "the head has no message_row_prefix")]
    if not isinstance(prefix, dict) or prefix.get("version") != 1 or not isinstance(prefix.get("digest"), str):
        return [_finding("row_prefix", "mismatch", f"message_row_prefix {prefix!r} is not a version-1 prefix")]
    if head_doc.get("rewrite_count") != 0:
        return [_finding("row_prefix", "unchecked", "the head has rewrites: its row lineage is an operation "
                             "history (splices) that the file does not hold whole", expected=prefix["digest"])]
    actual = row_prefix(rows)
    if actual != prefix["digest"] or prefix.get("row_count") != len(rows):
        return [_finding("row_prefix", "mismatch", "message_row_prefix does not match the strand row bytes",
                             expected=prefix["digest"], actual=actual)]
    return []


def migrated_receipt(realm, sid: str, receipt, transcript_digest) -> RealmFinding | None:
    """Judge a receipt whose digest the current rows do not reproduce, in a realm whose
    runtime store recorded the released-0.8.10 receipt hashes. None: no such record
    (the caller reports an ordinary mismatch). A recorded receipt is a 0.8.10 receipt,
    so its digest is f2 (0.8.9-0.8.10 receipts) whatever the current head's version."""
    if MARKERS not in realm.tables:
        return None
    column_seq = receipt.sequence - 2**64 if receipt.sequence >= 2**63 else receipt.sequence
    rows = realm.rows(f"SELECT receipt_sha256 FROM {MARKERS} WHERE runtime_id = ? AND run_id = ? AND sequence = ?",  # sql-safe: our table name
                      (receipt.runtime_id, receipt.run_id, column_seq))
    if not rows:
        return None
    marker = rows[0][0]
    body = "sha256:" + hashlib.sha256(receipt.receipt_json).hexdigest()
    where = (receipt.run_id, receipt.sequence)
    if marker != body:
        return _finding("receipt", "mismatch", "receipt bytes differ from the released-0.8.10 receipt hash "
                            "the migration recorded", *where, expected=marker, actual=body)
    base = ("a 0.8.10 receipt over strand rows that meerkat's 0.8.11+ migration rewrote through the current "
            "Message type (meerkat-store/src/sqlite_store.rs:890-1053@c7b8518b4), so the stored transcript cannot "
            "reproduce it; its bytes match the released-0.8.10 receipt hash")
    snap = realm.rows(f"SELECT typeof(session_snapshot), CAST(session_snapshot AS BLOB) FROM {SNAPSHOTS} "  # sql-safe: our table name
                      "WHERE runtime_id = ?", (receipt.runtime_id,)) if SNAPSHOTS in realm.tables else []
    if not snap:
        return _finding("receipt", "unrecomputable", base + "; the file has no runtime snapshot to recompute "
                            "it from", *where, expected=receipt.conversation_digest)
    try:
        doc = json_column(SNAPSHOTS, "session_snapshot", snap[0][0], snap[0][1])
        _version, messages, _metadata = read_envelope(SNAPSHOTS, sid, doc)
    except Damaged as damage:
        return _finding("receipt", "unrecomputable", base + f"; its runtime snapshot is unreadable "
                            f"({damage.reason})", *where, expected=receipt.conversation_digest)
    if len(messages) < receipt.message_count:
        return _finding("receipt", "unrecomputable", base + f"; the runtime snapshot holds {len(messages)} "
                            f"of its {receipt.message_count} messages", *where, expected=receipt.conversation_digest)
    try:
        actual = transcript_digest(messages[:receipt.message_count], "f2")
    except Exception as exc:  # noqa: BLE001 - a snapshot row the canonicalizer refuses is evidence, not a crash
        return _finding("receipt", "unrecomputable", base + f"; the runtime snapshot does not canonicalise "
                            f"({type(exc).__name__}: {exc})", *where, expected=receipt.conversation_digest)
    if actual != receipt.conversation_digest:
        return _finding("receipt", "mismatch", "the f2 digest of the frozen runtime snapshot's "
                            f"first {receipt.message_count} messages differs", *where,
                            expected=receipt.conversation_digest, actual=actual)
    return _finding("receipt", "unrecomputable", base + "; its f2 digest matched the frozen "
                        "runtime_session_snapshots transcript at import", *where,
                        expected=receipt.conversation_digest, actual=actual)
