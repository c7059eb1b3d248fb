"""Digest throughput (the digest rows of docs/performance.md).

- transcript: the f3 digest of a transcript of stored message bytes through the default
  path (engine.digest: native when built, see DIGEST_IMPL in every record), through the
  pure-Python reference (engine._canon_py), and raw hashlib.sha256 over the exact canonical
  bytes both of them hash ("[" + canonical messages joined by "," + "]"), precomputed once.
  At ~1 KiB the transcript has MOBSTORE_BENCH_TRANSCRIPT (4,000) messages; the other sizes
  keep about the same number of bytes.
- message: one message at a time, canonical form + SHA-256 from Python, against
  orjson.dumps(OPT_SORT_KEYS) + hashlib.sha256 on the same message; for JSON bytes input
  (orjson then needs loads + dumps) and for dict input: a pool of 64 messages, 16 per round.
"""

from __future__ import annotations

import functools
import hashlib

import orjson
import pytest

from conftest import KNOBS, interleaved, message_bodies, messages, rotating, tag
from engine import _canon_py, digest

SIZES = KNOBS.sizes
MESSAGE_SIZES = (1024,) if KNOBS.quick else SIZES  # quick mode: the target row's size only
POOL = 64
PER_ROUND = 16  # messages per timed round (the pool in four rounds)


def transcript_length(size: int) -> int:
    return max(64, round(KNOBS.transcript * 1024 / size))


@functools.lru_cache(maxsize=None)
def transcript(size: int) -> tuple[list[bytes], bytes, str]:
    """(stored message bytes, their canonical transcript bytes, its f3 digest), checked to
    agree with engine.digest.transcript_digest before anything is timed."""
    bodies = list(message_bodies("transcript", size, transcript_length(size)))
    canon = b"[" + b",".join(digest.canonical_message(b, "f3") for b in bodies) + b"]"
    expected = "sha256:" + hashlib.sha256(canon).hexdigest()
    assert digest.transcript_digest(bodies, "f3") == expected
    return bodies, canon, expected


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("impl", ["default", "onethread", "python", "hashlib"])
def test_transcript_digest(benchmark, impl, size):
    bodies, canon, expected = transcript(size)
    n = len(bodies)
    benchmark.group = f"digest.transcript.{size}B"
    tag(benchmark, f"digest.transcript.{impl}.{size}", messages=n, size=size, canonical_bytes=len(canon),
        input_bytes=sum(map(len, bodies)), baseline=impl == "hashlib",
        impl=digest.DIGEST_IMPL if impl == "default" else impl)
    ops = {
        "default": lambda: digest.transcript_digest(bodies, "f3"),
        "onethread": lambda: _one_thread(bodies),
        "python": lambda: _canon_py.transcript_digest(bodies, "f3"),
        "hashlib": lambda: "sha256:" + hashlib.sha256(canon).hexdigest(),
    }
    # The fast ones take turns round by round; the Python path (tens of times slower) is not
    # repeated as a neighbour, only measured.
    slow = {"python"} if digest.DIGEST_IMPL == "native" else {"python", "default"}
    neighbours = {k: v for k, v in ops.items() if k != impl and k not in slow}
    if impl == "onethread" and digest.DIGEST_IMPL != "native":
        pytest.skip("one-thread row: native only")
    rounds = {"default": KNOBS.n(5, 20), "onethread": KNOBS.n(5, 20), "python": KNOBS.n(3, 5),
              "hashlib": KNOBS.n(20, 100)}[impl]
    result = interleaved(benchmark, ops[impl], neighbours, rounds=rounds, warmup=0 if impl == "python" else 1)
    assert result == expected


def _one_thread(bodies):
    """The native digest with MOBSTORE_DIGEST_THREADS=1 (no hashing thread)."""
    previous = digest._native_digest_threads(1)
    try:
        return digest.transcript_digest(bodies, "f3")
    finally:
        digest._native_digest_threads(previous)


def _mobstore(m):
    return digest.message_sha256(m, "f3")  # canonical + SHA-256 in one native call


def _orjson_from_bytes(m):
    return hashlib.sha256(orjson.dumps(orjson.loads(m), option=orjson.OPT_SORT_KEYS)).digest()


def _orjson_from_dict(m):
    return hashlib.sha256(orjson.dumps(m, option=orjson.OPT_SORT_KEYS)).digest()


@pytest.mark.parametrize("size", MESSAGE_SIZES)
@pytest.mark.parametrize("system", ["mobstore", "orjson"])
@pytest.mark.parametrize("inp", ["bytes", "dict"])
def test_message_digest(benchmark, inp, system, size):
    pool = list(message_bodies("single", size, POOL) if inp == "bytes" else messages("single", size, POOL))
    ops = {"mobstore": rotating(pool, PER_ROUND, _mobstore),  # canonical_message takes dicts and bytes alike
           "orjson": rotating(pool, PER_ROUND, _orjson_from_bytes if inp == "bytes" else _orjson_from_dict)}
    benchmark.group = f"digest.message.{inp}.{size}B"
    tag(benchmark, f"digest.message.{inp}.{system}.{size}", ops=PER_ROUND, size=size, input=inp,
        baseline=system == "orjson")
    out = interleaved(benchmark, ops[system], {k: v for k, v in ops.items() if k != system},
                      rounds=KNOBS.n(100, 400), warmup=8)
    assert len(out) == PER_ROUND


def float_messages(count: int) -> list[dict]:
    """~1 KiB block_assistant messages whose tool_use args hold floats (engine.demo)."""
    out = [m for m in messages("floats", 1024, 2 * count) if m.get("role") == "block_assistant"]
    assert all(b"." in digest.message_bytes(m) for m in out)
    return out[:count]


def _transcript_of_dict(m):
    return digest.transcript_digest([m], "f3")


@pytest.mark.parametrize("system", ["mobstore", "orjson"])
def test_dict_with_floats(benchmark, system):
    """transcript_digest([dict]) of a ~1 KiB dict holding floats (dict -> serde bytes ->
    canonical -> SHA-256) against orjson.dumps(OPT_SORT_KEYS) + hashlib.sha256 of the dict."""
    pool = float_messages(POOL)
    ops = {"mobstore": rotating(pool, PER_ROUND, _transcript_of_dict),
           "orjson": rotating(pool, PER_ROUND, _orjson_from_dict)}
    benchmark.group = "digest.dict_floats.1024B"
    tag(benchmark, f"digest.dict_floats.{system}", ops=PER_ROUND, size=1024, baseline=system == "orjson",
        orjson_floats=digest.ORJSON_FLOATS)
    out = interleaved(benchmark, ops[system], {k: v for k, v in ops.items() if k != system},
                      rounds=KNOBS.n(100, 400), warmup=8)
    assert len(out) == PER_ROUND
