"""Benchmark of the store's ingest: ``commit_batch`` of pipeline-shaped batches on SQLite
(WAL, synchronous=FULL) and on PostgreSQL (COPY into staging tables, one transaction with
the cursor). Prints the median time per batch, posts/s and the ratio; asserts nothing.

    .venv/bin/python bench/store.py                     # 500-post batches, 40 of each
    .venv/bin/python bench/store.py --batch 100 --batches 100
    WATCHFLOOR_BENCH_PG=postgresql://user@host/postgres .venv/bin/python bench/store.py

A batch is what the pipeline commits: matched posts (real Jetstream posts from
``workload.py``, normalised), one alert per post, each post's signals (with a 128-byte
MinHash) and sealed author identity, 2 % upstream deletes of earlier posts, one dead
letter, the cursor. Every batch is new (no replays), so each one writes all of it. The
PostgreSQL database is created for the run and dropped afterwards; fsync and
synchronous_commit are whatever the server has (the defaults: durable commits).
"""

from __future__ import annotations

import argparse
import os
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from measure import load_average, machine, median, timed_runs_cpu
from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import (
    Alert,
    DeadLetter,
    Deletion,
    Explanation,
    Post,
    PostSignals,
    RawEvent,
    SealedIdentity,
    TermHit,
    Watch,
    WatchStatus,
)
from watchfloor.sources.bluesky import JetstreamNormaliser
from watchfloor.store import IngestBatch, Store, open_store
from workload import NOW, make_events

PG_SERVER = os.environ.get("WATCHFLOOR_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def posts_of_workload(count: int) -> list[Post]:
    """``count`` normalised posts (each native id once), from the seeded Jetstream workload."""
    normalise = JetstreamNormaliser(HmacPseudonymiser(b"k" * 32)).normalise
    posts: dict[str, Post] = {}
    events = 0
    while len(posts) < count:
        for i, payload in enumerate(make_events(count * 6, [], 0.0, seed=events)):
            item = normalise(RawEvent("bench", "bluesky", str(i), payload, NOW))
            if isinstance(item, Post):
                posts.setdefault(item.native_id, item)
        events += 1
    return list(posts.values())[:count]


def batches(posts: list[Post], watch_id: int, size: int) -> list[IngestBatch]:
    out = []
    explanation = Explanation(hits=(TermHit("flood*", "prefix", ((0, 5),)),), score_parts=(("match", 0.5),))
    for n, start in enumerate(range(0, len(posts), size)):
        chunk = posts[start : start + size]
        earlier = posts[max(0, start - size) : start]
        batch = IngestBatch(source="bench", cursor=str(start + len(chunk)), events=len(chunk) * 5)
        batch.posts = chunk
        batch.alerts = [
            Alert(watch_id=watch_id, post=p.key, score=0.5, explanation=explanation, created_at=NOW,
                  due_at=NOW + timedelta(hours=1))
            for p in chunk
        ]  # fmt: skip
        batch.signals = [
            PostSignals(p.key, NOW, lang="en", lang_confidence=0.9, sentiment=0.1, toxicity=0.02, threat=0.01,
                        near_duplicate_group=f"g:{i % 97:016x}", minhash=secrets.token_bytes(128))
            for i, p in enumerate(chunk)
        ]  # fmt: skip
        batch.identities = [
            SealedIdentity(p.author, 1, secrets.token_bytes(12), secrets.token_bytes(48), NOW) for p in chunk
        ]
        batch.deletions = [Deletion(p.platform, p.native_id, NOW) for p in earlier[:: 50]]
        batch.dead_letters = [DeadLetter("bench", "bluesky", f"invalid JSON in batch {n}", b"{not json", NOW)]
        out.append(batch)
    return out


def measure(store: Store, size: int, count: int) -> tuple[float, float]:
    """Median wall and CPU seconds of one commit_batch (the first batches warm up, not counted)."""
    watch = store.add_watch(
        Watch(name="bench", query="flood*", purpose="benchmark", legal_basis="synthetic", owner="bench",
              status=WatchStatus.approved, approver="bench", expires_at=NOW + timedelta(days=365))
    )  # fmt: skip
    warm = 3
    todo = iter(batches(posts_of_workload(size * (count + warm)), watch.id or 0, size))
    for _ in range(warm):
        store.commit_batch(next(todo))
    runs = timed_runs_cpu(lambda: store.commit_batch(next(todo)), count)
    stored = store.counts()
    assert stored.alerts == size * (count + warm) and stored.dead_letters == count + warm
    return median([w for w, _ in runs]), median([c for _, c in runs])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=500, help="posts per batch")
    parser.add_argument("--batches", type=int, default=40, help="measured batches per backend")
    args = parser.parse_args()
    print(f"machine: {machine()}, load {load_average():.2f}")
    print(f"commit_batch of {args.batch} posts (+ alerts, signals, identities, 2 % deletes), median of {args.batches}")
    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        sqlite = open_store(f"sqlite:///{Path(folder) / 'bench.db'}")
        results["SQLite"] = measure(sqlite, args.batch, args.batches)
        sqlite.close()
    name = f"wf_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_SERVER, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} ENCODING 'UTF8' TEMPLATE template0")  # type: ignore[arg-type]
        try:
            pg = open_store(urlunsplit(urlsplit(PG_SERVER)._replace(path=f"/{name}")))
            results["PostgreSQL"] = measure(pg, args.batch, args.batches)
            pg.close()
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")  # type: ignore[arg-type]
    for backend, (wall, cpu) in results.items():
        print(
            f"  {backend:<10} {wall * 1000:7.1f} ms/batch   {args.batch / wall:9,.0f} posts/s"
            f"   (this process's CPU {cpu * 1000:.1f} ms/batch)"
        )
    ratio = results["SQLite"][0] / results["PostgreSQL"][0]
    print(f"  PostgreSQL/SQLite posts/s: {ratio:.2f}")


if __name__ == "__main__":
    main()
