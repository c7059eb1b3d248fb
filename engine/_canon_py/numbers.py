"""serde_json's number parsing and zmij's float output (pure Python).

Part of the reference canonicalizer (docs/messages.md, "Opaque slots"). Parsing follows
serde_json 1.0.150 without ``float_roundtrip`` (serde-rs/json src/de.rs:462-660 and 816-880 at
v1.0.150): not correctly rounded, because meerkat's digests depend on its exact rounding. Output
is zmij 1.0.16's ``format_finite`` layout (dtolnay/zmij src/lib.rs:1217 at 1.0.16).
"""

from __future__ import annotations

import math
import re

from ..errors import InvalidInputError

_U64_MAX = (1 << 64) - 1
_POW10 = tuple(float("1e%d" % i) for i in range(309))
_I32_MIN, _I32_MAX = -(1 << 31), (1 << 31) - 1
_NUM_RE = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


def _f64_from_parts(neg: bool, sig: int, exp: int) -> float:
    f = float(sig)  # u64 -> f64, round half to even, like Rust `as`
    while True:
        a = -exp if exp < 0 else exp
        if a <= 308 and exp != _I32_MIN:
            if exp >= 0:
                f *= _POW10[a]
                if math.isinf(f):
                    raise InvalidInputError("number out of range")
            else:
                f /= _POW10[a]
            break
        if f == 0.0:
            break
        if exp >= 0:
            raise InvalidInputError("number out of range")
        f /= 1e308
        exp += 308
    return -f if neg else f


def _number(tok: str):
    """serde_json ParserNumber of a grammar-checked token: int or float."""
    neg = tok[0] == "-"
    i = 1 if neg else 0
    n = len(tok)
    sig = 0
    exp = 0
    is_int = True
    while i < n and "0" <= tok[i] <= "9":
        d = ord(tok[i]) - 48
        if sig >= 1844674407370955161 and (sig > 1844674407370955161 or d > 5):
            while i < n and "0" <= tok[i] <= "9":  # parse_long_integer
                exp += 1
                i += 1
            is_int = False
            break
        sig = sig * 10 + d
        i += 1
    if i < n and tok[i] == ".":
        is_int = False
        i += 1
        while i < n and "0" <= tok[i] <= "9":
            d = ord(tok[i]) - 48
            if sig >= 1844674407370955161 and (sig > 1844674407370955161 or d > 5):
                while i < n and "0" <= tok[i] <= "9":  # parse_decimal_overflow
                    i += 1
                break
            sig = sig * 10 + d
            exp -= 1
            i += 1
    if i < n and tok[i] in "eE":
        is_int = False
        i += 1
        pos_exp = tok[i] != "-"
        if tok[i] in "+-":
            i += 1
        e = 0
        while i < n:
            d = ord(tok[i]) - 48
            if e >= 214748364 and (e > 214748364 or d > 7):  # parse_exponent_overflow
                if sig != 0 and pos_exp:
                    raise InvalidInputError("number out of range")
                return -0.0 if neg else 0.0
            e = e * 10 + d
            i += 1
        exp = exp + e if pos_exp else exp - e
        exp = max(_I32_MIN, min(_I32_MAX, exp))
    if is_int:
        if not neg:
            return sig
        if sig == 0:
            return -0.0
        return -sig if sig <= 1 << 63 else -float(sig)
    exp = max(_I32_MIN, min(_I32_MAX, exp))
    return _f64_from_parts(neg, sig, exp)


def parse_float_serde(token: str) -> float:
    """serde_json's default f64 of a JSON number token (not correctly rounded)."""
    if not isinstance(token, str) or _NUM_RE.fullmatch(token) is None:
        raise InvalidInputError("invalid JSON number token %r" % (token,))
    return float(_number(token))


def format_float(x: float) -> str:
    """zmij/serde_json text of a finite double."""
    if not isinstance(x, float) or not math.isfinite(x):
        raise InvalidInputError("cannot serialise non-finite float %r" % (x,))
    if x == 0.0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    r = repr(x)
    sign = ""
    if r[0] == "-":
        sign, r = "-", r[1:]
    mant, _, e = r.partition("e")
    ip, _, fp = mant.partition(".")
    digits = (ip + fp).lstrip("0")
    k = (int(e) if e else 0) - len(fp)
    stripped = digits.rstrip("0")
    k += len(digits) - len(stripped)
    digits = stripped
    n = len(digits)
    E = k + n - 1
    if -5 <= E <= 15:
        if E >= n - 1:
            return sign + digits + "0" * (E - n + 1) + ".0"
        if E >= 0:
            return sign + digits[:E + 1] + "." + digits[E + 1:]
        return sign + "0." + "0" * (-E - 1) + digits
    frac = "." + digits[1:] if n > 1 else ""
    return "%s%s%se%s%d" % (sign, digits[0], frac, "+" if E > 0 else "-", abs(E))
