""":class:`~watchfloor.store.sources_repo.SourcesRepository` in the SQL that SQLite and PostgreSQL share,
mixed into :class:`~watchfloor.store.sql_store.SQLStore` (schema: 0002_sources.sql)."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from watchfloor.model import utcnow
from watchfloor.sources.config import SourceConfig
from watchfloor.sources.health import Gap, HealthSnapshot, SourceStatus
from watchfloor.store.base import StoreError
from watchfloor.store.dialect import INTEGRITY_ERRORS, Connection, Dialect, Row
from watchfloor.store.rows import must_ts, parse_ts, ts

_HEALTH_COLUMNS = (
    "source",
    "platform",
    "status",
    "endpoint",
    "connected_since",
    "reconnects",
    "errors",
    "last_error",
    "last_error_at",
    "gaps",
    "rate_limited_until",
    "quota_used",
    "quota_limit",
    "updated_at",
)


class SQLSourcesMixin:
    """Sources, source health and gaps on the store's connection and write transactions."""

    if TYPE_CHECKING:
        dialect: Dialect

        @property
        def _conn(self) -> Connection: ...

        def _write(self) -> AbstractContextManager[Connection]: ...

    # ------------------------------------------------------------------ configuration
    def add_source(self, config: SourceConfig) -> SourceConfig:
        now = ts(utcnow())
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO sources (name, platform, settings, paused, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        config.name,
                        config.platform,
                        json.dumps(dict(config.settings), ensure_ascii=False, sort_keys=True),
                        int(config.paused),
                        ts(config.created_at),
                        now,
                    ),
                )
        except INTEGRITY_ERRORS as exc:
            raise StoreError(f"a source named {config.name!r} exists already") from exc
        stored = self.get_source(config.name)
        assert stored is not None
        return stored

    def get_source(self, name: str) -> SourceConfig | None:
        row = self._conn.execute("SELECT * FROM sources WHERE name = ?", (name,)).fetchone()
        return None if row is None else _source_from_row(row)

    def list_sources(self) -> list[SourceConfig]:
        return [_source_from_row(r) for r in self._conn.execute("SELECT * FROM sources ORDER BY name")]

    def set_source_paused(self, name: str, paused: bool) -> None:
        with self._write() as conn:
            cur = conn.execute(
                "UPDATE sources SET paused = ?, updated_at = ? WHERE name = ?", (int(paused), ts(utcnow()), name)
            )
            if cur.rowcount == 0:
                raise StoreError(f"no source named {name!r}")

    def remove_source(self, name: str) -> None:
        with self._write() as conn:
            if conn.execute("DELETE FROM sources WHERE name = ?", (name,)).rowcount == 0:
                raise StoreError(f"no source named {name!r}")

    # ------------------------------------------------------------------ health
    def record_source_health(self, health: HealthSnapshot) -> None:
        row = _health_row(health)
        columns = ", ".join(_HEALTH_COLUMNS)
        updates = ", ".join(f"{c} = excluded.{c}" for c in _HEALTH_COLUMNS if c != "source")
        with self._write() as conn:
            conn.execute(
                f"INSERT INTO source_health ({columns}) VALUES ({', '.join(':' + c for c in _HEALTH_COLUMNS)})"
                f" ON CONFLICT (source) DO UPDATE SET {updates}",
                row,
            )

    def source_health(self) -> list[HealthSnapshot]:
        rows = self._conn.execute("SELECT * FROM source_health ORDER BY source")
        return [_health_from_row(r) for r in rows]

    def record_gap(self, gap: Gap) -> Gap:
        with self._write() as conn:
            gap_id = conn.execute(
                "INSERT INTO source_gaps (source, reason, detected_at, since_at, until_at, cursor)"
                " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                (gap.source, gap.reason, ts(gap.detected_at), ts(gap.since), ts(gap.until), gap.cursor),
            ).fetchone()[0]
        return Gap(
            source=gap.source,
            reason=gap.reason,
            detected_at=gap.detected_at,
            since=gap.since,
            until=gap.until,
            cursor=gap.cursor,
            id=int(gap_id),
        )

    def list_gaps(self, *, source: str | None = None, since: datetime | None = None, limit: int = 50) -> list[Gap]:
        sql = "SELECT * FROM source_gaps WHERE 1 = 1"
        args: list[Any] = []
        if source is not None:
            sql += " AND source = ?"
            args.append(source)
        if since is not None:
            sql += " AND detected_at >= ?"
            args.append(ts(since))
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        return [_gap_from_row(r) for r in self._conn.execute(sql, args)]


def _source_from_row(row: Row) -> SourceConfig:
    return SourceConfig(
        name=row["name"],
        platform=row["platform"],
        settings=json.loads(row["settings"]),
        paused=bool(row["paused"]),
        created_at=must_ts(row["created_at"]),
        updated_at=parse_ts(row["updated_at"]),
    )


def _health_row(health: HealthSnapshot) -> dict[str, Any]:
    return {
        "source": health.source,
        "platform": health.platform,
        "status": health.status.value,
        "endpoint": health.endpoint,
        "connected_since": ts(health.connected_since),
        "reconnects": health.reconnects,
        "errors": health.errors,
        "last_error": health.last_error,
        "last_error_at": ts(health.last_error_at),
        "gaps": health.gaps,
        "rate_limited_until": ts(health.rate_limited_until),
        "quota_used": health.quota_used,
        "quota_limit": health.quota_limit,
        "updated_at": ts(health.updated_at or utcnow()),
    }


def _health_from_row(row: Row) -> HealthSnapshot:
    try:
        status = SourceStatus(row["status"])
    except ValueError:
        status = SourceStatus.stopped
    return HealthSnapshot(
        source=row["source"],
        platform=row["platform"],
        status=status,
        endpoint=row["endpoint"],
        connected_since=parse_ts(row["connected_since"]),
        reconnects=row["reconnects"],
        errors=row["errors"],
        last_error=row["last_error"],
        last_error_at=parse_ts(row["last_error_at"]),
        gaps=row["gaps"],
        rate_limited_until=parse_ts(row["rate_limited_until"]),
        quota_used=row["quota_used"],
        quota_limit=row["quota_limit"],
        updated_at=parse_ts(row["updated_at"]),
    )


def _gap_from_row(row: Row) -> Gap:
    return Gap(
        id=row["id"],
        source=row["source"],
        reason=row["reason"],
        detected_at=must_ts(row["detected_at"]),
        since=parse_ts(row["since_at"]),
        until=parse_ts(row["until_at"]),
        cursor=row["cursor"],
    )


__all__ = ["SQLSourcesMixin"]
