"""X (Twitter) API v2 JSON, as research exports hold it (twarc2 output and compliance files).

There is no live X source: the API's terms and prices rule it out for most users, and
watchfloor never logs in as anyone. Exports made by others with ``twarc2`` are imported
with ``watchfloor import FILE --format x-v2`` (see :mod:`watchfloor.sources.files`),
which splits each line into single-tweet responses; this module reads those:

- ``{"data": {tweet}, "includes": {…}}``: one tweet with the users, media and tweets it
  refers to. ``native_id`` is the first id of ``edit_history_tweet_ids`` (the original
  tweet), ``version`` the tweet's own id, so an edit is a new version of the same post.
  Retweets are counted and dropped; a tweet withheld for its whole account (``scope:
  user``) carries only a notice and is dropped; a tweet withheld in some countries is
  kept (the deployment decides where it operates).
- ``{"errors": [error]}``: a tweet the API could not find is a deletion (it is gone
  upstream); other errors (suspended users, authorisation) are counted and dropped.
- compliance records ``{"id": …, "action": "delete", …}``: a deletion.

Privacy: authors and mentioned accounts are pseudonymised by numeric user id (by
user name only when the export lacks the id); user objects (names, user names,
descriptions, pictures) are removed from the raw payload kept with a matched post;
``url`` is ``https://twitter.com/i/web/status/<id>``, which needs no user name.
"""

from __future__ import annotations

import json
from typing import Any

from watchfloor.model import Deletion, Ignored, MalformedEvent, MediaRef, Normalised, Post, RawEvent
from watchfloor.sources import fields as f
from watchfloor.sources.base import Pseudonymiser

PLATFORM = "x"
NO_LANGUAGE = frozenset({"und", "zxx", "art"})
MAX_TWEET_CHARS = 30_000


class XNormaliser:
    """Reads single X API v2 responses, errors and compliance records."""

    platform = PLATFORM

    def __init__(self, pseudonymise: Pseudonymiser) -> None:
        self._pseudonymise = pseudonymise

    def normalise(self, event: RawEvent) -> Normalised:
        message = f.load_object(event.payload, "line")
        if "action" in message and "id" in message and "data" not in message:
            return self._compliance(message, event)
        if "data" not in message:
            errors = f.objects(message, "errors", "errors")
            if errors:
                return self._error(errors[0], event)
            if "meta" in message:
                return Ignored(kind="x:meta")
            raise MalformedEvent("neither data, errors nor a compliance record")
        tweet = f.child(message, "data", "data")
        includes = f.optional_child(message, "includes", "includes") or {}
        return self._tweet(tweet, includes, message, event)

    def _compliance(self, record: f.JsonObject, event: RawEvent) -> Normalised:
        tweet_id = _tweet_id(f.identifier(record, "id", "id"), "id")
        action = f.text(record, "action", "action", limit=64)
        if action != "delete":
            return Ignored(kind=f"x:compliance:{action[:32]}")
        when = record.get("created_at")
        return Deletion(PLATFORM, tweet_id, f.parse_time(when, "created_at") if when else event.received_at)

    def _error(self, error: f.JsonObject, event: RawEvent) -> Normalised:
        kind = f.optional_text(error, "type", "errors[0].type", limit=512) or ""
        resource = f.optional_text(error, "resource_type", "errors[0].resource_type", limit=64)
        if kind.endswith("/resource-not-found") and resource == "tweet":
            tweet_id = f.optional_identifier(error, "resource_id", "errors[0].resource_id") or f.identifier(
                error, "value", "errors[0].value"
            )
            return Deletion(PLATFORM, _tweet_id(tweet_id, "errors[0].resource_id"), event.received_at)
        return Ignored(kind=f"x:error:{resource or 'unknown'}")

    def _tweet(self, tweet: f.JsonObject, includes: f.JsonObject, message: f.JsonObject, event: RawEvent) -> Normalised:
        tweet_id = _tweet_id(f.identifier(tweet, "id", "data.id"), "data.id")
        references = {
            f.text(ref, "type", f"data.referenced_tweets[{i}].type", limit=32): f.identifier(
                ref, "id", f"data.referenced_tweets[{i}].id"
            )
            for i, ref in enumerate(f.objects(tweet, "referenced_tweets", "data.referenced_tweets"))
        }
        if "retweeted" in references:
            return Ignored(kind="x:retweet")
        withheld = f.optional_child(tweet, "withheld", "data.withheld")
        if withheld and withheld.get("scope") == "user":
            return Ignored(kind="x:withheld-account")
        text = f.text(tweet, "text", "data.text", limit=MAX_TWEET_CHARS)
        author_id = f.identifier(tweet, "author_id", "data.author_id")
        history = f.texts(tweet, "edit_history_tweet_ids", "data.edit_history_tweet_ids")
        native_id = _tweet_id(history[0], "data.edit_history_tweet_ids[0]") if history else tweet_id
        created = tweet.get("created_at")
        created_at = f.parse_time(created, "data.created_at") if created is not None else event.received_at
        lang = f.optional_text(tweet, "lang", "data.lang", limit=16)
        if lang and (lang in NO_LANGUAGE or lang.startswith("q")):
            lang = None
        entities = f.optional_child(tweet, "entities", "data.entities") or {}
        users = {
            str(u.get("username", "")).lower(): str(u.get("id"))
            for u in f.objects(includes, "users", "includes.users")
            if u.get("id") is not None
        }
        return Post(
            platform=PLATFORM,
            native_id=native_id,
            version=tweet_id,
            created_at=created_at,
            received_at=event.received_at,
            text=text,
            author=self._pseudonymise(PLATFORM, author_id),
            lang=lang,
            langs=(lang,) if lang else (),
            url=f"https://twitter.com/i/web/status/{tweet_id}",
            links=_links(entities),
            hashtags=f.unique(
                f.text(h, "tag", f"data.entities.hashtags[{i}].tag", limit=280)
                for i, h in enumerate(f.objects(entities, "hashtags", "data.entities.hashtags"))
            ),
            mentions=f.unique(
                self._mention(m, users, i)
                for i, m in enumerate(f.objects(entities, "mentions", "data.entities.mentions"))
            ),
            reply_to=references.get("replied_to"),
            quote_of=references.get("quoted"),
            media=tuple(_media(tweet, includes)),
            raw=redact_payload(message),
        )

    def _mention(self, mention: f.JsonObject, users: dict[str, str], index: int) -> str:
        user_id = f.optional_identifier(mention, "id", f"data.entities.mentions[{index}].id")
        if user_id is None:
            username = f.text(mention, "username", f"data.entities.mentions[{index}].username", limit=64).lower()
            user_id = users.get(username)
            if user_id is None:
                return self._pseudonymise(PLATFORM, f"username:{username}")
        return self._pseudonymise(PLATFORM, user_id)


def _tweet_id(value: str, path: str) -> str:
    if not value.isascii() or not value.isdigit() or len(value) > 25:
        raise MalformedEvent(f"{path} {f.short(value)} is not a tweet id")
    return value


def _links(entities: f.JsonObject) -> tuple[str, ...]:
    links = []
    for index, url in enumerate(f.objects(entities, "urls", "data.entities.urls")):
        path = f"data.entities.urls[{index}]"
        target = (
            f.optional_text(url, "unwound_url", f"{path}.unwound_url", limit=4096)
            or f.optional_text(url, "expanded_url", f"{path}.expanded_url", limit=4096)
            or f.optional_text(url, "url", f"{path}.url", limit=4096)
        )
        if target and target.startswith(("http://", "https://")) and not url.get("media_key"):
            links.append(target)
    return f.unique(links)


def _media(tweet: f.JsonObject, includes: f.JsonObject) -> list[MediaRef]:
    attachments = f.optional_child(tweet, "attachments", "data.attachments") or {}
    keys = f.texts(attachments, "media_keys", "data.attachments.media_keys")
    known = {str(m.get("media_key")): m for m in f.objects(includes, "media", "includes.media")}
    found = []
    for key in keys:
        media = known.get(key)
        if media is None:
            continue
        url = media.get("url") or media.get("preview_image_url")
        if not isinstance(url, str):
            continue
        kind = media.get("type")
        mime = {"photo": "image/*", "video": "video/*", "animated_gif": "image/gif"}.get(str(kind))
        alt = media.get("alt_text") if isinstance(media.get("alt_text"), str) else None
        found.append(MediaRef(url=url, mime_type=mime, content_hash=key, alt=alt))
    return found


_HANDLE_KEYS = frozenset({"username", "screen_name"})


def redact_payload(message: f.JsonObject) -> bytes:
    """The response without user objects and user names (ids stay, as the platform's keys)."""
    redacted = _without_handles({k: v for k, v in message.items() if k != "__twarc"})
    includes = redacted.get("includes")
    if isinstance(includes, dict) and isinstance(includes.get("users"), list):
        includes["users"] = [{"id": u.get("id")} for u in includes["users"] if isinstance(u, dict)]
    return f.compact(redacted)


def _without_handles(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_handles(v) for k, v in value.items() if k not in _HANDLE_KEYS}
    if isinstance(value, list):
        return [_without_handles(v) for v in value]
    return value


# --------------------------------------------------------------------------- export lines


def split_export_line(line: bytes) -> list[bytes]:
    """One line of a twarc2 export as single-tweet responses, errors and compliance records.

    A line that is not JSON comes back whole, so it reaches the dead letters.
    """
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        return [line]
    if isinstance(message, list):
        return [f.compact({"data": item}) if isinstance(item, dict) else f.compact(item) for item in message]
    if not isinstance(message, dict):
        return [line]
    data = message.get("data")
    if isinstance(data, dict) or (data is None and "action" in message):
        return [line]
    out: list[bytes] = []
    includes = message.get("includes") if isinstance(message.get("includes"), dict) else {}
    if isinstance(data, list):
        out += [f.compact(_single(tweet, includes)) for tweet in data]
    elif data is not None:
        out.append(f.compact({"data": data}))
    errors = message.get("errors")
    if isinstance(errors, list):
        out += [f.compact({"errors": [error]}) for error in errors]
    if not out and data is None and not isinstance(errors, list):
        out.append(line)  # neither tweets nor errors: let the normaliser say what it is
    return out


def _single(tweet: Any, includes: dict[str, Any]) -> dict[str, Any]:
    """A single-tweet response: the tweet and the part of ``includes`` it refers to."""
    if not isinstance(tweet, dict):
        return {"data": tweet}
    wanted_users = {str(tweet.get("author_id"))}
    entities = tweet.get("entities") if isinstance(tweet.get("entities"), dict) else {}
    for mention in entities.get("mentions") or []:
        if isinstance(mention, dict):
            wanted_users.add(str(mention.get("id")))
            wanted_users.add(str(mention.get("username", "")).lower())
    attachments = tweet.get("attachments") if isinstance(tweet.get("attachments"), dict) else {}
    wanted_media = {str(k) for k in attachments.get("media_keys") or []}
    wanted_tweets = {str(r.get("id")) for r in tweet.get("referenced_tweets") or [] if isinstance(r, dict)}
    subset: dict[str, Any] = {}
    users = [
        u
        for u in includes.get("users") or []
        if isinstance(u, dict)
        and (str(u.get("id")) in wanted_users or str(u.get("username", "")).lower() in wanted_users)
    ]
    media = [m for m in includes.get("media") or [] if isinstance(m, dict) and str(m.get("media_key")) in wanted_media]
    tweets = [t for t in includes.get("tweets") or [] if isinstance(t, dict) and str(t.get("id")) in wanted_tweets]
    for key, value in (("users", users), ("media", media), ("tweets", tweets)):
        if value:
            subset[key] = value
    return {"data": tweet, "includes": subset} if subset else {"data": tweet}


def message_key(payload: bytes) -> str | None:
    """The line's key for the bus's duplicate detection (``Nats-Msg-Id`` after ``x:``), read
    without normalising: ``FIRST_ID:TWEET_ID`` (the first id of the edit history, then this
    version's id, as the Post's native id and version), ``TWEET_ID:delete`` for a compliance
    delete. None otherwise (error and meta lines): the bus then keys the line by a hash of
    its payload."""
    try:
        message = json.loads(payload)
        if "data" not in message:
            if message.get("action") == "delete" and isinstance(message.get("id"), str | int):
                return f"{message['id']}:delete"
            return None
        tweet = message["data"]
        tweet_id, history = tweet["id"], tweet.get("edit_history_tweet_ids") or [tweet["id"]]
        first = history[0]
    except (ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError):
        return None
    if not isinstance(tweet_id, str | int) or not isinstance(first, str | int):
        return None
    return f"{first}:{tweet_id}"
