"""Reading meerkat realm files (`sessions.sqlite3`) into plain records, one module per
layout family: sessions07 (0.7.x whole documents), heads (0.7.28 heads + strands),
ledger_v2 (0.8.10 strand links), ledger_v4 (ledger v3/v4 and runtime store v2/v3);
_common holds what they share, realm the file and its dispatch. docs/meerkat.md says
what each version's file holds and what is checked.
"""

from ._common import (
    LAYOUT_HEADS_0728,
    LAYOUT_LEDGER_0810,
    LAYOUT_LEDGER_V3,
    LAYOUT_LEDGER_V4,
    LAYOUT_SESSIONS_07,
    RealmFinding,
    RealmHead,
    RealmProblem,
    RealmReceipt,
    RealmSession,
)
from .realm import Realm, open_realm

__all__ = [
    "LAYOUT_SESSIONS_07",
    "LAYOUT_HEADS_0728",
    "LAYOUT_LEDGER_0810",
    "LAYOUT_LEDGER_V3",
    "LAYOUT_LEDGER_V4",
    "RealmReceipt",
    "RealmHead",
    "RealmSession",
    "RealmProblem",
    "RealmFinding",
    "Realm",
    "open_realm",
]
