""":class:`~watchfloor.store.notify_repo.NotificationsRepository` in the SQL that SQLite and PostgreSQL share,
mixed into :class:`~watchfloor.store.sql_store.SQLStore` (schema: 0003_triage_cases.sql)."""

from __future__ import annotations

import json
import secrets
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from watchfloor.model import (
    InboxMessage,
    NotificationChannel,
    NotificationEvent,
    NotificationRule,
    OutboxMessage,
    Severity,
)
from watchfloor.store.base import StoreError
from watchfloor.store.dialect import Connection, Dialect, Row
from watchfloor.store.notify_repo import Fanout
from watchfloor.store.rows import must_ts, parse_ts, ts

MAX_ERROR_CHARS = 500


class SQLNotificationsMixin:
    if TYPE_CHECKING:
        dialect: Dialect

        @property
        def _conn(self) -> Connection: ...

        def _write(self) -> AbstractContextManager[Connection]: ...

    # ------------------------------------------------------------------ rules
    def add_notification_rule(self, rule: NotificationRule) -> NotificationRule:
        with self._write() as conn:
            new_id = conn.execute(
                "INSERT INTO notification_rules (channel, target, events, watch_id, min_severity, include_content,"
                " secret, enabled, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    rule.channel.value,
                    rule.target,
                    json.dumps([e.value for e in rule.events]),
                    rule.watch_id,
                    rule.min_severity.value,
                    int(rule.include_content),
                    rule.secret,
                    int(rule.enabled),
                    rule.created_by,
                    ts(rule.created_at),
                ),
            ).fetchone()[0]
        stored = self.get_notification_rule(int(new_id))
        assert stored is not None
        return stored

    def get_notification_rule(self, rule_id: int) -> NotificationRule | None:
        row = self._conn.execute("SELECT * FROM notification_rules WHERE id = ?", (rule_id,)).fetchone()
        return None if row is None else _rule_from_row(row)

    def list_notification_rules(self) -> list[NotificationRule]:
        return [_rule_from_row(r) for r in self._conn.execute("SELECT * FROM notification_rules ORDER BY id")]

    def delete_notification_rule(self, rule_id: int) -> None:
        with self._write() as conn:
            if conn.execute("DELETE FROM notification_rules WHERE id = ?", (rule_id,)).rowcount == 0:
                raise StoreError(f"no notification rule with id {rule_id}")

    # ------------------------------------------------------------------ outbox and inbox
    def enqueue_notifications(self, fanout: Fanout) -> int:
        with self._write() as conn:
            return insert_fanout(conn, fanout)

    def due_outbox(self, now: datetime, *, limit: int = 50) -> list[OutboxMessage]:
        rows = self._conn.execute(
            "SELECT * FROM notification_outbox WHERE delivered_at IS NULL AND failed_at IS NULL"
            " AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?",
            (ts(now), limit),
        )
        return [_outbox_from_row(r) for r in rows]

    def list_outbox(self, *, limit: int = 50) -> list[OutboxMessage]:
        rows = self._conn.execute("SELECT * FROM notification_outbox ORDER BY id DESC LIMIT ?", (limit,))
        return [_outbox_from_row(r) for r in rows]

    def mark_delivered(self, message_id: int, at: datetime) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE notification_outbox SET delivered_at = ?, attempts = attempts + 1, last_error = NULL"
                " WHERE id = ?",
                (ts(at), message_id),
            )

    def mark_attempt_failed(self, message_id: int, at: datetime, error: str, retry_at: datetime | None) -> None:
        with self._write() as conn:
            conn.execute(
                "UPDATE notification_outbox SET attempts = attempts + 1, last_error = ?,"
                " next_attempt_at = COALESCE(?, next_attempt_at), failed_at = ? WHERE id = ?",
                (error[:MAX_ERROR_CHARS], ts(retry_at), None if retry_at is not None else ts(at), message_id),
            )

    def inbox(self, username: str, *, limit: int = 100, unread_only: bool = False) -> list[InboxMessage]:
        sql = "SELECT * FROM inbox WHERE username = ?" + (" AND read_at IS NULL" if unread_only else "")
        rows = self._conn.execute(sql + " ORDER BY id DESC LIMIT ?", (username, limit))
        return [_inbox_from_row(r) for r in rows]

    def unread_count(self, username: str) -> int:
        row = self._conn.execute("SELECT COUNT(*) FROM inbox WHERE username = ? AND read_at IS NULL", (username,))
        return int(row.fetchone()[0])

    def mark_read(self, username: str, at: datetime, message_ids: list[int] | None = None) -> int:
        with self._write() as conn:
            if message_ids is None:
                cur = conn.execute(
                    "UPDATE inbox SET read_at = ? WHERE username = ? AND read_at IS NULL", (ts(at), username)
                )
                return cur.rowcount
            changed = 0
            for message_id in message_ids:
                changed += conn.execute(
                    "UPDATE inbox SET read_at = ? WHERE username = ? AND id = ? AND read_at IS NULL",
                    (ts(at), username, message_id),
                ).rowcount
            return changed


def insert_fanout(conn: Connection, fanout: Fanout) -> int:
    """Write notifications inside the caller's transaction; repeats are ignored."""
    added = 0
    for m in fanout.inbox:
        added += conn.execute(
            "INSERT INTO inbox (username, kind, title, body, link, subject, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                m.username,
                m.kind,
                m.title,
                m.body,
                m.link,
                m.subject or f"once:{secrets.token_hex(8)}",
                ts(m.created_at),
            ),
        ).rowcount
    for o in fanout.outbox:
        added += conn.execute(
            "INSERT INTO notification_outbox (rule_id, channel, target, event, subject, payload,"
            " created_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                o.rule_id,
                o.channel.value,
                o.target,
                o.event.value,
                o.subject,
                json.dumps(o.payload, ensure_ascii=False, sort_keys=True),
                ts(o.created_at),
                ts(o.next_attempt_at),
            ),
        ).rowcount
    return added


def _rule_from_row(row: Row) -> NotificationRule:
    return NotificationRule(
        id=row["id"],
        channel=NotificationChannel(row["channel"]),
        target=row["target"],
        events=tuple(NotificationEvent(e) for e in json.loads(row["events"])),
        watch_id=row["watch_id"],
        min_severity=Severity(row["min_severity"]),
        include_content=bool(row["include_content"]),
        secret=row["secret"],
        enabled=bool(row["enabled"]),
        created_by=row["created_by"],
        created_at=must_ts(row["created_at"]),
    )


def _outbox_from_row(row: Row) -> OutboxMessage:
    payload: Any = json.loads(row["payload"])
    return OutboxMessage(
        id=row["id"],
        rule_id=row["rule_id"],
        channel=NotificationChannel(row["channel"]),
        target=row["target"],
        event=NotificationEvent(row["event"]),
        subject=row["subject"],
        payload=payload,
        created_at=must_ts(row["created_at"]),
        next_attempt_at=must_ts(row["next_attempt_at"]),
        attempts=row["attempts"],
        delivered_at=parse_ts(row["delivered_at"]),
        failed_at=parse_ts(row["failed_at"]),
        last_error=row["last_error"],
    )


def _inbox_from_row(row: Row) -> InboxMessage:
    return InboxMessage(
        id=row["id"],
        username=row["username"],
        kind=row["kind"],
        title=row["title"],
        body=row["body"],
        link=row["link"],
        subject=row["subject"],
        created_at=must_ts(row["created_at"]),
        read_at=parse_ts(row["read_at"]),
    )


__all__ = ["SQLNotificationsMixin", "insert_fanout"]
