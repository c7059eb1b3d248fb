"""Rewrites that lose nothing: truncating a transcript (pop, clear) without breaking a receipt.

A transcript was append-only; frameworks such as openai-agents also remove its newest
messages (`pop_item`, `clear_session`). A truncation here is one transaction that

- moves the removed tail, byte for byte, into ms_history under a new rewrite number
  (0, 1, ... per session; one ms_rewrites row with the old and new lengths and the digest
  of the transcript as it was), as meerkat keeps superseded strands and rewrite commits
  (meerkat-store/src/sqlite_store.rs:86-122@c7b8518b4);
- resets the session's streaming digest state to the kept prefix;
- marks every receipt that covered a removed message (message_count > kept) as superseded
  by that rewrite, and moves an imported head that did so into the rewrite row;
- logs a durable "messages_truncated" event (old_count, message_count, removed, rewrite).

Such a receipt stays verifiable: the transcript it was made on is the kept prefix followed
by the removed tail, and the prefix itself may have been cut by a later rewrite, whose
tail then holds it. Message i of the transcript rewritten by rewrite g is history row
(r, i) of the first rewrite r >= g with new_count(r) <= i, else the current message i.
verify() rebuilds every rewritten transcript that way and reports its receipts as
superseded (or as mismatches when their digest does not come out), apart from the
receipts of the current transcript.

purge_history() is the one real deletion (privacy): it deletes the removed messages of a
session (zeroed in the file: secure_delete), empties the WAL, and says so in its
report and in a "history_purged" event. Receipts that covered purged messages can no
longer be checked; verify counts them as purged. docs/rewrites.md is the user's page.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator

from . import _args, digest
from .errors import InvalidInputError, MobstoreError, StoreError
from .receipts import Mismatch, VerifyReport
from .sessions import check_id, decode_messages, message_key, now_ms

CHUNK = 2048  # message rows read per range query


@dataclasses.dataclass(frozen=True)
class Rewrite:
    """One truncation of a session's transcript: messages [new_count, old_count) of the
    transcript as it was (digest `old_digest`) moved to its history."""

    index: int
    at_ms: int
    old_count: int
    new_count: int
    old_digest: str
    profile: str
    removed_bytes: int
    reason: str | None
    purged_at_ms: int | None  # purge_history deleted its messages

    @property
    def removed(self) -> int:
        return self.old_count - self.new_count


@dataclasses.dataclass(frozen=True)
class PurgeReport:
    """What purge_history deleted. `wal_truncated`: the WAL file was emptied afterwards (False
    when another connection was reading, so old page images may stay in it until the next
    checkpoint). `vacuumed`: the file was rebuilt, so no free page holds deleted content."""

    session_id: str
    rewrites: int
    messages: int
    bytes: int
    receipts: int  # superseded receipts that can no longer be verified
    wal_truncated: bool
    vacuumed: bool

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _check_keep(keep, count: int) -> int:
    keep = _args.integer(keep, "keep", minimum=0)
    if keep > count:
        raise InvalidInputError(f"keep must be in [0, {count}] (the session has {count} messages), not {keep}")
    return keep


def _rows(con, sql: str, lo: int, hi: int, *args) -> Iterator[list[tuple[int, bytes]]]:
    """(index, body) rows of [lo, hi) in chunks; `sql` selects index, body with the bounds
    as its last two parameters."""
    while lo < hi:
        top = min(hi, lo + CHUNK)
        yield con.execute(sql, (*args, lo, top)).fetchall()
        lo = top


_LIVE_ROWS = "SELECT key - ?, body FROM ms_messages WHERE key >= ? + ? AND key < ? + ? ORDER BY key"
_HISTORY_ROWS = ("SELECT idx, body FROM ms_history WHERE session_num = ? AND rewrite = ? "
                 "AND idx >= ? AND idx < ? ORDER BY idx")


def _live_chunks(con, num: int, lo: int, hi: int) -> Iterator[list[tuple[int, bytes]]]:
    base = message_key(num, 0)
    while lo < hi:
        top = min(hi, lo + CHUNK)
        yield con.execute(_LIVE_ROWS, (base, base, lo, base, top)).fetchall()
        lo = top


def _history_chunks(con, num: int, rewrite: int, lo: int, hi: int) -> Iterator[list[tuple[int, bytes]]]:
    return _rows(con, _HISTORY_ROWS, lo, hi, num, rewrite)


def _segments(rewrites: list[tuple[int, int, int]], g: int) -> list[tuple[int | None, int, int]]:
    """Where the messages of the transcript rewritten by rewrite g are now, in order:
    (rewrite or None for the current transcript, lo, hi). `rewrites` are (index, new, old)
    in index order. A later rewrite r holds [new_r, m) where m is the smallest new_count of
    the rewrites g..r-1 (the positions still current until r cut them)."""
    _index, new_g, old_g = rewrites[g]
    out = [(g, new_g, old_g)]
    low = new_g
    for r, new_r, _old_r in rewrites[g + 1:]:
        if new_r < low:
            out.append((r, new_r, low))
            low = new_r
    out.append((None, 0, low))
    out.reverse()
    return [s for s in out if s[2] > s[1]]


class RewritesMixin:
    """truncate_messages, pop_message, rewrites, transcript_before, purge_history of Store,
    and the superseded-receipt pass of verify."""

    # -- writes --------------------------------------------------------------------------------
    def truncate_messages(self, session_id: str, keep: int, *, reason: str | None = None) -> int:
        """Keep the first `keep` messages; move the rest to the session's history. Returns how
        many messages were moved (0, and nothing written, when keep is the message count).
        Atomic: the history rows, the rewrite row, the reset digest state, the superseded
        receipts and the "messages_truncated" event commit together or not at all (a job of
        the Store's group commit, docs/group-commit.md, like every other write).

        Runs: INSERT INTO ms_history SELECT ... FROM ms_messages WHERE key >= ? AND key < ?;
              DELETE FROM ms_messages WHERE key >= ? AND key < ?; INSERT INTO ms_rewrites ...;
              UPDATE ms_receipts SET superseded_by = ? WHERE session_num = ? AND message_count > ?;
              UPDATE ms_sessions ...; INSERT INTO ms_events ...  (plus O(keep) to rehash the prefix)"""
        check_id(session_id)
        if reason is not None:
            check_id(reason, "reason")
        return self._write(lambda con: self._truncate_locked(con, session_id, keep, reason)[0])

    def pop_message(self, session_id: str, *, reason: str | None = "pop_message") -> dict | None:
        """Remove the newest message and return it (None, nothing written, when the session is
        empty). The message moves to the history as a one-message truncation."""
        check_id(session_id)
        if reason is not None:
            check_id(reason, "reason")
        def pop(con):
            num, count, _state, _profile = self._session_row(con, session_id)
            if count == 0:
                return None
            (body,) = con.execute("SELECT body FROM ms_messages WHERE key = ?", (message_key(num, count - 1),)).fetchone()
            self._truncate_locked(con, session_id, count - 1, reason)
            return body

        body = self._write(pop)
        return None if body is None else decode_messages([body])[0]

    def _truncate_locked(self, con, session_id: str, keep, reason: str | None) -> tuple[int, int | None]:
        """The truncation inside an open transaction: (messages moved, rewrite number or None)."""
        num, count, state_bytes, profile = self._session_row(con, session_id)
        keep = _check_keep(keep, count)
        if keep == count:
            return 0, None
        at = now_ms()
        old = digest.TranscriptState.from_bytes(state_bytes)
        old_digest = old.digest()
        state = digest.TranscriptState.new(profile, strict=old.strict)  # keeps the session's decode mode
        for chunk in _live_chunks(con, num, 0, keep):
            state.absorb([body for _index, body in chunk])
        (rewrite,) = con.execute(
            "SELECT coalesce(max(rewrite) + 1, 0) FROM ms_rewrites WHERE session_num = ?", (num,)).fetchone()
        lo, hi = message_key(num, keep), message_key(num, count)
        (removed_bytes,) = con.execute(
            "SELECT coalesce(sum(length(body)), 0) FROM ms_messages WHERE key >= ? AND key < ?", (lo, hi)).fetchone()
        head_rev, head_count, head_profile = con.execute(
            "SELECT head_revision, head_message_count, head_profile FROM ms_sessions WHERE num = ?", (num,)).fetchone()
        moved_head = head_rev is not None and head_count is not None and head_count > keep
        con.execute(
            "INSERT INTO ms_rewrites (session_num, rewrite, at_ms, old_count, new_count, old_digest, profile, "
            "removed_bytes, reason, head_revision, head_message_count, head_profile) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (num, rewrite, at, count, keep, old_digest, profile, removed_bytes, reason,
             *((head_rev, head_count, head_profile) if moved_head else (None, None, None))),
        )
        con.execute(
            "INSERT INTO ms_history (session_num, rewrite, idx, body) "
            "SELECT ?, ?, key - ?, body FROM ms_messages WHERE key >= ? AND key < ? ORDER BY key",
            (num, rewrite, message_key(num, 0), lo, hi),
        )
        # Zeroed as it is deleted (secure_delete, engine/store.py): a later purge_history leaves
        # no copy of these messages in a free page of the file.
        con.execute("DELETE FROM ms_messages WHERE key >= ? AND key < ?", (lo, hi))
        con.execute(
            "UPDATE ms_receipts SET superseded_by = ? WHERE session_num = ? AND superseded_by IS NULL "
            "AND message_count > ?",
            (rewrite, num, keep),
        )
        superseded = con.changes()
        con.execute(
            "UPDATE ms_sessions SET message_count = ?, message_bytes = message_bytes - ?, sha256_state = ?, "
            "updated_at_ms = ? WHERE num = ?",
            (keep, removed_bytes, state.to_bytes(), at, num),
        )
        if moved_head:
            con.execute("UPDATE ms_sessions SET head_revision = NULL, head_message_count = NULL, head_profile = NULL "
                        "WHERE num = ?", (num,))
        detail = {"old_count": count, "message_count": keep, "removed": count - keep, "rewrite": rewrite,
                  "superseded_receipts": superseded}
        if reason is not None:
            detail["reason"] = reason
        self._log_event(con, "messages_truncated", session_id, detail, at)
        return count - keep, rewrite

    def purge_history(self, session_id: str, *, vacuum: bool = False) -> PurgeReport:
        """Delete every message the session's rewrites removed: a real deletion, for privacy.
        Receipts that covered them stay (run ids, digests, counts) but can no longer be
        verified; verify reports them as purged. The deleted rows are overwritten with zeros
        (the store's connections run with secure_delete on) and the WAL is checkpointed and
        truncated afterwards; `vacuum=True` also rebuilds the file (Store.vacuum) so no free page
        keeps content freed by a connection without secure_delete (another library, or an older
        mobstore). The rewrite rows stay as the
        record of what happened, stamped purged_at_ms; a "history_purged" event says what went.
        The deletion is one transaction; the WAL truncation and VACUUM follow it.

        Runs: DELETE FROM ms_history WHERE session_num = ?; UPDATE ms_rewrites SET purged_at_ms ...;
              PRAGMA wal_checkpoint(TRUNCATE); [VACUUM]"""
        check_id(session_id)
        _args.flag(vacuum, "vacuum")
        at = now_ms()
        with self.transaction() as con:
            num = self._session_row(con, session_id)[0]
            messages, size = con.execute(
                "SELECT count(*), coalesce(sum(length(body)), 0) FROM ms_history WHERE session_num = ?", (num,)
            ).fetchone()
            con.execute("DELETE FROM ms_history WHERE session_num = ?", (num,))
            con.execute("UPDATE ms_rewrites SET purged_at_ms = ? WHERE session_num = ? AND purged_at_ms IS NULL",
                        (at, num))
            rewrites = con.changes()
            (receipts,) = con.execute(
                "SELECT count(*) FROM ms_receipts WHERE session_num = ? AND superseded_by IS NOT NULL", (num,)
            ).fetchone()
            self._log_event(con, "history_purged", session_id, {
                "rewrites": rewrites, "messages": messages, "bytes": size, "receipts": receipts,
                "vacuum": vacuum}, at)
        with self._lock:
            con = self._db()
            try:
                if vacuum:
                    self.vacuum()  # engine/maintenance.py: VACUUM, then checkpoint and truncate the WAL
                truncated = self._path == ":memory:" or con.execute(
                    "PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
            except Exception as exc:  # apsw.BusyError and friends: the deletion itself is committed
                raise StoreError(f"history of {session_id!r} purged, but cleaning the file failed: {exc}") from None
        return PurgeReport(session_id, rewrites, messages, size, receipts, bool(truncated), vacuum)

    # -- reads ---------------------------------------------------------------------------------
    def rewrites(self, session_id: str) -> list[Rewrite]:
        """The session's rewrites, oldest first. SessionNotFoundError if unknown."""
        check_id(session_id)
        with self.reading() as con:
            num = self._session_row(con, session_id)[0]
            rows = con.execute(
                "SELECT rewrite, at_ms, old_count, new_count, old_digest, profile, removed_bytes, reason, purged_at_ms "
                "FROM ms_rewrites WHERE session_num = ? ORDER BY rewrite",
                (num,),
            ).fetchall()
        return [Rewrite(*row) for row in rows]

    def raw_transcript_before(self, session_id: str, rewrite: int) -> list[bytes]:
        """Stored bytes of the whole transcript as it was just before rewrite `rewrite`: what the
        receipts it superseded were made on. InvalidInputError for an unknown or purged rewrite."""
        check_id(session_id)
        with self.reading() as con:
            num = self._session_row(con, session_id)[0]
            table = _rewrite_table(con, num)
            _args.integer(rewrite, "rewrite", minimum=0)
            if rewrite >= len(table):
                raise InvalidInputError(f"rewrite must be an integer in [0, {len(table)}), not {rewrite!r}")
            if con.execute("SELECT purged_at_ms FROM ms_rewrites WHERE session_num = ? AND rewrite = ?",
                           (num, rewrite)).fetchone()[0] is not None:
                raise InvalidInputError(f"the history of rewrite {rewrite} of {session_id!r} was purged")
            out: list[bytes] = []
            for source, lo, hi in _segments(table, rewrite):
                chunks = _live_chunks(con, num, lo, hi) if source is None else _history_chunks(con, num, source, lo, hi)
                for chunk in chunks:
                    out.extend(body for _index, body in chunk)
            return out

    def transcript_before(self, session_id: str, rewrite: int) -> list[dict]:
        """The transcript as it was just before rewrite `rewrite`, as dicts."""
        return decode_messages(self.raw_transcript_before(session_id, rewrite))

    # -- verify --------------------------------------------------------------------------------
    def _verify_rewrites(self, con, num: int, report: VerifyReport) -> None:
        """verify()'s pass over a session's rewrites: rebuild each rewritten transcript from the
        current messages and the history, check its old_digest, the receipts it superseded and
        an imported head it superseded. Every stored message is hashed once: a rewritten
        transcript shares its prefix [0, new_count) with the next one, so the digest state at
        new_count is taken from that one's pass (rewrites are processed newest first)."""
        table = _rewrite_table(con, num)
        if not table:
            return
        sid = con.execute("SELECT id FROM ms_sessions WHERE num = ?", (num,)).fetchone()[0]
        purged = {r for (r,) in con.execute(
            "SELECT rewrite FROM ms_rewrites WHERE session_num = ? AND purged_at_ms IS NOT NULL", (num,))}
        checks: dict[int, list[tuple[int, str, str | None, str, str | None, int | None]]] = {g: [] for g in range(len(table))}
        for g, at_count, old_digest, profile, head_rev, head_count, head_profile in con.execute(
            "SELECT rewrite, old_count, old_digest, profile, head_revision, head_message_count, head_profile "
            "FROM ms_rewrites WHERE session_num = ? ORDER BY rewrite", (num,)
        ):
            if g in purged:
                continue  # nothing left to rebuild it from
            report.rewrites += 1
            checks[g].append((at_count, profile, old_digest, "rewrite", None, None))
            if head_rev is not None:
                report.heads += 1
                checks[g].append((head_count, head_profile, head_rev, "head", None, None))
        for run_id, sequence, expected, count, profile, g in con.execute(
            "SELECT run_id, sequence, conversation_digest, message_count, profile, superseded_by FROM ms_receipts "
            "WHERE session_num = ? AND superseded_by IS NOT NULL", (num,)
        ):
            report.receipts += 1
            if expected is None:
                report.receipts_without_digest += 1
            elif g in purged:
                report.receipts_purged += 1
            elif g not in checks:
                report.mismatches.append(Mismatch(sid, run_id, sequence, expected, None, "receipt",
                                                  f"superseded by rewrite {g}, which does not exist"))
            else:
                checks[g].append((count, profile, expected, "receipt", run_id, sequence))
        profiles = sorted({c[1] for cs in checks.values() for c in cs})
        _HistoryPass(con, num, sid, table, purged, checks, profiles, report).run()


def _rewrite_table(con, num: int) -> list[tuple[int, int, int]]:
    """(index, new_count, old_count) of the session's rewrites, numbered 0..n-1 without gaps
    (StoreError otherwise: the table was edited outside mobstore)."""
    rows = con.execute(
        "SELECT rewrite, new_count, old_count FROM ms_rewrites WHERE session_num = ? ORDER BY rewrite", (num,)
    ).fetchall()
    if any(row[0] != i for i, row in enumerate(rows)):
        raise StoreError(f"rewrites of session {num} are not numbered 0..{len(rows) - 1}")
    return rows


class _HistoryPass:
    """One streaming pass over a session's current prefix and history for _verify_rewrites."""

    def __init__(self, con, num, sid, table, purged, checks, profiles, report):
        self.con, self.num, self.sid, self.table = con, num, sid, table
        self.purged, self.checks, self.profiles, self.report = purged, checks, profiles, report
        # Transcript g+1 (None: the current one) must hand rewrite g its state at new_count(g).
        # A position p on transcript h at or below new_count(h) lies on transcript h+1: resolve
        # each request to the transcript that holds p in its own removed tail (or the current one).
        self.wanted: dict[int | None, set[int]] = {}
        self.source: dict[int, tuple[int | None, int]] = {}
        for g, new_g, _old in table:
            if g in purged:
                continue
            h, p = g + 1, new_g
            while h < len(table) and p <= table[h][1]:
                h += 1
            holder = None if h == len(table) else h
            self.source[g] = (holder, p)
            self.wanted.setdefault(holder, set()).add(p)
        self.snapshots: dict[tuple[int | None, int], dict | str] = {}
        self.judged: set[int] = set()  # id() of the checks already judged

    def _new_states(self) -> dict:
        return {p: digest.TranscriptState.new(p) for p in self.profiles}

    def _stream(self, holder: int | None, states: dict, start: int, stop: int, chunks, checks) -> str | None:
        """Absorb rows [start, stop) into states, snapshotting wanted positions and settling
        checks (sorted by position) on the way; returns why it broke, or None."""
        wanted = sorted(p for p in self.wanted.get(holder, ()) if start <= p <= stop)
        stops = sorted(set(wanted) | {c[0] for c in checks if start <= c[0] <= stop})
        self._settle(holder, states, start, wanted, checks)
        position = start
        for chunk in chunks:
            if any(index != position + i for i, (index, _b) in enumerate(chunk)) or not chunk:
                return f"message {position} of the {'current transcript' if holder is None else f'history of rewrite {holder}'} is missing"
            bodies = [body for _index, body in chunk]
            done = 0
            while done < len(bodies):
                target = min([position + len(bodies) - done] + [s for s in stops if s > position])
                try:
                    for state in states.values():
                        state.absorb(bodies[done:done + target - position])
                except MobstoreError as exc:
                    return f"messages {position}..{target - 1} no longer canonicalise: {exc}"
                done += target - position
                position = target
                self._settle(holder, states, position, wanted, checks)
        if position != stop:
            return f"message {position} of the history is missing"
        return None

    def _settle(self, holder, states, position, wanted, checks) -> None:
        if position in wanted:
            self.snapshots[(holder, position)] = {p: s.copy() for p, s in states.items()}
        for check in checks:
            if check[0] == position:
                self._judge(check, states[check[1]].digest())

    def _judge(self, check, actual: str | None, detail: str = "") -> None:
        self.judged.add(id(check))
        _at, _profile, expected, kind, run_id, sequence = check
        report = self.report
        if actual is not None and actual == expected:
            if kind == "receipt":
                report.receipts_superseded += 1
            elif kind == "head":
                report.heads_superseded += 1
            else:
                report.rewrites_ok += 1
            return
        report.mismatches.append(Mismatch(self.sid, run_id, sequence, expected, actual,
                                          "receipt" if kind == "receipt" else kind, detail))

    def run(self) -> None:
        con, num, table = self.con, self.num, self.table
        current = self.wanted.get(None)
        if current:
            top = max(current)
            broken = self._stream(None, self._new_states(), 0, top, _live_chunks(con, num, 0, top), [])
            if broken:
                self._fail_wanted(None, broken)
        for g in range(len(table) - 1, -1, -1):
            if g in self.purged:
                continue  # its receipts were counted as purged; its own digest and head go unchecked
            _index, new_g, old_g = table[g]
            own = sorted(self.checks[g], key=lambda c: c[0])
            inside = [c for c in own if new_g < c[0] <= old_g]
            for check in own:
                if check not in inside:
                    self._judge(check, None, f"superseded by rewrite {g}, but message_count {check[0]} is "
                                f"outside the messages it removed [{new_g + 1}, {old_g}]")
            base = self.snapshots.get(self.source[g])
            if not isinstance(base, dict):
                broken = base or "the kept prefix could not be rebuilt"
            else:
                states = {p: s.copy() for p, s in base.items()}
                broken = self._stream(g, states, new_g, old_g, _history_chunks(con, num, g, new_g, old_g), inside)
            if broken:
                self._fail_wanted(g, broken)
                for check in inside:
                    if id(check) not in self.judged:
                        self._judge(check, None, f"superseded by rewrite {g}: {broken}")

    def _fail_wanted(self, holder, why: str) -> None:
        for p in self.wanted.get(holder, ()):
            self.snapshots.setdefault((holder, p), why)
