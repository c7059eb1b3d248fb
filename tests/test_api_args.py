"""Wrong argument types and ranges raise InvalidInputError naming the argument, never a raw
TypeError / ValueError / OverflowError / AttributeError; and the API's small promises
(receipts() with no arguments, *_ms names, events of an unknown session)."""

from __future__ import annotations

import warnings

import pytest

import engine
from engine.errors import InvalidInputError, MobstoreError, SessionNotFoundError

USER = {"role": "user", "content": "hi", "created_at": "2026-01-02T03:04:05Z"}


@pytest.fixture
def filled(store):
    sid = store.create_session(messages=[USER])
    store.apply_runtime_turn(sid, "run-1", [USER])
    return store, sid


@pytest.mark.parametrize(
    ("call", "names"),
    [
        (lambda s, sid: s.messages(sid, "a"), "start"),
        (lambda s, sid: s.messages(sid, 0, 2.5), "stop"),
        (lambda s, sid: s.raw_messages(sid, True), "start"),
        (lambda s, sid: s.events(limit="x"), "limit"),
        (lambda s, sid: s.events(limit=10**30), "limit"),
        (lambda s, sid: s.events(limit=-1), "limit"),
        (lambda s, sid: s.events(after="0"), "after"),
        (lambda s, sid: list(s.sessions(page_size="a")), "page_size"),
        (lambda s, sid: list(s.sessions(page_size=0)), "page_size"),
        (lambda s, sid: list(s.sessions(limit=-3)), "limit"),
        (lambda s, sid: list(s.sessions(mob_id=5)), "mob_id"),
        (lambda s, sid: list(s.iter_receipts(page_size=None)), "page_size"),
        (lambda s, sid: s.reconcile_mob("m", roster=5), "roster"),
        (lambda s, sid: s.reconcile_mob("m", roster="coder/a"), "roster"),
        (lambda s, sid: s.reconcile_mob("m", accept_newer="yes"), "accept_newer"),
        (lambda s, sid: s.transcript_digest(sid, profile=""), "profile"),
        (lambda s, sid: s.transcript_digest(sid, profile=3), "profile"),
        (lambda s, sid: s.append_messages(sid, ['{"role":"user","content":"x"}']), "str"),
    ],
)
def test_bad_arguments_name_the_argument(filled, call, names):
    store, sid = filled
    with pytest.raises(InvalidInputError) as err:
        call(store, sid)
    assert names in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"path": 5}, "path"),
        ({"path": "a\x00b.db"}, "path"),
        ({"path": ""}, "path"),
        ({"path": ":memory:", "synchronous": 1}, "synchronous"),
        ({"path": ":memory:", "synchronous": "fast"}, "synchronous"),
        ({"path": ":memory:", "readonly": "no"}, "readonly"),
    ],
)
def test_open_rejects_bad_arguments(kwargs, name):
    with pytest.raises(InvalidInputError) as err:
        engine.open(**kwargs)
    assert name in str(err.value)
    assert isinstance(err.value, MobstoreError)


def test_receipts_without_arguments_lists_every_receipt(store):
    a = store.create_session()
    b = store.create_session()
    ra = store.apply_runtime_turn(a, "r", [USER])
    rb0 = store.apply_runtime_turn(b, "r", [USER])
    rb1 = store.apply_runtime_turn(b, "s", [USER])
    everything = store.receipts()
    assert [(r.session_id, r.run_id, r.sequence) for r in everything] == [
        (a, "r", 0), (b, "r", 0), (b, "s", 0)]
    assert everything == [ra, rb0, rb1]
    assert list(store.iter_receipts(page_size=1)) == everything
    assert store.receipts(b, run_id="s") == [rb1]
    assert store.receipts(run_id="r") == [ra, rb0]
    # session_id travels with the receipt but is not part of meerkat's receipt JSON
    assert b'"session_id"' not in rb0.to_json()


def test_session_times_say_their_unit(filled):
    store, sid = filled
    s = store.session(sid)
    assert s.created_at_ms <= s.updated_at_ms
    assert 1_700_000_000_000 < s.created_at_ms < 10_000_000_000_000  # milliseconds, not seconds
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert s.created_at == s.created_at_ms  # the old spelling still reads


def test_events_of_unknown_session_raise(filled):
    store, sid = filled
    with pytest.raises(SessionNotFoundError):
        store.events(session_id="nope")
    assert [e.kind for e in store.events(session_id=sid)] == ["session_created", "receipt_committed"]
    store.delete_session(sid)
    # a deleted session keeps its history, ending with the deletion
    assert store.events(session_id=sid)[-1].kind == "session_deleted"


def test_sessions_filtered_by_mob(store):
    def meta(comms, realm):
        return {"session_metadata": {"comms_name": comms, "realm_id": realm}}

    a = store.create_session(meta("crew/coder/a", "mob:crew"))
    b = store.create_session(meta("crew/coder", "mob:crew"))  # a broken claim still claims crew
    store.create_session(meta("other/coder/a", "mob:other"))
    store.create_session()
    assert [s.id for s in store.sessions(mob_id="crew")] == [b, a]
    assert [s.id for s in store.sessions(mob_id="crew", page_size=1, limit=1)] == [b]
    assert list(store.sessions(mob_id="nobody")) == []


def test_missing_native_module_warns_once():
    """Without the native module (here: made unimportable) the fallback runs, and says so once."""
    import subprocess
    import sys

    code = ("import sys, warnings\n"
            "sys.modules['engine._canon_native'] = None\n"
            "with warnings.catch_warnings(record=True) as seen:\n"
            "    warnings.simplefilter('always')\n"
            "    import engine, engine.digest as d\n"
            "    import importlib\n"
            "    s = engine.open(); s.create_session(messages=[{'role': 'user', 'content': 'x'}])\n"
            "print(d.DIGEST_IMPL, sum('pure-Python digest fallback' in str(w.message) for w in seen))\n")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("MOBSTORE_")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.split() == ["python", "1"], out.stdout + out.stderr
    env["MOBSTORE_PURE_PYTHON"] = "1"  # an explicit choice is not warned about
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.split() == ["python", "0"], out.stdout + out.stderr
