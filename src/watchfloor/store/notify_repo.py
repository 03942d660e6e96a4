"""The part of the repository that keeps notifications: rules, the outbox, in-app inboxes.

:class:`~watchfloor.store.base.Store` includes this protocol. Notifications are written
in the same transaction as what caused them (a new alert's fan-out, an SLA breach, an
escalation) through a :class:`Fanout`, then delivered by ``watchfloor.notify.dispatch``
from the outbox, at least once, with retries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from watchfloor.model import InboxMessage, NotificationRule, OutboxMessage


@dataclass(slots=True)
class Fanout:
    """Notifications to write together with the change that caused them."""

    inbox: list[InboxMessage] = field(default_factory=list)
    outbox: list[OutboxMessage] = field(default_factory=list)

    def extend(self, other: Fanout) -> None:
        self.inbox.extend(other.inbox)
        self.outbox.extend(other.outbox)


class NotificationsRepository(Protocol):
    # ---------------------------------------------------------------- rules
    def add_notification_rule(self, rule: NotificationRule) -> NotificationRule: ...

    def get_notification_rule(self, rule_id: int) -> NotificationRule | None: ...

    def list_notification_rules(self) -> list[NotificationRule]: ...

    def delete_notification_rule(self, rule_id: int) -> None:
        """Forget a rule (StoreError if there is none); undelivered messages for it stay."""
        ...

    # ---------------------------------------------------------------- outbox and inbox
    def enqueue_notifications(self, fanout: Fanout) -> int:
        """Write the fan-out; repeats of a (rule, event, subject) are ignored. Returns rows added."""
        ...

    def due_outbox(self, now: datetime, *, limit: int = 50) -> list[OutboxMessage]:
        """Undelivered, not given-up messages whose next attempt is due, oldest first."""
        ...

    def list_outbox(self, *, limit: int = 50) -> list[OutboxMessage]:
        """The newest messages, any state (for the notifications page)."""
        ...

    def mark_delivered(self, message_id: int, at: datetime) -> None: ...

    def mark_attempt_failed(self, message_id: int, at: datetime, error: str, retry_at: datetime | None) -> None:
        """Count a failed attempt; ``retry_at`` None gives up for good."""
        ...

    def inbox(self, username: str, *, limit: int = 100, unread_only: bool = False) -> list[InboxMessage]: ...

    def unread_count(self, username: str) -> int: ...

    def mark_read(self, username: str, at: datetime, message_ids: list[int] | None = None) -> int:
        """Mark these (or all) of the user's messages read; returns how many changed."""
        ...
