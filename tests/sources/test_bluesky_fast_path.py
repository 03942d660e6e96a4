"""The Jetstream normaliser's fast path (orjson and fewer steps for common events) gives
exactly what the fully checked path gives: the same Post, Deletion or Ignored, or the same
reason for refusing, on real events, mutated real events and arbitrary JSON."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import MalformedEvent, RawEvent
from watchfloor.sources.bluesky import JetstreamNormaliser, parse_message

NORMALISER = JetstreamNormaliser(HmacPseudonymiser(b"k" * 32))
RECORDINGS = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "bluesky"


def outcome(payload: bytes, fast: bool) -> object:
    event = RawEvent("test", "bluesky", "1", payload, datetime(2026, 11, 25, tzinfo=UTC))
    try:
        if fast:
            return NORMALISER.normalise(event)
        return NORMALISER._normalise_checked(event, parse_message(payload))
    except MalformedEvent as error:
        return ("refused", error.reason)


def same(payload: bytes) -> None:
    assert outcome(payload, fast=True) == outcome(payload, fast=False)


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
