"""Sessions created with digest_profile="jcs": any JSON object is a message (openai-agents
items here, no meerkat role), with receipts, verify, membership and the O(delta) digest
state like every session; the digests are the rfc8785 package's."""

from __future__ import annotations

import hashlib

import pytest
import rfc8785

import engine
from engine import digest
from engine.errors import InvalidInputError
from tests.conftest import fingerprint

META = {"session_metadata": {"comms_name": "crew/coder/agent-7", "realm_id": "mob:crew",
                             "peer_meta": {"labels": {"mob_id": "crew", "role": "coder", "meerkat_id": "agent-7"}}}}

# openai-agents items as the SDK stores them (no meerkat role: "assistant", type-tagged items)
TURN_1 = [
    {"role": "user", "content": "What's the weather in Paris?"},
    {"id": "rs_1", "summary": [{"text": "Look it up.", "type": "summary_text"}], "type": "reasoning"},
    {"arguments": '{"city": "Paris"}', "call_id": "call_1", "name": "get_weather", "type": "function_call",
     "id": "fc_1", "status": "completed"},
    {"call_id": "call_1", "output": "18.5 C, clear", "type": "function_call_output"},
    {"id": "msg_1", "content": [{"annotations": [], "text": "It is 18.5 °C and clear in Paris.", "type": "output_text",
                                 "logprobs": []}], "role": "assistant", "status": "completed", "type": "message"},
]
TURN_2 = [
    {"role": "user", "content": [{"type": "input_text", "text": "And in Zürich? 😀"}]},
    {"id": "msg_2", "content": [{"annotations": [], "text": "14 °C.", "type": "output_text"}], "role": "assistant",
     "status": "completed", "type": "message", "usage": {"input_tokens": 120, "output_tokens": 7, "cost": 1.25e-5}},
]


def expected(messages) -> str:
    return "sha256:" + hashlib.sha256(b"[" + b",".join(rfc8785.dumps(m) for m in messages) + b"]").hexdigest()


def test_jcs_session_receipts_verify_membership(db_path):
    with engine.open(db_path) as store:
        sid = store.create_session(META, digest_profile="jcs")
        r1 = store.apply_runtime_turn(sid, "run-1", TURN_1)
        assert r1.conversation_digest == expected(TURN_1) and r1.message_count == 5
        r2 = store.apply_runtime_turn(sid, "run-2", TURN_2)
        assert r2.conversation_digest == expected(TURN_1 + TURN_2)
        assert store.session(sid).digest_profile == "jcs"
        assert store.messages(sid) == TURN_1 + TURN_2
        assert store.verify().ok
        assert store.session_belongs_to_mob(sid, "crew")
        assert store.reconcile_mob("crew", roster=[("coder", "agent-7")]).ok
        assert store.transcript_digest(sid, upto=5) == expected(TURN_1)
    # reopened: the stored midstate resumes (O(delta)), same digest as a full recompute
    with engine.open(db_path) as store:
        r3 = store.apply_runtime_turn(sid, "run-3", [{"type": "message", "role": "user", "content": "thanks"}])
        assert r3.conversation_digest == expected(TURN_1 + TURN_2 + [{"type": "message", "role": "user",
                                                                      "content": "thanks"}])
        assert [r.run_id for r in store.receipts(sid)] == ["run-1", "run-2", "run-3"]
        assert store.verify().ok


def test_jcs_digest_ignores_key_order_and_spelling(store):
    """Two sessions holding the same items spelled differently have one digest."""
    a = store.create_session(digest_profile="jcs", messages=TURN_1)
    b = store.create_session(digest_profile="jcs", messages=[
        rfc8785.dumps(m).decode().replace('"type"', ' "type" ').encode() for m in reversed(TURN_1)][::-1])
    assert store.transcript_digest(a) == store.transcript_digest(b) == expected(TURN_1)
    assert store.raw_messages(b) != store.raw_messages(a)  # stored byte for byte as given


@pytest.mark.parametrize("bad,why", [
    ([1, 2], "a message must be a dict"),
    (b"[1, 2]", "message is not a JSON object"),
    (b'{"a": 1, "a": 2}', "duplicate key"),
    (b'{"x": 1e999}', "number out of range"),
    (b'{"x": "\\udc00"}', "lone surrogate"),
])
def test_bad_jcs_messages_leave_the_store_unchanged(db_path, bad, why):
    with engine.open(db_path) as store:
        sid = store.create_session(META, digest_profile="jcs", messages=TURN_1[:2])
    before = fingerprint(db_path)
    with engine.open(db_path) as store:
        with pytest.raises(InvalidInputError, match=why):
            store.apply_runtime_turn(sid, "run-1", [TURN_1[2], bad])
        with pytest.raises(InvalidInputError, match=why):
            store.append_messages(sid, [bad])
    assert fingerprint(db_path) == before


def test_meerkat_profiles_still_check_the_model(store):
    """The role check belongs to the meerkat profiles: the same item is refused under f3."""
    sid = store.create_session(digest_profile="f3")
    with pytest.raises(InvalidInputError):
        store.append_messages(sid, [TURN_1[4]])
    assert store.message_count(sid) == 0


async def test_service_with_jcs_profile():
    from engine.services import EphemeralSessionService

    service = EphemeralSessionService(digest_profile="jcs")
    try:
        sid = await service.create_session(META, messages=TURN_1[:3])
        out = await service.apply_runtime_turn(sid, "run-1", TURN_1[3:])
        assert out.receipt.conversation_digest == expected(TURN_1)
    finally:
        await service.close()


def test_digest_profiles_registered():
    assert "jcs" in digest.PROFILES
    assert digest.TranscriptState.new("jcs").digest() == "sha256:" + hashlib.sha256(b"[]").hexdigest()
