"""Signals in the pipeline, end to end on a real store (SQLite and PostgreSQL): computed for
matched posts only, stored with them, shown in the score parts; they never change which posts match,
except a language identified lazily for a post without one when a watch needs ``lang:``."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest

from watchfloor.model import Deletion, Post, Watch
from watchfloor.pipeline.scoring import SCORE_FORMULA
from watchfloor.signals.bursts import BurstDetector, BurstSettings
from watchfloor.signals.stage import PendingTexts, SignalStage, stage_for
from watchfloor.store import IngestBatch, Store, open_store


@pytest.fixture
def store(any_store: Store) -> Store:
    """Every test here that uses the store runs on SQLite and on PostgreSQL."""
    return any_store


# Synthetic texts, written for these tests.
CALM = "The river level at the old mill is rising slowly, volunteers are filling sandbags."
ANGRY = "The river flooding again and the council idiots did nothing, what a bunch of useless morons."
FRENCH = "La rivière déborde près du vieux moulin, les bénévoles remplissent des sacs de sable."
OTHER = "Lovely sunny afternoon at the allotment, the tomatoes are finally ripe."


def test_matched_posts_get_signals_stored_and_scored(store, post, approved_watch, run_items) -> None:
    watch = approved_watch("river", "river OR rivière")
    items = [post(CALM), post(ANGRY), post(FRENCH, lang="fr"), post(OTHER)]
    _, stats = run_items(items)
    assert stats.matched_posts == 3

    views = store.list_alerts(limit=10)
    assert len(views) == 3
    by_text = {v.post.text: v for v in views}
    for view in views:
        a = view.alert
        parts = dict(a.explanation.score_parts)
        assert abs(sum(parts.values()) - a.score) < 1e-3  # the parts add up to the score
        assert set(parts) <= {p.name for p in SCORE_FORMULA}
        signals = store.get_post_signals(a.post)
        assert signals is not None and signals.near_duplicate_group is not None
    calm, angry, french = by_text[CALM], by_text[ANGRY], by_text[FRENCH]
    # English texts carry toxicity and threat parts; the insulting one scores higher
    assert {"toxicity", "threat"} <= dict(angry.alert.explanation.score_parts).keys()
    assert store.get_post_signals(angry.alert.post).toxicity > store.get_post_signals(calm.alert.post).toxicity
    assert angry.alert.score > calm.alert.score
    assert store.get_post_signals(angry.alert.post).sentiment < 0
    # the French text: language identified, English-only signals left out of signals and score
    fr = store.get_post_signals(french.alert.post)
    assert fr.lang == "fr" and fr.toxicity is None and fr.sentiment is None
    assert set(dict(french.alert.explanation.score_parts)) == {"severity", "match"}
    # the unmatched post was neither stored nor scored
    assert store.counts().posts == 3
    assert watch.id is not None


def test_signals_never_change_which_posts_match(tmp_path, post, add_watch_to, make_pipeline) -> None:
    """The same posts through a pipeline with signals and through one whose stage does nothing."""
    texts = [CALM, ANGRY, FRENCH, OTHER, "flood warning for the river road", "river river river", "nothing here"]
    items = [post(t, lang=("fr" if t == FRENCH else "en")) for t in texts]

    def alerts_with(stage_on: bool) -> set[tuple[str, str]]:
        store = open_store(f"sqlite:///{tmp_path}/{'on' if stage_on else 'off'}.db")
        try:
            for name, query in (("a", "river"), ("b", "flood* AND river"), ("c", "rivière lang:fr")):
                add_watch_to(store, name, query)
            pipeline = make_pipeline(store, items)
            if not stage_on:
                pipeline.signals = _NoSignals()
            asyncio.run(pipeline.run())
            return {(v.post.native_id, v.watch_name) for v in store.list_alerts(limit=100) if v.post}
        finally:
            store.close()

    with_signals = alerts_with(True)
    assert with_signals == alerts_with(False)
    assert len(with_signals) == 7


class _NoSignals(SignalStage):
    """A stage that computes nothing (what the pipeline did before signals existed)."""

    def annotate(
        self, batch: IngestBatch, watches: dict[int, Watch], now: datetime, pending: PendingTexts | None = None
    ) -> None:
        return None

    def filter_languages(self, post: Post) -> tuple[str, ...]:
        return ()


def test_language_is_identified_lazily_only_for_posts_without_one(store, post, approved_watch, run_items) -> None:
    approved_watch("french river", "rivière lang:fr")
    approved_watch("english river", "river")  # no language needed
    undeclared_fr = post(FRENCH, lang=None)
    undeclared_en = post(CALM, lang=None)  # hits 'river' only: no lang: watch evaluated on it
    declared_en = post("la rivière en anglais? no, English text mentioning rivière", lang="en")
    no_anchor = post("Ce texte ne parle pas de cours d'eau", lang=None)  # no anchor: nothing evaluated
    stage = stage_for(store)
    _, stats = run_items([undeclared_fr, undeclared_en, declared_en, no_anchor])
    matched = {(v.post.native_id, v.watch_name) for v in store.list_alerts(limit=10)}
    assert (undeclared_fr.native_id, "french river") in matched  # matched thanks to identification
    assert (undeclared_en.native_id, "english river") in matched
    assert (declared_en.native_id, "french river") not in matched  # a declared language is never overridden
    # identification for matching ran once: the French post without a language, hit by a lang: watch
    assert stage.lazy_language_calls == 1
    assert stats.matched_posts == 2


def test_a_story_copied_many_times_is_one_group(store, post, approved_watch, run_items) -> None:
    approved_watch("bridge", "bridge")
    story = "BREAKING: the old bridge on Mill Road has collapsed, avoid the area and share this"
    t0 = post("x").created_at
    copies = [
        post(
            f"{story.lower() if i % 2 else story}{'!' * (i % 3)} https://example.org/r/{i} @someone{i}",
            author=f"p:{i:016x}",
            at=t0 + timedelta(seconds=i),
        )
        for i in range(40)
    ]
    other = post("The bridge club meets on Thursday evenings in the village hall", at=t0)
    _, _ = run_items([*copies, other], batch_size=7)
    groups = store.list_near_duplicate_groups(min_count=2)
    assert len(groups) == 1
    assert groups[0].count == 40
    assert groups[0].first_post.native_id == copies[0].native_id
    assert groups[0].first_seen_at == copies[0].created_at
    assert store.get_post_signals(other.key).near_duplicate_group != groups[0].group_id


def test_deleting_a_post_deletes_its_signals(store, post, approved_watch, run_items) -> None:
    approved_watch("river", "river")
    p = post(CALM)
    run_items([p])
    assert store.get_post_signals(p.key) is not None
    run_items([p, Deletion(p.platform, p.native_id, p.created_at)], name="list")
    assert store.get_post_signals(p.key) is None


def test_a_restart_keeps_near_duplicate_groups(tmp_path, post) -> None:
    """A new stage on the same store restores the index from the stored signatures."""
    store = open_store(f"sqlite:///{tmp_path}/r.db")
    try:
        story = "Water main burst on Station Street, the whole east side has no water until tonight"
        p1 = post(story)
        s1 = SignalStage().for_post(p1)
        store.commit_batch(IngestBatch(source="t", cursor="1", posts=[p1], signals=[s1]))
        restarted = SignalStage()
        assert restarted.warm(store.recent_signatures(100)) == 1
        again = restarted.for_post(post(story + " (via the council)"))
        assert again.near_duplicate_group == s1.near_duplicate_group
    finally:
        store.close()


def test_bursts_raise_a_spike_with_baseline_and_excess(store, post, approved_watch, run_items) -> None:
    watch = approved_watch("river", "river OR flood")
    stage = stage_for(store)
    stage.bursts = BurstDetector(BurstSettings(window_s=60, warmup=4, min_count=5, lateness_s=0))
    t0 = post("x").created_at
    items = []
    for minute in range(8):  # a steady one alert per minute
        items.append(post(f"river level note {minute}", at=t0 + timedelta(minutes=minute, seconds=5)))
    for k in range(20):  # then twenty in one minute
        items.append(post(f"flood on the river road, report {k}", at=t0 + timedelta(minutes=8, seconds=k)))
    items.append(post("river calm again", at=t0 + timedelta(minutes=10)))  # moves time past the burst
    run_items(items, batch_size=5)
    spikes = store.list_spikes(since=t0 - timedelta(days=1))
    whole = [s for s in spikes if s.term == ""]
    assert len(whole) == 1
    spike = whole[0]
    assert spike.watch_id == watch.id
    assert spike.count == 20
    assert spike.window_start == t0 + timedelta(minutes=8)
    assert 0.5 < spike.baseline < 1.5
    assert spike.excess == round(spike.count - spike.baseline, 3)
    assert spike.threshold < spike.count
    terms = {s.term for s in spikes}
    assert "river" in terms  # per term too: 'river' has its history of one a minute
    assert "flood" not in terms  # a term never seen before has no baseline yet (warm-up)
