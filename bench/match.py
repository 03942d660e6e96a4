"""Benchmark of the matching engine alone: compile time, posts/s, RSS, watch-update latency,
and a naive baseline (Python ``re``, one watch at a time) with the speed ratio and hit-count
agreement.  Prints figures; asserts nothing.

    .venv/bin/python bench/match.py            # full run (several minutes)
    .venv/bin/python bench/match.py --quick    # about a minute or two

Posts come from the seeded Jetstream-shaped stream of ``workload.py`` (about 80 % of the
events are not posts; posts in seven languages with emoji, links and CJK/Thai text) and
are normalised by the real Jetstream normaliser before timing starts.  Throughput is
closed-loop: batches of 500 posts matched back to back, the median of several runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from baseline import NaiveMatcher
from measure import load_average, machine, median, peak_rss_mib, rss_mib, timed_runs, timed_runs_cpu
from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import Post, RawEvent, Watch, WatchStatus
from watchfloor.query import IncrementalWatchSet, compile_watch_set
from watchfloor.sources.bluesky import JetstreamNormaliser
from workload import NOW, make_events, make_watches

BATCH = 500
RATES = (0.01, 0.03, 0.05, 0.25)


def posts_of(payloads: list[bytes]) -> list[Post]:
    normaliser = JetstreamNormaliser(HmacPseudonymiser(b"bench-secret-" * 3))
    out = []
    for i, payload in enumerate(payloads):
        item = normaliser.normalise(RawEvent("bench", "bluesky", str(i), payload, NOW))
        if isinstance(item, Post):
            out.append(item)
    return out


def throughput(watch_set: object, posts: list[Post], repeats: int) -> tuple[float, float, list[list[int]]]:
    """Median posts/s (wall clock, and per CPU-second) of matching ``posts`` in batches,
    and the watch ids hit per post."""
    match_many = watch_set.match_many  # type: ignore[attr-defined]
    match_many(posts[:BATCH], now=NOW)  # warm up: character tables, caches

    def run() -> None:
        for k in range(0, len(posts), BATCH):
            match_many(posts[k : k + BATCH], now=NOW)

    runs = timed_runs_cpu(run, repeats)
    wall, cpu = median([w for w, _ in runs]), median([c for _, c in runs])
    found: list[list[int]] = []
    for k in range(0, len(posts), BATCH):
        found += [[h.watch_id for h in hits] for hits in match_many(posts[k : k + BATCH], now=NOW)]
    return len(posts) / wall, len(posts) / cpu, found


def scale_run(watches_count: int, events: int, repeats: int) -> dict[str, float]:
    """One watch-set size, measured in this (fresh) process: compile time, RSS, posts/s at 3 %."""
    before = rss_mib()
    watches, recipes = make_watches(watches_count)
    payloads = make_events(events, recipes, 0.03)
    posts = posts_of(payloads)
    del payloads
    data_rss = rss_mib()
    start = time.perf_counter()
    watch_set = compile_watch_set(watches)
    compile_s = time.perf_counter() - start
    compiled_rss = rss_mib()
    rate, cpu_rate, found = throughput(watch_set, posts, repeats)
    return {
        "watches": watches_count,
        "compile_s": compile_s,
        "rss_mib": rss_mib(),
        "peak_rss_mib": peak_rss_mib(),
        "set_rss_mib": compiled_rss - data_rss,
        "base_rss_mib": before,
        "posts_per_s": rate,
        "posts_per_cpu_s": cpu_rate,
        "match_share": sum(1 for f in found if f) / len(posts),
        "posts": len(posts),
    }


def in_child(watches_count: int, events: int, repeats: int) -> dict[str, float]:
    command = [sys.executable, __file__, "--scale-child", str(watches_count), str(events), str(repeats)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def update_latency(watches: list[Watch], samples: int) -> dict[str, float]:
    """How long until a new or edited watch matches, on a live incremental set."""
    watch_set = IncrementalWatchSet(watches, max_delta=10**9)
    first_id = max(w.id or 0 for w in watches) + 1
    visible: list[float] = []
    for n in range(samples):
        word = f"updateword{n}x"
        watch = Watch(
            name=f"new {n}",
            query=f'{word} OR "{word} alert"',
            purpose="benchmark",
            legal_basis="benchmark",
            owner="bench",
            created_at=NOW,
            status=WatchStatus.approved,
            id=first_id + n,
        )
        post = Post(
            platform="bluesky",
            native_id=f"u{n}",
            version="1",
            created_at=NOW,
            received_at=NOW,
            text=f"something about {word} here",
            author="p:0000000000000000",
        )
        start = time.perf_counter()
        watch_set.upsert(watch)
        hits = watch_set.match(post, now=NOW)
        visible.append(time.perf_counter() - start)
        assert [h.watch_id for h in hits] == [watch.id], hits
    start = time.perf_counter()
    watch_set.rebuild(wait=True)
    rebuild_s = time.perf_counter() - start
    return {
        "median_ms": median(visible) * 1000,
        "max_ms": max(visible) * 1000,
        "delta_watches": samples,
        "background_rebuild_s": rebuild_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller samples (about a minute or two)")
    parser.add_argument("--watches", type=int, default=10_000)
    parser.add_argument("--scale-watches", type=int, default=100_000)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--scale-child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scale_child:
        print(json.dumps(scale_run(*args.scale_child)))
        return

    events = 60_000 if args.quick else 300_000
    repeats = 3 if args.quick else 5
    naive_posts = 200 if args.quick else 1000
    figures: dict[str, object] = {"machine": machine(), "quick": args.quick, "watches": args.watches}
    print(
        f"watchfloor match benchmark — {machine()}, {'quick' if args.quick else 'full'} run, "
        f"load average {load_average():.1f}"
    )

    watches, recipes = make_watches(args.watches)
    compile_times = timed_runs(lambda: compile_watch_set(watches), 1 if args.quick else 3)
    start = time.perf_counter()
    IncrementalWatchSet(watches)
    figures["compile_s"] = median(compile_times)
    figures["incremental_compile_s"] = time.perf_counter() - start
    watch_set = compile_watch_set(watches)
    print(f"\ncompile {args.watches:,} watches: {figures['compile_s']:.2f} s (median)")

    naive = NaiveMatcher(watches)
    rows = []
    for rate in RATES:
        posts = posts_of(make_events(events, recipes, rate))
        posts_per_s, posts_per_cpu_s, found = throughput(watch_set, posts, repeats)
        sample = posts[:naive_posts]
        start = time.perf_counter()
        naive_found = [naive.match(post) for post in sample]
        naive_per_s = len(sample) / (time.perf_counter() - start)
        engine_hits = sum(len(f) for f in found[: len(sample)])
        naive_hits = sum(len(f) for f in naive_found)
        agree = found[: len(sample)] == naive_found
        row = {
            "planted_rate": rate,
            "posts": len(posts),
            "match_share": sum(1 for f in found if f) / len(posts),
            "posts_per_s": posts_per_s,
            "posts_per_cpu_s": posts_per_cpu_s,
            "naive_posts": len(sample),
            "naive_posts_per_s": naive_per_s,
            "ratio": posts_per_s / naive_per_s,
            "engine_hits": engine_hits,
            "naive_hits": naive_hits,
            "hits_agree": agree,
        }
        rows.append(row)
    figures["rates"] = rows
    head = f"{'planted':>8} {'matched':>8} {'posts':>7} {'posts/s':>10} {'/CPU-s':>8} {'naive/s':>8} {'ratio':>7}"
    print(f"\n{head}  hits (engine=naive)")
    for r in rows:
        print(
            f"{r['planted_rate']:>8.0%} {r['match_share']:>8.1%} {r['posts']:>7,} {r['posts_per_s']:>10,.0f} "
            f"{r['posts_per_cpu_s']:>8,.0f} "
            f"{r['naive_posts_per_s']:>8,.0f} {r['ratio']:>6,.0f}x  {r['engine_hits']}={r['naive_hits']} "
            f"on {r['naive_posts']} posts: {'agree' if r['hits_agree'] else 'DISAGREE'}"
        )

    latency = update_latency(watches, 10 if args.quick else 30)
    figures["update"] = latency
    print(
        f"\nwatch update (upsert into {args.watches:,}, visible to the next match): "
        f"median {latency['median_ms']:.1f} ms, max {latency['max_ms']:.1f} ms; "
        f"background rebuild folding {latency['delta_watches']} changes: {latency['background_rebuild_s']:.2f} s"
    )

    scale_events = 30_000 if args.quick else 150_000
    small = in_child(args.watches, scale_events, repeats)
    large = in_child(args.scale_watches, scale_events, repeats)
    figures["scale"] = [small, large]
    head = f"{'watches':>8} {'compile s':>9} {'RSS MiB':>8} {'set MiB':>8} {'posts/s':>9} {'/CPU-s':>8} {'matched':>8}"
    print(f"\n{head}   (fresh processes, 3 %)")
    for s in (small, large):
        print(
            f"{s['watches']:>8,} {s['compile_s']:>9.1f} {s['peak_rss_mib']:>8.0f} {s['set_rss_mib']:>8.0f} "
            f"{s['posts_per_s']:>9,.0f} {s['posts_per_cpu_s']:>8,.0f} {s['match_share']:>8.1%}"
        )
    print(
        f"slowdown {args.scale_watches:,} vs {args.watches:,}: {small['posts_per_s'] / large['posts_per_s']:.2f}x "
        f"(per CPU-second: {small['posts_per_cpu_s'] / large['posts_per_cpu_s']:.2f}x)"
    )
    print(f"load average at the end: {load_average():.1f} (2 cores; above 2 means other work competed)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
