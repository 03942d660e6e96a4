-- watchfloor schema 3: the watch floor. Triage state on alerts, SLA breaches, the history
-- of every triage step, cases with preserved evidence, notes, tasks and a timeline,
-- evidence exports, and notifications (rules, an outbox with retries, in-app inboxes).

-- Triage state lives on the alert row: who holds it and what was decided.
ALTER TABLE alerts ADD COLUMN group_key TEXT;          -- near-duplicate key (triage/grouping.py)
ALTER TABLE alerts ADD COLUMN assignee TEXT;
ALTER TABLE alerts ADD COLUMN assigned_at TEXT;
ALTER TABLE alerts ADD COLUMN disposition TEXT;
ALTER TABLE alerts ADD COLUMN disposition_reason TEXT;
ALTER TABLE alerts ADD COLUMN disposed_by TEXT;
ALTER TABLE alerts ADD COLUMN disposed_at TEXT;
ALTER TABLE alerts ADD COLUMN triaged_at TEXT;         -- the FIRST disposition (time to triage, SLA)
ALTER TABLE alerts ADD COLUMN case_id INTEGER;
CREATE INDEX alerts_queue ON alerts (status, due_at);
CREATE INDEX alerts_by_group ON alerts (watch_id, group_key, status);
CREATE INDEX alerts_ungrouped ON alerts (id) WHERE group_key IS NULL;
CREATE INDEX alerts_by_case ON alerts (case_id) WHERE case_id IS NOT NULL;

-- An open alert whose deadline passed: recorded once (the primary key makes it idempotent).
CREATE TABLE sla_breaches (
    alert_id    INTEGER PRIMARY KEY REFERENCES alerts (id),
    watch_id    INTEGER NOT NULL,
    due_at      TEXT NOT NULL,
    detected_at TEXT NOT NULL
);

-- Every triage step, append-only: claimed, released, assigned, disposed, reopened, sla_breach.
CREATE TABLE triage_events (
    id       INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts (id),
    at       TEXT NOT NULL,
    actor    TEXT NOT NULL,
    kind     TEXT NOT NULL,
    detail   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX triage_events_by_alert ON triage_events (alert_id, id);

CREATE TABLE cases (
    id          INTEGER PRIMARY KEY,
    title       TEXT NOT NULL,
    status      TEXT NOT NULL DEFAULT 'open',
    owner       TEXT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    merged_into INTEGER REFERENCES cases (id)
);

-- One case per alert (the alert's row also carries case_id); who linked it and why.
CREATE TABLE case_alerts (
    alert_id INTEGER PRIMARY KEY REFERENCES alerts (id),
    case_id  INTEGER NOT NULL REFERENCES cases (id),
    added_by TEXT NOT NULL,
    added_at TEXT NOT NULL,
    reason   TEXT NOT NULL DEFAULT ''
);
CREATE INDEX case_alerts_by_case ON case_alerts (case_id);

-- Evidence is a COPY of the post as received, never a pointer to posts: it survives the
-- post's upstream delete and the posts' retention (the case is the legal hold).
CREATE TABLE evidence (
    id              INTEGER PRIMARY KEY,
    case_id         INTEGER NOT NULL REFERENCES cases (id),
    alert_id        INTEGER,
    platform        TEXT NOT NULL,
    native_id       TEXT NOT NULL,
    version         TEXT NOT NULL,
    source_url      TEXT,
    raw             BLOB NOT NULL,
    sha256          TEXT NOT NULL,
    captured_at     TEXT NOT NULL,
    preserved_at    TEXT NOT NULL,
    preserved_by    TEXT NOT NULL,
    text            TEXT NOT NULL DEFAULT '',
    author          TEXT NOT NULL DEFAULT '',
    lang            TEXT,
    post_created_at TEXT
);
CREATE INDEX evidence_by_case ON evidence (case_id, id);

CREATE TABLE case_notes (
    id         INTEGER PRIMARY KEY,
    case_id    INTEGER NOT NULL REFERENCES cases (id),
    author     TEXT NOT NULL,
    body       TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX case_notes_by_case ON case_notes (case_id, id);

CREATE TABLE case_tasks (
    id         INTEGER PRIMARY KEY,
    case_id    INTEGER NOT NULL REFERENCES cases (id),
    title      TEXT NOT NULL,
    assignee   TEXT,
    due_at     TEXT,
    status     TEXT NOT NULL DEFAULT 'open',
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    done_at    TEXT,
    done_by    TEXT
);
CREATE INDEX case_tasks_by_case ON case_tasks (case_id, id);

CREATE TABLE case_events (
    id      INTEGER PRIMARY KEY,
    case_id INTEGER NOT NULL REFERENCES cases (id),
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,
    kind    TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX case_events_by_case ON case_events (case_id, id);

CREATE TABLE evidence_exports (
    id              INTEGER PRIMARY KEY,
    case_id         INTEGER NOT NULL REFERENCES cases (id),
    exported_at     TEXT NOT NULL,
    exported_by     TEXT NOT NULL,
    manifest_sha256 TEXT NOT NULL,
    filename        TEXT NOT NULL
);
CREATE INDEX evidence_exports_by_manifest ON evidence_exports (manifest_sha256);

CREATE TABLE notification_rules (
    id              INTEGER PRIMARY KEY,
    channel         TEXT NOT NULL,            -- webhook | email | inapp
    target          TEXT NOT NULL,            -- URL | e-mail address | username
    events          TEXT NOT NULL,            -- JSON list of alert | sla_breach | escalation
    watch_id        INTEGER REFERENCES watches (id),  -- NULL: every watch
    min_severity    TEXT NOT NULL DEFAULT 'low',
    include_content INTEGER NOT NULL DEFAULT 0,
    secret          TEXT,                     -- webhook signing secret
    enabled         INTEGER NOT NULL DEFAULT 1,
    created_by      TEXT NOT NULL,
    created_at      TEXT NOT NULL
);

CREATE TABLE notification_outbox (
    id              INTEGER PRIMARY KEY,
    rule_id         INTEGER NOT NULL,
    channel         TEXT NOT NULL,
    target          TEXT NOT NULL,
    event           TEXT NOT NULL,
    subject         TEXT NOT NULL,
    payload         TEXT NOT NULL,            -- JSON
    created_at      TEXT NOT NULL,
    next_attempt_at TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    delivered_at    TEXT,
    failed_at       TEXT,
    last_error      TEXT,
    UNIQUE (rule_id, event, subject)
);
CREATE INDEX notification_outbox_due ON notification_outbox (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;

CREATE TABLE inbox (
    id         INTEGER PRIMARY KEY,
    username   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    title      TEXT NOT NULL,
    body       TEXT NOT NULL DEFAULT '',
    link       TEXT,
    subject    TEXT NOT NULL,                 -- (username, kind, subject) is unique: no repeats
    created_at TEXT NOT NULL,
    read_at    TEXT,
    UNIQUE (username, kind, subject)
);
CREATE INDEX inbox_by_user ON inbox (username, id);

-- New alerts are fanned out to notifications after their commit; this is how far that got.
-- Alerts that existed before this migration are never announced.
INSERT INTO meta (key, value) SELECT 'fanout_alert_cursor', CAST(COALESCE(MAX(id), 0) AS TEXT) FROM alerts;
