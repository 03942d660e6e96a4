-- watchfloor schema 7: a dead letter is stored once per event. A batch delivered again after
-- its commit (a worker killed between its commit and its acknowledgements) carries the same
-- dead letters; their key (source, position and bytes of the event) makes the repeat a no-op.
-- Dead letters written before this version, and those without a key, are never merged.

ALTER TABLE dead_letters ADD COLUMN event_key TEXT;
CREATE UNIQUE INDEX dead_letters_event_key ON dead_letters (source, event_key) WHERE event_key IS NOT NULL;
