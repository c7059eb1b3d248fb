"""What every mobstore subcommand shares: exit codes, the one-line error, opening a store
read-only, --json output and progress bars.

Exit codes: 0 success; 1 a check found a problem (verify mismatch, import skipped rows,
reconcile not clean); 2 usage or I/O error, printed as one line on stderr, no traceback.
`--json` prints exactly one JSON document on stdout and nothing else there.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Callable, Iterator

import apsw
import click

from .. import __version__, digest
from ..errors import MobstoreError

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
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _version_text() -> str:
    impl = digest.DIGEST_IMPL + (f" ({digest.NATIVE_ERROR})" if digest.NATIVE_ERROR else "")
    return (f"mobstore {__version__}; digest {impl}; SQLite {apsw.sqlite_lib_version()}; "
            f"apsw {apsw.apsw_version()}")


def _db_bytes(path: str) -> int:
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
