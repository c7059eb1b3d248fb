"""The public Store API against a plain in-memory model (Hypothesis RuleBasedStateMachine).

Random interleavings of create, append, apply turn, apply a group of turns, set metadata,
delete, truncate, pop, close-and-reopen and verify on one file store; after every step the
store's answers (messages, metadata, message counts, digests, receipts, the session list)
must equal the model's. The model keeps each session as a list of message dicts and a list
of receipts; digests come from engine.digest over the model's messages, never from the store.

MOBSTORE_TEST_SEED fixes Hypothesis's seed (printed on every run); MOBSTORE_STATEFUL_EXAMPLES
sets the example count (default 30; the stress version, `-m stress`, 300).
"""

from __future__ import annotations

import os
import random
import tempfile

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test

import engine
from engine import digest
from engine.errors import InvalidInputError, SessionExistsError, SessionNotFoundError

STEPS = 25
# tmpfs when there is one: the model is about answers, not fsync latency (tests/faults/ covers I/O).
SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
SESSION_IDS = st.sampled_from(["s0", "s1", "s2", "s3"])
RUN_IDS = st.sampled_from(["run-a", "run-b"])
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
MESSAGE = st.one_of(
    st.builds(lambda t: {"role": "user", "content": t}, TEXT),
    st.builds(lambda t: {"role": "system", "content": t}, TEXT),
    st.builds(lambda t: {"role": "block_assistant", "blocks": [{"block_type": "text", "data": {"text": t}}],
                         "stop_reason": "end_turn"}, TEXT),
)
MESSAGES = st.lists(MESSAGE, max_size=4)
JSON_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-(2**53), 2**53), TEXT)
METADATA = st.one_of(
    st.dictionaries(st.sampled_from(["note", "owner", "tags"]), st.one_of(JSON_LEAF, st.lists(JSON_LEAF, max_size=3)),
                    max_size=3),
    st.builds(lambda mob, member: {"session_metadata": {
        "comms_name": f"{mob}/coder/{member}", "realm_id": f"mob:{mob}",
        "peer_meta": {"labels": {"mob_id": mob, "role": "coder", "meerkat_id": member}}}},
        st.sampled_from(["crew", "ops"]), st.sampled_from(["m1", "m2"])),
)


def model_digest(messages: list[dict]) -> str:
    state = digest.TranscriptState.new("f3")
    state.absorb([digest.message_bytes(m) for m in messages])
    return state.digest()


class StoreModel(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="mobstore-stateful-", dir=SCRATCH)
        self.path = os.path.join(self.dir, "model.db")
        self.store = engine.open(self.path)
        self.sessions: dict[str, dict] = {}  # id -> {"metadata", "messages", "receipts"}

    def teardown(self):
        self.store.close()
        for name in os.listdir(self.dir):
            os.remove(os.path.join(self.dir, name))
        os.rmdir(self.dir)

    # -- helpers ---------------------------------------------------------------------------------
    def _receipt(self, sid: str, run_id: str) -> tuple:
        s = self.sessions[sid]
        sequence = sum(1 for r in s["receipts"] if r[0] == run_id)
        entry = (run_id, sequence, len(s["messages"]), model_digest(s["messages"]))
        s["receipts"].append(entry)
        return entry

    @staticmethod
    def _as_tuple(receipt) -> tuple:
        return (receipt.run_id, receipt.sequence, receipt.message_count, receipt.conversation_digest)

    # -- rules -----------------------------------------------------------------------------------
    @initialize()
    def start(self):
        assert self.store.session_count() == 0

    @rule(sid=SESSION_IDS, metadata=METADATA, messages=MESSAGES)
    def create(self, sid, metadata, messages):
        if sid in self.sessions:
            with pytest.raises(SessionExistsError):
                self.store.create_session(metadata, session_id=sid, messages=messages)
            return
        assert self.store.create_session(metadata, session_id=sid, messages=messages) == sid
        self.sessions[sid] = {"metadata": metadata, "messages": list(messages), "receipts": []}

    @rule(sid=SESSION_IDS, messages=MESSAGES)
    def append(self, sid, messages):
        if sid not in self.sessions:
            with pytest.raises(SessionNotFoundError):
                self.store.append_messages(sid, messages)
            return
        self.sessions[sid]["messages"].extend(messages)
        assert self.store.append_messages(sid, messages) == len(self.sessions[sid]["messages"])

    @rule(sid=SESSION_IDS, run_id=RUN_IDS, messages=MESSAGES)
    def apply_turn(self, sid, run_id, messages):
        if sid not in self.sessions:
            with pytest.raises(SessionNotFoundError):
                self.store.apply_runtime_turn(sid, run_id, messages)
            return
        self.sessions[sid]["messages"].extend(messages)
        expected = self._receipt(sid, run_id)
        assert self._as_tuple(self.store.apply_runtime_turn(sid, run_id, messages)) == expected

    @rule(turns=st.lists(st.tuples(SESSION_IDS, RUN_IDS, MESSAGES), min_size=1, max_size=3))
    def apply_turns(self, turns):
        """A group of turns in one commit: all or nothing when one names a missing session."""
        if any(sid not in self.sessions for sid, _r, _m in turns):
            with pytest.raises(SessionNotFoundError):
                self.store.apply_runtime_turns(turns)
            return
        expected = []
        for sid, run_id, messages in turns:
            self.sessions[sid]["messages"].extend(messages)
            expected.append(self._receipt(sid, run_id))
        assert [self._as_tuple(r) for r in self.store.apply_runtime_turns(turns)] == expected

    @rule(sid=SESSION_IDS, metadata=METADATA)
    def set_metadata(self, sid, metadata):
        if sid not in self.sessions:
            with pytest.raises(SessionNotFoundError):
                self.store.set_metadata(sid, metadata)
            return
        self.store.set_metadata(sid, metadata)
        self.sessions[sid]["metadata"] = metadata

    @rule(sid=SESSION_IDS)
    def delete(self, sid):
        assert self.store.delete_session(sid) is (sid in self.sessions)
        self.sessions.pop(sid, None)

    @rule(sid=SESSION_IDS, data=st.data())
    def truncate(self, sid, data):
        if sid not in self.sessions:
            with pytest.raises(SessionNotFoundError):
                self.store.truncate_messages(sid, 0)
            return
        messages = self.sessions[sid]["messages"]
        keep = data.draw(st.integers(0, len(messages) + 1), label="keep")
        if keep > len(messages):
            with pytest.raises(InvalidInputError):
                self.store.truncate_messages(sid, keep)
            return
        assert self.store.truncate_messages(sid, keep) == len(messages) - keep
        del messages[keep:]

    @rule(sid=SESSION_IDS)
    def pop(self, sid):
        if sid not in self.sessions:
            with pytest.raises(SessionNotFoundError):
                self.store.pop_message(sid)
            return
        messages = self.sessions[sid]["messages"]
        assert self.store.pop_message(sid) == (messages.pop() if messages else None)

    @rule()
    def reopen(self):
        self.store.close()
        self.store = engine.open(self.path)

    @rule()
    def verify(self):
        report = self.store.verify()
        assert report.ok, report.mismatches
        assert report.sessions == len(self.sessions)

    # -- compared after every step -----------------------------------------------------------------
    @invariant()
    def store_matches_model(self):
        assert self.store.session_count() == len(self.sessions)
        assert sorted(s.id for s in self.store.sessions()) == sorted(self.sessions)
        for sid in ("s0", "s1", "s2", "s3"):
            if sid not in self.sessions:
                assert self.store.session(sid) is None
                continue
            model = self.sessions[sid]
            session = self.store.session(sid)
            assert session.metadata == model["metadata"]
            assert session.message_count == len(model["messages"]) == self.store.message_count(sid)
            assert self.store.messages(sid) == model["messages"]
            assert session.digest == model_digest(model["messages"]) == self.store.transcript_digest(sid)
            assert sorted(self._as_tuple(r) for r in self.store.receipts(sid)) == sorted(model["receipts"])

    @invariant()
    @precondition(lambda self: any("session_metadata" in s["metadata"] for s in self.sessions.values()))
    def membership_matches_model(self):
        for mob in ("crew", "ops"):
            expected = sorted(sid for sid, s in self.sessions.items()
                              if s["metadata"].get("session_metadata", {}).get("realm_id") == f"mob:{mob}")
            assert sorted(m.session_id for m in self.store.mob_members(mob)) == expected


def _run(name: str, default_examples: int) -> None:
    examples = int(os.environ.get("MOBSTORE_STATEFUL_EXAMPLES", default_examples))
    seed = int(os.environ.get("MOBSTORE_TEST_SEED", random.randrange(1 << 30)))
    print(f"\n[{name}] MOBSTORE_TEST_SEED={seed} examples={examples} steps<={STEPS}")
    machine = hypothesis_seed(seed)(StoreModel)
    run_state_machine_as_test(machine, settings=settings(
        max_examples=examples, stateful_step_count=STEPS, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]))


def test_store_matches_the_model():
    _run("test_store_matches_the_model", 30)


@pytest.mark.stress
def test_store_matches_the_model_long():
    _run("test_store_matches_the_model_long", 300)
