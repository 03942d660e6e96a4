"""Normalising, matching and sealing a pipeline's batches in a helper process.

In the embedded deployment the pipeline's interpreter is the bottleneck: normalising,
pseudonymising and matching take more than half of its time per event
(docs/performance.md). With a :class:`MatchProcess` one helper process does that part of
:meth:`~watchfloor.pipeline.processing.EventProcessor.prepare` on the other core, while the
pipeline reads the source, adds the signals and commits:

    pipeline: read events ──► submit(payloads, cursors) ─────────────► MatchedBatch ──► signals ──► commit
    helper:                       normalise ─► match ─► score ─► before_commit hooks (sealing) ──┘

- The helper runs the very same ``EventProcessor.prepare`` with a copy of the pipeline's
  normaliser (its pseudonymiser included), its ``before_commit`` hooks and its clock,
  pickled once (under a kilobyte, sent along with each batch, unpickled once by the
  helper; a :class:`KeyedPseudonymiser` travels as the path of its keyring, never as key
  material). The helper opens the store itself, read-only in effect, to keep its own
  compiled watch set current (:class:`~watchfloor.pipeline.watchset_cache.WatchSetCache`),
  so watch edits reach it as they reach an in-process pipeline.
- What comes back is the batch as the pipeline would have made it (posts that matched,
  alerts, deletions, dead letters, sealed identities, the cursor), the figures it adds to
  the pipeline's, and the watches its alerts name (for rescoring with the signals).
- Only the fields of the events cross over, as lists (pickling whole ``RawEvent``
  objects would cost the pipeline more than normalising them); the helper puts the events
  together again.
- Whatever cannot be sent (a normaliser, hook or clock that does not pickle, a store that
  only lives in this process) is prepared in the pipeline, as without a helper, with one
  warning. When the helper dies or hangs, the batch is prepared in the pipeline (which
  compiles its own watch set the first time) and a new helper is started for the next:
  :class:`~watchfloor.helper_process.HelperProcess`. The cursor only moves with a commit,
  so no event is lost or matched twice either way.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from watchfloor.helper_process import HelperProcess
from watchfloor.model import RawEvent, Watch
from watchfloor.pickling import pickled_by_fields
from watchfloor.store import IngestBatch, Store

if TYPE_CHECKING:
    from watchfloor.pipeline.processing import EventProcessor, PipelineStats
    from watchfloor.pipeline.watchset_cache import WatchSetCache
    from watchfloor.signals.stage import SignalStage
    from watchfloor.sources.base import Normaliser

__all__ = ["MatchProcess", "MatchRecipe", "MatchedBatch", "recipe_for", "store_url_for_helper"]

log = logging.getLogger(__name__)

MAX_PROCESSORS = 64  # recipes a helper keeps (one per running pipeline; more after restarts)
START_TIMEOUT_S = 600.0  # a new helper's first batch compiles the watch set (100,000 watches: up to a minute)


@dataclass(frozen=True, slots=True)
class MatchRecipe:
    """What a helper needs to prepare one pipeline's batches: the store to read the watches
    from and the pickled (normaliser, before_commit hooks, clock, watch check interval)."""

    store_url: str
    processor: bytes
    key: str  # a digest of both: the helper keeps one processor per key


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class MatchedBatch:
    """A batch prepared by the helper (signals not yet added)."""

    batch: IngestBatch
    now: datetime
    stats: PipelineStats  # what this batch adds to the pipeline's figures
    watches: dict[int, Watch]  # the watches its alerts name, as they were matched


def store_url_for_helper(store: Store) -> str | None:
    """The URL another process can open ``store`` with, or None (an in-memory database)."""
    url = getattr(store, "url", None)
    if not isinstance(url, str):
        return None
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        return url if path and path != ":memory:" and Path(path).is_file() else None
    return url


def recipe_for(
    store: Store,
    normaliser: Normaliser,
    hooks: Sequence[Callable[[IngestBatch], None]],
    clock: Callable[[], datetime],
    watch_check_s: float,
) -> MatchRecipe | None:
    """The recipe of a pipeline, or None (with the reason logged) when it cannot be sent."""
    url = store_url_for_helper(store)
    if url is None:
        log.warning("normalising and matching in the pipeline: its store cannot be opened by another process")
        return None
    try:
        processor = pickle.dumps((normaliser, tuple(hooks), clock, watch_check_s), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # a lambda, a lock, an open file...
        log.warning(
            "normalising and matching in the pipeline: its normaliser, hooks or clock cannot be sent to "
            "the helper process (%s: %s)",
            type(exc).__name__,
            exc,
        )
        return None
    key = hashlib.sha256(url.encode() + b"\x00" + processor).hexdigest()
    return MatchRecipe(url, processor, key)


# ---------------------------------------------------------------------------- in the helper
_stores: dict[str, Store] = {}
_watch_sets: dict[tuple[str, float], WatchSetCache] = {}
_processors: dict[str, EventProcessor] = {}
_languages: SignalStage | None = None  # language identification for lang: watches, loaded once


def _processor(recipe: MatchRecipe) -> EventProcessor:
    global _languages
    processor = _processors.get(recipe.key)
    if processor is not None:
        return processor
    from watchfloor.pipeline.processing import EventProcessor
    from watchfloor.pipeline.watchset_cache import WatchSetCache
    from watchfloor.signals.stage import SignalStage
    from watchfloor.store.open import open_store

    normaliser, hooks, clock, watch_check_s = pickle.loads(recipe.processor)
    store = _stores.get(recipe.store_url)
    if store is None:
        store = _stores[recipe.store_url] = open_store(recipe.store_url, migrate=False)
    watch_sets = _watch_sets.get((recipe.store_url, watch_check_s))
    if watch_sets is None:
        watch_sets = _watch_sets[recipe.store_url, watch_check_s] = WatchSetCache(
            store, check_every_s=watch_check_s, clock=clock
        )
    if _languages is None:
        _languages = SignalStage()  # no helper of its own: only its language identification is used here
    processor = EventProcessor(normaliser, store, clock=clock, watch_sets=watch_sets, signals=_languages)
    processor.before_commit.extend(hooks)
    while len(_processors) >= MAX_PROCESSORS:  # pipelines restarted over a long run: the oldest go
        del _processors[next(iter(_processors))]
    _processors[recipe.key] = processor
    return processor


def prepare_in_helper(
    recipe: MatchRecipe,
    source: str,
    sources: list[str],
    platforms: list[str],
    cursors: list[str],
    payloads: list[bytes],
    received: list[datetime],
    cursor: str | None,
) -> MatchedBatch:
    """Prepare one batch (what the helper runs): the events put together again, then
    :meth:`EventProcessor.prepare` as in the pipeline."""
    from watchfloor.pipeline.processing import PipelineStats

    processor = _processor(recipe)
    stats = PipelineStats()
    events = [
        RawEvent(*fields) for fields in zip(sources, platforms, cursors, payloads, received, strict=True)
    ]
    prepared = processor.prepare(events, source=source, cursor=cursor, stats=stats)
    known = processor.watch_sets.watches
    watches = {a.watch_id: known[a.watch_id] for a in prepared.batch.alerts}
    return MatchedBatch(prepared.batch, prepared.now, stats, watches)


def _warm_up() -> None:
    from watchfloor.pipeline import gc_pauses

    gc_pauses.tune_for_streaming()  # the helper streams too: no collector pauses in its batches


# ---------------------------------------------------------------------------- in the pipeline
class MatchProcess(HelperProcess):
    """One helper process that prepares the batches of every pipeline of this process."""

    def __init__(self, *, timeout_s: float = 60.0, start_timeout_s: float = START_TIMEOUT_S) -> None:
        super().__init__("match helper", timeout_s=timeout_s, warm_up=_warm_up)
        self.start_timeout_s = start_timeout_s
        self._warm: set[str] = set()  # recipes the running helper has prepared a batch of

    def submit_batch(
        self, recipe: MatchRecipe, events: list[RawEvent], *, source: str, cursor: str | None
    ) -> Future[MatchedBatch] | None:
        """Hand ``events`` (of one source) to the helper without waiting; None when it
        cannot take them. Batches are prepared in the order they are handed over; pass the
        future to :meth:`collect`."""
        return self.submit(
            prepare_in_helper,
            recipe,
            source,
            [e.source for e in events],  # the same few strings: pickled once each
            [e.platform for e in events],
            [e.cursor for e in events],
            [e.payload for e in events],
            [e.received_at for e in events],
            cursor,
        )

    def timeout_for(self, recipe: MatchRecipe) -> float:
        """How long a batch of ``recipe`` may take: longer for the first one of a helper,
        which compiles the watch set."""
        return self.timeout_s if recipe.key in self._warm else self.start_timeout_s

    def collect(
        self, future: Future[MatchedBatch] | None, recipe: MatchRecipe, *, timeout_s: float | None = None
    ) -> MatchedBatch | None:
        """The batch :meth:`submit_batch` handed over, prepared; None when the helper failed
        or took longer than ``timeout_s`` (default :meth:`timeout_for`): the caller then
        prepares it itself."""
        matched = self.result(future, self.timeout_for(recipe) if timeout_s is None else timeout_s)
        if matched is not None:
            self._warm.add(recipe.key)
        return matched

    def prepare(
        self, recipe: MatchRecipe, events: list[RawEvent], *, source: str, cursor: str | None
    ) -> MatchedBatch | None:
        """:meth:`submit_batch` and :meth:`collect`."""
        return self.collect(self.submit_batch(recipe, events, source=source, cursor=cursor), recipe)

    def _replace(self, exc: BaseException) -> None:
        self._warm = set()  # the next helper compiles its watch sets again
        super()._replace(exc)
