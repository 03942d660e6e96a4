"""Watches in the web: the list with each watch's approval state, proposing a watch
(analysts), approving or rejecting someone else's (supervisors) and renewing one — all
through ``gov.watches``, so the browser gets exactly the rules of the command line:

    pending ──approve──► active ──(expiry)──► expired ──renew──► pending ──approve──► …
       └──reject──► rejected

A refusal (the protected-activity guard, approving one's own watch, a watch no longer
pending) is shown with its reason: 403 when a rule says no, 409 when the watch is in the
wrong state. Every decision is the request's audit entry (``watch.proposed``,
``watch.approved`` ...); a refusal is written as ``web.refused`` with its reason.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from watchfloor.governance.permissions import Permission
from watchfloor.governance.watches import Proposal
from watchfloor.model import Severity, Watch, WatchStatus
from watchfloor.query import QuerySyntaxError, parse
from watchfloor.web.api_models import JSON_NUMBER, ApiIn, ErrorOut, Id, IdParam, WatchOut
from watchfloor.web.audit import note
from watchfloor.web.csrf import csrf_protected
from watchfloor.web.errors import PageNotFound
from watchfloor.web.floor import back_to, flash, floor_page
from watchfloor.web.permissions import api_requires, page_requires
from watchfloor.web.refusals import Refused, api_call, gov_of, governed
from watchfloor.web.sessions import Viewer, clock_now

_REFUSALS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorOut, "description": "No valid session or API token."},
    403: {"model": ErrorOut, "description": "Your role lacks the permission, or a governance rule refused it."},
    404: {"model": ErrorOut, "description": "No such watch."},
    409: {"model": ErrorOut, "description": "The watch is not in a state that allows it (not pending, ...)."},
    400: {"model": ErrorOut, "description": "The query cannot be used: the error gives the position of the problem."},
}

api = APIRouter(prefix="/api", tags=["watches"], responses=_REFUSALS)
pages = APIRouter(include_in_schema=False)

PageReader = Annotated[Viewer, Depends(page_requires(Permission.read_watches))]
PageProposer = Annotated[Viewer, Depends(page_requires(Permission.propose_watch))]
PageProposing = Annotated[Viewer, Depends(csrf_protected(page_requires(Permission.propose_watch)))]
PageApproving = Annotated[Viewer, Depends(csrf_protected(page_requires(Permission.approve_watch)))]
ApiReader = Annotated[Viewer, Depends(api_requires(Permission.read_watches))]
ApiProposing = Annotated[Viewer, Depends(csrf_protected(api_requires(Permission.propose_watch)))]
ApiApproving = Annotated[Viewer, Depends(csrf_protected(api_requires(Permission.approve_watch)))]

FormText = Annotated[str, Form()]
MAX_DAYS = 3650
Days = Annotated[int, Field(ge=1, le=MAX_DAYS), JSON_NUMBER]


# ----------------------------------------------------------------------------- shared


class WatchIn(ApiIn):
    """A watch to propose. It is stored pending and matches nothing until a supervisor
    other than you approves it."""

    name: str = Field(min_length=1, max_length=200)
    query: str = Field(min_length=1, max_length=4000, description="In the watch language (docs/watch-language.md).")
    purpose: str = Field(description="A purpose of the policy (GET /api/policy).")
    legal_basis: str = Field(min_length=1, max_length=500)
    owner: str = Field(min_length=1, max_length=200, description="The desk or person responsible for it.")
    severity: Severity = Severity.medium
    sla_minutes: Annotated[int, Field(ge=1), JSON_NUMBER] | None = Field(
        None, description="Triage deadline; default: the severity's."
    )
    days: Days = Field(description="How long it should run; cut to the purpose's limit.")
    sources: list[str] = Field(default_factory=list, description="Only these sources (empty: all).")
    languages: list[str] = Field(default_factory=list, description="Only these languages (empty: all).")
    authorization_id: Id | None = Field(None, description="The account-watch authorization, for author:/mention:.")


class ProposalOut(BaseModel):
    watch: WatchOut
    held_for_review: list[str] = Field(description="Protected-activity categories: two approvals needed.")
    expiry_capped: bool = Field(description="The expiry asked for was beyond the purpose's limit and was cut.")


class RejectIn(ApiIn):
    reason: str = Field(min_length=1, max_length=1000)


class RenewIn(ApiIn):
    days: Days


def _split(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.replace("\n", ",").split(",") if part.strip())


def _watch_of(payload: WatchIn, request: Request) -> Watch:
    now = clock_now(request)
    return Watch(
        name=payload.name.strip(),
        query=payload.query.strip(),
        purpose=payload.purpose.strip(),
        legal_basis=payload.legal_basis.strip(),
        owner=payload.owner.strip(),
        severity=payload.severity,
        sla_minutes=payload.sla_minutes or payload.severity.default_sla_minutes,
        expires_at=now + timedelta(days=payload.days),
        sources=tuple(s.strip() for s in payload.sources if s.strip()),
        languages=tuple(s.strip() for s in payload.languages if s.strip()),
        authorization_id=payload.authorization_id,
        created_at=now,
    )


def _usable_query(request: Request, query: str) -> None:
    """A query that cannot be used is refused (400) with the place of the problem in the
    query as sent (``position``), before any governance rule looks at it."""
    try:
        parse(query.strip())
    except QuerySyntaxError as exc:
        position = exc.position + len(query) - len(query.lstrip())
        note(request, details={"refusal": f"the query cannot be used: {exc.message}", "decision": "propose"})
        raise Refused(
            400, f"the query cannot be used: {exc.message} (at position {position})", position=position
        ) from None


def _propose(request: Request, viewer: Viewer, payload: WatchIn) -> Proposal:
    _usable_query(request, payload.query)
    watch = _watch_of(payload, request)
    proposal: Proposal = governed(request, "propose", gov_of(request).watches.propose, watch, by=viewer.user.username)
    return proposal


def _existing(request: Request, watch_id: int) -> Watch:
    watch = gov_of(request).store.get_watch(watch_id)
    if watch is None:
        raise Refused(404, f"there is no watch {watch_id}")
    return watch


def _decide(request: Request, viewer: Viewer, watch_id: int, decision: str, **kwargs: object) -> Watch:
    _existing(request, watch_id)
    watches = gov_of(request).watches
    call = {"approve": watches.approve, "reject": watches.reject, "renew": watches.renew}[decision]
    decided: Watch = governed(request, decision, call, watch_id, by=viewer.user.username, **kwargs)
    return decided


# ----------------------------------------------------------------------------- API


@api.get("/watches/{watch_id}", response_model=WatchOut)
def get_watch(request: Request, watch_id: IdParam, viewer: ApiReader) -> WatchOut:
    watch = api_call(_existing, request, watch_id)
    assert isinstance(watch, Watch)
    return WatchOut.of(watch, clock_now(request))


@api.post("/watches", response_model=ProposalOut, status_code=201)
def propose_watch(request: Request, payload: WatchIn, viewer: ApiProposing) -> ProposalOut:
    """Propose a watch (pending until a supervisor other than you approves it). The
    protected-activity guard refuses some queries (403, with the reason) and holds others
    for two approvals (``held_for_review``)."""
    proposal = api_call(_propose, request, viewer, payload)
    assert isinstance(proposal, Proposal)
    held = proposal.watch.hold.split(",") if proposal.watch.hold else []
    return ProposalOut(
        watch=WatchOut.of(proposal.watch, clock_now(request)), held_for_review=held, expiry_capped=proposal.capped
    )


@api.post("/watches/{watch_id}/approve", response_model=WatchOut)
def approve_watch(request: Request, watch_id: IdParam, viewer: ApiApproving) -> WatchOut:
    """Approve a pending watch you did not propose (a held watch needs two such approvals)."""
    watch = api_call(_decide, request, viewer, watch_id, "approve")
    assert isinstance(watch, Watch)
    return WatchOut.of(watch, clock_now(request))


@api.post("/watches/{watch_id}/reject", response_model=WatchOut)
def reject_watch(request: Request, watch_id: IdParam, payload: RejectIn, viewer: ApiApproving) -> WatchOut:
    watch = api_call(_decide, request, viewer, watch_id, "reject", reason=payload.reason)
    assert isinstance(watch, Watch)
    return WatchOut.of(watch, clock_now(request))


@api.post("/watches/{watch_id}/renew", response_model=WatchOut)
def renew_watch(request: Request, watch_id: IdParam, payload: RenewIn, viewer: ApiProposing) -> WatchOut:
    """Ask for a new period: the watch goes back to pending and needs a new approval."""
    expires_at = clock_now(request) + timedelta(days=payload.days)
    watch = api_call(_decide, request, viewer, watch_id, "renew", expires_at=expires_at)
    assert isinstance(watch, Watch)
    return WatchOut.of(watch, clock_now(request))


# ----------------------------------------------------------------------------- pages


def _list_page(request: Request, viewer: Viewer, *, status_code: int = 200) -> Response:
    now = clock_now(request)
    watches = gov_of(request).store.list_watches()
    order = {"pending": 0, "active": 1, "disabled": 2, "expired": 3, "rejected": 4}
    watches.sort(key=lambda w: (order.get(w.state(now), 5), w.name.casefold()))
    response = floor_page(
        request, "watches.html", viewer=viewer, nav="watches", watches=watches, checked_at=now,
        pending=sum(1 for w in watches if w.status == WatchStatus.pending),
    )  # fmt: skip
    response.status_code = status_code
    return response


@pages.get("/watches")
def watches_page(request: Request, viewer: PageReader) -> Response:
    return _list_page(request, viewer)


def _form_page(
    request: Request,
    viewer: Viewer,
    *,
    values: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    policy = gov_of(request).policy
    purposes = [p for p in policy.purposes.values() if p.enabled]
    defaults = {"severity": "medium", "days": "30", "purpose": "", "owner": viewer.user.username}
    response = floor_page(
        request, "watch_new.html", viewer=viewer, nav="watches", purposes=purposes, severities=list(Severity),
        sla_max=policy.sla_max_minutes, values=defaults | (values or {}), error=error,
    )  # fmt: skip
    response.status_code = status_code
    return response


@pages.get("/watches/new")
def new_watch_form(request: Request, viewer: PageProposer) -> Response:
    return _form_page(request, viewer)


@pages.post("/watches")
def propose_watch_form(
    request: Request,
    viewer: PageProposing,
    name: FormText = "",
    query: FormText = "",
    purpose: FormText = "",
    legal_basis: FormText = "",
    owner: FormText = "",
    severity: FormText = "medium",
    sla_minutes: FormText = "",
    days: FormText = "",
    sources: FormText = "",
    languages: FormText = "",
    authorization_id: FormText = "",
) -> Response:
    values = {
        "name": name, "query": query, "purpose": purpose, "legal_basis": legal_basis, "owner": owner,
        "severity": severity, "sla_minutes": sla_minutes, "days": days, "sources": sources,
        "languages": languages, "authorization_id": authorization_id,
    }  # fmt: skip
    missing = [label for label, value in (("name", name), ("query", query), ("purpose", purpose),
               ("legal basis", legal_basis), ("owner", owner), ("days", days)) if not value.strip()]  # fmt: skip
    problem = f"Fill in: {', '.join(missing)}." if missing else None
    if problem is None and severity not in Severity.__members__:
        problem = "Choose a severity."
    numbers = {"days": days, "SLA minutes": sla_minutes, "authorization": authorization_id}
    bad = [label for label, value in numbers.items() if value.strip() and not value.strip().isdigit()]
    if problem is None and bad:
        problem = f"Give whole numbers for: {', '.join(bad)}."
    if problem is None and not 1 <= int(days) <= MAX_DAYS:
        problem = f"A watch runs 1 to {MAX_DAYS} days (the purpose may allow fewer)."
    if problem is not None:
        return _form_page(request, viewer, values=values, error=problem, status_code=400)
    payload = WatchIn.model_construct(
        name=name, query=query, purpose=purpose, legal_basis=legal_basis, owner=owner, severity=Severity(severity),
        sla_minutes=int(sla_minutes) if sla_minutes.strip() else None, days=int(days),
        sources=list(_split(sources)), languages=list(_split(languages)),
        authorization_id=int(authorization_id) if authorization_id.strip() else None,
    )  # fmt: skip
    try:
        proposal = _propose(request, viewer, payload)
    except Refused as refusal:
        return _form_page(request, viewer, values=values, error=refusal.message, status_code=refusal.status)
    text = (
        f"Proposed watch {proposal.watch.id} “{proposal.watch.name}”: "
        "pending until a supervisor other than you approves it."
    )
    if proposal.held:
        text += f" It touches protected activity ({proposal.watch.hold}): it needs two supervisors' approval."
    if proposal.capped:
        text += " Its expiry was cut to the purpose's limit."
    flash(request, viewer, text, "warn" if proposal.held else "ok")
    return back_to("/watches", "/watches")


def _page_decision(request: Request, viewer: Viewer, watch_id: int, decision: str, **kwargs: object) -> Response:
    try:
        watch = _decide(request, viewer, watch_id, decision, **kwargs)
    except Refused as refusal:
        if refusal.status == 404:
            raise PageNotFound(refusal.message) from None
        flash(request, viewer, f"Not done: {refusal.message}", "error")
        return _list_page(request, viewer, status_code=refusal.status)
    approved = watch.status == WatchStatus.approved
    done = {
        "approve": "approved" if approved else "reviewed (one more supervisor must approve it)",
        "reject": "rejected",
        "renew": "back to pending: it needs a new approval",
    }[decision]
    flash(request, viewer, f"Watch {watch_id} “{watch.name}”: {done}.")
    return back_to("/watches", "/watches")


@pages.post("/watches/{watch_id}/approve")
def approve_watch_form(request: Request, watch_id: IdParam, viewer: PageApproving) -> Response:
    return _page_decision(request, viewer, watch_id, "approve")


@pages.post("/watches/{watch_id}/reject")
def reject_watch_form(request: Request, watch_id: IdParam, viewer: PageApproving, reason: FormText = "") -> Response:
    return _page_decision(request, viewer, watch_id, "reject", reason=reason)


@pages.post("/watches/{watch_id}/renew")
def renew_watch_form(request: Request, watch_id: IdParam, viewer: PageProposing, days: FormText = "30") -> Response:
    if not days.strip().isdigit() or not 1 <= int(days) <= MAX_DAYS:
        flash(request, viewer, f"Not done: a watch runs 1 to {MAX_DAYS} days.", "error")
        return _list_page(request, viewer, status_code=400)
    return _page_decision(request, viewer, watch_id, "renew", expires_at=clock_now(request) + timedelta(days=int(days)))
