"""RSS, Atom, RDF and JSON Feed: polled politely, entries sanitised before they are kept.

Polling. Every ``poll_interval_s`` each feed is fetched with a conditional GET
(``If-None-Match`` with the last ``ETag``, ``If-Modified-Since`` with the last
``Last-Modified``); a ``304 Not Modified`` costs the publisher nothing. Retries,
backoff, ``Retry-After`` and slow servers are handled by
:class:`~watchfloor.sources.http.PoliteClient`. XML feeds are parsed by feedparser
(from bytes only: it never fetches anything itself, external entities are off), JSON
Feed 1.0/1.1 by this module.

Entries. Each new entry, or entry whose content changed (a new *version*), becomes one
raw event whose payload is a JSON envelope ``{"feed": URL, "entry": {…}}`` holding the
entry's fields with every HTML field already passed through nh3
(:func:`~watchfloor.sources.markup.sanitise_html`): the scripts, styles, frames and
event handlers that feeds carry never reach the store or a screen. A document that is
not a feed at all becomes one event ``{"feed": URL, "error": …}``, which the
normaliser sends to the dead letters with the reason. Feeds have no deletions.

The cursor keeps, per feed, the validators and short hashes of the entries already
yielded, so a restart repeats nothing that is still in the feed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from time import struct_time
from typing import Any
from urllib.parse import urlsplit

import feedparser
import httpx

from watchfloor.model import Ignored, MalformedEvent, MediaRef, Normalised, Post, RawEvent, utcnow
from watchfloor.sources import fields as f
from watchfloor.sources.backoff import Backoff, Sleep, real_sleep
from watchfloor.sources.base import Pseudonymiser, SourceFailed
from watchfloor.sources.health import SourceHealth
from watchfloor.sources.http import HttpRefused, PoliteClient, new_client
from watchfloor.sources.markup import read_html, sanitise_html

PLATFORM = "rss"
SEEN_KEPT = 1000
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
MAX_ENTRIES = 2000
ERROR_EXCERPT_CHARS = 2048
ACCEPT = "application/atom+xml, application/rss+xml, application/feed+json, application/xml;q=0.9, */*;q=0.5"


# --------------------------------------------------------------------------- documents


def entries_from_document(document: bytes, feed_url: str, content_type: str = "") -> list[dict[str, Any]]:
    """The entries of a feed document as sanitised dicts; ValueError if it is not a feed."""
    if len(document) > MAX_DOCUMENT_BYTES:
        raise ValueError(f"document too large ({len(document)} bytes)")
    head = document.lstrip()[:1]
    if "json" in content_type.lower() or head == b"{":
        return _json_feed_entries(document)
    parsed = feedparser.parse(
        document,
        response_headers={"content-type": content_type or "application/xml"},
        resolve_relative_uris=True,
        sanitize_html=True,
    )
    if not parsed.entries and (parsed.bozo and not parsed.version):
        reason = parsed.get("bozo_exception")
        raise ValueError(f"not a feed: {type(reason).__name__}: {str(reason)[:160]}")
    language = _text(parsed.feed.get("language"))
    return [_xml_entry(entry, language) for entry in parsed.entries[:MAX_ENTRIES]]


def _xml_entry(entry: Any, feed_language: str | None) -> dict[str, Any]:
    content = entry.get("content") or []
    body = "".join(_text(part.get("value")) or "" for part in content if isinstance(part, dict))
    title_detail = entry.get("title_detail") or {}
    title = _text(entry.get("title")) or ""
    title_is_html = isinstance(title_detail, dict) and "html" in str(title_detail.get("type", ""))
    media = []
    for enclosure in entry.get("enclosures") or []:
        if isinstance(enclosure, dict) and _text(enclosure.get("href")):
            media.append({"url": _text(enclosure.get("href")), "type": _text(enclosure.get("type"))})
    for item in (entry.get("media_content") or []) + (entry.get("media_thumbnail") or []):
        if isinstance(item, dict) and _text(item.get("url")):
            media.append({"url": _text(item.get("url")), "type": _text(item.get("type"))})
    author = entry.get("author_detail") or {}
    return _clean_entry(
        {
            "id": _text(entry.get("id")),
            "link": _text(entry.get("link")),
            "title": sanitise_html(title) if title_is_html else title,
            "title_html": title_is_html,
            "summary": sanitise_html(_text(entry.get("summary")) or ""),
            "content": sanitise_html(body),
            "author": _text(author.get("email") if isinstance(author, dict) and author.get("email") else None)
            or _text(entry.get("author")),
            "published": _time(dict.get(entry, "published_parsed")),  # dict.get: no feedparser fallbacks
            "updated": _time(dict.get(entry, "updated_parsed")),
            "tags": [_text(tag.get("term")) for tag in entry.get("tags") or [] if isinstance(tag, dict)],
            "language": _text((content[0] or {}).get("language")) if content else feed_language,
            "media": media,
        }
    )


def _json_feed_entries(document: bytes) -> list[dict[str, Any]]:
    try:
        feed = json.loads(document)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not a feed: invalid JSON: {str(exc)[:120]}") from None
    if not isinstance(feed, dict) or not str(feed.get("version", "")).startswith("https://jsonfeed.org/version/"):
        raise ValueError("not a feed: JSON without a jsonfeed.org version")
    items = feed.get("items")
    if not isinstance(items, list):
        raise ValueError("not a feed: JSON Feed without items")
    feed_author = _json_author(feed)
    entries = []
    for item in items[:MAX_ENTRIES]:
        if not isinstance(item, dict):
            continue
        html = _text(item.get("content_html"))
        plain = _text(item.get("content_text"))
        entries.append(
            _clean_entry(
                {
                    "id": _text(item.get("id")) if not isinstance(item.get("id"), int) else str(item["id"]),
                    "link": _text(item.get("url")) or _text(item.get("external_url")),
                    "title": _text(item.get("title")) or "",
                    "title_html": False,
                    "summary": sanitise_html(_text(item.get("summary")) or ""),
                    "content": sanitise_html(html) if html else "",
                    "content_text": plain or "",
                    "author": _json_author(item) or feed_author,
                    "published": _text(item.get("date_published")),
                    "updated": _text(item.get("date_modified")),
                    "tags": [_text(t) for t in item.get("tags") or [] if isinstance(t, str)],
                    "language": _text(item.get("language")) or _text(feed.get("language")),
                    "media": [
                        {"url": _text(a.get("url")), "type": _text(a.get("mime_type"))}
                        for a in item.get("attachments") or []
                        if isinstance(a, dict) and _text(a.get("url"))
                    ],
                }
            )
        )
    return entries


def _json_author(obj: dict[str, Any]) -> str | None:
    authors = obj.get("authors")
    author = authors[0] if isinstance(authors, list) and authors else obj.get("author")
    if isinstance(author, dict):
        return _text(author.get("name")) or _text(author.get("url"))
    return None


def _clean_entry(entry: dict[str, Any]) -> dict[str, Any]:
    entry["tags"] = [t for t in entry.get("tags", []) if t]
    return {k: v for k, v in entry.items() if v not in (None, "", [])}


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value.replace("\x00", "")
    return None


def _time(value: Any) -> str | None:
    if isinstance(value, struct_time):
        try:
            return datetime(*value[:6]).isoformat() + "Z"
        except (ValueError, OverflowError):
            return None
    return None


def entry_identity(entry: dict[str, Any]) -> tuple[str, str]:
    """(the entry's id within the feed, the version of its content)."""
    content = "\x1f".join(
        str(entry.get(k, "")) for k in ("title", "summary", "content", "content_text", "link", "updated")
    )
    version = hashlib.sha256(content.encode("utf-8", "replace")).hexdigest()[:16]
    identity = (
        entry.get("id")
        or entry.get("link")
        or "sha256:"
        + hashlib.sha256(
            (str(entry.get("title", "")) + str(entry.get("summary", ""))).encode("utf-8", "replace")
        ).hexdigest()[:24]
    )
    return str(identity), version


# --------------------------------------------------------------------------- normaliser


class FeedNormaliser:
    """Reads the envelopes of :class:`RssSource` (one entry each)."""

    platform = PLATFORM

    def __init__(self, pseudonymise: Pseudonymiser) -> None:
        self._pseudonymise = pseudonymise

    def normalise(self, event: RawEvent) -> Normalised:
        envelope = f.load_object(event.payload, "envelope")
        feed = f.text(envelope, "feed", "feed", limit=4096)
        if "error" in envelope:
            raise MalformedEvent(f"{feed}: {f.text(envelope, 'error', 'error', limit=1000)}")
        entry = f.child(envelope, "entry", "entry")
        f.optional_text(entry, "id", "entry.id", limit=2048)
        link = f.optional_text(entry, "link", "entry.link", limit=4096)
        identity, version = entry_identity(entry)
        title_value = f.optional_text(entry, "title", "entry.title", limit=10_000) or ""
        title = read_html(title_value).text if entry.get("title_html") else " ".join(title_value.split())
        content = f.optional_text(entry, "content", "entry.content") or ""
        summary = f.optional_text(entry, "summary", "entry.summary") or ""
        plain = f.optional_text(entry, "content_text", "entry.content_text") or ""
        body = read_html(content or summary)
        text = "\n\n".join(part for part in (title, plain or body.text) if part)
        if not text:
            return Ignored(kind="entry-without-text")
        published = f.optional_text(entry, "published", "entry.published", limit=64)
        updated = f.optional_text(entry, "updated", "entry.updated", limit=64)
        when = published or updated
        created_at = f.parse_time(when, "entry.published") if when else event.received_at
        host = urlsplit(feed).netloc or feed
        author = f.optional_text(entry, "author", "entry.author", limit=512)
        media = [
            MediaRef(url=f.text(m, "url", f"entry.media[{i}].url", limit=4096), mime_type=m.get("type") or None)
            for i, m in enumerate(f.objects(entry, "media", "entry.media"))
        ]
        language = f.optional_text(entry, "language", "entry.language", limit=35)
        links = [link] if link else []
        links += list(body.links)
        return Post(
            platform=PLATFORM,
            native_id=identity
            if ("://" in identity or identity.startswith(("urn:", "tag:")))
            else f"{feed}#{identity}",
            version=version,
            created_at=created_at,
            received_at=event.received_at,
            text=text,
            author=self._pseudonymise(PLATFORM, f"{host}:{author}" if author else feed),
            lang=language.split("-")[0].lower() if language else None,
            langs=(language.split("-")[0].lower(),) if language else (),
            url=link if link and link.startswith(("http://", "https://")) else None,
            links=f.unique(u for u in links if u.startswith(("http://", "https://"))),
            hashtags=f.unique(t.strip().lstrip("#") for t in f.texts(entry, "tags", "entry.tags")),
            mentions=(),
            media=tuple(m for m in media if m.url.startswith(("http://", "https://"))),
            raw=f.compact({**envelope, "entry": {k: v for k, v in entry.items() if k != "author"}}),
        )


# --------------------------------------------------------------------------- source


@dataclass(slots=True)
class FeedState:
    etag: str | None = None
    modified: str | None = None
    seen: list[str] = field(default_factory=list)

    def remember(self, key: str) -> None:
        self.seen.append(key)
        if len(self.seen) > SEEN_KEPT:
            del self.seen[: len(self.seen) - SEEN_KEPT]


def parse_cursor(cursor: str | None) -> dict[str, FeedState]:
    if not cursor:
        return {}
    try:
        raw = json.loads(cursor)
        return {
            url: FeedState(state.get("etag"), state.get("modified"), [str(s) for s in state.get("seen", [])])
            for url, state in raw.items()
        }
    except (ValueError, TypeError, AttributeError):
        raise ValueError(f"not a feed cursor: {cursor[:60]!r}") from None


def format_cursor(states: dict[str, FeedState]) -> str:
    return json.dumps(
        {url: {"etag": s.etag, "modified": s.modified, "seen": s.seen} for url, s in sorted(states.items())},
        separators=(",", ":"),
    )


def _seen_key(identity: str, version: str) -> str:
    return hashlib.sha256(f"{identity}\x00{version}".encode("utf-8", "replace")).hexdigest()[:16]


class RssSource:
    """Polls RSS/Atom/RDF/JSON feeds with conditional GET."""

    platform = PLATFORM

    def __init__(
        self,
        name: str,
        feeds: Sequence[str],
        *,
        poll_interval_s: float = 300.0,
        backoff: Backoff | None = None,
        sleep: Sleep = real_sleep,
        health: SourceHealth | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not feeds:
            raise ValueError("name at least one feed URL")
        for feed in feeds:
            if not feed.startswith(("http://", "https://")):
                raise ValueError(f"a feed is an http(s) URL, not {feed!r}")
        self.name = name
        self.feeds = list(dict.fromkeys(feeds))
        self.poll_interval_s = poll_interval_s
        self.backoff = backoff or Backoff(base_s=5.0, cap_s=900.0)
        self.sleep = sleep
        self.health = health or SourceHealth(name, PLATFORM)
        self._client = client
        self.polls = 0

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        states = parse_cursor(cursor)
        client = self._client or new_client()
        http = PoliteClient(client, self.health, backoff=self.backoff, sleep=self.sleep, max_attempts=5)
        try:
            while True:
                missing = 0
                for feed in self.feeds:
                    state = states.setdefault(feed, FeedState())
                    try:
                        async for event in self._poll(http, feed, state, states):
                            yield event
                    except HttpRefused as exc:
                        self.health.error(f"{feed}: {exc.detail if exc.status == 0 else f'HTTP {exc.status}'}")
                        missing += exc.status in (404, 410)
                if missing == len(self.feeds):
                    raise SourceFailed(f"none of the feeds of {self.name!r} exists (HTTP 404/410)")
                self.polls += 1
                await self.sleep(self.poll_interval_s)
        finally:
            if self._client is None:
                await client.aclose()

    async def _poll(
        self, http: PoliteClient, feed: str, state: FeedState, states: dict[str, FeedState]
    ) -> AsyncIterator[RawEvent]:
        headers = {"Accept": ACCEPT}
        if state.etag:
            headers["If-None-Match"] = state.etag
        if state.modified:
            headers["If-Modified-Since"] = state.modified
        response = await http.get(feed, headers=headers)
        if response.status_code == 304:
            return
        etag, modified = response.headers.get("etag"), response.headers.get("last-modified")
        try:
            entries = entries_from_document(response.content, feed, response.headers.get("content-type", ""))
        except ValueError as exc:
            self.health.error(f"{feed}: {exc}")
            key = "doc:" + hashlib.sha256(response.content).hexdigest()[:16]
            if key in state.seen:
                return
            state.remember(key)
            state.etag, state.modified = etag, modified
            excerpt = response.content[:ERROR_EXCERPT_CHARS].decode("utf-8", "replace")
            payload = f.compact({"feed": feed, "error": str(exc), "document": excerpt})
            yield RawEvent(self.name, PLATFORM, format_cursor(states), payload, utcnow())
            return
        fresh = []
        known = set(state.seen)
        for entry in reversed(entries):  # feeds list the newest first
            key = _seen_key(*entry_identity(entry))
            if key not in known:
                known.add(key)
                fresh.append((key, entry))
        if not fresh:
            state.etag, state.modified = etag, modified
            return
        for index, (key, entry) in enumerate(fresh):
            state.remember(key)
            if index == len(fresh) - 1:  # the validators only count once every entry is handed on
                state.etag, state.modified = etag, modified
            yield RawEvent(
                self.name, PLATFORM, format_cursor(states), f.compact({"feed": feed, "entry": entry}), utcnow()
            )
