"""The JSON API (session cookie auth for now) and the unauthenticated health check."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from watchfloor.governance.permissions import Permission
from watchfloor.model import utcnow
from watchfloor.store import Store
from watchfloor.web.api_models import (
    MAX_ID,
    AlertOut,
    AlertsOut,
    CountsOut,
    ErrorOut,
    HealthOut,
    IdParam,
    SourceOut,
    StatusOut,
    WatchesOut,
    WatchOut,
)
from watchfloor.web.errors import ApiError
from watchfloor.web.permissions import api_requires
from watchfloor.web.sessions import Viewer

MAX_PAGE = 500

_REFUSALS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorOut, "description": "No valid session."},
    403: {"model": ErrorOut, "description": "The account must change its one-time password first."},
}

router = APIRouter(prefix="/api", tags=["api"], responses=_REFUSALS)
health_router = APIRouter(tags=["health"])

AlertsReader = Annotated[Viewer, Depends(api_requires(Permission.read_alerts))]
WatchesReader = Annotated[Viewer, Depends(api_requires(Permission.read_watches))]
StatusReader = Annotated[Viewer, Depends(api_requires(Permission.read_status))]


def _store(request: Request) -> Store:
    return request.app.state.store


@health_router.get("/healthz", response_model=HealthOut)
def healthz() -> HealthOut:
    """Liveness: the web process answers. Needs no session."""
    return HealthOut(ok=True)


@router.get("/alerts", response_model=AlertsOut)
def list_alerts(
    request: Request,
    viewer: AlertsReader,
    after_id: Annotated[int, Query(ge=0, le=MAX_ID, description="Only alerts with a larger id.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"At most {MAX_PAGE}.")] = 100,
    watch_id: Annotated[IdParam | None, Query(description="Only this watch's alerts.")] = None,
) -> AlertsOut:
    """Alerts in ascending id order, ``limit`` at a time: page on with ``after_id``."""
    views = _store(request).list_alerts(after_id=after_id, limit=limit, watch_id=watch_id)
    return AlertsOut(alerts=[AlertOut.of(v) for v in views])


@router.get("/alerts/{alert_id}", response_model=AlertOut, responses={404: {"model": ErrorOut}})
def get_alert(request: Request, alert_id: IdParam, viewer: AlertsReader) -> AlertOut:
    view = _store(request).get_alert(alert_id)
    if view is None:
        raise ApiError(404, f"no alert with id {alert_id}")
    return AlertOut.of(view)


@router.get("/watches", response_model=WatchesOut)
def list_watches(request: Request, viewer: WatchesReader) -> WatchesOut:
    now = utcnow()
    return WatchesOut(watches=[WatchOut.of(w, now) for w in _store(request).list_watches()])


@router.get("/status", response_model=StatusOut)
def status(request: Request, viewer: StatusReader) -> StatusOut:
    store = _store(request)
    return StatusOut(counts=CountsOut.of(store.counts()), sources=[SourceOut.of(s) for s in store.source_states()])
