"""YouTube: the normaliser and YouTubeSource against a loopback commentThreads.list.

There are no recordings of the YouTube Data API in the shared fixtures, so the threads
and error bodies come from ``recordings/youtube_commentThreads.synthetic.json``: SYNTHETIC
data written for these tests after the documented response and error formats."""

from __future__ import annotations

import asyncio
import json
from contextlib import aclosing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import Ignored, MalformedEvent, Post, RawEvent
from watchfloor.sources.backoff import Backoff
from watchfloor.sources.base import SourceFailed
from watchfloor.sources.config import Secret
from watchfloor.sources.youtube import YouTubeNormaliser, YouTubeSource, next_quota_reset, quota_day

RECORDING = Path(__file__).parent / "recordings" / "youtube_commentThreads.synthetic.json"
PSEUDONYMISE = HmacPseudonymiser(b"y" * 32)
KEY = "AIzaSy-synthetic-test-key-0001"


@pytest.fixture(scope="module")
def recording() -> dict[str, Any]:
    data = json.loads(RECORDING.read_text(encoding="utf-8"))
    assert data["_synthetic"].startswith("SYNTHETIC")
    return data


def comment_event(thread: dict[str, Any], comment: dict[str, Any] | None = None) -> RawEvent:
    comment = comment or thread["snippet"]["topLevelComment"]
    envelope = {"videoId": thread["snippet"]["videoId"], "thread": thread["id"], "comment": comment}
    return RawEvent("yt", "youtube", "", json.dumps(envelope).encode(), datetime(2026, 11, 21, tzinfo=UTC))


def test_normaliser_keeps_no_names(recording) -> None:
    normaliser = YouTubeNormaliser(PSEUDONYMISE)
    threads = recording["threads_oldest_first"]
    post = normaliser.normalise(comment_event(threads[0]))
    assert isinstance(post, Post)
    assert post.native_id == "UgzSynth0001" and post.text.startswith("The water is over the footpath")
    assert post.author == PSEUDONYMISE("youtube", "UCriverwatcherxxxxxxxxxxxx"[:24])
    assert post.url == "https://www.youtube.com/watch?v=vid00000001&lc=UgzSynth0001"
    assert "riverwatcher" not in post.raw.decode() and "authorDisplayName" not in post.raw.decode()
    reply = threads[1]["replies"]["comments"][0]
    answer = normaliser.normalise(comment_event(threads[1], reply))
    assert answer.reply_to == "UgzSynth0002" and answer.links == ("https://example.org/report",)
    edited = normaliser.normalise(comment_event(threads[3]))
    assert edited.version == "2026-11-20T09:01:00+00:00" and edited.created_at.hour == 8
    assert normaliser.normalise(comment_event(threads[0], {"kind": "youtube#video"})) == Ignored(
        "youtube:youtube#video"
    )
    broken = dict(threads[0]["snippet"]["topLevelComment"], snippet={"textOriginal": "x", "publishedAt": "now"})
    with pytest.raises(MalformedEvent, match="authorChannelId"):
        normaliser.normalise(comment_event(threads[0], broken))


def test_quota_days_start_at_midnight_pacific() -> None:
    moment = datetime(2026, 11, 25, 7, 59, tzinfo=UTC)  # 23:59 in California
    assert quota_day(moment).isoformat() == "2026-11-24"
    assert next_quota_reset(moment) == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)


class YouTubeServer:
    def __init__(self, threads: list[dict[str, Any]], page_size: int = 2) -> None:
        self.threads = threads
        self.visible = len(threads)
        self.page_size = page_size
        self.forced: list[tuple[int, dict[str, Any]]] = []
        self.requests: list[dict[str, str]] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/youtube/v3"

    async def start(self) -> YouTubeServer:
        app = web.Application()
        app.router.add_get("/youtube/v3/commentThreads", self.comment_threads)
        self.runner = web.AppRunner(app, handle_signals=False)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def comment_threads(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.requests.append(query)
        if self.forced:
            status, body = self.forced.pop(0)
            return web.json_response(body, status=status)
        if query.get("key") != KEY:
            return web.json_response({"error": {"code": 400, "errors": [{"reason": "keyInvalid"}]}}, status=400)
        assert query["part"] == "snippet,replies" and query["order"] == "time" and query["videoId"] == "vid00000001"
        newest_first = list(reversed(self.threads[: self.visible]))
        start = int(query.get("pageToken", "0"))
        page = newest_first[start : start + self.page_size]
        body: dict[str, Any] = {
            "kind": "youtube#commentThreadListResponse",
            "pageInfo": {"totalResults": len(page), "resultsPerPage": self.page_size},
            "items": page,
        }
        if start + self.page_size < len(newest_first):
            body["nextPageToken"] = str(start + self.page_size)
        return web.json_response(body)


@pytest.fixture
async def youtube(recording):
    server = await YouTubeServer(recording["threads_oldest_first"]).start()
    yield server
    await server.runner.cleanup()  # type: ignore[union-attr]


def yt_source(server: YouTubeServer, **kw) -> YouTubeSource:
    async def no_sleep(_: float) -> None:
        await asyncio.sleep(0)

    kw.setdefault("sleep", no_sleep)
    return YouTubeSource(
        "yt",
        videos=["vid00000001"],
        api_key=Secret(KEY),
        api_url=server.url,
        poll_interval_s=0,
        backoff=Backoff(base_s=0.001, cap_s=0.01),
        **kw,
    )


async def take(source: YouTubeSource, count: int, cursor: str | None = None) -> list[RawEvent]:
    out: list[RawEvent] = []

    async def read() -> None:
        async with aclosing(source.events(cursor)) as events:
            async for event in events:
                out.append(event)
                if len(out) >= count:
                    return

    await asyncio.wait_for(read(), 20)
    return out


def comment_ids(events: list[RawEvent]) -> list[str]:
    return [json.loads(e.payload)["comment"]["id"] for e in events]


async def test_new_comments_and_replies_oldest_first_and_resumable(youtube) -> None:
    youtube.visible = 2
    first = await take(yt_source(youtube), 3)  # a fresh start reads one page: 2 threads, one with a reply
    assert comment_ids(first) == ["UgzSynth0001", "UgzSynth0002", "UgzSynth0002.r0"]
    youtube.visible = 5
    rest = await take(yt_source(youtube), 3, cursor=first[-1].cursor)
    assert comment_ids(rest) == ["UgzSynth0003", "UgzSynth0004", "UgzSynth0005"]
    assert [q.get("pageToken") for q in youtube.requests[-2:]] == [None, "2"]  # paged back to known comments
    state = json.loads(rest[-1].cursor)
    assert state["used"] == 3 and len(state["targets"]["video:vid00000001"]) == 6


async def test_the_daily_quota_is_counted_and_respected(youtube) -> None:
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) > 3:
            raise asyncio.CancelledError
        await asyncio.sleep(0)

    source = yt_source(youtube, daily_quota=3, sleep=sleep, clock=lambda: now)
    with pytest.raises(asyncio.CancelledError):
        await take(source, 99)
    assert len(youtube.requests) == 3  # three calls, then no more until the quota day ends
    until_reset = (next_quota_reset(now) - now).total_seconds()
    assert until_reset in waits
    health = source.health.snapshot()
    assert health.quota_used == 3 and health.quota_limit == 3
    assert health.status.value == "rate_limited" and health.rate_limited_until == next_quota_reset(now)


async def test_quota_exceeded_answers_wait_for_the_reset(youtube, recording) -> None:
    youtube.forced = [(403, recording["errors"]["quotaExceeded"])]
    now = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    source = yt_source(youtube, sleep=sleep, clock=lambda: now + timedelta(seconds=len(waits) * 86400))
    events = await take(source, 2)
    assert waits[0] == (next_quota_reset(now) - now).total_seconds() and len(events) == 2


async def test_comments_disabled_is_an_error_and_a_bad_key_fails(youtube, recording) -> None:
    youtube.forced = [(403, recording["errors"]["commentsDisabled"])]
    source = yt_source(youtube)
    events = await take(source, 1)
    assert len(events) == 1 and "commentsDisabled" in (source.health.snapshot().last_error or "")
    youtube.forced = [(400, recording["errors"]["keyInvalid"])]
    failing = yt_source(youtube)
    with pytest.raises(SourceFailed, match="API_KEY_INVALID") as failure:
        await take(failing, 1)
    assert KEY not in str(failure.value) and KEY not in repr(failing.health.snapshot())
    with pytest.raises(SourceFailed, match="WATCHFLOOR_YOUTUBE_API_KEY"):
        await take(YouTubeSource("yt", videos=["v"], api_key=None), 1)


async def test_server_errors_never_show_the_key(youtube) -> None:
    youtube.forced = [(500, {"error": {"code": 500, "message": f"backend error for key={KEY}"}})]
    source = yt_source(youtube)
    events = await take(source, 1)
    assert events and source.health.snapshot().errors == 1
    assert KEY not in repr(source.health.snapshot())
