"""Many store files at once: reconcile a mob across a fleet of agents' stores with DuckDB,
verify them in parallel, export them as Parquet for engines that scale further.

    from engine import fleet
    with fleet.Fleet(["snapshots/**/*.db"]) as f:
        rec = f.reconcile("crew", roster=[("coder", "agent-7")])
        report = f.verify()
        f.export_parquet("out/")

Needs the optional extra: pip install "mobstore[fleet]" (duckdb, its sqlite extension as a
package, pyarrow). Importing this module does not: a missing package is reported as
engine.MissingExtraError when a method needs it. docs/fleet.md is the user's guide.
"""

from .discover import Discovery, Problem, StoreFile, discover
from .query import (
    Fleet,
    FleetBrokenClaim,
    FleetDuplicate,
    FleetMember,
    FleetMembers,
    FleetReconciliation,
    FleetStats,
    StoreStats,
)
from .sql import packaged_reconcile_sql, reconcile_sql_file

__all__ = [
    "Fleet",
    "discover",
    "Discovery",
    "StoreFile",
    "Problem",
    "FleetMember",
    "FleetBrokenClaim",
    "FleetDuplicate",
    "FleetReconciliation",
    "FleetMembers",
    "FleetStats",
    "StoreStats",
    "reconcile_sql_file",
    "packaged_reconcile_sql",
]
