"""SLA clocks: every alert is due ``sla_minutes`` (its watch's) after it was raised. An alert
still open at its deadline is a *breach*: recorded once, with a line in the alert's history,
and escalated to every supervisor (in-app) and to the notification rules that ask for
``sla_breach`` — all in one transaction, so a breach is never recorded without its
escalation nor escalated twice.

The checker reads time only through its ``clock``, so tests move time instead of waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from watchfloor.model import AlertView, Role, SlaBreach, utcnow
from watchfloor.notify.plan import breach_fanout
from watchfloor.store import Store
from watchfloor.store.notify_repo import Fanout
from watchfloor.triage.grouping import group_key

log = logging.getLogger(__name__)


def time_left_s(due_at: datetime, now: datetime) -> float:
    """Seconds until the deadline (negative once it has passed)."""
    return (due_at - now).total_seconds()


class SlaChecker:
    def __init__(
        self,
        store: Store,
        *,
        clock: Callable[[], datetime] = utcnow,
        public_url: str = "",
        on_breach: Callable[[list[SlaBreach]], None] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.public_url = public_url
        self.on_breach = on_breach

    def check_once(self) -> list[SlaBreach]:
        """Record (and escalate) every breach not recorded yet; returns the new ones."""
        now = self.clock()
        self.store.fill_group_keys(group_key)  # near-duplicates breaching together are escalated once
        rules = self.store.list_notification_rules()
        supervisors = sorted(u for u, r in self.store.account_roles().items() if r == Role.supervisor)

        def fanout_for(breaches: list[SlaBreach]) -> Fanout:
            views: dict[int, AlertView] = {}
            for b in breaches:
                view = self.store.get_alert(b.alert_id)
                if view is not None:
                    views[b.alert_id] = view
            return breach_fanout(rules, breaches, views, supervisors, public_url=self.public_url, now=now)

        breaches = self.store.record_sla_breaches(now, fanout_for=fanout_for)
        if breaches and self.on_breach is not None:
            self.on_breach(breaches)
        return breaches

    async def run(self, stop: asyncio.Event, *, every_s: float = 15.0) -> None:
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.check_once)
            except Exception:
                log.exception("SLA check failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every_s)
