"""The systems mobstore is compared with, each behind the same small interface.

Every peer gets the same generated turns (the meerkat-shaped dicts of conftest.py) and
the same durability: WAL + synchronous=FULL on every connection it writes through
(SQLite's compiled default is FULL too, but it is set explicitly and checked).

- openai-agents `SQLiteSession`: add_items per turn, get_items to load. Its API is async
  (each call hops to a worker thread with asyncio.to_thread); we call it from one event loop
  kept for the whole benchmark, as an agent runtime would. It has no session metadata, so
  "sessions of mob G" can only be a naming convention: the session id starts with the
  comms_name "G/profile/id", found by a primary-key range scan (it cannot check realm_id or
  labels: broken claims come back as members).
- langgraph-checkpoint-sqlite `SqliteSaver`: one checkpoint per turn whose channel_values
  hold the whole message list, as a LangGraph messages graph (add_messages reducer) stores
  it; a real graph also writes put_writes per node and usually more than one checkpoint per
  turn, so this is the least work LangGraph does per turn. "Sessions of mob G": the mob
  fields live in the checkpoint metadata and `list(None, filter=...)` matches them with
  json_extract (a scan), the rest of the membership rule is checked in Python.
- naive: stdlib sqlite3 + json written for this benchmark: a sessions table (metadata JSON
  text), a messages table (autoincrement id, session_id, json.dumps text) with an index on
  (session_id, id); one transaction per turn; the membership rule as json_extract in SQL (a scan).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest


def check_durability(conn: sqlite3.Connection, what: str) -> None:
    mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    sync = conn.execute("PRAGMA synchronous").fetchone()[0]
    assert (mode.lower(), sync) == ("wal", 2), f"{what}: journal_mode={mode}, synchronous={sync}"


def split_claim(comms_name) -> tuple[str, str, str] | None:
    if not isinstance(comms_name, str):
        return None
    parts = comms_name.split("/")
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


def seed_rule(metadata: dict, mob: str) -> tuple[str, str] | None:
    """The membership rule (docs/membership.md) in Python: (profile, meerkat_id) if the metadata binds to mob."""
    sm = metadata.get("session_metadata")
    if not isinstance(sm, dict):
        return None
    parts = split_claim(sm.get("comms_name"))
    if parts is None or parts[0] != mob or sm.get("realm_id") != "mob:" + mob:
        return None
    peer_meta = sm.get("peer_meta")
    labels = peer_meta.get("labels") if isinstance(peer_meta, dict) else None
    if not isinstance(labels, dict):
        return None
    if labels.get("mob_id") != mob or labels.get("role") != parts[1] or labels.get("meerkat_id") != parts[2]:
        return None
    return parts[1], parts[2]


# ------------------------------------------------------------------------------------------
# openai-agents


def openai_session_class():
    """SQLiteSession with synchronous=FULL set on every connection it opens (it opens one per
    worker thread); skips the caller's test when openai-agents is not installed."""
    try:
        from agents.memory import SQLiteSession
    except ImportError as exc:
        pytest.skip(f"openai-agents not installed ({exc}); pip install -e '.[bench]'")

    class DurableSQLiteSession(SQLiteSession):
        @staticmethod
        def _configure_connection(conn):
            SQLiteSession._configure_connection(conn)  # journal_mode=WAL (its own setting)
            conn.execute("PRAGMA synchronous = FULL")

    return DurableSQLiteSession


class OpenAIAgents:
    name = "openai-agents"

    def __init__(self, path: str, session_id: str = "bench-history"):
        cls = openai_session_class()
        self.loop = asyncio.new_event_loop()
        self.session = cls(session_id, path)

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def check(self) -> None:
        def probe():
            with self.session._locked_connection() as conn:  # the worker thread's own connection
                check_durability(conn, "openai-agents")
        self.run(asyncio.to_thread(probe))

    def append_turn(self, turn: list[dict]) -> None:
        self.run(self.session.add_items(turn))

    def load(self) -> list:
        return self.run(self.session.get_items())

    def close(self) -> None:
        self.session.close()
        self.run(self.loop.shutdown_default_executor())
        self.loop.close()


def build_openai_sessions(path: str, sessions: list[tuple[str, list[dict]]]) -> None:
    """Many sessions at once, written straight into SQLiteSession's own tables exactly as its
    _insert_items does (a session row, then json.dumps of each item), in one transaction."""
    cls = openai_session_class()
    cls("schema-only", path).close()  # its constructor creates its schema
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.executemany("INSERT INTO agent_sessions (session_id) VALUES (?)", ((sid,) for sid, _ in sessions))
            conn.executemany("INSERT INTO agent_messages (session_id, message_data) VALUES (?, ?)",
                             ((sid, json.dumps(item)) for sid, items in sessions for item in items))
    finally:
        conn.close()


def openai_mob_query(conn: sqlite3.Connection, mob: str) -> list[tuple[str, str, str]]:
    """Sessions whose id starts with "mob/": a range scan of agent_sessions' primary key
    (SQLiteSession has no listing API, so this is SQL on its table)."""
    rows = conn.execute("SELECT session_id FROM agent_sessions WHERE session_id >= ? AND session_id < ?",
                        (mob + "/", mob + "0")).fetchall()  # "0" is the character after "/"
    out = []
    for (sid,) in rows:
        parts = split_claim(sid.split("|", 1)[0])
        if parts:
            out.append((sid, parts[1], parts[2]))
    return out


# ------------------------------------------------------------------------------------------
# langgraph


def _langgraph():
    try:
        from langgraph.checkpoint.base import empty_checkpoint
        from langgraph.checkpoint.base.id import uuid6
        from langgraph.checkpoint.sqlite import SqliteSaver
    except ImportError as exc:
        pytest.skip(f"langgraph-checkpoint-sqlite not installed ({exc}); pip install -e '.[bench]'")
    return SqliteSaver, empty_checkpoint, uuid6


class LangGraph:
    name = "langgraph"

    def __init__(self, path: str, thread_id: str = "bench-history", *, synchronous: str = "FULL"):
        SqliteSaver, self._empty, self._uuid6 = _langgraph()
        self.conn = sqlite3.connect(path, check_same_thread=False)
        self.saver = SqliteSaver(self.conn)
        self.saver.setup()  # journal_mode=WAL (its own setting)
        self.conn.execute(f"PRAGMA synchronous = {synchronous}")
        self.thread_id = thread_id
        self.config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        self.messages: list = []
        self.step = -1
        self.version = None

    def check(self) -> None:
        check_durability(self.conn, "langgraph")

    def append_turn(self, turn: list[dict], metadata: dict | None = None) -> None:
        # The add_messages reducer returns a new list: old messages + the turn's.
        self.messages = [*self.messages, *turn]
        self.step += 1
        self.version = self.saver.get_next_version(self.version, None)
        checkpoint = self._empty()
        checkpoint["id"] = str(self._uuid6(clock_seq=self.step))
        checkpoint["channel_values"] = {"messages": self.messages}
        checkpoint["channel_versions"] = {"messages": self.version}
        checkpoint["versions_seen"] = {"agent": {"messages": self.version}}
        meta = {"source": "loop", "step": self.step, "parents": {}, **(metadata or {})}
        self.config = self.saver.put(self.config, checkpoint, meta, {"messages": self.version})

    def load(self) -> list:
        tup = self.saver.get_tuple({"configurable": {"thread_id": self.thread_id, "checkpoint_ns": ""}})
        return tup.checkpoint["channel_values"]["messages"]

    def close(self) -> None:
        self.conn.close()


def build_langgraph_sessions(path: str, sessions: list[tuple[str, list[dict], dict]]) -> None:
    """One thread per session, one checkpoint holding its turn, mob fields in the metadata
    (through SqliteSaver.put; synchronous=OFF while building, the file is the same)."""
    lg = LangGraph(path, "schema-only", synchronous="OFF")
    try:
        for thread_id, turn, metadata in sessions:
            lg.thread_id = thread_id
            lg.config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
            lg.messages, lg.step, lg.version = [], -1, None
            lg.append_turn(turn, metadata)
    finally:
        lg.close()


def langgraph_mob_query(saver, mob: str) -> list[tuple[str, str, str]]:
    """SqliteSaver.list over every thread with a metadata filter (json_extract in SQL),
    then the rest of the membership rule in Python; one entry per thread."""
    seen = {}
    for tup in saver.list(None, filter={"mob_id": mob, "realm_id": "mob:" + mob}):
        md = tup.metadata
        parts = split_claim(md.get("comms_name"))
        if parts and parts[0] == mob and md.get("role") == parts[1] and md.get("meerkat_id") == parts[2]:
            seen[tup.config["configurable"]["thread_id"]] = (parts[1], parts[2])
    return [(tid, p, m) for tid, (p, m) in seen.items()]


def langgraph_metadata(metadata: dict) -> dict:
    """The mob fields of a session's metadata, flat, as a LangGraph app puts them in its
    run config's metadata (which SqliteSaver copies into every checkpoint)."""
    sm = metadata.get("session_metadata")
    if not isinstance(sm, dict):
        return {"title": metadata.get("title")}
    labels = ((sm.get("peer_meta") or {}).get("labels") or {})
    return {"comms_name": sm.get("comms_name"), "realm_id": sm.get("realm_id"),
            "mob_id": labels.get("mob_id"), "role": labels.get("role"), "meerkat_id": labels.get("meerkat_id")}


# ------------------------------------------------------------------------------------------
# naive stdlib sqlite3 + json

NAIVE_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, metadata TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL REFERENCES sessions (id),
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_session ON messages (session_id, id);
"""

NAIVE_MEMBERS_SQL = """
SELECT id, json_extract(metadata, '$.session_metadata.peer_meta.labels.role'),
       json_extract(metadata, '$.session_metadata.peer_meta.labels.meerkat_id')
FROM sessions
WHERE json_extract(metadata, '$.session_metadata.realm_id') = 'mob:' || :mob
  AND json_extract(metadata, '$.session_metadata.peer_meta.labels.mob_id') = :mob
  AND json_extract(metadata, '$.session_metadata.comms_name') =
      :mob || '/' || json_extract(metadata, '$.session_metadata.peer_meta.labels.role')
           || '/' || json_extract(metadata, '$.session_metadata.peer_meta.labels.meerkat_id')
"""


class Naive:
    name = "naive"

    def __init__(self, path: str, session_id: str = "bench-history", *, synchronous: str = "FULL"):
        self.conn = sqlite3.connect(path)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute(f"PRAGMA synchronous = {synchronous}")
        self.conn.executescript(NAIVE_SCHEMA)
        self.session_id = session_id

    def check(self) -> None:
        check_durability(self.conn, "naive")

    def create_session(self, session_id: str, metadata: dict) -> None:
        with self.conn:
            self.conn.execute("INSERT INTO sessions (id, metadata) VALUES (?, ?)", (session_id, json.dumps(metadata)))

    def append_turn(self, turn: list[dict], session_id: str | None = None) -> None:
        sid = session_id or self.session_id
        with self.conn:
            self.conn.executemany("INSERT INTO messages (session_id, body) VALUES (?, ?)",
                                  ((sid, json.dumps(m)) for m in turn))

    def load(self, session_id: str | None = None) -> list:
        rows = self.conn.execute("SELECT body FROM messages WHERE session_id = ? ORDER BY id",
                                 (session_id or self.session_id,)).fetchall()
        return [json.loads(body) for (body,) in rows]

    def members(self, mob: str) -> list[tuple[str, str, str]]:
        out = []
        for sid, role, meerkat_id in self.conn.execute(NAIVE_MEMBERS_SQL, {"mob": mob}):
            # '/' inside role or id would fake three parts; the membership rule needs exactly three.
            if role and meerkat_id and "/" not in role and "/" not in meerkat_id:
                out.append((sid, role, meerkat_id))
        return out

    def close(self) -> None:
        self.conn.close()


def build_naive_sessions(path: str, sessions: list[tuple[str, list[dict], dict]]) -> None:
    n = Naive(path, synchronous="OFF")
    try:
        with n.conn:
            n.conn.executemany("INSERT INTO sessions (id, metadata) VALUES (?, ?)",
                               ((sid, json.dumps(md)) for sid, _t, md in sessions))
            n.conn.executemany("INSERT INTO messages (session_id, body) VALUES (?, ?)",
                               ((sid, json.dumps(m)) for sid, turn, _md in sessions for m in turn))
    finally:
        n.close()


class NaiveMobstoreReader:
    """A naive stdlib reader of mobstore's own file: one range query, json.loads per row."""

    name = "naive-on-mobstore"

    def __init__(self, path: str, num: int):
        self.conn = sqlite3.connect(path)
        self.num = num

    def load(self) -> list:
        rows = self.conn.execute("SELECT body FROM ms_messages WHERE key >= ? AND key < ? ORDER BY key",
                                 (self.num << 32, (self.num + 1) << 32)).fetchall()
        return [json.loads(body) for (body,) in rows]

    def close(self) -> None:
        self.conn.close()
