"""Keeps the compiled watch set current without stopping ingest.

The first call reads the store's watch revision, then every watch, and compiles the
active ones.  After that, at most every ``check_every_s`` seconds, it reads the revision
again; only when it has changed (a watch added, edited, approved, enabled or disabled)
does it read the watches written since the revision it knows
(:meth:`~watchfloor.store.base.Store.watches_changed_since`), never the whole list.  When
an active watch reaches its expiry, the cache works out which watches stopped from what it
holds in memory, without reading the store.  Only the difference is applied to the
:class:`~watchfloor.query.IncrementalWatchSet`: changed watches go into its small delta
segment (milliseconds), and a background rebuild folds them into the base later.  A change
is therefore visible to the next batch after the next check, i.e. within
``check_every_s`` plus one batch.

The revision is read before the watches: a write that lands in between may be read now and
again at the next change, which changes nothing the second time.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Iterable
from datetime import datetime

from watchfloor.model import Watch, utcnow
from watchfloor.pipeline import gc_pauses
from watchfloor.query import IncrementalWatchSet
from watchfloor.store import Store


class WatchSetCache:
    """Checks the store's watch revision at most every ``check_every_s`` seconds.

    Not thread-safe: one caller at a time (the pipeline processes one batch at a time).
    """

    def __init__(
        self,
        store: Store,
        *,
        check_every_s: float = 0.25,
        clock: Callable[[], datetime] = utcnow,
        max_delta: int = 256,
    ) -> None:
        self._store = store
        self._check_every_s = check_every_s
        self._clock = clock
        self._max_delta = max_delta
        self._revision = -1
        self._checked_at = float("-inf")
        self._watch_set: IncrementalWatchSet | None = None
        self._active: dict[int, Watch] = {}
        # (expires_at, id) of active watches; an entry whose watch is no longer active with
        # that expiry is stale and skipped when it comes to the top
        self._expiries: list[tuple[datetime, int]] = []
        self.watches: dict[int, Watch] = {}  # every watch by id, active or not (alerts name theirs)
        self.last_change_applied_at: float | None = None  # monotonic time of the last applied change

    def current(self) -> IncrementalWatchSet:
        """The compiled set of the watches active now."""
        mono = time.monotonic()
        if self._watch_set is not None and mono - self._checked_at < self._check_every_s:
            return self._watch_set
        self._checked_at = mono
        now = self._clock()
        revision = self._store.watches_revision()  # before the watches: see the module docstring
        if self._watch_set is None:
            self._load_all(now)
        elif revision != self._revision:
            self._apply(self._store.watches_changed_since(self._revision), now)
        elif (next_expiry := self._next_expiry()) is not None and now >= next_expiry:
            self._apply((), now)
        else:
            return self._watch_set
        self._revision = revision
        self.last_change_applied_at = time.monotonic()
        assert self._watch_set is not None
        return self._watch_set

    def _next_expiry(self) -> datetime | None:
        """The earliest expiry of an active watch (stale entries are dropped on the way)."""
        expiries = self._expiries
        while expiries:
            expires_at, watch_id = expiries[0]
            watch = self._active.get(watch_id)
            if watch is not None and watch.expires_at == expires_at:
                return expires_at
            heapq.heappop(expiries)
        return None

    def _load_all(self, now: datetime) -> None:
        watches = [w for w in self._store.list_watches() if w.id is not None]
        self.watches = {w.id: w for w in watches if w.id is not None}
        self._active = {w.id: w for w in watches if w.id is not None and w.is_active(now)}
        self._expiries = [(w.expires_at, i) for i, w in self._active.items() if w.expires_at is not None]
        heapq.heapify(self._expiries)
        self._watch_set = IncrementalWatchSet(
            sorted(self._active.values(), key=lambda w: w.id or 0), max_delta=self._max_delta
        )
        gc_pauses.settle()  # a streaming process freezes its start-up objects once, now

    def _apply(self, changed: Iterable[Watch], now: datetime) -> None:
        """Apply the watches written since the last check, then the expiries that passed."""
        assert self._watch_set is not None
        upserts: dict[int, Watch] = {}
        removals: set[int] = set()
        for watch in changed:
            if watch.id is None:
                continue
            self.watches[watch.id] = watch
            if watch.is_active(now):
                if self._active.get(watch.id) != watch:  # applying an unchanged watch again changes nothing
                    upserts[watch.id] = watch
            elif watch.id in self._active:
                removals.add(watch.id)
        for watch_id, watch in upserts.items():
            self._active[watch_id] = watch
            if watch.expires_at is not None:
                heapq.heappush(self._expiries, (watch.expires_at, watch_id))
        for watch_id in removals:
            del self._active[watch_id]
        # expired: active watches whose expiry has passed, earliest first, from memory
        while (next_expiry := self._next_expiry()) is not None and next_expiry <= now:
            _, watch_id = heapq.heappop(self._expiries)
            del self._active[watch_id]
            upserts.pop(watch_id, None)
            removals.add(watch_id)
        if len(self._expiries) > 2 * len(self._active) + 64:  # too many stale entries: start afresh
            self._expiries = [(w.expires_at, i) for i, w in self._active.items() if w.expires_at is not None]
            heapq.heapify(self._expiries)
        if upserts or removals:
            self._watch_set.update(list(upserts.values()), sorted(removals))
