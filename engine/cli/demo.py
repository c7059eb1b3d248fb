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
    _Fail,
    _progress,
    human_bytes,
)
from .app import cli


@cli.command()
@click.option("--db", "db_path", type=str, help="Keep the database at this new path (default: a temporary file).")
@click.option("--agents", type=click.IntRange(1, 100_000), default=24, show_default=True, help="Agents in the mob.")
@click.option("--turns", type=click.IntRange(1, 1_000_000), default=8, show_default=True, help="Turns per agent.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def demo(db_path: str | None, agents: int, turns: int, as_json: bool) -> None:
    """A mob of agents writes turns with receipts; mobstore finds planted membership problems
    and verifies every receipt. Exit 0 when everything planted was found and all verified."""
    import engine

    from ..demo import run_demo

    if db_path is not None and os.path.lexists(db_path):
        raise _Fail(f"--db {db_path} already exists; the demo writes a new file (remove it or pick another path)")
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
    sys.exit(EXIT_OK if summary["verify_ok"] and summary["planted_found"] else EXIT_FOUND)


def _print_demo(s: dict) -> None:
    from ..demo import PLANTED

    where = s["db"] or "a temporary file, removed at exit (--db PATH keeps it)"
    lines = [
        f"mobstore demo: a mob of {s['agents']:,} agents ({s['mob_id']}) in one SQLite file: {where}",
        "",
        f"1. Wrote {s['turns']:,} turns ({s['messages']:,} messages), each committed with a runtime receipt",
        f"   (the SHA-256 digest of the whole transcript): {s['turns_per_second']:,.0f} turns/s, every turn",
        f"   fsynced before it returned (synchronous=FULL), digests by the {s['digest_impl']} canonicalizer.",
        "2. Planted problems beside the healthy mob, for reconciliation to find:",
    ]
    lines += [f"   - {what:<53} -> expect {finding}" for what, finding in PLANTED]
    dup = s["duplicates"]
    lines += [
        f"3. Reconciled {s['mob_id']} against its roster of {s['roster_entries']:,} entries in "
        f"{s['reconcile_seconds'] * 1000:,.1f} ms (one SQL query):",
        f"   {s['member_sessions']:,} valid member sessions ({len(dup):,} slot claimed by two sessions), "
        f"{len(s['broken']):,} broken claims ({', '.join(sorted(b['reason'] for b in s['broken'])) or 'none'}),",
        f"   {len(s['missing']):,} roster entries without a session "
        f"({', '.join('/'.join(m) for m in s['missing']) or 'none'}), {s['unexpected']:,} members not on the roster.",
        "   " + ("Exactly what was planted." if s["planted_found"] else "NOT what was planted: see above."),
        f"4. Verified {s['receipts_ok']:,} of {s['receipts']:,} receipts by recomputing every transcript digest "
        f"in {s['verify_seconds'] * 1000:,.0f} ms.",
        f"Database: {human_bytes(s['db_bytes'])}. Next: `mobstore --help`; docs/ explains every figure.",
    ]
    click.echo("\n".join(lines))
