"""jcs numbers in the native code (_native/jcs_number.c) against Python: the correctly
rounded decimal -> double parse against float() bit for bit on generated tokens (subnormals,
exact halfway points and their neighbours, long mantissas, 2^53 neighbours, powers of ten,
the overflow and underflow edges), the number grammar against a regular expression, and
the ECMAScript output against engine._jcs_py.format_number (repr-based) and the rfc8785
package.

Sizes: MOBSTORE_JCS_NUMBER_TOKENS generated tokens (default 200,000; the stress run,
`pytest -m stress tests/test_jcs_numbers.py`, takes MOBSTORE_STRESS_EXAMPLES, default
5,000,000). Seeds are printed; MOBSTORE_TEST_SEED replays one.
"""

from __future__ import annotations

import math
import os
import random
import re
import struct
from decimal import Decimal, getcontext

import pytest
import rfc8785

from engine import _jcs_py, digest

pytestmark = pytest.mark.skipif(digest.DIGEST_IMPL != "native", reason=f"native path not loaded: {digest.NATIVE_ERROR}")

TOKENS = int(os.environ.get("MOBSTORE_JCS_NUMBER_TOKENS", "200000"))
E_NUMBER, E_RANGE = (digest.lib.MOBSTORE_E_NUMBER, digest.lib.MOBSTORE_E_NUMBER_RANGE) if digest.DIGEST_IMPL == "native" else (3, 4)
getcontext().prec = 1200  # exact midpoints of doubles: at most ~770 significant digits
JSON_NUMBER = re.compile(rb"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
MAX_HALF = 2 ** 1024 - 2 ** 970  # halfway between the largest double and 2^1024: rounds to infinity (even)


def bits_of(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def of_bits(b: int) -> float:
    return struct.unpack("<d", struct.pack("<Q", b))[0]


def finite(r: random.Random) -> float:
    while True:
        x = of_bits(r.getrandbits(64))
        if math.isfinite(x):
            return x


def midpoint(x: float) -> Decimal | None:
    """The exact value halfway between |x| and the next double up (None past the largest)."""
    b = bits_of(abs(x))
    if b + 1 >= 0x7FF0000000000000:
        return Decimal(MAX_HALF) if b + 1 == 0x7FF0000000000000 else None
    return (Decimal(abs(x)) + Decimal(of_bits(b + 1))) / 2


def spell_decimal(d: Decimal, r: random.Random) -> str:
    s = format(d, r.choice("ef"))
    if "e" in s and r.random() < 0.5:
        mant, exp = s.split("e")
        s = mant + r.choice("eE") + (exp.lstrip("+") if r.random() < 0.5 else exp)
    return s


def token(r: random.Random) -> str:
    k = r.randrange(12)
    sign = "-" if r.random() < 0.3 else ""
    if k == 0:  # a double's shortest form or a fixed number of digits
        x = abs(finite(r))
        return sign + (repr(x) if r.random() < 0.5 else "%.*e" % (r.randrange(25), x))
    if k == 1:  # its exact decimal value (long mantissas)
        return sign + spell_decimal(Decimal(abs(finite(r))), r)
    if k in (2, 3):  # exactly halfway, or off it by one unit far below the last digit
        m = midpoint(finite(r))
        if m is None:
            return repr(finite(r))
        s = format(m, "e")
        if k == 3:
            mant, exp = s.split("e")
            mant = mant if "." in mant else mant + "."
            if r.random() < 0.5:
                s = mant + "0" * r.randrange(1200) + "1e" + exp
            else:  # just below: the midpoint minus a tiny amount
                s = format(m - Decimal(10) ** (m.adjusted() - r.randrange(20, 1100)), "e")
        return sign + s
    if k == 4:  # subnormals and the smallest normals
        x = of_bits(r.getrandbits(52 + r.randrange(2)))
        return sign + (repr(x) if r.random() < 0.5 else spell_decimal(Decimal(x), r))
    if k == 5:  # integers around 2^53 (and their products with powers of ten)
        n = 2 ** 53 + r.randrange(-10 ** 4, 10 ** 4)
        return sign + str(n) + ("0" * r.randrange(5) if r.random() < 0.3 else "")
    if k == 6:  # integers of any size
        return sign + str(r.randrange(1, 10 ** r.randrange(1, 400)))
    if k == 7:  # powers of ten and their neighbours around both ends of the range
        e = r.randrange(-345, 312)
        return sign + r.choice(["1", "9.999999999999999", "1.0000000000000001", "5", "2.5", "4.9406564584124654"]) + "e" + str(e)
    if k == 8:  # leading zeros in the fraction, zeros in the exponent
        return sign + "0." + "0" * r.randrange(400) + str(r.randrange(1, 10 ** r.randrange(1, 30))) + \
            r.choice(["", "e0", "e-0", "E+00", "e17", "e-17", "e308", "e00000000000000000000001"])
    if k == 9:  # random digit strings with random exponents
        digits = str(r.randrange(1, 10 ** r.randrange(1, 40)))
        point = r.randrange(len(digits) + 1)
        body = digits[:point] + ("." + digits[point:] if point < len(digits) else "") if point else "0." + digits
        return sign + body + ("e%d" % r.randrange(-400, 400) if r.random() < 0.7 else "")
    if k == 10:  # zeros, and exponents far outside the range
        return sign + r.choice(["0", "0.0", "0e999999999999", "0.000e-99999", "1e-99999999999", "1e99999999999",
                                "123e-2147483649", "0." + "0" * 5000 + "1", "1" + "0" * 5000 + "e-5000"])
    # the edges of the range
    return sign + r.choice([str(MAX_HALF), str(MAX_HALF - 1), str(MAX_HALF + 1), "1.7976931348623157e308",
                            "1.7976931348623158e308", "1.7976931348623159e308", "2.4703282292062327e-324",
                            "2.4703282292062328e-324", "4.9406564584124654e-324", "2.2250738585072011e-308",
                            "2.2250738585072012e-308", "2.2250738585072014e-308", "9007199254740993", "9007199254740995",
                            "9007199254740993.0000000000000000000000000000001", "18014398509481989"])


def check_tokens(tokens: list[str]) -> int:
    values, codes = digest._native_jcs_parse([t.encode("ascii") for t in tokens])
    checked = 0
    for t, v, code in zip(tokens, values, codes):
        want = float(t)
        if want in (float("inf"), float("-inf")):
            assert code == E_RANGE, t[:200]
        else:
            assert code == 0 and bits_of(v) == bits_of(want), f"{t[:300]}: native {v!r}, float() {want!r}"
        checked += 1
    return checked


def run_generated(seed: int, n: int) -> int:
    r = random.Random(seed)
    done = 0
    while done < n:
        batch = [token(r) for _ in range(min(20000, n - done))]
        done += check_tokens(batch)
    return done


def test_generated_tokens_against_float(rng):
    seed = rng.randrange(1 << 40)
    print(f"token seed {seed}")
    assert run_generated(seed, TOKENS) == TOKENS


@pytest.mark.stress
def test_stress_generated_tokens_against_float(request):
    if "stress" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("select with -m stress")
    n = int(os.environ.get("MOBSTORE_STRESS_EXAMPLES", "5000000"))
    seed = int(os.environ.get("MOBSTORE_TEST_SEED", random.randrange(1 << 40)))
    print(f"\nMOBSTORE_TEST_SEED={seed}")
    assert run_generated(seed, n) == n


def test_every_power_of_ten_and_neighbours():
    tokens = []
    for e in range(-350, 320):
        for m in ("1", "9", "5", "2.5", "9.999999999999999999999", "1.000000000000000000001"):
            tokens += [f"{m}e{e}", f"-{m}e{e}"]
    assert check_tokens(tokens) == len(tokens)


def test_two_to_the_53_neighbours():
    tokens = [str(2 ** 53 + d) for d in range(-2000, 2001)]
    tokens += [str(2 ** 53 + d) + ".5" for d in range(-50, 51)] + [str(2 ** 54 + d) for d in range(-100, 101)]
    assert check_tokens(tokens) == len(tokens)


def test_every_subnormal_boundary_sample(rng):
    """Midpoints around subnormal doubles with few mantissa bits: ties to even all the way down."""
    tokens = []
    for m in list(range(64)) + [rng.getrandbits(52) for _ in range(500)]:
        for x in (of_bits(m), of_bits(m + 1)):
            mid = midpoint(x)
            tokens += [format(mid, "e"), format(mid, "f"), repr(x)]
    assert check_tokens(tokens) == len(tokens)


def test_grammar_matches_json_number_regex(rng):
    alphabet = b"0123456789.eE+-"
    for _ in range(20000):
        t = bytes(rng.choice(alphabet) for _ in range(rng.randrange(1, 9)))
        _, codes = digest._native_jcs_parse([t])
        ok = JSON_NUMBER.fullmatch(t) is not None
        if ok:
            assert codes[0] in (0, E_RANGE), t
        else:
            assert codes[0] == E_NUMBER, t


def test_format_random_doubles_against_reference_and_oracle(rng):
    for i in range(100_000):
        x = finite(rng) if i % 4 else of_bits(rng.getrandbits(52))  # every fourth a subnormal
        text = digest._native_jcs_format(x)
        assert text == _jcs_py.format_number(x), repr(x)
        if i % 10 == 0:
            assert text == rfc8785.dumps(x).decode(), repr(x)


def test_format_layout_boundaries():
    cases = {1e21: "1e+21", 1e20: "100000000000000000000", 123456789012345680000.0: "123456789012345680000",
             1e-6: "0.000001", 1e-7: "1e-7", 1.5e-7: "1.5e-7", 0.1: "0.1", -0.0: "0", 2.0 ** 53: "9007199254740992",
             2.0 ** 53 + 2: "9007199254740994", 5e-324: "5e-324", 1e308: "1e+308", 0.5: "0.5", 100.0: "100",
             1.7976931348623157e308: "1.7976931348623157e+308", 4.35: "4.35", 1e15: "1000000000000000",
             123e-20: "1.23e-18", 1 / 3: "0.3333333333333333"}
    for x, text in cases.items():
        assert digest._native_jcs_format(x) == text
        assert _jcs_py.format_number(x) == text
    assert digest._native_jcs_format(float("nan")) == "" and digest._native_jcs_format(float("inf")) == ""
