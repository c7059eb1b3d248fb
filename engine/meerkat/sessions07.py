"""meerkat 0.7.0-0.7.24: one `sessions` row per session, the whole Session envelope in
`session_json` (meerkat-store/src/sqlite_store.rs:55-72@c7b8518b4). Also the reader of any
whole-document envelope: the frozen `runtime_session_snapshots` rows use the same shape.

Messages are the exact byte spans of the elements of the envelope's `messages` array;
the scanner below only finds boundaries in JSON that orjson already accepted.
"""

from __future__ import annotations

import re

import orjson

from ._common import (
    MAX_MESSAGES,
    Damaged,
    check_message,
    json_column,
    parse_json,
    require_int,
)

WHERE = "sessions"


def read_blob_session(sid: str, row: tuple):
    """(version, created, updated, messages, metadata) of one `sessions` row."""
    created, updated, count, md_type, md_bytes, doc_type, doc = row
    require_int(WHERE, "created_at_ms", created)
    require_int(WHERE, "updated_at_ms", updated)
    doc = json_column(WHERE, "session_json", doc_type, doc)
    version, messages, metadata = read_envelope(WHERE, sid, doc)
    if count != len(messages):
        raise Damaged(WHERE, f"message_count {count!r} but session_json holds {len(messages)} messages")
    column = parse_json(WHERE, "metadata_json", json_column(WHERE, "metadata_json", md_type, md_bytes))
    if column != metadata:
        raise Damaged(WHERE, "metadata_json disagrees with session_json.metadata")
    return version, created, updated, messages, metadata


def read_envelope(where: str, sid: str, doc: bytes) -> tuple[int, list[bytes], dict]:
    """(version, exact message spans, metadata) of a Session envelope document
    (`version, id, messages, created_at, updated_at, metadata, usage`)."""
    try:
        envelope = orjson.loads(doc)
    except orjson.JSONDecodeError as exc:
        raise Damaged(where, f"session_json is not valid JSON ({exc})") from None
    if not isinstance(envelope, dict):
        raise Damaged(where, "session_json is not a JSON object")
    version = envelope.get("version")
    if type(version) is not int or version not in (1, 2, 3):
        raise Damaged(where, f"unknown session envelope version {version!r}")
    if envelope.get("id") != sid:
        raise Damaged(where, f"session_json id {envelope.get('id')!r} differs from session_id")
    parsed = envelope.get("messages")
    if not isinstance(parsed, list):
        raise Damaged(where, "session_json has no messages array")
    if len(parsed) > MAX_MESSAGES:
        raise Damaged(where, f"session_json holds {len(parsed)} messages, more than this reader takes ({MAX_MESSAGES})")
    try:
        spans = message_spans(doc)
    except ValueError as exc:
        raise Damaged(where, f"session_json: {exc}") from None
    if len(spans) != len(parsed):
        raise Damaged(where, "session_json messages could not be delimited")
    for index, message in enumerate(parsed):
        check_message(where, f"message {index}", message)
    metadata = envelope.get("metadata", {})
    if not isinstance(metadata, dict):
        raise Damaged(where, "session_json metadata is not an object")
    return version, [doc[a:b] for a, b in spans], metadata


_WS = re.compile(rb"[ \t\n\r]*")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_SCALAR = re.compile(rb"[^,\]} \t\n\r]+")
_STRUCTURE = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.S)


def message_spans(doc: bytes) -> list[tuple[int, int]]:
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


def object_member_spans(doc: bytes) -> dict[str, tuple[int, int]]:
    """Exact [start, end) spans of each top-level member value of a JSON object that
    orjson already accepted (duplicate keys refused). Used to splice head_json's values
    into the head-v5 token preimage without re-encoding them."""
    pos = _WS.match(doc, 0).end()
    if doc[pos:pos + 1] != b"{":
        raise ValueError("not a JSON object")
    pos = _WS.match(doc, pos + 1).end()
    out: dict[str, tuple[int, int]] = {}
    while doc[pos:pos + 1] != b"}":
        m = _STRING.match(doc, pos)
        if m is None:
            raise ValueError(f"expected a key at byte {pos}")
        key = orjson.loads(m.group())
        if key in out:
            raise ValueError(f"duplicate top-level key {key!r}")
        pos = _WS.match(doc, m.end()).end()
        if doc[pos:pos + 1] != b":":
            raise ValueError(f"expected ':' at byte {pos}")
        pos = _WS.match(doc, pos + 1).end()
        end = _value_end(doc, pos)
        out[key] = (pos, end)
        pos = _WS.match(doc, end).end()
        if doc[pos:pos + 1] == b",":
            pos = _WS.match(doc, pos + 1).end()
        elif doc[pos:pos + 1] != b"}":
            raise ValueError(f"expected ',' or '}}' at byte {pos}")
    return out
