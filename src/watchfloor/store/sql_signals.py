""":class:`~watchfloor.store.signals_repo.SignalsRepository` in the SQL that SQLite and PostgreSQL share,
mixed into :class:`~watchfloor.store.sql_store.SQLStore` (schema: 0005_signals.sql)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from watchfloor.model import NearDuplicateGroup, Post, PostKey, PostSignals, Spike
from watchfloor.store.dialect import Connection, Dialect, Row
from watchfloor.store.rows import must_ts, post_from_row, ts

if TYPE_CHECKING:
    from watchfloor.store.base import IngestBatch

SIGNAL_COLUMNS = (
    "platform",
    "native_id",
    "version",
    "computed_at",
    "lang",
    "lang_confidence",
    "sentiment",
    "toxicity",
    "threat",
    "near_duplicate_group",
    "minhash",
)
# Only for a post that is stored (a tombstoned post is not): the signals follow the post.
_INSERT_SIGNALS = (
    f"INSERT INTO post_signals ({', '.join(SIGNAL_COLUMNS)}) "
    f"SELECT {', '.join(':' + c for c in SIGNAL_COLUMNS)} "
    "WHERE EXISTS (SELECT 1 FROM posts p"
    " WHERE p.platform = :platform AND p.native_id = :native_id AND p.version = :version) "
    "ON CONFLICT DO NOTHING"
)
_SPIKE_COLUMNS = (
    "watch_id",
    "term",
    "window_start",
    "window_end",
    "count",
    "baseline",
    "threshold",
    "excess",
    "detected_at",
)
INSERT_SPIKE = (
    f"INSERT INTO spikes ({', '.join(_SPIKE_COLUMNS)}) VALUES ({', '.join(':' + c for c in _SPIKE_COLUMNS)}) "
    "ON CONFLICT DO NOTHING"
)
_GROUPS = (
    "SELECT s.near_duplicate_group AS grp, COUNT(*) AS n, MIN(p.created_at) AS first_at, MAX(p.created_at) AS last_at"
    " FROM post_signals s JOIN posts p"
    " ON p.platform = s.platform AND p.native_id = s.native_id AND p.version = s.version"
    " WHERE s.near_duplicate_group {where}"
    " GROUP BY s.near_duplicate_group"
)


def signals_row(s: PostSignals) -> dict[str, Any]:
    return {
        "platform": s.post.platform,
        "native_id": s.post.native_id,
        "version": s.post.version,
        "computed_at": ts(s.computed_at),
        "lang": s.lang,
        "lang_confidence": s.lang_confidence,
        "sentiment": s.sentiment,
        "toxicity": s.toxicity,
        "threat": s.threat,
        "near_duplicate_group": s.near_duplicate_group,
        "minhash": s.minhash,
    }


def spike_row(s: Spike) -> dict[str, Any]:
    return {
        "watch_id": s.watch_id,
        "term": s.term,
        "window_start": ts(s.window_start),
        "window_end": ts(s.window_end),
        "count": s.count,
        "baseline": s.baseline,
        "threshold": s.threshold,
        "excess": s.excess,
        "detected_at": ts(s.detected_at),
    }


def _spike(row: Row) -> Spike:
    return Spike(
        id=row["id"],
        watch_id=row["watch_id"],
        term=row["term"],
        window_start=must_ts(row["window_start"]),
        window_end=must_ts(row["window_end"]),
        count=row["count"],
        baseline=row["baseline"],
        threshold=row["threshold"],
        excess=row["excess"],
        detected_at=must_ts(row["detected_at"]),
    )


class SQLSignalsMixin:
    """Signals and spikes on the store's connection and write transactions."""

    if TYPE_CHECKING:
        dialect: Dialect

        @property
        def _conn(self) -> Connection: ...

        def _write(self) -> AbstractContextManager[Connection]: ...

    # ------------------------------------------------------------------ written by commit_batch
    def _insert_signals(self, conn: Connection, batch: IngestBatch) -> None:
        """Inside ``commit_batch``'s transaction, after the posts: their signals and the batch's spikes."""
        if batch.signals:
            conn.executemany(_INSERT_SIGNALS, [signals_row(s) for s in batch.signals])
        if batch.spikes:
            conn.executemany(INSERT_SPIKE, [spike_row(s) for s in batch.spikes])

    # ------------------------------------------------------------------ reading
    def get_post_signals(self, key: PostKey) -> PostSignals | None:
        row = self._conn.execute(
            "SELECT * FROM post_signals WHERE platform = ? AND native_id = ? AND version = ?",
            (key.platform, key.native_id, key.version),
        ).fetchone()
        if row is None:
            return None
        return PostSignals(
            post=key,
            computed_at=must_ts(row["computed_at"]),
            lang=row["lang"],
            lang_confidence=row["lang_confidence"],
            sentiment=row["sentiment"],
            toxicity=row["toxicity"],
            threat=row["threat"],
            near_duplicate_group=row["near_duplicate_group"],
            minhash=bytes(row["minhash"]),
        )

    def _group(self, row: Row) -> NearDuplicateGroup:
        first = self._conn.execute(
            "SELECT s.platform, s.native_id, s.version FROM post_signals s JOIN posts p"
            " ON p.platform = s.platform AND p.native_id = s.native_id AND p.version = s.version"
            " WHERE s.near_duplicate_group = ? ORDER BY p.created_at, p.id LIMIT 1",
            (row["grp"],),
        ).fetchone()
        return NearDuplicateGroup(
            group_id=row["grp"],
            count=row["n"],
            first_post=PostKey(first["platform"], first["native_id"], first["version"]),
            first_seen_at=must_ts(row["first_at"]),
            last_seen_at=must_ts(row["last_at"]),
        )

    def get_near_duplicate_group(self, group_id: str) -> NearDuplicateGroup | None:
        row = self._conn.execute(_GROUPS.format(where="= ?"), (group_id,)).fetchone()
        return None if row is None else self._group(row)

    def list_near_duplicate_groups(
        self, *, since: datetime | None = None, min_count: int = 2, limit: int = 50
    ) -> list[NearDuplicateGroup]:
        sql = _GROUPS.format(where="IS NOT NULL") + " HAVING COUNT(*) >= ?"
        args: list[object] = [min_count]
        if since is not None:
            sql += " AND MAX(p.created_at) >= ?"
            args.append(ts(since))
        sql += " ORDER BY n DESC, first_at, grp LIMIT ?"  # grp: the same order on every database
        args.append(limit)
        return [self._group(r) for r in self._conn.execute(sql, args).fetchall()]

    def recent_signatures(self, limit: int) -> list[tuple[str, bytes, str]]:
        # rowid: the insertion order (SQLite's implicit column, an identity column on PostgreSQL)
        rows = self._conn.execute(
            "SELECT platform, native_id, version, minhash, near_duplicate_group FROM post_signals"
            " WHERE near_duplicate_group IS NOT NULL AND length(minhash) > 0 ORDER BY rowid DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            (f"{r['platform']}|{r['native_id']}|{r['version']}", bytes(r["minhash"]), r["near_duplicate_group"])
            for r in reversed(rows)
        ]

    def list_spikes(
        self, *, since: datetime | None = None, watch_id: int | None = None, limit: int = 100
    ) -> list[Spike]:
        sql, args = "SELECT * FROM spikes WHERE 1 = 1", []
        if since is not None:
            sql += " AND window_start >= ?"
            args.append(ts(since))
        if watch_id is not None:
            sql += " AND watch_id = ?"
            args.append(watch_id)
        sql += " ORDER BY window_start DESC, watch_id, term LIMIT ?"
        args.append(limit)
        return [_spike(r) for r in self._conn.execute(sql, args)]

    def posts_since(self, since: datetime, *, limit: int = 5_000) -> list[Post]:
        rows = self._conn.execute(
            "SELECT * FROM posts WHERE created_at >= ? ORDER BY created_at DESC LIMIT ?", (ts(since), limit)
        )
        return [post_from_row(r) for r in rows]
