"""Which files a fleet command reads: paths, globs and directories, down to store files.

A named file is a store or a problem. A directory is searched recursively for SQLite
files (by their 16-byte magic, so any extension); a glob (`*`, `?`, `[`, `**`) is expanded
here, so a quoted pattern works as well as one the shell expanded. SQLite files found by a
directory or glob that are not mobstore stores (another program's database, a meerkat
realm) are skipped and listed; the `-wal`, `-shm` and `-journal` files beside a database
are never candidates.

Each store gets an id: its path relative to the stores' common directory, without the
extension, components joined by "." and reduced to [A-Za-z0-9._-] (unique-ified with -2,
-3, ...). The id names the store in results and is its partition in a Parquet export, so
it stays readable and is safe as a directory name everywhere.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import re
import stat
import struct
from typing import Iterable

import apsw

from ..errors import InvalidInputError
from ..schema import SCHEMA_VERSION

SQLITE_MAGIC = b"SQLite format 3\x00"
_SIDE_SUFFIXES = ("-wal", "-shm", "-journal")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclasses.dataclass(frozen=True)
class StoreFile:
    """One store of the fleet: its id and absolute path."""

    store: str
    path: str


@dataclasses.dataclass(frozen=True)
class Problem:
    """A file that should have been read and was not (unreadable, not a store although
    named, a schema this mobstore cannot read), or a store that failed while read."""

    path: str
    problem: str
    store: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Discovery:
    stores: tuple[StoreFile, ...]
    skipped: tuple[Problem, ...]     # SQLite files found by a directory or glob that are not stores
    problems: tuple[Problem, ...]


def _candidates(paths: Iterable[str]) -> list[tuple[str, bool]]:
    """(absolute path, named explicitly) of every candidate file, in the order found."""
    if isinstance(paths, (str, bytes, os.PathLike)):
        raise InvalidInputError("paths must be a list of paths, globs or directories, not a single path")
    out: list[tuple[str, bool]] = []
    for i, raw in enumerate(paths):
        p = os.fspath(raw) if isinstance(raw, os.PathLike) else raw
        if not isinstance(p, str) or not p:
            raise InvalidInputError(f"paths[{i}] must be a non-empty path, not {raw!r}")
        if os.path.isdir(p):
            out.extend((f, False) for f in _walk(p))
        elif os.path.exists(p):
            if not _is_side_file(p):  # a shell-expanded `store*` also names store-wal, store-shm
                out.append((os.path.abspath(p), True))
        elif glob.has_magic(p):
            matches = sorted(glob.glob(p, recursive=True))
            if not matches:
                raise InvalidInputError(f"paths[{i}]: {p!r} matches no file")
            for m in matches:
                if os.path.isdir(m):
                    out.extend((f, False) for f in _walk(m))
                elif not _is_side_file(m):
                    out.append((os.path.abspath(m), False))
        else:
            raise InvalidInputError(f"paths[{i}]: no such file or directory: {p!r}")
    return out


def _is_side_file(path: str) -> bool:
    """A -wal, -shm or -journal file beside its database."""
    for suffix in _SIDE_SUFFIXES:
        if path.endswith(suffix) and os.path.isfile(path[: -len(suffix)]):
            return True
    return False


def _walk(top: str) -> list[str]:
    found = []
    for root, dirs, files in os.walk(top):
        dirs.sort()
        for name in sorted(files):
            if not _is_side_file(os.path.join(root, name)):
                found.append(os.path.abspath(os.path.join(root, name)))
    return found


def _header(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read(100)
    except OSError:
        return None


def _user_version(path: str, header: bytes) -> int:
    """The schema version (PRAGMA user_version) from the file header, or from SQLite when
    the header may be stale (a new store whose first commits are still only in its WAL)."""
    version = struct.unpack(">I", header[60:64])[0] if len(header) >= 64 else 0
    wal = path + "-wal"
    if version == 0 and os.path.exists(wal) and os.path.getsize(wal) > 0:
        con = apsw.Connection(path, flags=apsw.SQLITE_OPEN_READONLY)
        try:
            version = con.execute("PRAGMA user_version").fetchone()[0]
        finally:
            con.close()
    return version


def classify(path: str) -> str | None:
    """None if `path` is a store this mobstore can read, else why not ("not-sqlite: ...",
    "not-mobstore: ..." or another problem). A store of an older schema version is read as
    it is by reconcile, members and stats, and through an upgraded private copy by verify
    and export (engine/fleet/_open.py); the file itself is never written."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the header read forever
            return "not a regular file (a FIFO, socket or device?)"
    except OSError as exc:
        return f"unreadable: {exc.strerror}"
    header = _header(path)
    if header is None:
        return "unreadable: cannot read the file"
    if not header.startswith(SQLITE_MAGIC):
        return "not-sqlite: not an SQLite database"
    try:
        version = _user_version(path, header)
    except apsw.Error as exc:
        return f"unreadable: {exc}"
    if version == 0:
        return "not-mobstore: an SQLite database without the mobstore schema"
    if version > SCHEMA_VERSION:
        return f"schema version {version} is newer than this mobstore (knows up to {SCHEMA_VERSION})"
    return None  # older versions too: ms_bindings and the counted tables are as in version 1


def _ids(paths: list[str]) -> list[str]:
    if not paths:
        return []
    common = os.path.commonpath([os.path.dirname(p) for p in paths])
    seen: set[str] = set()
    ids = []
    for p in paths:
        rel = os.path.splitext(os.path.relpath(p, common))[0]
        parts = [_UNSAFE.sub("_", part).strip("_") for part in rel.split(os.sep)]
        base = ".".join(part for part in parts if part) or "store"
        name, n = base, 1
        while name in seen:
            n += 1
            name = f"{base}-{n}"
        seen.add(name)
        ids.append(name)
    return ids


def discover(paths: Iterable[str]) -> Discovery:
    """Expand paths, globs and directories into the fleet's store files (sorted by path,
    each real file once). Raises InvalidInputError for a path that does not exist or a
    glob that matches nothing; files that cannot be read are listed, not raised."""
    seen: set[str] = set()
    stores: list[str] = []
    skipped: list[Problem] = []
    problems: list[Problem] = []
    for path, named in _candidates(paths):
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        why = classify(path)
        if why is None:
            stores.append(path)
        elif not named and why.startswith(("not-sqlite:", "not-mobstore:")):
            if why.startswith("not-mobstore:"):
                skipped.append(Problem(path, why.split(": ", 1)[1]))
        else:
            problems.append(Problem(path, why.split(": ", 1)[1] if why.startswith("not-") else why))
    stores.sort()
    found = tuple(StoreFile(sid, p) for sid, p in zip(_ids(stores), stores))
    if not found and not problems:
        raise InvalidInputError("no mobstore store among the given paths")
    return Discovery(found, tuple(skipped), tuple(problems))
