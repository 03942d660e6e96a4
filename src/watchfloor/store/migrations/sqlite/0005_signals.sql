-- watchfloor schema 5: the signals of matched posts (language, sentiment, toxicity, threat,
-- near-duplicate group) and burst spikes per watch and term.
-- Signals describe texts, never people; spikes are counts, never about a person.

CREATE TABLE post_signals (
    platform             TEXT NOT NULL,
    native_id            TEXT NOT NULL,
    version              TEXT NOT NULL,
    computed_at          TEXT NOT NULL,
    lang                 TEXT,             -- identified language, whatever the post declared
    lang_confidence      REAL,
    sentiment            REAL,             -- VADER compound, English only
    toxicity             REAL,             -- 0..1, English only (docs/signals.md)
    threat               REAL,             -- 0..1, English only (docs/signals.md)
    near_duplicate_group TEXT,             -- 'g:' + 16 hex digits
    minhash              BLOB NOT NULL DEFAULT x'',  -- to rebuild the near-duplicate index on start
    PRIMARY KEY (platform, native_id, version)
);
CREATE INDEX post_signals_by_group ON post_signals (near_duplicate_group);

-- Signals go with their post: an upstream delete or retention removes them too.
CREATE TRIGGER post_signals_follow_posts AFTER DELETE ON posts
BEGIN
    DELETE FROM post_signals
     WHERE platform = old.platform AND native_id = old.native_id AND version = old.version;
END;

-- A window in which a watch (term = '') or one of its terms matched far above its baseline.
CREATE TABLE spikes (
    id           INTEGER PRIMARY KEY,
    watch_id     INTEGER NOT NULL REFERENCES watches (id),
    term         TEXT NOT NULL DEFAULT '',
    window_start TEXT NOT NULL,
    window_end   TEXT NOT NULL,
    count        INTEGER NOT NULL,
    baseline     REAL NOT NULL,
    threshold    REAL NOT NULL,
    excess       REAL NOT NULL,
    detected_at  TEXT NOT NULL,
    UNIQUE (watch_id, term, window_start)
);
CREATE INDEX spikes_by_window ON spikes (window_start);

-- The network view reads the posts of a recent time range.
CREATE INDEX IF NOT EXISTS posts_by_created_at ON posts (created_at);
