"""Bluesky: read Jetstream v1 JSON events into Posts, Deletions and Ignored events.

Jetstream (https://github.com/bluesky-social/jetstream) turns the AT Protocol firehose
into one JSON object per event::

    {"did": "did:plc:…", "time_us": 1725911162329308, "kind": "commit",
     "commit": {"rev": "…", "operation": "create", "collection": "app.bsky.feed.post",
                "rkey": "…", "record": {"text": "…", "createdAt": "…", …}, "cid": "…"}}

Only ``app.bsky.feed.post`` commits carry posts. Every other commit (likes, reposts,
follows, blocks, statuses, profiles, other apps' records) and the ``identity`` and
``account`` events are well-formed but carry no post, so they come back as
:class:`~watchfloor.model.Ignored`.

Privacy decisions:

- the author's DID only ever reaches the Post through the pseudonymiser, and so do the
  DIDs of mentioned accounts;
- ``native_id`` is the post's at-uri, which necessarily contains the author's DID: it is
  the platform's identifier, needed for deletions, replies and dedup. ``reply_to`` and
  ``quote_of`` are at-uris too. The UI shows pseudonyms, never these identifiers;
- ``url`` is ``None``: the bsky.app web address contains the DID (or the handle);
- media are referenced by blob CID (``at-blob:<cid>``) with their MIME type and alt text;
  image metadata (EXIF, location) is never read, and aspect ratios are dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from watchfloor.model import Deletion, Ignored, MalformedEvent, MediaRef, Normalised, Post, RawEvent
from watchfloor.sources.base import Pseudonymiser

PLATFORM = "bluesky"
POST_COLLECTION = "app.bsky.feed.post"
MAX_TEXT_CHARS = 10_000
MAX_PAYLOAD_BYTES = 2 * 1024 * 1024
OPERATIONS = frozenset({"create", "update", "delete"})

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MAX_TIME_US = (datetime.max.replace(tzinfo=UTC) - _EPOCH) // timedelta(microseconds=1)
# AT Protocol syntax (https://atproto.com/specs/did, /record-key, /nsid, /lexicon#datetime).
_DID = re.compile(r"did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]")
_KIND = re.compile(r"[a-z][a-z_]{0,31}")
_RECORD_KEY = re.compile(r"[A-Za-z0-9._:~-]{1,512}")
_NSID = re.compile(r"[a-zA-Z]([a-zA-Z0-9-]{0,62})?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})?)+")
_DATETIME = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})T(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]{1,20}))?(?P<zone>Z|[+-][0-9]{2}:[0-9]{2})"
)
# The usual forms of a createdAt, which datetime.fromisoformat reads as parse_datetime does
# (but for "-00:00", which parse_datetime refuses).
_USUAL_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)

_LINK = "app.bsky.richtext.facet#link"
_TAG = "app.bsky.richtext.facet#tag"
_MENTION = "app.bsky.richtext.facet#mention"
_EMBED_EXTERNAL = "app.bsky.embed.external"
_EMBED_IMAGES = "app.bsky.embed.images"
_EMBED_VIDEO = "app.bsky.embed.video"
_EMBED_RECORD = "app.bsky.embed.record"
_EMBED_RECORD_WITH_MEDIA = "app.bsky.embed.recordWithMedia"

JsonObject = dict[str, Any]


class JetstreamNormaliser:
    """Reads Jetstream v1 events (uncompressed JSON) for the ``bluesky`` platform."""

    platform = PLATFORM

    def __init__(self, pseudonymise: Pseudonymiser) -> None:
        self._pseudonymise = pseudonymise
        self._ignored: dict[tuple[str, str], Ignored] = {}  # (collection, operation) of valid NSIDs

    def normalise(self, event: RawEvent) -> Normalised:
        message = _parse_message_fast(event.payload)
        if message is not None:
            found = self._normalise_common(event, message)
            if found is not None:
                return found
        # Anything unusual: the standard parser and every check, for the exact reason.
        return self._normalise_checked(event, parse_message(event.payload))

    def _normalise_common(self, event: RawEvent, message: JsonObject) -> Normalised | None:
        """The common, well-formed events, read with fewer steps than :meth:`_normalise_checked`.

        Returns exactly what that method returns, or None to let it decide (and word
        the reason) whenever anything is unusual. Only for messages parsed by orjson,
        whose strings are valid UTF-8 (no lone surrogates) and hold no NUL where a
        pattern is checked (no pattern allows one); :meth:`_post_common` refuses the
        NULs of the other strings it keeps.
        """
        did, time_us, kind = message.get("did"), message.get("time_us"), message.get("kind")
        if type(did) is not str or type(time_us) is not int or type(kind) is not str:
            return None
        if len(did) > 2048 or not 0 <= time_us <= _MAX_TIME_US or not _DID.fullmatch(did):
            return None
        if kind != "commit":
            return Ignored(kind=kind) if _KIND.fullmatch(kind) else None
        commit = message.get("commit")
        if type(commit) is not dict:
            return None
        operation, collection, rkey = commit.get("operation"), commit.get("collection"), commit.get("rkey")
        if type(operation) is not str or operation not in OPERATIONS or type(collection) is not str:
            return None
        ignored = self._ignored.get((collection, operation))
        if (
            ignored is None
            and collection != POST_COLLECTION
            and not (len(collection) <= 317 and _NSID.fullmatch(collection))
        ):
            return None
        if type(rkey) is not str or rkey in (".", "..") or not _RECORD_KEY.fullmatch(rkey):
            return None
        if collection != POST_COLLECTION:
            if ignored is None:
                ignored = Ignored(kind=f"commit:{collection}:{operation}")
                if len(self._ignored) < 10_000:  # the same immutable answer, shared
                    self._ignored[collection, operation] = ignored
            return ignored
        native_id = f"at://{did}/{POST_COLLECTION}/{rkey}"
        if operation == "delete":
            return Deletion(platform=PLATFORM, native_id=native_id, deleted_at=_from_time_us(time_us))
        return self._post_common(event, did, time_us, commit, native_id)

    def _normalise_checked(self, event: RawEvent, message: JsonObject) -> Normalised:
        did = _did(message)
        time_us = _time_us(message)
        kind = _string(message, "kind", "kind")
        if not _KIND.fullmatch(kind):
            raise MalformedEvent(f"kind {_short(kind)} is not an event kind")
        if kind != "commit":
            return Ignored(kind=kind)  # "identity", "account", or a kind newer than this code

        commit = _object(message, "commit", "commit")
        operation = _string(commit, "operation", "commit.operation")
        if operation not in OPERATIONS:
            raise MalformedEvent(f"commit.operation {_short(operation)} is not create, update or delete")
        collection = _string(commit, "collection", "commit.collection")
        if not _NSID.fullmatch(collection) or len(collection) > 317:
            raise MalformedEvent(f"commit.collection {_short(collection)} is not an NSID")
        rkey = _string(commit, "rkey", "commit.rkey")
        if not _RECORD_KEY.fullmatch(rkey) or rkey in (".", ".."):
            raise MalformedEvent(f"commit.rkey {_short(rkey)} is not a record key")

        if collection != POST_COLLECTION:
            return Ignored(kind=f"commit:{collection}:{operation}")
        native_id = f"at://{did}/{POST_COLLECTION}/{rkey}"
        if operation == "delete":
            return Deletion(platform=PLATFORM, native_id=native_id, deleted_at=_from_time_us(time_us))
        return self._post(event, did, time_us, commit, native_id)

    def _post(self, event: RawEvent, did: str, time_us: int, commit: JsonObject, native_id: str) -> Post:
        record = _object(commit, "record", "commit.record")
        version = _optional_string(commit, "cid", "commit.cid") or _optional_string(commit, "rev", "commit.rev")
        if not version:
            raise MalformedEvent("commit.cid and commit.rev missing")
        text = _string(record, "text", "commit.record.text")
        if len(text) > MAX_TEXT_CHARS:
            raise MalformedEvent(f"commit.record.text too long ({len(text)} characters, limit {MAX_TEXT_CHARS})")
        created = _optional_string(record, "createdAt", "commit.record.createdAt")
        created_at = parse_datetime(created, "commit.record.createdAt") if created is not None else None
        langs = tuple(_strings(record, "langs", "commit.record.langs"))
        facets = list(_facet_features(record))
        embed = _optional_object(record, "embed", "commit.record.embed")
        reply = _optional_object(record, "reply", "commit.record.reply")
        parent = _optional_object(reply, "parent", "commit.record.reply.parent") if reply else None

        links = [_string(f, "uri", "link facet uri") for f in facets if f.get("$type") == _LINK]
        links += _embed_links(embed)
        hashtags = [_string(f, "tag", "tag facet tag") for f in facets if f.get("$type") == _TAG]
        hashtags += _strings(record, "tags", "commit.record.tags")
        mentions = [_mentioned_did(f) for f in facets if f.get("$type") == _MENTION]
        return Post(
            platform=PLATFORM,
            native_id=native_id,
            version=version,
            created_at=created_at or _from_time_us(time_us),
            received_at=event.received_at,
            text=text,
            author=self._pseudonymise(PLATFORM, did),
            lang=langs[0] if langs else None,
            langs=langs,
            url=None,
            links=_unique(links),
            hashtags=_unique(tag.lstrip("#") for tag in hashtags),
            mentions=_unique(self._pseudonymise(PLATFORM, d) for d in mentions),
            reply_to=_string(parent, "uri", "commit.record.reply.parent.uri") if parent else None,
            quote_of=_quoted_uri(embed),
            media=tuple(_embed_media(embed)),
            raw=event.payload,
        )

    def _post_common(self, event: RawEvent, did: str, time_us: int, commit: JsonObject, native_id: str) -> Post | None:
        """:meth:`_post` for the usual shape of a post, in fewer steps.

        Returns the same Post, or None to let :meth:`_post` decide (and word the reason)
        whenever anything is unusual: a missing part or a wrong type, a NUL, a text over the
        limit, a createdAt in another form than ``YYYY-MM-DDTHH:MM:SS[.ffffff]`` and ``Z`` or
        an offset, an embed nested in a recordWithMedia's media. Only for messages parsed by
        orjson (no lone surrogates). It pseudonymises, as :meth:`_post` does, the author and
        then each mention, and only once the post is known to be readable.
        """
        record = commit.get("record")
        if type(record) is not dict:
            return None
        version = commit.get("cid")
        if version is None or version == "":
            version = commit.get("rev")
        if type(version) is not str or not version or "\x00" in version:
            return None
        text = record.get("text")
        if type(text) is not str or len(text) > MAX_TEXT_CHARS or "\x00" in text:
            return None
        created = record.get("createdAt")
        if created is None:
            created_at = _from_time_us(time_us)
        elif type(created) is str and _USUAL_DATETIME.fullmatch(created) and not created.endswith("-00:00"):
            try:
                created_at = datetime.fromisoformat(created).astimezone(UTC)
            except (ValueError, OverflowError):
                return None  # e.g. February 30th: parse_datetime words it
        else:
            return None
        langs = _strings_common(record.get("langs"))
        tags = _strings_common(record.get("tags"))
        if langs is None or tags is None:
            return None

        links: list[str] = []
        hashtags: list[str] = []
        mentioned: list[str] = []
        facets = record.get("facets")
        if facets is not None:
            if type(facets) is not list:
                return None
            for facet in facets:
                if type(facet) is not dict:
                    return None
                features = facet.get("features")
                if features is None:
                    continue
                if type(features) is not list:
                    return None
                for feature in features:
                    if type(feature) is not dict:
                        return None
                    kind = feature.get("$type")
                    if kind == _LINK:
                        uri = feature.get("uri")
                        if type(uri) is not str or "\x00" in uri:
                            return None
                        links.append(uri)
                    elif kind == _TAG:
                        tag = feature.get("tag")
                        if type(tag) is not str or "\x00" in tag:
                            return None
                        hashtags.append(tag)
                    elif kind == _MENTION:
                        mention = feature.get("did")
                        if type(mention) is not str or not _DID.fullmatch(mention):
                            return None
                        mentioned.append(mention)
        hashtags += tags

        quote_of: str | None = None
        media: tuple[MediaRef, ...] = ()
        embed = record.get("embed")
        if embed is not None:
            if type(embed) is not dict:
                return None
            found = _embed_common(embed, links)
            if found is None:
                return None
            quote_of, media = found

        reply_to: str | None = None
        reply = record.get("reply")
        if reply is not None:
            if type(reply) is not dict:
                return None
            parent = reply.get("parent") if reply else None
            if parent is not None:
                if type(parent) is not dict:
                    return None
                if parent:  # as in _post, an empty parent is no parent
                    reply_to = parent.get("uri")
                    if type(reply_to) is not str or "\x00" in reply_to:
                        return None

        pseudonymise = self._pseudonymise
        author = pseudonymise(PLATFORM, did)
        mentions = [pseudonymise(PLATFORM, mention) for mention in mentioned]
        return Post(
            platform=PLATFORM,
            native_id=native_id,
            version=version,
            created_at=created_at,
            received_at=event.received_at,
            text=text,
            author=author,
            lang=langs[0] if langs else None,
            langs=tuple(langs),
            url=None,
            links=_distinct(links),
            hashtags=_distinct([tag.lstrip("#") for tag in hashtags]) if hashtags else (),
            mentions=_distinct(mentions),
            reply_to=reply_to,
            quote_of=quote_of,
            media=media,
            raw=event.payload,
        )


# --------------------------------------------------------------------------- message


def _parse_message_fast(payload: bytes) -> JsonObject | None:
    """The message as orjson reads it, or None when only :func:`parse_message` can tell.

    orjson accepts no more than the standard parser and yields the same values, except
    that it reads integers beyond 64 bits as floats: :meth:`JetstreamNormaliser._normalise_common`
    only uses a message whose ``time_us`` is an int and reads no other number.
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        return None
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None  # invalid, or valid only for the standard parser (NaN, lone surrogates ...)
    return message if type(message) is dict else None


def parse_message(payload: bytes) -> JsonObject:
    """Decode one Jetstream message: UTF-8 JSON holding an object."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise MalformedEvent(f"payload too large ({len(payload)} bytes, limit {MAX_PAYLOAD_BYTES})")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedEvent(f"invalid UTF-8 at byte {error.start}") from None
    try:
        message = json.loads(text)
    except json.JSONDecodeError as error:
        raise MalformedEvent(f"invalid JSON at line {error.lineno} column {error.colno}: {error.msg}") from None
    except RecursionError:
        raise MalformedEvent("invalid JSON: nested too deeply") from None
    except ValueError as error:  # e.g. an integer with too many digits
        raise MalformedEvent(f"invalid JSON: {str(error)[:80]}") from None
    if not isinstance(message, dict):
        raise MalformedEvent(f"message is {_type_name(message)}, not an object")
    return message


def parse_datetime(value: str, path: str) -> datetime:
    """Parse an AT Protocol datetime (RFC 3339 with a required timezone) to UTC."""
    match = _DATETIME.fullmatch(value)
    if match is None or match["zone"] == "-00:00":
        raise MalformedEvent(f"{path} {_short(value)} is not an RFC 3339 datetime")
    fraction = (match["fraction"] or "0")[:6].ljust(6, "0")
    zone = "+00:00" if match["zone"] == "Z" else match["zone"]
    try:
        parsed = datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}{zone}")
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise MalformedEvent(f"{path} {_short(value)} is not a valid date and time") from None


def _did(message: JsonObject) -> str:
    did = _string(message, "did", "did")
    if len(did) > 2048 or not _DID.fullmatch(did):
        raise MalformedEvent(f"did {_short(did)} is not a DID")
    return did


def _time_us(message: JsonObject) -> int:
    if "time_us" not in message:
        raise MalformedEvent("time_us missing")
    value = message["time_us"]
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedEvent(f"time_us is {_type_name(value)}, not an integer")
    _from_time_us(value)  # range check
    return value


def _from_time_us(time_us: int) -> datetime:
    try:
        if time_us < 0:
            raise OverflowError
        return _EPOCH + timedelta(microseconds=time_us)
    except OverflowError:
        raise MalformedEvent(f"time_us {str(time_us)[:40]} out of range") from None


# --------------------------------------------------------------------------- record parts


def _facet_features(record: JsonObject) -> Iterator[JsonObject]:
    """Every feature of every facet; byte offsets are not needed, only the values."""
    for index, facet in enumerate(_list(record, "facets", "commit.record.facets")):
        path = f"commit.record.facets[{index}]"
        if not isinstance(facet, dict):
            raise MalformedEvent(f"{path} is {_type_name(facet)}, not an object")
        for feature_index, feature in enumerate(_list(facet, "features", f"{path}.features")):
            if not isinstance(feature, dict):
                raise MalformedEvent(f"{path}.features[{feature_index}] is {_type_name(feature)}, not an object")
            yield feature


def _mentioned_did(feature: JsonObject) -> str:
    did = _string(feature, "did", "mention facet did")
    if not _DID.fullmatch(did):
        raise MalformedEvent(f"mention facet did {_short(did)} is not a DID")
    return did


def _embed_links(embed: JsonObject | None) -> list[str]:
    """The external link card's uri, also when it sits beside a quoted record."""
    if embed is None:
        return []
    kind = embed.get("$type")
    if kind == _EMBED_RECORD_WITH_MEDIA:
        return _embed_links(_optional_object(embed, "media", "commit.record.embed.media"))
    if kind != _EMBED_EXTERNAL:
        return []
    external = _object(embed, "external", "commit.record.embed.external")
    return [_string(external, "uri", "commit.record.embed.external.uri")]


def _quoted_uri(embed: JsonObject | None) -> str | None:
    if embed is None:
        return None
    kind = embed.get("$type")
    if kind == _EMBED_RECORD_WITH_MEDIA:
        embed = _object(embed, "record", "commit.record.embed.record")
    elif kind != _EMBED_RECORD:
        return None
    ref = _object(embed, "record", "commit.record.embed.record")
    return _string(ref, "uri", "commit.record.embed.record.uri")


def _embed_media(embed: JsonObject | None) -> Iterator[MediaRef]:
    """Images and videos as blob references, also when they sit beside a quoted record."""
    if embed is None:
        return
    kind = embed.get("$type")
    if kind == _EMBED_RECORD_WITH_MEDIA:
        yield from _embed_media(_optional_object(embed, "media", "commit.record.embed.media"))
    elif kind == _EMBED_IMAGES:
        for index, image in enumerate(_list(embed, "images", "commit.record.embed.images")):
            path = f"commit.record.embed.images[{index}]"
            if not isinstance(image, dict):
                raise MalformedEvent(f"{path} is {_type_name(image)}, not an object")
            blob = _object(image, "image", f"{path}.image")
            yield _media(blob, _optional_string(image, "alt", f"{path}.alt"), f"{path}.image")
    elif kind == _EMBED_VIDEO:
        blob = _object(embed, "video", "commit.record.embed.video")
        yield _media(blob, _optional_string(embed, "alt", "commit.record.embed.alt"), "commit.record.embed.video")


def _media(blob: JsonObject, alt: str | None, path: str) -> MediaRef:
    """A blob is ``{"ref": {"$link": cid}, "mimeType": …}`` or, legacy, ``{"cid": …, "mimeType": …}``."""
    ref = _optional_object(blob, "ref", f"{path}.ref")
    cid = _string(ref, "$link", f"{path}.ref.$link") if ref is not None else _string(blob, "cid", f"{path}.ref")
    return MediaRef(
        url=f"at-blob:{cid}",
        mime_type=_optional_string(blob, "mimeType", f"{path}.mimeType"),
        content_hash=cid,
        alt=alt or None,
    )


# --------------------------------------------------------------------------- the usual shapes
#
# The fast path's readers: the same values as the checked readers above, or None whenever
# one of those would refuse (or might: an embed nested in a recordWithMedia's media).


def _strings_common(value: object) -> list[str] | None:
    """:func:`_strings` of an orjson value: [] for null, the list if it holds strings without NUL."""
    if value is None:
        return []
    if type(value) is not list:
        return None
    for item in value:
        if type(item) is not str or "\x00" in item:
            return None
    return value


def _embed_common(embed: JsonObject, links: list[str]) -> tuple[str | None, tuple[MediaRef, ...]] | None:
    """(quote_of, media) of an embed, adding its link card's uri to ``links``, as
    :func:`_quoted_uri`, :func:`_embed_media` and :func:`_embed_links` read it."""
    kind = embed.get("$type")
    if kind != _EMBED_RECORD and kind != _EMBED_RECORD_WITH_MEDIA:
        media = _media_common(embed, kind, links)
        return None if media is None else (None, media)
    ref = embed.get("record")
    if kind == _EMBED_RECORD_WITH_MEDIA:
        ref = ref.get("record") if type(ref) is dict else None
    if type(ref) is not dict:
        return None
    quote_of = ref.get("uri")
    if type(quote_of) is not str or "\x00" in quote_of:
        return None
    beside = embed.get("media") if kind == _EMBED_RECORD_WITH_MEDIA else None
    if beside is None:
        return quote_of, ()
    if type(beside) is not dict:
        return None
    kind = beside.get("$type")
    if kind == _EMBED_RECORD_WITH_MEDIA:
        return None  # nested: rare, and read differently by each checked helper
    media = _media_common(beside, kind, links)
    return None if media is None else (quote_of, media)


def _media_common(embed: JsonObject, kind: object, links: list[str]) -> tuple[MediaRef, ...] | None:
    """The media of an embed that is not a quote, adding an external link card's uri to ``links``."""
    if kind == _EMBED_IMAGES:
        images = embed.get("images")
        if images is None:
            return ()
        if type(images) is not list:
            return None
        media: list[MediaRef] = []
        for image in images:
            if type(image) is not dict:
                return None
            ref = _media_ref_common(image.get("image"), image.get("alt"))
            if ref is None:
                return None
            media.append(ref)
        return tuple(media)
    if kind == _EMBED_VIDEO:
        ref = _media_ref_common(embed.get("video"), embed.get("alt"))
        return None if ref is None else (ref,)
    if kind == _EMBED_EXTERNAL:
        external = embed.get("external")
        uri = external.get("uri") if type(external) is dict else None
        if type(uri) is not str or "\x00" in uri:
            return None
        links.append(uri)
    return ()


def _media_ref_common(blob: object, alt: object) -> MediaRef | None:
    """:func:`_media` of a blob object and its optional alt text."""
    if type(blob) is not dict or (alt is not None and (type(alt) is not str or "\x00" in alt)):
        return None
    ref = blob.get("ref")
    if ref is None:
        cid = blob.get("cid")
    elif type(ref) is dict:
        cid = ref.get("$link")
    else:
        return None
    mime_type = blob.get("mimeType")
    if type(cid) is not str or "\x00" in cid:
        return None
    if mime_type is not None and (type(mime_type) is not str or "\x00" in mime_type):
        return None
    return MediaRef(f"at-blob:{cid}", mime_type, cid, alt or None)


def _distinct(values: list[str]) -> tuple[str, ...]:
    """:func:`_unique` of a list."""
    if not values:
        return ()
    if len(values) == 1:
        return (values[0],) if values[0] else ()
    unique = dict.fromkeys(values)
    unique.pop("", None)
    return tuple(unique)


# --------------------------------------------------------------------------- typed access


def _string(obj: JsonObject, key: str, path: str) -> str:
    if key not in obj:
        raise MalformedEvent(f"{path} missing")
    return _checked_string(obj[key], path)


def _optional_string(obj: JsonObject, key: str, path: str) -> str | None:
    value = obj.get(key)
    return None if value is None else _checked_string(value, path)


def _checked_string(value: object, path: str) -> str:
    """A string that any store can hold: no lone surrogates (from JSON escapes), no NUL."""
    if not isinstance(value, str):
        raise MalformedEvent(f"{path} is {_type_name(value)}, not a string")
    if "\x00" in value:
        raise MalformedEvent(f"{path} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedEvent(f"{path} contains a lone surrogate") from None
    return value


def _object(obj: JsonObject, key: str, path: str) -> JsonObject:
    if key not in obj:
        raise MalformedEvent(f"{path} missing")
    value = obj[key]
    if not isinstance(value, dict):
        raise MalformedEvent(f"{path} is {_type_name(value)}, not an object")
    return value


def _optional_object(obj: JsonObject, key: str, path: str) -> JsonObject | None:
    return None if obj.get(key) is None else _object(obj, key, path)


def _list(obj: JsonObject, key: str, path: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedEvent(f"{path} is {_type_name(value)}, not a list")
    return value


def _strings(obj: JsonObject, key: str, path: str) -> list[str]:
    return [_checked_string(item, f"{path}[{i}]") for i, item in enumerate(_list(obj, key, path))]


def _unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(value for value in values if value))


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _short(value: str, limit: int = 40) -> str:
    """A value quoted for a reason, cut so a reason stays one short line."""
    return repr(value if len(value) <= limit else value[:limit] + "…")


def message_key(payload: bytes) -> str | None:
    """The event's key for the bus's duplicate detection (``Nats-Msg-Id`` after ``bluesky:``),
    read without normalising: a commit's ``at://DID/COLLECTION/RKEY:VERSION`` (VERSION is the
    cid, or the revision when there is none, as for deletes: the Post's own native id and
    version), another event's ``DID:KIND:TIME_US``. None when the payload is not a readable
    event: the bus then keys it by a hash of the payload."""
    try:
        message = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if type(message) is not dict:
        return None
    did, kind = message.get("did"), message.get("kind")
    if type(did) is not str or type(kind) is not str:
        return None
    if kind == "commit":
        commit = message.get("commit")
        if type(commit) is not dict:
            return None
        collection, rkey = commit.get("collection"), commit.get("rkey")
        version = commit.get("cid") or commit.get("rev")
        if type(collection) is not str or type(rkey) is not str or type(version) is not str:
            return None
        return f"at://{did}/{collection}/{rkey}:{version}"
    time_us = message.get("time_us")
    return f"{did}:{kind}:{time_us}" if type(time_us) is int else None
