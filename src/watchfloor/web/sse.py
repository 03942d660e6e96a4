"""Server-sent events: new alerts pushed to the live feed as rendered table rows.

GET /events/alerts?after=ID streams every alert with an id above ``ID`` (or above the
``Last-Event-ID`` header a reconnecting browser sends), oldest first, each as::

    event: alert
    data: <tr ...>...</tr>        (one ``data:`` line per line of HTML)
    id: 1234

The alerts always come from the store (``after_id`` paging), so nothing is lost between
a wake-up and a read. Between reads the stream waits for the pipeline's
:class:`~watchfloor.pipeline.notify.AlertSignal` (same process: immediate) or at most one
second (another process, or no signal: polling). It sends a ``: keepalive`` comment
every 15 seconds, re-checks the session then (a stream ends when its session is logged
out or expires), and ends when the client goes away or the server shuts down.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from watchfloor.governance.permissions import Permission
from watchfloor.pipeline.notify import AlertSignal
from watchfloor.store import Store
from watchfloor.web.permissions import api_requires
from watchfloor.web.rendering import render_alert_row
from watchfloor.web.sessions import Viewer, session_alive

router = APIRouter(include_in_schema=False)

KEEPALIVE_S = 15.0
POLL_S = 1.0
BATCH = 100
RETRY_MS = 3000  # how long a browser waits before reconnecting a dropped stream


def sse_message(event: str, data: str, event_id: int | None = None) -> str:
    """One SSE message; every line of ``data`` gets its own ``data:`` field."""
    lines = data.splitlines() or [""]
    out = [f"event: {event}\n", *(f"data: {line}\n" for line in lines)]
    if event_id is not None:
        out.append(f"id: {event_id}\n")
    out.append("\n")
    return "".join(out)


def _as_id(value: str | None) -> int:
    if value is None:
        return 0
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) <= 18 else 0


def start_after(after: str | None, last_event_id: str | None) -> int:
    """Where a stream starts: after the query's id, or the browser's Last-Event-ID if later."""
    return max(_as_id(after), _as_id(last_event_id))


def streams_closing(app: FastAPI) -> threading.Event:
    """Set when the server shuts down: every open stream ends within a second."""
    closing: threading.Event = app.state.streams_closing
    return closing


async def alert_stream(request: Request, after_id: int, session_digest: str) -> AsyncIterator[str]:
    state = request.app.state
    store: Store = state.store
    signal: AlertSignal | None = state.signal
    closing = streams_closing(request.app)
    loop = asyncio.get_running_loop()
    last = after_id
    yield f"retry: {RETRY_MS}\n\n"
    next_keepalive = loop.time() + KEEPALIVE_S
    while not closing.is_set():
        if await request.is_disconnected():
            return
        views = await run_in_threadpool(store.list_alerts, after_id=last, limit=BATCH)
        for view in views:
            last = view.alert.id or last
            yield sse_message("alert", render_alert_row(state.templates, view, fresh=True), last)
        if len(views) == BATCH:
            continue  # a backlog: read on without waiting
        if loop.time() >= next_keepalive:
            if not await run_in_threadpool(session_alive, store, session_digest):
                return
            yield ": keepalive\n\n"
            next_keepalive = loop.time() + KEEPALIVE_S
        if signal is None or (signal.latest > last and not views):
            # no signal, or it announces an id this store does not show: poll
            await asyncio.sleep(POLL_S)
        else:
            await signal.wait_newer(last, timeout=POLL_S)


@router.get("/events/alerts")
def alert_events(
    request: Request,
    viewer: Annotated[Viewer, Depends(api_requires(Permission.read_alerts))],
    after: Annotated[str | None, Query()] = None,
) -> StreamingResponse:
    start = start_after(after, request.headers.get("last-event-id"))
    return StreamingResponse(
        alert_stream(request, start, viewer.session.token_hash),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
