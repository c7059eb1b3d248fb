"""Reading long transcripts: messages() decodes row by row (no list of bodies next to the
dicts) and iter_messages() streams in chunks, refusing to mix two versions of a transcript
when it is rewritten or deleted meanwhile. Peak-memory numbers: benches/bench_memory.py."""

from __future__ import annotations

import pytest

from engine import InvalidInputError, SessionNotFoundError, StoreError


def msg(i) -> dict:
    return {"role": "user", "content": f"m{i}", "created_at": "2026-01-01T00:00:00Z"}


@pytest.fixture
def sid(store):
    s = store.create_session(decode="lenient")  # "n" is a field meerkat drops: kept only by a lenient session
    store.append_messages(s, [msg(i) for i in range(57)] + [b'{"role":"user","content":"big","n":18446744073709551616}'])
    return s


@pytest.mark.parametrize("chunk", [1, 7, 58, 1000])
def test_iter_messages_equals_messages(store, sid, chunk):
    assert list(store.iter_messages(sid, chunk=chunk)) == store.messages(sid)
    assert store.messages(sid)[-1]["n"] == 2**64  # beyond orjson: the stdlib decodes it
    for start, stop in [(0, None), (5, 20), (-10, None), (30, 10), (0, 0), (50, 1000)]:
        assert list(store.iter_messages(sid, start, stop, chunk=chunk)) == store.messages(sid)[start:stop] \
            == store.messages(sid, start, stop)


def test_iter_messages_range_is_fixed_at_start(store, sid):
    it = store.iter_messages(sid, chunk=10)
    first = [next(it) for _ in range(10)]
    store.append_messages(sid, [msg("late")])
    rest = list(it)
    assert len(first) + len(rest) == 58


def test_iter_messages_refuses_a_rewrite_or_delete_meanwhile(store, sid):
    it = store.iter_messages(sid, chunk=10)
    next(it)
    store.truncate_messages(sid, 30)
    with pytest.raises(StoreError, match="rewritten"):
        list(it)
    it = store.iter_messages(sid, chunk=5)
    next(it)
    store.delete_session(sid)
    with pytest.raises(StoreError, match="deleted"):
        list(it)


def test_iter_messages_arguments(store, sid):
    with pytest.raises(SessionNotFoundError):
        list(store.iter_messages("ghost"))
    with pytest.raises(InvalidInputError):
        list(store.iter_messages(sid, chunk=0))
