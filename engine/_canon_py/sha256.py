"""SHA-256 with an exportable, resumable midstate (pure Python, FIPS 180-4).

Part of the reference canonicalizer (``engine._canon_py``); ``_native/sha256.c``
writes the same export format: ``b"MSS1"`` + H0..H7 as big-endian u32 + total
bytes absorbed as big-endian u64 + the not-yet-compressed tail (total % 64
bytes). A state claiming 2^61 bytes or more is malformed (SHA-256 messages are
shorter than 2^64 bits).
"""

from __future__ import annotations

import struct

from ..errors import InvalidInputError

_K = (
    0x428A2F98, 0x71374491, 0xB5C0FBCF, 0xE9B5DBA5, 0x3956C25B, 0x59F111F1, 0x923F82A4, 0xAB1C5ED5,
    0xD807AA98, 0x12835B01, 0x243185BE, 0x550C7DC3, 0x72BE5D74, 0x80DEB1FE, 0x9BDC06A7, 0xC19BF174,
    0xE49B69C1, 0xEFBE4786, 0x0FC19DC6, 0x240CA1CC, 0x2DE92C6F, 0x4A7484AA, 0x5CB0A9DC, 0x76F988DA,
    0x983E5152, 0xA831C66D, 0xB00327C8, 0xBF597FC7, 0xC6E00BF3, 0xD5A79147, 0x06CA6351, 0x14292967,
    0x27B70A85, 0x2E1B2138, 0x4D2C6DFC, 0x53380D13, 0x650A7354, 0x766A0ABB, 0x81C2C92E, 0x92722C85,
    0xA2BFE8A1, 0xA81A664B, 0xC24B8B70, 0xC76C51A3, 0xD192E819, 0xD6990624, 0xF40E3585, 0x106AA070,
    0x19A4C116, 0x1E376C08, 0x2748774C, 0x34B0BCB5, 0x391C0CB3, 0x4ED8AA4A, 0x5B9CCA4F, 0x682E6FF3,
    0x748F82EE, 0x78A5636F, 0x84C87814, 0x8CC70208, 0x90BEFFFA, 0xA4506CEB, 0xBEF9A3F7, 0xC67178F2,
)
_IV = (0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19)
_MAGIC = b"MSS1"
_MAX_TOTAL = 1 << 61  # SHA-256 messages are < 2^64 bits


_UNPACK16 = struct.Struct(">16L").unpack


def _compress(h, block, K=_K, M=0xFFFFFFFF):
    """One SHA-256 block. Rotations are built without masking the high bits:
    only the low 32 bits of each sum matter, and the sums are masked."""
    w = list(_UNPACK16(block))
    w += [0] * 48
    for t in range(16, 64):
        x = w[t - 15]
        y = w[t - 2]
        w[t] = (w[t - 16] + w[t - 7] + ((x >> 7 | x << 25) ^ (x >> 18 | x << 14) ^ (x >> 3))
                + ((y >> 17 | y << 15) ^ (y >> 19 | y << 13) ^ (y >> 10))) & M
    a, b, c, d, e, f, g, hh = h
    for t in range(64):
        t1 = (hh + ((e >> 6 | e << 26) ^ (e >> 11 | e << 21) ^ (e >> 25 | e << 7))
              + (g ^ (e & (f ^ g))) + K[t] + w[t])
        t2 = ((a >> 2 | a << 30) ^ (a >> 13 | a << 19) ^ (a >> 22 | a << 10)) + ((a & b) | (c & (a | b)))
        hh = g
        g = f
        f = e
        e = (d + t1) & M
        d = c
        c = b
        b = a
        a = (t1 + t2) & M
    return [(h[0] + a) & M, (h[1] + b) & M, (h[2] + c) & M, (h[3] + d) & M,
            (h[4] + e) & M, (h[5] + f) & M, (h[6] + g) & M, (h[7] + hh) & M]


class Sha256:
    """SHA-256 whose state can be exported and resumed byte-exactly."""

    __slots__ = ("_h", "_total", "_tail")

    def __init__(self, data: bytes = b"") -> None:
        self._h = list(_IV)
        self._total = 0
        self._tail = b""
        if data:
            self.update(data)

    def update(self, data: bytes) -> None:
        data = bytes(data)
        if self._total + len(data) >= _MAX_TOTAL:
            raise InvalidInputError("sha256: message longer than 2^61 bytes")
        self._total += len(data)
        buf = self._tail + data
        end = len(buf) - len(buf) % 64
        h = self._h
        for off in range(0, end, 64):
            h = _compress(h, buf[off:off + 64])
        self._h = h
        self._tail = buf[end:]

    def copy(self) -> "Sha256":
        other = Sha256.__new__(Sha256)
        other._h, other._total, other._tail = list(self._h), self._total, self._tail
        return other

    def digest(self) -> bytes:
        tail = self._tail + b"\x80" + b"\x00" * ((55 - self._total) % 64)
        tail += struct.pack(">Q", self._total * 8)
        h = self._h
        for off in range(0, len(tail), 64):
            h = _compress(h, tail[off:off + 64])
        return struct.pack(">8L", *h)

    def hexdigest(self) -> str:
        return self.digest().hex()

    def export(self) -> bytes:
        return _MAGIC + struct.pack(">8LQ", *self._h, self._total) + self._tail

    @classmethod
    def resume(cls, state: bytes) -> "Sha256":
        if not isinstance(state, (bytes, bytearray, memoryview)):
            raise InvalidInputError("sha256 state: expected bytes")
        state = bytes(state)
        if len(state) < 44 or state[:4] != _MAGIC:
            raise InvalidInputError("sha256 state: bad magic or shorter than 44 bytes")
        *h, total = struct.unpack(">8LQ", state[4:44])
        if total >= _MAX_TOTAL or len(state) != 44 + total % 64:
            raise InvalidInputError(
                "sha256 state: tail length %d does not match total %d" % (len(state) - 44, total))
        obj = cls.__new__(cls)
        obj._h, obj._total, obj._tail = h, total, state[44:]
        return obj
