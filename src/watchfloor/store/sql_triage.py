""":class:`~watchfloor.store.triage_repo.TriageRepository` in the SQL that SQLite and PostgreSQL share,
mixed into :class:`~watchfloor.store.sql_store.SQLStore` (schema: 0003_triage_cases.sql)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from watchfloor.model import (
    AlertStatus,
    AlertView,
    Disposition,
    FloorCounts,
    QueueItem,
    Role,
    Severity,
    SlaBreach,
    TriageEvent,
    TriageState,
    WatchFigures,
)
from watchfloor.store.dialect import Connection, Dialect, Row, count_if
from watchfloor.store.notify_repo import Fanout
from watchfloor.store.rows import must_ts, parse_ts, ts
from watchfloor.store.sql_notify import insert_fanout
from watchfloor.store.triage_repo import Changed, GroupKeyer, QueueFilter

FANOUT_CURSOR = "fanout_alert_cursor"
SEVERITY_RANK = "CASE w.severity WHEN 'urgent' THEN 4 WHEN 'high' THEN 3 WHEN 'medium' THEN 2 ELSE 1 END"
DUE_SOON = timedelta(minutes=15)
_OPEN = "a.status = 'open'"
_FALSE_POSITIVE = "a.disposition = 'false_positive'"
# an alert missed its deadline: first triaged late, or still open past it (``?``: now)
_MISSED = (
    "({p}triaged_at IS NOT NULL AND {p}triaged_at > {p}due_at)"
    " OR ({p}triaged_at IS NULL AND {p}status = 'open' AND {p}due_at <= ?)"
)

# which statuses each write may start from
_ASSIGNABLE = (AlertStatus.open.value, AlertStatus.escalated.value)
_DISPOSABLE_FROM = {
    Disposition.dismiss: (AlertStatus.open.value, AlertStatus.escalated.value),
    Disposition.false_positive: (AlertStatus.open.value, AlertStatus.escalated.value),
    Disposition.escalate: (AlertStatus.open.value,),
}
_REOPENABLE = (AlertStatus.dismissed.value, AlertStatus.false_positive.value, AlertStatus.escalated.value)


def fallback_group_key(alert_id: int) -> str:
    """The key of an alert whose post is gone: a group of its own."""
    return f"alert:{alert_id}"


def add_triage_event(conn: Connection, alert_id: int, at: datetime, actor: str, kind: str, detail: str) -> None:
    conn.execute(
        "INSERT INTO triage_events (alert_id, at, actor, kind, detail) VALUES (?, ?, ?, ?, ?)",
        (alert_id, ts(at), actor, kind, detail),
    )


class SQLTriageMixin:
    if TYPE_CHECKING:
        dialect: Dialect

        @property
        def _conn(self) -> Connection: ...

        def _write(self) -> AbstractContextManager[Connection]: ...

        def get_alert(self, alert_id: int) -> AlertView | None: ...

        def list_alerts(
            self, *, after_id: int = 0, limit: int = 100, watch_id: int | None = None, newest_first: bool = False
        ) -> list[AlertView]: ...

    # ------------------------------------------------------------------ reading
    def fill_group_keys(self, keyer: GroupKeyer, *, limit: int = 2000) -> int:
        rows = self._conn.execute(
            "SELECT a.id, p.text FROM alerts a LEFT JOIN posts p ON p.platform = a.platform"
            " AND p.native_id = a.native_id AND p.version = a.version"
            " WHERE a.group_key IS NULL ORDER BY a.id LIMIT ?",
            (limit,),
        ).fetchall()
        if not rows:
            return 0
        keys = [(fallback_group_key(r[0]) if r[1] is None else keyer(r[1]), r[0]) for r in rows]
        with self._write() as conn:
            conn.executemany("UPDATE alerts SET group_key = ? WHERE id = ? AND group_key IS NULL", keys)
        return len(keys)

    def queue(self, flt: QueueFilter | None = None, *, limit: int = 200) -> list[QueueItem]:
        flt = flt or QueueFilter()
        sql = (
            "SELECT a.id, a.watch_id, COALESCE(a.group_key, 'alert:' || a.id) AS gk, a.assignee,"
            f" b.alert_id IS NOT NULL AS breached, {SEVERITY_RANK} AS sev_rank"
            " FROM alerts a JOIN watches w ON w.id = a.watch_id"
            " LEFT JOIN sla_breaches b ON b.alert_id = a.id WHERE a.status = 'open'"
        )
        args: list[Any] = []
        if flt.assignee is not None:
            sql += " AND a.assignee = ?"
            args.append(flt.assignee)
        if flt.unassigned:
            sql += " AND a.assignee IS NULL"
        if flt.watch_id is not None:
            sql += " AND a.watch_id = ?"
            args.append(flt.watch_id)
        if flt.severities:
            sql += f" AND w.severity IN ({', '.join('?' for _ in flt.severities)})"
            args.extend(s.value for s in flt.severities)
        # priority: severity, then score, then time left (the deadline), then age
        sql += " ORDER BY sev_rank DESC, a.score DESC, a.due_at ASC, a.id ASC"
        groups: dict[tuple[int, str], list[Row]] = {}
        for row in self._conn.execute(sql, args):
            groups.setdefault((row["watch_id"], row["gk"]), []).append(row)
        items: list[QueueItem] = []
        for members in list(groups.values())[:limit]:
            first = members[0]["id"]
            view = self.get_alert(first)
            state = self.triage_state(first)
            if view is None or state is None:  # pragma: no cover - read between writes
                continue
            items.append(
                QueueItem(
                    view=view,
                    triage=state,
                    count=len(members),
                    alert_ids=tuple(m["id"] for m in members),
                    assignees=tuple(sorted({m["assignee"] for m in members if m["assignee"]})),
                    breached=sum(1 for m in members if m["breached"]),
                )
            )
        return items

    def triage_state(self, alert_id: int) -> TriageState | None:
        row = self._conn.execute(
            "SELECT a.*, b.detected_at AS breached_at FROM alerts a"
            " LEFT JOIN sla_breaches b ON b.alert_id = a.id WHERE a.id = ?",
            (alert_id,),
        ).fetchone()
        return None if row is None else _triage_from_row(row)

    def triage_history(self, alert_id: int) -> list[TriageEvent]:
        rows = self._conn.execute("SELECT * FROM triage_events WHERE alert_id = ? ORDER BY id", (alert_id,))
        return [
            TriageEvent(
                id=r["id"],
                alert_id=r["alert_id"],
                at=must_ts(r["at"]),
                actor=r["actor"],
                kind=r["kind"],
                detail=r["detail"],
            )
            for r in rows
        ]

    def alert_statuses(self, alert_ids: Sequence[int]) -> dict[int, AlertStatus]:
        found: dict[int, AlertStatus] = {}
        for alert_id in dict.fromkeys(alert_ids):
            row = self._conn.execute("SELECT status FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            if row is not None:
                found[alert_id] = AlertStatus(row[0])
        return found

    def expand_groups(self, alert_ids: Sequence[int]) -> list[int]:
        out: dict[int, None] = {}
        for alert_id in alert_ids:
            out[alert_id] = None
            row = self._conn.execute("SELECT watch_id, group_key FROM alerts WHERE id = ?", (alert_id,)).fetchone()
            if row is None or row["group_key"] is None:
                continue
            for other in self._conn.execute(
                "SELECT id FROM alerts WHERE watch_id = ? AND group_key = ? AND status = 'open' ORDER BY id",
                (row["watch_id"], row["group_key"]),
            ):
                out[other[0]] = None
        return list(out)

    def account_roles(self) -> dict[str, Role]:
        return {r[0]: Role(r[1]) for r in self._conn.execute("SELECT username, role FROM users ORDER BY username")}

    # ------------------------------------------------------------------ writing
    def assign_alerts(
        self, alert_ids: Sequence[int], assignee: str | None, *, actor: str, at: datetime, only_unclaimed: bool
    ) -> Changed:
        result = Changed()
        with self._write() as conn:
            for alert_id in dict.fromkeys(alert_ids):
                row = conn.execute("SELECT status, assignee FROM alerts WHERE id = ?", (alert_id,)).fetchone()
                if row is None:
                    result.skipped[alert_id] = "no such alert"
                    continue
                held = row["assignee"]
                if row["status"] not in _ASSIGNABLE:
                    result.skipped[alert_id] = f"already decided ({row['status'].replace('_', ' ')})"
                elif held == assignee:
                    result.skipped[alert_id] = f"already held by {held}" if held else "nobody holds it"
                elif only_unclaimed and held is not None:
                    result.skipped[alert_id] = f"held by {held}"
                else:
                    conn.execute(
                        "UPDATE alerts SET assignee = ?, assigned_at = ? WHERE id = ?",
                        (assignee, ts(at) if assignee else None, alert_id),
                    )
                    if assignee is None:
                        kind, detail = "released", f"was held by {held}"
                    elif assignee == actor:
                        kind, detail = "claimed", ""
                    else:
                        kind, detail = "assigned", f"to {assignee}"
                    add_triage_event(conn, alert_id, at, actor, kind, detail)
                    result.changed.append(alert_id)
        return result

    def dispose_alerts(
        self,
        alert_ids: Sequence[int],
        disposition: Disposition,
        reason: str,
        *,
        actor: str,
        at: datetime,
        fanout_for: Callable[[list[int]], Fanout] | None = None,
    ) -> Changed:
        if disposition not in _DISPOSABLE_FROM:
            raise ValueError(f"{disposition.value} goes through the cases repository")
        allowed = _DISPOSABLE_FROM[disposition]
        result = Changed()
        with self._write() as conn:
            for alert_id in dict.fromkeys(alert_ids):
                row = conn.execute("SELECT status FROM alerts WHERE id = ?", (alert_id,)).fetchone()
                if row is None:
                    result.skipped[alert_id] = "no such alert"
                    continue
                if row["status"] not in allowed:
                    result.skipped[alert_id] = f"already decided ({row['status'].replace('_', ' ')})"
                    continue
                conn.execute(
                    "UPDATE alerts SET status = ?, disposition = ?, disposition_reason = ?, disposed_by = ?,"
                    " disposed_at = ?, triaged_at = COALESCE(triaged_at, ?) WHERE id = ?",
                    (disposition.status.value, disposition.value, reason or None, actor, ts(at), ts(at), alert_id),
                )
                add_triage_event(conn, alert_id, at, actor, "disposed", _disposed_detail(disposition, reason))
                result.changed.append(alert_id)
            if fanout_for is not None and result.changed:
                insert_fanout(conn, fanout_for(list(result.changed)))
        return result

    def reopen_alerts(self, alert_ids: Sequence[int], reason: str, *, actor: str, at: datetime) -> Changed:
        result = Changed()
        with self._write() as conn:
            for alert_id in dict.fromkeys(alert_ids):
                row = conn.execute("SELECT status FROM alerts WHERE id = ?", (alert_id,)).fetchone()
                if row is None:
                    result.skipped[alert_id] = "no such alert"
                    continue
                if row["status"] not in _REOPENABLE:
                    result.skipped[alert_id] = f"cannot be reopened ({row['status'].replace('_', ' ')})"
                    continue
                conn.execute(
                    "UPDATE alerts SET status = 'open', disposition = NULL, disposition_reason = NULL,"
                    " disposed_by = NULL, disposed_at = NULL WHERE id = ?",
                    (alert_id,),
                )
                add_triage_event(conn, alert_id, at, actor, "reopened", f"was {row['status']}: {reason}")
                result.changed.append(alert_id)
        return result

    def record_sla_breaches(
        self, now: datetime, *, fanout_for: Callable[[list[SlaBreach]], Fanout] | None = None
    ) -> list[SlaBreach]:
        with self._write() as conn:
            rows = conn.execute(
                "SELECT a.id, a.watch_id, a.due_at, a.group_key FROM alerts a WHERE a.status = 'open'"
                " AND a.due_at <= ? AND NOT EXISTS (SELECT 1 FROM sla_breaches b WHERE b.alert_id = a.id)"
                " ORDER BY a.due_at, a.id",
                (ts(now),),
            ).fetchall()
            breaches: list[SlaBreach] = []
            for r in rows:
                breach = SlaBreach(
                    alert_id=r["id"],
                    watch_id=r["watch_id"],
                    due_at=must_ts(r["due_at"]),
                    detected_at=now,
                    group_key=r["group_key"],
                )
                conn.execute(
                    "INSERT INTO sla_breaches (alert_id, watch_id, due_at, detected_at) VALUES (?, ?, ?, ?)",
                    (breach.alert_id, breach.watch_id, r["due_at"], ts(now)),
                )
                add_triage_event(conn, breach.alert_id, now, "system", "sla_breach", f"deadline {r['due_at']} passed")
                breaches.append(breach)
            if fanout_for is not None and breaches:
                insert_fanout(conn, fanout_for(breaches))
        return breaches

    def fan_out_new_alerts(
        self,
        keyer: GroupKeyer,
        fanout_for: Callable[[list[tuple[AlertView, str, bool]]], Fanout],
        *,
        limit: int = 500,
    ) -> int:
        with self._write() as conn:
            # read and moved in one transaction: two processes never announce the same alerts
            row = conn.execute(
                "SELECT value FROM meta WHERE key = ?" + self.dialect.lock_rows, (FANOUT_CURSOR,)
            ).fetchone()
            cursor = int(row[0]) if row is not None else 0
            views = self.list_alerts(after_id=cursor, limit=limit)
            if not views:
                return 0
            batch: list[tuple[AlertView, str, bool]] = []
            for view in views:
                alert_id = view.alert.id or 0
                stored = conn.execute("SELECT group_key FROM alerts WHERE id = ?", (alert_id,)).fetchone()[0]
                key = stored or (fallback_group_key(alert_id) if view.post is None else keyer(view.post.text))
                if stored is None:
                    conn.execute("UPDATE alerts SET group_key = ? WHERE id = ?", (key, alert_id))
                earlier = conn.execute(
                    "SELECT 1 FROM alerts WHERE watch_id = ? AND group_key = ? AND id < ? AND status = 'open' LIMIT 1",
                    (view.alert.watch_id, key, alert_id),
                ).fetchone()
                batch.append((view, key, earlier is None))
            insert_fanout(conn, fanout_for(batch))
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (FANOUT_CURSOR, str(views[-1].alert.id or cursor)),
            )
        return len(views)

    # ------------------------------------------------------------------ figures
    def watch_figures(self, now: datetime, *, since: datetime | None = None) -> list[WatchFigures]:
        window = " AND a.created_at >= ?" if since is not None else ""
        args: list[Any] = [ts(now)] + ([ts(since)] if since is not None else [])
        rows = self._conn.execute(
            "SELECT w.id, w.name, w.severity, w.sla_minutes, COUNT(a.id) AS alerts,"
            f" {count_if(_OPEN)} AS open,"
            f" {count_if('a.triaged_at IS NOT NULL')} AS triaged,"
            f" {count_if('a.disposition IS NOT NULL')} AS decided,"
            f" {count_if('a.triaged_at IS NOT NULL AND a.triaged_at <= a.due_at')} AS met,"
            f" {count_if(_MISSED.format(p='a.'))} AS missed,"
            f" {count_if(_FALSE_POSITIVE)} AS fp"
            f" FROM watches w LEFT JOIN alerts a ON a.watch_id = w.id{window}"
            " GROUP BY w.id ORDER BY w.name",
            args,
        ).fetchall()
        durations: dict[int, list[float]] = {}
        timing = self._conn.execute(
            "SELECT a.watch_id, a.created_at, a.triaged_at FROM alerts a WHERE a.triaged_at IS NOT NULL" + window,
            args[1:],
        )
        for r in timing:
            seconds = (must_ts(r["triaged_at"]) - must_ts(r["created_at"])).total_seconds()
            durations.setdefault(r["watch_id"], []).append(max(0.0, seconds))
        figures = []
        for r in rows:
            spans = sorted(durations.get(r["id"], []))
            figures.append(
                WatchFigures(
                    watch_id=r["id"],
                    watch_name=r["name"],
                    severity=Severity(r["severity"]),
                    sla_minutes=r["sla_minutes"],
                    alerts=r["alerts"],
                    open=r["open"],
                    triaged=r["triaged"],
                    decided=r["decided"],
                    median_time_to_triage_s=statistics.median(spans) if spans else None,
                    p90_time_to_triage_s=_percentile(spans, 0.9),
                    sla_met=r["met"],
                    sla_missed=r["missed"],
                    false_positives=r["fp"],
                )
            )
        return figures

    def floor_counts(self, now: datetime) -> FloorCounts:
        row = self._conn.execute(
            """SELECT
                 (SELECT COUNT(*) FROM alerts WHERE status = 'open') AS open_alerts,
                 (SELECT COUNT(*) FROM (SELECT 1 FROM alerts WHERE status = 'open'
                     GROUP BY watch_id, COALESCE(group_key, 'alert:' || id)) AS g) AS queue_items,
                 (SELECT COUNT(*) FROM alerts WHERE status = 'open' AND assignee IS NULL) AS unassigned,
                 (SELECT COUNT(*) FROM alerts WHERE status = 'open' AND due_at <= :now) AS overdue,
                 (SELECT COUNT(*) FROM alerts WHERE status = 'open' AND due_at > :now AND due_at <= :soon)
                     AS due_soon,
                 (SELECT COUNT(*) FROM sla_breaches WHERE detected_at >= :day) AS breaches_24h,
                 (SELECT COUNT(*) FROM alerts WHERE created_at >= :hour) AS new_1h,
                 (SELECT COUNT(*) FROM cases WHERE status IN ('open', 'on_hold')) AS open_cases""",
            {
                "now": ts(now),
                "soon": ts(now + DUE_SOON),
                "day": ts(now - timedelta(days=1)),
                "hour": ts(now - timedelta(hours=1)),
            },
        ).fetchone()
        return FloorCounts(**{k: row[k] for k in row.keys()})  # noqa: SIM118 (Row iterates values)

    def alert_volume(self, since: datetime, bucket_s: int) -> list[tuple[datetime, int]]:
        bucket = self.dialect.floor_int(f"{self.dialect.seconds_between('created_at', ':since')} / :bucket")
        rows = self._conn.execute(
            f"SELECT {bucket} AS b, COUNT(*) AS n FROM alerts WHERE created_at >= :since GROUP BY b",
            {"since": ts(since), "bucket": bucket_s},
        )
        counts = {int(r["b"]): int(r["n"]) for r in rows}
        last = max(counts, default=-1)
        return [(since + timedelta(seconds=i * bucket_s), counts.get(i, 0)) for i in range(last + 1)]

    def recent_breaches(self, *, limit: int = 20) -> list[tuple[SlaBreach, AlertView]]:
        rows = self._conn.execute(
            "SELECT b.*, a.group_key FROM sla_breaches b JOIN alerts a ON a.id = b.alert_id"
            " ORDER BY b.detected_at DESC, b.alert_id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        out: list[tuple[SlaBreach, AlertView]] = []
        for r in rows:
            view = self.get_alert(r["alert_id"])
            if view is not None:
                breach = SlaBreach(
                    alert_id=r["alert_id"],
                    watch_id=r["watch_id"],
                    due_at=must_ts(r["due_at"]),
                    detected_at=must_ts(r["detected_at"]),
                    group_key=r["group_key"],
                )
                out.append((breach, view))
        return out


def _disposed_detail(disposition: Disposition, reason: str) -> str:
    label = disposition.value.replace("_", " ")
    return f"{label}: {reason}" if reason else label


def _percentile(sorted_values: list[float], q: float) -> float | None:
    """The nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * q // 1))
    return sorted_values[int(rank) - 1]


def _triage_from_row(row: Row) -> TriageState:
    return TriageState(
        alert_id=row["id"],
        group_key=row["group_key"],
        assignee=row["assignee"],
        assigned_at=parse_ts(row["assigned_at"]),
        disposition=Disposition(row["disposition"]) if row["disposition"] else None,
        reason=row["disposition_reason"],
        disposed_by=row["disposed_by"],
        disposed_at=parse_ts(row["disposed_at"]),
        case_id=row["case_id"],
        breached_at=parse_ts(row["breached_at"]),
    )


__all__ = ["FANOUT_CURSOR", "SQLTriageMixin", "add_triage_event", "fallback_group_key"]
