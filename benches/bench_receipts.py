"""Receipts and O(delta) digests as the transcript grows (docs/performance.md).

Each benchmark works on copies of cached sessions of H messages (conftest.history_store:
H/2 turns of ~1 KiB messages, each with its receipt and events, exactly as apply_runtime_turn
writes them) and adds the same generated turns/messages at every H. The benchmark for one H
opens every H of the ladder and, before each timed round, does the same (untimed) operation
on the other lengths (conftest.interleaved), so all lengths see the same machine. A round
adds to the history: the length grows by a few hundred messages at most.

- apply_turn.history: apply_runtime_turn (2 messages + receipt) at synchronous=FULL, the
  store's default: every round is a durable commit (an fsync of the WAL).
- digest.after_append: append_messages([one message]) then transcript_digest(), at
  synchronous=OFF so that no fsync hides a cost that grows with H (CPU and page reads only).
- digest.after_reopen: the same, each round on a store just closed and opened again (the
  open is not timed): the digest state comes from the file, not from memory.
"""

from __future__ import annotations

import os

import pytest

import engine
from conftest import HISTORY_SESSION, KNOBS, Feed, copy_db, history_store, interleaved, messages, tag, turns
from engine import digest

HISTORIES = KNOBS.histories


class History:
    """A writable copy of the cached session of h messages."""

    def __init__(self, work_dir: str, h: int, synchronous: str, feed_items):
        os.makedirs(os.path.join(work_dir, f"h{h}"))
        self.h = h
        self.synchronous = synchronous
        self.path = copy_db(history_store(h), os.path.join(work_dir, f"h{h}"), "store.db")
        self.store = engine.open(self.path, synchronous=synchronous)
        self.feed = Feed(feed_items)
        s = self.store.session(HISTORY_SESSION)
        assert s.message_count == h
        last = self.store.receipts(HISTORY_SESSION, run_id=f"run-{h // 2 - 1:06d}")
        assert last and last[-1].conversation_digest == s.digest  # stored state = the last receipt's digest

    def apply_turn(self):
        return self.store.apply_runtime_turn(HISTORY_SESSION, "bench-run", self.feed.next())

    def append_and_digest(self):
        self.store.append_messages(HISTORY_SESSION, [self.feed.next()])
        return self.store.transcript_digest(HISTORY_SESSION)

    def reopen(self):
        self.store.close()
        self.store = engine.open(self.path, synchronous=self.synchronous)

    def check(self, per_item: int) -> None:
        """Every appended message is there, and every receipt and the head still verify
        (only up to 1,000 messages on the pure-Python path, whose SHA-256 midstate code hashes
        ~1 MB/s)."""
        assert self.store.session(HISTORY_SESSION).message_count == self.h + per_item * self.feed.used
        if digest.DIGEST_IMPL == "native" or self.h <= 1_000:
            report = self.store.verify(HISTORY_SESSION)
            assert report.ok, report.mismatches[:3]

    def close(self):
        self.store.close()


def open_ladder(work_dir, synchronous, items):
    return {h: History(work_dir, h, synchronous, items) for h in HISTORIES}


@pytest.mark.benchmark(group="apply_turn.history")
@pytest.mark.parametrize("h", HISTORIES)
def test_apply_turn_history(benchmark, work_dir, h):
    rounds, warmup = KNOBS.n(30, 100), 3
    ladder = open_ladder(work_dir, "FULL", turns("bench", 1024, rounds + warmup))
    tag(benchmark, f"receipts.apply.h{h}", history=h, messages=2, ops=1, baseline=h == min(HISTORIES),
        synchronous="FULL")
    others = {f"h{k}": v.apply_turn for k, v in ladder.items() if k != h}
    receipt = interleaved(benchmark, ladder[h].apply_turn, others, rounds=rounds, warmup=warmup)
    assert receipt.message_count == h + 2 * ladder[h].feed.used
    ladder[h].check(2)
    for v in ladder.values():
        v.close()


@pytest.mark.benchmark(group="digest.after_append")
@pytest.mark.parametrize("h", HISTORIES)
def test_digest_after_append(benchmark, work_dir, h):
    rounds, warmup = KNOBS.n(100, 300), 5
    ladder = open_ladder(work_dir, "OFF", messages("append1", 1024, rounds + warmup))
    tag(benchmark, f"receipts.digest_after_append.h{h}", history=h, messages=1, ops=1,
        baseline=h == min(HISTORIES), synchronous="OFF")
    others = {f"h{k}": v.append_and_digest for k, v in ladder.items() if k != h}
    result = interleaved(benchmark, ladder[h].append_and_digest, others, rounds=rounds, warmup=warmup)
    assert result == ladder[h].store.session(HISTORY_SESSION).digest
    ladder[h].check(1)
    for v in ladder.values():
        v.close()


@pytest.mark.benchmark(group="digest.after_reopen")
@pytest.mark.parametrize("h", HISTORIES)
def test_digest_after_reopen(benchmark, work_dir, h):
    rounds, warmup = KNOBS.n(20, 60), 2
    ladder = open_ladder(work_dir, "OFF", messages("append1", 1024, rounds + warmup))
    me = ladder[h]
    tag(benchmark, f"receipts.digest_after_reopen.h{h}", history=h, messages=1, ops=1,
        baseline=h == min(HISTORIES), synchronous="OFF")

    def other(v):
        def run():
            v.reopen()
            v.append_and_digest()
        return run

    others = {f"h{k}": other(v) for k, v in ladder.items() if k != h}
    result = interleaved(benchmark, me.append_and_digest, others, rounds=rounds, warmup=warmup, before=me.reopen)
    assert result == me.store.session(HISTORY_SESSION).digest
    me.check(1)
    for v in ladder.values():
        v.close()
