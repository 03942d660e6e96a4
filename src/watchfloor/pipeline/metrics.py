"""Prometheus metrics of the scale-out processes, and the small HTTP server that shows them.

``watchfloor ingest`` and ``watchfloor worker`` serve, on ``--metrics-port``:

- ``GET /metrics``: the figures below in the Prometheus text format, plus the process's
  own (CPU, memory, open files);
- ``GET /healthz``: 200 with a JSON summary of the process's state while it can do its
  work (connected to the bus), 503 with the same summary when it cannot. The summary is
  what a test or an operator needs to see where a process is (confirmed and saved
  cursors, batches committed, the last commit's time).

Both are unauthenticated, like the web process's ``/healthz``, ``/readyz`` and ``/metrics``:
they show counts and times, never a post, an author, a watch's query or a person, and the
port is meant for the monitoring network only (bind it with ``--metrics-host``; the
default is 127.0.0.1). docs/deploy.md lists every metric.

Every process has its own registry (two workers in one test process count apart).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

COMMIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class BusMetrics:
    """The figures of one ingest or worker process (each only fills its own)."""

    def __init__(self, registry: CollectorRegistry | None = None, *, process: bool = True) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        if process:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        r = self.registry
        # ingest
        self.published = Counter(
            "watchfloor_events_published", "Events the bus confirmed (PubAck), by platform", ["platform"], registry=r
        )
        self.duplicates = Counter(
            "watchfloor_events_duplicate",
            "Publishes the bus dropped as already seen (Nats-Msg-Id within the duplicate window)",
            ["platform"],
            registry=r,
        )
        self.publish_retries = Counter(
            "watchfloor_publish_retries",
            "Publishes made again (refused, or no PubAck in time)",
            ["platform"],
            registry=r,
        )
        self.in_flight = Gauge("watchfloor_publish_in_flight", "Publishes awaiting their PubAck", registry=r)
        self.cursor_saves = Counter(
            "watchfloor_cursor_saves", "Confirmed source cursors saved to the store", ["source"], registry=r
        )
        # worker
        self.consumed = Counter(
            "watchfloor_events_consumed", "Events processed and acknowledged, by platform", ["platform"], registry=r
        )
        self.batches = Counter("watchfloor_batches_committed", "Store commits of consumed events", registry=r)
        self.alerts = Counter("watchfloor_alerts", "New alerts committed", registry=r)
        self.dead_letters = Counter(
            "watchfloor_dead_letters",
            "Dead letters recorded: malformed (the normaliser refused it), failed (max_deliver "
            "deliveries without success), refused (too large for the bus)",
            ["platform", "kind"],
            registry=r,
        )
        self.redeliveries = Counter(
            "watchfloor_redeliveries", "Deliveries of events delivered before (attempt > 1)", ["platform"], registry=r
        )
        self.store_retries = Counter(
            "watchfloor_store_retries", "Store writes retried after a transient error (locked, unreachable)", registry=r
        )
        self.commit_seconds = Histogram(
            "watchfloor_commit_seconds", "Duration of one store commit", buckets=COMMIT_BUCKETS, registry=r
        )
        self.pending = Gauge(
            "watchfloor_consumer_pending",
            "Events of the platform not yet acknowledged by the worker group (lag), as the bus counts them",
            ["platform"],
            registry=r,
        )
        self.last_commit = Gauge(
            "watchfloor_last_commit_timestamp_seconds", "Unix time of the last store commit", registry=r
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def metrics_app(exposition: Callable[[], bytes], health: Callable[[], dict[str, Any]]) -> Starlette:
    """/metrics and /healthz (``health()["ok"]`` decides 200 or 503)."""

    async def metrics(_: Request) -> Response:
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    async def healthz(_: Request) -> Response:
        state = health()
        return Response(
            json.dumps(state, default=str), status_code=200 if state.get("ok") else 503, media_type="application/json"
        )

    return Starlette(routes=[Route("/metrics", metrics), Route("/healthz", healthz)])


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the process's own handler stops the work first, then this server


class MetricsServer:
    """Serves :func:`metrics_app` in the caller's event loop."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        self.host, self.port = host, port
        config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False, lifespan="off")
        self._server = _QuietServer(config)
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    async def start(self) -> None:
        """Bind now (an OSError says the port is taken) and serve in the background."""
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="metrics-http")

    async def stop(self) -> None:
        self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, timeout=5)
        if self._socket is not None:
            self._socket.close()
