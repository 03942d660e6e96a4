"""Browser sessions: a random token in an HttpOnly cookie, only its SHA-256 in the store.

- Every successful login creates a NEW token (rotation): a token that existed before the
  login — planted by an attacker or left from an earlier sign-in in this browser — never
  becomes an authenticated session, and the one this browser sent is deleted. Sessions
  of the same user in other browsers stay valid (a desk runs several screens).
- A session lasts 12 hours from login (absolute, no sliding renewal), and ends earlier
  after ``settings.session_idle_minutes`` (30) without a request its person made: page
  loads and form posts count, a page's own background refreshes (htmx polls, fetches, the
  event stream) do not. An expired session is deleted when it is next presented, and the
  governance schedule sweeps the rest (``store.delete_expired_sessions``).
- API clients send ``Authorization: Bearer wft_...`` instead (:mod:`watchfloor.web.tokens`):
  the API and event streams accept it, pages never do; its scopes limit what it may do.
- The cookie is ``HttpOnly``, ``SameSite=Strict``, ``Path=/`` and ``Secure`` when
  ``settings.secure_cookies`` (behind HTTPS).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import Request
from fastapi.responses import Response

from watchfloor.config import Settings
from watchfloor.governance.permissions import Permission, allowed
from watchfloor.model import User, utcnow
from watchfloor.store import Session, Store
from watchfloor.store.web_accounts_repo import ApiToken
from watchfloor.web.errors import ApiError, PasswordChangeRequired, SignInRequired

SESSION_COOKIE = "wf_session"
SESSION_LIFETIME = timedelta(hours=12)
TOUCH_EVERY = timedelta(minutes=1)  # the idle deadline is written at most once a minute per session
TOKEN_SESSION_PREFIX = "token:"  # the pseudo-session of a bearer request: "token:<id>"
_MAX_TOKEN_LENGTH = 128  # token_urlsafe(32) is 43 characters; anything far longer is junk


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is signed in to this request, and with which session."""

    user: User
    session: Session
    token: ApiToken | None = None  # the API token the request came with (None: a browser session)

    @property
    def via(self) -> str:
        """How the request was authenticated, for the audit log: ``session`` or ``token:<id>``."""
        return "session" if self.token is None else f"{TOKEN_SESSION_PREFIX}{self.token.id}"

    def may(self, permission: Permission) -> bool:
        """The role holds ``permission`` and, for an API token, so does the token's scope."""
        if not allowed(self.user.role, permission):
            return False
        return self.token is None or permission.value in self.token.scopes


def clock_now(request: Request) -> datetime:
    """The app's clock (``app.state.clock``, replaceable in tests), else the wall clock."""
    clock = getattr(request.app.state, "clock", None)
    return clock() if clock is not None else utcnow()


def idle_limit(settings: Settings) -> timedelta | None:
    minutes = getattr(settings, "session_idle_minutes", 0)
    return timedelta(minutes=minutes) if minutes else None


def session_valid(session: Session, now: datetime) -> bool:
    """Neither past its absolute end nor idle for too long."""
    if session.expires_at <= now:
        return False
    return session.idle_expires_at is None or session.idle_expires_at > now


def token_hash(token: str) -> str:
    """What the store keeps of a session token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(
    store: Store, username: str, *, now: datetime | None = None, idle: timedelta | None = None
) -> tuple[str, Session]:
    """A new session for ``username``: returns the cookie token (never stored) and the session."""
    token = secrets.token_urlsafe(32)
    now = now or utcnow()
    session = Session(
        token_hash=token_hash(token),
        username=username,
        created_at=now,
        expires_at=now + SESSION_LIFETIME,
        csrf_token=secrets.token_urlsafe(32),
        idle_expires_at=None if idle is None else min(now + idle, now + SESSION_LIFETIME),
    )
    store.add_session(session)
    return token, session


def end_session(store: Store, token: str | None) -> None:
    if token and len(token) <= _MAX_TOKEN_LENGTH:
        store.delete_session(token_hash(token))


def viewer_for_token(store: Store, token: str | None, *, now: datetime | None = None) -> Viewer | None:
    """The signed-in viewer for a cookie token, or None (unknown, expired, idle, user gone)."""
    if not token or len(token) > _MAX_TOKEN_LENGTH:
        return None
    digest = token_hash(token)
    session = store.get_session(digest)
    if session is None:
        return None
    if not session_valid(session, now or utcnow()):
        store.delete_session(digest)
        return None
    user = store.get_user(session.username)
    if user is None:
        return None
    return Viewer(user=user, session=session)


def set_session_cookie(response: Response, settings: Settings, token: str, session: Session) -> None:
    max_age = int((session.expires_at - utcnow()).total_seconds())
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max(0, max_age),
        path="/",
        secure=settings.secure_cookies,
        httponly=True,
        samesite="strict",
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=settings.secure_cookies, httponly=True, samesite="strict"
    )


# ----------------------------------------------------------------------------- dependencies
# Plain ``def``: FastAPI runs them in its thread pool, so the blocking store calls never
# stall the event loop that also runs the pipeline.


def is_activity(request: Request) -> bool:
    """Did the person make this request? Actions (POST ...) and page navigations did; a
    page's own background requests — htmx polls, fetches, event streams, which browsers
    mark with ``Sec-Fetch-Mode: cors`` — did not. Clients that send no Sec-Fetch headers
    (scripts) count."""
    if request.method not in ("GET", "HEAD"):
        return True
    if request.headers.get("hx-request") == "true":
        return False
    return request.headers.get("sec-fetch-mode", "navigate") == "navigate"


def _keep_alive(request: Request, viewer: Viewer, now: datetime) -> None:
    idle = idle_limit(request.app.state.settings)
    session = viewer.session
    if idle is None or not is_activity(request):
        return
    wanted = min(now + idle, session.expires_at)
    if session.idle_expires_at is None or wanted - session.idle_expires_at >= TOUCH_EVERY:
        request.app.state.store.touch_session(session.token_hash, wanted)


def _viewer(request: Request) -> Viewer | None:
    now = clock_now(request)
    viewer = viewer_for_token(request.app.state.store, request.cookies.get(SESSION_COOKIE), now=now)
    if viewer is not None:
        _keep_alive(request, viewer, now)
    request.state.viewer = viewer
    return viewer


def _here(request: Request) -> str:
    """Where to come back to after signing in (only a page can be come back to)."""
    if request.method not in ("GET", "HEAD"):
        return "/"
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


def signed_in_page(request: Request) -> Viewer:
    """A page's viewer; otherwise to the login form (or to /password for a one-time password)."""
    viewer = _viewer(request)
    if viewer is None:
        raise SignInRequired(_here(request))
    if viewer.user.must_change_password:
        raise PasswordChangeRequired()
    return viewer


def signed_in_any(request: Request) -> Viewer:
    """A viewer who may still hold a one-time password (for /password and /logout)."""
    viewer = _viewer(request)
    if viewer is None:
        raise SignInRequired(_here(request))
    return viewer


def signed_in_api(request: Request) -> Viewer:
    """An API or event-stream viewer — by API token (``Authorization: Bearer``) or by
    session cookie; refusals are JSON (401 / 403), never redirects."""
    if request.headers.get("authorization") is not None:
        from watchfloor.web.tokens import bearer_viewer

        viewer = bearer_viewer(request)
        request.state.viewer = viewer
        return viewer
    viewer = _viewer(request)
    if viewer is None:
        raise ApiError(401, "sign in required: no valid session")
    if viewer.user.must_change_password:
        raise ApiError(403, "password change required: sign in with a browser and set a new password")
    return viewer


def session_alive(store: Store, digest: str, *, now: datetime | None = None) -> bool:
    """True while the session with this token hash (or the API token of a ``token:<id>``
    pseudo-session) exists and has neither expired nor idled out."""
    now = now or utcnow()
    if digest.startswith(TOKEN_SESSION_PREFIX):
        token_id = digest.removeprefix(TOKEN_SESSION_PREFIX)
        token = store.get_api_token(int(token_id)) if token_id.isdigit() else None
        return token is not None and token.usable(now) and store.get_user(token.username) is not None
    session = store.get_session(digest)
    return session is not None and session_valid(session, now)
