"""Mastodon (and compatible servers): the streaming API plus REST backfill of timelines.

Timelines: ``public`` (federated), ``local``, or ``hashtag`` (one or more tags, optionally
local only). Any instance URL; an access token is optional (some instances require one
for the public timelines or for streaming; a token of an app with ``read:statuses``
scope is enough).

How it runs. On every (re)connect the source first opens the stream(s)
(``/api/v1/streaming/public``, ``…/public/local``, ``…/hashtag?tag=…``, server-sent
events on the host the instance names in ``/api/v2/instance``), then backfills over
REST from the newest status id it has (``since_id``, newest page first, up to
``backfill_pages`` pages of 40), yields the backfill oldest first, and then the stream.
Status ids grow with time, so the cursor is the largest id seen. When the backfill
stops at its page limit before reaching the cursor, the statuses between were missed:
that is recorded as a gap. With ``stream=False``, or when the instance refuses
streaming, the source polls the REST timeline every ``poll_interval_s`` instead.

Stream events become raw events whose payload is a small JSON envelope keeping the
event exactly as it came: ``{"instance": URL, "event": "update", "data": "<the status JSON>"}``.
``update`` and ``status.update`` (an edit) carry a status; ``delete`` carries an id.

Privacy: the author and mentioned accounts are pseudonymised from their full
``user@domain`` address; ``native_id`` is ``<instance host>:<status id>`` and ``url`` is
built from the id (``/web/statuses/<id>``) because the status's own URL contains the
author's handle. Only ``public`` statuses are read; reblogs are counted and dropped, and
so are the statuses of accounts that opted out of indexing (``noindex``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from watchfloor.model import Deletion, Ignored, MalformedEvent, MediaRef, Normalised, Post, RawEvent, utcnow
from watchfloor.sources import fields as f
from watchfloor.sources.backoff import Backoff, Sleep, real_sleep
from watchfloor.sources.base import Pseudonymiser, SourceFailed
from watchfloor.sources.config import Secret
from watchfloor.sources.health import SourceHealth
from watchfloor.sources.http import HttpRefused, PoliteClient, new_client
from watchfloor.sources.markup import read_html
from watchfloor.sources.sse import SseParser

log = logging.getLogger(__name__)

PLATFORM = "mastodon"
TIMELINES = ("public", "local", "hashtag")
PAGE_SIZE = 40
STATUS_EVENTS = frozenset({"update", "status.update"})
MAX_STATUS_CHARS = 100_000


# --------------------------------------------------------------------------- normaliser


class MastodonNormaliser:
    """Reads the envelopes of :class:`MastodonSource` (stream events and REST statuses)."""

    platform = PLATFORM

    def __init__(self, pseudonymise: Pseudonymiser) -> None:
        self._pseudonymise = pseudonymise

    def normalise(self, event: RawEvent) -> Normalised:
        envelope = f.load_object(event.payload, "envelope")
        instance = f.text(envelope, "instance", "instance", limit=2048)
        host = urlsplit(instance).netloc
        if not host or not instance.startswith(("http://", "https://")):
            raise MalformedEvent(f"instance {f.short(instance)} is not an http(s) URL")
        kind = f.text(envelope, "event", "event", limit=64)
        data = f.text(envelope, "data", "data", limit=f.MAX_PAYLOAD_BYTES)
        if kind == "delete":
            status_id = data.strip()
            if not status_id or len(status_id) > 128 or not status_id.isprintable():
                raise MalformedEvent(f"delete of {f.short(status_id)}: not a status id")
            return Deletion(platform=PLATFORM, native_id=f"{host}:{status_id}", deleted_at=event.received_at)
        if kind not in STATUS_EVENTS:
            return Ignored(kind=f"event:{kind[:32]}")
        status = f.load_object(data, "data")
        return self.status(status, instance, host, event)

    def status(self, status: f.JsonObject, instance: str, host: str, event: RawEvent) -> Normalised:
        status_id = f.identifier(status, "id", "status.id")
        if status.get("reblog") is not None:
            return Ignored(kind="reblog")
        visibility = f.optional_text(status, "visibility", "status.visibility") or "public"
        if visibility != "public":
            return Ignored(kind=f"visibility:{visibility[:16]}")
        account = f.child(status, "account", "status.account")
        if account.get("noindex") is True:  # the author asked not to be indexed
            return Ignored(kind="noindex")
        created_at = f.parse_time(status.get("created_at"), "status.created_at")
        edited = f.optional_text(status, "edited_at", "status.edited_at")
        version = f.parse_time(edited, "status.edited_at") if edited else created_at
        content = f.optional_text(status, "content", "status.content", limit=MAX_STATUS_CHARS) or ""
        spoiler = f.optional_text(status, "spoiler_text", "status.spoiler_text", limit=10_000) or ""
        html = read_html(content)
        text = f"{spoiler}\n\n{html.text}".strip() if spoiler else html.text
        author = self._account(account, host, "status.account")
        links = list(html.links)
        card = f.optional_child(status, "card", "status.card")
        if card and (card_url := f.optional_text(card, "url", "status.card.url", limit=4096)):
            links.append(card_url)
        mentioned = f.objects(status, "mentions", "status.mentions")
        mentions = [self._account(m, host, f"status.mentions[{i}]") for i, m in enumerate(mentioned)]
        tagged = f.objects(status, "tags", "status.tags")
        tags = [f.text(t, "name", f"status.tags[{i}].name", limit=256) for i, t in enumerate(tagged)]
        reply = f.optional_identifier(status, "in_reply_to_id", "status.in_reply_to_id")
        return Post(
            platform=PLATFORM,
            native_id=f"{host}:{status_id}",
            version=version.isoformat(timespec="milliseconds"),
            created_at=created_at,
            received_at=event.received_at,
            text=text,
            author=author,
            lang=f.optional_text(status, "language", "status.language", limit=16) or None,
            langs=(lang,) if (lang := status.get("language")) and isinstance(lang, str) else (),
            url=f"{instance.rstrip('/')}/web/statuses/{status_id}",
            links=f.unique(link for link in links if link.startswith(("http://", "https://"))),
            hashtags=f.unique(tag.lstrip("#").lower() for tag in tags),
            mentions=f.unique(mentions),
            reply_to=f"{host}:{reply}" if reply else None,
            quote_of=_quoted(status, host),
            media=tuple(_media(status)),
            raw=envelope(instance, "update", json.dumps(redact_status(status), ensure_ascii=False)),
        )

    def _account(self, account: f.JsonObject, host: str, path: str) -> str:
        acct = f.text(account, "acct", f"{path}.acct", limit=512).strip().lstrip("@").lower()
        if not acct:
            raise MalformedEvent(f"{path}.acct is empty")
        return self._pseudonymise(PLATFORM, acct if "@" in acct else f"{acct}@{host}")


def _quoted(status: f.JsonObject, host: str) -> str | None:
    quote = status.get("quote")
    if not isinstance(quote, dict):
        return None
    quoted = quote.get("quoted_status")
    if isinstance(quoted, dict) and (quoted_id := f.optional_identifier(quoted, "id", "status.quote.quoted_status.id")):
        return f"{host}:{quoted_id}"
    return None


def _media(status: f.JsonObject) -> list[MediaRef]:
    found = []
    for index, attachment in enumerate(f.objects(status, "media_attachments", "status.media_attachments")):
        path = f"status.media_attachments[{index}]"
        url = f.optional_text(attachment, "url", f"{path}.url", limit=4096) or f.optional_text(
            attachment, "remote_url", f"{path}.remote_url", limit=4096
        )
        if not url:
            continue
        kind = f.optional_text(attachment, "type", f"{path}.type", limit=32)
        found.append(
            MediaRef(
                url=url,
                mime_type=f"{kind}/*" if kind in ("image", "video", "audio") else None,
                content_hash=f.optional_identifier(attachment, "id", f"{path}.id"),
                alt=f.optional_text(attachment, "description", f"{path}.description", limit=10_000) or None,
            )
        )
    return found


_ACCOUNT_KEPT = ("id", "bot", "group")
_MENTION_HREF = re.compile(r'<a href="[^"]*"((?: [a-z-]+="[^"]*")* class="[^"]*\bmention\b[^"]*")')


def redact_status(status: f.JsonObject) -> f.JsonObject:
    """The status without the names, handles, profile texts and pictures of the people in it."""
    redacted = {k: v for k, v in status.items() if k not in ("url", "uri")}  # both may hold the handle
    if isinstance(redacted.get("content"), str):  # profile links of mentions (the @name text stays)
        redacted["content"] = _MENTION_HREF.sub(r"<a\1", redacted["content"])
    account = redacted.get("account")
    if isinstance(account, dict):
        redacted["account"] = {k: account[k] for k in _ACCOUNT_KEPT if k in account}
    mentions = redacted.get("mentions")
    if isinstance(mentions, list):
        redacted["mentions"] = [{"id": m.get("id")} for m in mentions if isinstance(m, dict)]
    card = redacted.get("card")
    if isinstance(card, dict):
        redacted["card"] = {k: v for k, v in card.items() if k not in ("author_name", "author_url", "authors")}
    quote = redacted.get("quote")
    if isinstance(quote, dict) and isinstance(quote.get("quoted_status"), dict):
        redacted["quote"] = {**quote, "quoted_status": {"id": quote["quoted_status"].get("id")}}
    return redacted


def envelope(instance: str, event: str, data: str) -> bytes:
    """The payload of one raw Mastodon event."""
    return f.compact({"instance": instance, "event": event, "data": data})


# --------------------------------------------------------------------------- source


@dataclass(frozen=True, slots=True)
class Timeline:
    """One timeline: where to read it over REST and where to stream it."""

    rest_path: str
    rest_params: tuple[tuple[str, str], ...]
    stream_path: str
    stream_params: tuple[tuple[str, str], ...]


def timelines_for(timeline: str, tags: Sequence[str] = (), *, local: bool = False) -> list[Timeline]:
    if timeline == "public":
        return [Timeline("/api/v1/timelines/public", (), "/api/v1/streaming/public", ())]
    if timeline == "local":
        return [Timeline("/api/v1/timelines/public", (("local", "true"),), "/api/v1/streaming/public/local", ())]
    if timeline == "hashtag":
        if not tags:
            raise ValueError("a hashtag timeline needs at least one tag")
        local_param = (("local", "true"),) if local else ()
        stream = "/api/v1/streaming/hashtag/local" if local else "/api/v1/streaming/hashtag"
        return [
            Timeline(f"/api/v1/timelines/tag/{tag.lstrip('#')}", local_param, stream, (("tag", tag.lstrip("#")),))
            for tag in tags
        ]
    raise ValueError(f"timeline must be one of {', '.join(TIMELINES)}, not {timeline!r}")


def _id_key(status_id: str) -> tuple[int, str]:
    """Mastodon ids are numbers in strings; compatible servers use other sortable strings."""
    return (len(status_id), status_id)


def newer(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if _id_key(a) >= _id_key(b) else b


class _StreamEnded(Exception):
    pass


class MastodonSource:
    """Streams (or polls) Mastodon timelines from one instance, resuming from the newest id."""

    platform = PLATFORM

    def __init__(
        self,
        name: str,
        instance: str,
        *,
        timeline: str = "public",
        tags: Sequence[str] = (),
        local: bool = False,
        token: Secret | None = None,
        stream: bool = True,
        streaming_url: str | None = None,
        poll_interval_s: float = 30.0,
        backfill_pages: int = 10,
        initial_pages: int = 1,
        idle_timeout_s: float = 90.0,
        backoff: Backoff | None = None,
        sleep: Sleep = real_sleep,
        health: SourceHealth | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not instance.startswith(("http://", "https://")):
            raise ValueError(f"the instance is an http(s) URL, not {instance!r}")
        self.name = name
        self.instance = instance.rstrip("/")
        self.timelines = timelines_for(timeline, tags, local=local)
        self.token = token
        self.stream = stream
        self.streaming_url = streaming_url.rstrip("/") if streaming_url else None
        self.poll_interval_s = poll_interval_s
        self.backfill_pages = backfill_pages
        self.initial_pages = initial_pages
        self.idle_timeout_s = idle_timeout_s
        self.backoff = backoff or Backoff(base_s=2.0, cap_s=300.0)
        self.sleep = sleep
        self.health = health or SourceHealth(name, PLATFORM)
        if token:
            self.health.add_secrets(token.reveal())
        self._client = client

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token.reveal()}"} if self.token else {}

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        newest = cursor or None
        client = self._client or new_client()
        http = PoliteClient(client, self.health, backoff=self.backoff, sleep=self.sleep)
        streaming = self.stream
        try:
            while True:
                if streaming:
                    try:
                        async for event in self._stream_round(client, http, newest):
                            newest = event.cursor or newest
                            yield event
                    except HttpRefused as exc:
                        if exc.status in (401, 403, 404, 405, 410, 501):
                            streaming = False
                            self.health.error(f"streaming refused ({exc}); polling every {self.poll_interval_s:g} s")
                            continue
                        raise SourceFailed(self.health.redact(str(exc))) from None
                    except (httpx.HTTPError, _StreamEnded) as exc:
                        self.health.disconnected(f"stream from {self.instance}: {type(exc).__name__}: {exc}")
                    await self.sleep(self.backoff.next_delay())
                else:
                    async for event in self._backfill(http, newest):
                        newest = event.cursor or newest
                        yield event
                    await self.sleep(self.poll_interval_s)
        finally:
            if self._client is None:
                await client.aclose()

    # ------------------------------------------------------------------ REST
    async def _backfill(self, http: PoliteClient, since: str | None) -> AsyncIterator[RawEvent]:
        """The statuses newer than ``since``, oldest first, for every timeline."""
        try:
            for timeline in self.timelines:
                statuses, complete, raw_errors = await self._fetch_since(http, timeline, since)
                for body in raw_errors:
                    yield RawEvent(self.name, PLATFORM, since or "", envelope(self.instance, "update", body), utcnow())
                if since is not None and not complete:
                    oldest = statuses[0][0] if statuses else None
                    self.health.gap(
                        f"backfill of {timeline.rest_path} stopped after {self.backfill_pages} pages "
                        f"before reaching status {since}; older statuses after it were missed",
                        cursor=since,
                    )
                    log.warning("mastodon %s: gap before status %s", self.name, oldest)
                newest = since
                for status_id, data in statuses:
                    newest = newer(newest, status_id)
                    yield RawEvent(self.name, PLATFORM, newest or "", envelope(self.instance, "update", data), utcnow())
        except HttpRefused as exc:
            if exc.status in (401, 403):
                raise SourceFailed(
                    f"{self.instance} refused the timeline (HTTP {exc.status}): check the source's token"
                ) from None
            raise SourceFailed(self.health.redact(str(exc))) from None

    async def _fetch_since(
        self, http: PoliteClient, timeline: Timeline, since: str | None
    ) -> tuple[list[tuple[str, str]], bool, list[str]]:
        """(id, status JSON) newer than ``since``, oldest first; whether ``since`` was reached;
        bodies that were not a JSON list of statuses."""
        found: dict[str, str] = {}
        bad: list[str] = []
        max_id: str | None = None
        pages = self.backfill_pages if since is not None else self.initial_pages
        for _ in range(max(pages, 0)):
            params: dict[str, str] = dict(timeline.rest_params)
            params["limit"] = str(PAGE_SIZE)
            if since is not None:
                params["since_id"] = since
            if max_id is not None:
                params["max_id"] = max_id
            response = await http.get(self.instance + timeline.rest_path, params=params, headers=self._headers())
            try:
                page = json.loads(response.content)
            except ValueError:
                bad.append(response.content.decode("utf-8", "replace")[:65536])
                self.health.error(f"{timeline.rest_path}: the answer is not JSON")
                return sorted(found.items(), key=lambda item: _id_key(item[0])), False, bad
            if not isinstance(page, list):
                bad.append(response.text[:65536])
                return sorted(found.items(), key=lambda item: _id_key(item[0])), False, bad
            ids = []
            for status in page:
                if isinstance(status, dict) and isinstance(status.get("id"), str | int):
                    status_id = str(status["id"])
                    ids.append(status_id)
                    found[status_id] = json.dumps(status, ensure_ascii=False, separators=(",", ":"))
                else:
                    bad.append(json.dumps(status, ensure_ascii=False)[:65536])
            if not ids or (since is None and len(ids) < PAGE_SIZE):
                return sorted(found.items(), key=lambda item: _id_key(item[0])), True, bad
            oldest = min(ids, key=_id_key)
            if since is not None and _id_key(oldest) <= _id_key(since):
                return sorted(found.items(), key=lambda item: _id_key(item[0])), True, bad
            max_id = oldest
        return sorted(found.items(), key=lambda item: _id_key(item[0])), since is None, bad

    # ------------------------------------------------------------------ streaming
    async def _streaming_base(self, http: PoliteClient) -> str:
        if self.streaming_url:
            return self.streaming_url
        try:
            response = await http.get(f"{self.instance}/api/v2/instance")
            urls = response.json().get("configuration", {}).get("urls", {})
            streaming = urls.get("streaming") if isinstance(urls, dict) else None
        except (HttpRefused, ValueError, AttributeError):
            streaming = None
        if isinstance(streaming, str) and streaming.startswith(("ws://", "wss://", "http://", "https://")):
            base = streaming.replace("wss://", "https://", 1).replace("ws://", "http://", 1).rstrip("/")
        else:
            base = self.instance
        self.streaming_url = base
        return base

    async def _stream_round(
        self, client: httpx.AsyncClient, http: PoliteClient, since: str | None
    ) -> AsyncIterator[RawEvent]:
        """Open every stream, backfill from ``since``, then yield stream events until one fails."""
        base = await self._streaming_base(http)
        queue: asyncio.Queue[RawEvent | BaseException] = asyncio.Queue(maxsize=10_000)
        opened: list[asyncio.Event] = []
        tasks: list[asyncio.Task[None]] = []
        newest = since
        try:
            for timeline in self.timelines:
                ready = asyncio.Event()
                opened.append(ready)
                tasks.append(asyncio.create_task(self._read_stream(client, base, timeline, queue, ready)))
            waiter = asyncio.ensure_future(asyncio.gather(*(event.wait() for event in opened)))
            await asyncio.wait({waiter, *tasks}, return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done():  # a stream failed before it opened: its error is queued
                waiter.cancel()
                failure = queue.get_nowait()
                raise failure if isinstance(failure, BaseException) else _StreamEnded("stream closed before it opened")
            self.health.connected(base)
            async for event in self._backfill(http, since):
                newest = event.cursor or newest
                yield event
            while True:
                item = await queue.get()
                if isinstance(item, BaseException):
                    raise item
                if item.cursor:
                    newest = newer(newest, item.cursor)
                yield RawEvent(item.source, item.platform, newest or "", item.payload, item.received_at)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _read_stream(
        self,
        client: httpx.AsyncClient,
        base: str,
        timeline: Timeline,
        queue: asyncio.Queue[RawEvent | BaseException],
        ready: asyncio.Event,
    ) -> None:
        url = base + timeline.stream_path
        timeout = httpx.Timeout(10.0, read=self.idle_timeout_s)
        try:
            async with client.stream(
                "GET", url, params=dict(timeline.stream_params), headers=self._headers(), timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    if response.status_code == 429 or response.status_code >= 500:
                        raise _StreamEnded(f"HTTP {response.status_code} from {url}")
                    raise HttpRefused(response.status_code, url, response.text[:200])
                ready.set()
                parser = SseParser()
                async for chunk in response.aiter_bytes():
                    for sse in parser.feed(chunk):
                        status_id = _status_id(sse.data) if sse.event in STATUS_EVENTS else None
                        payload = envelope(self.instance, sse.event, sse.data)
                        await queue.put(RawEvent(self.name, PLATFORM, status_id or "", payload, utcnow()))
                    if parser.dropped:
                        self.health.error(f"{parser.dropped} oversized stream event(s) dropped")
                        parser.dropped = 0
            raise _StreamEnded(f"{url} ended the stream")
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed to the consumer, which reconnects
            await queue.put(exc)


def _status_id(data: str) -> str | None:
    """The status id at the start of a status JSON, without parsing it all."""
    head = data[:64]
    start = head.find('"id":"')
    if start == -1:
        return None
    end = head.find('"', start + 6)
    found = head[start + 6 : end] if end != -1 else ""
    return found if found and found.isalnum() else None


def message_key(payload: bytes) -> str | None:
    """The event's key for the bus's duplicate detection (``Nats-Msg-Id`` after ``mastodon:``),
    read without normalising: ``HOST:STATUS_ID:EDITED_AT`` (or ``CREATED_AT`` for an unedited
    status, as sent), ``HOST:STATUS_ID:delete`` for a deletion, so the same status version
    from the stream and from a catch-up poll is one message. None when unreadable: the bus
    then keys the event by a hash of its payload."""
    try:
        envelope = json.loads(payload)
        instance, kind, data = envelope["instance"], envelope["event"], envelope["data"]
        if not isinstance(instance, str) or not isinstance(kind, str) or not isinstance(data, str):
            return None
        host = urlsplit(instance).netloc
        if kind == "delete":
            return f"{host}:{data.strip()}:delete" if host and data.strip() else None
        status = json.loads(data)
        status_id, version = status["id"], status.get("edited_at") or status.get("created_at")
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError):
        return None
    if not host or not isinstance(status_id, str | int) or not isinstance(version, str):
        return None
    return f"{host}:{status_id}:{version}"
