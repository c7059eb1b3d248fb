"""The `mobstore` command group and its entry point. click parses, rich draws on a terminal.

Exit codes: 0 success; 1 a check found a problem (verify mismatch, import skipped rows,
reconcile not clean); 2 usage or I/O error, printed as one line on stderr, no traceback.
`--json` prints exactly one JSON document on stdout and nothing else there.
"""

from __future__ import annotations

import os
import sys

import click

from .. import __version__
from ._common import EXIT_OK, EXIT_USAGE, _version_text


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", message="%(version)s", prog_name="mobstore")
def cli() -> None:
    """mobstore: sessions, peer metadata and runtime receipts of agent mobs, in one SQLite file."""


# click's version_option prints only our string; replace it with the full line.
for _param in cli.params:
    if getattr(_param, "name", None) == "version":
        _param.callback = lambda ctx, _p, value: (click.echo(_version_text()), ctx.exit()) if value and not ctx.resilient_parsing else None


def main(argv: list[str] | None = None) -> None:
    """Entry point: every error is one line on stderr (usage errors included), exit 2;
    no arguments print the help (exit 0); a closed stdout pipe (`| head`) exits 0 quietly."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args:
        args = ["--help"]
    try:
        # make_context + invoke rather than cli.main(): click's main turns a broken pipe into
        # exit status 1, which reads as "a check found a problem".
        with cli.make_context("mobstore", args) as ctx:
            cli.invoke(ctx)
        code = EXIT_OK
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except SystemExit as exc:  # the commands exit with their documented status
        code = exc.code if isinstance(exc.code, int) else EXIT_USAGE
    except BrokenPipeError:
        code = _closed_pipe()
    except click.ClickException as exc:
        message = " ".join(exc.format_message().split())
        hint = ""
        if isinstance(exc, click.UsageError) and exc.ctx is not None:
            hint = f" (see '{exc.ctx.command_path} --help')"
        click.echo(f"mobstore: error: {message}{hint}", err=True)
        code = exc.exit_code if exc.exit_code else EXIT_USAGE
    except (click.Abort, KeyboardInterrupt):
        click.echo("mobstore: interrupted", err=True)
        code = 130
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = _closed_pipe()
    sys.exit(code or 0)


def _closed_pipe() -> int:
    """The reader of stdout went away (`mobstore members DB m | head -1`): not an error.
    Point stdout at /dev/null so the interpreter's final flush stays quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_OK
