"""After a commit: new alerts get their near-duplicate key and their notifications, the
first of a group only, exactly once (a cursor in the store), also from a real pipeline run."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from watchfloor.config import Settings
from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import NotificationChannel, NotificationRule, Role, Severity, User, utcnow
from watchfloor.notify.config import NotifySettings
from watchfloor.pipeline.runner import Pipeline
from watchfloor.sources.bluesky import JetstreamNormaliser
from watchfloor.sources.demo import DemoSource
from watchfloor.store import Store
from watchfloor.triage.fanout import NewAlertFanout
from watchfloor.triage.floor import FloorTasks


@pytest.fixture
def store(any_store: Store) -> Store:
    """Every test here that uses the store runs on SQLite and on PostgreSQL."""
    return any_store


def inapp_rule(store, username: str, **fields) -> NotificationRule:
    return store.add_notification_rule(
        NotificationRule(
            channel=NotificationChannel.inapp, target=username, created_by="sue", created_at=utcnow(), **fields
        )
    )


def test_first_of_a_group_is_announced_once(store, floor) -> None:
    store.add_user(User("ana", Role.analyst, "x"))
    urgent = floor.watch("Urgent", severity="urgent")
    low = floor.watch("Low", severity="low")
    inapp_rule(store, "ana", min_severity=Severity.high)
    fanout = NewAlertFanout(store)
    first = floor.alert(urgent, "Flood at the dam https://a.example")
    floor.alert(urgent, "flood at the dam https://b.example")  # a repost: no second message
    floor.alert(low, "flood of a low watch")  # below the rule's severity
    assert fanout.run_once() == 3
    assert fanout.run_once() == 0  # the cursor moved on
    [message] = store.inbox("ana")
    assert message.link == f"/alerts/{first.id}" and "urgent" in message.title
    assert store.triage_state(first.id).group_key is not None


def test_alerts_before_the_migration_are_never_announced(tmp_path) -> None:
    from watchfloor.store import open_store

    s = open_store(f"sqlite:///{tmp_path}/x.db")
    try:
        assert NewAlertFanout(s).run_once() == 0
    finally:
        s.close()


async def test_the_pipeline_wakes_the_floor_after_each_commit(store, tmp_path) -> None:
    """A real pipeline (demo source) with the floor's background tasks: the in-app rule's
    inbox fills while the pipeline runs, without the pipeline waiting for it."""
    from watchfloor.model import Watch, WatchStatus

    store.add_user(User("ana", Role.analyst, "x"))
    store.add_watch(
        Watch(name="demo floods", query="flood* OR evacuat* OR fire* OR storm*", purpose="p", legal_basis="b",
              owner="o", expires_at=utcnow() + timedelta(days=1), status=WatchStatus.approved, approver="sue",
              created_by="ana", approved_at=utcnow())
    )
    inapp_rule(store, "ana")
    source = DemoSource(rate=0, hit_share=0.5, limit=300, seed=7)
    pipeline = Pipeline(source, JetstreamNormaliser(HmacPseudonymiser(b"k" * 32)), store, batch_interval_s=0.05)
    settings = Settings(home=tmp_path, db_url=store.url)
    floor = FloorTasks.start(settings, store, pipeline, notify=NotifySettings(sla_check_s=3600))
    try:
        stats = await pipeline.run()
        for _ in range(100):  # the fan-out runs in the background; poll the store, no timed assertion
            if floor_done(store):
                break
            await asyncio.sleep(0.05)
    finally:
        await floor.stop()
    assert stats.alerts > 0
    assert floor_done(store)
    assert len(store.inbox("ana", limit=1000)) >= 1


def floor_done(store) -> bool:
    """The fan-out has handled the newest alert: it gave it its near-duplicate key (nothing else
    here does: the SLA check ran before any alert existed, and nobody read the queue)."""
    newest = store.list_alerts(newest_first=True, limit=1)
    return not newest or store.triage_state(newest[0].alert.id).group_key is not None
