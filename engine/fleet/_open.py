"""Opening one store file of a fleet for reading with mobstore's own engine (verify, export).

A fleet holds stores written by several mobstore versions (each agent upgrades its file when
it opens it). engine.open(readonly=True) refuses a file of an older schema version, and a
shipped snapshot must not be written, so such a file is first copied (SQLite's backup API,
one read transaction) into a private temporary directory and the copy is upgraded and read.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Iterator

import apsw

import engine
from engine import schema


def schema_version(path: str) -> int:
    con = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return schema.user_version(con)
    finally:
        con.close()


@contextlib.contextmanager
def open_store(path: str) -> Iterator[tuple[engine.Store, int]]:
    """(store, the file's own schema version): the file read-only, or an upgraded private
    copy of it when its schema is older than this mobstore's. Raises MobstoreError (or
    apsw.Error for a file SQLite cannot read) like engine.open."""
    version = schema_version(path)
    if version >= schema.SCHEMA_VERSION:  # a newer one is refused by engine.open itself
        with engine.open(path, readonly=True) as store:
            yield store, version
        return
    with tempfile.TemporaryDirectory(prefix="mobstore-fleet-") as tmp:
        copy = os.path.join(tmp, "upgraded.db")
        source = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
        try:
            target = apsw.Connection(copy)
            try:
                with target.backup("main", source, "main") as backup:
                    backup.step(-1)
            finally:
                target.close()
        finally:
            source.close()
        with engine.open(copy, synchronous="OFF") as store:  # upgrades the copy
            yield store, version
