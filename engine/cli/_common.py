"""What every mobstore subcommand shares: exit codes, the one-line error, opening a store
read-only, output formats (text, --json, --csv) and progress bars.

Exit codes: 0 success; 1 a check found a problem (verify mismatch, import problems,
reconcile not clean); 2 usage or I/O error, printed as one line on stderr, no traceback.
`--json` prints exactly one JSON document on stdout and nothing else there; progress bars
and notes go to stderr, so stdout can be redirected or piped.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import stat
import sys
from typing import Any, Callable, Iterable, Iterator, Sequence

import apsw
import click

from .. import __version__, digest
from ..errors import MobstoreError

EXIT_OK, EXIT_FOUND, EXIT_USAGE = 0, 1, 2


class _Fail(click.ClickException):
    exit_code = EXIT_USAGE

    def show(self, file: Any = None) -> None:
        click.echo(f"mobstore: error: {self.format_message()}", err=True)


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    """Turn every expected failure into one line on stderr and exit 2."""
    try:
        yield
    except BrokenPipeError:
        raise  # handled once, in main(): a closed pipe is not an error
    except (MobstoreError, apsw.Error) as exc:
        raise _Fail(" ".join(str(exc).split()) or type(exc).__name__) from None
    except OSError as exc:
        raise _Fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)) from None


def _open_existing(path: str) -> Any:
    """Open, read-only, a database that must already exist (a typo must not create an
    empty store, and a file that is not ours must not be changed)."""
    import engine

    _check_regular(path, "database")
    return engine.open(path, readonly=True)


def _open_writable(path: str) -> Any:
    """Open for writing a database that must already exist (maintenance commands)."""
    import engine

    _check_regular(path, "database")
    return engine.open(path)


def _check_regular(path: str, what: str) -> None:
    """Exists and is a regular file (a FIFO or device would block or mislead SQLite)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise _Fail(f"no such {what}: {path}") from None
    except OSError as exc:
        raise _Fail(f"cannot read {what} {path}: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise _Fail(f"is a directory, not a {what}: {path}")
    if not stat.S_ISREG(mode):
        raise _Fail(f"not a regular file (a FIFO, socket or device?): {path}")


def _emit_json(doc: Any) -> None:
    click.echo(json.dumps(doc, ensure_ascii=False, indent=2))


def output_options(table: bool = True) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--json (and --csv for commands that print a table) as one `fmt` parameter."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        if table:
            f = click.option("--csv", "fmt", flag_value="csv", help="Print the table as CSV.")(f)
        f = click.option("--json", "fmt", flag_value="json", help="Print one JSON document.")(f)
        return f

    return decorate


def _emit_table(columns: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str | None,
                json_doc: Any = None) -> None:
    """A table as text (aligned on a terminal, tab-separated when piped), CSV, or JSON
    (json_doc when given, else a list of objects keyed by column)."""
    rows = list(rows)
    if fmt == "json":
        _emit_json(json_doc if json_doc is not None else [dict(zip(columns, r)) for r in rows])
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(["" if v is None else v for v in r] for r in rows)
    elif sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        t = Table(*columns, box=None, header_style="bold")
        for r in rows:
            t.add_row(*("" if v is None else _text(v) for v in r))
        Console().print(t)
    else:
        click.echo("\t".join(columns))
        for r in rows:
            click.echo("\t".join("" if v is None else _text(v) for v in r))


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return str(value)


def note(text: str) -> None:
    """A line for the human at the terminal: stderr, so stdout stays data."""
    click.echo(text, err=True)


@contextlib.contextmanager
def _progress(label: str, enabled: bool) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar on stderr when stderr is a terminal; nothing otherwise or with --json."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def _version_text() -> str:
    impl = digest.DIGEST_IMPL + (f" ({digest.NATIVE_ERROR})" if digest.NATIVE_ERROR else "")
    return (f"mobstore {__version__}; digest {impl}; SQLite {apsw.sqlite_lib_version()}; "
            f"apsw {apsw.apsw_version()}")


def _db_bytes(path: str) -> int:
    """Bytes on disk of a database: the file and its write-ahead log."""
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))


def human_bytes(n: int) -> str:
    """1,234 B / 12.3 KiB / 4.5 MiB / 1.2 GiB: one spelling of sizes in every command."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n:,} B" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{n:,} B"  # pragma: no cover - loop always returns
