"""The deployment's duties, held by exactly one worker at a time.

``watchfloor run`` does this background work next to its pipeline; in the scale-out
deployment one worker does it, whichever holds the bus's ``duties`` lease:

- the watch floor (triage/floor.py): new-alert fan-out (near-duplicate keys,
  notifications), the SLA checker, the notification dispatcher (webhooks, e-mail);
- governance (governance/schedule.py): watch expiry, retention, signed audit checkpoints,
  the sweep of expired sessions.

Running them twice at once would send notifications twice and race the retention runs,
so a worker starts them only while it holds the lease (renewed every ``ttl_s / 3``; a
lease its holder stopped renewing lapses after ``ttl_s`` and another worker takes over).
``watchfloor worker --no-duties`` never takes it (workers on machines without the
notification settings, or without outbound network access).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import Any

from watchfloor.config import Settings
from watchfloor.pipeline.bus import Bus
from watchfloor.store import IngestResult, Store

log = logging.getLogger(__name__)

LEASE = "duties"
TTL_S = 15.0


class DutyHolder:
    """Takes the lease when it is free and runs the duties while it holds it."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        bus: Bus,
        *,
        ttl_s: float = TTL_S,
        holder: str | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.bus = bus
        self.ttl_s = ttl_s
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}"
        self.holding = False
        self._floor: Any = None
        self._governance: Any = None

    def committed(self, result: IngestResult) -> None:
        """Worker.on_commit: wake the new-alert fan-out at once when this worker runs it
        (otherwise it polls the store every two seconds, as for other workers' commits)."""
        if self._floor is not None:
            self._floor.committed(result)

    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                held = await self.bus.acquire_lease(LEASE, self.holder, self.ttl_s)
                if held and not self.holding:
                    try:
                        await self._start()
                    except Exception:  # a broken policy or notification setting: let another worker try
                        log.exception("cannot start the duties here; releasing the lease")
                        await self._stop()
                        await self.bus.release_lease(LEASE, self.holder)
                        held = False
                elif not held and self.holding:
                    log.warning("the duties lease went to another worker: stopping the duties here")
                    await self._stop()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.ttl_s / 3)
        finally:
            if self.holding:
                await self._stop()
                await self.bus.release_lease(LEASE, self.holder)

    async def _start(self) -> None:
        from watchfloor.governance.schedule import GovernanceTasks
        from watchfloor.triage.floor import FloorTasks

        log.info("this worker (%s) runs the duties: floor fan-out, SLA, notifications, governance", self.holder)
        self._floor = FloorTasks.start(self.settings, self.store)
        self._governance = GovernanceTasks.start(self.settings, self.store)
        self.holding = True

    async def _stop(self) -> None:
        floor, governance, self._floor, self._governance = self._floor, self._governance, None, None
        self.holding = False
        for tasks in (floor, governance):
            if tasks is not None:
                with contextlib.suppress(Exception):
                    await tasks.stop()
