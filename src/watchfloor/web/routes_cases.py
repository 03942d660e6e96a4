"""Cases: the list, one case's page (alerts, evidence, notes, tasks, timeline, merge, split,
export) and the JSON API for all of it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from watchfloor.cases.export import export_case
from watchfloor.governance.permissions import Permission
from watchfloor.model import CaseStatus, TaskStatus
from watchfloor.store.cases_repo import UNSET
from watchfloor.triage.errors import FloorError
from watchfloor.web.api_models import MAX_ID, ErrorOut, IdParam
from watchfloor.web.csrf import csrf_protected
from watchfloor.web.floor import back_to, cases_of, clock_of, flash, floor_page, store_of
from watchfloor.web.floor_models import (
    ActionOut,
    CaseFileOut,
    CaseIn,
    CaseOut,
    CasesOut,
    CaseSummaryOut,
    CaseUpdateIn,
    EvidenceIn,
    MergeIn,
    NoteIn,
    NoteOut,
    SplitIn,
    TaskIn,
    TaskOut,
    TaskUpdateIn,
)
from watchfloor.web.permissions import api_requires, page_requires
from watchfloor.web.sessions import Viewer

_REFUSALS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut, "description": "The request was refused (bad input)."},
    401: {"model": ErrorOut, "description": "No valid session."},
    403: {"model": ErrorOut, "description": "Your role lacks the permission, or the CSRF token is missing."},
    404: {"model": ErrorOut, "description": "No such case (or task)."},
    409: {"model": ErrorOut, "description": "The case's state does not allow it (merged, closed, ...)."},
}
ZIP_RESPONSE: dict[int | str, dict[str, object]] = {
    200: {"content": {"application/zip": {}}, "description": "The evidence ZIP (see docs/analysts.md)."}
}

api = APIRouter(prefix="/api", tags=["cases"], responses=_REFUSALS)
pages = APIRouter(include_in_schema=False)

ApiReader = Annotated[Viewer, Depends(api_requires(Permission.read_cases))]
ApiManager = Annotated[Viewer, Depends(csrf_protected(api_requires(Permission.manage_cases)))]
ApiExporter = Annotated[Viewer, Depends(csrf_protected(api_requires(Permission.export_evidence)))]
PageReader = Annotated[Viewer, Depends(page_requires(Permission.read_cases))]
PageManager = Annotated[Viewer, Depends(csrf_protected(page_requires(Permission.manage_cases)))]
PageExporter = Annotated[Viewer, Depends(csrf_protected(page_requires(Permission.export_evidence)))]


def zip_response(request: Request, case_id: int, viewer: Viewer) -> Response:
    exported = export_case(store_of(request), case_id, exported_by=viewer.user.username, now=clock_of(request)())
    return Response(
        exported.data,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{exported.filename}"',
            "X-Watchfloor-Manifest-SHA256": exported.manifest_sha256,
        },
    )


# ----------------------------------------------------------------------------- API


@api.get("/cases", response_model=CasesOut)
def list_cases(request: Request, viewer: ApiReader, status: CaseStatus | None = None) -> CasesOut:
    """Cases, most recently changed first."""
    return CasesOut(cases=[CaseSummaryOut.of_summary(s) for s in store_of(request).list_cases(status=status)])


@api.post("/cases", response_model=CaseFileOut, status_code=201)
def create_case(request: Request, body: CaseIn, viewer: ApiManager) -> CaseFileOut:
    """Open a case, optionally with alerts (their posts are preserved as evidence; a reason is then required)."""
    case, _ = cases_of(request).open(
        viewer.user, body.title, alert_ids=body.alert_ids, reason=body.reason or "", owner=body.owner
    )
    return CaseFileOut.of(cases_of(request).file(case.id or 0))


@api.get("/cases/{case_id}", response_model=CaseFileOut)
def get_case(request: Request, case_id: IdParam, viewer: ApiReader) -> CaseFileOut:
    """A case with its alerts, evidence records (hashes, not bytes), notes, tasks and timeline."""
    return CaseFileOut.of(cases_of(request).file(case_id))


@api.post("/cases/{case_id}/update", response_model=CaseOut)
def update_case(request: Request, case_id: IdParam, body: CaseUpdateIn, viewer: ApiManager) -> CaseOut:
    """Change the title, status (open, on_hold, closed) or owner."""
    return CaseOut.of(
        cases_of(request).update(viewer.user, case_id, title=body.title, status=body.status, owner=body.owner)
    )


@api.post("/cases/{case_id}/notes", response_model=NoteOut, status_code=201)
def add_note(request: Request, case_id: IdParam, body: NoteIn, viewer: ApiManager) -> NoteOut:
    return NoteOut.of(cases_of(request).note(viewer.user, case_id, body.markdown))


@api.post("/cases/{case_id}/tasks", response_model=TaskOut, status_code=201)
def add_task(request: Request, case_id: IdParam, body: TaskIn, viewer: ApiManager) -> TaskOut:
    return TaskOut.of(
        cases_of(request).add_task(viewer.user, case_id, body.title, assignee=body.assignee, due_at=body.due_at)
    )


@api.post("/cases/{case_id}/tasks/{task_id}", response_model=TaskOut)
def update_task(
    request: Request, case_id: IdParam, task_id: IdParam, body: TaskUpdateIn, viewer: ApiManager
) -> TaskOut:
    """Mark a task done or open again, (un)assign it, change its due date."""
    given = body.model_fields_set
    return TaskOut.of(
        cases_of(request).update_task(
            viewer.user,
            case_id,
            task_id,
            status=body.status,
            assignee=body.assignee if "assignee" in given else UNSET,
            due_at=body.due_at if "due_at" in given else UNSET,
        )
    )


@api.post("/cases/{case_id}/evidence", response_model=ActionOut)
def add_evidence(request: Request, case_id: IdParam, body: EvidenceIn, viewer: ApiManager) -> ActionOut:
    """Add alerts to the case; each one's post is preserved as evidence (raw bytes, SHA-256, capture time)."""
    return ActionOut.of(cases_of(request).add_alerts(viewer.user, case_id, body.alert_ids, body.reason))


@api.post("/cases/{case_id}/merge", response_model=CaseOut)
def merge_case(request: Request, case_id: IdParam, body: MergeIn, viewer: ApiManager) -> CaseOut:
    """Move everything of this case into another one; this one is marked merged."""
    return CaseOut.of(cases_of(request).merge(viewer.user, case_id, body.into_case_id, body.reason))


@api.post("/cases/{case_id}/split", response_model=CaseOut, status_code=201)
def split_case(request: Request, case_id: IdParam, body: SplitIn, viewer: ApiManager) -> CaseOut:
    """Move some alerts (and their evidence) into a new case; returns the new case."""
    return CaseOut.of(cases_of(request).split(viewer.user, case_id, body.alert_ids, body.title, body.reason))


@api.post("/cases/{case_id}/export", response_class=Response, responses=ZIP_RESPONSE)
def export(request: Request, case_id: IdParam, viewer: ApiExporter) -> Response:
    """The case as an evidence ZIP (manifest of hashes, JSON, readable report, raw bytes); the
    export is recorded with its fingerprint (header X-Watchfloor-Manifest-SHA256)."""
    return zip_response(request, case_id, viewer)


# ----------------------------------------------------------------------------- pages


@pages.get("/cases")
def cases_page(request: Request, viewer: PageReader, status: str = "") -> Response:
    chosen = CaseStatus(status) if status in CaseStatus.__members__ else None
    return floor_page(
        request,
        "cases.html",
        viewer=viewer,
        nav="cases",
        cases=store_of(request).list_cases(status=chosen),
        status=status if chosen else "",
        statuses=list(CaseStatus),
    )


@pages.post("/cases")
def new_case(request: Request, viewer: PageManager, title: Annotated[str, Form()] = "") -> Response:
    try:
        case, _ = cases_of(request).open(viewer.user, title)
    except FloorError as exc:
        flash(request, viewer, exc.message, "error")
        return back_to("/cases", "/cases")
    flash(request, viewer, f"Opened case {case.id}.")
    return back_to(f"/cases/{case.id}", "/cases")


def _case_ref(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise FloorError(404, f"There is no case with id {text}.")
    return int(text)


@pages.get("/cases/{case_ref}")
def case_page(request: Request, case_ref: str, viewer: PageReader) -> Response:
    cases = cases_of(request)
    cf = cases.file(_case_ref(case_ref))
    others = [
        s.case
        for s in store_of(request).list_cases(limit=200)
        if s.case.id != cf.case.id and s.case.status != CaseStatus.merged
    ]
    return floor_page(
        request,
        "case.html",
        viewer=viewer,
        nav="cases",
        cf=cf,
        members=cases.members(),
        others=others,
        statuses=[s for s in CaseStatus if s != CaseStatus.merged],
    )


def _ids(text: str) -> list[int]:
    """Alert ids typed by people: ``12, 15 17``."""
    out = []
    for part in text.replace(",", " ").split():
        if not part.isascii() or not part.isdigit() or len(part) > 18:
            raise FloorError(400, f"{part!r} is not an alert id")
        out.append(int(part))
    return out


def _due(text: str) -> datetime | None:
    """A due date from a ``datetime-local`` or ``date`` input, read as UTC."""
    text = text.strip()
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise FloorError(400, f"{text!r} is not a date") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@pages.post("/cases/{case_id}/act")
def case_act(
    request: Request,
    case_id: IdParam,
    viewer: PageManager,
    action: Annotated[str, Form()],
    title: Annotated[str, Form()] = "",
    status: Annotated[str, Form()] = "",
    owner: Annotated[str, Form()] = "",
    body: Annotated[str, Form()] = "",
    assignee: Annotated[str, Form()] = "",
    due_at: Annotated[str, Form()] = "",
    task_id: Annotated[int, Form(ge=0, le=MAX_ID)] = 0,
    alert_ids: Annotated[list[IdParam], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
    alert_refs: Annotated[str, Form()] = "",
    into_case_id: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
) -> Response:
    """Every form of a case page lands here; ``action`` says which."""
    cases = cases_of(request)
    user = viewer.user
    here = f"/cases/{case_id}"
    try:
        if action == "update":
            chosen = CaseStatus(status) if status in CaseStatus.__members__ else None
            cases.update(user, case_id, title=title or None, status=chosen, owner=owner or None)
            message = "Case updated."
        elif action == "note":
            cases.note(user, case_id, body)
            message = "Note added."
        elif action == "task":
            cases.add_task(user, case_id, title, assignee=assignee or None, due_at=_due(due_at))
            message = "Task added."
        elif action in ("task_done", "task_open"):
            done = action == "task_done"
            cases.update_task(user, case_id, task_id, status=TaskStatus.done if done else TaskStatus.open)
            message = "Task done." if done else "Task open again."
        elif action == "evidence":
            result = cases.add_alerts(user, case_id, _ids(alert_refs) or alert_ids, reason)
            message = result.summary()
        elif action == "merge":
            target = int(into_case_id) if into_case_id.isdigit() and len(into_case_id) < 18 else 0
            if not target:
                raise FloorError(400, "choose the case to merge into")
            cases.merge(user, case_id, target, reason)
            flash(request, viewer, f"Case {case_id} merged into case {target}.")
            return back_to(f"/cases/{target}", "/cases")
        elif action == "split":
            new = cases.split(user, case_id, alert_ids, title, reason)
            flash(request, viewer, f"Split {len(alert_ids)} alert(s) into the new case {new.id}.")
            return back_to(f"/cases/{new.id}", here)
        else:
            raise FloorError(400, f"unknown action {action!r}")
    except FloorError as exc:
        flash(request, viewer, exc.message, "error")
        return back_to(here, "/cases")
    flash(request, viewer, message)
    return back_to(here, "/cases")


@pages.post("/cases/{case_id}/export")
def export_page(request: Request, case_id: IdParam, viewer: PageExporter) -> Response:
    """The export button: the ZIP as a download (recorded in the case's timeline)."""
    return zip_response(request, case_id, viewer)
