"""Feeds: feedparser's own test feeds (ill-formed, odd encodings, RDF, Media RSS, JSON Feed,
and the feeds that carry script, style, iframe and event-handler payloads) read by the
feed reader and normaliser, and RssSource polling a loopback server with conditional
GET, 304s, changed entries, 429, 5xx, a slow server and a document that is not a feed."""

from __future__ import annotations

import asyncio
import json
import re
from contextlib import aclosing
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import MalformedEvent, Post, RawEvent
from watchfloor.sources.backoff import Backoff
from watchfloor.sources.markup import read_html, sanitise_html
from watchfloor.sources.rss import FeedNormaliser, RssSource, entries_from_document

PSEUDONYMISE = HmacPseudonymiser(b"f" * 32)
DANGER = re.compile(r"<script|<iframe|<style|onclick|javascript:|<object|<embed", re.IGNORECASE)


def envelope_event(feed: str, entry: dict) -> RawEvent:
    payload = json.dumps({"feed": feed, "entry": entry}).encode()
    return RawEvent("rss", "rss", "", payload, datetime(2026, 1, 1, tzinfo=UTC))


def feed_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_every_feedparser_fixture_is_read_or_refused_cleanly(shared_fixtures: Path) -> None:
    normaliser = FeedNormaliser(PSEUDONYMISE)
    files = feed_files(shared_fixtures / "rss")
    assert len(files) > 80
    read = refused = posts = 0
    for number, path in enumerate(files):
        content_type = "application/feed+json" if path.suffix == ".json" else "application/xml"
        feed = f"https://feeds.example/feed-{number}"
        try:
            entries = entries_from_document(path.read_bytes(), feed, content_type)
        except ValueError as exc:
            assert str(exc).startswith("not a feed"), path
            refused += 1
            continue
        read += 1
        for entry in entries:
            event = envelope_event(feed, entry)
            assert not DANGER.search(event.payload.decode()), path  # nothing dangerous is even handed on
            try:
                item = normaliser.normalise(event)
            except MalformedEvent:
                continue
            if isinstance(item, Post):
                posts += 1
                assert not DANGER.search(item.text) and not DANGER.search(item.raw.decode()), path
    assert read > 60 and refused >= 1 and posts > 20


def test_script_carrying_feeds_keep_only_the_safe_text(shared_fixtures: Path) -> None:
    normaliser = FeedNormaliser(PSEUDONYMISE)
    checked = 0
    for path in feed_files(shared_fixtures / "rss" / "wellformed" / "sanitize"):
        expect = re.search(r"Expect:\s*(.*)", path.read_text(encoding="utf-8", errors="replace"))
        safe = re.search(r"== u?'([^']*)'", expect.group(1)) if expect else None
        for entry in entries_from_document(path.read_bytes(), "https://feeds.example/s.xml"):
            text = " ".join(str(v) for v in entry.values())
            assert not DANGER.search(text), path
            if not (entry.get("id") or entry.get("link")):
                entry = {**entry, "id": "urn:test:" + path.stem}
            post = normaliser.normalise(envelope_event("https://feeds.example/s.xml", entry))
            if isinstance(post, Post) and safe and safe.group(1) and "entry" in path.name:
                plain = read_html(safe.group(1)).text
                assert plain in post.text, (path.name, post.text)
                checked += 1
    assert checked >= 10


def test_json_feed(shared_fixtures: Path) -> None:
    document = (shared_fixtures / "rss" / "json" / "example.json").read_bytes()
    entries = entries_from_document(document, "https://example.org/feed.json", "application/feed+json")
    assert [e["id"] for e in entries] == ["2", "1"]
    assert "<script" not in entries[1]["content"] and "Hello, world!" in entries[1]["content"]
    normaliser = FeedNormaliser(PSEUDONYMISE)
    second = normaliser.normalise(envelope_event("https://example.org/feed.json", entries[0]))
    assert isinstance(second, Post)
    assert second.native_id == "https://example.org/feed.json#2" and second.url == "https://example.org/second-item"
    assert second.hashtags == ("test", "JSON") and second.media[0].mime_type == "video/mp4"
    assert second.text == "post 2\n\nThis is a second item."
    first = normaliser.normalise(envelope_event("https://example.org/feed.json", entries[1]))
    assert first.author == PSEUDONYMISE("rss", "example.org:you") and "you" not in first.raw.decode()


def test_sanitiser_and_reader() -> None:
    dirty = '<p onclick="x()">Hi <a href="javascript:alert(1)">a</a> <a href="https://ok.example/">b</a></p>'
    dirty += "<script>alert(1)</script><iframe src=//evil></iframe><img src=//track.example/p.gif>"
    clean = sanitise_html(dirty)
    assert not DANGER.search(clean) and "<img" not in clean and 'href="https://ok.example/"' in clean
    reading = read_html('<p>one<br>two</p><script>var x="no"</script><p>three &amp; four</p>')
    assert reading.text == "one\ntwo\n\nthree & four"
    assert read_html('<a href="https://x.example/@me" class="u-url mention">@me</a>').links == ()


# ----------------------------------------------------------------------------- a loopback feed server


class FeedServer:
    def __init__(self, body: bytes, content_type: str = "application/rss+xml") -> None:
        self.body, self.content_type = body, content_type
        self.etag = '"v1"'
        self.forced: list[tuple[int, dict[str, str], bytes, float]] = []  # status, headers, body, delay
        self.requests: list[dict[str, str]] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/feed"

    async def start(self) -> FeedServer:
        app = web.Application()
        app.router.add_get("/feed", self.feed)
        self.runner = web.AppRunner(app, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def feed(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(dict(request.headers))
        if self.forced:
            status, headers, body, delay = self.forced.pop(0)
            await asyncio.sleep(delay)
            return web.Response(status=status, headers=headers, body=body)
        if request.headers.get("If-None-Match") == self.etag:
            return web.Response(status=304)
        headers = {"ETag": self.etag, "Last-Modified": "Wed, 25 Nov 2026 10:00:00 GMT"}
        return web.Response(body=self.body, headers=headers, content_type=self.content_type)


RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Synthetic test feed</title><language>en-GB</language>
{items}
</channel></rss>"""
ITEM = """<item><guid>urn:item:{n}</guid><title>Item {n}</title><link>https://news.example/{n}</link>
<description>{text} &lt;script&gt;alert({n})&lt;/script&gt;</description><author>desk@news.example</author>
<pubDate>Wed, 25 Nov 2026 0{n}:00:00 GMT</pubDate></item>"""


def rss(*items: tuple[int, str]) -> bytes:
    return RSS.format(items="\n".join(ITEM.format(n=n, text=text) for n, text in reversed(items))).encode()


@pytest.fixture
async def feed_server():
    servers: list[FeedServer] = []

    async def start(body: bytes, content_type: str = "application/rss+xml") -> FeedServer:
        server = await FeedServer(body, content_type).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        if server.runner is not None:
            await server.runner.cleanup()


def quick_source(*urls: str, **kw) -> RssSource:
    async def no_sleep(_: float) -> None:
        await asyncio.sleep(0)

    kw.setdefault("sleep", no_sleep)
    return RssSource("rss", list(urls), poll_interval_s=0, backoff=Backoff(base_s=0.001, cap_s=0.01), **kw)


async def take(source: RssSource, count: int, cursor: str | None = None, polls: int | None = None) -> list[RawEvent]:
    out: list[RawEvent] = []

    async def read() -> None:
        async with aclosing(source.events(cursor)) as events:
            async for event in events:
                out.append(event)
                if len(out) >= count:
                    return

    if polls is None:
        await asyncio.wait_for(read(), 20)
        return out
    task = asyncio.create_task(read())
    while source.polls < polls and not task.done():
        await asyncio.sleep(0.005)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return out


def titles(events: list[RawEvent]) -> list[str]:
    return [json.loads(e.payload)["entry"]["title"] for e in events]


async def test_conditional_get_new_and_changed_entries(feed_server) -> None:
    server = await feed_server(rss((1, "first"), (2, "second")))
    source = quick_source(server.url)
    first = await take(source, 2)
    assert titles(first) == ["Item 1", "Item 2"]  # oldest first
    assert not any(DANGER.search(e.payload.decode()) for e in first)
    polled = await take(quick_source(server.url), 99, cursor=first[-1].cursor, polls=3)
    assert polled == []  # a restart repeats nothing
    assert server.requests[-1].get("If-None-Match") == '"v1"'
    assert server.requests[-1].get("If-Modified-Since") == "Wed, 25 Nov 2026 10:00:00 GMT"
    server.body, server.etag = rss((1, "first"), (2, "second, corrected"), (3, "third")), '"v2"'
    later = await take(quick_source(server.url), 2, cursor=first[-1].cursor)
    assert titles(later) == ["Item 2", "Item 3"]  # the changed entry is a new version; the new one
    normaliser = FeedNormaliser(PSEUDONYMISE)
    old, new = normaliser.normalise(first[1]), normaliser.normalise(later[0])
    assert old.native_id == new.native_id == "urn:item:2" and old.version != new.version
    assert new.lang == "en" and "alert" not in new.text and new.url == "https://news.example/2"


async def test_errors_slow_servers_and_non_feeds(feed_server) -> None:
    server = await feed_server(rss((1, "only")))
    server.forced = [
        (429, {"Retry-After": "2"}, b"slow down", 0.0),
        (503, {}, b"", 0.0),
        (200, {}, b"", 1.0),  # slower than the client waits
        (200, {"Content-Type": "text/html"}, b"<html><body>Sign in to continue</body></html>", 0.0),
    ]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    client = httpx.AsyncClient(timeout=httpx.Timeout(0.3))
    source = quick_source(server.url, sleep=sleep, client=client)
    events = await take(source, 2)
    await client.aclose()
    assert waits[0] == 2.0
    not_feed, entry = events
    with pytest.raises(MalformedEvent, match="not a feed"):
        FeedNormaliser(PSEUDONYMISE).normalise(not_feed)
    assert titles([entry]) == ["Item 1"]
    assert source.health.snapshot().errors >= 3
