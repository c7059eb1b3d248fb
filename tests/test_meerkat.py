"""The meerkat realm-file reader (engine/meerkat/) on meerkat's own realm files and on
small crafted ones (docs/meerkat.md)."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path

import apsw
import orjson
import pytest

from engine.errors import ImportFormatError
from engine.meerkat import (
    LAYOUT_HEADS_0728,
    LAYOUT_LEDGER_0810,
    LAYOUT_SESSIONS_07,
    RealmProblem,
    RealmSession,
    open_realm,
)

FIXTURES = Path(__file__).parent / "fixtures" / "meerkat"
REALM_075 = FIXTURES / "realm-0.7.5-attempted-turn.sqlite3"
REALM_0728 = FIXTURES / "realm-0.7.28-attempted-turn.sqlite3"

SID_075 = "01a00703-2118-7712-8d1b-5fd002e2a7d1"
SID_0728 = "01a00703-2762-7c22-8c30-d3ed99b3ad42"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha(path: Path) -> str:
    return sha(path.read_bytes())


def only(items):
    items = list(items)
    assert len(items) == 1, items
    return items[0]


# ---------------------------------------------------------------------------
# The real files
# ---------------------------------------------------------------------------


def test_realm_075_whole_document_session():
    before = file_sha(REALM_075)
    with open_realm(REALM_075, check_digests=False) as realm:
        assert realm.layout == LAYOUT_SESSIONS_07
        assert realm.schema_versions == {}
        assert realm.session_count() == 1
        session = only(realm.sessions())
        assert realm.problems_outside_sessions() == []
    assert isinstance(session, RealmSession)
    assert session.session_id == SID_075
    assert (session.created_at_ms, session.updated_at_ms) == (1786824040728, 1786824040804)
    assert session.envelope_version == 2
    assert session.head is None
    assert session.receipts == ()
    meta = session.metadata["session_metadata"]
    assert meta["comms_name"] is None and meta["realm_id"] == "legacy-realm" and meta["model"] == "claude-opus-4-8"
    assert sorted(session.metadata) == [
        "session_build_state", "session_compaction_cadence", "session_deferred_turn_state",
        "session_metadata", "session_system_context_state", "session_tool_visibility_state_v1",
    ]
    message = only(session.messages)
    assert len(message) == 14083
    assert sha(message) == "fc5ef0299f07ed9f2289b5ab8ce556a5a5ad7dfe762b91870c6df857e3f72d62"
    assert message.startswith(b'{"role":"system","content":"You are an autonomous agent.')
    assert message.endswith(b'"mutation_kind":"explicit_build","created_at":"2026-08-15T20:00:40.803665Z"}')
    # Independently: the message is the exact byte span of messages[0] in session_json.
    db = sqlite3.connect(f"file:{REALM_075}?mode=ro&immutable=1", uri=True)
    (doc,) = db.execute("SELECT session_json FROM sessions").fetchone()
    db.close()
    assert doc.startswith(b'{"version":2,"id":"' + SID_075.encode() + b'","messages":[' + message + b'],')
    assert orjson.loads(message) == orjson.loads(doc)["messages"][0]
    assert file_sha(REALM_075) == before


def test_realm_0728_head_strand_session():
    before = file_sha(REALM_0728)
    with open_realm(REALM_0728, check_digests=False) as realm:
        assert realm.layout == LAYOUT_HEADS_0728
        assert realm.session_count() == 1  # the `sessions` table is empty in this file
        session = only(realm.sessions())
        assert realm.problems_outside_sessions() == []
    assert isinstance(session, RealmSession)
    assert session.session_id == SID_0728
    assert (session.created_at_ms, session.updated_at_ms) == (1786824042338, 1786824042377)
    assert session.envelope_version == 2
    assert session.head is not None
    assert session.head.revision == "sha256:2a4584479c902ebf8f8b208649bf5347139c19bc4ec973c581aa1b270a975261"
    assert (session.head.message_count, session.head.version, session.head.strand, session.head.profile) == (
        1, 2, "root", "f2",
    )
    assert session.receipts == ()
    assert session.metadata["session_metadata"]["realm_id"] == "legacy-realm"
    assert "assembled_system_prompt" in session.metadata["session_build_state"]
    message = only(session.messages)
    assert len(message) == 14277
    assert sha(message) == "0a382e653ea92b976a637733067865db05efd30882ef5edceaf7b75f7a2aeff2"
    db = sqlite3.connect(f"file:{REALM_0728}?mode=ro&immutable=1", uri=True)
    assert db.execute("SELECT message_json FROM session_strand_messages").fetchone()[0] == message
    db.close()
    # The f2 revision by hand (§1.4, §2.1): no opaque slot and no identity
    # in this system message, so f2 = created_at set to the epoch.
    epoch = message.replace(b'"created_at":"2026-08-15T20:00:42.376298Z"', b'"created_at":"1970-01-01T00:00:00Z"')
    assert "sha256:" + sha(b"[" + epoch + b"]") == session.head.revision
    assert file_sha(REALM_0728) == before


def test_real_head_verifies_through_the_digest_check():
    with open_realm(REALM_0728) as realm:
        assert realm.digests_checked
        session = only(realm.sessions())
    assert isinstance(session, RealmSession), session


def test_session_lookup_by_id():
    with open_realm(REALM_0728, check_digests=False) as realm:
        assert realm.session(SID_0728).session_id == SID_0728
        assert realm.session("no-such-session") is None


def test_closed_realm_refuses():
    realm = open_realm(REALM_075)
    realm.close()
    realm.close()  # idempotent
    with pytest.raises(ImportFormatError, match="closed"):
        realm.session_count()


# ---------------------------------------------------------------------------
# Crafted realms
# ---------------------------------------------------------------------------


def _fixture_ddl() -> list[str]:
    """The meerkat 0.7.28 DDL, taken from the real file."""
    db = sqlite3.connect(f"file:{REALM_0728}?mode=ro&immutable=1", uri=True)
    ddl = [sql for (sql,) in db.execute("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid")]
    db.close()
    return ddl


LEDGER_DDL = [
    "CREATE TABLE meerkat_schema (domain TEXT PRIMARY KEY, version INTEGER NOT NULL)",
    """CREATE TABLE session_strand_links (session_id TEXT NOT NULL, strand TEXT NOT NULL,
        successor TEXT NOT NULL, strand_len INTEGER NOT NULL, splice_start INTEGER NOT NULL,
        splice_end INTEGER NOT NULL, successor_end INTEGER NOT NULL, created_at_ms INTEGER NOT NULL,
        PRIMARY KEY (session_id, strand))""",
]


class Crafted:
    """Writes a small realm file in the meerkat layouts with apsw."""

    def __init__(self, path: Path, *, heads: bool = True, ledger: bool = False, session_store: int = 2):
        self.path = path
        self.db = apsw.Connection(str(path))
        self.db.execute("PRAGMA synchronous=OFF")  # a throwaway file: no fsync per row
        for sql in _fixture_ddl():
            if not heads and any(t in sql for t in ("session_heads", "session_strand", "session_rewrites")):
                continue
            self.db.execute(sql)
        if ledger:
            for sql in LEDGER_DDL:
                self.db.execute(sql)
            self.db.execute(
                "INSERT INTO meerkat_schema VALUES ('session-store', ?), ('runtime-store', 1), ('schedule-store', 1)",
                (session_store,),
            )

    def blob_session(self, sid, messages, *, metadata=None, version=2, sep=b",", count=None, text=False, doc=None):
        metadata = {"session_metadata": {"comms_name": None}} if metadata is None else metadata
        md = orjson.dumps(metadata, option=orjson.OPT_SORT_KEYS)
        if doc is None:
            doc = (
                b'{"version":%d,"id":"%s","messages":[' % (version, sid.encode()) + sep.join(messages)
                + b'],"created_at":{"secs_since_epoch":1,"nanos_since_epoch":0},'
                b'"updated_at":{"secs_since_epoch":2,"nanos_since_epoch":0},"metadata":' + md
                + b',"usage":{"input_tokens":0,"output_tokens":0,"cache_creation_tokens":null,'
                b'"cache_read_tokens":null}}'
            )
        self.db.execute(
            "INSERT INTO sessions VALUES (?, 1000, 2000, ?, 0, ?, ?)",
            (sid, len(messages) if count is None else count, md.decode(), doc.decode() if text else doc),
        )
        return doc

    def head(self, sid, strand, count, revision, *, version=2, metadata=None, created=3000, updated=4000):
        metadata = {"session_metadata": {"comms_name": None}} if metadata is None else metadata
        head = orjson.dumps({
            "id": sid, "version": version, "strand": strand, "head_revision": revision, "message_count": count,
            "rewrite_count": 0, "created_at": {"secs_since_epoch": 3, "nanos_since_epoch": 0},
            "updated_at": {"secs_since_epoch": 4, "nanos_since_epoch": 0},
            "usage": {"input_tokens": 0, "output_tokens": 0, "cache_creation_tokens": None, "cache_read_tokens": None},
            "metadata": metadata,
        })
        self.db.execute(
            "INSERT INTO session_heads VALUES (?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?)",
            (sid, version, strand, revision, count, created, updated,
             orjson.dumps(metadata, option=orjson.OPT_SORT_KEYS).decode(), head, "head-sha256:" + sha(head)),
        )

    def rows(self, sid, strand, rows: dict[int, bytes]):
        for seq, message in rows.items():
            self.db.execute("INSERT INTO session_strand_messages VALUES (?, ?, ?, ?, 0)", (sid, strand, seq, message))

    def link(self, sid, strand, successor, strand_len, splice_start, splice_end, successor_end):
        self.db.execute(
            "INSERT INTO session_strand_links VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
            (sid, strand, successor, strand_len, splice_start, splice_end, successor_end),
        )

    def receipt(self, runtime_id, run_id, sequence, *, digest=None, count=1, boundary="run_start",
                inputs=("in-1",), raw=None, column_sequence=None):
        if raw is None:
            doc = {"run_id": run_id, "boundary": boundary, "contributing_input_ids": list(inputs)}
            if digest is not None:
                doc["conversation_digest"] = digest
            doc |= {"message_count": count, "sequence": sequence}
            raw = orjson.dumps(doc)
        self.db.execute(
            "INSERT INTO runtime_boundary_receipts VALUES (?, ?, ?, ?)",
            (runtime_id, run_id, sequence if column_sequence is None else column_sequence, raw),
        )
        return raw

    def close(self):
        self.db.close()
        return self.path


def msg(role: str, n: int, extra: bytes = b"") -> bytes:
    return b'{"role":"%s","content":"m%d"%s,"created_at":"2026-01-01T00:00:%02dZ"}' % (role.encode(), n, extra, n)


# Messages whose strings contain JSON structure characters, escapes and UTF-8,
# and an opaque tool_use args slot with producer whitespace (0.8.10 keeps it).
TRICKY = [
    b'{"role":"system","content":"be [careful] {with} \\"quotes\\", \\\\ and \\u00e9",'
    b'"created_at":"2026-01-01T00:00:00Z"}',
    '{"role":"user","content":"caf\u00e9 \U0001f98a ]}","created_at":"2026-01-01T00:00:01.5Z"}'.encode(),
    b'{"role":"block_assistant","blocks":[{"block_type":"tool_use","data":{"id":"t1","name":"x",'
    b'"args":{"b": [1, 2.5e3, {"]":"["}], "a" : null}}}],"stop_reason":"tool_use","created_at":"2026-01-01T00:00:02Z"}',
]

REV = "sha256:" + "ab" * 32
F2_DIGEST = "sha256:" + "cd" * 32
BARE_DIGEST = "ef" * 32


def test_crafted_ledger_0810_with_links_receipts_and_orphans(tmp_path):
    c = Crafted(tmp_path / "ledger.sqlite3", ledger=True)
    # Session A: head on strand "rebase:x", which owns seq 1 and a tail (seq 4)
    # and resolves the rest through "rewrite:1:y", itself linked to "root".
    a = "00000000-0000-7000-8000-00000000000a"
    root = {i: msg("user", i) for i in range(6)}
    c.rows(a, "root", {i: m for i, m in root.items() if i != 3})
    c.db.execute("INSERT INTO session_strand_messages VALUES (?, 'root', 3, ?, 0)", (a, root[3].decode()))  # TEXT
    c.rows(a, "rewrite:1:y", {2: msg("user", 102)})
    c.link(a, "rewrite:1:y", "root", 5, 2, 3, 3)  # y = [r0, r1, y2, r3, r4]
    c.rows(a, "rebase:x", {1: msg("user", 201), 4: msg("user", 204), 5: msg("user", 205)})
    c.link(a, "rebase:x", "rewrite:1:y", 4, 1, 2, 3)  # x = [y0, x1, y3, y4] + tail x4
    c.head(a, "rebase:x", 5, REV)
    c.receipt("rt:session:" + a, "run-b", 0, digest=F2_DIGEST, count=5)
    c.receipt("rt:session:" + a, "run-a", 1, digest=F2_DIGEST, count=4, boundary="run_checkpoint")
    c.receipt(a, "run-a", 0, digest=BARE_DIGEST, count=2, inputs=())  # seed-era bare runtime id
    c.receipt("rt:session:" + a, "run-c", 2**64 - 1, count=0, column_sequence=-1)  # u64 stored as i64
    # Session B: no head; whole-document row stored as TEXT, odd whitespace.
    b = "00000000-0000-7000-8000-00000000000b"
    doc = c.blob_session(b, TRICKY, sep=b" ,\n  ", text=True, metadata={"session_metadata": {"comms_name": "m/p/x"}})
    # Outside any session: an orphan receipt, an orphan snapshot, strand rows without a head.
    c.receipt("rt:session:ffffffff-0000-7000-8000-000000000000", "run-z", 0)
    c.db.execute("INSERT INTO runtime_session_snapshots VALUES ('rt:session:gone', x'7b7d')")
    c.rows("headless", "root", {0: msg("user", 0)})
    path = c.close()
    before = file_sha(path)

    with open_realm(path, check_digests=False) as realm:
        assert realm.layout == LAYOUT_LEDGER_0810
        assert realm.schema_versions == {"session-store": 2, "runtime-store": 1, "schedule-store": 1}
        assert realm.session_count() == 2
        sa, sb = list(realm.sessions())
        outside = realm.problems_outside_sessions()

    assert isinstance(sa, RealmSession), sa
    assert sa.session_id == a
    assert sa.messages == (root[0], msg("user", 201), root[3], root[4], msg("user", 204))
    assert (sa.created_at_ms, sa.updated_at_ms, sa.envelope_version) == (3000, 4000, 2)
    assert (sa.head.strand, sa.head.message_count, sa.head.profile) == ("rebase:x", 5, "f2")
    assert [(r.runtime_id, r.run_id, r.sequence, r.profile) for r in sa.receipts] == [
        (a, "run-a", 0, "bare"),
        ("rt:session:" + a, "run-a", 1, "f2"),
        ("rt:session:" + a, "run-b", 0, "f2"),
        ("rt:session:" + a, "run-c", 2**64 - 1, "f2"),
    ]
    first = sa.receipts[0]
    assert first.receipt_json == (
        b'{"run_id":"run-a","boundary":"run_start","contributing_input_ids":[],'
        b'"conversation_digest":"' + BARE_DIGEST.encode() + b'","message_count":2,"sequence":0}'
    )
    assert (first.boundary, first.contributing_input_ids, first.conversation_digest, first.message_count) == (
        "run_start", (), BARE_DIGEST, 2,
    )
    assert sa.receipts[1].boundary == "run_checkpoint" and sa.receipts[1].contributing_input_ids == ("in-1",)
    assert sa.receipts[3].conversation_digest is None

    assert isinstance(sb, RealmSession), sb
    assert sb.session_id == b and sb.head is None
    assert sb.messages == tuple(TRICKY)
    assert all(doc.count(m) == 1 for m in TRICKY)
    assert sb.metadata == {"session_metadata": {"comms_name": "m/p/x"}}
    assert (sb.created_at_ms, sb.updated_at_ms) == (1000, 2000)

    assert sorted((p.where, p.key) for p in outside) == [
        ("runtime_boundary_receipts", "rt:session:ffffffff-0000-7000-8000-000000000000"),
        ("runtime_session_snapshots", "rt:session:gone"),
        ("session_strand_messages", "headless"),
    ]
    assert all(isinstance(p, RealmProblem) for p in outside)
    assert file_sha(path) == before


def test_head_preferred_over_archived_row_and_paging(tmp_path):
    c = Crafted(tmp_path / "many.sqlite3")
    ids = [""] + [f"s{i:04d}" for i in range(599)]  # an empty id must not be skipped by keyset paging
    for i, sid in enumerate(ids):
        if i % 3 == 0:  # head-canonical; the `sessions` row (if any) is a frozen archive
            c.rows(sid, "root", {0: msg("user", 1), 1: msg("user", 2), 2: msg("user", 3)})
            c.head(sid, "root", 2, REV)  # seq 2 is appended but not adopted: not served
            if i % 2 == 0:
                c.blob_session(sid, [msg("user", 9)])
        else:
            c.blob_session(sid, [msg("user", i % 60)])
    path = c.close()
    with open_realm(path, check_digests=False) as realm:
        assert realm.session_count() == 600
        got = list(realm.sessions())
    assert [s.session_id for s in got] == ids
    assert all(isinstance(s, RealmSession) for s in got)
    assert got[0].messages == (msg("user", 1), msg("user", 2)) and got[0].head.revision == REV
    assert got[1].messages == (msg("user", 1),) and got[1].head is None


DAMAGE = {
    # session id -> (where, words in the reason)
    "d01-truncated": ("sessions", "not valid JSON"),
    "d02-version": ("sessions", "unknown session envelope version 9"),
    "d03-count": ("sessions", "message_count 5 but session_json holds 1"),
    "d04-wrong-id": ("sessions", "differs from session_id"),
    "d05-dup-key": ("sessions", "duplicate top-level key 'messages'"),
    "d06-missing-rows": ("session_strand_messages", "missing strand rows"),
    "d07-bad-row": ("session_strand_messages", "damaged JSON"),
    "d08-head-version": ("session_heads", "unknown head version 7"),
    "d10-cycle": ("session_strand_links", "cycle"),
    "d14-not-message": ("sessions", "message 0 is not a message object"),
    "d15-int-json": ("session_strand_messages", "strand 'root' seq 0 is integer, not JSON text"),
    "d16-bad-link": ("session_strand_links", "malformed link"),
}


def test_damaged_rows_become_problems(tmp_path):
    c = Crafted(tmp_path / "damaged.sqlite3", ledger=True)
    c.blob_session("a-good", [msg("user", 1)])
    good = c.blob_session("a-good-too", [msg("user", 1)])
    c.blob_session("d01-truncated", [], doc=good[:-7])
    c.blob_session("d02-version", [msg("user", 1)], version=9)
    c.blob_session("d03-count", [msg("user", 1)], count=5)
    c.blob_session("d04-wrong-id", [], doc=good, count=1)
    dup = good.replace(b"a-good-too", b"d05-dup-key")[:-1] + b',"messages":[]}'
    c.blob_session("d05-dup-key", [], count=1, doc=dup)
    c.blob_session("d14-not-message", [b'"just a string"'])
    c.rows("d06-missing-rows", "root", {0: msg("user", 0), 2: msg("user", 2)})
    c.head("d06-missing-rows", "root", 3, REV)
    c.rows("d07-bad-row", "root", {0: b'{"role":"user","content":"x"'})
    c.head("d07-bad-row", "root", 1, REV)
    c.rows("d08-head-version", "root", {0: msg("user", 0)})
    c.head("d08-head-version", "root", 1, REV, version=7)
    c.rows("d09-cas", "root", {0: msg("user", 0)})
    c.head("d09-cas", "root", 1, REV)
    c.db.execute("UPDATE session_heads SET cas_token = 'head-sha256:' || hex(zeroblob(32)) "
                 "WHERE session_id = 'd09-cas'")
    c.link("d10-cycle", "p", "q", 2, 0, 1, 1)
    c.link("d10-cycle", "q", "p", 2, 0, 0, 0)  # owns nothing: all of it is p again
    c.rows("d10-cycle", "p", {0: msg("user", 0)})
    c.head("d10-cycle", "p", 2, REV)
    c.blob_session("d11-receipt-json", [msg("user", 1)])
    c.receipt("rt:session:d11-receipt-json", "r", 0, raw=b'{"run_id":"r",')
    c.blob_session("d12-receipt-ahead", [msg("user", 1)])
    c.receipt("rt:session:d12-receipt-ahead", "r", 0, count=3, digest=BARE_DIGEST)
    c.blob_session("d13-digest", [msg("user", 1)])
    c.receipt("rt:session:d13-digest", "r", 0, digest="md5:abc")
    c.head("d15-int-json", "root", 1, REV)
    c.db.execute("INSERT INTO session_strand_messages VALUES ('d15-int-json', 'root', 0, 42, 0)")
    c.rows("d16-bad-link", "s", {0: msg("user", 0)})
    c.link("d16-bad-link", "s", "root", 1, 1, 0, 0)  # splice_start > splice_end
    c.head("d16-bad-link", "s", 1, REV)
    c.db.execute("INSERT INTO sessions VALUES (NULL, 1, 2, 0, 0, '{}', x'7b7d')")
    path = c.close()
    before = file_sha(path)

    with open_realm(path, check_digests=False) as realm:
        assert realm.session_count() == 6 + len(DAMAGE) + 1
        items = list(realm.sessions())
    assert file_sha(path) == before
    assert len(items) == 6 + len(DAMAGE) + 1
    sessions_all = [i for i in items if isinstance(i, RealmSession)]
    sessions = [s for s in sessions_all if not s.findings and not s.problems]
    assert [s.session_id for s in sessions] == ["a-good", "a-good-too"]
    problems = {p.key: p for p in items if isinstance(p, RealmProblem)}
    assert set(problems) == set(DAMAGE) | {"None"}
    for key, (where, words) in DAMAGE.items():
        assert (problems[key].where, words in problems[key].reason) == (where, True), problems[key]
    assert problems["None"].reason == "session_id is not text"
    # A damaged receipt is a problem of that receipt; its session is kept without it.
    receipt_damage = {
        "d11-receipt-json": "damaged JSON",
        "d12-receipt-ahead": "covers 3 messages; the transcript has 1",
        "d13-digest": "unrecognised conversation_digest",
    }
    for sid, words in receipt_damage.items():
        kept = only(s for s in sessions_all if s.session_id == sid)
        problem = only(kept.problems)
        assert kept.receipts == () and kept.messages == (msg("user", 1),)
        assert (problem.where, problem.key, words in problem.reason) == (
            "runtime_boundary_receipts", f"rt:session:{sid}/'r'/0", True), problem
    # A bad token is evidence about a readable session: the session is kept, the finding names it.
    cas = only(s for s in sessions_all if s.session_id == "d09-cas")
    token = only(cas.findings)
    assert (token.subject, token.status, token.expected) == ("head_token", "mismatch", "head-sha256:" + "00" * 32)
    assert token.actual.startswith("head-sha256:") and token.actual != token.expected
    assert cas.messages == (msg("user", 0),) and not cas.verified


# ---------------------------------------------------------------------------
# Refusals
# ---------------------------------------------------------------------------


def test_not_sqlite(tmp_path):
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not a database\n" * 20)
    with pytest.raises(ImportFormatError, match="not a SQLite database"):
        open_realm(junk)
    empty = tmp_path / "empty.sqlite3"
    empty.write_bytes(b"")
    with pytest.raises(ImportFormatError, match="not a SQLite database"):
        open_realm(empty)
    with pytest.raises(ImportFormatError, match="cannot read"):
        open_realm(tmp_path / "missing.sqlite3")
    with pytest.raises(ImportFormatError, match="cannot read"):
        open_realm(tmp_path)


def test_sqlite_but_not_meerkat(tmp_path):
    path = tmp_path / "other.sqlite3"
    db = apsw.Connection(str(path))
    db.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes VALUES (1, 'x')")
    db.close()
    with pytest.raises(ImportFormatError, match="not a meerkat realm: no 'sessions' or 'session_heads' table"):
        open_realm(path)
    db = apsw.Connection(str(path))
    db.execute("CREATE TABLE sessions (session_id TEXT PRIMARY KEY, body TEXT)")
    db.close()
    with pytest.raises(ImportFormatError, match="lacks created_at_ms"):
        open_realm(path)


def test_newer_session_store_refused(tmp_path):
    path = Crafted(tmp_path / "future.sqlite3", ledger=True, session_store=5).close()
    with pytest.raises(ImportFormatError, match="session-store schema version 5 is newer"):
        open_realm(path)


def test_non_empty_wal_refused(tmp_path):
    c = Crafted(tmp_path / "walled.sqlite3", heads=False)
    c.blob_session("s", [msg("user", 1)])
    path = c.close()
    Path(str(path) + "-wal").write_bytes(b"\0" * 32)
    with pytest.raises(ImportFormatError, match="non-empty -wal"):
        open_realm(path)
    Path(str(path) + "-wal").write_bytes(b"")
    with open_realm(path) as realm:
        assert realm.layout == LAYOUT_SESSIONS_07 and realm.session_count() == 1


def test_path_needing_percent_encoding(tmp_path):
    odd = tmp_path / "we?ird #dir %41&mode=rw"
    odd.mkdir()
    target = odd / "realm?.sqlite3"
    shutil.copyfile(REALM_075, target)
    with open_realm(str(target)) as realm:
        assert only(realm.sessions()).session_id == SID_075


# ---------------------------------------------------------------------------
# Hostile schemas: nothing in them runs, nothing is written
# ---------------------------------------------------------------------------


@pytest.fixture
def evil_calls(monkeypatch):
    """Every new apsw connection (the reader's included) gets an `evil()`
    function that records its calls."""
    calls: list[tuple] = []

    def hook(conn):
        # deterministic, so a crafted index or generated column may use it
        conn.create_scalar_function("evil", lambda *args: calls.append(args) or 1, deterministic=True)

    monkeypatch.setattr(apsw, "connection_hooks", [*apsw.connection_hooks, hook])
    return calls


def _armed(path: Path, calls: list, sql: str) -> None:
    """Prove on a throwaway copy that the trap fires when executed."""
    probe = path.with_suffix(".probe")
    shutil.copyfile(path, probe)
    db = apsw.Connection(str(probe))
    db.execute(sql)
    db.close()
    assert calls, "the trap did not fire on a plain connection"
    calls.clear()


def test_hostile_view_named_like_a_meerkat_table(tmp_path, evil_calls):
    path = tmp_path / "view.sqlite3"
    db = apsw.Connection(str(path))
    db.execute(
        "CREATE VIEW sessions AS SELECT evil('select') AS session_id, 0 AS created_at_ms, 0 AS updated_at_ms, "
        "0 AS message_count, '{}' AS metadata_json, x'7b7d' AS session_json"
    )
    db.close()
    _armed(path, evil_calls, "SELECT * FROM sessions")
    before = file_sha(path)
    with pytest.raises(ImportFormatError, match="'sessions' is a view"):
        open_realm(path)
    assert evil_calls == []
    assert file_sha(path) == before

    c = Crafted(tmp_path / "heads-view.sqlite3", heads=False)
    c.blob_session("s", [msg("user", 1)])
    c.db.execute("CREATE VIEW session_heads AS SELECT evil('heads') AS session_id")
    path = c.close()
    before = file_sha(path)
    with pytest.raises(ImportFormatError, match="'session_heads' is a view"):
        open_realm(path)
    assert evil_calls == [] and file_sha(path) == before


def test_hostile_triggers_and_views_never_run(tmp_path, evil_calls):
    c = Crafted(tmp_path / "triggers.sqlite3", heads=False)
    c.blob_session("s-1", [msg("user", 1), msg("user", 2)])
    c.receipt("rt:session:s-1", "run", 0, digest=BARE_DIGEST, count=2)
    c.db.execute(
        """
        CREATE TABLE evil_log (x);
        CREATE TRIGGER t_update AFTER UPDATE ON sessions BEGIN INSERT INTO evil_log VALUES (evil('update')); END;
        CREATE TRIGGER t_delete BEFORE DELETE ON runtime_boundary_receipts
            BEGIN INSERT INTO evil_log VALUES (evil('delete')); END;
        CREATE VIEW v_evil AS SELECT evil('view') AS x, * FROM sessions;
        """
    )
    path = c.close()
    _armed(path, evil_calls, "UPDATE sessions SET updated_at_ms = 5; SELECT * FROM v_evil")
    before = file_sha(path)
    with open_realm(path, check_digests=False) as realm:
        session = only(realm.sessions())
        outside = realm.problems_outside_sessions()
    assert isinstance(session, RealmSession)
    assert session.messages == (msg("user", 1), msg("user", 2))
    assert only(session.receipts).profile == "bare"
    assert outside == []  # triggers and views are expected in current realms: never run, not a problem
    assert evil_calls == []
    assert file_sha(path) == before
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert db.execute("SELECT count(*) FROM evil_log").fetchone() == (0,)
    db.close()


def test_hostile_schema_functions_refused(tmp_path, evil_calls):
    """Expression indexes and generated columns calling a non-innocuous
    function make the schema unreadable under trusted_schema=OFF; a generated
    column on a meerkat column is refused even when its function is innocuous."""
    for name, ddl in (
        ("index", "CREATE INDEX i_evil ON sessions (evil(session_id))"),
        ("stored", "ALTER TABLE sessions ADD COLUMN extra GENERATED ALWAYS AS (evil(session_id)) VIRTUAL"),
    ):
        c = Crafted(tmp_path / f"{name}.sqlite3", heads=False)
        c.blob_session("s", [msg("user", 1)])
        c.db.execute(ddl)
        path = c.close()
        evil_calls.clear()
        before = file_sha(path)
        with pytest.raises(ImportFormatError, match=r"unreadable SQLite schema: .*unsafe use of evil\(\)"):
            open_realm(path)
        assert evil_calls == [] and file_sha(path) == before

    path = tmp_path / "generated.sqlite3"
    db = apsw.Connection(str(path))
    db.execute(
        "CREATE TABLE sessions (session_id TEXT PRIMARY KEY, created_at_ms INTEGER, updated_at_ms INTEGER, "
        "message_count INTEGER, metadata_json TEXT, session_json BLOB GENERATED ALWAYS AS (upper(session_id)))"
    )
    db.close()
    with pytest.raises(ImportFormatError, match=r"sessions\.session_json is a generated column"):
        open_realm(path)


# ---------------------------------------------------------------------------
# Digest checks through engine.digest
# ---------------------------------------------------------------------------


def _digest(messages: list[bytes], profile: str) -> str:
    from engine import digest

    return digest.transcript_digest(messages, profile)


def test_digest_checks(tmp_path):
    rows = {i: msg("user", i) for i in range(3)}
    # an opaque slot with unsorted keys: its f2 (verbatim) and f3 (key-sorted) digests differ
    rows[0] = (b'{"role":"block_assistant","blocks":[{"block_type":"tool_use","data":{"id":"t","name":"n",'
               b'"args":{"b":1,"a":2}}}],"stop_reason":"tool_use","created_at":"2026-01-01T00:00:00Z"}')
    assert _digest([rows[0]], "f2") != _digest([rows[0]], "f3")
    c = Crafted(tmp_path / "digests.sqlite3", ledger=True)
    for sid in ("ok", "bad-head", "bad-receipt", "relabelled"):
        c.rows(sid, "root", rows)
    c.head("ok", "root", 3, _digest(list(rows.values()), "f2"))
    c.receipt("rt:session:ok", "r", 0, count=2, digest=_digest([rows[0], rows[1]], "f2"))
    c.receipt("ok", "r0", 0, count=1, digest=_digest([rows[0]], "bare"))
    c.head("bad-head", "root", 3, _digest(list(rows.values())[:2], "f2"))
    c.head("bad-receipt", "root", 3, _digest(list(rows.values()), "f2"))
    c.receipt("rt:session:bad-receipt", "r", 0, count=3, digest=_digest([rows[0]], "f2"))
    # A version-3 head with an older receipt whose digest is f2, not f3.
    c.head("relabelled", "root", 3, _digest(list(rows.values()), "f3"), version=3)
    c.receipt("rt:session:relabelled", "r", 0, count=1, digest=_digest([rows[0]], "f2"))
    path = c.close()

    with open_realm(path) as realm:
        assert realm.digests_checked
        got = {item.session_id if isinstance(item, RealmSession) else item.key: item for item in realm.sessions()}
    assert isinstance(got["ok"], RealmSession) and got["ok"].findings == ()
    assert [r.profile for r in got["ok"].receipts] == ["f2", "bare"]
    # Mismatches keep the session (the evidence) and say exactly what did not verify.
    head = only(got["bad-head"].findings)
    assert (head.subject, head.status, head.expected) == ("head", "mismatch", _digest(list(rows.values())[:2], "f2"))
    assert head.actual == _digest(list(rows.values()), "f2")
    assert got["bad-head"].messages == tuple(rows.values())
    bad = only(got["bad-receipt"].findings)
    assert (bad.subject, bad.status, bad.run_id, bad.sequence) == ("receipt", "mismatch", "r", 0)
    assert (bad.expected, bad.actual) == (_digest([rows[0]], "f2"), _digest(list(rows.values()), "f2"))
    assert only(got["bad-receipt"].receipts).profile == "f2"
    assert got["relabelled"].head.profile == "f3"
    assert only(got["relabelled"].receipts).profile == "f2"

    with open_realm(path, check_digests=False) as realm:
        assert not realm.digests_checked
        assert all(isinstance(s, RealmSession) for s in realm.sessions())


def test_metadata_comms_name_paths_per_layout(tmp_path):
    """§3: the metadata map carries session_metadata for both storage forms."""
    meta = {"session_metadata": {"comms_name": "mob1/worker/w-1", "realm_id": "mob:mob1",
                                 "peer_meta": {"labels": {"mob_id": "mob1", "role": "worker", "meerkat_id": "w-1"}}}}
    c = Crafted(tmp_path / "meta.sqlite3")
    c.blob_session("blob", [msg("user", 1)], metadata=meta)
    c.rows("head", "root", {0: msg("user", 1)})
    c.head("head", "root", 1, REV, metadata=meta)
    path = c.close()
    with open_realm(path, check_digests=False) as realm:
        got = list(realm.sessions())
    assert [s.metadata for s in got] == [meta, meta]
    assert json.dumps(got[0].metadata, sort_keys=True) == json.dumps(meta, sort_keys=True)
