"""A seeded stream of synthetic Jetstream v1 events, so the demo runs the real path.

The events look like what Jetstream sends (see :mod:`watchfloor.sources.bluesky`):
about a fifth are posts in several languages, with links, hashtags, mentions,
replies, quotes and images; the rest are likes, reposts, follows, blocks, profile
updates, identity and account events, plus edits and deletions of earlier posts. A
share ``hit_share`` of the posts is written to hit :data:`DEMO_WATCHES`.

Event ``i`` depends only on ``(seed, i)`` (and ``hit_share``), apart from its
timestamps, so a run can stop anywhere and resume from its cursor ``str(i + 1)``
with exactly the events an uninterrupted run would have produced. Accounts are
synthetic ``did:plc:`` identifiers from a fixed pool; all text comes from
:mod:`watchfloor.sources.demo_corpus`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from bisect import bisect_right
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any, NamedTuple

from watchfloor.model import RawEvent, utcnow
from watchfloor.sources.demo_corpus import (
    ALT_TEXTS,
    DEMO_WATCHES,
    EDIT_NOTES,
    HANDLE_ADJECTIVES,
    HANDLE_NOUNS,
    HASHTAGS,
    HITS,
    LANGUAGES,
    LINK_CARDS,
    NOISE,
    PROFILE_BIOS,
    SLOTS,
    HitGroup,
)

__all__ = ["ACCOUNTS", "DEMO_EPOCH_US", "DEMO_WATCHES", "DemoSource", "demo_payload", "write_demo_file"]

DEMO_EPOCH_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z: time_us of event 0 in files, base of TIDs
ACCOUNT_POOL_SIZE = 400
LOOKBACK = 500  # edits, deletions, replies and quotes refer to posts at most about this many events back
MAX_BATCH = 1000

# Share of each event kind; they add up to 1.
MIX: tuple[tuple[str, float], ...] = (
    ("post", 0.20),
    ("post_update", 0.008),
    ("post_delete", 0.012),
    ("like", 0.50),
    ("unlike", 0.02),
    ("repost", 0.10),
    ("follow", 0.10),
    ("unfollow", 0.02),
    ("block", 0.01),
    ("profile", 0.01),
    ("identity", 0.005),
    ("account", 0.005),
)
_MIX_BOUNDS = list(accumulate(share for _, share in MIX))

_POST = "app.bsky.feed.post"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_TID_PAIRS = [first + second for first in _TID_ALPHABET for second in _TID_ALPHABET]
_BYTE_TO_BASE32 = bytes(ord(_BASE32[byte & 31]) for byte in range(256))
_LANGS = list(LANGUAGES)
_LANG_WEIGHTS = list(accumulate(LANGUAGES.values()))
_HIT_TEXTS: list[tuple[HitGroup, str]] = [(group, text) for group in HITS for text in group.texts]
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # compact, like Jetstream
_LINK_PATHS = ("news", "posts", "2026", "recipes", "weather", "local", "watch")

Json = dict[str, Any]


class Account(NamedTuple):
    did: str
    handle: str


def _account_pool() -> tuple[Account, ...]:
    rng = random.Random("watchfloor-demo-accounts")
    accounts: dict[str, Account] = {}
    while len(accounts) < ACCOUNT_POOL_SIZE:
        did = "did:plc:" + "".join(rng.choice(_BASE32) for _ in range(24))
        handle = f"{rng.choice(HANDLE_ADJECTIVES)}-{rng.choice(HANDLE_NOUNS)}{rng.randrange(100)}.bsky.social"
        accounts[did] = Account(did, handle)
    return tuple(accounts.values())


ACCOUNTS = _account_pool()


# --------------------------------------------------------------------------- the source


class DemoSource:
    """An endless (or ``limit``-long) stream of demo events at ``rate`` events per second."""

    platform = "bluesky"

    def __init__(
        self,
        rate: float = 50.0,
        hit_share: float = 0.1,
        seed: int = 7,
        name: str = "demo",
        limit: int | None = None,
    ) -> None:
        if not 0.0 <= hit_share <= 1.0:
            raise ValueError(f"hit_share must be between 0 and 1, not {hit_share}")
        if limit is not None and limit < 0:
            raise ValueError(f"limit must not be negative, not {limit}")
        self.rate = rate
        self.hit_share = hit_share
        self.seed = seed
        self.name = name
        self.limit = limit

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        """Yield events from index ``cursor`` (0 for ``None``), paced in small batches."""
        index = parse_index(cursor)
        batch = MAX_BATCH if self.rate <= 0 else max(1, min(MAX_BATCH, int(self.rate / 100)))
        loop = asyncio.get_running_loop()
        started, sent = loop.time(), 0
        while self.limit is None or index < self.limit:
            end = index + batch if self.limit is None else min(index + batch, self.limit)
            for i in range(index, end):
                now = utcnow()
                payload = demo_payload(i, seed=self.seed, hit_share=self.hit_share, time_us=_time_us(now))
                yield RawEvent(self.name, self.platform, str(i + 1), payload, now)
            sent += end - index
            index = end
            delay = 0.0
            if self.rate > 0:
                delay = started + sent / self.rate - loop.time()
                if delay < -1.0:  # the consumer fell behind: go on at the rate, without a burst
                    started, sent = loop.time(), 0
            await asyncio.sleep(max(delay, 0.0))


def parse_index(cursor: str | None) -> int:
    """The index of the next event a demo cursor stands for (0 for ``None``)."""
    if cursor is None:
        return 0
    if not cursor.isascii() or not cursor.isdigit():
        raise ValueError(f"a demo cursor is an event index, not {cursor!r}")
    return int(cursor)


def write_demo_file(path: str | Path, count: int, seed: int = 7, hit_share: float = 0.1) -> Path:
    """Write events ``0 .. count-1`` as Jetstream JSONL, ``time_us`` 1 ms apart from DEMO_EPOCH_US."""
    path = Path(path)
    with path.open("wb") as file:
        for index in range(count):
            payload = demo_payload(index, seed=seed, hit_share=hit_share, time_us=DEMO_EPOCH_US + index * 1000)
            file.write(payload + b"\n")
    return path


# --------------------------------------------------------------------------- one event


def demo_payload(index: int, *, seed: int = 7, hit_share: float = 0.1, time_us: int) -> bytes:
    """Event ``index`` of the stream ``seed`` as Jetstream sends it: compact UTF-8 JSON."""
    event = demo_event(index, seed=seed, hit_share=hit_share, time_us=time_us)
    return _ENCODER.encode(event).encode()


def demo_event(index: int, *, seed: int, hit_share: float, time_us: int) -> Json:
    """Event ``index`` of the stream ``seed`` as a JSON object."""
    rng = random.Random(f"{seed}:{index}")
    kind = _kind(rng.random())
    actor = ACCOUNTS[rng.randrange(ACCOUNT_POOL_SIZE)]
    return _BUILDERS[kind](_Event(seed, index, hit_share, time_us, rng, actor))


class _Event(NamedTuple):
    seed: int
    index: int
    hit_share: float
    time_us: int
    rng: random.Random
    actor: Account


def _kind(draw: float) -> str:
    return MIX[min(bisect_right(_MIX_BOUNDS, draw), len(MIX) - 1)][0]


def _kind_at(seed: int, index: int) -> str:
    return _kind(random.Random(f"{seed}:{index}").random())


def _author_at(seed: int, index: int) -> Account:
    rng = random.Random(f"{seed}:{index}")
    rng.random()  # the kind
    return ACCOUNTS[rng.randrange(ACCOUNT_POOL_SIZE)]


def _earlier_post(seed: int, index: int, rng: random.Random) -> int | None:
    """The index of a post created a little before ``index``, if there is one."""
    start = index - 1 - rng.randrange(LOOKBACK)
    for candidate in range(start, max(start - 100, -1), -1):
        if _kind_at(seed, candidate) == "post":
            return candidate
    return None


def _post_ref(seed: int, index: int) -> Json:
    """A strong reference (cid and at-uri) to the post created by event ``index``."""
    did = _author_at(seed, index).did
    return {"cid": _cid("post", seed, index), "uri": f"at://{did}/{_POST}/{_record_key(seed, index)}"}


# --------------------------------------------------------------------------- builders


def _commit(event: _Event, operation: str, collection: str, rkey: str, record: Json | None = None) -> Json:
    commit: Json = {
        "rev": _tid(DEMO_EPOCH_US + event.index * 1000 + 500, event.seed),
        "operation": operation,
        "collection": collection,
        "rkey": rkey,
    }
    if record is not None:
        commit["record"] = record
        commit["cid"] = _cid(collection, event.seed, event.index, operation)
    return {"did": event.actor.did, "time_us": event.time_us, "kind": "commit", "commit": commit}


def _post(event: _Event) -> Json:
    record = _post_record(event.seed, event.index, event.hit_share, event.rng, created_at="")[0]
    # Drawn after the record, so that an edit can rebuild the record from the same draws.
    record["createdAt"] = _iso(event.time_us - event.rng.randrange(50_000, 3_000_000))
    message = _commit(event, "create", _POST, _record_key(event.seed, event.index), record)
    message["commit"]["cid"] = _cid("post", event.seed, event.index)
    return message


def _post_update(event: _Event) -> Json:
    """An edit: the same record key, the same text plus a note, a new cid."""
    original = _earlier_post(event.seed, event.index, event.rng)
    if original is None:
        return _like(event)
    rng = random.Random(f"{event.seed}:{original}")
    rng.random()  # the kind
    author = ACCOUNTS[rng.randrange(ACCOUNT_POOL_SIZE)]
    created_at = _iso(event.time_us - 60_000_000)
    record, lang = _post_record(event.seed, original, event.hit_share, rng, created_at)
    record["text"] += event.rng.choice(EDIT_NOTES[lang])
    return _commit(event._replace(actor=author), "update", _POST, _record_key(event.seed, original), record)


def _post_delete(event: _Event) -> Json:
    original = _earlier_post(event.seed, event.index, event.rng)
    if original is None:
        return _like(event)
    author = _author_at(event.seed, original)
    return _commit(event._replace(actor=author), "delete", _POST, _record_key(event.seed, original))


def _subject_post(event: _Event) -> Json:
    """Someone's post, often an old one that is not in the stream."""
    did = ACCOUNTS[event.rng.randrange(ACCOUNT_POOL_SIZE)].did
    rkey = _tid(DEMO_EPOCH_US - event.rng.randrange(10**13), event.rng.randrange(1024))
    return {"cid": _cid("subject", event.seed, event.index), "uri": f"at://{did}/{_POST}/{rkey}"}


def _like(event: _Event) -> Json:
    return _subject_record(event, "app.bsky.feed.like", _subject_post(event))


def _repost(event: _Event) -> Json:
    return _subject_record(event, "app.bsky.feed.repost", _subject_post(event))


def _follow(event: _Event) -> Json:
    return _subject_record(event, "app.bsky.graph.follow", ACCOUNTS[event.rng.randrange(ACCOUNT_POOL_SIZE)].did)


def _block(event: _Event) -> Json:
    return _subject_record(event, "app.bsky.graph.block", ACCOUNTS[event.rng.randrange(ACCOUNT_POOL_SIZE)].did)


def _subject_record(event: _Event, collection: str, subject: Json | str) -> Json:
    created_at = _iso(event.time_us - event.rng.randrange(50_000, 2_000_000))
    record: Json = {"$type": collection, "createdAt": created_at, "subject": subject}
    return _commit(event, "create", collection, _record_key(event.seed, event.index), record)


def _unlike(event: _Event) -> Json:
    return _commit(event, "delete", "app.bsky.feed.like", _old_record_key(event))


def _unfollow(event: _Event) -> Json:
    return _commit(event, "delete", "app.bsky.graph.follow", _old_record_key(event))


def _old_record_key(event: _Event) -> str:
    return _tid(DEMO_EPOCH_US - event.rng.randrange(10**13), event.rng.randrange(1024))


def _profile(event: _Event) -> Json:
    name = event.actor.handle.split(".", 1)[0].replace("-", " ").title()
    record = {
        "$type": "app.bsky.actor.profile",
        "createdAt": _iso(event.time_us - 1_000_000),
        "description": event.rng.choice(PROFILE_BIOS),
        "displayName": name,
    }
    return _commit(event, "update", "app.bsky.actor.profile", "self", record)


def _identity(event: _Event) -> Json:
    body = {"did": event.actor.did, "handle": event.actor.handle, "seq": _seq(event), "time": _iso(event.time_us)}
    return {"did": event.actor.did, "time_us": event.time_us, "kind": "identity", "identity": body}


def _account(event: _Event) -> Json:
    body: Json = {"active": True, "did": event.actor.did, "seq": _seq(event), "time": _iso(event.time_us)}
    if event.rng.random() < 0.3:
        body.update(active=False, status=event.rng.choice(("deactivated", "takendown")))
    return {"did": event.actor.did, "time_us": event.time_us, "kind": "account", "account": body}


_BUILDERS: dict[str, Callable[[_Event], Json]] = {
    "post": _post,
    "post_update": _post_update,
    "post_delete": _post_delete,
    "like": _like,
    "unlike": _unlike,
    "repost": _repost,
    "follow": _follow,
    "unfollow": _unfollow,
    "block": _block,
    "profile": _profile,
    "identity": _identity,
    "account": _account,
}


# --------------------------------------------------------------------------- post records


class _RichText:
    """Text built piece by piece, with facets at the right UTF-8 byte offsets."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.facets: list[Json] = []
        self._bytes = 0

    def add(self, text: str, feature: Json | None = None) -> None:
        size = len(text.encode())
        if feature is not None:
            index = {"byteEnd": self._bytes + size, "byteStart": self._bytes}
            self.facets.append({"features": [feature], "index": index})
        self.parts.append(text)
        self._bytes += size

    @property
    def text(self) -> str:
        return "".join(self.parts)


class _Slots:
    """Fills ``{slot}`` placeholders with words drawn in order of appearance."""

    def __init__(self, words: dict[str, tuple[str, ...]], rng: random.Random) -> None:
        self._words = words
        self._rng = rng

    def __getitem__(self, slot: str) -> str:
        return self._rng.choice(self._words[slot])


def _post_record(seed: int, index: int, hit_share: float, rng: random.Random, created_at: str) -> tuple[Json, str]:
    """The record of the post created by event ``index``, and its language.

    ``rng`` must be the event's generator after its kind and author draws, so an edit
    can rebuild the same record later.
    """
    hit = rng.random() < hit_share
    if hit:
        group, template = _HIT_TEXTS[rng.randrange(len(_HIT_TEXTS))]
        lang, tag_pool, tag_share = group.lang, group.hashtags, 0.5
    else:
        lang = _LANGS[min(bisect_right(_LANG_WEIGHTS, rng.random() * _LANG_WEIGHTS[-1]), len(_LANGS) - 1)]
        template = rng.choice(NOISE[lang])
        tag_pool, tag_share = HASHTAGS[lang], 0.2

    rich = _RichText()
    if rng.random() < 0.08:
        mentioned = ACCOUNTS[rng.randrange(ACCOUNT_POOL_SIZE)]
        rich.add(f"@{mentioned.handle}", {"$type": "app.bsky.richtext.facet#mention", "did": mentioned.did})
        rich.add(" ")
    rich.add(template.format_map(_Slots(SLOTS[lang], rng)))
    card = None
    if rng.random() < (0.3 if hit else 0.12):
        domain, title, description = rng.choice(LINK_CARDS)
        uri = f"https://{domain}/{rng.choice(_LINK_PATHS)}/{rng.randrange(100_000, 1_000_000)}"
        rich.add("\n\n")
        rich.add(_shown_link(uri), {"$type": "app.bsky.richtext.facet#link", "uri": uri})
        card = {"description": description, "title": title, "uri": uri}
    if rng.random() < tag_share:
        for tag in rng.sample(tag_pool, k=min(len(tag_pool), rng.randint(1, 2))):
            rich.add(" ")
            rich.add(f"#{tag}", {"$type": "app.bsky.richtext.facet#tag", "tag": tag})

    record: Json = {"$type": _POST, "createdAt": created_at}
    embed = _embed(seed, index, rng, card)
    if embed is not None:
        record["embed"] = embed
    if rich.facets:
        record["facets"] = rich.facets
    langs = _langs(lang, rng, always=hit)
    if langs:
        record["langs"] = langs
    if rng.random() < 0.15 and (parent := _earlier_post(seed, index, rng)) is not None:
        ref = _post_ref(seed, parent)
        record["reply"] = {"parent": ref, "root": ref}
    record["text"] = rich.text
    return record, lang


def _langs(lang: str, rng: random.Random, *, always: bool) -> list[str]:
    draw = rng.random()
    if draw < 0.05 and not always:
        return []
    if draw < 0.12:
        return [lang, "es" if lang == "en" else "en"]
    return [lang]


def _embed(seed: int, index: int, rng: random.Random, card: Json | None) -> Json | None:
    """At most one embed: a quote (maybe with images), a link card, images or a video."""
    if rng.random() < 0.05 and (quoted := _earlier_post(seed, index, rng)) is not None:
        record = {"$type": "app.bsky.embed.record", "record": _post_ref(seed, quoted)}
        if rng.random() < 0.3:
            return {"$type": "app.bsky.embed.recordWithMedia", "media": _images(seed, index, rng), "record": record}
        return record
    if card is not None and rng.random() < 0.6:
        if rng.random() < 0.5:
            card["thumb"] = _blob(seed, index, 9, "image/jpeg", rng)
        return {"$type": "app.bsky.embed.external", "external": card}
    draw = rng.random()
    if draw < 0.1:
        return _images(seed, index, rng)
    if draw < 0.115:
        video = {"$type": "app.bsky.embed.video", "video": _blob(seed, index, 0, "video/mp4", rng)}
        video["aspectRatio"] = {"height": 1920, "width": 1080}
        return video
    return None


def _images(seed: int, index: int, rng: random.Random) -> Json:
    images = [
        {
            "alt": rng.choice(ALT_TEXTS),
            "aspectRatio": {"height": rng.choice((3, 4, 9)) * 300, "width": 1200},
            "image": _blob(seed, index, k, "image/jpeg", rng),
        }
        for k in range(rng.choice((1, 1, 1, 2, 4)))
    ]
    return {"$type": "app.bsky.embed.images", "images": images}


def _blob(seed: int, index: int, k: int, mime_type: str, rng: random.Random) -> Json:
    link = "bafkrei" + _base32_digest(f"blob:{seed}:{index}:{k}")
    return {"$type": "blob", "ref": {"$link": link}, "mimeType": mime_type, "size": rng.randrange(20_000, 2_000_000)}


def _shown_link(uri: str) -> str:
    """A link as Bluesky apps show it: no scheme, long paths cut."""
    shown = uri.split("://", 1)[-1]
    return shown if len(shown) <= 30 else shown[:27] + "..."


# --------------------------------------------------------------------------- identifiers


def _record_key(seed: int, index: int) -> str:
    """The record key (a TID) of the record created by event ``index``."""
    return _tid(DEMO_EPOCH_US + index * 1000, seed)


def _tid(time_us: int, clock_id: int) -> str:
    """An AT Protocol TID: 53 bits of microseconds and 10 bits of clock id, base32-sortable."""
    value = ((time_us & ((1 << 53) - 1)) << 10) | (clock_id & 0x3FF)
    pairs = _TID_PAIRS  # two characters per 10 bits: 13 characters in 7 look-ups
    return (
        _TID_ALPHABET[value >> 60]
        + pairs[(value >> 50) & 1023]
        + pairs[(value >> 40) & 1023]
        + pairs[(value >> 30) & 1023]
        + pairs[(value >> 20) & 1023]
        + pairs[(value >> 10) & 1023]
        + pairs[value & 1023]
    )


def _cid(*parts: object) -> str:
    """A CIDv1 (dag-cbor, sha-256) look-alike, derived from ``parts``."""
    return "bafyrei" + _base32_digest(":".join(map(str, parts)))


def _base32_digest(text: str) -> str:
    """52 base32 characters derived from ``text`` (as long as a sha-256 CID's digest part)."""
    return hashlib.sha512(text.encode()).digest()[:52].translate(_BYTE_TO_BASE32).decode()


def _seq(event: _Event) -> int:
    return 30_000_000_000 + event.seed * 1_000_000_000 + event.index


def _time_us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _iso(time_us: int) -> str:
    moment = _EPOCH + timedelta(microseconds=time_us)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
