"""Importing a meerkat realm (engine.meerkat reads it) into a Store (docs/meerkat.md).

Imports keep the evidence: every readable session is imported with its messages,
metadata, head and receipts even when a digest or token does not verify; the report
lists what did not verify, and the store's verify names it again (recomputed from the
transcript, or, for checks made against realm data the store does not keep, from the
ms_import_checks rows written here). `strict=True` keeps the older behaviour: a session
with any mismatch is not imported.

Receipts are held to the Store API's rules: a run id or input id the API would refuse,
or a sequence beyond 2^63-1, is reported as a problem and that receipt is not stored.

Each session commits in its own transaction, so an interrupted import leaves the target
consistent and a re-run completes it. Importing the same file again changes nothing: a
session already present with the same transcript is left alone (receipts, head and checks
are only added when missing); a stored transcript that is a strict prefix of the realm's
is extended; anything else is reported as a conflict and not touched.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from . import digest
from .errors import MobstoreError, StoreError
from .meerkat import RealmProblem, RealmSession, open_realm
from .receipts import BOUNDARIES, check_input_ids
from .sessions import _UPSERT_BINDING, check_id, encode_metadata, now_ms
from .store import Store

_MAX_SEQUENCE = 2**63 - 1


@dataclasses.dataclass
class ImportReport:
    source: str
    layout: str
    strict: bool = False
    sessions_seen: int = 0
    sessions_imported: int = 0
    sessions_extended: int = 0
    sessions_unchanged: int = 0
    sessions_unverified: int = 0   # imported although something of them did not verify
    messages_imported: int = 0
    receipts_imported: int = 0
    receipts_unrecomputable: int = 0
    heads_imported: int = 0
    problems: list[dict] = dataclasses.field(default_factory=list)      # not (fully) imported
    not_verified: list[dict] = dataclasses.field(default_factory=list)  # imported, did not verify
    unrecomputable: list[dict] = dataclasses.field(default_factory=list)
    unchecked: list[dict] = dataclasses.field(default_factory=list)

    @property
    def skipped(self) -> int:
        return len(self.problems)

    @property
    def ok(self) -> bool:
        """Everything was imported and every check that could be made verified
        (unrecomputable receipts and unchecked items are listed, not failures)."""
        return not self.problems and not self.not_verified

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["skipped"] = self.skipped
        out["ok"] = self.ok
        return out


def session_profile(rs: RealmSession) -> str:
    """The profile new receipts of an imported session use: its producer's newest receipt
    profile, else its head's, else mobstore's default f3."""
    if rs.receipts:
        return max(rs.receipts, key=lambda r: (r.message_count, r.sequence)).profile
    if rs.head is not None:
        return rs.head.profile
    return "f3"


def import_realm(store: Store, path: str, *, strict: bool = False,
                 progress: Callable[[int, int], None] | None = None) -> ImportReport:
    """Import every session of a meerkat realm file into `store`; see the module doc."""
    with open_realm(path) as realm:
        report = ImportReport(source=str(path), layout=realm.layout, strict=strict)
        total = realm.session_count()
        for done, item in enumerate(realm.sessions(), 1):
            report.sessions_seen += 1
            if isinstance(item, RealmProblem):
                report.problems.append(dataclasses.asdict(item))
            else:
                _import_one(store, item, report, str(path))
            if progress is not None:
                progress(done, total)
        for problem in realm.problems_outside_sessions():
            report.problems.append(dataclasses.asdict(problem))
    return report


def _import_one(store: Store, rs: RealmSession, report: ImportReport, source: str) -> None:
    mismatches = [f for f in rs.findings if f.status == "mismatch"]
    if report.strict and mismatches:
        first = mismatches[0]
        report.problems.append({"where": "session", "key": rs.session_id, "reason":
                                f"refused (--strict): {len(mismatches)} check(s) did not verify; first: "
                                f"{first.subject} {first.reason}"})
        return
    for problem in rs.problems:
        report.problems.append(dataclasses.asdict(problem))
    receipts, refused = [], []
    for r in rs.receipts:
        reason = _receipt_refusal(r)
        if reason:
            refused.append((r.run_id, r.sequence))
            report.problems.append({"where": "runtime_boundary_receipts",
                                    "key": f"{r.runtime_id}/{r.run_id!r}/{r.sequence}", "reason": reason})
        else:
            receipts.append(r)
    findings = [f for f in rs.findings if (f.run_id, f.sequence) not in refused or f.subject != "receipt"]
    try:
        _import_session(store, dataclasses.replace(rs, receipts=tuple(receipts)), findings, report, source)
    except StoreError:
        raise  # the target failed (I/O, disk full, locked): stop; a re-run completes it
    except MobstoreError as exc:
        report.problems.append({"where": "session", "key": rs.session_id, "reason": str(exc)})
        return
    bad = False
    for f in findings:
        entry = {"session_id": rs.session_id, **f.to_dict()}
        if f.status == "mismatch":
            report.not_verified.append(entry)
            bad = True
        elif f.status == "unrecomputable":
            report.unrecomputable.append(entry)
            report.receipts_unrecomputable += 1
        else:
            report.unchecked.append(entry)
    report.sessions_unverified += bad


def _receipt_refusal(r) -> str | None:
    """Why the Store API would refuse this receipt, or None."""
    try:
        check_id(r.run_id, "run_id")
        check_input_ids(list(r.contributing_input_ids))
    except MobstoreError as exc:
        return f"not stored: {exc}"
    if r.boundary not in BOUNDARIES:
        return f"not stored: unknown boundary {r.boundary!r}"
    if r.sequence > _MAX_SEQUENCE:
        return f"not stored: sequence {r.sequence} is beyond 2^63-1, the largest the store keeps"
    return None


def _import_session(store: Store, rs: RealmSession, findings, report: ImportReport, source: str) -> None:
    check_id(rs.session_id)
    body, facts = encode_metadata(rs.metadata)
    profile = session_profile(rs)
    messages = list(rs.messages)
    with store.transaction() as con:
        row = con.execute("SELECT num, message_count FROM ms_sessions WHERE id = ?", (rs.session_id,)).fetchone()
        at = now_ms()
        if row is None:
            con.execute(
                "INSERT INTO ms_sessions (id, created_at_ms, updated_at_ms, metadata_json, digest_profile, sha256_state) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (rs.session_id, rs.created_at_ms, rs.updated_at_ms, body, profile,
                 digest.TranscriptState.new(profile).to_bytes()),
            )
            con.execute(_UPSERT_BINDING, facts.row(rs.session_id))
            store._log_event(con, "session_created", rs.session_id,
                            {"imported_from": source, "message_count": len(messages)}, at)
            new = messages
            status = "imported"
        else:
            num, count = row
            stored = store.raw_messages(rs.session_id, 0, min(count, len(messages)))
            if count > len(messages) or stored != messages[:count]:
                raise MobstoreError(
                    f"session {rs.session_id!r} already exists with a different transcript; not touched"
                )
            new = messages[count:]
            status = "extended" if new else "unchanged"
        if new:
            store._append_locked(con, rs.session_id, new, rs.updated_at_ms)
            store._log_event(con, "messages_appended", rs.session_id,
                            {"appended": len(new), "message_count": len(messages), "imported_from": source}, at)
        (num,) = con.execute("SELECT num FROM ms_sessions WHERE id = ?", (rs.session_id,)).fetchone()
        receipts_added = 0
        for r in rs.receipts:
            existing = con.execute(
                "SELECT receipt_json FROM ms_receipts WHERE session_num = ? AND run_id = ? AND sequence = ?",
                (num, r.run_id, r.sequence),
            ).fetchone()
            if existing is not None:
                if bytes(existing[0]) != r.receipt_json:
                    report.problems.append({
                        "where": "runtime_boundary_receipts", "key": f"{r.runtime_id}/{r.run_id}/{r.sequence}",
                        "reason": "another receipt with this run and sequence is already stored; kept the stored one",
                    })
                continue
            con.execute(
                "INSERT INTO ms_receipts (session_num, run_id, sequence, boundary, conversation_digest, "
                "message_count, profile, contributing_input_ids, runtime_id, receipt_json, committed_at_ms) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (num, r.run_id, r.sequence, r.boundary, r.conversation_digest, r.message_count, r.profile,
                 digest.dumps_value(list(r.contributing_input_ids)), r.runtime_id, r.receipt_json, at),
            )
            receipts_added += 1
            store._log_event(con, "receipt_committed", rs.session_id,
                            {"run_id": r.run_id, "sequence": r.sequence, "message_count": r.message_count,
                             "imported_from": source}, at)
        head_added = 0
        if rs.head is not None:
            cur = con.execute(
                "SELECT head_revision, head_message_count, head_profile FROM ms_sessions WHERE num = ?", (num,)
            ).fetchone()
            want = (rs.head.revision, rs.head.message_count, rs.head.profile)
            if tuple(cur) != want:
                con.execute(
                    "UPDATE ms_sessions SET head_revision = ?, head_message_count = ?, head_profile = ? WHERE num = ?",
                    (*want, num),
                )
                head_added = 1
        checks_added = _record_checks(con, num, findings, source)
        if status == "unchanged" and (receipts_added or head_added or checks_added):
            status = "extended"
    report.messages_imported += len(new)
    report.receipts_imported += receipts_added
    report.heads_imported += head_added
    if status == "imported":
        report.sessions_imported += 1
    elif status == "extended":
        report.sessions_extended += 1
    else:
        report.sessions_unchanged += 1


def _record_checks(con, num: int, findings, source: str) -> int:
    """ms_import_checks rows for the findings verify cannot repeat from the store's own
    data; an identical row already there is not added again."""
    added = 0
    for f in findings:
        if f.recheckable:
            continue
        values = (num, f.subject, f.run_id, f.sequence, f.status, f.expected, f.actual, f.reason)
        exists = con.execute(
            "SELECT 1 FROM ms_import_checks WHERE session_num = ? AND subject = ? AND run_id IS ? AND sequence IS ? "
            "AND status = ? AND expected IS ? AND actual IS ? AND reason = ?", values,
        ).fetchone()
        if exists is None:
            con.execute(
                "INSERT INTO ms_import_checks (session_num, subject, run_id, sequence, status, expected, actual, "
                "reason, source) VALUES (?,?,?,?,?,?,?,?,?)", (*values, source),
            )
            added += 1
    return added
