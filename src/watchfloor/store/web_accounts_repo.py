"""The part of the repository that keeps what the web layer's accountability needs:

- sessions beyond sign-in and sign-out: the idle deadline, ending every session of one
  account (password change, second-factor reset) and sweeping expired ones;
- TOTP enrolments (the secret sealed by the caller) with the last accepted time step;
- login challenges: the step between a right password and the second factor;
- API tokens (hashed) with their scopes;
- the auditor's reading of the audit log: newest first, by actor, action and time.

:class:`~watchfloor.store.base.Store` includes this protocol; the rules (who may, how
long, what is hashed or sealed) live in :mod:`watchfloor.web`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from watchfloor.store.governance_repo import AuditRow


@dataclass(frozen=True, slots=True)
class TotpEnrolment:
    username: str
    nonce: bytes
    ciphertext: bytes  # the base32 secret, sealed (web/totp.py)
    created_at: datetime
    confirmed_at: datetime | None = None  # None: waiting for the first code
    last_step: int = 0  # newest accepted RFC 6238 time step


@dataclass(frozen=True, slots=True)
class LoginChallenge:
    token_hash: str
    username: str
    created_at: datetime
    expires_at: datetime
    failures: int = 0


@dataclass(frozen=True, slots=True)
class ApiToken:
    username: str
    name: str
    token_hash: str
    scopes: tuple[str, ...]  # permission names
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None
    id: int | None = None

    def usable(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """What the auditor asks of the log. ``action`` ending in ``.`` is a prefix (``watch.``)."""

    before: int | None = None  # only entries with a smaller seq (paging, newest first)
    limit: int = 50
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None


class WebAccountsRepository(Protocol):
    # ---------------------------------------------------------------- sessions
    def touch_session(self, token_hash: str, idle_expires_at: datetime) -> None:
        """Push a session's idle deadline forward (never backward)."""
        ...

    def delete_user_sessions(self, username: str) -> int:
        """End every session of ``username``; returns how many there were."""
        ...

    def delete_expired_sessions(self, now: datetime) -> int:
        """Delete sessions past their absolute or idle deadline, and expired login challenges."""
        ...

    # ---------------------------------------------------------------- second factor
    def get_totp(self, username: str) -> TotpEnrolment | None: ...

    def save_totp(self, enrolment: TotpEnrolment) -> None:
        """Store a new (unconfirmed) enrolment, replacing an unconfirmed one. StoreError when
        a confirmed one exists (it has to be removed first)."""
        ...

    def confirm_totp(self, username: str, *, at: datetime, step: int) -> bool:
        """Mark the enrolment confirmed with its first accepted step; False if there is none."""
        ...

    def use_totp_step(self, username: str, step: int) -> bool:
        """Record ``step`` as used, only if it is newer than the last one (no code is accepted
        twice); False when it is not."""
        ...

    def delete_totp(self, username: str) -> bool: ...

    # ---------------------------------------------------------------- login challenges
    def add_login_challenge(self, challenge: LoginChallenge) -> None: ...

    def get_login_challenge(self, token_hash: str) -> LoginChallenge | None: ...

    def count_login_challenge_failure(self, token_hash: str) -> int:
        """One more wrong code; returns the failures so far."""
        ...

    def delete_login_challenge(self, token_hash: str) -> None: ...

    # ---------------------------------------------------------------- API tokens
    def add_api_token(self, token: ApiToken) -> ApiToken: ...

    def get_api_token(self, token_id: int) -> ApiToken | None: ...

    def get_api_token_by_hash(self, token_hash: str) -> ApiToken | None: ...

    def list_api_tokens(self, username: str) -> list[ApiToken]: ...

    def revoke_api_token(self, token_id: int, *, username: str, at: datetime) -> bool:
        """Revoke one of ``username``'s tokens; False when there is no such live token."""
        ...

    def revoke_user_api_tokens(self, username: str, *, at: datetime) -> int: ...

    def note_api_token_used(self, token_id: int, at: datetime) -> None: ...

    # ---------------------------------------------------------------- the auditor's view
    def audit_page(self, query: AuditQuery) -> list[AuditRow]:
        """Entries matching ``query``, newest first, at most ``query.limit``."""
        ...

    def audit_actions(self) -> list[str]:
        """Every action that occurs in the log (for the auditor's filter)."""
        ...

    def purpose_of_alert(self, alert_id: int) -> str | None:
        """The purpose of the watch that raised the alert (None: no such alert)."""
        ...
