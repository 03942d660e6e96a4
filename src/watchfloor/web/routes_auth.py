"""Signing in and out, and setting one's own password: /login, /login/code, /logout, /password.

With a second factor enrolled (web/totp.py), a right password does not sign in yet: it
starts a login challenge (a random token in a ``wf_2fa`` cookie, SameSite=Strict, Path=/login,
five minutes, five tries) and the form asks for the authenticator's code. Signing in, signing
out and changing one's password are audit entries (``session.started``, ``session.ended``,
``user.password_changed``); a new password ends every session of the account.
"""

from __future__ import annotations

import functools
import secrets
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from watchfloor.config import Settings
from watchfloor.governance.passwords import hash_password, password_problem, verify_password
from watchfloor.governance.permissions import Permission, allowed
from watchfloor.model import User
from watchfloor.store import Store
from watchfloor.store.web_accounts_repo import LoginChallenge
from watchfloor.web.audit import recorded
from watchfloor.web.csrf import (
    LOGIN_COOKIE,
    LOGIN_PATH,
    clear_login_cookie,
    csrf_protected,
    login_token_matches,
    new_login_token,
    set_login_cookie,
)
from watchfloor.web.errors import PASSWORD_PATH, safe_next
from watchfloor.web.rendering import page_response
from watchfloor.web.sessions import (
    SESSION_COOKIE,
    Viewer,
    clear_session_cookie,
    clock_now,
    end_session,
    idle_limit,
    set_session_cookie,
    signed_in_any,
    start_session,
    token_hash,
)
from watchfloor.web.throttle import LoginThrottle
from watchfloor.web.totp import SecondFactor

router = APIRouter(include_in_schema=False)

LOGIN_FAILED = "Wrong username or password."
MAX_FIELD_LENGTH = 1024  # longer usernames or passwords are refused before any hashing
CHALLENGE_COOKIE = "wf_2fa"
CHALLENGE_LIFETIME = timedelta(minutes=5)
CHALLENGE_TRIES = 5

FormText = Annotated[str, Form()]


@functools.cache
def _decoy_hash() -> str:
    """A hash to verify against for unknown usernames, so they take as long as known ones."""
    return hash_password(secrets.token_urlsafe(16))


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _deps(request: Request) -> tuple[Settings, Store, LoginThrottle]:
    state = request.app.state
    return state.settings, state.store, state.throttle


def _login_page(
    request: Request, *, next_path: str, error: str | None = None, status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    settings = request.app.state.settings
    token = new_login_token()
    response = page_response(
        request, "login.html", viewer=None, status_code=status_code, headers=headers,
        next_path=next_path, login_token=token, error=error,
    )
    set_login_cookie(response, settings, token)
    return response


def _wait_text(seconds: int) -> str:
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


@router.get("/login")
def login_form(request: Request, next: str = "/") -> Response:
    return _login_page(request, next_path=safe_next(next))


@router.post("/login")
def login(
    request: Request,
    username: FormText = "",
    password: FormText = "",
    next: FormText = "/",
    login_token: FormText = "",
) -> Response:
    settings, store, throttle = _deps(request)
    next_path = safe_next(next)
    if not login_token_matches(request.cookies.get(LOGIN_COOKIE), login_token):
        return _login_page(
            request, next_path=next_path, status_code=403,
            error="This sign-in form has expired or did not come from this site. Please sign in again.",
        )
    username = username.strip()
    client = _client(request)
    wait = throttle.retry_after(username, client)
    if wait is not None:
        return _login_page(
            request, next_path=next_path, status_code=429, headers={"Retry-After": str(wait)},
            error=f"Too many failed sign-ins for this account from your address. "
            f"Try again in {_wait_text(wait)}.",
        )
    user = store.get_user(username) if username and len(username) <= MAX_FIELD_LENGTH else None
    password_ok = len(password) <= MAX_FIELD_LENGTH and verify_password(
        user.password_hash if user is not None else _decoy_hash(), password
    )
    if user is None or not password_ok:
        throttle.record_failure(username, client)
        return _login_page(request, next_path=next_path, status_code=401, error=LOGIN_FAILED)
    throttle.record_success(username, client)
    second = SecondFactor(store, settings.home)
    if second.enrolled(user.username):
        return _start_challenge(request, user, next_path)
    return _signed_in(request, user, next_path, second_factor=False)


def home_for(user: User, next_path: str = "/") -> str:
    """Where a sign-in lands: ``next_path``, unless that is the live feed and the role may
    not read it (an auditor lands on the audit log)."""
    if next_path != "/" or allowed(user.role, Permission.read_alerts):
        return next_path
    for permission, path in ((Permission.read_audit, "/audit"), (Permission.read_watches, "/watches")):
        if allowed(user.role, permission):
            return path
    return "/account"


def _signed_in(request: Request, user: User, next_path: str, *, second_factor: bool) -> Response:
    """The sign-in succeeded: a new session (rotation), audited."""
    settings, store, _ = _deps(request)
    # rotation: whatever session this browser presented is ended; the login gets a new one
    end_session(store, request.cookies.get(SESSION_COOKIE))
    token, session = start_session(store, user.username, now=clock_now(request), idle=idle_limit(settings))
    request.app.state.gov.audit.record(
        actor=user.username, action="session.started", target=f"user:{user.username}",
        details={"role": user.role.value, "second_factor": second_factor},
    )  # fmt: skip
    response = RedirectResponse(PASSWORD_PATH if user.must_change_password else home_for(user, next_path), 303)
    set_session_cookie(response, settings, token, session)
    clear_login_cookie(response, settings)
    response.delete_cookie(
        CHALLENGE_COOKIE, path=LOGIN_PATH, secure=settings.secure_cookies, httponly=True, samesite="strict"
    )
    return response


def _code_page(
    request: Request, *, next_path: str, error: str | None = None, status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return page_response(
        request, "login_code.html", viewer=None, status_code=status_code, headers=headers,
        next_path=next_path, error=error,
    )  # fmt: skip


def _start_challenge(request: Request, user: User, next_path: str) -> Response:
    settings, store, _ = _deps(request)
    now = clock_now(request)
    token = secrets.token_urlsafe(32)
    store.add_login_challenge(
        LoginChallenge(token_hash(token), user.username, created_at=now, expires_at=now + CHALLENGE_LIFETIME)
    )
    response = _code_page(request, next_path=next_path)
    response.set_cookie(
        CHALLENGE_COOKIE, token, max_age=int(CHALLENGE_LIFETIME.total_seconds()), path=LOGIN_PATH,
        secure=settings.secure_cookies, httponly=True, samesite="strict",
    )  # fmt: skip
    clear_login_cookie(response, settings)
    return response


@router.post("/login/code")
def login_code(request: Request, code: FormText = "", next: FormText = "/") -> Response:
    """The second step of a sign-in with a second factor: the authenticator's code."""
    settings, store, throttle = _deps(request)
    next_path = safe_next(next)
    cookie = request.cookies.get(CHALLENGE_COOKIE) or ""
    challenge = store.get_login_challenge(token_hash(cookie)) if 0 < len(cookie) <= 128 else None
    now = clock_now(request)
    if challenge is None or challenge.expires_at <= now:
        return _login_page(
            request, next_path=next_path, status_code=401, error="The sign-in took too long. Please sign in again."
        )
    client = _client(request)
    wait = throttle.retry_after(challenge.username, client)
    if wait is not None:
        return _code_page(
            request, next_path=next_path, status_code=429, headers={"Retry-After": str(wait)},
            error=f"Too many failed sign-ins for this account from your address. Try again in {_wait_text(wait)}.",
        )  # fmt: skip
    user = store.get_user(challenge.username)
    if user is None or not SecondFactor(store, settings.home).check(user.username, code[:32], now=now):
        throttle.record_failure(challenge.username, client)
        if store.count_login_challenge_failure(challenge.token_hash) >= CHALLENGE_TRIES or user is None:
            store.delete_login_challenge(challenge.token_hash)
            return _login_page(
                request, next_path=next_path, status_code=401, error="Too many wrong codes. Please sign in again."
            )
        return _code_page(request, next_path=next_path, status_code=401, error="Wrong or already used code.")
    throttle.record_success(challenge.username, client)
    store.delete_login_challenge(challenge.token_hash)
    return _signed_in(request, user, next_path, second_factor=True)


@router.post("/logout")
def logout(request: Request, viewer: Annotated[Viewer, Depends(csrf_protected(signed_in_any))]) -> Response:
    settings, store, _ = _deps(request)
    store.delete_session(viewer.session.token_hash)
    request.app.state.gov.audit.record(
        actor=viewer.user.username, action="session.ended", target=f"user:{viewer.user.username}"
    )
    recorded(request)
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(response, settings)
    return response


def _password_page(
    request: Request, viewer: Viewer, *, error: str | None = None, status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    return page_response(
        request, "password.html", viewer=viewer, nav="password", status_code=status_code, headers=headers,
        forced=viewer.user.must_change_password, error=error,
    )


@router.get("/password")
def password_form(request: Request, viewer: Annotated[Viewer, Depends(signed_in_any)]) -> Response:
    return _password_page(request, viewer)


@router.post("/password")
def change_password(
    request: Request,
    viewer: Annotated[Viewer, Depends(csrf_protected(signed_in_any))],
    current_password: FormText = "",
    new_password: FormText = "",
    confirm_password: FormText = "",
) -> Response:
    settings, store, throttle = _deps(request)
    user, client = viewer.user, _client(request)
    wait = throttle.retry_after(user.username, client)
    if wait is not None:
        return _password_page(
            request, viewer, status_code=429, headers={"Retry-After": str(wait)},
            error=f"Too many wrong current passwords. Try again in {_wait_text(wait)}.",
        )
    if len(current_password) > MAX_FIELD_LENGTH or not verify_password(user.password_hash, current_password):
        throttle.record_failure(user.username, client)
        return _password_page(request, viewer, status_code=400, error="The current password is wrong.")
    throttle.record_success(user.username, client)
    problem = password_problem(new_password)
    if problem is None and len(new_password) > MAX_FIELD_LENGTH:
        problem = f"a password can have at most {MAX_FIELD_LENGTH} characters"
    if problem is None and new_password != confirm_password:
        problem = "the new password and its confirmation differ"
    if problem is None and new_password == current_password:
        problem = "the new password must differ from the current one"
    if problem is not None:
        return _password_page(request, viewer, status_code=400, error=f"Not changed: {problem}.")
    store.set_password(user.username, hash_password(new_password), must_change=False)
    # a new password ends EVERY session of the account (other browsers too) and gets a new one
    ended = store.delete_user_sessions(user.username)
    request.app.state.gov.audit.record(
        actor=user.username, action="user.password_changed", target=f"user:{user.username}",
        details={"sessions_ended": ended, "one_time_password_replaced": user.must_change_password},
    )  # fmt: skip
    recorded(request)
    token, session = start_session(store, user.username, now=clock_now(request), idle=idle_limit(settings))
    response = RedirectResponse(home_for(user), status_code=303)
    set_session_cookie(response, settings, token, session)
    return response
