"""YouTube: comments on chosen channels or videos, through the Data API v3 with an API key.

It polls ``commentThreads.list`` (``part=snippet,replies``, ``order=time``, 100 per
page) for every target: ``allThreadsRelatedToChannelId=<channel>`` (every video of a
channel) or ``videoId=<video>``. New threads come newest first; it pages back until
it meets comments it has seen (at most ``max_pages`` pages, else a gap is recorded).
Each top-level comment and each reply the thread carries (the API includes up to
five) becomes one raw event: ``{"videoId": …, "thread": …, "comment": <comment resource>}``.
An edited comment (``updatedAt`` later than before) is a new version.

Quota. Every ``commentThreads.list`` call costs 1 unit of the project's daily quota
(10,000 by default), which resets at midnight Pacific time. The source counts the
units it spends (the count is part of the cursor, so a restart does not forget it),
shows them in its health, and when ``daily_quota`` is spent it waits for the reset
instead of calling. A ``403 quotaExceeded`` answer is treated the same way.

Privacy: authors are pseudonymised from their channel id; their display names, channel
URLs and pictures are neither stored nor shown (they are also removed from the raw
payload kept with a matched comment). ``url`` is the video URL with the comment id.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx

from watchfloor.model import Ignored, MalformedEvent, Normalised, Post, RawEvent, utcnow
from watchfloor.sources import fields as f
from watchfloor.sources.backoff import Backoff, Sleep, real_sleep
from watchfloor.sources.base import Pseudonymiser, SourceFailed
from watchfloor.sources.config import Secret
from watchfloor.sources.health import SourceHealth
from watchfloor.sources.http import HttpRefused, PoliteClient, new_client
from watchfloor.sources.markup import read_html

PLATFORM = "youtube"
API_URL = "https://www.googleapis.com/youtube/v3"
DAILY_QUOTA = 10_000
COST_PER_CALL = 1
PAGE_SIZE = 100
SEEN_KEPT = 500
QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded", "rateLimitExceeded", "RATE_LIMIT_EXCEEDED"})
KEY_REASONS = frozenset({"keyInvalid", "keyExpired", "API_KEY_INVALID", "API_KEY_EXPIRED", "accessNotConfigured"})
_AUTHOR_FIELDS = ("authorDisplayName", "authorProfileImageUrl", "authorChannelUrl")

try:
    PACIFIC: timezone | ZoneInfo = ZoneInfo("America/Los_Angeles")
except ZoneInfoNotFoundError:  # no time zone database: close enough, off by an hour in summer
    PACIFIC = timezone(timedelta(hours=-8))


def quota_day(now: datetime) -> date:
    """The quota day ``now`` falls in (days start at midnight Pacific time)."""
    return now.astimezone(PACIFIC).date()


def next_quota_reset(now: datetime) -> datetime:
    local = now.astimezone(PACIFIC)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=PACIFIC)
    return midnight.astimezone(now.tzinfo or UTC)


# --------------------------------------------------------------------------- normaliser


class YouTubeNormaliser:
    """Reads the comment envelopes of :class:`YouTubeSource`."""

    platform = PLATFORM

    def __init__(self, pseudonymise: Pseudonymiser) -> None:
        self._pseudonymise = pseudonymise

    def normalise(self, event: RawEvent) -> Normalised:
        envelope = f.load_object(event.payload, "envelope")
        comment = f.child(envelope, "comment", "comment")
        kind = f.optional_text(comment, "kind", "comment.kind", limit=64)
        if kind not in (None, "youtube#comment"):
            return Ignored(kind=f"youtube:{kind}")
        comment_id = f.identifier(comment, "id", "comment.id")
        snippet = f.child(comment, "snippet", "comment.snippet")
        video = f.optional_text(envelope, "videoId", "videoId", limit=64) or f.optional_text(
            snippet, "videoId", "comment.snippet.videoId", limit=64
        )
        author = f.optional_child(snippet, "authorChannelId", "comment.snippet.authorChannelId")
        channel = f.text(author, "value", "comment.snippet.authorChannelId.value", limit=128) if author else None
        if not channel:
            raise MalformedEvent("comment.snippet.authorChannelId missing")
        published = f.parse_time(snippet.get("publishedAt"), "comment.snippet.publishedAt")
        updated_value = snippet.get("updatedAt")
        updated = f.parse_time(updated_value, "comment.snippet.updatedAt") if updated_value else published
        original = f.optional_text(snippet, "textOriginal", "comment.snippet.textOriginal")
        text = (
            original
            if original is not None
            else read_html(f.text(snippet, "textDisplay", "comment.snippet.textDisplay")).text
        )
        display = f.optional_text(snippet, "textDisplay", "comment.snippet.textDisplay") or ""
        parent = f.optional_text(snippet, "parentId", "comment.snippet.parentId", limit=128)
        url = f"https://www.youtube.com/watch?v={video}&lc={comment_id}" if video else None
        return Post(
            platform=PLATFORM,
            native_id=comment_id,
            version=updated.isoformat(),
            created_at=published,
            received_at=event.received_at,
            text=text,
            author=self._pseudonymise(PLATFORM, channel),
            url=url,
            links=read_html(display).links if "<a " in display else (),
            reply_to=parent,
            quote_of=None,
            raw=redact_payload(envelope),
        )


def redact_payload(envelope: dict[str, Any]) -> bytes:
    """The envelope without the author's display name, channel URL, channel id and picture."""
    comment = dict(envelope.get("comment") or {})
    snippet = dict(comment.get("snippet") or {})
    for name in (*_AUTHOR_FIELDS, "authorChannelId"):
        snippet.pop(name, None)
    comment["snippet"] = snippet
    return f.compact({**envelope, "comment": comment})


# --------------------------------------------------------------------------- source


@dataclass(slots=True)
class TargetState:
    seen: list[str] = field(default_factory=list)  # "<comment id>@<updatedAt>", oldest first

    def remember(self, key: str) -> None:
        self.seen.append(key)
        if len(self.seen) > SEEN_KEPT:
            del self.seen[: len(self.seen) - SEEN_KEPT]


@dataclass(slots=True)
class YouTubeState:
    day: str = ""
    used: int = 0
    targets: dict[str, TargetState] = field(default_factory=dict)

    def spend(self, units: int, now: datetime) -> None:
        today = quota_day(now).isoformat()
        if self.day != today:
            self.day, self.used = today, 0
        self.used += units

    def used_today(self, now: datetime) -> int:
        return self.used if self.day == quota_day(now).isoformat() else 0


def parse_cursor(cursor: str | None) -> YouTubeState:
    if not cursor:
        return YouTubeState()
    try:
        raw = json.loads(cursor)
        return YouTubeState(
            day=str(raw.get("day", "")),
            used=int(raw.get("used", 0)),
            targets={k: TargetState([str(s) for s in v]) for k, v in raw.get("targets", {}).items()},
        )
    except (ValueError, TypeError, AttributeError):
        raise ValueError(f"not a YouTube cursor: {cursor[:60]!r}") from None


def format_cursor(state: YouTubeState) -> str:
    return json.dumps(
        {"day": state.day, "used": state.used, "targets": {k: v.seen for k, v in sorted(state.targets.items())}},
        separators=(",", ":"),
    )


class QuotaExhausted(Exception):
    pass


class YouTubeSource:
    """Polls comment threads of channels and videos, within a daily quota."""

    platform = PLATFORM

    def __init__(
        self,
        name: str,
        *,
        channels: Sequence[str] = (),
        videos: Sequence[str] = (),
        api_key: Secret | None,
        api_url: str = API_URL,
        poll_interval_s: float = 300.0,
        daily_quota: int = DAILY_QUOTA,
        max_pages: int = 5,
        backoff: Backoff | None = None,
        sleep: Sleep = real_sleep,
        clock: Any = utcnow,
        health: SourceHealth | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not channels and not videos:
            raise ValueError("name at least one channel or video")
        self.name = name
        self.targets = [("allThreadsRelatedToChannelId", c) for c in channels] + [("videoId", v) for v in videos]
        self.api_key = api_key
        self.api_url = api_url.rstrip("/")
        self.poll_interval_s = poll_interval_s
        self.daily_quota = daily_quota
        self.max_pages = max_pages
        self.backoff = backoff or Backoff(base_s=5.0, cap_s=900.0)
        self.sleep = sleep
        self.clock = clock
        self.health = health or SourceHealth(name, PLATFORM)
        if api_key:
            self.health.add_secrets(api_key.reveal())
        self._client = client
        self.calls = 0

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        if not self.api_key:
            raise SourceFailed(
                f"YouTube source {self.name!r} needs an API key: set WATCHFLOOR_YOUTUBE_API_KEY "
                "(or `watchfloor source add youtube … --api-key …`)"
            )
        state = parse_cursor(cursor)
        self.health.quota(state.used_today(self.clock()), self.daily_quota)
        client = self._client or new_client()
        http = PoliteClient(client, self.health, backoff=self.backoff, sleep=self.sleep, clock=self.clock)
        try:
            while True:
                try:
                    for parameter, target in self.targets:
                        async for event in self._poll_target(http, state, parameter, target):
                            yield event
                except QuotaExhausted:
                    until = next_quota_reset(self.clock())
                    self.health.rate_limited(until, f"daily quota of {self.daily_quota} units used up")
                    await self.sleep(max((until - self.clock()).total_seconds(), 1.0))
                    continue
                await self.sleep(self.poll_interval_s)
        finally:
            if self._client is None:
                await client.aclose()

    async def _poll_target(
        self, http: PoliteClient, state: YouTubeState, parameter: str, target: str
    ) -> AsyncIterator[RawEvent]:
        key = f"{'channel' if parameter.startswith('all') else 'video'}:{target}"
        target_state = state.targets.setdefault(key, TargetState())
        seen = set(target_state.seen)
        fresh: list[list[tuple[str, dict[str, Any]]]] = []  # per thread, newest thread first
        page_token: str | None = None
        reached = False
        pages = self.max_pages if target_state.seen else 1
        for _ in range(pages):
            page = await self._call(http, state, parameter, target, page_token)
            if page is None:
                return
            threads, page_token = page
            known = False
            for thread in threads:
                group = []
                for comment_key, envelope in _comments_of(thread):
                    if comment_key in seen:
                        known = True
                        continue
                    seen.add(comment_key)
                    group.append((comment_key, envelope))
                fresh.append(group)
            if known or not page_token:
                reached = True
                break
        if target_state.seen and not reached:
            self.health.gap(f"{key}: more than {self.max_pages} pages of new comments since the last poll")
        for group in reversed(fresh):  # oldest thread first, each comment before its replies
            for comment_key, envelope in group:
                target_state.remember(comment_key)
                yield RawEvent(self.name, PLATFORM, format_cursor(state), f.compact(envelope), utcnow())

    async def _call(
        self, http: PoliteClient, state: YouTubeState, parameter: str, target: str, page_token: str | None
    ) -> tuple[list[Any], str | None] | None:
        now = self.clock()
        if state.used_today(now) + COST_PER_CALL > self.daily_quota:
            raise QuotaExhausted
        assert self.api_key
        params = {
            "part": "snippet,replies",
            parameter: target,
            "order": "time",
            "maxResults": str(PAGE_SIZE),
            "textFormat": "plainText",
            "key": self.api_key.reveal(),
        }
        if page_token:
            params["pageToken"] = page_token
        state.spend(COST_PER_CALL, now)
        self.calls += 1
        self.health.quota(state.used_today(now), self.daily_quota)
        try:
            response = await http.get(f"{self.api_url}/commentThreads", params=params)
        except HttpRefused as exc:
            reasons = _error_reasons(exc.body or exc.detail)
            if reasons & QUOTA_REASONS:
                state.used = max(state.used, self.daily_quota)
                raise QuotaExhausted from None
            if reasons & KEY_REASONS or exc.status == 401:
                shown = ", ".join(sorted(reasons & KEY_REASONS)) or exc.status
                raise SourceFailed(f"YouTube refused the API key ({shown}): check it") from None
            self.health.error(f"{parameter}={target}: HTTP {exc.status} {', '.join(sorted(reasons))}".strip())
            return None  # comments disabled, video or channel gone: try again later
        try:
            body = response.json()
            items = body["items"]
            if not isinstance(items, list):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            self.health.error(f"{parameter}={target}: the answer is not a commentThreadListResponse")
            return None
        token = body.get("nextPageToken")
        return items, token if isinstance(token, str) else None


def _comments_of(thread: Any) -> list[tuple[str, dict[str, Any]]]:
    """(seen key, envelope) of the top-level comment and the replies of a thread, newest last."""
    if not isinstance(thread, dict):
        return [("bad:" + json.dumps(thread)[:64], {"comment": thread})]
    snippet = thread.get("snippet") if isinstance(thread.get("snippet"), dict) else {}
    video = snippet.get("videoId")
    comments = [snippet.get("topLevelComment")]
    replies = thread.get("replies")
    if isinstance(replies, dict) and isinstance(replies.get("comments"), list):
        comments += replies["comments"]
    found = []
    for comment in comments:
        if comment is None:
            continue
        inner = comment.get("snippet") if isinstance(comment, dict) else None
        updated = inner.get("updatedAt") if isinstance(inner, dict) else None
        comment_id = comment.get("id") if isinstance(comment, dict) else None
        key = f"{comment_id}@{updated}"
        envelope = {"videoId": video, "thread": thread.get("id"), "comment": comment}
        found.append((key, {k: v for k, v in envelope.items() if v is not None}))
    return found


def _error_reasons(body: str) -> set[str]:
    """The ``reason`` values of a Google API error body (``errors[].reason``, ``details[].reason``)."""
    try:
        error = json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return set(re.findall(r'"reason"\s*:\s*"([A-Za-z_]+)"', body))
    if not isinstance(error, dict):
        return set()
    found = set()
    for part in (error.get("errors") or []) + (error.get("details") or []):
        if isinstance(part, dict) and isinstance(part.get("reason"), str):
            found.add(part["reason"])
    return found
