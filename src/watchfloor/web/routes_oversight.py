"""The auditor's pages: the audit log, its verification and signed checkpoints, the
transparency report for a chosen period, and the policy in force — with a JSON twin each.

Auditors (and admins) read the log; everyone with ``read_reports`` / ``read_policy`` reads
the report and the policy. None of these shows content: audit entries hold ids,
pseudonyms, counts and reasons by construction (governance/audit.py), the report holds
counts and rules only (governance/transparency.py).

What these pages do is audited like the command line: ``audit.verified``,
``audit.checkpoint`` and ``report.transparency`` are the entries of those requests; reading
the log is a ``web.read`` / ``web.search`` entry like every other read.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from watchfloor.governance.audit import (
    CheckpointError,
    VerifyReport,
    decode_entry,
    entry_dict,
    log_origin,
    parse_checkpoint,
    verify_log,
)
from watchfloor.governance.keys import KeyringError, parse_verifier_key, verifier_key_string
from watchfloor.governance.permissions import ROLE_PERMISSIONS, Permission
from watchfloor.governance.transparency import build_report, render_html
from watchfloor.model import Checkpoint
from watchfloor.store.web_accounts_repo import AuditQuery
from watchfloor.web.api_models import MAX_ID, ApiIn, ErrorOut, IsoDay
from watchfloor.web.audit import recorded
from watchfloor.web.csrf import csrf_protected
from watchfloor.web.errors import ApiError
from watchfloor.web.floor import floor_page
from watchfloor.web.permissions import api_requires, page_requires
from watchfloor.web.refusals import gov_of
from watchfloor.web.sessions import Viewer, clock_now

_REFUSALS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorOut, "description": "No valid session or API token."},
    403: {"model": ErrorOut, "description": "Your role lacks the permission."},
}

api = APIRouter(prefix="/api", tags=["oversight"], responses=_REFUSALS)
pages = APIRouter(include_in_schema=False)

PageAudit = Annotated[Viewer, Depends(page_requires(Permission.read_audit))]
PageAuditAct = Annotated[Viewer, Depends(csrf_protected(page_requires(Permission.read_audit)))]
PageReports = Annotated[Viewer, Depends(page_requires(Permission.read_reports))]
PagePolicy = Annotated[Viewer, Depends(page_requires(Permission.read_policy))]
ApiAudit = Annotated[Viewer, Depends(api_requires(Permission.read_audit))]
ApiAuditAct = Annotated[Viewer, Depends(csrf_protected(api_requires(Permission.read_audit)))]
ApiReports = Annotated[Viewer, Depends(api_requires(Permission.read_reports))]
ApiPolicy = Annotated[Viewer, Depends(api_requires(Permission.read_policy))]

PAGE_SIZE = 50
MAX_PAGE = 500
REPORT_DAYS = 30  # the period the report page starts with
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(9999, 12, 30)  # the days a period may start or end on
MAX_CHECKPOINT_CHARS = 4000
_STYLE = re.compile(r"<style>(.*?)</style>", re.DOTALL)


# ----------------------------------------------------------------------------- the log


def _on_page(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``call(...)`` for a page: an :class:`ApiError` becomes an error page (or JSON, for JSON clients)."""
    try:
        return call(*args, **kwargs)
    except ApiError as exc:
        raise StarletteHTTPException(exc.status_code, exc.message) from None


def _day(value: str | date | None, what: str) -> date | None:
    """A day of a period: given as a date (the API) or as text (the pages' forms)."""
    if not value:
        return None
    if isinstance(value, date):
        day = value
    else:
        try:
            day = date.fromisoformat(value[:10])
        except ValueError:
            raise ApiError(422, f"{what} {value!r}: use a date like 2026-01-31") from None
    if not FIRST_DAY <= day <= LAST_DAY:  # further out, the period's arithmetic overflows
        raise ApiError(400, f"{what} {day.isoformat()}: give a day from {FIRST_DAY} to {LAST_DAY}")
    return day


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


class AuditEntryOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    target: str | None
    purpose: str | None
    case: str | None
    details: dict[str, Any]


class AuditPageOut(BaseModel):
    size: int = Field(description="Entries in the whole log.")
    entries: list[AuditEntryOut] = Field(description="Newest first.")
    next_before: int | None = Field(description="Pass as ?before= for the next (older) page; null at the end.")


def _audit_page(
    request: Request,
    *,
    actor: str | None,
    action: str | None,
    since: str | date | None,
    until: str | date | None,
    before: int | None,
    limit: int,
) -> tuple[AuditPageOut, AuditQuery]:
    first, last = _day(since, "from"), _day(until, "to")
    query = AuditQuery(
        before=before, limit=limit, actor=(actor or "").strip() or None, action=(action or "").strip() or None,
        since=_start_of(first) if first else None, until=_start_of(last) + timedelta(days=1) if last else None,
    )  # fmt: skip
    store = gov_of(request).store
    rows = store.audit_page(query)
    entries = [AuditEntryOut.model_validate(entry_dict(decode_entry(r.entry))) for r in rows]
    size, _ = store.audit_head()
    more = len(rows) == limit and rows[-1].seq > 0
    return AuditPageOut(size=size, entries=entries, next_before=rows[-1].seq if more else None), query


Text = Annotated[str | None, Query(max_length=200)]


_BAD_PERIOD: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut, "description": f"A day outside {FIRST_DAY} to {LAST_DAY}, or a period that ends first."}
}


@api.get("/audit", response_model=AuditPageOut, responses=_BAD_PERIOD)
def audit_entries(
    request: Request,
    viewer: ApiAudit,
    actor: Text = None,
    action: Annotated[str | None, Query(max_length=200, description="Exact, or a prefix ending in '.'")] = None,
    since: Annotated[IsoDay | None, Query(alias="from", description="First day (UTC), e.g. 2026-01-01.")] = None,
    until: Annotated[IsoDay | None, Query(alias="to", description="Last day (UTC), included.")] = None,
    before: Annotated[int | None, Query(ge=0, le=MAX_ID, description="Only entries older than this seq.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = PAGE_SIZE,
) -> AuditPageOut:
    """The audit log, newest first: who, when, what, purpose, case — never content."""
    page, _ = _audit_page(request, actor=actor, action=action, since=since, until=until, before=before, limit=limit)
    return page


@pages.get("/audit")
def audit_page(
    request: Request,
    viewer: PageAudit,
    actor: str = "",
    action: str = "",
    since: Annotated[str, Query(alias="from")] = "",
    until: Annotated[str, Query(alias="to")] = "",
    before: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
) -> Response:
    page, _ = _on_page(
        _audit_page, request, actor=actor[:200], action=action[:200], since=since, until=until, before=before,
        limit=PAGE_SIZE,
    )  # fmt: skip
    filters = {"actor": actor, "action": action, "from": since, "to": until}
    return floor_page(
        request, "audit.html", viewer=viewer, nav="audit", page=page, filters=filters,
        actions=gov_of(request).store.audit_actions(),
        next_query={**{k: v for k, v in filters.items() if v}, "before": page.next_before},
    )  # fmt: skip


# ----------------------------------------------------------------------------- verification


class ProblemOut(BaseModel):
    kind: str
    where: str
    first: int | None
    last: int | None
    message: str


class VerifyOut(BaseModel):
    ok: bool
    size: int
    root: str
    checkpoints_checked: int
    witnessed_checked: int
    signatures_checked: bool = Field(description="False when the deployment has no verifier key.")
    verifier_key: str | None = Field(description="Give it to your witness once (docs/oversight.md).")
    problems: list[ProblemOut]


def _verify(request: Request, viewer: Viewer, *, checkpoint: str = "", key: str = "") -> VerifyOut:
    gov = gov_of(request)
    try:
        public = parse_verifier_key(key)[1] if key.strip() else gov.keyring.verify_key()
    except KeyringError as exc:
        if key.strip():
            raise ApiError(400, f"the verifier key cannot be used: {exc}") from None
        public = None
    witnessed: list[Checkpoint] = []
    if checkpoint.strip():
        if public is None:
            raise ApiError(400, "a witnessed checkpoint needs a verifier key to check its signature")
        if len(checkpoint) > MAX_CHECKPOINT_CHARS:
            raise ApiError(400, "that is not a checkpoint (too long)")
        try:
            witnessed.append(parse_checkpoint(checkpoint.replace("\r\n", "\n"), public))
        except CheckpointError as exc:
            raise ApiError(400, f"the checkpoint cannot be used: {exc}") from None
    report: VerifyReport = verify_log(gov.store, public, witnessed=witnessed)
    gov.audit.record(
        actor=viewer.user.username,
        action="audit.verified",
        target="audit",
        details={
            "size": report.size, "ok": report.ok, "problems": len(report.problems), "witnessed": len(witnessed),
            "via": viewer.via,
        },
    )  # fmt: skip
    recorded(request)
    return VerifyOut(
        ok=report.ok,
        size=report.size,
        root=report.root.hex(),
        checkpoints_checked=report.checkpoints_checked,
        witnessed_checked=report.witnessed_checked,
        signatures_checked=public is not None,
        verifier_key=verifier_key_string(log_origin(public), public) if public is not None else None,
        problems=[
            ProblemOut(kind=p.kind, where=p.where(), first=p.first, last=p.last, message=p.message)
            for p in report.problems
        ],
    )


@api.get("/audit/verify", response_model=VerifyOut)
def verify_api(request: Request, viewer: ApiAudit) -> VerifyOut:
    """Verify the whole log: every entry against its hash, its place and the history before
    it, the tree head and every stored checkpoint. Recorded as ``audit.verified``."""
    return _verify(request, viewer)


class WitnessIn(ApiIn):
    checkpoint: str = Field(max_length=MAX_CHECKPOINT_CHARS, description="A signed checkpoint note you kept.")
    verifier_key: str = Field("", max_length=500, description="The key you pinned; default: the deployment's.")


@api.post(
    "/audit/verify",
    response_model=VerifyOut,
    responses={400: {"model": ErrorOut, "description": "The checkpoint or the verifier key cannot be used."}},
)
def verify_witnessed_api(request: Request, payload: WitnessIn, viewer: ApiAuditAct) -> VerifyOut:
    """Verify the log against a checkpoint you kept: the log must extend it."""
    return _verify(request, viewer, checkpoint=payload.checkpoint, key=payload.verifier_key)


def _verify_page(request: Request, viewer: Viewer, *, checkpoint: str = "", key: str = "") -> Response:
    error = None
    try:
        result = _verify(request, viewer, checkpoint=checkpoint, key=key)
    except ApiError as exc:
        error, result = exc.message, _verify(request, viewer)
    response = floor_page(
        request, "audit_verify.html", viewer=viewer, nav="audit", result=result, error=error,
        checkpoint=checkpoint, key=key,
    )  # fmt: skip
    if error is not None:
        response.status_code = 400
    return response


@pages.get("/audit/verify")
def verify_page(request: Request, viewer: PageAudit) -> Response:
    return _verify_page(request, viewer)


@pages.post("/audit/verify")
def verify_witnessed_page(
    request: Request,
    viewer: PageAuditAct,
    checkpoint: Annotated[str, Form(max_length=MAX_CHECKPOINT_CHARS)] = "",
    verifier_key: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    return _verify_page(request, viewer, checkpoint=checkpoint, key=verifier_key)


class CheckpointOut(BaseModel):
    tree_size: int
    root: str
    note: str = Field(description="A c2sp.org/tlog-checkpoint signed note: keep it, or hand it to a witness.")
    verifier_key: str


def _checkpoint(request: Request, viewer: Viewer) -> CheckpointOut:
    gov = gov_of(request)
    try:
        key = gov.keyring.signing_key()
    except KeyringError as exc:
        raise ApiError(
            409, f"this deployment has no audit signing key ({exc}); the operator runs `watchfloor init`"
        ) from None
    gov.audit.record(actor=viewer.user.username, action="audit.checkpoint", target="audit", details={"via": viewer.via})
    recorded(request)
    signed = gov.audit.checkpoint(key)
    public = key.public_key()
    return CheckpointOut(
        tree_size=signed.tree_size,
        root=signed.root_hash.hex(),
        note=signed.note,
        verifier_key=verifier_key_string(log_origin(public), public),
    )


@api.post(
    "/audit/checkpoint",
    response_model=CheckpointOut,
    responses={409: {"model": ErrorOut, "description": "The deployment has no audit signing key."}},
)
def checkpoint_api(request: Request, viewer: ApiAuditAct) -> CheckpointOut:
    """Sign the current tree head now and return it (also kept by the deployment)."""
    return _checkpoint(request, viewer)


@pages.post("/audit/checkpoint")
def checkpoint_download(request: Request, viewer: PageAuditAct) -> Response:
    signed = _on_page(_checkpoint, request, viewer)
    name = f"watchfloor-checkpoint-{signed.tree_size}-{clock_now(request):%Y%m%d}.txt"
    return Response(
        signed.note,
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# ----------------------------------------------------------------------------- the report


def _period(request: Request, since: str | date | None, until: str | date | None) -> tuple[date, date]:
    today = clock_now(request).date()
    last = _day(until, "to") or today
    first = _day(since, "from") or max(FIRST_DAY, last - timedelta(days=REPORT_DAYS - 1))
    if last < first:
        raise ApiError(400, "the period ends before it starts")
    return first, last


def _report(request: Request, viewer: Viewer, first: date, last: date, form: str) -> dict[str, Any]:
    gov = gov_of(request)
    start, end = _start_of(first), _start_of(last) + timedelta(days=1)
    report = build_report(gov, start, end)
    gov.audit.record(
        actor=viewer.user.username,
        action="report.transparency",
        target="report",
        details={"from": start.isoformat(), "to": end.isoformat(), "format": form, "via": viewer.via},
    )
    recorded(request)
    return report


@api.get("/reports/transparency", responses=_BAD_PERIOD)
def transparency_api(
    request: Request,
    viewer: ApiReports,
    since: Annotated[IsoDay | None, Query(alias="from", description="First day (UTC).")] = None,
    until: Annotated[IsoDay | None, Query(alias="to", description="Last day (UTC), included.")] = None,
) -> dict[str, Any]:
    """The transparency report for the period (the same as ``watchfloor report transparency``):
    counts and rules, no personal data. Default: the last 30 days."""
    first, last = _period(request, since, until)
    return _report(request, viewer, first, last, "json")


@pages.get("/reports/transparency")
def transparency_page(
    request: Request,
    viewer: PageReports,
    since: Annotated[str, Query(alias="from", max_length=40)] = "",
    until: Annotated[str, Query(alias="to", max_length=40)] = "",
) -> Response:
    first, last = _on_page(_period, request, since, until)
    report = _report(request, viewer, first, last, "page")
    return floor_page(
        request, "report.html", viewer=viewer, nav="reports", r=report, first=first, last=last,
        period_query={"from": first.isoformat(), "to": last.isoformat()},
    )  # fmt: skip


def _download(content: str, media_type: str, name: str, csp: str | None = None) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if csp:
        headers["Content-Security-Policy"] = csp
    return Response(content, media_type=media_type, headers=headers)


@pages.get("/reports/transparency.html")
def transparency_html(
    request: Request,
    viewer: PageReports,
    since: Annotated[str, Query(alias="from", max_length=40)] = "",
    until: Annotated[str, Query(alias="to", max_length=40)] = "",
) -> Response:
    first, last = _on_page(_period, request, since, until)
    html = render_html(_report(request, viewer, first, last, "html"))
    # the report is one self-contained page with its own <style>: allow exactly that style
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(m.group(1).encode()).digest()).decode()}'"
        for m in _STYLE.finditer(html)
    )
    styles = hashes or "'none'"
    csp = f"default-src 'none'; style-src {styles}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    return _download(html, "text/html; charset=utf-8", f"transparency-{first}-{last}.html", csp)


@pages.get("/reports/transparency.json")
def transparency_json(
    request: Request,
    viewer: PageReports,
    since: Annotated[str, Query(alias="from", max_length=40)] = "",
    until: Annotated[str, Query(alias="to", max_length=40)] = "",
) -> Response:
    first, last = _on_page(_period, request, since, until)
    report = _report(request, viewer, first, last, "json")
    text = json.dumps(report, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    return _download(text, "application/json", f"transparency-{first}-{last}.json")


# ----------------------------------------------------------------------------- the policy


def _policy(request: Request) -> dict[str, Any]:
    policy = gov_of(request).policy
    return {
        **policy.to_dict(),
        "permissions": {role.value: sorted(p.value for p in perms) for role, perms in ROLE_PERMISSIONS.items()},
    }


@api.get("/policy")
def policy_api(request: Request, viewer: ApiPolicy) -> dict[str, Any]:
    """The policy in force (the shipped default merged with the deployment's override), its
    digest, and the permissions of every role."""
    return _policy(request)


@pages.get("/policy")
def policy_page(request: Request, viewer: PagePolicy) -> Response:
    policy = gov_of(request).policy
    return floor_page(
        request, "policy.html", viewer=viewer, nav="policy", policy=policy,
        retention=sorted(policy.data.get("retention", {}).items()),
        permissions={role.value: [p for p in Permission if p in perms] for role, perms in ROLE_PERMISSIONS.items()},
    )  # fmt: skip
