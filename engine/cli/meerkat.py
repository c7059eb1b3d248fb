"""`mobstore import-meerkat`: a meerkat realm file into a store."""

from __future__ import annotations

import os
import sys

import click

from ._common import (
    EXIT_FOUND,
    EXIT_OK,
    _emit_json,
    _errors,
    _Fail,
    _progress,
)
from .app import cli


@cli.command("import-meerkat")
@click.argument("source", type=str)
@click.option("--into", "db_path", required=True, type=str, help="Target mobstore database.")
@click.option("--json", "as_json", is_flag=True, help="Print the import report as JSON.")
def import_meerkat(source: str, db_path: str, as_json: bool) -> None:
    """Import a meerkat sessions.sqlite3 (0.7.x / 0.8.x), read-only on the source.

    Exit 0 when everything was imported, 1 when some rows were skipped (listed)."""
    import engine

    from ..importer import import_realm
    from ..meerkat import open_realm

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


