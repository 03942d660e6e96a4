"""Workers against a real NATS JetStream server and real stores: work sharing, the same result
as the embedded pipeline, MaxDeliver and the dead-letter path, a worker that died on the
last delivery, and a graceful stop.

The oracle for "the expected set" is ``watchfloor run``'s own pipeline: the same recording
replayed through :class:`~watchfloor.pipeline.runner.Pipeline` into a second store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import Severity, Watch, WatchStatus
from watchfloor.pipeline.bus import BusSettings
from watchfloor.pipeline.bus_nats import NatsBus, dead_stream_name
from watchfloor.pipeline.ingest import BusPublisher
from watchfloor.pipeline.runner import Pipeline
from watchfloor.pipeline.worker import Worker
from watchfloor.sources.bluesky import JetstreamNormaliser
from watchfloor.sources.demo import write_demo_file
from watchfloor.sources.demo_corpus import DEMO_WATCHES
from watchfloor.sources.replay import ReplaySource
from watchfloor.store import IngestBatch, Store, open_store

SECRET = b"k" * 32


def add_demo_watches(store: Store) -> None:
    for name, query, severity in DEMO_WATCHES:
        store.add_watch(
            Watch(
                name=name, query=query, purpose="test", legal_basis="test", owner="tester",
                severity=Severity(severity), expires_at=datetime.now(UTC) + timedelta(days=1),
                status=WatchStatus.approved, approver="second-person",
            )
        )  # fmt: skip


def alert_keys(store: Store) -> list[tuple[str, str, str, str]]:
    """Every alert as (watch, platform, native id, version), read through the store interface."""
    keys, after = [], 0
    while views := store.list_alerts(after_id=after, limit=500):
        keys += [(v.watch_name, v.alert.post.platform, v.alert.post.native_id, v.alert.post.version) for v in views]
        after = views[-1].alert.id or after
    return sorted(keys)


def normaliser() -> JetstreamNormaliser:
    return JetstreamNormaliser(HmacPseudonymiser(SECRET))


async def oracle(tmp_path: Path, recording: Path) -> tuple[list[tuple[str, str, str, str]], set[str]]:
    """What `watchfloor run` stores for the recording: (alert keys, native ids of the posts
    the recording deletes later)."""
    store = open_store(f"sqlite:///{tmp_path / 'oracle.db'}")
    try:
        add_demo_watches(store)
        await Pipeline(ReplaySource(recording, name="replay"), normaliser(), store, batch_interval_s=0.01).run()
        deleted = {v.alert.post.native_id for v in store.list_alerts(limit=100_000) if v.post is None}
        return alert_keys(store), deleted
    finally:
        store.close()


async def nats_bus(nats_url: str, prefix: str, **settings: object) -> NatsBus:
    bus = NatsBus(nats_url, BusSettings(prefix=prefix, **settings))  # type: ignore[arg-type]
    await bus.connect()
    return bus


async def publish(nats_url: str, prefix: str, recording: Path, store: Store) -> int:
    bus = await nats_bus(nats_url, prefix)
    try:
        stats = await BusPublisher(ReplaySource(recording, name="replay"), bus, store).run()
        return stats.events
    finally:
        await bus.close()


async def until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@pytest.fixture
def recording(tmp_path: Path) -> Path:
    return write_demo_file(tmp_path / "events.jsonl", 1500, hit_share=0.3)


@pytest.fixture
def scale_store(any_store_url: str) -> Iterator[Store]:
    store = open_store(any_store_url)
    add_demo_watches(store)
    yield store
    store.close()


@pytest.mark.timeout(300)
async def test_two_workers_share_the_work_and_store_exactly_what_run_stores(
    nats_url: str, bus_prefix: str, recording: Path, tmp_path: Path, scale_store: Store
) -> None:
    expected_alerts, deleted = await oracle(tmp_path, recording)
    assert expected_alerts, "the recording should raise alerts"
    published = await publish(nats_url, bus_prefix, recording, scale_store)
    assert published == 1500
    buses = [await nats_bus(nats_url, bus_prefix) for _ in range(2)]
    workers = [Worker(bus, scale_store, {"bluesky": normaliser()}, batch_size=25) for bus in buses]
    stop = asyncio.Event()
    runs = [asyncio.create_task(w.run(stop)) for w in workers]
    try:
        await until(lambda: sum(w.stats.events for w in workers) >= 1500, 180, "every event processed")
        stop.set()
        await asyncio.gather(*runs)
        pending = await (await buses[0].subscribe("bluesky", "workers")).pending()
    finally:
        stop.set()
        await asyncio.gather(*runs, return_exceptions=True)
        for bus in buses:
            await bus.close()
    assert [w.stats.events > 0 for w in workers] == [True, True], "both workers should have had a share"
    assert sum(w.stats.events for w in workers) == 1500  # each event processed once
    assert sum(w.redeliveries for w in workers) == 0
    assert pending == 0
    # exactly the expected set: nothing lost, nothing doubled. Two workers commit side by side,
    # so a post's deletion can be committed before its creation: the tombstone then keeps the
    # post and its alert out (by design). Only alerts of posts the stream deletes may be missing.
    actual = alert_keys(scale_store)
    assert len(actual) == len(set(actual))
    assert set(actual) <= set(expected_alerts)
    assert {k[2] for k in set(expected_alerts) - set(actual)} <= deleted
    assert len(actual) >= len(expected_alerts) - len(deleted) > 0
    state = {s.source: s for s in scale_store.source_states()}["replay"]
    assert state.cursor == str(recording.stat().st_size)  # the ingest's confirmed cursor, untouched by workers


@pytest.mark.timeout(300)
async def test_a_message_failing_max_deliver_times_becomes_a_dead_letter(
    nats_url: str, bus_prefix: str, recording: Path, tmp_path: Path, store: Store
) -> None:
    add_demo_watches(store)
    expected_alerts, deleted = await oracle(tmp_path, recording)
    kept = [k for k in expected_alerts if k[2] not in deleted]
    poison = kept[len(kept) // 2][2]  # a post that raises an alert, and stays

    def choke(batch: IngestBatch) -> None:  # a bug that strikes one post, every time
        if any(p.native_id == poison for p in batch.posts):
            raise RuntimeError("the seal failed for this post")

    await publish(nats_url, bus_prefix, recording, store)
    bus = await nats_bus(nats_url, bus_prefix, max_deliver=3)
    worker = Worker(bus, store, {"bluesky": normaliser()}, batch_size=100, nak_delays_s=(0.1,))
    worker.before_commit.append(choke)
    stop = asyncio.Event()
    run = asyncio.create_task(worker.run(stop))
    try:
        await until(lambda: worker.failed_dead_letters == 1 and worker.stats.batches > 15, 120, "the dead letter")
        await until(lambda: bool(worker.pending.get("bluesky") == 0), 30, "an empty backlog")
        assert await bus.stream_messages("bluesky") == 0  # terminated: gone from the work queue
        dead = await bus.js.get_last_msg(dead_stream_name(bus_prefix), f"{bus_prefix}.dead.bluesky")
    finally:
        stop.set()
        await run
        await bus.close()
    letters = [d for d in store.list_dead_letters(limit=10) if "deliveries" in d.reason]
    assert len(letters) == 1
    assert letters[0].reason.startswith("failed 3 deliveries: RuntimeError: the seal failed for this post")
    assert letters[0].payload == dead.data  # the event as received, on the dead-letter subject too
    assert dead.headers["Nats-Msg-Id"].startswith(f"dead:bluesky:{poison}:")
    assert dead.headers["Watchfloor-Deliveries"] == "3"
    assert worker.redeliveries >= 2
    # everything else was stored as `watchfloor run` stores it; the poison post alone is missing
    assert alert_keys(store) == [k for k in expected_alerts if k[2] != poison]


@pytest.mark.timeout(120)
async def test_a_message_whose_worker_died_on_every_delivery_is_recorded_by_another(
    nats_url: str, bus_prefix: str, store: Store, tmp_path: Path
) -> None:
    recording = write_demo_file(tmp_path / "one.jsonl", 1, hit_share=1.0)
    await publish(nats_url, bus_prefix, recording, store)
    bus = await nats_bus(nats_url, bus_prefix, max_deliver=2, ack_wait_s=1.0)
    try:
        # a worker that takes the message and dies before acknowledging it, max_deliver times
        dying = await bus.subscribe("bluesky", "workers")
        taken: set[int] = set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while taken != {1, 2} and loop.time() < deadline:
            taken |= {d.attempt for d in await dying.fetch(1, 0.5)}
        assert taken == {1, 2}
        await dying.close()
        worker = Worker(bus, store, {"bluesky": normaliser()})
        stop = asyncio.Event()
        run = asyncio.create_task(worker.run(stop))
        try:
            await until(lambda: worker.failed_dead_letters == 1, 30, "the dead letter of the stranded message")
        finally:
            stop.set()
            await run
        assert await bus.stream_messages("bluesky") == 0
    finally:
        await bus.close()
    (letter,) = store.list_dead_letters(limit=10)
    assert letter.reason == "failed 2 deliveries: its worker stopped (crashed or was killed) on every delivery"
    assert letter.payload == recording.read_bytes().strip()


@pytest.mark.timeout(120)
async def test_a_stopped_worker_finishes_its_batch_and_leaves_nothing_to_redeliver(
    nats_url: str, bus_prefix: str, recording: Path, store: Store
) -> None:
    add_demo_watches(store)
    await publish(nats_url, bus_prefix, recording, store)
    bus = await nats_bus(nats_url, bus_prefix, ack_wait_s=2.0)
    first = Worker(bus, store, {"bluesky": normaliser()}, batch_size=50)
    stop = asyncio.Event()
    run = asyncio.create_task(first.run(stop))
    await until(lambda: first.stats.batches >= 3, 60, "some batches")
    stop.set()  # SIGTERM: finish the batch in hand, commit, acknowledge
    await run
    done = first.stats.events
    assert 0 < done < 1500
    second = Worker(bus, store, {"bluesky": normaliser()}, batch_size=50)
    stop = asyncio.Event()
    run = asyncio.create_task(second.run(stop))
    try:
        await until(lambda: second.stats.events >= 1500 - done, 120, "the rest")
    finally:
        stop.set()
        await run
        await bus.close()
    assert second.stats.events == 1500 - done
    assert second.redeliveries == 0  # every event the first worker took was acknowledged
