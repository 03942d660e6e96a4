-- watchfloor schema 2: configured sources, their health, and the gaps they found.
-- Credentials are never stored here (see watchfloor.sources.config).

CREATE TABLE sources (
    name       TEXT PRIMARY KEY,
    platform   TEXT NOT NULL,
    settings   TEXT NOT NULL DEFAULT '{}',  -- JSON, without secrets
    paused     INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- The newest health reading of each running (or last run) source. Events/s, lag and the
-- newest event's time are in source_state, committed with the data.
CREATE TABLE source_health (
    source             TEXT PRIMARY KEY,
    platform           TEXT NOT NULL,
    status             TEXT NOT NULL,
    endpoint           TEXT,
    connected_since    TEXT,
    reconnects         INTEGER NOT NULL DEFAULT 0,
    errors             INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT,
    last_error_at      TEXT,
    gaps               INTEGER NOT NULL DEFAULT 0,
    rate_limited_until TEXT,
    quota_used         INTEGER,
    quota_limit        INTEGER,
    updated_at         TEXT NOT NULL
);

-- A stretch of a stream a source knows it missed (a reconnect that could not resume).
CREATE TABLE source_gaps (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    reason      TEXT NOT NULL,
    detected_at TEXT NOT NULL,
    since_at    TEXT,  -- the newest event time before the gap, if known
    until_at    TEXT,  -- the oldest event time after it, if known
    cursor      TEXT
);
CREATE INDEX source_gaps_by_source ON source_gaps (source, id);
