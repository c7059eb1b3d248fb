"""Live sessions of the persistent session service: the in-memory transcript, its xxh3
fingerprint, the checkpoint gate, and the periodic checkpointer loop.

Our version of meerkat's live-actor + StoreCheckpointer pair (meerkat-mob/src/runtime/session_service.rs@v0.5.2). Everything here is
touched only from the event loop thread; the blocking write itself runs on the service's
executor (engine/services.py) and is handed immutable snapshots (bytes, tuples).

Differences from meerkat's, and why:
- meerkat compares message counts to skip an unchanged save; we compare an xxh3_64
  fingerprint of the live state (transcript + metadata), so a metadata change is saved and
  a metadata change that is undone is not.
- meerkat's save rewrites the whole session row; our transcript is append-only, so a
  checkpoint appends the buffered (pending) messages and, if changed, the metadata.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import struct
from typing import Awaitable, Callable, Iterable

import orjson
import xxhash

from .errors import MobstoreError
from .receipts import RunBoundaryReceipt, _PreparedTurn
from .sessions import now_ms

log = logging.getLogger(__name__)

_U64 = struct.Struct(">Q")


class CheckpointGate:
    """meerkat's per-session gate: while `cancelled`, checkpoints are no-ops. A save that
    has already passed the check completes. Loop-thread only, so no mutex."""

    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False


def _framed(body: bytes) -> bytes:
    # Length-prefixed so ["ab","c"] and ["a","bc"] hash differently.
    return _U64.pack(len(body)) + body


class LiveSession:
    """One session held in memory by a persistent service.

    `stored` mirrors the store's transcript [0, persisted_count) as this service last saw
    it; `pending` holds messages appended live and not yet written. Metadata is kept as
    compact JSON bytes (an immutable snapshot is then just a reference)."""

    def __init__(self, session_id: str, profile: str, stored: Iterable[bytes], metadata_json: bytes,
                 strict: bool = True):
        self.session_id = session_id
        self.profile = profile
        self.strict = strict  # the session's decode="strict" (docs/messages.md)
        self.stored: list[bytes] = []
        self.pending: list[bytes] = []
        self._stored_xxh = xxhash.xxh3_64()  # streaming over framed stored messages: O(delta) per commit
        self._extend_stored(stored)
        self.metadata_json = metadata_json
        self.written_metadata_json = metadata_json
        self._metadata_xxh = xxhash.xxh3_64_intdigest(metadata_json)
        self.gate = CheckpointGate()
        self.discarded = False
        self.write_lock = asyncio.Lock()  # one write (checkpoint or turn commit) at a time
        self.stop = asyncio.Event()       # ends the periodic checkpointer loop
        self.task: asyncio.Task | None = None
        self.written_fingerprint = self._fingerprint(written=True)

    # -- facts ---------------------------------------------------------------------------------
    @property
    def persisted_count(self) -> int:
        return len(self.stored)

    @property
    def message_count(self) -> int:
        return len(self.stored) + len(self.pending)

    def fingerprint(self) -> int:
        """xxh3_64 of the live state. O(pending + 1): the stored part is a running hash."""
        return self._fingerprint(written=False)

    def changed(self) -> bool:
        """True when the live state differs from what this service last wrote (or loaded)."""
        return self.fingerprint() != self.written_fingerprint

    def _fingerprint(self, *, written: bool) -> int:
        h = xxhash.xxh3_64()
        h.update(_U64.pack(len(self.stored)))
        h.update(self._stored_xxh.digest())
        pending = () if written else self.pending
        h.update(_U64.pack(len(pending)))
        for body in pending:
            h.update(_framed(body))
        metadata = xxhash.xxh3_64_intdigest(self.written_metadata_json) if written else self._metadata_xxh
        h.update(_U64.pack(metadata))
        return h.intdigest()

    # -- changes -------------------------------------------------------------------------------
    def append(self, bodies: list[bytes]) -> None:
        self.pending.extend(bodies)

    def set_metadata(self, metadata_json: bytes) -> None:
        self.metadata_json = metadata_json
        self._metadata_xxh = xxhash.xxh3_64_intdigest(metadata_json)

    def _extend_stored(self, bodies: Iterable[bytes]) -> None:
        for body in bodies:
            self.stored.append(body)
            self._stored_xxh.update(_framed(body))

    def absorb_commit(
        self,
        *,
        flushed: int,
        metadata_json: bytes | None,
        missed: list[bytes],
        reset: bool,
        turn: list[bytes],
    ) -> None:
        """Record a committed write: the store now holds (messages another writer appended
        that we had not seen) + the first `flushed` pending messages + the turn's messages.
        `reset` means the stored transcript was not an extension of ours and `missed` is the
        whole of it. Pending messages appended while the write ran stay pending, after the turn."""
        if reset:
            self.stored = []
            self._stored_xxh.reset()
        self._extend_stored(missed)
        self._extend_stored(self.pending[:flushed])
        del self.pending[:flushed]
        self._extend_stored(turn)
        if metadata_json is not None:
            self.written_metadata_json = metadata_json
        self.written_fingerprint = self._fingerprint(written=True)


async def run_checkpointer(
    live: LiveSession,
    interval: float,
    checkpoint: Callable[[LiveSession, str], Awaitable[bool]],
) -> None:
    """The periodic checkpointer of one live session: every `interval` seconds call
    `checkpoint(live, "periodic")` until `live.stop` is set. Stopping never interrupts a
    write: the loop only checks `stop` between checkpoints. Failures are logged and the
    loop goes on (meerkat logs checkpoint failures too; the next tick retries)."""
    while not live.stop.is_set():
        try:
            await asyncio.wait_for(live.stop.wait(), interval)
            return
        except asyncio.TimeoutError:
            pass
        try:
            await checkpoint(live, "periodic")
        except MobstoreError as exc:
            log.warning("periodic checkpoint of session %r failed: %s", live.session_id, exc)


@dataclasses.dataclass(frozen=True)
class WriteResult:
    missed: list[bytes]       # messages another writer appended after our stored mirror
    reset: bool               # the stored transcript no longer extends our mirror; missed is all of it
    turn_bodies: list[bytes]
    receipt: RunBoundaryReceipt | None


def write_live(store, session_id: str, expected: int, pending: tuple[bytes, ...], metadata_json: bytes | None,
               turn, reason: str | None) -> WriteResult:
    """The worker side of one live-session write: the buffered messages, the metadata, the
    turn (run_id, boundary, contributing_input_ids, messages: all checked and normalised on
    the loop) and the durable "checkpoint_written" event (when `reason` is given) in ONE
    transaction. `expected` is the stored message count our mirror holds; a different count
    means another writer."""
    # A job of the service's batch, already in its own savepoint: the store's internal write
    # steps, not its public calls (each would check its arguments again and nest a savepoint).
    return store._write(lambda con: _write_live_locked(store, con, session_id, expected, pending, metadata_json,
                                                       turn, reason), keeps_heads=True)


def _write_live_locked(store, con, session_id, expected, pending, metadata_json, turn, reason) -> WriteResult:
    at = now_ms()
    head = store._heads.sessions.get(session_id)  # right for this transaction (engine/heads.py)
    count = head[1] if head is not None else store._session_row(con, session_id)[1]
    reset = count < expected  # deleted and re-created under the same id
    missed = store.raw_messages(session_id, 0 if reset else expected, count) if count != expected else []
    if pending:
        store._append_logged(con, session_id, list(pending), at)
    if metadata_json is not None:
        store.set_metadata(session_id, loads_json(metadata_json))
    receipt = None
    turn_bodies: list[bytes] = []
    if turn is not None:
        turn_bodies = turn.messages
        receipt = store._apply_turn_locked(con, _PreparedTurn(session_id, turn.run_id, turn_bodies, turn.boundary,
                                                              turn.contributing_input_ids), at)
    if reason is not None:
        store._log_event(con, "checkpoint_written", session_id, {
            # "flushed", not "appended": the append above already logged those messages.
            "reason": reason, "flushed": len(pending), "metadata": metadata_json is not None,
            "message_count": count + len(pending)}, at)
    return WriteResult(missed, reset, turn_bodies, receipt)


def loads_json(data: bytes):
    """Parse JSON we wrote: orjson, or the stdlib for what orjson refuses (big integers)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # integers beyond 64 bits: orjson refuses, our validator accepts
