r"""Pure-Python reference of mobstore's canonical message form and digests.

This docstring is the byte-level spec; ``_native/`` implements the same rules
and is differential-fuzzed against this module (same bytes or the same error
class). Sources: FORMAT.md §1-2, meerkat HEAD ``meerkat-core/src/types.rs``,
and the 40 shared vectors (``vectors-sample.jsonl``), which decide where they
differ (marked [V]). Helpers: ``_canon_py_numbers`` (number rules),
``_canon_py_sha256`` (SHA-256 midstate). Every failure raises
``InvalidInputError`` naming the rule and a location: a JSON path such as
``$.results[0].content`` and, for syntax errors, ``byte N`` of the input.

1. PARSER (serde_json ``from_slice`` + mobstore's stricter rules)
   * Bytes decoded as strict UTF-8: overlong, truncated, surrogate code
     points, > U+10FFFF -> error. A BOM is not whitespace -> error.
   * RFC 8259 grammar. Whitespace = SP HT LF CR only. One value, then only
     whitespace. Literals true/false/null; NaN, Infinity, -Infinity -> error.
   * Strings: raw U+0000..U+001F -> error. Escapes \" \\ \/ \b \f \n \r \t
     \uXXXX (hex any case); a \u high surrogate must be directly followed
     by a \u low surrogate; any unpaired surrogate escape -> error.
   * Duplicate keys (compared after unescaping) in ANY object -> error.
   * Depth: serde_json's counter (MAX_DEPTH = 128) fails when it reaches 0,
     so at most 127 containers nest (top-level object = 1); the 128th
     nested ``[``/``{`` -> error. Never recursion-limited in Python.
   * Number grammar -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?; ``01``,
     ``1.``, ``.5``, ``+1``, ``1e`` -> error. Values (serde ParserNumber):
     - no . e E: u64 if >= 0 and <= 2^64-1; negative with magnitude <= 2^63
       and != 0: i64; ``-0`` -> f64 -0.0; negative magnitude in (2^63, 2^64)
       -> nearest f64; magnitude > 2^64-1 -> the float rule below.
     - float rule (serde default, NOT correctly rounded): digits accumulate
       into a u64 significand; the first digit that would overflow it ends
       that: each further integer digit adds 1 to the decimal exponent,
       further fraction digits are dropped (each kept fraction digit -1).
       Exponent digits overflowing i32: 0.0 (sign kept) if the significand
       is 0 or the exponent is negative, else error. Exponent = adjusted
       sum, saturated to i32. f = (f64)significand (nearest even); if
       |exp| <= 308 one ``f *= 1e{exp}`` or ``f /= 1e{-exp}`` with the
       correctly rounded table value; else if f == 0 stop; positive -> error;
       negative -> ``f /= 1e308; exp += 308`` and repeat. An infinite product
       -> error "number out of range". Sign applied last.
2. TYPED MODEL (meerkat HEAD, FORMAT.md §1.2). Three kinds of object:
   TYPED: tag key first, known fields in declaration order, then unknown
   keys. PASS-THROUGH [V]: known fields validated, but the object is written
   as parsed: keys in INPUT order, no defaults added, present nulls of
   optional fields written ``null``. VALUE: a serde ``Value`` (rule 4,
   keys sorted). Unknown keys (kept by mobstore; meerkat drops them) are
   written after the known ones in input order, their values re-encoded
   compactly with objects in input order and numbers per rule 4.
   Field marks: ``?`` optional: absent or null -> omitted (typed);
   ``=d`` absent -> d, always written (typed), null -> error; ``*`` list
   omitted when absent or empty (typed), null -> error; unmarked: required,
   null -> error. str/bool fields need JSON strings/booleans; u64/u32 need
   JSON integers in range (``1.0`` is a float -> error); enums need one of
   the listed strings.
   * role (any other role, e.g. the seed ``assistant``, -> error):
     ``system``: content str, mutation_kind=unspecified (0.7.x-0.8.10 field,
     gone at HEAD, kept because real 0.7.28 f2 heads hash it here: unspecified
     direct_mutation explicit_build default_build wasm_default_build
     runtime_context_append runtime_steer_cleanup; written only when not
     unspecified), created_at, identity? PASS{source? str, idempotency_key?
     str}, prompt_version? PASS{key str, version u64 >= 1}.
     ``system_notice``: kind (generic comms external_event mcp_pending mcp
     background_job tool_scope tool_scope_warning auth_reauth_required),
     body? str, blocks* [notice block], created_at.
     ``user``: content CODEC, render_metadata? PASS{class str [V: not the
     RenderClass enum, vectors use "x"], salience= (background normal
     important urgent)}, identity IDENT, transcript_role=conversational
     (conversational compaction_summary injected_context; written only when
     not conversational), created_at.
     ``block_assistant``: blocks [assistant block], stop_reason (end_turn
     tool_use max_tokens stop_sequence content_filter cancelled), identity
     IDENT, created_at.
     ``tool_results``: results [TYPED{tool_use_id str, content CODEC,
     is_error=false}], created_at.
   * IDENT: PASS{interaction_id? str, run_id? str, objective_id? str};
     absent -> omitted; null -> error (a non-Option struct in meerkat).
   * created_at: ``YYYY-MM-DD(T|t| )hh:mm:ss(.f+)?(Z|z|+hh:mm|-hh:mm)``,
     hh <= 23, mm/ss <= 59, a valid date, year 0001-9999 after conversion to
     UTC; fraction digits past 9 ignored. Written (bare) in UTC, chrono
     AutoSi: ``Z`` and 0, 3, 6 or 9 fraction digits (fewest exact). Absent:
     f3/f2 write the epoch, bare omits it (seed-era rows had none).
   * CODEC: a JSON string s = [text s]; else an array of content blocks.
     Written as a string iff it is exactly one text block with no unknown
     key; otherwise an array (``[]`` stays ``[]``).
   * Content block, TYPED, tag ``type``: text {text}; image {media_type,
     source: inline {data} | blob {blob_id}} written type, media_type,
     source, data|blob_id; video {media_type, duration_ms u64, source:
     inline {data} | uri {uri}}; structured {data OPAQUE}; skill_context
     {skill_key TYPED{source_uuid, skill_name}, text}.
   * Assistant block, TYPED ``{"block_type": T, "data": TYPED{...}}``: text
     {text, meta?}; transcript {text, source (spoken), meta?}; reasoning
     {text="", meta?}; tool_use {id, name, args OPAQUE, meta?};
     server_tool_content {id?, kind, content VALUE, meta?} where kind (key
     ``kind`` or alias ``name``, both -> error) is TYPED{"kind":
     web_search|google_search} / {"kind":"provider_native","name":str} or a
     legacy string (web_search, google_search, else provider_native with
     that name); image {image_id str, blob_ref TYPED{blob_id, media_type},
     media_type, width u32, height u32, revised_prompt PASS, meta PASS}.
     meta: PASS, tag ``provider`` [V]: anthropic {signature};
     anthropic_redacted {data}; anthropic_compaction {content}; gemini
     {thoughtSignature}; open_ai {id, encrypted_content?, phase?,
     response_id?}; open_ai_response {response_id}.
   * Notice block: PASS [V], tag ``type`` (a string, else error); its
     ``payload`` is a VALUE, its ``content`` a list of content blocks (so
     images collapse): comms {kind str, direction (incoming outgoing
     internal), peer? PASS{id str, display_name? str}, sender_taint? str,
     request_id?, intent?, status?, summary?, payload?, content*};
     external_event {source, event_type, summary?, body?, payload?,
     content*}; tool_config {payload}; mcp {server_id?, operation? str,
     phase? str, persisted= bool, detail?, pending_sources* [str]};
     background_job {job_id, display_name?, status str, detail?}; auth
     {state, binding?, detail?}; runtime_notice {category, detail?,
     payload?}; unknown {summary?, payload?}. Any other type T (meerkat's
     unknown_from_value): ``{"type":"unknown","summary":S,"payload":V}``,
     S = the first present of summary/body/detail if it is a string (else
     no summary key), V = the whole block as a VALUE.
3. PROFILES (per message; the transcript hashes ``[`` m0 ``,`` m1 ... ``]``)
   * f3: (a) every content block image with source inline (user content,
     tool-result content, notice content) becomes exactly
     ``{"type":"image","media_type":<as written>,"source":"blob","blob_id":B}``
     (unknown keys dropped), B = ``sha256:`` + lowerhex(SHA-256(M 0x00
     data)), M = media_type cut at the first ``;``, trimmed of Unicode
     White_Space, ASCII-lowercased; (b) OPAQUE slots written as the VALUE of
     the slot as parsed once [V: not re-parsed]; (c) created_at -> epoch
     ``"1970-01-01T00:00:00Z"``; user/block_assistant identity omitted
     (still validated). Digest ``sha256:`` + hex.
   * f2: (a) and (c); OPAQUE slots written verbatim [V]: the exact source
     text of the slot's value, inner whitespace and spellings included.
   * bare: the typed form alone: no collapse, created_at and identity kept,
     OPAQUE verbatim. Digest plain hex.
4. OUTPUT (serde_json compact): no whitespace. VALUE objects have keys
   sorted by UTF-8 bytes (= code point order), recursively. Strings:
   ``"`` -> ``\"``, ``\`` -> ``\\``, 08 09 0A 0C 0D -> ``\b \t \n \f \r``,
   other 00-1F -> ``\u00xx`` (lowercase hex); all else raw UTF-8 (``/``,
   7F, U+2028/2029 too). Integers (u64/i64) in decimal. Floats: shortest
   round-trip digits d1..dn with exponent E (d1.d2.. x 10^E); -5 <= E <= 15:
   fixed, ``.0`` appended when integral (``1.0``, ``0.00001``,
   ``1000000000000000.0``); else ``d1[.d2..dn]e+E`` / ``e-E`` (``1e+16``,
   ``1e-6``, ``5e-324``); zeros ``0.0`` / ``-0.0``.
5. ``dumps_value``: the same output rules for Python values, dicts in
   insertion order; ints must fit i64 or u64; NaN/inf, lone surrogates,
   non-str keys, other types, nesting past rule 1's depth -> error.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta

from ._canon_py_numbers import (
    _NUM_RE,
    _U64_MAX,
    _number,
    format_float,
    parse_float_serde,
)
from ._canon_py_sha256 import Sha256
from .errors import InvalidInputError

MAX_DEPTH = 128
PROFILES = ("f3", "f2", "bare")

__all__ = [
    "MAX_DEPTH", "PROFILES", "Sha256", "canonical_message", "dumps_value",
    "format_float", "parse_float_serde", "transcript_digest",
]

# --------------------------------------------------------------------------
# Strict parser

_WS_RE = re.compile(r"[ \t\n\r]*")
_STR_RE = re.compile(r'[^"\\\x00-\x1f]*')
_HEX4_RE = re.compile(r"[0-9a-fA-F]{4}")
_SIMPLE_ESC = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_SPAN_KEYS = frozenset(("args", "data"))  # the only keys of OPAQUE slots


class _Obj(dict):
    """A parsed JSON object; ``spans`` keeps the source text span of the
    values of keys that can be OPAQUE slots (for f2/bare verbatim output)."""

    __slots__ = ("spans",)


class _Fail(Exception):
    def __init__(self, msg: str, pos: int) -> None:
        super().__init__(msg)
        self.msg, self.pos, self.path = msg, pos, []


def _parse_string(s: str, i: int):
    """``i`` is just past the opening quote; returns (str, index past closing quote)."""
    m = _STR_RE.match(s, i)
    j = m.end()
    if j < len(s) and s[j] == '"':
        return m.group(), j + 1
    parts = [m.group()]
    n = len(s)
    while True:
        if j >= n:
            raise _Fail("unterminated string", j)
        c = s[j]
        if c == '"':
            return "".join(parts), j + 1
        if c != "\\":
            raise _Fail("control character U+%04X in string (must be escaped)" % ord(c), j)
        c = s[j + 1] if j + 1 < n else ""
        if c in _SIMPLE_ESC and c:
            parts.append(_SIMPLE_ESC[c])
            j += 2
        elif c == "u":
            if not _HEX4_RE.match(s, j + 2):
                raise _Fail("invalid \\u escape", j)
            cp = int(s[j + 2:j + 6], 16)
            j += 6
            if 0xD800 <= cp <= 0xDBFF:
                if s.startswith("\\u", j) and _HEX4_RE.match(s, j + 2):
                    lo = int(s[j + 2:j + 6], 16)
                    if 0xDC00 <= lo <= 0xDFFF:
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                        j += 6
                    else:
                        raise _Fail("lone surrogate escape \\u%04x" % cp, j - 6)
                else:
                    raise _Fail("lone surrogate escape \\u%04x" % cp, j - 6)
            elif 0xDC00 <= cp <= 0xDFFF:
                raise _Fail("lone surrogate escape \\u%04x" % cp, j - 6)
            parts.append(chr(cp))
        else:
            raise _Fail("invalid escape in string", j)
        m = _STR_RE.match(s, j)
        parts.append(m.group())
        j = m.end()


def _parse_value(s: str, i: int, depth: int):
    """Parse one value at ``i`` (no leading whitespace); returns (value, end)."""
    c = s[i] if i < len(s) else ""
    if c == '"':
        return _parse_string(s, i + 1)
    if c == "{" or c == "[":
        if depth + 1 >= MAX_DEPTH:
            raise _Fail("nesting deeper than %d levels" % (MAX_DEPTH - 1), i)
        return (_parse_object if c == "{" else _parse_array)(s, i + 1, depth + 1)
    if c == "-" or "0" <= c <= "9":
        m = _NUM_RE.match(s, i)
        if m is None:
            if s.startswith("-Infinity", i):
                raise _Fail("-Infinity is not JSON", i)
            raise _Fail("invalid number", i)
        j = m.end()
        if j < len(s) and s[j] in "0123456789.eE":
            raise _Fail("invalid number (leading zero or bad fraction/exponent)", i)
        try:
            return _number(m.group()), j
        except InvalidInputError as exc:
            raise _Fail(str(exc), i) from None
    for word, val in (("true", True), ("false", False), ("null", None)):
        if s.startswith(word, i):
            return val, i + len(word)
    if s.startswith("NaN", i) or s.startswith("Infinity", i):
        raise _Fail("NaN/Infinity are not JSON", i)
    raise _Fail("unexpected end of input" if not c else "unexpected character %r" % c, i)


def _parse_object(s: str, i: int, depth: int):
    obj = _Obj()
    obj.spans = {}
    i = _WS_RE.match(s, i).end()
    if s.startswith("}", i):
        return obj, i + 1
    while True:
        if not s.startswith('"', i):
            raise _Fail("expected a string key", i)
        kpos = i
        key, i = _parse_string(s, i + 1)
        i = _WS_RE.match(s, i).end()
        if not s.startswith(":", i):
            raise _Fail("expected ':'", i)
        i = _WS_RE.match(s, i + 1).end()
        try:
            start = i
            val, i = _parse_value(s, i, depth)
        except _Fail as f:
            f.path.append(key)
            raise
        if key in obj:
            raise _Fail("duplicate key %s" % _wstr(key), kpos)
        obj[key] = val
        if key in _SPAN_KEYS:
            obj.spans[key] = (start, i)
        i = _WS_RE.match(s, i).end()
        c = s[i] if i < len(s) else ""
        if c == ",":
            i = _WS_RE.match(s, i + 1).end()
        elif c == "}":
            return obj, i + 1
        else:
            raise _Fail("expected ',' or '}'", i)


def _parse_array(s: str, i: int, depth: int):
    arr = []
    i = _WS_RE.match(s, i).end()
    if s.startswith("]", i):
        return arr, i + 1
    while True:
        try:
            val, i = _parse_value(s, i, depth)
        except _Fail as f:
            f.path.append(len(arr))
            raise
        arr.append(val)
        i = _WS_RE.match(s, i).end()
        c = s[i] if i < len(s) else ""
        if c == ",":
            i = _WS_RE.match(s, i + 1).end()
        elif c == "]":
            return arr, i + 1
        else:
            raise _Fail("expected ',' or ']'", i)


def _loads(data) -> tuple:
    """Strictly parse JSON bytes; returns (value, decoded text)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidInputError("message must be bytes (UTF-8 JSON text), got %s" % type(data).__name__)
    data = bytes(data)
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError("invalid UTF-8 at byte %d: %s" % (exc.start, exc.reason)) from None
    try:
        i = _WS_RE.match(s, 0).end()
        val, i = _parse_value(s, i, 0)
        i = _WS_RE.match(s, i).end()
        if i != len(s):
            raise _Fail("trailing characters after the JSON value", i)
    except _Fail as f:
        where = _path_str(reversed(f.path))
        nbytes = len(s[:f.pos].encode("utf-8"))
        raise InvalidInputError("invalid JSON at %s (byte %d): %s" % (where, nbytes, f.msg)) from None
    return val, s


def _path_str(parts) -> str:
    out = ["$"]
    for p in parts:
        if isinstance(p, int):
            out.append("[%d]" % p)
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", p):
            out.append("." + p)
        else:
            out.append("[%s]" % _wstr(p))
    return "".join(out)


# --------------------------------------------------------------------------
# Writers

_ESC = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
for _c in range(0x20):
    _ESC.setdefault(chr(_c), "\\u%04x" % _c)
_ESC_RE = re.compile('[\x00-\x1f"\\\\]')
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _esc(m) -> str:
    return _ESC[m.group()]


def _wstr(s: str) -> str:
    if _ESC_RE.search(s) is None:
        return '"' + s + '"'
    return '"' + _ESC_RE.sub(_esc, s) + '"'


def _wvalue(v) -> str:
    """A parsed value as serde ``Value``: objects key-sorted by code point."""
    t = type(v)
    if t is str:
        return _wstr(v)
    if t is _Obj or t is dict:
        return "{" + ",".join(_wstr(k) + ":" + _wvalue(v[k]) for k in sorted(v)) + "}"
    if t is list:
        return "[" + ",".join(_wvalue(x) for x in v) + "]"
    if v is None:
        return "null"
    if t is bool:
        return "true" if v else "false"
    if t is int:
        return str(v)
    return format_float(v)


def _wpy(v, depth: int) -> str:
    """dumps_value: Python JSON value, dicts in insertion order. Raises
    _Fail (pos -1) whose ``path`` the containers fill on the way out."""
    t = type(v)
    if t is str:
        if _SURROGATE_RE.search(v):
            raise _Fail("string contains a lone surrogate", -1)
        return _wstr(v)
    if v is None:
        return "null"
    if t is bool:
        return "true" if v else "false"
    if t is int:
        if not -(1 << 63) <= v <= _U64_MAX:
            raise _Fail("integer %d does not fit i64 or u64" % v, -1)
        return str(v)
    if t is float:
        if v != v or v in (_INF, -_INF):
            raise _Fail("NaN/Infinity cannot be serialised", -1)
        return format_float(v)
    if isinstance(v, dict):
        if depth + 1 >= MAX_DEPTH:
            raise _Fail("nesting deeper than %d levels" % (MAX_DEPTH - 1), -1)
        parts = []
        for k, x in v.items():
            if not isinstance(k, str):
                raise _Fail("object key %r is not a str" % (k,), -1)
            try:
                parts.append(_wpy(str(k), depth) + ":" + _wpy(x, depth + 1))
            except _Fail as f:
                f.path.append(str(k))
                raise
        return "{" + ",".join(parts) + "}"
    if isinstance(v, (list, tuple)):
        if depth + 1 >= MAX_DEPTH:
            raise _Fail("nesting deeper than %d levels" % (MAX_DEPTH - 1), -1)
        parts = []
        for i, x in enumerate(v):
            try:
                parts.append(_wpy(x, depth + 1))
            except _Fail as f:
                f.path.append(i)
                raise
        return "[" + ",".join(parts) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (str, int, float)):  # subclasses (IntEnum, str enums, ...)
        return _wpy((str if isinstance(v, str) else int if isinstance(v, int) else float)(v), depth)
    raise _Fail("cannot serialise a %s as JSON" % type(v).__name__, -1)


_INF = float("inf")


def dumps_value(obj) -> bytes:
    """Compact serde_json bytes of a Python JSON value (dict insertion order)."""
    try:
        return _wpy(obj, 0).encode("utf-8")
    except _Fail as f:
        raise InvalidInputError("%s: %s" % (_path_str(reversed(f.path)), f.msg)) from None


# --------------------------------------------------------------------------
# Typed model (FORMAT.md §1.2) and profile steps (§1.4)


class _Ctx:
    __slots__ = ("text", "collapse", "erase", "sort_opaque")

    def __init__(self, text: str, profile: str) -> None:
        self.text = text
        self.collapse = self.erase = profile != "bare"
        self.sort_opaque = profile == "f3"


def _bad(path: str, msg: str):
    raise InvalidInputError("%s: %s" % (path, msg))


def _kind(v) -> str:
    if v is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
            list: "an array"}.get(type(v), "an object")


def _winput(v) -> str:
    """A parsed value re-encoded compactly with objects in INPUT key order."""
    t = type(v)
    if t is _Obj:
        return "{" + ",".join(_wstr(k) + ":" + _winput(x) for k, x in v.items()) + "}"
    if t is list:
        return "[" + ",".join(_winput(x) for x in v) + "]"
    return _wvalue(v)


def _t_str(v, path, ctx):
    if type(v) is not str:
        _bad(path, "expected a string, found %s" % _kind(v))
    return _wstr(v)


def _t_bool(v, path, ctx):
    if type(v) is not bool:
        _bad(path, "expected a boolean, found %s" % _kind(v))
    return "true" if v else "false"


def _t_uint(bits, minimum=0):
    def check(v, path, ctx):
        if type(v) is not int or not minimum <= v < (1 << bits):
            _bad(path, "expected an integer in [%d, 2^%d-1], found %s"
                 % (minimum, bits, v if type(v) is int else _kind(v)))
        return str(v)
    return check


def _t_enum(*names):
    def check(v, path, ctx):
        if type(v) is not str or v not in names:
            _bad(path, "expected one of %s, found %s"
                 % ("|".join(names), _wstr(v) if type(v) is str else _kind(v)))
        return _wstr(v)
    return check


def _t_value(v, path, ctx):
    return _wvalue(v)


def _t_opaque(v, path, ctx):
    return _wvalue(v)  # f3; f2/bare copy the source span (see _typed)


_TS_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})"
                    r"(?:\.([0-9]+))?(?:([Zz])|([-+])([0-9]{2}):([0-9]{2}))")
_EPOCH = '"1970-01-01T00:00:00Z"'


def _t_created_at(v, path, ctx):
    if type(v) is not str:
        _bad(path, "expected an RFC 3339 timestamp string, found %s" % _kind(v))
    m = _TS_RE.fullmatch(v)
    if m is None:
        _bad(path, "not an RFC 3339 timestamp: %s" % _wstr(v))
    y, mo, d, hh, mi, ss = (int(x) for x in m.group(1, 2, 3, 4, 5, 6))
    try:
        if hh > 23 or mi > 59 or ss > 59:
            raise ValueError
        dt = datetime(y, mo, d, hh, mi, ss)
        if m.group(9):
            oh, om = int(m.group(10)), int(m.group(11))
            if oh > 23 or om > 59:
                raise ValueError
            off = timedelta(hours=oh, minutes=om)
            dt = dt - off if m.group(9) == "+" else dt + off
    except (ValueError, OverflowError):
        _bad(path, "invalid date/time or outside years 0001-9999 UTC: %s" % _wstr(v))
    if ctx.erase:
        return _EPOCH
    nanos = int((m.group(7) or "0")[:9].ljust(9, "0"))
    if nanos == 0:
        frac = ""
    elif nanos % 1000000 == 0:
        frac = ".%03d" % (nanos // 1000000)
    elif nanos % 1000 == 0:
        frac = ".%06d" % (nanos // 1000)
    else:
        frac = ".%09d" % nanos
    return '"%04d-%02d-%02dT%02d:%02d:%02d%sZ"' % (
        dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, frac)


# Field modes: REQ required; OPT Option (absent/null -> omitted); DEF default when
# absent, null is an error; VEC list omitted when absent/empty; TS created_at;
# NUL Option<Value> keeping a present null.
REQ, OPT, DEF, VEC, TS, NUL = range(6)


def _need_obj(obj, path, what="an object"):
    if type(obj) is not _Obj:
        _bad(path, "expected %s, found %s" % (what, _kind(obj)))


def _typed(obj, path, ctx, fields, tag=None, known=()):
    """Typed struct: ``tag`` = (key, value) first, then ``fields`` =
    [(key, writer, mode, default)] in declaration order (key None = a
    prewritten piece), then unknown keys in input order."""
    _need_obj(obj, path)
    known = set(known)
    parts = []
    if tag:
        known.add(tag[0])
        parts.append(_wstr(tag[0]) + ":" + _wstr(tag[1]))
    for key, fn, mode, default in fields:
        if key is None:
            parts.append(fn)
            continue
        known.add(key)
        if key in obj:
            v = obj[key]
            if v is None and mode == OPT:
                continue
            p = path + "." + key
            if mode == VEC:
                if type(v) is not list:
                    _bad(p, "expected an array, found %s" % _kind(v))
                if not v:
                    continue
            if fn is _t_opaque and not ctx.sort_opaque:
                a, b = obj.spans[key]
                s = ctx.text[a:b]
            else:
                s = fn(v, p, ctx)
        elif mode == REQ:
            _bad(path, "missing field %s" % _wstr(key))
        elif mode == DEF:
            s = fn(default, path + "." + key, ctx)
        elif mode == TS and ctx.erase:
            s = _EPOCH
        else:
            continue
        if s is not None:
            parts.append(_wstr(key) + ":" + s)
    for key, v in obj.items():
        if key not in known:
            parts.append(_wstr(key) + ":" + _winput(v))
    return "{" + ",".join(parts) + "}"


def _passthru(obj, path, ctx, fields):
    """Pass-through struct: validated like ``_typed`` but written as parsed,
    keys in INPUT order, no defaults added; a present null of an OPT/NUL
    field is written ``null``. Known keys use their writer."""
    _need_obj(obj, path)
    spec = {}
    for key, fn, mode, default in fields:
        spec[key] = (fn, mode)
        if mode == REQ and key not in obj:
            _bad(path, "missing field %s" % _wstr(key))
    parts = []
    for key, v in obj.items():
        if key in spec:
            fn, mode = spec[key]
            p = path + "." + key
            if v is None and mode in (OPT, NUL):
                s = "null"
            elif mode == VEC and type(v) is not list:
                _bad(p, "expected an array, found %s" % _kind(v))
            else:
                s = fn(v, p, ctx)
        else:
            s = _winput(v)
        parts.append(_wstr(key) + ":" + s)
    return "{" + ",".join(parts) + "}"


def _sub(fields):
    return lambda v, path, ctx: _typed(v, path, ctx, fields)


def _pass(fields):
    return lambda v, path, ctx: _passthru(v, path, ctx, fields)


def _list_of(item):
    def write(v, path, ctx):
        if type(v) is not list:
            _bad(path, "expected an array, found %s" % _kind(v))
        return "[" + ",".join(item(x, "%s[%d]" % (path, i), ctx) for i, x in enumerate(v)) + "]"
    return write


def _tag(obj, path, key, variants, what):
    _need_obj(obj, path, "%s object" % what)
    if key not in obj:
        _bad(path, "missing %s tag %s" % (what, _wstr(key)))
    t = obj[key]
    if type(t) is not str or t not in variants:
        _bad(path + "." + key, "unknown %s %s" % (what, _wstr(t) if type(t) is str else _kind(t)))
    return t


_S, _B, _V = _t_str, _t_bool, _t_value

# ContentBlock, tag "type" (typed, tag first; image/video sources flattened)
_IMAGE_SOURCES = {"inline": [("data", _S, REQ, None)], "blob": [("blob_id", _S, REQ, None)]}
_VIDEO_SOURCES = {"inline": [("data", _S, REQ, None)], "uri": [("uri", _S, REQ, None)]}
_CONTENT_BLOCKS = {
    "text": [("text", _S, REQ, None)],
    "structured": [("data", _t_opaque, REQ, None)],
    "skill_context": [("skill_key", _sub([("source_uuid", _S, REQ, None), ("skill_name", _S, REQ, None)]), REQ, None),
                      ("text", _S, REQ, None)],
    "image": [("media_type", _S, REQ, None)],
    "video": [("media_type", _S, REQ, None), ("duration_ms", _t_uint(64), REQ, None)],
}
_RUST_WS = ("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
            "\u2028\u2029\u202f\u205f\u3000")  # char::is_whitespace (Unicode White_Space)
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def content_blob_id(media_type: str, data: str) -> str:
    """meerkat ``blob::content_blob_id``: SHA-256 of canonical media type, NUL, base64 text."""
    m = media_type.split(";", 1)[0].strip(_RUST_WS).translate(_ASCII_LOWER)
    return "sha256:" + hashlib.sha256(m.encode("utf-8") + b"\x00" + data.encode("utf-8")).hexdigest()


def _content_block(v, path, ctx):
    tag = _tag(v, path, "type", _CONTENT_BLOCKS, "content block type")
    fields = _CONTENT_BLOCKS[tag]
    if tag != "image" and tag != "video":
        return _typed(v, path, ctx, fields, ("type", tag))
    sources = _IMAGE_SOURCES if tag == "image" else _VIDEO_SOURCES
    src = _tag(v, path, "source", sources, "%s source" % tag)
    out = _typed(v, path, ctx, fields + [(None, '"source":' + _wstr(src), 0, None)] + sources[src],
                 ("type", tag), ("source",))
    if tag == "image" and src == "inline" and ctx.collapse:  # FORMAT.md §1.4 step 1
        return '{"type":"image","media_type":%s,"source":"blob","blob_id":"%s"}' % (
            _wstr(v["media_type"]), content_blob_id(v["media_type"], v["data"]))
    return out


def _content(v, path, ctx):
    """content_blocks_serde: a string is one text block; exactly one text
    block (without unknown keys) is written as a string."""
    if type(v) is str:
        return _wstr(v)
    if type(v) is not list:
        _bad(path, "expected a string or an array of content blocks, found %s" % _kind(v))
    parts = [_content_block(x, "%s[%d]" % (path, i), ctx) for i, x in enumerate(v)]
    if len(v) == 1 and v[0].get("type") == "text" and len(v[0]) == 2:
        return _wstr(v[0]["text"])
    return "[" + ",".join(parts) + "]"


# ProviderMeta, tag "provider" (pass-through: the vectors keep input order)
_META = {
    "anthropic": [("signature", _S, REQ, None)],
    "anthropic_redacted": [("data", _S, REQ, None)],
    "anthropic_compaction": [("content", _S, REQ, None)],
    "gemini": [("thoughtSignature", _S, REQ, None)],
    "open_ai": [("id", _S, REQ, None), ("encrypted_content", _S, OPT, None), ("phase", _S, OPT, None),
                ("response_id", _S, OPT, None)],
    "open_ai_response": [("response_id", _S, REQ, None)],
}


def _meta(v, path, ctx):
    tag = _tag(v, path, "provider", _META, "provider meta")
    return _passthru(v, path, ctx, _META[tag] + [("provider", _S, REQ, None)])


_TOOL_KINDS = {"web_search": [], "google_search": [], "provider_native": [("name", _S, REQ, None)]}


def _server_tool_kind(v, path, ctx):
    if type(v) is str:  # legacy provider name (deserialize_server_tool_kind)
        if v in ("web_search", "google_search"):
            return '{"kind":"%s"}' % v
        return '{"kind":"provider_native","name":%s}' % _wstr(v)
    tag = _tag(v, path, "kind", _TOOL_KINDS, "server tool kind")
    return _typed(v, path, ctx, _TOOL_KINDS[tag], ("kind", tag))


_ASSISTANT_BLOCKS = {
    "text": [("text", _S, REQ, None), ("meta", _meta, OPT, None)],
    "transcript": [("text", _S, REQ, None), ("source", _t_enum("spoken"), REQ, None), ("meta", _meta, OPT, None)],
    "reasoning": [("text", _S, DEF, ""), ("meta", _meta, OPT, None)],
    "tool_use": [("id", _S, REQ, None), ("name", _S, REQ, None), ("args", _t_opaque, REQ, None),
                 ("meta", _meta, OPT, None)],
    "server_tool_content": [("id", _S, OPT, None), ("kind", _server_tool_kind, REQ, None),
                            ("content", _V, REQ, None), ("meta", _meta, OPT, None)],
    "image": [("image_id", _S, REQ, None),
              ("blob_ref", _sub([("blob_id", _S, REQ, None), ("media_type", _S, REQ, None)]), REQ, None),
              ("media_type", _S, REQ, None), ("width", _t_uint(32), REQ, None), ("height", _t_uint(32), REQ, None),
              ("revised_prompt", _pass([]), REQ, None), ("meta", _pass([]), REQ, None)],
}


def _assistant_block(v, path, ctx):
    tag = _tag(v, path, "block_type", _ASSISTANT_BLOCKS, "assistant block_type")
    if "data" not in v:
        _bad(path, "missing field \"data\"")
    data = v["data"]
    if tag == "server_tool_content" and type(data) is _Obj and "name" in data:
        if "kind" in data:
            _bad(path + ".data", "duplicate field \"kind\" (\"name\" is its alias)")
        data = _Obj(("kind" if k == "name" else k, x) for k, x in data.items())
        data.spans = {}
    body = _typed(data, path + ".data", ctx, _ASSISTANT_BLOCKS[tag])
    return _typed(v, path, ctx, [(None, '"data":' + body, 0, None)], ("block_type", tag), ("data",))


# SystemNoticeBlock, tag "type" (pass-through in input order, as the vectors
# decide; ``payload`` is a sorted Value, ``content`` typed content blocks)
_PAYLOAD = ("payload", _V, NUL, None)
_NOTICE_CONTENT = ("content", _list_of(_content_block), VEC, None)
_NOTICE_BLOCKS = {
    "comms": [("kind", _S, REQ, None), ("direction", _t_enum("incoming", "outgoing", "internal"), REQ, None),
              ("peer", _pass([("id", _S, REQ, None), ("display_name", _S, OPT, None)]), OPT, None),
              ("sender_taint", _S, OPT, None), ("request_id", _S, OPT, None), ("intent", _S, OPT, None),
              ("status", _S, OPT, None), ("summary", _S, OPT, None), _PAYLOAD, _NOTICE_CONTENT],
    "external_event": [("source", _S, REQ, None), ("event_type", _S, REQ, None), ("summary", _S, OPT, None),
                       ("body", _S, OPT, None), _PAYLOAD, _NOTICE_CONTENT],
    "tool_config": [("payload", _V, REQ, None)],
    "mcp": [("server_id", _S, OPT, None), ("operation", _S, OPT, None), ("phase", _S, OPT, None),
            ("persisted", _B, DEF, False), ("detail", _S, OPT, None), ("pending_sources", _list_of(_S), VEC, None)],
    "background_job": [("job_id", _S, REQ, None), ("display_name", _S, OPT, None), ("status", _S, REQ, None),
                       ("detail", _S, OPT, None)],
    "auth": [("state", _S, REQ, None), ("binding", _S, OPT, None), ("detail", _S, OPT, None)],
    "runtime_notice": [("category", _S, REQ, None), ("detail", _S, OPT, None), _PAYLOAD],
    "unknown": [("summary", _S, OPT, None), _PAYLOAD],
}


def _notice_block(v, path, ctx):
    _need_obj(v, path, "a notice block object")
    tag = v.get("type")
    if type(tag) is not str:
        _bad(path, "missing system notice block type")
    if tag in _NOTICE_BLOCKS:
        return _passthru(v, path, ctx, _NOTICE_BLOCKS[tag] + [("type", _S, REQ, None)])
    summary = None  # SystemNoticeBlock::unknown_from_value
    for k in ("summary", "body", "detail"):
        if k in v:
            summary = v[k] if type(v[k]) is str else None
            break
    return '{"type":"unknown",%s"payload":%s}' % (
        "" if summary is None else '"summary":%s,' % _wstr(summary), _wvalue(v))


_IDENTITY = _pass([("interaction_id", _S, OPT, None), ("run_id", _S, OPT, None), ("objective_id", _S, OPT, None)])


_ABSENT = object()


def _transcript_identity(v, path, ctx):
    if v is _ABSENT:  # a non-Option struct: absent is fine, null is not
        return None
    s = _IDENTITY(v, path, ctx)
    return None if ctx.erase else s  # FORMAT.md §1.4 step 3


def _transcript_role(v, path, ctx):
    s = _t_enum("conversational", "compaction_summary", "injected_context")(v, path, ctx)
    return None if v == "conversational" else s


def _mutation_kind(v, path, ctx):
    """0.7.x-0.8.10 SystemMessage field (gone at HEAD); real 0.7.28 f2 heads
    hash it here, between content and created_at; omitted when unspecified."""
    s = _t_enum("unspecified", "direct_mutation", "explicit_build", "default_build", "wasm_default_build",
                "runtime_context_append", "runtime_steer_cleanup")(v, path, ctx)
    return None if v == "unspecified" else s


_CREATED_AT = ("created_at", _t_created_at, TS, None)
_MESSAGES = {
    "system": [("content", _S, REQ, None), ("mutation_kind", _mutation_kind, DEF, "unspecified"), _CREATED_AT,
               ("identity", _pass([("source", _S, OPT, None), ("idempotency_key", _S, OPT, None)]), OPT, None),
               ("prompt_version", _pass([("key", _S, REQ, None), ("version", _t_uint(64, 1), REQ, None)]), OPT, None)],
    "system_notice": [("kind", _t_enum("generic", "comms", "external_event", "mcp_pending", "mcp", "background_job",
                                       "tool_scope", "tool_scope_warning", "auth_reauth_required"), REQ, None),
                      ("body", _S, OPT, None), ("blocks", _list_of(_notice_block), VEC, None), _CREATED_AT],
    "user": [("content", _content, REQ, None),
             ("render_metadata", _pass([("class", _S, REQ, None),  # any string: the vectors use "x"
                                        ("salience", _t_enum("background", "normal", "important", "urgent"),
                                         DEF, None)]), OPT, None),
             ("identity", _transcript_identity, DEF, _ABSENT), ("transcript_role", _transcript_role, DEF, "conversational"),
             _CREATED_AT],
    "block_assistant": [("blocks", _list_of(_assistant_block), REQ, None),
                        ("stop_reason", _t_enum("end_turn", "tool_use", "max_tokens", "stop_sequence",
                                                "content_filter", "cancelled"), REQ, None),
                        ("identity", _transcript_identity, DEF, _ABSENT), _CREATED_AT],
    "tool_results": [("results", _list_of(_sub([("tool_use_id", _S, REQ, None), ("content", _content, REQ, None),
                                                ("is_error", _B, DEF, False)])), REQ, None),
                     _CREATED_AT],
}


def _message(v, ctx) -> str:
    _need_obj(v, "$", "a message object")
    if "role" not in v:
        _bad("$", "missing field \"role\"")
    role = v["role"]
    if type(role) is not str or role not in _MESSAGES:
        _bad("$.role", "unknown role %s (expected one of %s)"
             % (_wstr(role) if type(role) is str else _kind(role), ", ".join(_MESSAGES)))
    return _typed(v, "$", ctx, _MESSAGES[role], ("role", role))


# --------------------------------------------------------------------------
# Public API


def _check_profile(profile) -> None:
    if profile not in PROFILES:
        raise InvalidInputError("unknown digest profile %r (expected one of %s)" % (profile, ", ".join(PROFILES)))


def canonical_message(data: bytes, profile: str = "f3") -> bytes:
    """Canonical bytes of ONE meerkat message (UTF-8 JSON text) under ``profile``."""
    _check_profile(profile)
    value, text = _loads(data)
    return _message(value, _Ctx(text, profile)).encode("utf-8")


def transcript_digest(messages: list, profile: str = "f3") -> str:
    """SHA-256 over ``[`` + canonical messages joined by ``,`` + ``]``."""
    _check_profile(profile)
    h = hashlib.sha256(b"[")
    for i, m in enumerate(messages):
        if i:
            h.update(b",")
        try:
            h.update(canonical_message(m, profile))
        except InvalidInputError as exc:
            raise InvalidInputError("message %d: %s" % (i, exc)) from None
    h.update(b"]")
    return h.hexdigest() if profile == "bare" else "sha256:" + h.hexdigest()
