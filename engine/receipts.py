"""Runtime receipts: apply_runtime_turn in one transaction, O(delta) transcript digests,
and verify (recompute every receipt's and head's digest in one streaming pass).

Receipt shape and sequence rule: docs/receipts.md (meerkat-core/src/lifecycle/run_receipt.rs:56-71@c7b8518b4).
The digest state (ms_sessions.sha256_state) is the SHA-256 midstate of "[" + the
canonical messages so far; it advances in the same transaction as every append, so a
receipt's digest costs O(turn size), also in a new process right after opening.
The one non-append change to a transcript, a truncation (engine/rewrites.py), resets
sha256_state in its own transaction and marks the receipts it supersedes (superseded_by);
verify checks those against the history, in RewritesMixin._verify_rewrites.
"""

from __future__ import annotations

import dataclasses
import operator
import os
import queue
import threading
from typing import Callable, Iterable, Iterator, TypeVar

import orjson

from . import _args, digest
from .errors import DigestMismatchError, InvalidInputError, MobstoreError
from .sessions import check_id, message_key, normalise_messages, now_ms

BOUNDARIES = ("immediate", "run_start", "run_checkpoint")
VERIFY_CHUNK = 2048  # messages read per range query during verify / prefix recomputes


@dataclasses.dataclass(frozen=True)
class RunBoundaryReceipt:
    """Proof that a run's turn was applied (meerkat's RunBoundaryReceipt)."""

    run_id: str
    boundary: str
    contributing_input_ids: tuple[str, ...]
    conversation_digest: str | None
    message_count: int
    sequence: int
    # Which session the receipt belongs to (not part of meerkat's receipt JSON). Set on
    # receipts read back from the store, so receipts() without a session stays useful.
    session_id: str | None = dataclasses.field(default=None, compare=False)

    def to_dict(self) -> dict:
        """Meerkat's key order; conversation_digest omitted when None."""
        out: dict = {
            "run_id": self.run_id,
            "boundary": self.boundary,
            "contributing_input_ids": list(self.contributing_input_ids),
        }
        if self.conversation_digest is not None:
            out["conversation_digest"] = self.conversation_digest
        out["message_count"] = self.message_count
        out["sequence"] = self.sequence
        return out

    def to_json(self) -> bytes:
        """Meerkat's receipt JSON: compact, serde_json escapes, key order of docs/receipts.md.
        (Strings and integers only: orjson writes them exactly as serde_json does,
        tests/test_receipts.py checks it against the serde-rules writer.)"""
        return orjson.dumps(self.to_dict())


@dataclasses.dataclass(frozen=True)
class Mismatch:
    """One digest that did not verify. kind: "receipt", "head" (an imported meerkat head)
    or "state" (the stored streaming digest state / message rows of the session)."""

    session_id: str
    run_id: str | None
    sequence: int | None
    expected: str | None
    actual: str | None
    kind: str = "receipt"
    detail: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class VerifyReport:
    sessions: int = 0
    receipts: int = 0
    receipts_ok: int = 0
    receipts_without_digest: int = 0
    heads: int = 0
    heads_ok: int = 0
    # Receipts (and imported heads) made on a transcript that a rewrite later truncated, verified
    # against that transcript rebuilt from the history (engine/rewrites.py); counted apart from
    # receipts_ok. Purged: their history was deleted on purpose (purge_history), so unchecked.
    receipts_superseded: int = 0
    receipts_purged: int = 0
    heads_superseded: int = 0
    rewrites: int = 0           # rewrites (not purged) whose recorded old digest is rebuilt from the history
    rewrites_ok: int = 0
    mismatches: list[Mismatch] = dataclasses.field(default_factory=list)
    # Imported meerkat receipts whose inputs a meerkat migration rewrote: neither ok nor
    # mismatches (docs/meerkat.md); and checks an import could not make.
    receipts_unrecomputable: int = 0
    unrecomputable: list[dict] = dataclasses.field(default_factory=list)
    unchecked: list[dict] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def raise_for_mismatch(self) -> "VerifyReport":
        """The report itself when everything verified, else DigestMismatchError naming the
        first mismatch and the count (for callers that want verify to fail loudly)."""
        if self.mismatches:
            m = self.mismatches[0]
            where = f"run {m.run_id} sequence {m.sequence}" if m.run_id is not None else m.kind
            raise DigestMismatchError(
                f"{len(self.mismatches)} digest mismatch(es); first: session {m.session_id!r} {where}: "
                f"expected {m.expected}, actual {m.actual}" + (f" ({m.detail})" if m.detail else "")
            )
        return self

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["mismatches"] = [m.to_dict() for m in self.mismatches]
        out["ok"] = self.ok
        return out


def check_boundary(boundary: str) -> str:
    if boundary not in BOUNDARIES:
        raise InvalidInputError(f"boundary must be one of {', '.join(BOUNDARIES)}, not {boundary!r}")
    return boundary


def check_input_ids(ids) -> tuple[str, ...]:
    if not isinstance(ids, (list, tuple)):
        raise InvalidInputError(f"contributing_input_ids must be a list of strings, not {type(ids).__name__}")
    out = tuple(ids)
    for i, item in enumerate(out):
        check_id(item, f"contributing_input_ids[{i}]")
    return out


def check_profile(profile: str) -> str:
    if not isinstance(profile, str) or profile not in digest.PROFILES:
        raise InvalidInputError(f"profile must be one of {', '.join(digest.PROFILES)}, not {profile!r}")
    return profile


@dataclasses.dataclass(frozen=True)
class Turn:
    """One turn for Store.apply_runtime_turns: the arguments of apply_runtime_turn."""

    session_id: str
    run_id: str
    messages: Iterable[dict | bytes]
    boundary: str = "run_start"
    contributing_input_ids: Iterable[str] = ()

    @classmethod
    def of(cls, item) -> "Turn":
        if isinstance(item, Turn):
            return item
        if isinstance(item, tuple) and 3 <= len(item) <= 5:
            return cls(*item)
        raise InvalidInputError(
            f"a turn must be a Turn or a (session_id, run_id, messages) tuple, not {type(item).__name__}")

    def _prepared(self) -> "_PreparedTurn":
        """Every argument checked and every message encoded, before any lock is taken."""
        check_id(self.session_id)
        check_id(self.run_id, "run_id")
        check_boundary(self.boundary)
        input_ids = check_input_ids(self.contributing_input_ids)
        return _PreparedTurn(self.session_id, self.run_id, normalise_messages(self.messages), self.boundary, input_ids)


@dataclasses.dataclass(frozen=True)
class _PreparedTurn:
    session_id: str
    run_id: str
    bodies: list[bytes]
    boundary: str
    input_ids: tuple[str, ...]


def _indexed(exc: MobstoreError, i: int) -> MobstoreError:
    """The same error class, its message prefixed with the turn's index."""
    try:
        return type(exc)(f"turns[{i}]: {exc}")
    except TypeError:  # pragma: no cover - every package error takes one message
        return exc


class ReceiptsMixin:
    """apply_runtime_turn, receipts, transcript_digest and verify of Store."""

    def apply_runtime_turn(
        self,
        session_id: str,
        run_id: str,
        messages: Iterable[dict | bytes],
        *,
        boundary: str = "run_start",
        contributing_input_ids: Iterable[str] = (),
    ) -> RunBoundaryReceipt:
        """Append a turn's messages and commit its receipt in ONE transaction: the messages,
        the advanced digest state, the receipt (digest of the whole transcript after the
        apply, sequence = max+1 per (session, run) from 0) and one receipt_committed event
        (detail: run_id, sequence, message_count, appended). All or nothing; returns once
        the commit is durable. Turns of other threads waiting at the same moment share the
        commit (group commit, engine/groupcommit.py), each in its own savepoint.

        Runs: BEGIN IMMEDIATE; INSERT INTO ms_messages ...; UPDATE ms_sessions ...;
              SELECT max(sequence) FROM ms_receipts WHERE session_num = ? AND run_id = ?;
              INSERT INTO ms_receipts ...; INSERT INTO ms_events ...; COMMIT
        """
        turn = Turn(session_id, run_id, messages, boundary, contributing_input_ids)._prepared()
        return self._write(lambda con: self._apply_turn_locked(con, turn), keeps_heads=True, turn=turn)

    def apply_runtime_turns(self, turns: Iterable["Turn"], *, return_exceptions: bool = False) -> list:
        """Apply several turns (each a `Turn`, or a (session_id, run_id, messages) tuple) in
        ONE transaction and one fsync, in order; a later turn of the same session sees the
        earlier ones (its digest and sequence follow them). Returns the receipts in order.

        All or nothing by default: if any turn is invalid, nothing is written and the error
        names it ("turns[i]: ..."). With return_exceptions=True a failing turn's exception is
        returned in its place (as asyncio.gather does) and nothing of it is written, while the
        others commit. The rows of all the turns go in with one statement per table
        (engine/bulk_turns.py)."""
        if isinstance(turns, (str, bytes, dict, Turn)):
            raise InvalidInputError("turns must be a list of Turn values")
        try:
            items = list(turns)
        except TypeError:
            raise InvalidInputError(f"turns must be a list of Turn values, not {type(turns).__name__}") from None
        prepared: list = []
        for i, item in enumerate(items):
            try:
                prepared.append(Turn.of(item)._prepared())
            except MobstoreError as exc:
                if not return_exceptions:
                    raise _indexed(exc, i) from None
                prepared.append(exc)
        from .bulk_turns import apply_turns  # (it builds on this module)

        live = [t for t in prepared if not isinstance(t, BaseException)]
        if not live:
            return prepared
        # One job: the turns' rows with one statement per table (engine/bulk_turns.py).
        if not return_exceptions:
            def apply_all(con):
                out = []
                for i, (error, value) in enumerate(apply_turns(self, con, live, now_ms())):
                    if error is not None:
                        raise _indexed(error, i) if isinstance(error, MobstoreError) else error
                    out.append(value[0])
                return out
            return self._write(apply_all, keeps_heads=True)
        outcomes = iter(self._write(lambda con: apply_turns(self, con, live, now_ms()), keeps_heads=True))
        out = []
        for turn in prepared:
            if isinstance(turn, BaseException):
                out.append(turn)
                continue
            error, value = next(outcomes)
            if error is not None and not isinstance(error, MobstoreError):
                raise error
            out.append(error if error is not None else value[0])
        return out

    def _apply_turn_locked(self, con, turn: "_PreparedTurn", at: int | None = None) -> RunBoundaryReceipt:
        """apply_runtime_turn's writes inside an open transaction (validated input)."""
        at = now_ms() if at is None else at
        num, count, state = self._append_locked(con, turn.session_id, turn.bodies, at)
        key = (num, turn.run_id)
        last = self._heads.sequences.get(key)
        if last is None:
            (last,) = con.execute(
                "SELECT max(sequence) FROM ms_receipts WHERE session_num = ? AND run_id = ?", key
            ).fetchone()
        receipt = RunBoundaryReceipt(
            session_id=turn.session_id,
            run_id=turn.run_id,
            boundary=turn.boundary,
            contributing_input_ids=turn.input_ids,
            conversation_digest=state.digest(),
            message_count=count,
            sequence=0 if last is None else last + 1,
        )
        con.execute(
            "INSERT INTO ms_receipts (session_num, run_id, sequence, boundary, conversation_digest, "
            "message_count, profile, contributing_input_ids, committed_at_ms) VALUES (?,?,?,?,?,?,?,?,?)",
            (num, turn.run_id, receipt.sequence, turn.boundary, receipt.conversation_digest, count, state.profile,
             orjson.dumps(turn.input_ids), at),
        )
        # One event for the turn (its messages and its receipt): one row less per turn.
        self._log_event(
            con, "receipt_committed", turn.session_id,
            {"run_id": turn.run_id, "sequence": receipt.sequence, "message_count": count,
             "appended": len(turn.bodies)}, at,
        )
        self._heads.put_sequence(key, receipt.sequence)
        return receipt

    def receipts(self, session_id: str | None = None, *, run_id: str | None = None) -> list[RunBoundaryReceipt]:
        """Receipts, ordered by (session, run, sequence): of one session and/or one run, or
        with no argument every receipt in the store (each carries its session_id; for very
        many, iter_receipts() streams them in pages). With a session this is a primary-key
        range; without one the receipts table is scanned.

        Runs: SELECT receipt columns FROM ms_receipts JOIN ms_sessions WHERE ... ORDER BY ..."""
        sql = (
            "SELECT r.run_id, r.boundary, r.contributing_input_ids, r.conversation_digest, r.message_count, r.sequence, "
            "s.id FROM ms_receipts r JOIN ms_sessions s ON s.num = r.session_num WHERE 1"
        )
        args: list = []
        if session_id is not None:
            check_id(session_id)
            sql += " AND s.id = ?"
            args.append(session_id)
        if run_id is not None:
            check_id(run_id, "run_id")
            sql += " AND r.run_id = ?"
            args.append(run_id)
        sql += " ORDER BY s.num, r.run_id, r.sequence"
        with self.reading() as con:
            if session_id is not None:
                self._session_row(con, session_id)
            rows = con.execute(sql, args).fetchall()
        return [_receipt_from_row(row) for row in rows]

    def iter_receipts(self, *, page_size: int = 1024) -> Iterator[RunBoundaryReceipt]:
        """Every receipt of the store in (session, run, sequence) order, read in pages (keyset
        paging on the primary key: memory stays bounded, each page is one snapshot).

        Runs: SELECT ... FROM ms_receipts WHERE (session_num, run_id, sequence) > (?, ?, ?) LIMIT ?"""
        page_size = _args.integer(page_size, "page_size", minimum=1, maximum=1 << 20)
        return self._receipt_pages(page_size)

    def _receipt_pages(self, page_size: int) -> Iterator[RunBoundaryReceipt]:
        cursor: tuple = (-1, "", -1)
        while True:
            with self.reading() as con:
                rows = con.execute(
                    "SELECT r.run_id, r.boundary, r.contributing_input_ids, r.conversation_digest, r.message_count, "
                    "r.sequence, s.id, r.session_num FROM ms_receipts r JOIN ms_sessions s ON s.num = r.session_num "
                    "WHERE (r.session_num, r.run_id, r.sequence) > (?, ?, ?) "
                    "ORDER BY r.session_num, r.run_id, r.sequence LIMIT ?",
                    (*cursor, page_size),
                ).fetchall()
            for row in rows:
                yield _receipt_from_row(row[:7])
            if len(rows) < page_size:
                return
            last = rows[-1]
            cursor = (last[7], last[0], last[5])

    def transcript_digest(self, session_id: str, *, upto: int | None = None, profile: str | None = None) -> str:
        """Digest of the first `upto` messages (all by default) under `profile` (the session's
        profile by default, "f3" for sessions created by mobstore). The whole transcript in the
        session's profile costs O(1): the stored state is finalised. A prefix comes from a stored
        receipt with that message_count and profile when there is one, else it is recomputed."""
        check_id(session_id)
        with self.reading() as con:
            num, count, state_bytes, session_profile = self._session_row(con, session_id)
            profile = session_profile if profile is None else check_profile(profile)
            if upto is None:
                upto = count
            if not isinstance(upto, int) or isinstance(upto, bool) or not 0 <= upto <= count:
                raise InvalidInputError(f"upto must be an integer in [0, {count}], not {upto!r}")
            if upto == count and profile == session_profile:
                return digest.TranscriptState.from_bytes(state_bytes).digest()
            row = con.execute(
                "SELECT conversation_digest FROM ms_receipts WHERE session_num = ? AND message_count = ? "
                "AND profile = ? AND conversation_digest IS NOT NULL AND runtime_id IS NULL "
                "AND superseded_by IS NULL LIMIT 1",
                (num, upto, profile),
            ).fetchone()
            if row is not None:
                return row[0]
            state = digest.TranscriptState.new(profile)
            for chunk in _message_chunks(con, num, 0, upto):
                state.absorb([body for _index, body in chunk])
            return state.digest()

    def verify(self, session_id: str | None = None, *, progress: Callable[[int, int], None] | None = None) -> VerifyReport:
        """Recompute, in one streaming pass per session, the digest at every receipt's
        message_count, at an imported meerkat head, and at the current head (the stored
        digest state), each under its recorded profile. Returns a report listing every
        mismatch; never raises for a mismatch. `progress(done, total)` after each session."""
        report = VerifyReport()
        with self.reading() as con:
            if session_id is not None:
                check_id(session_id)
                self._session_row(con, session_id)
                nums = [row[0] for row in con.execute("SELECT num FROM ms_sessions WHERE id = ?", (session_id,))]
            else:
                nums = [row[0] for row in con.execute("SELECT num FROM ms_sessions ORDER BY num")]
        total = len(nums)
        for done, num in enumerate(nums, 1):
            with self.reading() as con:
                _verify_session(con, num, report)
                self._verify_rewrites(con, num, report)
            if progress is not None:
                progress(done, total)
        return report


def _receipt_from_row(row) -> RunBoundaryReceipt:
    run_id, boundary, input_ids, conversation_digest, message_count, sequence, session_id = row
    return RunBoundaryReceipt(
        session_id=session_id,
        run_id=run_id,
        boundary=boundary,
        contributing_input_ids=tuple(orjson.loads(input_ids)),
        conversation_digest=conversation_digest,
        message_count=message_count,
        sequence=sequence,
    )


def _message_chunks(con, num: int, start: int, stop: int) -> Iterator[list[tuple[int, bytes]]]:
    """(index, body) rows of messages [start, stop) in chunks, one rowid range query each."""
    lo = start
    while lo < stop:
        hi = min(stop, lo + VERIFY_CHUNK)
        rows = con.execute(
            "SELECT key, body FROM ms_messages WHERE key >= ? AND key < ? ORDER BY key",
            (message_key(num, lo), message_key(num, hi)),
        ).fetchall()
        yield [(key & 0xFFFFFFFF, body) for key, body in rows]
        lo = hi


def _body_chunks(con, num: int, start: int, stop: int) -> Iterator[tuple[list[bytes], bool]]:
    """(bodies, whole) of messages [start, stop) in chunks, one rowid range query each, no
    Python work per row: a chunk with as many rows as its range is complete (keys are
    unique); otherwise `bodies` stops before the first missing index and whole is False."""
    lo = start
    while lo < stop:
        hi = min(stop, lo + VERIFY_CHUNK)
        args = (message_key(num, lo), message_key(num, hi))
        bodies = [row[0] for row in con.execute(
            "SELECT body FROM ms_messages WHERE key >= ? AND key < ? ORDER BY key", args)]
        if len(bodies) != hi - lo:
            keys = [row[0] & 0xFFFFFFFF for row in con.execute(
                "SELECT key FROM ms_messages WHERE key >= ? AND key < ? ORDER BY key", args)]
            gap = next((i for i, index in enumerate(keys) if index != lo + i), len(keys))
            yield bodies[:gap], False
            return
        yield bodies, True
        lo = hi


_T = TypeVar("_T")
_END = object()
# A reader thread helps only when another CPU can run it (and the digest is native: the
# Python path holds the GIL while it hashes).
_SPARE_CPU = len(os.sched_getaffinity(0)) > 1 if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1) > 1


def _read_ahead(chunks: Iterator[_T], depth: int = 2) -> Iterator[_T]:
    """The items of `chunks`, produced by a reader thread up to `depth` items ahead: SQLite's
    reads of the next chunk (apsw releases the GIL while SQLite works) overlap the native
    digest of this one (cffi releases it during the C call). The caller must not use the
    connection until this generator is closed; closing it (or leaving the loop) stops and
    joins the reader. An error of the reader is raised here, as it was raised there."""
    ready: queue.Queue = queue.Queue(depth)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for chunk in chunks:
                if not put((chunk, None)):
                    return
            put((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put((_END, exc))

    reader = threading.Thread(target=produce, name="mobstore-verify-read", daemon=True)
    reader.start()
    try:
        while True:
            item, exc = ready.get()
            if exc is not None:
                raise exc
            if item is _END:
                return
            yield item
    finally:
        stop.set()
        reader.join()


# A digest to check: (at, rank, run_id, sequence, profile, expected). at = the message count
# it covers; rank orders the kinds at one count as the report lists them (receipts by run id and
# sequence, then an imported head, then the stored state).
_RECEIPT, _HEAD, _STATE = 0, 1, 2
_KIND = ("receipt", "head", "state")


def _verify_session(con, num: int, report: VerifyReport) -> None:
    sid, count, state_bytes, session_profile, head_rev, head_count, head_profile = con.execute(
        "SELECT id, message_count, sha256_state, digest_profile, head_revision, head_message_count, head_profile "
        "FROM ms_sessions WHERE num = ?",
        (num,),
    ).fetchone()
    report.sessions += 1
    settled_at_import = _imported_checks(con, num, sid, report)
    # Unordered (the key order is the primary key's, not the report's): sorting here costs a
    # temporary b-tree, and only the checks that fail need the report's order.
    rows = con.execute(
        "SELECT message_count, 0, run_id, sequence, profile, conversation_digest FROM ms_receipts "
        "WHERE session_num = ? AND superseded_by IS NULL",
        (num,),
    ).fetchall()
    report.receipts += len(rows)
    if settled_at_import:
        rows = [r for r in rows if (r[2], r[3]) not in settled_at_import]
    without = sum(1 for r in rows if r[5] is None)
    if without:
        report.receipts_without_digest += without
        rows = [r for r in rows if r[5] is not None]
    checks = rows
    if head_rev is not None:
        report.heads += 1
        checks.append((head_count, _HEAD, None, None, head_profile, head_rev))
    report.heads += 1
    try:
        stored_head = digest.TranscriptState.from_bytes(state_bytes)
        checks.append((count, _STATE, None, None, session_profile, stored_head.digest()))
        if stored_head.count != count:
            report.mismatches.append(Mismatch(
                sid, None, None, None, None, "state",
                f"digest state covers {stored_head.count} messages, the session row says {count}"))
    except MobstoreError as exc:
        report.mismatches.append(Mismatch(sid, None, None, None, None, "state", f"unreadable digest state: {exc}"))

    def fail(check: tuple, actual: str | None, detail: str = "") -> None:
        report.mismatches.append(Mismatch(sid, check[2], check[3], check[5], actual, _KIND[check[1]], detail))

    # One pass over the messages, one walker per profile: each chunk is one native call that
    # returns the digest at every checkpoint inside it (digest.TranscriptCheckpoints).
    wanted: dict[str, set[int]] = {}
    for at, _rank, _run, _seq, profile, _exp in checks:
        ats = wanted.get(profile)
        if ats is None:
            ats = wanted[profile] = set()
        ats.add(at)
    walkers = {p: digest.TranscriptCheckpoints(p, [a for a in ats if a <= count]) for p, ats in wanted.items()}
    position = 0
    broken: str | None = None
    chunks = _body_chunks(con, num, 0, count)
    if count > VERIFY_CHUNK and _SPARE_CPU and digest.runs_native():
        chunks = _read_ahead(chunks)
    try:
        for bodies, whole in chunks:
            for walker in walkers.values():
                try:
                    walker.feed(bodies)
                except MobstoreError as exc:
                    broken = f"messages from {walker.count} on no longer canonicalise: {exc}"
                    break
            if broken is not None:
                break
            position += len(bodies)
            if not whole:
                broken = f"message {position} is missing"
                break
    finally:
        chunks.close()  # stops the reader thread before the connection is used again
    if broken is None and position != count:
        broken = f"message {position} is missing"
    # Compare in bulk; what fails is reported in the report's order (by count, then kind, run
    # id and sequence), as is what is left (checks past a break or beyond the transcript).
    bad: list[tuple] = []
    leftover: list[tuple] = []
    ok_receipts = ok_heads = 0
    for profile, walker in walkers.items():
        got = walker.digests.get
        mine = [c for c in checks if c[4] == profile] if len(walkers) > 1 else checks
        for c in mine:
            actual = got(c[0])
            if actual == c[5]:
                if c[1] == _RECEIPT:
                    ok_receipts += 1
                else:
                    ok_heads += 1
            elif actual is None:
                leftover.append(c)
            else:
                bad.append((c, actual))
    report.receipts_ok += ok_receipts
    report.heads_ok += ok_heads
    order = operator.itemgetter(0, 1, 2, 3)
    bad.sort(key=lambda pair: order(pair[0]))
    for check, actual in bad:
        fail(check, actual)
    if broken is None:
        (extra,) = con.execute(
            "SELECT count(*) FROM ms_messages WHERE key >= ? AND key < ?",
            (message_key(num, count), message_key(num + 1, 0)),
        ).fetchone()
        if extra:
            broken = f"{extra} message rows beyond message_count {count}"
            report.mismatches.append(Mismatch(sid, None, None, None, None, "state", broken))
    leftover.sort(key=order)
    for check in leftover:
        if check[0] > count:
            fail(check, None, f"message_count {check[0]} is beyond the transcript ({count} messages)")
        else:
            fail(check, None, broken or "")


def _imported_checks(con, num: int, sid: str, report: VerifyReport) -> set[tuple[str, int]]:
    """Report what a meerkat import checked against realm data the store does not keep
    (ms_import_checks, written by engine/importer.py): a mismatch there is a Mismatch of
    its subject ("receipt", "head_token", "metadata", "row_prefix"); an unrecomputable
    receipt is counted apart; an unchecked item is listed. Returns the (run_id, sequence)
    of receipts settled this way, which the transcript cannot recompute."""
    settled: set[tuple[str, int]] = set()
    for subject, run_id, sequence, status, expected, actual, reason, source in con.execute(
        "SELECT subject, run_id, sequence, status, expected, actual, reason, source FROM ms_import_checks "
        "WHERE session_num = ? ORDER BY check_num",
        (num,),
    ):
        if subject == "receipt" and status in ("mismatch", "unrecomputable"):
            settled.add((run_id, sequence))
        if status == "mismatch":
            report.mismatches.append(Mismatch(sid, run_id, sequence, expected, actual, subject,
                                              f"{reason} (checked at import of {source})"))
        else:
            entry = {"session_id": sid, "subject": subject, "run_id": run_id, "sequence": sequence,
                     "status": status, "expected": expected, "actual": actual, "reason": reason, "source": source}
            if status == "unrecomputable":
                report.receipts_unrecomputable += 1
                report.unrecomputable.append(entry)
            else:
                report.unchecked.append(entry)
    return settled
