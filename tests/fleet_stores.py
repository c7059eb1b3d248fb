"""A seeded fleet of store files for the fleet tests: overlapping and conflicting claims on
one mob across machines.

Layout (all under one root): even stores at machine-<k>/agents.db (same file name in every
directory), odd ones at store-<k>.db. Each store holds, for mob "crew":
- 2-4 valid members on slots drawn from 40 (profile, meerkat_id) pairs, so the same slot
  is claimed on several machines (cross-store duplicates);
- sometimes a second session on one of those slots in the same store (an in-store duplicate);
- 1-3 broken claims of every kind the rule knows (bad realm, labels off or missing, no
  peer_meta, malformed comms_name, the newer realm "mob.crew", a typed mob_member_binding
  alone or conflicting with comms_name) — some valid with accept_newer;
- members of another mob, a session without metadata;
- every fifth store also holds a copy of one "travelling" session (same id and metadata as
  in store 0): one session found on several machines;
- some sessions with turns (messages and receipts), for verify and the Parquet export.
Beside the stores: a text file (ignored) and an SQLite file of another program (skipped).
"""

from __future__ import annotations

import os
import random

import apsw

import engine
from engine import demo

MOB = "crew"
PROFILES = ("planner", "coder", "reviewer", "tester")
SLOTS = [(PROFILES[i % 4], f"agent-{i:02d}") for i in range(40)]
# 36 of the slots, and one nobody claims: missing and unexpected both occur
ROSTER = SLOTS[:36] + [("coder", "agent-nobody")]
TRAVELLER = "0190f000-0000-7000-8000-00000000cafe"


def broken_metadata(rng: random.Random, kind: str) -> dict:
    profile, member = rng.choice(SLOTS)
    md = demo.mob_metadata(MOB, profile, member)
    sm = md["session_metadata"]
    if kind == "bad_realm":
        sm["realm_id"] = "mob:elsewhere"
    elif kind == "realm_missing":
        del sm["realm_id"]
    elif kind == "newer_realm":  # valid only with accept_newer
        sm["realm_id"] = f"mob.{MOB}"
    elif kind == "label_role":
        sm["peer_meta"]["labels"]["role"] = "observer"
    elif kind == "label_mob":
        sm["peer_meta"]["labels"]["mob_id"] = MOB.upper()
    elif kind == "label_member_missing":
        del sm["peer_meta"]["labels"]["meerkat_id"]
    elif kind == "labels_missing":
        sm["peer_meta"] = {"description": "no labels"}
    elif kind == "peer_meta_missing":
        del sm["peer_meta"]
    elif kind == "two_parts":
        sm["comms_name"] = f"{MOB}/{profile}"
    elif kind == "empty_part":
        sm["comms_name"] = f"{MOB}//{member}"
    elif kind == "typed_binding":  # valid only with accept_newer
        md = {"session_metadata": {"comms_name": None,
                                   "mob_member_binding": {"mob_id": MOB, "role": profile, "member": member}}}
    elif kind == "binding_conflict":
        sm["mob_member_binding"] = {"mob_id": MOB, "role": profile, "member": member + "-other"}
    else:
        raise ValueError(kind)
    return md


BROKEN_KINDS = ("bad_realm", "realm_missing", "newer_realm", "label_role", "label_mob", "label_member_missing",
                "labels_missing", "peer_meta_missing", "two_parts", "empty_part", "typed_binding",
                "binding_conflict")


def store_path(root: str, k: int) -> str:
    if k % 2 == 0:
        d = os.path.join(root, f"machine-{k:02d}")
        os.makedirs(d, exist_ok=True)
        return os.path.join(d, "agents.db")
    return os.path.join(root, f"store-{k:02d}.db")


def build_fleet(root: str, seed: int, n_stores: int = 50) -> list[str]:
    """Write the fleet under root; returns the store paths in creation order."""
    rng = random.Random(seed)
    os.makedirs(root, exist_ok=True)
    paths = []
    for k in range(n_stores):
        path = store_path(root, k)
        paths.append(path)
        with engine.open(path, synchronous="OFF") as store:
            slots = rng.sample(SLOTS, rng.randint(2, 4))
            sessions = [store.create_session(demo.mob_metadata(MOB, p, m)) for p, m in slots]
            if rng.random() < 0.3:
                p, m = slots[0]
                sessions.append(store.create_session(demo.mob_metadata(MOB, p, m)))
            for kind in rng.sample(BROKEN_KINDS, rng.randint(1, 3)):
                sessions.append(store.create_session(broken_metadata(rng, kind)))
            for i in range(rng.randint(1, 3)):
                store.create_session(demo.mob_metadata("other", rng.choice(PROFILES), f"o-{k}-{i}"))
            store.create_session({"title": f"scratch {k}"})
            if k % 5 == 0:
                sessions.append(store.create_session(demo.mob_metadata(MOB, "tester", "agent-travel"),
                                                     session_id=TRAVELLER))
            for sid in rng.sample(sessions, min(2, len(sessions))):
                for t in range(rng.randint(1, 2)):
                    store.apply_runtime_turn(sid, f"run-{t}", [demo.user_message(rng, 60),
                                                               demo.assistant_message(rng, 120)])
    with open(os.path.join(root, "notes.txt"), "w") as fh:
        fh.write("not a database\n")
    other = apsw.Connection(os.path.join(root, "other-program.sqlite"))
    other.execute("CREATE TABLE t (x); INSERT INTO t VALUES (1)")
    other.close()
    return paths
