"""Every source's parser against hypothesis: arbitrary bytes, arbitrary JSON, and real
payloads with fields replaced by arbitrary JSON. Nothing may crash: a normaliser returns a
Post, Deletion or Ignored, or raises MalformedEvent (and the pipeline then puts the event
in the dead letters and goes on)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from telethon.tl import types

from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import Deletion, Ignored, MalformedEvent, Post, RawEvent
from watchfloor.pipeline.runner import Pipeline
from watchfloor.sources.files import CsvMapping, CsvNormaliser, CsvSource
from watchfloor.sources.jetstream import Decompressor, FrameError, time_us_of
from watchfloor.sources.markup import read_html, sanitise_html
from watchfloor.sources.mastodon import MastodonNormaliser
from watchfloor.sources.reddit import RedditNormaliser
from watchfloor.sources.rss import FeedNormaliser, entries_from_document
from watchfloor.sources.sse import SseParser
from watchfloor.sources.telegram import TelegramNormaliser, message_payload
from watchfloor.sources.xapi import XNormaliser, split_export_line
from watchfloor.sources.youtube import YouTubeNormaliser

PSEUDONYMISE = HmacPseudonymiser(b"z" * 32)
WHEN = datetime(2026, 11, 25, tzinfo=UTC)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)

SAMPLES: dict[str, dict[str, Any]] = {
    "mastodon": {
        "instance": "https://social.example",
        "event": "update",
        "data": json.dumps(
            {
                "id": "1",
                "created_at": "2026-11-25T10:00:00.000Z",
                "content": "<p>hi <a href='https://x.example'>x</a></p>",
                "visibility": "public",
                "language": "en",
                "account": {"acct": "a"},
                "mentions": [{"acct": "b@c.example"}],
                "tags": [{"name": "t"}],
                "media_attachments": [{"id": "9", "url": "https://m.example/1.png", "type": "image"}],
                "edited_at": None,
                "in_reply_to_id": "0",
                "spoiler_text": "",
            }
        ),
    },
    "reddit": {
        "kind": "t1",
        "data": {
            "name": "t1_abc",
            "id": "abc",
            "author": "someone",
            "body": "text u/other https://x.example",
            "created_utc": 1482373040.0,
            "edited": False,
            "parent_id": "t3_x",
            "link_id": "t3_x",
        },
    },
    "rss": {
        "feed": "https://feeds.example/f.xml",
        "entry": {
            "id": "urn:1",
            "link": "https://news.example/1",
            "title": "T",
            "content": "<p>C</p>",
            "published": "2026-11-25T10:00:00Z",
            "tags": ["a"],
            "media": [{"url": "https://m.example/a.jpg"}],
            "language": "en-GB",
            "author": "desk",
        },
    },
    "youtube": {
        "videoId": "v1",
        "comment": {
            "kind": "youtube#comment",
            "id": "c1",
            "snippet": {
                "textOriginal": "hello",
                "textDisplay": "hello",
                "publishedAt": "2026-11-25T10:00:00Z",
                "updatedAt": "2026-11-25T10:00:00Z",
                "authorChannelId": {"value": "UCx"},
            },
        },
    },
    "x": {
        "data": {
            "id": "20",
            "text": "hi @b #t",
            "author_id": "2",
            "created_at": "2026-11-25T10:00:00.000Z",
            "edit_history_tweet_ids": ["20"],
            "lang": "en",
            "entities": {
                "mentions": [{"username": "b", "id": "3"}],
                "hashtags": [{"tag": "t"}],
                "urls": [{"expanded_url": "https://x.example"}],
            },
            "referenced_tweets": [{"type": "replied_to", "id": "19"}],
            "attachments": {"media_keys": ["k"]},
        },
        "includes": {
            "users": [{"id": "3", "username": "b"}],
            "media": [{"media_key": "k", "type": "photo", "url": "u"}],
        },
    },
    "telegram": json.loads(
        message_payload(
            77,
            types.Message(
                id=5,
                peer_id=types.PeerChannel(channel_id=77),
                date=WHEN,
                message="a #b https://c.example",
                entities=[types.MessageEntityHashtag(offset=2, length=2), types.MessageEntityUrl(offset=5, length=17)],
            ),
        )
    ),
    "csv": {"id": "1", "text": "hello", "author": "u", "created_at": "2026-11-25T10:00:00Z", "lang": "en"},
}

NORMALISERS = {
    "mastodon": MastodonNormaliser(PSEUDONYMISE),
    "reddit": RedditNormaliser(PSEUDONYMISE),
    "rss": FeedNormaliser(PSEUDONYMISE),
    "youtube": YouTubeNormaliser(PSEUDONYMISE),
    "x": XNormaliser(PSEUDONYMISE),
    "telegram": TelegramNormaliser(PSEUDONYMISE),
    "csv": CsvNormaliser(
        PSEUDONYMISE, CsvMapping.parse(["id=id", "text=text", "author=author", "created_at=created_at", "lang=lang"])
    ),
}


def outcome(platform: str, payload: bytes) -> str:
    event = RawEvent("fuzz", platform, "", payload, WHEN)
    try:
        item = NORMALISERS[platform].normalise(event)
    except MalformedEvent as exc:
        assert exc.reason and len(exc.reason) < 2000
        return "malformed"
    assert isinstance(item, Post | Deletion | Ignored), item
    if isinstance(item, Post):
        json.dumps([item.text, item.author, item.links, item.hashtags, item.mentions])  # storable
        item.text.encode("utf-8")
    return type(item).__name__


def test_the_samples_are_posts() -> None:
    for platform, sample in SAMPLES.items():
        assert outcome(platform, json.dumps(sample).encode()) == "Post", platform


@pytest.mark.parametrize("platform", sorted(NORMALISERS))
@FUZZ
@given(payload=st.binary(max_size=300))
def test_arbitrary_bytes(platform: str, payload: bytes) -> None:
    outcome(platform, payload)


@pytest.mark.parametrize("platform", sorted(NORMALISERS))
@FUZZ
@given(value=json_values)
def test_arbitrary_json(platform: str, value: Any) -> None:
    outcome(platform, json.dumps(value).encode())


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(copy[path[0]], path[1:], new)
    return copy


@pytest.mark.parametrize("platform", sorted(NORMALISERS))
@FUZZ
@given(data=st.data())
def test_real_payloads_with_a_field_replaced(platform: str, data: st.DataObject) -> None:
    sample = SAMPLES[platform]
    path = data.draw(st.sampled_from(_paths(sample)))
    mutated = _replace(sample, path, data.draw(json_values))
    if platform == "mastodon" and path == ("data",) and isinstance(mutated["data"], dict | list):
        mutated["data"] = json.dumps(mutated["data"])
    outcome(platform, json.dumps(mutated).encode())


@FUZZ
@given(chunks=st.lists(st.binary(max_size=60), max_size=8))
def test_sse_parser(chunks: list[bytes]) -> None:
    parser = SseParser(max_event_bytes=200)
    for chunk in chunks:
        for event in parser.feed(chunk):
            assert isinstance(event.data, str) and isinstance(event.event, str)


@FUZZ
@given(
    document=st.binary(max_size=400)
    | st.text(max_size=300).map(lambda t: f"<rss><channel><item>{t}</item></channel></rss>".encode())
)
def test_feed_documents(document: bytes) -> None:
    try:
        entries = entries_from_document(document, "https://feeds.example/f")
    except ValueError as exc:
        assert str(exc).startswith("not a feed")
        return
    for entry in entries:
        outcome("rss", json.dumps({"feed": "https://feeds.example/f", "entry": entry}).encode())


@FUZZ
@given(html=st.text(max_size=300))
def test_html_reading_and_sanitising(html: str) -> None:
    reading = read_html(html)
    assert all(link.startswith(("http://", "https://")) for link in reading.links)
    clean = sanitise_html(html)
    assert "<script" not in clean.lower() and "onerror=" not in clean.lower()


@FUZZ
@given(line=st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_x_export_lines(line: bytes) -> None:
    for item in split_export_line(line):
        outcome("x", item)


@FUZZ
@given(frame=st.binary(max_size=300))
def test_jetstream_frames(frame: bytes) -> None:
    with contextlib.suppress(FrameError):
        Decompressor().decompress(b"\x28\xb5\x2f\xfd" + frame)
    value = time_us_of(frame)
    assert value is None or value >= 0


async def test_csv_files_of_any_shape(tmp_path: Path) -> None:
    rng = random.Random(4)
    alphabet = 'ab,"\n\r;é\x00x'
    for round_number in range(40):
        path = tmp_path / f"f{round_number}.csv"
        body = "id,text,author,created_at,lang\n" + "".join(rng.choice(alphabet) for _ in range(rng.randrange(200)))
        path.write_bytes(
            body.encode("utf-8", "surrogatepass") if round_number % 5 else bytes(rng.randrange(256) for _ in range(80))
        )
        source = CsvSource(path)
        try:
            async for event in source.events(None):
                outcome("csv", event.payload)
        except ValueError:
            assert round_number % 5 == 0  # an undecodable header row


async def test_bad_input_lands_in_the_dead_letters_and_the_stream_goes_on(store) -> None:
    """A list of payloads, good and bad, through the real pipeline for every platform."""
    rng = random.Random(11)

    class ListSource:
        def __init__(self, platform: str, payloads: list[bytes]) -> None:
            self.name, self.platform, self.payloads = f"fuzz-{platform}", platform, payloads

        async def events(self, cursor):
            for index, payload in enumerate(self.payloads):
                yield RawEvent(self.name, self.platform, str(index + 1), payload, WHEN)
                await asyncio.sleep(0)

    for platform, sample in SAMPLES.items():
        good = json.dumps(sample).encode()
        bad = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60))) for _ in range(20)]
        bad += [good[: len(good) // 2], b"{}", b"[]", b'"text"', good.replace(b'"', b"'")]
        payloads = [good, *bad, good]
        expected_bad = sum(outcome(platform, p) == "malformed" for p in payloads)
        stats = await Pipeline(
            ListSource(platform, payloads), NORMALISERS[platform], store, batch_interval_s=0.01
        ).run()
        assert stats.events == len(payloads) and stats.dead_letters == expected_bad >= 20, platform
        assert store.get_cursor(f"fuzz-{platform}") == str(len(payloads))
    letters = store.list_dead_letters(limit=1000)
    assert {d.source for d in letters} == {f"fuzz-{p}" for p in SAMPLES} and all(d.reason for d in letters)
