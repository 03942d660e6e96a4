"""The processing stage both deployments share: normalise -> match -> score -> seal -> signals -> rescore.

    events of one platform ──► EventProcessor.process_events(events, source=..., cursor=...) ──► IngestBatch
                               = finish(prepare(...)): prepare normalises, matches, scores, seals the
                                 matched authors and hands the matched texts to the signals; finish adds
                                 the signals and rescores (the embedded pipeline overlaps the two)

The embedded :class:`~watchfloor.pipeline.runner.Pipeline` is an ``EventProcessor`` for one
source (its ``process(events)`` hands over the source's name and the batch's cursor); the
scale-out :class:`~watchfloor.pipeline.worker.Worker` keeps one ``EventProcessor`` per
platform, fed with the events it fetched from the bus, with ``cursor=None`` (there the
ingest process owns the source's cursor). One code path, so an alert raised by a worker is
exactly the alert ``watchfloor run`` would have raised for the same event.

It is pure CPU work (no I/O but the watch set's revision check), so callers run it in a
thread; it is not meant to be called from two threads at once.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, fields
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
    Watch,
    utcnow,
)
from watchfloor.pickling import pickled_by_fields
from watchfloor.pipeline.scoring import score_hit
from watchfloor.pipeline.watchset_cache import WatchSetCache
from watchfloor.signals.stage import PendingTexts, SignalStage, stage_for
from watchfloor.sources.base import Normaliser
from watchfloor.store import IngestBatch, Store

log = logging.getLogger(__name__)

MAX_IGNORED_KINDS = 200


@pickled_by_fields
@dataclass(slots=True)
class PipelineStats:
    """Running totals of one pipeline (or worker), for ``watchfloor run`` and the tests."""

    events: int = 0
    posts: int = 0
    matched_posts: int = 0
    alerts: int = 0
    deletions: int = 0
    dead_letters: int = 0
    batches: int = 0
    ignored: dict[str, int] = field(default_factory=dict)
    store_retries: int = 0  # commits tried again while the store was unavailable (pipeline/store_retry.py)

    def add(self, other: PipelineStats, *, max_kinds: int | None = None) -> None:
        """Add ``other``'s figures to these; with ``max_kinds``, ignored kinds beyond that
        many are tallied as "other" (kinds come from the network)."""
        for f in fields(PipelineStats):
            if f.name != "ignored":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        ignored = self.ignored
        for kind, n in other.ignored.items():
            if max_kinds is not None and kind not in ignored and len(ignored) >= max_kinds:
                kind = "other"
            ignored[kind] = ignored.get(kind, 0) + n


class RateMeter:
    """Events per second over a sliding window of recent batches."""

    def __init__(self, window_s: float = 10.0) -> None:
        self._window_s = window_s
        self._samples: deque[tuple[float, int]] = deque()
        self._total = 0  # the events of the samples in the window
        self.last_rate = 0.0

    def add(self, count: int, now: float) -> float:
        self._samples.append((now, count))
        self._total += count
        while self._samples and now - self._samples[0][0] > self._window_s:
            self._total -= self._samples.popleft()[1]
        span = now - self._samples[0][0] if len(self._samples) > 1 else 0.0
        self.last_rate = 0.0 if span <= 0 else (self._total - self._samples[0][1]) / span
        return self.last_rate


@dataclass(slots=True)
class PreparedBatch:
    """A batch normalised, matched, scored and sealed, whose signals may still be computing
    in the helper process (signals/text_process.py): :meth:`EventProcessor.finish` completes it."""

    batch: IngestBatch
    now: datetime
    texts: PendingTexts | None
    watches: dict[int, Watch] | None = None  # prepared elsewhere: the watches its alerts name (match_process.py)


class EventProcessor:
    """One platform's normaliser, the compiled watch set, the signals, and the hooks."""

    def __init__(
        self,
        normaliser: Normaliser,
        store: Store,
        *,
        clock: Callable[[], datetime] = utcnow,
        watch_check_s: float = 0.5,
        watch_sets: WatchSetCache | None = None,
        signals: SignalStage | None = None,
        stats: PipelineStats | None = None,
    ) -> None:
        self.normaliser = normaliser
        self.store = store
        self.clock = clock
        self.stats = stats if stats is not None else PipelineStats()
        # Several processors of one worker share one compiled watch set and one signal stage.
        self.watch_sets = watch_sets or WatchSetCache(store, check_every_s=watch_check_s, clock=clock)
        self.signals = signals or stage_for(store)  # language, sentiment, toxicity, near-duplicates, bursts
        self.rate = RateMeter()
        # Run at the end of prepare(), on the thread that normalised the batch, before its
        # signals are added and it is committed (governance seals the matched posts'
        # authors into the batch here: KeyedPseudonymiser.seal_batch).
        self.before_commit: list[Callable[[IngestBatch], None]] = []

    def process_events(self, events: list[RawEvent], *, source: str, cursor: str | None) -> IngestBatch:
        """Normalise, match and score ``events`` into the batch ``source`` commits (with ``cursor``)."""
        return self.finish(self.prepare(events, source=source, cursor=cursor))

    def prepare(
        self, events: list[RawEvent], *, source: str, cursor: str | None, stats: PipelineStats | None = None
    ) -> PreparedBatch:
        """The first part of :meth:`process_events`: normalise, match, score, hand the matched
        posts' texts to the signals' helper process (if there is one), run the hooks.

        With ``stats``, the batch is counted there instead of in :attr:`stats`, and its
        ``events_per_s`` is left for the caller to set: for a batch prepared on another
        thread than the one that keeps the figures, which adds them (:meth:`PipelineStats.add`).
        """
        watch_set = self.watch_sets.current()
        now = self.clock()
        batch = IngestBatch(source=source, cursor=cursor)
        latest: datetime | None = None
        detached = stats is not None
        stats = stats if stats is not None else self.stats
        ignored = stats.ignored
        posts: list[Post] = []
        deleted: set[tuple[str, str]] = set()  # posts deleted earlier in this batch
        normalise = self.normaliser.normalise
        for event in events:
            try:
                item = normalise(event)
            except MalformedEvent as exc:
                batch.dead_letters.append(DeadLetter.of(event, exc.reason))
                continue
            except Exception as exc:  # a normaliser bug must not stop the stream either
                log.exception("normaliser %s failed", self.normaliser.platform)
                reason = f"normaliser error: {type(exc).__name__}: {exc}"
                batch.dead_letters.append(DeadLetter.of(event, reason))
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
                if deleted and (item.platform, item.native_id) in deleted:  # type: ignore[union-attr]
                    # an edit the platform sent after the post's deletion: the store refuses it
                    # once the tombstone is committed, so refuse it here too, whatever the batching
                    ignored["after its deletion"] = ignored.get("after its deletion", 0) + 1
                    continue
                posts.append(item)  # type: ignore[arg-type]
                created_at = item.created_at  # type: ignore[union-attr]
                latest = created_at if latest is None or created_at > latest else latest
            elif kind is Deletion:
                stats.deletions += 1
                batch.deletions.append(item)  # type: ignore[arg-type]
                deleted.add((item.platform, item.native_id))  # type: ignore[union-attr]
        if posts:
            stats.posts += len(posts)
            # One scan of the automaton for every post of the batch.
            found = watch_set.match_many(  # posts without a language get one only if a lang: watch asks
                posts, source=source, now=now, detect_language=self.signals.filter_languages
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
        if not detached:
            batch.events_per_s = round(self.rate.add(len(events), time.monotonic()), 2)
        batch.last_event_at = latest
        batch.lag_s = None if latest is None else round(max(0.0, (now - latest).total_seconds()), 3)
        texts = self.signals.prepare(batch)  # computed meanwhile, in the helper process if there is one
        for hook in self.before_commit:
            hook(batch)
        return PreparedBatch(batch, now, texts)

    def finish(self, prepared: PreparedBatch) -> IngestBatch:
        """The second part of :meth:`process_events`: add the signals of the matched posts and
        rescore their alerts. Batches must be finished in the order they were prepared (the
        near-duplicate groups and burst counts follow the stream); the next batch may be
        prepared meanwhile."""
        batch = prepared.batch
        watches = self.watch_sets.watches if prepared.watches is None else prepared.watches
        self.signals.annotate(batch, watches, prepared.now, prepared.texts)
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
