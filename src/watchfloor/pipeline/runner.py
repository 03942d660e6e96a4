"""Runs one source through the pipeline in micro-batches.

    source.events(cursor) --queue--> batch --> normalise --> match --> score
        --> store.commit_batch(posts, alerts, deletions, dead letters, cursor)  (one transaction)
        --> signal.publish(latest alert id)

The cursor of the last event in a batch is committed in the same transaction as the
batch's data, so a crash at any point resumes from the last commit: nothing acknowledged
is lost, and the idempotent keys of posts and alerts make the replayed tail harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from watchfloor.model import (
    Alert,
    DeadLetter,
    Deletion,
    Explanation,
    Ignored,
    MalformedEvent,
    Post,
    RawEvent,
    utcnow,
)
from watchfloor.pipeline.notify import AlertSignal
from watchfloor.pipeline.scoring import score_hit
from watchfloor.pipeline.watchset_cache import WatchSetCache
from watchfloor.signals.stage import stage_for
from watchfloor.sources.base import Normaliser, Source
from watchfloor.store import IngestBatch, IngestResult, Store

log = logging.getLogger(__name__)

_END = object()  # the source's iterator ended
MAX_IGNORED_KINDS = 200


@dataclass(slots=True)
class PipelineStats:
    """Running totals of one pipeline, for ``watchfloor run`` and the tests."""

    events: int = 0
    posts: int = 0
    matched_posts: int = 0
    alerts: int = 0
    deletions: int = 0
    dead_letters: int = 0
    batches: int = 0
    ignored: dict[str, int] = field(default_factory=dict)


class RateMeter:
    """Events per second over a sliding window of recent batches."""

    def __init__(self, window_s: float = 10.0) -> None:
        self._window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()
        self.last_rate = 0.0

    def add(self, count: int, now: float) -> float:
        self._samples.append((now, count))
        while self._samples and now - self._samples[0][0] > self._window_s:
            self._samples.popleft()
        span = now - self._samples[0][0] if len(self._samples) > 1 else 0.0
        total = sum(c for _, c in self._samples)
        self.last_rate = 0.0 if span <= 0 else (total - self._samples[0][1]) / span
        return self.last_rate


class Pipeline:
    """One source, its normaliser, the watch set and the store."""

    def __init__(
        self,
        source: Source,
        normaliser: Normaliser,
        store: Store,
        *,
        batch_size: int = 500,
        batch_interval_s: float = 0.2,
        queue_size: int = 10_000,
        signal: AlertSignal | None = None,
        clock: Callable[[], datetime] = utcnow,
        watch_check_s: float = 0.5,
    ) -> None:
        if normaliser.platform != source.platform:
            raise ValueError(f"normaliser for {normaliser.platform!r} cannot read {source.platform!r} events")
        self.source = source
        self.normaliser = normaliser
        self.store = store
        self.batch_size = batch_size
        self.batch_interval_s = batch_interval_s
        self.signal = signal
        self.clock = clock
        self.stats = PipelineStats()
        self.watch_sets = WatchSetCache(store, check_every_s=watch_check_s, clock=clock)
        self.signals = stage_for(store)  # language, sentiment, toxicity, near-duplicates, bursts
        self._queue_size = queue_size
        self._pending: deque[object] = deque()
        self._ready = asyncio.Event()  # something is pending
        self._room = asyncio.Event()  # the reader may go on
        self._room.set()
        self.rate = RateMeter()
        self.on_commit: list[Callable[[IngestResult], None]] = []
        # Run at the end of process(), before the next batch is normalised (governance seals
        # the matched posts' authors into the batch here: KeyedPseudonymiser.seal_batch).
        self.before_commit: list[Callable[[IngestBatch], None]] = []

    async def run(self, stop: asyncio.Event | None = None) -> PipelineStats:
        """Run until the source ends or ``stop`` is set; the open batch is committed first."""
        stop = stop or asyncio.Event()
        cursor = await asyncio.to_thread(self.store.get_cursor, self.source.name)
        reader = asyncio.create_task(self._read(cursor), name=f"read:{self.source.name}")
        stopper = asyncio.create_task(stop.wait(), name="stop")
        try:
            await self._consume(stopper)
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
                ready.set()
                if len(pending) >= limit:  # a full queue holds the source back (backpressure)
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
        committing: asyncio.Task[None] | None = None  # the previous batch's commit
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
                    ingest = await asyncio.to_thread(self.process, batch)
                    batch = []
                    # Commits stay in order, one at a time; the next batch is read and matched
                    # while this one is written.
                    if committing is not None:
                        await committing
                    committing = asyncio.ensure_future(self._commit(ingest))
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

    async def _flush(self, events: list[RawEvent]) -> None:
        await self._commit(await asyncio.to_thread(self.process, events))

    async def _commit(self, ingest: IngestBatch) -> None:
        result = await asyncio.to_thread(self.store.commit_batch, ingest)
        self.stats.batches += 1
        self.stats.alerts += len(result.alerts_added)
        if self.signal is not None and result.alerts_added:
            self.signal.publish(max(a.id or 0 for a in result.alerts_added))
        for callback in self.on_commit:
            callback(result)

    def process(self, events: list[RawEvent]) -> IngestBatch:
        """Normalise, match and score one batch (pure CPU work; no I/O but the watch check)."""
        watch_set = self.watch_sets.current()
        now = self.clock()
        batch = IngestBatch(source=self.source.name, cursor=events[-1].cursor if events else None)
        latest: datetime | None = None
        stats = self.stats
        ignored = stats.ignored
        posts: list[Post] = []
        normalise = self.normaliser.normalise
        for event in events:
            try:
                item = normalise(event)
            except MalformedEvent as exc:
                batch.dead_letters.append(
                    DeadLetter(event.source, event.platform, exc.reason, event.payload, event.received_at)
                )
                continue
            except Exception as exc:  # a normaliser bug must not stop the stream either
                log.exception("normaliser %s failed", self.normaliser.platform)
                reason = f"normaliser error: {type(exc).__name__}: {exc}"
                batch.dead_letters.append(
                    DeadLetter(event.source, event.platform, reason, event.payload, event.received_at)
                )
                continue
            kind = type(item)
            if kind is Ignored:
                # kinds come from the network: keep the tally bounded
                name = item.kind  # type: ignore[union-attr]
                if name in ignored:
                    ignored[name] += 1
                else:
                    name = name if len(ignored) < MAX_IGNORED_KINDS else "other"
                    ignored[name] = ignored.get(name, 0) + 1
            elif kind is Post:
                posts.append(item)  # type: ignore[arg-type]
                created_at = item.created_at  # type: ignore[union-attr]
                latest = created_at if latest is None or created_at > latest else latest
            elif kind is Deletion:
                stats.deletions += 1
                batch.deletions.append(item)  # type: ignore[arg-type]
        if posts:
            stats.posts += len(posts)
            # One scan of the automaton for every post of the batch.
            found = watch_set.match_many(  # posts without a language get one only if a lang: watch asks
                posts, source=self.source.name, now=now, detect_language=self.signals.filter_languages
            )
            for post, hits in zip(posts, found, strict=True):
                if hits:
                    stats.matched_posts += 1
                    batch.posts.append(post)
                    for hit in hits:
                        batch.alerts.append(self._alert(post, hit.watch_id, hit.explanation, now))
        stats.events += len(events)
        stats.dead_letters += len(batch.dead_letters)
        batch.events = len(events)
        batch.events_per_s = round(self.rate.add(len(events), time.monotonic()), 2)
        batch.last_event_at = latest
        batch.lag_s = None if latest is None else round(max(0.0, (now - latest).total_seconds()), 3)
        self.signals.annotate(batch, self.watch_sets.watches, now)  # matched posts only; rescores alerts
        for hook in self.before_commit:
            hook(batch)
        return batch

    def _alert(self, post: Post, watch_id: int, explanation: Explanation, now: datetime) -> Alert:
        watch = self.watch_sets.watches[watch_id]
        score, explained = score_hit(watch, explanation)
        return Alert(
            watch_id=watch_id,
            post=post.key,
            score=score,
            explanation=explained,
            created_at=now,
            due_at=now + timedelta(minutes=watch.sla_minutes),
        )
