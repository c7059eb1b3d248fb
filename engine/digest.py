"""PROVISIONAL pure-Python digest front (the lead's stand-in so the package imports);
the native-aware version replaces this file."""

from __future__ import annotations

import struct

from . import _canon_py as _py
from .errors import InvalidInputError

DIGEST_IMPL = "python"
NATIVE_ERROR = "provisional module"
PROFILES = ("f3", "f2", "bare")
_PROFILE_BYTE = {"f3": 3, "f2": 2, "bare": 0}
_BYTE_PROFILE = {v: k for k, v in _PROFILE_BYTE.items()}


def dumps_value(obj) -> bytes:
    return _py.dumps_value(obj)


def message_bytes(message) -> bytes:
    if isinstance(message, (bytes, bytearray, memoryview)):
        return bytes(message)
    if isinstance(message, str):
        try:
            return message.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInputError("message text contains a lone surrogate") from None
    if isinstance(message, dict):
        return _py.dumps_value(message)
    raise InvalidInputError(f"a message must be a dict or JSON bytes, not {type(message).__name__}")


def canonical_message(message, profile="f3") -> bytes:
    return _py.canonical_message(message_bytes(message), profile)


def transcript_digest(messages, profile="f3") -> str:
    return _py.transcript_digest([message_bytes(m) for m in messages], profile)


class TranscriptState:
    def __init__(self, profile, count, sha):
        self.profile, self.count, self._sha = profile, count, sha

    @classmethod
    def new(cls, profile="f3"):
        if profile not in PROFILES:
            raise InvalidInputError(f"unknown profile {profile!r}")
        sha = _py.Sha256()
        sha.update(b"[")
        return cls(profile, 0, sha)

    @classmethod
    def from_bytes(cls, data):
        data = bytes(data)
        if len(data) < 13 or data[:4] != b"MTS1" or data[4] not in _BYTE_PROFILE:
            raise InvalidInputError("malformed transcript state")
        (count,) = struct.unpack(">Q", data[5:13])
        return cls(_BYTE_PROFILE[data[4]], count, _py.Sha256.resume(data[13:]))

    def absorb(self, messages):
        parts = []
        for i, m in enumerate(messages):
            try:
                parts.append(_py.canonical_message(m, self.profile))
            except InvalidInputError as exc:
                raise InvalidInputError(f"message {i}: {exc}") from None
        for c in parts:
            if self.count:
                self._sha.update(b",")
            self._sha.update(c)
            self.count += 1

    def digest(self):
        sha = self._sha.copy()
        sha.update(b"]")
        h = sha.hexdigest()
        return h if self.profile == "bare" else "sha256:" + h

    def to_bytes(self):
        return b"MTS1" + bytes([_PROFILE_BYTE[self.profile]]) + struct.pack(">Q", self.count) + self._sha.export()

    def copy(self):
        return TranscriptState(self.profile, self.count, self._sha.copy())
