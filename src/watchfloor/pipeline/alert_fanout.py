"""New-alert announcements across processes, so every web process's live feed wakes at once.

The processes that commit alerts (``watchfloor worker``, or ``watchfloor run`` without its
own web UI) announce the highest alert id after each commit that added alerts; every
``watchfloor web`` process follows the announcements and publishes them on its in-process
:class:`~watchfloor.pipeline.notify.AlertSignal`, which its server-sent event streams wait
on. An announcement is a wake-up, never data: the streams always read the alerts from the
store, so a lost announcement costs at most the one-second poll the streams fall back to.

Which channel (:func:`alert_fanout_for`):

| bus | store | channel |
|---|---|---|
| ``nats://`` | any | core NATS subject ``<prefix>.alerts`` |
| ``memory://`` | PostgreSQL | ``NOTIFY watchfloor_alerts`` / ``LISTEN`` on the store's server |
| ``memory://`` | SQLite | none: one process, or web processes poll every second |
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from watchfloor.pipeline.bus import Bus
from watchfloor.sources.backoff import Backoff
from watchfloor.store import IngestResult

log = logging.getLogger(__name__)

PG_CHANNEL = "watchfloor_alerts"


class AlertFanout(Protocol):
    async def start(self) -> None: ...

    async def announce(self, latest_alert_id: int) -> None:
        """Best effort: a failure is logged, never raised (the commit already happened)."""
        ...

    async def follow(self, callback: Callable[[int], None]) -> None:
        """From now on, ``callback(latest_alert_id)`` for every announcement."""
        ...

    async def close(self) -> None: ...


class BusAlertFanout:
    """Announcements on the bus (``<prefix>.alerts`` on NATS)."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    async def start(self) -> None:
        await self.bus.connect()

    async def announce(self, latest_alert_id: int) -> None:
        await self.bus.announce_alerts(latest_alert_id)

    async def follow(self, callback: Callable[[int], None]) -> None:
        await self.bus.follow_alerts(callback)

    async def close(self) -> None:
        return None  # the bus belongs to the caller


class PostgresAlertFanout:
    """``NOTIFY``/``LISTEN`` on the PostgreSQL server the store uses (its own connections)."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self._notify: object | None = None
        self._callbacks: list[Callable[[int], None]] = []
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        return None  # connections are opened when first needed, and again after a failure

    async def announce(self, latest_alert_id: int) -> None:
        import psycopg

        try:
            if self._notify is None:
                self._notify = await psycopg.AsyncConnection.connect(self.db_url, autocommit=True)
            await self._notify.execute("SELECT pg_notify(%s, %s)", (PG_CHANNEL, str(latest_alert_id)))  # type: ignore[attr-defined]
        except psycopg.Error as exc:
            log.warning("cannot announce new alerts with NOTIFY (%s); web processes poll meanwhile", exc)
            with contextlib.suppress(Exception):
                await self._notify.close()  # type: ignore[union-attr]
            self._notify = None

    async def follow(self, callback: Callable[[int], None]) -> None:
        self._callbacks.append(callback)
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="alerts:listen")

    async def _listen(self) -> None:
        import psycopg

        backoff = Backoff(base_s=0.5, cap_s=10.0)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.db_url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {PG_CHANNEL}")
                    backoff.reset()
                    async for note in conn.notifies():
                        try:
                            latest = int(note.payload)
                        except ValueError:
                            continue
                        for callback in list(self._callbacks):
                            callback(latest)
            except psycopg.Error as exc:
                delay = backoff.next_delay()
                log.warning("LISTEN %s failed (%s); again in %.1f s", PG_CHANNEL, exc, delay)
                await asyncio.sleep(delay)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        if self._notify is not None:
            with contextlib.suppress(Exception):
                await self._notify.close()  # type: ignore[attr-defined]


class Announcer:
    """Announces committed alerts from a pipeline's ``on_commit`` (a plain callback on the
    event loop) in the background: commits are never held up by an announcement, and a
    burst of commits is one announcement of the highest id."""

    def __init__(self, fanout: AlertFanout) -> None:
        self.fanout = fanout
        self._latest = 0
        self._sent = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Announcer:
        self._task = asyncio.create_task(self._run(), name="alerts:announce")
        return self

    def committed(self, result: IngestResult) -> None:
        if result.alerts_added:
            self._latest = max(self._latest, *(a.id or 0 for a in result.alerts_added))
            self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._latest > self._sent:
                self._sent = self._latest
                await self.fanout.announce(self._sent)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.fanout.close()


def alert_fanout_for(db_url: str, bus: Bus | None) -> AlertFanout | None:
    """The channel for this deployment (see the table above), or None."""
    if bus is not None and bus.durable:
        return BusAlertFanout(bus)
    if db_url.startswith(("postgresql://", "postgres://")):
        return PostgresAlertFanout(db_url)
    return None
