"""Shared fixtures: a file store, a seeded rng that prints its seed, and the report header
that says what this run tested (engine version, digest path, SQLite and apsw)."""

from __future__ import annotations

import hashlib
import os
import random

import apsw
import pytest

import engine
from engine import digest

HERE = os.path.dirname(os.path.abspath(__file__))
# meerkat's own realm files and JSON fixtures, vendored with their provenance (fixtures/meerkat/PROVENANCE.md)
MEERKAT_DIR = os.path.join(HERE, "fixtures", "meerkat")
# Transcript known answers (vectors/README.md says where each file comes from)
SAMPLE_VECTORS = os.path.join(HERE, "vectors", "meerkat-0.8.26-sample.jsonl")
ORACLE_VECTORS = os.path.join(HERE, "vectors", "meerkat-0.8.26-oracle.jsonl")


def vector_messages(row) -> list:
    """A vector row's messages as bytes (an element {"hex": ...} is raw bytes, e.g. invalid UTF-8)."""
    return [bytes.fromhex(m["hex"]) if isinstance(m, dict) else m.encode("utf-8") for m in row["messages"]]


LONG_RUN_MARKERS = frozenset({"stress", "sanitize", "fuzz"})


def pytest_collection_modifyitems(config, items):
    """Long runs (stress, sanitize, fuzz) run only when a -m expression selects them: a plain
    `pytest` deselects them (reported as deselected, not as skipped). CI runs a short stress
    pass as its own step (.ci/run)."""
    if config.getoption("markexpr"):
        return
    keep, drop = [], []
    for item in items:
        (drop if LONG_RUN_MARKERS & {m.name for m in item.iter_markers()} else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_report_header(config):
    impl = digest.DIGEST_IMPL + (f" ({digest.NATIVE_ERROR})" if digest.NATIVE_ERROR else "")
    return (f"mobstore {engine.__version__}; digest {impl}; SQLite {apsw.sqlite_lib_version()}; "
            f"apsw {apsw.apsw_version()}")


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "store.db")


@pytest.fixture
def store(db_path):
    with engine.open(db_path) as s:
        yield s


@pytest.fixture
def rng(request):
    seed = int(os.environ.get("MOBSTORE_TEST_SEED", random.randrange(1 << 30)))
    print(f"\n[{request.node.name}] MOBSTORE_TEST_SEED={seed}")
    return random.Random(seed)


def fingerprint(path: str) -> str:
    """Hash of every row of every table (in a stable order): 'the database is unchanged'."""
    h = hashlib.sha256()
    con = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")]
        for table in tables:
            h.update(table.encode())
            for row in con.execute(f'SELECT * FROM "{table}" ORDER BY 1, 2'):  # names from sqlite_schema
                h.update(repr(row).encode())
    finally:
        con.close()
    return h.hexdigest()
