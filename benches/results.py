"""From benchmark results to targets (docs/performance.md), tables and plots.

Shared by conftest.py (the summary printed at the end of `pytest benches`) and report.py
(benches/README.md). Input: pytest-benchmark's per-benchmark dicts (`--benchmark-json`
"benchmarks" entries). Every benchmark names itself with extra_info["key"]; the statistic
used throughout is the median of the rounds. A ratio is always between two benchmarks of
the same run, same data, same machine.
"""

from __future__ import annotations

import dataclasses
import os
import re

TARGET_HISTORY = 100_000      # the target: "100,000 vs 100 messages"
TARGET_SESSIONS = 1_000_000   # the target: "1,000 members among 1,000,000 sessions"
TARGET_TRANSCRIPT = 4000

PEERS = ("mobstore", "openai-agents", "langgraph", "naive")
PEER_LABEL = {
    "mobstore": "mobstore",
    "mobstore-append": "mobstore append_messages (no receipt)",
    "openai-agents": "openai-agents SQLiteSession",
    "langgraph": "langgraph SqliteSaver",
    "naive": "naive sqlite3 + json",
    "naive-on-mobstore": "naive sqlite3 + json reading mobstore's file",
}
# What each system does in the append rows.
APPEND_LABEL = {
    "mobstore": "mobstore apply_runtime_turn (messages + receipt)",
    "mobstore-append": "mobstore append_messages (no receipt)",
    "openai-agents": "openai-agents SQLiteSession.add_items",
    "langgraph": "langgraph SqliteSaver.put (whole list)",
    "naive": "naive sqlite3 + json",
}


@dataclasses.dataclass(frozen=True)
class Record:
    key: str
    group: str
    name: str
    median: float        # seconds per round
    minimum: float
    mean: float
    stddev: float
    rounds: int
    extra: dict

    def per_op(self) -> float:
        """Seconds per operation (extra "ops": operations per round), extrapolated if scaled."""
        return self.median * self.extra.get("scale", 1.0) / self.extra.get("ops", 1)


def records_from_dicts(benchmarks: list[dict]) -> dict[str, Record]:
    out: dict[str, Record] = {}
    for b in benchmarks:
        extra = b.get("extra_info") or {}
        stats = b.get("stats") or {}
        key = extra.get("key")
        if not key or "median" not in stats:
            continue
        out[key] = Record(key, b.get("group") or "", b.get("name", ""), stats["median"], stats["min"],
                          stats["mean"], stats.get("stddev", 0.0), stats.get("rounds", 0), extra)
    return out


# ------------------------------------------------------------------------------------------
# formatting helpers


def fmt_time(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e9:.0f} ns"


def fmt_ratio(x: float | None) -> str:
    if x is None:
        return "—"
    if x >= 100:
        return f"{x:,.0f}×"
    if x >= 10:
        return f"{x:.1f}×"
    return f"{x:.2f}×"


def fmt_rate(x: float | None, unit: str) -> str:
    if x is None:
        return "—"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M{unit}"
    if x >= 1e4:
        return f"{x / 1e3:.1f} k{unit}"
    return f"{x:,.0f} {unit}"


def fmt_int(x) -> str:
    return f"{x:,}" if isinstance(x, int) else str(x)


# ------------------------------------------------------------------------------------------
# targets (docs/performance.md)


@dataclasses.dataclass
class TargetRow:
    what: str
    target: str
    measured: str
    status: str          # "met", "NOT met", "not measured"
    note: str = ""


def _status(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "NOT met")


def _keys_matching(records: dict[str, Record], pattern: str) -> dict[int, Record]:
    """{number: record} for keys matching pattern with one (\\d+) group."""
    out = {}
    for key, rec in records.items():
        m = re.fullmatch(pattern, key)
        if m:
            out[int(m.group(1))] = rec
    return out


def target_rows(records: dict[str, Record], knobs: dict, versions: dict) -> list[TargetRow]:
    impl = versions.get("digest_impl")
    reduced = "quick mode" if knobs.get("quick") else "a reduced ladder (MOBSTORE_BENCH_* knobs)"
    rows: list[TargetRow] = []
    r = records.get

    # 1. f3 digest of a 4,000-message transcript
    native, python, raw = r("digest.transcript.default.1024"), r("digest.transcript.python.1024"), \
        r("digest.transcript.hashlib.1024")
    n = native.extra.get("messages") if native else None
    size_note = "" if n in (None, TARGET_TRANSCRIPT) else f"transcript of {n:,} messages (target: 4,000). "
    impl_note = "" if impl == "native" else (
        f"DIGEST_IMPL={impl}: the native module was not loaded, so the 'native' side is the Python path"
        f" ({versions.get('native_error')}). ")
    if native and raw:
        ratio = raw.median / native.median
        mbs = native.extra["canonical_bytes"] / native.median / 1e6
        rows.append(TargetRow(
            "f3 digest, 4,000 × ~1 KiB messages: throughput vs raw hashlib.sha256 over the same canonical bytes",
            "≥ 0.5×", f"{fmt_ratio(ratio)} ({mbs:.0f} MB/s vs {raw.extra['canonical_bytes'] / raw.median / 1e6:.0f} MB/s)",
            _status(ratio >= 0.5 and impl == "native"), size_note + impl_note))
    else:
        rows.append(TargetRow("f3 digest vs raw hashlib.sha256", "≥ 0.5×", "—", _status(None)))
    if native and python:
        ratio = python.median / native.median
        rows.append(TargetRow(
            "f3 digest, 4,000 × ~1 KiB messages: native vs the pure-Python path",
            "≥ 20×", f"{fmt_ratio(ratio)} ({fmt_time(native.median)} vs {fmt_time(python.median)})",
            _status(ratio >= 20 and impl == "native"), size_note + impl_note))
    else:
        rows.append(TargetRow("f3 digest vs the pure-Python path", "≥ 20×", "—", _status(None)))

    # 2. one ~1 KiB message
    for inp, label in (("bytes", "JSON bytes input"), ("dict", "dict input")):
        ours, base = r(f"digest.message.{inp}.mobstore.1024"), r(f"digest.message.{inp}.orjson.1024")
        if ours and base:
            ratio = ours.median / base.median
            rows.append(TargetRow(
                f"one ~1 KiB message, canonical + SHA-256 ({label}) vs orjson.dumps(OPT_SORT_KEYS) + hashlib.sha256"
                + (" (orjson side: loads + dumps)" if inp == "bytes" else ""),
                "≤ 0.6× the time", f"{fmt_ratio(ratio)} ({fmt_time(ours.per_op())} vs {fmt_time(base.per_op())})",
                _status(ratio <= 0.6), impl_note))
        else:
            rows.append(TargetRow(f"one ~1 KiB message ({label})", "≤ 0.6× the time", "—", _status(None)))

    # 2b. jcs digest of an openai-agents transcript: vs the rfc8785 package, vs orjson (not RFC 8785)
    for inp, label in (("bytes", "stored JSON bytes"), ("dict", "dict input")):
        ours, ref, fast = r(f"digest.jcs.{inp}.mobstore"), r(f"digest.jcs.{inp}.rfc8785"), r(f"digest.jcs.{inp}.orjson")
        n = ours.extra.get("messages") if ours else None
        what = f"jcs digest, {n or TARGET_TRANSCRIPT:,} openai-agents items ({label})"
        if ours and ref:
            ratio = ref.median / ours.median
            rows.append(TargetRow(f"{what} vs rfc8785.dumps + hashlib.sha256", "≥ 30× faster",
                                  f"{fmt_ratio(ratio)} ({fmt_time(ours.median)} vs {fmt_time(ref.median)})",
                                  _status(ratio >= 30 and impl == "native"), impl_note))
        else:
            rows.append(TargetRow(f"{what} vs rfc8785 + hashlib", "≥ 30× faster", "—", _status(None)))
        if ours and fast:
            ratio = ours.median / fast.median
            rows.append(TargetRow(f"{what} vs orjson.dumps(OPT_SORT_KEYS) + hashlib.sha256 (not RFC 8785)",
                                  "≤ 1.0× the time", f"{fmt_ratio(ratio)} ({fmt_time(ours.median)} vs {fmt_time(fast.median)})",
                                  _status(ratio <= 1.0 and impl == "native"),
                                  ("orjson side: orjson.loads + dumps. " if inp == "bytes" else "") + impl_note))
        else:
            rows.append(TargetRow(f"{what} vs orjson + hashlib", "≤ 1.0× the time", "—", _status(None)))

    # 3. digest after appending one message; 4b. apply_runtime_turn flat
    for prefix, what, limit in (
        ("receipts.digest_after_append", "digest after appending 1 message (append + transcript_digest)", 1.3),
        ("receipts.digest_after_reopen", "digest after appending 1 message, right after reopening the file", 1.3),
        ("receipts.apply", "apply_runtime_turn per-turn cost (2 × ~1 KiB + receipt, synchronous=FULL)", 1.3),
    ):
        by_h = _keys_matching(records, re.escape(prefix) + r"\.h(\d+)")
        if len(by_h) >= 2 and min(by_h) <= 100:
            lo, hi = min(by_h), max(by_h)
            ratio = by_h[hi].median / by_h[lo].median
            note = "" if hi >= TARGET_HISTORY else f"longest history measured: {hi:,} (target: 100,000; {reduced}). "
            rows.append(TargetRow(
                f"{what}: {hi:,} vs {lo:,} messages", "≤ 1.3×",
                f"{fmt_ratio(ratio)} ({fmt_time(by_h[hi].median)} vs {fmt_time(by_h[lo].median)})",
                _status(ratio <= limit), note))
        else:
            rows.append(TargetRow(what, "≤ 1.3×", "—", _status(None)))

    # 4a. apply_runtime_turn vs openai-agents add_items
    by_h = _keys_matching(records, r"store\.append\.h(\d+)\.mobstore")
    parts, oks = [], []
    for h in sorted(by_h):
        peer = r(f"store.append.h{h}.openai-agents")
        if peer:
            ratio = peer.median / by_h[h].median  # both append 2 messages per call
            oks.append(ratio >= 2)
            parts.append(f"{fmt_ratio(ratio)} at {h:,} messages "
                         f"({fmt_rate(2 / by_h[h].median, 'msg/s')} vs {fmt_rate(2 / peer.median, 'msg/s')})")
    rows.append(TargetRow(
        "apply_runtime_turn msgs/s vs openai-agents SQLiteSession.add_items (WAL + synchronous=FULL both)",
        "≥ 2×", "; ".join(parts) or "—", _status(all(oks) if oks else None),
        "" if oks else "openai-agents not installed or skipped. "))

    # 5. load a 4,000-message session
    ours, base = r("store.load.mobstore"), r("store.load.naive")
    if ours and base:
        ratio = ours.median / base.median
        rows.append(TargetRow(
            f"load a {ours.extra.get('messages', 0):,}-message session (Store.messages) vs a naive sqlite3 + json reader",
            "≤ 0.5×", f"{fmt_ratio(ratio)} ({fmt_time(ours.median)} vs {fmt_time(base.median)})",
            _status(ratio <= 0.5)))
    else:
        rows.append(TargetRow("load a 4,000-message session", "≤ 0.5×", "—", _status(None)))

    # 6. session_belongs_to_mob vs a bare PK lookup, at the largest store measured
    by_n = _keys_matching(records, r"membership\.belongs\.n(\d+)\.mobstore")
    if by_n:
        n = max(by_n)
        base = r(f"membership.belongs.n{n}.apsw_pk")
        if base:
            ratio = by_n[n].median / base.median
            rows.append(TargetRow(
                f"session_belongs_to_mob vs a bare apsw primary-key lookup ({n:,} sessions)", "≤ 1.5×",
                f"{fmt_ratio(ratio)} ({fmt_time(by_n[n].per_op())} vs {fmt_time(base.per_op())} per call)",
                _status(ratio <= 1.5)))
    else:
        rows.append(TargetRow("session_belongs_to_mob vs bare PK lookup", "≤ 1.5×", "—", _status(None)))

    # 7. mob_members
    by_n = _keys_matching(records, r"membership\.members\.n(\d+)\.mobstore")
    if by_n:
        n = max(by_n)
        ours = by_n[n]
        note = "" if n >= TARGET_SESSIONS else f"measured among {n:,} sessions (target: 1,000,000; {reduced}). "
        members = ours.extra.get("members")
        rows.append(TargetRow(f"mob_members ({members:,} members among {n:,} sessions)", "≤ 2 ms",
                              fmt_time(ours.median), _status(ours.median <= 2e-3), note))
        seed = r(f"membership.members.n{n}.naive_way")
        if seed:
            ratio = seed.per_op() / ours.median
            extra = ""
            if seed.extra.get("scale", 1.0) != 1.0:
                extra = (f"the naive way was timed on {seed.extra['scanned']:,} of {n:,} sessions and "
                         f"extrapolated linearly (×{seed.extra['scale']:.1f}). ")
            rows.append(TargetRow(
                f"mob_members vs the naive way (list sessions, load each one's metadata, check in Python), {n:,} sessions",
                "≥ 1,000×", f"{fmt_ratio(ratio)} ({fmt_time(ours.median)} vs {fmt_time(seed.per_op())})",
                _status(ratio >= 1000), note + extra))
    else:
        rows.append(TargetRow("mob_members", "≤ 2 ms; ≥ 1,000× the naive way", "—", _status(None)))

    # reconcile_mob: no target number; the time is reported
    by_n = _keys_matching(records, r"membership\.reconcile\.n(\d+)")
    if by_n:
        n = max(by_n)
        rec = by_n[n]
        rows.append(TargetRow(f"reconcile_mob with a roster ({rec.extra.get('members', 0):,} members among {n:,} sessions)",
                              "(time only)", fmt_time(rec.median), "measured"))

    # 8. disk
    disk = r("store.disk.mobstore.1024")
    if disk:
        x = disk.extra
        note = (f"bytes per message = (file after {x['messages']:,} messages − file of the empty store) / "
                f"{x['messages']:,}; the whole file is {fmt_ratio(x['total_ratio'])} the raw JSON")
        if "messages_table_ratio" in x:
            note += f"; the ms_messages table alone {fmt_ratio(x['messages_table_ratio'])}"
        rows.append(TargetRow(
            "disk: bytes per message (~1 KiB, with receipts and events) vs the raw message JSON",
            "≤ 1.3×", f"{fmt_ratio(x['ratio'])} ({x['bytes_per_message']:,.0f} vs {x['raw_bytes_per_message']:,.0f} B)",
            _status(x["ratio"] <= 1.3), note + ". "))
    else:
        rows.append(TargetRow("disk vs raw message JSON", "≤ 1.3×", "—", _status(None)))
    rows += _openai_agents_rows(records)
    rows.extend(write_path_rows(records, impl))
    return rows


def _openai_agents_rows(records: dict[str, Record]) -> list[TargetRow]:
    """MobstoreSession vs SQLiteSession per openai-agents turn (benches/bench_openai_agents.py)."""
    rows = []
    for c, what, target, limit in ((1, "one agent", "≥ 1.0×", 1.0), (16, "16 concurrent sessions, one file", "(figure)", None)):
        ours, peer = records.get(f"openai_agents.turn.c{c}.mobstore"), records.get(f"openai_agents.turn.c{c}.openai-agents")
        label = (f"MobstoreSession vs openai-agents SQLiteSession, per turn (get_items + 3 add_items, "
                 f"WAL + synchronous=FULL both), {what}")
        if ours and peer:
            ratio = peer.per_op() / ours.per_op()
            rows.append(TargetRow(label, target, f"{fmt_ratio(ratio)} ({fmt_time(ours.per_op())} vs {fmt_time(peer.per_op())} per turn)",
                                  _status(ratio >= limit) if limit is not None else "measured"))
        else:
            rows.append(TargetRow(label, target, "—", _status(None), "openai-agents not installed or skipped. "))
    return rows


def _mb(x: float) -> str:
    return f"{x / 1e6:,.0f} MB"


def write_path_rows(records: dict[str, Record], impl) -> list[TargetRow]:
    """The group-commit, write, verify, dict and memory rows (bench_mob.py, bench_verify.py,
    bench_digest.py, bench_memory.py)."""
    r = records.get
    rows: list[TargetRow] = []
    for agents in (16, 64):
        ours, peer = r(f"mob.agents{agents}.mobstore"), r(f"mob.agents{agents}.openai-agents")
        what = (f"{agents} concurrent agents on one file, msgs/s: mobstore PersistentSessionService vs "
                f"openai-agents SQLiteSession (WAL + synchronous=FULL both)")
        if ours and peer:
            ratio = peer.median / ours.median
            msgs = ours.extra["messages"]
            rows.append(TargetRow(what, "≥ 3×", f"{fmt_ratio(ratio)} ({fmt_rate(msgs / ours.median, 'msg/s')} vs "
                                  f"{fmt_rate(msgs / peer.median, 'msg/s')})", _status(ratio >= 3),
                                  f"{ours.extra['turns_per_agent']} turns per agent per round. "))
        else:
            rows.append(TargetRow(what, "≥ 3×", "—", _status(None), "openai-agents not installed or skipped. "))
    ours, floor = r("single.apply.mobstore"), r("single.apply.apsw")
    what = "one sequential agent: apply_runtime_turn (2 × ~1 KiB dicts) vs a bare apsw 2-row INSERT transaction at FULL"
    if ours and floor:
        ratio = ours.median / floor.median
        note = ""
        if "wal_bytes_per_turn" in ours.extra and "wal_bytes_per_turn" in floor.extra:
            note = (f"WAL bytes per turn {ours.extra['wal_bytes_per_turn']:,.0f} vs "
                    f"{floor.extra['wal_bytes_per_turn']:,.0f}. ")
        if ratio > 1.15:
            note += ("mobstore's commit writes the pages of four b-trees (messages, receipts, events, "
                     "the sessions row) against the floor's one: docs/performance.md. ")
        rows.append(TargetRow(what, "≤ 1.15×", f"{fmt_ratio(ratio)} ({fmt_time(ours.median)} vs {fmt_time(floor.median)})",
                              _status(ratio <= 1.15), note))
    else:
        rows.append(TargetRow(what, "≤ 1.15×", "—", _status(None)))
    ours, base = r("digest.dict_floats.mobstore"), r("digest.dict_floats.orjson")
    what = "~1 KiB dict message with floats: transcript_digest([dict]) vs orjson.dumps(OPT_SORT_KEYS) + hashlib.sha256"
    if ours and base:
        ratio = ours.median / base.median
        note = ""
        canon = r("digest.message.bytes.mobstore.1024")
        if ratio > 1.5 and canon:
            note = (f"the native canonical form + SHA-256 of ~1 KiB JSON bytes alone takes {fmt_time(canon.per_op())} "
                    "(digest.message.bytes): the dict side is bound by the canonicalizer, not by dict to bytes. ")
        rows.append(TargetRow(what, "≤ 1.5× the time", f"{fmt_ratio(ratio)} ({fmt_time(ours.per_op())} vs "
                              f"{fmt_time(base.per_op())})", _status(ratio <= 1.5), note))
    else:
        rows.append(TargetRow(what, "≤ 1.5× the time", "—", _status(None)))
    ours, raw, py = r("verify.store.default"), r("verify.store.hashlib"), r("verify.store.python")
    if ours and raw:
        ratio = raw.median / ours.median
        x = ours.extra
        rows.append(TargetRow(
            f"verify() of {x['receipts']:,} receipts over {_mb(x['stored_bytes'])}: throughput vs raw hashlib.sha256 "
            "over the stored bytes", "≥ 0.3×",
            f"{fmt_ratio(ratio)} ({fmt_time(ours.median)} vs {fmt_time(raw.median)})",
            _status(ratio >= 0.3 and impl == "native")))
    else:
        rows.append(TargetRow("verify() vs raw sha256", "≥ 0.3×", "—", _status(None)))
    if ours and py:
        ratio = py.median / ours.median
        rows.append(TargetRow("verify(): the pure-Python fallback vs native", "≤ 5×",
                              f"{fmt_ratio(ratio)} ({fmt_time(py.median)} vs {fmt_time(ours.median)})",
                              _status(ratio <= 5 and impl == "native"),
                              "the fallback hashes with hashlib; what remains is the Python reference "
                              "canonicalizer (engine/_canon_py/). "))
    one, raw1 = r("digest.transcript.onethread.1024"), r("digest.transcript.hashlib.1024")
    if one and raw1:
        ratio = raw1.median / one.median
        rows.append(TargetRow("f3 digest, 4,000 × ~1 KiB messages, one thread (MOBSTORE_DIGEST_THREADS=1) vs raw "
                              "hashlib.sha256", "≥ 0.4×",
                              f"{fmt_ratio(ratio)} ({one.extra['canonical_bytes'] / one.median / 1e6:.0f} MB/s)",
                              _status(ratio >= 0.4 and impl == "native"),
                              "" if ratio >= 0.4 else "one thread canonicalises and hashes in turn: bound by the "
                              "canonicalizer (_native/message.c). "))
    rd = r("memory.messages")
    if rd:
        x = rd.extra
        ratio = x["peak_growth"] / x["json_bytes"]
        note = ""
        st = r("memory.iter_messages")
        if st:
            note = (f"the streaming reader iter_messages(): peak growth {_mb(st.extra['peak_growth'])} "
                    f"({fmt_ratio(st.extra['peak_growth'] / st.extra['json_bytes'])}). ")
        if ratio > 2:
            note += ("messages() returns every message as a dict, and the dicts alone take ~4× their JSON "
                     "(tracemalloc, docs/performance.md); the bounded way to read a long transcript is iter_messages(). ")
        rows.append(TargetRow(f"peak RSS growth of messages() of {x['messages']:,} messages vs their JSON bytes",
                              "≤ 2×", f"{fmt_ratio(ratio)} ({_mb(x['peak_growth'])} for {_mb(x['json_bytes'])})",
                              _status(ratio <= 2), note))
    ap = r("memory.append")
    if ap:
        x = ap.extra
        rows.append(TargetRow(f"peak RSS of one apply_runtime_turn of {x['messages']:,} small dicts (whole process)",
                              "≤ 1 GB", f"{_mb(x['peak_rss'])} (growth during the call {_mb(x['peak_growth'])})",
                              _status(x["peak_rss"] <= 1e9),
                              "" if x["messages"] >= 1_000_000 else "fewer messages than the target's 1,000,000 (quick mode). "))
    return rows


def format_targets_text(rows: list[TargetRow]) -> list[str]:
    out = []
    for row in rows:
        out.append(f"[{row.status:^12}] {row.what}")
        out.append(f"               target {row.target}; measured {row.measured}")
        if row.note:
            out.append(f"               note: {row.note.strip()}")
    return out


def format_targets_markdown(rows: list[TargetRow]) -> list[str]:
    out = ["| what | target | measured | status | note |", "|---|---|---|---|---|"]
    for row in rows:
        status = {"met": "**met**", "NOT met": "**NOT met**"}.get(row.status, row.status)
        out.append(f"| {row.what} | {row.target} | {row.measured} | {status} | {row.note.strip()} |")
    return out


# ------------------------------------------------------------------------------------------
# peers


@dataclasses.dataclass
class PeerRow:
    system: str
    append: dict[int, float]          # history length -> msgs/s
    growth: float | None              # per-turn cost at the longest / shortest history
    load: float | None                # seconds
    mob_query: float | None           # seconds
    mob_query_note: str
    disk_ratio: float | None
    disk_per_message: float | None


def peer_rows(records: dict[str, Record]) -> list[PeerRow]:
    rows = []
    for system in ("mobstore", "mobstore-append", "openai-agents", "langgraph", "naive"):
        by_h = _keys_matching(records, r"store\.append\.h(\d+)\." + re.escape(system))
        append = {h: rec.extra.get("messages", 2) / rec.median for h, rec in sorted(by_h.items())}
        growth = by_h[max(by_h)].median / by_h[min(by_h)].median if len(by_h) >= 2 else None
        load = records.get(f"store.load.{system}")
        mq = records.get(f"membership.peers.{system}")
        disk = records.get(f"store.disk.{system}.1024")
        if not (append or load or mq or disk):
            continue
        rows.append(PeerRow(
            system, append, growth, load.median if load else None, mq.median if mq else None,
            mq.extra.get("note", "") if mq else "",
            disk.extra["ratio"] if disk else None,
            disk.extra["bytes_per_message"] if disk else None))
    naive_reader = records.get("store.load.naive-on-mobstore")
    if naive_reader:
        rows.append(PeerRow("naive-on-mobstore", {}, None, naive_reader.median, None, "", None, None))
    return rows


def _peer_histories(rows: list[PeerRow]) -> list[int]:
    return sorted({h for row in rows for h in row.append})


def format_peers_text(rows: list[PeerRow]) -> list[str]:
    hs = _peer_histories(rows)
    head = f"{'system':<44}" + "".join(f"{'msg/s @' + format(h, ','):>16}" for h in hs) + \
        f"{'growth':>9}{'load':>11}{'mob query':>12}{'disk×raw':>10}"
    out = [head]
    for row in rows:
        line = f"{PEER_LABEL.get(row.system, row.system):<44}"
        line += "".join(f"{fmt_rate(row.append.get(h), 'msg/s') if h in row.append else '—':>16}" for h in hs)
        line += f"{fmt_ratio(row.growth):>9}{fmt_time(row.load):>11}{fmt_time(row.mob_query):>12}"
        line += f"{fmt_ratio(row.disk_ratio):>10}"
        out.append(line)
    return out


def format_peers_markdown(rows: list[PeerRow], histories_note: str = "") -> list[str]:
    hs = _peer_histories(rows)
    out = ["| system | " + " | ".join(f"append msgs/s at {h:,} messages" for h in hs)
           + " | per-turn cost growth | load 4,000 messages | sessions of mob G among 10,000 | disk bytes/message (× raw JSON) |",
           "|---|" + "---:|" * len(hs) + "---:|---:|---:|---:|"]
    for row in rows:
        cells = [fmt_rate(row.append.get(h), "msg/s") if h in row.append else "—" for h in hs]
        disk = "—" if row.disk_ratio is None else f"{row.disk_per_message:,.0f} ({fmt_ratio(row.disk_ratio)})"
        mq = fmt_time(row.mob_query) + (f" ({row.mob_query_note})" if row.mob_query_note else "")
        out.append(f"| {PEER_LABEL.get(row.system, row.system)} | " + " | ".join(cells)
                   + f" | {fmt_ratio(row.growth)} | {fmt_time(row.load)} | {mq} | {disk} |")
    return out


# ------------------------------------------------------------------------------------------
# per-group tables

GROUP_ORDER = [
    ("digest.transcript", "f3 transcript digest (time per transcript; throughput of canonical bytes)"),
    ("digest.message", "one message, canonical form + SHA-256 (a round = 16 messages)"),
    ("digest.jcs", "jcs (RFC 8785) digest of a 4,000-item openai-agents transcript (time per transcript)"),
    ("digest.after_append", "append 1 message + transcript_digest, synchronous=OFF (time per call)"),
    ("digest.after_reopen", "append 1 message + transcript_digest right after reopening (time per call)"),
    ("apply_turn.history", "apply_runtime_turn, 2 × ~1 KiB messages + receipt, synchronous=FULL (time per turn)"),
    ("peers.append", "append one turn (2 × ~1 KiB messages), WAL + synchronous=FULL (time per turn)"),
    ("peers.load", "load a 4,000-message session as dicts"),
    ("peers.disk", "write N messages turn by turn from empty (one round; the bytes are the result)"),
    ("membership.belongs", "session_belongs_to_mob (a round = 100 calls; 1,000 ids, half of them members)"),
    ("membership.members", "members of one mob"),
    ("membership.reconcile", "reconcile_mob with a roster"),
    ("peers.mob_query", "sessions of mob G among 10,000 sessions"),
    ("fleet.reconcile", "reconcile one mob across N store files (bench_fleet.py)"),
    ("fleet.export", "export N store files as Parquet (one process per core)"),
    ("fleet.verify", "verify every store of a fleet"),
    ("mob.agents", "N agents at once on one file, each applying its turns (a round = every agent's turns; WAL + FULL)"),
    ("single.apply", "one sequential agent, one turn of 2 × ~1 KiB dicts, WAL + synchronous=FULL (time per turn)"),
    ("digest.dict_floats", "~1 KiB dict message holding floats, dict to digest (a round = 16 messages)"),
    ("verify.store", "verify() of a whole store (time per call)"),
    ("memory.", "peak memory, each in a fresh child process (time: the child's whole run)"),
    ("openai_agents.turn", "openai-agents Session, one turn per session (get_items + 3 add_items commits), "
                           "WAL + synchronous=FULL (time per round)"),
]


def _group_title(group: str) -> str:
    for prefix, title in GROUP_ORDER:
        if group.startswith(prefix):
            return title
    return group


def _group_rank(group: str) -> tuple:
    for i, (prefix, _t) in enumerate(GROUP_ORDER):
        if group.startswith(prefix):
            return (i, group)
    return (len(GROUP_ORDER), group)


def _label(rec: Record) -> str:
    x = rec.extra
    key = rec.key
    if key.startswith("digest.transcript."):
        impl = key.split(".")[2]
        return {"default": f"engine.digest ({x.get('impl')})", "python": "pure-Python reference",
                "onethread": "engine.digest, one thread (MOBSTORE_DIGEST_THREADS=1)",
                "hashlib": "raw hashlib.sha256 of the canonical bytes"}[impl] + f", {x['messages']:,} messages"
    if key.startswith("digest.jcs."):
        return {"mobstore": f"engine.digest.transcript_digest(..., 'jcs') ({x.get('digest_impl')})",
                "rfc8785": "rfc8785.dumps + sha256" + (" (after json.loads)" if x.get("input") == "bytes" else ""),
                "orjson": "orjson.dumps(OPT_SORT_KEYS) + sha256, not RFC 8785"
                + (" (after orjson.loads)" if x.get("input") == "bytes" else "")}[key.split(".")[3]] \
            + f", {x['messages']:,} items"
    if key.startswith("digest.dict_floats."):
        return {"mobstore": "engine.digest.transcript_digest([dict])",
                "orjson": "orjson.dumps(dict, OPT_SORT_KEYS) + sha256"}[key.split(".")[2]]
    if key.startswith("mob.agents"):
        return f"{PEER_LABEL.get(x['system'], x['system'])}, {x['agents']} agents × {x['turns_per_agent']} turns"
    if key.startswith("single.apply."):
        return {"mobstore": "mobstore apply_runtime_turn", "apsw": "bare apsw INSERT of the 2 rows"}[key.split(".")[2]]
    if key.startswith("verify.store."):
        return {"default": f"Store.verify() ({x.get('impl')})", "python": "Store.verify(), pure-Python path",
                "hashlib": "raw hashlib.sha256 of the stored bytes"}[key.split(".")[2]] + f", {x['receipts']:,} receipts"
    if key.startswith("memory."):
        return {"memory.messages": "Store.messages()", "memory.iter_messages": "Store.iter_messages()",
                "memory.append": "apply_runtime_turn of small dicts"}.get(key, key) + f", {x['messages']:,} messages"
    if key.startswith("digest.message."):
        return {"mobstore": "engine.digest.canonical_message + sha256",
                "orjson": "orjson.dumps(OPT_SORT_KEYS) + sha256" + (" (after orjson.loads)" if x.get("input") == "bytes" else "")
                }[key.split(".")[3]]
    if "history" in x and key.startswith("receipts."):
        return f"{x['history']:,} messages"
    if key.startswith("store.append."):
        return f"{APPEND_LABEL.get(x['system'], x['system'])} at {x['history']:,}"
    if key.startswith("store.load.") or key.startswith("membership.peers."):
        system = key.split(".", 2)[2]
        if system == "mobstore":
            return "mobstore Store.messages" if key.startswith("store.load.") else "mobstore mob_members"
        return PEER_LABEL.get(system, system)
    if key.startswith("store.disk."):
        name = "mobstore apply_runtime_turn" if x["system"] == "mobstore" else PEER_LABEL.get(x["system"], x["system"])
        return f"{name}, ~{x['size']:,} B messages"
    if key.startswith("membership.belongs."):
        return {"mobstore": "session_belongs_to_mob", "apsw_pk": "bare apsw PK lookup (ms_bindings)"}[key.split(".")[3]]
    if key.startswith("membership.members."):
        return {"mobstore": "mob_members (one SQL query)",
                "naive_way": "the naive way (list, load each metadata, check in Python)"}[key.split(".")[3]]
    if key.startswith("fleet.reconcile."):
        return {"fleet": "Fleet(paths).reconcile (DuckDB + sqlite extension, from start)",
                "fleet_warm": "Fleet.reconcile again (connection and extension loaded)",
                "parquet": "reconcile.sql on DuckDB over the Parquet export",
                "loop": "loop of Store.reconcile_mob over the files, merged in Python"}[key.split(".")[3]]
    if key.startswith("fleet.verify."):
        return {"fleet": "Fleet.verify (one process per core)", "loop": "Store.verify looped in one process"}[key.split(".")[3]]
    if key.startswith("fleet.export."):
        return "Fleet.export_parquet"
    if key.startswith("membership.reconcile."):
        return f"{x['sessions']:,} sessions"
    if key.startswith("openai_agents.turn."):
        name = "MobstoreSession (jcs)" if key.endswith(".mobstore") else "openai-agents SQLiteSession"
        return f"{name}, {x['ops']} session{'s' if x['ops'] > 1 else ''} at once"
    return key


def _extra_cell(rec: Record) -> str:
    x = rec.extra
    if rec.key.startswith("memory."):
        return f"peak RSS {x['peak_rss'] / 1e6:,.0f} MB, +{x['peak_growth'] / 1e6:,.0f} MB in the call; JSON {x['json_bytes'] / 1e6:,.0f} MB"
    if rec.key.startswith("mob.agents"):
        return fmt_rate(x["messages"] / rec.median, "msg/s")
    if rec.key.startswith("verify.store."):
        return f"{x['stored_bytes'] / rec.median / 1e6:,.0f} MB/s of stored bytes"
    if rec.key.startswith("single.apply.") and "wal_bytes_per_turn" in x:
        return f"{x['wal_bytes_per_turn']:,.0f} WAL bytes/turn"
    if "canonical_bytes" in x:
        return f"{x['canonical_bytes'] / rec.median / 1e6:,.0f} MB/s"
    if rec.key.startswith("store.disk."):
        return f"{x['bytes_per_message']:,.0f} B/message = {fmt_ratio(x['ratio'])} raw (file {x['bytes'] / 1e6:,.1f} MB)"
    if "messages" in x and rec.key.startswith(("store.append", "receipts.apply")):
        return fmt_rate(x["messages"] / rec.median, "msg/s")
    if rec.key.startswith("fleet.verify") and "cpu_seconds" in x:
        return f"CPU {x['cpu_seconds']:.2f} s (this process and its workers)"
    if rec.key.startswith("openai_agents.turn"):
        return f"{fmt_time(rec.per_op())} per turn"
    if rec.key.startswith("membership.belongs"):
        return f"{fmt_time(rec.per_op())} per call"
    if rec.key.endswith("naive_way") and x.get("scale", 1.0) != 1.0:
        return f"{fmt_time(rec.per_op())} extrapolated from {x['scanned']:,} sessions"
    if rec.key.startswith("digest.message"):
        return f"{fmt_time(rec.per_op())} per message"
    if rec.key.startswith("membership.peers") and x.get("note"):
        return x["note"]
    return ""


def results_tables_markdown(records: dict[str, Record]) -> list[str]:
    out = []
    for group, recs, base in _groups(records):
        out.append(f"### `{group}` — {_group_title(group)}")
        out.append("")
        out.append("| benchmark | median | min | rounds | × baseline | |")
        out.append("|---|---:|---:|---:|---:|---|")
        for rec in recs:
            ratio = "baseline" if rec is base else (fmt_ratio(rec.median / base.median) if base else "")
            out.append(f"| {_label(rec)} | {fmt_time(rec.median)} | {fmt_time(rec.minimum)} | {rec.rounds} | "
                       f"{ratio} | {_extra_cell(rec)} |")
        out.append("")
    return out


def _groups(records: dict[str, Record]):
    """(group, records fastest first, the group's baseline or None), groups in reading order."""
    groups: dict[str, list[Record]] = {}
    for rec in records.values():
        groups.setdefault(rec.group, []).append(rec)
    for group in sorted(groups, key=_group_rank):
        recs = sorted(groups[group], key=lambda r: r.median)
        yield group, recs, next((r for r in recs if r.extra.get("baseline")), None)


def fleet_rows(records: dict[str, Record]) -> list[tuple[str, ...]]:
    """Per ladder point: files, sessions per file, then the median of each way (fleet from
    start, fleet warm, reconcile.sql over Parquet, the reconcile_mob loop) and each way over
    the loop; a last row: how each grows from the smallest to the largest file count."""
    systems = ("fleet", "fleet_warm", "parquet", "loop")
    ns = sorted(n for n in _keys_matching(records, r"fleet\.reconcile\.n(\d+)\.loop")
                if all(records.get(f"fleet.reconcile.n{n}.{s}") for s in systems))
    rows = []
    for n in ns:
        recs = [records[f"fleet.reconcile.n{n}.{s}"] for s in systems]
        loop = recs[-1].median
        rows.append((f"{n:,}", f"{recs[0].extra.get('sessions_per_store', 0):,}",
                     *(f"{fmt_time(r.median)} ({fmt_ratio(r.median / loop)})" for r in recs[:-1]), fmt_time(loop)))
    if len(ns) >= 2:
        lo, hi = ns[0], ns[-1]
        grow = [fmt_ratio(records[f"fleet.reconcile.n{hi}.{s}"].median / records[f"fleet.reconcile.n{lo}.{s}"].median)
                for s in systems]
        rows.append((f"{lo:,} → {hi:,} files", f"({hi / lo:.0f}× the files)", *grow))
    return rows


def fleet_other_lines(records: dict[str, Record]) -> list[str]:
    """Markdown bullets for the export and verify rows of bench_fleet.py."""
    out = []
    for n, rec in sorted(_keys_matching(records, r"fleet\.export\.n(\d+)").items()):
        sessions = n * rec.extra.get("sessions_per_store", 0)
        out.append(f"- `export-parquet` of {n:,} stores ({sessions:,} sessions), {rec.extra.get('workers', '?')} processes: "
                   f"{fmt_time(rec.median)}")
    for n in sorted(_keys_matching(records, r"fleet\.verify\.n(\d+)\.loop")):
        par, loop = records.get(f"fleet.verify.n{n}.fleet"), records.get(f"fleet.verify.n{n}.loop")
        if par and loop:
            out.append(f"- `fleet verify` of {n:,} stores: {fmt_time(par.median)} in {par.extra.get('workers', '?')} "
                       f"processes (CPU {par.extra.get('cpu_seconds', 0):.2f} s) vs {fmt_time(loop.median)} for "
                       f"Store.verify looped in one process (CPU {loop.extra.get('cpu_seconds', 0):.2f} s)")
    return out


def format_fleet_markdown(rows: list[tuple[str, ...]]) -> list[str]:
    out = ["| files | sessions per file | fleet reconcile (× loop) | fleet, warm (× loop) | reconcile.sql over Parquet "
           "(× loop) | loop of reconcile_mob |",
           "|---:|---:|---:|---:|---:|---:|"]
    return out + ["| " + " | ".join(r) + " |" for r in rows]


def format_ratios_text(records: dict[str, Record]) -> list[str]:
    """Each group's medians against its baseline (pytest-benchmark's own table compares
    every column with the group's fastest, not with the baseline)."""
    out = []
    for group, recs, base in _groups(records):
        if base is None or len(recs) < 2:
            continue
        out.append(f"{group}  (baseline: {_label(base)})")
        for rec in recs:
            ratio = "baseline" if rec is base else fmt_ratio(rec.median / base.median)
            out.append(f"    {_label(rec)[:70]:<70} {fmt_time(rec.median):>10}  {ratio:>9}  {_extra_cell(rec)[:60]}")
    return out


# ------------------------------------------------------------------------------------------
# machine facts


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
