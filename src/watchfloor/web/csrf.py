"""Cross-site request forgery defences.

Signed-in requests: every state-changing request must carry the session's random
``csrf_token`` — in the form field ``csrf_token`` (plain HTML forms) or in the
``X-CSRF-Token`` header (htmx sends it on every request through ``hx-headers`` on
``<body>``; API clients set it themselves). A missing or wrong token is refused with 403.
Routes get this by depending on :func:`csrf_protected`; a test walks every POST route of
the app and checks that it refuses a request without the token. API requests made with a
bearer token (web/tokens.py) need none: no browser attaches that header on its own.

The login form has no session yet, so it uses a double-submit token instead: GET /login
sets a random ``wf_login`` cookie (HttpOnly, SameSite=Strict, Path=/login) and puts the
same value in a hidden field; POST /login is refused unless both are present and equal.
A forged cross-site login POST cannot carry the cookie (SameSite=Strict) nor read the
value, so it cannot sign a victim in to an attacker's account ("login CSRF").
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.responses import Response

from watchfloor.config import Settings
from watchfloor.store import Session
from watchfloor.web.errors import CsrfRefused
from watchfloor.web.sessions import Viewer

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
LOGIN_COOKIE = "wf_login"
LOGIN_FIELD = "login_token"
LOGIN_PATH = "/login"
LOGIN_TOKEN_MAX_AGE_S = 60 * 60
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_HEADER_DOC = "The session's CSRF token: needed with a session cookie, not with an API token."


async def submitted_csrf_token(request: Request) -> str | None:
    """The token a request carries: the header first, else the form field."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.headers.get("content-type", "").startswith(_FORM_TYPES):
        form = await request.form()  # cached by Starlette: the endpoint can read it again
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def check_csrf(request: Request, session: Session) -> None:
    sent = await submitted_csrf_token(request)
    if not sent or not secrets.compare_digest(sent.encode(), session.csrf_token.encode()):
        raise CsrfRefused()


def csrf_protected(viewer_dependency: Callable[[Request], Viewer]) -> Callable[..., Awaitable[Viewer]]:
    """A dependency: the viewer that ``viewer_dependency`` finds, once the CSRF token checks out."""

    async def dependency(
        request: Request,
        viewer: Viewer = Depends(viewer_dependency),
        # declared for the API schema; check_csrf reads the header (or the form field) itself
        _sent: Annotated[str | None, Header(alias=CSRF_HEADER, description=_HEADER_DOC)] = None,
    ) -> Viewer:
        if viewer.token is None:  # an API token (Authorization: Bearer) cannot be sent cross-site
            await check_csrf(request, viewer.session)
        return viewer

    return dependency


# ----------------------------------------------------------------------------- login form


def new_login_token() -> str:
    return secrets.token_urlsafe(32)


def set_login_cookie(response: Response, settings: Settings, token: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=LOGIN_TOKEN_MAX_AGE_S,
        path=LOGIN_PATH,
        secure=settings.secure_cookies,
        httponly=True,
        samesite="strict",
    )


def clear_login_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        LOGIN_COOKIE, path=LOGIN_PATH, secure=settings.secure_cookies, httponly=True, samesite="strict"
    )


def login_token_matches(cookie: str | None, field: str | None) -> bool:
    if not cookie or not field:
        return False
    return secrets.compare_digest(cookie.encode(), field.encode())
