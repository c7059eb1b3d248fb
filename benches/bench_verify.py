"""verify() against raw SHA-256 over the same stored bytes, and the pure-Python fallback.

- verify.store: Store.verify() of the cached history session (H messages of ~1 KiB, H/2
  receipts; quick: 4,000 messages, full: 40,000 = 20,000 receipts over ~41 MB): every
  receipt's digest recomputed in one streaming pass (engine.digest.TranscriptCheckpoints:
  one native call per chunk of 2,048 messages). "hashlib": hashlib.sha256 over the stored
  message bytes (joined once, untimed): the floor of reading nothing and hashing everything.
  "python": the same verify on the pure-Python path (digest._python_path: hashlib for the
  hash, the Python reference canonicalizer).
"""

from __future__ import annotations

import hashlib

import pytest

import engine
from conftest import KNOBS, history_store, interleaved, tag
from engine import digest

VERIFY_HISTORY = 4000 if KNOBS.quick else 40000


@pytest.fixture(scope="module")
def verify_store():
    path = history_store(VERIFY_HISTORY)
    store = engine.open(path, readonly=True)
    bodies = [row[0] for row in store._connection.execute("SELECT body FROM ms_messages ORDER BY key")]
    joined = b"".join(bodies)
    yield store, joined, store.stats()["receipts"]
    store.close()


def _python_verify(store):
    with digest._python_path():
        return store.verify()


@pytest.mark.parametrize("impl", ["default", "hashlib", "python"])
def test_verify(benchmark, verify_store, impl):
    store, joined, receipts = verify_store
    ops = {"default": store.verify, "hashlib": lambda: hashlib.sha256(joined).hexdigest(),
           "python": lambda: _python_verify(store)}
    benchmark.group = "verify.store"
    tag(benchmark, f"verify.store.{impl}", messages=VERIFY_HISTORY, receipts=receipts, stored_bytes=len(joined),
        baseline=impl == "hashlib", impl=digest.DIGEST_IMPL if impl == "default" else impl)
    neighbours = {k: v for k, v in ops.items() if k != impl and k != "python"}
    rounds = {"default": KNOBS.n(3, 10), "hashlib": KNOBS.n(5, 20), "python": 1}[impl]
    out = interleaved(benchmark, ops[impl], neighbours, rounds=rounds, warmup=0 if impl == "python" else 1)
    if impl != "hashlib":
        assert out.ok and out.receipts_ok == receipts, out.mismatches[:3]
