"""The main job on an embedded default (`mobstore demo`), and the seeded (reproducible) meerkat-shaped
message generator the demo, tests and benchmarks share.

A mob of agents applies turns with receipts; a few extra sessions carry broken or
duplicate claims; then the mob is reconciled against its roster and every receipt is
verified. Returns the numbers the CLI prints.
"""

from __future__ import annotations

import random
import time
from typing import Callable

from . import digest
from .store import Store

TOOLS = ("search_docs", "read_file", "run_shell", "write_note", "http_get")


def _timestamp(rng: random.Random) -> str:
    return (
        f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
        f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999999):06d}Z"
    )


def _words(rng: random.Random, size: int) -> str:
    vocab = ("agent", "mob", "turn", "receipt", "digest", "tool", "plan", "result", "note", "peer",
             "naïve", "café", "数据", "🦊", "run", "boundary", "session", "member")
    out: list[str] = []
    length = 0
    while length < size:
        w = rng.choice(vocab)
        out.append(w)
        length += len(w) + 1
    return " ".join(out)


def user_message(rng: random.Random, size: int = 400) -> dict:
    return {"role": "user", "content": _words(rng, size), "created_at": _timestamp(rng)}


def assistant_message(rng: random.Random, size: int = 600) -> dict:
    """A block_assistant turn: text plus a tool call whose args nest objects and floats."""
    args = {
        "query": _words(rng, max(16, size // 4)),
        "limit": rng.randint(1, 100),
        "threshold": round(rng.random(), 6),
        "filters": {"tags": [_words(rng, 12) for _ in range(3)], "score": rng.uniform(-1e3, 1e3),
                    "nested": {"depth": 2, "ok": rng.random() < 0.5, "ratio": rng.random() * 10}},
    }
    return {
        "role": "block_assistant",
        "blocks": [
            {"block_type": "text", "data": {"text": _words(rng, max(16, size // 2))}},
            {"block_type": "tool_use",
             "data": {"id": f"tu_{rng.randrange(1 << 30)}", "name": rng.choice(TOOLS), "args": args}},
        ],
        "stop_reason": "tool_use",
        "created_at": _timestamp(rng),
    }


def tool_results_message(rng: random.Random, size: int = 400) -> dict:
    return {
        "role": "tool_results",
        "results": [{"tool_use_id": f"tu_{rng.randrange(1 << 30)}", "content": _words(rng, size), "is_error": False}],
        "created_at": _timestamp(rng),
    }


def turn_messages(rng: random.Random, size: int = 1024) -> list[dict]:
    """Two messages of about `size` bytes of JSON each: a user turn and an assistant reply."""
    return [user_message(rng, max(32, size - 80)), assistant_message(rng, max(64, size - 420))]


def mob_metadata(mob_id: str, profile: str, meerkat_id: str, **overrides) -> dict:
    """session_metadata as meerkat's mob builder wrote it (meerkat-mob/src/build.rs:95-113@v0.5.2)."""
    sm = {
        "comms_name": f"{mob_id}/{profile}/{meerkat_id}",
        "realm_id": f"mob:{mob_id}",
        "peer_meta": {"description": f"{profile} agent", "labels": {
            "meerkat_id": meerkat_id, "mob_id": mob_id, "role": profile}},
    }
    sm.update(overrides)
    return {"session_metadata": sm}


# The problems the demo plants beside the healthy mob, and what reconciliation must report
# for each: (what was planted, how reconcile_mob reports it).
PLANTED = (
    ("a second session claiming coder/agent-001", "duplicated slot coder/agent-001"),
    ("tester/agent-x with realm_id mob:other", "broken claim: realm_mismatch"),
    ("coder/agent-y whose labels say role=reviewer", "broken claim: label_role_mismatch"),
    ("comms_name 'demo-mob/coder' (two parts, not three)", "broken claim: comms_name_not_three_parts"),
    ("roster entry planner/agent-missing that no agent runs", "on the roster without a session"),
)


def run_demo(store: Store, *, agents: int = 24, turns: int = 8, seed: int = 7,
             progress: Callable[[int, int], None] | None = None) -> dict:
    """A mob of `agents` agents (profiles planner/coder/reviewer/tester) applies `turns` turns
    each with a receipt per turn; the problems in PLANTED are added beside it; then the mob
    is reconciled against its roster and every receipt is verified. Returns the figures
    and whether reconciliation found exactly what was planted."""
    rng = random.Random(seed)
    mob = "demo-mob"
    profiles = ("planner", "coder", "reviewer", "tester")
    roster = []
    sessions = []
    for i in range(agents):
        profile = profiles[i % len(profiles)]
        meerkat_id = f"agent-{i:03d}"
        roster.append((profile, meerkat_id))
        sessions.append(store.create_session(mob_metadata(mob, profile, meerkat_id)))
    planted_duplicate = ("coder", "agent-001") if agents > 1 else (profiles[0], "agent-000")
    store.create_session(mob_metadata(mob, *planted_duplicate))
    store.create_session(mob_metadata(mob, "tester", "agent-x", realm_id="mob:other"))
    bad_labels = mob_metadata(mob, "coder", "agent-y")
    bad_labels["session_metadata"]["peer_meta"]["labels"]["role"] = "reviewer"
    store.create_session(bad_labels)
    store.create_session({"session_metadata": {"comms_name": f"{mob}/coder", "realm_id": f"mob:{mob}"}})
    roster.append(("planner", "agent-missing"))

    total = agents * turns
    messages = 0
    started = time.perf_counter()
    for t in range(turns):
        run_id = f"run-{t:04d}"
        for i, sid in enumerate(sessions):
            batch = turn_messages(rng)
            store.apply_runtime_turn(sid, run_id, batch, contributing_input_ids=[f"input-{t}"])
            messages += len(batch)
            if progress is not None:
                progress(t * agents + i + 1, total)
    apply_s = time.perf_counter() - started

    started = time.perf_counter()
    rec = store.reconcile_mob(mob, roster)
    reconcile_s = time.perf_counter() - started
    started = time.perf_counter()
    report = store.verify()
    verify_s = time.perf_counter() - started
    found = {
        "duplicates": sorted((d.profile, d.meerkat_id) for d in rec.duplicates),
        "broken": sorted(b.reason for b in rec.broken),
        "missing": sorted(rec.missing),
        "unexpected": len(rec.unexpected),
    }
    expected = {
        "duplicates": [planted_duplicate],
        "broken": sorted(["realm_mismatch", "label_role_mismatch", "comms_name_not_three_parts"]),
        "missing": [("planner", "agent-missing")],
        "unexpected": 0,
    }
    return {
        "mob_id": mob,
        "agents": agents,
        "roster_entries": len(roster),
        "turns": total,
        "messages": messages,
        "apply_seconds": apply_s,
        "turns_per_second": total / apply_s if apply_s else 0.0,
        "messages_per_second": messages / apply_s if apply_s else 0.0,
        "digest_impl": digest.DIGEST_IMPL,
        "reconcile_seconds": reconcile_s,
        "member_sessions": len(rec.members),
        "missing": [list(m) for m in rec.missing],
        "unexpected": len(rec.unexpected),
        "broken": [{"session_id": b.session_id, "reason": b.reason} for b in rec.broken],
        "duplicates": [{"profile": d.profile, "meerkat_id": d.meerkat_id, "sessions": len(d.session_ids)}
                       for d in rec.duplicates],
        "planted_found": found == expected,
        "verify_seconds": verify_s,
        "receipts": report.receipts,
        "receipts_ok": report.receipts_ok,
        "verify_ok": report.ok,
    }
