"""verify's inner loop in native code (mobstore_transcript_checkpoints, _native/transcript.c)
and the pointer-passing entry points (no Python join of the messages): the same digests as a
full recompute of every prefix, on both paths (native and pure Python with hashlib), with any
chunking; a bad message stops the walk with everything before it recorded; bad arguments are
refused, never followed."""

from __future__ import annotations

import pytest

import engine
from engine import InvalidInputError, _canon_py, demo, digest

native = pytest.mark.skipif(digest.DIGEST_IMPL != "native", reason="needs the native module")


def transcript(rng, n):
    makers = (demo.user_message, demo.assistant_message, demo.tool_results_message)
    return [digest.message_bytes(rng.choice(makers)(rng, rng.randint(20, 900))) for _ in range(n)]


def chunks(rng, items):
    i = 0
    while i < len(items):
        k = rng.randint(0, 40)
        yield items[i:i + k]
        i += k


@pytest.mark.parametrize("path", ["native", "python"])
@pytest.mark.parametrize("profile", ["f3", "f2", "bare"])
def test_checkpoints_equal_prefix_digests(rng, path, profile):
    if path == "native" and digest.DIGEST_IMPL != "native":
        pytest.skip("needs the native module")
    bodies = transcript(rng, 120)
    at = sorted(rng.sample(range(0, 121), 25)) + [0, 120, 57]
    want = {k: _canon_py.transcript_digest(bodies[:k], profile) for k in set(at)}
    ctx = digest._python_path() if path == "python" else _nothing()
    with ctx:
        walker = digest.TranscriptCheckpoints(profile, at)
        for part in chunks(rng, bodies):
            walker.feed(part)
        assert walker.count == 120
        assert walker.digests == want


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("path", ["native", "python"])
def test_a_bad_message_stops_the_walk_keeping_what_came_before(rng, path):
    if path == "native" and digest.DIGEST_IMPL != "native":
        pytest.skip("needs the native module")
    bodies = transcript(rng, 30)
    bodies[17] = b'{"role":"user"}'  # valid JSON, not a message
    with digest._python_path() if path == "python" else _nothing():
        walker = digest.TranscriptCheckpoints("f3", [3, 17, 18, 30])
        walker.feed(bodies[:10])
        with pytest.raises(InvalidInputError, match="^message 17: "):
            walker.feed(bodies[10:])
        assert walker.count == 17
        assert set(walker.digests) == {3, 17}
        assert walker.digests[17] == _canon_py.transcript_digest(bodies[:17], "f3")


@native
def test_pointer_entry_points_equal_the_joined_ones(rng):
    bodies = transcript(rng, 200) + [b'{"role":"user","content":""}']
    assert digest.transcript_digest(bodies) == _canon_py.transcript_digest(bodies, "f3")
    state = digest.TranscriptState.new()
    for part in chunks(rng, bodies):
        state.absorb(part)
    assert state.digest() == digest.transcript_digest(bodies) and state.count == len(bodies)
    # non-bytes inputs are made exact bytes first (their addresses are what C reads)
    mixed = [bytearray(bodies[0]), memoryview(bodies[1]), bodies[2].decode()]
    assert digest.transcript_digest(mixed) == digest.transcript_digest(bodies[:3])
    # a failing batch changes nothing (all or nothing)
    with pytest.raises(InvalidInputError, match="^message 1: "):
        state.absorb([bodies[0], b"", bodies[1]])
    assert state.digest() == digest.transcript_digest(bodies)


@native
def test_checkpoint_arguments_are_refused(rng):
    ffi, lib = digest.ffi, digest.lib
    w = digest._work
    sha = ffi.new("mobstore_sha256 *")
    lib.mobstore_transcript_init(sha)
    count = ffi.new("uint64_t *", 0)
    nxt = ffi.new("size_t *", 0)
    body = ffi.new("char[]", b'{"role":"user","content":"x"}')
    ptrs = ffi.new("char *[]", [body])
    lens = ffi.new("size_t[]", [len(b'{"role":"user","content":"x"}')])
    hex_out = ffi.new("char[]", 128)
    at = ffi.new("uint64_t[]", [1, 0])  # not ascending
    assert lib.mobstore_transcript_checkpoints(w.ctx, sha, count, ptrs, 0, lens, 1, 3, at, 2, nxt, hex_out) \
        == lib.MOBSTORE_E_ARG
    assert lib.mobstore_transcript_checkpoints(w.ctx, sha, count, ptrs, 0, lens, 1, 3, at, 1, ffi.NULL, hex_out) \
        == lib.MOBSTORE_E_ARG
    assert lib.mobstore_transcript_checkpoints(w.ctx, sha, count, ptrs, 0, lens, 1, 7, at, 1, nxt, hex_out) \
        == lib.MOBSTORE_E_ARG
    null_ptrs = ffi.new("char *[]", [ffi.NULL])
    assert lib.mobstore_transcript_checkpoints(w.ctx, sha, count, null_ptrs, 0, lens, 1, 3, at, 1, nxt, hex_out) \
        == lib.MOBSTORE_E_ARG
    big = ffi.cast("uintptr_t", -1)
    assert lib.mobstore_transcript_absorb_ptrs(w.ctx, sha, count, ptrs, big, lens, 1, 3) == lib.MOBSTORE_E_ARG
    assert lib.mobstore_transcript_digest_ptrs(w.ctx, ptrs, 0, lens, 1, 3, ffi.NULL) == lib.MOBSTORE_E_ARG
    assert int(count[0]) == 0  # nothing was absorbed by any refused call
    nxt[0] = 0
    assert lib.mobstore_transcript_checkpoints(w.ctx, sha, count, ptrs, 0, lens, 1, 3, at + 1, 1, nxt, hex_out) == 0
    # the checkpoint at 0 is written before the first message, then the message is absorbed
    assert int(count[0]) == 1 and int(nxt[0]) == 1
    assert "sha256:" + ffi.unpack(hex_out, 64).decode() == digest.transcript_digest([])

def test_verify_native_and_python_give_the_same_report(store, rng):
    sids = [store.create_session() for _ in range(3)]
    for t in range(40):
        sid = sids[t % 3]
        store.apply_runtime_turn(sid, f"run-{t % 4}", [digest.message_bytes(demo.user_message(rng, 200)),
                                                        digest.message_bytes(demo.assistant_message(rng, 500))])
    # break one message of one session behind mobstore's back
    con = store._connection
    num = con.execute("SELECT num FROM ms_sessions WHERE id = ?", (sids[1],)).fetchone()[0]
    con.execute("UPDATE ms_messages SET body = ? WHERE key = ?", (b'{"role":"user","content":"tampered"}', (num << 32) | 5))
    native_report = store.verify()
    with digest._python_path():
        python_report = store.verify()
    assert native_report == python_report
    assert not native_report.ok and native_report.receipts_ok < native_report.receipts
    assert {m.session_id for m in native_report.mismatches} == {sids[1]}
