"""`mobstore demo`: the main job on an embedded default."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

import click

from ._common import (
    EXIT_FOUND,
    EXIT_OK,
    _db_bytes,
    _emit_json,
    _errors,
    _progress,
)
from .app import cli


@cli.command()
@click.option("--db", "db_path", type=str, help="Database file (default: a temporary file).")
@click.option("--agents", type=click.IntRange(1, 100_000), default=24, show_default=True, help="Agents in the mob.")
@click.option("--turns", type=click.IntRange(1, 1_000_000), default=8, show_default=True, help="Turns per agent.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def demo(db_path: str | None, agents: int, turns: int, as_json: bool) -> None:
    """Run a mob of agents applying turns with receipts, then reconcile and verify."""
    import engine

    from ..demo import run_demo

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


