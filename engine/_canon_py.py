"""Pure-Python reference of mobstore's canonical message form and digests.

This docstring is the byte-level spec; ``_native/`` implements the same
rules and is differential-fuzzed against this module. Sources: FORMAT.md
(§1 shapes, §1.4 canonicalisation, §2 digests, §2.3 serde_json bytes) and
meerkat HEAD ``meerkat-core/src/types.rs``. Every failure raises
``InvalidInputError`` whose message names the rule and a location: a
JSON path (``$.results[0].content``) and/or ``byte N`` of the input.

1. Parser (serde_json ``from_slice`` plus mobstore's stricter rules)
   * Input is bytes, decoded as strict UTF-8: overlong forms, truncated
     sequences, UTF-8-encoded surrogates, > U+10FFFF -> error. A BOM is
     not whitespace -> error.
   * RFC 8259 grammar. Whitespace is exactly SP, HT, LF, CR. One value,
     then only whitespace. Literals ``true false null``; ``NaN``,
     ``Infinity``, ``-Infinity`` -> error.
   * Strings: raw U+0000..U+001F -> error; escapes ``\\" \\\\ \\/ \\b \\f
     \\n \\r \\t \\uXXXX`` (hex any case); a ``\\u`` high surrogate must be
     followed directly by a ``\\u`` low surrogate; any unpaired surrogate
     escape -> error.
   * Objects: duplicate keys (after unescaping) in ANY object -> error
     (serde ``Value`` would keep the last; mobstore refuses).
   * Depth: serde_json's counter starts at MAX_DEPTH = 128 and fails when
     it reaches 0, so a container nested inside 127 open containers is
     rejected: at most 127 levels nest (top-level object = level 1).
   * Numbers (grammar ``-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?``,
     anything else such as ``01``, ``1.``, ``.5``, ``+1``, ``1e`` -> error):
     - no ``.``/``e``/``E``: u64 if non-negative and <= 2^64-1; i64 if
       negative with magnitude <= 2^63 and != 0; ``-0`` -> f64 -0.0;
       a negative magnitude in (2^63, 2^64) -> f64 of the nearest double;
     - otherwise serde_json's default (not correctly rounded) parser,
       see ``parse_float_serde``: significand accumulated in a u64;
       a digit that would overflow it ends accumulation: further
       integer-part digits each add 1 to the decimal exponent, further
       fraction digits are dropped; exponent digits overflowing i32 give
       0.0/-0.0 if the significand is 0 or the exponent negative, else
       error; exponent = adjusted (i32, saturating); f = (double)sig, then
       f *= 10^e or f /= 10^-e with one table value 1e0..1e308; below
       -308 divide by 1e308 and add 308 until in range (stop early at
       0.0); a positive exponent beyond 308 with f != 0, or an infinite
       product -> error "number out of range". Sign applied last.
2. Typed model (meerkat HEAD, FORMAT.md §1.2). The tag key is written
   first, then the known fields in declaration order, then UNKNOWN keys in
   input order (mobstore keeps them; meerkat would drop them), each
   unknown value written as a serde ``Value`` (rule 4). ``?`` = omitted
   when absent or ``null``; ``=d`` = default when absent (``null`` is an
   error), always written; ``*`` = list, omitted when absent or empty
   (``null`` is an error); others required, ``null`` is an error.
   Strings must be JSON strings; ``u64``/``u32``: JSON integers in range
   (``1.0`` is not an integer); ``bool``: true/false.
   * role ``system``: content str, created_at, identity? {source? str,
     idempotency_key? str}, prompt_version? {key str, version u64 >= 1}.
   * ``system_notice``: kind (generic comms external_event mcp_pending mcp
     background_job tool_scope tool_scope_warning auth_reauth_required),
     body? str, blocks* [notice block], created_at.
   * ``user``: content (codec), render_metadata? {class (user_prompt
     peer_message peer_request peer_response external_event flow_step
     continuation system_notice tool_scope_notice ops_progress),
     salience=normal (background normal important urgent)},
     identity? {interaction_id? str, run_id? str, objective_id? str}
     (omitted when it would be ``{}``), transcript_role=conversational
     (conversational compaction_summary injected_context; omitted when
     conversational), created_at.
   * ``block_assistant``: blocks [assistant block], stop_reason (end_turn
     tool_use max_tokens stop_sequence content_filter cancelled),
     identity? (as user), created_at.
   * ``tool_results``: results [{tool_use_id str, content (codec),
     is_error=false bool}], created_at.
   * Any other role, a missing/non-string role, a non-object message ->
     error (the legacy seed ``assistant`` role is not accepted).
   * created_at: string ``YYYY-MM-DD(T|t| )hh:mm:ss(.f+)?(Z|z|+hh:mm|-hh:mm)``
     (years 0001-9999 after conversion to UTC, seconds <= 59, fraction
     digits beyond 9 truncated, as chrono). Written (bare) in UTC as
     chrono does: ``Z`` and 0, 3, 6 or 9 fraction digits (the fewest of
     these that are exact). Absent: written as the epoch in f3/f2, omitted
     in bare (seed-era rows had no created_at; meerkat would use "now").
   * Content codec: a JSON string s means ``[text s]``; an array holds
     content blocks. Written as a plain string iff it is exactly one text
     block without unknown keys, else as an array (``[]`` stays ``[]``).
   * Content block, tag ``type``: text {text}; image {media_type, source:
     inline {data} | blob {blob_id}} (flattened; keys written type,
     media_type, source, data|blob_id); video {media_type, duration_ms
     u64, source: inline {data} | uri {uri}}; structured {data OPAQUE};
     skill_context {skill_key {source_uuid, skill_name}, text}. Other
     types -> error.
   * Assistant block: ``{"block_type": T, "data": {...}}`` (adjacent
     tagging; both required; unknown keys of the outer object kept after
     ``data``). text {text, meta?}; transcript {text, source (spoken),
     meta?}; reasoning {text="" , meta?}; tool_use {id, name, args
     OPAQUE, meta?}; server_tool_content {id?, kind, content Value, meta?}
     where kind (key ``kind`` or its alias ``name``; both -> error) is
     ``{"kind": web_search|google_search}`` or ``{"kind":
     "provider_native", "name": str}``, or a legacy string (web_search,
     google_search, else provider_native with that name), always written
     as the object; image {image_id str, blob_ref {blob_id, media_type},
     media_type str, width u32, height u32, revised_prompt Value, meta
     Value}. meta = tag ``provider``: anthropic {signature}; anthropic_
     redacted {data}; anthropic_compaction {content}; gemini
     {thoughtSignature}; open_ai {id, encrypted_content?, phase?,
     response_id?}; open_ai_response {response_id}.
   * Notice block, tag ``type`` (must be a string): comms {kind str,
     direction (incoming outgoing internal), peer? {id str, display_name?},
     sender_taint? str, request_id?, intent?, status?, summary?,
     payload?! Value, content* [content block]}; external_event {source,
     event_type, summary?, body?, payload?!, content*}; tool_config
     {payload Value}; mcp {server_id?, operation? str, phase? str,
     persisted=false bool, detail?, pending_sources* [str]};
     background_job {job_id, display_name?, status str, detail?}; auth
     {state, binding?, detail?}; runtime_notice {category, detail?,
     payload?!}; unknown {summary?, payload?!}. ``payload?!``: absent ->
     omitted, present ``null`` -> written ``null`` (FORMAT.md §1.2).
     Any other type string -> ``{"type":"unknown","summary"?:S,
     "payload":<whole block as Value>}`` where S is the first present of
     summary/body/detail if it is a string.
3. Profiles (per message, then framing ``[`` m0 ``,`` m1 ... ``]``):
   * ``f3``: (a) every ``image`` content block with source ``inline`` (in
     user content, tool-result content, comms/external_event notice
     content) becomes exactly ``{"type":"image","media_type":<as
     written>,"source":"blob","blob_id":B}`` (its unknown keys dropped),
     B = ``sha256:`` + hex(SHA-256(M 0x00 data)), M = media_type cut at
     the first ``;``, trimmed of Unicode White_Space, ASCII-lowercased;
     (b) OPAQUE slots written as a ``Value`` (rule 4) of the parsed slot;
     (c) created_at written ``"1970-01-01T00:00:00Z"``; identity of user
     and block_assistant omitted (still validated). Digest
     ``sha256:``+hex.
   * ``f2``: (a) and (c); OPAQUE slots written verbatim: the exact source
     text of the slot value (whitespace and spelling included).
   * ``bare``: the typed form only: no image collapse, real created_at,
     identity kept, OPAQUE verbatim. Digest is plain hex.
4. Output bytes (serde_json compact): no whitespace; typed objects in the
   order above; ``Value`` objects (notice payloads, server tool content,
   unknown-key values, f3 opaque slots) with keys sorted by UTF-8 bytes
   (= code point order), recursively. Strings: ``"``->``\\"``,
   ``\\``->``\\\\``, 08 09 0A 0C 0D -> ``\\b \\t \\n \\f \\r``, other
   00-1F -> ``\\u00xx`` lowercase; everything else raw UTF-8 (``/``, 7F,
   U+2028/2029 included). Integers (u64/i64) in decimal. Floats
   (``format_float``): shortest round-trip digits d1..dn, decimal
   exponent E; -5 <= E <= 15: fixed (``1.0``, ``0.00001``,
   ``1000000000000000.0``), else ``d1[.d2..dn]e[+-]E`` (``1e+16``,
   ``1e-6``, ``5e-324``); zero as ``0.0``/``-0.0``.

Sha256 state export: ``b"MSS1"`` + H0..H7 big-endian u32 + total bytes
absorbed as big-endian u64 + the unabsorbed tail (total % 64 bytes).
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
from datetime import datetime, timedelta

from .errors import InvalidInputError

MAX_DEPTH = 128
PROFILES = ("f3", "f2", "bare")

__all__ = [
    "MAX_DEPTH", "PROFILES", "Sha256", "canonical_message", "dumps_value",
    "format_float", "parse_float_serde", "transcript_digest",
]

# --------------------------------------------------------------------------
# SHA-256 with an exportable midstate (FIPS 180-4)

_K = (
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
    0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
    0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
    0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
    0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
    0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
    0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
)
_IV = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19)
_MAGIC = b"MSS1"
_MAX_TOTAL = 1 << 61  # SHA-256 messages are < 2^64 bits


def _compress(h, block):
    w = list(struct.unpack(">16L", block))
    for t in range(16, 64):
        x, y = w[t - 15], w[t - 2]
        s0 = ((x >> 7 | x << 25) ^ (x >> 18 | x << 14) ^ (x >> 3)) & 0xFFFFFFFF
        s1 = ((y >> 17 | y << 15) ^ (y >> 19 | y << 13) ^ (y >> 10)) & 0xFFFFFFFF
        w.append((w[t - 16] + s0 + w[t - 7] + s1) & 0xFFFFFFFF)
    a, b, c, d, e, f, g, hh = h
    for t in range(64):
        s1 = (e >> 6 | e << 26) ^ (e >> 11 | e << 21) ^ (e >> 25 | e << 7)
        t1 = (hh + (s1 & 0xFFFFFFFF) + ((e & f) ^ (~e & g)) + _K[t] + w[t]) & 0xFFFFFFFF
        s0 = (a >> 2 | a << 30) ^ (a >> 13 | a << 19) ^ (a >> 22 | a << 10)
        t2 = ((s0 & 0xFFFFFFFF) + ((a & b) ^ (a & c) ^ (b & c))) & 0xFFFFFFFF
        hh, g, f, e, d, c, b, a = g, f, e, (d + t1) & 0xFFFFFFFF, c, b, a, (t1 + t2) & 0xFFFFFFFF
    return [(x + y) & 0xFFFFFFFF for x, y in zip(h, (a, b, c, d, e, f, g, hh))]


class Sha256:
    """SHA-256 whose state can be exported and resumed byte-exactly."""

    __slots__ = ("_h", "_total", "_tail")

    def __init__(self, data: bytes = b"") -> None:
        self._h = list(_IV)
        self._total = 0
        self._tail = b""
        if data:
            self.update(data)

    def update(self, data: bytes) -> None:
        data = bytes(data)
        if self._total + len(data) >= _MAX_TOTAL:
            raise InvalidInputError("sha256: message longer than 2^61 bytes")
        self._total += len(data)
        buf = self._tail + data
        end = len(buf) - len(buf) % 64
        h = self._h
        for off in range(0, end, 64):
            h = _compress(h, buf[off:off + 64])
        self._h = h
        self._tail = buf[end:]

    def copy(self) -> "Sha256":
        other = Sha256.__new__(Sha256)
        other._h, other._total, other._tail = list(self._h), self._total, self._tail
        return other

    def digest(self) -> bytes:
        tail = self._tail + b"\x80" + b"\x00" * ((55 - self._total) % 64)
        tail += struct.pack(">Q", self._total * 8)
        h = self._h
        for off in range(0, len(tail), 64):
            h = _compress(h, tail[off:off + 64])
        return struct.pack(">8L", *h)

    def hexdigest(self) -> str:
        return self.digest().hex()

    def export(self) -> bytes:
        return _MAGIC + struct.pack(">8LQ", *self._h, self._total) + self._tail

    @classmethod
    def resume(cls, state: bytes) -> "Sha256":
        if not isinstance(state, (bytes, bytearray, memoryview)):
            raise InvalidInputError("sha256 state: expected bytes")
        state = bytes(state)
        if len(state) < 44 or state[:4] != _MAGIC:
            raise InvalidInputError("sha256 state: bad magic or shorter than 44 bytes")
        *h, total = struct.unpack(">8LQ", state[4:44])
        if total >= _MAX_TOTAL or len(state) != 44 + total % 64:
            raise InvalidInputError(
                "sha256 state: tail length %d does not match total %d" % (len(state) - 44, total))
        obj = cls.__new__(cls)
        obj._h, obj._total, obj._tail = h, total, state[44:]
        return obj


# --------------------------------------------------------------------------
# Numbers: serde_json's default parser and zmij's output format

_U64_MAX = (1 << 64) - 1
_POW10 = tuple(float("1e%d" % i) for i in range(309))
_I32_MIN, _I32_MAX = -(1 << 31), (1 << 31) - 1
_NUM_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


def _f64_from_parts(neg: bool, sig: int, exp: int) -> float:
    f = float(sig)  # u64 -> f64, round half to even, like Rust `as`
    while True:
        a = -exp if exp < 0 else exp
        if a <= 308 and exp != _I32_MIN:
            if exp >= 0:
                f *= _POW10[a]
                if math.isinf(f):
                    raise InvalidInputError("number out of range")
            else:
                f /= _POW10[a]
            break
        if f == 0.0:
            break
        if exp >= 0:
            raise InvalidInputError("number out of range")
        f /= 1e308
        exp += 308
    return -f if neg else f


def _number(tok: str):
    """serde_json ParserNumber of a grammar-checked token: int or float."""
    neg = tok[0] == "-"
    i = 1 if neg else 0
    n = len(tok)
    sig = 0
    exp = 0
    is_int = True
    while i < n and "0" <= tok[i] <= "9":
        d = ord(tok[i]) - 48
        if sig >= 1844674407370955161 and (sig > 1844674407370955161 or d > 5):
            while i < n and "0" <= tok[i] <= "9":  # parse_long_integer
                exp += 1
                i += 1
            is_int = False
            break
        sig = sig * 10 + d
        i += 1
    if i < n and tok[i] == ".":
        is_int = False
        i += 1
        while i < n and "0" <= tok[i] <= "9":
            d = ord(tok[i]) - 48
            if sig >= 1844674407370955161 and (sig > 1844674407370955161 or d > 5):
                while i < n and "0" <= tok[i] <= "9":  # parse_decimal_overflow
                    i += 1
                break
            sig = sig * 10 + d
            exp -= 1
            i += 1
    if i < n and tok[i] in "eE":
        is_int = False
        i += 1
        pos_exp = tok[i] != "-"
        if tok[i] in "+-":
            i += 1
        e = 0
        while i < n:
            d = ord(tok[i]) - 48
            if e >= 214748364 and (e > 214748364 or d > 7):  # parse_exponent_overflow
                if sig != 0 and pos_exp:
                    raise InvalidInputError("number out of range")
                return -0.0 if neg else 0.0
            e = e * 10 + d
            i += 1
        exp = exp + e if pos_exp else exp - e
        exp = max(_I32_MIN, min(_I32_MAX, exp))
    if is_int:
        if not neg:
            return sig
        if sig == 0:
            return -0.0
        return -sig if sig <= 1 << 63 else -float(sig)
    exp = max(_I32_MIN, min(_I32_MAX, exp))
    return _f64_from_parts(neg, sig, exp)


def parse_float_serde(token: str) -> float:
    """serde_json's default f64 of a JSON number token (not correctly rounded)."""
    if not isinstance(token, str) or _NUM_RE.fullmatch(token) is None:
        raise InvalidInputError("invalid JSON number token %r" % (token,))
    return float(_number(token))


def format_float(x: float) -> str:
    """zmij/serde_json text of a finite double."""
    if not isinstance(x, float) or not math.isfinite(x):
        raise InvalidInputError("cannot serialise non-finite float %r" % (x,))
    if x == 0.0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    r = repr(x)
    sign = ""
    if r[0] == "-":
        sign, r = "-", r[1:]
    mant, _, e = r.partition("e")
    ip, _, fp = mant.partition(".")
    digits = (ip + fp).lstrip("0")
    k = (int(e) if e else 0) - len(fp)
    stripped = digits.rstrip("0")
    k += len(digits) - len(stripped)
    digits = stripped
    n = len(digits)
    E = k + n - 1
    if -5 <= E <= 15:
        if E >= n - 1:
            return sign + digits + "0" * (E - n + 1) + ".0"
        if E >= 0:
            return sign + digits[:E + 1] + "." + digits[E + 1:]
        return sign + "0." + "0" * (-E - 1) + digits
    frac = "." + digits[1:] if n > 1 else ""
    return "%s%s%se%s%d" % (sign, digits[0], frac, "+" if E > 0 else "-", abs(E))


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
    """dumps_value: Python JSON value, dicts in insertion order."""
    t = type(v)
    if t is str:
        if _SURROGATE_RE.search(v):
            raise InvalidInputError("string contains a lone surrogate")
        return _wstr(v)
    if v is None:
        return "null"
    if t is bool:
        return "true" if v else "false"
    if t is int:
        if not -(1 << 63) <= v <= _U64_MAX:
            raise InvalidInputError("integer %d does not fit i64 or u64" % v)
        return str(v)
    if t is float:
        return format_float(v)
    if depth + 1 >= MAX_DEPTH:
        raise InvalidInputError("nesting deeper than %d levels" % (MAX_DEPTH - 1))
    if isinstance(v, dict):
        parts = []
        for k, x in v.items():
            if type(k) is not str:
                raise InvalidInputError("object key %r is not a str" % (k,))
            parts.append(_wpy(k, depth) + ":" + _wpy(x, depth + 1))
        return "{" + ",".join(parts) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(_wpy(x, depth + 1) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return _wpy(int(v), depth)
    if isinstance(v, float):
        return format_float(float(v))
    if isinstance(v, str):
        return _wpy(str(v), depth)
    raise InvalidInputError("cannot serialise a %s as JSON" % type(v).__name__)


def dumps_value(obj) -> bytes:
    """Compact serde_json bytes of a Python JSON value (dict insertion order)."""
    return _wpy(obj, 0).encode("utf-8")


# --------------------------------------------------------------------------
# Typed model (FORMAT.md §1.2) and profile steps (§1.4)


class _Ctx:
    __slots__ = ("text", "collapse", "erase", "sort_opaque")

    def __init__(self, text: str, profile: str) -> None:
        self.text = text
        self.collapse = self.erase = profile in ("f3", "f2")
        self.sort_opaque = profile == "f3"


def _bad(path: str, msg: str):
    raise InvalidInputError("%s: %s" % (path, msg))


def _kind(v) -> str:
    if v is None:
        return "null"
    t = type(v)
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
            list: "an array"}.get(t, "an object")


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
    allowed = frozenset(names)

    def check(v, path, ctx):
        if type(v) is not str or v not in allowed:
            _bad(path, "expected one of %s, found %s"
                 % ("|".join(names), _wstr(v) if type(v) is str else _kind(v)))
        return _wstr(v)
    return check


def _t_value(v, path, ctx):
    return _wvalue(v)


def _winput(v) -> str:
    """A parsed value re-encoded compactly with objects in INPUT key order."""
    t = type(v)
    if t is _Obj:
        return "{" + ",".join(_wstr(k) + ":" + _winput(x) for k, x in v.items()) + "}"
    if t is list:
        return "[" + ",".join(_winput(x) for x in v) + "]"
    return _wvalue(v)


def _t_opaque(key):
    def write(v, path, ctx):
        if ctx.sort_opaque:
            return _wvalue(v)
        raise AssertionError  # verbatim slots are written by _struct
    write.opaque_key = key
    return write


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
        _bad(path, "invalid date/time or out of range (years 0001-9999 UTC): %s" % _wstr(v))
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


# Field modes
REQ, OPT, DEF, VEC, TS, NUL = "req", "opt", "def", "vec", "ts", "nul"


def _struct(obj, path, ctx, fields, tag=None, known_extra=()):
    """Write an object of a typed struct: ``tag`` (a prewritten ``"k":v``
    piece) first, then ``fields`` = [(key, writer, mode, default)], then
    unknown keys in input order as Values."""
    if type(obj) is not _Obj:
        _bad(path, "expected an object, found %s" % _kind(obj))
    known = set(known_extra)
    parts = []
    if tag:
        known.add(tag[0])
        parts.append(_wstr(tag[0]) + ":" + _wstr(tag[1]))
    for key, fn, mode, default in fields:
        if key is None:  # a prewritten piece (flattened enum tag)
            parts.append(fn)
            continue
        known.add(key)
        p = path + "." + key
        if key in obj:
            v = obj[key]
            if v is None and mode in (OPT, TS):
                if mode == TS:
                    _bad(p, "expected an RFC 3339 timestamp string, found null")
                continue
            if mode == VEC:
                if type(v) is not list:
                    _bad(p, "expected an array, found %s" % _kind(v))
                if not v:
                    continue
            okey = getattr(fn, "opaque_key", None)
            if okey is not None and not ctx.sort_opaque:
                a, b = obj.spans[key]
                s = ctx.text[a:b]
            else:
                s = fn(v, p, ctx)
        elif mode == REQ:
            _bad(path, "missing field %s" % _wstr(key))
        elif mode == DEF:
            s = fn(default, p, ctx)
        elif mode == TS:
            if not ctx.erase:
                continue
            s = _EPOCH
        else:
            continue
        if s is not None:
            parts.append(_wstr(key) + ":" + s)
    for key, v in obj.items():
        if key not in known:
            parts.append(_wstr(key) + ":" + _wvalue(v))
    return "{" + ",".join(parts) + "}"


def _tagged(obj, path, tagkey, variants, what):
    if type(obj) is not _Obj:
        _bad(path, "expected %s object, found %s" % (what, _kind(obj)))
    tag = obj.get(tagkey)
    if tagkey not in obj:
        _bad(path, "%s without %s" % (what, _wstr(tagkey)))
    if type(tag) is not str or tag not in variants:
        _bad(path + "." + tagkey, "unknown %s %s" % (what, _wstr(tag) if type(tag) is str else _kind(tag)))
    return tag, (tagkey, tag)


def _sub(fields, **kw):
    def write(v, path, ctx):
        return _struct(v, path, ctx, fields, **kw)
    return write


def _list_of(item):
    def write(v, path, ctx):
        if type(v) is not list:
            _bad(path, "expected an array, found %s" % _kind(v))
        return "[" + ",".join(item(x, "%s[%d]" % (path, i), ctx) for i, x in enumerate(v)) + "]"
    return write


_S, _B, _V = _t_str, _t_bool, _t_value

# ContentBlock (types.rs ContentBlock, tag "type")
_IMAGE_SOURCES = {"inline": [("data", _S, REQ, None)], "blob": [("blob_id", _S, REQ, None)]}
_VIDEO_SOURCES = {"inline": [("data", _S, REQ, None)], "uri": [("uri", _S, REQ, None)]}
_CONTENT_BLOCKS = {
    "text": [("text", _S, REQ, None)],
    "structured": [("data", _t_opaque("data"), REQ, None)],
    "skill_context": [("skill_key", _sub([("source_uuid", _S, REQ, None), ("skill_name", _S, REQ, None)]), REQ, None),
                      ("text", _S, REQ, None)],
}
_RUST_WS = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
           "\u2028\u2029\u202f\u205f\u3000"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def content_blob_id(media_type: str, data: str) -> str:
    """meerkat ``blob::content_blob_id``: sha256 over canonical media type, NUL, base64 text."""
    m = media_type.split(";", 1)[0].strip(_RUST_WS).translate(_ASCII_LOWER)
    return "sha256:" + hashlib.sha256(m.encode() + b"\x00" + data.encode()).hexdigest()


def _content_block(v, path, ctx, plain=None):
    tag, tagw = _tagged(v, path, "type", ("text", "image", "video", "structured", "skill_context"),
                        "content block type")
    if tag == "image" or tag == "video":
        sources = _IMAGE_SOURCES if tag == "image" else _VIDEO_SOURCES
        src, srcw = _tagged(v, path, "source", sources, "%s source" % tag)
        fields = [("media_type", _S, REQ, None)]
        if tag == "video":
            fields.append(("duration_ms", _t_uint(64), REQ, None))
        fields.append((None, '"source":' + _wstr(src), None, None))
        out = _struct(v, path, ctx, fields + sources[src], tagw, ("source",))
        if tag == "image" and src == "inline" and ctx.collapse:
            return '{"type":"image","media_type":%s,"source":"blob","blob_id":"%s"}' % (
                _wstr(v["media_type"]), content_blob_id(v["media_type"], v["data"]))
        return out
    out = _struct(v, path, ctx, _CONTENT_BLOCKS[tag], tagw)
    if plain is not None and tag == "text" and len(v) == 2:
        plain.append(v["text"])
    return out


def _unknown_tail(obj, known) -> str:
    extra = [_wstr(k) + ":" + _wvalue(x) for k, x in obj.items() if k not in known]
    return "," + ",".join(extra) if extra else ""


def _content(v, path, ctx):
    """content_blocks_serde: string <-> one text block."""
    if type(v) is str:
        return _wstr(v)
    if type(v) is not list:
        _bad(path, "content must be a string or an array of content blocks, found %s" % _kind(v))
    plain = []
    parts = [_content_block(x, "%s[%d]" % (path, i), ctx, plain) for i, x in enumerate(v)]
    if len(v) == 1 and plain:
        return _wstr(plain[0])
    return "[" + ",".join(parts) + "]"


def _notice_content(v, path, ctx):
    return _list_of(_content_block)(v, path, ctx)


# ProviderMeta (tag "provider")
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
    tag, tagw = _tagged(v, path, "provider", _META, "provider meta")
    return _struct(v, path, ctx, _META[tag], tagw)


def _server_tool_kind(v, path, ctx):
    if type(v) is str:  # legacy provider name
        if v in ("web_search", "google_search"):
            return '{"kind":"%s"}' % v
        return '{"kind":"provider_native","name":%s}' % _wstr(v)
    kinds = {"web_search": [], "google_search": [], "provider_native": [("name", _S, REQ, None)]}
    tag, tagw = _tagged(v, path, "kind", kinds, "server tool kind")
    return _struct(v, path, ctx, kinds[tag], tagw)


_ASSISTANT_BLOCKS = {
    "text": [("text", _S, REQ, None), ("meta", _meta, OPT, None)],
    "transcript": [("text", _S, REQ, None), ("source", _t_enum("spoken"), REQ, None), ("meta", _meta, OPT, None)],
    "reasoning": [("text", _S, DEF, ""), ("meta", _meta, OPT, None)],
    "tool_use": [("id", _S, REQ, None), ("name", _S, REQ, None), ("args", _t_opaque("args"), REQ, None),
                 ("meta", _meta, OPT, None)],
    "server_tool_content": [("id", _S, OPT, None), ("kind", _server_tool_kind, REQ, None),
                            ("content", _V, REQ, None), ("meta", _meta, OPT, None)],
    "image": [("image_id", _S, REQ, None),
              ("blob_ref", _sub([("blob_id", _S, REQ, None), ("media_type", _S, REQ, None)]), REQ, None),
              ("media_type", _S, REQ, None), ("width", _t_uint(32), REQ, None), ("height", _t_uint(32), REQ, None),
              ("revised_prompt", _V, REQ, None), ("meta", _V, REQ, None)],
}


def _assistant_block(v, path, ctx):
    tag, tagw = _tagged(v, path, "block_type", _ASSISTANT_BLOCKS, "assistant block_type")
    if "data" not in v:
        _bad(path, "missing field \"data\"")
    data = v["data"]
    if tag == "server_tool_content" and type(data) is _Obj and "name" in data:
        if "kind" in data:
            _bad(path + ".data", "duplicate field \"kind\" (\"name\" is its alias)")
        items = [("kind" if k == "name" else k, x) for k, x in data.items()]
        data = _Obj(items)
        data.spans = {}
    body = _struct(data, path + ".data", ctx, _ASSISTANT_BLOCKS[tag])
    return '{"block_type":' + _wstr(tag) + ',"data":' + body + _unknown_tail(v, ("block_type", "data")) + "}"


# SystemNoticeBlock (tag "type"); NUL = Option<Value> that keeps a present null
_NOTICE_BLOCKS = {
    "comms": [("kind", _S, REQ, None), ("direction", _t_enum("incoming", "outgoing", "internal"), REQ, None),
              ("peer", _sub([("id", _S, REQ, None), ("display_name", _S, OPT, None)]), OPT, None),
              ("sender_taint", _S, OPT, None), ("request_id", _S, OPT, None), ("intent", _S, OPT, None),
              ("status", _S, OPT, None), ("summary", _S, OPT, None), ("payload", _V, NUL, None),
              ("content", _notice_content, VEC, None)],
    "external_event": [("source", _S, REQ, None), ("event_type", _S, REQ, None), ("summary", _S, OPT, None),
                       ("body", _S, OPT, None), ("payload", _V, NUL, None), ("content", _notice_content, VEC, None)],
    "tool_config": [("payload", _V, REQ, None)],
    "mcp": [("server_id", _S, OPT, None), ("operation", _S, OPT, None), ("phase", _S, OPT, None),
            ("persisted", _B, DEF, False), ("detail", _S, OPT, None), ("pending_sources", _list_of(_S), VEC, None)],
    "background_job": [("job_id", _S, REQ, None), ("display_name", _S, OPT, None), ("status", _S, REQ, None),
                       ("detail", _S, OPT, None)],
    "auth": [("state", _S, REQ, None), ("binding", _S, OPT, None), ("detail", _S, OPT, None)],
    "runtime_notice": [("category", _S, REQ, None), ("detail", _S, OPT, None), ("payload", _V, NUL, None)],
    "unknown": [("summary", _S, OPT, None), ("payload", _V, NUL, None)],
}


def _notice_block(v, path, ctx):
    if type(v) is not _Obj:
        _bad(path, "expected a notice block object, found %s" % _kind(v))
    tag = v.get("type")
    if type(tag) is not str:
        _bad(path, "missing system notice block type")
    if tag in _NOTICE_BLOCKS:
        return _struct(v, path, ctx, _NOTICE_BLOCKS[tag], ("type", tag))
    summary = None  # SystemNoticeBlock::unknown_from_value
    for k in ("summary", "body", "detail"):
        if k in v:
            summary = v[k] if type(v[k]) is str else None
            break
    return '{"type":"unknown",%s"payload":%s}' % (
        "" if summary is None else '"summary":%s,' % _wstr(summary), _wvalue(v))


_EMPTY = _Obj()
_EMPTY.spans = {}
_IDENTITY = _sub([("interaction_id", _S, OPT, None), ("run_id", _S, OPT, None), ("objective_id", _S, OPT, None)])


def _transcript_identity(v, path, ctx):
    s = _IDENTITY(v, path, ctx)
    return None if ctx.erase or s == "{}" else s


def _transcript_role(v, path, ctx):
    s = _t_enum("conversational", "compaction_summary", "injected_context")(v, path, ctx)
    return None if v == "conversational" else s


_MESSAGES = {
    "system": [("content", _S, REQ, None), ("created_at", _t_created_at, TS, None),
               ("identity", _sub([("source", _S, OPT, None), ("idempotency_key", _S, OPT, None)]), OPT, None),
               ("prompt_version", _sub([("key", _S, REQ, None), ("version", _t_uint(64, 1), REQ, None)]), OPT, None)],
    "system_notice": [("kind", _t_enum("generic", "comms", "external_event", "mcp_pending", "mcp", "background_job",
                                       "tool_scope", "tool_scope_warning", "auth_reauth_required"), REQ, None),
                      ("body", _S, OPT, None), ("blocks", _list_of(_notice_block), VEC, None),
                      ("created_at", _t_created_at, TS, None)],
    "user": [("content", _content, REQ, None),
             ("render_metadata", _sub([("class", _S, REQ, None),  # any string: the shared vectors use "x"
                 ("salience", _t_enum("background", "normal", "important", "urgent"), DEF, "normal")]), OPT, None),
             ("identity", _transcript_identity, DEF, _EMPTY), ("transcript_role", _transcript_role, DEF, "conversational"),
             ("created_at", _t_created_at, TS, None)],
    "block_assistant": [("blocks", _list_of(_assistant_block), REQ, None),
                        ("stop_reason", _t_enum("end_turn", "tool_use", "max_tokens", "stop_sequence",
                                                "content_filter", "cancelled"), REQ, None),
                        ("identity", _transcript_identity, DEF, _EMPTY), ("created_at", _t_created_at, TS, None)],
    "tool_results": [("results", _list_of(_sub([("tool_use_id", _S, REQ, None), ("content", _content, REQ, None),
                                                ("is_error", _B, DEF, False)])), REQ, None),
                     ("created_at", _t_created_at, TS, None)],
}


def _message(v, ctx) -> str:
    if type(v) is not _Obj:
        _bad("$", "a message must be a JSON object, found %s" % _kind(v))
    if "role" not in v:
        _bad("$", "missing field \"role\"")
    role = v["role"]
    if type(role) is not str or role not in _MESSAGES:
        _bad("$.role", "unknown role %s (expected one of %s)"
             % (_wstr(role) if type(role) is str else _kind(role), ", ".join(_MESSAGES)))
    return _struct(v, "$", ctx, _MESSAGES[role], ("role", role))


# --------------------------------------------------------------------------
# Public API


def canonical_message(data: bytes, profile: str = "f3") -> bytes:
    """Canonical bytes of ONE meerkat message (JSON text) under ``profile``."""
    if profile not in PROFILES:
        raise InvalidInputError("unknown digest profile %r (expected one of %s)" % (profile, ", ".join(PROFILES)))
    value, text = _loads(data)
    return _message(value, _Ctx(text, profile)).encode("utf-8")


def transcript_digest(messages: list, profile: str = "f3") -> str:
    """SHA-256 over ``[`` + canonical messages joined by ``,`` + ``]``."""
    if profile not in PROFILES:
        raise InvalidInputError("unknown digest profile %r (expected one of %s)" % (profile, ", ".join(PROFILES)))
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
