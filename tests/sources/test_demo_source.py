"""DemoSource: deterministic, resumable, realistic, read by the real normaliser, hits near hit_share."""

from __future__ import annotations

import itertools
import json
import re
import string
import time
from collections import Counter
from contextlib import aclosing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import Deletion, Ignored, Normalised, Post, RawEvent, Severity, Watch, WatchStatus
from watchfloor.query import compile_query, compile_watch_set
from watchfloor.sources.base import Source
from watchfloor.sources.bluesky import JetstreamNormaliser
from watchfloor.sources.demo import (
    ACCOUNTS,
    DEMO_EPOCH_US,
    DEMO_WATCHES,
    DemoSource,
    demo_payload,
    write_demo_file,
)
from watchfloor.sources.demo_corpus import HITS, NOISE, SLOTS
from watchfloor.sources.replay import ReplaySource

PSEUDONYMISE = HmacPseudonymiser(b"watchfloor-test-secret-0123456789abcdef")
NORMALISER = JetstreamNormaliser(PSEUDONYMISE)
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


async def collect(source: DemoSource, cursor: str | None = None, limit: int | None = None) -> list[RawEvent]:
    out: list[RawEvent] = []
    async with aclosing(source.events(cursor)) as events:
        async for event in events:
            out.append(event)
            if limit is not None and len(out) >= limit:
                break
    return out


def without_clock(payload: bytes) -> dict[str, Any]:
    """The payload with everything taken from the wall clock removed."""
    message = json.loads(payload)
    message.pop("time_us")
    message.get("commit", {}).get("record", {}).pop("createdAt", None)
    for body in (message.get("identity"), message.get("account")):
        if body:
            body.pop("time")
    return message


def normalise_all(count: int, *, seed: int = 7, hit_share: float = 0.1) -> list[tuple[dict[str, Any], Normalised]]:
    out = []
    for index in range(count):
        payload = demo_payload(index, seed=seed, hit_share=hit_share, time_us=DEMO_EPOCH_US + index * 1000)
        event = RawEvent("demo", "bluesky", str(index + 1), payload, NOW)
        out.append((json.loads(payload), NORMALISER.normalise(event)))  # MalformedEvent would fail the test
    return out


def demo_watch_set(**overrides: Any) -> Any:
    watches = [
        Watch(name=name, query=query, purpose="demo", legal_basis="demo", owner="demo", severity=Severity(severity),
              id=number, **{"status": WatchStatus.approved, **overrides})
        for number, (name, query, severity) in enumerate(DEMO_WATCHES, start=1)
    ]  # fmt: skip
    watch_set = compile_watch_set(watches)
    assert watch_set.errors == {}
    return watch_set


# --------------------------------------------------------------------------- the source


def test_implements_the_source_protocol() -> None:
    source = DemoSource()
    assert isinstance(source, Source)
    assert (source.name, source.platform) == ("demo", "bluesky")
    with pytest.raises(ValueError, match="hit_share"):
        DemoSource(hit_share=1.5)
    with pytest.raises(ValueError, match="limit"):
        DemoSource(limit=-1)


@pytest.mark.asyncio
async def test_same_seed_same_events_and_cursors_count_events() -> None:
    first = await collect(DemoSource(rate=0, limit=300))
    second = await collect(DemoSource(rate=0, limit=300))
    assert [e.cursor for e in first] == [str(i) for i in range(1, 301)]
    assert [without_clock(e.payload) for e in first] == [without_clock(e.payload) for e in second]
    other = await collect(DemoSource(rate=0, limit=300, seed=8))
    assert [without_clock(e.payload) for e in other] != [without_clock(e.payload) for e in first]
    assert all(e.source == "demo" and e.platform == "bluesky" for e in first)


def test_payload_depends_only_on_seed_index_and_time() -> None:
    assert demo_payload(1234, seed=7, time_us=DEMO_EPOCH_US) == demo_payload(1234, seed=7, time_us=DEMO_EPOCH_US)
    assert demo_payload(1234, seed=7, time_us=DEMO_EPOCH_US) != demo_payload(1235, seed=7, time_us=DEMO_EPOCH_US)


@pytest.mark.asyncio
async def test_resume_from_a_cursor_gives_the_uninterrupted_run() -> None:
    whole = await collect(DemoSource(rate=0, limit=400))
    head = await collect(DemoSource(rate=0, limit=400), limit=137)
    tail = await collect(DemoSource(rate=0, limit=400), head[-1].cursor)
    assert [without_clock(e.payload) for e in head + tail] == [without_clock(e.payload) for e in whole]
    assert [e.cursor for e in head + tail] == [e.cursor for e in whole]
    assert await collect(DemoSource(rate=0, limit=400), "400") == []


@pytest.mark.asyncio
async def test_time_us_is_the_wall_clock() -> None:
    before = time.time_ns() // 1000
    events = await collect(DemoSource(rate=0), limit=50)
    after = time.time_ns() // 1000
    for event in events:
        assert before <= json.loads(event.payload)["time_us"] <= after
        assert before <= event.received_at.timestamp() * 1_000_000 <= after + 1


@pytest.mark.asyncio
async def test_rate_paces_events() -> None:
    started = time.monotonic()
    events = await collect(DemoSource(rate=200, limit=40))
    assert len(events) == 40
    assert time.monotonic() - started >= 0.15  # 40 events at 200/s take about 0.2 s


@pytest.mark.asyncio
async def test_high_rates_and_unpaced_runs_finish() -> None:
    assert len(await collect(DemoSource(rate=50_000, limit=3000))) == 3000
    assert len(await collect(DemoSource(rate=0, limit=3000))) == 3000


@pytest.mark.parametrize("cursor", ["-1", "x", "2.0"])
@pytest.mark.asyncio
async def test_bad_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(ValueError, match="event index"):
        await collect(DemoSource(limit=5), cursor)


# --------------------------------------------------------------------------- the content


def test_every_event_is_read_by_the_real_normaliser_and_the_mix_is_realistic() -> None:
    results = normalise_all(6000)
    kinds = Counter(type(r).__name__ if not isinstance(r, Ignored) else r.kind for _, r in results)
    created: dict[str, Post] = {}
    updates = deletions_of_known_posts = 0
    for message, result in results:
        if isinstance(result, Post) and message["commit"]["operation"] == "create":
            created[result.native_id] = result
        elif isinstance(result, Post):
            original = created.get(result.native_id)
            if original is not None:  # an edit: same post, new version, text kept
                updates += 1
                assert result.version != original.version and result.text.startswith(original.text)
        elif isinstance(result, Deletion):
            deletions_of_known_posts += result.native_id in created

    posts = kinds["Post"]
    assert 0.15 < posts / len(results) < 0.27
    assert updates >= 10 and deletions_of_known_posts >= 10
    for noise in ("commit:app.bsky.feed.like:create", "commit:app.bsky.feed.repost:create",
                  "commit:app.bsky.graph.follow:create", "commit:app.bsky.graph.follow:delete",
                  "commit:app.bsky.graph.block:create", "commit:app.bsky.actor.profile:update",
                  "identity", "account"):  # fmt: skip
        assert kinds[noise] > 0, noise

    post_list = list(created.values())
    langs = Counter(p.lang for p in post_list)
    assert {"en", "de", "fr", "es", "pt", "ja"} <= set(langs)
    assert None in langs  # some posts say no language, like real ones
    for feature in ("links", "hashtags", "mentions", "reply_to", "quote_of", "media"):
        assert sum(bool(getattr(p, feature)) for p in post_list) >= 5, feature
    assert any(m.mime_type == "video/mp4" for p in post_list for m in p.media)
    assert len({p.text for p in post_list}) > len(post_list) / 3  # varied, not a handful of strings


def test_replies_and_quotes_point_at_earlier_demo_posts() -> None:
    results = normalise_all(4000)
    seen: set[str] = set()
    pointing = 0
    for _, result in results:
        if isinstance(result, Post):
            for uri in (result.reply_to, result.quote_of):
                if uri is not None:
                    assert uri in seen
                    pointing += 1
            seen.add(result.native_id)
    assert pointing > 20


def test_facets_sit_at_the_right_utf8_byte_offsets() -> None:
    checked = 0
    for message, _ in normalise_all(3000):
        record = message.get("commit", {}).get("record", {})
        text = record.get("text", "").encode()
        for facet in record.get("facets", []):
            piece = text[facet["index"]["byteStart"] : facet["index"]["byteEnd"]].decode()
            feature = facet["features"][0]
            kind = feature["$type"].split("#")[1]
            if kind == "tag":
                assert piece == "#" + feature["tag"]
            elif kind == "mention":
                assert piece.startswith("@") and any(a.did == feature["did"] for a in ACCOUNTS)
            else:
                assert piece.rstrip(".") in feature["uri"]
            checked += 1
    assert checked > 100


def test_accounts_are_a_fixed_pool_of_synthetic_dids() -> None:
    dids = {a.did for a in ACCOUNTS}
    assert 200 <= len(dids) <= 1000
    assert all(re.fullmatch(r"did:plc:[a-z2-7]{24}", did) for did in dids)
    for message, result in normalise_all(2000):
        assert message["did"] in dids
        if isinstance(result, Post):
            assert result.author == PSEUDONYMISE("bluesky", message["did"])


# --------------------------------------------------------------------------- the watches


def template_fills(template: str, words: dict[str, tuple[str, ...]]) -> list[str]:
    slots = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    return [
        template.format(**dict(zip(slots, combo, strict=True)))
        for combo in itertools.product(*(words[s] for s in slots))
    ]


def test_demo_watches_parse_and_templates_keep_their_promises() -> None:
    """Every hit template hits its watch in every filling; no noise template hits any watch."""
    queries = {name: compile_query(query) for name, query, _ in DEMO_WATCHES}
    assert {g.watch for g in HITS} == set(queries)

    def post(text: str, lang: str) -> Post:
        return Post("bluesky", "at://x", "v", NOW, NOW, text, "p:1", lang=lang, langs=(lang,))

    for group in HITS:
        for template in group.texts:
            for text in template_fills(template, SLOTS[group.lang]):
                assert queries[group.watch].matches(post(text, group.lang)), text
    for lang, templates in NOISE.items():
        for template in templates:
            for text in template_fills(template, SLOTS[lang]):
                for name, query in queries.items():
                    assert not query.matches(post(text, lang)), (name, text)


@pytest.mark.parametrize("hit_share", [0.0, 0.1, 0.3])
def test_share_of_posts_hitting_the_demo_watches_is_near_hit_share(hit_share: float) -> None:
    watch_set = demo_watch_set()
    posts = hits = 0
    for message, result in normalise_all(15_000, seed=11, hit_share=hit_share):
        if isinstance(result, Post) and message["commit"]["operation"] == "create":
            posts += 1
            hits += bool(watch_set.match(result, source="demo", now=NOW))
    assert posts > 2500
    assert abs(hits / posts - hit_share) < 0.025, (hits, posts)


# --------------------------------------------------------------------------- demo files


@pytest.mark.asyncio
async def test_demo_file_replays_as_the_same_events(tmp_path: Path) -> None:
    path = write_demo_file(tmp_path / "demo.jsonl", 500, seed=7, hit_share=0.2)
    lines = path.read_bytes().splitlines()
    assert len(lines) == 500
    assert lines == [demo_payload(i, seed=7, hit_share=0.2, time_us=DEMO_EPOCH_US + i * 1000) for i in range(500)]
    assert [json.loads(line)["time_us"] - DEMO_EPOCH_US for line in lines[:3]] == [0, 1000, 2000]
    async with aclosing(ReplaySource(path).events(None)) as events:
        replayed = [event.payload async for event in events]
    assert replayed == lines
