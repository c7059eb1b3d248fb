"""Exporting transcripts as JSON Lines (Store.export_jsonl, `mobstore messages`).

One session: each line is one stored message, byte for byte as stored, except that a raw
line break (which valid JSON allows only as whitespace between tokens) becomes a space so
that every message stays on its own line. Every session (session_id=None): each line is
`{"session_id": ..., "index": ..., "message": <the message>}`, sessions oldest first.
Messages are read in bounded chunks, so memory does not grow with the transcript.
"""

from __future__ import annotations

from typing import BinaryIO

import orjson

from . import _args
from .sessions import check_id

EXPORT_CHUNK = 1024  # messages per range read


def _one_line(body: bytes) -> bytes:
    if b"\n" in body or b"\r" in body:
        body = body.replace(b"\r", b" ").replace(b"\n", b" ")
    return body


class ExportMixin:
    """export_jsonl of Store."""

    def export_jsonl(self, out: BinaryIO, session_id: str | None = None, *, start: int = 0,
                     stop: int | None = None) -> int:
        """Write messages as JSON Lines to the binary file `out`; returns how many lines.
        With session_id: messages [start, stop) of that session (SessionNotFoundError if
        unknown). Without: every message of every session, wrapped with its session id and
        index. Each chunk is read in its own snapshot: a session appended to meanwhile is
        exported up to the length it had when the export reached it."""
        if session_id is not None:
            check_id(session_id)
            count = self.message_count(session_id)
            lo, hi, _ = slice(_args.slice_bound(start, "start"), _args.slice_bound(stop, "stop")).indices(count)
            return self._export_range(out, session_id, lo, hi, wrap=False)
        written = 0
        for sid, count in self._sessions_oldest_first():
            written += self._export_range(out, sid, 0, count, wrap=True)
        return written

    def _sessions_oldest_first(self):
        last = -1
        while True:
            with self.reading() as con:
                rows = con.execute(
                    "SELECT num, id, message_count FROM ms_sessions WHERE num > ? ORDER BY num LIMIT 256", (last,)
                ).fetchall()
            if not rows:
                return
            for num, sid, count in rows:
                yield sid, count
            last = rows[-1][0]

    def _export_range(self, out: BinaryIO, session_id: str, lo: int, hi: int, *, wrap: bool) -> int:
        written = 0
        while lo < hi:
            bodies = self.raw_messages(session_id, lo, min(hi, lo + EXPORT_CHUNK))
            if not bodies:
                break
            if wrap:
                prefix = b'{"session_id":' + orjson.dumps(session_id) + b',"index":'
                lines = [prefix + str(lo + i).encode() + b',"message":' + _one_line(b) + b"}\n"
                         for i, b in enumerate(bodies)]
            else:
                lines = [_one_line(b) + b"\n" for b in bodies]
            out.write(b"".join(lines))
            written += len(bodies)
            lo += len(bodies)
        return written
