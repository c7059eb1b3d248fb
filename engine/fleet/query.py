"""Fleet queries over many store files through DuckDB's sqlite extension: reconcile a mob,
list its members, count what the stores hold.

Each store file is attached read-only and asked, in one SQLite statement (so one read
snapshot per file), for the rows the question needs; the membership rule and the
cross-store reconciliation then run in DuckDB over all of them at once (engine/fleet/sql.py
renders that SQL from engine/membership.py). Files are read in batches, each batch one
DuckDB statement, batches on one thread per core; a file that fails is retried alone and
reported as a problem, the others still answer.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import threading
from typing import Callable, Iterable, NamedTuple

from .. import _args
from ..membership import _roster_pairs
from ..sessions import check_text
from . import _extra, sql
from .discover import Discovery, Problem, StoreFile, discover

Progress = Callable[[int, int], None]

DEFAULT_BATCH = 32  # files per DuckDB statement (measured: 25-100 alike, fewer costs statement overhead)


class FleetMember(NamedTuple):
    """A valid member of a mob, in one store."""

    store: str
    session_id: str
    profile: str
    meerkat_id: str


@dataclasses.dataclass(frozen=True)
class FleetBrokenClaim:
    """A session of one store whose metadata names the mob but fails the rule (reason codes
    as engine.BrokenClaim)."""

    store: str
    session_id: str
    reason: str
    comms_name: str | None
    realm_id: str | None


@dataclasses.dataclass(frozen=True)
class FleetDuplicate:
    """A (profile, meerkat_id) slot with more than one valid claim in the fleet: several
    sessions of one store, sessions on several machines, or one session id copied into
    several stores."""

    profile: str
    meerkat_id: str
    claims: tuple[tuple[str, str], ...]  # (store, session_id), sorted by session_id, store

    @property
    def stores(self) -> tuple[str, ...]:
        return tuple(sorted({store for store, _sid in self.claims}))

    @property
    def session_ids(self) -> tuple[str, ...]:
        return tuple(sorted({sid for _store, sid in self.claims}))

    @property
    def cross_store(self) -> bool:
        return len(self.stores) > 1

    def to_dict(self) -> dict:
        return {"profile": self.profile, "meerkat_id": self.meerkat_id,
                "claims": [{"store": st, "session_id": sid} for st, sid in self.claims],
                "stores": list(self.stores), "session_ids": list(self.session_ids),
                "cross_store": self.cross_store}


def _store_list(stores: Iterable[StoreFile]) -> list[dict]:
    return [{"store": s.store, "path": s.path} for s in stores]


@dataclasses.dataclass(frozen=True)
class FleetReconciliation:
    """Store.reconcile_mob over the whole fleet: members and broken claims of every store,
    duplicates across the fleet, and the roster diff against the union of members."""

    mob_id: str
    stores: tuple[StoreFile, ...]
    members: tuple[FleetMember, ...]
    broken: tuple[FleetBrokenClaim, ...]
    duplicates: tuple[FleetDuplicate, ...]
    missing: tuple[tuple[str, str], ...]
    unexpected: tuple[FleetMember, ...]
    problems: tuple[Problem, ...]
    skipped: tuple[Problem, ...]
    roster_given: bool
    accept_newer: bool

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.broken or self.duplicates or self.problems)

    def to_dict(self) -> dict:
        return {
            "mob_id": self.mob_id,
            "ok": self.ok,
            "stores": _store_list(self.stores),
            "members": [m._asdict() for m in self.members],
            "missing": [{"profile": p, "meerkat_id": m} for p, m in self.missing],
            "unexpected": [m._asdict() for m in self.unexpected],
            "broken": [dataclasses.asdict(b) for b in self.broken],
            "duplicates": [d.to_dict() for d in self.duplicates],
            "problems": [p.to_dict() for p in self.problems],
            "skipped": [p.to_dict() for p in self.skipped],
            "roster_given": self.roster_given,
            "accept_newer": self.accept_newer,
        }


@dataclasses.dataclass(frozen=True)
class FleetMembers:
    mob_id: str
    stores: tuple[StoreFile, ...]
    members: tuple[FleetMember, ...]
    problems: tuple[Problem, ...]
    skipped: tuple[Problem, ...]

    def to_dict(self) -> dict:
        return {"mob_id": self.mob_id, "stores": _store_list(self.stores),
                "members": [m._asdict() for m in self.members],
                "problems": [p.to_dict() for p in self.problems],
                "skipped": [p.to_dict() for p in self.skipped]}


_COUNTS = ("sessions", "messages", "message_bytes", "receipts", "events")


@dataclasses.dataclass(frozen=True)
class StoreStats:
    store: str
    path: str
    sessions: int
    messages: int
    message_bytes: int
    receipts: int
    events: int
    file_bytes: int


@dataclasses.dataclass(frozen=True)
class FleetStats:
    """Counts per store and in total; mobs claimed anywhere; session ids found in more than
    one store (copied or moved between machines)."""

    stores: tuple[StoreStats, ...]
    mobs: int
    shared_sessions: tuple[tuple[str, tuple[str, ...]], ...]  # (session_id, stores), sorted
    problems: tuple[Problem, ...]
    skipped: tuple[Problem, ...]

    @property
    def totals(self) -> dict:
        out = {k: sum(getattr(s, k) for s in self.stores) for k in (*_COUNTS, "file_bytes")}
        out["stores"] = len(self.stores)
        return out

    def to_dict(self) -> dict:
        return {"totals": self.totals, "mobs": self.mobs,
                "sessions_in_several_stores": len(self.shared_sessions),
                "shared_sessions": [{"session_id": sid, "stores": list(st)} for sid, st in self.shared_sessions],
                "stores": [dataclasses.asdict(s) for s in self.stores],
                "problems": [p.to_dict() for p in self.problems],
                "skipped": [p.to_dict() for p in self.skipped]}


# One statement per file: counts, then one row per session id and per mob claimed.
_SQLITE_STATS = """
SELECT 'counts' AS kind, NULL AS name,
       (SELECT count(*) FROM ms_sessions), (SELECT coalesce(sum(message_count), 0) FROM ms_sessions),
       (SELECT coalesce(sum(message_bytes), 0) FROM ms_sessions), (SELECT count(*) FROM ms_receipts),
       (SELECT count(*) FROM ms_events)
UNION ALL SELECT 'session', id, NULL, NULL, NULL, NULL, NULL FROM ms_sessions
UNION ALL SELECT 'mob', comms_mob, NULL, NULL, NULL, NULL, NULL
          FROM (SELECT DISTINCT comms_mob FROM ms_bindings WHERE comms_mob IS NOT NULL)
"""
_STATS_TABLE_DDL = ("CREATE OR REPLACE TABLE fleet_stats (idx INTEGER NOT NULL, kind VARCHAR, name VARCHAR, "
                    "sessions BIGINT, messages BIGINT, message_bytes BIGINT, receipts BIGINT, events BIGINT)")


class Fleet:
    """Many store files answered as one. Opens nothing until asked; close() (or `with`)
    ends the DuckDB connection. Needs the fleet extra (pip install "mobstore[fleet]") for
    reconcile, members and stats; verify and export_parquet have their own needs."""

    def __init__(self, paths: Iterable[str], *, batch: int = DEFAULT_BATCH, threads: int | None = None):
        self._discovery: Discovery = discover(paths)
        self._batch = _args.integer(batch, "batch", minimum=1, maximum=1000)
        self._threads = _args.optional_integer(threads, "threads", minimum=1, maximum=1024)
        self._con = None
        self._lock = threading.Lock()

    # -- facts ---------------------------------------------------------------------------------
    @property
    def stores(self) -> tuple[StoreFile, ...]:
        return self._discovery.stores

    @property
    def problems(self) -> tuple[Problem, ...]:
        """Files that were named or found but cannot be read as stores."""
        return self._discovery.problems

    @property
    def skipped(self) -> tuple[Problem, ...]:
        """SQLite files found by a directory or glob that are not mobstore stores."""
        return self._discovery.skipped

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            con, self._con = self._con, None
            if con is not None:
                con.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _duck(self):
        if self._con is None:
            con = _extra.connect(threads=self._threads)
            con.execute(sql.STORES_TABLE_DDL)
            con.execute("INSERT INTO fleet_stores SELECT r.idx, r.store, r.path FROM "
                        "(SELECT unnest(from_json($rows, '[{\"idx\": \"INTEGER\", \"store\": \"VARCHAR\", \"path\": \"VARCHAR\"}]')) AS r)",
                        {"rows": _json_rows({"idx": i, "store": s.store, "path": s.path} for i, s in enumerate(self.stores))})
            self._con = con
        return self._con

    # -- questions -----------------------------------------------------------------------------
    def reconcile(self, mob_id: str, roster: Iterable[tuple[str, str]] | None = None, *,
                  accept_newer: bool = False, progress: Progress | None = None) -> FleetReconciliation:
        """Store.reconcile_mob across every store: the same rule, members and broken claims
        tagged with their store, duplicates over the whole fleet (within a store or across
        stores), the roster diff against the union of members. `progress(done, total)`
        after each batch of files."""
        check_text(mob_id, "mob_id")
        _args.flag(accept_newer, "accept_newer")
        wanted = None if roster is None else sorted(_roster_pairs(roster))
        with self._lock:
            con = self._duck()
            con.execute(sql.CLAIMS_TABLE_DDL)
            problems = self._gather("fleet_claims", sql.SQLITE_CLAIM_ROWS, (mob_id,), progress)
            con.execute(sql.ROSTER_TABLE_DDL)
            if wanted:
                con.execute("INSERT INTO fleet_roster SELECT r[1], r[2] FROM "
                            "(SELECT unnest(from_json($rows, '[[\"VARCHAR\"]]')) AS r)", {"rows": _json_rows(wanted)})
            rows = con.execute(sql.FLEET_RECONCILE_SQL, {
                "mob": mob_id, "newer": accept_newer, "roster_given": wanted is not None}).fetchall()
        return _reconciliation(mob_id, rows, problems, self, wanted is not None, accept_newer)

    def members(self, mob_id: str, *, progress: Progress | None = None) -> FleetMembers:
        """Valid members of mob M by the membership rule in every store, ordered by (profile,
        meerkat_id, session_id, store)."""
        check_text(mob_id, "mob_id")
        with self._lock:
            con = self._duck()
            con.execute(sql.CLAIMS_TABLE_DDL)
            problems = self._gather("fleet_claims", sql.SQLITE_CLAIM_ROWS, (mob_id,), progress)
            rows = con.execute(sql.FLEET_MEMBERS_SQL, {"mob": mob_id}).fetchall()
        return FleetMembers(mob_id, self._read_stores(problems), tuple(map(FleetMember._make, rows)),
                            self.problems + problems, self.skipped)

    def stats(self, *, progress: Progress | None = None) -> FleetStats:
        """Sessions, messages, receipts, events and bytes per store and in total; how many
        mobs are claimed; which session ids are in more than one store."""
        with self._lock:
            con = self._duck()
            con.execute(_STATS_TABLE_DDL)
            problems = self._gather("fleet_stats", _SQLITE_STATS, (), progress)
            counts = {idx: row for idx, *row in con.execute(
                "SELECT idx, sessions, messages, message_bytes, receipts, events FROM fleet_stats "
                "WHERE kind = 'counts'").fetchall()}
            (mobs,) = con.execute("SELECT count(DISTINCT name) FROM fleet_stats WHERE kind = 'mob'").fetchone()
            shared = con.execute(
                "SELECT f.name, list(s.store ORDER BY s.store) FROM fleet_stats f JOIN fleet_stores s USING (idx) "
                "WHERE f.kind = 'session' GROUP BY f.name HAVING count(*) > 1 ORDER BY f.name").fetchall()
        per_store = tuple(
            StoreStats(s.store, s.path, *counts[i], file_bytes=_file_bytes(s.path))
            for i, s in enumerate(self.stores) if i in counts)
        return FleetStats(per_store, mobs, tuple((sid, tuple(st)) for sid, st in shared),
                          self.problems + problems, self.skipped)

    def verify(self, *, workers: int | None = None, progress: Progress | None = None):
        """Store.verify of every store, in parallel processes (default one per core)."""
        from .verify import verify_fleet

        return verify_fleet(self, workers=workers, progress=progress)

    def export_parquet(self, outdir: str, *, overwrite: bool = False, workers: int | None = None,
                       progress: Progress | None = None):
        """Sessions, bindings, receipts and messages of every store as Parquet under outdir,
        partitioned by store (engine/fleet/parquet.py), in `workers` processes."""
        from .parquet import export_parquet

        return export_parquet(self, outdir, overwrite=overwrite, workers=workers, progress=progress)

    # -- reading the files ---------------------------------------------------------------------
    def _read_stores(self, problems: tuple[Problem, ...]) -> tuple[StoreFile, ...]:
        failed = {p.store for p in problems}
        return tuple(s for s in self.stores if s.store not in failed)

    def _gather(self, table: str, sqlite_sql: str, params: tuple, progress: Progress | None) -> tuple[Problem, ...]:
        """Ask every store `sqlite_sql` (its parameters ?1.. bound to params) and insert the
        rows, each prefixed by the store's idx, into DuckDB table `table`."""
        duckdb = _extra.duckdb_module()
        # Errors that mean our SQL is wrong, never the file: raised, not reported per file.
        ours = (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException)
        con = self._con
        stores = list(enumerate(self.stores))
        batches = [stores[i:i + self._batch] for i in range(0, len(stores), self._batch)]
        args = {"sqlite_sql": sqlite_sql, **{f"p{i}": v for i, v in enumerate(params)}}
        bound = f", params = row({', '.join(f'$p{i}' for i in range(len(params)))})" if params else ""

        def scan(idx: int) -> str:
            # The alias f<idx> and the parameter markers are ours; the SQLite text is bound.
            return f"SELECT {idx} AS idx, * FROM sqlite_query('f{idx}', $sqlite_sql{bound})"  # sql-safe: idx is our counter, text bound

        def load(batch: list[tuple[int, StoreFile]]) -> list[Problem]:
            cur = con.cursor()
            attached: list[tuple[int, StoreFile]] = []
            failed: list[Problem] = []
            try:
                for idx, store in batch:
                    try:
                        cur.execute(f"ATTACH {_extra.sql_string(store.path)} AS f{idx} (TYPE sqlite, READ_ONLY)")  # sql-safe: ATTACH takes no parameters; path quoted, alias our counter
                        attached.append((idx, store))
                    except ours:
                        raise
                    except (duckdb.Error, ValueError) as exc:
                        failed.append(Problem(store.path, _message(exc), store.store))
                if not attached:
                    return failed
                try:
                    cur.execute(f"INSERT INTO {table} " + " UNION ALL ".join(scan(i) for i, _s in attached), args)  # sql-safe: table name ours, scans from scan()
                    return failed
                except ours:
                    raise
                except duckdb.Error:
                    pass  # one bad file fails the statement (nothing inserted): find which
                for idx, store in attached:
                    try:
                        cur.execute(f"INSERT INTO {table} {scan(idx)}", args)  # sql-safe: table name ours, scan from scan()
                    except ours:
                        raise
                    except duckdb.Error as exc:
                        failed.append(Problem(store.path, _message(exc), store.store))
                return failed
            finally:
                for idx, _store in attached:
                    cur.execute(f"DETACH f{idx}")  # sql-safe: alias is our counter
                cur.close()

        problems: list[Problem] = []
        done = 0
        workers = max(1, min(len(batches), self._threads or os.cpu_count() or 1))
        if progress is not None:
            progress(0, len(stores))
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mobstore-fleet") as pool:
            futures = {pool.submit(load, b): len(b) for b in batches}
            for future in concurrent.futures.as_completed(futures):
                problems.extend(future.result())
                done += futures[future]
                if progress is not None:
                    progress(done, len(stores))
        return tuple(sorted(problems, key=lambda p: p.path))


def _json_rows(rows: Iterable) -> str:
    """Many rows for DuckDB as one JSON text parameter (its from_json unnests them): binding
    Python lists or executemany costs DuckDB's Python client ~0.1-0.3 ms per value (it looks
    for pandas on each), JSON ~20 us per row."""
    return json.dumps(list(rows), ensure_ascii=False)


def _message(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text.split(" LINE 1:")[0] or type(exc).__name__


def _file_bytes(path: str) -> int:
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


def _reconciliation(mob_id: str, rows: list, problems: tuple[Problem, ...], fleet: Fleet, roster_given: bool,
                    accept_newer: bool) -> FleetReconciliation:
    members, broken, unexpected, missing = [], [], [], []
    slots: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for finding, store, session_id, profile, meerkat_id, reason, comms_name, realm_id in rows:
        if finding == "member":
            members.append(FleetMember(store, session_id, profile, meerkat_id))
        elif finding == "broken":
            broken.append(FleetBrokenClaim(store, session_id, reason, comms_name, realm_id))
        elif finding == "duplicate":
            slots.setdefault((profile, meerkat_id), []).append((store, session_id))
        elif finding == "missing":
            missing.append((profile, meerkat_id))
        elif finding == "unexpected":
            unexpected.append(FleetMember(store, session_id, profile, meerkat_id))
        else:  # the query's own finding names; anything else is a bug here
            raise AssertionError(f"unknown finding {finding!r}")
    duplicates = tuple(FleetDuplicate(p, m, tuple(sorted(c, key=lambda x: (x[1], x[0]))))
                       for (p, m), c in slots.items())
    return FleetReconciliation(
        mob_id=mob_id,
        stores=fleet._read_stores(problems),
        members=tuple(members),
        broken=tuple(broken),
        duplicates=duplicates,
        missing=tuple(missing),
        unexpected=tuple(unexpected),
        problems=fleet.problems + problems,
        skipped=fleet.skipped,
        roster_given=roster_given,
        accept_newer=accept_newer,
    )
