"""Differential tests: the native canonicaliser (``_native/``) against the
pure-Python reference (``engine._canon_py``) on the same bytes: identical
output, or both raise InvalidInputError.

Inputs: generated meerkat-shaped messages written with random spellings
(key order, whitespace, escapes, number forms), and hostile JSON (byte
mutations, deep nesting, invalid UTF-8, lone surrogates, huge numbers,
duplicate keys, random bytes). Examples per test: MOBSTORE_DIFF_EXAMPLES
(default 1500 for the big ones; set e.g. 200000 for a stress run).
"""

from __future__ import annotations

import math
import os
import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import _canon_py, digest
from engine.errors import InvalidInputError

pytestmark = pytest.mark.skipif(digest.DIGEST_IMPL != "native", reason=f"native path not loaded: {digest.NATIVE_ERROR}")

EXAMPLES = int(os.environ.get("MOBSTORE_DIFF_EXAMPLES", "1500"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILES = ("f3", "f2", "bare")


def outcome(fn, *args):
    try:
        return ("ok", fn(*args))
    except InvalidInputError:
        return ("error", None)


def assert_same(data: bytes) -> None:
    for p in PROFILES:
        ref = outcome(_canon_py.canonical_message, data, p)
        nat = outcome(digest.canonical_message, data, p)
        assert nat == ref, f"profile {p}, input {data!r}\n python: {ref}\n native: {nat}"


# ---------------------------------------------------------------------------
# A generator of meerkat-shaped messages (FORMAT.md §1.2) with mistakes.

_CHARS = ["a", "b", "z", "K", "_", " ", "/", "'", '"', "\\", "é", "本", "😀", "\u2028", "\u007f", "\x00",
          "\x01", "\x1f", "\t", "\n", "\r", "\b", "\f", "\ufffd", "\uffff", "\ue000", "\u0301", "\U0010ffff"]
_KEYS = ["a", "b", "key", "Key", "10", "9", "", " ", "é", "😀", "\uffff", "\ue000", "k\"q", "z\\", "aa", "a\x00"]


class Gen:
    def __init__(self, rng: random.Random, mistakes: float):
        self.r = rng
        self.mistakes = mistakes

    def chance(self, p: float) -> bool:
        return self.r.random() < p

    def oops(self) -> bool:
        return self.r.random() < self.mistakes

    def text(self, maxlen=12) -> str:
        return "".join(self.r.choice(_CHARS) for _ in range(self.r.randrange(maxlen)))

    def float_(self) -> float:
        r = self.r
        k = r.randrange(6)
        if k == 0:
            while True:
                x = struct.unpack("<d", struct.pack("<Q", r.getrandbits(64)))[0]
                if math.isfinite(x):
                    return x
        if k == 1:
            return r.random()
        if k == 2:
            return float("%.*g" % (r.randrange(1, 18), r.uniform(-1e6, 1e6)))
        if k == 3:
            return r.choice([0.0, -0.0, 1e-5, 1e-6, 1e15, 1e16, 5e-324, 1.7976931348623157e308, 0.1, 2.0 ** 53])
        if k == 4:
            return float("%.17fe%d" % (r.uniform(-1, 1), r.randrange(-330, 308)))  # %g could already carry an exponent
        return float(r.randrange(-10 ** 6, 10 ** 6))

    def value(self, depth=0):
        r = self.r
        k = r.randrange(9 if depth < 5 else 6)
        if k == 0:
            return None
        if k == 1:
            return r.choice([True, False])
        if k == 2:
            return r.choice([0, 1, -1, 2 ** 63, -(2 ** 63), 2 ** 64 - 1, 2 ** 64, -(2 ** 63) - 1, 10 ** 30,
                             r.randrange(-10 ** 12, 10 ** 12)])
        if k in (3, 4):
            return self.float_()
        if k == 5:
            return self.text()
        if k == 6:
            return [self.value(depth + 1) for _ in range(r.randrange(4))]
        obj = {}
        for _ in range(r.randrange(5)):
            obj[r.choice(_KEYS) + (self.text(3) if self.chance(0.3) else "")] = self.value(depth + 1)
        return obj

    def ts(self):
        r = self.r
        if self.oops():
            return r.choice(["2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-01-01T24:00:00Z",
                             "2026-01-01T00:00:60Z", "0000-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00",
                             "9999-12-31T23:59:59-00:01", "2026-01-01", 12, None, "2026-01-01T00:00:00.Z"])
        y = r.choice([2026, 1970, 2000, 2024, 1, 9999])
        s = "%04d-%02d-%02d%s%02d:%02d:%02d" % (y, r.randint(1, 12), r.randint(1, 28), r.choice("TTt "),
                                               r.randrange(24), r.randrange(60), r.randrange(60))
        if self.chance(0.6):
            s += "." + "".join(r.choice("0123456789") for _ in range(r.choice([1, 3, 6, 9, 12])))
        s += r.choice(["Z", "Z", "z", "+00:00", "+05:30", "-08:00", "+23:59"])
        return s

    def maybe(self, obj, key, value, p=0.5):
        if self.chance(p):
            obj[key] = value

    def sprinkle(self, obj):
        """Unknown keys, nulls, wrong types."""
        r = self.r
        if self.chance(0.15):
            obj["x_" + self.text(3)] = self.value(2)
        if self.oops() and obj:
            k = r.choice(list(obj))
            obj[k] = r.choice([None, 1, "s", [], {}, True, 1.5])
        if self.oops() and obj:
            del obj[r.choice(list(obj))]
        return obj

    def shuffled(self, obj):
        items = list(obj.items())
        self.r.shuffle(items)
        return dict(items)

    def content_block(self):
        r = self.r
        k = r.choice(["text", "text", "image", "image", "structured", "video", "skill_context", "bogus"])
        if k == "text":
            b = {"type": "text", "text": self.text()}
        elif k == "image":
            mt = r.choice(["image/png", "IMAGE/PNG; q=1", " image/jpeg ", "\u00a0image/gif\u2003", "x"])
            if self.chance(0.7):
                b = {"type": "image", "media_type": mt, "source": "inline", "data": r.choice(["iVBORw0KGgo=", "", "QUJD"])}
            else:
                b = {"type": "image", "media_type": mt, "source": r.choice(["blob", "url"]), "blob_id": "sha256:ab"}
        elif k == "structured":
            b = {"type": "structured", "data": self.value(1)}
        elif k == "video":
            b = {"type": "video", "media_type": "video/mp4", "duration_ms": r.choice([0, 5, -1, 1.0, 2 ** 64]),
                 "source": r.choice(["inline", "uri", "x"])}
            b["data" if b["source"] == "inline" else "uri"] = self.text()
        elif k == "skill_context":
            b = {"type": "skill_context", "skill_key": {"source_uuid": "u", "skill_name": self.text()}, "text": "t"}
        else:
            b = {"type": self.text(4), "text": "x"}
        return self.shuffled(self.sprinkle(b))

    def content(self):
        if self.chance(0.4):
            return self.text(20)
        return [self.content_block() for _ in range(self.r.randrange(4))]

    def meta(self):
        r = self.r
        prov = r.choice(["anthropic", "anthropic_redacted", "anthropic_compaction", "gemini", "open_ai",
                         "open_ai_response", "nope"])
        field = {"anthropic": "signature", "anthropic_redacted": "data", "anthropic_compaction": "content",
                 "gemini": "thoughtSignature", "open_ai": "id", "open_ai_response": "response_id", "nope": "x"}[prov]
        m = {"provider": prov, field: self.text(6)}
        if prov == "open_ai":
            self.maybe(m, "encrypted_content", self.text(4))
            self.maybe(m, "phase", r.choice([None, "p"]))
        return self.shuffled(self.sprinkle(m))

    def assistant_block(self):
        r = self.r
        bt = r.choice(["text", "reasoning", "tool_use", "tool_use", "server_tool_content", "transcript", "image", "x"])
        if bt == "text":
            data = {"text": self.text()}
        elif bt == "reasoning":
            data = {}
            self.maybe(data, "text", self.text())
        elif bt == "transcript":
            data = {"text": self.text(), "source": r.choice(["spoken", "spoken", "typed"])}
        elif bt == "tool_use":
            data = {"id": "tu_%d" % r.randrange(99), "name": self.text(5), "args": self.value(0)}
        elif bt == "server_tool_content":
            kind = r.choice([{"kind": "web_search"}, {"kind": "provider_native", "name": "n"}, "web_search",
                             "custom", {"kind": "weird"}])
            data = {"content": self.value(1)}
            data[r.choice(["kind", "kind", "name"])] = kind
            self.maybe(data, "id", self.text(3), 0.3)
        elif bt == "image":
            data = {"image_id": "i", "blob_ref": {"blob_id": "b", "media_type": "image/png"}, "media_type": "image/png",
                    "width": r.choice([1, 2 ** 32, -1]), "height": 3, "revised_prompt": {"disposition": "none"},
                    "meta": {"z": 1, "a": [2.50]}}
        else:
            data = {"text": "?"}
        if bt in ("text", "reasoning", "tool_use", "transcript") and self.chance(0.3):
            data["meta"] = self.meta()
        data = self.shuffled(self.sprinkle(data))
        block = {"block_type": bt, "data": data}
        if self.chance(0.05):
            block["extra"] = 1
        return self.shuffled(block)

    def notice_block(self):
        r = self.r
        t = r.choice(["comms", "external_event", "tool_config", "mcp", "background_job", "auth", "runtime_notice",
                      "unknown", "mystery"])
        if t == "comms":
            b = {"type": t, "kind": "message", "direction": r.choice(["incoming", "sideways"])}
            self.maybe(b, "peer", {"id": "p", "display_name": self.text(4)})
            self.maybe(b, "payload", self.value(1))
            self.maybe(b, "content", [self.content_block() for _ in range(r.randrange(3))])
            self.maybe(b, "summary", r.choice([None, "s"]))
        elif t == "external_event":
            b = {"type": t, "source": "s", "event_type": "e"}
            self.maybe(b, "content", [self.content_block() for _ in range(r.randrange(3))])
            self.maybe(b, "payload", self.value(1))
        elif t == "tool_config":
            b = {"type": t, "payload": self.value(1)}
        elif t == "mcp":
            b = {"type": t}
            self.maybe(b, "persisted", r.choice([True, False, None]))
            self.maybe(b, "pending_sources", r.choice([[], ["a", "b"], [1]]))
        elif t == "background_job":
            b = {"type": t, "job_id": "j", "status": "done"}
        elif t == "auth":
            b = {"type": t, "state": "ok"}
        elif t == "runtime_notice":
            b = {"type": t, "category": "c"}
            self.maybe(b, "payload", self.value(1))
        elif t == "unknown":
            b = {"type": t}
            self.maybe(b, "summary", "s")
            self.maybe(b, "payload", self.value(1))
        else:
            b = {"type": r.choice([t, 5, None])}
            self.maybe(b, r.choice(["summary", "body", "detail"]), r.choice(["s", 1]))
            self.maybe(b, "payload", self.value(1))
        return self.shuffled(self.sprinkle(b))

    def identity(self):
        ident = {}
        for k in ("interaction_id", "run_id", "objective_id"):
            self.maybe(ident, k, r_choice(self.r, ["019f9f648845b755", None, ""]))
        return self.shuffled(self.sprinkle(ident))

    def message(self):
        r = self.r
        role = r.choice(["system", "system_notice", "user", "user", "block_assistant", "block_assistant",
                         "tool_results", "tool_results", "assistant", "nobody"])
        m = {"role": role}
        if role == "system":
            m["content"] = self.text(30)
            self.maybe(m, "mutation_kind", r.choice(["unspecified", "explicit_build", "runtime_steer_cleanup", "x", None]), 0.3)
            self.maybe(m, "identity", self.sprinkle({"source": "s", "idempotency_key": "k"}), 0.2)
            self.maybe(m, "prompt_version", self.sprinkle({"key": "k", "version": r.choice([1, 2, 0, 3])}), 0.3)
        elif role == "system_notice":
            m["kind"] = r.choice(["generic", "comms", "mcp", "weird"])
            self.maybe(m, "body", self.text(10))
            self.maybe(m, "blocks", [self.notice_block() for _ in range(r.randrange(3))])
        elif role == "user":
            m["content"] = self.content()
            self.maybe(m, "render_metadata", self.sprinkle({"class": "x", "salience": r.choice(["normal", "urgent", "loud"])}), 0.3)
            self.maybe(m, "identity", self.identity(), 0.4)
            self.maybe(m, "transcript_role", r.choice(["conversational", "compaction_summary", "other"]), 0.2)
        elif role == "block_assistant":
            m["blocks"] = [self.assistant_block() for _ in range(r.randrange(1, 4))]
            m["stop_reason"] = r.choice(["end_turn", "tool_use", "max_tokens", "cancelled", "bored"])
            self.maybe(m, "identity", self.identity(), 0.4)
        elif role in ("tool_results", "assistant"):
            res = []
            for _ in range(r.randrange(3)):
                x = {"tool_use_id": "tu", "content": self.content()}
                self.maybe(x, "is_error", r.choice([True, False]), 0.7)
                res.append(self.shuffled(self.sprinkle(x)))
            m["results"] = res
        if self.chance(0.95):
            m["created_at"] = self.ts()
        return self.shuffled(self.sprinkle(m))


def r_choice(r, xs):
    return r.choice(xs)


# ---------------------------------------------------------------------------
# Writing a value as JSON text with random (valid) spellings


def spell_float(x: float, r: random.Random) -> str:
    k = r.randrange(6)
    if k == 0:
        s = repr(x)
    elif k == 1:
        s = "%.17g" % x
    elif k == 2:
        s = "%.*e" % (r.randrange(0, 20), x)
    elif k == 3:
        s = "%.*E" % (r.randrange(0, 18), x)
    elif k == 4:
        s = "%.*f" % (r.randrange(0, 30), x) if abs(x) < 1e30 else repr(x)
    else:
        s = repr(x).replace("e+", "e").replace("e", r.choice(["e", "E", "e+"]))
    if s in ("inf", "-inf", "nan") or "inf" in s or "nan" in s:
        s = "1e400"
    if "." not in s and "e" not in s.lower():
        s += ".0"
    if s.startswith(("-.", ".")) or ".e" in s.lower() or s.endswith("."):
        s = repr(x)
    return s


def spell_str(s: str, r: random.Random) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif o < 0x20 or r.random() < 0.1:
            short = {"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "/": "\\/"}
            if ch in short and r.random() < 0.5:
                out.append(short[ch])
            elif o > 0xFFFF:
                v = o - 0x10000
                out.append("\\u%04x\\u%04X" % (0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF)))
            else:
                out.append(("\\u%04x" if r.random() < 0.5 else "\\u%04X") % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def ws(r: random.Random) -> str:
    return r.choice(["", "", "", " ", "\n  ", "\t", "\r\n"])


def spell(v, r: random.Random) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return spell_float(v, r)
    if isinstance(v, str):
        return spell_str(v, r)
    if isinstance(v, list):
        return "[" + ws(r) + ("," + ws(r)).join(spell(x, r) for x in v) + ws(r) + "]"
    return "{" + ws(r) + ("," + ws(r)).join(spell_str(k, r) + ws(r) + ":" + ws(r) + spell(x, r) for k, x in v.items()) + ws(r) + "}"


def make_message(seed: int, mistakes: float) -> bytes:
    r = random.Random(seed)
    return spell(Gen(r, mistakes).message(), r).encode("utf-8")


# ---------------------------------------------------------------------------
# Tests


@SETTINGS
@given(st.integers(0, 2 ** 64), st.sampled_from([0.0, 0.0, 0.02, 0.1]))
def test_generated_messages(seed, mistakes):
    assert_same(make_message(seed, mistakes))


_BAD_UTF8 = [b"\xc0\x80", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xed\xa0\x80", b"\xed\xbf\xbf", b"\xf4\x90\x80\x80",
             b"\xf5\x80\x80\x80", b"\xff", b"\x80", b"\xe2\x82", b"\xf0\x9f\x98", b"\xc3", b"\xef\xbb\xbf"]
_INSERTS = [b"\\ud800", b"\\udc00", b"\\ud800\\u0041", b"\\uD83D", b'\\u00"', b"\\x", b"\x00", b"\x1f", b"NaN",
            b"Infinity", b"-Infinity", b"01", b"1.", b".5", b"+1", b"1e", b"1e+", b"-", b"1e400", b"-1e400",
            b"1e-400", b"18446744073709551616", b"-9223372036854775809", b"1" * 400, b"0." + b"0" * 400 + b"1",
            b",", b"]", b"}", b"{", b"[", b":", b'"', b"\\", b"tru", b"nul", b"\xe2\x80\xa8"]


@SETTINGS
@given(st.integers(0, 2 ** 64), st.integers(0, 9))
def test_mutated_messages(seed, how):
    """Valid-ish messages with one hostile edit: still same bytes or same error."""
    r = random.Random(seed)
    data = bytearray(make_message(seed, 0.0))
    pos = r.randrange(len(data) + 1)
    if how == 0:
        data[pos:pos] = r.choice(_BAD_UTF8)
    elif how == 1:
        data[pos:pos] = r.choice(_INSERTS)
    elif how == 2 and data:
        data[min(pos, len(data) - 1)] = r.randrange(256)
    elif how == 3:
        del data[pos:pos + r.randrange(1, 4)]
    elif how == 4:
        data = data[:pos]
    else:
        # replace a quoted string or number with a hostile token
        data[pos:pos] = r.choice(_INSERTS + _BAD_UTF8)
        del data[pos + 1:pos + 2]
    assert_same(bytes(data))


def wrap_args(inner: bytes) -> bytes:
    return (b'{"role":"block_assistant","stop_reason":"tool_use","created_at":"2026-01-01T00:00:00Z",'
            b'"blocks":[{"block_type":"tool_use","data":{"id":"t","name":"n","args":' + inner + b"}}]}")


@SETTINGS
@given(st.recursive(
    st.none() | st.booleans() | st.integers(-(2 ** 70), 2 ** 70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=4), kids, max_size=4),
    max_leaves=20), st.randoms(use_true_random=False))
def test_opaque_values(value, r):
    """Arbitrary JSON in an opaque slot: f3 key-sorting + serde numbers, f2 verbatim."""
    assert_same(wrap_args(spell(value, r).encode("utf-8")))


@SETTINGS
@given(st.from_regex(rb"\A-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,25})?([eE][-+]?[0-9]{1,4})?\Z")
       | st.from_regex(rb"\A[-+.0-9eE]{1,12}\Z"))
def test_number_tokens(token):
    """Number grammar and serde's inexact parse, through an opaque slot in f3."""
    assert_same(wrap_args(b"[" + token + b"]"))


@SETTINGS
@given(st.binary(max_size=64) | st.text(max_size=32).map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_random_bytes(data):
    assert_same(data)
    assert_same(wrap_args(data))


@pytest.mark.parametrize("depth", [1, 2, 60, 120, 121, 122, 123, 124, 125, 126, 127, 128, 129, 1000, 100_000])
def test_deep_nesting(depth):
    for opener, closer in ((b"[", b"]"), (b'{"k":', b"}")):
        assert_same(wrap_args(opener * depth + b"1" + closer * depth))
        assert_same(opener * depth + closer * depth)


def test_deep_nesting_boundary_is_127_containers():
    # message object, blocks array, block object, data object, args = 4 levels before the value
    ok = wrap_args(b"[" * 123 + b"]" * 123)
    bad = wrap_args(b"[" * 124 + b"]" * 124)
    assert digest.canonical_message(ok, "f3")
    with pytest.raises(InvalidInputError):
        digest.canonical_message(bad, "f3")


@pytest.mark.parametrize("obj", [
    b'{"a":1,"a":2}', b'{"a":1,"b":{"c":1,"c":1}}', b'{"\\u0061":1,"a":2}',
    b"{" + b",".join(b'"k%d":%d' % (i, i) for i in range(200)) + b',"k7":0}',
    b"{" + b",".join(b'"k%d":%d' % (i, i) for i in range(200)) + b"}",
])
def test_duplicate_keys(obj):
    assert_same(wrap_args(obj))


@SETTINGS
@given(st.integers(0, 2 ** 64 - 1))
def test_float_format_random_bits(bits):
    x = struct.unpack("<d", struct.pack("<Q", bits))[0]
    if not math.isfinite(x):
        return
    assert digest._native_format_float(x) == _canon_py.format_float(x)


@SETTINGS
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_format_and_roundtrip(x):
    s = digest._native_format_float(x)
    assert s == _canon_py.format_float(x)
    assert float(s) == x  # shortest output still round-trips exactly


@SETTINGS
@given(st.from_regex(rb"\A-?(0|[1-9][0-9]{0,30})(\.[0-9]{1,30})?([eE][-+]?[0-9]{1,3})?\Z"))
def test_parse_float_serde(token):
    t = token.decode()
    ref = outcome(_canon_py.parse_float_serde, t)
    nat = outcome(digest._native_parse_float, t)
    if ref[0] == "ok" and nat[0] == "ok":
        assert struct.pack("<d", ref[1]) == struct.pack("<d", nat[1]), t
    else:
        assert ref[0] == nat[0], (t, ref, nat)


def test_vectors_messages_individually():
    """Every vector message alone, all profiles, byte-identical (finer than the digests)."""
    import json
    path = os.path.join(os.path.dirname(__file__), "vectors", "superseded-sample.jsonl")
    with open(path, encoding="utf-8") as f:
        for line in f:
            for m in json.loads(line)["messages"]:
                assert_same(m.encode("utf-8"))


# ---------------------------------------------------------------------------
# Long runs, only when selected: `pytest -m stress`, `pytest -m sanitize`


def _selected(request, marker: str) -> bool:
    return marker in (request.config.getoption("markexpr") or "")


@pytest.mark.stress
def test_stress_generated_messages(request):
    """MOBSTORE_STRESS_EXAMPLES (default 200,000) generated + mutated messages."""
    if not _selected(request, "stress"):
        pytest.skip("select with -m stress")
    n = int(os.environ.get("MOBSTORE_STRESS_EXAMPLES", "200000"))
    base = int(os.environ.get("MOBSTORE_TEST_SEED", random.randrange(1 << 40)))
    print(f"\nMOBSTORE_TEST_SEED={base}")
    for i in range(n):
        seed = base + i
        data = make_message(seed, (0.0, 0.02, 0.1)[i % 3])
        if i % 2:
            r = random.Random(seed)
            buf = bytearray(data)
            pos = r.randrange(len(buf) + 1)
            buf[pos:pos] = r.choice(_INSERTS + _BAD_UTF8)
            data = bytes(buf)
        assert_same(data)


@pytest.mark.sanitize
def test_sanitized_build_runs_differential(request, tmp_path):
    """Build the native module with ASan/UBSan into a scratch copy and run the
    differential + digest tests (meerkat profiles and jcs) against it (LD_PRELOAD of gcc's libasan)."""
    if not _selected(request, "sanitize"):
        pytest.skip("select with -m sanitize")
    import shutil
    import subprocess
    import sys

    libasan = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True).stdout.strip()
    if not libasan or not os.path.exists(libasan):
        pytest.skip("gcc's libasan.so not found")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    work = tmp_path / "mobstore"
    work.mkdir()
    for d in ("_native", "engine", "tests"):
        shutil.copytree(os.path.join(root, d), work / d, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    shutil.copy(os.path.join(root, "pyproject.toml"), work / "pyproject.toml")  # markers, pytest options
    env = dict(os.environ, MOBSTORE_SANITIZE="1")
    subprocess.run([sys.executable, "_native/build_canon.py"], cwd=work, env=env, check=True, capture_output=True)
    env = dict(os.environ, LD_PRELOAD=libasan, ASAN_OPTIONS="detect_leaks=0:abort_on_error=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1", MOBSTORE_REQUIRE_NATIVE="1",
               PYTHONPATH=str(work), MOBSTORE_DIFF_EXAMPLES=os.environ.get("MOBSTORE_DIFF_EXAMPLES", "1000"))
    env.pop("MOBSTORE_PURE_PYTHON", None)
    # With `-m "sanitize or stress"` the long generated-input loop runs under ASan/UBSan too
    # (MOBSTORE_STRESS_EXAMPLES inputs, default 200,000).
    marks = ["-m", "stress or not stress"] if _selected(request, "stress") else []
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *marks,
                          "tests/test_differential.py", "tests/test_digest.py", "tests/test_jcs.py",
                          "tests/test_jcs_numbers.py"],
                         cwd=work, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    print(out.stdout[-2000:])


@pytest.mark.fuzz
def test_atheris_differential(request, tmp_path):
    """Coverage-guided: tests/fuzz/atheris_canon.py for MOBSTORE_FUZZ_RUNS inputs (default 100,000)."""
    if not _selected(request, "fuzz"):
        pytest.skip("select with -m fuzz")
    pytest.importorskip("atheris", reason='pip install -e ".[fuzz]"')
    import subprocess
    import sys

    runs = os.environ.get("MOBSTORE_FUZZ_RUNS", "100000")
    harness = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz", "atheris_canon.py")
    out = subprocess.run([sys.executable, harness, f"-runs={runs}", "-max_len=4096", str(tmp_path / "corpus")],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert f"Done {runs} runs" in out.stderr, out.stderr[-2000:]


@pytest.mark.parametrize("n", [10, 1000, 100_000])
def test_node_array_growth(n):
    """Many tiny values (node count near its len/2 bound) and wide objects."""
    assert_same(wrap_args(b"[" + b",".join([b"0"] * n) + b"]"))
    assert_same(wrap_args(b"{" + b",".join(b'"%x":[]' % i for i in range(n)) + b"}"))
