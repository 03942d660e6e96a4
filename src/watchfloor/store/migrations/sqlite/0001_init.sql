-- watchfloor schema 1: watches, matched posts, alerts, dead letters, source state, accounts.
-- Only posts that matched a watch are ever stored (data minimisation).

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('watches_revision', '0');

CREATE TABLE watches (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    query       TEXT NOT NULL,
    purpose     TEXT NOT NULL,
    legal_basis TEXT NOT NULL,
    owner       TEXT NOT NULL,
    approver    TEXT,
    severity    TEXT NOT NULL,
    sla_minutes INTEGER NOT NULL,
    expires_at  TEXT,
    sources     TEXT NOT NULL DEFAULT '[]',
    languages   TEXT NOT NULL DEFAULT '[]',
    enabled     INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

CREATE TABLE posts (
    id          INTEGER PRIMARY KEY,
    platform    TEXT NOT NULL,
    native_id   TEXT NOT NULL,
    version     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    received_at TEXT NOT NULL,
    text        TEXT NOT NULL,
    author      TEXT NOT NULL,
    lang        TEXT,
    langs       TEXT NOT NULL DEFAULT '[]',
    url         TEXT,
    links       TEXT NOT NULL DEFAULT '[]',
    hashtags    TEXT NOT NULL DEFAULT '[]',
    mentions    TEXT NOT NULL DEFAULT '[]',
    reply_to    TEXT,
    quote_of    TEXT,
    media       TEXT NOT NULL DEFAULT '[]',
    raw         BLOB NOT NULL,
    UNIQUE (platform, native_id, version)
);

-- An upstream delete leaves a tombstone (no content) so a later replay never stores the post again.
CREATE TABLE tombstones (
    platform   TEXT NOT NULL,
    native_id  TEXT NOT NULL,
    deleted_at TEXT NOT NULL,
    PRIMARY KEY (platform, native_id)
);

CREATE TABLE alerts (
    id           INTEGER PRIMARY KEY,
    watch_id     INTEGER NOT NULL REFERENCES watches (id),
    platform     TEXT NOT NULL,
    native_id    TEXT NOT NULL,
    version      TEXT NOT NULL,
    score        REAL NOT NULL,
    explanation  TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    due_at       TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'open',
    post_deleted INTEGER NOT NULL DEFAULT 0,
    UNIQUE (watch_id, platform, native_id, version)
);
CREATE INDEX alerts_by_post ON alerts (platform, native_id);
CREATE INDEX alerts_by_watch ON alerts (watch_id, id);

CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY,
    source      TEXT NOT NULL,
    platform    TEXT NOT NULL,
    reason      TEXT NOT NULL,
    payload     BLOB NOT NULL,
    received_at TEXT NOT NULL
);

CREATE TABLE source_state (
    source        TEXT PRIMARY KEY,
    cursor        TEXT,
    events_total  INTEGER NOT NULL DEFAULT 0,
    posts_total   INTEGER NOT NULL DEFAULT 0,
    events_per_s  REAL NOT NULL DEFAULT 0,
    lag_s         REAL,
    last_event_at TEXT,
    updated_at    TEXT
);

CREATE TABLE users (
    username             TEXT PRIMARY KEY,
    role                 TEXT NOT NULL,
    password_hash        TEXT NOT NULL,
    must_change_password INTEGER NOT NULL DEFAULT 0,
    created_at           TEXT NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    username   TEXT NOT NULL REFERENCES users (username),
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    csrf_token TEXT NOT NULL
);
