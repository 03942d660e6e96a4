"""Publishing to a real NATS JetStream server: the confirmed cursor (saved only behind PubAcks,
never backwards, resumed from), duplicates dropped on a republish, events too large for the
bus kept as dead letters, and the refusal of a bus that does not outlive the process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from watchfloor.pipeline.bus import BusError, BusSettings
from watchfloor.pipeline.bus_memory import MemoryBus
from watchfloor.pipeline.bus_nats import NatsBus
from watchfloor.pipeline.ingest import BusPublisher
from watchfloor.sources.demo import DemoSource, write_demo_file
from watchfloor.sources.replay import ReplaySource
from watchfloor.store import IngestBatch, Store, open_store


async def nats_bus(nats_url: str, prefix: str, **settings: object) -> NatsBus:
    bus = NatsBus(nats_url, BusSettings(prefix=prefix, **settings))  # type: ignore[arg-type]
    await bus.connect()
    return bus


async def test_the_saved_cursor_follows_the_confirmed_events_and_never_goes_backwards(
    nats_url: str, bus_prefix: str, store: Store, tmp_path: Path
) -> None:
    recording = write_demo_file(tmp_path / "events.jsonl", 3000)
    bus = await nats_bus(nats_url, bus_prefix, max_in_flight=64)
    publisher = BusPublisher(ReplaySource(recording, name="replay"), bus, store, cursor_every_s=0.01)
    seen: list[int] = []
    done = asyncio.Event()

    async def watch_cursor() -> None:
        while not done.is_set():
            cursor = await asyncio.to_thread(store.get_cursor, "replay")
            if cursor is not None:
                seen.append(int(cursor))
            await asyncio.sleep(0.003)

    watcher = asyncio.create_task(watch_cursor())
    try:
        stats = await publisher.run()
        done.set()
        await watcher
        assert stats.events == 3000
        assert await bus.stream_messages("bluesky") == 3000
    finally:
        await bus.close()
    assert seen == sorted(seen), "the saved cursor went backwards"
    assert len(set(seen)) > 3, f"too few saves observed to say anything: {sorted(set(seen))}"
    assert store.get_cursor("replay") == str(recording.stat().st_size)


async def test_a_restart_resumes_from_the_saved_cursor(nats_url: str, bus_prefix: str, store: Store) -> None:
    bus = await nats_bus(nats_url, bus_prefix)
    try:
        first = await BusPublisher(DemoSource(rate=0, limit=600, name="demo"), bus, store).run()
        assert first.events == 600 and store.get_cursor("demo") == "600"
        second = BusPublisher(DemoSource(rate=0, limit=1000, name="demo"), bus, store)
        await second.run()
        assert second.stats.events == 400 and second.duplicates == 0  # from event 600 on, nothing twice
        assert await bus.stream_messages("bluesky") == 1000
    finally:
        await bus.close()


async def test_a_republish_after_a_lost_cursor_is_dropped_by_the_message_ids(
    nats_url: str, bus_prefix: str, store: Store, tmp_path: Path
) -> None:
    recording = write_demo_file(tmp_path / "events.jsonl", 500)
    bus = await nats_bus(nats_url, bus_prefix)
    try:
        await BusPublisher(ReplaySource(recording, name="replay"), bus, store).run()
        # an ingest whose cursor was never saved (killed before its first save): all again
        fresh = open_store(f"sqlite:///{tmp_path / 'fresh.db'}")
        try:
            again = BusPublisher(ReplaySource(recording, name="replay"), bus, fresh)
            await again.run()
        finally:
            fresh.close()
        assert again.duplicates == 500 and again.stats.events == 500
        assert await bus.stream_messages("bluesky") == 500
    finally:
        await bus.close()


async def test_an_event_too_large_for_the_bus_is_a_dead_letter_and_the_cursor_moves_on(
    nats_url: str, bus_prefix: str, store: Store, tmp_path: Path
) -> None:
    recording = write_demo_file(tmp_path / "events.jsonl", 20)
    lines = recording.read_bytes().splitlines()
    huge = b'{"did": "did:plc:big", "kind": "commit", "padding": "' + b"x" * 1_100_000 + b'"}'
    recording.write_bytes(b"\n".join([*lines[:10], huge, *lines[10:]]) + b"\n")
    bus = await nats_bus(nats_url, bus_prefix)
    try:
        stats = await BusPublisher(ReplaySource(recording, name="replay"), bus, store).run()
        assert stats.events == 21 and stats.dead_letters == 1
        assert await bus.stream_messages("bluesky") == 20
    finally:
        await bus.close()
    (letter,) = store.list_dead_letters(limit=5)
    assert letter.reason.startswith("not published: event of 1,100,") and "max_payload" in letter.reason
    assert letter.source == "replay" and letter.payload == huge[: len(letter.payload)]
    assert store.get_cursor("replay") == str(recording.stat().st_size)


async def test_saving_the_cursor_keeps_the_workers_figures(nats_url: str, bus_prefix: str, store: Store) -> None:
    store.commit_batch(IngestBatch(source="demo", cursor=None, events=40, events_per_s=12.5, lag_s=0.75))
    bus = await nats_bus(nats_url, bus_prefix)
    try:
        await BusPublisher(DemoSource(rate=0, limit=30, name="demo"), bus, store).run()
    finally:
        await bus.close()
    (state,) = [s for s in store.source_states() if s.source == "demo"]
    assert state.cursor == "30"
    assert (state.events_per_s, state.lag_s, state.events_total) == (12.5, 0.75, 40)


def test_a_bus_that_does_not_outlive_the_process_is_refused(store: Store) -> None:
    with pytest.raises(BusError, match="durable bus"):
        BusPublisher(DemoSource(limit=1), MemoryBus(), store)
