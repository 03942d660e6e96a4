"""Runs one source through the pipeline in micro-batches.

    source.events(cursor) --queue--> batch --> normalise --> match --> score --> seal   (prepare)
        --> signals of the matched posts, rescore                                      (finish)
        --> store.commit_batch(posts, alerts, deletions, dead letters, cursor)  (one transaction)
        --> signal.publish(latest alert id)

Batch N+1 is prepared while batch N is finished and committed (and, with the signals'
helper process, while N's per-text signals are computed on another core). With a match
helper (pipeline/match_process.py), the preparing itself — normalise, match, score, seal —
runs in another process, and this one reads the source, adds the signals and commits.

The cursor of the last event in a batch is committed in the same transaction as the
batch's data, so a crash at any point resumes from the last commit: nothing acknowledged
is lost, and the idempotent keys of posts and alerts make the replayed tail harmless.

When the store is unavailable (SQLite locked or its disk full, PostgreSQL restarting:
:class:`~watchfloor.store.StoreUnavailable`), the commit is retried with backoff and
jitter (pipeline/store_retry.py) and the batch is kept; meanwhile the queue fills and the
reader stops taking events from the source (backpressure), so nothing is dropped and
nothing is read that could not be kept. The outage is logged once, counted in
``stats.store_retries`` and noted in the source's health (an error). A stop during an
outage waits ``STOP_GRACE_S`` for the store, then gives the batch up: its cursor was not
committed, so the next start reads it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime

from watchfloor.config import DEFAULT_BATCH_INTERVAL_S, DEFAULT_BATCH_SIZE
from watchfloor.model import RawEvent, utcnow
from watchfloor.pipeline import gc_pauses
from watchfloor.pipeline.match_process import MatchedBatch, MatchProcess, MatchRecipe, recipe_for
from watchfloor.pipeline.notify import AlertSignal
from watchfloor.pipeline.processing import MAX_IGNORED_KINDS, EventProcessor, PipelineStats, PreparedBatch, RateMeter
from watchfloor.pipeline.store_retry import StoreRetry, StoreStillUnavailable
from watchfloor.sources.base import Normaliser, Source
from watchfloor.sources.health import SourceHealth
from watchfloor.store import IngestBatch, IngestResult, Store

log = logging.getLogger(__name__)

__all__ = ["MAX_IGNORED_KINDS", "Pipeline", "PipelineStats", "RateMeter"]

_END = object()  # the source's iterator ended
MAX_IN_FLIGHT = 3  # batches handed to the match helper and not yet committed
STOP_GRACE_S = 10.0  # after a stop, how long a commit is still retried while the store is unavailable


def _retrieved(future: asyncio.Future[object]) -> None:
    if not future.cancelled():
        future.exception()


class Pipeline(EventProcessor):
    """One source, its normaliser, the watch set and the store.

    The processing itself (normalise, match, signals, seal, score) is the shared
    :class:`~watchfloor.pipeline.processing.EventProcessor`; this class adds the source's
    reader, the micro-batching and the commits that carry the source's cursor.
    """

    def __init__(
        self,
        source: Source,
        normaliser: Normaliser,
        store: Store,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        batch_interval_s: float = DEFAULT_BATCH_INTERVAL_S,
        queue_size: int = 10_000,
        signal: AlertSignal | None = None,
        clock: Callable[[], datetime] = utcnow,
        watch_check_s: float = 0.5,
        match_process: MatchProcess | None = None,
    ) -> None:
        if normaliser.platform != source.platform:
            raise ValueError(f"normaliser for {normaliser.platform!r} cannot read {source.platform!r} events")
        super().__init__(normaliser, store, clock=clock, watch_check_s=watch_check_s)
        self.source = source
        self.batch_size = batch_size
        self.batch_interval_s = batch_interval_s
        self.signal = signal
        self.watch_check_s = watch_check_s
        self.match_process = match_process  # prepares the batches in a helper process, if set
        self._recipe: tuple[tuple[object, ...], MatchRecipe | None] | None = None  # (hooks, recipe) sent
        self._queue_size = queue_size
        self._pending: deque[object] = deque()
        self._ready = asyncio.Event()  # something is pending
        self._room = asyncio.Event()  # the reader may go on
        self._room.set()
        self.on_commit: list[Callable[[IngestResult], None]] = []
        self._stop = asyncio.Event()
        self.store_retry = StoreRetry(
            f"source {source.name}",
            stop_grace_s=STOP_GRACE_S,
            on_retry=self._store_retried,
            on_outage=self._store_outage,
            stopping=lambda: self._stop.is_set(),
        )

    def _store_retried(self, exc: BaseException) -> None:
        self.stats.store_retries += 1

    def _store_outage(self, exc: BaseException) -> None:
        health = getattr(self.source, "health", None)
        if isinstance(health, SourceHealth):  # one error per outage, not one per retry
            health.error(f"store unavailable, retrying (events held back): {type(exc).__name__}: {exc}")

    async def run(self, stop: asyncio.Event | None = None) -> PipelineStats:
        """Run until the source ends or ``stop`` is set; the open batch is committed first."""
        self._stop = stop = stop or asyncio.Event()
        cursor = await self.store_retry.call(lambda: asyncio.to_thread(self.store.get_cursor, self.source.name))
        reader = asyncio.create_task(self._read(cursor), name=f"read:{self.source.name}")
        stopper = asyncio.create_task(stop.wait(), name="stop")
        try:
            await self._consume(stopper)
        except StoreStillUnavailable as exc:  # stopping: the batch was not stored, its events are read again
            log.warning("%s; stopped without storing the last batch (read again on the next start)", exc)
        finally:
            reader.cancel()
            stopper.cancel()
            await asyncio.gather(reader, stopper, return_exceptions=True)
        if reader.done() and not reader.cancelled() and reader.exception() is not None:
            raise reader.exception()  # type: ignore[misc]
        return self.stats

    async def _read(self, cursor: str | None) -> None:
        # A deque and two flags rather than an asyncio.Queue: handing over one event then
        # costs an append, not a coroutine (the queue bound still holds the source back).
        pending, ready, room, limit = self._pending, self._ready, self._room, self._queue_size
        try:
            async for event in self.source.events(cursor):
                pending.append(event)
                queued = len(pending)
                if queued == 1:  # the consumer only waits on an empty queue: wake it
                    ready.set()
                if queued >= limit:  # a full queue holds the source back (backpressure)
                    room.clear()
                    await room.wait()
        finally:
            pending.append(_END)
            ready.set()

    async def _consume(self, stopper: asyncio.Task[object]) -> None:
        batch: list[RawEvent] = []
        deadline = time.monotonic() + self.batch_interval_s
        pending, ready, room = self._pending, self._ready, self._room
        waiter: asyncio.Future[object] | None = None
        committing: asyncio.Future[None] | None = None  # the previous batch's commit
        in_flight: deque[asyncio.Future[None]] = deque()  # batches in the match helper, oldest first
        finishing: asyncio.Future[None] | None = None  # the last of them: finished (signals added)
        ended = False
        try:
            while not ended:
                if not pending:
                    ready.clear()
                    if waiter is None:
                        waiter = asyncio.ensure_future(ready.wait())
                    timeout = max(0.0, deadline - time.monotonic())
                    await asyncio.wait({waiter, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                    if waiter.done():
                        waiter = None
                    elif stopper.done():
                        ended = True
                # take what is already queued without awaiting again
                while pending and len(batch) < self.batch_size:
                    item = pending.popleft()
                    if item is _END:
                        ended = True
                        break
                    batch.append(item)  # type: ignore[arg-type]
                if len(pending) < self._queue_size:
                    room.set()
                if batch and (ended or len(batch) >= self.batch_size or time.monotonic() >= deadline):
                    recipe = self._match_recipe() if self.match_process is not None else None
                    if recipe is not None:
                        # In the match helper, in order; up to MAX_IN_FLIGHT batches queued
                        # there, so it always has the next one while this process commits.
                        finished: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                        finished.add_done_callback(_retrieved)  # a failure is raised by its commit's task
                        previous = None if committing is None else (finishing or committing, committing)
                        committing = asyncio.ensure_future(self._in_order(previous, finished, batch, recipe))
                        finishing = finished
                        in_flight.append(committing)
                        if len(in_flight) > MAX_IN_FLIGHT:
                            await in_flight.popleft()
                    else:
                        # processing reads the store too (the watch set's revision): retried the same way
                        prepared = await self.store_retry.call(
                            lambda events=batch: asyncio.to_thread(self.prepare_batch, events)
                        )
                        # Commits stay in order, one at a time; the next batch is read and matched
                        # while this one is written.
                        if committing is not None:
                            await committing
                        committing = asyncio.ensure_future(self._finish_and_commit(prepared))
                        finishing = None  # finished within its commit's task
                    batch = []
                if time.monotonic() >= deadline:
                    deadline = time.monotonic() + self.batch_interval_s
            if committing is not None:
                await committing
                committing = None
        finally:
            # Events taken but not committed are not lost: the cursor did not move past them.
            if waiter is not None:
                waiter.cancel()
            if committing is not None and not committing.done():
                committing.cancel()

    async def _in_order(
        self,
        previous: tuple[asyncio.Future[None], asyncio.Future[None]] | None,
        finished: asyncio.Future[None],
        events: list[RawEvent],
        recipe: MatchRecipe,
    ) -> None:
        """One batch through the match helper: handed over at once; then finished after the
        batch before it was finished (``previous``: its finished and committed futures; this
        batch's ``finished`` is set here), and committed after that batch was committed. So a
        batch's signals are added while the one before is written, and both stay in order.
        The batch is prepared here instead if the helper failed."""
        assert self.match_process is not None
        cursor = events[-1].cursor
        helper = self.match_process
        try:
            handed = helper.submit_batch(recipe, events, source=self.source.name, cursor=cursor)
            if handed is not None:
                waiter = asyncio.wrap_future(handed)
                waiter.add_done_callback(_retrieved)  # collect() reports a failure, not the event loop
                await asyncio.wait({waiter}, timeout=helper.timeout_for(recipe))
            matched = helper.collect(handed, recipe, timeout_s=0)  # None: failed, or still not done (hung)
            prepared = None if matched is None else self._adopt(matched, len(events))  # texts go to their helper now
            if previous is not None:
                await previous[0]
            if prepared is None:  # the helper failed: here, as without it (after the batch before, so in order)
                prepared = await self._prepare_here(events, cursor)
            ingest = await asyncio.to_thread(self.finish, prepared)
        except Exception as exc:
            finished.set_exception(exc)
            raise
        except BaseException:  # cancelled
            finished.cancel()
            raise
        finished.set_result(None)
        if previous is not None:
            await previous[1]
        await self._commit(ingest)

    async def _prepare_here(self, events: list[RawEvent], cursor: str | None) -> PreparedBatch:
        """A batch the match helper failed to prepare, prepared in this process on a worker
        thread. Its figures are counted there apart and added here, on the event loop's
        thread, where :meth:`_adopt` adds those of the helper's batches meanwhile."""
        prepared, stats = await self.store_retry.call(lambda: asyncio.to_thread(self._prepare_detached, events, cursor))
        self._count(prepared.batch, stats, len(events))
        return prepared

    def _prepare_detached(self, events: list[RawEvent], cursor: str | None) -> tuple[PreparedBatch, PipelineStats]:
        stats = PipelineStats()
        return self.prepare(events, source=self.source.name, cursor=cursor, stats=stats), stats

    def _adopt(self, matched: MatchedBatch, events: int) -> PreparedBatch:
        """A batch the match helper prepared, as :meth:`prepare` would have returned it."""
        gc_pauses.settle()  # start-up is over: freeze what it made (once; see gc_pauses.py)
        batch = matched.batch
        self._count(batch, matched.stats, events)
        return PreparedBatch(batch, matched.now, self.signals.prepare(batch), matched.watches)

    def _count(self, batch: IngestBatch, stats: PipelineStats, events: int) -> None:
        """Add the figures of a batch prepared apart (by the helper, or on a worker thread) to
        this pipeline's, and set its rate; on the event loop's thread only."""
        self.stats.add(stats, max_kinds=MAX_IGNORED_KINDS)
        batch.events_per_s = round(self.rate.add(events, time.monotonic()), 2)

    async def _finish_and_commit(self, prepared: PreparedBatch) -> None:
        await self._commit(await asyncio.to_thread(self.finish, prepared))

    async def _commit(self, ingest: IngestBatch) -> None:
        # kept and retried while the store is unavailable; the consumer waits for this commit
        # before the next, so the queue fills and the reader holds the source back meanwhile
        result = await self.store_retry.call(lambda: asyncio.to_thread(self.store.commit_batch, ingest))
        self.stats.batches += 1
        self.stats.alerts += len(result.alerts_added)
        if self.signal is not None and result.alerts_added:
            self.signal.publish(max(a.id or 0 for a in result.alerts_added))
        for callback in self.on_commit:
            callback(result)

    def process(self, events: list[RawEvent]) -> IngestBatch:
        """Normalise, match and score one batch of this source (pure CPU work; no I/O but the
        watch check); the batch carries the cursor of its last event."""
        return self.finish(self.prepare_batch(events))

    def prepare_batch(self, events: list[RawEvent]) -> PreparedBatch:
        """:meth:`process` up to the signals (:meth:`EventProcessor.prepare`), in the match
        helper if there is one and it can take this pipeline's batches, else here."""
        cursor = events[-1].cursor if events else None
        recipe = self._match_recipe() if self.match_process is not None and events else None
        if recipe is not None:
            assert self.match_process is not None
            matched = self.match_process.prepare(recipe, events, source=self.source.name, cursor=cursor)
            if matched is not None:
                return self._adopt(matched, len(events))
        return self.prepare(events, source=self.source.name, cursor=cursor)

    def _match_recipe(self) -> MatchRecipe | None:
        """What the match helper needs for this pipeline, made again if the hooks changed;
        None when it cannot be sent (said once)."""
        hooks = tuple(self.before_commit)
        if self._recipe is None or self._recipe[0] != hooks:
            recipe = recipe_for(self.store, self.normaliser, hooks, self.clock, self.watch_check_s)
            self._recipe = (hooks, recipe)
        return self._recipe[1]
