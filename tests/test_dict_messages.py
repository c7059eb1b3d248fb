"""Dict messages through orjson (engine.digest.message_dict_bytes): the same bytes as the
pure-Python serde writer (engine._canon_py.dumps_value, the reference) on JSON values, floats
above all; the documented differences outside JSON; and what must fail fast: a message that
contains itself or nests too deep, in every write API (store and services), leaving the file
as it was; one message size limit checked before any work.

Float differential: random bit patterns, every power of two, powers of ten with neighbours
(both layout thresholds: 1e-5/1e-6 and 1e15/1e16), subnormals and extremes, against the
reference writer and the native one. MOBSTORE_STRESS_EXAMPLES scales the random part under
-m stress. Seeded: MOBSTORE_TEST_SEED reproduces it.
"""

from __future__ import annotations

import asyncio
import enum
import math
import os
import struct
import time
import uuid

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import engine
from engine import InvalidInputError, Turn, _canon_py, digest, sessions
from engine._canon_py import format_float

from .conftest import fingerprint

RANDOM_FLOATS = 100_000
STRESS_FLOATS = int(os.environ.get("MOBSTORE_STRESS_EXAMPLES", "2000000"))


def msg(text: str) -> dict:
    return {"role": "user", "content": text, "created_at": "2026-01-01T00:00:00Z"}


def edge_floats() -> list[float]:
    out = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 2.225073858507201e-308,
           1.7976931348623157e308, -1.7976931348623157e308, 9007199254740993.0, 0.1, 0.2, 0.3,
           0.30000000000000004, 1 / 3, 2 / 3, 4.35, 1e21, 1e22, 1e23, 123456789012345.67]
    for k in range(-1074, 1024):
        out.append(2.0 ** k)
    for e in range(-324, 309):
        for mant in ("1", "9.999999999999999", "5", "1.5", "2.5", "9.5", "4.9406564584124654", "2.2250738585072014"):
            x = float(f"{mant}e{e}")
            if x != 0.0 and math.isfinite(x):
                out += [x, -x, math.nextafter(x, 0.0), math.nextafter(x, math.inf)]
    return out


def random_floats(rng, n: int):
    for _ in range(n):
        x = struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0]
        if math.isfinite(x):
            yield x


def check_floats(values) -> int:
    checked = 0
    for x in values:
        want = format_float(x)
        got = orjson.dumps(x).decode()
        assert got == want, (x.hex(), got, want)
        native = digest._native_format_float(x)
        assert native is None or native == want, (x.hex(), native, want)
        checked += 1
    return checked


def test_orjson_floats_are_trusted_here():
    """The installed orjson passed the import-time probe (else dicts with floats would go to
    the slow reference writer: correct, 20x slower)."""
    assert digest.ORJSON_FLOATS, orjson.__version__


def test_float_text_edges_equal_the_serde_writer():
    assert check_floats(edge_floats()) > 10_000


def test_float_text_random_bits_equal_the_serde_writer(rng):
    assert check_floats(random_floats(rng, RANDOM_FLOATS)) > RANDOM_FLOATS * 0.99


@pytest.mark.stress
def test_stress_float_text(rng, request):
    if "stress" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("select with -m stress")
    check_floats(random_floats(rng, STRESS_FLOATS))


def test_layout_thresholds_differ_from_python_repr():
    # The values where layouts part: repr switches to exponents at 1e16 and 1e-5, serde at
    # 1e16 and below 1e-5 with other spellings; orjson must follow serde, not repr.
    cases = {1e16: "1e+16", 1e15: "1000000000000000.0", 1e-5: "0.00001", 1e-6: "1e-6",
             1.5e-7: "1.5e-7", 123e20: "1.23e+22", 5e-324: "5e-324", -0.0: "-0.0", 100.0: "100.0"}
    for x, text in cases.items():
        assert format_float(x) == text
        assert orjson.dumps(x) == text.encode()
    assert repr(1e-5) == "1e-05" and repr(1e16) == "1e+16"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 63), (1 << 64) - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_message_dict_bytes_equals_the_reference(value):
    want = _canon_py.dumps_value({"v": value})
    assert digest.message_dict_bytes({"v": value}) == want
    assert digest.dumps_value({"v": value}) == want


def test_realistic_messages_equal_the_reference(rng):
    from engine import demo

    makers = (demo.user_message, demo.assistant_message, demo.tool_results_message)
    for _ in range(300):
        m = rng.choice(makers)(rng, rng.randint(40, 3000))
        assert digest.message_bytes(m) == _canon_py.dumps_value(m)


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Text(str):
    pass


def test_beyond_json_types():
    """What dict messages do with values that are not plain JSON (docs/dict-messages.md)."""
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    # orjson writes these natively; the message is then validated as JSON like any other.
    assert digest.message_dict_bytes({"v": u}) == b'{"v":"12345678-1234-5678-1234-567812345678"}'
    assert digest.message_dict_bytes({"v": Colour.RED}) == b'{"v":"red"}'
    # Subclasses of JSON types go to the reference writer, which writes them as the base type.
    assert digest.message_dict_bytes({"v": Level.HIGH, Text("k"): Text("x")}) == b'{"v":3,"k":"x"}'
    # Refused: non-finite floats (orjson would write null), big integers, other objects.
    for bad in (float("nan"), float("inf"), -float("inf"), 1 << 64, -(1 << 63) - 1, {1, 2}, b"x", object()):
        with pytest.raises(InvalidInputError, match=r"\$\.v"):
            digest.message_dict_bytes({"v": bad})
        with pytest.raises(InvalidInputError):
            digest.dumps_value({"v": bad})
    # dumps_value (metadata) stays exactly the reference: no UUID, no enum.
    for strict in (u, Colour.RED):
        with pytest.raises(InvalidInputError):
            digest.dumps_value({"v": strict})
    assert digest.message_dict_bytes({"n": None, "x": 1.5}) == b'{"n":null,"x":1.5}'


# -- cycles and depth ---------------------------------------------------------------------


def self_containing() -> dict:
    m = msg("loop")
    m["self"] = m
    return m


def list_cycle() -> dict:
    items: list = []
    items.append(items)
    return {"role": "user", "content": items}


def too_deep(levels: int = 400) -> dict:
    m: dict = {}
    node = m
    for _ in range(levels):
        node["x"] = {}
        node = node["x"]
    return {"role": "user", "content": "deep", "extra": m}


PROMPT = 2.0  # seconds; the hang this guards against never returns


@pytest.mark.parametrize("make", [self_containing, list_cycle, too_deep])
def test_cycles_and_depth_fail_fast_in_the_writer(make):
    started = time.monotonic()
    with pytest.raises(InvalidInputError) as info:
        digest.message_bytes(make())
    assert time.monotonic() - started < PROMPT
    if make is not too_deep:
        assert "contains itself" in str(info.value)
    else:
        assert "127 levels" in str(info.value)
    with pytest.raises(InvalidInputError):
        digest.dumps_value(make())


@pytest.mark.parametrize("make", [self_containing, list_cycle, too_deep])
def test_every_store_write_refuses_a_cyclic_message_at_once(store, db_path, make):
    sid = store.create_session()
    store.apply_runtime_turn(sid, "r", [msg("kept")])
    store._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = fingerprint(db_path)
    calls = [
        lambda: store.append_messages(sid, [msg("ok"), make()]),
        lambda: store.create_session(messages=[make()]),
        lambda: store.apply_runtime_turn(sid, "r", [make()]),
        lambda: store.apply_runtime_turns([Turn(sid, "r", [msg("a")]), Turn(sid, "r", [make()])]),
    ]
    for call in calls:
        started = time.monotonic()
        with pytest.raises(InvalidInputError):
            call()
        assert time.monotonic() - started < PROMPT
    assert store.apply_runtime_turns([Turn(sid, "r", [make()])], return_exceptions=True)[0].__class__ \
        is InvalidInputError
    assert fingerprint(db_path) == before


async def test_services_refuse_a_cyclic_message_and_keep_working(db_path):
    from engine.services import EphemeralSessionService, PersistentSessionService

    async with PersistentSessionService(db_path, checkpoint_interval=None) as p, EphemeralSessionService() as e:
        for svc in (p, e):
            sid = await svc.create_session()
            for call in (lambda: svc.apply_runtime_turn(sid, "r", [self_containing()]),
                         lambda: svc.append_live(sid, [list_cycle()]),
                         lambda: svc.create_session(messages=[self_containing()])):
                with pytest.raises(InvalidInputError):
                    await asyncio.wait_for(call(), PROMPT)
            # The worker is free: the next call is answered at once.
            out = await asyncio.wait_for(svc.apply_runtime_turn(sid, "r", [msg("after")]), PROMPT)
            assert out.receipt.message_count == 1


# -- the message size limit ----------------------------------------------------------------


def test_one_size_limit_before_any_work(store, db_path, monkeypatch):
    assert sessions.MAX_MESSAGE_BYTES < 1_000_000_000  # below SQLite's length limit (TooBigError)
    assert sessions.MAX_MESSAGE_BYTES < 2**31 - 1       # and below the C canonicalizer's
    sid = store.create_session()
    store._connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = fingerprint(db_path)
    huge = b" " * sessions.MAX_MESSAGE_BYTES + b"{}"  # one byte over; never parsed
    started = time.monotonic()
    for call in (lambda: store.append_messages(sid, [huge]),
                 lambda: store.apply_runtime_turn(sid, "r", [msg("fine"), huge]),
                 lambda: store.create_session(messages=[huge])):
        with pytest.raises(InvalidInputError, match=r"message (0|1): .* over the limit of 268,435,456 bytes"):
            call()
    assert time.monotonic() - started < 5.0
    del huge
    # Dicts are measured after encoding (patched down to keep the test small).
    monkeypatch.setattr(sessions, "MAX_MESSAGE_BYTES", 100)
    with pytest.raises(InvalidInputError, match="over the limit of 100 bytes"):
        store.append_messages(sid, [msg("x" * 100)])
    assert fingerprint(db_path) == before


def test_a_message_at_the_limit_is_not_refused_for_its_size(store, monkeypatch):
    monkeypatch.setattr(sessions, "MAX_MESSAGE_BYTES", 200)
    body = digest.message_bytes(msg("y" * 100))
    padded = body + b" " * (200 - len(body))
    assert store.append_messages(store.create_session(), [padded]) == 1


# -- in a child process: a hang or a memory blow-up fails the test instead of the run -----

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))


def run_child(code: str, timeout: float) -> str:
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=timeout, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout.decode()


def test_a_self_containing_message_does_not_hang():
    out = run_child(
        "import engine\n"
        "m = {'role': 'user', 'content': 'x'}\n"
        "m['self'] = m\n"
        "s = engine.open()\n"
        "sid = s.create_session()\n"
        "try:\n"
        "    s.apply_runtime_turn(sid, 'r', [m])\n"
        "except engine.InvalidInputError as e:\n"
        "    print('refused', e)\n", timeout=30)
    assert out.startswith("refused message 0: $.self: the value contains itself"), out


def test_a_million_small_dicts_in_one_call_stay_bounded(tmp_path):
    """Peak RSS growth of appending many small dicts in one call, per message: each orjson
    result used to hold a 4 KiB buffer (4.6 GB for 10^6); now ~ the stored bytes. 200,000 here
    (benches/bench_memory.py runs the 10^6 row)."""
    n = 200_000
    out = run_child(
        "import engine\n"
        "def hwm():  # VmHWM: getrusage's ru_maxrss carries the parent's peak across exec\n"
        "    return int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM:')).split()[1]) * 1024\n"
        f"n = {n}\n"
        "msgs = [{'role': 'user', 'content': f'hello {i}', 'created_at': '2026-01-01T00:00:00Z'} for i in range(n)]\n"
        "base = hwm()\n"
        f"s = engine.open({str(tmp_path / 'm.db')!r}, synchronous='OFF')\n"
        "sid = s.create_session()\n"
        "r = s.apply_runtime_turn(sid, 'r', msgs)\n"
        "assert r.message_count == n\n"
        "print((hwm() - base) / n)\n", timeout=300)
    per_message = float(out)
    assert per_message < 1500, f"{per_message:.0f} bytes of peak RSS per ~70-byte message"
