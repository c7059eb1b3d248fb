"""Export stores as Parquet, partitioned by store, for DuckDB, Spark or Trino at any scale.

Layout under OUTDIR (Hive-style partitions; the partition value is the store id, a
string: engine/fleet/discover.py):

    stores/store=<id>/part-0.parquet     one row: source path, schema version, counts, when
    sessions/store=<id>/part-0.parquet   one row per session (metadata as JSON text)
    bindings/store=<id>/part-0.parquet   ms_bindings as stored: the membership facts
    receipts/store=<id>/part-0.parquet   one row per receipt (session_id, not the internal num;
                                         superseded_by: the rewrite that truncated what it covers)
    messages/store=<id>/part-0.parquet   one row per message: session_id, index, body (JSON text)
    reconcile.sql                        the fleet reconciliation over bindings/ (sql.py)

Each store is read in one read transaction of mobstore's own engine (one commit's state,
like a snapshot; a store of an older schema version through an upgraded private copy,
engine/fleet/_open.py), written under OUTDIR/.tmp-*, and its partitions renamed into place,
so a reader never sees half a store. Stores are exported in parallel processes (one per core).
A store already present is refused unless overwrite=True replaces it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import secrets
import shutil
import time
from typing import Callable

from .. import _args
from ..errors import InvalidInputError, MobstoreError
from . import _extra, _parallel, sql
from .discover import Problem, StoreFile

Progress = Callable[[int, int], None]

TABLES = ("stores", "sessions", "bindings", "receipts", "messages")
MESSAGE_BATCH = 65_536  # rows per Parquet row group of messages: bounded memory per store
COMPRESSION = "zstd"


def _schemas():
    pa, _pq = _extra.pyarrow_modules()
    s, i = pa.string(), pa.int64()
    return {
        "stores": pa.schema([("source_path", s), ("schema_version", i), ("exported_at_ms", i), ("sessions", i),
                             ("messages", i), ("receipts", i), ("file_bytes", i)]),
        "sessions": pa.schema([("session_id", s), ("created_at_ms", i), ("updated_at_ms", i), ("message_count", i),
                               ("message_bytes", i), ("metadata_json", s), ("digest_profile", s),
                               ("head_revision", s), ("head_message_count", i), ("head_profile", s)]),
        "bindings": pa.schema([(name, i if kind == "BIGINT" else s) for name, kind in sql.BINDING_COLUMNS]),
        "receipts": pa.schema([("session_id", s), ("run_id", s), ("sequence", i), ("boundary", s),
                               ("conversation_digest", s), ("message_count", i), ("profile", s),
                               ("contributing_input_ids", pa.list_(s)), ("runtime_id", s), ("receipt_json", s),
                               ("committed_at_ms", i), ("superseded_by", i)]),
        "messages": pa.schema([("session_id", s), ("index", i), ("body", s)]),
    }


_SESSIONS_SQL = (
    "SELECT id, created_at_ms, updated_at_ms, message_count, message_bytes, metadata_json, digest_profile, "
    "head_revision, head_message_count, head_profile FROM ms_sessions ORDER BY num"
)
_BINDINGS_SQL = f"SELECT {', '.join(name for name, _k in sql.BINDING_COLUMNS)} FROM ms_bindings ORDER BY session_id"  # sql-safe: column names from BindingFacts
_RECEIPTS_SQL = (
    "SELECT s.id, r.run_id, r.sequence, r.boundary, r.conversation_digest, r.message_count, r.profile, "
    "r.contributing_input_ids, r.runtime_id, r.receipt_json, r.committed_at_ms, r.superseded_by "
    "FROM ms_receipts r JOIN ms_sessions s ON s.num = r.session_num ORDER BY r.session_num, r.message_count, r.run_id, r.sequence"
)
_MESSAGES_SQL = "SELECT key, body FROM ms_messages ORDER BY key"


@dataclasses.dataclass(frozen=True)
class StoreExport:
    store: str
    path: str
    rows: dict  # table -> rows written


@dataclasses.dataclass(frozen=True)
class ExportReport:
    outdir: str
    stores: tuple[StoreExport, ...]
    problems: tuple[Problem, ...]
    skipped: tuple[Problem, ...]
    seconds: float
    workers: int

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def totals(self) -> dict:
        return {t: sum(s.rows[t] for s in self.stores) for t in TABLES} | {"stores_exported": len(self.stores)}

    def to_dict(self) -> dict:
        return {"ok": self.ok, "outdir": self.outdir, "totals": self.totals, "seconds": self.seconds,
                "workers": self.workers,
                "stores": [dataclasses.asdict(s) for s in self.stores],
                "problems": [p.to_dict() for p in self.problems],
                "skipped": [p.to_dict() for p in self.skipped]}


def _text(value) -> str | None:
    """Stored JSON (BLOB) as text; the store only holds UTF-8 JSON, a decode error is damage."""
    if value is None or isinstance(value, str):
        return value
    return bytes(value).decode("utf-8")


def _columns(rows: list[tuple], width: int) -> list[list]:
    return [list(c) for c in zip(*rows)] if rows else [[] for _ in range(width)]


def write_store(store_id: str, path: str, staging: str) -> tuple[dict | None, str | None]:
    """Write one store's five partitions under staging/<table>/store=<id>/. Returns (rows per
    table, None) or (None, why it failed). Runs in a worker process."""
    import apsw
    import orjson

    from ._open import open_store

    pa, pq = _extra.pyarrow_modules()
    schemas = _schemas()
    rows = dict.fromkeys(TABLES, 0)

    def target(table: str) -> str:
        d = os.path.join(staging, table, f"store={store_id}")
        os.makedirs(d, exist_ok=True)
        return os.path.join(d, "part-0.parquet")

    def write(table: str, columns: list[list]) -> None:
        schema = schemas[table]
        batch = pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(columns, schema)], schema=schema)
        pq.write_table(batch, target(table), compression=COMPRESSION)
        rows[table] = batch.num_rows

    try:
        with open_store(path) as (store, version), store.reading() as con:
            sessions = [(*r[:5], _text(r[5]), *r[6:]) for r in con.execute(_SESSIONS_SQL)]
            write("sessions", _columns(sessions, len(schemas["sessions"])))
            write("bindings", _columns(con.execute(_BINDINGS_SQL).fetchall(), len(schemas["bindings"])))
            receipts = [(*r[:7], orjson.loads(r[7]), r[8], _text(r[9]), *r[10:]) for r in con.execute(_RECEIPTS_SQL)]
            write("receipts", _columns(receipts, len(schemas["receipts"])))
            ids = {num: sid for num, sid in con.execute("SELECT num, id FROM ms_sessions")}
            schema = schemas["messages"]
            with pq.ParquetWriter(target("messages"), schema, compression=COMPRESSION) as writer:
                cursor = con.execute(_MESSAGES_SQL)
                written = 0
                while True:
                    chunk = list(itertools.islice(cursor, MESSAGE_BATCH))
                    if not chunk:
                        break
                    writer.write_table(pa.Table.from_arrays([
                        pa.array([ids[key >> 32] for key, _b in chunk], type=pa.string()),
                        pa.array([key & 0xFFFFFFFF for key, _b in chunk], type=pa.int64()),
                        pa.array([_text(b) for _k, b in chunk], type=pa.string()),
                    ], schema=schema))
                    written += len(chunk)
                rows["messages"] = written
            counts = store.stats()
        write("stores", [[path], [version], [int(time.time() * 1000)], [counts["sessions"]],
                         [counts["messages"]], [counts["receipts"]],
                         [sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))]])
        rows["stores"] = 1
        return rows, None
    except (MobstoreError, apsw.Error, UnicodeDecodeError, OSError) as exc:
        return None, " ".join(str(exc).split()) or type(exc).__name__


def _install(staging: str, outdir: str, store_id: str, overwrite: bool) -> None:
    """Move one store's staged partitions into outdir (each a directory rename)."""
    for table in TABLES:
        src = os.path.join(staging, table, f"store={store_id}")
        dst_dir = os.path.join(outdir, table)
        os.makedirs(dst_dir, exist_ok=True)
        dst = os.path.join(dst_dir, f"store={store_id}")
        if os.path.exists(dst):
            if not overwrite:  # checked before writing; a concurrent export got here first
                raise InvalidInputError(f"{dst} appeared while exporting")
            old = f"{dst}.old-{secrets.token_hex(4)}"
            os.replace(dst, old)
            os.replace(src, dst)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(src, dst)


def export_parquet(fleet, outdir: str, *, overwrite: bool = False, workers: int | None = None,
                   progress: Progress | None = None) -> ExportReport:
    """Write every store of `fleet` (an engine.fleet.Fleet) as Parquet under outdir (created
    if needed) and copy reconcile.sql there. Raises InvalidInputError when a store's
    partition already exists (unless overwrite=True) or outdir is not a directory; a store
    that cannot be read is reported in `problems` and nothing of it is written."""
    _extra.pyarrow_modules()  # a missing extra fails here, before anything is created
    _args.flag(overwrite, "overwrite")
    workers = _args.optional_integer(workers, "workers", minimum=1, maximum=1024)
    if not isinstance(outdir, (str, os.PathLike)) or not os.fspath(outdir):
        raise InvalidInputError(f"outdir must be a directory path, not {outdir!r}")
    outdir = os.path.abspath(os.fspath(outdir))
    if os.path.exists(outdir) and not os.path.isdir(outdir):
        raise InvalidInputError(f"outdir is not a directory: {outdir!r}")
    stores: tuple[StoreFile, ...] = fleet.stores
    if not overwrite:
        for s in stores:
            for table in TABLES:
                existing = os.path.join(outdir, table, f"store={s.store}")
                if os.path.exists(existing):
                    raise InvalidInputError(f"{existing} exists (store {s.store!r} was exported there); "
                                            "pass overwrite=True to replace it")
    started = time.perf_counter()
    os.makedirs(outdir, exist_ok=True)
    staging = os.path.join(outdir, f".tmp-{os.getpid()}-{secrets.token_hex(4)}")
    os.makedirs(staging)
    n = _parallel.workers_for(len(stores), workers)
    exported, problems = [], []
    try:
        results = _parallel.run("engine.fleet.parquet:write_store", [(s.store, s.path, staging) for s in stores], n, progress)
        for s, (rows, why) in zip(stores, results):
            if rows is None:
                problems.append(Problem(s.path, why, s.store))
                continue
            _install(staging, outdir, s.store, overwrite)
            exported.append(StoreExport(s.store, s.path, rows))
        with open(os.path.join(outdir, "reconcile.sql"), "w", encoding="utf-8") as fh:
            fh.write(sql.packaged_reconcile_sql())
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
    return ExportReport(outdir, tuple(exported), fleet.problems + tuple(problems), fleet.skipped,
                        time.perf_counter() - started, n)
