"""The NATS JetStream bus against a real server: layout, round trip, headers, duplicate
window, acknowledgement, redelivery, the dead-letter path and leases. Every test has its
own prefix on the shared server and deletes its streams afterwards (``bus_prefix``)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import nats
import pytest
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType

from watchfloor.model import RawEvent
from watchfloor.pipeline.bus import BusSettings, EventRefused, message_id
from watchfloor.pipeline.bus_nats import NatsBus, dead_stream_name, raw_subject, stream_name, subject_token
from watchfloor.sources.demo import demo_payload

RECEIVED = datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)


def demo_event(i: int, source: str = "demo") -> RawEvent:
    return RawEvent(
        source,
        "bluesky",
        str(i + 1),
        demo_payload(i, seed=7, hit_share=0.5, time_us=1_767_225_600_000_000 + i),
        RECEIVED,
    )


async def connected(nats_url: str, prefix: str, **settings: object) -> NatsBus:
    bus = NatsBus(nats_url, BusSettings(prefix=prefix, **settings))  # type: ignore[arg-type]
    await bus.connect()
    await bus.prepare(["bluesky"])
    return bus


async def drain(sub, want: int, timeout_s: float = 10.0) -> list:
    got: list = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while len(got) < want and loop.time() < deadline:
        got += await sub.fetch(want - len(got), 0.5)
    return got


async def test_streams_are_laid_out_as_documented(nats_url: str, bus_prefix: str) -> None:
    bus = await connected(nats_url, bus_prefix, duplicate_window_s=90.0, replicas=1)
    try:
        info = await bus.js.stream_info(stream_name(bus_prefix, "bluesky"))
        config = info.config
        assert config.name == f"{bus_prefix.upper()}_BLUESKY"
        assert config.subjects == [f"{bus_prefix}.raw.bluesky.>"]
        assert config.retention == RetentionPolicy.WORK_QUEUE
        assert config.storage == StorageType.FILE
        assert config.discard == DiscardPolicy.NEW
        assert config.duplicate_window == 90.0
        dead = (await bus.js.stream_info(dead_stream_name(bus_prefix))).config
        assert dead.subjects == [f"{bus_prefix}.dead.>"]
        assert dead.retention == RetentionPolicy.LIMITS
        # preparing again with the same settings is harmless, and a changed window is applied
        await bus.close()
        bus = await connected(nats_url, bus_prefix, duplicate_window_s=60.0)
        assert (await bus.js.stream_info(stream_name(bus_prefix, "bluesky"))).config.duplicate_window == 60.0
    finally:
        await bus.close()


async def settled(bus: NatsBus, sub=None, timeout_s: float = 5.0) -> None:
    """Wait until the bluesky work queue (and ``sub``'s consumer) is empty, or ``timeout_s``.

    Acks and terms are fire-and-forget: after a flush the server has them, and applies them
    to the consumer and the work-queue stream a moment later. The caller asserts the end state."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if await bus.stream_messages("bluesky") == 0 and (sub is None or await sub.pending() == 0):
            return
        await asyncio.sleep(0.05)


async def test_publish_and_consume_round_trip_with_headers(nats_url: str, bus_prefix: str) -> None:
    bus = await connected(nats_url, bus_prefix)
    events = [demo_event(i, source="replay:/data/file one.jsonl") for i in range(50)]
    try:
        tickets = [await bus.publish(e, message_id(e)) for e in events]
        assert await asyncio.gather(*tickets) == [True] * 50
        assert await bus.stream_messages("bluesky") == 50
        sub = await bus.subscribe("bluesky", "workers")
        got = await drain(sub, 50)
        assert [d.event for d in got] == events  # payload, source, cursor and received time survive
        assert all(d.attempt == 1 for d in got)
        assert [d.msg_id for d in got] == [message_id(e) for e in events]
        for d in got:
            await d.ack()
        await bus.flush()
        await settled(bus, sub)
        assert await sub.pending() == 0
        assert await bus.stream_messages("bluesky") == 0  # work queue: acknowledged events leave the bus
    finally:
        await bus.close()


async def test_message_id_is_platform_native_id_version_and_headers_are_as_documented(
    nats_url: str, bus_prefix: str
) -> None:
    payload = json.dumps({
        "did": "did:plc:abc", "time_us": 1, "kind": "commit",
        "commit": {"rev": "r1", "operation": "create", "collection": "app.bsky.feed.post", "rkey": "3k",
                   "record": {"text": "hi", "createdAt": "2026-11-25T12:00:00Z"}, "cid": "bafyCID"},
    }).encode()  # fmt: skip
    event = RawEvent("jetstream one", "bluesky", "1764072000000000", payload, RECEIVED)
    assert message_id(event) == "bluesky:at://did:plc:abc/app.bsky.feed.post/3k:bafyCID"
    broken = RawEvent("s", "bluesky", "2", b"{not json", RECEIVED)
    assert message_id(broken).startswith("bluesky:sha256:")
    assert message_id(broken) == message_id(RawEvent("t", "bluesky", "9", b"{not json", RECEIVED))
    nc = await nats.connect(nats_url)
    bus = await connected(nats_url, bus_prefix)
    try:
        seen: asyncio.Queue = asyncio.Queue()
        await nc.subscribe(f"{bus_prefix}.raw.>", cb=seen.put)
        await nc.flush()
        await (await bus.publish(event, message_id(event)))
        msg = await asyncio.wait_for(seen.get(), 5)
        assert msg.subject == raw_subject(bus_prefix, "bluesky", "jetstream one")
        assert msg.subject == f"{bus_prefix}.raw.bluesky.{subject_token('jetstream one')}"
        assert msg.headers["Nats-Msg-Id"] == "bluesky:at://did:plc:abc/app.bsky.feed.post/3k:bafyCID"
        assert msg.headers["Watchfloor-Source"] == "jetstream%20one"
        assert msg.headers["Watchfloor-Cursor"] == "1764072000000000"
        assert msg.headers["Watchfloor-Received-At"] == "2026-11-25T12:00:00.123456+00:00"
    finally:
        await nc.close()
        await bus.close()


async def test_the_duplicate_window_drops_a_republished_message(nats_url: str, bus_prefix: str) -> None:
    bus = await connected(nats_url, bus_prefix)
    try:
        first = [await bus.publish(demo_event(i), message_id(demo_event(i))) for i in range(20)]
        assert await asyncio.gather(*first) == [True] * 20
        # the same events again, as a restarted ingest would publish its unconfirmed tail
        again = [await bus.publish(demo_event(i), message_id(demo_event(i))) for i in range(10, 30)]
        assert await asyncio.gather(*again) == [False] * 10 + [True] * 10
        assert await bus.stream_messages("bluesky") == 30
    finally:
        await bus.close()


async def test_an_event_too_large_for_the_bus_is_refused_at_once(nats_url: str, bus_prefix: str) -> None:
    bus = await connected(nats_url, bus_prefix)
    try:
        huge = RawEvent("s", "bluesky", "1", b"x" * (bus.nc.max_payload + 1), RECEIVED)
        with pytest.raises(EventRefused, match="max_payload"):
            await bus.publish(huge, "bluesky:huge")
        ok = demo_event(1)
        assert await (await bus.publish(ok, message_id(ok))) is True  # the bus goes on
    finally:
        await bus.close()


async def test_nak_redelivers_and_unacknowledged_messages_come_back_after_ack_wait(
    nats_url: str, bus_prefix: str
) -> None:
    bus = await connected(nats_url, bus_prefix, ack_wait_s=1.0)
    try:
        for i in range(3):
            await (await bus.publish(demo_event(i), message_id(demo_event(i))))
        sub = await bus.subscribe("bluesky", "workers")
        first = await drain(sub, 3)
        await first[0].nak()
        await first[1].in_progress()  # still working on it
        # first[2] is neither: its ack_wait runs out
        naked = await drain(sub, 1, timeout_s=5)
        assert [(d.event.cursor, d.attempt) for d in naked] == [("1", 2)]  # at once
        await naked[0].term()
        expired: list = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 2.5
        while loop.time() < deadline:  # past two ack_waits, with message 2 kept in progress
            await first[1].in_progress()
            for delivery in await sub.fetch(2, 0.3):
                expired.append(delivery)
                await delivery.ack()
        assert [(d.event.cursor, d.attempt) for d in expired] == [("3", 2)]  # after its ack_wait
        await first[1].ack()
        await bus.flush()
        assert await drain(sub, 1, timeout_s=2) == []
        assert await bus.stream_messages("bluesky") == 0  # terminated messages leave the work queue too
    finally:
        await bus.close()


async def test_a_message_whose_consumer_died_on_every_delivery_is_handed_over(nats_url: str, bus_prefix: str) -> None:
    bus = await connected(nats_url, bus_prefix, ack_wait_s=1.0, max_deliver=2)
    try:
        event = demo_event(0)
        await (await bus.publish(event, message_id(event)))
        exhausted: asyncio.Queue = asyncio.Queue()

        async def on_exhausted(delivery) -> None:
            await exhausted.put(delivery)

        await bus.follow_exhausted("bluesky", "workers", on_exhausted)
        sub = await bus.subscribe("bluesky", "workers")
        attempts: set[int] = set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while exhausted.empty() and loop.time() < deadline:  # taken, never acknowledged: a consumer that died
            attempts |= {d.attempt for d in await sub.fetch(1, 0.5)}
        assert attempts == {1, 2}  # max_deliver deliveries, no more: the advisory instead
        delivery = await asyncio.wait_for(exhausted.get(), 1)
        assert delivery.event == event and delivery.attempt == 2 and delivery.msg_id == message_id(event)
        await bus.dead_letter(delivery, "test reason")
        await delivery.term()
        await settled(bus)
        assert await bus.stream_messages("bluesky") == 0
        dead = await bus.js.get_last_msg(dead_stream_name(bus_prefix), f"{bus_prefix}.dead.bluesky")
        assert dead.data == event.payload
        assert dead.headers["Watchfloor-Dead-Reason"] == "test reason"
        assert dead.headers["Watchfloor-Deliveries"] == "2"
    finally:
        await bus.close()


async def test_a_lease_has_one_holder_until_it_lapses(nats_url: str, bus_prefix: str) -> None:
    one = await connected(nats_url, bus_prefix)
    two = await connected(nats_url, bus_prefix)
    try:
        assert await one.acquire_lease("duties", "one", ttl_s=1.5)
        assert not await two.acquire_lease("duties", "two", ttl_s=1.5)
        assert await one.acquire_lease("duties", "one", ttl_s=1.5)  # renewed
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 6
        while not await two.acquire_lease("duties", "two", ttl_s=1.5):  # one stopped renewing
            assert loop.time() < deadline, "the lease never lapsed"
            await asyncio.sleep(0.2)
        assert not await one.acquire_lease("duties", "one", ttl_s=1.5)
        await two.release_lease("duties", "two")
        assert await one.acquire_lease("duties", "one", ttl_s=1.5)
    finally:
        await one.close()
        await two.close()


async def test_alert_announcements_reach_every_follower(nats_url: str, bus_prefix: str) -> None:
    web_a, web_b, worker = [await connected(nats_url, bus_prefix) for _ in range(3)]
    try:
        heard: dict[str, asyncio.Queue] = {"a": asyncio.Queue(), "b": asyncio.Queue()}
        await web_a.follow_alerts(heard["a"].put_nowait)
        await web_b.follow_alerts(heard["b"].put_nowait)
        await web_a.flush()
        await web_b.flush()
        await worker.announce_alerts(42)
        assert await asyncio.wait_for(heard["a"].get(), 5) == 42
        assert await asyncio.wait_for(heard["b"].get(), 5) == 42
    finally:
        for bus in (web_a, web_b, worker):
            await bus.close()
