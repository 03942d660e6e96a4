"""Deliver the outbox: webhooks and e-mails, at least once, retried with growing pauses.

A message is tried when due; a failure schedules the next attempt after 10 s, 30 s,
2 min, 10 min, 30 min, 1 h and 2 h, and after the eighth failed attempt it is given up
(it stays in the outbox with its last error, shown on the notifications page). A
receiver sees the same ``X-Watchfloor-Delivery`` id on every retry of one message.

The dispatcher runs as a background task of the embedded process and never blocks the
pipeline: the store calls and SMTP run in threads, webhooks on an async HTTP client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from watchfloor.model import NotificationChannel, OutboxMessage, utcnow
from watchfloor.notify.config import NotifySettings
from watchfloor.notify.mail import build_email, send_email
from watchfloor.notify.webhook import DeliveryError, post_webhook
from watchfloor.store import Store

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

RETRY_DELAYS = (
    timedelta(seconds=10),
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
    timedelta(hours=2),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1


@dataclass(slots=True)
class DeliveryReport:
    delivered: int = 0
    retrying: int = 0
    given_up: int = 0


def next_attempt(attempts_before: int, now: datetime) -> datetime | None:
    """When to try again after the ``attempts_before + 1``-th attempt failed (None: give up)."""
    if attempts_before + 1 >= MAX_ATTEMPTS:
        return None
    return now + RETRY_DELAYS[attempts_before]


class Dispatcher:
    def __init__(
        self,
        store: Store,
        settings: NotifySettings,
        *,
        clock: Callable[[], datetime] = utcnow,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self._transport = transport
        self.wake = asyncio.Event()

    async def deliver_due(self, *, limit: int = 50) -> DeliveryReport:
        """Try every message that is due now, once."""
        report = DeliveryReport()
        messages = await asyncio.to_thread(self.store.due_outbox, self.clock(), limit=limit)
        if not messages:
            return report
        import httpx  # only when there is something to send: keeps `watchfloor run` quick to start

        async with httpx.AsyncClient(
            timeout=self.settings.webhook_timeout_s, follow_redirects=False, transport=self._transport
        ) as client:
            for message in messages:
                await self._attempt(client, message, report)
        return report

    async def _attempt(self, client: httpx.AsyncClient, message: OutboxMessage, report: DeliveryReport) -> None:
        now = self.clock()
        try:
            if message.channel == NotificationChannel.webhook:
                rule = await asyncio.to_thread(self.store.get_notification_rule, message.rule_id)
                if rule is None or not rule.secret:
                    raise DeliveryError("the notification rule was deleted", permanent=True)
                await post_webhook(client, message, rule.secret, now)
            elif message.channel == NotificationChannel.email:
                mail = build_email(message, self.settings.smtp_from)
                await asyncio.to_thread(send_email, self.settings, mail)
            else:
                raise DeliveryError(f"nothing delivers {message.channel.value!r} messages", permanent=True)
        except DeliveryError as exc:
            retry_at = None if exc.permanent else next_attempt(message.attempts, now)
            await asyncio.to_thread(self.store.mark_attempt_failed, message.id or 0, now, str(exc), retry_at)
            if retry_at is None:
                report.given_up += 1
                log.warning("gave up on notification %s to %s: %s", message.id, message.target, exc)
            else:
                report.retrying += 1
            return
        await asyncio.to_thread(self.store.mark_delivered, message.id or 0, now)
        report.delivered += 1

    async def run(self, stop: asyncio.Event, *, poll_s: float = 2.0) -> None:
        """Deliver until ``stop``: whenever woken (new messages) and every ``poll_s`` (retries)."""
        while not stop.is_set():
            self.wake.clear()
            try:
                await self.deliver_due()
            except Exception:  # the floor keeps running whatever a receiver does
                log.exception("notification delivery failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_first(stop, self.wake), timeout=poll_s)


async def _first(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
