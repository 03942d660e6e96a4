"""The watch floor's background work in the embedded process, next to the pipeline:

- the fan-out of new alerts (near-duplicate keys, notifications), woken after each commit;
- the SLA checker (every ``sla_check_s``, 15 s by default);
- the notification dispatcher (webhooks and e-mail from the outbox, with retries).

    floor = FloorTasks.start(settings, store, pipeline)   # in run_embedded
    ...
    await floor.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from watchfloor.config import Settings
from watchfloor.model import utcnow
from watchfloor.notify.config import NotifySettings, load_notify_settings
from watchfloor.notify.dispatch import Dispatcher
from watchfloor.pipeline.runner import Pipeline
from watchfloor.store import IngestResult, Store
from watchfloor.triage.fanout import NewAlertFanout
from watchfloor.triage.sla import SlaChecker


@dataclass
class FloorTasks:
    fanout: NewAlertFanout
    sla: SlaChecker
    dispatcher: Dispatcher
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        settings: Settings,
        store: Store,
        pipeline: Pipeline | None = None,
        *,
        notify: NotifySettings | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> FloorTasks:
        notify = notify or load_notify_settings(settings)
        dispatcher = Dispatcher(store, notify, clock=clock)
        fanout = NewAlertFanout(store, clock=clock, public_url=notify.public_url)
        sla = SlaChecker(store, clock=clock, public_url=notify.public_url, on_breach=lambda _: dispatcher.wake.set())
        floor = cls(fanout=fanout, sla=sla, dispatcher=dispatcher)
        if pipeline is not None:
            pipeline.on_commit.append(floor.committed)
        floor.tasks = [
            asyncio.create_task(
                fanout.run(floor.stopping, on_done=lambda _: dispatcher.wake.set()), name="floor:fanout"
            ),
            asyncio.create_task(sla.run(floor.stopping, every_s=notify.sla_check_s), name="floor:sla"),
            asyncio.create_task(dispatcher.run(floor.stopping), name="floor:notify"),
        ]
        return floor

    def committed(self, result: IngestResult) -> None:
        """Pipeline.on_commit: cheap, on the event loop; the work happens in the fan-out task."""
        if result.alerts_added:
            self.fanout.wake.set()

    async def stop(self) -> None:
        self.stopping.set()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=10)
