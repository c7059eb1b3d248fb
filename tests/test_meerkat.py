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
    "d11-receipt-json": ("runtime_boundary_receipts", "damaged JSON"),
    "d12-receipt-ahead": ("runtime_boundary_receipts", "covers 3 messages; the transcript has 1"),
    "d13-digest": ("runtime_boundary_receipts", "unrecognised conversation_digest"),
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
        assert realm.session_count() == 3 + len(DAMAGE) + 1
        items = list(realm.sessions())
    assert file_sha(path) == before
    assert len(items) == 3 + len(DAMAGE) + 1
    sessions_all = [i for i in items if isinstance(i, RealmSession)]
    sessions = [s for s in sessions_all if not s.findings]
    assert [s.session_id for s in sessions] == ["a-good", "a-good-too"]
    problems = {p.key: p for p in items if isinstance(p, RealmProblem)}
    assert set(problems) == set(DAMAGE) | {"None"}
    for key, (where, words) in DAMAGE.items():
        assert (problems[key].where, words in problems[key].reason) == (where, True), problems[key]
    assert problems["None"].reason == "session_id is not text"
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


# ---------------------------------------------------------------------------
# Imports keep the evidence; receipts are held to the API's rules
# ---------------------------------------------------------------------------


def _import(realm_path, db_path, **kwargs):
    import engine
    from engine.importer import import_realm

    with engine.open(db_path) as store:
        report = import_realm(store, str(realm_path), **kwargs)
        verify = store.verify()
        sessions = {s: store.raw_messages(s) for s in
                    [row[0] for row in store._con.execute("SELECT id FROM ms_sessions ORDER BY id")]}
    return report, verify, sessions


def _evidence_realm(tmp_path) -> tuple[Path, dict]:
    rows = [msg("user", i) for i in range(3)]
    good = _digest(rows, "f2")
    c = Crafted(tmp_path / "evidence.sqlite3", ledger=True)
    c.rows("clean", "root", dict(enumerate(rows)))
    c.head("clean", "root", 3, good)
    c.receipt("rt:session:clean", "r", 0, count=3, digest=good)
    c.rows("tampered", "root", dict(enumerate(rows)))
    c.head("tampered", "root", 3, _digest(rows[:2], "f2"))                     # head over 2 of 3 rows
    c.receipt("rt:session:tampered", "run-1", 0, count=2, digest=_digest(rows[:2], "f2"))   # fine
    c.receipt("rt:session:tampered", "run-1", 1, count=3, digest=_digest(rows[:1], "f2"))   # wrong
    c.receipt("rt:session:tampered", "run-2", 4, count=1, digest="sha256:" + "0" * 64)       # wrong
    c.receipt("rt:session:tampered", "bad\nrun", 0, count=1, digest=_digest(rows[:1], "f2"))  # API refuses the id
    c.receipt("rt:session:tampered", "run-3", 2**63, count=1, digest=_digest(rows[:1], "f2"),
              column_sequence=-(2**63))                                          # beyond i64
    c.receipt("rt:session:tampered", "run-4", 0, count=1, digest=_digest(rows[:1], "f2"), inputs=("",))
    return c.close(), {"rows": rows, "good": good}


def test_import_keeps_the_evidence_and_verify_names_exactly_the_tampered(tmp_path):
    path, facts = _evidence_realm(tmp_path)
    report, verify, sessions = _import(path, tmp_path / "store.db")
    assert (report.sessions_imported, report.sessions_unverified, report.ok) == (2, 1, False)
    assert sessions == {"clean": facts["rows"], "tampered": facts["rows"]}   # every readable message kept
    assert sorted((f["subject"], f["run_id"], f["sequence"]) for f in report.not_verified) == [
        ("head", None, None), ("receipt", "run-1", 1), ("receipt", "run-2", 4)]
    refused = sorted(p["key"] for p in report.problems)
    assert refused == ["rt:session:tampered/'bad\\nrun'/0", "rt:session:tampered/'run-3'/9223372036854775808",
                       "rt:session:tampered/'run-4'/0"]
    assert any("beyond 2^63-1" in p["reason"] for p in report.problems)
    assert any("contributing_input_ids[0] must not be empty" in p["reason"] for p in report.problems)
    assert report.receipts_imported == 4
    # verify names exactly the tampered receipts and head, with expected and actual.
    got = sorted((m.session_id, m.kind, m.run_id, m.sequence, m.expected, m.actual) for m in verify.mismatches)
    rows = facts["rows"]
    assert got == [
        ("tampered", "head", None, None, _digest(rows[:2], "f2"), facts["good"]),
        ("tampered", "receipt", "run-1", 1, _digest(rows[:1], "f2"), facts["good"]),
        ("tampered", "receipt", "run-2", 4, "sha256:" + "0" * 64, _digest(rows[:1], "f2")),
    ]
    assert (verify.receipts, verify.receipts_ok) == (4, 2)


def test_strict_import_refuses_what_does_not_verify(tmp_path):
    path, _facts = _evidence_realm(tmp_path)
    report, verify, sessions = _import(path, tmp_path / "strict.db", strict=True)
    assert list(sessions) == ["clean"] and verify.ok
    assert any(p["key"] == "tampered" and "refused (--strict): 3 check(s)" in p["reason"] for p in report.problems)


def test_cli_import_exit_codes(tmp_path):
    import subprocess
    import sys

    path, _ = _evidence_realm(tmp_path)
    run = lambda *a: subprocess.run([sys.executable, "-m", "engine", *a], capture_output=True, text=True,  # noqa: E731
                                    timeout=120)
    proc = run("import-meerkat", str(path), "--into", str(tmp_path / "a.db"), "--json")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 1 and doc["sessions_imported"] == 2 and len(doc["not_verified"]) == 3
    proc = run("verify", str(tmp_path / "a.db"), "--json")
    assert proc.returncode == 1 and len(json.loads(proc.stdout)["mismatches"]) == 3
    proc = run("import-meerkat", str(REALM_0728), "--into", str(tmp_path / "b.db"), "--strict")
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ---------------------------------------------------------------------------
# Bounded work on hostile realms
# ---------------------------------------------------------------------------


def test_fifo_is_refused_at_once(tmp_path):
    import os
    import subprocess
    import sys
    import time

    fifo = tmp_path / "realm.sqlite3"
    os.mkfifo(fifo)
    with pytest.raises(ImportFormatError, match="a FIFO, not a realm file"):
        open_realm(fifo)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "engine", "import-meerkat", str(fifo), "--into",
                           str(tmp_path / "x.db")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "FIFO" in proc.stderr and time.monotonic() - started < 30
    assert not (tmp_path / "x.db").exists()


HOSTILE_CLAIM = 60_000_000


def _hostile_realm(tmp_path) -> Path:
    """~240 KB: heads claiming 6e7 messages over a few rows (contiguous, sparse, linked), a
    receipt covering 6e7 messages, and padding to the size."""
    c = Crafted(tmp_path / "hostile.sqlite3", ledger=True)
    c.rows("claim", "root", {i: msg("user", i) for i in range(3)})
    c.head("claim", "root", HOSTILE_CLAIM, REV)
    c.rows("sparse", "root", {0: msg("user", 0), HOSTILE_CLAIM - 1: msg("user", 1)})
    c.head("sparse", "root", HOSTILE_CLAIM, REV)
    c.rows("linked", "root", {0: msg("user", 0)})
    c.rows("linked", "x", {0: msg("user", 1)})
    c.link("linked", "x", "root", HOSTILE_CLAIM, 0, 1, 1)
    c.head("linked", "x", HOSTILE_CLAIM, REV)
    c.blob_session("receipt", [msg("user", 1)])
    c.receipt("rt:session:receipt", "r", 0, count=HOSTILE_CLAIM, digest=BARE_DIGEST)
    c.blob_session("claimed-count", [msg("user", 1)], count=HOSTILE_CLAIM)
    c.db.execute("CREATE TABLE padding (x BLOB)")
    c.db.execute("INSERT INTO padding VALUES (randomblob(80000))")
    return c.close()


def test_hostile_claims_cost_bounded_time_and_memory(tmp_path):
    import os
    import subprocess
    import sys
    import time

    path = _hostile_realm(tmp_path)
    assert 200_000 < os.path.getsize(path) < 300_000
    script = (
        "import json, sys, time; import engine; from engine.importer import import_realm\n"
        "t = time.monotonic()\n"
        "with engine.open(sys.argv[2]) as s: r = import_realm(s, sys.argv[1])\n"
        # VmHWM: this process image's peak RSS (ru_maxrss would carry the forking parent's over exec)
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]\n"
        "print(json.dumps({'seconds': time.monotonic() - t, 'maxrss_kb': int(hwm), 'problems': r.problems}))\n"
    )
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "h.db")],
                          capture_output=True, text=True, timeout=120)
    wall = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    print(f"hostile realm ({os.path.getsize(path)} bytes): {doc['seconds']:.3f} s import, "
          f"max RSS {doc['maxrss_kb'] / 1024:.1f} MiB, {wall:.2f} s with interpreter start")
    reasons = {p["key"]: p["reason"] for p in doc["problems"]}
    assert reasons["claim"] == "missing strand rows: strand 'root' has 3 of rows [0, 60000000) (first missing seq 3)"
    assert reasons["sparse"].startswith("missing strand rows: strand 'root' has 2 of rows [0, 60000000)")
    assert "missing strand rows" in reasons["linked"]
    assert reasons["receipt"].endswith("covers 60000000 messages; the transcript has 1")
    assert "message_count 60000000 but session_json holds 1" in reasons["claimed-count"]
    assert doc["seconds"] < 10 and doc["maxrss_kb"] < 200 * 1024


def test_older_store_gains_import_checks_on_open(tmp_path):
    """A store made before ms_import_checks (the released version-1 layout) opens, upgrades
    in place, and takes an import."""
    import engine
    from engine import schema

    path = tmp_path / "v1.db"
    con = apsw.Connection(str(path))
    con.execute((Path(__file__).parent / "fixtures" / "schema" / "v1.sql").read_text())
    con.execute("PRAGMA user_version = 1")
    con.close()
    with engine.open(path) as store:
        assert store.schema_version == schema.SCHEMA_VERSION
    report, verify, sessions = _import(REALM_0728, path)
    assert report.ok and verify.ok and list(sessions) == [SID_0728]


# ---------------------------------------------------------------------------
# Every sqlite fixture meerkat ships at 0.8.26
# ---------------------------------------------------------------------------

REALM_FIXTURES = sorted(p.name for p in FIXTURES.glob("realm-*.sqlite3"))


@pytest.mark.parametrize("name", REALM_FIXTURES)
def test_every_meerkat_realm_fixture_imports_and_verifies(tmp_path, name):
    report, verify, sessions = _import(FIXTURES / name, tmp_path / "store.db")
    assert report.ok, (report.problems, report.not_verified)
    assert (report.not_verified, report.unrecomputable, report.problems) == ([], [], [])
    assert verify.ok and verify.receipts_ok == verify.receipts and verify.heads_ok == verify.heads
    # bootstrap-only realms hold no session; the attempted turn and the released realm one each
    assert len(sessions) == (0 if "bootstrap-only" in name else 1)


@pytest.mark.parametrize("name, what", [("workgraph-0.7.5.sqlite3", "workgraph"), ("jobs-0.8.10.sqlite3", "jobs")])
def test_other_meerkat_stores_are_refused_clearly(name, what):
    with pytest.raises(ImportFormatError, match=f"not a meerkat session realm: this is a meerkat {what} store"):
        open_realm(FIXTURES / name)


# ---------------------------------------------------------------------------
# Ledger v3 / v4 realms (tests/meerkat_realms.py builds them from meerkat's DDL and formats)
# ---------------------------------------------------------------------------

from tests import meerkat_realms as mr  # noqa: E402 - the generator is only needed from here on


@pytest.fixture(scope="module")
def current_realms(tmp_path_factory):
    base = tmp_path_factory.mktemp("current")
    out = {}
    for ledger in (3, 4):
        path = base / f"ledger-v{ledger}.sqlite3"
        out[ledger] = (path, mr.current_realm(path, ledger=ledger))
    path = base / "every-kind.sqlite3"
    out["every"] = (path, mr.current_realm(path, ledger=4, kinds="every"))
    return out


@pytest.mark.parametrize("ledger, layout", [(3, "ledger-v3-0.8.11"), (4, "ledger-v4-0.8.21")])
def test_current_realm_imports_with_metadata_membership_and_receipts(tmp_path, current_realms, ledger, layout):
    import engine

    path, facts = current_realms[ledger]
    before = file_sha(path)
    with open_realm(path) as realm:
        assert realm.layout == layout
        got = {s.session_id: s for s in realm.sessions()}
    assert file_sha(path) == before
    for sid, fact in facts.items():
        s = got[sid]
        assert s.findings == (), s.findings  # head revision, token, metadata identity and row prefix verified
        assert list(s.messages) == fact["rows"] and s.metadata == fact["spec"].metadata
        assert s.head.revision == fact["head_revision"] and s.head.cas_token == fact["token"]
        assert s.head.cas_token.startswith("head-v5-sha256:" if ledger == 4 else "head-sha256:")
        assert {(r.run_id, r.sequence): r.conversation_digest for r in s.receipts} == fact["receipts"]
    report, verify, sessions = _import(path, tmp_path / "store.db")
    assert report.ok and report.receipts_imported == 3 and report.heads_imported == 3
    assert verify.ok and (verify.receipts_ok, verify.receipts) == (3, 3)
    with engine.open(tmp_path / "store.db") as store:
        # HEAD writes realm ids as "mob.<mob>": the seed rule does not match, accept_newer does.
        assert store.mob_members("crew") == []
        rec = store.reconcile_mob("crew", roster=[("coder", "agent-1"), ("tester", "agent-2")], accept_newer=True)
        assert sorted((m.profile, m.meerkat_id) for m in rec.members) == [("coder", "agent-1"), ("tester", "agent-2")]
        assert rec.ok and not rec.missing and not rec.unexpected
        strict = store.reconcile_mob("crew")
        assert {b.reason for b in strict.broken} == {"realm_mismatch"}
        ops = store.reconcile_mob("ops", accept_newer=True)
        assert [(m.profile, m.meerkat_id) for m in ops.members] == [("pager", "agent-3")]


def test_current_realm_triggers_are_there_and_never_run(current_realms, evil_calls):
    path, _ = current_realms[4]
    db = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)
    triggers = db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'").fetchone()[0]
    db.close()
    assert triggers == 33  # meerkat's runtime (26) and schedule (7) stores
    before = file_sha(path)
    with open_realm(path) as realm:
        assert all(isinstance(s, RealmSession) for s in realm.sessions())
        assert realm.problems_outside_sessions() == []
    assert file_sha(path) == before and evil_calls == []


def test_every_kind_realm_keeps_every_message_byte_for_byte(tmp_path, current_realms):
    path, facts = current_realms["every"]
    report, verify, sessions = _import(path, tmp_path / "store.db")
    assert report.problems == [] and report.receipts_imported == 3
    assert sessions == {sid: f["rows"] for sid, f in facts.items()}
    kinds = {m.kind for f in facts.values() for m in f["spec"].messages}
    assert {"notice tool_config", "notice comms", "tool_results", "user blocks"} <= kinds


@pytest.mark.xfail(strict=True, reason="the f3 digest of tool_config notices (declaration order, not key-sorted, "
                   "meerkat-core/src/event.rs:1264-1413@c7b8518b4) is fixed by the typed-decode rewrite of the "
                   "canonicalizer; enable when it lands")
def test_every_kind_realm_digests_verify(tmp_path, current_realms):
    path, _ = current_realms["every"]
    report, verify, _ = _import(path, tmp_path / "store.db")
    assert report.ok and verify.ok and verify.receipts_ok == 3


def test_tampered_current_realm_verify_names_exactly_what_was_changed(tmp_path, current_realms):
    path, facts = current_realms[4]
    c1, c2, c3 = sorted(facts)
    edits = [
        # a receipt's digest
        ("UPDATE runtime_boundary_receipts SET receipt_json = replace(CAST(receipt_json AS TEXT), "
         "'\"message_count\":3', '\"message_count\":2') WHERE runtime_id = ?", ("rt:session:" + c2,)),
        # one strand row (index 5 of c1: after receipt (RUN_A, 1) at 4, before (RUN_A, 2) at 7)
        ("UPDATE session_strand_messages SET message_json = CAST(replace(CAST(message_json AS TEXT), "
         "'question 2', 'question 2!') AS BLOB) WHERE session_id = ? AND seq = 5", (c1,)),
        # a metadata cell's value
        ("UPDATE session_head_metadata_cells SET metadata_json = CAST(replace(CAST(metadata_json AS TEXT), "
         "'agent-3', 'agent-9') AS BLOB) WHERE session_id = ? AND metadata_key = 'session_metadata'", (c3,)),
    ]
    tampered = tmp_path / "tampered.sqlite3"
    shutil.copyfile(path, tampered)
    db = apsw.Connection(str(tampered))
    for sql, params in edits:
        db.execute(sql, params)
    # head_json of c3 edited without re-minting its token
    db.execute("UPDATE session_heads SET head_json = CAST(replace(CAST(head_json AS TEXT), "
               "'\"input_tokens\":70', '\"input_tokens\":71') AS BLOB) WHERE session_id = ?", (c3,))
    db.close()
    report, verify, sessions = _import(tampered, tmp_path / "store.db")
    assert report.problems == [] and len(sessions) == 3  # everything readable kept
    assert b"question 2!" in sessions[c1][5]
    got = sorted((m.session_id, m.kind, m.run_id, m.sequence) for m in verify.mismatches)
    assert got == sorted([
        (c1, "head", None, None), (c1, "receipt", mr.RUN_A, 2), (c1, "row_prefix", None, None),
        (c2, "receipt", mr.RUN_B, 1),
        # the cell's bytes no longer match its recorded value digest (the map root is over the
        # recorded digests, so it still matches the head's identity)
        (c3, "head_token", None, None), (c3, "metadata", None, None),
    ]), got
    by = {(m.session_id, m.kind, m.run_id): m for m in verify.mismatches}
    assert by[c1, "receipt", mr.RUN_A].expected == facts[c1]["receipts"][(mr.RUN_A, 2)]
    assert by[c2, "receipt", mr.RUN_B].expected == facts[c2]["receipts"][(mr.RUN_B, 1)]
    assert by[c2, "receipt", mr.RUN_B].actual == mr.f3_digest(facts[c2]["spec"].messages[:2])
    assert by[c3, "head_token", None].expected == facts[c3]["token"]
    assert verify.receipts_ok == 1  # (RUN_A, 1) of c1 covers the untouched first 4 rows
    import engine

    with engine.open(tmp_path / "store.db") as store:  # the tampered value is what was imported (the evidence)
        meta = store.session(c3).metadata["session_metadata"]
        assert meta["mob_member_binding"]["member"] == "agent-9"


def test_migrated_0810_realm_receipts_are_unrecomputable_not_mismatched(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "migrated.sqlite3"
    facts = mr.migrate_0810(FIXTURES / "realm-0.8.10-released.sqlite3", path)
    (sid, fact), = facts.items()
    with open_realm(path) as realm:
        assert realm.layout == "ledger-v4-0.8.21"
        session = only(realm.sessions())
    assert session.head.revision == fact["head_revision"] != fact["old_rows_head"]
    assert [f.status for f in session.findings] == ["unrecomputable", "unrecomputable"]
    assert all("matched the frozen runtime_session_snapshots transcript" in f.reason for f in session.findings)
    assert all(r.profile == "f2" for r in session.receipts)
    report, verify, _ = _import(path, tmp_path / "store.db")
    assert report.ok and report.receipts_unrecomputable == 2 and report.receipts_imported == 2
    assert verify.ok and verify.mismatches == []
    assert (verify.receipts, verify.receipts_ok, verify.receipts_unrecomputable) == (2, 0, 2)
    assert verify.heads_ok == verify.heads == 2
    assert {(u["run_id"], u["sequence"]) for u in verify.unrecomputable} == {(r.run_id, r.sequence)
                                                                             for r in session.receipts}
    proc = subprocess.run([sys.executable, "-m", "engine", "verify", str(tmp_path / "store.db"), "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0 and doc["receipts_unrecomputable"] == 2 and doc["receipts_ok"] == 0

    # Without the frozen snapshot nothing can recompute them: still unrecomputable, and it says so.
    bare = tmp_path / "no-snapshot.sqlite3"
    mr.migrate_0810(FIXTURES / "realm-0.8.10-released.sqlite3", bare, keep_snapshot=False)
    with open_realm(bare) as realm:
        session = only(realm.sessions())
    assert [f.status for f in session.findings] == ["unrecomputable", "unrecomputable"]
    assert all("no runtime snapshot" in f.reason for f in session.findings)

    # A receipt changed after the migration: its bytes no longer match the recorded hash.
    changed = mr.tamper(path, tmp_path / "changed.sqlite3",
                        "UPDATE runtime_boundary_receipts SET receipt_json = CAST(replace(CAST(receipt_json AS TEXT), "
                        "'run_start', 'immediate') AS BLOB) WHERE run_id = ?", (session.receipts[0].run_id,))
    report, verify, _ = _import(changed, tmp_path / "changed.db")
    assert [(m.kind, m.run_id) for m in verify.mismatches] == [("receipt", session.receipts[0].run_id)]
    assert "released-0.8.10 receipt hash" in verify.mismatches[0].detail
    assert verify.receipts_unrecomputable == 1 and not report.ok
