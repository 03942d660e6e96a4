"""One's own account: /account — the role and its permissions, the second factor (TOTP)
and API tokens. Self-service: every signed-in person may open it for themselves, with a
browser session only (never with an API token), and every change is an audit entry
(``user.totp_enrolled``, ``user.totp_removed``, ``token.created``, ``token.revoked``).

Secrets are shown once, in the answer to the request that made them: the TOTP secret (as
text and as an ``otpauth://`` URI to paste into an authenticator app) and a new API token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from watchfloor.governance.permissions import ROLE_PERMISSIONS, Permission
from watchfloor.store import StoreError
from watchfloor.web.api_models import IdParam
from watchfloor.web.audit import recorded
from watchfloor.web.csrf import csrf_protected
from watchfloor.web.floor import back_to, flash, floor_page
from watchfloor.web.refusals import gov_of
from watchfloor.web.sessions import Viewer, clock_now, signed_in_page
from watchfloor.web.tokens import (
    DEFAULT_TOKEN_DAYS,
    MAX_TOKEN_DAYS,
    TokenRefused,
    create_token,
    grantable_scopes,
)
from watchfloor.web.totp import SecondFactor, TotpError, grouped, provisioning_uri

api = APIRouter(include_in_schema=False)  # no JSON twin: tokens are not managed with tokens
pages = APIRouter(include_in_schema=False)

Self = Annotated[Viewer, Depends(signed_in_page)]
SelfChange = Annotated[Viewer, Depends(csrf_protected(signed_in_page))]
FormText = Annotated[str, Form()]


def _second_factor(request: Request) -> SecondFactor:
    return SecondFactor(request.app.state.store, request.app.state.settings.home)


def _record(request: Request, viewer: Viewer, action: str, target: str, **details: object) -> None:
    gov_of(request).audit.record(actor=viewer.user.username, action=action, target=target, details=details)
    recorded(request)


def _account_page(
    request: Request,
    viewer: Viewer,
    *,
    status_code: int = 200,
    enrolling: str | None = None,
    new_token: str | None = None,
) -> Response:
    store = request.app.state.store
    enrolment = store.get_totp(viewer.user.username)
    now = clock_now(request)
    response = floor_page(
        request, "account.html", viewer=viewer, nav="account",
        permissions=[p for p in Permission if p in ROLE_PERMISSIONS[viewer.user.role]],
        totp=enrolment, enrolling=enrolling, enrolling_grouped=grouped(enrolling) if enrolling else None,
        enrolling_uri=provisioning_uri(enrolling, viewer.user.username) if enrolling else None,
        tokens=store.list_api_tokens(viewer.user.username), grantable=grantable_scopes(viewer.user),
        new_token=new_token, checked_at=now, default_days=DEFAULT_TOKEN_DAYS, max_days=MAX_TOKEN_DAYS,
    )  # fmt: skip
    response.status_code = status_code
    return response


@pages.get("/account")
def account_page(request: Request, viewer: Self) -> Response:
    return _account_page(request, viewer)


# ----------------------------------------------------------------------------- second factor


@pages.post("/account/totp/start")
def totp_start(request: Request, viewer: SelfChange) -> Response:
    try:
        secret = _second_factor(request).start(viewer.user.username, now=clock_now(request))
    except (StoreError, TotpError) as exc:
        flash(request, viewer, f"Not done: {exc}.", "error")
        return _account_page(request, viewer, status_code=409)
    _record(request, viewer, "user.totp_started", f"user:{viewer.user.username}")
    return _account_page(request, viewer, enrolling=secret)


@pages.post("/account/totp/confirm")
def totp_confirm(request: Request, viewer: SelfChange, code: FormText = "") -> Response:
    try:
        confirmed = _second_factor(request).confirm(viewer.user.username, code[:32], now=clock_now(request))
    except TotpError as exc:
        flash(request, viewer, f"Not done: {exc}.", "error")
        return _account_page(request, viewer, status_code=409)
    if not confirmed:
        flash(request, viewer, "That code is not right for the secret shown. Start again if you lost it.", "error")
        return _account_page(request, viewer, status_code=400)
    _record(request, viewer, "user.totp_enrolled", f"user:{viewer.user.username}")
    flash(request, viewer, "Two-step sign-in is on: from now on, signing in asks for a code from your app.")
    return back_to("/account", "/account")


@pages.post("/account/totp/remove")
def totp_remove(request: Request, viewer: SelfChange, code: FormText = "") -> Response:
    second = _second_factor(request)
    name = viewer.user.username
    try:
        ok = second.check(name, code[:32], now=clock_now(request)) if second.enrolled(name) else True
    except TotpError:
        ok = False
    if not ok:
        flash(request, viewer, "Give a current code from your app to turn two-step sign-in off.", "error")
        return _account_page(request, viewer, status_code=400)
    second.remove(name)
    _record(request, viewer, "user.totp_removed", f"user:{name}")
    flash(request, viewer, "Two-step sign-in is off.", "warn")
    return back_to("/account", "/account")


# ----------------------------------------------------------------------------- API tokens


@pages.post("/account/tokens")
def token_create(
    request: Request,
    viewer: SelfChange,
    name: FormText = "",
    days: FormText = "",
    scopes: Annotated[list[str] | None, Form()] = None,
) -> Response:
    try:
        if not days.strip().isdigit():
            raise TokenRefused(f"give how many days the token lasts (1 to {MAX_TOKEN_DAYS})")
        secret, token = create_token(
            request.app.state.store, viewer.user, name=name, scopes=scopes or [], days=int(days),
            now=clock_now(request),
        )  # fmt: skip
    except TokenRefused as exc:
        flash(request, viewer, f"No token made: {exc}.", "error")
        return _account_page(request, viewer, status_code=400)
    _record(
        request, viewer, "token.created", f"token:{token.id}",
        scopes=list(token.scopes), expires_at=token.expires_at.isoformat(),
    )  # fmt: skip
    return _account_page(request, viewer, new_token=secret)


@pages.post("/account/tokens/{token_id}/revoke")
def token_revoke(request: Request, token_id: IdParam, viewer: SelfChange) -> Response:
    store = request.app.state.store
    if not store.revoke_api_token(token_id, username=viewer.user.username, at=clock_now(request)):
        flash(request, viewer, f"You have no live token {token_id}.", "error")
        return _account_page(request, viewer, status_code=404)
    _record(request, viewer, "token.revoked", f"token:{token_id}")
    flash(request, viewer, f"Token {token_id} revoked: it works no more.")
    return back_to("/account", "/account")
