"""openai-agents sessions on mobstore: receipts, verify and mob membership for SDK agents.

    from agents import Agent, Runner
    from engine.integrations.openai_agents import MobstoreSession

    session = MobstoreSession("chat-7", "agents.db", comms_name="crew/coder/agent-7", realm_id="mob:crew",
                              labels={"mob_id": "crew", "role": "coder", "meerkat_id": "agent-7"})
    result = await Runner.run(agent, "fix the bug", session=session)
    receipt = await session.commit_receipt("run-1")       # proof of the transcript after the run

MobstoreSession implements the SDK's `Session` protocol (agents/memory/session.py of
openai-agents: `session_id`, `session_settings`, async `get_items(limit=None)`,
`add_items(items)`, `pop_item()`, `clear_session()`) over a mobstore Store. Items are stored
as given (compact JSON) in a session with digest profile "jcs" (any JSON object, RFC 8785
canonical form, docs/profiles.md), so each run can be proven by a runtime receipt and
`Store.verify()` recomputes it. `pop_item` and `clear_session` are rewrites that keep the
removed items in the session's history (docs/rewrites.md): receipts made before stay
verifiable. Details and the comparison with the SDK's SQLiteSession: docs/openai-agents.md.

Every store call runs on a worker thread (asyncio.to_thread), never on the event loop: a
commit's fsync does not stall other coroutines, and concurrent sessions over one Store use its
public write calls, so they share whatever commit batching the Store does. A write that was
started finishes even if the awaiting task is cancelled (the SDK's own sessions do the same);
the cancellation is re-raised once it has.

Requires the SDK: pip install "mobstore[openai-agents]".
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Iterable

from agents import Runner
from agents.memory import SessionSettings
from agents.memory.session_settings import coerce_session_settings, resolve_session_limit

from .. import store as _store
from ..errors import InvalidInputError, SessionExistsError
from ..receipts import RunBoundaryReceipt
from ..sessions import check_id, new_session_id

PROFILE = "jcs"
_NO_BINDING = object()

__all__ = ["MobstoreSession", "run_with_receipt", "mob_metadata", "PROFILE"]


def mob_metadata(comms_name: str | None = None, realm_id: str | None = None,
                 labels: dict[str, str] | None = None, description: str | None = None) -> dict:
    """The metadata document of a session bound to a mob: the fields mob_members and
    reconcile_mob read (docs/membership.md), in meerkat's session_metadata layout."""
    sm: dict[str, Any] = {}
    if comms_name is not None:
        sm["comms_name"] = comms_name
    if realm_id is not None:
        sm["realm_id"] = realm_id
    if labels is not None or description is not None:
        peer_meta: dict[str, Any] = {}
        if description is not None:
            peer_meta["description"] = description
        peer_meta["labels"] = dict(labels or {})
        sm["peer_meta"] = peer_meta
    return {"session_metadata": sm} if sm else {}


async def _finish(awaitable):
    """Await a started write to its end even if the caller is cancelled meanwhile, then
    re-raise the cancellation: the caller never has to guess whether the write happened."""
    task = asyncio.ensure_future(awaitable)
    cancelled: asyncio.CancelledError | None = None
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError as exc:
            cancelled = cancelled or exc
    result = task.result()  # the write's own error wins over the cancellation
    if cancelled is not None:
        raise cancelled
    return result


class MobstoreSession:
    """The openai-agents `Session` protocol over a mobstore Store.

    `store` is an open engine.Store (shared by many sessions; the caller closes it) or a path
    (opened here with `synchronous`, closed by close()). The mobstore session `session_id` is
    created on first use with profile "jcs" and `metadata`, or the mob binding built from
    `comms_name`, `realm_id` and `labels` (mob_metadata); an existing session is reused as it
    is (InvalidInputError if it has another profile, or if a binding is given that differs from
    its stored one: change metadata with Store.set_metadata). The constructor does its I/O
    synchronously, as SQLiteSession's does; every other call is async and runs on a thread.
    """

    def __init__(
        self,
        session_id: str,
        store: "_store.Store | str | os.PathLike" = _store.MEMORY,
        *,
        comms_name: str | None = None,
        realm_id: str | None = None,
        labels: dict[str, str] | None = None,
        metadata: dict | None = None,
        session_settings: SessionSettings | dict | None = None,
        synchronous: str = "FULL",
    ):
        check_id(session_id)
        if metadata is not None and (comms_name, realm_id, labels) != (None, None, None):
            raise InvalidInputError("give either metadata or comms_name/realm_id/labels, not both")
        wanted = metadata if metadata is not None else mob_metadata(comms_name, realm_id, labels)
        given = metadata is not None or (comms_name, realm_id, labels) != (None, None, None)
        self.session_id = session_id
        self.session_settings: SessionSettings | None = (
            SessionSettings() if session_settings is None else coerce_session_settings(session_settings))
        if isinstance(store, _store.Store):
            self._store, self._owns_store = store, False
        else:
            self._store, self._owns_store = _store.open(store, synchronous=synchronous), True
        try:
            self._attach(wanted, given)
        except BaseException:
            self.close()
            raise

    def _attach(self, metadata: dict, given: bool) -> None:
        existing = self._store.session(self.session_id)
        if existing is None:
            try:
                self._store.create_session(metadata, session_id=self.session_id, digest_profile=PROFILE)
                return
            except SessionExistsError:  # created meanwhile by another process: check it as below
                existing = self._store.session(self.session_id)
        if existing.digest_profile != PROFILE:
            raise InvalidInputError(
                f"session {self.session_id!r} exists with digest profile {existing.digest_profile!r}; "
                f"openai-agents items need {PROFILE!r}")
        if given and existing.metadata != metadata:
            raise InvalidInputError(
                f"session {self.session_id!r} exists with other metadata than the binding given; "
                "use Store.set_metadata to change it")

    # -- facts ---------------------------------------------------------------------------------
    @property
    def store(self) -> "_store.Store":
        """The Store the items live in (receipts, verify, membership, rewrites)."""
        return self._store

    def __repr__(self) -> str:
        return f"<MobstoreSession {self.session_id!r} on {self._store!r}>"

    # -- the Session protocol ------------------------------------------------------------------
    async def get_items(self, limit: int | None = None) -> list[dict]:
        """The conversation so far, oldest first; with `limit` (or session_settings.limit) the
        newest `limit` items. As SQLiteSession: limit 0 gives [], a negative limit everything."""
        take = resolve_session_limit(limit, self.session_settings)
        if take is not None and (not isinstance(take, int) or isinstance(take, bool)):
            raise InvalidInputError(f"limit must be an integer or None, not {type(take).__name__}")
        if take == 0:
            return []
        start = 0 if take is None or take < 0 else -take
        return await asyncio.to_thread(self._store.messages, self.session_id, start)

    async def add_items(self, items: list[dict]) -> None:
        """Append items (JSON objects) in one transaction; nothing is written if one is invalid."""
        items = _as_list(items)
        if not items:
            return
        await _finish(asyncio.to_thread(self._store.append_messages, self.session_id, items))

    async def pop_item(self) -> dict | None:
        """Remove and return the newest item (None when there is none). It moves to the
        session's history: receipts that covered it stay verifiable (docs/rewrites.md)."""
        return await _finish(asyncio.to_thread(self._store.pop_message, self.session_id, reason="pop_item"))

    async def clear_session(self) -> None:
        """Remove every item. They move to the session's history, which Store.purge_history
        deletes for good; the session itself, its binding and its receipts stay."""
        await _finish(asyncio.to_thread(self._store.truncate_messages, self.session_id, 0, reason="clear_session"))

    # -- receipts ------------------------------------------------------------------------------
    async def commit_receipt(self, run_id: str | None = None, *, boundary: str = "run_start",
                             contributing_input_ids: Iterable[str] = ()) -> RunBoundaryReceipt:
        """Commit a runtime receipt over the transcript as it stands (call it after the run's
        items are saved, e.g. when Runner.run returns): run id, sequence, message count and the
        jcs digest of every item so far. `run_id` defaults to a new UUIDv7."""
        run_id = new_session_id() if run_id is None else check_id(run_id, "run_id")
        return await _finish(asyncio.to_thread(
            self._store.apply_runtime_turn, self.session_id, run_id, [],
            boundary=boundary, contributing_input_ids=tuple(contributing_input_ids)))

    # -- lifecycle -----------------------------------------------------------------------------
    def close(self) -> None:
        """Close the store if this session opened it (a Store passed in stays open)."""
        if self._owns_store:
            self._store.close()

    def __enter__(self) -> "MobstoreSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _as_list(items) -> list:
    if isinstance(items, (dict, str, bytes)):
        raise InvalidInputError("items must be a list of items, not a single item")
    try:
        return list(items)
    except TypeError:
        raise InvalidInputError(f"items must be a list, not {type(items).__name__}") from None


async def run_with_receipt(agent, input, *, session: MobstoreSession, run_id: str | None = None,
                           contributing_input_ids: Iterable[str] = (), **runner_kwargs):
    """Runner.run(agent, input, session=session, ...) and then commit_receipt(run_id): returns
    (RunResult, RunBoundaryReceipt). The receipt covers the session's transcript after the run,
    so each run's transcript is provable."""
    result = await Runner.run(agent, input, session=session, **runner_kwargs)
    receipt = await session.commit_receipt(run_id, contributing_input_ids=contributing_input_ids)
    return result, receipt
