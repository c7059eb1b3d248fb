"""Session events written by other processes, for a persistent service's subscribers.

A PersistentSessionService publishes its own events in-process as they happen. Another
process (or another Store on the same file) writing a subscribed session is seen through
the durable event log instead: while any subscription is open, one task per service reads
`Store.events(after=cursor)` every `interval` seconds (one small indexed read, batched with
the service's other worker calls) and delivers each event whose `writer` is not this
service's own connection, with `detail["external"] = True` and `detail["log_seq"]`.

Each subscription only receives log events newer than the log position when it was made.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

DEFAULT_POLL_INTERVAL = 0.1  # seconds between reads of the log while subscriptions are open
BATCH = 1000  # log rows read per poll


def subscribe_point(store: Any, session_id: str) -> tuple[bool, int]:
    """Worker side: (does the session exist, the newest event seq now)."""
    exists = store.session(session_id) is not None
    (newest,) = store._db().execute("SELECT coalesce(max(seq), 0) FROM ms_events").fetchone()
    return exists, newest


def _read_after(store: Any, cursor: int) -> tuple[list, str]:
    return store.events(after=cursor, limit=BATCH), store._writer_id


class LogTail:
    """The polling task of one service (created on the first subscription, ended with the
    last one or with the service)."""

    def __init__(self, service: Any, interval: float) -> None:
        self._service = service
        self._interval = interval
        self._cursor = 0
        self._task: asyncio.Task | None = None

    def want(self, from_seq: int) -> None:
        """A subscription starting after log position from_seq exists: make sure we poll."""
        if self._task is None or self._task.done():
            self._cursor = from_seq
            self._task = asyncio.ensure_future(self._run())
        else:
            self._cursor = min(self._cursor, from_seq)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self) -> None:
        service = self._service
        while service._subscriptions and not service._closing:
            await asyncio.sleep(self._interval)
            if not service._subscriptions or service._closing:
                return
            try:
                events, own = await service._call(_read_after, self._cursor)
            except Exception:  # noqa: BLE001 - a failed poll is retried at the next tick
                continue
            for event in events:
                self._cursor = event.seq
                if event.writer == own:
                    continue
                service._deliver_external(event)
