"""API tokens: for scripts and other systems that call the JSON API or follow an event stream.

- Created and revoked by their owner on /account (a browser session, never with a token),
  shown once, stored as SHA-256 only: ``wft_`` + 43 random URL-safe characters.
- Sent as ``Authorization: Bearer wft_...``. The API and event streams accept them; pages
  never do. A bearer request needs no CSRF token: a browser never attaches the header by
  itself, so another site cannot make it send one.
- A token's scope is a subset of its owner's permissions, chosen at creation. Every request
  needs both: the scope AND the owner's role now (a demoted owner's tokens lose what the
  new role lacks). An owner who must change their password cannot use tokens.
- A token expires (at most :data:`MAX_TOKEN_DAYS` days) and can be revoked at any time;
  every request made with one is in the audit log with ``via: token:<id>``.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta

from fastapi import Request

from watchfloor.governance.permissions import ROLE_PERMISSIONS, Permission
from watchfloor.model import User
from watchfloor.store import Session, Store
from watchfloor.store.web_accounts_repo import ApiToken
from watchfloor.web.errors import ApiError
from watchfloor.web.sessions import TOKEN_SESSION_PREFIX, Viewer, clock_now

TOKEN_PREFIX = "wft_"
MAX_TOKEN_DAYS = 365
DEFAULT_TOKEN_DAYS = 90
MAX_TOKEN_NAME = 80
NOTE_USE_EVERY = timedelta(minutes=5)  # last_used_at is written at most this often
_MAX_TOKEN_LENGTH = 128


class TokenRefused(ValueError):
    """A token that cannot be created as asked; the message says why."""


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def grantable_scopes(user: User) -> list[Permission]:
    """What a token of ``user`` may be given: the role's permissions, in the table's order."""
    held = ROLE_PERMISSIONS[user.role]
    return [p for p in Permission if p in held]


def create_token(
    store: Store, user: User, *, name: str, scopes: Iterable[str], days: int, now: datetime
) -> tuple[str, ApiToken]:
    """A new token for ``user``: returns the secret (shown once, never stored) and the record."""
    name = name.strip()
    if not name or len(name) > MAX_TOKEN_NAME:
        raise TokenRefused(f"give the token a name of 1 to {MAX_TOKEN_NAME} characters (what uses it)")
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise TokenRefused(f"a token lasts 1 to {MAX_TOKEN_DAYS} days")
    wanted = list(dict.fromkeys(scopes))
    grantable = {p.value for p in grantable_scopes(user)}
    beyond = [s for s in wanted if s not in grantable]
    if beyond:
        raise TokenRefused(f"your role cannot grant {', '.join(sorted(beyond))}")
    if not wanted:
        raise TokenRefused("choose at least one permission for the token")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = store.add_api_token(
        ApiToken(
            username=user.username,
            name=name,
            token_hash=token_digest(secret),
            scopes=tuple(p.value for p in Permission if p.value in wanted),
            created_at=now,
            expires_at=now + timedelta(days=days),
        )
    )
    return secret, record


def bearer_viewer(request: Request) -> Viewer:
    """The viewer of a request with an ``Authorization`` header; 401 unless it is a live token."""
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret.startswith(TOKEN_PREFIX) or len(secret) > _MAX_TOKEN_LENGTH:
        raise ApiError(401, "sign in required: send an API token as 'Authorization: Bearer wft_...'")
    store: Store = request.app.state.store
    now = clock_now(request)
    token = store.get_api_token_by_hash(token_digest(secret))
    if token is None or not token.usable(now):
        raise ApiError(401, "the API token is unknown, revoked or expired")
    user = store.get_user(token.username)
    if user is None:
        raise ApiError(401, "the API token's account no longer exists")
    if user.must_change_password:
        raise ApiError(403, "password change required: sign in with a browser and set a new password")
    if token.id is not None and (token.last_used_at is None or now - token.last_used_at >= NOTE_USE_EVERY):
        store.note_api_token_used(token.id, now)
    session = Session(
        token_hash=f"{TOKEN_SESSION_PREFIX}{token.id}",
        username=user.username,
        created_at=token.created_at,
        expires_at=token.expires_at,
        csrf_token="",  # never matches: bearer requests skip the CSRF check instead
    )
    return Viewer(user=user, session=session, token=token)
