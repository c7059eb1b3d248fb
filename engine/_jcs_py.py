r"""Pure-Python reference of the ``jcs`` digest profile: RFC 8785 (JSON
Canonicalization Scheme) for any JSON object.

This docstring is the byte-level spec; ``_native/jcs.c`` and
``_native/jcs_number.c`` implement the same rules and are differential-tested
against this module: same bytes, or an ``InvalidInputError`` with the same
message (docs/profiles.md describes the profile for users).

INPUT: one message as UTF-8 JSON bytes, fewer than 2**31 - 1 of them.

1. UTF-8 (checked over the whole input before anything else): strict;
   overlong forms, surrogate code points (ED A0..BF), > U+10FFFF and
   truncated sequences -> ``invalid UTF-8 at byte N``, N = the first byte of
   the first bad sequence.
2. Grammar (RFC 8259). Whitespace = SP HT LF CR. After leading whitespace
   the first character must be ``{`` (``message is not a JSON object``;
   end of input -> ``unexpected end of input``). One value, then only
   whitespace (``trailing characters``). Literals true/false/null.
   ``NaN``, ``Infinity``, ``-Infinity`` where a value starts -> invalid
   number. Any other character where a value starts -> ``unexpected
   character``. Objects: ``{`` ws (``}`` | member (ws ``,`` ws member)* ws
   ``}``), member = string ws ``:`` ws value; a non-string where a key
   starts (also after a ``,``) -> ``expected a string key``; then
   ``expected ':'``, ``expected ',' or '}'``; arrays: ``expected ',' or
   ']'``. End of input anywhere inside -> ``unexpected end of input`` at N =
   the input length.
3. Strings: raw U+0000..U+001F -> ``control character in string`` (at that
   byte); escapes ``\" \\ \/ \b \f \n \r \t \uXXXX`` (hex any case); any
   other escape or bad hex -> ``invalid escape`` at its backslash; a
   ``\u`` high surrogate must be directly followed by a ``\u`` low one, and
   a low one must follow a high one, else ``invalid escape: lone surrogate
   \udxxx`` (lowercase hex) at the unpaired escape's backslash.
4. Numbers: ``-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?``; a leading
   zero followed by a digit, ``.`` without a digit after it, ``e`` without
   an exponent digit, ``-`` without a digit -> ``invalid number`` at the
   token's first byte. Value: the IEEE 754 double nearest to the exact
   decimal value, ties to even (correct rounding, what ``float()`` does);
   any length of digits, any exponent. A value that rounds to +-infinity
   (|x| >= 2**1024 - 2**970) -> ``number out of range``; one that
   underflows rounds to 0 like any other (``1e-400`` is 0).
5. Objects: member names must be unique after unescaping. Checked when an
   object closes (at its ``}``, so errors inside its members come first):
   the members, sorted as in OUTPUT, with two equal names adjacent ->
   ``duplicate key: "K"`` for the first such pair in that order, at the
   byte where the later of the two names starts. K = the name written as
   an output string; when its UTF-8 is longer than 24 bytes it is cut to
   the longest prefix of whole characters within 24 bytes and ``...``
   follows the closing quote.
6. Depth: at most 127 nested arrays/objects (the top-level object is 1,
   the same limit as the meerkat profiles); the ``[``/``{`` that would be
   the 128th -> ``nesting deeper than 127 levels`` at that byte.

OUTPUT (RFC 8785 section 3.2): no whitespace. null/true/false. Strings:
``"`` -> ``\"``, ``\`` -> ``\\``, U+0008 U+0009 U+000A U+000C U+000D ->
``\b \t \n \f \r``, other U+0000..U+001F -> ``\u00xx`` (lowercase hex);
everything else as raw UTF-8 (``/``, U+007F, U+2028, U+2029 too).
Numbers: ECMAScript Number::toString (ECMA-262 Number::toString, radix 10):
0 and -0 -> ``0``; negative -> ``-`` + the positive form; else with the
shortest digit string s (k digits, closest to the exact value when several
are shortest) and n such that the value is s * 10**(n-k):
k <= n <= 21 -> s then n-k zeros; 0 < n <= 21 -> s[:n] "." s[n:];
-6 < n <= 0 -> "0." (-n zeros) s; otherwise s[0] ("." s[1:] if k > 1)
"e" ("+" if n-1 > 0 else "-") |n-1|. Objects: members sorted by the UTF-16
code units of their names (not UTF-8 bytes: U+E000..U+FFFF sort after the
surrogate pairs of U+10000..), ``{"k":v,...}``. Arrays in order.

Implementation: input the stdlib parser takes and that breaks no rule above is
canonicalised from its parse (``_fast``); anything else goes through this module's
own parser (``_canonical_text``), which applies every rule in order and names the
first broken one. Both give the same bytes (tests/test_jcs.py checks each alone).

Every error message is ``<what> at byte N`` (N: offset into the input bytes),
with a ``<what>`` from the rules above; ``invalid JSON: `` prefixes the
grammar ones (``invalid JSON: expected ':' at byte 7``) except ``trailing
characters``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re

from .errors import InvalidInputError

__all__ = ["MAX_DEPTH", "MAX_MESSAGE_BYTES", "canonical_message", "format_number", "transcript_digest"]

MAX_DEPTH = 127  # nested arrays/objects, the top-level object included
MAX_MESSAGE_BYTES = 2147483647  # a message must be shorter (the native parser keeps 32-bit offsets)
KEY_SHOWN = 24  # bytes of a duplicated name shown in an error (the native error text has 192 bytes)

_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_PLAIN = re.compile(r'[^"\\\x00-\x1f]*')
_WS = re.compile(r"[ \t\n\r]*")
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HEX = frozenset("0123456789abcdefABCDEF")
_DIGITS = frozenset("0123456789")
_encode_str = json.encoder.encode_basestring  # \" \\ \b \f \n \r \t, other < 0x20 as \u00xx: RFC 8785 3.2.2.2


class _Fail(Exception):
    def __init__(self, what: str, pos: int) -> None:
        super().__init__(what)
        self.what = what
        self.pos = pos  # character index into the decoded text


def format_number(x: float) -> str:
    """ECMAScript Number::toString of a finite double (the OUTPUT rule above)."""
    if x == 0:
        return "0"
    if x < 0:
        return "-" + format_number(-x)
    r = repr(x)  # shortest round-trip digits, closest to x among the shortest
    mant, _, exp = r.partition("e")
    ip, _, fp = mant.partition(".")
    raw = ip + fp
    digits = raw.lstrip("0")
    n = len(ip) + (int(exp) if exp else 0) - (len(raw) - len(digits))
    digits = digits.rstrip("0")
    k = len(digits)
    if k <= n <= 21:
        return digits + "0" * (n - k)
    if 0 < n <= 21:
        return digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return "0." + "0" * -n + digits
    e = n - 1
    return digits[0] + ("." + digits[1:] if k > 1 else "") + ("e+" if e > 0 else "e-") + str(abs(e))


def _number(s: str, i: int) -> tuple[str, int]:
    m = _NUMBER.match(s, i)
    if m is None:
        if s.startswith("-Infinity", i):
            raise _Fail("invalid number: NaN/Infinity are not JSON", i)
        raise _Fail("invalid number", i)
    end = m.end()
    nxt = s[end:end + 1]
    frac, exp = m.group(2), m.group(3)
    if nxt and ((frac is None and exp is None and (nxt == "." or nxt in _DIGITS)) or (exp is None and nxt in "eE")):
        raise _Fail("invalid number", i)
    token = m.group(0)
    if frac is None and exp is None and len(m.group(1)) <= 15:
        return str(int(token)), end  # exact below 10**15: the digits themselves ("-0" -> "0")
    x = float(token)  # correctly rounded
    if math.isinf(x):
        raise _Fail("number out of range", i)
    return format_number(x), end


def _string(s: str, i: int) -> tuple[str, int]:
    """Decode the string whose opening quote is at s[i-1]; returns (value, index after the closing quote)."""
    parts = []
    n = len(s)
    while True:
        j = _PLAIN.match(s, i).end()
        if j > i:
            parts.append(s[i:j])
        if j >= n:
            raise _Fail("invalid JSON: unexpected end of input", n)
        c = s[j]
        if c == '"':
            return "".join(parts), j + 1
        if c != "\\":
            raise _Fail("control character in string", j)
        e = s[j + 1:j + 2]
        if not e:
            raise _Fail("invalid JSON: unexpected end of input", n)
        if e != "u":
            if e not in _ESCAPES:
                raise _Fail("invalid escape", j)
            parts.append(_ESCAPES[e])
            i = j + 2
            continue
        cp, i = _hex4(s, j)
        if 0xD800 <= cp <= 0xDBFF:
            if s[i:i + 2] == "\\u":
                lo, k = _hex4(s, i)
                if 0xDC00 <= lo <= 0xDFFF:
                    parts.append(chr(0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)))
                    i = k
                    continue
            raise _Fail("invalid escape: lone surrogate \\u%04x" % cp, j)
        if 0xDC00 <= cp <= 0xDFFF:
            raise _Fail("invalid escape: lone surrogate \\u%04x" % cp, j)
        parts.append(chr(cp))


def _hex4(s: str, j: int) -> tuple[int, int]:
    """The \\uXXXX escape whose backslash is at s[j]: (code unit, index after it)."""
    h = s[j + 2:j + 6]
    if len(h) < 4 and all(c in _HEX for c in h):
        raise _Fail("invalid JSON: unexpected end of input", len(s))
    if len(h) < 4 or not all(c in _HEX for c in h):
        raise _Fail("invalid escape", j)
    return int(h, 16), j + 6


def _shown(name: str) -> str:
    raw = name.encode("utf-8")
    if len(raw) <= KEY_SHOWN:
        return _encode_str(name)
    cut = KEY_SHOWN
    while raw[cut] & 0xC0 == 0x80:  # back off to a character boundary
        cut -= 1
    return _encode_str(raw[:cut].decode("utf-8")) + "..."


def _close_object(members: list) -> str:
    """Canonical text of an object from its [(name, name_pos, canonical value)]."""
    if all(m[0].isascii() for m in members):
        members.sort(key=lambda m: m[0])  # stable: equal names stay in input order
    else:
        members.sort(key=lambda m: m[0].encode("utf-16-be"))  # big-endian code units compare as bytes
    for a, b in itertools.pairwise(members):
        if a[0] == b[0]:
            raise _Fail("duplicate key: " + _shown(a[0]), max(a[1], b[1]))
    return "{" + ",".join(_encode_str(name) + ":" + value for name, _, value in members) + "}"


def _value_start(s: str, i: int):
    """A scalar at s[i] (not [ or {): (canonical text, index after it)."""
    c = s[i:i + 1]
    if c == '"':
        value, j = _string(s, i + 1)
        return _encode_str(value), j
    if c == "-" or (c and c in _DIGITS):
        return _number(s, i)
    for lit in ("true", "false", "null"):
        if s.startswith(lit, i):
            return lit, i + len(lit)
    if s.startswith("NaN", i) or s.startswith("Infinity", i):
        raise _Fail("invalid number: NaN/Infinity are not JSON", i)
    if not c:
        raise _Fail("invalid JSON: unexpected end of input", i)
    raise _Fail("invalid JSON: unexpected character", i)


def _canonical_text(s: str) -> str:
    """Parse and canonicalise in one pass with an explicit stack: each open container is
    [is_object, items, pending member name, its position]."""
    n = len(s)
    i = _WS.match(s, 0).end()
    if i >= n:
        raise _Fail("invalid JSON: unexpected end of input", i)
    if s[i] != "{":
        raise _Fail("message is not a JSON object", i)
    stack = []
    value = None
    while True:
        # here s[i] starts a value (after whitespace); open containers push, scalars fall through
        c = s[i:i + 1]
        if c == "{" or c == "[":
            if len(stack) >= MAX_DEPTH:
                raise _Fail("nesting deeper than %d levels" % MAX_DEPTH, i)
            is_obj = c == "{"
            i = _WS.match(s, i + 1).end()
            close = "}" if is_obj else "]"
            if s[i:i + 1] == close:
                value = "{}" if is_obj else "[]"
                i += 1
            else:
                frame = [is_obj, [], None, 0]
                stack.append(frame)
                if is_obj:
                    i = _key(s, i, frame)
                continue
        else:
            value, i = _value_start(s, i)
        # a complete value: hand it to the enclosing container, closing as many as end here
        while True:
            if not stack:
                i = _WS.match(s, i).end()
                if i < n:
                    raise _Fail("trailing characters", i)
                return value
            frame = stack[-1]
            if frame[0]:
                frame[1].append((frame[2], frame[3], value))
            else:
                frame[1].append(value)
            i = _WS.match(s, i).end()
            c = s[i:i + 1]
            if c == ",":
                i = _WS.match(s, i + 1).end()
                if frame[0]:
                    i = _key(s, i, frame)
                elif i >= n:
                    raise _Fail("invalid JSON: unexpected end of input", i)
                break
            if c == ("}" if frame[0] else "]"):
                stack.pop()
                value = _close_object(frame[1]) if frame[0] else "[" + ",".join(frame[1]) + "]"
                i += 1
                continue
            if not c:
                raise _Fail("invalid JSON: unexpected end of input", i)
            raise _Fail("invalid JSON: expected ',' or '}'" if frame[0] else "invalid JSON: expected ',' or ']'", i)


def _key(s: str, i: int, frame: list) -> int:
    """Parse `"name" ws : ws` at s[i] into frame; returns the index of the member's value."""
    c = s[i:i + 1]
    if c != '"':
        if not c:
            raise _Fail("invalid JSON: unexpected end of input", i)
        raise _Fail("invalid JSON: expected a string key", i)
    frame[2], j = _string(s, i + 1)
    frame[3] = i
    j = _WS.match(s, j).end()
    c = s[j:j + 1]
    if c != ":":
        if not c:
            raise _Fail("invalid JSON: unexpected end of input", j)
        raise _Fail("invalid JSON: expected ':'", j)
    j = _WS.match(s, j + 1).end()
    if j >= len(s):
        raise _Fail("invalid JSON: unexpected end of input", j)
    return j


class _Members(list):
    """An object's (name, value) pairs as the stdlib parser hands them over."""


class _Unusual(Exception):
    """The fast path declines: the full parser decides (and names the error)."""


def _fast_value(v, depth: int) -> str:
    kind = type(v)
    if kind is str:
        return _encode_str(v)
    if kind is float:
        if not math.isfinite(v):
            raise _Unusual
        return format_number(v)
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if depth >= MAX_DEPTH:
        raise _Unusual
    if kind is _Members:
        if len({name for name, _ in v}) != len(v):
            raise _Unusual
        if all(name.isascii() for name, _ in v):
            v.sort(key=lambda m: m[0])
        else:
            v.sort(key=lambda m: m[0].encode("utf-16-be"))
        return "{" + ",".join(_encode_str(k) + ":" + _fast_value(x, depth + 1) for k, x in v) + "}"
    return "[" + ",".join(_fast_value(x, depth + 1) for x in v) + "]"


def _refuse(name: str):
    raise _Unusual


def _fast(text: str) -> bytes | None:
    """The canonical bytes through the stdlib parser (C) when the input is plainly valid,
    else None. Same grammar (RFC 8259, whitespace SP HT LF CR, ASCII digits), floats by
    float(); what it lets through and the rules refuse -- lone surrogate escapes,
    infinities, duplicate names, depth, a non-object -- declines here."""
    try:
        doc = json.loads(text, object_pairs_hook=_Members, parse_constant=_refuse, parse_int=float)
        if type(doc) is not _Members:
            return None
        return _fast_value(doc, 0).encode("utf-8")  # a lone surrogate fails to encode
    except (ValueError, RecursionError, _Unusual, UnicodeEncodeError):
        return None


def canonical_message(data: bytes) -> bytes:
    """RFC 8785 canonical bytes of one JSON object message; InvalidInputError on bad input."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidInputError("message must be bytes (UTF-8 JSON text), got %s" % type(data).__name__)
    data = bytes(data)
    if len(data) >= MAX_MESSAGE_BYTES:
        raise InvalidInputError("message too large at byte 0")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError("invalid UTF-8 at byte %d" % exc.start) from None
    fast = _fast(text)
    if fast is not None:
        return fast
    try:
        return _canonical_text(text).encode("utf-8")
    except _Fail as f:
        pos = f.pos if text.isascii() else len(text[:f.pos].encode("utf-8"))
        raise InvalidInputError("%s at byte %d" % (f.what, pos)) from None


def transcript_digest(messages: list) -> str:
    """``"sha256:"`` + hex SHA-256 of ``[`` + canonical messages joined by ``,`` + ``]``."""
    parts = []
    for i, m in enumerate(messages):
        try:
            parts.append(canonical_message(m))
        except InvalidInputError as exc:
            raise InvalidInputError("message %d: %s" % (i, exc)) from None
    return "sha256:" + hashlib.sha256(b"[" + b",".join(parts) + b"]").hexdigest()
