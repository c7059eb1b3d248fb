"""Read-only commands over one store: verify, members, reconcile, stats."""

from __future__ import annotations

import json
import sys

import click

from .. import digest
from ._common import (
    EXIT_FOUND,
    EXIT_OK,
    _db_bytes,
    _emit_json,
    _errors,
    _Fail,
    _open_existing,
    _progress,
)
from .app import cli


@cli.command()
@click.argument("db_path", metavar="DB", type=str)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(db_path: str, as_json: bool) -> None:
    """Recompute every receipt's and head's digest. Exit 0 all verify, 1 any mismatch."""
    with _errors():
        with _open_existing(db_path) as store, _progress("verifying", not as_json) as progress:
            report = store.verify(progress=progress)
    if as_json:
        _emit_json(report.to_dict())
    else:
        click.echo(f"{report.sessions} sessions, {report.receipts_ok}/{report.receipts} receipts ok, "
                   f"{report.heads_ok}/{report.heads} heads ok")
        if report.rewrites or report.receipts_purged:
            click.echo(f"{report.receipts_superseded} superseded receipts and {report.heads_superseded} heads ok "
                       f"against the history of {report.rewrites_ok}/{report.rewrites} rewrites"
                       + (f"; {report.receipts_purged} receipts unverifiable (history purged)"
                          if report.receipts_purged else ""))
        for m in report.mismatches:
            where = f"run {m.run_id} seq {m.sequence}" if m.run_id is not None else m.kind
            click.echo(f"MISMATCH session {m.session_id} {where}: expected {m.expected} actual {m.actual}"
                       + (f" ({m.detail})" if m.detail else ""))
    sys.exit(EXIT_OK if report.ok else EXIT_FOUND)


@cli.command()
@click.argument("db_path", metavar="DB", type=str)
@click.argument("mob_id")
@click.option("--json", "as_json", is_flag=True, help="Print the members as JSON.")
def members(db_path: str, mob_id: str, as_json: bool) -> None:
    """List the sessions that belong to MOB_ID (the seed rule)."""
    with _errors(), _open_existing(db_path) as store:
        found = store.mob_members(mob_id)
    if as_json:
        _emit_json({"mob_id": mob_id, "members": [
            {"session_id": m.session_id, "profile": m.profile, "meerkat_id": m.meerkat_id} for m in found]})
    else:
        for m in found:
            click.echo(f"{m.session_id}\t{m.profile}\t{m.meerkat_id}")
        click.echo(f"{len(found)} members of {mob_id}", err=True)


def _read_roster(path: str) -> list[tuple[str, str]]:
    """A JSON list of [profile, meerkat_id] pairs, or lines `profile/meerkat_id`."""
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
        click.echo(f"mob {mob_id}: {len(rec.members)} members, {len(rec.broken)} broken claims, "
                   f"{len(rec.duplicates)} duplicated slots, {len(rec.missing)} missing, {len(rec.unexpected)} unexpected")
        for b in rec.broken:
            click.echo(f"broken\t{b.session_id}\t{b.reason}\t{b.comms_name}")
        for d in rec.duplicates:
            click.echo(f"duplicate\t{d.profile}/{d.meerkat_id}\t{','.join(d.session_ids)}")
        for p, m in rec.missing:
            click.echo(f"missing\t{p}/{m}")
        for m in rec.unexpected:
            click.echo(f"unexpected\t{m.session_id}\t{m.profile}/{m.meerkat_id}")
    sys.exit(EXIT_OK if rec.ok else EXIT_FOUND)


@cli.command()
@click.argument("db_path", metavar="DB", type=str)
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON.")
def stats(db_path: str, as_json: bool) -> None:
    """Sessions, messages, receipts, bytes, schema version and digest path."""
    with _errors(), _open_existing(db_path) as store:
        s = store.stats()
    s["file_bytes"] = _db_bytes(db_path)
    s["digest_impl"] = digest.DIGEST_IMPL
    if as_json:
        _emit_json(s)
    else:
        for key, value in s.items():
            click.echo(f"{key}: {value}")


