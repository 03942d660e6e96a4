"""JetstreamNormaliser against real Jetstream v1 recordings, hand-made edge cases and fuzz."""

from __future__ import annotations

import copy
import json
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import Deletion, Ignored, MalformedEvent, MediaRef, Normalised, Post, RawEvent
from watchfloor.sources.bluesky import MAX_TEXT_CHARS, JetstreamNormaliser, parse_datetime

REPO = Path(__file__).resolve().parents[2]
BLUESKY_FIXTURES = (REPO / ".." / "shared" / "fixtures" / "bluesky").resolve()
ATPROTO_SYNTAX = (REPO / ".." / "shared" / "fixtures" / "atproto_syntax").resolve()
RECORDINGS = ["jetstream_v1_corpus.jsonl", "jetstream_v1_golden.jsonl"]
RECEIVED = datetime(2026, 7, 4, 15, 0, tzinfo=UTC)
PSEUDONYMISE = HmacPseudonymiser(b"watchfloor-test-secret-0123456789abcdef")
NORMALISER = JetstreamNormaliser(PSEUDONYMISE)
POST = "app.bsky.feed.post"


def raw(payload: bytes | str | dict[str, Any]) -> RawEvent:
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    if isinstance(payload, str):
        payload = payload.encode()
    return RawEvent(source="test", platform="bluesky", cursor="1", payload=payload, received_at=RECEIVED)


def normalise(payload: bytes | str | dict[str, Any]) -> Normalised:
    return NORMALISER.normalise(raw(payload))


def recording(name: str) -> list[bytes]:
    path = BLUESKY_FIXTURES / name
    if not path.is_file():
        pytest.skip(f"the shared fixture {path} is missing")
    return [line for line in path.read_bytes().splitlines() if line.strip()]


def post_event(record: dict[str, Any] | None = None, **commit: Any) -> dict[str, Any]:
    """A Jetstream post-create event; ``record`` and commit fields override the defaults."""
    body: dict[str, Any] = {
        "rev": "3mptbypcq372f",
        "operation": "create",
        "collection": POST,
        "rkey": "3mptbyoeyc22k",
        "record": {"$type": POST, "createdAt": "2026-07-04T14:38:06.240Z", "langs": ["en"], "text": "hello"},
        "cid": "bafyreiapzyf65cmq55jklpnrihiygze2jmmdqvvkwqeiomd72pbp2iazuu",
    }
    if record is not None:
        body["record"] = {**body["record"], **record}
    body.update(commit)
    return {"did": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "time_us": 1783175888090631, "kind": "commit", "commit": body}


# --------------------------------------------------------------------------- real recordings


def expected_outcome(message: dict[str, Any]) -> tuple[str, str]:
    """What the recording says an event is, worked out from the raw JSON alone."""
    if message["kind"] != "commit":
        return "ignored", message["kind"]
    commit = message["commit"]
    if commit["collection"] != POST:
        return "ignored", f"commit:{commit['collection']}:{commit['operation']}"
    uri = f"at://{message['did']}/{POST}/{commit['rkey']}"
    return ("deletion" if commit["operation"] == "delete" else "post"), uri


def features(record: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    suffix = f"#{kind}"
    return [f for facet in record.get("facets", []) for f in facet["features"] if f["$type"].endswith(suffix)]


def assert_no_did_in_clear(post: Post, did: str) -> None:
    allowed = {"native_id", "reply_to", "quote_of", "raw"}
    for field in fields(Post):
        if field.name not in allowed:
            value = repr(getattr(post, field.name))
            assert did not in value and did.split(":")[-1] not in value, f"{field.name} leaks the DID"


@pytest.mark.parametrize("name", RECORDINGS)
def test_recording_is_read_as_the_recording_says(name: str) -> None:
    lines = recording(name)
    outcomes: dict[str, int] = {}
    for line in lines:
        message = json.loads(line)
        kind, detail = expected_outcome(message)
        result = normalise(line)  # never MalformedEvent: these are real, valid events
        outcomes[kind] = outcomes.get(kind, 0) + 1
        if kind == "ignored":
            assert result == Ignored(kind=detail)
            continue
        if kind == "deletion":
            assert isinstance(result, Deletion)
            assert result.native_id == detail and result.platform == "bluesky"
            assert result.deleted_at == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=message["time_us"])
            continue

        assert isinstance(result, Post)
        commit, record, did = message["commit"], message["commit"]["record"], message["did"]
        assert result.native_id == detail
        assert result.version == commit["cid"]
        assert result.text == record["text"]
        assert result.langs == tuple(record.get("langs", ()))
        assert result.lang == (record["langs"][0] if record.get("langs") else None)
        assert result.reply_to == (record["reply"]["parent"]["uri"] if "reply" in record else None)
        assert result.created_at == datetime.fromisoformat(record["createdAt"]).astimezone(UTC)
        assert result.received_at == RECEIVED
        assert result.author == PSEUDONYMISE("bluesky", did)
        assert result.url is None
        assert result.raw == line
        assert_no_did_in_clear(result, did)

        for link in features(record, "link"):
            assert link["uri"] in result.links
        for tag in features(record, "tag"):
            assert tag["tag"] in result.hashtags
        for mention in features(record, "mention"):
            assert PSEUDONYMISE("bluesky", mention["did"]) in result.mentions
        embed = record.get("embed", {})
        if embed.get("$type") == "app.bsky.embed.external":
            assert embed["external"]["uri"] in result.links
        if embed.get("$type") == "app.bsky.embed.images":
            cids = [image["image"]["ref"]["$link"] for image in embed["images"]]
            assert [m.content_hash for m in result.media] == cids
            assert all(m.url == f"at-blob:{m.content_hash}" and m.mime_type == "image/jpeg" for m in result.media)
        else:
            assert result.media == ()

    assert outcomes.get("post", 0) >= 1 and outcomes.get("ignored", 0) >= 5
    assert sum(outcomes.values()) == len(lines)


def test_corpus_covers_what_the_recording_holds() -> None:
    """The corpus really exercises posts, facets, embeds, deletes and non-commit events."""
    posts = [p for p in map(normalise, recording("jetstream_v1_corpus.jsonl")) if isinstance(p, Post)]
    results = list(map(normalise, recording("jetstream_v1_corpus.jsonl")))
    assert len(results) == 152
    assert len(posts) == 17
    assert sum(isinstance(r, Deletion) for r in results) == 1
    assert Ignored("identity") in results and Ignored("account") in results
    assert Ignored("commit:app.bsky.feed.like:create") in results
    assert Ignored("commit:app.bsky.graph.follow:delete") in results
    assert any(p.links for p in posts) and any(p.hashtags for p in posts) and any(p.media for p in posts)
    assert any(p.reply_to for p in posts) and any(p.lang is None for p in posts)


# --------------------------------------------------------------------------- features


def test_mentions_tags_links_and_quote_with_media() -> None:
    text = "héllo @bob.example #Flood see example.com"
    record = {
        "text": text,
        "tags": ["extra", "#Flood"],
        "facets": [
            {
                "features": [{"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"}],
                "index": {"byteStart": 7, "byteEnd": 19},
            },
            {"features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "Flood"}], "index": {}},
            {"features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/a"}], "index": {}},
            {"features": [{"$type": "app.bsky.richtext.facet#unknownFeature", "x": 1}], "index": {}},
        ],
        "embed": {
            "$type": "app.bsky.embed.recordWithMedia",
            "record": {
                "$type": "app.bsky.embed.record",
                "record": {"cid": "bafyq", "uri": "at://did:plc:cccccccccccccccccccccccc/app.bsky.feed.post/3abc"},
            },
            "media": {
                "$type": "app.bsky.embed.images",
                "images": [
                    {
                        "alt": "a river",
                        "image": {"$type": "blob", "ref": {"$link": "bafkreiimg"}, "mimeType": "image/png"},
                    },
                    {"alt": "", "image": {"cid": "bafkreilegacy", "mimeType": "image/jpeg"}},
                ],
            },
        },
    }
    post = normalise(post_event(record))
    assert isinstance(post, Post)
    assert post.mentions == (PSEUDONYMISE("bluesky", "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb"),)
    assert post.hashtags == ("Flood", "extra")
    assert post.links == ("https://example.com/a",)
    assert post.quote_of == "at://did:plc:cccccccccccccccccccccccc/app.bsky.feed.post/3abc"
    assert post.media == (
        MediaRef(url="at-blob:bafkreiimg", mime_type="image/png", content_hash="bafkreiimg", alt="a river"),
        MediaRef(url="at-blob:bafkreilegacy", mime_type="image/jpeg", content_hash="bafkreilegacy", alt=None),
    )


def test_quote_external_and_video_embeds() -> None:
    quote = {"$type": "app.bsky.embed.record", "record": {"cid": "c", "uri": "at://did:plc:x/app.bsky.feed.post/1"}}
    assert normalise(post_event({"embed": quote})).quote_of == "at://did:plc:x/app.bsky.feed.post/1"  # type: ignore[union-attr]

    external = {"$type": "app.bsky.embed.external", "external": {"uri": "https://example.org/x", "title": "t"}}
    assert normalise(post_event({"embed": external})).links == ("https://example.org/x",)  # type: ignore[union-attr]

    video = {
        "$type": "app.bsky.embed.video",
        "video": {"$type": "blob", "ref": {"$link": "bafkreivid"}, "mimeType": "video/mp4", "size": 9},
        "alt": "waves",
    }
    post = normalise(post_event({"embed": video}))
    assert isinstance(post, Post)
    assert post.media == (MediaRef("at-blob:bafkreivid", "video/mp4", "bafkreivid", "waves"),)

    unknown = {"$type": "com.example.embed.hologram", "whatever": [1, 2]}
    assert normalise(post_event({"embed": unknown})).media == ()  # type: ignore[union-attr]


def test_update_is_a_new_version_of_the_same_post_and_delete_removes_it() -> None:
    created = normalise(post_event())
    updated = normalise(post_event({"text": "hello, edited"}, operation="update", cid="bafyreinewcid"))
    assert isinstance(created, Post) and isinstance(updated, Post)
    assert updated.native_id == created.native_id and updated.version != created.version
    deleted = normalise(
        {"did": "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", "time_us": 1783175888377628, "kind": "commit",
         "commit": {"rev": "3mptbypuw3t2q", "operation": "delete", "collection": POST, "rkey": "3mptbyoeyc22k"}}
    )  # fmt: skip
    assert deleted == Deletion("bluesky", created.native_id, datetime(2026, 7, 4, 14, 38, 8, 377628, tzinfo=UTC))


def test_tolerated_variations() -> None:
    # No createdAt: the event time is used. No cid: the rev is the version. Extra fields anywhere.
    event = post_event({"createdAt": None, "futureField": {"a": 1}}, cid=None, extra=True)
    event["commit"]["record"].pop("createdAt")
    event["brandNew"] = [1, 2, 3]
    post = normalise(event)
    assert isinstance(post, Post)
    assert post.version == "3mptbypcq372f"
    assert post.created_at == datetime(2026, 7, 4, 14, 38, 8, 90631, tzinfo=UTC)
    # Empty text (an image-only post), text at the limit, offsets and "+00:00" zones.
    assert normalise(post_event({"text": ""})).text == ""  # type: ignore[union-attr]
    assert len(normalise(post_event({"text": "x" * MAX_TEXT_CHARS})).text) == MAX_TEXT_CHARS  # type: ignore[union-attr]
    shifted = normalise(post_event({"createdAt": "2026-07-04T16:38:02.123456789+02:00"}))
    assert shifted.created_at == datetime(2026, 7, 4, 14, 38, 2, 123456, tzinfo=UTC)  # type: ignore[union-attr]
    # Non-post records of other apps, and event kinds newer than this code, are ignored.
    assert normalise({"did": "did:web:example.com", "time_us": 1, "kind": "sync", "sync": {}}) == Ignored("sync")


# --------------------------------------------------------------------------- malformed


def with_commit(**changes: Any) -> dict[str, Any]:
    event = post_event()
    for key, value in changes.items():
        if value is _DROP:
            event["commit"].pop(key)
        else:
            event["commit"][key] = value
    return event


def with_record(**changes: Any) -> dict[str, Any]:
    event = post_event()
    for key, value in changes.items():
        if value is _DROP:
            event["commit"]["record"].pop(key)
        else:
            event["commit"]["record"][key] = value
    return event


def with_top(**changes: Any) -> dict[str, Any]:
    event = post_event()
    for key, value in changes.items():
        if value is _DROP:
            event.pop(key)
        else:
            event[key] = value
    return event


_DROP = object()

MALFORMED: list[tuple[bytes | str | dict[str, Any], str]] = [
    (b"\xff\xfe{}", "invalid UTF-8 at byte 0"),
    (b'{"did": "did:plc:a\xc3', "invalid UTF-8 at byte 18"),
    (b"", "invalid JSON at line 1 column 1: Expecting value"),
    (b'{"did": ', "invalid JSON at line 1 column 9: Expecting value"),
    (b'{"a": 1}\n{"b": 2}', "invalid JSON at line 2 column 1: Extra data"),
    (b"[" * 200_000, "invalid JSON: nested too deeply"),
    (b'{"time_us": ' + b"9" * 5000 + b"}", "invalid JSON: Exceeds the limit"),
    (b"[]", "message is a list, not an object"),
    (b"null", "message is null, not an object"),
    (b'"commit"', "message is a string, not an object"),
    (b" " * (3 * 1024 * 1024), "payload too large"),
    (with_top(did=_DROP), "did missing"),
    (with_top(did=42), "did is a number, not a string"),
    (with_top(did="alice.bsky.social"), "did 'alice.bsky.social' is not a DID"),
    (with_top(time_us=_DROP), "time_us missing"),
    (with_top(time_us="1783175888090631"), "time_us is a string, not an integer"),
    (with_top(time_us=True), "time_us is a boolean, not an integer"),
    (with_top(time_us=1.5), "time_us is a number, not an integer"),
    (with_top(time_us=-1), "time_us -1 out of range"),
    (with_top(time_us=10**30), "out of range"),
    (with_top(kind=_DROP), "kind missing"),
    (with_top(kind=["commit"]), "kind is a list, not a string"),
    (with_top(kind="Commit!"), "kind 'Commit!' is not an event kind"),
    (with_top(commit=_DROP), "commit missing"),
    (with_top(commit="create"), "commit is a string, not an object"),
    (with_commit(operation=_DROP), "commit.operation missing"),
    (with_commit(operation="upsert"), "commit.operation 'upsert' is not create, update or delete"),
    (with_commit(collection=_DROP), "commit.collection missing"),
    (with_commit(collection="not a collection"), "commit.collection 'not a collection' is not an NSID"),
    (with_commit(rkey=_DROP), "commit.rkey missing"),
    (with_commit(rkey="a/b"), "commit.rkey 'a/b' is not a record key"),
    (with_commit(rkey=".."), "commit.rkey '..' is not a record key"),
    (with_commit(record=_DROP), "commit.record missing"),
    (with_commit(record=None), "commit.record is null, not an object"),
    (with_commit(record=[1]), "commit.record is a list, not an object"),
    (with_commit(cid=_DROP, rev=_DROP), "commit.cid and commit.rev missing"),
    (with_commit(cid=7), "commit.cid is a number, not a string"),
    (with_record(text=_DROP), "commit.record.text missing"),
    (with_record(text=None), "commit.record.text is null, not a string"),
    (with_record(text={"en": "hi"}), "commit.record.text is an object, not a string"),
    (with_record(text="x" * (MAX_TEXT_CHARS + 1)), "commit.record.text too long (10001 characters, limit 10000)"),
    (with_record(text="nul\x00byte"), "commit.record.text contains a NUL character"),
    (
        '{"did":"did:plc:aaaa","time_us":1,"kind":"commit","commit":{"operation":"create","collection":'
        '"app.bsky.feed.post","rkey":"3k","cid":"c","record":{"text":"\\ud83d alone"}}}',
        "commit.record.text contains a lone surrogate",
    ),
    (with_record(createdAt="yesterday"), "commit.record.createdAt 'yesterday' is not an RFC 3339 datetime"),
    (with_record(createdAt="2026-07-04T14:38:06"), "is not an RFC 3339 datetime"),
    (with_record(createdAt="2026-02-30T14:38:06Z"), "is not a valid date and time"),
    (with_record(createdAt=1783175888), "commit.record.createdAt is a number, not a string"),
    (with_record(langs="en"), "commit.record.langs is a string, not a list"),
    (with_record(langs=["en", 1]), "commit.record.langs[1] is a number, not a string"),
    (with_record(tags=[None]), "commit.record.tags[0] is null, not a string"),
    (with_record(facets={"a": 1}), "commit.record.facets is an object, not a list"),
    (with_record(facets=["x"]), "commit.record.facets[0] is a string, not an object"),
    (with_record(facets=[{"features": [3]}]), "commit.record.facets[0].features[0] is a number, not an object"),
    (with_record(facets=[{"features": [{"$type": "app.bsky.richtext.facet#link"}]}]), "link facet uri missing"),
    (
        with_record(facets=[{"features": [{"$type": "app.bsky.richtext.facet#mention", "did": "bob"}]}]),
        "mention facet did 'bob' is not a DID",
    ),
    (with_record(reply={"parent": {"cid": "c"}}), "commit.record.reply.parent.uri missing"),
    (with_record(reply=[]), "commit.record.reply is a list, not an object"),
    (with_record(embed="image"), "commit.record.embed is a string, not an object"),
    (with_record(embed={"$type": "app.bsky.embed.external"}), "commit.record.embed.external missing"),
    (
        with_record(embed={"$type": "app.bsky.embed.images", "images": [None]}),
        "commit.record.embed.images[0] is null, not an object",
    ),
    (
        with_record(embed={"$type": "app.bsky.embed.images", "images": [{"image": {"mimeType": "image/png"}}]}),
        "commit.record.embed.images[0].image.ref missing",
    ),
    (with_record(embed={"$type": "app.bsky.embed.record", "record": {}}), "commit.record.embed.record.uri missing"),
]


@pytest.mark.parametrize(("payload", "reason"), MALFORMED, ids=[reason for _, reason in MALFORMED])
def test_malformed_events_are_refused_with_a_readable_reason(payload: Any, reason: str) -> None:
    with pytest.raises(MalformedEvent) as caught:
        normalise(payload)
    assert caught.value.reason.startswith(reason) or reason in caught.value.reason, caught.value.reason
    assert len(caught.value.reason) <= 120
    assert str(caught.value) == caught.value.reason


def test_non_post_commits_are_checked_too() -> None:
    like = {"did": "did:plc:aaaa", "time_us": 1, "kind": "commit", "commit": {"collection": "app.bsky.feed.like"}}
    with pytest.raises(MalformedEvent, match=r"commit\.operation missing"):
        normalise(like)


def test_datetimes_follow_the_atproto_syntax_fixtures() -> None:
    def values(name: str) -> list[str]:
        path = ATPROTO_SYNTAX / name
        if not path.is_file():
            pytest.skip(f"the shared fixture {path} is missing")
        text = path.read_text(encoding="utf-8")
        return [line for line in text.split("\n") if line.strip() and not line.startswith("#")]

    for value in values("datetime_syntax_valid.txt"):
        assert parse_datetime(value, "t").tzinfo is UTC
    for name in ("datetime_syntax_invalid.txt", "datetime_parse_invalid.txt"):
        for value in values(name):
            with pytest.raises(MalformedEvent):
                parse_datetime(value, "t")


# --------------------------------------------------------------------------- fuzz

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


def check(payload: bytes) -> None:
    """Anything but MalformedEvent escaping is a bug; a Post is always safe to store and show."""
    try:
        result = NORMALISER.normalise(raw(payload))
    except MalformedEvent as error:
        assert error.reason and len(error.reason) < 200
        error.reason.encode("utf-8")
        return
    if isinstance(result, Post):
        assert result.author.startswith("p:")
        for value in (result.text, *result.links, *result.hashtags, *result.langs):
            value.encode("utf-8")
            assert "\x00" not in value


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(payload: bytes) -> None:
    check(payload)


@settings(max_examples=300)
@given(JSON_VALUES)
def test_fuzz_arbitrary_json(value: Any) -> None:
    check(json.dumps(value).encode())


@settings(max_examples=300)
@given(
    st.fixed_dictionaries(
        {"did": JSON_VALUES | st.just("did:plc:aaaa"), "time_us": JSON_VALUES | st.integers(), "kind": JSON_VALUES},
        optional={"commit": JSON_VALUES},
    )
)
def test_fuzz_jetstream_shaped_dicts(value: dict[str, Any]) -> None:
    check(json.dumps(value).encode())


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_real_events(data: st.DataObject) -> None:
    """Real events with one part replaced by anything, dropped, or given a lone surrogate."""
    lines = recording("jetstream_v1_corpus.jsonl") + recording("jetstream_v1_golden.jsonl")
    event = json.loads(data.draw(st.sampled_from(lines)))
    mutated = copy.deepcopy(event)
    path = data.draw(st.sampled_from(_paths(event)[1:]))
    parent = mutated
    for step in path[:-1]:
        parent = parent[step]
    action = data.draw(st.sampled_from(["replace", "drop", "surrogate"]))
    if action == "drop":
        del parent[path[-1]]
    elif action == "surrogate":
        parent[path[-1]] = "\ud800" + str(parent[path[-1]])
    else:
        parent[path[-1]] = data.draw(JSON_VALUES)
    check(json.dumps(mutated).encode())
