"""The jcs profile (RFC 8785): known answers from the RFC, a differential test against the
`rfc8785` package on generated JSON (both paths), the exact rejections, and a native-vs-Python
differential of hostile bytes (same bytes or the same error message).

Examples: MOBSTORE_JCS_DOCS generated documents (default 1,500), MOBSTORE_DIFF_EXAMPLES
hypothesis examples (default 1,500); the seed of every generated run is printed (pass it back
with MOBSTORE_TEST_SEED).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import struct
from decimal import Decimal

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import _jcs_py, digest
from engine.errors import InvalidInputError

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "fixtures", "jcs", "rfc8785.json"), encoding="utf-8") as _f:
    RFC = json.load(_f)
NATIVE = digest.DIGEST_IMPL == "native"
DOCS = int(os.environ.get("MOBSTORE_JCS_DOCS", "1500"))
EXAMPLES = int(os.environ.get("MOBSTORE_DIFF_EXAMPLES", "1500"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def py_jcs(data: bytes) -> bytes:
    return _jcs_py.canonical_message(data)


def native_jcs(data: bytes) -> bytes:
    return digest.canonical_message(data, "jcs")


needs_native = pytest.mark.skipif(not NATIVE, reason=f"native path not loaded: {digest.NATIVE_ERROR}")
BOTH = [pytest.param(py_jcs, id="python"), pytest.param(native_jcs, id="native", marks=needs_native)]


def outcome(fn, data: bytes):
    try:
        return ("ok", fn(data))
    except InvalidInputError as exc:
        return ("error", str(exc))


def oracle(text: bytes) -> bytes:
    """rfc8785 over the stdlib parse: numbers as correctly rounded doubles (float()), as JCS reads them."""
    return rfc8785.dumps(json.loads(text, parse_int=float))


def seeded(request) -> random.Random:
    seed = int(os.environ.get("MOBSTORE_TEST_SEED", random.randrange(1 << 40)))
    print(f"\n[{request.node.name}] MOBSTORE_TEST_SEED={seed}")
    return random.Random(seed)


# ------------------------------------------------------------------------------------------
# Known answers: RFC 8785 sections 3.2.2, 3.2.3 and Appendix B (tests/fixtures/jcs/README.md)


def test_fixture_agrees_with_rfc8785_package():
    """The transcribed RFC answers are what the oracle package says too."""
    assert oracle(RFC["primitives"]["input"].encode()).decode() == RFC["primitives"]["output"]
    assert list(json.loads(oracle(RFC["sorting"]["input"].encode())).values()) == RFC["sorting"]["order"]
    for bits, text in RFC["numbers"]:
        x = struct.unpack(">d", bytes.fromhex(bits))[0]
        if text is None:
            with pytest.raises(rfc8785.FloatDomainError):
                rfc8785.dumps(x)
        else:
            assert rfc8785.dumps(x).decode() == text


@pytest.mark.parametrize("canon", BOTH)
def test_rfc_primitives_example(canon):
    assert canon(RFC["primitives"]["input"].encode()).decode("utf-8") == RFC["primitives"]["output"]


@pytest.mark.parametrize("canon", BOTH)
def test_rfc_sorting_example(canon):
    out = canon(RFC["sorting"]["input"].encode())
    assert list(json.loads(out).values()) == RFC["sorting"]["order"]
    # U+FB33 after U+1F600: UTF-16 order, not the code point (UTF-8 byte) order
    assert out.index("\U0001F600".encode()) < out.index("\ufb33".encode())


@pytest.mark.parametrize("canon", BOTH)
@pytest.mark.parametrize("bits,text", RFC["numbers"], ids=[b for b, _ in RFC["numbers"]])
def test_rfc_number_table(canon, bits, text):
    x = struct.unpack(">d", bytes.fromhex(bits))[0]
    if text is None:  # NaN / Infinity: no JSON token reaches them except by overflow
        token = "NaN" if math.isnan(x) else "1e400"
        with pytest.raises(InvalidInputError):
            canon(b'{"n":%s}' % token.encode())
        return
    for token in {repr(x), "%.17e" % x, format(Decimal(x), "f")}:  # three spellings, one double
        assert canon(b'{"n":%s}' % token.encode()) == b'{"n":%s}' % text.encode(), token
    assert _jcs_py.format_number(x) == text


@needs_native
@pytest.mark.parametrize("bits,text", [n for n in RFC["numbers"] if n[1] is not None])
def test_rfc_number_table_native_formatter(bits, text):
    x = struct.unpack(">d", bytes.fromhex(bits))[0]
    assert digest._native_jcs_format(x) == text


# ------------------------------------------------------------------------------------------
# Rejections: the same InvalidInputError message on both paths


REJECT = [
    (b"[1]", "message is not a JSON object at byte 0"),
    (b' "x"', "message is not a JSON object at byte 1"),
    (b"", "invalid JSON: unexpected end of input at byte 0"),
    (b'{"a":1,"a":2}', 'duplicate key: "a" at byte 7'),
    (b'{"b":{"a":1,"\\u0061":2}}', 'duplicate key: "a" at byte 12'),  # equal after unescaping
    (b'{"z":1,"y":2,"z":3,"y":4}', 'duplicate key: "y" at byte 19'),  # the first pair in sorted order
    (b'{"%s":1,"%s":2}' % (b"k" * 30, b"k" * 30), 'duplicate key: "%s"... at byte 36' % (b"k" * 24).decode()),
    (b'{"a":NaN}', "invalid number: NaN/Infinity are not JSON at byte 5"),
    (b'{"a":[Infinity]}', "invalid number: NaN/Infinity are not JSON at byte 6"),
    (b'{"a":-Infinity}', "invalid number: NaN/Infinity are not JSON at byte 5"),
    (b'{"a":1e309}', "number out of range at byte 5"),
    (b'{"a":-1.7976931348623159e308}', "number out of range at byte 5"),  # rounds to -infinity
    (b'{"a":%d}' % (2 ** 1024 - 2 ** 970), "number out of range at byte 5"),  # the tie above the largest double
    (b'{"a":%d}' % (2 ** 1024 - 2 ** 970 - 1), None),  # just below it: the largest double
    (b'{"a":01}', "invalid number at byte 5"),
    (b'{"a":1.}', "invalid number at byte 5"),
    (b'{"a":1e}', "invalid number at byte 5"),
    (b'{"a":-}', "invalid number at byte 5"),
    (b'{"a":"\\ud800"}', "invalid escape: lone surrogate \\ud800 at byte 6"),
    (b'{"a":"\\udc00x"}', "invalid escape: lone surrogate \\udc00 at byte 6"),
    (b'{"a":"\\ud83d\\u0041"}', "invalid escape: lone surrogate \\ud83d at byte 6"),
    (b'{"a":"\\x"}', "invalid escape at byte 6"),
    (b'{"a":"\\u12G4"}', "invalid escape at byte 6"),
    (b'{"a":"\x01"}', "control character in string at byte 6"),
    (b'{"a":"\xc3\x28"}', "invalid UTF-8 at byte 6"),
    (b'{"a":"\xed\xa0\x80"}', "invalid UTF-8 at byte 6"),  # an encoded surrogate
    (b'{"a":"\xf4\x90\x80\x80"}', "invalid UTF-8 at byte 6"),  # above U+10FFFF
    (b'{"a":"\xc0\xaf"}', "invalid UTF-8 at byte 6"),  # overlong
    (b'{"a":"\xe2\x82', "invalid UTF-8 at byte 6"),  # truncated
    (b'{"a":1} x', "trailing characters at byte 8"),
    (b'{"a":1,}', "invalid JSON: expected a string key at byte 7"),
    (b'{"a" 1}', "invalid JSON: expected ':' at byte 5"),
    (b'{"a":1 "b":2}', "invalid JSON: expected ',' or '}' at byte 7"),
    (b'{"a":[1 2]}', "invalid JSON: expected ',' or ']' at byte 8"),
    (b'{"a":[1,]}', "invalid JSON: unexpected character at byte 8"),
    (b'{"a":tru}', "invalid JSON: unexpected character at byte 5"),
    (b'{"a":"abc', "invalid JSON: unexpected end of input at byte 9"),
    (b'{"a":' + b"[" * 126 + b"]" * 126 + b"}", None),  # 127 levels: accepted
    (b'{"a":' + b"[" * 127 + b"]" * 127 + b"}", "nesting deeper than 127 levels at byte 131"),
    (b"{" + b'"a":{' * 100_000, "nesting deeper than 127 levels at byte 635"),
]


@pytest.mark.parametrize("canon", BOTH)
@pytest.mark.parametrize("data,message", REJECT, ids=range(len(REJECT)))
def test_rejections(canon, data, message):
    if message is None:
        assert canon(data)
        return
    with pytest.raises(InvalidInputError) as exc:
        canon(data)
    assert str(exc.value) == message


@pytest.mark.parametrize("canon", BOTH)
def test_error_offset_counts_bytes_not_characters(canon):
    with pytest.raises(InvalidInputError, match="expected a string key at byte 15$"):
        canon('{"é€😀":1,}'.encode())


def test_transcript_error_names_message_index():
    with pytest.raises(InvalidInputError, match=r"^message 1: duplicate key"):
        digest.transcript_digest([b'{"a":1}', b'{"a":1,"a":1}'], "jcs")
    state = digest.TranscriptState.new("jcs")
    with pytest.raises(InvalidInputError, match=r"^message 0: message is not a JSON object"):
        state.absorb([b"[]"])
    assert state.count == 0 and state.digest() == "sha256:" + hashlib.sha256(b"[]").hexdigest()


# ------------------------------------------------------------------------------------------
# Generated JSON against the rfc8785 package


# every escape, controls, quotes, U+007F, U+2028/2029, BMP private use above the surrogates,
# astral characters (UTF-16 order differs from UTF-8 order between these two groups)
CHARS = ['a', 'Z', '0', ' ', '"', '\\', '/', "'", '\b', '\f', '\n', '\r', '\t', '\x00', '\x01', '\x1f', '\x7f',
         'é', 'ö', '€', '\u2028', '\u2029', '\ud7ff', '\ue000', '\uf8ff', '\ufb33', '\ufeff', '\uffff', '\U00010000',
         '\U0001f600', '\U0001f602', '\U0010ffff', '本', '\u0301']
KEYS = ["", "a", "b", "A", "aa", "a\x00", "1", "10", "9", "\r", "\u0080", "ö", "€", "\ue000", "\uffff", "\ufb33",
        "\U0001f600", "\U00010000", "\U0010ffff", "😀a", "\ufffdz", "key", "type", "role", "content", "id"]


def _double(r: random.Random) -> float:
    while True:
        x = struct.unpack("<d", struct.pack("<Q", r.getrandbits(64)))[0]
        if math.isfinite(x):
            return x


def _next_up(x: float) -> float:
    return struct.unpack("<d", struct.pack("<Q", struct.unpack("<Q", struct.pack("<d", x))[0] + 1))[0]


def number_token(r: random.Random) -> str:
    """A JSON number token within the double range: doubles over the whole range (subnormals
    from the random bit patterns), integers around 2^53, exact halfway points between doubles,
    long mantissas."""
    while True:
        t = _any_number_token(r)
        if abs(float(t)) != float("inf"):  # e.g. "%.0e" of 1.8e308 is 2e+308
            return t


def _any_number_token(r: random.Random) -> str:
    k = r.randrange(10)
    if k == 0:
        return str(r.choice([0, -0, 1, -1, 2 ** 53, 2 ** 53 + 1, -(2 ** 53) - 1, 2 ** 63, 10 ** 21, 10 ** 22]) +
                   r.randrange(-3, 4))
    if k == 1:
        return str(2 ** 53 + r.randrange(-4096, 4096)) + "0" * r.randrange(3)
    if k == 2:
        return str(r.randrange(10 ** r.randrange(1, 30)) * r.choice([1, -1]))
    x = _double(r)
    if k == 3:
        return repr(x)
    if k == 4:
        return ("%.*e" % (r.randrange(0, 20), x)).replace("e", r.choice("eE"))
    if k == 5:
        return format(Decimal(x), r.choice("ef"))  # the exact value: up to ~770 significant digits
    if k == 6:  # exactly halfway between x and its neighbour above: ties to even
        y = _next_up(abs(x))
        if y == float("inf"):
            return repr(x)
        mid = (Decimal(abs(x)) + Decimal(y)) / 2
        return ("-" if x < 0 else "") + format(mid, "e")
    if k == 7:  # just above a halfway point, by a digit far out
        y = _next_up(abs(x))
        if y == float("inf"):
            return repr(x)
        mant, exp = format((Decimal(abs(x)) + Decimal(y)) / 2, "e").split("e")
        return (mant if "." in mant else mant + ".") + "0" * r.randrange(900) + "1e" + exp
    if k == 8:  # subnormals on purpose
        return repr(struct.unpack("<d", struct.pack("<Q", r.getrandbits(52)))[0] * r.choice([1, -1]))
    return "0." + "0" * r.randrange(330) + str(r.randrange(1, 10 ** 20)) + r.choice(["", "e5", "E-3", "e+0"])


class Num:
    __slots__ = ("token",)

    def __init__(self, token: str) -> None:
        self.token = token


def gen_value(r: random.Random, depth: int):
    k = r.random()
    if depth < 126 and k < 0.12:
        return {gen_key(r, i): gen_value(r, depth + 1) for i in range(r.randrange(6))}
    if depth < 126 and k < 0.22:
        return [gen_value(r, depth + 1) for _ in range(r.randrange(6))]
    if k < 0.55:
        return Num(number_token(r))
    if k < 0.9:
        return "".join(r.choice(CHARS) for _ in range(r.randrange(12)))
    return r.choice([None, True, False])


def gen_key(r: random.Random, i: int) -> str:
    return r.choice(KEYS) + ("" if r.random() < 0.6 else "".join(r.choice(CHARS) for _ in range(r.randrange(4))))


def gen_doc(r: random.Random):
    if r.random() < 0.02:  # a deep chain up to the 127-level limit
        v = gen_value(r, 126)
        for _ in range(r.randrange(120, 127)):
            v = [v] if r.random() < 0.5 else {"k": v}
        return {"deep": v}
    return {gen_key(r, i): gen_value(r, 1) for i in range(r.randrange(1, 9))}


def spell_str(s: str, r: random.Random) -> str:
    out = []
    for c in s:
        cp = ord(c)
        p = r.random()
        if c in '"\\' or cp < 0x20:
            short = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}
            out.append(short[c] if c in short and p < 0.6 else "\\u%04x" % cp if p < 0.8 else "\\u%04X" % cp)
        elif p < 0.15:
            if cp > 0xFFFF:
                v = cp - 0x10000
                out.append("\\u%04x\\u%04X" % (0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF)))
            else:
                out.append("\\u%04x" % cp)
        elif c == "/" and p < 0.5:
            out.append("\\/")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def ws(r: random.Random) -> str:
    return "" if r.random() < 0.7 else "".join(r.choice(" \t\n\r") for _ in range(r.randrange(1, 4)))


def spell(v, r: random.Random) -> str:
    if isinstance(v, Num):
        return v.token
    if isinstance(v, str):
        return spell_str(v, r)
    if v is None or v is True or v is False:
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ws(r) + ("," + ws(r)).join(spell(x, r) + ws(r) for x in v) + "]"
    items = list(v.items())
    r.shuffle(items)
    return "{" + ws(r) + ("," + ws(r)).join(spell_str(k, r) + ws(r) + ":" + ws(r) + spell(x, r) + ws(r)
                                             for k, x in items) + "}"


def generated_docs(r: random.Random, n: int):
    for _ in range(n):
        yield (ws(r) + spell(gen_doc(r), r) + ws(r)).encode("utf-8")


@pytest.mark.parametrize("canon", BOTH)
def test_generated_json_matches_rfc8785_package(request, canon):
    r = seeded(request)
    checked = 0
    for text in generated_docs(r, DOCS):
        assert canon(text) == oracle(text), text[:2000]
        checked += 1
    assert checked == DOCS


@pytest.mark.parametrize("canon", BOTH)
def test_generated_numbers_match_rfc8785_package(request, canon):
    """Many numbers per document: every category of number_token, both signs."""
    r = seeded(request)
    for _ in range(max(1, DOCS // 5)):
        tokens = [number_token(r) for _ in range(40)]
        text = ('{"n":[' + ",".join(tokens) + "]}").encode()
        assert canon(text) == oracle(text), text[:3000]


def test_transcript_digest_matches_rfc8785_package(request):
    r = seeded(request)
    docs = list(generated_docs(r, 50))
    expected = "sha256:" + hashlib.sha256(b"[" + b",".join(oracle(d) for d in docs) + b"]").hexdigest()
    assert digest.transcript_digest(docs, "jcs") == expected
    assert _jcs_py.transcript_digest(docs) == expected
    # streamed in uneven batches, resumed from its stored bytes between batches: O(delta)
    state = digest.TranscriptState.new("jcs")
    i = 0
    while i < len(docs):
        step = r.randrange(1, 8)
        state = digest.TranscriptState.from_bytes(state.to_bytes())
        state.absorb(docs[i:i + step])
        i += step
    assert state.profile == "jcs" and state.count == len(docs)
    assert state.digest() == expected
    assert state.to_bytes()[4] == 74  # the profile byte of jcs


def test_dict_messages_are_serialised_then_canonicalised():
    """A dict message is stored as its JSON text (insertion order) and hashed canonically;
    its integers (64-bit, the store's JSON writer) are read back as doubles like any JCS number."""
    item = {"type": "function_call", "name": "get_weather", "arguments": '{"city": "Paris"}',
            "call_id": "call_1", "n": [1.5, 2 ** 63, -0.0, 2 ** 53 + 1, 1e21, 5e-324]}
    assert digest.canonical_message(item, "jcs") == rfc8785.dumps(
        {**item, "n": [1.5, float(2 ** 63), 0.0, float(2 ** 53 + 1), 1e21, 5e-324]})
    with pytest.raises(InvalidInputError, match="does not fit"):
        digest.canonical_message({"n": 2 ** 64}, "jcs")


# ------------------------------------------------------------------------------------------
# Hostile bytes: native against Python, same bytes or the same error message

BAD_UTF8 = [b"\x80", b"\xbf", b"\xc0\x80", b"\xc1\xbf", b"\xc2", b"\xe0\x80\x80", b"\xe0\x9f\xbf", b"\xed\xa0\x80",
            b"\xed\xbf\xbf", b"\xef\xbf", b"\xf0\x80\x80\x80", b"\xf0\x8f\xbf\xbf", b"\xf4\x90\x80\x80", b"\xf5\x80\x80\x80",
            b"\xff", b"\xfe", b"\xe2\x28\xa1", b"\xf0\x9f\x98"]
INSERTS = [b'"', b"\\", b"\\u", b"\\ud800", b"\\udc00", b"\\ud800\\u0041", b"\\uD83D\\uDE00", b"{", b"}", b"[", b"]",
           b",", b":", b"-", b"0", b"01", b"1e", b"1e999", b"-1e-999", b"1.", b".5", b"NaN", b"Infinity", b"-Infinity",
           b"true", b"nul", b"\x00", b"\x1f", b"\t", b"\xef\xbb\xbf", b'"a":1,', b'"a":', b"1" * 400, b"e" * 3,
           b"9" * 30 + b"e-400", b"2.4703282292062327e-324", b"1.7976931348623158e308"]


def assert_python_parsers_agree(data: bytes) -> None:
    """The stdlib fast path accepts only what the full parser accepts, with the same bytes."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    fast = _jcs_py._fast(text)
    try:
        full = _jcs_py._canonical_text(text).encode("utf-8")
    except _jcs_py._Fail:
        full = None
    if fast is not None:
        assert fast == full, data


def assert_same(data: bytes) -> None:
    assert_python_parsers_agree(data)
    ref = outcome(py_jcs, data)
    nat = outcome(native_jcs, data)
    assert nat == ref, f"input {data!r}\n python: {ref}\n native: {nat}"


@needs_native
def test_mutated_documents_native_vs_python(request):
    r = seeded(request)
    n = 0
    for text in generated_docs(r, DOCS):
        buf = bytearray(text)
        for _ in range(r.randrange(1, 4)):
            how = r.randrange(5)
            pos = r.randrange(len(buf) + 1)
            if how == 0:
                buf[pos:pos] = r.choice(INSERTS + BAD_UTF8)
            elif how == 1 and buf:
                del buf[pos:pos + r.randrange(1, 4)]
            elif how == 2 and pos < len(buf):
                buf[pos] = r.randrange(256)
            elif how == 3:
                del buf[pos:]
            else:
                buf[pos:pos] = b'"dup":1,"dup":2,' if r.random() < 0.5 else b'"\\u0064up":0,'
        assert_same(bytes(buf))
        assert_same(text)
        n += 2
    assert n == 2 * DOCS


@needs_native
@SETTINGS
@given(st.binary(max_size=300))
def test_random_bytes_native_vs_python(data):
    assert_same(data)
    assert_same(b'{"k":' + data + b"}")


@needs_native
@SETTINGS
@given(st.text(alphabet=st.sampled_from(list('{}[],:"\\ -0123456789.eE+truefalsnNIy\x00\x1f\u00e9\U0001f600')),
               max_size=60))
def test_json_like_text_native_vs_python(text):
    assert_same(text.encode("utf-8"))
    assert_same(("{" + text).encode("utf-8"))


@needs_native
@pytest.mark.parametrize("depth", [125, 126, 127, 128, 129, 5000])
def test_deep_nesting_native_vs_python(depth):
    for open_, close in ((b"[", b"]"), (b'{"a":', b"}")):
        assert_same(b'{"x":' + open_ * depth + b"1" + close * depth + b"}")
        assert_same(b'{"x":' + open_ * depth)


@needs_native
@pytest.mark.parametrize("n", [13, 100, 5000])
def test_wide_objects_native_vs_python(request, n):
    """Objects past the insertion-sort size: the merge sort orders and finds duplicates alike."""
    r = seeded(request)
    names = [spell_str(r.choice(KEYS) + str(i), r) for i in range(n)]
    r.shuffle(names)
    assert_same(("{" + ",".join(f"{k}:{i}" for i, k in enumerate(names)) + "}").encode())
    names.insert(r.randrange(len(names)), names[r.randrange(len(names))])
    assert_same(("{" + ",".join(f"{k}:{i}" for i, k in enumerate(names)) + "}").encode())


@needs_native
def test_utf8_at_every_offset_native_vs_python():
    """Inputs long enough for the 16-byte validator: every bad sequence and every valid
    multibyte character at every offset (so across block boundaries), and every truncation."""
    doc = '{"text":"%s","k":["%s",1]}' % ("a" * 70 + "é€😀" + "b" * 40, "z" * 50)
    raw = doc.encode()
    string_spans = [i for i in range(len(raw)) if 10 <= i < 120]
    checked = 0
    for i in string_spans:
        for seq in BAD_UTF8 + ["é".encode(), "€".encode(), "😀".encode(), "\U0010ffff".encode(), b"\xef\xbf\xbf"]:
            data = raw[:i] + seq + raw[i:]
            assert_same(data)
            checked += 1
    for cut in range(64, len(raw) + 1):
        assert_same(raw[:cut])
    for i in range(40):  # an invalid byte outside any string, before and after 16-byte marks
        assert_same(b" " * i + raw[:-1] + b"\xff}")
    assert checked > 2000


@needs_native
def test_escape_runs_at_every_alignment_native_vs_python():
    """Value strings dense with escapes, shifted through every position of a 16-byte block,
    with one odd byte (a non-canonical escape, a control, a bad escape, the end) dropped in."""
    body = b'{\\"query\\": \\"a\\\\b\\", \\"n\\": [1,\\t2]}\\n' * 3
    odd = [b"", b"\\/", b"\\u0041", b"\\u001F", b"\\u001f", b"\x01", b"\\x", b"\\", b"\\ud83d\\ude00"]
    for shift in range(17):
        for extra in odd:
            for at in (0, 15, 16, 17, len(body)):
                s = b"x" * shift + body[:at] + extra + body[at:]
                assert_same(b'{"arguments":"' + s + b'","k":1}')
                assert_same(b'{"arguments":"' + s)  # unterminated


def test_python_full_parser_alone_matches_rfc8785_package(request):
    """The reference's own parser (not only the stdlib fast path in front of it) on generated JSON."""
    r = seeded(request)
    n = 0
    for text in generated_docs(r, max(1, DOCS // 3)):
        full = _jcs_py._canonical_text(text.decode("utf-8")).encode("utf-8")
        assert full == oracle(text) == _jcs_py._fast(text.decode("utf-8")), text[:2000]
        n += 1
    assert n == max(1, DOCS // 3)


@pytest.mark.parametrize("data,message", REJECT, ids=range(len(REJECT)))
def test_fast_path_declines_what_the_rules_refuse(data, message):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return  # refused before either parser runs
    if message is None:
        assert _jcs_py._fast(text) == _jcs_py._canonical_text(text).encode("utf-8")
    else:
        assert _jcs_py._fast(text) is None


@SETTINGS
@given(st.text(alphabet=st.sampled_from(list('{}[],:"\\ -0123456789.eE+truefalsnNIyu\x00\x1f\u00e9\U0001f600')),
               max_size=60))
def test_python_parsers_agree_on_json_like_text(text):
    assert_python_parsers_agree(("{" + text).encode("utf-8"))
    assert_python_parsers_agree(('{"a":' + text).encode("utf-8"))
