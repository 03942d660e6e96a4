"""Wires the watch floor (queue, cases, wall, figures, notifications) into the web app.

``install_floor(app)`` is called once by ``create_app``: it adds the routers, the
template helpers (``can`` for permission-aware navigation, countdowns, markdown), the
app's clock (``app.state.clock``, replaceable in tests) and the handler that answers a
refused floor action.

Page forms post to ``/queue/act`` and ``/cases/{id}/act`` and come back to the page
with a one-line notice (kept in memory per session until the next page shows it); every
form action has a JSON twin under ``/api/``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from markupsafe import Markup

from watchfloor.cases.markdown import render_markdown
from watchfloor.cases.service import Cases
from watchfloor.governance.permissions import Permission, allowed
from watchfloor.model import TriageEvent, TriageState, utcnow
from watchfloor.notify.config import NotifySettings, load_notify_settings
from watchfloor.store import Store
from watchfloor.triage.actions import Triage
from watchfloor.triage.errors import FloorError
from watchfloor.web.errors import safe_next, wants_json
from watchfloor.web.rendering import page_response
from watchfloor.web.sessions import Viewer

MAX_FLASHES = 5


def viewer_can(viewer: Viewer | None, permission: str) -> bool:
    """For templates: does the signed-in viewer's role hold this permission?"""
    if viewer is None or viewer.user.must_change_password:
        return False
    try:
        return allowed(viewer.user.role, Permission(permission))
    except ValueError:
        return False


def countdown_text(seconds: float) -> str:
    """``12:04 left``, ``1 h 05 min left``, ``overdue 3:12`` (what queue.js keeps updating)."""
    late = seconds < 0
    total = int(abs(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours >= 24:
        text = f"{hours // 24} d {hours % 24} h"
    elif hours:
        text = f"{hours} h {minutes:02d} min"
    else:
        text = f"{minutes}:{secs:02d}"
    return f"overdue {text}" if late else f"{text} left"


def percent_text(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


# ----------------------------------------------------------------------------- per request


def clock_of(request: Request) -> Callable[[], datetime]:
    clock: Callable[[], datetime] = request.app.state.clock
    return clock


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def notify_of(request: Request) -> NotifySettings:
    notify: NotifySettings = request.app.state.notify
    return notify


def triage_of(request: Request) -> Triage:
    return Triage(store_of(request), clock=clock_of(request), public_url=notify_of(request).public_url)


def cases_of(request: Request) -> Cases:
    return Cases(store_of(request), clock=clock_of(request))


def flash(request: Request, viewer: Viewer, text: str, kind: str = "ok") -> None:
    """Keep a notice for this session's next page."""
    flashes: dict[str, list[tuple[str, str]]] = request.app.state.flashes
    with request.app.state.flash_lock:
        queue = flashes.setdefault(viewer.session.token_hash, [])
        queue.append((kind, text))
        del queue[:-MAX_FLASHES]


def take_flashes(request: Request, viewer: Viewer) -> list[tuple[str, str]]:
    with request.app.state.flash_lock:
        return request.app.state.flashes.pop(viewer.session.token_hash, [])


def back_to(next_path: str | None, default: str) -> RedirectResponse:
    target = safe_next(next_path) if next_path else default
    return RedirectResponse(target, status_code=303)


def floor_page(request: Request, template: str, *, viewer: Viewer, nav: str, **context: object) -> Response:
    """A floor page with the session's notices and the server's clock for countdowns."""
    return page_response(
        request,
        template,
        viewer=viewer,
        nav=nav,
        flashes=take_flashes(request, viewer),
        server_now=clock_of(request)(),
        **context,
    )


async def _floor_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FloorError)
    if wants_json(request):
        return JSONResponse({"error": exc.message}, status_code=exc.status)
    titles = {400: "Not done", 403: "Not permitted", 404: "Not found", 409: "Not done"}
    return page_response(
        request,
        "error.html",
        viewer=getattr(request.state, "viewer", None),
        status_code=exc.status,
        code=exc.status,
        title=titles.get(exc.status, "Not done"),
        message=exc.message,
    )


def install_floor(app: FastAPI) -> None:
    from watchfloor.web import routes_cases, routes_notify, routes_queue, routes_wall

    state = app.state
    if not hasattr(state, "clock"):
        state.clock = utcnow
    state.notify = load_notify_settings(state.settings)
    state.flashes = {}
    state.flash_lock = threading.Lock()
    store: Store = state.store

    def inbox_unread(viewer: Viewer | None) -> int:
        if not viewer_can(viewer, Permission.read_inbox.value):
            return 0
        assert viewer is not None
        return store.unread_count(viewer.user.username)

    def alert_triage(alert_id: int) -> tuple[TriageState, list[TriageEvent]] | None:
        state = store.triage_state(alert_id)
        return None if state is None else (state, store.triage_history(alert_id))

    def markdown(text: str) -> Markup:
        return render_markdown(text)

    env = state.templates.env
    env.globals.update(can=viewer_can, inbox_unread=inbox_unread, alert_triage=alert_triage)
    env.filters.update(countdown=countdown_text, percent=percent_text, markdown=markdown)
    app.add_exception_handler(FloorError, _floor_error)
    for module in (routes_queue, routes_cases, routes_wall, routes_notify):
        app.include_router(module.api)
        app.include_router(module.pages)
