-- mobstore schema: the one DDL (engine/schema.py applies it and sets PRAGMA user_version).
-- Every object starts with ms_. Times are Unix milliseconds.

-- A session: its metadata document and the head of its append-only transcript.
CREATE TABLE ms_sessions (
    num            INTEGER PRIMARY KEY,            -- internal key; a session's messages cluster under it
    id             TEXT    NOT NULL UNIQUE,
    created_at_ms  INTEGER NOT NULL,
    updated_at_ms  INTEGER NOT NULL,
    message_count  INTEGER NOT NULL DEFAULT 0,
    message_bytes  INTEGER NOT NULL DEFAULT 0,     -- sum of stored message JSON sizes
    metadata_json  BLOB    NOT NULL,               -- the whole metadata document, compact JSON
    digest_profile TEXT    NOT NULL DEFAULT 'f3',  -- profile of sha256_state and of new receipts
    sha256_state   BLOB    NOT NULL,               -- engine.digest.TranscriptState bytes: SHA-256 midstate of
                                                   -- "[" + canonical messages, so digests cost O(appended)
    head_revision  TEXT,                           -- an imported meerkat head: its transcript digest,
    head_message_count INTEGER,                    --   how many messages it covers,
    head_profile   TEXT                            --   and the digest profile its producer used
);
-- Paging newest first without a sort.
CREATE INDEX ms_sessions_created ON ms_sessions (created_at_ms, num);

-- Messages, exactly as given (JSON bytes). key = session num * 2^32 + index: one contiguous rowid
-- range per session, so append and range reads cost the same at 100 or 100,000 messages and no
-- secondary index is needed (disk stays close to the raw JSON size).
CREATE TABLE ms_messages (
    key  INTEGER PRIMARY KEY,
    body BLOB NOT NULL
);

-- The mob-binding facts of each session's metadata.session_metadata, written in the same
-- transaction as the metadata document so membership is answered by SQL over these columns
-- (engine/membership.py). One row per session; NULL where the document has no such field.
CREATE TABLE ms_bindings (
    session_id     TEXT PRIMARY KEY,
    comms_name     TEXT,            -- session_metadata.comms_name as stored
    comms_parts    INTEGER,         -- number of '/'-separated parts of comms_name
    comms_mob      TEXT,            -- first part (set even when comms_name is malformed)
    comms_profile  TEXT,            -- second and third parts, when there are exactly three
    comms_member   TEXT,
    realm_id       TEXT,
    has_peer_meta  INTEGER NOT NULL DEFAULT 0,
    label_mob_id   TEXT,            -- peer_meta.labels.mob_id / role / meerkat_id
    label_role     TEXT,
    label_meerkat_id TEXT,
    binding_mob_id TEXT,            -- session_metadata.mob_member_binding (newer meerkat)
    binding_role   TEXT,
    binding_member TEXT
) WITHOUT ROWID;
-- Covering for the seed rule: mob_members/reconcile read only this index (plus the implicit
-- session_id), never the table.
CREATE INDEX ms_bindings_comms_mob ON ms_bindings (
    comms_mob, comms_profile, comms_member, comms_parts, realm_id, label_mob_id, label_role, label_meerkat_id
) WHERE comms_mob IS NOT NULL;
CREATE INDEX ms_bindings_binding_mob ON ms_bindings (binding_mob_id) WHERE binding_mob_id IS NOT NULL;

-- Runtime boundary receipts. The receipt's (message_count, conversation_digest) is the snapshot
-- reference: the head of the transcript at commit time, not a copy of the session.
CREATE TABLE ms_receipts (
    session_num    INTEGER NOT NULL REFERENCES ms_sessions (num) ON DELETE CASCADE,
    run_id         TEXT    NOT NULL,
    sequence       INTEGER NOT NULL,
    boundary       TEXT    NOT NULL,
    conversation_digest TEXT,
    message_count  INTEGER NOT NULL,
    profile        TEXT    NOT NULL,               -- digest profile the receipt was made with
    contributing_input_ids BLOB NOT NULL,          -- compact JSON array of strings
    runtime_id     TEXT,                           -- meerkat runtime id of an imported receipt
    receipt_json   BLOB,                           -- an imported receipt's exact bytes; NULL for receipts
                                                   -- mobstore made (RunBoundaryReceipt.to_json regenerates
                                                   -- them byte for byte from these columns)
    committed_at_ms INTEGER NOT NULL,
    superseded_by  INTEGER,                        -- the ms_rewrites.rewrite that removed messages this
                                                   -- receipt covers (NULL: it covers the current transcript)
    PRIMARY KEY (session_num, run_id, sequence)
) WITHOUT ROWID;
-- No index on run_id alone: receipts(run_id=...) without a session scans the table. Every
-- secondary index is one more page in each turn's commit (measured: dropping this one and
-- ms_events' session index made apply_runtime_turn ~8% faster and its rows ~7% smaller).

-- Durable ordered event log, read by other processes with Store.events(after=cursor).
-- seq is the rowid: a new event gets max(seq) + 1. A cursor never sees a reused number because
-- prune_events always keeps the newest event (no AUTOINCREMENT: its sqlite_sequence row would be
-- one more page written by every commit).
CREATE TABLE ms_events (
    seq        INTEGER PRIMARY KEY,
    at_ms      INTEGER NOT NULL,
    kind       TEXT    NOT NULL,
    session_id TEXT    NOT NULL,
    detail     BLOB,                               -- small JSON object
    writer     TEXT                                -- the writing connection: "<pid>:<random hex>" (Event.writer)
);
-- Readers tail the log by seq (the primary key); events(session_id=...) filters that range.

-- Rewrites (engine/rewrites.py, docs/rewrites.md): each truncation of a transcript, numbered 0, 1, ...
-- per session. Nothing is lost: the messages it removed, [new_count, old_count) of the transcript as it
-- was, move to ms_history, and receipts made before it that covered them point at it (superseded_by), so
-- they stay verifiable against the transcript they were made on. purge_history deletes the messages
-- (a privacy deletion) and stamps purged_at_ms; the row itself stays as the record of the rewrite.
CREATE TABLE ms_rewrites (
    session_num    INTEGER NOT NULL REFERENCES ms_sessions (num) ON DELETE CASCADE,
    rewrite        INTEGER NOT NULL,
    at_ms          INTEGER NOT NULL,
    old_count      INTEGER NOT NULL,
    new_count      INTEGER NOT NULL,
    old_digest     TEXT    NOT NULL,               -- transcript digest before the rewrite (in profile)
    profile        TEXT    NOT NULL,
    removed_bytes  INTEGER NOT NULL,
    reason         TEXT,                           -- the caller's label ("pop_item", "clear_session", ...)
    head_revision  TEXT,                           -- an imported meerkat head it superseded (as in ms_sessions)
    head_message_count INTEGER,
    head_profile   TEXT,
    purged_at_ms   INTEGER,                        -- set by purge_history: its messages are gone
    PRIMARY KEY (session_num, rewrite)
) WITHOUT ROWID;

-- The messages each rewrite removed, byte for byte, at their index in the transcript before it.
-- A rowid table (bodies are large; WITHOUT ROWID suits small rows) with the key as its primary key.
CREATE TABLE ms_history (
    session_num    INTEGER NOT NULL,
    rewrite        INTEGER NOT NULL,
    idx            INTEGER NOT NULL,
    body           BLOB    NOT NULL,
    PRIMARY KEY (session_num, rewrite, idx),
    FOREIGN KEY (session_num, rewrite) REFERENCES ms_rewrites (session_num, rewrite) ON DELETE CASCADE
);

-- What an import from a meerkat realm could not verify with the store's own data: checks made
-- against parts of the realm file mobstore does not keep (head tokens, metadata cells, the
-- released-0.8.10 receipt hashes and runtime snapshots), with their result. verify reports
-- these rows; a receipt named here is not recomputed from the transcript (docs/meerkat.md).
CREATE TABLE ms_import_checks (
    check_num   INTEGER PRIMARY KEY,
    session_num INTEGER NOT NULL REFERENCES ms_sessions (num) ON DELETE CASCADE,
    subject     TEXT    NOT NULL,          -- receipt | head | head_token | metadata | row_prefix
    run_id      TEXT,                      -- a receipt's run id and sequence; NULL otherwise
    sequence    INTEGER,
    status      TEXT    NOT NULL,          -- mismatch | unrecomputable | unchecked
    expected    TEXT,
    actual      TEXT,
    reason      TEXT    NOT NULL,
    source      TEXT    NOT NULL           -- the realm file it came from
);
CREATE INDEX ms_import_checks_session ON ms_import_checks (session_num);
