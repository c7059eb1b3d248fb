#!/usr/bin/env python3
"""Run the benchmark suite and write its results as a README with tables and plots.

    python benches/report.py [--quick] [--out DIR] [--from-json FILE] [-- PYTEST_ARGS...]

--quick           MOBSTORE_BENCH_QUICK=1: the small ladder (what CI runs; under 2 minutes)
--out DIR         where README.md, results.json and the PNG plots go (default: benches/)
--from-json FILE  do not run anything: render an earlier run's pytest-benchmark JSON
after --           extra arguments for pytest (e.g. -k digest)

Every other knob is an environment variable read by benches/conftest.py (listed in the
README this writes); they pass through to the run. The run is
`python -m pytest benches --benchmark-json=...` from the repository root; its output is
kept in a temporary directory (printed). Needs matplotlib for the plots (pip install -e '.[bench]').
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import results  # noqa: E402

KNOB_DOCS = [
    ("MOBSTORE_BENCH_QUICK", "unset", "`1`: the quick ladder below (CI); unset: the full one"),
    ("MOBSTORE_BENCH_SEED", "20260425", "seed of every generated message, id and layout"),
    ("MOBSTORE_BENCH_CACHE", "$TMPDIR/mobstore-bench-cache", "where built fixtures are cached (keyed by parameters and a hash of the code that writes them)"),
    ("MOBSTORE_BENCH_DIR", "pytest's tmp dir", "where writable copies go; put it on the disk you care about (fsync on tmpfs is free)"),
    ("MOBSTORE_BENCH_SIZES", "200,1024,16384", "message sizes (bytes of JSON) of the size ladder"),
    ("MOBSTORE_BENCH_HISTORY", "quick 100,10000; full 100,10000,100000", "session lengths for the flatness rows"),
    ("MOBSTORE_BENCH_SESSIONS", "quick 10000; full 10000,1000000", "store sizes for the membership rows"),
    ("MOBSTORE_BENCH_MEMBERS", "1000", "members of the queried mob"),
    ("MOBSTORE_BENCH_TRANSCRIPT", "4000", "messages in the digest and load transcripts"),
    ("MOBSTORE_BENCH_PEER_HISTORY", "100,4000", "history lengths of the peer append rows"),
    ("MOBSTORE_BENCH_PEER_SESSIONS", "10000", "sessions in the peer \"sessions of mob G\" store"),
    ("MOBSTORE_BENCH_PEER_MOB_SIZE", "100", "sessions per mob in that store"),
    ("MOBSTORE_BENCH_DISK_MESSAGES", "quick 400; full 1000", "messages written turn by turn for the disk rows"),
    ("MOBSTORE_BENCH_NAIVE_WAY_LIMIT", "0", "k > 0: time the naive way on k sessions and extrapolate linearly"),
    ("MOBSTORE_BENCH_ROUNDS", "1", "multiplies every round count"),
    ("MOBSTORE_BENCH_PEERS", "openai-agents,langgraph,naive", "peers to compare with"),
    ("MOBSTORE_BENCH_FLEET_STORES", "quick 10,40; full 100,1000", "store files of the fleet reconciliation ladder"),
    ("MOBSTORE_BENCH_FLEET_SESSIONS", "quick 200; full 1000", "sessions per store file in that fleet"),
]

def run_suite(quick: bool, json_path: str, log_path: str, extra: list[str]) -> tuple[list[str], int, float]:
    cmd = [sys.executable, "-m", "pytest", "benches", "-q", "-p", "no:cacheprovider",
           f"--benchmark-json={json_path}", "--benchmark-columns=min,median,mean,rounds", *extra]
    env = dict(os.environ)
    if quick:
        env["MOBSTORE_BENCH_QUICK"] = "1"
    else:
        env.pop("MOBSTORE_BENCH_QUICK", None)
    shown = (["MOBSTORE_BENCH_QUICK=1"] if quick else []) + ["python"] + cmd[1:]
    print("running:", " ".join(shlex.quote(c) for c in shown), flush=True)
    started = _dt.datetime.now()
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
        code = proc.wait()
    return shown, code, (_dt.datetime.now() - started).total_seconds()


# ------------------------------------------------------------------------------------------
# rendering


def plots(records: dict[str, results.Record], out_dir: str) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        return [f"(no plots: matplotlib is not installed: {exc})"]
    made = []

    # 1. append throughput vs history length, per system
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    series: dict[str, dict[int, float]] = {}
    for rec in records.values():
        if rec.key.startswith("store.append."):
            series.setdefault(rec.extra["system"], {})[rec.extra["history"]] = rec.extra["messages"] / rec.median
    ladder = {rec.extra["history"]: rec.extra["messages"] / rec.median
              for rec in records.values() if rec.key.startswith("receipts.apply.h")}
    for system, points in sorted(series.items()):
        xs = sorted(points)
        ax.plot(xs, [points[x] for x in xs], marker="o", label=results.APPEND_LABEL.get(system, system))
    if ladder:
        xs = sorted(ladder)
        ax.plot(xs, [ladder[x] for x in xs], marker="s", linestyle="--", color="black",
                label="mobstore apply_runtime_turn (history ladder)")
    if series or ladder:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("messages already in the session")
        ax.set_ylabel("messages/s (a durable turn = 2 messages)")
        ax.set_title("Append throughput vs history length (WAL + synchronous=FULL)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "append_vs_history.png"), dpi=110)
        made.append("![append throughput vs history length](append_vs_history.png)")
    plt.close(fig)

    # 2. digest throughput vs raw SHA-256, per message size
    sizes = sorted({rec.extra["size"] for rec in records.values() if rec.key.startswith("digest.transcript.")})
    if sizes:
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        width = 0.27
        names = [("default", "engine.digest"), ("python", "pure-Python reference"),
                 ("hashlib", "raw hashlib.sha256 (same canonical bytes)")]
        for i, (impl, label) in enumerate(names):
            vals = []
            for size in sizes:
                rec = records.get(f"digest.transcript.{impl}.{size}")
                vals.append(rec.extra["canonical_bytes"] / rec.median / 1e6 if rec else 0)
            if impl == "default":
                impls = {records[k].extra.get("impl") for k in records if k.startswith("digest.transcript.default.")}
                label += f" ({', '.join(sorted(i for i in impls if i))})"
            ax.bar([j + (i - 1) * width for j in range(len(sizes))], vals, width, label=label)
        ax.set_xticks(range(len(sizes)))
        ax.set_xticklabels([f"~{s:,} B messages" for s in sizes])
        ax.set_yscale("log")
        ax.set_ylabel("MB/s of canonical transcript bytes")
        ax.set_title("f3 transcript digest throughput vs raw SHA-256")
        ax.grid(True, axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "digest_throughput.png"), dpi=110)
        plt.close(fig)
        made.append("![digest throughput vs raw SHA-256](digest_throughput.png)")
    return made


def render(data: dict, command: list[str] | None, elapsed: float | None, out_dir: str) -> str:
    records = results.records_from_dicts(data.get("benchmarks", []))
    mi = data.get("machine_info", {})
    versions = mi.get("mobstore", {})
    knobs = mi.get("mobstore_knobs", {})
    when = data.get("datetime", "")[:19].replace("T", " ")
    rows = results.target_rows(records, knobs, versions)
    peer = results.peer_rows(records)
    mem = mi.get("memory_bytes")
    quick = knobs.get("quick")
    lines = [
        "# mobstore benchmarks",
        "",
        f"Results of a **{'quick' if quick else 'full'}** run on {when} UTC"
        + (f" ({elapsed / 60:.1f} minutes)" if elapsed else "") + ", written by `benches/report.py` from "
        "`results.json` (pytest-benchmark's JSON of that run, kept beside this file).",
        "",
        "> Absolute figures vary between machines (and on a shared machine, between minutes); the ratios, each "
        "measured within one run on the same data, are what hold. Every figure below comes from a benchmark in "
        "`benches/bench_*.py`, named in its table.",
        "",
    ]
    if quick:
        lines += ["> **Quick mode**: the small ladder (longest history 10,000 messages, 10,000 sessions). "
                  "Rows whose target size was not reached say so; the full run (`python benches/report.py`) "
                  "measures them at target size.", ""]
    lines += [
        "## How to run",
        "",
        "```",
        "pip install -e '.[bench]'                      # peers + matplotlib; pytest-benchmark",
        "MOBSTORE_BENCH_QUICK=1 pytest benches -q      # quick: < 2 minutes on 2 cores (CI runs this)",
        "pytest benches -q                              # full ladder",
        "python benches/report.py [--quick] [--out DIR] # run + write README.md, results.json, plots",
        "```",
        "",
        "Each run ends with the targets (docs/performance.md) and the peer table, computed from that run. The first full run "
        "builds the big fixtures (a 100,000-message session, a 1,000,000-session store) and caches them; "
        "later runs reuse them.",
        "",
        "| knob (environment) | default | meaning |",
        "|---|---|---|",
        *[f"| `{k}` | {d} | {m} |" for k, d, m in KNOB_DOCS],
        "",
        "## Machine, versions, command",
        "",
        f"- CPU: {mi.get('cpu_model', mi.get('cpu', {}).get('brand_raw', '?'))}, {mi.get('cpu_count', '?')} cores"
        + (f", {mem / 2**30:.0f} GiB memory" if mem else "") + f"; {mi.get('system', '')} {mi.get('release', '')}",
        f"- Python {versions.get('python', mi.get('python_version'))}; SQLite {versions.get('sqlite_apsw')} "
        f"(apsw {versions.get('apsw')}); the stdlib sqlite3 of the peers and the naive store runs SQLite "
        f"{versions.get('sqlite_stdlib')}",
        f"- mobstore {versions.get('mobstore')}; **DIGEST_IMPL = {versions.get('digest_impl')}**"
        + (f" (NATIVE_ERROR: {versions.get('native_error')})" if versions.get("native_error") else ""),
        f"- cffi {versions.get('cffi')}, xxhash {versions.get('xxhash')}, orjson {versions.get('orjson')}, "
        f"pytest-benchmark {versions.get('pytest-benchmark')}, matplotlib {versions.get('matplotlib')}",
        f"- peers: openai-agents {versions.get('openai-agents') or 'not installed'}, langgraph-checkpoint-sqlite "
        f"{versions.get('langgraph-checkpoint-sqlite') or 'not installed'} (langgraph-checkpoint "
        f"{versions.get('langgraph-checkpoint') or '—'})",
        f"- knobs: seed {knobs.get('seed')}, sizes {knobs.get('sizes')}, histories {knobs.get('histories')}, "
        f"sessions {knobs.get('sessions')}, members {knobs.get('members')}, transcript {knobs.get('transcript')}, "
        f"peer histories {knobs.get('peer_histories')}, peer sessions {knobs.get('peer_sessions')}, "
        f"disk messages {knobs.get('disk_messages')}",
        (f"- command: `{command[0]}`, which runs `{command[1]}` (from the repository root)" if command else
         f"- command: `{data.get('mobstore_command', '?')}` (rendered later with --from-json)"),
        "",
        "## targets (docs/performance.md)",
        "",
        "Statistic: the median of each benchmark's rounds; a ratio divides two medians of this run.",
        "",
        *results.format_targets_markdown(rows),
        "",
    ]
    if peer:
        lines += [
            "## Peers",
            "",
            "The same generated turns for every system; WAL + synchronous=FULL on every connection that writes "
            "(set by the benchmark and checked). \"Growth\" is the per-turn cost at the longest history over the "
            "shortest. mobstore appends with `apply_runtime_turn` (messages, digest state, receipt and events in one "
            "transaction), loads with `Store.messages` and answers \"sessions of mob G\" with `mob_members` (the "
            "full membership rule). How each peer is driven is in `benches/peers.py`: openai-agents through its async "
            "`SQLiteSession` (add_items / get_items from one event loop); LangGraph as a messages graph stores its "
            "state, one `SqliteSaver.put` per turn holding the whole message list (the least a graph writes per "
            "turn); the naive store is stdlib sqlite3 + json written for this benchmark. openai-agents has no "
            "session metadata, so \"sessions of mob G\" there is a primary-key range scan of a session-id prefix "
            "(it cannot check realm or labels and returns broken claims as members).",
            "",
            *results.format_peers_markdown(peer),
            "",
        ]
    fleet = results.fleet_rows(records)
    if fleet:
        lines += [
            "## Fleet",
            "",
            "`mobstore fleet reconcile` over N store files (`benches/bench_fleet.py`; docs/fleet.md): the fleet "
            "from start (discovery, DuckDB with the sqlite extension loaded from its package, every file read, "
            "the reconciliation), the same on an open Fleet (per-file cost alone), and the baseline: looping "
            "`Store.reconcile_mob` over the files and merging in Python. The same answer on both sides, checked "
            "before timing.",
            "",
            *results.format_fleet_markdown(fleet),
            "",
            *results.fleet_other_lines(records),
            "",
        ]
    lines += ["## All results", ""] + results.results_tables_markdown(records)
    made = plots(records, out_dir)
    lines += ["## Plots", ""] + [f"{m}\n" for m in made]
    lines += [
        "## Method",
        "",
        "- Data: `engine.demo`'s meerkat-shaped generators (user turns; block_assistant turns whose tool_use "
        "args nest objects and floats), seeded (`MOBSTORE_BENCH_SEED`); both sides of every ratio get the same "
        "messages, as the same Python objects or the same bytes. Before timing, each comparison checks that "
        "both sides give the same answer (digest, loaded messages, member set).",
        "- Big stores are built by bulk inserts straight into the tables in one transaction, with rows exactly "
        "as the API writes them (`bench_store.py::test_bulk_builder_matches_api` compares them row by row), and "
        "cached on disk. Writers work on a fresh copy per benchmark, so every WAL starts empty and grows during "
        "the rounds (a long-lived store reuses its WAL after checkpoints, which is somewhat cheaper for everyone).",
        "- Interleaving: within a group, before each timed round every other member of the group does its "
        "operation once (untimed, in rotating order), so load changes on the machine fall on all of them "
        "alike. Exceptions: the pure-Python digest (too slow to repeat), the naive way (idem) and LangGraph's "
        "append (it writes the whole history per turn).",
        "- Durability: every durable comparison commits one transaction per turn with WAL + synchronous=FULL "
        "(one fsync of the WAL per commit, the same for every system). The digest-after-append rows run at "
        "synchronous=OFF on purpose: they test that the digest's cost does not grow with the transcript, and an "
        "fsync would hide such growth.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="MOBSTORE_BENCH_QUICK=1 (the CI ladder)")
    ap.add_argument("--out", default=HERE, help="output directory (default: benches/)")
    ap.add_argument("--from-json", help="render this pytest-benchmark JSON instead of running the suite")
    args = ap.parse_args(argv)
    out_dir = os.path.abspath(args.out)
    os.makedirs(out_dir, exist_ok=True)
    json_out = os.path.join(out_dir, "results.json")
    command, elapsed, code = None, None, 0
    if args.from_json:
        if os.path.abspath(args.from_json) != json_out:
            shutil.copyfile(args.from_json, json_out)
    else:
        tmp_dir = tempfile.mkdtemp(prefix="mobstore-report-")
        tmp_json, log = os.path.join(tmp_dir, "results.json"), os.path.join(tmp_dir, "run.log")
        shown, code, elapsed = run_suite(args.quick, tmp_json, log, extra)
        print(f"pytest output kept in {log}")
        shown = [c if not c.startswith("--benchmark-json=") else "--benchmark-json=results.json" for c in shown]
        report_cmd = ["python", "benches/report.py"] + (["--quick"] if args.quick else []) + \
            (["--out", args.out] if out_dir != HERE else []) + (["--", *extra] if extra else [])
        command = [" ".join(report_cmd), " ".join(shlex.quote(c) for c in shown)]
        if not os.path.exists(tmp_json) or os.path.getsize(tmp_json) == 0:
            print(f"pytest exited {code} without writing results", file=sys.stderr)
            return code or 1
        shutil.move(tmp_json, json_out)
    with open(json_out, encoding="utf-8") as f:
        data = json.load(f)
    text = render(data, command, elapsed, out_dir)
    with open(os.path.join(out_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(f"wrote {os.path.join(out_dir, 'README.md')}" + (f" (pytest exit code {code})" if code else ""))
    return code


if __name__ == "__main__":
    sys.exit(main())
