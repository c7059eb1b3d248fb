"""Read-only commands over one store: verify, members, reconcile, stats, sessions, messages,
mobs and sql."""

from __future__ import annotations

import datetime
import json
import sys

import click

from .. import digest
from ._common import (
    EXIT_FOUND,
    EXIT_OK,
    _db_bytes,
    _emit_json,
    _emit_table,
    _errors,
    _Fail,
    _open_existing,
    _progress,
    _check_regular,
    human_bytes,
    note,
    output_options,
)
from .app import cli


@cli.command()
@click.argument("db_path", metavar="DB", type=str)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(db_path: str, as_json: bool) -> None:
    """Recompute every receipt's and head's digest. Exit 0 all verify, 1 any mismatch.

    Imported meerkat receipts that a meerkat migration made unrecomputable are listed and
    counted apart (receipts_unrecomputable); they do not change the exit code (docs/meerkat.md)."""
    with _errors():
        with _open_existing(db_path) as store, _progress("verifying", not as_json) as progress:
            report = store.verify(progress=progress)
    if as_json:
        _emit_json(report.to_dict())
    else:
        click.echo(f"{report.sessions} sessions, {report.receipts_ok}/{report.receipts} receipts ok, "
                   f"{report.heads_ok}/{report.heads} heads ok"
                   + (f", {report.receipts_unrecomputable} receipts unrecomputable (listed below; not a mismatch)"
                      if report.receipts_unrecomputable else ""))
        if report.rewrites or report.receipts_purged:
            click.echo(f"{report.receipts_superseded} superseded receipts and {report.heads_superseded} heads ok "
                       f"against the history of {report.rewrites_ok}/{report.rewrites} rewrites"
                       + (f"; {report.receipts_purged} receipts unverifiable (history purged)"
                          if report.receipts_purged else ""))
        for m in report.mismatches:
            where = f"run {m.run_id} seq {m.sequence}" if m.run_id is not None else m.kind
            click.echo(f"MISMATCH session {m.session_id} {where}: expected {m.expected} actual {m.actual}"
                       + (f" ({m.detail})" if m.detail else ""))
        for u in report.unrecomputable + report.unchecked:
            where = f"run {u['run_id']} seq {u['sequence']}" if u["run_id"] is not None else u["subject"]
            click.echo(f"{u['status'].upper()} session {u['session_id']} {where}: {u['reason']}")
    sys.exit(EXIT_OK if report.ok else EXIT_FOUND)


@cli.command()
@click.argument("db_path", metavar="DB", type=str)
@click.argument("mob_id")
@output_options()
def members(db_path: str, mob_id: str, fmt: str | None) -> None:
    """List the sessions that validly belong to MOB_ID (docs/membership.md has the rule)."""
    with _errors(), _open_existing(db_path) as store:
        found = store.mob_members(mob_id)
    _emit_table(("session_id", "profile", "meerkat_id"), found, fmt,
                {"mob_id": mob_id, "members": [m._asdict() for m in found]} if fmt == "json" else None)
    if fmt is None:
        note(f"{len(found):,} members of {mob_id}" + ("" if found else
             " (`mobstore mobs DB` lists the mob ids this file knows)"))


def _read_roster(path: str) -> list[tuple[str, str]]:
    """A JSON list of [profile, meerkat_id] pairs, or lines `profile/meerkat_id`."""
    _check_regular(path, "roster")
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Fail(f"roster {path} is not UTF-8 text") from None
    if text.lstrip().startswith("["):
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _Fail(f"roster {path} is not valid JSON: {exc}") from None
        if not isinstance(doc, list) or not all(
            isinstance(e, list) and len(e) == 2 and all(isinstance(x, str) for x in e) for e in doc
        ):
            raise _Fail(f"roster {path} must be a JSON list of [profile, meerkat_id] string pairs")
        return [(p, m) for p, m in doc]
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split("/")
        if len(parts) != 2 or not all(parts):
            raise _Fail(f"roster {path}:{n}: expected profile/meerkat_id, got {line!r}")
        out.append((parts[0], parts[1]))
    return out


@cli.command()
@click.argument("db_path", metavar="DB", type=str)
@click.argument("mob_id")
@click.option("--roster", type=str, help="Expected members: JSON [[profile, meerkat_id], ...] or lines profile/meerkat_id.")
@click.option("--accept-newer", is_flag=True, help="Also accept realm mob.<M> and the typed mob_member_binding.")
@click.option("--json", "as_json", is_flag=True, help="Print the reconciliation as JSON.")
def reconcile(db_path: str, mob_id: str, roster: str | None, accept_newer: bool, as_json: bool) -> None:
    """Members, broken claims, duplicates and the roster diff of MOB_ID. Exit 1 unless clean."""
    with _errors():
        wanted = _read_roster(roster) if roster else None
        with _open_existing(db_path) as store:
            rec = store.reconcile_mob(mob_id, wanted, accept_newer=accept_newer)
    if as_json:
        _emit_json(rec.to_dict())
    else:
        click.echo(f"mob {mob_id}: {len(rec.members):,} members, {len(rec.broken):,} broken claims, "
                   f"{len(rec.duplicates):,} duplicated slots")
        if rec.roster_given:
            click.echo(f"roster: {len(rec.missing):,} on the roster without a valid session, "
                       f"{len(rec.unexpected):,} valid members not on the roster")
        else:
            click.echo("roster: not checked (no --roster given)")
        for b in rec.broken:
            click.echo(f"broken\t{b.session_id}\t{b.reason}\t{b.comms_name}")
        for d in rec.duplicates:
            click.echo(f"duplicate\t{d.profile}/{d.meerkat_id}\t{','.join(d.session_ids)}")
        for p, m in rec.missing:
            click.echo(f"missing\t{p}/{m}")
        for m in rec.unexpected:
            click.echo(f"unexpected\t{m.session_id}\t{m.profile}/{m.meerkat_id}")
    sys.exit(EXIT_OK if rec.ok else EXIT_FOUND)


_STATS_EXPLAINED = {
    "sessions": "sessions in the store",
    "messages": "messages in all transcripts",
    "message_bytes": "bytes of stored message JSON",
    "receipts": "runtime receipts",
    "events": "entries in the event log (mobstore prune-events trims it)",
    "database_bytes": "pages in use x page size: the database's logical size",
    "file_bytes": "bytes on disk now: the file plus its write-ahead log (-wal)",
    "schema_version": "mobstore schema version of the file",
    "digest_impl": "digest implementation of this mobstore (native C, or the Python fallback)",
}


@cli.command()
@click.argument("db_path", metavar="DB", type=str)
@output_options(table=False)
def stats(db_path: str, fmt: str | None) -> None:
    """Sessions, messages, receipts, sizes, schema version and digest path."""
    with _errors(), _open_existing(db_path) as store:
        s = store.stats()
    s["file_bytes"] = _db_bytes(db_path)
    s["digest_impl"] = digest.DIGEST_IMPL
    if fmt == "json":
        _emit_json(s)
        return
    width = max(map(len, s))
    for key, value in s.items():
        shown = human_bytes(value) if key.endswith("_bytes") else (f"{value:,}" if isinstance(value, int) else value)
        click.echo(f"{key:<{width}}  {shown:>14}  {_STATS_EXPLAINED.get(key, '')}")


def _iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).isoformat(timespec="milliseconds")


def _comms_name(metadata: dict) -> str | None:
    sm = metadata.get("session_metadata")
    return sm.get("comms_name") if isinstance(sm, dict) else None


@cli.command()
@click.argument("db_path", metavar="DB", type=str)
@click.option("--mob", "mob_id", help="Only sessions whose metadata claims this mob.")
@click.option("--limit", type=click.IntRange(0), help="At most this many sessions.")
@output_options()
def sessions(db_path: str, mob_id: str | None, limit: int | None, fmt: str | None) -> None:
    """List sessions, newest first: id, times (UTC), message count, digest profile, comms name."""
    columns = ("session_id", "created_at", "updated_at", "messages", "profile", "comms_name")
    with _errors(), _open_existing(db_path) as store:
        rows = [(s.id, _iso(s.created_at_ms), _iso(s.updated_at_ms), s.message_count, s.digest_profile,
                 _comms_name(s.metadata)) for s in store.sessions(mob_id=mob_id, limit=limit)]
    _emit_table(columns, rows, fmt)
    if fmt is None:
        note(f"{len(rows):,} sessions" + (f" claiming mob {mob_id}" if mob_id else ""))


@cli.command()
@click.argument("db_path", metavar="DB", type=str)
@click.argument("session_id", required=False)
@click.option("--all", "every", is_flag=True, help="Every session's messages, each line "
              '{"session_id", "index", "message"}.')
@click.option("--start", type=int, default=0, show_default=True, help="First message (Python slice rules).")
@click.option("--stop", type=int, help="End of the range (exclusive).")
def messages(db_path: str, session_id: str | None, every: bool, start: int, stop: int | None) -> None:
    """Print a transcript as JSON Lines: one stored message per line, byte for byte."""
    if every == (session_id is not None):
        raise _Fail("give either SESSION_ID or --all")
    with _errors(), _open_existing(db_path) as store:
        out = sys.stdout.buffer
        if every:
            store.export_jsonl(out)
        else:
            store.export_jsonl(out, session_id, start=start, stop=stop)
        out.flush()


@cli.command()
@click.argument("db_path", metavar="DB", type=str)
@click.option("--accept-newer", is_flag=True, help="Also count realm mob.<M> and mob_member_binding claims.")
@output_options()
def mobs(db_path: str, accept_newer: bool, fmt: str | None) -> None:
    """The mob ids sessions claim, with member, broken-claim and duplicated-slot counts."""
    with _errors(), _open_existing(db_path) as store:
        found = store.mobs(accept_newer=accept_newer)
    _emit_table(("mob_id", "claims", "members", "broken", "duplicated_slots"),
                [(m.mob_id, m.claims, m.members, m.broken, m.duplicated_slots) for m in found], fmt)
    if fmt is None and not found:
        note("no session in this file claims a mob")


@cli.command()
@click.argument("db_path", metavar="DB", type=str)
@click.argument("query")
@click.option("--param", "params", multiple=True, help="A value for the next `?` (repeatable, bound as text).")
@output_options()
def sql(db_path: str, query: str, params: tuple[str, ...], fmt: str | None) -> None:
    """Run one read-only SQL query (writes are refused, exit 2). Tables: docs/schema.md.

    Use this instead of opening the file with another SQLite library in a process that
    also writes it (docs/durability.md explains why)."""
    with _errors(), _open_existing(db_path) as store:
        result = store.query(query, list(params))
    if fmt == "json":
        _emit_json({"columns": list(result.columns),
                    "rows": [[_json_value(v) for v in row] for row in result.rows]})
    else:
        _emit_table(result.columns, result.rows, fmt)


def _json_value(value: object) -> object:
    """BLOB columns (message bodies, JSON documents) as text when they are UTF-8, else hex."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"hex": value.hex()}
    return value
