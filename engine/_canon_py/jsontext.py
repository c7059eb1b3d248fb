"""JSON text in and out, by serde_json's rules: the strict parser and the compact writers.

Parser (serde_json ``from_slice`` of one value): strict UTF-8 (overlong forms, surrogate code
points, values above U+10FFFF and truncated sequences are errors; a BOM is not whitespace);
RFC 8259 grammar with whitespace SP HT LF CR only; raw U+0000..U+001F in strings, invalid escapes
and unpaired surrogate escapes are errors; NaN/Infinity and malformed numbers are errors;
numbers get serde's values (``numbers.number``); at most 127 arrays/objects nest (serde_json's
depth counter of 128 fails when it reaches 0). Duplicate keys are KEPT: an object is an ``Obj``,
the list of its members ``(key, value, start, end)`` in input order, where ``start:end`` is the
source span of the value (an opaque slot is copied from it verbatim under f2). What a duplicate
means is the typed decode's business (docs/messages.md, "Duplicate keys").

Writers (serde_json compact output): strings escape ``"`` ``\\`` 08 09 0A 0C 0D as two-character
escapes and other bytes below 0x20 as ``\\u00xx`` (lowercase hex), nothing else; integers in
decimal; floats by ``numbers.format_float``. ``value`` writes a serde ``Value``: object keys
sorted by UTF-8 bytes (= code point order), a duplicated key keeping its last value.
"""

from __future__ import annotations

import re

from ..errors import InvalidInputError
from .numbers import _NUM_RE, _U64_MAX, _number, format_float, parse_float_serde

MAX_DEPTH = 128

__all__ = ["MAX_DEPTH", "Obj", "dumps_value", "loads", "path_str", "reparsed_float", "value", "wstr"]


class Obj(list):
    """A parsed JSON object: its members ``(key, value, start, end)`` in input order."""

    __slots__ = ()

    def last(self) -> dict:
        """key -> (value, start, end) of the last occurrence of each key (serde ``Value``)."""
        return {k: (v, a, b) for k, v, a, b in self}


class _Fail(Exception):
    def __init__(self, msg: str, pos: int) -> None:
        super().__init__(msg)
        self.msg, self.pos, self.path = msg, pos, []


_WS_RE = re.compile(r"[ \t\n\r]*")
_STR_RE = re.compile('[^"\\\\\x00-\x1f\ud800-\udfff]*')
_HEX4_RE = re.compile(r"[0-9a-fA-F]{4}")
_SIMPLE_ESC = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def _parse_string(s: str, i: int):
    """``i`` is just past the opening quote; returns (str, index past the closing quote)."""
    m = _STR_RE.match(s, i)
    j = m.end()
    if j < len(s) and s[j] == '"':
        return m.group(), j + 1
    parts = [m.group()]
    n = len(s)
    while True:
        if j >= n:
            raise _Fail("end of input inside a string", j)
        c = s[j]
        if c == '"':
            return "".join(parts), j + 1
        if c != "\\":
            if c < " ":
                raise _Fail("raw control character U+%04X in a string" % ord(c), j)
            raise _Fail("invalid UTF-8", j)  # a byte the surrogateescape decoding kept
        if j + 1 >= n:
            raise _Fail("end of input inside a string", n)
        c = s[j + 1]
        if c in _SIMPLE_ESC:
            parts.append(_SIMPLE_ESC[c])
            j += 2
        elif c == "u":
            if not _HEX4_RE.match(s, j + 2):
                raise _Fail("invalid \\u escape", j)
            cp = int(s[j + 2:j + 6], 16)
            j += 6
            if 0xDC00 <= cp <= 0xDFFF:
                raise _Fail("lone surrogate escape \\u%04x" % cp, j - 6)
            if 0xD800 <= cp <= 0xDBFF:
                if not (s.startswith("\\u", j) and _HEX4_RE.match(s, j + 2)):
                    raise _Fail("lone surrogate escape \\u%04x" % cp, j - 6)
                lo = int(s[j + 2:j + 6], 16)
                if not 0xDC00 <= lo <= 0xDFFF:
                    raise _Fail("lone surrogate escape \\u%04x" % cp, j - 6)
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                j += 6
            parts.append(chr(cp))
        else:
            raise _Fail("invalid escape", j)
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
            raise _Fail("invalid number", i)
        j = m.end()
        if j < len(s) and s[j] in "0123456789.eE":
            raise _Fail("invalid number", i)
        try:
            return _number(m.group()), j
        except InvalidInputError as exc:
            raise _Fail(str(exc), i) from None
    for word, val in (("true", True), ("false", False), ("null", None)):
        if s.startswith(word, i):
            return val, i + len(word)
    raise _Fail("unexpected end of input" if not c else "expected a value", i)


def _parse_object(s: str, i: int, depth: int):
    obj = Obj()
    i = _WS_RE.match(s, i).end()
    if s.startswith("}", i):
        return obj, i + 1
    while True:
        if not s.startswith('"', i):
            raise _Fail("expected an object key" if i < len(s) else "unexpected end of input", i)
        key, i = _parse_string(s, i + 1)
        i = _WS_RE.match(s, i).end()
        if not s.startswith(":", i):
            raise _Fail("expected ':'" if i < len(s) else "unexpected end of input", i)
        i = _WS_RE.match(s, i + 1).end()
        start = i
        try:
            val, i = _parse_value(s, i, depth)
        except _Fail as f:
            f.path.append(key)
            raise
        obj.append((key, val, start, i))
        i = _WS_RE.match(s, i).end()
        c = s[i] if i < len(s) else ""
        if c == ",":
            i = _WS_RE.match(s, i + 1).end()
        elif c == "}":
            return obj, i + 1
        else:
            raise _Fail("expected ',' or '}'" if c else "unexpected end of input", i)


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
            raise _Fail("expected ',' or ']'" if c else "unexpected end of input", i)


def loads(data) -> tuple:
    """Strictly parse one JSON text (bytes); returns (value, decoded text)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise InvalidInputError("message must be bytes (UTF-8 JSON text), got %s" % type(data).__name__)
    data = bytes(data)
    if len(data) >= 2147483647:
        raise InvalidInputError("message too large")
    # Invalid UTF-8 bytes become lone surrogates U+DC80..U+DCFF, which no rule below accepts:
    # the first one met while parsing is the error, where serde_json (and the C parser) meet it.
    s = data.decode("utf-8", "surrogateescape")
    try:
        i = _WS_RE.match(s, 0).end()
        val, i = _parse_value(s, i, 0)
        i = _WS_RE.match(s, i).end()
        if i != len(s):
            raise _Fail("trailing characters after the JSON value", i)
    except _Fail as f:
        nbytes = len(s[:f.pos].encode("utf-8", "surrogateescape"))
        raise InvalidInputError("invalid JSON at byte %d (%s): %s"
                                % (nbytes, path_str(reversed(f.path)), f.msg)) from None
    return val, s


_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def path_str(parts) -> str:
    """``$`` + ``.key`` (identifier keys) / ``["key"]`` (others) / ``[i]`` per step."""
    out = ["$"]
    for p in parts:
        out.append(step(p))
    return "".join(out)


def step(p) -> str:
    if isinstance(p, int):
        return "[%d]" % p
    if _IDENT_RE.fullmatch(p):
        return "." + p
    return "[" + wstr(p) + "]"


# --------------------------------------------------------------------------- writers

_ESC = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}
for _c in range(0x20):
    _ESC.setdefault(chr(_c), "\\u%04x" % _c)
_ESC_RE = re.compile('[\x00-\x1f"\\\\]')
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def _esc(m) -> str:
    return _ESC[m.group()]


def wstr(s: str) -> str:
    """A string as serde_json writes it."""
    if _ESC_RE.search(s) is None:
        return '"' + s + '"'
    return '"' + _ESC_RE.sub(_esc, s) + '"'


def reparsed_float(x: float, passes: int) -> str:
    """The text of float ``x`` after ``passes`` more write-then-parse rounds through serde_json
    (its parser is not correctly rounded, so a float can drift), then written once more."""
    t = format_float(x)
    for _ in range(passes):
        t = format_float(parse_float_serde(t))
    return t


def value(v, passes: int = 0) -> str:
    """A parsed value as a serde ``Value``: object keys sorted by code point, the last of
    duplicated keys kept; floats re-parsed ``passes`` more times (opaque slots)."""
    t = type(v)
    if t is str:
        return wstr(v)
    if t is Obj:
        d = v.last()
        return "{" + ",".join(wstr(k) + ":" + value(d[k][0], passes) for k in sorted(d)) + "}"
    if t is list:
        return "[" + ",".join(value(x, passes) for x in v) + "]"
    if v is None:
        return "null"
    if t is bool:
        return "true" if v else "false"
    if t is int:
        return str(v)
    return reparsed_float(v, passes) if passes else format_float(v)


def _wpy(v, depth: int) -> str:
    """dumps_value: a Python JSON value, dicts in insertion order. Raises _Fail (pos -1)
    whose ``path`` the containers fill on the way out."""
    t = type(v)
    if t is str:
        if _SURROGATE_RE.search(v):
            raise _Fail("string contains a lone surrogate", -1)
        return wstr(v)
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
    """Compact serde_json bytes of a Python JSON value (dicts in insertion order)."""
    try:
        return _wpy(obj, 0).encode("utf-8")
    except _Fail as f:
        raise InvalidInputError("%s: %s" % (path_str(reversed(f.path)), f.msg)) from None
