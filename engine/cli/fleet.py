"""`mobstore snapshot`, `mobstore fleet reconcile|members|stats|verify` and
`mobstore export-parquet`: one store copied for shipping, many stores answered at once.

The fleet commands take PATHS: store files, directories (searched for stores) and globs
(expanded here, so they may be quoted). Progress goes to stderr (a bar on a terminal, a
line per tenth otherwise; --quiet silences it), so stdout carries only the answer.
Exit codes as every command: 0 clean, 1 a finding or an unreadable store, 2 usage or I/O.
"""

from __future__ import annotations

import collections
import contextlib
import sys
from typing import Callable, Iterator

import click

from ._common import EXIT_FOUND, EXIT_OK, _emit_json, _errors, _Fail, _open_existing
from .app import cli
from .queries import _read_roster

ProgressFn = Callable[[int, int], None]


@contextlib.contextmanager
def _stderr_progress(label: str, quiet: bool) -> Iterator[ProgressFn | None]:
    """Progress of a fleet command on stderr: a rich bar on a terminal, else one line each
    time another tenth of the stores is done."""
    if quiet:
        yield None
        return
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task(label, total=None)
            yield lambda done, total: bar.update(task, completed=done, total=total)
        return
    shown = {"tenth": -1}

    def line(done: int, total: int) -> None:
        tenth = (10 * done) // total if total else 10
        if done and tenth > shown["tenth"]:
            shown["tenth"] = tenth
            click.echo(f"{label}: {done}/{total} stores", err=True)

    yield line


def _report_problems(problems, skipped) -> None:
    for p in skipped:
        click.echo(f"skipped {p.path}: {p.problem}", err=True)
    for p in problems:
        click.echo(f"problem {p.path}: {p.problem}", err=True)


def _fleet(paths: tuple[str, ...], **options):
    from ..fleet import Fleet

    f = Fleet(list(paths), **options)
    if not f.stores:  # every path named is unusable (a FIFO, a damaged file): nothing to query
        f.close()
        shown = "; ".join(f"{p.path}: {p.problem}" for p in f.problems[:3])
        raise _Fail(f"no mobstore store among the given paths ({shown})")
    return f


_paths_argument = click.argument("paths", nargs=-1, required=True, metavar="PATHS...")
_json_option = click.option("--json", "as_json", is_flag=True, help="Print the answer as one JSON document.")
_quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress on stderr.")


@cli.command()
@click.argument("db_path", metavar="DB", type=str)
@click.argument("out", metavar="OUT", type=str)
@click.option("--method", type=click.Choice(["backup", "vacuum"]), default="backup", show_default=True,
              help="backup: SQLite's online backup (fastest); vacuum: VACUUM INTO (compacted).")
@click.option("--force", is_flag=True, help="Replace OUT if it exists.")
@_json_option
def snapshot(db_path: str, out: str, method: str, force: bool, as_json: bool) -> None:
    """Write a consistent copy of the store DB to OUT, safe while agents write to DB.

    OUT is one self-contained file (rollback journal, no -wal/-shm), renamed into place
    when complete: the unit to ship to shared storage."""
    with _errors():
        with _open_existing(db_path) as store:
            info = store.snapshot(out, method=method, overwrite=force)
    if as_json:
        _emit_json(info.to_dict())
    else:
        click.echo(f"{info.path}: {info.bytes / 1024:,.0f} KiB ({info.method}, {info.seconds * 1000:.0f} ms)")
    sys.exit(EXIT_OK)


@cli.group()
def fleet() -> None:
    """Many store files at once: DuckDB reads them through its sqlite extension.

    Needs the extra: pip install "mobstore[fleet]" (verify does not)."""


@fleet.command("reconcile")
@_paths_argument
@click.argument("mob_id")
@click.option("--roster", type=str, help="Expected members: JSON [[profile, meerkat_id], ...] or lines profile/meerkat_id.")
@click.option("--accept-newer", is_flag=True, help="Also accept realm mob.<M> and the typed mob_member_binding.")
@_json_option
@_quiet_option
def fleet_reconcile(paths, mob_id: str, roster: str | None, accept_newer: bool, as_json: bool, quiet: bool) -> None:
    """Reconcile MOB_ID across every store: members, broken claims, duplicates (within a
    store or across stores) and the roster diff. Exit 1 unless clean."""
    with _errors():
        wanted = _read_roster(roster) if roster else None
        with _fleet(paths) as f, _stderr_progress("reconciling", quiet) as progress:
            rec = f.reconcile(mob_id, wanted, accept_newer=accept_newer, progress=progress)
    if as_json:
        _emit_json(rec.to_dict())
    else:
        cross = sum(1 for d in rec.duplicates if d.cross_store)
        click.echo(f"mob {mob_id} over {len(rec.stores)} stores: {len(rec.members)} members, {len(rec.broken)} broken "
                   f"claims, {len(rec.duplicates)} duplicated slots ({cross} across stores), {len(rec.missing)} missing, "
                   f"{len(rec.unexpected)} unexpected, {len(rec.problems)} unreadable stores")
        for b in rec.broken:
            click.echo(f"broken\t{b.store}\t{b.session_id}\t{b.reason}\t{b.comms_name}")
        for d in rec.duplicates:
            claims = ",".join(f"{store}:{sid}" for store, sid in d.claims)
            click.echo(f"duplicate\t{d.profile}/{d.meerkat_id}\t{claims}")
        for p, m in rec.missing:
            click.echo(f"missing\t{p}/{m}")
        for m in rec.unexpected:
            click.echo(f"unexpected\t{m.store}\t{m.session_id}\t{m.profile}/{m.meerkat_id}")
    if not as_json:
        _report_problems(rec.problems, rec.skipped)
    sys.exit(EXIT_OK if rec.ok else EXIT_FOUND)


@fleet.command("members")
@_paths_argument
@click.argument("mob_id")
@_json_option
@_quiet_option
def fleet_members(paths, mob_id: str, as_json: bool, quiet: bool) -> None:
    """List the sessions of every store that belong to MOB_ID (the membership rule)."""
    with _errors():
        with _fleet(paths) as f, _stderr_progress("reading", quiet) as progress:
            found = f.members(mob_id, progress=progress)
    if as_json:
        _emit_json(found.to_dict())
    else:
        for m in found.members:
            click.echo(f"{m.store}\t{m.session_id}\t{m.profile}\t{m.meerkat_id}")
        click.echo(f"{len(found.members)} members of {mob_id} in {len(found.stores)} stores", err=True)
        _report_problems(found.problems, found.skipped)
    sys.exit(EXIT_FOUND if found.problems else EXIT_OK)


@fleet.command("stats")
@_paths_argument
@_json_option
@_quiet_option
def fleet_stats(paths, as_json: bool, quiet: bool) -> None:
    """Sessions, messages, receipts and bytes per store and in total; mobs claimed; session
    ids found in more than one store."""
    with _errors():
        with _fleet(paths) as f, _stderr_progress("counting", quiet) as progress:
            s = f.stats(progress=progress)
    if as_json:
        _emit_json(s.to_dict())
    else:
        for key, value in s.totals.items():
            click.echo(f"{key}: {value}")
        click.echo(f"mobs: {s.mobs}")
        click.echo(f"sessions_in_several_stores: {len(s.shared_sessions)}")
        for st in s.stores:
            click.echo(f"store\t{st.store}\t{st.sessions} sessions\t{st.messages} messages\t{st.receipts} receipts"
                       f"\t{st.file_bytes} bytes\t{st.path}")
        _report_problems(s.problems, s.skipped)
    sys.exit(EXIT_FOUND if s.problems else EXIT_OK)


@fleet.command("verify")
@_paths_argument
@click.option("--workers", type=click.IntRange(1, 1024), help="Worker processes (default: one per core).")
@_json_option
@_quiet_option
def fleet_verify(paths, workers: int | None, as_json: bool, quiet: bool) -> None:
    """Recompute every receipt's and head's digest in every store (mobstore's own engine,
    one process per core). Exit 0 all verify, 1 any mismatch or unreadable store."""
    with _errors():
        with _fleet(paths) as f, _stderr_progress("verifying", quiet) as progress:
            report = f.verify(workers=workers, progress=progress)
    if as_json:
        _emit_json(report.to_dict())
    else:
        t = collections.defaultdict(int, report.totals)  # no count at all when every store failed to open
        click.echo(f"{t['stores_ok']}/{t['stores']} stores ok: {t['sessions']} sessions, "
                   f"{t['receipts_ok']}/{t['receipts']} receipts ok, {t['heads_ok']}/{t['heads']} heads ok "
                   f"({report.workers} processes)")
        for s in report.stores:
            for m in s.report["mismatches"]:
                where = f"run {m['run_id']} seq {m['sequence']}" if m["run_id"] is not None else m["kind"]
                click.echo(f"MISMATCH {s.store} session {m['session_id']} {where}: expected {m['expected']} "
                           f"actual {m['actual']}" + (f" ({m['detail']})" if m.get("detail") else ""))
        _report_problems(report.problems, report.skipped)
    sys.exit(EXIT_OK if report.ok else EXIT_FOUND)


@cli.command("export-parquet")
@click.argument("args", nargs=-1, required=True, metavar="DB... OUTDIR")
@click.option("--overwrite", is_flag=True, help="Replace the partitions of stores already exported to OUTDIR.")
@click.option("--workers", type=click.IntRange(1, 1024), help="Worker processes (default: one per core).")
@_json_option
@_quiet_option
def export_parquet(args, overwrite: bool, workers: int | None, as_json: bool, quiet: bool) -> None:
    """Export sessions, bindings, receipts and messages of every store DB (files,
    directories, globs) as Parquet under OUTDIR, partitioned by store, with reconcile.sql."""
    if len(args) < 2:
        raise click.UsageError("expected one or more DB paths and then OUTDIR")
    *dbs, outdir = args
    with _errors():
        with _fleet(tuple(dbs)) as f, _stderr_progress("exporting", quiet) as progress:
            report = f.export_parquet(outdir, overwrite=overwrite, workers=workers, progress=progress)
    if as_json:
        _emit_json(report.to_dict())
    else:
        t = report.totals
        click.echo(f"{report.outdir}: {t['stores_exported']} stores, {t['sessions']} sessions, {t['receipts']} receipts, "
                   f"{t['messages']} messages in {report.seconds:.1f} s ({report.workers} processes)")
        _report_problems(report.problems, report.skipped)
    sys.exit(EXIT_FOUND if report.problems else EXIT_OK)

