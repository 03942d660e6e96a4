"""Telegram: messages of public channels, through Telethon (the MTProto client API).

Credentials: an API id and hash from https://my.telegram.org (the operator's own), and
a Telethon session file in ``$WATCHFLOOR_HOME/keys/telegram-<name>.session`` created by
logging in once interactively (``watchfloor source test NAME --login``). Only public
channels (by @name or t.me link) are read; watchfloor never joins, posts or reads
private chats.

How it runs. On start and every ``catch_up_interval_s`` it asks each channel for the
messages after the last id it has (``iter_messages(min_id=…, reverse=True)``, at most
``backfill_limit`` per channel and round). Between those,
Telethon's update handlers deliver new messages, edits (a new version) and deletions
as they happen; Telethon reconnects by itself, and the next catch-up fills whatever
updates were lost while it was away. The cursor is the newest message id per channel.

Each event's payload is ``{"channel_id": …, "event": "message" | "edit", "message": <Message.to_dict()>}``
or ``{"channel_id": …, "event": "delete", "id": …}``.

What is tested: the normaliser, on Telethon ``Message`` objects built in-process and
serialised exactly as the source does. What is not: the MTProto conversation itself
(there is no Telegram server or recording to test against; see docs/sources/telegram.md).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from watchfloor.model import Deletion, Ignored, MalformedEvent, MediaRef, Normalised, Post, RawEvent, utcnow
from watchfloor.sources import fields as f
from watchfloor.sources.backoff import Backoff, Sleep, real_sleep
from watchfloor.sources.base import Pseudonymiser, SourceFailed
from watchfloor.sources.config import Secret
from watchfloor.sources.health import SourceHealth

PLATFORM = "telegram"
_REDACTED_FIELDS = ("post_author", "via_bot_id", "via_business_bot_id")


# --------------------------------------------------------------------------- payloads


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value)


def message_payload(channel_id: int, message: Any, *, edited: bool = False) -> bytes:
    """The raw event payload of a Telethon ``Message`` (or anything with ``to_dict``)."""
    body = {"channel_id": channel_id, "event": "edit" if edited else "message", "message": message.to_dict()}
    return json.dumps(body, default=_json_default, ensure_ascii=False, separators=(",", ":")).encode()


def deletion_payload(channel_id: int, message_id: int) -> bytes:
    return f.compact({"channel_id": channel_id, "event": "delete", "id": message_id})


def utf16_slice(text: str, offset: int, length: int) -> str:
    """``text[offset:offset+length]`` in UTF-16 code units, as Telegram counts entity offsets."""
    encoded = text.encode("utf-16-le", "surrogatepass")
    return encoded[offset * 2 : (offset + length) * 2].decode("utf-16-le", "replace")


# --------------------------------------------------------------------------- normaliser


class TelegramNormaliser:
    """Reads the payloads of :class:`TelegramSource`."""

    platform = PLATFORM

    def __init__(self, pseudonymise: Pseudonymiser) -> None:
        self._pseudonymise = pseudonymise

    def normalise(self, event: RawEvent) -> Normalised:
        envelope = f.load_object(event.payload, "envelope")
        channel_id = _integer(envelope.get("channel_id"), "channel_id")
        kind = f.text(envelope, "event", "event", limit=32)
        if kind == "delete":
            message_id = _integer(envelope.get("id"), "id")
            return Deletion(PLATFORM, f"{channel_id}:{message_id}", event.received_at)
        if kind not in ("message", "edit"):
            return Ignored(kind=f"telegram:{kind}")
        message = f.child(envelope, "message", "message")
        tl_type = f.optional_text(message, "_", "message._", limit=64)
        if tl_type != "Message":
            return Ignored(kind=f"telegram:{tl_type or 'unknown'}")  # MessageService: joins, pins, titles
        message_id = _integer(message.get("id"), "message.id")
        text = f.optional_text(message, "message", "message.message") or ""
        created_at = f.parse_time(message.get("date"), "message.date")
        edit_value = message.get("edit_date")
        version = f.parse_time(edit_value, "message.edit_date").isoformat() if edit_value else "original"
        links, hashtags, mentions = self._entities(message, text)
        media = _media(message, links)
        reply = message.get("reply_to")
        reply_id = reply.get("reply_to_msg_id") if isinstance(reply, dict) else None
        fwd = message.get("fwd_from")
        quote = None
        if isinstance(fwd, dict) and isinstance(fwd.get("from_id"), dict) and fwd.get("channel_post"):
            origin = fwd["from_id"].get("channel_id")
            quote = f"{origin}:{fwd['channel_post']}" if isinstance(origin, int) else None
        return Post(
            platform=PLATFORM,
            native_id=f"{channel_id}:{message_id}",
            version=version,
            created_at=created_at,
            received_at=event.received_at,
            text=text,
            author=self._pseudonymise(PLATFORM, _author(message, channel_id)),
            url=f"https://t.me/c/{channel_id}/{message_id}",
            links=f.unique(links),
            hashtags=f.unique(hashtags),
            mentions=f.unique(mentions),
            reply_to=f"{channel_id}:{reply_id}" if isinstance(reply_id, int) else None,
            quote_of=quote,
            media=tuple(media),
            raw=_redacted(envelope),
        )

    def _entities(self, message: f.JsonObject, text: str) -> tuple[list[str], list[str], list[str]]:
        links: list[str] = []
        hashtags: list[str] = []
        mentions: list[str] = []
        for index, entity in enumerate(f.objects(message, "entities", "message.entities")):
            kind = entity.get("_")
            offset, length = entity.get("offset"), entity.get("length")
            if not isinstance(offset, int) or not isinstance(length, int) or offset < 0 or length < 0:
                raise MalformedEvent(f"message.entities[{index}] has no valid offset and length")
            piece = utf16_slice(text, offset, length)
            if kind == "MessageEntityUrl":
                links.append(piece if "://" in piece else f"https://{piece}")
            elif kind == "MessageEntityTextUrl":
                links.append(f.text(entity, "url", f"message.entities[{index}].url", limit=4096))
            elif kind == "MessageEntityHashtag":
                hashtags.append(piece.lstrip("#"))
            elif kind == "MessageEntityMention":
                mentions.append(self._pseudonymise(PLATFORM, "username:" + piece.lstrip("@").lower()))
            elif kind == "MessageEntityMentionName" and isinstance(entity.get("user_id"), int):
                mentions.append(self._pseudonymise(PLATFORM, f"user:{entity['user_id']}"))
        return [u for u in links if u.startswith(("http://", "https://"))], hashtags, mentions


def _integer(value: object, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedEvent(f"{path} is {f.type_name(value)}, not an integer")
    return value


def _author(message: f.JsonObject, channel_id: int) -> str:
    sender = message.get("from_id")
    if isinstance(sender, dict):
        if isinstance(sender.get("user_id"), int):
            return f"user:{sender['user_id']}"
        if isinstance(sender.get("channel_id"), int):
            return f"channel:{sender['channel_id']}"
    return f"channel:{channel_id}"  # a channel post is signed by the channel


def _media(message: f.JsonObject, links: list[str]) -> list[MediaRef]:
    media = message.get("media")
    if not isinstance(media, dict):
        return []
    kind = media.get("_")
    if kind == "MessageMediaPhoto" and isinstance(media.get("photo"), dict):
        return [MediaRef(url=f"tg-photo:{media['photo'].get('id')}", mime_type="image/jpeg")]
    if kind == "MessageMediaDocument" and isinstance(media.get("document"), dict):
        document = media["document"]
        mime = document.get("mime_type") if isinstance(document.get("mime_type"), str) else None
        return [MediaRef(url=f"tg-document:{document.get('id')}", mime_type=mime)]
    if kind == "MessageMediaWebPage" and isinstance(media.get("webpage"), dict):
        url = media["webpage"].get("url")
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            links.append(url)
    return []


def _redacted(envelope: f.JsonObject) -> bytes:
    """The payload without the names Telegram puts beside a message (signatures, forward names)."""
    message = dict(envelope.get("message") or {})
    for name in _REDACTED_FIELDS:
        message.pop(name, None)
    fwd = message.get("fwd_from")
    if isinstance(fwd, dict):
        message["fwd_from"] = {k: v for k, v in fwd.items() if k not in ("from_name", "post_author")}
    return f.compact({**envelope, "message": message})


# --------------------------------------------------------------------------- source


def session_path(home: Path, name: str) -> Path:
    return home / "keys" / f"telegram-{name}.session"


def parse_cursor(cursor: str | None) -> dict[str, int]:
    if not cursor:
        return {}
    try:
        raw = json.loads(cursor)
        return {str(k): int(v) for k, v in raw.items()}
    except (ValueError, TypeError, AttributeError):
        raise ValueError(f"not a Telegram cursor: {cursor[:60]!r}") from None


def format_cursor(state: dict[str, int]) -> str:
    return json.dumps(dict(sorted(state.items())), separators=(",", ":"))


class TelegramSource:
    """Public Telegram channels through Telethon: catch-up by id plus live updates."""

    platform = PLATFORM

    def __init__(
        self,
        name: str,
        channels: Sequence[str],
        *,
        api_id: Secret | None,
        api_hash: Secret | None,
        session: Path,
        backfill_limit: int = 500,
        catch_up_interval_s: float = 300.0,
        backoff: Backoff | None = None,
        sleep: Sleep = real_sleep,
        health: SourceHealth | None = None,
    ) -> None:
        if not channels:
            raise ValueError("name at least one public channel")
        self.name = name
        self.channels = [c.strip().removeprefix("https://t.me/").removeprefix("@") for c in channels]
        self.api_id = api_id
        self.api_hash = api_hash
        self.session = session
        self.backfill_limit = backfill_limit
        self.catch_up_interval_s = catch_up_interval_s
        self.backoff = backoff or Backoff(base_s=5.0, cap_s=600.0)
        self.sleep = sleep
        self.health = health or SourceHealth(name, PLATFORM)
        for secret in (api_id, api_hash):
            if secret:
                self.health.add_secrets(secret.reveal())

    def client(self) -> Any:
        """A Telethon client for this source's session (not connected)."""
        if not (self.api_id and self.api_hash):
            raise SourceFailed(
                f"Telegram source {self.name!r} needs WATCHFLOOR_TELEGRAM_API_ID and WATCHFLOOR_TELEGRAM_API_HASH "
                "(from https://my.telegram.org)"
            )
        try:
            api_id = int(self.api_id.reveal())
        except ValueError:
            raise SourceFailed("the Telegram API id is a number") from None
        from telethon import TelegramClient

        self.session.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return TelegramClient(str(self.session), api_id, self.api_hash.reveal(), receive_updates=True)

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        from telethon import events as tl_events
        from telethon.errors import FloodWaitError

        state = parse_cursor(cursor)
        client = self.client()
        queue: asyncio.Queue[RawEvent] = asyncio.Queue(maxsize=10_000)
        try:
            await self._connect(client)
            entities = {}
            for channel in self.channels:
                try:
                    entity = await client.get_entity(channel)
                except (ValueError, TypeError) as exc:
                    self.health.error(f"channel {channel!r} not found: {exc}")
                    continue
                entities[entity.id] = entity
            if not entities:
                raise SourceFailed(f"none of the channels of {self.name!r} could be found")

            def put(payload: bytes) -> None:
                # Live updates do not move the cursor: only the catch-up by id does, so a
                # message that came live while older ones were still unread is never skipped.
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(RawEvent(self.name, PLATFORM, format_cursor(state), payload, utcnow()))

            chats = list(entities.values())

            def channel_of(message: Any) -> int:
                return int(getattr(message.peer_id, "channel_id", 0))

            async def on_new(event: Any) -> None:
                put(message_payload(channel_of(event.message), event.message))

            async def on_edit(event: Any) -> None:
                put(message_payload(channel_of(event.message), event.message, edited=True))

            async def on_delete(event: Any) -> None:
                channel_id = getattr(event, "channel_id", None)
                if channel_id is not None:
                    for message_id in event.deleted_ids:
                        put(deletion_payload(channel_id, message_id))

            client.add_event_handler(on_new, tl_events.NewMessage(chats=chats))
            client.add_event_handler(on_edit, tl_events.MessageEdited(chats=chats))
            client.add_event_handler(on_delete, tl_events.MessageDeleted(chats=chats))
            while True:
                try:
                    for channel_id, entity in entities.items():
                        async for event in self._catch_up(client, channel_id, entity, state):
                            yield event
                except FloodWaitError as exc:  # Telegram's rate limit: it says how long to wait
                    wait = float(getattr(exc, "seconds", 60))
                    self.health.rate_limited(utcnow() + timedelta(seconds=wait), f"Telegram asks to wait {wait:g} s")
                    await self.sleep(wait)
                    continue
                except (ConnectionError, OSError) as exc:
                    self.health.disconnected(f"Telegram: {type(exc).__name__}: {exc}")
                    await self.sleep(self.backoff.next_delay())
                    with contextlib.suppress(ConnectionError, OSError):
                        await self._connect(client)
                    continue
                deadline = asyncio.get_running_loop().time() + self.catch_up_interval_s
                while (left := deadline - asyncio.get_running_loop().time()) > 0:
                    try:
                        yield await asyncio.wait_for(queue.get(), timeout=left)
                    except TimeoutError:
                        break
                if not client.is_connected():
                    self.health.disconnected("Telegram connection lost")
                    await self.sleep(self.backoff.next_delay())
                    await self._connect(client)
        finally:
            with contextlib.suppress(Exception):
                await client.disconnect()

    async def _connect(self, client: Any) -> None:
        self.health.connecting("telegram")
        await client.connect()
        if not await client.is_user_authorized():
            raise SourceFailed(
                f"the Telegram session of {self.name!r} is not logged in: "
                f"run `watchfloor source test {self.name} --login`"
            )
        self.backoff.reset()
        self.health.connected("telegram")

    async def _catch_up(
        self, client: Any, channel_id: int, entity: Any, state: dict[str, int]
    ) -> AsyncIterator[RawEvent]:
        """Messages after the last id, oldest first (``backfill_limit`` per round; the next
        round goes on from there, so a long absence is caught up over several rounds)."""
        last = state.get(str(channel_id), 0)
        async for message in client.iter_messages(entity, min_id=last, reverse=True, limit=self.backfill_limit):
            state[str(channel_id)] = max(state.get(str(channel_id), 0), message.id)
            yield RawEvent(self.name, PLATFORM, format_cursor(state), message_payload(channel_id, message), utcnow())


def message_key(payload: bytes) -> str | None:
    """The event's key for the bus's duplicate detection (``Nats-Msg-Id`` after ``telegram:``),
    read without normalising: ``CHANNEL_ID:MESSAGE_ID:EDIT_DATE`` (``original`` before any
    edit), ``CHANNEL_ID:MESSAGE_ID:delete`` for a deletion. None when unreadable: the bus then
    keys the event by a hash of its payload."""
    try:
        envelope = json.loads(payload)
        channel_id, kind = envelope["channel_id"], envelope["event"]
        if kind == "delete":
            message_id, version = envelope["id"], "delete"
        else:
            message = envelope["message"]
            message_id, version = message["id"], message.get("edit_date") or "original"
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (channel_id, message_id)):
        return None
    return f"{channel_id}:{message_id}:{version}" if isinstance(version, str | int) else None
