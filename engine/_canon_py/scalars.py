"""The scalar types of meerkat's model that decode from a JSON string and are re-spelled:
timestamps (chrono), UUIDs (uuid), and the validated strings (prompt keys, skill names,
revised prompts), plus the content blob id of a collapsed image.

Each function takes the decoded string and returns the text meerkat writes back (a JSON string
literal), or raises ``ValueError`` with a short reason; the decoder adds the JSON path.
"""

from __future__ import annotations

import hashlib

from .jsontext import wstr

# char::is_whitespace: the Unicode White_Space property (Rust's str::trim and chrono use it)
RUST_WS = ("\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
           "\u200a\u2028\u2029\u202f\u205f\u3000")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
EPOCH = '"1970-01-01T00:00:00Z"'

# --------------------------------------------------------------------------- timestamps
# chrono 0.4.45 (meerkat's Cargo.lock), DateTime<Utc> from a string: the relaxed RFC 3339 parser
# (chronotope/chrono src/format/parse.rs:585-640, scan.rs:17-64 and 206-265, parsed.rs:208-560 and
# 749-790 at v0.4.45) then with_timezone(Utc); written by write_rfc3339 with SecondsFormat::AutoSi
# and Z (src/format/formatting.rs:504-564, src/datetime/serde.rs:32-50).

_MIN_YEAR, _MAX_YEAR = -262143, 262142  # chrono NaiveDate range (src/naive/date/mod.rs:2443-2451)
_I64_MAX = (1 << 63) - 1
_SCALE = (0, 100_000_000, 10_000_000, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1)


def _number(s: str, lo: int, hi: int):
    """scan::number: lo..hi ASCII digits (only the first hi are read); (rest, value)."""
    n = 0
    i = 0
    while i < hi and i < len(s) and "0" <= s[i] <= "9":
        n = n * 10 + ord(s[i]) - 48
        if n > _I64_MAX:
            raise ValueError("number out of range")
        i += 1
    if i < lo:
        raise ValueError("expected a number")
    return s[i:], n


def _literal(s: str, lit: str) -> str:
    if not s.startswith(lit):
        raise ValueError("expected %r" % lit)
    return s[len(lit):]


def _field(s: str, hi: int, lo_v: int, hi_v: int):
    s = s.lstrip(RUST_WS)
    s, v = _number(s, 1, hi)
    if not lo_v <= v <= hi_v:
        raise ValueError("field out of range")
    return s, v


def _days_from_civil(y: int, m: int, d: int) -> int:
    y -= m <= 2
    era = y // 400  # floor division (the C version adjusts its truncating division)
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _civil_from_days(z: int):
    z += 719468
    era = z // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (m <= 2), m, d


def _leap(y: int) -> bool:
    return y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)


_MDAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def timestamp(s: str, erase: bool) -> str:
    """A chrono DateTime<Utc> string re-spelled (or the epoch when ``erase``); ValueError if
    chrono refuses it."""
    t = s.lstrip(RUST_WS)  # Item::Numeric trims before the year
    if t.startswith("-") or t.startswith("+"):
        t2, y = _number(t[1:], 1, 1 << 62)
        y = -y if t[0] == "-" else y
        t = t2
    else:
        t, y = _number(t, 1, 4)
    if not -(1 << 31) <= y < (1 << 31):
        raise ValueError("year out of range")
    t = _literal(t.lstrip(RUST_WS), "-")
    t, mo = _field(t, 2, 1, 12)
    t = _literal(t.lstrip(RUST_WS), "-")
    t, d = _field(t, 2, 1, 31)
    if not t or t[0] not in "tT ":
        raise ValueError("expected 'T' between date and time")
    t, hh = _field(t[1:], 2, 0, 23)
    t = _literal(t.lstrip(RUST_WS), ":")
    t, mi = _field(t, 2, 0, 59)
    t = _literal(t.lstrip(RUST_WS), ":")
    t, ss = _field(t, 2, 0, 60)
    nano = 0
    if t.startswith("."):
        rest, v = _number(t[1:], 1, 9)
        nano = v * _SCALE[len(t) - 1 - len(rest)]
        t = rest
        while t and "0" <= t[0] <= "9":
            t = t[1:]
    t = t.lstrip(RUST_WS)
    if len(t.encode("utf-8")) >= 3 and t[:3].encode("utf-8").lower() == b"utc":
        off, t = 0, t[3:]
    elif t[:1] in ("Z", "z"):
        off, t = 0, t[1:]
    else:
        if t[:1] not in ("+", "-", "\u2212"):
            raise ValueError("expected an offset")
        neg = t[0] != "+"
        t = t[1:]
        if len(t) < 2 or not ("0" <= t[0] <= "9" and "0" <= t[1] <= "9"):
            raise ValueError("expected offset hours")
        oh = int(t[:2])
        t = t[2:].lstrip(":" + RUST_WS)
        if len(t.encode("utf-8")) < 2:
            raise ValueError("expected offset minutes")
        if not ("0" <= t[0] <= "5" and "0" <= t[1] <= "9"):
            raise ValueError("bad offset minutes")
        om = int(t[:2])
        t = t[2:]
        off = -(oh * 3600 + om * 60) if neg else oh * 3600 + om * 60
    if t.lstrip(RUST_WS):
        raise ValueError("trailing characters")
    # Parsed::to_datetime
    if not _MIN_YEAR <= y <= _MAX_YEAR:
        raise ValueError("year out of range")
    if d > (29 if mo == 2 and _leap(y) else _MDAYS[mo - 1]):
        raise ValueError("no such date")
    if ss == 60:
        ss, nano = 59, nano + 1_000_000_000
    if not -86400 < off < 86400:
        raise ValueError("offset out of range")
    days = _days_from_civil(y, mo, d)
    secs = hh * 3600 + mi * 60 + ss - off
    days += secs // 86400
    secs %= 86400
    if not _days_from_civil(_MIN_YEAR, 1, 1) <= days <= _days_from_civil(_MAX_YEAR, 12, 31):
        raise ValueError("out of range after the offset")
    if erase:
        return EPOCH
    y, mo, d = _civil_from_days(days)
    hh, mi, ss = secs // 3600, secs // 60 % 60, secs % 60
    if nano >= 1_000_000_000:  # a leap second is written as :60
        ss, nano = ss + 1, nano - 1_000_000_000
    year = "%04d" % y if 0 <= y <= 9999 else "%+05d" % y
    if nano == 0:
        frac = ""
    elif nano % 1_000_000 == 0:
        frac = ".%03d" % (nano // 1_000_000)
    elif nano % 1_000 == 0:
        frac = ".%06d" % (nano // 1_000)
    else:
        frac = ".%09d" % nano
    return '"%s-%02d-%02dT%02d:%02d:%02d%sZ"' % (year, mo, d, hh, mi, ss, frac)


# --------------------------------------------------------------------------- UUIDs
# uuid 1.x Uuid::parse_str (uuid-rs/uuid src/parser.rs:74-96 at v1.23.1): 32 hex digits, the
# 36-character hyphenated form, that form in braces, or "urn:uuid:" + it; hex digits in either
# case. Serialised hyphenated and lowercase.

_HEX = frozenset("0123456789abcdefABCDEF")


def uuid(s: str) -> str:
    b = s
    n = len(s.encode("utf-8"))
    if n == 38 and b.startswith("{") and b.endswith("}"):
        b, n = b[1:-1], 36
    elif n == 45 and b.startswith("urn:uuid:"):
        b, n = b[9:], 36
    if n == 32 and len(b) == 32:
        h = b
    elif n == 36 and len(b) == 36 and b[8] == b[13] == b[18] == b[23] == "-":
        h = b[:8] + b[9:13] + b[14:18] + b[19:23] + b[24:]
    else:
        raise ValueError("not a UUID")
    if not all(c in _HEX for c in h):
        raise ValueError("not a UUID")
    h = h.lower()
    return '"%s-%s-%s-%s-%s"' % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])


# --------------------------------------------------------------------------- validated strings


def nonblank(s: str) -> str:
    """SystemPromptKey: not empty after trimming (meerkat-core/src/types.rs:1247-1253@c7b8518b4)."""
    if not s.strip(RUST_WS):
        raise ValueError("must not be blank")
    return wstr(s)


def prompt_text(s: str) -> str:
    """PromptText: not blank, at most 32,000 characters
    (meerkat-core/src/image_generation.rs:16, 32-44@c7b8518b4)."""
    if not s.strip(RUST_WS):
        raise ValueError("must not be blank")
    if len(s) > 32000:
        raise ValueError("longer than 32000 characters")
    return wstr(s)


def skill_name(s: str) -> str:
    """SkillName: a lowercase slug [a-z0-9-], no leading, trailing or doubled '-'
    (meerkat-core/src/skills/mod.rs:90-116@c7b8518b4)."""
    if not s:
        raise ValueError("must not be empty")
    if s[0] == "-" or s[-1] == "-" or "--" in s or not all("a" <= c <= "z" or "0" <= c <= "9" or c == "-" for c in s):
        raise ValueError("not a lowercase slug [a-z0-9-]")
    return wstr(s)


def content_blob_id(media_type: str, data: str) -> str:
    """meerkat blob::content_blob_id: "sha256:" + hex SHA-256 of the canonical media type (cut at
    the first ';', trimmed, ASCII-lowercased), a NUL byte and the base64 text
    (meerkat-core/src/blob.rs:127-135@c7b8518b4, meerkat-core/src/image_generation.rs:159-162@c7b8518b4)."""
    m = media_type.split(";", 1)[0].strip(RUST_WS).translate(_ASCII_LOWER)
    return "sha256:" + hashlib.sha256(m.encode("utf-8") + b"\x00" + data.encode("utf-8")).hexdigest()
