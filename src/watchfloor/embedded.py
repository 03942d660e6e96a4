"""The embedded deployment: one process runs the pipelines and the web UI on one event loop.

Two helper processes take pure work off that loop's core (docs/operations.md#helper-processes):
the match helper normalises, matches and seals every pipeline's batches
(pipeline/match_process.py, ``[pipeline] match_process``), and the text-signal helper
computes the matched posts' per-text signals (signals/text_process.py, ``[pipeline]
signal_process``).

Each source gets its own :class:`~watchfloor.pipeline.runner.Pipeline` (its own cursor,
batches and figures). :class:`SourceSupervisor` starts them, persists each live
source's health (connected, reconnects, errors, rate limits, quota) once a second and
every gap it reports, and — for configured sources — follows the ``sources`` table:
a source paused with ``watchfloor source pause`` stops (its open batch committed), one
resumed or added starts, one that fails is restarted with backoff (or, when it failed
for a reason retrying cannot fix, such as refused credentials, waits until its
configuration changes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from watchfloor.config import Settings
from watchfloor.model import utcnow
from watchfloor.pipeline.match_process import MatchProcess, store_url_for_helper
from watchfloor.pipeline.notify import AlertSignal
from watchfloor.pipeline.runner import Pipeline, PipelineStats
from watchfloor.signals.stage import stage_for
from watchfloor.sources.backoff import Backoff
from watchfloor.sources.base import Normaliser, Source, SourceFailed
from watchfloor.sources.config import SourceConfig, SourceConfigError
from watchfloor.sources.health import HealthSnapshot, SourceHealth, SourceStatus
from watchfloor.store import IngestBatch, Store, StoreUnavailable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SourceRun:
    """A source and the normaliser that reads its events (None in ``watchfloor ingest``,
    which publishes raw events and leaves reading them to the workers)."""

    source: Source
    normaliser: Normaliser | None = None


#: Builds the run of a configured source (raises SourceConfigError when it cannot).
SourceBuilder = Callable[[SourceConfig], SourceRun]


class SourceRunner(Protocol):
    """What the supervisor runs for one source: a :class:`Pipeline` here, a
    :class:`~watchfloor.pipeline.ingest.BusPublisher` in ``watchfloor ingest``."""

    source: Source
    stats: PipelineStats

    async def run(self, stop: asyncio.Event | None = None) -> PipelineStats: ...


@dataclass(slots=True)
class _Running:
    run: SourceRun
    pipeline: Pipeline
    stop: asyncio.Event
    task: asyncio.Task[PipelineStats]
    config_stamp: datetime | None = None
    stopped_as: SourceStatus | None = None  # why the supervisor stopped it (paused, removed)


@dataclass(slots=True)
class _Waiting:
    until: float  # loop time of the next attempt (inf: until the configuration changes)
    config_stamp: datetime | None
    backoff: Backoff = field(default_factory=lambda: Backoff(base_s=5.0, cap_s=300.0))


class SourceSupervisor:
    """Runs one pipeline per source and keeps their health in the store."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        fixed: Sequence[SourceRun] = (),
        build: SourceBuilder | None = None,
        only: str | None = None,
        alert_signal: AlertSignal | None = None,
        check_every_s: float = 2.0,
        health_every_s: float = 1.0,
        runner: Callable[[SourceRun], SourceRunner] | None = None,
        match_process: MatchProcess | None = None,
    ) -> None:
        self.settings = settings
        self.match_process = match_process  # the pipelines' batches are prepared there, if set
        self.runner = runner  # default: a Pipeline per source
        self.store = store
        self.fixed = list(fixed)
        self.build = build
        self.only = only
        self.signal = alert_signal
        self.check_every_s = check_every_s
        self.health_every_s = health_every_s
        self.running: dict[str, _Running] = {}
        self.waiting: dict[str, _Waiting] = {}
        self.finished = PipelineStats()
        self.started: dict[str, Pipeline] = {}
        self._persisting = asyncio.Lock()  # one health write at a time, so none lands out of order
        self.failures: dict[str, BaseException] = {}  # fixed sources that ended with an error
        self.on_start: list[Callable[[Pipeline], None]] = []
        self._health_unwritable = False  # the store was unavailable at the last health write

    @property
    def pipelines(self) -> list[Pipeline]:
        return [r.pipeline for r in self.running.values()]

    def stats(self) -> PipelineStats:
        """The totals of every pipeline this supervisor ran."""
        total = PipelineStats()
        for stats in [self.finished, *(r.pipeline.stats for r in self.running.values())]:
            total.add(stats)
        return total

    async def run(self, stop: asyncio.Event) -> PipelineStats:
        """Run until ``stop`` (or, without configured sources, until every fixed source ends)."""
        for run in self.fixed:
            self._start(run, None)
        health = asyncio.create_task(self._persist_health_forever(), name="source-health")
        try:
            while not stop.is_set():
                if self.build is not None:
                    await self._follow_configuration()
                await self._reap()
                if self.build is None and not self.running:
                    break  # every fixed (finite) source ended
                stopper = asyncio.ensure_future(stop.wait())
                await asyncio.wait(
                    {stopper, *(r.task for r in self.running.values())},
                    timeout=self.check_every_s if self.build is not None else None,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                stopper.cancel()
        finally:
            for running in self.running.values():
                running.stop.set()
            await asyncio.gather(*(r.task for r in self.running.values()), return_exceptions=True)
            await self._reap(final=True)
            health.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await health
        return self.stats()

    # ------------------------------------------------------------------ configured sources
    async def _follow_configuration(self) -> None:
        assert self.build is not None
        try:
            configs = await asyncio.to_thread(self.store.list_sources)
        except Exception:  # the store is busy or gone for a moment: try again at the next check
            log.exception("cannot read the configured sources")
            return
        wanted = {c.name: c for c in configs if self.only is None or c.name == self.only}
        now = asyncio.get_running_loop().time()
        for name, running in list(self.running.items()):
            config = wanted.get(name)
            if running.config_stamp is not None and (config is None or config.paused):
                running.stopped_as = SourceStatus.paused if config is not None else SourceStatus.stopped
                running.stop.set()  # commits its open batch and ends; reaped below
        for name, config in wanted.items():
            if config.paused:
                self.waiting.pop(name, None)
                continue
            if name in self.running:
                continue
            waiting = self.waiting.get(name)
            if waiting is not None and waiting.until > now and waiting.config_stamp == config.updated_at:
                continue
            try:
                run = self.build(config)
            except (SourceConfigError, ValueError) as exc:
                await self._record_failure(config.name, config.platform, str(exc))
                self.waiting[name] = _Waiting(float("inf"), config.updated_at)
                continue
            self._start(run, config.updated_at)

    def _start(self, run: SourceRun, config_stamp: datetime | None) -> None:
        pipeline = (
            self.runner(run)  # type: ignore[assignment]
            if self.runner is not None
            else Pipeline(
                run.source,
                run.normaliser,  # type: ignore[arg-type]  # every embedded run has its normaliser
                self.store,
                batch_size=self.settings.batch_size,
                batch_interval_s=self.settings.batch_interval_s,
                signal=self.signal,
                match_process=self.match_process,
            )
        )
        stop = asyncio.Event()
        task = asyncio.create_task(pipeline.run(stop), name=f"pipeline:{run.source.name}")
        self.running[run.source.name] = _Running(run, pipeline, stop, task, config_stamp)
        self.started[run.source.name] = pipeline
        for callback in self.on_start:
            callback(pipeline)

    async def _reap(self, *, final: bool = False) -> None:
        for name, running in list(self.running.items()):
            if not running.task.done():
                continue
            del self.running[name]
            self.finished.add(running.pipeline.stats)
            health = _health_of(running.run.source)
            error = None if running.task.cancelled() else running.task.exception()
            if error is None:
                if health is not None:
                    health.stopped()
                    await self._persist(health, status=running.stopped_as)
                continue
            message = str(error) if isinstance(error, SourceFailed) else f"{type(error).__name__}: {error}"
            log.error("source %s failed: %s", name, message)
            await self._record_failure(name, running.run.source.platform, message, health)
            if running.config_stamp is None:
                self.failures[name] = error  # a fixed source (demo, replay) is not restarted
                continue
            if final:
                continue
            waiting = self.waiting.get(name) or _Waiting(0.0, running.config_stamp)
            if isinstance(error, SourceFailed):
                waiting.until = float("inf")  # until its configuration changes
            else:
                waiting.until = asyncio.get_running_loop().time() + waiting.backoff.next_delay()
            waiting.config_stamp = running.config_stamp
            self.waiting[name] = waiting

    # ------------------------------------------------------------------ health
    async def _persist_health_forever(self) -> None:
        while True:
            await asyncio.sleep(self.health_every_s)
            for name, running in list(self.running.items()):
                health = _health_of(running.run.source)
                if health is not None:
                    try:
                        await self._persist(health, only_if_running=name)
                    except StoreUnavailable as exc:  # the pipelines retry their commits; say it once
                        if not self._health_unwritable:
                            log.warning("cannot record source health while the store is unavailable: %s", exc)
                        self._health_unwritable = True
                    except Exception:
                        log.exception("cannot record the health of %s", name)
                    else:
                        self._health_unwritable = False

    async def _persist(
        self, health: SourceHealth, status: SourceStatus | None = None, *, only_if_running: str | None = None
    ) -> None:
        async with self._persisting:
            if only_if_running is not None and only_if_running not in self.running:
                return  # it ended meanwhile: its final reading was (or will be) written by _reap
            snapshot = health.snapshot()
            if status is not None:
                snapshot = _with_status(snapshot, status)
            gaps = health.take_gaps()
            await asyncio.to_thread(self.store.record_source_health, snapshot)
            for gap in gaps:
                log.warning("source %s: gap: %s", gap.source, gap.reason)
                await asyncio.to_thread(self.store.record_gap, gap)

    async def _record_failure(self, name: str, platform: str, message: str, health: SourceHealth | None = None) -> None:
        health = health or SourceHealth(name, platform)
        health.failed(message)
        try:
            await self._persist(health)
        except Exception:
            log.exception("cannot record the failure of %s", name)


def _health_of(source: Source) -> SourceHealth | None:
    health = getattr(source, "health", None)
    return health if isinstance(health, SourceHealth) else None


def _with_status(snapshot: HealthSnapshot, status: SourceStatus) -> HealthSnapshot:
    from dataclasses import replace

    return replace(snapshot, status=status, updated_at=utcnow())


async def run_embedded(
    settings: Settings,
    store: Store,
    source: Source | None = None,
    normaliser: Normaliser | None = None,
    *,
    sources: Sequence[SourceRun] = (),
    build: SourceBuilder | None = None,
    only: str | None = None,
    web: bool = True,
    keep_serving: bool = True,
    on_tick: Callable[[Pipeline], None] | None = None,
    stop: asyncio.Event | None = None,
    before_commit: Sequence[Callable[[IngestBatch], None]] = (),
) -> PipelineStats:
    """Run until SIGINT/SIGTERM (or ``stop``).

    Sources: ``source`` with ``normaliser`` (one), ``sources`` (several), and/or ``build``
    (every configured, unpaused source, or just the one named ``only``, followed live).
    With ``keep_serving`` the web UI stays up after finite sources (a replay) end,
    otherwise the run ends with them. ``on_tick`` is called once a second for each
    running pipeline. ``before_commit`` hooks are added to every pipeline (governance seals
    the matched authors' identities there).
    """
    stop = stop or asyncio.Event()
    fixed = list(sources)
    if source is not None:
        if normaliser is None:
            raise ValueError("a source needs its normaliser")
        fixed.insert(0, SourceRun(source, normaliser))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    alert_signal = AlertSignal()
    signals = stage_for(store)
    if settings.signal_process:  # matched posts' per-text signals on another core (signals/text_process.py)
        signals.offload_texts()
    match_process = None
    if settings.match_process and store_url_for_helper(store) is not None:
        match_process = MatchProcess()  # normalise, match and seal on another core (pipeline/match_process.py)
        match_process.start()
    supervisor = SourceSupervisor(
        settings, store, fixed=fixed, build=build, only=only, alert_signal=alert_signal, match_process=match_process
    )
    from watchfloor.triage.floor import FloorTasks  # the watch floor's background work (queue, SLA, notify)

    floor = FloorTasks.start(settings, store)
    supervisor.on_start.append(lambda pipeline: pipeline.on_commit.append(floor.committed))  # every pipeline
    # Web processes of their own (`watchfloor web`) on a PostgreSQL store hear of new alerts by NOTIFY.
    from watchfloor.pipeline.alert_fanout import Announcer, alert_fanout_for

    fanout = alert_fanout_for(settings.db_url, None)
    announcer = Announcer(fanout).start() if fanout is not None else None
    if announcer is not None:
        supervisor.on_start.append(lambda pipeline: pipeline.on_commit.append(announcer.committed))
    supervisor.on_start.append(lambda pipeline: pipeline.before_commit.extend(before_commit))
    from watchfloor.governance.schedule import GovernanceTasks  # retention, watch expiry, audit checkpoints

    governance = GovernanceTasks.start(settings, store)
    server = None
    server_task: asyncio.Task[None] | None = None
    if web:
        from watchfloor.web.app import create_app
        from watchfloor.web.server import build_server

        server = build_server(create_app(settings, store, alert_signal), settings.web_host, settings.web_port)
        server_task = asyncio.create_task(server.serve(), name="web")
    ticker = asyncio.create_task(_tick(supervisor, on_tick), name="tick") if on_tick else None
    try:
        stats = await supervisor.run(stop)
        if server_task is not None and keep_serving and not stop.is_set():
            # finite sources ended: keep the UI up until asked to stop or the server ends
            stopper = asyncio.create_task(stop.wait())
            await asyncio.wait({stopper, server_task}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
    finally:
        if ticker is not None:
            ticker.cancel()
        await floor.stop()
        await governance.stop()
        if announcer is not None:
            await announcer.stop()
        if server is not None and server_task is not None:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await server_task
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        if signals.texts is not None:
            await asyncio.to_thread(signals.close_helper)
        if match_process is not None:
            await asyncio.to_thread(match_process.close)
    if on_tick:
        for pipeline in supervisor.started.values():
            on_tick(pipeline)
    if supervisor.failures:
        raise next(iter(supervisor.failures.values()))
    return stats


async def _tick(supervisor: SourceSupervisor, on_tick: Callable[[Pipeline], None]) -> None:
    while True:
        await asyncio.sleep(1.0)
        for pipeline in supervisor.pipelines:
            on_tick(pipeline)
