"""Differential tests: the native canonicaliser (``_native/``) against the pure-Python reference
(``engine._canon_py``) on the same bytes, every profile, lenient and strict: identical output, or
InvalidInputError with the identical text (the JSON path, the field, what was allowed).

Inputs: meerkat-shaped messages from tests/msggen.py (driven by meerkat's model file, so every role,
block, variant and field is reached, with random spellings and mistakes), byte-level mutations of
them, meerkat's own vectors message by message, and hostile JSON (deep nesting, invalid UTF-8,
lone surrogates, huge numbers, duplicate keys, random bytes). Examples per test:
MOBSTORE_DIFF_EXAMPLES (default 1500 for the big ones; e.g. 200000 for a stress run).
"""

from __future__ import annotations

import json
import math
import os
import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import _canon_py, digest
from engine.errors import InvalidInputError

from .conftest import ORACLE_VECTORS, SAMPLE_VECTORS, vector_messages
from .msggen import BAD_UTF8, INSERTS, make_message, mutate

pytestmark = pytest.mark.skipif(digest.DIGEST_IMPL != "native", reason=f"native path not loaded: {digest.NATIVE_ERROR}")

EXAMPLES = int(os.environ.get("MOBSTORE_DIFF_EXAMPLES", "1500"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILES = ("f3", "f2", "bare")


def outcome(fn, *args, **kwargs):
    try:
        return ("ok", fn(*args, **kwargs))
    except InvalidInputError as exc:
        return ("error", str(exc))


def assert_same(data: bytes) -> list:
    """Both paths agree on ``data`` under every profile, lenient and strict; returns the outcomes."""
    seen = []
    for p in PROFILES:
        for strict in (False, True):
            ref = outcome(_canon_py.canonical_message, data, p, strict)
            nat = outcome(digest.canonical_message, data, p, strict=strict)
            assert nat == ref, f"profile {p}, strict={strict}, input {data!r}\n python: {ref}\n native: {nat}"
            seen.append(ref[0])
    return seen


def wrap_args(args: bytes) -> bytes:
    """A block_assistant message whose tool_use args (an opaque slot) are ``args``."""
    return (b'{"role":"block_assistant","stop_reason":"tool_use","created_at":"2026-01-01T00:00:00Z",'
            b'"blocks":[{"block_type":"tool_use","data":{"id":"t","name":"n","args":' + args + b"}}]}")


# ---------------------------------------------------------------------------
# Generated messages


@SETTINGS
@given(st.integers(0, 2 ** 40), st.sampled_from([0.0, 0.02, 0.1]))
def test_generated_messages(seed, mistakes):
    assert_same(make_message(seed, mistakes))


@SETTINGS
@given(st.integers(0, 2 ** 40))
def test_mutated_messages(seed):
    r = random.Random(seed)
    assert_same(mutate(r, make_message(seed, r.choice([0.0, 0.02]))))


def test_generator_reaches_both_outcomes(rng):
    """The generator is not all-fatal and not all-clean: both the accepting and the refusing code
    run (a generator that only produced errors would make these tests vacuous)."""
    outcomes = []
    for _ in range(300):
        outcomes += assert_same(make_message(rng.randrange(2 ** 40), rng.choice([0.0, 0.02])))
    assert outcomes.count("ok") > len(outcomes) // 4
    assert outcomes.count("error") > len(outcomes) // 20


@pytest.mark.parametrize("profile", PROFILES)
def test_transcripts_agree(rng, profile):
    """Batches (the native transcript call), including a bad message at a random index."""
    for _ in range(60):
        msgs = [make_message(rng.randrange(2 ** 40), rng.choice([0.0, 0.0, 0.05])) for _ in range(rng.randrange(1, 8))]
        ref = outcome(_canon_py.transcript_digest, msgs, profile)
        nat = outcome(digest.transcript_digest, msgs, profile)
        assert nat == ref, (msgs, ref, nat)


def test_vector_messages_individually():
    """The messages of the 40-transcript sample and of the compiled-meerkat probes (the edge cases;
    test_canon_vectors checks every oracle message's bytes on both paths) alone, all profiles,
    lenient and strict."""
    with open(SAMPLE_VECTORS, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    with open(ORACLE_VECTORS, encoding="utf-8") as f:
        rows += [row for row in map(json.loads, f) if row["name"].startswith("probe/")]
    for row in rows:
        for m in vector_messages(row):
            assert_same(m)


# ---------------------------------------------------------------------------
# Hostile JSON


@SETTINGS
@given(st.binary(max_size=64) | st.text(max_size=32).map(lambda s: s.encode("utf-8", "surrogatepass")))
def test_random_bytes(data):
    assert_same(data)
    assert_same(wrap_args(data))


@SETTINGS
@given(st.integers(0, 2 ** 40), st.sampled_from(INSERTS + BAD_UTF8))
def test_inserted_bytes(seed, token):
    data = bytearray(make_message(seed, 0.0))
    pos = random.Random(seed).randrange(len(data) + 1)
    data[pos:pos] = token
    assert_same(bytes(data))


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
    assert_same(b'{"role":"system_notice","kind":"generic","created_at":"2026-01-01T00:00:00Z","blocks":'
                b'[{"type":"runtime_notice","category":"c","payload":' + obj + b"}]}")


@pytest.mark.parametrize("message", [
    b'{"role":"user","content":"a","role":"user"}',
    b'{"role":"user","content":"a","content":"b"}',
    b'{"role":"user","content":"a","x":1,"x":2,"created_at":"2026-01-01T00:00:00Z"}',
    b'{"role":"system_notice","kind":"generic","blocks":[{"type":"auth","state":"a","state":"b","type":"auth"}]}',
    b'{"role":"system_notice","kind":"generic","blocks":[{"type":"x","type":"auth","state":"s"}]}',
    b'{"role":"block_assistant","stop_reason":"end_turn","blocks":[{"block_type":"text","block_type":"text",'
    b'"data":{"text":"a"}}]}',
])
def test_duplicate_fields(message):
    assert_same(message)


@pytest.mark.parametrize("message", [
    # the forms serde also accepts: a struct as an array, a variant index as a tag, enum map forms
    b'["user","x"]', b'["system","c","2026-01-01T00:00:00Z"]', b'["user"]', b'[]', b'[0,"x"]',
    b'{"role":"user","content":"a","identity":["019f3f62-e213-8804-baa4-5e7e9bef74d3"]}',
    b'{"role":"user","content":"a","render_metadata":["user_prompt"]}',
    b'{"role":"user","content":"a","render_metadata":["user_prompt","urgent","x"]}',
    b'{"role":"user","content":[["text","a"]]}', b'{"role":"user","content":[[0,"a"]]}',
    b'{"role":"user","content":[{"type":0,"text":"a"}]}', b'{"role":"user","content":[{"type":9,"text":"a"}]}',
    b'{"role":"user","content":[{"type":"image","media_type":"image/png","source":0,"data":"AAAA"}]}',
    b'{"role":"block_assistant","stop_reason":{"end_turn":null},"blocks":[]}',
    b'{"role":"block_assistant","stop_reason":{"end_turn":{}},"blocks":[]}',
    b'{"role":"block_assistant","stop_reason":{"end_turn":1},"blocks":[]}',
    b'{"role":"block_assistant","stop_reason":"end_turn","blocks":[["text",{"text":"a"}]]}',
    b'{"role":"block_assistant","stop_reason":"end_turn","blocks":[["text",["a"]]]}',
    b'{"role":"block_assistant","stop_reason":"end_turn","blocks":[{"block_type":{"text":null},"data":{"text":"a"}}]}',
    b'{"role":"block_assistant","stop_reason":"end_turn","blocks":[{"block_type":0,"data":{"text":"a"}}]}',
    b'{"role":"block_assistant","stop_reason":"end_turn","blocks":[{"block_type":"text","data":{"text":"a",'
    b'"meta":{"provider":0,"signature":"s"}}}]}',
])
def test_serde_alternative_forms(message):
    assert_same(message)


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


@SETTINGS
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_opaque_slot_float_passes(x):
    """An opaque slot's float is written after one more parse (bare) or two (f3): the two paths
    drift alike (meerkat-core/src/types.rs:177-204@c7b8518b4)."""
    assert_same(wrap_args(repr(x).encode()))


@pytest.mark.parametrize("n", [10, 1000, 100_000])
def test_node_array_growth(n):
    """Many tiny values (node count near its len/2 bound) and wide objects."""
    assert_same(wrap_args(b"[" + b",".join([b"0"] * n) + b"]"))
    assert_same(wrap_args(b"{" + b",".join(b'"%x":[]' % i for i in range(n)) + b"}"))


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
            data = mutate(random.Random(seed), data)
        assert_same(data)


def _sanitized_run(tmp_path, sanitize: str, runtime: str, env_extra: dict, pytest_args: list,
                   log_prefix: str | None = None) -> str:
    """Build the native module with MOBSTORE_SANITIZE=`sanitize` into a scratch copy of the
    project and run pytest with `pytest_args` against it, gcc's `runtime` library preloaded.
    Returns pytest's output; fails the test on any failure or sanitizer report (with the
    sanitizer's log files `log_prefix`.* in the message)."""
    import shutil
    import subprocess
    import sys

    lib = subprocess.run(["gcc", f"-print-file-name={runtime}"], capture_output=True, text=True).stdout.strip()
    if not lib or not os.path.exists(lib):
        pytest.skip(f"gcc's {runtime} not found")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    work = tmp_path / "mobstore"
    work.mkdir()
    for d in ("_native", "engine", "tests"):
        shutil.copytree(os.path.join(root, d), work / d, ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    shutil.copy(os.path.join(root, "pyproject.toml"), work / "pyproject.toml")  # markers, pytest options
    env = dict(os.environ, MOBSTORE_SANITIZE=sanitize)
    subprocess.run([sys.executable, "_native/build_canon.py"], cwd=work, env=env, check=True, capture_output=True)
    env = dict(os.environ, LD_PRELOAD=lib, MOBSTORE_REQUIRE_NATIVE="1", PYTHONPATH=str(work), **env_extra)
    env.pop("MOBSTORE_PURE_PYTHON", None)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *pytest_args],
                         cwd=work, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        import glob

        logs = "".join(open(f).read()[-4000:] for f in glob.glob(f"{log_prefix}.*")) if log_prefix else ""
        pytest.fail(f"exit {out.returncode}\n" + out.stdout[-4000:] + out.stderr[-4000:] + logs)
    return out.stdout


@pytest.mark.sanitize
def test_sanitized_build_runs_differential(request, tmp_path):
    """Build the native module with ASan/UBSan into a scratch copy and run the
    differential + digest tests (meerkat profiles and jcs, the hashing thread, verify's
    checkpoints) against it (LD_PRELOAD of gcc's libasan)."""
    if not _selected(request, "sanitize"):
        pytest.skip("select with -m sanitize")
    # With `-m "sanitize or stress"` the long generated-input loop runs under ASan/UBSan too
    # (MOBSTORE_STRESS_EXAMPLES inputs, default 200,000).
    marks = ["-m", "stress or not stress"] if _selected(request, "stress") else []
    out = _sanitized_run(tmp_path, "1", "libasan.so", {
        "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=1", "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1",
        "MOBSTORE_DIFF_EXAMPLES": os.environ.get("MOBSTORE_DIFF_EXAMPLES", "1000")}, [
        *marks, "tests/test_differential.py", "tests/test_digest.py", "tests/test_canon_vectors.py",
        "tests/test_jcs.py", "tests/test_jcs_numbers.py", "tests/test_hashpipe.py", "tests/test_verify_native.py"])
    print(out[-2000:])


@pytest.mark.sanitize
def test_thread_sanitized_build_runs_the_hashing_thread(request, tmp_path):
    """The hashing thread (_native/hashpipe.c) under ThreadSanitizer: its tests (a thread
    stalling mid-slot so both sides hash, tiny slots, errors, fork) and the digest tests,
    with TSan halting on its first report. The store tests are not run here: SQLite's file
    opens fail under TSan's interceptors, which says nothing about our code."""
    if not _selected(request, "sanitize"):
        pytest.skip("select with -m sanitize")
    log = str(tmp_path / "tsan")
    out = _sanitized_run(tmp_path, "thread", "libtsan.so", {
        # die_after_fork=0: the fork test forks a process that has threads, on purpose
        "TSAN_OPTIONS": f"halt_on_error=1 exitcode=66 die_after_fork=0 report_signal_unsafe=0 log_path={log}"},
        ["tests/test_hashpipe.py", "tests/test_digest.py"], log_prefix=log)
    print(out[-2000:])


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
