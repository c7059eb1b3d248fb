"""mobstore: a SQLite-centric embedded store for multi-agent runtimes.

    import engine
    with engine.open("agents.db") as store:
        sid = store.create_session({"session_metadata": {...}})
        receipt = store.apply_runtime_turn(sid, run_id, [message, ...])
"""

__version__ = "0.1.0"

from .errors import (
    DigestMismatchError,
    DiskFullError,
    ImportFormatError,
    InvalidInputError,
    MissingExtraError,
    MobstoreError,
    SchemaTooNewError,
    SessionExistsError,
    SessionNotFoundError,
    StoreBusyError,
    StoreCorruptError,
    StoreError,
    StoreIOError,
    StoreReadOnlyError,
)
from .maintenance import VacuumReport
from .membership import BrokenClaim, Duplicate, Member, MobSummary, Reconciliation
from .query import QueryResult
from .receipts import Mismatch, RunBoundaryReceipt, Turn, VerifyReport
from .rewrites import PurgeReport, Rewrite
from .sessions import Event, Session
from .snapshot import SnapshotInfo
from .store import Store, open  # noqa: A004 - engine.open is the documented entry point

__all__ = [
    "__version__",
    "open",
    "Store",
    "Session",
    "Event",
    "RunBoundaryReceipt",
    "Turn",
    "VerifyReport",
    "SnapshotInfo",
    "Mismatch",
    "Rewrite",
    "PurgeReport",
    "Member",
    "BrokenClaim",
    "Duplicate",
    "Reconciliation",
    "MobSummary",
    "QueryResult",
    "VacuumReport",
    "MobstoreError",
    "InvalidInputError",
    "SessionNotFoundError",
    "SessionExistsError",
    "SchemaTooNewError",
    "DigestMismatchError",
    "StoreError",
    "StoreBusyError",
    "StoreReadOnlyError",
    "StoreIOError",
    "DiskFullError",
    "StoreCorruptError",
    "ImportFormatError",
    "MissingExtraError",
]
