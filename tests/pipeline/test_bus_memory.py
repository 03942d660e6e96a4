"""The in-process bus keeps the same contract as the NATS bus (duplicate window, explicit
acknowledgement, redelivery, max_deliver), and a worker over it stores what `watchfloor run`
stores. No server needed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from watchfloor.config import ConfigError, Settings
from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import RawEvent, Severity, Watch, WatchStatus
from watchfloor.pipeline.bus import BusSettings, load_bus_settings, message_id, open_bus
from watchfloor.pipeline.bus_memory import MemoryBus
from watchfloor.pipeline.runner import Pipeline
from watchfloor.pipeline.worker import Worker
from watchfloor.sources.bluesky import JetstreamNormaliser
from watchfloor.sources.demo import demo_payload, write_demo_file
from watchfloor.sources.demo_corpus import DEMO_WATCHES
from watchfloor.sources.replay import ReplaySource
from watchfloor.store import Store, open_store

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def event(i: int) -> RawEvent:
    return RawEvent("demo", "bluesky", str(i + 1), demo_payload(i, seed=7, hit_share=0.5, time_us=i), NOW)


async def test_duplicates_acks_redelivery_and_exhaustion() -> None:
    bus = MemoryBus(BusSettings(ack_wait_s=0.2, max_deliver=2, duplicate_window_s=60))
    assert await (await bus.publish(event(0), message_id(event(0)))) is True
    assert await (await bus.publish(event(0), message_id(event(0)))) is False
    await bus.publish(event(1), message_id(event(1)))
    exhausted: list = []

    async def on_exhausted(delivery) -> None:
        exhausted.append(delivery)

    await bus.follow_exhausted("bluesky", "workers", on_exhausted)
    sub = await bus.subscribe("bluesky", "workers")
    first = await sub.fetch(10, 0.1)
    assert [(d.event.cursor, d.attempt) for d in first] == [("1", 1), ("2", 1)]
    await first[0].ack()
    await first[1].nak()
    (again,) = await sub.fetch(10, 0.1)
    assert (again.event.cursor, again.attempt) == ("2", 2)
    assert await sub.fetch(10, 0.5) == []  # its ack_wait ran out on the last delivery: handed over
    assert [d.event.cursor for d in exhausted] == ["2"]
    assert await sub.pending() == 0


@pytest.mark.timeout(120)
async def test_a_worker_over_the_memory_bus_stores_what_run_stores(tmp_path: Path, store: Store) -> None:
    recording = write_demo_file(tmp_path / "events.jsonl", 800, hit_share=0.3)
    oracle = open_store(f"sqlite:///{tmp_path / 'oracle.db'}")
    for target in (store, oracle):
        for name, query, severity in DEMO_WATCHES:
            target.add_watch(
                Watch(name, query, "test", "test", "tester", severity=Severity(severity),
                      status=WatchStatus.approved, approver="second-person")
            )  # fmt: skip
    normaliser = JetstreamNormaliser(HmacPseudonymiser(b"k" * 32))
    await Pipeline(ReplaySource(recording, name="replay"), normaliser, oracle, batch_interval_s=0.01).run()
    bus = MemoryBus()
    async for e in ReplaySource(recording, name="replay").events(None):
        await bus.publish(e, message_id(e))
    worker = Worker(bus, store, {"bluesky": normaliser}, batch_size=64, fetch_timeout_s=0.05)
    stop = asyncio.Event()
    run = asyncio.create_task(worker.run(stop))
    while worker.stats.events < 800:
        await asyncio.sleep(0.02)
    stop.set()
    await run

    def keys(s: Store) -> list[tuple[str, str]]:
        return sorted((v.watch_name, v.alert.post.native_id) for v in s.list_alerts(limit=10_000))

    assert keys(store) == keys(oracle) and keys(oracle)
    oracle.close()


def test_bus_settings_come_from_config_then_environment_then_flags(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "config.toml").write_text('[bus]\nprefix = "fromfile"\nmax_deliver = 7\nack_wait_s = 12\n')
    settings = Settings(home=tmp_path, db_url="sqlite:///x.db")
    monkeypatch.setenv("WATCHFLOOR_BUS_MAX_DELIVER", "9")
    loaded = load_bus_settings(settings, ack_wait_s=3.5, prefix=None)
    assert (loaded.prefix, loaded.max_deliver, loaded.ack_wait_s) == ("fromfile", 9, 3.5)
    (tmp_path / "config.toml").write_text("[bus]\nmax_delivr = 7\n")
    with pytest.raises(ConfigError, match="unknown \\[bus\\] settings max_delivr"):
        load_bus_settings(settings)
    with pytest.raises(ConfigError, match="prefix"):
        BusSettings(prefix="has.dots")
    with pytest.raises(ConfigError, match="unsupported bus URL"):
        open_bus("kafka://somewhere")


async def test_a_watch_added_while_a_worker_runs_takes_effect(store: Store) -> None:
    bus = MemoryBus()
    normaliser = JetstreamNormaliser(HmacPseudonymiser(b"k" * 32))
    worker = Worker(bus, store, {"bluesky": normaliser}, fetch_timeout_s=0.05, watch_check_s=0.05)
    stop = asyncio.Event()
    run = asyncio.create_task(worker.run(stop))

    async def feed(first: int, count: int) -> None:
        for i in range(first, first + count):
            e = event(i)
            await bus.publish(e, message_id(e))
        while worker.stats.events < first + count:
            await asyncio.sleep(0.01)

    try:
        await feed(0, 300)
        assert worker.stats.alerts == 0  # no watch yet
        name, query, severity = DEMO_WATCHES[0]
        store.add_watch(Watch(name, query, "test", "test", "tester", severity=Severity(severity),
                              status=WatchStatus.approved, approver="second-person"))  # fmt: skip
        await asyncio.sleep(0.1)  # past the watch check interval: the next batch sees the new watch
        await feed(300, 300)
    finally:
        stop.set()
        await run
    assert worker.stats.alerts > 0
    assert {v.watch_name for v in store.list_alerts(limit=1000)} == {name}
