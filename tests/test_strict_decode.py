"""Strict and lenient decode at the Store (docs/messages.md, "Strict and lenient"): a session
created with decode="strict" (the default) refuses, on every path that appends, a message holding
a key meerkat's typed decode would drop, naming it, and leaves the database exactly as it was;
decode="lenient" stores it and digests it as meerkat does. Imported realms are lenient."""

from __future__ import annotations

import json

import pytest

import engine
from engine import digest
from engine.errors import InvalidInputError
from engine.services import PersistentSessionService
from tests.conftest import fingerprint

T = "2026-03-04T05:06:07.123Z"


def user(text: str, **extra) -> dict:
    return {"role": "user", "content": text, "created_at": T, **extra}


TOOL_TURN = {"role": "block_assistant", "stop_reason": "tool_use", "created_at": T, "blocks": [
    {"block_type": "tool_use", "data": {"id": "t1", "name": "weather", "args": {"city": "Paris"}, "cache": 1}}]}
NOTICE_DUP = (b'{"role":"system_notice","kind":"comms","created_at":"' + T.encode() + b'","blocks":['
              b'{"type":"comms","kind":"message","direction":"incoming","summary":"a","summary":"b"}]}')

# (message, the error a strict session gives): unknown keys at the top, inside a block's data,
# in a tool result; a duplicated key inside a notice block (meerkat keeps the last one)
DROPPED = [
    (user("hi", mood="happy"),
     '$: unknown field "mood" (meerkat\'s typed decode drops it; a decode="strict" session refuses it)'),
    (TOOL_TURN,
     '$.blocks[0].data: unknown field "cache" (meerkat\'s typed decode drops it; a decode="strict" session refuses it)'),
    ({"role": "tool_results", "created_at": T, "results": [{"tool_use_id": "t1", "content": "ok", "latency": 3}]},
     '$.results[0]: unknown field "latency" (meerkat\'s typed decode drops it; a decode="strict" session refuses it)'),
    (NOTICE_DUP,
     '$.blocks[0]: duplicate key "summary" (meerkat keeps only its last value; a decode="strict" session refuses it)'),
]
IDS = ["top-level", "block-data", "tool-result", "notice-duplicate"]


def without_dropped(message):
    """The same message with the dropped key removed (what a lenient session hashes)."""
    if isinstance(message, bytes):
        return message.replace(b'"summary":"a",', b"")
    m = json.loads(json.dumps(message))
    m.pop("mood", None)
    for b in m.get("blocks", []):
        b["data"].pop("cache", None)
    for r in m.get("results", []):
        r.pop("latency", None)
    return m


@pytest.mark.parametrize(("message", "error"), DROPPED, ids=IDS)
def test_strict_session_refuses_every_append_path_and_changes_nothing(db_path, message, error):
    with engine.open(db_path) as store:
        sid = store.create_session(messages=[user("first")])
        assert store.session(sid).decode == "strict"
        calls = [
            ("append_messages", lambda: store.append_messages(sid, [user("ok"), message])),
            ("apply_runtime_turn", lambda: store.apply_runtime_turn(sid, "run-1", [user("ok"), message])),
            ("create_session", lambda: store.create_session(messages=[message])),
        ]
        for name, call in calls:
            before = fingerprint(db_path)
            with pytest.raises(InvalidInputError) as exc:
                call()
            index = 0 if name == "create_session" else 1
            assert str(exc.value) == f"message {index}: {error}", name
            assert fingerprint(db_path) == before, name
        assert store.session(sid).message_count == 1


@pytest.mark.parametrize(("message", "error"), DROPPED, ids=IDS)
def test_lenient_session_stores_the_bytes_and_digests_like_meerkat(db_path, message, error):
    with engine.open(db_path) as store:
        sid = store.create_session(decode="lenient")
        store.append_messages(sid, [message])
        session = store.session(sid)
        assert session.decode == "lenient"
        assert store.raw_messages(sid) == [digest.message_bytes(message)]  # kept as given
        assert session.digest == digest.transcript_digest([without_dropped(message)])
        assert session.digest == digest.transcript_digest([message])
        # the strict decode of the cleaned message is accepted and hashes the same
        assert digest.canonical_message(without_dropped(message), strict=True) == digest.canonical_message(message)


def test_strict_accepts_what_meerkat_reads_without_dropping_anything(store):
    """nulls, defaults, serde's other spellings and notice blocks of an unknown type (kept whole
    in the digest) are not dropped keys: a strict session takes them."""
    messages = [
        user("hi", render_metadata=None, transcript_role="conversational"),
        {"role": "block_assistant", "blocks": [], "stop_reason": {"end_turn": None}, "created_at": T},
        {"role": "tool_results", "created_at": T, "results": [["t1", "ok", True]]},
        {"role": "system_notice", "kind": "generic", "created_at": T,
         "blocks": [{"type": "brand_new", "detail": "x", "z": 1}]},
    ]
    strict = store.create_session(messages=messages)
    lenient = store.create_session(messages=messages, decode="lenient")
    assert store.session(strict).digest == store.session(lenient).digest == digest.transcript_digest(messages)


def test_decode_is_checked_and_kept_across_reopen_and_rewrites(db_path):
    with engine.open(db_path) as store:
        with pytest.raises(InvalidInputError, match="decode"):
            store.create_session(decode="loose")
        sid = store.create_session(messages=[user("a"), user("b")])
        lid = store.create_session(messages=[user("a"), user("b")], decode="lenient")
    with engine.open(db_path) as store:
        assert (store.session(sid).decode, store.session(lid).decode) == ("strict", "lenient")
        store.pop_message(sid)
        store.truncate_messages(lid, 1)
        assert (store.session(sid).decode, store.session(lid).decode) == ("strict", "lenient")
        with pytest.raises(InvalidInputError, match='unknown field "mood"'):
            store.append_messages(sid, [user("c", mood=1)])
        assert store.append_messages(lid, [user("c", mood=1)]) == 2
        assert store.verify().ok


def test_jcs_sessions_are_unaffected_by_the_decode_mode(store):
    item = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}", "mood": 1}
    sid = store.create_session(digest_profile="jcs", messages=[item])
    assert store.session(sid).decode == "strict"
    assert store.session(sid).digest == digest.transcript_digest([item], "jcs")


def test_imported_meerkat_sessions_are_lenient(tmp_path):
    from engine.importer import import_realm
    from tests.test_meerkat import REALM_0728

    with engine.open(str(tmp_path / "store.db")) as store:
        report = import_realm(store, str(REALM_0728))
        assert report.ok
        (sid,) = [s.id for s in store.sessions()]
        assert store.session(sid).decode == "lenient"
        assert store.append_messages(sid, [user("later", mood=1)]) == store.session(sid).message_count
        assert store.verify().ok


async def test_live_appends_follow_the_session_decode(db_path):
    svc = PersistentSessionService(db_path)
    try:
        sid = await svc.create_session()
        with pytest.raises(InvalidInputError, match='unknown field "mood"'):
            await svc.append_live(sid, [user("x", mood=1)])
        assert await svc.append_live(sid, [user("x")]) == 1
        with engine.open(db_path) as store:
            lid = store.create_session(decode="lenient")
        assert await svc.append_live(lid, [user("x", mood=1)]) == 1
        assert await svc.checkpoint(lid) is True
    finally:
        await svc.close()
    with engine.open(db_path) as store:
        assert store.raw_messages(lid) == [digest.message_bytes(user("x", mood=1))]
