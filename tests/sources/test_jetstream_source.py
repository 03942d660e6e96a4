"""JetstreamSource against a real websocket on loopback that replays the recorded corpus:
compression on (zstd, v1 dictionary) and off (permessage-deflate), connections cut
mid-stream and resumed from the cursor with nothing lost or doubled, refused handshakes,
frames cut half-way, garbage frames, silence, fail-over and a server that cannot resume."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest

from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import RawEvent, Watch, WatchStatus
from watchfloor.pipeline.runner import Pipeline
from watchfloor.sources.backoff import Backoff
from watchfloor.sources.base import Source
from watchfloor.sources.bluesky import JetstreamNormaliser
from watchfloor.sources.jetstream import (
    DEFAULT_ENDPOINTS,
    Decompressor,
    FrameError,
    JetstreamSource,
    dictionary,
    parse_cursor,
    subscribe_url,
    time_us_of,
)
from watchfloor.sources.replay import ReplaySource

SECRET = b"j" * 32
MARGIN_S = 0.05  # the corpus is out of order by up to 33 ms and spans 0.3 s


def fast_backoff() -> Backoff:
    return Backoff(base_s=0.001, cap_s=0.01)


def source_for(*urls: str, compress: bool = True, **kw) -> JetstreamSource:
    kw.setdefault("replay_margin_s", MARGIN_S)
    kw.setdefault("gap_tolerance_s", 0.001)
    return JetstreamSource(
        "js-test", endpoints=list(urls), collections=(), compress=compress, backoff=fast_backoff(), **kw
    )


async def take(source: JetstreamSource, count: int, cursor: str | None = None, timeout: float = 20) -> list[RawEvent]:
    out: list[RawEvent] = []

    async def read() -> None:
        async with aclosing(source.events(cursor)) as events:
            async for event in events:
                out.append(event)
                if len(out) >= count:
                    return

    await asyncio.wait_for(read(), timeout)
    return out


def test_the_shipped_dictionary_is_jetstreams(shared_fixtures: Path) -> None:
    shipped = (resources.files("watchfloor.sources") / "data" / "jetstream_v1_zstd_dictionary.zdict").read_bytes()
    recorded = (shared_fixtures / "bluesky" / "jetstream_v1_zstd_dictionary.zdict").read_bytes()
    assert hashlib.sha256(shipped).digest() == hashlib.sha256(recorded).digest()
    assert dictionary().dict_id() == 1612007021


def test_subscribe_url_and_cursor() -> None:
    url = subscribe_url(
        "wss://h/subscribe", collections=["app.bsky.feed.post", "app.bsky.graph.*"], dids=["did:plc:x"], cursor_us=12
    )
    assert url == (
        "wss://h/subscribe?wantedCollections=app.bsky.feed.post&wantedCollections=app.bsky.graph.%2A"
        "&wantedDids=did%3Aplc%3Ax&cursor=12&compress=true"
    )
    assert subscribe_url("ws://h/subscribe", collections=(), compress=False) == "ws://h/subscribe"
    assert parse_cursor(None) is None and parse_cursor("") is None and parse_cursor("17") == 17
    with pytest.raises(ValueError):
        parse_cursor("12 OR 1=1")
    assert time_us_of(b'{"did":"did:plc:a","time_us":1725911162329308,"kind":"commit"}') == 1725911162329308
    assert time_us_of(b"{not json") is None
    assert len(DEFAULT_ENDPOINTS) == 4
    with pytest.raises(ValueError):
        JetstreamSource(endpoints=["https://not-a-websocket"])
    assert isinstance(JetstreamSource(), Source)


def test_decompressor_refuses_broken_and_oversized_frames(jetstream_corpus) -> None:
    import zstandard

    compressor = zstandard.ZstdCompressor(dict_data=dictionary())
    frame = compressor.compress(jetstream_corpus[0])
    assert Decompressor().decompress(frame) == jetstream_corpus[0]
    with pytest.raises(FrameError):
        Decompressor().decompress(frame[:-4])
    with pytest.raises(FrameError, match="limit"):
        Decompressor(max_bytes=100).decompress(frame)


@pytest.mark.parametrize("compress", [True, False], ids=["zstd", "deflate"])
async def test_reads_the_whole_corpus_over_a_real_websocket(jetstream_corpus, jetstream_server, compress) -> None:
    server = await jetstream_server(jetstream_corpus)
    source = source_for(server.url, compress=compress)
    events = await take(source, len(jetstream_corpus))
    assert [e.payload for e in events] == jetstream_corpus
    assert server.requests[0].get("compress") == (["true"] if compress else None)
    cursors = [int(e.cursor) for e in events]
    assert cursors == sorted(cursors) and cursors[-1] == max(time_us_of(p) for p in jetstream_corpus)
    assert source.health.snapshot().status.value == "connected" and source.health.snapshot().errors == 0


async def test_wanted_collections_are_asked_for_and_honoured(jetstream_corpus, jetstream_server) -> None:
    server = await jetstream_server(jetstream_corpus)
    source = JetstreamSource("js", endpoints=[server.url], backoff=fast_backoff())  # default: posts only
    posts = [p for p in jetstream_corpus if json.loads(p).get("commit", {}).get("collection") == "app.bsky.feed.post"]
    others = [p for p in jetstream_corpus if json.loads(p)["kind"] != "commit"]
    events = await take(source, len(posts) + len(others))
    assert server.requests[0]["wantedCollections"] == ["app.bsky.feed.post"]
    assert sorted(e.payload for e in events) == sorted(posts + others)


@pytest.mark.parametrize("compress", [True, False], ids=["zstd", "deflate"])
async def test_cut_mid_stream_resumes_from_the_cursor_nothing_lost_or_doubled(
    jetstream_corpus, jetstream_server, jetstream_script, compress
) -> None:
    server = await jetstream_server(jetstream_corpus, jetstream_script(cut_after=[40, 25, 60]))
    source = source_for(server.url, compress=compress)
    events: list[RawEvent] = []
    newest_at_connect: list[int] = []  # the newest time_us yielded when each connection opened

    def on_change(snapshot) -> None:
        if snapshot.status.value == "connecting":
            newest_at_connect.append(max((time_us_of(e.payload) for e in events), default=0))

    source.health.on_change.append(on_change)
    async with aclosing(source.events(None)) as stream:
        async for event in stream:
            events.append(event)
            if len(events) == len(jetstream_corpus):
                break
    assert [e.payload for e in events] == jetstream_corpus  # every event once, in order
    assert len(server.requests) == 4 and "cursor" not in server.requests[0]
    margin = int(MARGIN_S * 1_000_000)
    asked = [int(request["cursor"][0]) for request in server.requests[1:]]
    assert asked == [newest - margin for newest in newest_at_connect[1:]]
    assert sum(server.sent) > len(jetstream_corpus)  # the margin was replayed, and recognised
    health = source.health.snapshot()
    assert health.reconnects == 3 and health.errors == 3 and health.gaps == 0
    assert "closed the connection" in (health.last_error or "")


async def test_a_frame_cut_half_way_is_a_reconnect_not_a_loss(jetstream_corpus, jetstream_server, jetstream_script):
    server = await jetstream_server(jetstream_corpus, jetstream_script(truncate_after=[30, 70]))
    source = source_for(server.url)
    events = await take(source, len(jetstream_corpus))
    assert [e.payload for e in events] == jetstream_corpus
    assert source.health.snapshot().reconnects == 2


async def test_refused_handshakes_wait_as_told_then_connect(jetstream_corpus, jetstream_server, jetstream_script):
    script = jetstream_script(refuse=[(429, {"Retry-After": "7"}), (503, {})])
    server = await jetstream_server(jetstream_corpus, script)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    source = source_for(server.url, sleep=sleep)
    events = await take(source, len(jetstream_corpus))
    assert [e.payload for e in events] == jetstream_corpus
    assert waits[0] == 7.0  # Retry-After honoured
    assert 0 < waits[1] <= 0.01  # then exponential backoff with jitter
    health = source.health.snapshot()
    assert health.errors == 2 and "HTTP 503" in (health.last_error or "")


async def test_fails_over_to_the_next_endpoint(jetstream_corpus, jetstream_server, unused_tcp_port) -> None:
    server = await jetstream_server(jetstream_corpus)
    dead = f"ws://127.0.0.1:{unused_tcp_port}/subscribe"
    source = source_for(dead, server.url)
    events = await take(source, len(jetstream_corpus))
    assert [e.payload for e in events] == jetstream_corpus
    assert source.health.snapshot().endpoint == server.url
    assert "cannot connect" in (source.health.snapshot().last_error or "")


async def test_a_silent_server_is_left_for_the_next(jetstream_corpus, jetstream_server, jetstream_script) -> None:
    silent = await jetstream_server(jetstream_corpus, jetstream_script(silent=True))
    good = await jetstream_server(jetstream_corpus)
    source = source_for(silent.url, good.url, idle_timeout_s=0.2)
    events = await take(source, len(jetstream_corpus))
    assert [e.payload for e in events] == jetstream_corpus
    assert "no data for 0.2 s" in (source.health.snapshot().last_error or "")


async def test_a_server_that_cannot_resume_is_a_recorded_gap(jetstream_corpus, jetstream_server, jetstream_script):
    server = await jetstream_server(jetstream_corpus, jetstream_script(cut_after=[50]))
    first = await take(source_for(server.url), 50)
    cursor = first[-1].cursor
    server.script.floor = 90  # meanwhile the server dropped everything before event 90
    resumed = source_for(server.url)
    rest = await take(resumed, len(jetstream_corpus) - 90, cursor=cursor)
    assert [e.payload for e in rest] == jetstream_corpus[90:]
    (gap,) = resumed.health.take_gaps()
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert gap.since == epoch + timedelta(microseconds=int(cursor))
    assert gap.until == epoch + timedelta(microseconds=time_us_of(jetstream_corpus[90]))
    assert "did not replay from the cursor" in gap.reason and gap.source == "js-test"
    assert resumed.health.snapshot().gaps == 1


async def test_garbage_frames_are_yielded_for_the_dead_letters(
    jetstream_corpus, jetstream_server, jetstream_script, store
) -> None:
    inject = {10: b"\x28\xb5\x2f\xfd\x00broken zstd", 20: b'{"did": "did:plc:x", "time_us": "soon", "kind"'}
    server = await jetstream_server(jetstream_corpus, jetstream_script(inject=inject))
    source = source_for(server.url)
    pipeline = Pipeline(source, JetstreamNormaliser(HmacPseudonymiser(SECRET)), store, batch_interval_s=0.02)
    stop = asyncio.Event()
    pipeline.on_commit.append(lambda _: stop.set() if pipeline.stats.events >= len(jetstream_corpus) + 2 else None)
    stats = await asyncio.wait_for(pipeline.run(stop), 20)
    assert stats.events == len(jetstream_corpus) + 2 and stats.dead_letters == 2
    reasons = sorted(d.reason for d in store.list_dead_letters())
    assert reasons[0].startswith("invalid JSON") and reasons[1].startswith("invalid UTF-8")
    assert source.health.snapshot().errors == 1  # the undecompressable frame
    assert "zstd" in (source.health.snapshot().last_error or "")


# ----------------------------------------------------------------------------- through the pipeline


def _watch(store) -> None:
    store.add_watch(
        Watch(
            name="corpus",
            query="the OR a OR i",
            purpose="test",
            legal_basis="test",
            owner="t",
            expires_at=datetime.now(UTC) + timedelta(days=1),
            status=WatchStatus.approved,
            created_by="t",
            approver="second",
        )
    )


def _snapshot(store) -> tuple[list, list, list]:
    """(post keys, tombstones, alert keys) read straight from the database file."""
    conn = sqlite3.connect(store.path)
    try:
        posts = sorted(conn.execute("SELECT platform, native_id, version FROM posts").fetchall())
        tombs = sorted(conn.execute("SELECT platform, native_id FROM tombstones").fetchall())
        alerts = sorted(conn.execute("SELECT watch_id, native_id, version FROM alerts").fetchall())
    finally:
        conn.close()
    return posts, tombs, alerts


class Limited:
    """The first ``count`` events of a live source, then the end (a process that stopped)."""

    def __init__(self, source: JetstreamSource, count: int) -> None:
        self.source, self.count = source, count
        self.name, self.platform = source.name, source.platform

    async def events(self, cursor: str | None):
        seen = 0
        async with aclosing(self.source.events(cursor)) as events:
            async for event in events:
                yield event
                seen += 1
                if seen >= self.count:
                    return


async def test_killed_and_restarted_pipeline_stores_what_a_replay_stores(
    jetstream_corpus, jetstream_server, jetstream_script, tmp_path, shared_fixtures
) -> None:
    from watchfloor.store import open_store

    normaliser = JetstreamNormaliser(HmacPseudonymiser(SECRET))
    reference = open_store(f"sqlite:///{tmp_path / 'reference.db'}")
    live = open_store(f"sqlite:///{tmp_path / 'live.db'}")
    try:
        _watch(reference)
        _watch(live)
        await Pipeline(
            ReplaySource(shared_fixtures / "bluesky" / "jetstream_v1_corpus.jsonl"), normaliser, reference
        ).run()
        expected = _snapshot(reference)
        assert expected[2] and expected[1], "the watch must match some corpus posts; the corpus has deletes"

        server = await jetstream_server(jetstream_corpus, jetstream_script(cut_after=[45, 30]))
        # the first run ends after 70 events (as if stopped or killed after its last commit)
        first = Pipeline(Limited(source_for(server.url), 70), normaliser, live, batch_size=16, batch_interval_s=0.01)
        await asyncio.wait_for(first.run(), 20)
        cursor = live.get_cursor("js-test")
        assert cursor and int(cursor) < max(time_us_of(p) for p in jetstream_corpus)
        second = Pipeline(source_for(server.url), normaliser, live, batch_size=16, batch_interval_s=0.01)
        server.script.cut_after = []
        newest = str(max(time_us_of(p) for p in jetstream_corpus))
        stop = asyncio.Event()
        second.on_commit.append(lambda _: stop.set() if live.get_cursor("js-test") == newest else None)
        await asyncio.wait_for(second.run(stop), 20)
        assert _snapshot(live) == expected
        assert live.get_cursor("js-test") == newest
    finally:
        reference.close()
        live.close()
