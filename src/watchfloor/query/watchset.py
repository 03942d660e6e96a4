"""Sets of watches matched together: a fixed :class:`WatchSet`, and an
:class:`IncrementalWatchSet` that takes new, edited and removed watches within
milliseconds while a full rebuild runs in the background.

Compiling is cheap per watch but not free (10,000 watches take about a second,
100,000 several seconds), so an incremental set is a large *base* segment plus a
small *delta* segment holding the watches changed since the base was built; the
base versions of changed watches are hidden.  A change recompiles only the delta.
When the delta grows past ``max_delta`` watches a background thread compiles a new
base from all current watches (Hyperscan releases the GIL while it compiles) and
swaps it in; changes made meanwhile stay in the new delta.  Matching reads one
immutable snapshot, so it never waits for a compile and never sees half of one.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from ..model import Post, Watch, WatchHit, utcnow
from .engine import Entry, LanguageHook, Segment, make_entry, prepare
from .errors import QuerySyntaxError
from .parse import parse

__all__ = ["IncrementalWatchSet", "WatchSet", "compile_watch_set"]


def _entry(watch: Watch) -> Entry:
    """``watch`` parsed (raises QuerySyntaxError)."""
    return make_entry(watch, parse(watch.query))


def _kept(error: QuerySyntaxError) -> QuerySyntaxError:
    """A parse error to keep in ``errors``: its message and position, without the traceback
    and chained errors, whose frames would tie the watch set into reference cycles (a
    long-lived set must be freed by reference counting alone: pipeline/gc_pauses.py)."""
    error.__traceback__ = error.__context__ = error.__cause__ = None
    return error


class WatchSet:
    """A fixed set of compiled watches, matched together against posts.

    Watches whose query does not parse are left out and listed in ``errors``
    (watch id -> :class:`QuerySyntaxError`): callers must surface them.
    """

    def __init__(self, entries: Sequence[Entry], errors: dict[int, QuerySyntaxError]) -> None:
        self._segment = Segment(entries)
        self._entries = tuple(entries)
        self.errors = errors

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def watches(self) -> tuple[Watch, ...]:
        return tuple(entry.watch for entry in self._entries)

    def match(self, post: Post, source: str | None = None, now: datetime | None = None) -> list[WatchHit]:
        """One hit per active watch that matches ``post``, in the order watches were given.

        ``source`` is the source instance the post came from (checked against
        ``Watch.sources``); ``now`` decides which watches are active (default: now).
        """
        return self.match_many([post], source, now)[0]

    def match_many(
        self,
        posts: Sequence[Post],
        source: str | None = None,
        now: datetime | None = None,
        detect_language: LanguageHook | None = None,
    ) -> list[list[WatchHit]]:
        """:meth:`match` for a batch of posts at once (one scan for the whole batch).

        ``detect_language`` gives languages to a post that declares none, asked only when a
        watch with ``lang:`` or a language list is evaluated on it (signals/language.py).
        """
        if not posts:
            return []
        found = self._segment.match_batch(prepare(posts, detect_language), now or utcnow(), source)
        out: list[list[WatchHit]] = [[] for _ in posts]
        for k, hits in found.items():
            out[k] = [hit for _, hit in sorted(hits, key=lambda item: item[0])]
        return out


def compile_watch_set(watches: Iterable[Watch]) -> WatchSet:
    """``watches`` compiled into one :class:`WatchSet`.

    Every watch must have an ``id`` (``ValueError`` otherwise, or on a repeated id).
    """
    entries: list[Entry] = []
    errors: dict[int, QuerySyntaxError] = {}
    seen: set[int] = set()
    for watch in watches:
        if watch.id is None:
            raise ValueError(f"watch {watch.name!r} has no id; store it before compiling")
        if watch.id in seen:
            raise ValueError(f"watch id {watch.id} appears twice")
        seen.add(watch.id)
        try:
            entries.append(_entry(watch))
        except QuerySyntaxError as error:
            errors[watch.id] = _kept(error)
    return WatchSet(entries, errors)


# --------------------------------------------------------------------------- incremental


@dataclass(frozen=True, slots=True)
class _View:
    """What matching reads: one immutable snapshot."""

    base: Segment
    delta: Segment
    hidden: frozenset[int]  # ids whose base version is out of date or removed
    generation: int


class IncrementalWatchSet:
    """Watches that can be added, changed and removed while posts are being matched.

    A change is visible to the next :meth:`match` call, typically within a few
    milliseconds (the delta segment is recompiled, not the whole set).  Hits come
    in watch id order.
    """

    def __init__(self, watches: Iterable[Watch] = (), *, max_delta: int = 256, background: bool = True) -> None:
        self.max_delta = max_delta
        self.background = background
        self._lock = threading.RLock()
        self._watches: dict[int, Watch] = {}
        self._entries: dict[int, Entry] = {}
        self.errors: dict[int, QuerySyntaxError] = {}
        for watch in watches:
            if watch.id is None:
                raise ValueError(f"watch {watch.name!r} has no id; store it before compiling")
            self._set(watch)
        self._changed: set[int] = set()  # changed since the base's snapshot
        self._pending: set[int] | None = None  # changed since the running rebuild's snapshot
        self._rebuilt = threading.Condition(self._lock)
        self._rebuild_error: BaseException | None = None
        self.rebuilds = 0
        base = Segment([self._entries[i] for i in sorted(self._entries)])
        self._view = _View(base, Segment([]), frozenset(), 0)

    # ------------------------------------------------------------------ reading
    def __len__(self) -> int:
        return len(self._entries)

    @property
    def watches(self) -> tuple[Watch, ...]:
        with self._lock:
            return tuple(self._watches[i] for i in sorted(self._watches))

    @property
    def delta_size(self) -> int:
        return len(self._view.delta)

    def match(self, post: Post, source: str | None = None, now: datetime | None = None) -> list[WatchHit]:
        return self.match_many([post], source, now)[0]

    def match_many(
        self,
        posts: Sequence[Post],
        source: str | None = None,
        now: datetime | None = None,
        detect_language: LanguageHook | None = None,
    ) -> list[list[WatchHit]]:
        """For each post, one hit per active watch that matches it, in watch id order
        (``detect_language``: as :meth:`WatchSet.match_many`)."""
        if not posts:
            return []
        view = self._view
        now = now or utcnow()
        batch = prepare(posts, detect_language)
        out: list[list[WatchHit]] = [[] for _ in posts]
        for k, hits in view.base.match_batch(batch, now, source, view.hidden).items():
            out[k] = [hit for _, hit in hits]
        if len(view.delta):
            for k, hits in view.delta.match_batch(batch, now, source).items():
                out[k] = list(heapq.merge(out[k], (hit for _, hit in hits), key=lambda hit: hit.watch_id))
        return out

    # ------------------------------------------------------------------ changing
    def _set(self, watch: Watch) -> QuerySyntaxError | None:
        assert watch.id is not None
        self._watches[watch.id] = watch
        try:
            self._entries[watch.id] = _entry(watch)
        except QuerySyntaxError as error:
            self._entries.pop(watch.id, None)
            self.errors[watch.id] = _kept(error)
            return error
        self.errors.pop(watch.id, None)
        return None

    def upsert(self, watch: Watch) -> QuerySyntaxError | None:
        """Add ``watch`` or replace the watch with its id; returns its query error, if any
        (a watch whose query does not parse matches nothing and is listed in ``errors``)."""
        if watch.id is None:
            raise ValueError(f"watch {watch.name!r} has no id; store it before compiling")
        with self._lock:
            error = self._set(watch)
            self._changed_ids((watch.id,))
            return error

    def remove(self, watch_id: int) -> None:
        """Stop matching the watch with this id (nothing happens if it is not in the set)."""
        with self._lock:
            if watch_id not in self._watches:
                return
            del self._watches[watch_id]
            self._entries.pop(watch_id, None)
            self.errors.pop(watch_id, None)
            self._changed_ids((watch_id,))

    def update(self, upserts: Iterable[Watch] = (), removals: Iterable[int] = ()) -> None:
        """Several changes made visible together (one delta recompile)."""
        with self._lock:
            ids = []
            for watch in upserts:
                if watch.id is None:
                    raise ValueError(f"watch {watch.name!r} has no id; store it before compiling")
                self._set(watch)
                ids.append(watch.id)
            for watch_id in removals:
                if watch_id in self._watches:
                    del self._watches[watch_id]
                    self._entries.pop(watch_id, None)
                    self.errors.pop(watch_id, None)
                    ids.append(watch_id)
            if ids:
                self._changed_ids(ids)

    def _changed_ids(self, ids: Iterable[int]) -> None:
        self._changed.update(ids)
        if self._pending is not None:
            self._pending.update(ids)
        self._publish_delta()
        if len(self._changed) >= self.max_delta and self._pending is None:
            self._start_rebuild()

    def _publish_delta(self) -> None:
        view = self._view
        delta = Segment([self._entries[i] for i in sorted(self._changed) if i in self._entries])
        self._view = _View(view.base, delta, frozenset(self._changed), view.generation + 1)

    # ------------------------------------------------------------------ rebuilding
    def rebuild(self, wait: bool = True, timeout: float | None = None) -> None:
        """Fold the delta into a new base now (in the background unless ``wait``)."""
        with self._lock:
            if self._pending is None and self._changed:
                self._start_rebuild()
            if wait:
                self._rebuilt.wait_for(lambda: self._pending is None, timeout)
                if self._rebuild_error is not None:
                    raise self._rebuild_error

    def _start_rebuild(self) -> None:
        self._pending = set()
        snapshot = [self._entries[i] for i in sorted(self._entries)]
        if self.background:
            threading.Thread(target=self._rebuild, args=(snapshot,), name="watchset-rebuild", daemon=True).start()
        else:
            self._rebuild(snapshot)

    def _rebuild(self, snapshot: list[Entry]) -> None:
        try:
            base: Segment | None = Segment(snapshot)
        except BaseException as error:  # pragma: no cover - a compile failure keeps the old base
            base = None
            self._rebuild_error = error
        with self._lock:
            pending = self._pending or set()
            self._pending = None
            if base is not None:
                self._changed = pending
                self._view = _View(base, self._view.delta, self._view.hidden, self._view.generation + 1)
                self._publish_delta()
                self.rebuilds += 1
            self._rebuilt.notify_all()
