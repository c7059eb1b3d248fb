"""What a session service offers beyond meerkat's session-service contract: listing,
deleting, receipts, verify, membership and reconciliation — each one store call on the
service's worker (never on the event loop thread), batched with the service's other calls.

Reads see what is stored: a persistent service's live changes that no checkpoint has
written yet are not in them (checkpoint(session_id) first when that matters).
"""

from __future__ import annotations

from typing import Any, Iterable

from .membership import Member, MobSummary, Reconciliation
from .receipts import RunBoundaryReceipt, VerifyReport
from .sessions import Session, check_id


class ServiceReadsMixin:
    """list_sessions, delete_session, receipts, verify, mob_members, reconcile_mob, mobs."""

    async def list_sessions(self, *, mob_id: str | None = None, limit: int | None = None) -> list[Session]:
        """Stored sessions, newest first (Store.sessions); with mob_id, those claiming it."""
        self._check_open()
        return await self._call(lambda store: list(store.sessions(mob_id=mob_id, limit=limit)))

    async def delete_session(self, session_id: str) -> bool:
        """Delete the session with its messages and receipts (Store.delete_session); a live
        copy is discarded first, so no later checkpoint brings it back. True if it existed."""
        self._check_open()
        check_id(session_id)
        await self._before_delete(session_id)
        deleted = await self._call(lambda store: store.delete_session(session_id), write=True)
        if deleted:
            self._emit("session_deleted", session_id, {})
        return deleted

    async def _before_delete(self, session_id: str) -> None:
        """Hook: the persistent service discards its live copy here."""

    async def receipts(self, session_id: str | None = None, *, run_id: str | None = None) -> list[RunBoundaryReceipt]:
        """Stored receipts (Store.receipts), ordered by (session, run, sequence)."""
        self._check_open()
        return await self._call(lambda store: store.receipts(session_id, run_id=run_id))

    async def verify(self, session_id: str | None = None) -> VerifyReport:
        """Recompute every stored receipt's digest (Store.verify), off the event loop."""
        self._check_open()
        return await self._call(lambda store: store.verify(session_id))

    async def mob_members(self, mob_id: str) -> list[Member]:
        """Valid members of a mob among the stored sessions (Store.mob_members)."""
        self._check_open()
        return await self._call(lambda store: store.mob_members(mob_id))

    async def reconcile_mob(self, mob_id: str, roster: Iterable[tuple[str, str]] | None = None, *,
                            accept_newer: bool = False) -> Reconciliation:
        """Members, broken claims, duplicates and the roster diff (Store.reconcile_mob)."""
        self._check_open()
        wanted: Any = None if roster is None else list(roster)
        return await self._call(lambda store: store.reconcile_mob(mob_id, wanted, accept_newer=accept_newer))

    async def mobs(self, *, accept_newer: bool = False) -> list[MobSummary]:
        """The mob ids stored sessions claim, with their counts (Store.mobs)."""
        self._check_open()
        return await self._call(lambda store: store.mobs(accept_newer=accept_newer))
