"""Governance's scheduled work in the embedded process:

- mark watches past their expiry as expired (they already stopped matching): every minute;
- run retention: every ``[retention] run_every_minutes``, and at least every
  ``upstream_delete_hours`` (so the stated time for upstream deletes holds);
- sign a checkpoint of the audit log when it grew: every 10 minutes;
- delete web sessions past their absolute or idle end, and stale login challenges: every
  10 minutes (a session is also refused, and deleted, the moment it is presented late).

    tasks = GovernanceTasks.start(settings, store)   # in run_embedded
    ...
    await tasks.stop()

:class:`GovernanceSchedule` decides what is due at a given time; tests drive it with a
controlled clock instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from watchfloor.config import Settings
from watchfloor.governance.keys import KeyringError
from watchfloor.governance.retention import run_retention
from watchfloor.governance.service import Governance
from watchfloor.model import utcnow
from watchfloor.store import Store

log = logging.getLogger(__name__)

EXPIRY_EVERY = timedelta(minutes=1)
CHECKPOINT_EVERY = timedelta(minutes=10)
SESSION_SWEEP_EVERY = timedelta(minutes=10)


@dataclass
class GovernanceSchedule:
    gov: Governance
    last: dict[str, datetime] = field(default_factory=dict)

    @property
    def every(self) -> dict[str, timedelta]:
        r = self.gov.policy.retention
        retention = min(timedelta(minutes=r.run_every_minutes), timedelta(hours=r.upstream_delete_hours))
        return {
            "expire_watches": EXPIRY_EVERY,
            "retention": retention,
            "checkpoint": CHECKPOINT_EVERY,
            "sweep_sessions": SESSION_SWEEP_EVERY,
        }

    def due(self, now: datetime) -> list[str]:
        return [job for job, every in self.every.items() if job not in self.last or now - self.last[job] >= every]

    def tick(self) -> dict[str, object]:
        """Run what is due now (by the governance clock); returns what each job did."""
        now = self.gov.now()
        done: dict[str, object] = {}
        for job in self.due(now):
            try:
                done[job] = getattr(self, f"_{job}")()
            except Exception as exc:  # keep the other jobs (and the next tick) going
                log.exception("governance job %s failed", job)
                done[job] = exc
            self.last[job] = now
        return done

    def _expire_watches(self) -> int:
        return len(self.gov.watches.expire_due())

    def _retention(self) -> int:
        return run_retention(self.gov).total

    def _sweep_sessions(self) -> int:
        return self.gov.store.delete_expired_sessions(self.gov.now())

    def _checkpoint(self) -> int | None:
        size, _ = self.gov.store.audit_head()
        checkpoints = self.gov.store.list_checkpoints()
        if checkpoints and checkpoints[-1].tree_size >= size:
            return None
        try:
            key = self.gov.keyring.signing_key()
        except KeyringError:
            log.warning("no audit signing key: run `watchfloor init` to create one")
            return None
        return self.gov.audit.checkpoint(key).tree_size


@dataclass
class GovernanceTasks:
    schedule: GovernanceSchedule | None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @classmethod
    def start(
        cls,
        settings: Settings,
        store: Store,
        *,
        clock: Callable[[], datetime] = utcnow,
        tick_s: float = 30.0,
    ) -> GovernanceTasks:
        try:
            gov = Governance.open(settings, store, clock=clock)
        except Exception:
            log.exception("governance tasks cannot start: retention and watch expiry are NOT running")
            return cls(schedule=None)
        tasks = cls(schedule=GovernanceSchedule(gov))
        tasks.task = asyncio.create_task(tasks._run(tick_s), name="governance")
        return tasks

    async def _run(self, tick_s: float) -> None:
        assert self.schedule is not None
        while not self.stopping.is_set():
            await asyncio.to_thread(self.schedule.tick)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=tick_s)

    async def stop(self) -> None:
        self.stopping.set()
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self.task, timeout=10)
