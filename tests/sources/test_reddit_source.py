"""Reddit: the normaliser on the comments and submissions praw recorded from reddit.com
(Betamax cassettes), and RedditSource against a loopback Reddit that serves those recorded
things as live listings (application-only OAuth, /new and /comments, after= paging and
the X-Ratelimit-* headers)."""

from __future__ import annotations

import asyncio
import base64
import json
from contextlib import aclosing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import Deletion, Ignored, MalformedEvent, Post, RawEvent
from watchfloor.sources.backoff import Backoff
from watchfloor.sources.base import SourceFailed
from watchfloor.sources.config import Secret
from watchfloor.sources.reddit import RedditNormaliser, RedditSource, parse_cursor

PSEUDONYMISE = HmacPseudonymiser(b"r" * 32)
CLIENT_ID, CLIENT_SECRET = "app-id-123", "app-secret-456"


def recorded_things(folder: Path, cassette: str) -> list[dict[str, Any]]:
    """The distinct listing children of a cassette, oldest first."""
    found: dict[str, dict[str, Any]] = {}
    for interaction in json.loads((folder / cassette).read_text(encoding="utf-8"))["interactions"]:
        if "/api/v1/access_token" in interaction["request"]["uri"]:
            continue
        body = json.loads(interaction["response"]["body"]["string"])
        for child in body["data"]["children"]:
            found[child["data"]["name"]] = child
    return sorted(found.values(), key=lambda c: (c["data"]["created_utc"], c["data"]["name"]))


def recorded_token(folder: Path) -> bytes:
    cassette = json.loads((folder / "TestSubredditStreams.test_comments.json").read_text(encoding="utf-8"))
    return cassette["interactions"][0]["response"]["body"]["string"].encode()


@pytest.fixture
def reddit_dir(shared_fixtures: Path) -> Path:
    return shared_fixtures / "reddit"


def raw(thing: dict[str, Any]) -> RawEvent:
    return RawEvent("r", "reddit", "", json.dumps(thing).encode(), datetime(2026, 1, 1, tzinfo=UTC))


# ----------------------------------------------------------------------------- normaliser


def test_recorded_comments_and_submissions_normalise(reddit_dir: Path) -> None:
    normaliser = RedditNormaliser(PSEUDONYMISE)
    things = recorded_things(reddit_dir, "TestSubredditStreams.test_comments.json")
    things += recorded_things(reddit_dir, "TestSubredditStreams.test_submissions.json")
    things += recorded_things(reddit_dir, "TestFront.test_new.json")
    assert len(things) > 500
    kinds: dict[str, int] = {}
    for thing in things:
        item = normaliser.normalise(raw(thing))
        kinds[type(item).__name__] = kinds.get(type(item).__name__, 0) + 1
        if not isinstance(item, Post):
            continue
        data = thing["data"]
        assert item.native_id == data["name"] and item.version == "original"
        assert item.author == PSEUDONYMISE("reddit", data["author"].lower())
        assert item.url is not None and item.url.startswith("https://www.reddit.com/")
        assert f"/u/{data['author']}" not in item.url and f'"{data["author"]}"' not in item.raw.decode()
        assert item.created_at == datetime.fromtimestamp(data["created_utc"], UTC)
        if thing["kind"] == "t1":
            assert item.text == data["body"] and item.reply_to == data["parent_id"]
        else:
            assert item.text.startswith(data["title"])
    assert kinds["Post"] > 500


def test_edits_deletions_and_broken_things(reddit_dir: Path) -> None:
    normaliser = RedditNormaliser(PSEUDONYMISE)
    comment = recorded_things(reddit_dir, "TestSubredditListings.test_comments.json")[0]
    edited = {**comment, "data": {**comment["data"], "edited": 1482373999.0, "body": "edited text"}}
    first, second = normaliser.normalise(raw(comment)), normaliser.normalise(raw(edited))
    assert isinstance(first, Post) and isinstance(second, Post)
    assert first.native_id == second.native_id and first.version != second.version
    gone = {**comment, "data": {**comment["data"], "author": "[deleted]", "body": "[deleted]"}}
    assert normaliser.normalise(raw(gone)) == Deletion("reddit", comment["data"]["name"], raw(gone).received_at)
    assert normaliser.normalise(raw({"kind": "more", "data": {}})) == Ignored("thing:more")
    with pytest.raises(MalformedEvent, match=r"data\.name"):
        normaliser.normalise(raw({"kind": "t1", "data": {**comment["data"], "name": "t3_x"}}))
    with pytest.raises(MalformedEvent, match="created_utc"):
        normaliser.normalise(raw({"kind": "t1", "data": {**comment["data"], "created_utc": "soon"}}))
    mention = {**comment, "data": {**comment["data"], "body": "ask u/Some_One or /u/other https://example.org/x."}}
    post = normaliser.normalise(raw(mention))
    assert post.mentions == (PSEUDONYMISE("reddit", "some_one"), PSEUDONYMISE("reddit", "other"))
    assert post.links == ("https://example.org/x",)


# ----------------------------------------------------------------------------- a loopback Reddit


class RedditServer:
    """Recorded things published as time goes by: a listing shows those created up to ``clock``."""

    def __init__(self, comments: list[dict[str, Any]], submissions: list[dict[str, Any]], token: bytes) -> None:
        self.listings = {"comments": comments, "new": submissions}
        self.token_body = token
        self.clock = 0.0
        self.tick = 0.0  # seconds that pass with every listing request
        self.first_clock: dict[str, float] = {}
        self.tokens_issued = 0
        self.forced: list[tuple[int, dict[str, str], bytes]] = []
        self.rate_headers: dict[str, str] = {
            "X-Ratelimit-Used": "1",
            "X-Ratelimit-Remaining": "599",
            "X-Ratelimit-Reset": "300",
        }
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> RedditServer:
        app = web.Application()
        app.router.add_post("/api/v1/access_token", self.access_token)
        app.router.add_get("/r/{subs}/{listing}", self.listing)
        self.runner = web.AppRunner(app, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def access_token(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        form = await request.post()
        if request.headers.get("Authorization") != expected or form.get("grant_type") != "client_credentials":
            return web.json_response({"message": "Unauthorized", "error": 401}, status=401)
        self.tokens_issued += 1
        return web.Response(body=self.token_body, content_type="application/json")

    async def listing(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, dict(request.query)))
        if request.headers.get("Authorization") != "bearer <ACCESS_TOKEN>":
            return web.json_response({"message": "Unauthorized", "error": 401}, status=401)
        if self.forced:
            status, headers, body = self.forced.pop(0)
            return web.Response(status=status, headers=headers, body=body, content_type="application/json")
        listing = request.match_info["listing"]
        self.clock += self.tick
        self.first_clock.setdefault(listing, self.clock)
        things = [t for t in self.listings[listing] if t["data"]["created_utc"] <= self.clock]
        things.reverse()  # newest first
        if "after" in request.query:
            names = [t["data"]["name"] for t in things]
            things = things[names.index(request.query["after"]) + 1 :] if request.query["after"] in names else []
        page = things[: int(request.query.get("limit", 25))]
        after = page[-1]["data"]["name"] if len(page) == int(request.query.get("limit", 25)) else None
        body = {"kind": "Listing", "data": {"modhash": "", "children": page, "after": after, "before": None}}
        return web.json_response(body, headers=self.rate_headers)


@pytest.fixture
async def reddit(reddit_dir: Path):
    server = await RedditServer(
        recorded_things(reddit_dir, "TestSubredditStreams.test_comments.json"),
        recorded_things(reddit_dir, "TestSubredditStreams.test_submissions.json"),
        recorded_token(reddit_dir),
    ).start()
    yield server
    await server.stop()


def reddit_source(server: RedditServer, **kw) -> RedditSource:
    async def no_sleep(_: float) -> None:
        await asyncio.sleep(0)

    kw.setdefault("sleep", no_sleep)
    return RedditSource(
        "r",
        ["all"],
        client_id=Secret(CLIENT_ID),
        client_secret=Secret(CLIENT_SECRET),
        auth_url=server.url,
        api_url=server.url,
        poll_interval_s=0,
        backoff=Backoff(base_s=0.001, cap_s=0.01),
        **kw,
    )


async def take(source: RedditSource, count: int, cursor: str | None = None, on_poll=None) -> list[RawEvent]:
    out: list[RawEvent] = []

    async def read() -> None:
        async with aclosing(source.events(cursor)) as events:
            async for event in events:
                out.append(event)
                if on_poll is not None:
                    on_poll(out)
                if len(out) >= count:
                    return

    await asyncio.wait_for(read(), 20)
    return out


def names(events: list[RawEvent]) -> list[str]:
    return [json.loads(e.payload)["data"]["name"] for e in events]


async def test_follows_new_posts_and_comments_without_doubles_or_losses(reddit) -> None:
    comments, submissions = reddit.listings["comments"], reddit.listings["new"]
    start = min(t["data"]["created_utc"] for t in comments + submissions)
    reddit.clock, reddit.tick = start + 10, 2.0  # every listing request, two seconds pass
    source = reddit_source(reddit)
    events: list[RawEvent] = []

    async def read() -> None:
        async with aclosing(source.events(None)) as stream:
            async for event in stream:
                events.append(event)

    reader = asyncio.create_task(read())
    end = max(t["data"]["created_utc"] for t in comments + submissions)
    while reddit.clock < end + 10:  # until everything is published, and a few polls after
        await asyncio.sleep(0.01)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    got = names(events)
    assert len(got) == len(set(got)), "nothing doubled"
    for listing, things in reddit.listings.items():
        first_clock = reddit.first_clock[listing]
        first_page = [t for t in things if t["data"]["created_utc"] <= first_clock][-100:]
        later = [t for t in things if t["data"]["created_utc"] > first_clock]
        assert later, "the test needs things published after the first poll"
        expected = {t["data"]["name"] for t in first_page + later}
        assert {n for n in got if n[:2] == things[0]["kind"]} == expected, listing
    state = parse_cursor(events[-1].cursor)
    assert set(state) == {"new", "comments"} and all(len(s.seen) <= 300 for s in state.values())
    assert all(q["limit"] == "100" and q["raw_json"] == "1" for _, q in reddit.requests)
    assert reddit.tokens_issued == 1
    assert source.health.snapshot().status.value == "connected"


async def test_a_restart_from_the_cursor_repeats_nothing(reddit) -> None:
    reddit.clock = float("inf")
    comments = reddit.listings["comments"]
    first = await take(reddit_source(reddit, posts=False), 100)
    assert names(first) == [t["data"]["name"] for t in comments[-100:]]  # the newest page, oldest first
    again = reddit_source(reddit, posts=False)
    seen: list[RawEvent] = []

    async def read() -> None:
        async with aclosing(again.events(first[-1].cursor)) as events:
            async for event in events:
                seen.append(event)

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(read(), 0.5)
    assert seen == []  # nothing new was published: nothing comes twice


async def test_too_many_new_things_for_the_pages_is_a_gap(reddit) -> None:
    comments = reddit.listings["comments"]
    reddit.clock = comments[99]["data"]["created_utc"]
    first = await take(reddit_source(reddit, posts=False), 50)
    reddit.clock = float("inf")  # then more than 100 new comments at once
    source = reddit_source(reddit, posts=False, max_pages=1)
    await take(source, 100, cursor=first[-1].cursor)
    (gap,) = source.health.take_gaps()
    assert "were missed" in gap.reason


async def test_rate_limit_headers_are_honoured(reddit) -> None:
    reddit.clock = float("inf")
    reddit.rate_headers = {"X-Ratelimit-Used": "600", "X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": "42"}
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    source = reddit_source(reddit, sleep=sleep)
    statuses: list[str] = []
    source.health.on_change.append(lambda snapshot: statuses.append(snapshot.status.value))
    await take(source, 101)  # the first page of /new, then the first of /comments
    assert any(41 <= w <= 42 for w in waits), waits
    assert "rate_limited" in statuses


async def test_429_and_5xx_are_retried(reddit) -> None:
    reddit.clock = float("inf")
    reddit.forced = [(429, {"Retry-After": "3"}, b"{}"), (502, {}, b"bad gateway"), (200, {}, b"<html>")]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    source = reddit_source(reddit, sleep=sleep, posts=False)
    events = await take(source, 10)
    assert waits[0] == 3.0 and len(events) == 10
    assert "not a listing" in (source.health.snapshot().last_error or "") or source.health.snapshot().errors >= 2


async def test_bad_credentials_fail_the_source_without_showing_them(reddit) -> None:
    source = RedditSource(
        "r", ["all"], client_id=Secret("nope-id"), client_secret=Secret("nope-secret-789"),
        auth_url=reddit.url, api_url=reddit.url,
    )  # fmt: skip
    with pytest.raises(SourceFailed, match="refused the app credentials") as failure:
        await take(source, 1)
    assert "nope-secret-789" not in str(failure.value)
    with pytest.raises(SourceFailed, match="WATCHFLOOR_REDDIT_CLIENT_ID"):
        await take(RedditSource("r", ["all"], client_id=None, client_secret=None), 1)
