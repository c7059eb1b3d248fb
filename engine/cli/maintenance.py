"""Commands that change a store's housekeeping, never its sessions: vacuum, prune-events."""

from __future__ import annotations

import re

import click

from ._common import (
    _emit_json,
    _errors,
    _Fail,
    _open_writable,
    human_bytes,
    output_options,
)
from .app import cli

_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration_ms(text: str) -> int:
    """'30d', '12h', '15m', '90s', '500ms' -> milliseconds."""
    match = _DURATION.match(text)
    if match is None:
        raise _Fail(f"expected a duration such as 30d, 12h, 15m, 90s or 500ms, not {text!r}")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


@cli.command()
@click.argument("db_path", metavar="DB", type=str)
@output_options(table=False)
def vacuum(db_path: str, fmt: str | None) -> None:
    """Rebuild DB without free pages and truncate its write-ahead log (space, privacy)."""
    with _errors(), _open_writable(db_path) as store:
        report = store.vacuum()
    if fmt == "json":
        _emit_json({"bytes_before": report.bytes_before, "bytes_after": report.bytes_after,
                    "free_pages_before": report.free_pages_before})
    else:
        click.echo(f"{db_path}: {human_bytes(report.bytes_before)} -> {human_bytes(report.bytes_after)} "
                   f"({report.free_pages_before:,} free pages reclaimed)")


@cli.command("prune-events")
@click.argument("db_path", metavar="DB", type=str)
@click.option("--older-than", "older_than", help="Delete entries older than this (30d, 12h, 15m, 90s).")
@click.option("--before-seq", type=click.IntRange(0), help="Delete entries whose seq is below this cursor.")
@output_options(table=False)
def prune_events(db_path: str, older_than: str | None, before_seq: int | None, fmt: str | None) -> None:
    """Trim the event log (retention); the newest entry is always kept, so readers' cursors stay
    valid and no number is handed out twice. `vacuum` returns the space."""
    if older_than is None and before_seq is None:
        raise _Fail("give --older-than DURATION and/or --before-seq N")
    older_ms = None if older_than is None else parse_duration_ms(older_than)
    with _errors(), _open_writable(db_path) as store:
        deleted = store.prune_events(before_seq=before_seq, older_than_ms=older_ms)
        left = store.stats()["events"]
    if fmt == "json":
        _emit_json({"deleted": deleted, "remaining": left})
    else:
        click.echo(f"{deleted:,} event-log entries deleted, {left:,} kept")
