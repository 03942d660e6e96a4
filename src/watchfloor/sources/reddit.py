"""Reddit: new posts and new comments of chosen subreddits, through the official API.

Credentials: a Reddit "script" or "web" app's client id and secret (application-only
OAuth, ``grant_type=client_credentials``); no user account is used. Reddit asks for a
descriptive ``User-Agent``: set ``user_agent`` to something that names you.

How it runs. Every ``poll_interval_s`` it reads ``/r/<a>+<b>/new`` and
``/r/<a>+<b>/comments`` (100 per page, ``raw_json=1``), newest first, until it reaches
an item it has already seen (or up to ``max_pages`` pages back, ``after=``), and yields
the new items oldest first. The cursor remembers, per listing, the newest creation
time and the names of the last items seen, so a restart yields nothing twice and
misses nothing the listing still shows. When catching up runs out of pages before it
reaches known items, the items between were missed: a gap is recorded. Rate limits:
``X-Ratelimit-Remaining`` and ``X-Ratelimit-Reset`` are honoured (see
:mod:`watchfloor.sources.http`), and so are 429 answers.

The payload of each raw event is the listing child as Reddit sends it:
``{"kind": "t3" | "t1", "data": {…}}``. Posts are keyed by their fullname; an edit
(``edited``) is a new version; an item whose author and text are ``[deleted]`` or
``[removed]`` is a deletion. Authors and ``u/`` mentions are pseudonymised by user
name; URLs are permalinks, which name the subreddit but not the author.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from watchfloor.model import Deletion, Ignored, MalformedEvent, MediaRef, Normalised, Post, RawEvent, utcnow
from watchfloor.sources import fields as f
from watchfloor.sources.backoff import Backoff, Sleep, real_sleep
from watchfloor.sources.base import Pseudonymiser, SourceFailed
from watchfloor.sources.config import Secret
from watchfloor.sources.health import SourceHealth
from watchfloor.sources.http import HttpRefused, PoliteClient, new_client

PLATFORM = "reddit"
AUTH_URL = "https://www.reddit.com"
API_URL = "https://oauth.reddit.com"
WEB_URL = "https://www.reddit.com"
PAGE_SIZE = 100
SEEN_KEPT = 300
GONE = frozenset({"[deleted]", "[removed]"})
_SUBREDDIT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_]{1,20}")
_URL = re.compile(r"https?://[^\s<>()\[\]\"'`]+", re.IGNORECASE)
_PERSONAL = re.compile(r"author|link_author|approved_by|banned_by|mod_reason_by|user_reports|mod_reports")
_USER_MENTION = re.compile(r"(?<![\w/])/?u/([A-Za-z0-9_-]{3,20})\b")


# --------------------------------------------------------------------------- normaliser


class RedditNormaliser:
    """Reads listing children (``t3`` posts, ``t1`` comments)."""

    platform = PLATFORM

    def __init__(self, pseudonymise: Pseudonymiser) -> None:
        self._pseudonymise = pseudonymise

    def normalise(self, event: RawEvent) -> Normalised:
        thing = f.load_object(event.payload, "thing")
        kind = f.text(thing, "kind", "kind", limit=16)
        if kind not in ("t1", "t3"):
            return Ignored(kind=f"thing:{kind}")
        data = f.child(thing, "data", "data")
        name = f.text(data, "name", "data.name", limit=64)
        if not name.startswith(kind + "_") or not name[3:].isalnum():
            raise MalformedEvent(f"data.name {f.short(name)} is not a {kind} fullname")
        created_at = f.from_epoch(data.get("created_utc"), "data.created_utc")
        author = f.optional_text(data, "author", "data.author", limit=64) or "[deleted]"
        if kind == "t1":
            body = f.optional_text(data, "body", "data.body") or ""
            title = ""
        else:
            body = f.optional_text(data, "selftext", "data.selftext") or ""
            title = f.text(data, "title", "data.title", limit=1000)
        if author in GONE and (body in GONE or (kind == "t3" and data.get("removed_by_category"))):
            return Deletion(platform=PLATFORM, native_id=name, deleted_at=event.received_at)
        if body in GONE:
            body = ""
        edited = data.get("edited")
        version = "original"
        if isinstance(edited, int | float) and not isinstance(edited, bool) and edited > 0:
            version = f"edited:{f.from_epoch(edited, 'data.edited').isoformat()}"
        text = f"{title}\n\n{body}".strip() if kind == "t3" else body
        links = _URL.findall(body)
        media: list[MediaRef] = []
        if kind == "t3":
            target = f.optional_text(data, "url", "data.url", limit=4096)
            if target and not data.get("is_self") and target.startswith(("http://", "https://")):
                links.insert(0, target)
                if data.get("post_hint") == "image":
                    media.append(MediaRef(url=target, mime_type="image/*"))
        return Post(
            platform=PLATFORM,
            native_id=name,
            version=version,
            created_at=created_at,
            received_at=event.received_at,
            text=text,
            author=self._pseudonymise(PLATFORM, author.lower()),
            lang=None,
            url=_permalink(kind, data),
            links=f.unique(link.rstrip(".,;:!?*_~") for link in links),
            hashtags=(),
            mentions=f.unique(self._pseudonymise(PLATFORM, m.lower()) for m in _USER_MENTION.findall(text)),
            reply_to=f.optional_text(data, "parent_id", "data.parent_id", limit=64) if kind == "t1" else None,
            quote_of=f.optional_text(data, "crosspost_parent", "data.crosspost_parent", limit=64),
            media=tuple(media),
            raw=f.compact({"kind": kind, "data": {k: v for k, v in data.items() if not _PERSONAL.match(k)}}),
        )


def _permalink(kind: str, data: f.JsonObject) -> str:
    permalink = data.get("permalink")
    if isinstance(permalink, str) and permalink.startswith("/r/") and "/u/" not in permalink:
        return WEB_URL + permalink
    thing_id = str(data.get("id", ""))
    link = str(data.get("link_id", ""))
    if kind == "t1" and link.startswith("t3_"):
        return f"{WEB_URL}/comments/{link[3:]}/_/{thing_id}/"
    return f"{WEB_URL}/comments/{thing_id}/"


# --------------------------------------------------------------------------- cursor


@dataclass(slots=True)
class ListingState:
    newest: float = 0.0  # created_utc of the newest item seen
    seen: list[str] = field(default_factory=list)  # fullnames, oldest first, at most SEEN_KEPT
    polled: bool = False  # read at least once: from then on everything new is chased

    def remember(self, name: str, created: float) -> None:
        self.seen.append(name)
        if len(self.seen) > SEEN_KEPT:
            del self.seen[: len(self.seen) - SEEN_KEPT]
        self.newest = max(self.newest, created)


def parse_cursor(cursor: str | None) -> dict[str, ListingState]:
    if not cursor:
        return {}
    try:
        raw = json.loads(cursor)
        return {
            name: ListingState(float(state["t"]), [str(s) for s in state["seen"]][-SEEN_KEPT:], True)
            for name, state in raw.items()
        }
    except (ValueError, TypeError, KeyError, AttributeError):
        raise ValueError(f"not a Reddit cursor: {cursor[:60]!r}") from None


def format_cursor(states: dict[str, ListingState]) -> str:
    return json.dumps(
        {name: {"t": state.newest, "seen": state.seen} for name, state in sorted(states.items())},
        separators=(",", ":"),
    )


# --------------------------------------------------------------------------- source


class RedditSource:
    """Polls new posts and comments of subreddits with application-only OAuth."""

    platform = PLATFORM

    def __init__(
        self,
        name: str,
        subreddits: Sequence[str],
        *,
        client_id: Secret | None,
        client_secret: Secret | None,
        posts: bool = True,
        comments: bool = True,
        user_agent: str = "watchfloor:public-monitoring:v0.1",
        auth_url: str = AUTH_URL,
        api_url: str = API_URL,
        poll_interval_s: float = 30.0,
        max_pages: int = 10,
        backoff: Backoff | None = None,
        sleep: Sleep = real_sleep,
        health: SourceHealth | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        subs = [s.strip().removeprefix("r/").removeprefix("/r/") for s in subreddits]
        for sub in subs:
            if not _SUBREDDIT.fullmatch(sub):
                raise ValueError(f"{sub!r} is not a subreddit name")
        if not subs:
            raise ValueError("name at least one subreddit")
        if not (posts or comments):
            raise ValueError("read posts, comments or both")
        self.name = name
        self.subreddits = subs
        self.client_id = client_id
        self.client_secret = client_secret
        self.user_agent = user_agent
        self.auth_url = auth_url.rstrip("/")
        self.api_url = api_url.rstrip("/")
        self.poll_interval_s = poll_interval_s
        self.max_pages = max_pages
        self.backoff = backoff or Backoff(base_s=2.0, cap_s=600.0)
        self.sleep = sleep
        self.health = health or SourceHealth(name, PLATFORM)
        for secret in (client_id, client_secret):
            if secret:
                self.health.add_secrets(secret.reveal())
        self._client = client
        self._token: str | None = None
        self._token_expires = 0.0
        joined = "+".join(subs)
        self.listings = {}
        if posts:
            self.listings["new"] = f"/r/{joined}/new"
        if comments:
            self.listings["comments"] = f"/r/{joined}/comments"

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        if not (self.client_id and self.client_secret):
            raise SourceFailed(
                f"Reddit source {self.name!r} needs app credentials: set WATCHFLOOR_REDDIT_CLIENT_ID and "
                "WATCHFLOOR_REDDIT_CLIENT_SECRET (or `watchfloor source add reddit … --client-id … --client-secret …`)"
            )
        states = parse_cursor(cursor)
        client = self._client or new_client(user_agent=self.user_agent)
        http = PoliteClient(client, self.health, backoff=self.backoff, sleep=self.sleep)
        try:
            while True:
                for listing in self.listings:
                    state = states.setdefault(listing, ListingState())
                    async for thing, created in self._new_things(http, listing, state):
                        state.remember(thing["data"]["name"], created)
                        yield RawEvent(self.name, PLATFORM, format_cursor(states), f.compact(thing), utcnow())
                await self.sleep(self.poll_interval_s)
        finally:
            if self._client is None:
                await client.aclose()

    async def _new_things(
        self, http: PoliteClient, listing: str, state: ListingState
    ) -> AsyncIterator[tuple[dict[str, Any], float]]:
        """Things not seen before, oldest first."""
        seen = set(state.seen)
        fresh: list[tuple[dict[str, Any], float]] = []
        after: str | None = None
        reached = False
        pages = self.max_pages if state.polled else 1
        for _ in range(pages):
            params = {"limit": str(PAGE_SIZE), "raw_json": "1"}
            if after:
                params["after"] = after
            page = await self._listing(http, self.listings[listing], params)
            if page is None:
                return  # an unreadable answer: try again at the next poll
            state.polled = True
            children, after = page
            known = False
            for thing in children:
                data = thing.get("data") if isinstance(thing, dict) else None
                name = data.get("name") if isinstance(data, dict) else None
                if not isinstance(name, str):
                    continue
                if name in seen:
                    known = True
                    continue
                created = data.get("created_utc")
                created = float(created) if isinstance(created, int | float) and not isinstance(created, bool) else 0.0
                if state.seen and created and created < state.newest - 3600:
                    known = True  # older than anything new can be: reached known ground
                    continue
                seen.add(name)
                fresh.append((thing, created))
            if known or not children or not after:
                reached = True
                break
        if state.polled and not reached:
            self.health.gap(
                f"{self.listings[listing]}: more than {self.max_pages * PAGE_SIZE} new items since the last poll; "
                "older ones were missed",
                cursor=format_cursor({listing: state}),
            )
        fresh.reverse()  # listings are newest first
        fresh.sort(key=lambda item: item[1])  # stable: within one second the listing's order stays
        for item in fresh:
            yield item

    async def _listing(
        self, http: PoliteClient, path: str, params: dict[str, str]
    ) -> tuple[list[Any], str | None] | None:
        for attempt in range(2):
            token = await self._access_token(http)
            try:
                response = await http.get(
                    self.api_url + path, params=params, headers={"Authorization": f"bearer {token}"}
                )
            except HttpRefused as exc:
                if exc.status == 401 and attempt == 0:
                    self._token = None  # expired early: get a new one
                    continue
                if exc.status in (403, 404):
                    raise SourceFailed(
                        f"Reddit refused {path} (HTTP {exc.status}): private, banned or missing"
                    ) from None
                raise SourceFailed(self.health.redact(str(exc))) from None
            try:
                body = response.json()
                data = body["data"]
                children = data["children"]
                after = data.get("after")
                if not isinstance(children, list):
                    raise TypeError
                return children, after if isinstance(after, str) else None
            except (ValueError, KeyError, TypeError):
                self.health.error(f"{path}: the answer is not a listing")
                return None
        return None

    async def _access_token(self, http: PoliteClient) -> str:
        if self._token and time.monotonic() < self._token_expires:
            return self._token
        assert self.client_id and self.client_secret
        try:
            response = await http.request(
                "POST",
                f"{self.auth_url}/api/v1/access_token",
                data={"grant_type": "client_credentials"},
                auth=(self.client_id.reveal(), self.client_secret.reveal()),
            )
            body = response.json()
            token = body["access_token"]
            expires = float(body.get("expires_in", 3600))
        except HttpRefused as exc:
            raise SourceFailed(f"Reddit refused the app credentials (HTTP {exc.status}): check them") from None
        except (ValueError, KeyError, TypeError):
            raise SourceFailed("Reddit's token endpoint did not answer with a token") from None
        if not isinstance(token, str) or not token:
            raise SourceFailed("Reddit's token endpoint did not answer with a token")
        self.health.add_secrets(token)
        self._token, self._token_expires = token, time.monotonic() + max(expires - 60, 30)
        return token
