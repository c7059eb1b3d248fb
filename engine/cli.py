"""The `mobstore` command (SPEC §4). click parses, rich draws on a terminal.

Exit codes: 0 success; 1 a check found a problem (verify mismatch, import skipped rows,
reconcile not clean); 2 usage or I/O error, printed as one line on stderr, no traceback.
`--json` prints exactly one JSON document on stdout and nothing else there.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from typing import Callable, Iterator

import apsw
import click

from . import __version__, digest
from .errors import MobstoreError

EXIT_OK, EXIT_FOUND, EXIT_USAGE = 0, 1, 2


class _Fail(click.ClickException):
    exit_code = EXIT_USAGE

    def show(self, file=None) -> None:
        click.echo(f"mobstore: error: {self.format_message()}", err=True)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Turn every expected failure into one line on stderr and exit 2."""
    try:
        yield
    except (MobstoreError, apsw.Error) as exc:
        raise _Fail(" ".join(str(exc).split()) or type(exc).__name__) from None
    except OSError as exc:
        raise _Fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)) from None


def _open_existing(path: str):
    """Open, read-only, a database that must already exist (a typo must not create an
    empty store, and a file that is not ours must not be changed)."""
    import engine

    if not os.path.exists(path):
        raise _Fail(f"no such database: {path}")
    if os.path.isdir(path):
        raise _Fail(f"is a directory, not a database: {path}")
    return engine.open(path, readonly=True)


def _emit_json(doc) -> None:
    click.echo(json.dumps(doc, ensure_ascii=False, indent=2))


@contextlib.contextmanager
def _progress(label: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A rich progress bar on a terminal; nothing when piped or with --json."""
    if not enabled or not sys.stdout.isatty():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _version_text() -> str:
    impl = digest.DIGEST_IMPL + (f" ({digest.NATIVE_ERROR})" if digest.NATIVE_ERROR else "")
    return (f"mobstore {__version__}; digest {impl}; SQLite {apsw.sqlite_lib_version()}; "
            f"apsw {apsw.apsw_version()}")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", message="%(version)s", prog_name="mobstore")
def cli() -> None:
    """mobstore: sessions, peer metadata and runtime receipts of agent mobs, in one SQLite file."""


# click's version_option prints only our string; replace it with the full line.
for _param in cli.params:
    if getattr(_param, "name", None) == "version":
        _param.callback = lambda ctx, _p, value: (click.echo(_version_text()), ctx.exit()) if value and not ctx.resilient_parsing else None


@cli.command()
@click.option("--db", "db_path", type=str, help="Database file (default: a temporary file).")
@click.option("--agents", type=click.IntRange(1, 100_000), default=24, show_default=True, help="Agents in the mob.")
@click.option("--turns", type=click.IntRange(1, 1_000_000), default=8, show_default=True, help="Turns per agent.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def demo(db_path: str | None, agents: int, turns: int, as_json: bool) -> None:
    """Run a mob of agents applying turns with receipts, then reconcile and verify."""
    import engine
    from .demo import run_demo

    with _errors(), contextlib.ExitStack() as stack:
        keep = db_path is not None
        if not keep:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="mobstore-demo-"))
            db_path = os.path.join(tmp, "demo.db")
        with engine.open(db_path) as store, _progress("applying turns", not as_json) as progress:
            summary = run_demo(store, agents=agents, turns=turns, progress=progress)
        summary["db"] = db_path if keep else None
        summary["db_bytes"] = _db_bytes(db_path)  # after close: the WAL is checkpointed into the file
    if as_json:
        _emit_json(summary)
    else:
        _print_demo(summary)
    sys.exit(EXIT_OK if summary["verify_ok"] else EXIT_FOUND)


def _db_bytes(path: str) -> int:
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


def _print_demo(s: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"mobstore demo: mob {s['mob_id']!r}", show_header=False)
    table.add_row("agents / turns / messages", f"{s['agents']} / {s['turns']} / {s['messages']}")
    table.add_row("apply_runtime_turn", f"{s['turns_per_second']:,.0f} turns/s ({s['messages_per_second']:,.0f} msgs/s, "
                  f"synchronous=FULL, {s['apply_seconds']:.2f} s)")
    table.add_row("digest path", s["digest_impl"])
    missing = ", ".join("/".join(m) for m in s["missing"]) or "none"
    table.add_row("reconcile", f"{s['members']} members, {len(s['broken'])} broken claims, {len(s['duplicates'])} "
                  f"duplicated slots, missing from the roster: {missing} ({s['reconcile_seconds'] * 1000:.1f} ms)")
    for b in s["broken"]:
        table.add_row("  broken claim", f"{b['session_id']}: {b['reason']}")
    table.add_row("verify", f"{s['receipts_ok']}/{s['receipts']} receipts ok in {s['verify_seconds'] * 1000:.0f} ms")
    where = s["db"] or "temporary file, removed (use --db PATH to keep it)"
    table.add_row("database", f"{where}: {s['db_bytes'] / 1024:.0f} KiB")
    console.print(table)


@cli.command("import-meerkat")
@click.argument("source", type=str)
@click.option("--into", "db_path", required=True, type=str, help="Target mobstore database.")
@click.option("--json", "as_json", is_flag=True, help="Print the import report as JSON.")
def import_meerkat(source: str, db_path: str, as_json: bool) -> None:
    """Import a meerkat sessions.sqlite3 (0.7.x / 0.8.x), read-only on the source.

    Exit 0 when everything was imported, 1 when some rows were skipped (listed)."""
    import engine
    from .importer import import_realm
    from .meerkat import open_realm

    with _errors():
        if not os.path.exists(source):
            raise _Fail(f"no such file: {source}")
        if os.path.exists(db_path) and os.path.samefile(source, db_path):
            raise _Fail("the source and the target are the same file")
        with open_realm(source):  # a bad source fails here, before the target is created
            pass
        with engine.open(db_path) as store, _progress("importing", not as_json) as progress:
            report = import_realm(store, source, progress=progress)
    if as_json:
        _emit_json(report.to_dict())
    else:
        click.echo(f"{report.source} ({report.layout}): {report.sessions_seen} sessions seen, "
                   f"{report.sessions_imported} imported, {report.sessions_extended} extended, "
                   f"{report.sessions_unchanged} unchanged; {report.messages_imported} messages, "
                   f"{report.receipts_imported} receipts, {report.heads_imported} heads")
        for p in report.problems:
            click.echo(f"skipped {p['where']} {p['key']}: {p['reason']}")
    sys.exit(EXIT_FOUND if report.skipped else EXIT_OK)


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


def main(argv: list[str] | None = None) -> None:
    """Entry point: every error is one line on stderr (usage errors included), exit 2."""
    try:
        code = cli.main(args=argv, prog_name="mobstore", standalone_mode=False)
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        message = " ".join(exc.format_message().split())
        hint = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f" (see '{exc.ctx.command_path} --help')"
        click.echo(f"mobstore: error: {message}{hint}", err=True)
        code = exc.exit_code if exc.exit_code else EXIT_USAGE
    except click.Abort:
        click.echo("mobstore: interrupted", err=True)
        code = 130
    except KeyboardInterrupt:
        click.echo("mobstore: interrupted", err=True)
        code = 130
    sys.exit(code or 0)
