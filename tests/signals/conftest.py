"""Fixtures for the signals tests: a pipeline over an in-memory list of posts (a real
Pipeline, a real SQLite store; only the platform is a stand-in), and approved watches."""

from __future__ import annotations

import asyncio
import pickle
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from watchfloor.model import Deletion, Post, RawEvent, Severity, Watch, WatchStatus, utcnow
from watchfloor.pipeline.runner import Pipeline, PipelineStats

PLATFORM = "testplatform"
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


class ListSource:
    """Yields the given items (posts and deletions) as raw events, then ends."""

    platform = PLATFORM

    def __init__(self, items: Sequence[Post | Deletion], name: str = "list") -> None:
        self.items = list(items)
        self.name = name

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        start = 0 if cursor is None else int(cursor) + 1
        for i in range(start, len(self.items)):
            yield RawEvent(self.name, PLATFORM, str(i), pickle.dumps(self.items[i]), utcnow())


class ListNormaliser:
    platform = PLATFORM

    def normalise(self, event: RawEvent) -> Post | Deletion:
        return pickle.loads(event.payload)  # the test's own objects


_ids = count(1)


def build(
    text: str,
    *,
    author: str = "p:00000000000000aa",
    lang: str | None = "en",
    at: datetime | None = None,
    links: tuple[str, ...] = (),
    hashtags: tuple[str, ...] = (),
    native_id: str | None = None,
) -> Post:
    when = at or T0
    return Post(
        platform=PLATFORM,
        native_id=native_id or f"post-{next(_ids)}",
        version="1",
        created_at=when,
        received_at=when,
        text=text,
        author=author,
        lang=lang,
        langs=(lang,) if lang else (),
        links=links,
        hashtags=hashtags,
        raw=b"{}",
    )


@pytest.fixture
def post() -> Callable[..., Post]:
    """``post(text, author=..., lang=..., at=..., links=..., hashtags=...)``: a synthetic post."""
    return build


def add_approved(store, name: str, query: str, **fields: object) -> Watch:
    return store.add_watch(
        Watch(
            name=name,
            query=query,
            purpose="test",
            legal_basis="test",
            owner="tester",
            severity=Severity(fields.pop("severity", Severity.medium)),
            expires_at=utcnow() + timedelta(days=1),
            status=WatchStatus.approved,
            approver="supervisor",
            **fields,  # type: ignore[arg-type]
        )
    )


@pytest.fixture
def approved_watch(store) -> Callable[..., Watch]:
    """``approved_watch(name, query, **fields)``: an approved, active watch in ``store``."""
    return lambda name, query, **fields: add_approved(store, name, query, **fields)


@pytest.fixture
def add_watch_to() -> Callable[..., Watch]:
    """``add_watch_to(store, name, query, **fields)`` for a second store."""
    return add_approved


def build_pipeline(store, items: Sequence[Post | Deletion], *, batch_size: int = 500, name: str = "list") -> Pipeline:
    return Pipeline(ListSource(items, name), ListNormaliser(), store, batch_size=batch_size, batch_interval_s=0.01)


@pytest.fixture
def make_pipeline() -> Callable[..., Pipeline]:
    """``make_pipeline(store, items, batch_size=..., name=...)``: a real Pipeline over ``items``."""
    return build_pipeline


@pytest.fixture
def run_items(store) -> Callable[..., tuple[Pipeline, PipelineStats]]:
    """Run a real Pipeline over ``items`` into ``store``; returns the pipeline and its stats."""

    def run(
        items: Sequence[Post | Deletion], *, batch_size: int = 500, name: str = "list"
    ) -> tuple[Pipeline, PipelineStats]:
        pipeline = build_pipeline(store, items, batch_size=batch_size, name=name)
        return pipeline, asyncio.run(pipeline.run())

    return run
