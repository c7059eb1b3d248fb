"""Coverage-guided differential fuzzing of the native canonicalizer against the Python
reference, with atheris (pip install -e ".[fuzz]"; libFuzzer flags pass through):

    python tests/fuzz/atheris_canon.py -runs=1000000 -max_len=4096 tests/fuzz/corpus

Every input goes to both paths under every profile, lenient and strict: the same bytes or
the same error text, else the harness raises (atheris then saves the crashing input).
Seeds: the messages of meerkat's 40-transcript sample. Built against a sanitizer copy (MOBSTORE_SANITIZE=1 +
LD_PRELOAD of libasan) it also catches memory errors. tests/test_differential.py runs it
behind the `fuzz` marker.
"""

from __future__ import annotations

import json
import os
import sys

import atheris

with atheris.instrument_imports():
    from engine import _canon_py, digest
    from engine.errors import InvalidInputError

PROFILES = ("f3", "f2", "bare")


def outcome(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except InvalidInputError as exc:
        return ("InvalidInputError", str(exc))
    except MemoryError:
        return MemoryError


def test_one_input(data: bytes) -> None:
    for profile in PROFILES:
        for strict in (False, True):
            ref = outcome(_canon_py.canonical_message, data, profile, strict)
            nat = outcome(digest.canonical_message, data, profile, strict=strict)
            if ref != nat:
                raise AssertionError(f"profile {profile} strict={strict}: python {ref!r} != native {nat!r} "
                                     f"for {data!r}")


def seed_corpus(directory: str) -> None:
    """Write the shared vectors' messages as starting inputs (once)."""
    here = os.path.dirname(os.path.abspath(__file__))
    vectors = os.path.join(here, "..", "vectors", "meerkat-0.8.26-sample.jsonl")
    os.makedirs(directory, exist_ok=True)
    if os.listdir(directory) or not os.path.exists(vectors):
        return
    with open(vectors, encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            for j, message in enumerate(json.loads(line)["messages"]):
                with open(os.path.join(directory, f"v{i:02d}-{j}"), "wb") as out:
                    out.write(message.encode("utf-8"))


if __name__ == "__main__":
    if digest.DIGEST_IMPL != "native":
        sys.exit(f"the native module is not loaded: {digest.NATIVE_ERROR}")
    corpora = [a for a in sys.argv[1:] if not a.startswith("-")]
    for corpus in corpora:
        seed_corpus(corpus)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
