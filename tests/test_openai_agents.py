"""engine.integrations.openai_agents with the real openai-agents SDK and no network: Runner.run
against a local fake Model (a function call, its output, then a final message), multi-turn,
item-for-item equal to the SDK's own SQLiteSession on the same run; receipts per run; pop and
clear keep every receipt verifiable; the mob binding makes SDK agents mob members."""

from __future__ import annotations

import asyncio
import json
import os
import runpy
import subprocess
import sys
import threading
import time

import pytest
from agents import Agent, RunConfig, Runner, function_tool, set_tracing_disabled
from agents.items import ModelResponse
from agents.memory import Session, SessionSettings, SQLiteSession
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

import engine
from engine import digest
from engine.errors import InvalidInputError
from engine.integrations.openai_agents import MobstoreSession, mob_metadata, run_with_receipt

NO_TRACING = RunConfig(tracing_disabled=True)


@pytest.fixture(autouse=True)
def _no_tracing():
    set_tracing_disabled(True)  # nothing may try to export traces: there is no network


class ScriptedModel(Model):
    """A Model that answers from a script of canned ModelResponse outputs, one per call, and
    records the input it was given (what the session fed the model)."""

    def __init__(self, script: list[list]):
        self.script = list(script)
        self.inputs: list = []

    async def get_response(self, system_instructions, input, model_settings, tools, output_schema, handoffs,
                           tracing, *, previous_response_id=None, conversation_id=None, prompt=None):
        self.inputs.append(json.loads(json.dumps(input)))
        if not self.script:
            raise AssertionError("the model was called more often than scripted")
        return ModelResponse(output=self.script.pop(0), usage=Usage(), response_id=None)

    def stream_response(self, *args, **kwargs):
        raise NotImplementedError("not streamed in these tests")


def say(text: str, n: int) -> ResponseOutputMessage:
    return ResponseOutputMessage(id=f"msg_{n}", type="message", role="assistant", status="completed",
                                 content=[ResponseOutputText(type="output_text", text=text, annotations=[])])


def call_add(a: int, b: int, n: int) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(id=f"fc_{n}", call_id=f"call_{n}", type="function_call", name="add",
                                    arguments=json.dumps({"a": a, "b": b}), status="completed")


@function_tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def script() -> list[list]:
    """Two user turns: a tool call and its answer, then a plain answer with non-ASCII and a float."""
    return [[call_add(2, 3, 1)], [say("2 + 3 = 5", 2)], [say("au revoir, Zoë 🦊 — 0.1+0.2", 3)]]


TURNS = ["what is 2 + 3?", "thanks, bye"]


async def run_conversation(session) -> tuple[list, ScriptedModel]:
    model = ScriptedModel(script())
    agent = Agent(name="calc", instructions="You add numbers.", model=model, tools=[add])
    outputs = []
    for text in TURNS:
        result = await Runner.run(agent, text, session=session, run_config=NO_TRACING)
        outputs.append(result.final_output)
    return outputs, model


def test_runner_multi_turn_matches_sqlite_session(tmp_path):
    mob = MobstoreSession("chat-1", str(tmp_path / "m.db"))
    ref = SQLiteSession("chat-1", str(tmp_path / "ref.db"))
    try:
        assert isinstance(mob, Session)  # the SDK's runtime-checkable protocol
        ours, our_model = asyncio.run(run_conversation(mob))
        theirs, their_model = asyncio.run(run_conversation(ref))
        assert ours == theirs == ["2 + 3 = 5", "au revoir, Zoë 🦊 — 0.1+0.2"]
        got, expected = asyncio.run(mob.get_items()), asyncio.run(ref.get_items())
        assert len(got) == 6  # user, function_call, function_call_output, assistant, user, assistant
        assert [i.get("type") for i in got] == [None, "function_call", "function_call_output", "message", None, "message"]
        assert got == expected
        assert [list(i) for i in got] == [list(i) for i in expected]  # key order too
        assert our_model.inputs == their_model.inputs  # the model saw the same history on every call
        for limit in (None, 0, 1, 4, 6, 99, -1):
            assert asyncio.run(mob.get_items(limit)) == asyncio.run(ref.get_items(limit)), limit
    finally:
        mob.close()
        ref.close()


def test_each_run_gets_a_verifiable_receipt(tmp_path):
    path = str(tmp_path / "m.db")

    async def go():
        session = MobstoreSession("chat-2", path)
        model = ScriptedModel(script())
        agent = Agent(name="calc", instructions="You add numbers.", model=model, tools=[add])
        receipts = []
        for n, text in enumerate(TURNS):
            result, receipt = await run_with_receipt(agent, text, session=session, run_id=f"run-{n}",
                                                     contributing_input_ids=[f"turn-{n}"], run_config=NO_TRACING)
            receipts.append(receipt)
        items = await session.get_items()
        session.close()
        return receipts, items

    receipts, items = asyncio.run(go())
    assert [(r.run_id, r.sequence, r.message_count) for r in receipts] == [("run-0", 0, 4), ("run-1", 0, 6)]
    assert receipts[1].contributing_input_ids == ("turn-1",)
    assert receipts[0].conversation_digest == digest.transcript_digest(items[:4], "jcs")
    assert receipts[1].conversation_digest == digest.transcript_digest(items, "jcs")
    with engine.open(path) as store:
        report = store.verify()
        assert report.ok and report.receipts_ok == 2
        assert store.session("chat-2").digest_profile == "jcs"


def test_pop_and_clear_keep_every_receipt_verifiable(tmp_path):
    path = str(tmp_path / "m.db")
    ref = SQLiteSession("chat-3", str(tmp_path / "ref.db"))

    async def go():
        session = MobstoreSession("chat-3", path)
        await run_conversation(session)
        await run_conversation(ref)
        first = await session.commit_receipt("after-runs")
        popped, ref_popped = await session.pop_item(), await ref.pop_item()
        assert popped == ref_popped and popped["id"] == "msg_3"
        assert await session.get_items() == await ref.get_items()
        second = await session.commit_receipt("after-pop")
        await session.clear_session()
        await ref.clear_session()
        assert await session.get_items() == await ref.get_items() == []
        assert await session.pop_item() is None and await ref.pop_item() is None
        # the conversation goes on after a clear
        model = ScriptedModel([[say("fresh start", 9)]])
        agent = Agent(name="calc", instructions="You add numbers.", model=model, tools=[add])
        result = await Runner.run(agent, "hello again", session=session, run_config=NO_TRACING)
        assert result.final_output == "fresh start" and len(await session.get_items()) == 2
        third = await session.commit_receipt("after-clear")
        session.close()
        return first, second, third

    try:
        first, second, third = asyncio.run(go())
    finally:
        ref.close()
    assert (first.message_count, second.message_count, third.message_count) == (6, 5, 2)
    with engine.open(path) as store:
        report = store.verify()
        assert report.ok, report.mismatches
        assert (report.receipts, report.receipts_ok, report.receipts_superseded) == (3, 1, 2)
        assert [(r.old_count, r.new_count, r.reason) for r in store.rewrites("chat-3")] == [
            (6, 5, "pop_item"), (5, 0, "clear_session")]
        assert digest.transcript_digest(store.transcript_before("chat-3", 0), "jcs") == first.conversation_digest
        kinds = [e.kind for e in store.events(session_id="chat-3")]
        assert kinds.count("messages_truncated") == 2


def test_mob_binding_makes_sdk_agents_members(tmp_path):
    store = engine.open(str(tmp_path / "m.db"))
    try:
        roles = {"coder": "agent-1", "reviewer": "agent-2"}
        sessions = [MobstoreSession(f"s-{role}", store, comms_name=f"crew/{role}/{member}", realm_id="mob:crew",
                                    labels={"mob_id": "crew", "role": role, "meerkat_id": member})
                    for role, member in roles.items()]
        MobstoreSession("s-other", store, comms_name="other/coder/agent-9", realm_id="mob:other",
                        labels={"mob_id": "other", "role": "coder", "meerkat_id": "agent-9"})
        members = store.mob_members("crew")
        assert sorted((m.session_id, m.profile, m.meerkat_id) for m in members) == [
            ("s-coder", "coder", "agent-1"), ("s-reviewer", "reviewer", "agent-2")]
        assert store.session_belongs_to_mob("s-coder", "crew") and not store.session_belongs_to_mob("s-other", "crew")
        rec = store.reconcile_mob("crew", roster=[("coder", "agent-1"), ("reviewer", "agent-2"), ("tester", "agent-3")])
        assert not rec.ok and list(rec.missing) == [("tester", "agent-3")]
        assert store.session("s-coder").metadata == mob_metadata(
            "crew/coder/agent-1", "mob:crew", {"mob_id": "crew", "role": "coder", "meerkat_id": "agent-1"})
        # reopening the same session with the same binding is fine; another binding is refused
        MobstoreSession("s-coder", store, comms_name="crew/coder/agent-1", realm_id="mob:crew",
                        labels={"mob_id": "crew", "role": "coder", "meerkat_id": "agent-1"})
        MobstoreSession("s-coder", store)  # no binding given: reuse as stored
        with pytest.raises(InvalidInputError, match="other metadata"):
            MobstoreSession("s-coder", store, comms_name="crew/tester/agent-1")
        assert sessions[0].store is store
    finally:
        store.close()


def test_refuses_a_session_of_another_profile_and_bad_input(store):
    store.create_session(session_id="meerkat", digest_profile="f3")
    with pytest.raises(InvalidInputError, match="profile 'f3'"):
        MobstoreSession("meerkat", store)
    with pytest.raises(InvalidInputError, match="session_id"):
        MobstoreSession("", store)
    session = MobstoreSession("s", store)

    async def go():
        with pytest.raises(InvalidInputError, match="single item"):
            await session.add_items({"role": "user", "content": "x"})
        with pytest.raises(InvalidInputError):
            await session.add_items([{"role": "user", "content": "ok"}, {"bad": float("nan")}])
        assert await session.get_items() == []  # all or nothing
        with pytest.raises(InvalidInputError, match="limit"):
            await session.get_items("3")

    asyncio.run(go())


def test_session_settings_limit(store):
    session = MobstoreSession("s", store, session_settings=SessionSettings(limit=2))
    items = [{"role": "user", "content": str(i)} for i in range(5)]
    asyncio.run(session.add_items(items))
    assert asyncio.run(session.get_items()) == items[-2:]
    assert asyncio.run(session.get_items(limit=4)) == items[-4:]
    as_dict = MobstoreSession("s", store, session_settings={"limit": 1})
    assert as_dict.session_settings.limit == 1 and asyncio.run(as_dict.get_items()) == items[-1:]


def test_writes_run_off_the_event_loop(store, monkeypatch):
    """A slow commit (simulated: the store's append sleeps 0.3 s, as a slow fsync would) does not
    stop other coroutines; a cancelled add_items still completes its write."""
    session = MobstoreSession("s", store)
    real = store.append_messages
    loop_threads = set()

    def slow_append(*args, **kwargs):
        loop_threads.add(threading.get_ident())
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(store, "append_messages", slow_append)

    async def go():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        t = asyncio.create_task(ticker())
        await session.add_items([{"role": "user", "content": "a"}])
        assert ticks >= 10, ticks  # the loop kept running during the 0.3 s write
        assert threading.get_ident() not in loop_threads
        write = asyncio.create_task(session.add_items([{"role": "user", "content": "b"}]))
        await asyncio.sleep(0.05)
        write.cancel()
        with pytest.raises(asyncio.CancelledError):
            await write
        t.cancel()

    asyncio.run(go())
    assert [m["content"] for m in store.messages("s")] == ["a", "b"]  # the cancelled write completed


def test_sixteen_concurrent_sessions(tmp_path):
    path = str(tmp_path / "m.db")

    async def go():
        with engine.open(path) as store:
            sessions = [MobstoreSession(f"agent-{i}", store, comms_name=f"crew/worker/agent-{i}",
                                        realm_id="mob:crew",
                                        labels={"mob_id": "crew", "role": "worker", "meerkat_id": f"agent-{i}"})
                        for i in range(16)]
            outs = await asyncio.gather(*(run_conversation(s) for s in sessions))
            receipts = await asyncio.gather(*(s.commit_receipt(f"run-{s.session_id}") for s in sessions))
            assert all(o == outs[0][0] for o, _m in outs)
            assert {r.message_count for r in receipts} == {6}
            assert len(store.mob_members("crew")) == 16
            report = store.verify()
            assert report.ok and report.receipts_ok == 16

    asyncio.run(go())


def test_import_engine_does_not_need_the_sdk():
    code = ("import sys, engine, engine.cli; "
            "assert 'agents' not in sys.modules and 'engine.integrations' not in sys.modules, sorted(sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def _example(path: str, marker: str) -> str:
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    [code] = [b for b in blocks if marker in b]
    return code


@pytest.mark.parametrize("doc", ["README.md", "docs/openai-agents.md"])
def test_documented_example_runs(doc, tmp_path, monkeypatch, capsys):
    """The example runs as written; only the agent's model is swapped for a scripted one (the
    example's Agent would otherwise call a hosted model)."""
    import agents

    root = os.path.join(os.path.dirname(__file__), "..")
    code = _example(os.path.join(root, doc), "asyncio.run(main())")
    real_agent = agents.Agent
    monkeypatch.setattr(agents, "Agent", lambda **kw: real_agent(**kw, model=ScriptedModel([[say("fixed", 1)]])))
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(_write(tmp_path / "example.py", code)))
    out = capsys.readouterr().out
    assert out.startswith("fixed ") and '"run_id":"run-1"' in out and '"message_count":2' in out
    with engine.open(str(tmp_path / "agents.db")) as store:
        assert [m.session_id for m in store.mob_members("crew")] == ["chat-7"]


def _write(path, text):
    path.write_text(text)
    return path
