"""Benchmark of the whole embedded pipeline: Jetstream events -> normalise -> match ->
score -> SQLite (WAL, synchronous=FULL: durable commits, cursor in the same transaction).
Prints figures; asserts nothing.

    .venv/bin/python bench/pipeline.py            # full run (several minutes)
    .venv/bin/python bench/pipeline.py --quick    # about a minute or two
    .venv/bin/python bench/pipeline.py --quick --no-match-process   # without the match helper only

The pipeline is built as `watchfloor run` builds it: the match helper process normalises,
matches and seals (pipeline/match_process.py), the text-signal helper computes the matched
posts' signals, the pipeline's process reads, adds the signals and commits.

0. The machine: how much two busy processes get done together against one alone (what
   helper processes can gain at most; on this virtual machine well under 2).
1. Closed loop: events are handed to the pipeline as fast as it takes them; posts/s and
   events/s are the capacity. Measured as configured and, in the same run, for the baseline
   with normalising and matching in the pipeline's process (``--no-match-process``), runs of
   the two interleaved (``--repeats``); medians, and the ratio.
2. Open loop: Poisson arrivals at 25 %, 50 % and 80 % of that capacity, and at 10,000
   posts/s (the target) whatever the capacity; latency is from an event's *scheduled* arrival to
   the commit of its alert (so a late source counts against the pipeline), p50/p99/p99.9.
3. Watch updates: during a run, watches for words that are already in the stream are
   added to the store; latency is from the store write to the commit of the first alert.
4. The closed loop again at the other planted match rates (``--other-rates``, 1, 5 and
   25 % by default), one run each as configured: what more alerts cost.

Events come from ``workload.py`` (about 80 % non-post events, seven languages, emoji,
links, CJK) and are kept in memory, so what is measured is the pipeline, not a file or
network reader. ``--posts-only`` keeps the events the Jetstream source receives by
default (``wantedCollections`` posts: post creates and deletes, identity and account
events): 1.3 events per post in this workload instead of 5.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from measure import (
    core_scaling,
    load_average,
    machine,
    median,
    peak_rss_mib,
    percentile,
    process_cpu_seconds,
)
from watchfloor.config import DEFAULT_BATCH_INTERVAL_S, DEFAULT_BATCH_SIZE
from watchfloor.governance.keys import KEYS_DIR, Keyring
from watchfloor.governance.pseudonyms import KeyedPseudonymiser
from watchfloor.model import RawEvent, Watch, WatchStatus, utcnow
from watchfloor.pipeline import gc_pauses
from watchfloor.pipeline.match_process import MatchProcess
from watchfloor.pipeline.runner import Pipeline, PipelineStats
from watchfloor.sources.bluesky import JetstreamNormaliser
from watchfloor.store import IngestResult
from watchfloor.store.sqlite import SQLiteStore
from workload import NOW, make_events, make_watches

UPDATE_WORDS = tuple(f"freshword{n}q" for n in range(8))
# What the Jetstream source receives by default (wantedCollections: posts): post creates and
# deletes, and the identity and account events that Jetstream always sends.
WANTED_BY_DEFAULT = (b'"collection":"app.bsky.feed.post"', b'"kind":"identity"', b'"kind":"account"')


def wanted_by_default(payload: bytes) -> bool:
    return any(marker in payload for marker in WANTED_BY_DEFAULT)


class MemorySource:
    """Events from memory: as fast as they are taken, or at scheduled (Poisson) times."""

    platform = "bluesky"

    def __init__(self, name: str, payloads: list[bytes], arrivals: list[float] | None = None) -> None:
        self.name = name
        self.payloads = payloads
        self.arrivals = arrivals  # seconds after the start, one per event
        self.started_at = 0.0

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        loop = asyncio.get_running_loop()
        self.started_at = time.monotonic()
        received = utcnow()
        arrivals = self.arrivals
        for i in range(int(cursor or 0), len(self.payloads)):
            if arrivals is not None:
                wait = self.started_at + arrivals[i] - time.monotonic()
                if wait > 0.001:
                    await asyncio.sleep(wait)
                    received = utcnow()
            elif i % 1024 == 0:
                received = utcnow()
                await asyncio.sleep(0)
            yield RawEvent(self.name, "bluesky", str(i + 1), self.payloads[i], received)
        del loop


def post_index(payloads: list[bytes]) -> dict[str, int]:
    """native id -> event index of every post in the stream."""
    out = {}
    for i, payload in enumerate(payloads):
        event = json.loads(payload)
        commit = event.get("commit") or {}
        if commit.get("collection") == "app.bsky.feed.post" and commit.get("operation") == "create":
            out[f"at://{event['did']}/app.bsky.feed.post/{commit['rkey']}"] = i
    return out


def fresh_store(folder: Path, watches: list[Watch]) -> str:
    path = folder / f"bench-{random.randrange(10**9)}.db"
    setup = SQLiteStore(path, synchronous="OFF")
    setup.migrate()
    for watch in watches:
        setup.add_watch(watch)
    setup.close()
    Keyring(folder / KEYS_DIR).initialise("bench")  # the deployment's pseudonym and identity keys
    return str(path)


async def run_pipeline(
    path: str,
    payloads: list[bytes],
    arrivals: list[float] | None,
    args: argparse.Namespace,
    index: dict[str, int] | None = None,
    updates: list[Watch] | None = None,
) -> dict[str, object]:
    store = SQLiteStore(Path(path))  # synchronous=FULL: every commit is durable
    source = MemorySource(f"bench-{random.randrange(10**9)}", payloads, arrivals)
    # as `watchfloor run` builds it: the deployment's keyed pseudonymiser, which also seals
    # the matched posts' authors into each batch before it is committed
    pseudonymise = KeyedPseudonymiser(Keyring(Path(path).parent / KEYS_DIR))
    # as `watchfloor run` does by default: normalise, match and seal in a helper process
    match_process = MatchProcess() if args.match_process else None
    pipeline = Pipeline(
        source,
        JetstreamNormaliser(pseudonymise),
        store,
        batch_size=args.batch_size,
        batch_interval_s=args.batch_interval,
        queue_size=args.queue_size,
        match_process=match_process,
    )
    pipeline.before_commit.append(pseudonymise.seal_batch)
    if args.signal_process:  # as `watchfloor run` does by default (signals/text_process.py)
        await asyncio.to_thread(lambda: pipeline.signals.offload_texts().start().result())
    latencies: list[float] = []
    added: dict[int, float] = {}  # watch id -> when it was stored
    update_latency: dict[int, float] = {}

    def on_commit(result: IngestResult) -> None:
        now = time.monotonic()
        for alert in result.alerts_added:
            if index is not None and arrivals is not None:
                at = index.get(alert.post.native_id)
                if at is not None:
                    latencies.append(now - (source.started_at + arrivals[at]))
            if alert.watch_id in added and alert.watch_id not in update_latency:
                update_latency[alert.watch_id] = now - added[alert.watch_id]

    pipeline.on_commit.append(on_commit)

    async def add_watches() -> None:
        await asyncio.sleep(2.0)
        for watch in updates or []:
            stored = await asyncio.to_thread(store.add_watch, watch)
            added[stored.id or 0] = time.monotonic()
            await asyncio.sleep(1.0)

    # Start-up work that happens once per process is not part of the measurement:
    # compiling the watch set, and the character tables of non-ASCII folding.
    # (in the match helper, if there is one, which the first batch starts).
    if match_process is None:
        await asyncio.to_thread(pipeline.watch_sets.current)
    await asyncio.to_thread(pipeline.process, [RawEvent(source.name, "bluesky", "0", p, NOW) for p in payloads[:200]])
    pipeline.stats = PipelineStats()
    adder = asyncio.create_task(add_watches()) if updates else None
    text_helper = pipeline.signals.texts.helper_pid() if pipeline.signals.texts is not None else None
    match_helper = match_process.helper_pid() if match_process is not None else None
    start, cpu = time.monotonic(), time.process_time()
    text_cpu, match_cpu = process_cpu_seconds(text_helper), process_cpu_seconds(match_helper)
    stats = await pipeline.run()
    seconds, cpu = time.monotonic() - start, time.process_time() - cpu
    text_cpu = process_cpu_seconds(text_helper) - text_cpu
    match_cpu = process_cpu_seconds(match_helper) - match_cpu
    if adder is not None:
        adder.cancel()
    pipeline.signals.close_helper()
    if match_process is not None:
        fallbacks = match_process.fallbacks
        match_process.close()
        if fallbacks:
            print(f"  note: {fallbacks} batches were prepared in the pipeline (the match helper failed)")
    store.close()
    return {
        "seconds": seconds,
        "events": stats.events,
        "posts": stats.posts,
        "matched_posts": stats.matched_posts,
        "alerts": stats.alerts,
        "events_per_s": stats.events / seconds,
        "posts_per_s": stats.posts / seconds,
        "cpu_seconds": cpu,
        "text_helper_cpu_seconds": text_cpu,
        "match_helper_cpu_seconds": match_cpu,
        "posts_per_cpu_s": stats.posts / (cpu + match_cpu + text_cpu),
        "latencies": latencies,
        "update_latency_s": sorted(update_latency.values()),
        "updates_added": len(added),
    }


def median_run(runs: list[dict[str, object]]) -> dict[str, object]:
    """The run whose posts/s is the median of ``runs`` (the lower middle one of an even count),
    so that its CPU figures belong to the same run."""
    ordered = sorted(runs, key=lambda run: run["posts_per_s"])  # type: ignore[arg-type, return-value]
    return ordered[(len(ordered) - 1) // 2]


def poisson(rate: float, count: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    at, out = 0.0, []
    for _ in range(count):
        at += rng.expovariate(rate)
        out.append(at)
    return out


def update_watches(words: tuple[str, ...]) -> list[Watch]:
    """Watches for words planted in the stream (``extra_words``), to be added while it runs."""
    return [
        Watch(
            name=f"added while running {word}",
            query=word,
            purpose="benchmark",
            legal_basis="benchmark",
            owner="bench",
            created_at=NOW,
            status=WatchStatus.approved,
        )
        for word in words
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller samples (about a minute or two)")
    parser.add_argument("--watches", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=0.03, help="planted match rate")
    # `watchfloor run`'s defaults (config.toml may set others)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--batch-interval", type=float, default=DEFAULT_BATCH_INTERVAL_S, help="seconds")
    parser.add_argument("--queue-size", type=int, default=10_000)
    parser.add_argument(
        "--python-gc", action="store_true", help="keep Python's collector settings (no gc_pauses tuning)"
    )
    parser.add_argument(
        "--no-signal-process",
        dest="signal_process",
        action="store_false",
        help="compute the matched posts' signals in the pipeline, not in the helper process",
    )
    parser.add_argument(
        "--no-match-process",
        dest="match_process",
        action="store_false",
        help="normalise, match and seal in the pipeline's process, not in the match helper",
    )
    parser.add_argument(
        "--posts-only",
        action="store_true",
        help="only the events the Jetstream source receives by default (wantedCollections: posts, "
        "plus identity and account events): 1.3 events per post in this workload instead of 5",
    )
    parser.add_argument(
        "--repeats", type=int, help="closed-loop runs per configuration, interleaved (default 3, quick 2)"
    )
    parser.add_argument(
        "--other-rates",
        type=lambda text: [float(x) / 100 for x in text.split(",") if x],
        default=[0.01, 0.05, 0.25],
        metavar="PERCENTS",
        help="closed-loop runs at these planted match rates too, comma-separated percents "
        "(default 1,5,25; empty to skip)",
    )
    parser.add_argument("--events", type=int, help="events of the closed loop (default 1,000,000; quick 300,000)")
    parser.add_argument(
        "--closed-only",
        action="store_true",
        help="only the closed loop as configured, no baseline, open loop or other rates (bench/compare.py)",
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if args.repeats is None:
        args.repeats = 2 if args.quick else 3

    if not args.python_gc:
        gc_pauses.tune_for_streaming()  # as `watchfloor run` does; settled after the first compile
    closed_events = args.events or (300_000 if args.quick else 1_000_000)  # 6 s and 20 s at 10,000 posts/s
    open_seconds = 6.0 if args.quick else 20.0
    print(
        f"watchfloor pipeline benchmark — {machine()}, {'quick' if args.quick else 'full'} run, "
        f"load average {load_average():.1f}"
    )
    print(
        f"{args.watches:,} watches, planted match rate {args.rate:.0%}, "
        f"{'posts only (the default subscription), ' if args.posts_only else 'all collections, '}"
        f"batch size {args.batch_size}, "
        f"batch interval {args.batch_interval * 1000:.0f} ms, SQLite WAL synchronous=FULL"
    )
    scaling = 0.0 if args.closed_only else core_scaling()
    if scaling:
        print(f"two busy processes do {scaling:.2f}x the work of one on this machine (2.00 = two independent cores)")
    watches, recipes = make_watches(args.watches)
    figures: dict[str, object] = {
        "machine": machine(),
        "core_scaling": scaling,
        "quick": args.quick,
        "args": vars(args) | {"json": None},
    }
    with tempfile.TemporaryDirectory() as folder:
        template = fresh_store(Path(folder), watches)
        payloads = make_events(closed_events, recipes, args.rate, extra_words=UPDATE_WORDS, extra_share=0.01)
        if args.posts_only:
            payloads = [p for p in payloads if wanted_by_default(p)]
        index = post_index(payloads)

        def copy_store() -> str:
            target = Path(folder) / f"run-{random.randrange(10**9)}.db"
            target.write_bytes(Path(template).read_bytes())
            return str(target)

        # The closed loop, as configured and (the baseline) without the match helper (all but
        # the text signals in the pipeline's process), runs interleaved so that both see the same
        # moments of this shared machine; the figures are the medians.
        baseline_args = argparse.Namespace(**(vars(args) | {"match_process": False}))
        modes = [("as configured", args)]
        if args.match_process and not args.closed_only:
            modes.append(("no match helper", baseline_args))
        runs: dict[str, list[dict[str, object]]] = {label: [] for label, _ in modes}
        for n in range(args.repeats):
            for label, mode_args in modes:
                result = asyncio.run(run_pipeline(copy_store(), payloads, None, mode_args))
                runs[label].append({k: v for k, v in result.items() if k not in ("latencies", "update_latency_s")})
                print(
                    f"  closed loop, run {n + 1} {label}: {result['posts_per_s']:,.0f} posts/s "
                    f"({result['events_per_s']:,.0f} events/s)",
                    flush=True,
                )
        summary = {label: median_run(done) for label, done in runs.items()}
        closed = summary["as configured"]
        capacity = closed["events_per_s"]
        post_share = closed["posts"] / closed["events"]
        figures["closed_loop"] = closed
        figures["closed_loop_runs"] = runs
        parts = (("match helper", args.match_process), ("text helper", args.signal_process))
        mode = " + ".join(["pipeline", *(name for name, on in parts if on)])
        print(
            f"\nclosed loop ({mode}; medians of {args.repeats} runs): {closed['posts_per_s']:,.0f} posts/s "
            f"({closed['events_per_s']:,.0f} events/s), {closed['matched_posts'] / max(1, closed['posts']):.1%} "
            f"of posts matched, {closed['alerts']:,} alerts, {closed['seconds']:.1f} s; "
            f"peak RSS {peak_rss_mib():.0f} MiB"
        )
        cpu_head = "CPU: pipeline + match + text helper"
        print(f"{'':>24} {'posts/s':>9} {'events/s':>9} {cpu_head:>38} {'posts/CPU-s':>11}")
        for label, row in summary.items():
            cpu = (
                f"{row['cpu_seconds']:.1f} + {row['match_helper_cpu_seconds']:.1f} + "
                f"{row['text_helper_cpu_seconds']:.1f} s of {row['seconds']:.1f} s"
            )
            print(
                f"{label:>24} {row['posts_per_s']:>9,.0f} {row['events_per_s']:>9,.0f} {cpu:>38} "
                f"{row['posts_per_cpu_s']:>11,.0f}"
            )
        if len(summary) > 1:
            base = summary["no match helper"]
            ratio = closed["posts_per_s"] / base["posts_per_s"]
            pairs = [
                a["posts_per_s"] / b["posts_per_s"]
                for a, b in zip(runs["as configured"], runs["no match helper"], strict=True)
            ]
            figures["ratio_to_one_process"] = ratio
            print(
                f"  as configured / no match helper: {ratio:.2f}x (medians; run by run: "
                f"{', '.join(f'{x:.2f}' for x in pairs)}); two busy processes on this machine do "
                f"{scaling:.2f}x the work of one, which bounds what helper processes can gain"
            )

        if args.closed_only:
            if args.json:
                args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n", encoding="utf-8")
            return

        loads = [(f"{share:.0%} of capacity", capacity * share) for share in (0.25, 0.5, 0.8)]
        target_events = 10_000 / post_share
        loads.append(("10,000 posts/s", target_events))  # the target, offered whatever the capacity
        rows = []
        for label, rate in loads:
            count = min(len(payloads), int(rate * open_seconds))
            arrivals = poisson(rate, count, seed=len(rows))
            # analysts add watches while the stream runs: three at 50 % of capacity, three at 10,000 posts/s
            words = {"50% of capacity": UPDATE_WORDS[:3], "10,000 posts/s": UPDATE_WORDS[3:6]}.get(label, ())
            updates = update_watches(words) if words else None
            result = asyncio.run(run_pipeline(copy_store(), payloads[:count], arrivals, args, index, updates))
            lat = result["latencies"]
            row = {
                "load": label,
                "offered_events_per_s": rate,
                "offered_posts_per_s": rate * post_share,
                "achieved_posts_per_s": result["posts"] / arrivals[-1],
                "alerts": len(lat),
                "p50_ms": percentile(lat, 0.5) * 1000,
                "p99_ms": percentile(lat, 0.99) * 1000,
                "p999_ms": percentile(lat, 0.999) * 1000,
                "max_ms": max(lat, default=float("nan")) * 1000,
                "update_latency_s": result["update_latency_s"],
            }
            rows.append(row)
        figures["open_loop"] = rows
        print(f"\n{'offered load':>16} {'posts/s':>9} {'alerts':>7} {'p50 ms':>7} {'p99 ms':>7} {'p99.9 ms':>8}")
        for r in rows:
            print(
                f"{r['load']:>16} {r['offered_posts_per_s']:>9,.0f} {r['alerts']:>7} {r['p50_ms']:>7.1f} "
                f"{r['p99_ms']:>7.1f} {r['p999_ms']:>8.1f}"
            )
        if target_events >= capacity:
            print(
                f"10,000 posts/s ({target_events:,.0f} events/s) was above the capacity measured in the closed loop: "
                "the queue grows for as long as the run lasts, and so does the latency"
            )
        update = [s for r in rows for s in r["update_latency_s"]]
        figures["watch_update_s"] = update
        if update:
            print(
                f"\nwatch added to the store -> first alert committed: median {median(update) * 1000:.0f} ms, "
                f"max {max(update) * 1000:.0f} ms ({len(update)} watches, added while running at 50 % of capacity "
                "and at 10,000 posts/s)"
            )

        # The other planted match rates: more matches mean more alerts to explain,
        # score, add signals to and commit (one run each, as configured).
        rate_rows = []
        for rate in args.other_rates:
            count = 100_000 if args.quick else 300_000
            at_rate = make_events(count, recipes, rate)
            if args.posts_only:
                at_rate = [p for p in at_rate if wanted_by_default(p)]
            result = asyncio.run(run_pipeline(copy_store(), at_rate, None, args))
            rate_rows.append(
                {"planted": rate} | {k: v for k, v in result.items() if k not in ("latencies", "update_latency_s")}
            )
        figures["closed_loop_by_rate"] = rate_rows
        if rate_rows:
            print(f"\nclosed loop at other planted match rates (one run each, {mode}):")
            print(f"{'planted':>8} {'matched':>8} {'alerts':>7} {'posts/s':>9} {'events/s':>9} {'posts/CPU-s':>11}")
            for r in rate_rows:
                print(
                    f"{r['planted']:>8.0%} {r['matched_posts'] / max(1, r['posts']):>8.1%} {r['alerts']:>7,} "
                    f"{r['posts_per_s']:>9,.0f} {r['events_per_s']:>9,.0f} {r['posts_per_cpu_s']:>11,.0f}"
                )

        figures["peak_rss_mib"] = peak_rss_mib()
        figures["load_average_end"] = load_average()
        print(f"load average at the end: {load_average():.1f} (2 cores; above 2 means other work competed)")
        print(f"peak RSS of the benchmark process: {peak_rss_mib():.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
