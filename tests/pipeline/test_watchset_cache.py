"""The watch-set cache (pipeline/watchset_cache.py) on both backends: the first call reads every
watch; after that a change reads only the watches written since (counted through a proxy around
the real store), an edit, a disable or an addition takes effect, and an expiry is worked out
from memory without reading the watch list."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from watchfloor.model import Post, Watch, WatchStatus
from watchfloor.pipeline.watchset_cache import WatchSetCache
from watchfloor.query import IncrementalWatchSet
from watchfloor.store import Store

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


class CountingStore:
    """The real store, with its reads of watches counted (and a hook to run a write between
    the cache's read of the revision and its read of the changed watches)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.reads: Counter[str] = Counter()
        self.changed: list[list[int]] = []  # the ids each watches_changed_since returned
        self.between: Callable[[], object] | None = None

    def watches_revision(self) -> int:
        self.reads["watches_revision"] += 1
        return self.store.watches_revision()

    def list_watches(self) -> list[Watch]:
        self.reads["list_watches"] += 1
        return self.store.list_watches()

    def watches_changed_since(self, revision: int) -> list[Watch]:
        self.reads["watches_changed_since"] += 1
        if self.between is not None:
            self.between()
            self.between = None
        changed = self.store.watches_changed_since(revision)
        self.changed.append([w.id or 0 for w in changed])
        return changed

    def __getattr__(self, name: str) -> Any:  # anything else: the real store, uncounted
        return getattr(self.store, name)


@pytest.fixture
def store(any_store: Store) -> Store:
    return any_store


@pytest.fixture
def counting(store: Store) -> CountingStore:
    return CountingStore(store)


def add(store: Store, name: str, query: str, **fields: Any) -> Watch:
    return store.add_watch(
        Watch(name=name, query=query, purpose="p", legal_basis="b", owner="o", status=WatchStatus.approved,
              approver="sue", created_at=T0, **({"expires_at": T0 + timedelta(days=30)} | fields))
    )  # fmt: skip


def edit_query(store: Store, watch_id: int, query: str) -> None:
    """An edit of a watch's query as a store write does it (the store has no query edit of its
    own yet): the revision bumped first, the row stamped with it, one transaction."""
    with store._write() as conn:  # type: ignore[attr-defined]
        revision = store._bump_watches_revision(conn)  # type: ignore[attr-defined]
        conn.execute("UPDATE watches SET query = ?, revision = ? WHERE id = ?", (query, revision, watch_id))


def hits(watch_set: IncrementalWatchSet, post: Post, now: datetime) -> list[int]:
    return [h.watch_id for h in watch_set.match(post, now=now)]


def compiled(watch_set: IncrementalWatchSet) -> list[int]:
    return [w.id or 0 for w in watch_set.watches]


def test_a_change_reads_only_the_changed_watches(store: Store, counting: CountingStore, make_post) -> None:
    clock = Clock()
    floods = add(store, "floods", "flood*")
    bridge = add(store, "bridge", "bridge")
    fires = add(store, "fires", "wildfire")
    cache = WatchSetCache(counting, check_every_s=0, clock=clock)  # type: ignore[arg-type]
    watch_set = cache.current()
    assert counting.reads == {"watches_revision": 1, "list_watches": 1}
    assert compiled(watch_set) == [floods.id, bridge.id, fires.id]
    post = make_post(text="The river is flooding near the old bridge")
    assert hits(watch_set, post, clock.now) == [floods.id, bridge.id]

    assert cache.current() is watch_set  # nothing changed: only the revision is read
    assert counting.reads == {"watches_revision": 2, "list_watches": 1}

    # an edited query takes effect; only that watch is read
    edit_query(store, floods.id, "river AND NOT flood*")
    assert cache.current() is watch_set
    assert counting.changed == [[floods.id]] and counting.reads["list_watches"] == 1
    assert hits(watch_set, post, clock.now) == [bridge.id]
    assert hits(watch_set, make_post(text="river banks"), clock.now) == [floods.id]
    assert cache.watches[floods.id].query == "river AND NOT flood*"

    # a disabled watch stops matching
    store.set_watch_enabled(bridge.id, False)
    cache.current()
    assert counting.changed[-1] == [bridge.id] and counting.reads["list_watches"] == 1
    assert hits(watch_set, post, clock.now) == [] and bridge.id not in compiled(watch_set)
    assert cache.watches[bridge.id].enabled is False  # still known: alerts of it name it

    # an added watch matches, and several changes at once are read together
    quake = add(store, "quake", "earthquake")
    store.set_watch_enabled(bridge.id, True)
    cache.current()
    assert counting.changed[-1] == [bridge.id, quake.id] and counting.reads["list_watches"] == 1
    assert hits(watch_set, make_post(text="earthquake at the bridge"), clock.now) == [bridge.id, quake.id]
    assert cache.watches == {w.id: w for w in store.list_watches()}
    assert compiled(watch_set) == [floods.id, bridge.id, fires.id, quake.id]


def test_an_expired_watch_stops_without_reading_the_watch_list(
    store: Store, counting: CountingStore, make_post
) -> None:
    clock = Clock()
    soon = add(store, "soon", "flood*", expires_at=T0 + timedelta(hours=1))
    later = add(store, "later", "river", expires_at=T0 + timedelta(hours=2))
    forever = add(store, "forever", "bridge", expires_at=None)
    cache = WatchSetCache(counting, check_every_s=0, clock=clock)  # type: ignore[arg-type]
    watch_set = cache.current()
    post = make_post(text="The river is flooding near the old bridge")
    assert hits(watch_set, post, clock.now) == [soon.id, later.id, forever.id]
    reads = dict(counting.reads)

    clock.now = T0 + timedelta(hours=1)  # the expiry itself: no longer active
    cache.current()
    assert compiled(watch_set) == [later.id, forever.id]
    assert hits(watch_set, post, clock.now) == [later.id, forever.id]
    clock.now = T0 + timedelta(hours=3)
    cache.current()
    assert compiled(watch_set) == [forever.id]
    assert hits(watch_set, post, clock.now) == [forever.id]
    # the revision was read at each check, the watches never
    assert counting.reads == reads | {"watches_revision": reads["watches_revision"] + 2}
    assert cache.watches[soon.id] == soon  # known still, as stored

    # a renewal (a new approval, a new expiry) brings it back; one watch read
    renewed = store.save_watch_approval(replace(soon, expires_at=T0 + timedelta(days=1)))
    cache.current()
    assert counting.changed == [[soon.id]] and counting.reads["list_watches"] == 1
    assert compiled(watch_set) == [soon.id, forever.id] and cache.watches[soon.id] == renewed


def test_a_write_between_the_two_reads_is_applied_once(store: Store, counting: CountingStore, make_post) -> None:
    """The cache reads the revision R, then the rows written after the revision it knew; a write
    landing between the two is read now and again at the next check, and the second time it
    changes nothing."""
    clock = Clock()
    floods = add(store, "floods", "flood*")
    cache = WatchSetCache(counting, check_every_s=0, clock=clock)  # type: ignore[arg-type]
    watch_set = cache.current()
    updates: list[tuple[list[int], list[int]]] = []
    real_update = watch_set.update

    def counted_update(upserts: Iterable[Watch] = (), removals: Iterable[int] = ()) -> None:
        upserts, removals = list(upserts), list(removals)
        updates.append(([w.id or 0 for w in upserts], removals))
        real_update(upserts, removals)

    watch_set.update = counted_update  # type: ignore[method-assign]
    store.set_watch_enabled(floods.id, False)
    bridge: list[Watch] = []
    counting.between = lambda: bridge.append(add(store, "bridge", "bridge"))  # lands after R was read
    cache.current()
    assert counting.changed == [[floods.id, bridge[0].id]]
    assert updates == [([bridge[0].id], [floods.id])]
    cache.current()  # the revision moved on (the bridge write): read again, applied again, no change
    assert counting.changed[-1] == [bridge[0].id]
    assert updates == [([bridge[0].id], [floods.id])]
    cache.current()
    assert len(counting.changed) == 2 and counting.reads["list_watches"] == 1  # in step now
    assert hits(watch_set, make_post(text="flooding at the bridge"), clock.now) == [bridge[0].id]
