"""Pure-Python reference of mobstore's canonical message form and transcript digests.

``_native/`` implements the same rules and is differential-fuzzed against this package (same bytes,
or the same error text). The rules are written down in docs/messages.md (the message model, the
typed decode, strict and lenient decoding, the errors) and docs/profiles.md (f3, f2, bare); the
model itself is data, ``engine/meerkat_model.json``, read by ``model``. One module per concept:

* ``jsontext`` -- the strict JSON parser (duplicate keys kept) and serde_json's compact writers;
* ``numbers`` -- serde_json's number parsing (not correctly rounded) and zmij's float output;
* ``scalars`` -- timestamps (chrono), UUIDs, validated strings, content blob ids;
* ``model`` -- loads and checks the model file;
* ``decode`` -- the typed decode and the f3 / f2 / bare profile steps;
* ``sha256`` -- SHA-256 with an exportable midstate (for transcript states).

Every failure raises ``InvalidInputError``: a schema error names the JSON path, the field and what
was allowed (``$.role: unknown role "human" (expected one of system, ...)``); a syntax error names
the byte offset and the path being parsed.
"""

from __future__ import annotations

import hashlib

from ..errors import InvalidInputError
from .decode import canonical_message as _canonical
from .jsontext import MAX_DEPTH, dumps_value
from .model import MODEL
from .numbers import format_float, parse_float_serde
from .scalars import content_blob_id
from .sha256 import Sha256

PROFILES = ("f3", "f2", "bare")

__all__ = [
    "MAX_DEPTH", "MODEL", "PROFILES", "Sha256", "canonical_message", "content_blob_id", "dumps_value",
    "format_float", "parse_float_serde", "transcript_digest",
]


def _check_profile(profile) -> None:
    if profile not in PROFILES:
        raise InvalidInputError("unknown digest profile %r (expected one of %s)" % (profile, ", ".join(PROFILES)))


def canonical_message(data: bytes, profile: str = "f3", strict: bool = False) -> bytes:
    """Canonical bytes of ONE meerkat message (UTF-8 JSON text) under ``profile``; ``strict``
    refuses keys meerkat's typed decode would drop (docs/messages.md, "Strict and lenient")."""
    _check_profile(profile)
    return _canonical(data, profile, strict)


def transcript_digest(messages: list, profile: str = "f3", strict: bool = False) -> str:
    """SHA-256 over ``[`` + canonical messages joined by ``,`` + ``]``: ``sha256:``+hex, plain
    hex for bare."""
    _check_profile(profile)
    h = hashlib.sha256(b"[")
    for i, m in enumerate(messages):
        if i:
            h.update(b",")
        try:
            h.update(_canonical(m, profile, strict))
        except InvalidInputError as exc:
            raise InvalidInputError("message %d: %s" % (i, exc)) from None
    h.update(b"]")
    return h.hexdigest() if profile == "bare" else "sha256:" + h.hexdigest()
