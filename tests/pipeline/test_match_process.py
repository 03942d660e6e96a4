"""Normalising, matching and sealing in a helper process (pipeline/match_process.py): the
same batches as in the pipeline, a helper that dies loses nothing, and what cannot be sent
is prepared in the pipeline. Real processes, real stores. (Watch edits reaching the helper:
tests/pipeline/test_runner.py, both ways.)"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest
from tests.pipeline.test_runner import add_watch

from watchfloor.governance.keys import KEYS_DIR, Keyring
from watchfloor.governance.pseudonyms import KeyedPseudonymiser, open_identity
from watchfloor.model import Severity, utcnow
from watchfloor.pipeline.match_process import MatchProcess, recipe_for, store_url_for_helper
from watchfloor.pipeline.runner import Pipeline
from watchfloor.sources.bluesky import JetstreamNormaliser
from watchfloor.sources.demo import DEMO_WATCHES, write_demo_file
from watchfloor.sources.replay import ReplaySource
from watchfloor.store import Store, open_store


@pytest.fixture(scope="module")
def helper() -> Iterator[MatchProcess]:
    process = MatchProcess()
    process.start().result(timeout=120)
    yield process
    process.close()


@pytest.fixture
def keyring(tmp_path: Path) -> Keyring:
    ring = Keyring(tmp_path / KEYS_DIR)
    ring.initialise("deployment")
    return ring


def pipeline(source, store: Store, keyring: Keyring, match_process: MatchProcess | None, **kw) -> Pipeline:
    """As `watchfloor run` builds it: the keyed pseudonymiser, which seals matched authors."""
    pseudonymise = KeyedPseudonymiser(keyring)
    built = Pipeline(source, JetstreamNormaliser(pseudonymise), store, match_process=match_process, **kw)
    built.before_commit.append(pseudonymise.seal_batch)
    return built


def mixed_recording(path: Path, fixtures: Path) -> Path:
    """The real Jetstream corpus, a demo stream with deletes and many hits, malformed lines."""
    demo = path.parent / "demo.jsonl"
    write_demo_file(demo, 3000, seed=5, hit_share=0.3)
    corpus = (fixtures / "bluesky" / "jetstream_v1_corpus.jsonl").read_text(encoding="utf-8").splitlines()
    bad = ["{not json", '{"kind": "commit"}', '"a string"', '{"did": 5, "kind": "commit", "time_us": 1}']
    lines = [*corpus[:70], *bad[:2], *demo.read_text(encoding="utf-8").splitlines(), *bad[2:], *corpus[70:]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class Stored:
    alerts: list[tuple[int, str, float, str]]
    posts: list[tuple[str, str, str]]
    identities: dict[str, tuple[str, str]]
    dead_letters: list[tuple[str, bytes]]
    cursor: str | None


def stored(store: Store, keyring: Keyring, source: str) -> Stored:
    views = store.list_alerts(limit=10_000)
    alerts = sorted(
        (v.alert.watch_id, v.alert.post.native_id, v.alert.score, json.dumps(v.alert.explanation.to_dict()))
        for v in views
    )
    posts = sorted({(v.post.native_id, v.post.author, v.post.text) for v in views if v.post is not None})
    identities = {}
    for _, author, _ in posts:
        sealed = store.identities_of(author)
        assert len(sealed) == 1, f"the author {author} of a stored post has one sealed identity"
        identities[author] = open_identity(keyring, sealed[0])
    letters = sorted((d.reason, d.payload) for d in store.list_dead_letters(limit=1000))
    return Stored(alerts, posts, identities, letters, store.get_cursor(source))


def add_demo_watches(store: Store) -> None:
    for name, query, severity in DEMO_WATCHES:
        add_watch(store, name, query, severity=Severity(severity))
    add_watch(store, "bands", "band OR boring")


async def test_the_helper_prepares_exactly_what_the_pipeline_prepares(
    tmp_path, any_store_url, helper, keyring, shared_fixtures
) -> None:
    recording = mixed_recording(tmp_path / "mixed.jsonl", shared_fixtures)
    here = open_store(f"sqlite:///{tmp_path / 'here.db'}")
    there = open_store(any_store_url)  # SQLite and PostgreSQL: the helper opens it by its URL
    try:
        for store in (here, there):
            add_demo_watches(store)
        fallbacks = helper.fallbacks
        in_pipeline = await pipeline(ReplaySource(recording, name="r"), here, keyring, None, batch_size=97).run()
        with_helper = await pipeline(ReplaySource(recording, name="r"), there, keyring, helper, batch_size=97).run()
        assert helper.fallbacks == fallbacks  # every batch went through the helper

        for figures in (in_pipeline, with_helper):
            figures.batches = 0  # how events fall into batches depends on timing
        assert with_helper == in_pipeline  # events, posts, matches, alerts, deletes, dead letters, ignored kinds
        assert in_pipeline.dead_letters == 4 and in_pipeline.deletions > 0 and in_pipeline.alerts > 100
        expected, actual = stored(here, keyring, "r"), stored(there, keyring, "r")
        assert actual == expected  # the same alerts, scores, explanations, posts, pseudonyms and cursor
        assert all(account.startswith("did:plc:") for _, account in actual.identities.values())  # sealed, then opened
        assert actual.cursor == str(recording.stat().st_size)
    finally:
        here.close()
        there.close()


async def test_a_killed_helper_is_replaced_and_nothing_is_lost_or_doubled(tmp_path, keyring) -> None:
    recording = tmp_path / "demo.jsonl"
    write_demo_file(recording, 20_000, seed=9, hit_share=0.2)
    here = open_store(f"sqlite:///{tmp_path / 'here.db'}")
    there = open_store(f"sqlite:///{tmp_path / 'there.db'}")
    process = MatchProcess()
    try:
        for store in (here, there):
            add_demo_watches(store)
        expected = await pipeline(ReplaySource(recording, name="r"), here, keyring, None, batch_size=200).run()
        first = process.start().result(timeout=120)
        running = pipeline(ReplaySource(recording, name="r"), there, keyring, process, batch_size=200)
        killed = asyncio.Event()

        def kill_once(result: object) -> None:
            if not killed.is_set() and running.stats.batches >= 5:
                killed.set()
                os.kill(first, signal.SIGKILL)  # batches are in flight in it

        running.on_commit.append(kill_once)
        stats = await running.run()
        assert killed.is_set()
        assert process.restarts >= 1 and process.fallbacks >= 1  # some batches were prepared in the pipeline
        assert process.helper_pid() not in (None, first)  # a new helper took the rest
        assert stats.events == expected.events and stats.alerts == expected.alerts
        assert stored(there, keyring, "r") == stored(here, keyring, "r")
    finally:
        process.close()
        here.close()
        there.close()


async def test_what_cannot_be_sent_is_prepared_in_the_pipeline(store, tmp_path, keyring, caplog) -> None:
    recording = tmp_path / "demo.jsonl"
    write_demo_file(recording, 500, seed=2, hit_share=0.5)
    add_demo_watches(store)
    process = MatchProcess()  # never started: nothing is ever sent to it
    try:
        unpicklable = Pipeline(
            ReplaySource(recording, name="r"),
            JetstreamNormaliser(lambda platform, account: "p:" + account[-16:]),  # a lambda does not pickle
            store,
            match_process=process,
        )
        with caplog.at_level(logging.WARNING, logger="watchfloor.pipeline.match_process"):
            stats = await unpicklable.run()
        assert stats.alerts > 0 and store.counts().alerts == stats.alerts
        assert process.helper_pid() is None
        assert sum("cannot be sent to the helper process" in r.getMessage() for r in caplog.records) == 1
    finally:
        process.close()


def test_a_store_another_process_cannot_open_is_not_sent(tmp_path, keyring) -> None:
    for elsewhere in (
        SimpleNamespace(url="sqlite:///:memory:"),
        SimpleNamespace(url=f"sqlite:///{tmp_path / 'not-there.db'}"),
        SimpleNamespace(),  # a store without a URL
    ):
        assert store_url_for_helper(elsewhere) is None  # type: ignore[arg-type]
        normaliser = JetstreamNormaliser(KeyedPseudonymiser(keyring))
        assert recipe_for(elsewhere, normaliser, [], utcnow, 0.5) is None  # type: ignore[arg-type]
    on_disk = open_store(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        assert store_url_for_helper(on_disk) == f"sqlite:///{tmp_path / 'w.db'}"
        recipe = recipe_for(on_disk, JetstreamNormaliser(KeyedPseudonymiser(keyring)), [], utcnow, 0.5)
        assert recipe is not None and recipe.store_url == store_url_for_helper(on_disk)
    finally:
        on_disk.close()


def test_a_keyed_pseudonymiser_travels_as_the_place_of_its_keyring(keyring) -> None:
    pseudonymise = KeyedPseudonymiser(keyring, refresh_s=0.0)
    sent = pickle.dumps(pseudonymise)
    epoch, key = keyring.pseudonym_key()
    assert key not in sent and keyring.identity_key(epoch) not in sent  # no key material crosses over
    copy = pickle.loads(sent)
    assert copy("bluesky", "did:plc:abc") == pseudonymise("bluesky", "did:plc:abc")
    keyring.rotate()  # both pick the rotation up from the keyring
    assert copy("bluesky", "did:plc:abc") == pseudonymise("bluesky", "did:plc:abc")
    assert copy.epoch == pseudonymise.epoch == epoch + 1
