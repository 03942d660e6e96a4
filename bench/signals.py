"""Cost per post of each signal, and what the signals stage adds to the pipeline.

    .venv/bin/python bench/signals.py                 # 3,000 synthetic demo posts
    .venv/bin/python bench/signals.py --posts 10000

Prints, on this machine:

1. each signal alone, in microseconds per post (median of 3 runs over the same posts):
   language identification, sentiment (VADER), toxicity + threat (one feature pass, two
   linear models), near-duplicate grouping (MinHash + LSH query and insert), burst counting;
   and the whole per-post stage (``SignalStage.for_post``);
2. the pipeline's CPU work (``Pipeline.process``: normalise, match, signals) per event
   with and without the signals stage, on the demo stream (10 % of posts match: far more
   than a real firehose, where signals run on the matched share only);
3. lazy language identification for ``lang:``: how many identifications matching asked
   for, and what they cost, when posts carry no language;
4. a full near-duplicate index (50,000 texts, ``--index-texts``): the objects the garbage
   collector must visit and how long a full collection then takes, against the baseline
   of the same signatures kept in datasketch's ``MinHashLSH`` (as the index did before).

The posts are the synthetic demo stream (watchfloor.sources.demo); nothing real.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import tempfile
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from datasketch import MinHash, MinHashLSH

from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import Post, RawEvent, Watch, WatchStatus, utcnow
from watchfloor.pipeline.runner import Pipeline
from watchfloor.signals.bursts import BurstDetector
from watchfloor.signals.language import LanguageIdentifier
from watchfloor.signals.near_duplicates import NearDuplicateIndex
from watchfloor.signals.sentiment import SentimentAnalyzer
from watchfloor.signals.stage import SignalStage
from watchfloor.signals.toxicity import load_classifier
from watchfloor.sources.bluesky import JetstreamNormaliser
from watchfloor.sources.demo import DEMO_EPOCH_US, demo_payload
from watchfloor.store import open_store


def demo_events(n: int, hit_share: float = 0.1) -> list[RawEvent]:
    now = datetime.now(UTC)
    return [
        RawEvent(
            "bench", "bluesky", str(i), demo_payload(i, hit_share=hit_share, time_us=DEMO_EPOCH_US + i * 1000), now
        )
        for i in range(n)
    ]


def demo_posts(n: int) -> list[Post]:
    normaliser = JetstreamNormaliser(HmacPseudonymiser(b"b" * 32))
    posts: list[Post] = []
    for event in demo_events(n * 4):  # about a third of demo events are posts
        item = normaliser.normalise(event)
        if isinstance(item, Post):
            posts.append(item)
            if len(posts) == n:
                break
    return posts


def per_post_us(work: Callable[[Post], object], posts: list[Post], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        for post in posts:
            work(post)
        times.append((time.perf_counter() - started) / len(posts) * 1e6)
    return statistics.median(times)


def signals_alone(posts: list[Post]) -> None:
    languages, vader, classifier = LanguageIdentifier(), SentimentAnalyzer(), load_classifier()
    languages.identify("warm up"), vader.compound("warm up")
    rows = [
        ("language (fastText lid.176.ftz)", per_post_us(lambda p: languages.identify(p.text), posts)),
        ("sentiment (VADER)", per_post_us(lambda p: vader.compound(p.text), posts)),
        (
            "toxicity + threat (hashed n-grams, 2 linear models)",
            per_post_us(lambda p: classifier.scores(p.text), posts),
        ),
    ]
    counter = iter(range(10**9))
    index = NearDuplicateIndex()
    rows.append(
        ("near-duplicates (MinHash 128 + LSH)", per_post_us(lambda p: index.add(str(next(counter)), p.text), posts))
    )
    bursts = BurstDetector()
    rows.append(
        (
            "bursts (count per watch and term)",
            per_post_us(lambda p: bursts.observe(1, ("flood", "river"), p.created_at), posts),
        )
    )
    stage = SignalStage()
    rows.append(("whole per-post stage (SignalStage.for_post)", per_post_us(stage.for_post, posts, runs=1)))
    print(f"\n1. each signal alone, {len(posts):,} synthetic posts (median of 3 runs)\n")
    print(f"   {'signal':<52} {'µs/post':>9} {'posts/s (1 core)':>17}")
    for name, us in rows:
        print(f"   {name:<52} {us:>9.1f} {1e6 / us:>17,.0f}")


def _store_with(folder: Path, name: str, queries: list[str]):
    store = open_store(f"sqlite:///{folder / name}.db")
    for i, query in enumerate(queries):
        store.add_watch(
            Watch(
                name=f"w{i}",
                query=query,
                purpose="bench",
                legal_basis="bench",
                owner="bench",
                expires_at=utcnow() + timedelta(days=1),
                status=WatchStatus.approved,
                approver="b",
            )
        )
    return store


class _Off(SignalStage):
    """The stage switched off: no signals computed, none handed to a helper."""

    def prepare(self, batch):
        return None

    def annotate(self, batch, watches, now, pending=None) -> None:
        return None

    def filter_languages(self, post) -> tuple[str, ...]:
        return ()


class _Source:
    name, platform = "bench", "bluesky"

    async def events(self, cursor):
        if False:
            yield None


def process_per_event_us(store, events: list[RawEvent], stage: SignalStage) -> tuple[float, int]:
    pipeline = Pipeline(_Source(), JetstreamNormaliser(HmacPseudonymiser(b"b" * 32)), store)
    pipeline.signals = stage
    pipeline.process(events[:500])  # warm up: compile the watch set, load the models
    stage.lazy_language_calls = 0
    started = time.perf_counter()
    matched = 0
    for k in range(0, len(events), 500):
        batch = pipeline.process(events[k : k + 500])
        matched += len(batch.posts)
    return (time.perf_counter() - started) / len(events) * 1e6, matched


def pipeline_cost(n: int) -> None:
    events = demo_events(n)
    queries = ['flood* OR evacuat* OR "bomb threat"', "(power OR outage) AND NOT test", "wildfire OR smoke"]
    print(f"\n2. Pipeline.process per event, {n:,} demo events (10 % of posts match), 3 watches\n")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for label, stage in (("without signals", _Off()), ("with signals", SignalStage())):
            store = _store_with(folder, label.replace(" ", "_"), queries)
            us, matched = process_per_event_us(store, events, stage)
            print(f"   {label:<20} {us:>8.1f} µs/event  {1e6 / us:>9,.0f} events/s  ({matched:,} matched posts)")
            store.close()


def lazy_language(posts: list[Post]) -> None:
    """Matching asks for a language only for posts without one that reach a lang: watch."""
    from watchfloor.query import compile_watch_set

    undeclared = [replace(p, lang=None, langs=()) for p in posts]
    print(f"\n3. lazy language identification while matching, {len(posts):,} posts\n")
    cases = [
        ("declared languages, lang:en watch", posts, ["(flood* OR evacuat*) lang:en"]),
        ("no languages, no lang: watch", undeclared, ["flood* OR evacuat*"]),
        ("no languages, lang:en watch", undeclared, ["(flood* OR evacuat*) lang:en"]),
        ("no languages, watch languages=(de,)", undeclared, ["flood* OR hochwasser OR evakuier*"]),
    ]
    for label, batch, queries in cases:
        watches = [
            Watch(
                name=f"w{i}",
                query=q,
                purpose="b",
                legal_basis="b",
                owner="b",
                id=i + 1,
                status=WatchStatus.approved,
                languages=("de",) if "languages=" in label else (),
            )
            for i, q in enumerate(queries)
        ]
        watch_set = compile_watch_set(watches)
        stage = SignalStage()
        stage.languages.identify("warm up")
        times = []
        for _ in range(3):
            stage._guesses.clear()
            stage.lazy_language_calls = 0
            started = time.perf_counter()
            for k in range(0, len(batch), 500):
                watch_set.match_many(batch[k : k + 500], detect_language=stage.filter_languages)
            times.append(time.perf_counter() - started)
        per_k = statistics.median(times) / len(batch) * 1000 * 1000
        print(f"   {label:<40} {stage.lazy_language_calls:>6} identifications  {per_k:>7.1f} ms per 1,000 posts")


def _tracked_and_pause(build: Callable[[], object]) -> tuple[object, int, float, float]:
    """What ``build()`` returns, the tracked objects it added, the seconds it took, and the
    median of three full collections with it alive."""
    gc.collect()
    before = len(gc.get_objects())
    started = time.perf_counter()
    built = build()
    took = time.perf_counter() - started
    gc.collect()
    tracked = len(gc.get_objects()) - before
    pauses = []
    for _ in range(3):
        started = time.perf_counter()
        gc.collect()
        pauses.append(time.perf_counter() - started)
    return built, tracked, took, statistics.median(pauses)


def full_index_and_the_collector(texts: int) -> None:
    """A full near-duplicate index, as the pipeline's process holds it after a while (or
    right after a warm start from the store), and what it costs each full collection."""
    print(f"\n4. a full near-duplicate index ({texts:,} texts) and the garbage collector\n")
    maker = NearDuplicateIndex()
    words = [f"w{n}" for n in range(5_000)]
    rng = random.Random(4)
    signatures = [maker.signature(" ".join(rng.choice(words) for _ in range(15))) for _ in range(texts)]

    def ours() -> NearDuplicateIndex:
        index = NearDuplicateIndex(max_items=texts)
        for n, minhash in enumerate(signatures):
            index.add_signature(f"k{n}", minhash)
        return index

    def datasketch_lsh() -> tuple[MinHashLSH, OrderedDict[str, tuple[MinHash, str]]]:
        # the baseline: how the index kept its texts before (MinHashLSH, and the newest texts in order)
        lsh, kept = MinHashLSH(threshold=maker.threshold, num_perm=maker.num_perm), OrderedDict()
        for n, minhash in enumerate(signatures):
            key = f"k{n}"
            lsh.query(minhash)
            lsh.insert(key, minhash, check_duplication=False)
            kept[key] = (minhash, key)
        return lsh, kept

    rows = [("NearDuplicateIndex", *_tracked_and_pause(ours)[1:])]
    rows.append(("baseline: datasketch MinHashLSH + OrderedDict", *_tracked_and_pause(datasketch_lsh)[1:]))
    print(f"   {'kept in':<48} {'tracked objects':>15} {'full collection':>16} {'µs per text added':>18}")
    for label, tracked, took, pause in rows:
        print(f"   {label:<48} {tracked:>15,} {pause * 1000:>13.0f} ms {took / texts * 1e6:>18.1f}")
    print(f"   a full collection with the baseline takes {rows[1][3] / rows[0][3]:.0f}x as long")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=3_000)
    parser.add_argument("--index-texts", type=int, default=50_000, help="texts in the full near-duplicate index (4.)")
    args = parser.parse_args()
    posts = demo_posts(args.posts)
    signals_alone(posts)
    pipeline_cost(args.posts * 2)
    lazy_language(posts)
    full_index_and_the_collector(args.index_texts)


if __name__ == "__main__":
    main()
