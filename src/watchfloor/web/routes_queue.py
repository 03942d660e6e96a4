"""The triage queue: the page (with bulk actions and keyboard shortcuts) and its JSON API."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response

from watchfloor.governance.permissions import Permission
from watchfloor.model import Disposition, Severity
from watchfloor.store.triage_repo import QueueFilter
from watchfloor.triage.actions import ActionResult
from watchfloor.triage.errors import FloorError
from watchfloor.web.api_models import ErrorOut, IdParam
from watchfloor.web.csrf import csrf_protected
from watchfloor.web.floor import back_to, clock_of, flash, floor_page, store_of, triage_of
from watchfloor.web.floor_models import (
    ActionOut,
    AlertIdsIn,
    AssigneesOut,
    AssignIn,
    DisposeIn,
    QueueItemOut,
    QueueOut,
    ReopenIn,
    TriageOut,
)
from watchfloor.web.permissions import api_requires, page_requires
from watchfloor.web.sessions import Viewer

QUEUE_PAGE = 200
_REFUSALS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut, "description": "The request was refused (e.g. a reason is missing)."},
    401: {"model": ErrorOut, "description": "No valid session."},
    403: {"model": ErrorOut, "description": "Your role lacks the permission, or the CSRF token is missing."},
}

api = APIRouter(prefix="/api", tags=["queue"], responses=_REFUSALS)
pages = APIRouter(include_in_schema=False)

ApiReader = Annotated[Viewer, Depends(api_requires(Permission.read_alerts))]
ApiTriager = Annotated[Viewer, Depends(csrf_protected(api_requires(Permission.triage)))]
ApiTriageReader = Annotated[Viewer, Depends(api_requires(Permission.triage))]
PageReader = Annotated[Viewer, Depends(page_requires(Permission.read_alerts))]
PageTriageAction = Annotated[Viewer, Depends(csrf_protected(page_requires(Permission.triage)))]


def queue_filter(view: str, viewer: Viewer, watch_id: int | None, severity: str | None) -> QueueFilter:
    severities = (Severity(severity),) if severity in Severity.__members__ else ()
    return QueueFilter(
        assignee=viewer.user.username if view == "mine" else None,
        unassigned=view == "unassigned",
        watch_id=watch_id,
        severities=severities,
    )


# ----------------------------------------------------------------------------- API


@api.get("/queue", response_model=QueueOut)
def get_queue(
    request: Request,
    viewer: ApiReader,
    view: Annotated[str, Query(pattern="^(all|mine|unassigned)$", description="all | mine | unassigned")] = "all",
    watch_id: Annotated[IdParam | None, Query(description="Only this watch.")] = None,
    severity: Annotated[Severity | None, Query(description="Only this severity.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = QUEUE_PAGE,
) -> QueueOut:
    """Open alerts, near-duplicates grouped, most urgent first (severity, score, time left)."""
    now = clock_of(request)()
    flt = queue_filter(view, viewer, watch_id, severity.value if severity else None)
    items = triage_of(request).queue(flt, limit=limit)
    return QueueOut(now=now, items=[QueueItemOut.of(i, now) for i in items])


@api.get("/alerts/{alert_id}/triage", response_model=TriageOut, responses={404: {"model": ErrorOut}})
def get_triage(request: Request, alert_id: IdParam, viewer: ApiReader) -> TriageOut:
    """Who holds an alert, what was decided, its SLA breach and its whole history."""
    store = store_of(request)
    state = store.triage_state(alert_id)
    if state is None:
        raise FloorError(404, f"no alert with id {alert_id}")
    status = store.alert_statuses([alert_id])[alert_id]
    return TriageOut.of(status.value, state, store.triage_history(alert_id))


@api.get("/assignees", response_model=AssigneesOut)
def get_assignees(request: Request, viewer: ApiTriageReader) -> AssigneesOut:
    return AssigneesOut(assignees=triage_of(request).assignable())


@api.post("/queue/claim", response_model=ActionOut)
def claim(request: Request, body: AlertIdsIn, viewer: ApiTriager) -> ActionOut:
    """Take alerts nobody holds (alerts someone else holds are left alone)."""
    return ActionOut.of(
        triage_of(request).claim(viewer.user, body.alert_ids, include_duplicates=body.include_duplicates)
    )


@api.post("/queue/release", response_model=ActionOut)
def release(request: Request, body: AlertIdsIn, viewer: ApiTriager) -> ActionOut:
    """Give alerts back to the queue."""
    result = triage_of(request).release(viewer.user, body.alert_ids, include_duplicates=body.include_duplicates)
    return ActionOut.of(result)


@api.post("/queue/assign", response_model=ActionOut)
def assign(request: Request, body: AssignIn, viewer: ApiTriager) -> ActionOut:
    """Give alerts to an account that can triage (also alerts someone else holds)."""
    result = triage_of(request).assign(
        viewer.user, body.alert_ids, body.assignee, include_duplicates=body.include_duplicates
    )
    return ActionOut.of(result)


@api.post(
    "/queue/dispose",
    response_model=ActionOut,
    responses={
        404: {"model": ErrorOut, "description": "add_to_case: no such case; open_case: no such alert."},
        409: {"model": ErrorOut, "description": "add_to_case: the case is closed or merged."},
    },
)
def dispose(request: Request, body: DisposeIn, viewer: ApiTriager) -> ActionOut:
    """Record a disposition. escalate, open_case and add_to_case need a written reason;
    open_case and add_to_case also the manage_cases permission."""
    result = triage_of(request).dispose(
        viewer.user,
        body.alert_ids,
        body.disposition,
        body.reason,
        case_id=body.case_id,
        case_title=body.case_title,
        include_duplicates=body.include_duplicates,
    )
    return ActionOut.of(result)


@api.post("/queue/reopen", response_model=ActionOut)
def reopen(request: Request, body: ReopenIn, viewer: ApiTriager) -> ActionOut:
    """Undo a dismissal, false positive or escalation: the alerts are open again."""
    return ActionOut.of(triage_of(request).reopen(viewer.user, body.alert_ids, body.reason))


# ----------------------------------------------------------------------------- pages


@pages.get("/queue")
def queue_page(
    request: Request,
    viewer: PageReader,
    view: str = "all",
    watch: str = "",
    severity: str = "",
) -> Response:
    store = store_of(request)
    view = view if view in ("all", "mine", "unassigned") else "all"
    watch_id = int(watch) if watch.isascii() and watch.isdigit() and len(watch) < 12 else None
    items = triage_of(request).queue(queue_filter(view, viewer, watch_id, severity), limit=QUEUE_PAGE)
    open_cases = [s.case for s in store.list_cases(limit=100) if s.case.status.value in ("open", "on_hold")]
    newest = store.list_alerts(newest_first=True, limit=1)
    return floor_page(
        request,
        "queue.html",
        viewer=viewer,
        nav="queue",
        items=items,
        view=view,
        watch_id=watch_id,
        severity=severity if severity in Severity.__members__ else "",
        watches=store.list_watches(),
        assignees=triage_of(request).assignable(),
        open_cases=open_cases,
        counts=store.floor_counts(clock_of(request)()),
        latest_id=newest[0].alert.id if newest else 0,
        here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    )


def _int_or_none(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isascii() and value.isdigit() and len(value) < 12 else None


@pages.post("/queue/act")
def queue_act(
    request: Request,
    viewer: PageTriageAction,
    action: Annotated[str, Form()],
    alert_ids: Annotated[list[IdParam], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
    reason: Annotated[str, Form()] = "",
    case_id: Annotated[str, Form()] = "",
    case_title: Annotated[str, Form()] = "",
    assignee: Annotated[str, Form()] = "",
    include_duplicates: Annotated[bool, Form()] = False,
    next: Annotated[str, Form()] = "/queue",
) -> Response:
    """Every queue form lands here: ``action`` is claim, release, assign, reopen or a disposition."""
    triage = triage_of(request)
    user = viewer.user
    try:
        result: ActionResult
        if action == "claim":
            result = triage.claim(user, alert_ids, include_duplicates=include_duplicates)
        elif action == "release":
            result = triage.release(user, alert_ids, include_duplicates=include_duplicates)
        elif action == "assign":
            result = triage.assign(user, alert_ids, assignee, include_duplicates=include_duplicates)
        elif action == "reopen":
            result = triage.reopen(user, alert_ids, reason)
        elif action in Disposition.__members__:
            disposition = Disposition(action)
            if disposition == Disposition.add_to_case and _int_or_none(case_id) is None:
                raise FloorError(400, "choose the case to add to")
            result = triage.dispose(
                user,
                alert_ids,
                disposition,
                reason,
                case_id=_int_or_none(case_id),
                case_title=case_title.strip() or None,
                include_duplicates=include_duplicates,
            )
        else:
            raise FloorError(400, f"unknown action {action!r}")
    except FloorError as exc:
        flash(request, viewer, exc.message, "error")
        return back_to(next, "/queue")
    flash(request, viewer, result.summary(), "ok" if result.changed else "warn")
    if result.action == "open_case" and result.case_id is not None:
        return back_to(f"/cases/{result.case_id}", "/queue")
    return back_to(next, "/queue")


__all__ = ["api", "pages"]
