"""The dataclasses that cross to the helper processes pickle as (class, field values)."""

from __future__ import annotations

import copyreg
import io
import pickle
import pickletools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from watchfloor.model import (
    Alert,
    AlertStatus,
    DeadLetter,
    Deletion,
    Explanation,
    MediaRef,
    Post,
    PostKey,
    SealedIdentity,
    Severity,
    TermHit,
    Watch,
    WatchStatus,
)
from watchfloor.pickling import pickled_by_fields
from watchfloor.pipeline.match_process import MatchedBatch
from watchfloor.pipeline.processing import PipelineStats
from watchfloor.signals.stage import TextSignals
from watchfloor.store import IngestBatch

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def a_matched_batch() -> MatchedBatch:
    """A batch as the match helper sends it back, every field away from its default."""
    post = Post(
        platform="bluesky",
        native_id="at://did:plc:abc/app.bsky.feed.post/3k",
        version="bafy1",
        created_at=T0,
        received_at=T0 + timedelta(seconds=1),
        text="Évacuation 🚨 now",
        author="p_0123",
        lang="fr",
        langs=("fr", "en"),
        url="https://example.org/p",
        links=("https://example.org/a",),
        hashtags=("alerte",),
        mentions=("p_4567",),
        reply_to="at://did:plc:def/app.bsky.feed.post/1",
        quote_of="at://did:plc:ghi/app.bsky.feed.post/2",
        media=(MediaRef("at-blob:bafk", "image/png", "bafk", "a map"),),
        raw=b'{"kind":"commit"}',
    )
    explanation = Explanation(
        hits=(TermHit("evacuat*", "prefix", ((0, 10),)), TermHit("lang:fr", "filter")),
        score_parts=(("severity", 0.5), ("toxicity", 0.1)),
    )
    alert = Alert(
        watch_id=7,
        post=post.key,
        score=0.61,
        explanation=explanation,
        created_at=T0,
        due_at=T0 + timedelta(minutes=30),
        status=AlertStatus.escalated,
        id=99,
    )
    batch = IngestBatch(
        source="jetstream",
        cursor="1732530000000000",
        posts=[post],
        alerts=[alert],
        deletions=[Deletion("bluesky", "at://did:plc:abc/app.bsky.feed.post/2", T0)],
        dead_letters=[DeadLetter("jetstream", "bluesky", "invalid JSON", b"{", T0, key="k1")],
        identities=[SealedIdentity("p_0123", 3, b"n" * 12, b"secret", T0)],
        events=500,
        events_per_s=1234.5,
        lag_s=0.25,
        last_event_at=T0,
    )
    watch = Watch(
        name="evacuations",
        query="evacuat* lang:fr",
        purpose="public safety",
        legal_basis="public task",
        owner="ana",
        severity=Severity.high,
        sla_minutes=30,
        expires_at=T0 + timedelta(days=30),
        approver="bo",
        sources=("jetstream",),
        languages=("fr",),
        created_at=T0,
        status=WatchStatus.approved,
        created_by="ana",
        approved_at=T0,
        id=7,
    )
    stats = PipelineStats(events=500, posts=120, matched_posts=1, alerts=1, deletions=1, dead_letters=1, batches=1)
    stats.ignored["commit:app.bsky.feed.like:create"] = 378
    return MatchedBatch(batch, T0, stats, {7: watch})


def test_a_matched_batch_comes_back_equal_and_without_setstate() -> None:
    matched = a_matched_batch()
    data = pickle.dumps(matched, protocol=pickle.HIGHEST_PROTOCOL)
    back = pickle.loads(data)
    assert back == matched
    assert back.batch.posts[0].media[0] == matched.batch.posts[0].media[0]
    assert back.stats.ignored == {"commit:app.bsky.feed.like:create": 378}
    # Each object is rebuilt by calling its class (REDUCE), never by the dataclass's
    # Python __setstate__ (BUILD).
    opcodes = {op.name for op, _, _ in pickletools.genops(data)}
    assert "REDUCE" in opcodes
    assert "BUILD" not in opcodes


@pytest.mark.parametrize(
    "value",
    [
        PostKey("bluesky", "at://x", "v1"),
        MediaRef("at-blob:b"),
        TextSignals("en", 0.9, -0.2, 0.05, None),
        Deletion("bluesky", "at://x", T0),
    ],
    ids=lambda v: type(v).__name__,
)
def test_each_type_keeps_its_class_and_fields(value: object) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    assert "BUILD" not in {op.name for op, _, _ in pickletools.genops(data)}  # pickled by its fields
    back = pickle.loads(data)
    assert type(back) is type(value)
    assert back == value


def test_a_pickle_of_the_dataclass_state_still_loads() -> None:
    """Pickles written before (by the dataclass's own __getstate__, rebuilt with BUILD) still load."""

    class Before(pickle.Pickler):
        def reducer_override(self, obj: object) -> object:
            if type(obj) is PostKey:
                return copyreg.__newobj__, (PostKey,), obj.__getstate__()  # type: ignore[attr-defined]
            return NotImplemented

    key = PostKey("bluesky", "at://x", "v1")
    out = io.BytesIO()
    Before(out, protocol=pickle.HIGHEST_PROTOCOL).dump(key)
    assert "BUILD" in {op.name for op, _, _ in pickletools.genops(out.getvalue())}
    assert pickle.loads(out.getvalue()) == key


@dataclass(frozen=True, slots=True)
class _One:
    value: int


def test_a_one_field_dataclass_round_trips() -> None:
    one = pickled_by_fields(_One)
    assert pickle.loads(pickle.dumps(one(5))) == one(5)


def test_what_cannot_be_rebuilt_from_its_fields_is_refused() -> None:
    class Plain:
        pass

    @dataclass
    class Computed:
        a: int
        b: int = field(init=False, default=0)

    @dataclass
    class Checked:
        a: int

        def __post_init__(self) -> None:
            pass

    @dataclass
    class Empty:
        pass

    for cls, reason in [
        (Plain, "not a dataclass"),
        (Computed, "field that __init__ does not take"),
        (Checked, "__post_init__"),
        (Empty, "no fields"),
    ]:
        with pytest.raises(TypeError, match=reason):
            pickled_by_fields(cls)
