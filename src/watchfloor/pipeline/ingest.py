"""``watchfloor ingest``: sources publish their raw events to the bus; nothing is processed here.

    source.events(cursor) ──► bus.publish (async, at most max_in_flight unconfirmed)
                                  └─► PubAcks, confirmed in the source's order
                                         └─► every cursor_every_s: the newest confirmed cursor → store

The cursor rule: the cursor of an event is saved only once that event **and every event
before it** has been confirmed by the bus (a PubAck: JetStream has it on disk, or on a
majority of its replicas). So a ``kill -9`` at any point resumes from a position no later
than the first unconfirmed event: nothing is lost. The tail after that position is
published again; the bus drops what it already has (``Nats-Msg-Id`` within its duplicate
window), and the store's idempotent keys drop anything older. The saved cursor only ever
moves forward: it is advanced from the confirmed prefix in the source's own order.

A publish that fails (refused, or no PubAck in time: a restarting server) is made again,
with backoff, before the cursor may pass it; later events keep flowing meanwhile. An
event the bus can never take (larger than its largest message) is recorded in the store's
dead letters with the reason, and the cursor moves on.

The ingest process needs no keyring: it never reads the events. The cursor shares the
store row the workers' figures are kept in (``watchfloor status``); saving it leaves those
figures as they are.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass

from watchfloor.model import DeadLetter, RawEvent
from watchfloor.pipeline.bus import Bus, BusError, EventRefused, message_id
from watchfloor.pipeline.metrics import BusMetrics
from watchfloor.pipeline.processing import PipelineStats, RateMeter
from watchfloor.pipeline.store_retry import TRANSIENT_STORE_ERRORS
from watchfloor.sources.backoff import Backoff
from watchfloor.sources.base import Source
from watchfloor.store import IngestBatch, Store

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 30.0  # on stop: how long unconfirmed publishes may still be confirmed
DEAD_LETTER_PAYLOAD = 64 * 1024  # what is kept of an event too large for the bus


@dataclass(slots=True)
class _Unconfirmed:
    event: RawEvent
    msg_id: str
    ticket: Awaitable[bool] | None  # None: the bus refused it for good (``refused`` says why)
    refused: str | None = None
    attempts: int = 1


class BusPublisher:
    """Runs one source into the bus and keeps its cursor behind the confirmed prefix."""

    def __init__(
        self,
        source: Source,
        bus: Bus,
        store: Store,
        *,
        metrics: BusMetrics | None = None,
        cursor_every_s: float | None = None,
        drain_timeout_s: float = DRAIN_TIMEOUT_S,
    ) -> None:
        if not bus.durable:
            raise BusError(f"{bus.url} does not outlive this process: ingest needs a durable bus (nats://)")
        self.source = source
        self.bus = bus
        self.store = store
        self.metrics = metrics or BusMetrics(process=False)
        self.cursor_every_s = cursor_every_s if cursor_every_s is not None else bus.settings.cursor_every_s
        self.drain_timeout_s = drain_timeout_s
        self.stats = PipelineStats()  # events: confirmed by the bus
        self.rate = RateMeter()
        self.duplicates = 0
        self.retries = 0
        self.saved_cursor: str | None = None  # in the store
        self.confirmed_cursor: str | None = None  # every event up to here is on the bus
        self._unconfirmed: deque[_Unconfirmed] = deque()
        self._arrived = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._reading = True
        self._limit = 2 * bus.settings.max_in_flight

    @property
    def in_flight(self) -> int:
        return len(self._unconfirmed)

    def state(self) -> dict[str, object]:
        """For /healthz and the tests."""
        return {
            "confirmed_cursor": self.confirmed_cursor,
            "saved_cursor": self.saved_cursor,
            "in_flight": self.in_flight,
            "published": self.stats.events,
            "duplicates": self.duplicates,
            "retries": self.retries,
        }

    async def run(self, stop: asyncio.Event | None = None) -> PipelineStats:
        """Publish until the source ends or ``stop`` is set; then confirm what is in flight
        (up to ``drain_timeout_s``) and save the cursor."""
        stop = stop or asyncio.Event()
        cursor = await asyncio.to_thread(self.store.get_cursor, self.source.name)
        self.saved_cursor = self.confirmed_cursor = cursor
        backoff = Backoff(base_s=0.5, cap_s=10.0)
        while True:  # the stream must exist before the first publish; the bus may be restarting
            try:
                await self.bus.prepare([self.source.platform])
                break
            except BusError as exc:
                if stop.is_set():
                    return self.stats
                delay = backoff.next_delay()
                log.warning("%s: %s; trying again in %.1f s", self.source.name, exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
        self._reading = True
        reader = asyncio.create_task(self._read(cursor), name=f"publish:{self.source.name}")
        confirmer = asyncio.create_task(self._confirm(), name=f"confirm:{self.source.name}")
        saver = asyncio.create_task(self._save_forever(), name=f"cursor:{self.source.name}")
        stopper = asyncio.create_task(stop.wait(), name="stop")
        try:
            await asyncio.wait({reader, stopper, confirmer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            self._reading = False
            self._arrived.set()
            try:
                await asyncio.wait_for(confirmer, timeout=self.drain_timeout_s)
            except TimeoutError:
                log.warning(
                    "%s: %d publishes still unconfirmed after %.0f s: they are published again on the next start",
                    self.source.name,
                    self.in_flight,
                    self.drain_timeout_s,
                )
            except Exception:
                log.exception("%s: confirming the last publishes failed", self.source.name)
            saver.cancel()
            stopper.cancel()
            await asyncio.gather(saver, stopper, return_exceptions=True)
            with contextlib.suppress(Exception):
                await self._save()
        if not reader.cancelled() and reader.exception() is not None:
            raise reader.exception()  # type: ignore[misc]
        return self.stats

    # ------------------------------------------------------------------ publishing
    async def _read(self, cursor: str | None) -> None:
        unconfirmed, arrived, room, limit = self._unconfirmed, self._arrived, self._room, self._limit
        async for event in self.source.events(cursor):
            msg_id = message_id(event)
            unconfirmed.append(await self._publish(event, msg_id))
            self.metrics.in_flight.set(len(unconfirmed))
            arrived.set()
            if len(unconfirmed) >= limit:  # the oldest is being retried: hold the source back
                room.clear()
                await room.wait()

    async def _publish(self, event: RawEvent, msg_id: str, attempts: int = 1) -> _Unconfirmed:
        try:
            return _Unconfirmed(event, msg_id, await self.bus.publish(event, msg_id), attempts=attempts)
        except EventRefused as exc:
            return _Unconfirmed(event, msg_id, None, refused=str(exc), attempts=attempts)
        except BusError as exc:
            failed: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            failed.set_exception(exc)
            return _Unconfirmed(event, msg_id, failed, attempts=attempts)

    async def _confirm(self) -> None:
        """Walk the unconfirmed events in the source's order; each one confirmed moves the
        confirmed cursor; a failed one is published again until it is confirmed."""
        unconfirmed, backoff = self._unconfirmed, Backoff(base_s=0.2, cap_s=10.0)
        platform = self.source.platform
        since_rate = 0
        while True:
            if not unconfirmed:
                if not self._reading:
                    return
                self._arrived.clear()
                await self._arrived.wait()
                continue
            head = unconfirmed[0]
            try:
                if head.ticket is None:
                    await self._record_refused(head)
                    stored = True
                else:
                    stored = await head.ticket
            except BusError as exc:
                self.retries += 1
                self.metrics.publish_retries.labels(platform).inc()
                delay = backoff.next_delay()
                log.warning("%s: publish failed (%s); again in %.1f s", self.source.name, exc, delay)
                await asyncio.sleep(delay)
                unconfirmed[0] = await self._publish(head.event, head.msg_id, head.attempts + 1)
                continue
            except TRANSIENT_STORE_ERRORS as exc:  # recording a refused event: the store is busy or gone
                delay = backoff.next_delay()
                log.warning("%s: cannot record a dead letter yet (%s); again in %.1f s", self.source.name, exc, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            unconfirmed.popleft()
            if len(unconfirmed) < self._limit:
                self._room.set()
            self.confirmed_cursor = head.event.cursor
            self.stats.events += 1
            if stored:
                self.metrics.published.labels(platform).inc()
            else:
                self.duplicates += 1
                self.metrics.duplicates.labels(platform).inc()
            since_rate += 1
            if not unconfirmed or since_rate >= 256:
                self.rate.add(since_rate, time.monotonic())
                since_rate = 0
                self.metrics.in_flight.set(len(unconfirmed))

    async def _record_refused(self, item: _Unconfirmed) -> None:
        event = item.event
        letter = DeadLetter(
            event.source, event.platform, f"not published: {item.refused}", event.payload[:DEAD_LETTER_PAYLOAD],
            event.received_at,
        )  # fmt: skip
        await asyncio.to_thread(
            self.store.commit_batch, IngestBatch(source=event.source, cursor=None, dead_letters=[letter])
        )
        self.stats.dead_letters += 1
        self.metrics.dead_letters.labels(event.platform, "refused").inc()

    # ------------------------------------------------------------------ the cursor
    async def _save_forever(self) -> None:
        while True:
            await asyncio.sleep(self.cursor_every_s)
            try:
                await self._save()
            except TRANSIENT_STORE_ERRORS as exc:
                log.warning("%s: cannot save the cursor yet (%s)", self.source.name, exc)

    async def _save(self) -> None:
        cursor = self.confirmed_cursor
        if cursor is None or cursor == self.saved_cursor:
            return
        await asyncio.to_thread(self._save_cursor, cursor)
        self.saved_cursor = cursor
        self.metrics.cursor_saves.labels(self.source.name).inc()

    def _save_cursor(self, cursor: str) -> None:
        # The row also holds the workers' figures (events/s, lag): written back unchanged.
        current = next((s for s in self.store.source_states() if s.source == self.source.name), None)
        self.store.commit_batch(
            IngestBatch(
                source=self.source.name,
                cursor=cursor,
                events_per_s=current.events_per_s if current is not None else 0.0,
                lag_s=current.lag_s if current is not None else None,
            )
        )
