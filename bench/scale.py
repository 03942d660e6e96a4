"""Benchmark of the scale-out deployment: ingest -> NATS JetStream -> workers -> PostgreSQL.
Prints figures; asserts nothing; never run by the test suite.

    .venv/bin/python bench/scale.py --quick    # a minute or two
    .venv/bin/python bench/scale.py            # full run (several minutes)
    .venv/bin/python bench/scale.py --nats nats://127.0.0.1:4222   # the shared local server
    .venv/bin/python bench/scale.py --quick --posts-only           # post events only (wantedCollections)
    .venv/bin/python bench/scale.py --quick --profile worker.prof  # where one worker's time goes

Every process is real and separate, as in a deployment: one ingest process
(:class:`~watchfloor.pipeline.ingest.BusPublisher`, the code of ``watchfloor ingest``) and
1 or 2 worker processes (:class:`~watchfloor.pipeline.worker.Worker`, the code of
``watchfloor worker``, without the duties), with NATS JetStream between them and PostgreSQL
behind. Events are the seeded Jetstream-shaped stream of ``workload.py`` (about 80 %
non-post events), 10,000 watches, 3 % of posts planted to match.

1. **Closed loop**: a backlog is published first (ingest's CPU and the NATS server's for
   publishing are measured here); then the workers start together and drain it. Throughput
   is events / (last commit - start), for 1 and for 2 workers, median of several runs.
2. **Latency**: 2 workers running, ingest publishes with Poisson arrivals at a few rates
   below the 2-worker capacity; latency is from an event's *scheduled* publish time to the
   commit of its alert in PostgreSQL (measured in the worker, after ``commit_batch``
   returned), p50/p99/p99.9.
3. **PostgreSQL write rate**: posts and alerts committed per second and the time of each
   ``commit_batch`` in the workers; beside it, the SQLite baseline: the embedded pipeline
   (``bench/pipeline.py``'s closed loop, one process, SQLite WAL synchronous=FULL) on the
   same events.
4. **Cost per 1,000 events** in CPU-seconds, for a worker (its own process time), ingest
   (its own), the NATS server and PostgreSQL (read from ``/proc/<pid>/stat``: the server
   process, and the backends serving this benchmark's database), from which
   docs/performance.md projects a larger cluster.

The machine is shared, so wall-clock figures are noisy: the CPU-time figures are the
steadier ones. Load averages at start and end are printed.

By default a private ``nats-server -js`` is started on a free port (store in a temporary
folder), so its CPU time is this benchmark's alone; ``--nats URL`` uses a running server
instead (streams under a prefix of their own, deleted afterwards; its CPU is then read from
the process listening on that port and may include other users' work). Each run gets a
fresh PostgreSQL database (copied from a template holding the watches); all of them are
dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import os
import pstats
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from measure import machine, median, percentile
from pipeline import MemorySource, fresh_store, poisson, post_index, run_pipeline
from watchfloor.governance.pseudonyms import HmacPseudonymiser
from watchfloor.model import RawEvent
from watchfloor.pipeline.bus import BusSettings
from watchfloor.pipeline.bus_nats import NatsBus
from watchfloor.pipeline.ingest import BusPublisher
from watchfloor.pipeline.worker import Worker
from watchfloor.sources.bluesky import JetstreamNormaliser
from watchfloor.store import IngestBatch, IngestResult
from watchfloor.store.postgresql import PostgreSQLStore
from workload import NOW, make_events, make_watches

SECRET = b"bench-secret-" * 3  # the same pseudonymiser as bench/pipeline.py
PG_SERVER = os.environ.get("WATCHFLOOR_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
CLK_TCK = os.sysconf("SC_CLK_TCK")
GROUP = "workers"
PLATFORM = "bluesky"
POST_COLLECTION = b'"collection":"app.bsky.feed.post"'


# --------------------------------------------------------------------------- /proc


def proc_cpu_s(pid: int) -> float:
    """CPU-seconds (user + system) a process has used so far; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15)


def pid_listening_on(port: int) -> int | None:
    """The nats-server process whose command line names ``port`` (for a server we did not start)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if args and args[0].endswith(b"nats-server"):
            text = b" ".join(args).decode(errors="replace")
            if f"-p {port}" in text or f"--port {port}" in text or (port == 4222 and " -p " not in text):
                return int(entry.name)
    return None


class PgCpu:
    """CPU time of the PostgreSQL backends serving one database (read from /proc)."""

    def __init__(self, admin: psycopg.Connection[Any], database: str) -> None:
        self.admin, self.database = admin, database

    def snapshot(self) -> dict[int, float]:
        rows = self.admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (self.database,)
        ).fetchall()
        return {int(pid): proc_cpu_s(int(pid)) for (pid,) in rows}

    @staticmethod
    def spent(before: dict[int, float], after: dict[int, float]) -> float:
        return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


# --------------------------------------------------------------------------- child processes


def read_payloads(path: Path, count: int | None = None) -> list[bytes]:
    lines = path.read_bytes().split(b"\n")
    return lines[:count] if count is not None else lines


def start_profiling() -> list[cProfile.Profile]:
    """cProfile in this thread and in every thread the default executor starts from now on
    (the worker processes and commits its batches in ``asyncio.to_thread``)."""
    profiles: list[cProfile.Profile] = []

    def profile_this_thread() -> None:
        profile = cProfile.Profile()
        profiles.append(profile)
        profile.enable()

    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(initializer=profile_this_thread))
    profile_this_thread()
    return profiles


def save_profile(profiles: list[cProfile.Profile], path: Path) -> None:
    profiles[0].disable()
    for profile in profiles[1:]:
        profile.create_stats()
    pstats.Stats(*profiles).dump_stats(path)


async def worker_role(args: argparse.Namespace) -> None:
    """One worker process: warm up, say "ready", wait for "go" on stdin, consume until SIGTERM."""
    bus = NatsBus(args.nats, BusSettings(prefix=args.prefix), name="bench worker")
    store = PostgreSQLStore(args.db)
    worker = Worker(
        bus, store, {PLATFORM: JetstreamNormaliser(HmacPseudonymiser(SECRET))}, group=GROUP, batch_size=args.batch_size
    )
    commit_s: list[float] = []
    alert_times: list[tuple[str, float]] = []
    marks = {"cpu": 0.0, "wall": 0.0, "first_wall": 0.0}
    commit = store.commit_batch

    def timed_commit(batch: IngestBatch) -> IngestResult:
        started = time.perf_counter()
        result = commit(batch)
        commit_s.append(time.perf_counter() - started)
        return result

    store.commit_batch = timed_commit  # type: ignore[method-assign]

    def on_commit(result: IngestResult) -> None:
        now = time.time()
        marks["cpu"], marks["wall"] = time.process_time(), now
        marks["first_wall"] = marks["first_wall"] or now
        seen: set[str] = set()
        for alert in result.alerts_added:
            if alert.post.native_id not in seen:
                seen.add(alert.post.native_id)
                alert_times.append((alert.post.native_id, now))

    worker.on_commit.append(on_commit)
    # Once per process, not measured: compiling the watch set and warming the normaliser.
    await asyncio.to_thread(worker.watch_sets.current)
    warm = [RawEvent("warm", PLATFORM, "0", p, NOW) for p in read_payloads(args.payloads, 300)]
    await asyncio.to_thread(worker.processors[PLATFORM].process_events, warm, source="warm", cursor=None)
    await bus.connect()
    base = (worker.stats.events, worker.stats.posts, worker.stats.matched_posts)
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    profiles = start_profiling() if args.profile else []
    go_wall, go_cpu = time.time(), time.process_time()
    stats = await worker.run(stop)
    if profiles:
        save_profile(profiles, args.profile)
    await bus.close()
    store.close()
    args.out.write_text(
        json.dumps(
            {
                "go_wall": go_wall,
                "first_commit_wall": marks["first_wall"],
                "last_commit_wall": marks["wall"],
                "cpu_s": (marks["cpu"] - go_cpu) if marks["wall"] else 0.0,
                "events": stats.events - base[0],
                "posts": stats.posts - base[1],
                "matched_posts": stats.matched_posts - base[2],
                "alerts": stats.alerts,
                "batches": stats.batches,
                "commit_s": commit_s,
                "alert_times": alert_times,
                "redeliveries": worker.redeliveries,
            }
        )
    )


async def ingest_role(args: argparse.Namespace) -> None:
    """The ingest process: publish ``--count`` events (as fast as possible, or Poisson at ``--rate``)."""
    payloads = read_payloads(args.payloads, args.count)
    arrivals = poisson(args.rate, len(payloads), seed=args.seed) if args.rate else None
    bus = NatsBus(args.nats, BusSettings(prefix=args.prefix), name="bench ingest")
    store = PostgreSQLStore(args.db)
    await bus.connect()
    source = MemorySource(f"bench-{args.prefix}", payloads, arrivals)
    publisher = BusPublisher(source, bus, store)
    wall, cpu = time.monotonic(), time.process_time()
    stats = await publisher.run()
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    await bus.close()
    store.close()
    started_wall = time.time() - (time.monotonic() - source.started_at)
    args.out.write_text(
        json.dumps(
            {
                "events": stats.events,
                "seconds": wall,
                "cpu_s": cpu,
                "started_wall": started_wall,
                "duplicates": publisher.duplicates,
                "retries": publisher.retries,
            }
        )
    )


# --------------------------------------------------------------------------- the conductor


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Bench:
    """Owns the NATS server (when private), the template database and every run's database."""

    def __init__(self, args: argparse.Namespace, folder: Path) -> None:
        self.args, self.folder = args, folder
        self.nats_proc: subprocess.Popen[bytes] | None = None
        self.admin = psycopg.connect(PG_SERVER, autocommit=True)
        self.databases: list[str] = []
        self.prefixes: list[str] = []
        self.template = ""
        self.payload_file = folder / "payloads.jsonl"
        if args.nats == "private":
            port = free_port()
            self.nats_proc = subprocess.Popen(
                ["/usr/sbin/nats-server", "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", str(folder / "js")],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.nats_url, self.nats_pid = f"nats://127.0.0.1:{port}", self.nats_proc.pid
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
                time.sleep(0.05)
        else:
            self.nats_url = args.nats
            port = urlsplit(args.nats).port or 4222
            found = pid_listening_on(port)
            if found is None:
                raise SystemExit(f"cannot find the nats-server process for port {port} (its CPU time is measured)")
            self.nats_pid = found

    def db_url(self, name: str) -> str:
        return urlunsplit(urlsplit(PG_SERVER)._replace(path=f"/{name}"))

    def make_template(self, watches: list[Any]) -> None:
        self.template = f"wf_scale_tpl_{secrets.token_hex(4)}"
        self.admin.execute(f"CREATE DATABASE {self.template} ENCODING 'UTF8' TEMPLATE template0")
        self.databases.append(self.template)
        # Setting up is not measured: 10,000 single-watch commits need not each wait for a WAL flush.
        self.admin.execute(f"ALTER DATABASE {self.template} SET synchronous_commit = off")
        store = PostgreSQLStore(self.db_url(self.template))
        store.migrate()
        for watch in watches:
            store.add_watch(watch)
        store.close()
        self.admin.execute(f"ALTER DATABASE {self.template} RESET synchronous_commit")  # runs commit durably

    def fresh_database(self) -> str:
        name = f"wf_scale_{secrets.token_hex(4)}"
        self.admin.execute(f"CREATE DATABASE {name} TEMPLATE {self.template}")
        self.databases.append(name)
        return name

    def child(self, role: str, prefix: str, db: str, out: Path, *extra: str) -> subprocess.Popen[str]:
        command = [
            sys.executable,
            __file__,
            "--role",
            role,
            "--nats",
            self.nats_url,
            "--prefix",
            prefix,
            "--db",
            self.db_url(db),
            "--payloads",
            str(self.payload_file),
            "--out",
            str(out),
            "--batch-size",
            str(self.args.batch_size),
            *extra,
        ]
        return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    async def _stream_messages(self, prefix: str) -> int:
        bus = NatsBus(self.nats_url, BusSettings(prefix=prefix), name="bench conductor")
        await bus.connect()
        try:
            return await bus.stream_messages(PLATFORM)
        finally:
            await bus.close()

    async def _wait_drained(self, prefix: str, timeout_s: float) -> bool:
        bus = NatsBus(self.nats_url, BusSettings(prefix=prefix), name="bench conductor")
        await bus.connect()
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                if await bus.stream_messages(PLATFORM) == 0:  # work queue: a message leaves when acked
                    return True
                await asyncio.sleep(0.05)
            return False
        finally:
            await bus.close()

    async def _delete_streams(self, prefix: str) -> None:
        bus = NatsBus(self.nats_url, BusSettings(prefix=prefix), name="bench conductor")
        await bus.connect()
        try:
            await bus.delete_streams([PLATFORM])
        finally:
            await bus.close()

    def start_workers(self, count: int, prefix: str, db: str, *extra: str) -> list[tuple[subprocess.Popen[str], Path]]:
        workers = []
        for n in range(count):
            out = self.folder / f"{prefix}-worker{n}.json"
            workers.append((self.child("worker", prefix, db, out, *extra), out))
        for proc, _ in workers:  # each has compiled its watch set and connected
            line = proc.stdout.readline() if proc.stdout else ""
            if line.strip() != "ready":
                raise SystemExit(f"a worker failed to start (exit {proc.poll()})")
        return workers

    @staticmethod
    def go(workers: list[tuple[subprocess.Popen[str], Path]]) -> None:
        for proc, _ in workers:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()

    @staticmethod
    def stop(workers: list[tuple[subprocess.Popen[str], Path]]) -> list[dict[str, Any]]:
        for proc, _ in workers:
            proc.send_signal(signal.SIGTERM)
        out = []
        for proc, path in workers:
            proc.wait(timeout=60)
            out.append(json.loads(path.read_text()))
        return out

    def ingest(self, prefix: str, db: str, count: int, rate: float = 0.0, seed: int = 0) -> dict[str, Any]:
        out = self.folder / f"{prefix}-ingest.json"
        proc = self.child(
            "ingest", prefix, db, out, "--count", str(count), "--rate-events", str(rate), "--seed", str(seed)
        )
        if proc.wait() != 0:
            raise SystemExit(f"ingest failed (exit {proc.returncode})")
        return dict(json.loads(out.read_text()))

    # ------------------------------------------------------------------ the runs
    def closed_loop(self, workers_n: int, count: int, *extra: str) -> dict[str, Any]:
        prefix, db = f"wfscale{secrets.token_hex(3)}", self.fresh_database()
        self.prefixes.append(prefix)
        nats0 = proc_cpu_s(self.nats_pid)
        ingest = self.ingest(prefix, db, count)
        nats_publish = proc_cpu_s(self.nats_pid) - nats0
        workers = self.start_workers(workers_n, prefix, db, *extra)
        pg = PgCpu(self.admin, db)
        pg0, nats0 = pg.snapshot(), proc_cpu_s(self.nats_pid)
        self.go(workers)
        drained = asyncio.run(self._wait_drained(prefix, timeout_s=600))
        pg_spent, nats_drain = PgCpu.spent(pg0, pg.snapshot()), proc_cpu_s(self.nats_pid) - nats0
        results = self.stop(workers)
        asyncio.run(self._delete_streams(prefix))
        events = sum(r["events"] for r in results)
        posts = sum(r["posts"] for r in results)
        start = min(r["go_wall"] for r in results)
        seconds = max(r["last_commit_wall"] for r in results) - start
        commits = [s for r in results for s in r["commit_s"]]
        worker_cpu = sum(r["cpu_s"] for r in results)
        alerts = sum(r["alerts"] for r in results)
        return {
            "workers": workers_n,
            "drained": drained,
            "published": ingest["events"],
            "events": events,
            "posts": posts,
            "matched_posts": sum(r["matched_posts"] for r in results),
            "alerts": alerts,
            "seconds": seconds,
            "events_per_s": events / seconds,
            "posts_per_s": posts / seconds,
            "alerts_per_s": alerts / seconds,
            "worker_cpu_s": worker_cpu,
            "worker_cpu_per_1k_events": worker_cpu / events * 1000,
            "worker_events_per_cpu_s": events / worker_cpu,
            "ingest_publish_per_s": ingest["events"] / ingest["seconds"],
            "ingest_cpu_per_1k_events": ingest["cpu_s"] / ingest["events"] * 1000,
            "nats_cpu_per_1k_events_publish": nats_publish / ingest["events"] * 1000,
            "nats_cpu_per_1k_events_deliver": nats_drain / events * 1000,
            "pg_cpu_per_1k_events": pg_spent / events * 1000,
            "commit_batches": len(commits),
            "commit_p50_ms": percentile(commits, 0.5) * 1000,
            "commit_p99_ms": percentile(commits, 0.99) * 1000,
            "commit_s_total": sum(commits),
            "stored_posts_per_s": sum(r["matched_posts"] for r in results) / seconds,
            "batches_per_s": len(commits) / seconds,
            "commit_share": sum(commits) / (seconds * workers_n),
            "redeliveries": sum(r["redeliveries"] for r in results),
        }

    def latency(self, rate: float, seconds: float, payloads: list[bytes], index: dict[str, int]) -> dict[str, Any]:
        prefix, db = f"wfscale{secrets.token_hex(3)}", self.fresh_database()
        self.prefixes.append(prefix)
        count = min(len(payloads), int(rate * seconds))
        workers = self.start_workers(2, prefix, db)
        self.go(workers)
        seed = len(self.prefixes)
        ingest = self.ingest(prefix, db, count, rate=rate, seed=seed)
        asyncio.run(self._wait_drained(prefix, timeout_s=300))
        results = self.stop(workers)
        asyncio.run(self._delete_streams(prefix))
        arrivals = poisson(rate, count, seed=seed)
        latencies = []
        for r in results:
            for native_id, at in r["alert_times"]:
                i = index.get(native_id)
                if i is not None and i < count:
                    latencies.append(at - (ingest["started_wall"] + arrivals[i]))
        posts = sum(r["posts"] for r in results)
        return {
            "offered_events_per_s": rate,
            "offered_posts_per_s": rate * posts / max(1, count),
            "events": count,
            "seconds": arrivals[-1] if arrivals else 0.0,
            "alerts": len(latencies),
            "p50_ms": percentile(latencies, 0.5) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
            "p999_ms": percentile(latencies, 0.999) * 1000,
            "max_ms": max(latencies, default=float("nan")) * 1000,
            "worker_cpu_share": sum(r["cpu_s"] for r in results) / (count / rate),
        }

    def close(self) -> None:
        for prefix in self.prefixes:
            with contextlib.suppress(Exception):
                asyncio.run(self._delete_streams(prefix))
        for name in self.databases:
            with contextlib.suppress(psycopg.Error):
                self.admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.admin.close()
        if self.nats_proc is not None:
            self.nats_proc.terminate()
            self.nats_proc.wait(timeout=15)


def embedded_baseline(folder: Path, watches: list[Any], payloads: list[bytes]) -> dict[str, Any]:
    """bench/pipeline.py's closed loop (one process, SQLite WAL synchronous=FULL) on the same events."""
    options = argparse.Namespace(batch_size=2000, batch_interval=0.02, queue_size=20_000)
    result = asyncio.run(run_pipeline(fresh_store(folder, watches), payloads, None, options))
    return {k: v for k, v in result.items() if k not in ("latencies", "update_latency_s")}


def projection(cost: dict[str, float], events_per_post: float) -> list[dict[str, Any]]:
    """Cores needed for a posts/s rate from the measured CPU-seconds per 1,000 events."""
    rows = []
    for label, posts_per_s in (
        ("10,000 posts/s", 10_000),
        ("firehose average ~5,700 posts/s", 5_700),
        ("firehose record 143,199 posts/s", 143_199),
    ):
        events_per_s = posts_per_s * events_per_post
        rows.append(
            {"load": label, "events_per_s": events_per_s}
            | {part: events_per_s * per_1k / 1000 for part, per_1k in cost.items()}
        )
    return rows


def conduct(args: argparse.Namespace) -> None:
    quick = args.quick
    repeats = args.repeats or (2 if quick else 3)
    backlog = 60_000 if quick else 200_000
    open_seconds = 6.0 if quick else 20.0
    load_start = os.getloadavg()
    print(
        f"watchfloor scale-out benchmark — {machine()}, {'quick' if quick else 'full'} run"
        f"{', posts only' if args.posts_only else ''}, "
        f"load average {load_start[0]:.1f} / {load_start[1]:.1f} / {load_start[2]:.1f} (1/5/15 min)"
    )
    watches, recipes = make_watches(args.watches)
    figures: dict[str, Any] = {
        "machine": machine(),
        "quick": quick,
        "load_average_start": load_start,
        "args": {k: str(v) for k, v in vars(args).items()},
    }
    with tempfile.TemporaryDirectory(prefix="wf-scale-") as tmp:
        folder = Path(tmp)
        if args.posts_only:  # what the Jetstream source asks for by default (wantedCollections: posts)
            payloads = [p for p in make_events(backlog * 5, recipes, args.rate) if POST_COLLECTION in p][:backlog]
        else:
            payloads = make_events(backlog, recipes, args.rate)
        bench = Bench(args, folder)
        try:
            bench.payload_file.write_bytes(b"\n".join(payloads))
            started = time.monotonic()
            bench.make_template(watches)
            print(
                f"{args.watches:,} watches, planted match rate {args.rate:.0%}, worker batch size "
                f"{args.batch_size}, NATS {'private server' if args.nats == 'private' else bench.nats_url} "
                f"(pid {bench.nats_pid}), PostgreSQL {urlsplit(PG_SERVER).hostname}; template database "
                f"with the watches made in {time.monotonic() - started:.1f} s"
            )

            if args.profile:
                run = bench.closed_loop(1, backlog, "--profile", str(args.profile.resolve()))
                print(f"1 worker under cProfile: {run['events_per_s']:,.0f} events/s; profile in {args.profile}\n")
                pstats.Stats(str(args.profile)).sort_stats("tottime").print_stats(30)
                return
            runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
            for _ in range(repeats):
                for n in (1, 2):
                    runs[n].append(bench.closed_loop(n, backlog))
            embedded = [embedded_baseline(folder, watches, payloads) for _ in range(repeats)]
            figures["closed_loop"] = runs
            figures["embedded_sqlite"] = embedded

            def med(n: int, key: str) -> float:
                return median([r[key] for r in runs[n]])

            print(
                f"\nclosed loop: backlog of {backlog:,} events published first, then drained; median of {repeats} runs"
            )
            print(
                f"{'workers':>8} {'events/s':>9} {'posts/s':>8} {'alerts/s':>8} {'worker ev/CPU-s':>15} "
                f"{'commit p50':>10} {'p99':>7} {'matched':>8}"
            )
            for n in (1, 2):
                matched = med(n, "matched_posts") / max(1, med(n, "posts"))
                print(
                    f"{n:>8} {med(n, 'events_per_s'):>9,.0f} {med(n, 'posts_per_s'):>8,.0f} "
                    f"{med(n, 'alerts_per_s'):>8,.0f} {med(n, 'worker_events_per_cpu_s'):>15,.0f} "
                    f"{med(n, 'commit_p50_ms'):>8.1f}ms {med(n, 'commit_p99_ms'):>5.1f}ms {matched:>8.1%}"
                )
            for n in (1, 2):
                print(f"  {n} worker(s), each run: " + ", ".join(f"{r['events_per_s']:,.0f} ev/s" for r in runs[n]))
            ratio = med(2, "events_per_s") / med(1, "events_per_s")
            ratios = [b["events_per_s"] / a["events_per_s"] for a, b in zip(runs[1], runs[2], strict=True)]
            figures["ratio_2_to_1"] = ratio
            print(
                f"2 workers / 1 worker: {ratio:.2f}x (medians; per run pair: {', '.join(f'{x:.2f}' for x in ratios)})"
            )

            e_posts = median([e["posts_per_s"] for e in embedded])
            e_cpu = median([e["posts_per_cpu_s"] for e in embedded])
            print(
                f"\nSQLite baseline (embedded pipeline, one process, batch 2000): {e_posts:,.0f} posts/s, "
                f"{e_cpu:,.0f} posts per CPU-second (median of {repeats})"
            )
            print(
                f"PostgreSQL through NATS: 1 worker {med(1, 'posts_per_s'):,.0f} posts/s "
                f"({med(1, 'posts_per_s') / e_posts:.2f}x the embedded pipeline), 2 workers "
                f"{med(2, 'posts_per_s'):,.0f} posts/s ({med(2, 'posts_per_s') / e_posts:.2f}x)"
            )
            print("PostgreSQL writes (the store keeps matched posts only; one commit_batch per fetched batch):")
            for n in (1, 2):
                print(
                    f"  {n} worker(s): {med(n, 'stored_posts_per_s'):,.0f} posts and {med(n, 'alerts_per_s'):,.0f} "
                    f"alerts committed per second, {med(n, 'batches_per_s'):,.1f} commits/s; commit_batch p50 "
                    f"{med(n, 'commit_p50_ms'):.1f} ms, p99 {med(n, 'commit_p99_ms'):.1f} ms per batch of "
                    f"{args.batch_size} events; commits took {med(n, 'commit_share'):.0%} of the workers' wall time"
                )

            cost = {
                "worker": median([r["worker_cpu_per_1k_events"] for n in (1, 2) for r in runs[n]]),
                "ingest": median([r["ingest_cpu_per_1k_events"] for n in (1, 2) for r in runs[n]]),
                "nats": median(
                    [
                        r["nats_cpu_per_1k_events_publish"] + r["nats_cpu_per_1k_events_deliver"]
                        for n in (1, 2)
                        for r in runs[n]
                    ]
                ),
                "postgresql": median([r["pg_cpu_per_1k_events"] for n in (1, 2) for r in runs[n]]),
            }
            figures["cpu_s_per_1k_events"] = cost
            print("\nCPU-seconds per 1,000 events (median over all closed-loop runs):")
            for part, value in cost.items():
                print(f"  {part:<11} {value:.4f}  ({1000 / value:,.0f} events per CPU-second)")
            print(
                f"  NATS split: publish {median([r['nats_cpu_per_1k_events_publish'] for r in runs[1]]):.4f}, "
                f"deliver+ack {median([r['nats_cpu_per_1k_events_deliver'] for r in runs[1]]):.4f}"
            )
            events_per_post = median([r["events"] / r["posts"] for n in (1, 2) for r in runs[n]])
            whole = sum(cost.values())
            figures["all_parts_on_2_cores_events_per_s"] = 2000 / whole
            print(
                f"  all four: {whole:.4f} CPU-s per 1,000 events: with every part on this machine's 2 cores at "
                f"once, at most {2000 / whole:,.0f} events/s ({2000 / whole / events_per_post:,.0f} posts/s) "
                "if nothing else ran"
            )
            rows = projection(cost, events_per_post)
            figures["projection_cores"] = rows
            print(f"\nprojected cores ({events_per_post:.2f} events per post, as in this workload):")
            print(f"{'load':>34} {'events/s':>9} {'workers':>8} {'ingest':>7} {'NATS':>6} {'PostgreSQL':>10}")
            for row in rows:
                print(
                    f"{row['load']:>34} {row['events_per_s']:>9,.0f} {row['worker']:>8.1f} {row['ingest']:>7.1f} "
                    f"{row['nats']:>6.1f} {row['postgresql']:>10.1f}"
                )

            capacity = med(2, "events_per_s")
            lat_rows = []
            for share in (0.1, 0.25, 0.5, 0.8):
                row = bench.latency(capacity * share, open_seconds, payloads, post_index(payloads))
                row["load"] = f"{share:.0%} of 2-worker capacity"
                lat_rows.append(row)
            figures["latency"] = lat_rows
            print(
                f"\nend-to-end latency, 2 workers, Poisson arrivals for {open_seconds:.0f} s "
                "(scheduled publish -> alert committed in PostgreSQL):"
            )
            print(
                f"{'offered load':>26} {'events/s':>9} {'posts/s':>8} {'for':>5} {'alerts':>7} {'p50 ms':>7} "
                f"{'p99 ms':>7} {'p99.9 ms':>8}"
            )
            for r in lat_rows:
                print(
                    f"{r['load']:>26} {r['offered_events_per_s']:>9,.0f} {r['offered_posts_per_s']:>8,.0f} "
                    f"{r['seconds']:>4.1f}s {r['alerts']:>7} {r['p50_ms']:>7.0f} {r['p99_ms']:>7.0f} "
                    f"{r['p999_ms']:>8.0f}"
                )
        finally:
            bench.close()
    figures["load_average_end"] = os.getloadavg()
    end = figures["load_average_end"]
    print(
        f"\nload average at the end: {end[0]:.1f} / {end[1]:.1f} / {end[2]:.1f} "
        "(2 cores; above 2 means other work competed)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller samples (a minute or two)")
    parser.add_argument("--repeats", type=int, default=0, help="closed-loop runs per worker count (default 2 / 3)")
    parser.add_argument("--watches", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=0.03, help="planted match rate")
    parser.add_argument("--batch-size", type=int, default=500, help="events per worker fetch and commit")
    parser.add_argument(
        "--posts-only",
        action="store_true",
        help="only post events (creates and deletes), as the Jetstream source's default wantedCollections delivers",
    )
    parser.add_argument("--nats", default="private", help="'private' (default: start one) or a nats:// URL")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument(
        "--profile",
        type=Path,
        help="instead: drain one backlog with one worker under cProfile, save its profile to this file and "
        "print where the worker's time goes (cProfile slows it down: shares, not speeds)",
    )
    # internal: the child processes
    parser.add_argument("--role", choices=["worker", "ingest"], help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--payloads", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--rate-events", dest="rate_events", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "worker":
        asyncio.run(worker_role(args))
    elif args.role == "ingest":
        args.rate = args.rate_events
        asyncio.run(ingest_role(args))
    else:
        conduct(args)


if __name__ == "__main__":
    main()
