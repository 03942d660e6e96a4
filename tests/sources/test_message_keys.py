"""The cheap key readers behind the bus's ``Nats-Msg-Id``: they name the same post version the
normaliser does (without normalising), they tell events apart, and no payload makes them
raise (a key reader runs before anything checked the payload)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import Deletion, Post, RawEvent
from watchfloor.pipeline.bus import message_id
from watchfloor.sources import bluesky, mastodon, telegram, xapi
from watchfloor.sources.catalog import NORMALISERS, message_key_for, normaliser_for

PSEUDONYMISE = HmacPseudonymiser(b"k" * 32)
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def normalised(platform: str, payload: bytes):
    return normaliser_for(platform, PSEUDONYMISE).normalise(RawEvent("s", platform, "1", payload, NOW))


def test_bluesky_keys_are_the_posts_native_id_and_version(shared_fixtures) -> None:
    lines = (shared_fixtures / "bluesky" / "jetstream_v1_corpus.jsonl").read_bytes().splitlines()
    posts = deletions = 0
    for line in lines:
        item, key = normalised("bluesky", line), bluesky.message_key(line)
        assert key is not None, line[:200]
        if isinstance(item, Post):
            assert key == f"{item.native_id}:{item.version}"
            posts += 1
        elif isinstance(item, Deletion):
            assert key.startswith(f"{item.native_id}:")
            deletions += 1
    assert posts and deletions
    assert len({message_id(RawEvent("s", "bluesky", "1", line, NOW)) for line in lines}) == len(set(lines))


def test_mastodon_keys_name_the_status_version_and_deletions_apart() -> None:
    status = {
        "id": "109", "created_at": "2026-11-25T10:00:00.000Z", "edited_at": None, "visibility": "public",
        "content": "<p>river rising</p>", "account": {"id": "7", "acct": "ann", "url": "https://m.example/@ann"},
        "mentions": [], "tags": [], "language": "en", "url": "https://m.example/@ann/109",
    }  # fmt: skip
    created = mastodon.envelope("https://m.example", "update", json.dumps(status))
    edited = mastodon.envelope(
        "https://m.example", "status.update", json.dumps(status | {"edited_at": "2026-11-25T11:00:00.000Z"})
    )
    deleted = mastodon.envelope("https://m.example", "delete", "109")
    post = normalised("mastodon", created)
    assert isinstance(post, Post) and post.native_id == "m.example:109"
    keys = [mastodon.message_key(p) for p in (created, edited, deleted)]
    assert keys == [
        "m.example:109:2026-11-25T10:00:00.000Z",
        "m.example:109:2026-11-25T11:00:00.000Z",
        "m.example:109:delete",
    ]


def test_telegram_and_x_keys() -> None:
    message = {"_": "Message", "id": 5, "date": "2026-11-25T10:00:00+00:00", "message": "bridge closed"}
    assert telegram.message_key(json.dumps({"channel_id": 42, "event": "message", "message": message}).encode()) == (
        "42:5:original"
    )
    edited = {"channel_id": 42, "event": "edit", "message": message | {"edit_date": "2026-11-25T11:00:00+00:00"}}
    assert telegram.message_key(json.dumps(edited).encode()) == "42:5:2026-11-25T11:00:00+00:00"
    assert telegram.message_key(telegram.deletion_payload(42, 5)) == "42:5:delete"
    tweet = {"data": {"id": "20", "text": "t", "author_id": "1", "edit_history_tweet_ids": ["19", "20"]}}
    post = normalised("x", json.dumps(tweet).encode())
    assert isinstance(post, Post)
    assert xapi.message_key(json.dumps(tweet).encode()) == f"{post.native_id}:{post.version}" == "19:20"
    assert xapi.message_key(b'{"id":"20","action":"delete"}') == "20:delete"


def test_polled_platforms_are_keyed_by_a_hash_of_the_payload() -> None:
    for platform in ("reddit", "rss", "youtube"):
        event = RawEvent("s", platform, "1", b'{"some": "item"}', NOW)
        assert message_key_for(platform)(event.payload) is None
        assert message_id(event) == message_id(RawEvent("t", platform, "9", b'{"some": "item"}', NOW))
        assert message_id(event).startswith(f"{platform}:sha256:")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
FIELDS = st.sampled_from(["did", "kind", "commit", "instance", "event", "data", "channel_id", "message", "id"])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=200), JSON.map(lambda v: json.dumps(v).encode()),
                 st.dictionaries(FIELDS, JSON, max_size=6).map(lambda v: json.dumps(v).encode())))  # fmt: skip
def test_no_payload_makes_a_key_reader_raise(payload: bytes) -> None:
    for platform in NORMALISERS:
        key = message_key_for(platform)(payload)
        assert key is None or isinstance(key, str)
        mid = message_id(RawEvent("s", platform, "1", payload, NOW))
        assert mid.startswith(f"{platform}:") and mid.isascii() and mid.isprintable() and len(mid) < 500
