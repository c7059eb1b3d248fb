"""engine.digest: public API, native-specific behaviour, strict transcript states, and meerkat's
known-answer sample on both implementations (native and pure Python)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import random
import subprocess
import sys
import threading

import pytest

from engine import _canon_py, digest
from engine.errors import InvalidInputError

from .conftest import SAMPLE_VECTORS, vector_messages

NATIVE = digest.DIGEST_IMPL == "native"
needs_native = pytest.mark.skipif(not NATIVE, reason=f"native path not loaded: {digest.NATIVE_ERROR}")


def _load_pure_digest():
    """A second, independent copy of engine.digest imported with
    MOBSTORE_PURE_PYTHON=1, so both paths run in one process."""
    old = os.environ.get("MOBSTORE_PURE_PYTHON")
    os.environ["MOBSTORE_PURE_PYTHON"] = "1"
    try:
        spec = importlib.util.spec_from_file_location("engine._digest_pure_for_tests", digest.__file__)
        mod = importlib.util.module_from_spec(spec)
        mod.__package__ = "engine"
        spec.loader.exec_module(mod)
        return mod
    finally:
        if old is None:
            del os.environ["MOBSTORE_PURE_PYTHON"]
        else:
            os.environ["MOBSTORE_PURE_PYTHON"] = old


PURE = _load_pure_digest()
IMPLS = [pytest.param(digest, id=digest.DIGEST_IMPL), pytest.param(PURE, id="python")]


def load_vectors():
    with open(SAMPLE_VECTORS, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


RUN_ID = "019fb032-f803-7f13-9b96-870ee10b4651"
MSG = (b'{"role":"user","content":[{"type":"text","text":"hi"}],'
       b'"identity":{"run_id":"019FB032F8037F139B96870EE10B4651"},"created_at":"2026-07-29T23:25:58.138145Z"}')
TOOL = (b'{"role":"block_assistant","stop_reason":"tool_use","created_at":"2026-01-01T00:00:00Z",'
        b'"blocks":[{"block_type":"tool_use","data":{"id":"t","name":"n","args":{"b": 1.50, "a": [1e2]}}}]}')


# ---------------------------------------------------------------- vectors


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("profile", ["f3", "f2", "bare"])
def test_vectors(impl, profile):
    vectors = load_vectors()
    assert len(vectors) == 40
    for i, v in enumerate(vectors):
        msgs = vector_messages(v)
        st = impl.TranscriptState.new(profile)
        if v[profile] == "reject":
            with pytest.raises(InvalidInputError):
                impl.transcript_digest(msgs, profile)
            with pytest.raises(InvalidInputError):
                st.absorb(msgs)
            assert st.count == 0
            continue
        assert impl.transcript_digest(msgs, profile) == v[profile], f"vector {i}"
        # the same through the streaming state, one message at a time and as str
        for m in v["messages"]:
            st.absorb([m])
        assert st.digest() == v[profile], f"vector {i} (streaming)"
        assert st.count == len(msgs)


def test_impls_report_themselves():
    assert PURE.DIGEST_IMPL == "python" and PURE.NATIVE_ERROR == "MOBSTORE_PURE_PYTHON=1"
    assert digest.DIGEST_IMPL in ("native", "python")
    assert (digest.NATIVE_ERROR is None) == (digest.DIGEST_IMPL == "native")
    assert digest.PROFILES == ("f3", "f2", "bare", "jcs")


# ---------------------------------------------------------------- API


@pytest.mark.parametrize("impl", IMPLS)
def test_canonical_message_profiles(impl):
    assert impl.canonical_message(MSG, "f3") == b'{"role":"user","content":"hi","created_at":"1970-01-01T00:00:00Z"}'
    assert impl.canonical_message(MSG, "bare") == (
        b'{"role":"user","content":"hi","identity":{"run_id":"%s"},"created_at":"2026-07-29T23:25:58.138145Z"}' % RUN_ID.encode())
    assert b'"args":{"a":[100.0],"b":1.5}' in impl.canonical_message(TOOL, "f3")
    assert b'"args":{"b": 1.50, "a": [1e2]}' in impl.canonical_message(TOOL, "f2")
    assert impl.canonical_message(MSG.decode(), "f3") == impl.canonical_message(MSG, "f3")
    assert impl.canonical_message(bytearray(MSG)) == impl.canonical_message(memoryview(MSG))


@pytest.mark.parametrize("impl", IMPLS)
def test_empty_transcript(impl):
    h = hashlib.sha256(b"[]").hexdigest()
    assert impl.transcript_digest([], "f3") == "sha256:" + h
    assert impl.transcript_digest([], "bare") == h
    assert impl.TranscriptState.new("f2").digest() == "sha256:" + h


@pytest.mark.parametrize("impl", IMPLS)
def test_transcript_digest_is_sha_of_framing(impl):
    c = [impl.canonical_message(m, "f3") for m in (MSG, TOOL, MSG)]
    expected = "sha256:" + hashlib.sha256(b"[" + b",".join(c) + b"]").hexdigest()
    assert impl.transcript_digest([MSG, TOOL, MSG], "f3") == expected


@pytest.mark.parametrize("impl", IMPLS)
def test_message_bytes(impl):
    assert impl.message_bytes(MSG) is MSG
    assert impl.message_bytes(bytearray(b"{}")) == b"{}"
    assert impl.message_bytes("é") == "é".encode()
    assert impl.message_bytes({"b": 1, "a": [1.0, None]}) == b'{"b":1,"a":[1.0,null]}'
    with pytest.raises(InvalidInputError):
        impl.message_bytes("\ud800")
    with pytest.raises(InvalidInputError):
        impl.message_bytes(42)


@pytest.mark.parametrize("impl", IMPLS)
def test_dict_messages(impl):
    m = json.loads(MSG)
    assert impl.canonical_message(m) == impl.canonical_message(MSG)
    assert impl.transcript_digest([m, TOOL]) == impl.transcript_digest([MSG, TOOL])


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("bad", [
    b"", b"{", b"[]", b'{"role":"user"}', b'{"role":"x","created_at":"2026-01-01T00:00:00Z"}',
    b'{"role":"system","content":"a","content":"b"}', b"\xff", b'{"role":"system","content":"\\ud800"}',
    b'{"role":"system","content":NaN}', b'{"role":"system","content":"a"} x', b'{"role":"system","content":"\x01"}',
])
def test_invalid_input(impl, bad):
    with pytest.raises(InvalidInputError):
        impl.canonical_message(bad)
    with pytest.raises(InvalidInputError, match="message 1"):
        impl.transcript_digest([MSG, bad])


@pytest.mark.parametrize("impl", IMPLS)
def test_unknown_profile(impl):
    with pytest.raises(InvalidInputError):
        impl.canonical_message(MSG, "f4")
    with pytest.raises(InvalidInputError):
        impl.transcript_digest([MSG], None)
    with pytest.raises(InvalidInputError):
        impl.TranscriptState.new("sha1")


@pytest.mark.parametrize("impl", IMPLS)
def test_error_says_what_and_where(impl):
    """Both paths word errors alike: the JSON path, the field, what was allowed; syntax errors
    also the byte offset; a batch error the message index."""
    with pytest.raises(InvalidInputError) as info:
        impl.canonical_message(b'{"role":"x","role":"y"}')
    assert str(info.value) == '$: duplicate field "role"'
    with pytest.raises(InvalidInputError) as info:
        impl.transcript_digest([MSG, MSG, b'"\xc0\x80"'])
    assert str(info.value) == "message 2: invalid JSON at byte 1 ($): invalid UTF-8"
    with pytest.raises(InvalidInputError) as info:
        impl.canonical_message(b'{"role":"user","content":[{"type":"text","text":"a","x":1}]}', strict=True)
    assert str(info.value).startswith('$.content[0]: unknown field "x" (meerkat\'s typed decode drops it')


@pytest.mark.parametrize("impl", IMPLS)
def test_strict_state_refuses_dropped_keys_and_persists(impl):
    """A strict TranscriptState (a session's decode="strict") refuses a key the typed decode would
    drop, keeps that property through to_bytes/from_bytes, and digests exactly like a lenient one."""
    extra = b'{"role":"user","content":"hi","x_extra":1,"created_at":"2026-01-01T00:00:00Z"}'
    strict = impl.TranscriptState.new("f3", strict=True)
    lenient = impl.TranscriptState.new("f3")
    assert strict.strict and not lenient.strict
    with pytest.raises(InvalidInputError, match='unknown field "x_extra"'):
        strict.absorb([MSG, extra])
    assert strict.count == 0
    strict.absorb([MSG, TOOL])
    lenient.absorb([MSG, TOOL])
    assert strict.digest() == lenient.digest()
    data = strict.to_bytes()
    assert data[4] == 0x83 and lenient.to_bytes()[4] == 0x03
    again = impl.TranscriptState.from_bytes(data)
    assert again.strict and again.profile == "f3" and again.count == 2 and again.digest() == strict.digest()
    with pytest.raises(InvalidInputError, match='unknown field "x_extra"'):
        again.absorb([extra])
    assert again.copy().strict
    lenient.absorb([extra])  # meerkat's lenient decode drops the key
    assert lenient.count == 3


@pytest.mark.parametrize("impl", IMPLS)
def test_deep_nesting_rejected_cleanly(impl):
    for depth in (200, 100_000):
        with pytest.raises(InvalidInputError):
            impl.canonical_message(b"[" * depth + b"]" * depth)
        with pytest.raises(InvalidInputError):
            impl.canonical_message(TOOL.replace(b'{"b": 1.50, "a": [1e2]}', b"[" * depth + b"]" * depth))


# ---------------------------------------------------------------- TranscriptState


@pytest.mark.parametrize("impl", IMPLS)
def test_state_absorb_matches_digest(impl, rng):
    vectors = load_vectors()
    msgs = [m for v in vectors for m in vector_messages(v)]
    st = impl.TranscriptState.new("f3")
    i = 0
    while i < len(msgs):
        n = rng.randrange(0, 7)
        st.absorb(msgs[i:i + n])
        i += n
        assert st.count == min(i, len(msgs))
        assert st.digest() == impl.transcript_digest(msgs[:i], "f3")


@pytest.mark.parametrize("impl", IMPLS)
def test_state_absorb_all_or_nothing(impl):
    st = impl.TranscriptState.new("f3")
    st.absorb([MSG])
    before = st.to_bytes()
    with pytest.raises(InvalidInputError, match="message 2"):
        st.absorb([TOOL, MSG, b'{"role":"nope"}', MSG])
    assert st.to_bytes() == before and st.count == 1
    st.absorb([TOOL])
    assert st.digest() == impl.transcript_digest([MSG, TOOL])


@pytest.mark.parametrize("src", IMPLS)
@pytest.mark.parametrize("dst", IMPLS)
def test_state_bytes_cross_implementation(src, dst, rng):
    msgs = [MSG, TOOL] * 40
    for profile in ("f3", "f2", "bare"):
        cut = rng.randrange(len(msgs))
        st = src.TranscriptState.new(profile)
        st.absorb(msgs[:cut])
        raw = st.to_bytes()
        assert raw[:4] == b"MTS1" and raw[4] == {"f3": 3, "f2": 2, "bare": 0}[profile]
        assert int.from_bytes(raw[5:13], "big") == cut
        assert raw[13:17] == b"MSS1"
        total = int.from_bytes(raw[49:57], "big")
        assert len(raw) == 57 + total % 64
        back = dst.TranscriptState.from_bytes(raw)
        assert back.profile == profile and back.count == cut
        assert back.to_bytes() == raw
        back.absorb(msgs[cut:])
        assert back.digest() == dst.transcript_digest(msgs, profile)


@pytest.mark.parametrize("impl", IMPLS)
def test_state_copy_is_independent(impl):
    a = impl.TranscriptState.new("bare")
    a.absorb([MSG])
    b = a.copy()
    b.absorb([TOOL])
    assert a.count == 1 and b.count == 2
    assert a.digest() == impl.transcript_digest([MSG], "bare")
    assert b.digest() == impl.transcript_digest([MSG, TOOL], "bare")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("raw", [
    b"", b"MTS1", b"XTS1\x03" + bytes(8) + b"MSS1" + bytes(40), b"MTS1\x07" + bytes(8) + b"MSS1" + bytes(40),
    b"MTS1\x03" + bytes(8) + b"MSS2" + bytes(40), b"MTS1\x03" + bytes(8) + b"MSS1" + bytes(39),
    b"MTS1\x03" + bytes(8) + b"MSS1" + bytes(32) + (1).to_bytes(8, "big"),  # tail of 1 byte missing
])
def test_state_from_bytes_malformed(impl, raw):
    with pytest.raises(InvalidInputError):
        impl.TranscriptState.from_bytes(raw)


# ---------------------------------------------------------------- native specifics


@needs_native
@pytest.mark.parametrize("portable", [False, True])
def test_sha256_both_backends(portable):
    accelerated = digest._native_sha256_portable(portable)
    try:
        if portable:
            assert accelerated is False
        r = random.Random(7)
        for n in [0, 1, 55, 56, 63, 64, 65, 127, 128, 1000, 70_000]:
            data = bytes(r.getrandbits(8) for _ in range(n))
            msg = json.dumps({"role": "system", "content": data.hex(), "created_at": "2026-01-01T00:00:00Z"})
            expected = hashlib.sha256(b"[" + digest.canonical_message(msg, "bare") + b"]").hexdigest()
            assert digest.transcript_digest([msg], "bare") == expected
            st = digest.TranscriptState.new("bare")
            st.absorb([msg])
            assert st.digest() == expected
            # midstate export equals the Python reference SHA-256 after the same bytes
            ref = _canon_py.Sha256()
            ref.update(b"[" + digest.canonical_message(msg, "bare"))
            assert st.to_bytes()[13:] == ref.export()
    finally:
        digest._native_sha256_portable(False)


@needs_native
def test_large_batch_crosses_flush_boundary():
    big = json.dumps({"role": "system", "content": "x" * 100_000, "created_at": "2026-01-01T00:00:00Z"})
    msgs = [MSG, big, TOOL] * 5
    expected = _canon_py.transcript_digest([digest.message_bytes(m) for m in msgs], "f3")
    assert digest.transcript_digest(msgs, "f3") == expected


@needs_native
def test_threads_use_separate_contexts():
    vectors = load_vectors()
    jobs = [([m.encode() for m in v["messages"]], v["f3"]) for v in vectors]
    errors = []

    def run():
        try:
            for _ in range(20):
                for msgs, want in jobs:
                    assert digest.transcript_digest(msgs, "f3") == want
        except Exception as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_pure_python_env_and_require_native():
    code = "from engine import digest; print(digest.DIGEST_IMPL, digest.NATIVE_ERROR)"
    root = os.path.dirname(os.path.dirname(os.path.abspath(digest.__file__)))
    env = dict(os.environ, MOBSTORE_PURE_PYTHON="1", PYTHONPATH=root)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "python"
    if NATIVE:
        env = dict(os.environ, MOBSTORE_REQUIRE_NATIVE="1", PYTHONPATH=root)
        env.pop("MOBSTORE_PURE_PYTHON", None)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.split()[0] == "native"


@needs_native
def test_native_spec_id_matches():
    assert digest.NATIVE_SPEC == "mobstore-canon-5"
    assert digest.ffi.string(digest.lib.mobstore_canon_spec()).decode() == digest.NATIVE_SPEC


def test_message_sha256_is_sha256_of_the_canonical_bytes():
    import hashlib

    from engine import _canon_py, _jcs_py

    msg = (b'{"role":"block_assistant","blocks":[{"block_type":"tool_use","data":{"id":"t","name":"n",'
           b'"args":{"b":1.50,"a":[2,1e2]}}}],"stop_reason":"tool_use","created_at":"2026-01-01T00:00:00.5Z"}')
    for profile in digest.PROFILES:
        canon = _jcs_py.canonical_message(msg) if profile == "jcs" else _canon_py.canonical_message(msg, profile)
        assert digest.message_sha256(msg, profile) == hashlib.sha256(canon).digest()
    with pytest.raises(InvalidInputError):
        digest.message_sha256(b'{"role":"user","content":"x","content":"y"}')


def test_dumps_value_fast_path_is_byte_identical(rng):
    """orjson serves float-free values; it must write exactly what the serde-rules writer does."""
    from engine import _canon_py

    def text():
        return "".join(chr(rng.choice([rng.randrange(0, 0x80), rng.randrange(0x80, 0xD800),
                                       rng.randrange(0xE000, 0x110000)])) for _ in range(rng.randrange(12)))

    for _ in range(3000):
        value = {text(): [text(), rng.randrange(-2**63, 2**64), True, False, None, {"k": text()}, (text(),)]}
        assert digest.dumps_value(value) == _canon_py.dumps_value(value)
    for bad in ({1: "x"}, {"x": 2**64}, {"x": "\ud800"}, {"x": float("nan")}, {"x": {1, 2}}):
        with pytest.raises(InvalidInputError):
            digest.dumps_value(bad)
    assert digest.dumps_value({"f": 1e16, "g": 1e-5}) == b'{"f":1e+16,"g":0.00001}'


# ---------------------------------------------------------------- two-thread transcript digest
# mobstore_transcript_digest may hash on a second thread when a batch holds >= 512 KiB of
# message bytes (PIPE_MIN_INPUT in _native/transcript.c) and threads are allowed
# (MOBSTORE_DIGEST_THREADS / digest._native_digest_threads). Same bytes, same errors.
# tests/test_hashpipe.py covers the thread's hand-over rules.

PIPE_MIN_INPUT = 1 << 19


def _batch(rng, target: int) -> list[bytes]:
    """About `target` bytes of valid messages: the shared vectors' messages and
    engine.demo turns (orjson), interleaved."""
    import orjson

    from engine import demo

    vector_msgs = [m for v in load_vectors() if "reject" not in (v["f3"], v["f2"], v["bare"])
                   for m in vector_messages(v)]
    out: list[bytes] = []
    total = 0
    while total < target:
        if rng.random() < 0.5:
            chunk = vector_msgs[rng.randrange(len(vector_msgs)):][:rng.randrange(1, 40)]
        else:
            chunk = [orjson.dumps(m) for m in demo.turn_messages(rng, rng.choice([200, 1024, 4096, 20_000]))]
        out += chunk
        total += sum(map(len, chunk))
    return out


def _big(size: int, role: str = "system") -> bytes:
    return json.dumps({"role": role, "content": "y\u00e9\\" * (size // 4), "created_at": "2026-01-01T00:00:00Z"}).encode()


def _sequential(msgs, profile):
    prev = digest._native_digest_threads(1)
    try:
        return digest.transcript_digest(msgs, profile)
    finally:
        digest._native_digest_threads(prev)


def _threaded(msgs, profile):
    """Pipelined whenever the batch is large enough (test mode 8: not left to the measured
    choice between the two ways)."""
    prev = digest._native_digest_threads(2)
    digest._native_pipe_test_mode(8)
    try:
        return digest.transcript_digest(msgs, profile)
    finally:
        digest._native_pipe_test_mode(0)
        digest._native_digest_threads(prev)


def _error_text(fn, msgs, profile="f3"):
    with pytest.raises(InvalidInputError) as exc:
        fn(msgs, profile)
    return str(exc.value)


@needs_native
@pytest.mark.parametrize("target,profile", [
    (200_000, "f3"), (PIPE_MIN_INPUT - 4096, "f3"), (PIPE_MIN_INPUT + 1, "f3"),
    (3 * PIPE_MIN_INPUT, "f3"), (int(1.5 * PIPE_MIN_INPUT), "f2"), (int(1.5 * PIPE_MIN_INPUT), "bare"),
])
def test_pipelined_digest_matches_reference_and_sequential(rng, target, profile):
    msgs = _batch(rng, target)
    expected = _canon_py.transcript_digest(msgs, profile)
    assert _sequential(msgs, profile) == expected
    assert _threaded(msgs, profile) == expected
    assert _threaded(msgs, profile) == expected  # reused ring buffers


@needs_native
def test_pipelined_digest_many_random_batches(rng):
    """Random message sizes put chunk boundaries everywhere; checked against the
    sequential native path (itself checked against the reference above)."""
    for _ in range(12):
        msgs = _batch(rng, rng.randrange(PIPE_MIN_INPUT, 2 * PIPE_MIN_INPUT))
        if rng.random() < 0.5:
            msgs.insert(rng.randrange(len(msgs) + 1), _big(rng.randrange(60_000, 200_000)))
        assert _threaded(msgs, "f3") == _sequential(msgs, "f3")


@needs_native
@pytest.mark.parametrize("size", [65_537, 70_000, 300_000, PIPE_MIN_INPUT + 12_345, 3 * PIPE_MIN_INPUT])
@pytest.mark.parametrize("where", ["first", "middle", "last", "alone"])
def test_pipelined_digest_huge_messages(rng, size, where):
    big = _big(size)
    assert len(big) > 64 * 1024
    if where == "alone":
        msgs = [big, MSG] * (-(-PIPE_MIN_INPUT // len(big)))
    else:
        msgs = _batch(rng, PIPE_MIN_INPUT + 1000)
        pos = {"first": 0, "middle": len(msgs) // 2, "last": len(msgs)}[where]
        msgs.insert(pos, big)
    assert sum(map(len, msgs)) >= PIPE_MIN_INPUT
    expected = _canon_py.transcript_digest(msgs, "f3")
    assert _sequential(msgs, "f3") == expected
    assert _threaded(msgs, "f3") == expected


@needs_native
@pytest.mark.parametrize("bad", [b'{"role":"user","content":"x","content":"y"}', b'{"role":"user","content":"x"',
                                 b'{"role":"nobody","content":"x"}', b'{"role":"user","content":"\xff"}'])
@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_pipelined_digest_errors_like_sequential(rng, bad, where):
    msgs = _batch(rng, 2 * PIPE_MIN_INPUT)
    pos = {"start": 0, "middle": len(msgs) // 2, "end": len(msgs)}[where]
    msgs.insert(pos, bad)
    text = _error_text(_threaded, msgs)
    assert text.startswith(f"message {pos}: "), text
    assert text == _error_text(_sequential, msgs)
    # the context is still good for the next (large) call
    del msgs[pos]
    assert _threaded(msgs, "f3") == _sequential(msgs, "f3")


@needs_native
def test_pipelined_digest_from_many_python_threads(rng):
    """Concurrent large digests: each Python thread has its own context and ring."""
    batches = [_batch(random.Random(rng.random()), PIPE_MIN_INPUT + 50_000) for _ in range(3)]
    wants = [_sequential(b, "f3") for b in batches]
    errors = []

    def run(k):
        try:
            for _ in range(4):
                assert digest.transcript_digest(batches[k], "f3") == wants[k]
        except Exception as exc:  # noqa: BLE001 — reported below
            errors.append(exc)

    prev = digest._native_digest_threads(2)
    try:
        threads = [threading.Thread(target=run, args=(k,)) for k in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        digest._native_digest_threads(prev)
    assert not errors


@needs_native
def test_digest_threads_env_is_read_at_import():
    code = "from engine import digest; print(digest._native_digest_threads(2))"
    root = os.path.dirname(os.path.dirname(os.path.abspath(digest.__file__)))
    for value, want in [("1", "1"), ("2", "2"), ("0", "1"), ("", "2"), ("junk", "2"), ("99999999999", "64")]:
        env = dict(os.environ, MOBSTORE_DIGEST_THREADS=value, PYTHONPATH=root)
        env.pop("MOBSTORE_PURE_PYTHON", None)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == want, value
