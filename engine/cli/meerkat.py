"""`mobstore import-meerkat`: a meerkat realm file into a store (docs/meerkat.md).

Exit codes: 0 everything was imported and every check that could be made verified
(unrecomputable receipts and unchecked items are listed, not failures); 1 something was
not imported or did not verify (listed; the data that was readable is imported unless
--strict); 2 the source cannot be used (not a regular file, not a session realm, a newer
schema, ...) or a usage/IO error, before the target is created or touched.
"""

from __future__ import annotations

import os
import sys

import click

from ._common import EXIT_FOUND, EXIT_OK, _emit_json, _errors, _Fail, _progress
from .app import cli


@cli.command("import-meerkat")
@click.argument("source", type=str)
@click.option("--into", "db_path", required=True, type=str, help="Target mobstore database.")
@click.option("--strict", is_flag=True, help="Do not import a session any of whose digests or tokens do not verify.")
@click.option("--json", "as_json", is_flag=True, help="Print the import report as JSON.")
def import_meerkat(source: str, db_path: str, strict: bool, as_json: bool) -> None:
    """Import a meerkat sessions.sqlite3 (0.7.x to 0.8.26), read-only on the source.

    Exit 0 when everything was imported and verified, 1 when something was not imported
    or did not verify (listed), 2 when the source cannot be read."""
    import engine

    from ..importer import import_realm
    from ..meerkat import open_realm

    with _errors():
        if not os.path.lexists(source):
            raise _Fail(f"no such file: {source}")
        with open_realm(source):  # a bad source (a FIFO too) fails here, before the target is created
            pass
        if os.path.exists(db_path) and os.path.samefile(source, db_path):
            raise _Fail("the source and the target are the same file")
        with engine.open(db_path) as store, _progress("importing", not as_json) as progress:
            report = import_realm(store, source, strict=strict, progress=progress)
    if as_json:
        _emit_json(report.to_dict())
    else:
        click.echo(f"{report.source} ({report.layout}): {report.sessions_seen} sessions seen, "
                   f"{report.sessions_imported} imported, {report.sessions_extended} extended, "
                   f"{report.sessions_unchanged} unchanged; {report.messages_imported} messages, "
                   f"{report.receipts_imported} receipts, {report.heads_imported} heads")
        for p in report.problems:
            click.echo(f"NOT IMPORTED {p['where']} {p['key']}: {p['reason']}")
        for f in report.not_verified:
            click.echo(f"MISMATCH {_where(f)}: {f['reason']}; expected {f['expected']} actual {f['actual']}")
        for f in report.unrecomputable:
            click.echo(f"UNRECOMPUTABLE {_where(f)}: {f['reason']}")
        for f in report.unchecked:
            click.echo(f"UNCHECKED {_where(f)}: {f['reason']}")
    sys.exit(EXIT_OK if report.ok else EXIT_FOUND)


def _where(f: dict) -> str:
    run = f" run {f['run_id']} seq {f['sequence']}" if f.get("run_id") is not None else ""
    return f"session {f['session_id']} {f['subject']}{run}"
