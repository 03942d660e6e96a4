"""The garbage-collector settings of a streaming process (pipeline/gc_pauses.py)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import Watch, WatchStatus
from watchfloor.pipeline import gc_pauses
from watchfloor.pipeline.match_process import MatchProcess
from watchfloor.pipeline.runner import Pipeline
from watchfloor.pipeline.watchset_cache import WatchSetCache
from watchfloor.query import IncrementalWatchSet
from watchfloor.signals.text_process import TextSignalProcess
from watchfloor.sources.bluesky import JetstreamNormaliser
from watchfloor.sources.replay import ReplaySource

QUERIES = [
    "flood",
    '"water rising" AND evac*ate',
    "(storm OR hurricane) NOT drill",
    "bridge NEAR/3 collapse",
    '"power cut" ONEAR/2 hospital',
    "/ev[ae]cuat(e|ion)/",
    "lang:pt chuva",
    "hashtag:earthquake OR domain:example.org",
    "地震",
    "{NASA}",
    "nosuchfield:x",  # refused: kept in the set's errors, which must not tie it into cycles either
]


def watches(count: int) -> list[Watch]:
    now = datetime.now(UTC)
    return [
        Watch(
            id=n + 1,
            name=f"w{n}",
            query=f"{QUERIES[n % len(QUERIES)]} OR word{n}",
            purpose="test",
            legal_basis="test",
            owner="tester",
            created_at=now,
            expires_at=now + timedelta(days=1),
            status=WatchStatus.approved,
        )
        for n in range(count)
    ]


@pytest.fixture
def collector() -> Iterator[None]:
    gc_pauses.reset()
    yield
    gc_pauses.reset()


def test_a_compiled_watch_set_holds_no_reference_cycles(collector) -> None:
    """Frozen objects are never visited by the collector: a frozen watch set that is later
    replaced must be freed by reference counting alone, i.e. hold no cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(10):  # earlier tests' garbage, including what finalisers leave behind
            if gc.collect() == 0:
                break
        watch_set = IncrementalWatchSet(watches(300), background=False)
        watch_set.update(watches(310)[300:], [1, 2])  # a delta segment too
        assert watch_set.errors  # the refused queries are listed
        del watch_set
        assert gc.collect() == 0  # nothing was left for the cyclic collector
    finally:
        if was_enabled:
            gc.enable()


def test_tuning_raises_the_young_threshold_and_settling_freezes_once(collector) -> None:
    assert gc.get_threshold()[0] == 700
    assert gc_pauses.settle() is False  # a process that did not ask keeps Python's defaults
    assert gc.get_freeze_count() == 0

    gc_pauses.tune_for_streaming()
    assert gc.get_threshold()[0] == gc_pauses.YOUNG_THRESHOLD
    assert gc_pauses.settle() is True
    frozen = gc.get_freeze_count()
    assert frozen > 0
    assert gc_pauses.settle() is False  # once per process
    assert gc.get_freeze_count() == frozen

    gc_pauses.reset()
    assert gc.get_threshold()[0] == 700
    assert gc.get_freeze_count() == 0


def test_the_watch_set_cache_freezes_the_first_compiled_set(collector, store) -> None:
    for watch in watches(50):
        store.add_watch(_unsaved(watch))
    gc_pauses.tune_for_streaming()
    cache = WatchSetCache(store, check_every_s=0.0)
    watch_set = cache.current()
    assert gc.get_freeze_count() > 0
    # the compiled set is frozen: full collections no longer visit it
    assert not any(o is watch_set for o in gc.get_objects())
    # a later change compiles a delta and does not freeze again
    frozen = gc.get_freeze_count()
    store.add_watch(_unsaved(watches(51)[50]))
    assert cache.current() is watch_set
    assert gc.get_freeze_count() <= frozen  # frozen objects still die by reference counting


def _unsaved(watch: Watch) -> Watch:
    return replace(watch, id=None)


async def test_a_pipeline_whose_batches_the_match_helper_prepares_settles_too(
    collector, store, shared_fixtures
) -> None:
    """Such a pipeline compiles no watch set of its own: its process settles when the
    helper's first batch comes back, and the helper settles after its own compile."""
    store.add_watch(_unsaved(watches(1)[0]))
    gc_pauses.tune_for_streaming()
    helper = MatchProcess()
    try:
        corpus = shared_fixtures / "bluesky" / "jetstream_v1_corpus.jsonl"
        pipeline = Pipeline(
            ReplaySource(corpus), JetstreamNormaliser(HmacPseudonymiser(b"k" * 32)), store, match_process=helper
        )
        assert gc.get_freeze_count() == 0
        stats = await pipeline.run()
        assert stats.events == 152 and helper.fallbacks == 0  # every batch came from the helper
        assert gc.get_freeze_count() > 0
        in_helper = helper.result(helper.submit(gc.get_freeze_count))
        assert in_helper is not None and in_helper > 0
    finally:
        helper.close()


def test_the_text_signal_helper_streams_tuned_and_settled() -> None:
    helper = TextSignalProcess(timeout_s=60)
    try:
        helper.start().result(timeout=120)
        assert helper.result(helper.submit(gc.get_threshold))[0] == gc_pauses.YOUNG_THRESHOLD
        assert helper.result(helper.submit(gc.get_freeze_count)) > 0  # its models, loaded, are frozen
    finally:
        helper.close()
