"""The HTML pages of the watch floor: live feed, alert detail, status (watches: routes_watches.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from watchfloor.governance.permissions import Permission
from watchfloor.model import utcnow
from watchfloor.store import Store
from watchfloor.web.errors import PageNotFound
from watchfloor.web.permissions import page_requires
from watchfloor.web.rendering import page_response
from watchfloor.web.routes_network import alert_signals
from watchfloor.web.sessions import Viewer

router = APIRouter(include_in_schema=False)

FEED_SIZE = 50

AlertsReader = Annotated[Viewer, Depends(page_requires(Permission.read_alerts))]
StatusReader = Annotated[Viewer, Depends(page_requires(Permission.read_status))]


def _store(request: Request) -> Store:
    return request.app.state.store


def parse_alert_id(text: str) -> int | None:
    """An alert id from a URL segment: decimal digits only, within SQLite's integer range."""
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        return None
    return int(text)


@router.get("/")
def feed(request: Request, viewer: AlertsReader) -> Response:
    views = _store(request).list_alerts(newest_first=True, limit=FEED_SIZE)
    latest_id = max((v.alert.id or 0 for v in views), default=0)
    return page_response(request, "feed.html", viewer=viewer, nav="feed", views=views, latest_id=latest_id)


@router.get("/alerts/{alert_ref}")
def alert_detail(request: Request, alert_ref: str, viewer: AlertsReader) -> Response:
    alert_id = parse_alert_id(alert_ref)
    store = _store(request)
    view = store.get_alert(alert_id) if alert_id is not None else None
    if view is None:
        raise PageNotFound(f"There is no alert with id {alert_ref}.")
    watch = store.get_watch(view.alert.watch_id)
    return page_response(
        request, "alert.html", viewer=viewer, nav="feed", v=view, watch=watch, signals=alert_signals(store, view)
    )


@router.get("/status")
def status(request: Request, viewer: StatusReader) -> Response:
    store = _store(request)
    return page_response(
        request, "status.html", viewer=viewer, nav="status",
        counts=store.counts(), sources=store.source_states(), checked_at=utcnow(),
    )
