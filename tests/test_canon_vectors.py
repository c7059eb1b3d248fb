"""Known-answer vectors for the canonical message form, run against both implementations
(``IMPLS``: the pure-Python reference and, when it is built, the native module through
engine.digest; both take ``canonical_message(data: bytes, profile)`` and
``transcript_digest(list[bytes], profile)``).

* ``vectors/meerkat-0.8.26-oracle.jsonl``: 2,404 transcripts and probes digested by meerkat's own
  compiled types and digest functions (release v0.8.26), with the exact bytes hashed per message
  (vectors/README.md says how they were made).
* ``vectors/meerkat-0.8.26-sample.jsonl``: 40 transcripts with their f3, f2 and bare digests.
* ``vectors/{strings,numbers,key_order,images,model}.jsonl``: one message each, ``{"name",
  "profile", "message", "canonical"}``, written by hand from the rules in docs/messages.md.
* ``vectors/bad_inputs.jsonl``: ``{"name", "message" | "message_hex", "error", "profiles"?,
  "strict"?}``: every listed profile (all three by default) refuses the message, the first one
  with exactly this error text; with ``strict`` only a strict decode refuses it.
"""

from __future__ import annotations

import collections
import hashlib
import json
import math
import os
import struct

import pytest

from engine import _canon_py, digest
from engine.errors import InvalidInputError

from .conftest import ORACLE_VECTORS, SAMPLE_VECTORS, vector_messages

IMPLS = [pytest.param(_canon_py, id="python"),
         pytest.param(digest, id="native", marks=pytest.mark.skipif(
             digest.DIGEST_IMPL != "native", reason=f"native path not loaded: {digest.NATIVE_ERROR}"))]
PROFILES = _canon_py.PROFILES

HERE = os.path.dirname(__file__)
VECTORS = os.path.join(HERE, "vectors")
GOOD_FILES = ["strings.jsonl", "numbers.jsonl", "key_order.jsonl", "images.jsonl", "model.jsonl"]


def _lines(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _good_cases():
    cases = []
    for name in GOOD_FILES:
        for row in _lines(os.path.join(VECTORS, name)):
            cases.append(pytest.param(row, id="%s:%s:%s" % (name[:-6], row["profile"], row["name"])))
    return cases


def _bad_cases():
    return [pytest.param(row, id=row["name"]) for row in _lines(os.path.join(VECTORS, "bad_inputs.jsonl"))]


def _bad_bytes(row) -> bytes:
    return bytes.fromhex(row["message_hex"]) if "message_hex" in row else row["message"].encode("utf-8")


def _strict(impl, data, profile):
    if impl is _canon_py:
        return _canon_py.canonical_message(data, profile, True)
    return digest.canonical_message(data, profile, strict=True)


@pytest.fixture(params=IMPLS)
def impl(request):
    return request.param


# ---------------------------------------------------------------- meerkat's compiled types

_ORACLE = _lines(ORACLE_VECTORS)


def test_oracle_vectors_are_complete():
    """The file holds what its provenance says (tests/vectors/README.md)."""
    assert len(_ORACLE) == 2404
    kinds = collections.Counter(row["name"].split("/")[0] for row in _ORACLE)
    assert kinds == {"transcript": 2000, "probe": 404}
    counts = collections.Counter((p, row[p] if row[p] in ("reject", "nondeterministic") else "digest")
                                 for row in _ORACLE for p in PROFILES)
    assert counts[("f3", "digest")] == 1798 + 311 and counts[("f3", "reject")] == 202 + 93
    assert counts[("f2", "digest")] == 1354 + 292 and counts[("f2", "reject")] == 646 + 112
    assert counts[("bare", "digest")] == 1699 + 297 and counts[("bare", "nondeterministic")] == 99 + 14


@pytest.mark.parametrize("profile", PROFILES)
def test_oracle_vectors(impl, profile):
    """Every transcript digests as meerkat's compiled code digests it, or is refused where meerkat
    refuses it (bare's "nondeterministic": a missing created_at decoded as the current time, for
    which no digest is reproducible; mobstore refuses those too)."""
    wrong = []
    for row in _ORACLE:
        want = "reject" if row[profile] in ("reject", "nondeterministic") else row[profile]
        try:
            got = impl.transcript_digest(vector_messages(row), profile)
        except InvalidInputError as exc:
            got = "reject (%s)" % exc
        if got != want and not (want == "reject" and got.startswith("reject")):
            wrong.append("%s: want %s, got %s" % (row["name"], want, got[:200]))
    assert not wrong, "%d of %d differ:\n%s" % (len(wrong), len(_ORACLE), "\n".join(wrong[:10]))


@pytest.mark.parametrize("profile", PROFILES)
def test_oracle_vectors_per_message_bytes(impl, profile):
    """Finer than the digests: the exact bytes meerkat hashes for each message."""
    wrong = []
    for row in _ORACLE:
        canon = row[profile + "_canonical"]
        if canon is None:
            continue
        for i, message in enumerate(vector_messages(row)):
            got = impl.canonical_message(message, profile).decode("utf-8")
            if got != canon[i]:
                wrong.append("%s[%d]:\n want %s\n got  %s" % (row["name"], i, canon[i][:300], got[:300]))
    assert not wrong, "%d differ:\n%s" % (len(wrong), "\n".join(wrong[:5]))


# ---------------------------------------------------------------- the 40-transcript sample

_SAMPLE = _lines(SAMPLE_VECTORS)


def test_sample_vector_count():
    assert len(_SAMPLE) == 40


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("index", range(40))
def test_sample_vectors(impl, index, profile):
    row = _SAMPLE[index]
    messages = vector_messages(row)
    if row[profile] == "reject":
        with pytest.raises(InvalidInputError):
            impl.transcript_digest(messages, profile)
    else:
        assert impl.transcript_digest(messages, profile) == row[profile]


# ---------------------------------------------------------------- own vectors

@pytest.mark.parametrize("row", _good_cases())
def test_known_answer(impl, row):
    got = impl.canonical_message(row["message"].encode("utf-8"), row["profile"])
    assert got.decode("utf-8") == row["canonical"]
    # the digest of a one-message transcript is the hash of its framing
    h = hashlib.sha256(b"[" + row["canonical"].encode("utf-8") + b"]").hexdigest()
    want = h if row["profile"] == "bare" else "sha256:" + h
    assert impl.transcript_digest([row["message"].encode("utf-8")], row["profile"]) == want


@pytest.mark.parametrize("row", _bad_cases())
def test_bad_input_rejected(impl, row):
    """The error names the JSON path, the field and what was allowed, in the same words on both
    paths; a strict-only row is accepted by the lenient decode."""
    data = _bad_bytes(row)
    if row.get("strict"):
        impl.canonical_message(data, "f3")  # the lenient decode drops the key
        with pytest.raises(InvalidInputError) as info:
            _strict(impl, data, "f3")
        assert str(info.value) == row["error"]
        return
    profiles = row.get("profiles", list(PROFILES))
    for profile in PROFILES:
        if profile not in profiles:
            impl.canonical_message(data, profile)
            continue
        with pytest.raises(InvalidInputError) as info:
            impl.canonical_message(data, profile)
        if profile == profiles[0]:
            assert str(info.value) == row["error"]
        with pytest.raises(InvalidInputError) as info:
            impl.transcript_digest([b'{"role":"user","content":"ok","created_at":"2026-01-01T00:00:00Z"}', data],
                                   profile)
        assert str(info.value).startswith("message 1: ")


@pytest.mark.parametrize("message,error", [
    # the errors of the brief's own examples, word for word
    (b'{"content":"x"}', '$: missing field "role"'),
    (b'{"role":"human"}',
     '$.role: unknown role "human" (expected one of system, system_notice, user, block_assistant, tool_results)'),
    (b'{"role":"block_assistant","blocks":[{"block_type":"img"}],"stop_reason":"end_turn"}',
     '$.blocks[0].block_type: unknown assistant block type "img" (expected one of text, transcript, reasoning, '
     'tool_use, server_tool_content, image)'),
    (b'{"role":"user","content":"x","render_metadata":{"class":"x"}}',
     '$.render_metadata.class: unknown variant "x" (expected one of user_prompt, peer_message, peer_request, '
     'peer_response, external_event, flow_step, continuation, system_notice, tool_scope_notice, ops_progress)'),
])
def test_error_texts(impl, message, error):
    with pytest.raises(InvalidInputError) as info:
        impl.canonical_message(message, "f3")
    assert str(info.value) == error


def test_transcript_error_names_the_message(impl):
    with pytest.raises(InvalidInputError) as info:
        impl.transcript_digest([b'{"role":"user"}'], "f3")
    assert str(info.value) == 'message 0: $: missing field "content"'


@pytest.mark.parametrize("text", [
    "[" * 100000 + "]" * 100000,
    '{"a":' * 100000 + "1" + "}" * 100000,
    "[" * 100000,
    '{"role":"user","content":[{"type":"structured","data":' + "[" * 100000 + "]" * 100000 + "}]}",
], ids=["arrays", "objects", "unclosed", "in-slot"])
def test_huge_nesting_is_invalid_input(impl, text):
    with pytest.raises(InvalidInputError) as info:
        impl.canonical_message(text.encode(), "f3")
    assert "nesting deeper than 127 levels" in str(info.value)


def test_depth_boundary(impl):
    # serde_json's remaining_depth = 128: 127 nested containers parse, 128 do not
    def msg(n):
        return ('{"role":"user","content":[{"type":"structured","data":%s}]}' % ("[" * (n - 3) + "]" * (n - 3))).encode()
    impl.canonical_message(msg(_canon_py.MAX_DEPTH - 1), "f3")
    with pytest.raises(InvalidInputError):
        impl.canonical_message(msg(_canon_py.MAX_DEPTH), "f3")


@pytest.mark.parametrize("profile", ["F3", "f1", "", None, 3])
def test_unknown_profile(impl, profile):
    with pytest.raises(InvalidInputError):
        impl.canonical_message(b'{"role":"system","content":"c"}', profile)
    with pytest.raises(InvalidInputError):
        impl.transcript_digest([], profile)


def test_empty_transcript(impl):
    h = hashlib.sha256(b"[]").hexdigest()
    assert impl.transcript_digest([], "f3") == "sha256:" + h
    assert impl.transcript_digest([], "f2") == "sha256:" + h
    assert impl.transcript_digest([], "bare") == h


def test_framing_joins_with_commas(impl):
    a = b'{"role":"system","content":"a","created_at":"2026-01-02T03:04:05Z"}'
    b = b'{"content":"b","role":"user","created_at":"2026-01-02T03:04:05Z"}'
    body = b"[" + impl.canonical_message(a, "bare") + b"," + impl.canonical_message(b, "bare") + b"]"
    assert body == (b'[{"role":"system","content":"a","created_at":"2026-01-02T03:04:05Z"},'
                    b'{"role":"user","content":"b","created_at":"2026-01-02T03:04:05Z"}]')
    assert impl.transcript_digest([a, b], "bare") == hashlib.sha256(body).hexdigest()


def test_non_bytes_message_rejected():
    for bad in ["{}", None, 1, {"role": "system"}]:
        with pytest.raises(InvalidInputError):
            _canon_py.canonical_message(bad, "f3")


def test_bytes_like_accepted():
    data = b'{"role":"system","content":"c"}'
    want = _canon_py.canonical_message(data, "f3")
    assert _canon_py.canonical_message(bytearray(data), "f3") == want
    assert _canon_py.canonical_message(memoryview(data), "f3") == want


def test_mutated_messages_raise_only_invalid_input(impl, rng):
    """Seeded mutations of valid messages: each either canonicalises or raises
    InvalidInputError (never RecursionError, UnicodeDecodeError, KeyError...)."""
    seeds = [row["message"].encode() for name in GOOD_FILES for row in _lines(os.path.join(VECTORS, name))]
    seeds += [m for row in _SAMPLE for m in vector_messages(row)]
    toks = [b'"', b"{", b"}", b"[", b"]", b",", b":", b"\\", b"\\ud800", b"-", b"0", b"1e999", b"null",
            b'"role"', b'"type"', b'"data"', b'"args"', b"\xff", b"\xc3", b"\x00", b'"image"', b'"inline"', b"-0"]
    accepted = 0
    for _ in range(1500):
        m = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 3)):
            pos = rng.randrange(len(m) + 1)
            op = rng.random()
            if op < 0.3:
                del m[pos:pos + rng.randint(1, 5)]
            elif op < 0.7:
                m[pos:pos] = rng.choice(toks)
            elif m:
                m[min(pos, len(m) - 1)] = rng.randrange(256)
        for profile in PROFILES:
            try:
                impl.canonical_message(bytes(m), profile)
                accepted += 1
            except InvalidInputError:
                pass
    assert accepted > 0  # the mutations are not all fatal: both paths ran


# ---------------------------------------------------------------- numbers API

@pytest.mark.parametrize("token,value", [
    ("0.1", 0.1), ("-3.089900467300506e+65", -3.0899004673005063e+65), ("1e-400", 0.0),
    ("-0", -0.0), ("18446744073709551616", 18446744073709551616.0), ("4.9e-324", 5e-324),
    ("123", 123.0), ("1E2", 100.0),
])
def test_parse_float_serde(token, value):
    got = _canon_py.parse_float_serde(token)
    assert type(got) is float and got == value and math.copysign(1, got) == math.copysign(1, value)


@pytest.mark.parametrize("token", ["1e400", "-1e400", "1.8e308", "1e99999999999", "01", "1.", "NaN", "", " 1"])
def test_parse_float_serde_rejects(token):
    with pytest.raises(InvalidInputError):
        _canon_py.parse_float_serde(token)


def test_parse_float_serde_exact_in_fast_range(rng):
    # serde_json's f64_from_parts (src/de.rs:624-660 at v1.0.150): digit strings < 2^53 with
    # |effective exponent| <= 22 parse exactly
    for _ in range(2000):
        digits = rng.randrange(1, 1 << 53)
        exp = rng.randrange(-22, 23)
        token = "%de%d" % (digits, exp)
        if abs(exp + len(str(digits)) - 1) > 22:
            continue
        assert _canon_py.parse_float_serde(token) == float(token)


@pytest.mark.parametrize("x,text", [
    (0.0, "0.0"), (-0.0, "-0.0"), (1.0, "1.0"), (0.1, "0.1"), (1e-5, "0.00001"), (1e-6, "1e-6"),
    (1e15, "1000000000000000.0"), (1e16, "1e+16"), (1.5e300, "1.5e+300"), (5e-324, "5e-324"),
    (123.456, "123.456"), (-2.5e-3, "-0.0025"), (1.7976931348623157e308, "1.7976931348623157e+308"),
    (9999999999999998.0, "9999999999999998.0"), (1.2345e-5, "0.000012345"), (2.0 ** 70, "1.1805916207174113e+21"),
])
def test_format_float(x, text):
    assert _canon_py.format_float(x) == text


def test_format_float_round_trips(rng):
    for _ in range(3000):
        x = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(x):
            assert float(_canon_py.format_float(x)) == x


@pytest.mark.parametrize("x", [math.nan, math.inf, -math.inf])
def test_format_float_rejects_non_finite(x):
    with pytest.raises(InvalidInputError):
        _canon_py.format_float(x)


# ---------------------------------------------------------------- dumps_value

def test_dumps_value_known_answers():
    d = {"b": 1, "a": [1.0, -0.0, 1e16, None, True, False, "\u2028/\x7f\x1f\"\\"], "": {}, "k": ()}
    assert _canon_py.dumps_value(d) == (
        '{"b":1,"a":[1.0,-0.0,1e+16,null,true,false,"\u2028/\x7f\\u001f\\"\\\\"],"":{},"k":[]}').encode()
    assert _canon_py.dumps_value(18446744073709551615) == b"18446744073709551615"
    assert _canon_py.dumps_value(-9223372036854775808) == b"-9223372036854775808"


@pytest.mark.parametrize("bad", [
    math.nan, math.inf, [-math.inf], 1 << 64, -(1 << 63) - 1, "\ud800", {"k": "a\udfffb"}, {1: "x"},
    {("t",): 1}, {1.5}, object(), b"bytes",
], ids=repr)
def test_dumps_value_rejects(bad):
    with pytest.raises(InvalidInputError):
        _canon_py.dumps_value(bad)


def test_dumps_value_depth_limit():
    deep = []
    for _ in range(100000):
        deep = [deep]
    with pytest.raises(InvalidInputError):
        _canon_py.dumps_value(deep)


def test_dumps_value_feeds_canonical_message(impl):
    msg = {"created_at": "2026-01-02T03:04:05Z", "content": [{"type": "structured", "data": {"b": 0.5, "a": 1}}],
           "role": "user"}
    assert impl.canonical_message(_canon_py.dumps_value(msg), "f3") == (
        b'{"role":"user","content":[{"type":"structured","data":{"a":1,"b":0.5}}],"created_at":"1970-01-01T00:00:00Z"}')


# ---------------------------------------------------------------- Sha256

def test_sha256_matches_hashlib_all_lengths():
    data = bytes(range(256)) * 2
    for n in range(0, 301):
        assert _canon_py.Sha256(data[:n]).hexdigest() == hashlib.sha256(data[:n]).hexdigest(), n


def test_sha256_split_export_resume():
    data = bytes((i * 7 + 3) & 0xFF for i in range(300))
    for n in (0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 200, 300):
        for cut in sorted({0, 1, n // 3, n // 2, n - 1, n} - {-1}):
            if not 0 <= cut <= n:
                continue
            h = _canon_py.Sha256()
            h.update(data[:cut])
            state = h.export()
            assert len(state) == 44 + cut % 64
            assert state[:4] == b"MSS1" and struct.unpack(">Q", state[36:44])[0] == cut
            assert state[44:] == data[cut - cut % 64:cut]
            r = _canon_py.Sha256.resume(state)
            r.update(data[cut:n])
            assert r.digest() == hashlib.sha256(data[:n]).digest(), (n, cut)
            assert h.export() == state  # digest/export are non-destructive
            c = h.copy()
            c.update(b"x")
            assert h.export() == state


def test_sha256_fresh_state():
    iv = struct.pack(">8L", 0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
                     0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19)
    assert _canon_py.Sha256().export() == b"MSS1" + iv + b"\x00" * 8


def test_sha256_digest_is_non_destructive():
    h = _canon_py.Sha256(b"abc")
    assert h.hexdigest() == h.hexdigest() == hashlib.sha256(b"abc").hexdigest()
    h.update(b"def")
    assert h.hexdigest() == hashlib.sha256(b"abcdef").hexdigest()


@pytest.mark.parametrize("state", [
    b"", b"MSS1", b"MSS2" + b"\x00" * 40, b"MSS1" + b"\x00" * 39,
    b"MSS1" + b"\x00" * 32 + struct.pack(">Q", 5),                    # tail missing
    b"MSS1" + b"\x00" * 32 + struct.pack(">Q", 64) + b"x",            # tail too long
    b"MSS1" + b"\x00" * 32 + struct.pack(">Q", 1 << 61),              # longer than SHA-256 allows
    "MSS1",
])
def test_sha256_resume_rejects(state):
    with pytest.raises(InvalidInputError):
        _canon_py.Sha256.resume(state)
