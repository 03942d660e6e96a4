"""Readiness and metrics of a web process, for load balancers and Prometheus.

- ``GET /healthz`` (routes_api.py): liveness, the process answers;
- ``GET /readyz``: 200 when this process can serve: its store answers and, when it follows
  a bus (``watchfloor web`` with ``WATCHFLOOR_BUS=nats://``), the bus answers; else 503
  with which check failed. A load balancer sends traffic only to ready processes;
- ``GET /metrics``: Prometheus text format: the store's totals (alerts, open alerts, posts,
  dead letters, active watches), each source's events/s and lag, new-alert wake-ups this
  process received, and the process's own figures.

All three are public, like the sign-in page: they show counts, times and "ok", never a
post, an author, a query or a person, and a load balancer or Prometheus has no session.
Deployments that do not want even the counts seen set ``WATCHFLOOR_METRICS_TOKEN``:
``/metrics`` then needs ``Authorization: Bearer <that token>`` (Prometheus:
``authorization: {credentials: ...}``). No request to these routes is written to the audit
log (nobody is signed in).
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.gc_collector import GCCollector
from prometheus_client.process_collector import ProcessCollector
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from watchfloor.store import Store

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])

METRICS_TOKEN_ENV = "WATCHFLOOR_METRICS_TOKEN"


class ReadyOut(BaseModel):
    ok: bool
    checks: dict[str, str]


class _StoreFigures:
    """Read at every scrape: what the store holds now."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            counts = self.store.counts()
            sources = self.store.source_states()
        except Exception:
            log.exception("metrics: the store does not answer")
            return
        for name, help_text, value in (
            ("watchfloor_store_alerts", "Alerts in the store", counts.alerts),
            ("watchfloor_store_open_alerts", "Open alerts in the store", counts.open_alerts),
            ("watchfloor_store_posts", "Matched posts in the store", counts.posts),
            ("watchfloor_store_dead_letters", "Dead letters in the store", counts.dead_letters),
            ("watchfloor_store_active_watches", "Active watches", counts.active_watches),
        ):
            yield GaugeMetricFamily(name, help_text, value=value)
        rate = GaugeMetricFamily(
            "watchfloor_source_events_per_second", "Events/s of the last commit", labels=["source"]
        )
        lag = GaugeMetricFamily("watchfloor_source_lag_seconds", "Newest event's age at its commit", labels=["source"])
        for s in sources:
            rate.add_metric([s.source], s.events_per_s)
            if s.lag_s is not None:
                lag.add_metric([s.source], s.lag_s)
        yield rate
        yield lag


class WebMetrics:
    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.registry.register(_StoreFigures(store))  # type: ignore[arg-type]
        self.wakeups = Counter(
            "watchfloor_web_alert_wakeups",
            "New-alert announcements received from other processes",
            registry=self.registry,
        )


def install_ops(app: FastAPI, store: Store) -> None:
    """/readyz and /metrics (liveness, /healthz, is in routes_api.py)."""
    app.state.metrics = WebMetrics(store)
    app.state.metrics_token = os.environ.get(METRICS_TOKEN_ENV) or None
    if not hasattr(app.state, "bus"):
        app.state.bus = None  # watchfloor web sets the bus it follows
    app.include_router(router)


@router.get("/readyz", response_model=ReadyOut, responses={503: {"model": ReadyOut}})
async def readyz(request: Request) -> JSONResponse:
    """Readiness: the store answers (and the bus, when this process follows one). Needs no session."""
    checks: dict[str, str] = {}
    store: Store = request.app.state.store
    try:
        await run_in_threadpool(store.watches_revision)
        checks["store"] = "ok"
    except Exception as exc:
        log.warning("readyz: store: %s", exc)
        checks["store"] = "unreachable"
    bus = getattr(request.app.state, "bus", None)
    if bus is not None:
        try:
            await bus.check()
            checks["bus"] = "ok"
        except Exception as exc:
            log.warning("readyz: bus: %s", exc)
            checks["bus"] = "unreachable"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(ReadyOut(ok=ok, checks=checks).model_dump(), status_code=200 if ok else 503)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Prometheus text format; needs the metrics token when one is configured."""
    token = request.app.state.metrics_token
    if token is not None:
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return Response("metrics need 'Authorization: Bearer <WATCHFLOOR_METRICS_TOKEN>'\n", status_code=401)
    registry = request.app.state.metrics.registry
    return Response(await run_in_threadpool(generate_latest, registry), media_type=CONTENT_TYPE_LATEST)
