"""Keeps the compiled watch set current without stopping ingest.

The first call compiles every active watch.  After that, when the store's watch
revision changes (a watch added, edited, enabled or disabled) or an active watch
reaches its expiry, only the difference is applied to the
:class:`~watchfloor.query.IncrementalWatchSet`: changed watches go into its small
delta segment (milliseconds), and a background rebuild folds them into the base
later.  A change is therefore visible to the next batch after the next check,
i.e. within ``check_every_s`` plus one batch.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from watchfloor.model import Watch, utcnow
from watchfloor.query import IncrementalWatchSet
from watchfloor.store import Store


class WatchSetCache:
    """Checks the store's watch revision at most every ``check_every_s`` seconds."""

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
        self._next_expiry: datetime | None = None
        self._watch_set: IncrementalWatchSet | None = None
        self._active: dict[int, Watch] = {}
        self.watches: dict[int, Watch] = {}
        self.last_change_applied_at: float | None = None  # monotonic time of the last applied change

    def current(self) -> IncrementalWatchSet:
        """The compiled set of the watches active now."""
        mono = time.monotonic()
        if self._watch_set is not None and mono - self._checked_at < self._check_every_s:
            return self._watch_set
        self._checked_at = mono
        now = self._clock()
        revision = self._store.watches_revision()
        expired = self._next_expiry is not None and now >= self._next_expiry
        if self._watch_set is None or revision != self._revision or expired:
            watches = [w for w in self._store.list_watches() if w.id is not None]
            active = {w.id: w for w in watches if w.id is not None and w.is_active(now)}
            self.watches = {w.id: w for w in watches if w.id is not None}
            if self._watch_set is None:
                self._watch_set = IncrementalWatchSet(
                    sorted(active.values(), key=lambda w: w.id or 0), max_delta=self._max_delta
                )
            else:
                upserts = [w for watch_id, w in active.items() if self._active.get(watch_id) != w]
                removals = [watch_id for watch_id in self._active if watch_id not in active]
                if upserts or removals:
                    self._watch_set.update(upserts, removals)
            self._active = active
            self._revision = revision
            expiries = [w.expires_at for w in active.values() if w.expires_at is not None]
            self._next_expiry = min(expiries) if expiries else None
            self.last_change_applied_at = time.monotonic()
        return self._watch_set
