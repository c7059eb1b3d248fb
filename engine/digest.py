"""Canonical message bytes and transcript digests (docs/messages.md, docs/profiles.md).

The only module that loads the native code (``engine._canon_native``, built
from ``_native/`` by cffi) and the only owner of its ``ffi``/``lib``. When the
native module is missing or stale, or ``MOBSTORE_PURE_PYTHON=1``, everything
runs on the pure-Python reference ``engine._canon_py``; both paths give the
same bytes and raise the same error class (differential-tested).
Profile "jcs" (RFC 8785 for any JSON object) has its own reference,
``engine._jcs_py``, whose error messages the native path matches exactly.

Environment:
    MOBSTORE_PURE_PYTHON=1    use the Python reference even if native loads
    MOBSTORE_REQUIRE_NATIVE=1 a missing or stale native module is an ImportError
    MOBSTORE_DIGEST_THREADS=N threads a native transcript_digest may use (read once
                              at import; default 2): 1 keeps it sequential; 2+ lets a
                              batch of >= 1 MiB of message bytes be hashed on one extra
                              short-lived thread while it is canonicalised (same result)
"""

from __future__ import annotations

import array
import contextlib
import hashlib
import os
import struct
import sys
import threading
import warnings

import orjson

from . import _canon_py as _py
from . import _jcs_py
from .errors import InvalidInputError

__all__ = [
    "DIGEST_IMPL", "NATIVE_ERROR", "ORJSON_FLOATS", "PROFILES", "TranscriptCheckpoints", "TranscriptState",
    "canonical_message",
    "dumps_value", "runs_native", "message_bytes", "message_dict_bytes", "message_sha256", "transcript_digest",
]

PROFILES = ("f3", "f2", "bare", "jcs")
# Must equal MOBSTORE_CANON_SPEC in _native/canon.h; a mismatch means a stale build.
NATIVE_SPEC = "mobstore-canon-5"

_PROFILE_BYTE = {"f3": 3, "f2": 2, "bare": 0, "jcs": 74}  # = MOBSTORE_PROFILE_* (jcs: "J")
_BYTE_PROFILE = {v: k for k, v in _PROFILE_BYTE.items()}
# A strict transcript state (docs/messages.md, "Strict and lenient") sets this bit in the profile
# byte of to_bytes(); the native calls take MOBSTORE_DECODE_STRICT in the profile argument.
# jcs has no typed decode that could drop a key: strict changes nothing there.
_STRICT_BIT = 0x80
_NATIVE_STRICT = 256
_PREFIX = {"f3": "sha256:", "f2": "sha256:", "bare": "", "jcs": "sha256:"}
_STATE_MAGIC = b"MTS1"


def _load_native():
    if os.environ.get("MOBSTORE_PURE_PYTHON") == "1":
        return None, "MOBSTORE_PURE_PYTHON=1"
    try:
        from . import _canon_native  # noqa: PLC0415 — optional build product
    except ImportError as exc:
        return None, f"native module not importable: {exc}"
    spec = _canon_native.ffi.string(_canon_native.lib.mobstore_canon_spec()).decode()
    if spec != NATIVE_SPEC:
        return None, f"stale native build: spec {spec!r}, this code expects {NATIVE_SPEC!r}; rebuild it"
    for name in _NATIVE_NEEDS:
        if not hasattr(_canon_native.lib, name):
            return None, f"stale native build: no {name}; rebuild it"
    model = _canon_native.ffi.string(_canon_native.lib.mobstore_model_sha256()).decode()
    if model != _py.MODEL.digest:
        return None, ("stale native build: its tables come from another engine/meerkat_model.json "
                      f"(sha256 {model[:12]}, the file is {_py.MODEL.digest[:12]}); rebuild it")
    return _canon_native, None


# Entry points added after the spec id was last bumped: a build without them is stale too.
_NATIVE_NEEDS = ("mobstore_transcript_digest_ptrs", "mobstore_transcript_absorb_ptrs", "mobstore_transcript_checkpoints",
                 "mobstore_transcript_digest_objs", "mobstore_transcript_absorb_objs",
                 "mobstore_transcript_checkpoints_objs", "mobstore_pipe_test_mode")


_native, NATIVE_ERROR = _load_native()
if _native is None and os.environ.get("MOBSTORE_REQUIRE_NATIVE") == "1" and NATIVE_ERROR != "MOBSTORE_PURE_PYTHON=1":
    raise ImportError(f"MOBSTORE_REQUIRE_NATIVE=1 but {NATIVE_ERROR}")
DIGEST_IMPL = "native" if _native is not None else "python"
if _native is None and NATIVE_ERROR != "MOBSTORE_PURE_PYTHON=1":
    # Once per process (module import): the fallback gives the same bytes but verify and
    # large digests are 20-100x slower, which should not go unnoticed.
    warnings.warn(f"mobstore runs its pure-Python digest fallback: {NATIVE_ERROR}. Results are the same, "
                  "digests are much slower; reinstall with a C compiler, or set MOBSTORE_PURE_PYTHON=1 "
                  "to choose the fallback (and silence this warning).", RuntimeWarning, stacklevel=2)

if _native is not None:
    ffi, lib = _native.ffi, _native.lib
    _SIZE_T = {4: "I", 8: "Q"}[ffi.sizeof("size_t")]
    if array.array(_SIZE_T).itemsize != ffi.sizeof("size_t"):  # pragma: no cover - exotic ABI
        _SIZE_T = "L"
    _NOMEM, _ARG = lib.MOBSTORE_E_NOMEM, lib.MOBSTORE_E_ARG

    def _bytes_bias() -> int | None:
        """Offset of a CPython bytes object's data from its address (id), checked on a few
        objects; None elsewhere (then batches are joined, as before)."""
        if sys.implementation.name != "cpython":
            return None
        seen = set()
        for probe in (b"ab", b"x" * 100, bytes(range(256)) * 9):
            seen.add(int(ffi.cast("uintptr_t", ffi.from_buffer(probe))) - id(probe))
        return seen.pop() if len(seen) == 1 else None

    _BIAS = _bytes_bias()

    def _object_layout() -> tuple[int, int, int] | None:
        """(items, size, data) offsets of a CPython tuple's item array from its address, and
        of a bytes object's length and data from its address, read back on probes of several
        sizes; None when any probe disagrees or off CPython (then the *_ptrs calls are used).
        With them a batch is one tuple(): C reads each message's address, length and bytes,
        so no per-message Python work (ids, lengths) is done for a call."""
        if _BIAS is None:
            return None
        word = ffi.sizeof("size_t")
        probes = (b"", b"ab", b"x" * 100, bytes(range(256)) * 9)
        t = tuple(probes)
        items = 3 * word  # PyObject_VAR_HEAD: refcount, type, size
        size = 2 * word
        slots = ffi.cast("uintptr_t *", id(t) + items)
        for i, b in enumerate(probes):
            if int(slots[i]) != id(b) or int(ffi.cast("ptrdiff_t *", id(b) + size)[0]) != len(b):
                return None
            if ffi.buffer(ffi.cast("char *", id(b) + _BIAS), len(b))[:] != b:
                return None
        if int(ffi.cast("ptrdiff_t *", id(t) + size)[0]) != len(t):
            return None
        return items, size, _BIAS

    _LAYOUT = _object_layout()

    class _Work(threading.local):
        """Per-thread native context and out-parameters, allocated once: the C
        calls release the GIL, so two threads must never share a context."""

        def __init__(self) -> None:
            ctx = lib.mobstore_ctx_new()
            if ctx == ffi.NULL:
                raise MemoryError("mobstore_ctx_new")
            self.ctx = ffi.gc(ctx, lib.mobstore_ctx_free)
            self.outp = ffi.new("const char **")
            self.outl = ffi.new("size_t *")
            self.hex = ffi.new("char[65]")
            self.sha = ffi.new("uint8_t[32]")
            self.one = ffi.new("size_t[1]")
            self.export = ffi.new("uint8_t[%d]" % lib.MOBSTORE_SHA256_EXPORT_MAX)

    _work = _Work()

    def _digest_threads_from_env() -> None:
        raw = os.environ.get("MOBSTORE_DIGEST_THREADS", "").strip()
        if raw:
            try:
                n = int(raw)
            except ValueError:
                return  # unparseable: keep the native default
            lib.mobstore_set_digest_threads(max(1, min(n, 64)))  # clamp: fits a C int

    _digest_threads_from_env()


def _py_canonical(data: bytes, profile: str, strict: bool = False) -> bytes:
    """The Python reference of one profile (jcs has its own module)."""
    return _jcs_py.canonical_message(data) if profile == "jcs" else _py.canonical_message(data, profile, strict)


def _check_profile(profile) -> int:
    try:
        return _PROFILE_BYTE[profile]
    except (KeyError, TypeError):
        raise InvalidInputError(f"unknown digest profile {profile!r} (expected one of {', '.join(PROFILES)})") from None


def _native_error(w, rc: int, batch: bool) -> Exception:
    text = ffi.string(lib.mobstore_ctx_error_text(w.ctx)).decode("utf-8", "replace")
    if rc == _NOMEM:
        return MemoryError(text)
    if batch:
        text = f"message {lib.mobstore_ctx_error_index(w.ctx)}: {text}"
    return InvalidInputError(text)


# orjson is asked to refuse what serde_json's rules would not write the same way: subclasses
# (IntEnum excepted, see below), dataclasses and datetimes go to its `default` (none: TypeError).
_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME

# Floats whose text separates writers: both layout thresholds (1e-5 / 1e-6 and 1e15 / 1e16,
# where Python's repr switches at other exponents), subnormals and the extremes, ties of the
# shortest-digit search, powers of two near 2^53 and 2^64. tests/test_dict_messages.py runs
# the full differential (random bit patterns, every power of two and of ten, neighbours).
_FLOAT_PROBE = (
    0.0, -0.0, 1.0, -1.5, 0.1, 0.2, 0.30000000000000004, 1 / 3, 2 / 3, 100.0, 123456.789,
    1e-5, 1.5e-5, 9.999999999999999e-6, 1e-6, 1e-7, 0.0001, 2.5e-5,
    1e15, 999999999999999.9, 9.999999999999998e15, 1e16, 1.0000000000000002e16, 123456789012345.67,
    1e21, 1e22, 1e23, 5e-324, 1e-323, 2.2250738585072014e-308, 2.225073858507201e-308,
    1.7976931348623157e308, 4.35, 9007199254740992.0, 9007199254740994.0, 1.8446744073709552e19,
    -2.5e-300, 6.02214076e23, 1.602176634e-19, 0.000123456789, 5e-5, 4.940656458412465e-324,
)


def _orjson_writes_serde_floats() -> bool:
    """orjson's float text equals the serde writer's on the probe (orjson >= 3.10 writes
    the same shortest digits in the same layout; an older or changed build falls back)."""
    try:
        return all(orjson.dumps(x) == _py.format_float(x).encode("ascii") for x in _FLOAT_PROBE)
    except Exception:  # noqa: BLE001 - any surprise means: do not trust it
        return False


ORJSON_FLOATS = _orjson_writes_serde_floats()
_EXACT_SCALARS = frozenset((str, int, bool, type(None)))
_FINITE_SCALARS = frozenset((str, int, bool, type(None), float))
_MAX_DEPTH = 127  # containers nesting at most (serde_json's limit; the message object is one)


def _plain(obj) -> bool:
    """True when obj holds only dict/list/tuple/str/int/bool/None/finite float (exact types;
    floats only if orjson writes them as serde does) within _MAX_DEPTH levels. Call it only on
    a value orjson could write (so it is finite and acyclic): then this walk ends."""
    scalars = _FINITE_SCALARS if ORJSON_FLOATS else _EXACT_SCALARS
    stack = [(obj, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        value, depth = pop()
        kind = type(value)
        if kind is dict or kind is list or kind is tuple:
            if depth >= _MAX_DEPTH:
                return False
            for item in (value.values() if kind is dict else value):
                push((item, depth + 1))
        elif kind not in scalars or (kind is float and value - value != 0.0):  # NaN/inf: x - x is nan
            return False
    return True


def _nonfinite(obj) -> bool:
    """True when obj holds a NaN or an infinity (orjson writes them as null). Same rule as
    _plain: only on a value orjson could write."""
    stack = [obj]
    pop, push = stack.pop, stack.extend
    while stack:
        value = pop()
        kind = type(value)
        if kind is dict:
            push(value.values())
        elif kind is list or kind is tuple:
            push(value)
        elif kind is float and value - value != 0.0:
            return True
    return False


def _reference(obj) -> bytes:
    """The pure-Python serde writer, after naming a reference cycle (it would report one as
    nesting past 127 levels, at the 128th repetition of the loop)."""
    path = _cycle(obj)
    if path is not None:
        raise InvalidInputError(f"{path}: the value contains itself (a reference cycle)")
    return _py.dumps_value(obj)


def _cycle(obj, limit: int = _MAX_DEPTH + 1) -> str | None:
    """JSON path of the first container that is its own ancestor, within `limit` levels."""
    ancestors: list[int] = []
    path: list[str] = []

    def walk(value, depth: int) -> bool:
        if not isinstance(value, (dict, list, tuple)) or depth > limit:
            return False
        if id(value) in ancestors:
            return True
        ancestors.append(id(value))
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            path.append(f".{key}" if isinstance(value, dict) else f"[{key}]")
            if walk(item, depth + 1):
                return True
            path.pop()
        ancestors.pop()
        return False

    return "$" + "".join(path) if walk(obj, 0) else None


def dumps_value(obj) -> bytes:
    """Compact serde_json bytes of a Python JSON value (dicts in insertion order), exactly as
    the pure-Python serde writer (the reference) writes them or with its error: orjson when
    the value holds plain JSON types only, else the reference, which also says what is wrong."""
    try:
        out = orjson.dumps(obj, option=_ORJSON_OPTIONS)
    except (orjson.JSONEncodeError, TypeError):
        return _reference(obj)  # a cycle or too deep: orjson stops at level 255, at once
    if _plain(obj):
        return out
    return _py.dumps_value(obj)


def message_dict_bytes(message: dict) -> bytes:
    """A dict message's stored bytes: orjson's output, byte-identical to the serde writer on
    JSON values (tests/test_dict_messages.py), without a Python walk of the dict. The values
    orjson writes natively beyond JSON -- uuid.UUID and enum members as their value,
    orjson.Fragment as its bytes -- come out as orjson writes them; the message is then
    parsed and validated like any JSON message. NaN and infinities (orjson would write null)
    and everything orjson refuses go to the reference writer, which raises or writes them
    (str/int/float/dict/list subclasses) as serde rules say. A message containing itself, or
    nested past 254 levels, fails in orjson at once and then in the reference at level 128."""
    if not ORJSON_FLOATS:
        return dumps_value(message)
    try:
        out = orjson.dumps(message, option=_ORJSON_OPTIONS)
    except (orjson.JSONEncodeError, TypeError):
        return _reference(message)
    if b"null" in out and _nonfinite(message):
        return _py.dumps_value(message)  # orjson wrote a NaN as null: the reference raises
    return out


def message_bytes(message) -> bytes:
    """One input message as its stored JSON bytes: bytes-like returned as
    bytes unchanged, str encoded UTF-8, dict serialised compactly (serde
    rules, insertion order). No validation here."""
    t = type(message)
    if t is bytes:
        return message
    if t is dict:
        return message_dict_bytes(message)
    if t is bytearray or t is memoryview or isinstance(message, (bytes, bytearray, memoryview)):
        return bytes(message)
    if isinstance(message, str):
        try:
            return message.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInputError("message text contains a lone surrogate") from None
    if isinstance(message, dict):
        return message_dict_bytes(message)
    raise InvalidInputError(f"a message must be a dict or JSON bytes/str, not {type(message).__name__}")


def canonical_message(message, profile="f3", *, strict=False) -> bytes:
    """Canonical bytes of one message under ``profile``; InvalidInputError on bad input.
    ``strict`` refuses keys meerkat's typed decode would drop instead of dropping them."""
    code = _check_profile(profile)
    data = message_bytes(message)
    if _native is None:
        return _py_canonical(data, profile, strict)
    w = _work
    if strict and profile != "jcs":
        code |= _NATIVE_STRICT
    rc = lib.mobstore_canonical(w.ctx, data, len(data), code, w.outp, w.outl)
    if rc:
        raise _native_error(w, rc, False)
    return ffi.unpack(w.outp[0], w.outl[0])


def message_sha256(message, profile="f3") -> bytes:
    """SHA-256 (32 raw bytes) of one message's canonical bytes, in one native call:
    a content hash of a single message without copying its canonical form out."""
    code = _check_profile(profile)
    data = message_bytes(message)
    if _native is None:
        return hashlib.sha256(_py_canonical(data, profile)).digest()
    w = _work
    rc = lib.mobstore_message_sha256(w.ctx, data, len(data), code, w.sha)
    if rc:
        raise _native_error(w, rc, False)
    return ffi.buffer(w.sha, 32)[:]


_ONLY_BYTES = frozenset((bytes,))


def _exact_bytes(messages) -> list:
    """The messages as exact bytes objects (their data is what C reads, by address)."""
    if set(map(type, messages)) <= _ONLY_BYTES:  # C-speed check (verify feeds 2,048 at a time)
        return messages if isinstance(messages, list) else list(messages)
    return [message_bytes(m) for m in messages]


def _addresses(datas: list):
    """(ptrs, bias, lens) for one C call over `datas` (exact bytes, kept alive by the caller):
    the objects' addresses and the data offset, or, off CPython, one joined buffer."""
    lens = array.array(_SIZE_T, map(len, datas))
    if _BIAS is not None:
        return array.array(_SIZE_T, map(id, datas)), _BIAS, lens
    joined = b"".join(datas)  # pragma: no cover - not CPython
    base = int(ffi.cast("uintptr_t", ffi.from_buffer(joined)))
    offsets, at = array.array(_SIZE_T), 0
    for n in lens:
        offsets.append(at)
        at += n
    return offsets, (joined, base), lens


def _ptr_args(datas: list):
    """cffi arguments (ptrs, bias, lens, keep-alive) for the *_ptrs entry points."""
    ptrs, bias, lens = _addresses(datas)
    keep = None
    if isinstance(bias, tuple):  # pragma: no cover - joined fallback: offsets from the buffer
        keep, bias = bias
    return ffi.from_buffer("char *[]", ptrs), bias, ffi.from_buffer("size_t[]", lens), keep


def _objs(datas):
    """(objs, keep) for the *_objs calls: the item array of a tuple of the messages (exact
    bytes; `keep` holds the tuple for the call)."""
    keep = datas if type(datas) is tuple else tuple(datas)
    return ffi.cast("char **", id(keep) + _LAYOUT[0]), keep


def transcript_digest(messages, profile="f3") -> str:
    """Digest of a whole transcript: ``"sha256:"+hex`` (f3/f2) or plain hex (bare)."""
    code = _check_profile(profile)
    if _native is None:
        if profile == "jcs":
            return _jcs_py.transcript_digest([message_bytes(m) for m in messages])
        return _py.transcript_digest([message_bytes(m) for m in messages], profile)
    w = _work
    if len(messages) == 1:
        data = message_bytes(messages[0])
        w.one[0] = len(data)
        rc = lib.mobstore_transcript_digest(w.ctx, data, w.one, 1, code, w.hex)
    else:
        datas = _exact_bytes(messages)
        if _LAYOUT is not None:
            objs, _keep = _objs(datas)
            rc = lib.mobstore_transcript_digest_objs(w.ctx, objs, len(_keep), _LAYOUT[2], _LAYOUT[1], code, w.hex)
        else:  # pragma: no cover - not CPython
            ptrs, bias, lens, _keep = _ptr_args(datas)
            rc = lib.mobstore_transcript_digest_ptrs(w.ctx, ptrs, bias, lens, len(datas), code, w.hex)
    if rc:
        raise _native_error(w, rc, True)
    return _PREFIX[profile] + ffi.string(w.hex, 64).decode("ascii")


class TranscriptState:
    """Streaming SHA-256 over b"[" + canonical messages joined by b"," (+ b"]" at digest time).

    ``to_bytes()`` is ``b"MTS1"`` + profile byte (3 f3, 2 f2, 0 bare, 74 jcs; + 0x80 when strict) +
    message count (u64 big-endian) + the SHA-256 midstate (``b"MSS1"`` + H0..H7
    big-endian + total bytes u64 big-endian + the uncompressed tail); both
    implementations write and resume exactly these bytes.
    """

    __slots__ = ("profile", "strict", "_code", "_sha", "_count")

    def __init__(self, profile: str, count: int, sha, strict: bool = False) -> None:
        self.profile = profile
        # refuse keys the typed decode would drop (a session's decode="strict"); kept for jcs too
        # (its decode drops nothing, so there it changes nothing)
        self.strict = strict = bool(strict)
        self._code = _PROFILE_BYTE[profile] | (_NATIVE_STRICT if strict and profile != "jcs" else 0)
        self._sha = sha  # native: mobstore_sha256 *; python: _py.Sha256
        if _native is None:
            self._count = count
        else:
            self._count = ffi.new("uint64_t *", count)

    @property
    def count(self) -> int:
        """Messages absorbed so far."""
        return self._count if _native is None else int(self._count[0])

    @classmethod
    def new(cls, profile="f3", *, strict=False) -> TranscriptState:
        """An empty transcript. A ``strict`` state refuses messages with keys meerkat's typed
        decode would drop (and keeps refusing them after to_bytes/from_bytes); the digest is
        the same either way."""
        _check_profile(profile)
        if _native is None:
            sha = _py.Sha256()
            sha.update(b"[")
        else:
            sha = ffi.new("mobstore_sha256 *")
            lib.mobstore_transcript_init(sha)
        return cls(profile, 0, sha, bool(strict))

    @classmethod
    def from_bytes(cls, data) -> TranscriptState:
        """Resume a state written by ``to_bytes`` (either implementation)."""
        try:
            data = bytes(data)
        except TypeError:
            raise InvalidInputError("transcript state must be bytes") from None
        if len(data) < 13 or data[:4] != _STATE_MAGIC or data[4] & ~_STRICT_BIT not in _BYTE_PROFILE:
            raise InvalidInputError("malformed transcript state (bad header)")
        (count,) = struct.unpack(">Q", data[5:13])
        mid = data[13:]
        if _native is None:
            try:
                sha = _py.Sha256.resume(mid)
            except (ValueError, InvalidInputError) as exc:
                raise InvalidInputError(f"malformed transcript state: {exc}") from None
        else:
            sha = ffi.new("mobstore_sha256 *")
            if lib.mobstore_sha256_import(sha, mid, len(mid)) != 0:
                raise InvalidInputError("malformed transcript state (bad SHA-256 midstate)")
        return cls(_BYTE_PROFILE[data[4] & ~_STRICT_BIT], count, sha, bool(data[4] & _STRICT_BIT))

    def absorb(self, messages) -> None:
        """Canonicalise and hash a batch, all-or-nothing: on a bad message
        raise InvalidInputError naming its index; the state is unchanged."""
        if _native is None:
            parts = []
            for i, m in enumerate(messages):
                try:
                    parts.append(_py_canonical(message_bytes(m), self.profile, self.strict))
                except InvalidInputError as exc:
                    raise InvalidInputError(f"message {i}: {exc}") from None
            if not parts:
                return
            sep = b"," if self._count else b""
            self._sha.update(sep + b",".join(parts))
            self._count += len(parts)
            return
        w = _work
        if len(messages) == 1:
            data = message_bytes(messages[0])
            w.one[0] = len(data)
            rc = lib.mobstore_transcript_absorb(w.ctx, self._sha, self._count, data, w.one, 1, self._code)
        elif _LAYOUT is not None:
            objs, _keep = _objs(_exact_bytes(messages))
            rc = lib.mobstore_transcript_absorb_objs(w.ctx, self._sha, self._count, objs, len(_keep), _LAYOUT[2],
                                                     _LAYOUT[1], self._code)
        else:  # pragma: no cover - not CPython
            datas = _exact_bytes(messages)
            ptrs, bias, lens, _keep = _ptr_args(datas)
            rc = lib.mobstore_transcript_absorb_ptrs(w.ctx, self._sha, self._count, ptrs, bias, lens,
                                                     len(datas), self._code)
        if rc:
            raise _native_error(w, rc, True)

    def digest(self) -> str:
        """Non-destructive finalisation; an empty transcript hashes b"[]"."""
        if _native is None:
            sha = self._sha.copy()
            sha.update(b"]")
            return _PREFIX[self.profile] + sha.hexdigest()
        w = _work
        lib.mobstore_transcript_hex(self._sha, w.hex)
        return _PREFIX[self.profile] + ffi.string(w.hex, 64).decode("ascii")

    def to_bytes(self) -> bytes:
        head = (_STATE_MAGIC + bytes([_PROFILE_BYTE[self.profile] | (_STRICT_BIT if self.strict else 0)])
                + struct.pack(">Q", self.count))
        if _native is None:
            return head + self._sha.export()
        w = _work
        n = lib.mobstore_sha256_export(self._sha, w.export)
        return head + ffi.unpack(ffi.cast("char *", w.export), n)

    def copy(self) -> TranscriptState:
        if _native is None:
            return TranscriptState(self.profile, self._count, self._sha.copy(), self.strict)
        sha = ffi.new("mobstore_sha256 *")
        sha[0] = self._sha[0]
        return TranscriptState(self.profile, self.count, sha, self.strict)

    def __repr__(self) -> str:
        return f"TranscriptState(profile={self.profile!r}, count={self.count}, strict={self.strict})"


class TranscriptCheckpoints:
    """Digests of one transcript at chosen message counts, in one pass (what verify needs):
    feed the messages in order, chunk by chunk; each chunk is one C call natively, and
    hashlib on the Python path (a full recompute exports no midstate, so the stdlib's C
    SHA-256 runs, ~100x the pure-Python one this module uses for resumable states)."""

    __slots__ = ("profile", "_code", "_at", "_next", "_count", "_sha", "_ncount", "_at_buf", "_hex_out", "_nxt",
                 "digests")

    def __init__(self, profile: str, at) -> None:
        self._code = _check_profile(profile)
        self.profile = profile
        self._at = sorted(set(at))
        self._next = 0
        self.digests: dict[int, str] = {}
        if _native is None:
            self._sha = hashlib.sha256(b"[")
            self._count = 0
        else:
            self._sha = ffi.new("mobstore_sha256 *")
            lib.mobstore_transcript_init(self._sha)
            self._ncount = ffi.new("uint64_t *", 0)
            # converted once, not per chunk (verify feeds a chunk of 2,048 messages at a time)
            n_at = len(self._at)
            self._at_buf = ffi.new("uint64_t[]", self._at) if n_at else ffi.NULL
            self._hex_out = ffi.new("char[]", 64 * n_at) if n_at else ffi.NULL
            self._nxt = ffi.new("size_t *", 0)
        self._settle()

    @property
    def count(self) -> int:
        """Messages absorbed so far."""
        return self._count if _native is None else int(self._ncount[0])

    def _settle(self) -> None:
        """The digest at every checkpoint equal to the current count (natively only needed
        at count 0: feed() records the others inside its C call)."""
        at = self._at
        while self._next < len(at) and at[self._next] == self.count:
            if _native is None:
                sha = self._sha.copy()
                sha.update(b"]")
                text = sha.hexdigest()
            else:
                lib.mobstore_transcript_hex(self._sha, _work.hex)
                text = ffi.string(_work.hex, 64).decode("ascii")
            self.digests[at[self._next]] = _PREFIX[self.profile] + text
            self._next += 1

    def feed(self, bodies: list) -> None:
        """Absorb the next messages (exact bytes), recording digests at checkpoints on the
        way. InvalidInputError names the first bad message (index in the transcript);
        everything before it stays absorbed and recorded."""
        if _native is None:
            for body in bodies:
                try:
                    canon = _py_canonical(body, self.profile)
                except InvalidInputError as exc:
                    raise InvalidInputError(f"message {self._count}: {exc}") from None
                self._sha.update(b"," + canon if self._count else canon)
                self._count += 1
                self._settle()
            return
        if not bodies:
            return
        w = _work
        datas = _exact_bytes(bodies)
        at = self._at
        n_at = len(at)
        start = self._next
        nxt = self._nxt
        nxt[0] = start
        before = int(self._ncount[0])
        if _LAYOUT is not None:
            objs, _keep = _objs(datas)
            rc = lib.mobstore_transcript_checkpoints_objs(w.ctx, self._sha, self._ncount, objs, len(_keep),
                                                          _LAYOUT[2], _LAYOUT[1], self._code, self._at_buf, n_at,
                                                          nxt, self._hex_out)
        else:  # pragma: no cover - not CPython
            ptrs, bias, lens, _keep = _ptr_args(datas)
            rc = lib.mobstore_transcript_checkpoints(w.ctx, self._sha, self._ncount, ptrs, bias, lens, len(datas),
                                                     self._code, self._at_buf, n_at, nxt, self._hex_out)
        done = int(nxt[0])
        if done > start:
            raw = ffi.unpack(self._hex_out + 64 * start, 64 * (done - start)).decode("ascii")
            prefix = _PREFIX[self.profile]
            digests = self.digests
            for j in range(start, done):
                k = 64 * (j - start)
                digests[at[j]] = prefix + raw[k:k + 64]
        self._next = done
        if rc:
            index = before + int(lib.mobstore_ctx_error_index(w.ctx))
            text = ffi.string(lib.mobstore_ctx_error_text(w.ctx)).decode("utf-8", "replace")
            if rc == _NOMEM:
                raise MemoryError(text)
            raise InvalidInputError(f"message {index}: {text}")


# ---------------------------------------------------------------------------
# Test hooks into the native primitives (tests only; None on the Python path)


def _native_format_float(x: float) -> str | None:
    """Native shortest serde/zmij text of a float (non-finite -> "null")."""
    if _native is None:
        return None
    buf = ffi.new("char[32]")
    n = lib.mobstore_format_double(x, buf)
    return ffi.unpack(buf, n).decode("ascii")


def _native_parse_float(token: str) -> float | None:
    """Native serde number parse of one token; InvalidInputError if rejected."""
    if _native is None:
        return None
    out = ffi.new("double *")
    raw = token.encode("ascii")
    rc = lib.mobstore_parse_double(raw, len(raw), out)
    if rc:
        raise InvalidInputError(f"invalid number {token!r} (code {rc})")
    return out[0]


def _native_sha256_portable(force: bool) -> bool | None:
    """Pin (True) or release (False) the portable SHA-256 path; returns whether
    the accelerated (SHA-NI) path is in use afterwards."""
    if _native is None:
        return None
    lib.mobstore_sha256_force_portable(1 if force else 0)
    return bool(lib.mobstore_sha256_accelerated())


def runs_native() -> bool:
    """True while digests run in C (False on the fallback, and inside _python_path())."""
    return _native is not None


@contextlib.contextmanager
def _python_path():
    """Tests and benches: run the pure-Python path inside the block (process-wide, so only
    where nothing else runs meanwhile). States made inside must not be used outside."""
    global _native
    saved = _native
    _native = None
    try:
        yield
    finally:
        _native = saved


def _native_digest_threads(n: int) -> int | None:
    """Set the native transcript_digest thread count (1 = sequential, as
    MOBSTORE_DIGEST_THREADS); returns the previous value."""
    if _native is None:
        return None
    return int(lib.mobstore_set_digest_threads(max(1, min(int(n), 64))))


def _native_pipe_test_mode(mode: int) -> None:
    """Tests: the hashing thread's test mode (_native/canon.h MOB_PIPE_TEST_*). Any nonzero
    mode pipelines every batch over the threshold: 1 without a thread (the caller hashes
    every slot itself); 2 with 512-byte slots and no threshold; 4 with a thread that sleeps
    before each slot, so both sides hash some; 8 nothing else. 0 restores normal."""
    if _native is not None:
        lib.mobstore_pipe_test_mode(int(mode))


def _native_jcs_format(x: float) -> str | None:
    """Native ECMAScript text of a finite float under jcs ("" for NaN/infinity)."""
    if _native is None:
        return None
    buf = ffi.new("char[32]")
    n = lib.mobstore_jcs_format_double(x, buf)
    return ffi.unpack(buf, n).decode("ascii")


def _native_jcs_parse(tokens: list[bytes]) -> tuple[list[float], list[int]] | None:
    """Native correctly rounded parse of many number tokens in one call: (values, codes),
    code 0 or MOBSTORE_E_NUMBER / MOBSTORE_E_NUMBER_RANGE per token."""
    if _native is None:
        return None
    n = len(tokens)
    lens = array.array(_SIZE_T, map(len, tokens))
    out = ffi.new("double[]", max(n, 1))
    codes = ffi.new("int[]", max(n, 1))
    lib.mobstore_jcs_parse_doubles(b"".join(tokens), ffi.from_buffer("size_t[]", lens), n, out, codes)
    return list(ffi.unpack(out, n)), list(ffi.unpack(codes, n))
