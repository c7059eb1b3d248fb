"""The hashing thread of large transcript batches (_native/hashpipe.c): digest, absorb and
verify's checkpoints give the sequential path's digests and errors whichever side hashes a
slot -- the thread, the caller because the thread never runs, or both of them when the
thread stalls inside a slot -- and after a fork, where the child has no thread."""

from __future__ import annotations

import os
import random

import pytest

from engine import InvalidInputError, _canon_py, demo, digest

pytestmark = pytest.mark.skipif(digest.DIGEST_IMPL != "native", reason="needs the native module")

NO_WORKER, TINY, SLOW, FORCE = 1, 2, 4, 8
MODES = {"tiny": TINY, "tiny-no-worker": TINY | NO_WORKER, "tiny-slow-worker": TINY | SLOW,
         "no-worker": FORCE | NO_WORKER, "slow-worker": FORCE | SLOW, "forced": FORCE}


def _transcript(rng: random.Random, n: int) -> list[bytes]:
    makers = (demo.user_message, demo.assistant_message, demo.tool_results_message)
    return [digest.message_bytes(rng.choice(makers)(rng, rng.randint(20, 3000))) for _ in range(n)]


class _mode:
    def __init__(self, mode: int, threads: int = 2) -> None:
        self.mode, self.threads = mode, threads

    def __enter__(self):
        self.prev = digest._native_digest_threads(self.threads)
        digest._native_pipe_test_mode(self.mode)

    def __exit__(self, *exc):
        digest._native_pipe_test_mode(0)
        digest._native_digest_threads(self.prev)
        return False


def _stats() -> list[int]:
    out = digest.ffi.new("uint64_t[3]")
    digest.lib.mobstore_ctx_pipe_stats(digest._work.ctx, out)
    return list(out)


def _sequential(fn):
    with _mode(0, threads=1):
        return fn()


def _walk(bodies, at, chunk, profile="f3"):
    walker = digest.TranscriptCheckpoints(profile, at)
    for i in range(0, len(bodies), chunk):
        walker.feed(bodies[i:i + chunk])
    return walker.digests


@pytest.mark.parametrize("mode", list(MODES))
def test_digest_absorb_and_checkpoints_equal_the_sequential_path(rng, mode):
    big = mode in ("no-worker", "slow-worker", "forced")
    bodies = _transcript(rng, 900 if big else 160)
    if big:
        assert sum(map(len, bodies)) >= 1 << 19  # over the pipeline's threshold
    at = sorted(set(rng.sample(range(len(bodies) + 1), 60) + [0, 1, len(bodies)]))
    want_digest = _sequential(lambda: digest.transcript_digest(bodies, "f3"))
    assert want_digest == _canon_py.transcript_digest(bodies, "f3")
    want_walk = _sequential(lambda: _walk(bodies, at, 2048))
    state = digest.TranscriptState.new("f3")
    _sequential(lambda: state.absorb(bodies[:7]))
    want_state = state.copy()
    _sequential(lambda: want_state.absorb(bodies[7:]))
    before = _stats()
    with _mode(MODES[mode]):
        assert digest.transcript_digest(bodies, "f3") == want_digest
        assert _walk(bodies, at, 2048) == want_walk
        assert _walk(bodies, at, 77) == want_walk
        state.absorb(bodies[7:])
        assert state.to_bytes() == want_state.to_bytes()
    worker, producer, waits = (a - b for a, b in zip(_stats(), before))
    assert worker + producer > 0  # it was pipelined
    if MODES[mode] & NO_WORKER:
        assert worker == 0
    if MODES[mode] & SLOW:
        assert producer > 0  # the worker is slow: the caller hashed slots itself
        # ... and it waited for a slot the worker had taken, then gave up and hashed it too.
        # That needs the worker to have been scheduled while the caller needed its slot, which
        # a loaded machine may not give in one batch: more batches, with tiny slots (hundreds
        # of hand-overs per batch), until it happens.
        for _ in range(20):
            if waits > 0:
                break
            before = _stats()
            with _mode(TINY | SLOW):
                assert digest.transcript_digest(bodies, "f3") == want_digest
            waits = _stats()[2] - before[2]
        assert waits > 0


@pytest.mark.parametrize("mode", ["tiny", "tiny-no-worker", "tiny-slow-worker"])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_bad_message_fails_the_same_way(rng, mode, where):
    bodies = _transcript(rng, 120)
    pos = {"first": 0, "middle": 61, "last": 119}[where]
    bodies[pos] = b'{"role":"user","content":"x"'
    at = list(range(0, 121, 3))
    with pytest.raises(InvalidInputError) as seq_exc:
        _sequential(lambda: digest.transcript_digest(bodies, "f3"))
    seq_walker = digest.TranscriptCheckpoints("f3", at)
    with pytest.raises(InvalidInputError) as seq_walk_exc:
        _sequential(lambda: seq_walker.feed(bodies))
    state = digest.TranscriptState.new("f3")
    with _mode(MODES[mode]):
        with pytest.raises(InvalidInputError) as exc:
            digest.transcript_digest(bodies, "f3")
        walker = digest.TranscriptCheckpoints("f3", at)
        with pytest.raises(InvalidInputError) as walk_exc:
            walker.feed(bodies)
        with pytest.raises(InvalidInputError):
            state.absorb(bodies)
        assert state.count == 0  # all or nothing
        # the context is still good afterwards
        del bodies[pos]
        assert digest.transcript_digest(bodies, "f3") == _canon_py.transcript_digest(bodies, "f3")
    assert str(exc.value) == str(seq_exc.value)
    assert str(walk_exc.value) == str(seq_walk_exc.value)
    assert walker.count == seq_walker.count == pos
    assert walker.digests == seq_walker.digests
    assert set(walker.digests) == {a for a in at if a <= pos}


def test_after_fork_the_child_digests_without_the_parents_thread(rng):
    bodies = _transcript(rng, 900)
    want = digest.transcript_digest(bodies, "f3")
    with _mode(FORCE):
        assert digest.transcript_digest(bodies, "f3") == want  # the parent's thread exists now
        pid = os.fork()
        if pid == 0:  # child: a fresh pipe (the parent's is abandoned, never touched)
            ok = digest.transcript_digest(bodies, "f3") == want and _walk(bodies, [5, 900], 300) == \
                {5: digest.transcript_digest(bodies[:5], "f3"), 900: want}
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_a_large_batch_picks_the_faster_way_and_stays_correct(rng):
    """Outside the test modes the way is chosen from measured speed (either is correct)."""
    bodies = _transcript(rng, 900)
    want = _canon_py.transcript_digest(bodies, "f3")
    with _mode(0, threads=2):
        for _ in range(20):  # enough batches to try both ways and probe
            assert digest.transcript_digest(bodies, "f3") == want
