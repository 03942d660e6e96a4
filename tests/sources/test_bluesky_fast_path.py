"""The Jetstream normaliser's fast path (orjson and fewer steps for common events) gives
exactly what the fully checked path gives: the same Post, Deletion or Ignored, or the same
reason for refusing, with the same pseudonymiser calls, on real events, mutated real events,
generated posts of every usual shape (facets, embeds, replies, tags, dates) with one part
made odd, and arbitrary JSON. And the usual posts do take the fast path."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import MalformedEvent, Post, RawEvent
from watchfloor.sources.bluesky import JetstreamNormaliser, parse_datetime, parse_message


class RecordingPseudonymiser:
    """The test pseudonymiser, noting every call: both paths must make the same ones."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self._hmac = HmacPseudonymiser(b"k" * 32)

    def __call__(self, platform: str, account: str) -> str:
        self.calls.append((platform, account))
        return self._hmac(platform, account)


PSEUDONYMISE = RecordingPseudonymiser()
NORMALISER = JetstreamNormaliser(PSEUDONYMISE)
REPO = Path(__file__).resolve().parents[2]
RECORDINGS = REPO / ".." / "shared" / "fixtures" / "bluesky"
ATPROTO_SYNTAX = REPO / ".." / "shared" / "fixtures" / "atproto_syntax"
RECEIVED = datetime(2026, 11, 25, tzinfo=UTC)


def raw(payload: bytes) -> RawEvent:
    return RawEvent("test", "bluesky", "1", payload, RECEIVED)


def outcome(payload: bytes, fast: bool) -> tuple[object, str, list[tuple[str, str]]]:
    """The result (or the reason for refusing), its repr (time zones included) and the calls made."""
    PSEUDONYMISE.calls.clear()
    try:
        if fast:
            result: object = NORMALISER.normalise(raw(payload))
        else:
            result = NORMALISER._normalise_checked(raw(payload), parse_message(payload))
    except MalformedEvent as error:
        result = ("refused", error.reason)
    return result, repr(result), list(PSEUDONYMISE.calls)


def same(payload: bytes) -> object:
    fast = outcome(payload, fast=True)
    assert fast == outcome(payload, fast=False)
    return fast[0]


def taken(payload: bytes) -> bool:
    """Whether the fast path reads this event itself (rather than deferring to the checked path)."""
    return NORMALISER._normalise_common(raw(payload), orjson.loads(payload)) is not None


def recorded() -> list[str]:
    lines: list[str] = []
    for name in ("jetstream_v1_corpus.jsonl", "jetstream_v1_golden.jsonl"):
        path = RECORDINGS / name
        if path.is_file():
            lines += path.read_text(encoding="utf-8").splitlines()
    return lines


LINES = recorded()
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
VALUES = st.recursive(
    SCALARS, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3), max_leaves=12
)


def test_real_events_read_the_same():
    if not LINES:
        pytest.skip("the shared recordings are missing")
    for line in LINES:
        same(line.encode())


@pytest.mark.parametrize(
    "payload",
    [
        b'{"did":"did:plc:aaaa","time_us":123456789012345678901234567890,"kind":"identity"}',
        b'{"did":"did:plc:aaaa","time_us":1,"kind":"identity","x":NaN}',
        b'{"did":"did:plc:aaaa","time_us":1,"kind":"ident\\u0000ity"}',
        b'{"did":"did:plc:aaaa","time_us":1,"kind":"\\ud800"}',
        b'\xef\xbb\xbf{"did":"did:plc:aaaa","time_us":1,"kind":"identity"}',
        b'{"did":"did:plc:aaaa","time_us":1.0,"kind":"identity"}',
        b'{"did":"did:plc:aaaa","time_us":true,"kind":"identity"}',
        b'{"did":"did:plc:aaaa","time_us":-1,"kind":"identity"}',
        b'{"did":"did:plc:aaaa","time_us":253402300800000000,"kind":"identity"}',
        b'{"did":"did:plc:aaaa","time_us":1,"kind":"commit","commit":{"operation":"create",'
        b'"collection":"app.bsky.feed.like","rkey":".."}}',
        b'{"did":"did:plc:aaaa","time_us":1,"kind":"commit","commit":{"operation":"create",'
        b'"collection":"app.bsky.feed.like","rkey":"3k","rkey":"3l"}}',
        b"[1, 2]",
        b"",
    ],
)
def test_edge_cases_read_the_same(payload: bytes):
    same(payload)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_real_events_read_the_same(data: st.DataObject):
    if not LINES:
        pytest.skip("the shared recordings are missing")
    event = json.loads(data.draw(st.sampled_from(LINES)))
    mutated: Any = copy.deepcopy(event)
    parent, key = mutated, None
    while isinstance(parent, dict | list) and parent and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(list(parent) if isinstance(parent, dict) else list(range(len(parent)))))
        if not isinstance(parent[key], dict | list):
            break
        parent = parent[key]
    if key is not None and isinstance(parent, dict | list):
        parent[key] = data.draw(VALUES)
    same(json.dumps(mutated).encode())


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries({"did": VALUES | st.just("did:plc:aaaa"), "time_us": VALUES, "kind": VALUES}))
def test_arbitrary_jetstream_shaped_json_reads_the_same(value: dict[str, Any]):
    same(json.dumps(value).encode())


# --------------------------------------------------------------------------- posts

POST = "app.bsky.feed.post"
AUTHOR = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=24)
DIDS = st.sampled_from([AUTHOR, "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb", "did:web:example.com"]) | st.from_regex(
    r"did:[a-z]{1,6}:[a-zA-Z0-9._:%-]{0,20}[a-zA-Z0-9._-]", fullmatch=True
)
URIS = st.sampled_from(["https://example.com/a", "https://example.org/x?y=1", "", "é"]) | TEXT
AT_URIS = st.sampled_from([f"at://{AUTHOR}/{POST}/3abc", "at://did:web:example.com/app.bsky.feed.post/3k"]) | TEXT
TAGS = st.sampled_from(["Flood", "#Flood", "flood", "", "#", "##x", "ゲーム"]) | TEXT
CIDS = st.sampled_from(["bafkreiimg", "bafyreiapzyf65cmq55jklpnrihiygze2jmmdqvvkwqeiomd72pbp2iazuu", ""]) | TEXT
MIME = st.sampled_from(["image/jpeg", "image/png", "video/mp4"]) | st.none()


@st.composite
def created_at(draw: st.DrawFn) -> str:
    """createdAt values: mostly the usual Z form with 0 to 12 fraction digits, some offsets."""
    when = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)))
    digits = draw(st.integers(0, 12))
    fraction = draw(st.text("0123456789", min_size=digits, max_size=digits))
    zone = draw(st.sampled_from(["Z", "Z", "Z", "Z", "+00:00", "-00:00", "+05:30", "-08:00", "z", ""]))
    base = f"{when.year:04d}-{when.month:02d}-{when.day:02d}T{when.hour:02d}:{when.minute:02d}:{when.second:02d}"
    return base + (f".{fraction}" if digits else "") + zone


ODD_DATES = [
    "2026-02-30T14:38:06Z",  # no such day
    "2026-02-29T00:00:00.000Z",  # not a leap year
    "2024-02-29T00:00:00.000Z",
    "2026-07-04T24:00:00Z",
    "2026-07-04T23:59:60Z",  # leap second
    "2026-13-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59.9999999Z",  # truncated, not rounded into year 10000
    "2026-07-04T14:38:06.999999999Z",
    "2026-07-04T14:38:06.1234567890123456789Z",
    "2026-07-04T14:38:06.123456789012345678901Z",  # more than 20 digits
    "2026-07-04T14:38:06.Z",
    "2026-07-04T14:38:06,240Z",
    "2026-07-04t14:38:06Z",
    "2026-07-04 14:38:06Z",
    "2026-07-04T14:38:06z",
    "2026-07-04T14:38Z",
    "20260704T143806Z",
    "2026-W27-6T14:38:06Z",
    "２０２６-07-04T14:38:06Z",  # fullwidth digits
    "2026-07-04T14:38:06.240Z\n",
    " 2026-07-04T14:38:06Z",
    "2026-07-04T14:38:06+00:00",
    "2026-07-04T14:38:06-00:00",
    "2026-07-04T14:38:06.240+23:59",
    "2026-07-04T14:38:06.240+24:00",
    "2026-07-04T14:38:06.240+05:60",
    "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
    "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
    "0001-01-01T00:00:00.5-01:00",
    "2026-07-04T14:38:06\x00Z",
    "",
]
DATES = created_at() | st.sampled_from(ODD_DATES)


def blob(ref: str) -> st.SearchStrategy[dict[str, Any]]:
    current = st.fixed_dictionaries(
        {"$type": st.just("blob"), "ref": st.fixed_dictionaries({"$link": CIDS})},
        optional={"mimeType": MIME, "size": st.integers(0, 10**6)},
    )
    legacy = st.fixed_dictionaries({"cid": CIDS}, optional={"mimeType": MIME})
    return current | legacy if ref == "any" else current


IMAGE = st.fixed_dictionaries(
    {"image": blob("any")}, optional={"alt": TEXT | st.none(), "aspectRatio": st.just({"width": 4, "height": 3})}
)
IMAGES = st.fixed_dictionaries({"$type": st.just("app.bsky.embed.images"), "images": st.lists(IMAGE, max_size=4)})
VIDEO = st.fixed_dictionaries(
    {"$type": st.just("app.bsky.embed.video"), "video": blob("current")},
    optional={"alt": TEXT | st.none(), "aspectRatio": st.just({"width": 16, "height": 9})},
)
EXTERNAL = st.fixed_dictionaries(
    {
        "$type": st.just("app.bsky.embed.external"),
        "external": st.fixed_dictionaries({"uri": URIS}, optional={"title": TEXT, "description": TEXT}),
    }
)
RECORD = st.fixed_dictionaries(
    {"$type": st.just("app.bsky.embed.record"), "record": st.fixed_dictionaries({"uri": AT_URIS, "cid": CIDS})}
)
RECORD_WITH_MEDIA = st.fixed_dictionaries(
    {"$type": st.just("app.bsky.embed.recordWithMedia"), "record": RECORD},
    optional={"media": IMAGES | VIDEO | EXTERNAL | st.none()},
)
OTHER_EMBED = st.fixed_dictionaries(
    {"$type": st.sampled_from(["com.example.embed.hologram", ""])}, optional={"x": TEXT}
)
EMBEDS = IMAGES | VIDEO | EXTERNAL | RECORD | RECORD_WITH_MEDIA | OTHER_EMBED

FEATURE = (
    st.fixed_dictionaries({"$type": st.just("app.bsky.richtext.facet#link"), "uri": URIS})
    | st.fixed_dictionaries({"$type": st.just("app.bsky.richtext.facet#tag"), "tag": TAGS})
    | st.fixed_dictionaries({"$type": st.just("app.bsky.richtext.facet#mention"), "did": DIDS})
    | st.fixed_dictionaries({"$type": st.just("app.bsky.richtext.facet#unknown")}, optional={"x": TEXT})
)
FACET = st.fixed_dictionaries(
    {"index": st.just({"byteStart": 0, "byteEnd": 3})}, optional={"features": st.lists(FEATURE, max_size=3)}
)
REF = st.fixed_dictionaries({"uri": AT_URIS, "cid": CIDS})
REPLY = st.fixed_dictionaries({"root": REF, "parent": REF}) | st.sampled_from(
    [{}, {"parent": {}}, {"parent": None}, {"root": {"uri": "at://x"}}]
)
RECORDS = st.fixed_dictionaries(
    {"$type": st.just(POST), "text": TEXT},
    optional={
        "createdAt": DATES,
        "langs": st.lists(st.sampled_from(["en", "pt", "ja", ""]), max_size=3),
        "tags": st.lists(TAGS, max_size=3),
        "facets": st.lists(FACET, max_size=4),
        "embed": EMBEDS,
        "reply": REPLY,
        "labels": st.just({"$type": "com.atproto.label.defs#selfLabels", "values": []}),
    },
)
COMMITS = st.fixed_dictionaries(
    {
        "operation": st.sampled_from(["create", "update"]),
        "collection": st.just(POST),
        "rkey": st.sampled_from(["3mptbyoeyc22k", "self", "a:b~c"]),
        "record": RECORDS,
        "rev": st.sampled_from(["3mptbypcq372f", "3mptbypuw3t2q", ""]),
    },
    optional={"cid": CIDS | st.none()},
)
POSTS = st.fixed_dictionaries(
    {"did": st.just(AUTHOR) | DIDS, "time_us": st.integers(0, 2**53), "kind": st.just("commit"), "commit": COMMITS}
)
# What may replace a part of a post: any JSON, and strings with a NUL.
ODD = VALUES | TEXT.map(lambda text: text + "\x00") | st.sampled_from(ODD_DATES)


def encoded(value: Any, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(POSTS, st.booleans())
def test_generated_posts_read_the_same(event: dict[str, Any], ascii_only: bool) -> None:
    same(encoded(event, ascii_only))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_generated_posts_with_one_odd_part_read_the_same(data: st.DataObject) -> None:
    """One part of a generated post replaced by anything, dropped, given a NUL or wrapped in a list."""
    event = copy.deepcopy(data.draw(POSTS))  # the strategies share some dicts: never change those
    paths = _paths(event["commit"]["record"], ("commit", "record"))
    parent, key = event, data.draw(st.sampled_from([*paths, ("commit", "cid"), ("commit", "rev")]))
    for step in key[:-1]:
        parent = parent[step]
    key = key[-1]
    action = data.draw(st.sampled_from(["replace", "replace", "drop", "nul", "wrap"]))
    if key not in _keys(parent):
        parent[key] = data.draw(ODD)
    elif action == "drop":
        del parent[key]
    elif action == "nul" and isinstance(parent[key], str):
        parent[key] += "\x00"
    elif action == "wrap":
        parent[key] = [parent[key]]
    else:
        parent[key] = data.draw(ODD)
    same(encoded(event, data.draw(st.booleans())))


def _keys(parent: dict[str, Any] | list[Any]) -> list[Any]:
    return list(parent) if isinstance(parent, dict) else list(range(len(parent)))


def _paths(value: Any, prefix: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict | list):
        for key in _keys(value):
            found += _paths(value[key], (*prefix, key))
    return found


# --------------------------------------------------------------------------- the usual posts take it

USUAL = (
    "{}",
    '{"createdAt": null}',
    '{"langs": ["en", "pt"], "tags": ["Flood", "#Flood", "", "extra"]}',
    '{"facets": [{"index": {}, "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://e.com/a"},'
    ' {"$type": "app.bsky.richtext.facet#tag", "tag": "#Flood"}]},'
    ' {"index": {}, "features": [{"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:bbbb"},'
    ' {"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:bbbb"},'
    ' {"$type": "app.bsky.richtext.facet#link", "uri": "https://e.com/a"}]}, {"index": {}}]}',
    '{"embed": {"$type": "app.bsky.embed.external", "external": {"uri": "https://e.org/x", "title": "t"}}}',
    '{"embed": {"$type": "app.bsky.embed.images", "images": [{"alt": "a river", "image": {"$type": "blob",'
    ' "ref": {"$link": "bafkreiimg"}, "mimeType": "image/png", "size": 3}},'
    ' {"alt": "", "image": {"cid": "bafkreil"}}]}}',
    '{"embed": {"$type": "app.bsky.embed.video", "alt": "waves", "video": {"$type": "blob",'
    ' "ref": {"$link": "bafkreivid"}, "mimeType": "video/mp4"}}}',
    '{"embed": {"$type": "app.bsky.embed.record", "record": {"cid": "c", "uri": "at://did:plc:c/app.bsky.feed.post/1"}}}',
    '{"embed": {"$type": "app.bsky.embed.recordWithMedia", "record": {"$type": "app.bsky.embed.record",'
    ' "record": {"cid": "c", "uri": "at://did:plc:c/app.bsky.feed.post/1"}}, "media": {"$type":'
    ' "app.bsky.embed.external", "external": {"uri": "https://e.org/y"}}}}',
    '{"embed": {"$type": "com.example.embed.hologram", "whatever": [1, 2]}}',
    '{"reply": {"root": {"uri": "at://did:plc:r/app.bsky.feed.post/1", "cid": "c"},'
    ' "parent": {"uri": "at://did:plc:p/app.bsky.feed.post/2", "cid": "c"}}}',
    '{"reply": {"parent": {}}}',
    '{"createdAt": "2026-07-04T14:38:06Z"}',
    '{"createdAt": "2026-07-04T14:38:06.2Z"}',
    '{"createdAt": "2026-07-04T14:38:06.123456Z"}',
    '{"text": "héllo \\u00e9 \\ud83d\\ude00 \\n \\\\u0000 <&>"}',
)


@pytest.mark.parametrize("record", USUAL)
def test_usual_posts_take_the_fast_path(record: str) -> None:
    event = {
        "did": AUTHOR,
        "time_us": 1783175888090631,
        "kind": "commit",
        "commit": {
            "rev": "3mptbypcq372f",
            "operation": "create",
            "collection": POST,
            "rkey": "3mptbyoeyc22k",
            "record": {"$type": POST, "createdAt": "2026-07-04T14:38:06.240Z", "langs": ["en"], "text": "hello"}
            | json.loads(record),
            "cid": "bafyreiapzyf65cmq55jklpnrihiygze2jmmdqvvkwqeiomd72pbp2iazuu",
        },
    }
    payload = json.dumps(event).encode()
    assert taken(payload)
    assert isinstance(same(payload), Post)


def test_real_posts_take_the_fast_path() -> None:
    posts = [line.encode() for line in LINES if f'"collection":"{POST}"' in line.replace(" ", "")]
    posts = [p for p in posts if isinstance(same(p), Post)]
    if not posts:
        pytest.skip("the shared recordings are missing")
    assert all(taken(p) for p in posts)


# --------------------------------------------------------------------------- createdAt


def post_with(created: str) -> bytes:
    commit = {"rev": "r", "operation": "create", "collection": POST, "rkey": "3k", "cid": "c"}
    commit["record"] = {"text": "t", "createdAt": created}
    return json.dumps({"did": AUTHOR, "time_us": 1, "kind": "commit", "commit": commit}).encode()


@settings(max_examples=300, deadline=None)
@given(created_at())
def test_created_at_reads_as_parse_datetime_does(created: str) -> None:
    result = same(post_with(created))
    try:
        expected = parse_datetime(created, "commit.record.createdAt")
    except MalformedEvent:
        assert isinstance(result, tuple) and result[0] == "refused"
        return
    assert isinstance(result, Post)
    assert result.created_at == expected and result.created_at.tzinfo is UTC
    if re.fullmatch(r".{19}(\.[0-9]{1,6})?(Z|[+-]..:..)", created) and not created.endswith("-00:00"):
        assert taken(post_with(created))  # the usual forms; longer fractions are left to parse_datetime


@pytest.mark.parametrize("created", ODD_DATES)
def test_odd_created_at_reads_the_same(created: str) -> None:
    same(post_with(created))


def test_long_fractions_are_truncated_not_rounded() -> None:
    post = same(post_with("9999-12-31T23:59:59.9999999Z"))
    assert isinstance(post, Post) and post.created_at == datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    post = same(post_with("2026-07-04T14:38:06.1234569Z"))
    assert isinstance(post, Post) and post.created_at.microsecond == 123456


def test_the_atproto_datetime_fixtures_read_the_same() -> None:
    values: list[str] = []
    for name in ("datetime_syntax_valid.txt", "datetime_syntax_invalid.txt", "datetime_parse_invalid.txt"):
        path = ATPROTO_SYNTAX / name
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            values += [line for line in text.split("\n") if line.strip() and not line.startswith("#")]
    if not values:
        pytest.skip("the shared fixtures are missing")
    for value in values:
        same(post_with(value))
