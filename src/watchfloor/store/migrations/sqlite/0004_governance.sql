-- watchfloor schema 4: accountability. Purpose-bound watch approval, sealed identities,
-- authorizations, the tamper-evident audit log and its checkpoints.

-- ---------------------------------------------------------------- purpose-bound watches
-- Only approved, enabled, unexpired watches match. Watches that existed before this
-- schema were never approved by a second person: they become pending.
ALTER TABLE watches ADD COLUMN status TEXT NOT NULL DEFAULT 'pending';
ALTER TABLE watches ADD COLUMN created_by TEXT;
ALTER TABLE watches ADD COLUMN approved_at TEXT;
ALTER TABLE watches ADD COLUMN reviewed_by TEXT;       -- first of two approvals for a held watch
ALTER TABLE watches ADD COLUMN hold TEXT;              -- protected-activity categories under review
ALTER TABLE watches ADD COLUMN authorization_id INTEGER;
UPDATE watches SET created_by = owner WHERE created_by IS NULL;
UPDATE watches SET approver = NULL;                    -- an approval is only what this schema records

-- ---------------------------------------------------------------- sealed identities
-- The clear account behind a pseudonym, AES-256-GCM encrypted under the epoch's identity
-- key; written in the same transaction as the matched post that needs it, and deleted
-- by retention once no stored post carries the pseudonym.
CREATE TABLE identities (
    pseudonym  TEXT NOT NULL,
    epoch      INTEGER NOT NULL,
    nonce      BLOB NOT NULL,
    ciphertext BLOB NOT NULL,
    first_seen TEXT NOT NULL,
    PRIMARY KEY (pseudonym, epoch)
);
CREATE INDEX identities_by_epoch ON identities (epoch);

-- ---------------------------------------------------------------- authorizations
CREATE TABLE authorizations (
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL,                  -- unmask | account_watch
    requester     TEXT NOT NULL,
    purpose       TEXT NOT NULL,
    pseudonyms    TEXT NOT NULL DEFAULT '[]',     -- JSON list: the scope
    case_id       TEXT,
    legal_basis   TEXT NOT NULL DEFAULT '',
    legal_ref     TEXT,
    reason        TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL DEFAULT 'requested',
    approver      TEXT,
    decided_at    TEXT,
    decision_note TEXT,
    requested_at  TEXT NOT NULL,
    expires_at    TEXT NOT NULL,
    max_reveals   INTEGER NOT NULL DEFAULT 0,
    reveals       INTEGER NOT NULL DEFAULT 0,
    CHECK (approver IS NULL OR approver <> requester)
);
CREATE INDEX authorizations_by_time ON authorizations (requested_at);

-- ---------------------------------------------------------------- counts that outlive retention
-- When retention deletes alerts it first adds them here, by day raised, watch and status
-- (counts only), so the transparency report of a past period stays true.
CREATE TABLE retained_alert_counts (
    day        TEXT NOT NULL,                     -- YYYY-MM-DD (UTC) the alerts were raised
    watch_id   INTEGER NOT NULL,
    status     TEXT NOT NULL,
    alerts     INTEGER NOT NULL DEFAULT 0,
    sla_met    INTEGER NOT NULL DEFAULT 0,
    sla_missed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, watch_id, status)
);

-- ---------------------------------------------------------------- audit log
-- entry: canonical JSON bytes; leaf_hash = SHA-256(0x00 || entry) (RFC 9162).
-- at/action are copies for queries; verification only trusts entry.
CREATE TABLE audit_log (
    seq       INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    action    TEXT NOT NULL,
    entry     BLOB NOT NULL,
    leaf_hash BLOB NOT NULL
);
CREATE INDEX audit_log_by_action ON audit_log (action, at);
CREATE INDEX audit_log_by_time ON audit_log (at);

-- The tree head after the newest entry and its compact range, so appending costs O(log n).
CREATE TABLE audit_head (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    size     INTEGER NOT NULL,
    root     BLOB NOT NULL,
    frontier TEXT NOT NULL                        -- JSON list of hex subtree roots
);
INSERT INTO audit_head (id, size, root, frontier)
VALUES (1, 0, X'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', '[]');

-- Signed tree heads (c2sp.org/tlog-checkpoint notes) made by this deployment.
CREATE TABLE audit_checkpoints (
    tree_size  INTEGER PRIMARY KEY,
    root       BLOB NOT NULL,
    created_at TEXT NOT NULL,
    note       TEXT NOT NULL
);

-- Accidents cannot change history; an attacker who drops these triggers is caught by
-- the Merkle tree and the witnessed checkpoints (watchfloor audit verify).
CREATE TRIGGER audit_log_is_append_only_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_is_append_only_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_checkpoints_are_kept BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints are kept'); END;
