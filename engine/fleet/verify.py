"""Verify every store of a fleet: Store.verify (mobstore's own digest engine, native or the
Python reference) of each file, in parallel processes, one per core by default
(engine/fleet/_parallel.py says why processes).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from .. import _args
from . import _parallel
from .discover import Problem, StoreFile

Progress = Callable[[int, int], None]


@dataclasses.dataclass(frozen=True)
class StoreVerify:
    """Store.verify of one store (VerifyReport.to_dict() fields)."""

    store: str
    path: str
    report: dict

    @property
    def ok(self) -> bool:
        return bool(self.report["ok"])


@dataclasses.dataclass(frozen=True)
class FleetVerifyReport:
    stores: tuple[StoreVerify, ...]
    problems: tuple[Problem, ...]
    skipped: tuple[Problem, ...]
    workers: int

    @property
    def ok(self) -> bool:
        return not self.problems and all(s.ok for s in self.stores)

    @property
    def totals(self) -> dict:
        out: dict = {}
        for s in self.stores:  # every count VerifyReport has (sessions, receipts, receipts_ok, ...)
            for key, value in s.report.items():
                if isinstance(value, int) and not isinstance(value, bool) and key != "schema_version":
                    out[key] = out.get(key, 0) + value
        out["mismatches"] = sum(len(s.report["mismatches"]) for s in self.stores)
        out["stores"] = len(self.stores)
        out["stores_ok"] = sum(1 for s in self.stores if s.ok)
        return out

    def to_dict(self) -> dict:
        return {"ok": self.ok, "totals": self.totals, "workers": self.workers,
                "stores": [{"store": s.store, "path": s.path, **s.report} for s in self.stores],
                "problems": [p.to_dict() for p in self.problems],
                "skipped": [p.to_dict() for p in self.skipped]}


def verify_one(path: str) -> tuple[dict | None, str | None]:
    """(VerifyReport.to_dict() plus the file's schema_version, None) for the store at path,
    or (None, why it failed). Runs in a worker process; the file is only read (an older
    schema is verified in an upgraded private copy: engine/fleet/_open.py)."""
    import apsw

    from engine.errors import MobstoreError

    from ._open import open_store

    try:
        with open_store(path) as (store, version):
            return {**store.verify().to_dict(), "schema_version": version}, None
    except (MobstoreError, apsw.Error) as exc:
        return None, " ".join(str(exc).split()) or type(exc).__name__


def verify_fleet(fleet, *, workers: int | None = None, progress: Progress | None = None) -> FleetVerifyReport:
    """Store.verify of every store of `fleet` (an engine.fleet.Fleet); `workers` processes
    (default one per core; 1 verifies in this process). `progress(done, total)` after each
    store."""
    workers = _args.optional_integer(workers, "workers", minimum=1, maximum=1024)
    stores: tuple[StoreFile, ...] = fleet.stores
    n = _parallel.workers_for(len(stores), workers)
    results = _parallel.run("engine.fleet.verify:verify_one", [(s.path,) for s in stores], n, progress)
    verified, problems = [], []
    for store, (report, why) in zip(stores, results):
        if report is None:
            problems.append(Problem(store.path, why, store.store))
        else:
            verified.append(StoreVerify(store.store, store.path, report))
    return FleetVerifyReport(tuple(verified), fleet.problems + tuple(problems), fleet.skipped, n)
