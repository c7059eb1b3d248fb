"""meerkat's mob session service (MobSessionService, meerkat-mob/src/runtime/session_service.rs@v0.5.2)
as an async API for agents on asyncio; docs/services.md is the user's page.

Two services share one surface:

- EphemeralSessionService(): sessions live in an in-memory store (engine.open(":memory:"));
  nothing outlives the service. apply_runtime_turn returns the receipt and the serialised
  session (SessionSnapshot JSON), as meerkat's ephemeral service does.
- PersistentSessionService(path, checkpoint_interval=...): a file store. apply_runtime_turn is
  the store's one-transaction commit (messages + receipt + digest state) and returns no
  snapshot: the committed head is the snapshot and load_persisted_session materialises it.
  Sessions can also be held *live*: append_live / set_live_metadata change the in-memory
  copy only, and a checkpointer per live session writes it to the store every
  `checkpoint_interval` seconds, on checkpoint(session_id), and on close.

Threading: each service owns one worker thread and every store call runs there, never on
the event loop thread (engine/service_worker.py). One worker per service serialises its
SQLite work (SQLite has one writer anyway) and returns results in submission order, so
events are published in commit order. Calls made while the worker is busy wait on the loop
and go to it together as the next batch: one executor hop and, if any of them writes, one
store transaction with one fsync for all of them, each call in its own savepoint (group
commit, docs/group-commit.md). Live-session state is touched only on the loop thread; the
worker is handed immutable snapshots (bytes, tuples), and what a live write committed is
absorbed by the worker's hook for that call, on the loop, before its caller resumes.

Checkpoint and flush policy (persistent service):
- A checkpoint (periodic, explicit or on close) writes nothing when the live state's xxh3_64
  fingerprint equals the one last written or loaded (engine/live.py); otherwise it appends
  the buffered messages and, if changed, the metadata, in one transaction that also logs a
  durable "checkpoint_written" event.
- cancel_all_checkpointers(): a save already past the gate check completes; every later
  checkpoint of those sessions is a no-op until rearm_all_checkpointers(). Sessions that
  become live later get a fresh, armed gate (as in meerkat); a session discarded while
  cancelled is gone and is not re-armed.
- apply_runtime_turn on a live session is not gated: like meerkat's turn commit it writes
  the whole live state (buffered messages, then the turn) in its one transaction.
- close(): stops the periodic loops (a write in progress finishes), waits for writes in
  flight, then checkpoints every live session whose gate is armed. Buffered changes of
  cancelled sessions are dropped, as are those of discarded sessions. Then subscriptions
  end and the store closes. A failed final checkpoint is raised after everything is closed.
- Another writer (a second service or process on the same file) may append to a session
  this service holds live. The next commit notices (the stored count moved) and rebases:
  the other writer's messages come first, our buffered ones after them, nothing is lost.
  meerkat instead discards a stale live session (its apply_runtime_turn), which
  would drop the buffered messages. Metadata is last-writer-wins, as in meerkat.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import threading
import weakref
from typing import Any, Callable, Iterable

import orjson

from . import digest
from . import store as _store
from .errors import InvalidInputError, MobstoreError, SessionNotFoundError, StoreError
from .event_tail import DEFAULT_POLL_INTERVAL, LogTail, subscribe_point
from .live import LiveSession, WriteResult, loads_json, run_checkpointer, write_live
from .receipts import RunBoundaryReceipt, _PreparedTurn, check_boundary, check_input_ids
from .service_reads import ServiceReadsMixin
from .service_worker import Worker
from .sessions import (
    Session,
    check_id,
    decode_messages,
    encode_metadata,
    normalise_messages,
)

log = logging.getLogger(__name__)

DEFAULT_CHECKPOINT_INTERVAL = 5.0  # seconds

EVENT_KINDS = (
    "session_created",
    "messages_appended",       # detail: appended, message_count, persisted
    "metadata_changed",        # detail: persisted
    "receipt_committed",       # detail: the receipt's fields, flushed (buffered messages written with it)
    "checkpoint_written",      # detail: reason, flushed, metadata, message_count
    "live_session_discarded",  # detail: dropped_messages, dropped_metadata
    "session_deleted",         # delete_session
    # Events another process wrote to a subscribed session arrive with their durable kind
    # (engine.sessions.EVENT_KINDS) and detail["external"] = True, detail["log_seq"].
)


# ------------------------------------------------------------------------------------------
# values


@dataclasses.dataclass(frozen=True)
class ApplyOutput:
    """What apply_runtime_turn returns (meerkat's CoreApplyOutput): the receipt, and the
    serialised session for an ephemeral service (None for a persistent one)."""

    receipt: RunBoundaryReceipt
    session_snapshot: bytes | None


@dataclasses.dataclass(frozen=True)
class SessionSnapshot:
    """A whole session: what load_persisted_session returns and what an ephemeral
    ApplyOutput.session_snapshot serialises (to_json / from_json)."""

    id: str
    metadata: dict
    messages: list
    created_at: int  # Unix ms
    updated_at: int  # Unix ms
    digest: str
    digest_profile: str

    @property
    def message_count(self) -> int:
        return len(self.messages)

    @classmethod
    def from_session(cls, session: Session, bodies: list[bytes]) -> "SessionSnapshot":
        return cls(session.id, session.metadata, decode_messages(bodies), session.created_at,
                   session.updated_at, session.digest, session.digest_profile)

    def to_json(self) -> bytes:
        return _snapshot_json(self, [digest.message_bytes(m) for m in self.messages])

    @classmethod
    def from_json(cls, data: bytes) -> "SessionSnapshot":
        doc = loads_json(data)
        names = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(doc, dict) or any(name not in doc for name in names):
            raise InvalidInputError("not a session snapshot: expected an object with " + ", ".join(names))
        return cls(**{name: doc[name] for name in names})


def _snapshot_json(session: Session | SessionSnapshot, bodies: list[bytes]) -> bytes:
    """{"id","created_at","updated_at","digest_profile","digest","metadata","messages"}; the
    messages are the stored bytes, spliced in without re-encoding."""
    head = orjson.dumps({
        "id": session.id,
        "created_at": session.created_at,
        "updated_at": session.updated_at,
        "digest_profile": session.digest_profile,
        "digest": session.digest,
        "metadata": session.metadata,
    })
    return head[:-1] + b',"messages":[' + b",".join(bodies) + b"]}"


@dataclasses.dataclass(frozen=True)
class ServiceEvent:
    """One in-process event of a service. `seq` increases by one per event of the service."""

    seq: int
    kind: str
    session_id: str
    detail: dict


_END = object()


class EventSubscription:
    """An async iterator over one session's events, in publication order. It sees the events
    published after subscribe_session_events returned and ends when the service closes (or
    when close() is called; events already queued are still delivered)."""

    def __init__(self, session_id: str, unsubscribe: Callable[["EventSubscription"], None]):
        self.session_id = session_id
        self._queue: asyncio.Queue = asyncio.Queue()
        self._unsubscribe = unsubscribe
        self._ended = False
        self._from_seq = 0  # durable-log position at subscription (engine/event_tail.py)

    def _put(self, event: ServiceEvent) -> None:
        if not self._ended:
            self._queue.put_nowait(event)

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._queue.put_nowait(_END)

    def close(self) -> None:
        self._unsubscribe(self)
        self._end()

    def __aiter__(self) -> "EventSubscription":
        return self

    async def __anext__(self) -> ServiceEvent:
        item = await self._queue.get()
        if item is _END:
            self._queue.put_nowait(_END)  # every later __anext__ ends too
            raise StopAsyncIteration
        return item

    async def __aenter__(self) -> "EventSubscription":
        return self

    async def __aexit__(self, *exc) -> None:
        self.close()


# ------------------------------------------------------------------------------------------
# runtime adapters


class RuntimeAdapter:
    """The runtime-facing handle of one service (meerkat's per-service runtime adapter).
    Holds its service weakly: it never keeps a service alive."""

    __slots__ = ("_owner", "kind", "__weakref__")

    def __init__(self, service: "_SessionService"):
        self._owner = weakref.ref(service)
        self.kind = "persistent" if service.supports_persistent_sessions() else "ephemeral"

    @property
    def service(self) -> "_SessionService":
        service = self._owner()
        if service is None:
            raise StoreError("the session service of this runtime adapter is gone")
        return service

    async def apply_runtime_turn(self, session_id: str, run_id: str, messages, **kwargs) -> ApplyOutput:
        return await self.service.apply_runtime_turn(session_id, run_id, messages, **kwargs)

    def __repr__(self) -> str:
        return f"<RuntimeAdapter {self.kind} of {self._owner()!r}>"


# meerkat's process-global cache (meerkat-mob/src/runtime/session_service.rs:73-103@v0.5.2): service address -> weak
# adapter, pruned of dead entries on every lookup. Unlike meerkat's, an entry is also dead
# when its adapter's service is, and a hit must name this very service: a new service at a
# reused address (id()) never receives the adapter of the dead one.
_ADAPTERS: dict[int, weakref.ReferenceType] = {}
_ADAPTERS_LOCK = threading.Lock()


def _adapter_dead(ref: weakref.ReferenceType) -> bool:
    adapter = ref()
    return adapter is None or adapter._owner() is None


def _adapter_for(service: "_SessionService") -> RuntimeAdapter:
    key = id(service)
    with _ADAPTERS_LOCK:
        for dead in [k for k, ref in _ADAPTERS.items() if _adapter_dead(ref)]:
            del _ADAPTERS[dead]
        ref = _ADAPTERS.get(key)
        adapter = None if ref is None else ref()
        if adapter is None or adapter._owner() is not service:
            adapter = RuntimeAdapter(service)
            _ADAPTERS[key] = weakref.ref(adapter)
        return adapter


# ------------------------------------------------------------------------------------------
# worker-side functions (run on a service's executor thread)


@dataclasses.dataclass(frozen=True)
class _Turn:
    run_id: str
    boundary: str
    contributing_input_ids: tuple[str, ...]
    messages: list[bytes]  # normalised on the loop (normalise_messages)


def _create_in_store(store, metadata, session_id, messages, profile):
    bodies = normalise_messages(messages)
    sid = store.create_session(metadata, session_id=session_id, messages=bodies, digest_profile=profile)
    return sid, bodies, encode_metadata(metadata)[0]


def _apply_in_store(store, session_id, turn: _Turn, with_snapshot: bool):
    # Checked and normalised on the loop (_SessionService._turn): the store's write step alone.
    prepared = _PreparedTurn(session_id, turn.run_id, turn.messages, turn.boundary, turn.contributing_input_ids)
    bodies = turn.messages

    def apply():
        return store._write(lambda con: store._apply_turn_locked(con, prepared), keeps_heads=True)

    if not with_snapshot:
        return apply(), None, len(bodies)
    with store.transaction():  # the snapshot is read in the same transaction as the commit
        receipt = apply()
        session = store.session(session_id)
        snapshot = _snapshot_json(session, store.raw_messages(session_id, 0, session.message_count))
    return receipt, snapshot, len(bodies)


def _append_in_store(store, session_id, messages) -> tuple[int, int]:
    bodies = normalise_messages(messages)
    return store.append_messages(session_id, bodies), len(bodies)


def _delete_in_store(store, session_id) -> int | None:
    """Delete a session; its message count, or None if there was none."""
    with store.transaction():
        session = store.session(session_id)
        if session is None:
            return None
        store.delete_session(session_id)
        return session.message_count


def _load_snapshot(store, session_id) -> SessionSnapshot | None:
    with store.reading():  # one snapshot: the row and its messages agree
        session = store.session(session_id)
        if session is None:
            return None
        return SessionSnapshot.from_session(session, store.raw_messages(session_id, 0, session.message_count))


def _load_for_live(store, session_id) -> tuple[Session, list[bytes]]:
    with store.reading():
        session = store.session(session_id)
        if session is None:
            raise SessionNotFoundError(f"no session {session_id!r}")
        return session, store.raw_messages(session_id, 0, session.message_count)


def _validated_bodies(messages, profile: str, strict: bool) -> list[bytes]:
    """Message bytes, checked now so a bad message fails append_live, not a later checkpoint."""
    bodies = normalise_messages(messages)
    digest.TranscriptState.new(profile, strict=strict).absorb(bodies)
    return bodies


def _forget(tasks: set) -> Callable[[asyncio.Task], None]:
    def done(task: asyncio.Task) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved here; the awaiting caller (or close) reports it
    return done


# ------------------------------------------------------------------------------------------
# the services


class _SessionService(ServiceReadsMixin):
    """What both services share: the executor, events, the adapter, the lifecycle, and the
    store reads of engine/service_reads.py."""

    _persistent = False

    def __init__(self, path: str, *, synchronous: str, digest_profile: str):
        if digest_profile not in digest.PROFILES:
            raise InvalidInputError(f"digest_profile must be one of {digest.PROFILES}, not {digest_profile!r}")
        self._path = path
        self._synchronous = synchronous
        self._profile = digest_profile
        self._store: _store.Store | None = None  # opened by the worker on first use
        self._worker = Worker(self._opened)
        self._subscriptions: dict[str, set[EventSubscription]] = {}
        self._event_seq = 0
        self._closing = False
        self._closed = False
        self._close_lock = asyncio.Lock()
        self._inflight: set[asyncio.Task] = set()
        self._adapter: RuntimeAdapter | None = None

    # -- facts ---------------------------------------------------------------------------------
    @property
    def path(self) -> str:
        return self._path

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def batches(self) -> int:
        """Batches handed to the worker so far (each one executor hop)."""
        return self._worker.batches

    def supports_persistent_sessions(self) -> bool:
        """Whether sessions outlive the service: False for ephemeral, True for persistent."""
        return self._persistent

    def runtime_adapter(self) -> RuntimeAdapter:
        """This service's adapter: the same object on every call while the service lives,
        never another service's. The service holds it; the global cache only weakly."""
        self._adapter = _adapter_for(self)
        return self._adapter

    # -- plumbing ------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closing:
            raise StoreError("the session service is closed")

    def _opened(self) -> _store.Store:
        if self._store is None:  # worker thread only
            self._store = _store.open(self._path, synchronous=self._synchronous)
        return self._store

    async def _call(self, fn, *args, write: bool = False):
        """fn(store, *args) on this service's worker thread, in submission order. Calls made
        while a batch is on the worker wait on the loop and go to it together as the next
        batch: one executor hop for all of them and, when any of them writes, ONE store
        transaction (each call in its own savepoint, one fsync; engine/groupcommit.py)."""
        return await self._worker.submit(fn, args, "write" if write else "read")

    async def _run(self, fn, *args):
        """fn(*args) on the worker thread (CPU work that must stay ordered with store work)."""
        return await self._worker.submit(fn, args, "plain")

    async def _drain(self) -> None:
        """Until every call submitted and every load started has finished."""
        while self._inflight or not self._worker.idle:
            await self._worker.drain()
            await asyncio.gather(*tuple(self._inflight), return_exceptions=True)

    def _emit(self, kind: str, session_id: str, detail: dict) -> None:
        self._event_seq += 1
        event = ServiceEvent(self._event_seq, kind, session_id, detail)
        for subscription in tuple(self._subscriptions.get(session_id, ())):
            subscription._put(event)

    def _emit_turn(self, session_id: str, receipt: RunBoundaryReceipt, appended: int, flushed: int = 0) -> None:
        if session_id not in self._subscriptions:  # nobody would see them: only their numbers
            self._event_seq += 2 if appended else 1
            return
        if appended:
            self._emit("messages_appended", session_id,
                       {"appended": appended, "message_count": receipt.message_count, "persisted": self._persistent})
        self._emit("receipt_committed", session_id, {**receipt.to_dict(), "flushed": flushed})

    def _unsubscribe(self, subscription: EventSubscription) -> None:
        subscriptions = self._subscriptions.get(subscription.session_id)
        if subscriptions is not None:
            subscriptions.discard(subscription)
            if not subscriptions:
                del self._subscriptions[subscription.session_id]

    @staticmethod
    def _turn(run_id, messages, boundary, contributing_input_ids) -> _Turn:
        # Checked and encoded on the loop thread so a bad argument or message (one containing
        # itself, say) fails before any work is queued and the worker only writes.
        return _Turn(check_id(run_id, "run_id"), check_boundary(boundary),
                     check_input_ids(contributing_input_ids), normalise_messages(messages))

    # -- the session-service surface shared by both -----------------------------------------------------
    _tail: LogTail | None = None  # persistent services: events of other writers

    async def subscribe_session_events(self, session_id: str) -> EventSubscription:
        """Subscribe to a session's events (EVENT_KINDS). SessionNotFoundError if unknown.
        A persistent service also delivers what other processes write to the session, read
        from the durable event log (engine/event_tail.py)."""
        self._check_open()
        check_id(session_id)
        exists, newest = await self._call(subscribe_point, session_id)
        if not exists:
            raise SessionNotFoundError(f"no session {session_id!r}")
        self._check_open()
        subscription = EventSubscription(session_id, self._unsubscribe)
        subscription._from_seq = newest
        self._subscriptions.setdefault(session_id, set()).add(subscription)
        if self._tail is not None:
            self._tail.want(newest)
        return subscription

    def _deliver_external(self, event) -> None:
        """Loop thread: a durable event another writer committed (engine.sessions.Event)."""
        for subscription in tuple(self._subscriptions.get(event.session_id, ())):
            if event.seq > subscription._from_seq:
                self._event_seq += 1
                subscription._put(ServiceEvent(self._event_seq, event.kind, event.session_id,
                                               {**event.detail, "external": True, "log_seq": event.seq}))

    # -- lifecycle -----------------------------------------------------------------------------
    async def __aenter__(self):
        self._check_open()
        await self._call(lambda store: None)  # open the store now: a bad path fails here
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def _shutdown(self) -> list[BaseException]:
        """Stop background work and flush by the service's policy; return flush errors."""
        await self._drain()
        return []

    def _close_store(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    async def close(self) -> None:
        """Flush by the policy in the module docstring, end subscriptions, close the store.
        Idempotent. Raises the first failed final checkpoint, after everything is closed."""
        async with self._close_lock:
            if self._closed:
                return
            self._closing = True
            errors = await self._shutdown()
            if self._tail is not None:
                await self._tail.stop()
            for subscriptions in self._subscriptions.values():
                for subscription in subscriptions:
                    subscription._end()
            self._subscriptions.clear()
            self._worker.closing = True
            try:
                await self._run(self._close_store)
            finally:
                self._worker.shutdown()  # idle: the close job was its last
                self._closed = True
            if errors:
                raise errors[0]


class EphemeralSessionService(_SessionService):
    """The ephemeral service: sessions in an in-memory store, gone on close. There is
    nothing to checkpoint: the in-memory session *is* the live session."""

    _persistent = False

    def __init__(self, *, digest_profile: str = "f3"):
        super().__init__(_store.MEMORY, synchronous="FULL", digest_profile=digest_profile)

    def __repr__(self) -> str:
        return f"<EphemeralSessionService {'closed' if self._closing else 'open'}>"

    async def create_session(self, metadata: dict | None = None, *, session_id: str | None = None,
                             messages: Iterable = ()) -> str:
        """Create a session (new UUIDv7 id unless given); returns its id."""
        self._check_open()
        messages = normalise_messages(messages)
        sid, bodies, _ = await self._call(_create_in_store, metadata, session_id, messages, self._profile, write=True)
        self._emit("session_created", sid, {"message_count": len(bodies)})
        return sid

    async def session_belongs_to_mob(self, session_id: str, mob_id: str) -> bool:
        """Always False: as in meerkat, the ephemeral service claims no session for a mob
        (mob_members / reconcile_mob still answer over its in-memory sessions)."""
        if not isinstance(session_id, str) or not isinstance(mob_id, str):
            raise InvalidInputError("session_id and mob_id must be strings")
        return False

    async def load_persisted_session(self, session_id: str) -> SessionSnapshot | None:
        """Always None: nothing is persisted."""
        check_id(session_id)
        return None

    async def apply_runtime_turn(self, session_id: str, run_id: str, messages, *, boundary: str = "run_start",
                                 contributing_input_ids: Iterable[str] = ()) -> ApplyOutput:
        """Append the turn to the in-memory session and mint its receipt (digest of the whole
        transcript in the service's profile; sequence max+1 per (session, run) from 0).
        Returns the receipt and the serialised session (SessionSnapshot JSON). Nothing is
        persisted. The snapshot costs O(session) per turn, as in meerkat."""
        self._check_open()
        check_id(session_id)
        turn = self._turn(run_id, messages, boundary, contributing_input_ids)
        receipt, snapshot, appended = await self._call(_apply_in_store, session_id, turn, True, write=True)
        self._emit_turn(session_id, receipt, appended)
        return ApplyOutput(receipt, snapshot)

    async def append_live(self, session_id: str, messages) -> int:
        """Append messages to the in-memory session; returns its message count."""
        self._check_open()
        check_id(session_id)
        messages = normalise_messages(messages)  # on the loop: a bad message never reaches the worker
        count, appended = await self._call(_append_in_store, session_id, messages, write=True)
        self._emit("messages_appended", session_id, {"appended": appended, "message_count": count, "persisted": False})
        return count

    async def set_live_metadata(self, session_id: str, metadata: dict) -> None:
        self._check_open()
        check_id(session_id)
        await self._call(lambda store: store.set_metadata(session_id, metadata), write=True)
        self._emit("metadata_changed", session_id, {"persisted": False})

    async def live_messages(self, session_id: str) -> list[dict]:
        self._check_open()
        check_id(session_id)
        return await self._call(lambda store: store.messages(session_id))

    async def live_sessions(self) -> list[str]:
        """Ids of the sessions held by this service, sorted."""
        self._check_open()
        return sorted(await self._call(lambda store: [s.id for s in store.sessions()]))

    async def checkpoint(self, session_id: str) -> bool:
        """Nothing to write: returns False."""
        self._check_open()
        check_id(session_id)
        return False

    async def discard_live_session(self, session_id: str) -> bool:
        """Drop the in-memory session (there is no persisted copy). True if it existed."""
        self._check_open()
        check_id(session_id)
        dropped = await self._call(_delete_in_store, session_id, write=True)
        if dropped is None:
            return False
        self._emit("live_session_discarded", session_id, {"dropped_messages": dropped, "dropped_metadata": True})
        return True

    async def cancel_all_checkpointers(self) -> int:
        """No checkpointers: returns 0."""
        return 0

    async def rearm_all_checkpointers(self) -> int:
        """No checkpointers: returns 0."""
        return 0


class PersistentSessionService(_SessionService):
    """The persistent service over a mobstore file, with live sessions and their
    checkpointers (policy: module docstring). `checkpoint_interval` is in seconds; None
    turns the periodic checkpointer off (explicit checkpoints and close still write)."""

    _persistent = True

    def __init__(self, path: str | os.PathLike, *, checkpoint_interval: float | None = DEFAULT_CHECKPOINT_INTERVAL,
                 synchronous: str = "FULL", digest_profile: str = "f3",
                 event_poll_interval: float = DEFAULT_POLL_INTERVAL):
        path = os.fsdecode(os.fspath(path))
        if path == _store.MEMORY:
            raise InvalidInputError("a persistent session service needs a file path, not ':memory:'")
        if checkpoint_interval is not None and not checkpoint_interval > 0:
            raise InvalidInputError(f"checkpoint_interval must be positive seconds or None, not {checkpoint_interval!r}")
        super().__init__(path, synchronous=synchronous, digest_profile=digest_profile)
        if not (isinstance(event_poll_interval, (int, float)) and event_poll_interval > 0):
            raise InvalidInputError(f"event_poll_interval must be positive seconds, not {event_poll_interval!r}")
        self._checkpoint_interval = checkpoint_interval
        self._tail = LogTail(self, float(event_poll_interval))
        self._live: dict[str, LiveSession] = {}
        self._activating: dict[str, asyncio.Task] = {}
        self._loops: set[asyncio.Task] = set()

    def __repr__(self) -> str:
        return f"<PersistentSessionService {self._path!r} {'closed' if self._closing else 'open'}>"

    # -- live sessions -------------------------------------------------------------------------
    def _install(self, live: LiveSession) -> None:
        self._live[live.session_id] = live
        if self._checkpoint_interval is not None:
            live.task = asyncio.ensure_future(run_checkpointer(live, self._checkpoint_interval, self._checkpoint))
            self._loops.add(live.task)
            live.task.add_done_callback(_forget(self._loops))

    async def _load_live(self, session_id: str) -> None:
        session, bodies = await self._call(_load_for_live, session_id)
        if session_id not in self._live and not self._closing:
            self._install(LiveSession(session_id, session.digest_profile, bodies, encode_metadata(session.metadata)[0],
                                      strict=session.decode == "strict"))

    async def _activate(self, session_id: str) -> LiveSession:
        """The live session, loading it from the store (once, O(session)) if needed."""
        while True:
            self._check_open()
            live = self._live.get(session_id)
            if live is not None:
                return live
            task = self._activating.get(session_id)
            if task is None:
                task = asyncio.ensure_future(self._load_live(session_id))
                self._activating[session_id] = task
                task.add_done_callback(lambda t: self._activating.pop(session_id, None))
                self._inflight.add(task)
                task.add_done_callback(_forget(self._inflight))
            await asyncio.shield(task)

    async def _checkpoint(self, live: LiveSession, reason: str) -> bool:
        written, _receipt = await self._commit(live, reason=reason)
        return written

    async def _commit(self, live: LiveSession, *, reason: str | None = None, turn: _Turn | None = None):
        """One write of a live session: a checkpoint (reason given, gated, skipped when
        unchanged) or a turn (never gated). Returns (written, receipt).

        The session's write lock is held from here until the worker's answer has been
        absorbed (by the call's hook, on the loop): two writes of one live session are never
        in one batch, and each starts from what the one before it committed. Once submitted
        the write runs and is absorbed even if the caller is cancelled meanwhile."""
        lock = live.write_lock
        await lock.acquire()
        try:
            if turn is None and (live.discarded or live.gate.cancelled or not live.changed()):
                lock.release()
                return False, None
            # Past the gate: this save completes even if the gate is cancelled meanwhile.
            if live.discarded:  # a turn racing a discard: the dropped buffer is not written
                pending, metadata_json = (), None
            else:
                pending = tuple(live.pending)
                metadata_json = live.metadata_json if live.metadata_json != live.written_metadata_json else None

            def absorb(error, written):
                lock.release()
                if error is not None:
                    return error, None
                live.absorb_commit(flushed=len(pending), metadata_json=metadata_json, missed=written.missed,
                                   reset=written.reset, turn=written.turn_bodies)
                if reason is not None:
                    self._emit("checkpoint_written", live.session_id, {
                        "reason": reason, "flushed": len(pending), "metadata": metadata_json is not None,
                        "message_count": live.persisted_count})
                if turn is not None:
                    self._emit_turn(live.session_id, written.receipt, len(written.turn_bodies), len(pending))
                return None, (True, written.receipt)

            bulk = None
            if turn is not None and not pending and metadata_json is None:  # a turn alone: written with others
                bulk = (_PreparedTurn(live.session_id, turn.run_id, turn.messages, turn.boundary,
                                      turn.contributing_input_ids), live.persisted_count,
                        lambda receipt, _before: WriteResult([], False, turn.messages, receipt))
            future = self._worker.submit(self._write_live, (live.session_id, live.persisted_count, pending,
                                                            metadata_json, turn, reason), "write", absorb, bulk)
        except BaseException:  # nothing submitted: the hook will never run
            lock.release()
            raise
        return await future

    def _write_live(self, store, *args) -> WriteResult:
        """Worker side of _commit (engine.live.write_live); an attribute so tests can hold a
        write in flight."""
        return write_live(store, *args)

    # -- the session-service surface --------------------------------------------------------------------
    async def create_session(self, metadata: dict | None = None, *, session_id: str | None = None,
                             messages: Iterable = ()) -> str:
        """Create the session in the store (committed on return, as meerkat saves once on
        create) and hold it live. Returns its id."""
        self._check_open()
        messages = normalise_messages(messages)
        sid, bodies, metadata_json = await self._call(_create_in_store, metadata, session_id, messages,
                                                      self._profile, write=True)
        if sid not in self._live and not self._closing:
            self._install(LiveSession(sid, self._profile, bodies, metadata_json))
        self._emit("session_created", sid, {"message_count": len(bodies)})
        return sid

    async def session_belongs_to_mob(self, session_id: str, mob_id: str) -> bool:
        """The membership rule over the stored metadata (Store.session_belongs_to_mob); live metadata
        not yet checkpointed does not count."""
        self._check_open()
        return await self._call(lambda store: store.session_belongs_to_mob(session_id, mob_id))

    async def load_persisted_session(self, session_id: str) -> SessionSnapshot | None:
        """The stored session with its messages, or None. Live changes not yet written are
        not in it (they are not persisted)."""
        self._check_open()
        check_id(session_id)
        return await self._call(_load_snapshot, session_id)

    async def apply_runtime_turn(self, session_id: str, run_id: str, messages, *, boundary: str = "run_start",
                                 contributing_input_ids: Iterable[str] = ()) -> ApplyOutput:
        """Commit the turn's messages, its receipt and the digest state in ONE transaction
        (Store.apply_runtime_turn); the snapshot is None. On a live session the same
        transaction first writes its buffered messages and changed metadata, and the live
        copy advances with the commit. O(turn), never O(session)."""
        self._check_open()
        check_id(session_id)
        turn = self._turn(run_id, messages, boundary, contributing_input_ids)
        live = self._live.get(session_id)
        if live is not None:
            _written, receipt = await self._commit(live, turn=turn)
            return ApplyOutput(receipt, None)
        appended = len(turn.messages)
        receipt, _snapshot, appended = await self._worker.submit(
            _apply_in_store, (session_id, turn, False), "write", None,
            (_PreparedTurn(session_id, turn.run_id, turn.messages, turn.boundary, turn.contributing_input_ids), None,
             lambda receipt, _before: (receipt, None, appended)))
        self._emit_turn(session_id, receipt, appended)
        return ApplyOutput(receipt, None)

    async def append_live(self, session_id: str, messages) -> int:
        """Buffer messages in the live session (loading it if needed); the checkpointer writes
        them. Every message is validated now. Returns the live message count."""
        self._check_open()
        check_id(session_id)
        encoded = normalise_messages(messages)  # on the loop: a bad message never reaches the worker
        bodies = None
        while True:
            live = await self._activate(session_id)
            if bodies is None:
                bodies = await self._run(_validated_bodies, encoded, live.profile, live.strict)
            if self._live.get(session_id) is live:  # not discarded while we validated
                break
        live.append(bodies)
        self._emit("messages_appended", session_id,
                   {"appended": len(bodies), "message_count": live.message_count, "persisted": False})
        return live.message_count

    async def set_live_metadata(self, session_id: str, metadata: dict) -> None:
        """Replace the live session's metadata; the checkpointer writes it if it differs."""
        self._check_open()
        check_id(session_id)
        body, _facts = encode_metadata(metadata)  # validated now, written later
        while True:
            live = await self._activate(session_id)
            if self._live.get(session_id) is live:
                break
        live.set_metadata(body)
        self._emit("metadata_changed", session_id, {"persisted": False})

    async def live_messages(self, session_id: str) -> list[dict]:
        """The live transcript (stored + buffered), or the stored one if not live."""
        self._check_open()
        check_id(session_id)
        live = self._live.get(session_id)
        if live is None:
            return await self._call(lambda store: store.messages(session_id))
        return await self._run(decode_messages, live.stored + live.pending)

    async def live_sessions(self) -> list[str]:
        """Ids of the sessions this service holds live, sorted."""
        self._check_open()
        return sorted(self._live)

    async def checkpoint(self, session_id: str) -> bool:
        """Write the live session now, unless it is unchanged, its gate is cancelled, or it
        is not live. True if a write happened. Errors are raised (periodic ones are logged)."""
        self._check_open()
        check_id(session_id)
        live = self._live.get(session_id)
        if live is None:
            return False
        return await self._checkpoint(live, "explicit")

    async def discard_live_session(self, session_id: str) -> bool:
        """Drop the live session and its checkpointer; buffered changes are lost, the stored
        session stays. A write already in flight completes. True if it was live."""
        self._check_open()
        check_id(session_id)
        live = self._live.pop(session_id, None)
        if live is None:
            return False
        live.discarded = True
        live.stop.set()
        self._emit("live_session_discarded", session_id, {
            "dropped_messages": len(live.pending),
            "dropped_metadata": live.metadata_json != live.written_metadata_json})
        return True

    async def _before_delete(self, session_id: str) -> None:
        if session_id in self._live:
            await self.discard_live_session(session_id)

    async def cancel_all_checkpointers(self) -> int:
        """Cancel every live session's gate; returns how many. Saves in flight complete."""
        for live in self._live.values():
            live.gate.cancelled = True
        return len(self._live)

    async def rearm_all_checkpointers(self) -> int:
        """Re-arm the gates of the sessions still live; returns how many."""
        for live in self._live.values():
            live.gate.cancelled = False
        return len(self._live)

    # -- lifecycle -----------------------------------------------------------------------------
    async def _shutdown(self) -> list[BaseException]:
        for live in self._live.values():
            live.stop.set()
        await asyncio.gather(*tuple(self._loops), return_exceptions=True)
        await self._drain()  # writes and loads started by callers that were cancelled
        errors: list[BaseException] = []
        for live in list(self._live.values()):
            try:  # gated like any checkpoint: a cancelled session's buffered changes are not written
                await self._checkpoint(live, "close")
            except MobstoreError as exc:
                log.warning("final checkpoint of session %r failed: %s", live.session_id, exc)
                errors.append(exc)
        self._live.clear()
        return errors


__all__ = [
    "ApplyOutput",
    "SessionSnapshot",
    "ServiceEvent",
    "EventSubscription",
    "RuntimeAdapter",
    "EphemeralSessionService",
    "PersistentSessionService",
    "DEFAULT_CHECKPOINT_INTERVAL",
    "EVENT_KINDS",
]
