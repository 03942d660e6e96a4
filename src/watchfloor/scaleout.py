"""The scale-out deployment's three processes (docs/deploy.md), each on one event loop:

- :func:`run_ingest`: the sources publish to the bus (pipeline/ingest.py), supervised as in
  the embedded deployment (configured sources followed live, paused, resumed, restarted
  with backoff; their health and gaps recorded);
- :func:`run_worker`: consume, process, commit, acknowledge (pipeline/worker.py), plus the
  deployment's duties while this worker holds their lease (pipeline/duties.py);
- :func:`run_web`: the web UI and API only, stateless, any number behind a load balancer;
  new alerts wake its live streams through the bus (or PostgreSQL NOTIFY).

Each runs until SIGINT or SIGTERM (or ``stop``) and then stops in order: the work in hand
is finished and acknowledged first. A bus that cannot be reached at start is waited for
(with backoff), like one that restarts while running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from watchfloor.config import Settings
from watchfloor.embedded import SourceBuilder, SourceRun, SourceSupervisor
from watchfloor.pipeline.alert_fanout import alert_fanout_for
from watchfloor.pipeline.bus import Bus, BusError
from watchfloor.pipeline.duties import DutyHolder
from watchfloor.pipeline.ingest import BusPublisher
from watchfloor.pipeline.metrics import BusMetrics, MetricsServer, metrics_app
from watchfloor.pipeline.notify import AlertSignal
from watchfloor.pipeline.processing import PipelineStats
from watchfloor.pipeline.worker import DEFAULT_GROUP, Worker
from watchfloor.sources.backoff import Backoff
from watchfloor.sources.base import Normaliser
from watchfloor.store import IngestBatch, Store

log = logging.getLogger(__name__)


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stop`` (a second one does too: the work in hand still finishes)."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


async def connect_bus(bus: Bus, stop: asyncio.Event, platforms: Sequence[str] = ()) -> bool:
    """Connect (and lay out the platforms' streams), retrying until it works or ``stop``."""
    backoff = Backoff(base_s=0.5, cap_s=10.0)
    while not stop.is_set():
        try:
            await bus.connect()
            await bus.prepare(list(platforms))
            return True
        except BusError as exc:
            delay = backoff.next_delay()
            log.warning("%s; trying again in %.1f s", exc, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
    return False


async def _serve_metrics(
    address: tuple[str, int] | None, metrics: BusMetrics, health: Callable[[], dict[str, Any]]
) -> MetricsServer | None:
    if address is None:
        return None
    server = MetricsServer(metrics_app(metrics.exposition, health), *address)
    await server.start()
    log.info("metrics and health on http://%s:%d/metrics and /healthz", server.host, server.port)
    return server


# --------------------------------------------------------------------------- ingest


async def run_ingest(
    settings: Settings,
    store: Store,
    bus: Bus,
    *,
    sources: Sequence[SourceRun] = (),
    build: SourceBuilder | None = None,
    only: str | None = None,
    metrics: BusMetrics | None = None,
    metrics_address: tuple[str, int] | None = None,
    stop: asyncio.Event | None = None,
    on_tick: Callable[[BusPublisher], None] | None = None,
) -> PipelineStats:
    """Publish the sources' events until SIGINT/SIGTERM (or ``stop``, or every fixed source ended)."""
    stop = stop or asyncio.Event()
    metrics = metrics or BusMetrics()
    publishers: dict[str, BusPublisher] = {}

    def publisher(run: SourceRun) -> BusPublisher:
        made = BusPublisher(run.source, bus, store, metrics=metrics)
        publishers[run.source.name] = made
        return made

    def health() -> dict[str, Any]:
        return {
            "ok": getattr(bus, "connected", True),
            "role": "ingest",
            "sources": {name: p.state() for name, p in publishers.items()},
        }

    with stop_on_signals(stop):
        server = await _serve_metrics(metrics_address, metrics, health)
        ticker = asyncio.create_task(_tick(publishers, on_tick, stop)) if on_tick else None
        try:
            if not await connect_bus(bus, stop, sorted({r.source.platform for r in sources})):
                return PipelineStats()
            supervisor = SourceSupervisor(settings, store, fixed=sources, build=build, only=only, runner=publisher)
            stats = await supervisor.run(stop)
        finally:
            if ticker is not None:
                ticker.cancel()
            if server is not None:
                await server.stop()
            await bus.close()
    if on_tick:
        for made in publishers.values():
            on_tick(made)
    if supervisor.failures:
        raise next(iter(supervisor.failures.values()))
    return stats


async def _tick(publishers: Mapping[str, Any], on_tick: Callable[[Any], None], stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(1.0)
        for item in list(publishers.values()):
            on_tick(item)


# --------------------------------------------------------------------------- worker


async def run_worker(
    settings: Settings,
    store: Store,
    bus: Bus,
    normalisers: Mapping[str, Normaliser],
    *,
    group: str = DEFAULT_GROUP,
    batch_size: int | None = None,
    duties: bool = True,
    before_commit: Sequence[Callable[[IngestBatch], None]] = (),
    metrics: BusMetrics | None = None,
    metrics_address: tuple[str, int] | None = None,
    stop: asyncio.Event | None = None,
    on_tick: Callable[[Worker], None] | None = None,
) -> PipelineStats:
    """Consume until SIGINT/SIGTERM (or ``stop``); the batches in hand are committed and acknowledged first."""
    stop = stop or asyncio.Event()
    metrics = metrics or BusMetrics()
    worker = Worker(bus, store, normalisers, group=group, batch_size=batch_size or settings.batch_size, metrics=metrics)
    worker.before_commit.extend(before_commit)
    holder = DutyHolder(settings, store, bus) if duties else None
    if holder is not None:
        worker.on_commit.append(holder.committed)

    def health() -> dict[str, Any]:
        return {
            "ok": getattr(bus, "connected", True),
            "role": "worker",
            "duties": holder.holding if holder is not None else False,
            **worker.state(),
        }

    with stop_on_signals(stop):
        server = await _serve_metrics(metrics_address, metrics, health)
        background: list[asyncio.Task[Any]] = []
        try:
            if not await connect_bus(bus, stop, worker.platforms):
                return worker.stats
            if holder is not None:
                background.append(asyncio.create_task(holder.run(stop), name="duties"))
            if on_tick is not None:
                background.append(asyncio.create_task(_tick({"w": worker}, on_tick, stop), name="tick"))
            await worker.run(stop)
        finally:
            stop.set()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.wait_for(task, timeout=15)
            if server is not None:
                await server.stop()
            await bus.close()
    if on_tick:
        on_tick(worker)
    return worker.stats


# --------------------------------------------------------------------------- web


async def run_web(settings: Settings, store: Store, bus: Bus | None, *, stop: asyncio.Event | None = None) -> None:
    """Serve the web UI and API until SIGINT/SIGTERM (or ``stop``)."""
    from watchfloor.web.app import create_app
    from watchfloor.web.server import build_server

    stop = stop or asyncio.Event()
    alert_signal = AlertSignal()
    app = create_app(settings, store, alert_signal)
    app.state.bus = bus
    fanout = alert_fanout_for(settings.db_url, bus)
    wakeups = app.state.metrics.wakeups

    def woken(latest: int) -> None:
        wakeups.inc()
        alert_signal.publish(latest)

    async def follow() -> None:
        if bus is not None and not await connect_bus(bus, stop):
            return
        if fanout is not None:
            await fanout.start()
            await fanout.follow(woken)

    server = build_server(app, settings.web_host, settings.web_port)
    with stop_on_signals(stop):
        follower = asyncio.create_task(follow(), name="alerts:follow")
        serving = asyncio.create_task(server.serve(), name="web")
        stopper = asyncio.create_task(stop.wait(), name="stop")
        try:
            await asyncio.wait({serving, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await serving
            for task in (follower, stopper):
                task.cancel()
            await asyncio.gather(follower, stopper, return_exceptions=True)
            if fanout is not None:
                await fanout.close()
            if bus is not None:
                await bus.close()
        if serving.done() and not serving.cancelled() and serving.exception() is not None:
            raise serving.exception()  # type: ignore[misc]
