"""After a micro-batch commits: give its new alerts their near-duplicate key and write
their notifications — outside the pipeline's hot path.

The pipeline's ``on_commit`` callback only sets an event; a background task then calls
:meth:`NewAlertFanout.run_once` in a thread. Progress is a cursor in the store, moved in
the same transaction as the notifications, so a crash neither loses nor repeats one, and
alerts committed by another process are picked up too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from watchfloor.model import AlertView, utcnow
from watchfloor.notify.plan import new_alert_fanout
from watchfloor.store import Store
from watchfloor.store.notify_repo import Fanout
from watchfloor.triage.grouping import group_key

log = logging.getLogger(__name__)


class NewAlertFanout:
    def __init__(self, store: Store, *, clock: Callable[[], datetime] = utcnow, public_url: str = "") -> None:
        self.store = store
        self.clock = clock
        self.public_url = public_url
        self.wake = asyncio.Event()

    def run_once(self, *, limit: int = 500) -> int:
        """Handle every alert committed since the last run; returns how many."""
        rules = self.store.list_notification_rules()
        now = self.clock()

        def fanout_for(batch: list[tuple[AlertView, str, bool]]) -> Fanout:
            return new_alert_fanout(rules, batch, public_url=self.public_url, now=now)

        total = 0
        while True:
            n = self.store.fan_out_new_alerts(group_key, fanout_for, limit=limit)
            total += n
            if n < limit:
                return total

    async def run(
        self, stop: asyncio.Event, *, poll_s: float = 2.0, on_done: Callable[[int], None] | None = None
    ) -> None:
        while not stop.is_set():
            self.wake.clear()
            try:
                n = await asyncio.to_thread(self.run_once)
                if n and on_done is not None:
                    on_done(n)
            except Exception:
                log.exception("fan-out of new alerts failed")
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED), timeout=poll_s)
            for w in waiters:
                w.cancel()
