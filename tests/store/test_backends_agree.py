"""The same stream through the real pipeline into SQLite and into PostgreSQL ends in the same
store: the same posts, alerts (and ids), tombstones, cursor, signals, queue and figures."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import Severity, Watch, WatchStatus
from watchfloor.pipeline.runner import Pipeline
from watchfloor.sources.bluesky import JetstreamNormaliser
from watchfloor.sources.demo import DEMO_WATCHES, DemoSource
from watchfloor.store import Store, open_store

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def fill(store: Store) -> None:
    for name, query, severity in DEMO_WATCHES:
        store.add_watch(
            Watch(name=name, query=query, purpose="demonstration", legal_basis="synthetic", owner="desk",
                  severity=Severity(severity), status=WatchStatus.approved, approver="sue",
                  expires_at=T0 + timedelta(days=9))
        )  # fmt: skip
    source = DemoSource(rate=0, hit_share=0.4, limit=4000, seed=11)
    pipeline = Pipeline(
        source, JetstreamNormaliser(HmacPseudonymiser(b"k" * 32)), store, batch_size=300, batch_interval_s=0.05,
        clock=lambda: T0,
    )  # fmt: skip
    asyncio.run(pipeline.run())


def picture(store: Store) -> dict[str, object]:
    """Everything a caller can read, without the wall-clock times the demo source stamps."""
    views = store.list_alerts(limit=10_000)
    return {
        "counts": store.counts(),
        "cursor": store.get_cursor("demo"),
        "alerts": [
            (v.alert.id, v.watch_name, v.alert.post, v.alert.score, v.alert.explanation, v.post and v.post.text)
            for v in views
        ],
        "signals": [store.get_post_signals(v.alert.post) and store.get_post_signals(v.alert.post).lang for v in views],
        "deleted": sorted(v.alert.id or 0 for v in views if v.post is None),
        "queue": [(i.view.alert.id, i.count, i.alert_ids) for i in store.queue(limit=1000)],
        "figures": [(f.watch_name, f.alerts, f.open) for f in store.watch_figures(T0)],
        # group ids are not a function of the stream (two runs on one backend differ); their sizes are
        "groups": sorted(g.count for g in store.list_near_duplicate_groups(min_count=2)),
    }


def test_sqlite_and_postgresql_end_in_the_same_state(tmp_path, pg_url: str) -> None:
    pictures = []
    for url in (f"sqlite:///{tmp_path / 'same.db'}", pg_url):
        store = open_store(url)
        try:
            fill(store)
            pictures.append(picture(store))
        finally:
            store.close()
    sqlite, postgresql = pictures
    assert sqlite["alerts"] and sqlite["deleted"] and sqlite["groups"]  # the stream exercised all of it
    for key in sqlite:
        assert postgresql[key] == sqlite[key], key
