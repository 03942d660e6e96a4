-- watchfloor schema 8: each watch row carries the watches_revision (meta) of its last write, so
-- the pipeline's watch-set cache reads only the watches changed since the revision it knows
-- (watches_changed_since) instead of every watch. Every write of a watch row bumps the counter
-- and stamps the row with the new value in the same transaction. Rows written before this
-- version keep 0: a cache that starts loads every watch anyway.

ALTER TABLE watches ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
CREATE INDEX watches_by_revision ON watches (revision);
