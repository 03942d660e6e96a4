"""``watchfloor worker``: consume raw events from the bus, process them, commit, then acknowledge.

    bus.subscribe(platform, group).fetch(batch_size)          one loop per platform
        ──► EventProcessor.process_events   (normalise → match → score → seal → signals: the
                                             same stage as ``watchfloor run``, pipeline/processing.py)
        ──► store.commit_batch              (one per source in the fetched batch)
        ──► ack every message               (only after the commits returned)
        ──► announce the new alerts         (bus: web processes wake their live streams)

Any number of workers on any number of machines share the work: they subscribe with the
same group name (JetStream: the same durable consumer), and the bus hands each message to
one of them. A worker that dies before its commit returned acknowledges nothing, so its
messages are delivered again after ``ack_wait`` (to it or another worker); one that dies
after the commit but before the acks makes the bus deliver committed events again, which
the store's idempotent keys make harmless (posts and alerts are stored once).

Failures, and what happens to the messages:

- **the store is unavailable** (locked, full, restarting: pipeline/store_retry.py): the
  worker keeps the messages, tells the bus it is still working on them (``in_progress``,
  so ``ack_wait`` does not run out) and retries the commit with backoff. Nothing is
  redelivered and nothing becomes a dead letter because of the store;
- **processing or the commit fails otherwise** (a bug, data the store refuses): a batch is
  split into single messages so one bad message cannot hold back the others; a message
  that fails is negatively acknowledged with a growing delay. Messages delivered before
  (``attempt > 1``) are processed one at a time for the same reason;
- **a message fails its last delivery** (``attempt == max_deliver``): it is a dead letter:
  recorded in the store's dead-letter table with the reason, copied to the bus's
  dead-letter subject (``<prefix>.dead.<platform>``), then terminated. If the worker died
  on that last delivery, the bus announces the message and a live worker records it the
  same way (:meth:`Bus.follow_exhausted`);
- **malformed input** is not a failure: the normaliser's reason goes to the dead-letter
  table in the same commit as the rest of the batch, as in ``watchfloor run``.

Stopping (SIGTERM, SIGINT): each loop finishes the batch it holds (process, commit, ack)
and stops fetching. Watches are reloaded while running, as in the embedded pipeline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from watchfloor.model import DeadLetter, RawEvent
from watchfloor.pipeline.bus import Bus, BusError, Delivery, Subscription
from watchfloor.pipeline.metrics import BusMetrics
from watchfloor.pipeline.notify import AlertSignal
from watchfloor.pipeline.processing import EventProcessor, PipelineStats
from watchfloor.pipeline.store_retry import StoreRetry, StoreStillUnavailable
from watchfloor.pipeline.watchset_cache import WatchSetCache
from watchfloor.signals.stage import stage_for
from watchfloor.sources.backoff import Backoff
from watchfloor.sources.base import Normaliser
from watchfloor.store import IngestBatch, IngestResult, Store

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_GROUP = "workers"
STOP_GRACE_S = 10.0  # after a stop, how long a commit is still retried before its messages are handed back
PENDING_EVERY_S = 5.0
NAK_DELAYS_S = (1.0, 5.0, 15.0, 30.0, 60.0)  # by attempt: failed messages come back later each time


class _Stopped(Exception):
    """The worker is stopping and the store is still unavailable: hand the messages back."""


class Worker:
    """Consumes the platforms of ``normalisers`` from ``bus`` as one member of ``group``."""

    def __init__(
        self,
        bus: Bus,
        store: Store,
        normalisers: Mapping[str, Normaliser],
        *,
        group: str = DEFAULT_GROUP,
        batch_size: int = 500,
        fetch_timeout_s: float = 1.0,
        watch_check_s: float = 0.5,
        metrics: BusMetrics | None = None,
        alert_signal: AlertSignal | None = None,
        nak_delays_s: tuple[float, ...] = NAK_DELAYS_S,
    ) -> None:
        if not normalisers:
            raise ValueError("a worker needs at least one platform to consume")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.bus = bus
        self.store = store
        self.group = group
        self.batch_size = batch_size
        self.fetch_timeout_s = fetch_timeout_s
        self.metrics = metrics or BusMetrics(process=False)
        self.alert_signal = alert_signal
        self.nak_delays_s = nak_delays_s or NAK_DELAYS_S
        self.stats = PipelineStats()
        self.watch_sets = WatchSetCache(store, check_every_s=watch_check_s)
        self.signals = stage_for(store)
        # Run on every batch before it is committed (governance seals the matched authors here).
        self.before_commit: list[Callable[[IngestBatch], None]] = []
        self.on_commit: list[Callable[[IngestResult], None]] = []
        self.processors: dict[str, EventProcessor] = {}
        for platform, normaliser in normalisers.items():
            processor = EventProcessor(
                normaliser, store, watch_sets=self.watch_sets, signals=self.signals, stats=self.stats
            )
            processor.before_commit = self.before_commit  # one list: hooks added later apply too
            self.processors[platform] = processor
        self.pending: dict[str, int | None] = dict.fromkeys(self.processors)
        self.last_commit_at: float | None = None  # unix time
        self.redeliveries = 0
        self.store_retries = 0
        self.failed_dead_letters = 0
        self._processing = asyncio.Lock()  # the processors share the watch set: one batch at a time
        self._stop = asyncio.Event()
        self._stopped_at: float | None = None
        self.store_retry = StoreRetry(
            f"worker {group}",
            stop_grace_s=STOP_GRACE_S,
            on_retry=self._store_retried,
            stopping=lambda: self._stopped_at is not None,
        )

    @property
    def platforms(self) -> list[str]:
        return list(self.processors)

    def state(self) -> dict[str, object]:
        """For /healthz and the tests."""
        s = self.stats
        return {
            "group": self.group,
            "platforms": self.platforms,
            "events": s.events,
            "batches": s.batches,
            "alerts": s.alerts,
            "dead_letters": s.dead_letters,
            "redeliveries": self.redeliveries,
            "store_retries": self.store_retries,
            "store_unavailable": self.store_retry.unavailable,
            "pending": self.pending,
            "last_commit_at": self.last_commit_at,
        }

    # ------------------------------------------------------------------ running
    async def run(self, stop: asyncio.Event | None = None) -> PipelineStats:
        """Consume until ``stop`` is set; every batch taken is finished first."""
        self._stop = stop = stop or asyncio.Event()
        subscriptions = await self._subscribe(stop)
        loops = [asyncio.create_task(self._consume(sub, stop), name=f"consume:{sub.platform}") for sub in subscriptions]
        lag = asyncio.create_task(self._watch_pending(subscriptions, stop), name="consumer-pending")
        stopped = asyncio.create_task(self._note_stop(stop), name="stop")
        try:
            await asyncio.gather(*loops)
        finally:
            for task in (*loops, lag, stopped):
                task.cancel()
            await asyncio.gather(*loops, lag, stopped, return_exceptions=True)
            for sub in subscriptions:
                with contextlib.suppress(Exception):
                    await sub.close()
        return self.stats

    async def _subscribe(self, stop: asyncio.Event) -> list[Subscription]:
        """Subscribe to every platform (waiting for a bus that is restarting)."""
        backoff = Backoff(base_s=0.5, cap_s=10.0)
        while True:
            try:
                await self.bus.prepare(self.platforms)
                subscriptions = [await self.bus.subscribe(p, self.group) for p in self.platforms]
                for platform in self.platforms:
                    await self.bus.follow_exhausted(platform, self.group, self._exhausted)
                return subscriptions
            except BusError as exc:
                if stop.is_set():
                    return []
                delay = backoff.next_delay()
                log.warning("cannot subscribe yet (%s); trying again in %.1f s", exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)

    async def _note_stop(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stopped_at = time.monotonic()

    async def _consume(self, sub: Subscription, stop: asyncio.Event) -> None:
        backoff = Backoff(base_s=0.5, cap_s=10.0)
        while not stop.is_set():
            try:
                deliveries = await sub.fetch(self.batch_size, self.fetch_timeout_s)
            except BusError as exc:
                delay = backoff.next_delay()
                log.warning("%s: %s; fetching again in %.1f s", sub.platform, exc, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                continue
            backoff.reset()
            if deliveries:
                await self._handle(sub.platform, deliveries)

    async def _watch_pending(self, subscriptions: list[Subscription], stop: asyncio.Event) -> None:
        while not stop.is_set():
            for sub in subscriptions:
                pending = await sub.pending()
                self.pending[sub.platform] = pending
                if pending is not None:
                    self.metrics.pending.labels(sub.platform).set(pending)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PENDING_EVERY_S)

    # ------------------------------------------------------------------ one fetched batch
    async def _handle(self, platform: str, deliveries: list[Delivery]) -> None:
        first = [d for d in deliveries if d.attempt <= 1]
        again = [d for d in deliveries if d.attempt > 1]
        if again:
            self.redeliveries += len(again)
            self.metrics.redeliveries.labels(platform).inc(len(again))
        if first:
            await self._attempt(platform, first)
        for delivery in again:  # delivered before: maybe the one that failed; alone
            await self._attempt(platform, [delivery])

    async def _attempt(self, platform: str, deliveries: list[Delivery]) -> None:
        keeper = asyncio.create_task(self._keep_alive(deliveries), name="in-progress")
        try:
            batches = await self._while_store_unavailable(
                lambda: self._process(platform, [d.event for d in deliveries])
            )
            done: list[IngestResult] = []
            results = await self._while_store_unavailable(lambda: self._commit(batches, done))
        except _Stopped:
            for d in deliveries:
                await d.nak()
            return
        except Exception as exc:  # a bug, or data the store refuses: this delivery failed
            keeper.cancel()
            if len(deliveries) > 1:
                log.warning("%s: a batch of %d failed (%s); one at a time", platform, len(deliveries), exc)
                for delivery in deliveries:
                    await self._attempt(platform, [delivery])
                return
            await self._failed(deliveries[0], f"{type(exc).__name__}: {exc}")
            return
        finally:
            keeper.cancel()
        for d in deliveries:
            await d.ack()
        try:
            await self.bus.flush()
        except BusError as exc:  # the acks go out on reconnect; if not, the events come back (idempotent)
            log.warning("%s: acknowledgements not flushed: %s", platform, exc)
        self.metrics.consumed.labels(platform).inc(len(deliveries))
        await self._committed(platform, batches, results)

    async def _process(self, platform: str, events: list[RawEvent]) -> list[IngestBatch]:
        async with self._processing:
            return await asyncio.to_thread(self._process_now, platform, events)

    def _process_now(self, platform: str, events: list[RawEvent]) -> list[IngestBatch]:
        processor = self.processors[platform]
        by_source: dict[str, list[RawEvent]] = {}
        for event in events:
            by_source.setdefault(event.source, []).append(event)
        # The ingest process owns the sources' cursors: a worker's commits leave them alone.
        return [processor.process_events(group, source=source, cursor=None) for source, group in by_source.items()]

    async def _commit(self, batches: list[IngestBatch], done: list[IngestResult]) -> list[IngestResult]:
        """Commit what is not committed yet (``done`` keeps the results across retries)."""
        while len(done) < len(batches):
            started = time.perf_counter()
            result = await asyncio.to_thread(self.store.commit_batch, batches[len(done)])
            self.metrics.commit_seconds.observe(time.perf_counter() - started)
            done.append(result)
        return done

    async def _committed(self, platform: str, batches: list[IngestBatch], results: list[IngestResult]) -> None:
        self.stats.batches += 1
        self.last_commit_at = time.time()
        self.metrics.batches.inc()
        self.metrics.last_commit.set(self.last_commit_at)
        malformed = sum(len(b.dead_letters) for b in batches)
        if malformed:
            self.metrics.dead_letters.labels(platform, "malformed").inc(malformed)
        added = [a for r in results for a in r.alerts_added]
        if added:
            self.stats.alerts += len(added)
            self.metrics.alerts.inc(len(added))
            latest = max(a.id or 0 for a in added)
            if self.alert_signal is not None:
                self.alert_signal.publish(latest)
            await self.bus.announce_alerts(latest)
        for result in results:
            for callback in self.on_commit:
                callback(result)

    async def _keep_alive(self, held: list[Delivery]) -> None:
        """While a batch is processed and committed (slowly, or retried), tell the bus every
        ``ack_wait / 3`` that it is still being worked on, so it is not delivered again."""
        every = max(0.2, self.bus.settings.ack_wait_s / 3)
        while True:
            await asyncio.sleep(every)
            for delivery in held:
                with contextlib.suppress(Exception):
                    await delivery.in_progress()
            with contextlib.suppress(Exception):
                await self.bus.flush()

    async def _while_store_unavailable(self, work: Callable[[], Awaitable[T]]) -> T:
        """``work()``, retried with backoff and jitter while the store is unavailable (the
        caller keeps its messages alive meanwhile; the outage is logged once, each retry
        counted). Raises _Stopped when a stop has waited longer than STOP_GRACE_S."""
        try:
            return await self.store_retry.call(work)
        except StoreStillUnavailable as exc:
            raise _Stopped from exc

    def _store_retried(self, exc: BaseException) -> None:
        self.store_retries += 1
        self.metrics.store_retries.inc()

    # ------------------------------------------------------------------ failures
    async def _failed(self, delivery: Delivery, reason: str) -> None:
        if delivery.attempt >= self.bus.settings.max_deliver:
            await self._dead_letter(delivery, reason)
            return
        delays = self.nak_delays_s
        delay = delays[min(delivery.attempt, len(delays)) - 1]
        log.warning(
            "%s: delivery %d of %s failed (%s); again in %.0f s",
            delivery.event.platform, delivery.attempt, delivery.msg_id, reason, delay,
        )  # fmt: skip
        await delivery.nak(delay)

    async def _exhausted(self, delivery: Delivery) -> None:
        """The bus gave up on a message whose worker died on its last delivery."""
        await self._dead_letter(delivery, "its worker stopped (crashed or was killed) on every delivery")

    async def _dead_letter(self, delivery: Delivery, reason: str) -> None:
        event = delivery.event
        why = f"failed {delivery.attempt} deliveries: {reason}"
        letter = DeadLetter.of(event, why)
        batch = IngestBatch(source=event.source, cursor=None, dead_letters=[letter])
        keeper = asyncio.create_task(self._keep_alive([delivery]), name="in-progress")
        try:
            await self._while_store_unavailable(lambda: asyncio.to_thread(self.store.commit_batch, batch))
        except Exception:
            log.exception(
                "%s: cannot record the dead letter of %s; it stays on the bus", event.platform, delivery.msg_id
            )
            with contextlib.suppress(Exception):
                await delivery.nak(self.nak_delays_s[-1])
            return
        finally:
            keeper.cancel()
        try:
            await self.bus.dead_letter(delivery, why)
        except BusError as exc:  # the store has it: the copy on the bus is for operators
            log.warning("%s: dead letter recorded, but not copied to the bus: %s", event.platform, exc)
        await delivery.term()
        with contextlib.suppress(BusError):
            await self.bus.flush()
        log.error("%s: dead letter (%s): %s", event.platform, delivery.msg_id, why)
        self.failed_dead_letters += 1
        self.stats.dead_letters += 1
        self.metrics.dead_letters.labels(event.platform, "failed").inc()
