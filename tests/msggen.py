"""A seeded generator of meerkat-shaped messages, written with random spellings and mistakes.

It walks meerkat's model (engine/meerkat_model.json, loaded by engine._canon_py.model), so every
role, block, variant and field is reached, including the forms serde also accepts (a struct as a
positional array, a variant index as a tag, an enum in its map form), and then spells the JSON
text at random: key order, whitespace, escapes, number forms, duplicate and unknown keys. With
``mistakes`` > 0 it also writes wrong types, nulls, missing fields, bad UUIDs and timestamps.

The differential tests feed these messages to both implementations, which must agree byte for
byte (or on the error text); because it is driven by the same model, it is not a check of the
model itself -- the compiled-meerkat vectors (tests/vectors/meerkat-0.8.26-oracle.jsonl) are.
"""

from __future__ import annotations

import math
import random
import struct

from engine._canon_py.model import MODEL, Type

# A message tree before spelling: ("obj", [(key, node)]) | ("arr", [node]) | ("str", text) |
# ("num", token) | ("lit", "true" | "false" | "null")
NULL = ("lit", "null")

CHARS = ["a", "b", "z", "K", "_", " ", "/", "'", '"', "\\", "é", "本", "😀", "\u2028", "\u007f", "\x00",
         "\x01", "\x1f", "\t", "\n", "\r", "\b", "\f", "\ufffd", "\uffff", "\ue000", "\u0301", "\U0010ffff",
         "\u3000", "\u00a0"]
KEYS = ["a", "b", "key", "Key", "10", "9", "", " ", "é", "😀", "\uffff", "\ue000", 'k"q', "z\\", "aa", "a\x00"]
UUID = "019f3f62-e213-8804-baa4-5e7e9bef74d3"


class Gen:
    def __init__(self, rng: random.Random, mistakes: float = 0.0):
        self.r = rng
        self.mistakes = mistakes

    # -------------------------------------------------------------- helpers
    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def oops(self) -> bool:
        return self.r.random() < self.mistakes

    def text(self, maxlen: int = 12) -> str:
        return "".join(self.r.choice(CHARS) for _ in range(self.r.randrange(maxlen)))

    def s(self, text: str):
        return ("str", text)

    def float_token(self) -> str:
        r = self.r
        k = r.randrange(8)
        if k == 0:
            while True:
                x = struct.unpack("<d", struct.pack("<Q", r.getrandbits(64)))[0]
                if math.isfinite(x):
                    return repr(x)
        if k == 1:
            return repr(r.random())
        if k == 2:
            return "%.*g" % (r.randrange(1, 18), r.uniform(-1e6, 1e6))
        if k == 3:
            return r.choice(["0.0", "-0.0", "1e-5", "1e-6", "1e15", "1e16", "5e-324", "1.7976931348623157e308",
                             "0.1", "9007199254740993.0", "-0", "1E2", "1.50", "2.50e+0", "1e400", "-1e400",
                             "1e-400", "123456789012345678901234567890", "-9223372036854775809",
                             "4.4873129600265482253e-01", "1.7976931348623159e308"])
        if k == 4:
            return "%.17fe%d" % (r.uniform(-1, 1), r.randrange(-330, 308))
        if k == 5:
            return "%de%d" % (r.randrange(1, 10 ** 17), r.randrange(-340, 300))
        if k == 6:
            return "0.%s" % "".join(r.choice("0123456789") for _ in range(r.randrange(1, 30)))
        return repr(float(r.randrange(-10 ** 6, 10 ** 6)))

    def int_token(self) -> str:
        r = self.r
        return str(r.choice([0, 1, -1, 2 ** 32 - 1, 2 ** 32, 2 ** 63, -(2 ** 63), 2 ** 64 - 1, 2 ** 64,
                             -(2 ** 63) - 1, r.randrange(-10 ** 12, 10 ** 12), r.randrange(100)]))

    def value(self, depth: int = 0, dups: float = 0.05):
        """Any JSON value (serde Value / opaque slot contents)."""
        r = self.r
        k = r.randrange(9 if depth < 5 else 6)
        if k == 0:
            return NULL
        if k == 1:
            return ("lit", r.choice(["true", "false"]))
        if k == 2:
            return ("num", self.int_token())
        if k in (3, 4):
            return ("num", self.float_token())
        if k == 5:
            return self.s(self.text())
        if k == 6:
            return ("arr", [self.value(depth + 1) for _ in range(r.randrange(4))])
        members = [(r.choice(KEYS) + (self.text(3) if self.chance(0.3) else ""), self.value(depth + 1))
                   for _ in range(r.randrange(5))]
        if members and self.chance(dups):
            members.append((r.choice(members)[0], self.value(depth + 1)))
        return ("obj", members)

    def wrong(self):
        return self.r.choice([NULL, ("num", "1"), ("num", "1.5"), self.s("s"), ("arr", []), ("obj", []),
                              ("lit", "true"), ("num", "-1")])

    # -------------------------------------------------------------- scalars
    def uuid(self):
        r = self.r
        h = "".join(r.choice("0123456789abcdef") for _ in range(32))
        if self.chance(0.3):
            h = h.upper()
        hy = "%s-%s-%s-%s-%s" % (h[:8], h[8:12], h[12:16], h[16:20], h[20:])
        if self.oops():
            return self.s(r.choice(["x", h[:31], "{" + h + "}", "urn:uuid:" + h, "URN:UUID:" + hy, hy + " ",
                                    "g" + hy[1:], hy.replace("-", "_"), ""]))
        return self.s(r.choice([hy, hy, h, "{" + hy + "}", "urn:uuid:" + hy]))

    def timestamp(self):
        r = self.r
        if self.oops():
            return self.s(r.choice(["2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z",
                                    "2026-01-01", "2026-01-01T00:00:00", "2026-01-01T00:00Z", "yesterday",
                                    "2026-01-01T00:00:00.Z", "2026-01-01T00:00:00+24:00", "+262143-12-31T23:59:59Z",
                                    "-262144-01-01T00:00:00Z", "２０２６-01-01T00:00:00Z", "2026-01-01T00:00:00+1",
                                    "12345-01-01T00:00:00Z", "2026-01-01T00:00:00+00:60"]))
        y = r.choice([2026, 1970, 2000, 1, 0, 9999, 10000, -1, 262142, -262143, 26])
        ys = "%04d" % y if 0 <= y <= 9999 and not self.chance(0.1) else "%+05d" % y
        sep = r.choice("TTt ")
        sec = r.randrange(61)
        core = "%s-%02d-%02d%s%02d:%02d:%02d" % (ys, r.randint(1, 12), r.randint(1, 28), sep, r.randrange(24),
                                                 r.randrange(60), sec)
        if self.chance(0.1):
            core = core.replace("-0", "-", 1)  # unpadded fields are fine for chrono
        if self.chance(0.6):
            core += "." + "".join(r.choice("0123456789") for _ in range(r.choice([1, 3, 6, 9, 10, 12])))
        off = r.choice(["Z", "Z", "z", "+00:00", "+05:30", "-08:00", "+23:59", "-23:59", "UTC", "utc", " Z",
                        "+0130", "\u221201:00", "+01 :30"])
        return self.s(("  " if self.chance(0.05) else "") + core + off + (" " if self.chance(0.05) else ""))

    def scalar(self, name: str):
        r = self.r
        if self.oops():
            return self.wrong()
        if name == "string":
            return self.s(self.text())
        if name == "bool":
            return ("lit", r.choice(["true", "false"]))
        if name == "u32":
            return ("num", str(r.choice([0, 1, 640, 2 ** 32 - 1] + ([2 ** 32, -1] if self.oops() else []))))
        if name in ("u64", "u64_nonzero"):
            return ("num", str(r.choice([1, 7, 2 ** 64 - 1, r.randrange(1, 10 ** 9)] + [0] * (name == "u64"))))
        if name == "uuid":
            return self.uuid()
        if name == "timestamp":
            return self.timestamp()
        if name in ("value", "raw"):
            return self.value()
        if name == "nonblank_string":
            return self.s(r.choice(["slot", "k_" + self.text(4), " x "] + ["", "  ", "\u3000"] * self.oops()))
        if name == "prompt_text":
            return self.s(r.choice(["a prompt", self.text(8) + "x"] + ["", " ", "x" * 32001] * self.oops()))
        if name == "skill_name":
            return self.s(r.choice(["task-workflow", "a1-b2", "x"] + ["A", "-a", "a--b", "a_b", ""] * self.oops()))
        raise AssertionError(name)

    # -------------------------------------------------------------- model types
    def of(self, t, depth: int = 0):
        if isinstance(t, str):
            return self.scalar(t)
        kind = t.kind
        if depth > 8:
            return self.wrong()
        if kind == "enum":
            name = self.r.choice(t.values) if not self.oops() else self.r.choice(["x", "End_Turn", ""])
            if self.chance(0.05):
                return ("obj", [(name, self.r.choice([NULL, ("obj", []), ("num", "1")]))])
            return self.s(name)
        if kind == "struct":
            return self.struct(t, depth)
        if kind == "tagged":
            return self.tagged(t, depth)
        if kind == "adjacent":
            return self.adjacent(t, depth)
        if kind == "content_codec":
            if self.chance(0.3):
                return self.s(self.text())
            return ("arr", [self.of(t.item, depth + 1) for _ in range(self.r.choice([0, 1, 1, 2, 3]))])
        if kind == "value_first":
            if self.chance(0.15):  # a type meerkat does not know: kept whole as "unknown"
                members = [("type", self.s(self.r.choice(["future_kind", "x"])))]
                for k in ("summary", "body", "detail"):
                    if self.chance(0.4):
                        members.append((k, self.r.choice([self.s(self.text()), NULL, ("num", "1")])))
                members += [(self.r.choice(KEYS), self.value(2)) for _ in range(self.r.randrange(3))]
                return ("obj", self.shuffled(members))
            return self.tagged(t.inner, depth, positional_ok=False, index_ok=False)
        if kind == "legacy_name_or":
            if self.chance(0.4):
                return self.s(self.r.choice(["web_search", "google_search", "code_execution", self.text(5)]))
            return self.tagged(t.inner, depth)
        raise AssertionError(kind)

    def field_value(self, f, depth: int):
        if f.option and self.chance(0.15):
            return NULL
        if f.list:
            if self.oops():
                return self.wrong()
            return ("arr", [self.of(f.type, depth + 1) for _ in range(self.r.choice([0, 1, 1, 2, 3]))])
        return self.of(f.type, depth + 1)

    def members(self, t: Type, depth: int) -> list:
        """(key, node) pairs of struct t (no flatten handling)."""
        out = []
        for f in t.fields:
            if f.flatten:
                out += self.tag_members(f.type, depth)
                continue
            required = f.missing == "error" and not f.option
            if not required and not self.chance(0.6):
                continue
            if required and self.oops():
                continue  # a missing required field
            key = f.name if not f.alias or self.chance(0.7) else self.r.choice(f.alias)
            out.append((key, self.field_value(f, depth)))
        if self.chance(0.1):
            out.append(("x_" + self.text(3), self.value(2)))
        if out and self.chance(0.04):
            out.append(self.r.choice(out))  # a duplicated field
        return out

    def struct(self, t: Type, depth: int, positional_ok: bool = True):
        if positional_ok and not t.flat and self.chance(0.04):
            n = self.r.randrange(len(t.fields) + 1)
            return ("arr", [self.field_value(f, depth) for f in t.fields[:n]])
        return ("obj", self.shuffled(self.members(t, depth)))

    def tag_members(self, t: Type, depth: int, index_ok: bool = True) -> list:
        names = list(t.variants)
        name = self.r.choice(names)
        var = t.variants[name]
        tag = self.s(name)
        if index_ok and self.chance(0.04):
            tag = ("num", str(names.index(name)))
        if self.oops():
            tag = self.r.choice([self.s("nope"), NULL, ("num", "99"), tag])
        out = [(t.tag, tag)]
        if var.type is not None:
            out += self.members(var.type, depth)
        elif self.chance(0.1):
            out.append(("x", self.value(2)))
        return out

    def tagged(self, t: Type, depth: int, positional_ok: bool = True, index_ok: bool = True):
        names = list(t.variants)
        if positional_ok and self.chance(0.03):
            name = self.r.choice(names)
            var = t.variants[name]
            items = [self.s(name) if not self.chance(0.3) else ("num", str(names.index(name)))]
            if var.type is not None and not var.type.flat:
                items += [self.field_value(f, depth) for f in var.type.fields[:self.r.randrange(len(var.type.fields) + 1)]]
            return ("arr", items)
        members = self.tag_members(t, depth, index_ok)
        if self.chance(0.02):
            members.append(members[0])  # the tag twice
        return ("obj", self.shuffled(members))

    def adjacent(self, t: Type, depth: int):
        name = self.r.choice(list(t.variants))
        var = t.variants[name]
        body = self.struct(var.type, depth + 1) if var.type else ("obj", [])
        if self.chance(0.03):
            return ("arr", [self.s(name), body])
        tag = self.s(name)
        if self.chance(0.04):
            tag = ("obj", [(name, self.r.choice([NULL, ("obj", [])]))])
        if self.oops():
            tag = self.r.choice([self.s("img"), ("num", "0"), NULL])
        members = [(t.tag, tag), (t.content, body)]
        if self.oops():
            members.pop(self.r.randrange(2))
        if self.chance(0.05):
            members.append(("x", self.value(2)))
        return ("obj", self.shuffled(members))

    def shuffled(self, members: list) -> list:
        if self.chance(0.7):
            members = members[:]
            self.r.shuffle(members)
        return members

    def message(self):
        return self.of(MODEL.root)


# ------------------------------------------------------------------ spelling

_ESC = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _spell_str(r: random.Random, s: str) -> str:
    out = ['"']
    for c in s:
        o = ord(c)
        if c in _ESC and r.random() < 0.8:
            out.append(_ESC[c])
        elif o < 0x20 or c in '"\\':
            out.append("\\u%04x" % o)
        elif r.random() < 0.06:
            if o > 0xFFFF:
                v = o - 0x10000
                out.append("\\u%04x\\u%04X" % (0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF)))
            else:
                out.append(("\\u%04x" if r.random() < 0.5 else "\\u%04X") % o)
        elif c == "/" and r.random() < 0.3:
            out.append("\\/")
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def spell(r: random.Random, node, pretty: float = 0.3) -> str:
    """JSON text of a tree, whitespace and escapes at random."""
    def ws():
        return r.choice(["", "", "", " ", "\n  ", "\t", "\r\n"]) if r.random() < pretty else ""

    kind, body = node
    if kind == "str":
        return _spell_str(r, body)
    if kind in ("num", "lit"):
        return body
    if kind == "arr":
        return "[" + ws() + ("," + ws()).join(spell(r, x, pretty) for x in body) + ws() + "]"
    return "{" + ws() + ("," + ws()).join(_spell_str(r, k) + ws() + ":" + ws() + spell(r, v, pretty)
                                          for k, v in body) + ws() + "}"


def make_message(seed: int, mistakes: float = 0.02) -> bytes:
    """One message's JSON bytes from a seed."""
    r = random.Random(seed)
    return spell(r, Gen(r, mistakes).message()).encode("utf-8", "surrogatepass")


INSERTS = [b'"', b"{", b"}", b"[", b"]", b",", b":", b"\\", b"\\u", b"\\ud800", b"\\udc00", b"\\ud83d\\ude00",
           b"-", b"0", b"1e999", b"1e-999", b"-0", b"null", b'"role"', b'"type"', b'"data"', b'"args"',
           b'"source"', b'"inline"', b'"image"', b'"structured"', b"\x00", b" ", b"\t", b"\xef\xbb\xbf"]
BAD_UTF8 = [b"\xff", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc3", b"\xe2\x82",
            b"\x80", b"\xf8\x88\x80\x80\x80"]


def mutate(r: random.Random, data: bytes, rounds: int = 3) -> bytes:
    """Byte-level damage: deletions, insertions of JSON-significant or invalid bytes, flips."""
    buf = bytearray(data)
    for _ in range(r.randint(1, rounds)):
        pos = r.randrange(len(buf) + 1)
        op = r.random()
        if op < 0.3:
            del buf[pos:pos + r.randint(1, 5)]
        elif op < 0.7:
            buf[pos:pos] = r.choice(INSERTS + BAD_UTF8)
        elif buf:
            buf[min(pos, len(buf) - 1)] = r.randrange(256)
    return bytes(buf)
