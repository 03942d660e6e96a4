"""Authorizations and the two-person unmask in the web, all through ``gov.authorizations``:

1. an analyst requests an authorization: an unmask of ONE pseudonym for ONE open case (or
   an account watch), with a legal basis or a legal-process reference, for some days;
2. a supervisor who is not the requester approves or denies it;
3. the requester reveals, within its scope: the answer shows the platform and the clear
   account once (it is never stored, never in a URL, never cached: ``no-store``), and the
   reveal is counted against the policy's limit and written as ``identity.revealed`` —
   which names the pseudonym, the case and the authorization, never the account.

Supervisors see every authorization; requesters see their own. Refusals show the reason.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from watchfloor.governance.authorizations import Reveal
from watchfloor.governance.permissions import Permission
from watchfloor.model import Authorization, AuthorizationKind, AuthorizationStatus
from watchfloor.web.api_models import JSON_NUMBER, ApiIn, ErrorOut, IdParam
from watchfloor.web.csrf import csrf_protected
from watchfloor.web.errors import PageNotFound
from watchfloor.web.floor import back_to, flash, floor_page
from watchfloor.web.permissions import api_requires, page_requires
from watchfloor.web.refusals import Refused, api_call, gov_of, governed
from watchfloor.web.sessions import Viewer, clock_now

_REFUSALS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorOut, "description": "No valid session or API token."},
    403: {"model": ErrorOut, "description": "Your role lacks the permission, or a governance rule refused it."},
    404: {"model": ErrorOut, "description": "No such authorization."},
    409: {"model": ErrorOut, "description": "Decided already, expired, or no reveals left."},
}

api = APIRouter(prefix="/api", tags=["authorizations"], responses=_REFUSALS)
pages = APIRouter(include_in_schema=False)

PageRequester = Annotated[Viewer, Depends(page_requires(Permission.request_unmask))]
PageRequesting = Annotated[Viewer, Depends(csrf_protected(page_requires(Permission.request_unmask)))]
PageDeciding = Annotated[Viewer, Depends(csrf_protected(page_requires(Permission.approve_unmask)))]
ApiRequester = Annotated[Viewer, Depends(api_requires(Permission.request_unmask))]
ApiRequesting = Annotated[Viewer, Depends(csrf_protected(api_requires(Permission.request_unmask)))]
ApiDeciding = Annotated[Viewer, Depends(csrf_protected(api_requires(Permission.approve_unmask)))]

FormText = Annotated[str, Form()]
MAX_DAYS = 365
_SEPARATORS = re.compile(r"[\s,;]+")


class AuthorizationOut(BaseModel):
    id: int
    kind: str = Field(description="unmask | account_watch")
    requester: str
    purpose: str
    pseudonyms: list[str] = Field(description="The scope: one pseudonym for an unmask.")
    case_id: str | None
    legal_basis: str
    legal_ref: str | None
    reason: str
    status: str = Field(description="requested | approved | denied | revoked")
    approver: str | None
    decision_note: str | None
    requested_at: str
    expires_at: str
    in_force: bool
    reveals: int
    max_reveals: int

    @classmethod
    def of(cls, a: Authorization, now: datetime) -> AuthorizationOut:
        return cls(
            id=a.id or 0, kind=a.kind.value, requester=a.requester, purpose=a.purpose, pseudonyms=list(a.pseudonyms),
            case_id=a.case_id, legal_basis=a.legal_basis, legal_ref=a.legal_ref, reason=a.reason,
            status=a.status.value, approver=a.approver, decision_note=a.decision_note,
            requested_at=a.requested_at.isoformat(), expires_at=a.expires_at.isoformat(),
            in_force=a.in_force(now), reveals=a.reveals, max_reveals=a.max_reveals,
        )  # fmt: skip


class AuthorizationsOut(BaseModel):
    authorizations: list[AuthorizationOut]


class AuthorizationIn(ApiIn):
    kind: AuthorizationKind = AuthorizationKind.unmask
    purpose: str = Field(min_length=1, max_length=100)
    pseudonyms: list[str] = Field(min_length=1, max_length=50)
    case_id: str | None = Field(None, max_length=20, description="Required for an unmask: an open case.")
    legal_basis: str = Field("", max_length=500)
    legal_ref: str | None = Field(None, max_length=500, description="A warrant, court order or request number.")
    reason: str = Field("", max_length=2000)
    days: Annotated[int, Field(ge=1, le=MAX_DAYS), JSON_NUMBER] = Field(
        description="Cut to the policy's limit, counted from the approval."
    )


class DecisionIn(ApiIn):
    note: str = Field("", max_length=1000)


class DenyIn(ApiIn):
    reason: str = Field(min_length=1, max_length=1000)


class RevealIn(ApiIn):
    pseudonym: str = Field(max_length=40)
    case_id: str | None = Field(None, max_length=20)


class RevealOut(BaseModel):
    pseudonym: str
    platform: str
    account: str = Field(description="The clear account. Shown to you once; not stored by this answer.")
    authorization_id: int
    reveal: int = Field(description="This was reveal number ... ")
    of: int = Field(description="... of at most this many under the authorization.")


# ----------------------------------------------------------------------------- shared


def _visible(request: Request, viewer: Viewer) -> list[Authorization]:
    every = gov_of(request).authorizations.list()
    if viewer.may(Permission.approve_unmask):
        return every
    return [a for a in every if a.requester == viewer.user.username]


def _request(request: Request, viewer: Viewer, payload: AuthorizationIn) -> Authorization:
    created: Authorization = governed(
        request, "request", gov_of(request).authorizations.request,
        kind=payload.kind, by=viewer.user.username, purpose=payload.purpose.strip(),
        pseudonyms=payload.pseudonyms, expires_at=clock_now(request) + timedelta(days=payload.days),
        legal_basis=payload.legal_basis, legal_ref=payload.legal_ref, case_id=(payload.case_id or "").strip() or None,
        reason=payload.reason,
    )  # fmt: skip
    return created


def _decide(request: Request, viewer: Viewer, authorization_id: int, decision: str, text: str) -> Authorization:
    auths = gov_of(request).authorizations
    if gov_of(request).store.get_authorization(authorization_id) is None:
        raise Refused(404, f"there is no authorization {authorization_id}")
    if decision == "approve":
        decided: Authorization = governed(
            request, decision, auths.approve, authorization_id, by=viewer.user.username, note=text or None
        )
    else:
        decided = governed(request, decision, auths.deny, authorization_id, by=viewer.user.username, reason=text)
    return decided


def _reveal(request: Request, viewer: Viewer, authorization_id: int, pseudonym: str, case_id: str | None) -> Reveal:
    revealed: Reveal = governed(
        request, "reveal", gov_of(request).authorizations.reveal, pseudonym,
        authorization_id=authorization_id, by=viewer.user.username, case_id=(case_id or "").strip() or None,
    )  # fmt: skip
    return revealed


def _reveal_out(r: Reveal) -> RevealOut:
    return RevealOut(
        pseudonym=r.pseudonym, platform=r.platform, account=r.account, authorization_id=r.authorization.id or 0,
        reveal=r.authorization.reveals, of=r.authorization.max_reveals,
    )  # fmt: skip


# ----------------------------------------------------------------------------- API


@api.get("/authorizations", response_model=AuthorizationsOut)
def list_authorizations(request: Request, viewer: ApiRequester) -> AuthorizationsOut:
    """Supervisors: every authorization. Others: the ones they requested."""
    now = clock_now(request)
    return AuthorizationsOut(authorizations=[AuthorizationOut.of(a, now) for a in _visible(request, viewer)])


@api.post("/authorizations", response_model=AuthorizationOut, status_code=201)
def request_authorization(request: Request, payload: AuthorizationIn, viewer: ApiRequesting) -> AuthorizationOut:
    """Request an authorization; a supervisor other than you decides it."""
    return AuthorizationOut.of(api_call(_request, request, viewer, payload), clock_now(request))


@api.post("/authorizations/{authorization_id}/approve", response_model=AuthorizationOut)
def approve_authorization(
    request: Request, authorization_id: IdParam, payload: DecisionIn, viewer: ApiDeciding
) -> AuthorizationOut:
    decided = api_call(_decide, request, viewer, authorization_id, "approve", payload.note)
    return AuthorizationOut.of(decided, clock_now(request))


@api.post("/authorizations/{authorization_id}/deny", response_model=AuthorizationOut)
def deny_authorization(
    request: Request, authorization_id: IdParam, payload: DenyIn, viewer: ApiDeciding
) -> AuthorizationOut:
    decided = api_call(_decide, request, viewer, authorization_id, "deny", payload.reason)
    return AuthorizationOut.of(decided, clock_now(request))


@api.post("/authorizations/{authorization_id}/reveal", response_model=RevealOut)
def reveal_identity(request: Request, authorization_id: IdParam, payload: RevealIn, viewer: ApiRequesting) -> RevealOut:
    """Reveal the account behind a pseudonym under your approved unmask authorization:
    counted, audited (``identity.revealed``), and shown in this answer only."""
    return _reveal_out(api_call(_reveal, request, viewer, authorization_id, payload.pseudonym, payload.case_id))


# ----------------------------------------------------------------------------- pages


def _list_page(
    request: Request,
    viewer: Viewer,
    *,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    error: str | None = None,
) -> Response:
    now = clock_now(request)
    policy = gov_of(request).policy
    response = floor_page(
        request, "authorizations.html", viewer=viewer, nav="authorizations", authorizations=_visible(request, viewer),
        now=now, purposes=[p for p in policy.purposes.values() if p.enabled], kinds=list(AuthorizationKind),
        requested=AuthorizationStatus.requested, approved=AuthorizationStatus.approved,
        values={"kind": "unmask", "days": "7"} | (values or {}), error=error,
        max_days=policy.unmask_max_days, max_reveals=policy.unmask_max_reveals,
    )  # fmt: skip
    response.status_code = status_code
    return response


@pages.get("/authorizations")
def authorizations_page(request: Request, viewer: PageRequester) -> Response:
    return _list_page(request, viewer)


@pages.post("/authorizations")
def request_authorization_form(
    request: Request,
    viewer: PageRequesting,
    kind: FormText = "unmask",
    purpose: FormText = "",
    pseudonyms: FormText = "",
    case_id: FormText = "",
    legal_basis: FormText = "",
    legal_ref: FormText = "",
    reason: FormText = "",
    days: FormText = "",
) -> Response:
    values = {
        "kind": kind, "purpose": purpose, "pseudonyms": pseudonyms, "case_id": case_id, "legal_basis": legal_basis,
        "legal_ref": legal_ref, "reason": reason, "days": days,
    }  # fmt: skip
    scope = [p for p in _SEPARATORS.split(pseudonyms) if p]
    problem = None
    if kind not in AuthorizationKind.__members__:
        problem = "Choose what the authorization is for."
    elif not purpose.strip() or not scope:
        problem = "Give the purpose and the pseudonym(s)."
    elif not days.strip().isdigit() or not 1 <= int(days) <= MAX_DAYS:
        problem = f"Give how many days it should last (1 to {MAX_DAYS}; the policy may allow fewer)."
    elif len(scope) > 50 or max(len(p) for p in scope) > 40 or len(reason) > 2000:
        problem = "That scope or reason is too long."
    if problem is not None:
        return _list_page(request, viewer, status_code=400, values=values, error=problem)
    payload = AuthorizationIn.model_construct(
        kind=AuthorizationKind(kind), purpose=purpose, pseudonyms=scope, case_id=case_id or None,
        legal_basis=legal_basis[:500], legal_ref=legal_ref[:500] or None, reason=reason, days=int(days),
    )  # fmt: skip
    try:
        created = _request(request, viewer, payload)
    except Refused as refusal:
        return _list_page(request, viewer, status_code=refusal.status, values=values, error=refusal.message)
    flash(request, viewer, f"Requested authorization {created.id}: a supervisor other than you decides it.")
    return back_to("/authorizations", "/authorizations")


def _page_decision(request: Request, viewer: Viewer, authorization_id: int, decision: str, text: str) -> Response:
    try:
        decided = _decide(request, viewer, authorization_id, decision, text)
    except Refused as refusal:
        if refusal.status == 404:
            raise PageNotFound(refusal.message) from None
        return _list_page(request, viewer, status_code=refusal.status, error=f"Not done: {refusal.message}")
    flash(request, viewer, f"Authorization {authorization_id} {decided.status.value}.")
    return back_to("/authorizations", "/authorizations")


@pages.post("/authorizations/{authorization_id}/approve")
def approve_form(request: Request, authorization_id: IdParam, viewer: PageDeciding, note: FormText = "") -> Response:
    return _page_decision(request, viewer, authorization_id, "approve", note[:1000])


@pages.post("/authorizations/{authorization_id}/deny")
def deny_form(request: Request, authorization_id: IdParam, viewer: PageDeciding, reason: FormText = "") -> Response:
    return _page_decision(request, viewer, authorization_id, "deny", reason[:1000])


@pages.post("/authorizations/{authorization_id}/reveal")
def reveal_form(
    request: Request,
    authorization_id: IdParam,
    viewer: PageRequesting,
    pseudonym: FormText = "",
    case_id: FormText = "",
) -> Response:
    try:
        revealed = _reveal(request, viewer, authorization_id, pseudonym[:40], case_id[:20])
    except Refused as refusal:
        if refusal.status == 404:
            raise PageNotFound(refusal.message) from None
        return _list_page(request, viewer, status_code=refusal.status, error=f"Not revealed: {refusal.message}")
    return floor_page(request, "reveal.html", viewer=viewer, nav="authorizations", r=_reveal_out(revealed))
