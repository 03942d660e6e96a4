"""Notifications in the web app: one's inbox (in-app notifications) and the rules that send
webhooks, e-mails and in-app messages per watch and severity."""

from __future__ import annotations

import re
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from watchfloor.governance.permissions import Permission, allowed
from watchfloor.model import NotificationChannel, NotificationEvent, NotificationRule, Severity
from watchfloor.notify.webhook import new_secret
from watchfloor.store import StoreError
from watchfloor.triage.errors import FloorError
from watchfloor.web.api_models import ErrorOut, IdParam
from watchfloor.web.csrf import csrf_protected
from watchfloor.web.floor import back_to, clock_of, flash, floor_page, store_of
from watchfloor.web.floor_models import (
    InboxMessageOut,
    InboxOut,
    MarkedOut,
    MarkReadIn,
    RuleCreatedOut,
    RuleIn,
    RuleOut,
    RulesOut,
)
from watchfloor.web.permissions import api_requires, page_requires
from watchfloor.web.sessions import Viewer

_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_REFUSALS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorOut, "description": "The request was refused (bad input)."},
    401: {"model": ErrorOut, "description": "No valid session."},
    403: {"model": ErrorOut, "description": "Your role lacks the permission, or the CSRF token is missing."},
}
api = APIRouter(prefix="/api", tags=["notifications"], responses=_REFUSALS)
pages = APIRouter(include_in_schema=False)

ApiInbox = Annotated[Viewer, Depends(api_requires(Permission.read_inbox))]
ApiInboxWrite = Annotated[Viewer, Depends(csrf_protected(api_requires(Permission.read_inbox)))]
ApiRules = Annotated[Viewer, Depends(api_requires(Permission.manage_notifications))]
ApiRulesWrite = Annotated[Viewer, Depends(csrf_protected(api_requires(Permission.manage_notifications)))]
PageInbox = Annotated[Viewer, Depends(page_requires(Permission.read_inbox))]
PageInboxWrite = Annotated[Viewer, Depends(csrf_protected(page_requires(Permission.read_inbox)))]
PageRules = Annotated[Viewer, Depends(page_requires(Permission.manage_notifications))]
PageRulesWrite = Annotated[Viewer, Depends(csrf_protected(page_requires(Permission.manage_notifications)))]


def new_rule(request: Request, viewer: Viewer, body: RuleIn) -> NotificationRule:
    """Check a rule and store it; a webhook gets a fresh signing secret."""
    store = store_of(request)
    target = body.target.strip()
    if body.channel == NotificationChannel.webhook:
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
            raise FloorError(400, "a webhook needs an http(s) URL without credentials in it")
    elif body.channel == NotificationChannel.email:
        if not _EMAIL.match(target):
            raise FloorError(400, f"{target!r} is not an e-mail address")
    else:
        role = store.account_roles().get(target)
        if role is None or not allowed(role, Permission.read_inbox):
            raise FloorError(400, f"{target!r} is not an account with an inbox")
    if body.watch_id is not None and store.get_watch(body.watch_id) is None:
        raise FloorError(400, f"no watch with id {body.watch_id}")
    return store.add_notification_rule(
        NotificationRule(
            channel=body.channel,
            target=target,
            created_by=viewer.user.username,
            created_at=clock_of(request)(),
            events=tuple(dict.fromkeys(body.events)),
            watch_id=body.watch_id,
            min_severity=body.min_severity,
            include_content=body.include_content,
            secret=new_secret() if body.channel == NotificationChannel.webhook else None,
        )
    )


def delete_rule(request: Request, rule_id: int) -> None:
    try:
        store_of(request).delete_notification_rule(rule_id)
    except StoreError as exc:
        raise FloorError(404, str(exc)) from None


# ----------------------------------------------------------------------------- API


@api.get("/inbox", response_model=InboxOut)
def get_inbox(request: Request, viewer: ApiInbox, unread_only: bool = False) -> InboxOut:
    """Your in-app notifications, newest first (SLA breaches and escalations reach every supervisor)."""
    store = store_of(request)
    name = viewer.user.username
    messages = store.inbox(name, unread_only=unread_only)
    return InboxOut(unread=store.unread_count(name), messages=[InboxMessageOut.of(m) for m in messages])


@api.post("/inbox/read", response_model=MarkedOut)
def mark_read(request: Request, body: MarkReadIn, viewer: ApiInboxWrite) -> MarkedOut:
    marked = store_of(request).mark_read(viewer.user.username, clock_of(request)(), body.ids)
    return MarkedOut(marked=marked)


@api.get("/notification-rules", response_model=RulesOut)
def get_rules(request: Request, viewer: ApiRules) -> RulesOut:
    return RulesOut(rules=[RuleOut.of(r) for r in store_of(request).list_notification_rules()])


@api.post("/notification-rules", response_model=RuleCreatedOut, status_code=201)
def add_rule(request: Request, body: RuleIn, viewer: ApiRulesWrite) -> RuleCreatedOut:
    """Add a rule. A webhook's signing secret is in this answer only."""
    rule = new_rule(request, viewer, body)
    return RuleCreatedOut(**RuleOut.of(rule).model_dump(), secret=rule.secret)


@api.post(
    "/notification-rules/{rule_id}/delete",
    status_code=204,
    response_class=Response,
    responses={404: {"model": ErrorOut, "description": "No such rule."}},
)
def remove_rule(request: Request, rule_id: IdParam, viewer: ApiRulesWrite) -> Response:
    delete_rule(request, rule_id)
    return Response(status_code=204)


# ----------------------------------------------------------------------------- pages


@pages.get("/inbox")
def inbox_page(request: Request, viewer: PageInbox) -> Response:
    store = store_of(request)
    return floor_page(request, "inbox.html", viewer=viewer, nav="inbox", messages=store.inbox(viewer.user.username))


@pages.post("/inbox/read")
def inbox_read(request: Request, viewer: PageInboxWrite) -> Response:
    n = store_of(request).mark_read(viewer.user.username, clock_of(request)())
    flash(request, viewer, f"Marked {n} notification{'s' if n != 1 else ''} read.")
    return back_to("/inbox", "/inbox")


@pages.get("/notifications")
def rules_page(request: Request, viewer: PageRules) -> Response:
    store = store_of(request)
    return floor_page(
        request,
        "notifications.html",
        viewer=viewer,
        nav="notifications",
        rules=store.list_notification_rules(),
        outbox=store.list_outbox(limit=30),
        watches={w.id: w for w in store.list_watches()},
        channels=list(NotificationChannel),
        events=list(NotificationEvent),
        severities=list(Severity),
        secret=None,
    )


@pages.post("/notifications")
def rules_add(
    request: Request,
    viewer: PageRulesWrite,
    channel: Annotated[NotificationChannel, Form()],
    target: Annotated[str, Form()],
    events: Annotated[list[NotificationEvent], Form()] = [],  # noqa: B006 (FastAPI copies defaults)
    watch_id: Annotated[str, Form()] = "",
    min_severity: Annotated[Severity, Form()] = Severity.low,
    include_content: Annotated[bool, Form()] = False,
) -> Response:
    try:
        body = RuleIn(
            channel=channel,
            target=target,
            events=events or [NotificationEvent.alert],
            watch_id=int(watch_id) if watch_id.isdigit() and len(watch_id) < 12 else None,
            min_severity=min_severity,
            include_content=include_content,
        )
        rule = new_rule(request, viewer, body)
    except FloorError as exc:
        flash(request, viewer, exc.message, "error")
        return back_to("/notifications", "/notifications")
    if rule.secret:
        flash(
            request,
            viewer,
            f"Webhook rule {rule.id} added. Its signing secret, shown only now: {rule.secret}",
            "secret",
        )
    else:
        flash(request, viewer, f"Rule {rule.id} added.")
    return back_to("/notifications", "/notifications")


@pages.post("/notifications/{rule_id}/delete")
def rules_delete(request: Request, rule_id: IdParam, viewer: PageRulesWrite) -> Response:
    try:
        delete_rule(request, rule_id)
    except FloorError as exc:
        flash(request, viewer, exc.message, "error")
        return back_to("/notifications", "/notifications")
    flash(request, viewer, f"Rule {rule_id} deleted.")
    return back_to("/notifications", "/notifications")
