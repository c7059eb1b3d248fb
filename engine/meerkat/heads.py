"""meerkat 0.7.25+ heads and strands: a `session_heads` row per session naming a strand
of `session_strand_messages` rows (meerkat-store/src/sqlite_store.rs:65-140@c7b8518b4).
A session with a head row is read from the head strand; its `sessions` row, if any, is a
frozen archive and is ignored.

The head row's own checks live here for every version: version 2 (0.7.28-0.8.10) and
inline version-3 heads carry `head-sha256:` + SHA-256 of the exact head_json bytes
(meerkat-core/src/session_store.rs:3083-3086@c7b8518b4); version-3 heads with a metadata
identity (ledger v4) are handed to ledger_v4 for their `head-v5-sha256:` token and
metadata cells.
"""

from __future__ import annotations

import hashlib

from . import ledger_v2, ledger_v4
from ._common import (
    PREFIXED_HEX,
    VERSION_PROFILE,
    Damaged,
    RealmFinding,
    RealmHead,
    check_message,
    json_column,
    parse_json,
    require_int,
)

WHERE = "session_heads"
ROWS = "session_strand_messages"


def read_head(realm, sid: str, row: tuple):
    """(version, head, created, updated, messages, metadata, findings) of one head row."""
    (version, strand, revision, count, created, updated,
     md_type, md_bytes, head_type, head_bytes, cas_token) = row
    findings: list[RealmFinding] = []
    if type(version) is not int or version not in VERSION_PROFILE:
        raise Damaged(WHERE, f"unknown head version {version!r}")
    if not isinstance(strand, str) or not strand:
        raise Damaged(WHERE, f"strand {strand!r} is not a name")
    if not isinstance(revision, str) or not PREFIXED_HEX.fullmatch(revision):
        raise Damaged(WHERE, f"head_revision {revision!r} is not sha256:<64 hex>")
    require_int(WHERE, "message_count", count)
    if count < 0:
        raise Damaged(WHERE, f"negative message_count {count}")
    require_int(WHERE, "created_at_ms", created)
    require_int(WHERE, "updated_at_ms", updated)
    if not isinstance(cas_token, str):
        raise Damaged(WHERE, f"cas_token {cas_token!r} is not text")
    head_bytes = json_column(WHERE, "head_json", head_type, head_bytes)
    head_doc = parse_json(WHERE, "head_json", head_bytes)
    if not isinstance(head_doc, dict):
        raise Damaged(WHERE, "head_json is not a JSON object")
    expected = {"id": sid, "version": version, "strand": strand, "head_revision": revision, "message_count": count}
    for key, value in expected.items():
        if head_doc.get(key) != value:
            raise Damaged(WHERE, f"head_json {key} {head_doc.get(key)!r} disagrees with the row ({value!r})")
    inline = head_doc.get("metadata", {})
    if not isinstance(inline, dict):
        raise Damaged(WHERE, "head_json metadata is not an object")
    column = parse_json(WHERE, "metadata_json", json_column(WHERE, "metadata_json", md_type, md_bytes))
    if column != inline:
        raise Damaged(WHERE, "metadata_json disagrees with head_json.metadata")

    identity = head_doc.get("metadata_identity")
    if identity is not None:
        # Ledger v4 head-canonical v2: metadata lives in the authenticated cells.
        metadata, more = ledger_v4.read_metadata(realm, sid, identity, inline)
        findings += more
        findings += ledger_v4.check_head_token(head_bytes, cas_token)
    else:
        metadata = inline
        if cas_token.startswith("head-sha256:"):
            actual = "head-sha256:" + hashlib.sha256(head_bytes).hexdigest()
            if actual != cas_token:
                findings.append(RealmFinding("head_token", "mismatch", "cas_token does not match the head_json bytes",
                                             expected=cas_token, actual=actual, recheckable=False))
        else:
            findings.append(RealmFinding("head_token", "unchecked",
                                         f"cas_token {cas_token[:40]!r} is of no format this reader knows",
                                         expected=cas_token, recheckable=False))

    # No allocation follows from `count`: physical_rows counts the rows present first.
    links = ledger_v2.strand_links(realm, sid)
    messages = ledger_v2.resolve_strand(realm, sid, strand, 0, count, links, len(links))
    for index, message in enumerate(messages):
        check_message(ROWS, f"{strand} row {index}", parse_json(ROWS, f"strand {strand!r} row {index}", message))
    if identity is not None or "message_row_prefix" in head_doc:
        findings += ledger_v4.check_row_prefix(head_doc, messages)
    head = RealmHead(revision=revision, message_count=count, version=version, strand=strand,
                     profile=VERSION_PROFILE[version], cas_token=cas_token)
    return version, head, created, updated, messages, metadata, findings


def physical_rows(realm, sid: str, strand: str, start: int, end: int) -> list[bytes]:
    """Rows [start, end) a strand owns physically. The rows present are counted first, so
    a head claiming more rows than the file holds costs one index range count, never an
    allocation of the claimed size."""
    (present,) = realm.rows(
        "SELECT count(*) FROM session_strand_messages WHERE session_id = ? AND strand = ? AND seq >= ? AND seq < ?",
        (sid, strand, start, end),
    )[0]
    if present != end - start:
        gap = realm.rows(
            "SELECT a.seq + 1 FROM session_strand_messages a WHERE a.session_id = ? AND a.strand = ? "
            "AND a.seq >= ? AND a.seq < ? AND NOT EXISTS (SELECT 1 FROM session_strand_messages b "
            "WHERE b.session_id = a.session_id AND b.strand = a.strand AND b.seq = a.seq + 1) ORDER BY a.seq LIMIT 1",
            (sid, strand, start, end - 1),
        )
        first = realm.rows(
            "SELECT min(seq) FROM session_strand_messages WHERE session_id = ? AND strand = ? AND seq >= ? AND seq < ?",
            (sid, strand, start, end),
        )[0][0]
        missing = start if first is None or first > start else (gap[0][0] if gap else None)
        hint = f" (first missing seq {missing})" if missing is not None else ""
        raise Damaged(ROWS, f"missing strand rows: strand {strand!r} has {present} of rows [{start}, {end}){hint}")
    rows = realm.rows(
        "SELECT seq, typeof(message_json), CAST(message_json AS BLOB) FROM session_strand_messages "
        "WHERE session_id = ? AND strand = ? AND seq >= ? AND seq < ? ORDER BY seq",
        (sid, strand, start, end),
    )
    for offset, (seq, _kind, _value) in enumerate(rows):
        if seq != start + offset:  # an integer-valued REAL seq, say
            raise Damaged(ROWS, f"missing strand rows: strand {strand!r} row {start + offset} has seq {seq!r}")
    return [json_column(ROWS, f"strand {strand!r} seq {seq}", kind, value) for seq, kind, value in rows]
