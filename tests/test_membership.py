"""The seed rule as SQL, checked against a plain-Python transcription of it over tricky
metadata; reconciliation with duplicates, broken claims and a roster."""

from __future__ import annotations

import itertools
import unicodedata

import pytest

import engine
from engine.demo import mob_metadata
from engine.errors import InvalidInputError


def seed_rule(metadata: dict | None, mob_id: str) -> bool:
    """The seed's session_has_persisted_mob_binding, transcribed plainly (FORMAT.md §3)."""
    if not metadata:
        return False
    sm = metadata.get("session_metadata")
    if not isinstance(sm, dict):
        return False
    comms_name = sm.get("comms_name")
    if not isinstance(comms_name, str):
        return False
    parts = comms_name.split("/")
    if len(parts) != 3 or any(p == "" for p in parts):
        return False
    m, profile, meerkat_id = parts
    if m != mob_id or sm.get("realm_id") != "mob:" + mob_id:
        return False
    labels = (sm.get("peer_meta") or {}).get("labels") or {}
    return labels.get("mob_id") == mob_id and labels.get("role") == profile and labels.get("meerkat_id") == meerkat_id


NFC = unicodedata.normalize("NFC", "café")
NFD = unicodedata.normalize("NFD", "café")
TRICKY_IDS = ["m", "mob_1", "mob%", "m_b", "o'brien", 'quo"te', "x'); DROP TABLE ms_bindings; --", "tab\there",
              "🦊mob", NFC, NFD, "M", "m ", " m", "*", "?", "[a]", "L" * 3000, "mob:x", "a.b"]


def variants(mob: str):
    base = mob_metadata(mob, "coder", "agent-1")
    yield "valid", base
    sm = base["session_metadata"]

    def with_(**kw):
        d = {"session_metadata": {**sm, **kw}}
        return d

    yield "two parts", with_(comms_name=f"{mob}/coder")
    yield "four parts", with_(comms_name=f"{mob}/coder/agent-1/x")
    yield "empty profile", with_(comms_name=f"{mob}//agent-1")
    yield "trailing slash", with_(comms_name=f"{mob}/coder/agent-1/")
    yield "empty member", with_(comms_name=f"{mob}/coder/")
    yield "realm space", with_(realm_id=f"mob:{mob} ")
    yield "realm case", with_(realm_id=f"MOB:{mob}")
    yield "realm dot", with_(realm_id=f"mob.{mob}")
    yield "realm missing", {"session_metadata": {k: v for k, v in sm.items() if k != "realm_id"}}
    yield "no peer_meta", {"session_metadata": {k: v for k, v in sm.items() if k != "peer_meta"}}
    yield "no labels", with_(peer_meta={"description": "d"})
    for key in ("mob_id", "role", "meerkat_id"):
        labels = dict(sm["peer_meta"]["labels"])
        labels[key] = labels[key] + "x"
        yield f"label {key} off", with_(peer_meta={"labels": labels})
        labels = dict(sm["peer_meta"]["labels"])
        del labels[key]
        yield f"label {key} missing", with_(peer_meta={"labels": labels})
    yield "extra labels", with_(peer_meta={"labels": {**sm["peer_meta"]["labels"], "zone": "eu", "agent_identity": "x"}})
    yield "null comms", with_(comms_name=None)
    yield "no session_metadata", {"other": 1}
    yield "empty", {}


def test_seed_rule_table(store):
    cases = []
    for mob in TRICKY_IDS:
        for name, metadata in variants(mob):
            sid = store.create_session(metadata)
            cases.append((sid, mob, name, metadata))
    probes = {NFC, NFD, "m", "M", "mob%", "mob_1", "%", "_", "", "m/x", "mob:x", "m "}
    checked = 0
    for sid, mob, name, metadata in cases:
        for probe in probes | {mob}:
            expected = seed_rule(metadata, probe)
            assert store.session_belongs_to_mob(sid, probe) is expected, (name, mob, probe)
            checked += 1
    assert checked > 1000
    # the table has both answers, in numbers
    valid = [c for c in cases if seed_rule(c[3], c[1])]
    assert len(valid) == 2 * len(TRICKY_IDS)  # "valid" and "extra labels" per mob id


def test_unknown_session_and_bad_args(store):
    assert store.session_belongs_to_mob("nope", "m") is False
    with pytest.raises(InvalidInputError):
        store.session_belongs_to_mob("nope", 3)
    with pytest.raises(InvalidInputError):
        store.mob_members("\ud800")


def test_members_match_rule_and_order(store):
    mob = "m%_"
    expected = []
    for profile, i in itertools.product(("b", "a"), range(3)):
        sid = store.create_session(mob_metadata(mob, profile, f"k{i}"))
        expected.append(engine.Member(sid, profile, f"k{i}"))
    store.create_session(mob_metadata("m", "a", "k9"))
    store.create_session(mob_metadata("mXY", "a", "k9"))  # LIKE 'm%_' would match this
    store.create_session(mob_metadata(mob, "a", "k7", realm_id="mob:m"))
    assert store.mob_members(mob) == sorted(expected, key=lambda m: (m.profile, m.meerkat_id, m.session_id))


def test_bindings_follow_every_write_path(store):
    """No write path leaves ms_bindings out of step with the stored metadata."""
    sid = store.create_session(mob_metadata("m", "p", "k"))
    assert store.mob_members("m") == [engine.Member(sid, "p", "k")]
    store.set_metadata(sid, mob_metadata("n", "p", "k"))
    assert store.mob_members("m") == [] and len(store.mob_members("n")) == 1
    store.set_metadata(sid, {})
    assert store.mob_members("n") == []
    store.set_metadata(sid, mob_metadata("n", "p", "k"))
    store.delete_session(sid)
    assert store.mob_members("n") == []
    rows = store._connection.execute(
        "SELECT count(*) FROM ms_sessions s LEFT JOIN ms_bindings b ON b.session_id = s.id WHERE b.session_id IS NULL"
    ).fetchone()[0]
    orphans = store._connection.execute(
        "SELECT count(*) FROM ms_bindings b LEFT JOIN ms_sessions s ON s.id = b.session_id WHERE s.id IS NULL"
    ).fetchone()[0]
    assert rows == orphans == 0


def test_reconcile(store):
    mob = "crew"
    a = store.create_session(mob_metadata(mob, "coder", "k1"))
    b = store.create_session(mob_metadata(mob, "coder", "k1"))  # duplicate claim
    c = store.create_session(mob_metadata(mob, "tester", "k2"))
    realm = store.create_session(mob_metadata(mob, "tester", "k3", realm_id="mob:other"))
    role = mob_metadata(mob, "tester", "k4")
    role["session_metadata"]["peer_meta"]["labels"]["role"] = "coder"
    role = store.create_session(role)
    malformed = store.create_session({"session_metadata": {"comms_name": f"{mob}/x", "realm_id": f"mob:{mob}"}})
    newer = store.create_session(mob_metadata(mob, "planner", "k5", realm_id=f"mob.{mob}"))
    typed = store.create_session({"session_metadata": {"comms_name": None, "mob_member_binding": {
        "mob_id": mob, "role": "ops", "member": "k6"}}})
    store.create_session(mob_metadata("elsewhere", "coder", "k1"))

    rec = store.reconcile_mob(mob, [("coder", "k1"), ("tester", "k2"), ("lead", "k0")])
    assert {m.session_id for m in rec.members} == {a, b, c}
    assert rec.duplicates == (engine.Duplicate("coder", "k1", tuple(sorted((a, b)))),)
    assert {(x.session_id, x.reason) for x in rec.broken} == {
        (realm, "realm_mismatch"), (role, "label_role_mismatch"),
        (malformed, "comms_name_not_three_parts"), (newer, "realm_mismatch")}
    assert rec.missing == (("lead", "k0"),)
    assert rec.unexpected == ()
    assert not rec.ok

    newer_rec = store.reconcile_mob(mob, accept_newer=True)
    assert {m.session_id for m in newer_rec.members} == {a, b, c, newer, typed}
    assert newer not in {x.session_id for x in newer_rec.broken}
    # members() stays the seed rule
    assert {m.session_id for m in store.mob_members(mob)} == {a, b, c}

    only = store.reconcile_mob(mob, [("coder", "k1")])
    assert {m.session_id for m in only.unexpected} == {c}
