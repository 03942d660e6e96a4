"""Where a batch's time goes in the embedded pipeline, batch by batch, at a given load.
Prints figures; asserts nothing.

    .venv/bin/python bench/batch_stages.py                       # 10,000 posts/s, all collections
    .venv/bin/python bench/batch_stages.py --posts-only --repeats 4
    .venv/bin/python bench/batch_stages.py --rate 5000 --batch-interval 0.01

The pipeline is built as ``bench/pipeline.py`` builds it (as ``watchfloor run`` does: the
match helper and the text-signal helper). Events arrive with Poisson arrivals at ``--rate``
posts/s for ``--seconds``; each run is a fresh pipeline and store. For every batch the
script notes when the pipeline took it from its queue, when the match helper's result was
adopted, when adding its signals started and ended (that waits for the text helper), and
when its commit started and ended, and prints the p50/p90/p99 of each step, with the
ingest-to-alert latency of the run. Runs are repeated because on a shared machine the same
load gives very different tails from one minute to the next.

The timestamps are taken by wrapping the pipeline's methods in this process (the script's
own instrumentation; ``watchfloor run`` has none of it).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pipeline as bench
from measure import load_average, machine, percentile
from watchfloor.config import DEFAULT_BATCH_INTERVAL_S, DEFAULT_BATCH_SIZE
from watchfloor.pipeline import gc_pauses, processing, runner
from watchfloor.store.sqlite import SQLiteStore
from workload import make_events, make_watches

STEPS = (
    ("taken", "prepared", "in the match helper (hand-over, normalise, match, seal, take back)"),
    ("prepared", "finish_start", "waiting for the batch before it to have its signals"),
    ("finish_start", "finished", "adding the signals (waits for the text helper)"),
    ("finished", "commit_start", "waiting for the batch before it to be committed"),
    ("commit_start", "committed", "the SQLite commit (durable)"),
    ("taken", "committed", "the whole batch, taken to committed"),
)


class Stages:
    """When each batch (by its cursor) reached each step."""

    def __init__(self) -> None:
        self.at: dict[str, dict[str, float]] = {}

    def mark(self, cursor: str | None, step: str) -> None:
        self.at.setdefault(str(cursor), {})[step] = time.monotonic()

    def install(self) -> Callable[[], None]:
        """Wrap the pipeline's methods to mark the steps; returns what undoes it."""
        marks = self
        in_order, adopt = runner.Pipeline._in_order, runner.Pipeline._adopt
        finish, commit = processing.EventProcessor.finish, SQLiteStore.commit_batch

        async def traced_in_order(self: Any, previous: Any, finished: Any, events: Any, recipe: Any) -> None:
            marks.mark(events[-1].cursor, "taken")
            await in_order(self, previous, finished, events, recipe)

        def traced_adopt(self: Any, matched: Any, events: int) -> Any:
            marks.mark(matched.batch.cursor, "prepared")
            return adopt(self, matched, events)

        def traced_finish(self: Any, prepared: Any) -> Any:
            marks.mark(prepared.batch.cursor, "finish_start")
            done = finish(self, prepared)
            marks.mark(prepared.batch.cursor, "finished")
            return done

        def traced_commit(self: Any, batch: Any) -> Any:
            marks.mark(batch.cursor, "commit_start")
            result = commit(self, batch)
            marks.mark(batch.cursor, "committed")
            return result

        runner.Pipeline._in_order = traced_in_order  # type: ignore[method-assign]
        runner.Pipeline._adopt = traced_adopt  # type: ignore[method-assign]
        processing.EventProcessor.finish = traced_finish  # type: ignore[method-assign]
        SQLiteStore.commit_batch = traced_commit  # type: ignore[method-assign]

        def undo() -> None:
            runner.Pipeline._in_order = in_order  # type: ignore[method-assign]
            runner.Pipeline._adopt = adopt  # type: ignore[method-assign]
            processing.EventProcessor.finish = finish  # type: ignore[method-assign]
            SQLiteStore.commit_batch = commit  # type: ignore[method-assign]

        return undo

    def step_ms(self, start: str, end: str) -> list[float]:
        return [(s[end] - s[start]) * 1000 for s in self.at.values() if start in s and end in s]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=10_000, help="offered posts/s (default 10,000)")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--posts-only", action="store_true", help="the events of the default subscription only")
    parser.add_argument("--watches", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--batch-interval", type=float, default=DEFAULT_BATCH_INTERVAL_S, help="seconds")
    args = parser.parse_args()
    run_args = argparse.Namespace(
        batch_size=args.batch_size,
        batch_interval=args.batch_interval,
        queue_size=10_000,
        signal_process=True,
        match_process=True,
    )
    gc_pauses.tune_for_streaming()
    print(f"batch stages — {machine()}, load average {load_average():.1f}")
    watches, recipes = make_watches(args.watches)
    payloads = make_events(int(args.rate * 5 * args.seconds) + 1000, recipes, 0.03)
    if args.posts_only:
        payloads = [p for p in payloads if bench.wanted_by_default(p)]
    index = bench.post_index(payloads)
    rate = args.rate * len(payloads) / max(1, len(index))  # events/s that carry the offered posts/s
    count = min(len(payloads), int(rate * args.seconds))
    print(
        f"{args.rate:,.0f} posts/s offered ({rate:,.0f} events/s, "
        f"{'posts only' if args.posts_only else 'all collections'}), {args.seconds:.0f} s per run, "
        f"batch size {args.batch_size}, batch interval {args.batch_interval * 1000:.0f} ms"
    )
    with tempfile.TemporaryDirectory() as folder:
        template = bench.fresh_store(Path(folder), watches)
        for n in range(args.repeats):
            stages = Stages()
            undo = stages.install()
            path = Path(folder) / f"run-{n}.db"
            path.write_bytes(Path(template).read_bytes())
            try:
                arrivals = bench.poisson(rate, count, seed=n)
                result = asyncio.run(bench.run_pipeline(str(path), payloads[:count], arrivals, run_args, index))
            finally:
                undo()
            latencies = [s * 1000 for s in result["latencies"]]  # type: ignore[union-attr]
            print(
                f"\nrun {n + 1}: {len(stages.at)} batches, ingest-to-alert p50 {percentile(latencies, 0.5):.0f} ms, "
                f"p99 {percentile(latencies, 0.99):.0f} ms ({len(latencies):,} alerts); load average "
                f"{load_average():.1f}"
            )
            print(f"  {'step':<68} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7}")
            for start, end, label in STEPS:
                ms = stages.step_ms(start, end)
                print(
                    f"  {label:<68} {percentile(ms, 0.5):>7.1f} {percentile(ms, 0.9):>7.1f} "
                    f"{percentile(ms, 0.99):>7.1f}"
                )


if __name__ == "__main__":
    main()
