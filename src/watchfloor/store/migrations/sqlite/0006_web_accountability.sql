-- The web layer's accountability (docs/accountability.md, "Sessions, second factor and API tokens"):
-- idle session timeout, TOTP second factor, scoped API tokens, and the auditor's view of the log.

-- A session ends at expires_at (12 h after sign-in) or at idle_expires_at, which every
-- request a person makes pushes forward; NULL: no idle limit (sessions from before 0006).
ALTER TABLE sessions ADD COLUMN idle_expires_at TEXT;
CREATE INDEX sessions_by_user ON sessions (username);
CREATE INDEX sessions_by_expiry ON sessions (expires_at);

-- One TOTP enrolment per account (RFC 6238, 30 s steps, 6 digits). The secret is sealed
-- (AES-256-GCM, keys/web/totp.key, the username as associated data). confirmed_at is NULL
-- while the enrolment waits for its first code; sign-in asks for a code only once confirmed.
-- last_step is the newest time step accepted: a code is never accepted twice.
CREATE TABLE user_totp (
    username     TEXT PRIMARY KEY REFERENCES users (username),
    nonce        BLOB NOT NULL,
    ciphertext   BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    confirmed_at TEXT,
    last_step    INTEGER NOT NULL DEFAULT 0
);

-- The step between a right password and the second factor: a random token in a cookie
-- (only its SHA-256 here), a few minutes long, a few attempts.
CREATE TABLE login_challenges (
    token_hash TEXT PRIMARY KEY,
    username   TEXT NOT NULL REFERENCES users (username),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    failures   INTEGER NOT NULL DEFAULT 0
);

-- API tokens: sent as "Authorization: Bearer wft_..."; only the SHA-256 is kept. scopes is a
-- JSON list of permissions, a subset of the owner's role (checked again on every request).
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    username     TEXT NOT NULL REFERENCES users (username),
    name         TEXT NOT NULL,
    token_hash   TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);
CREATE INDEX api_tokens_by_user ON api_tokens (username);

-- The auditor pages the log newest first, by actor or by action: an index on the actor inside
-- each canonical entry (no column is added, and verification still trusts only the entry
-- bytes), and one on (action, seq), so a page is an index seek however long the log is.
CREATE INDEX audit_log_by_actor ON audit_log (json_extract(CAST(entry AS TEXT), '$.actor'), seq);
CREATE INDEX audit_log_by_action_seq ON audit_log (action, seq);
