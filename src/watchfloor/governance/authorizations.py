"""Authorizations and the two-person unmask.

An authorization is a recorded approval with a requester, an approver who is a
supervisor and never the requester, a legal basis or legal-process reference, a scope
and an expiry:

- ``unmask``: reveal the account behind ONE pseudonym, for ONE case. Only the requester
  reveals, only that pseudonym, only for that case, only while it is in force, at most
  ``[unmask] max_reveals`` times. Every reveal — and every refused attempt — is an audit
  entry; the entry names the pseudonym and the authorization, never the account.
- ``account_watch``: lets a watch target the listed pseudonyms (``author:``,
  ``mention:``) for one purpose; checked when the watch is approved.

Expiry is capped by the policy (``[unmask] max_days``, ``[account_watches] max_days``),
counted from the approval.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from watchfloor.governance.permissions import Permission
from watchfloor.governance.policy import PolicyError
from watchfloor.governance.pseudonyms import IdentityError, open_identity
from watchfloor.governance.service import GovernanceError
from watchfloor.model import Authorization, AuthorizationKind, AuthorizationStatus, CaseStatus
from watchfloor.store import StoreError

if TYPE_CHECKING:
    from watchfloor.governance.service import Governance

PSEUDONYM = re.compile(r"p:[0-9a-f]{16}")


@dataclass(frozen=True, slots=True)
class Reveal:
    """What an authorised unmask shows: the platform and the account, once."""

    pseudonym: str
    platform: str
    account: str
    epoch: int
    authorization: Authorization


def _target(authorization_id: int | None) -> str:
    return f"authorization:{authorization_id}"


class Authorizations:
    def __init__(self, gov: Governance) -> None:
        self.gov = gov
        self.store = gov.store
        self.audit = gov.audit

    def _max_days(self, kind: AuthorizationKind) -> int:
        policy = self.gov.policy
        return policy.unmask_max_days if kind == AuthorizationKind.unmask else policy.account_watch_max_days

    def _get(self, authorization_id: int, doing: str) -> Authorization:
        found = self.store.get_authorization(authorization_id)
        if found is None:
            raise GovernanceError(f"{doing}: there is no authorization {authorization_id}")
        return found

    def _check_case(self, case_id: str, doing: str) -> None:
        if not case_id.isdigit():
            raise GovernanceError(f"{doing}: a case is named by its number")
        case = self.store.get_case(int(case_id))
        if case is None:
            raise GovernanceError(f"{doing}: there is no case {case_id}")
        if case.status in (CaseStatus.closed, CaseStatus.merged):
            raise GovernanceError(f"{doing}: case {case_id} is {case.status.value}")

    # ------------------------------------------------------------------ request
    def request(
        self,
        *,
        kind: AuthorizationKind,
        by: str,
        purpose: str,
        pseudonyms: Sequence[str],
        expires_at: datetime,
        legal_basis: str = "",
        legal_ref: str | None = None,
        case_id: str | None = None,
        reason: str = "",
    ) -> Authorization:
        doing = f"requesting an {kind.value} authorization"
        now = self.gov.now()
        permission = Permission.request_unmask if kind == AuthorizationKind.unmask else Permission.propose_watch
        self.gov.user(by, permission, doing)
        try:
            self.gov.policy.purpose(purpose)
        except PolicyError as exc:
            raise GovernanceError(f"{doing}: {exc}") from None
        if not legal_basis.strip() and not (legal_ref or "").strip():
            raise GovernanceError(f"{doing}: give a legal basis or a legal-process reference")
        scope = tuple(dict.fromkeys(p.strip().lower() for p in pseudonyms))
        bad = [p for p in scope if not PSEUDONYM.fullmatch(p)]
        if not scope or bad:
            raise GovernanceError(f"{doing}: the scope is pseudonyms such as p:0123456789abcdef (not {bad or 'none'})")
        if kind == AuthorizationKind.unmask:
            if len(scope) != 1:
                raise GovernanceError(f"{doing}: an unmask is for exactly one pseudonym")
            if not case_id:
                raise GovernanceError(f"{doing}: an unmask is for one case: give its number")
            self._check_case(case_id, doing)
        if expires_at <= now:
            raise GovernanceError(f"{doing}: the expiry is in the past")
        expires_at = min(expires_at, now + timedelta(days=self._max_days(kind)))
        stored = self.store.add_authorization(
            Authorization(
                kind=kind,
                requester=by,
                purpose=purpose,
                pseudonyms=scope,
                requested_at=now,
                expires_at=expires_at,
                legal_basis=legal_basis.strip(),
                legal_ref=(legal_ref or "").strip() or None,
                case_id=case_id,
                reason=reason.strip(),
            )
        )
        self.audit.record(
            actor=by,
            action="authorization.requested",
            target=_target(stored.id),
            purpose=purpose,
            case_id=case_id,
            details={
                "kind": kind.value,
                "pseudonyms": list(scope),
                "legal_basis": stored.legal_basis,
                "legal_ref": stored.legal_ref,
                "expires_at": expires_at.isoformat(),
            },
        )
        return stored

    # ------------------------------------------------------------------ decide
    def approve(self, authorization_id: int, *, by: str, note: str | None = None) -> Authorization:
        doing = f"approving authorization {authorization_id}"
        now = self.gov.now()
        auth = self._get(authorization_id, doing)
        self.gov.user(by, Permission.approve_unmask, doing)
        if by == auth.requester:
            self._refused(auth, by, "approver is the requester")
            raise GovernanceError(f"{doing}: {by!r} requested it; a different supervisor must approve it")
        if auth.status != AuthorizationStatus.requested:
            raise GovernanceError(f"{doing}: it was {auth.status.value} already")
        if auth.expires_at <= now:
            raise GovernanceError(f"{doing}: it expired before it was approved; request it again")
        if auth.case_id is not None:
            self._check_case(auth.case_id, doing)
        expires_at = min(auth.expires_at, now + timedelta(days=self._max_days(auth.kind)))
        max_reveals = self.gov.policy.unmask_max_reveals if auth.kind == AuthorizationKind.unmask else 0
        try:
            decided = self.store.decide_authorization(
                authorization_id,
                status=AuthorizationStatus.approved,
                approver=by,
                decided_at=now,
                note=note,
                expires_at=expires_at,
                max_reveals=max_reveals,
            )
        except StoreError as exc:
            raise GovernanceError(f"{doing}: {exc}") from None
        self.audit.record(
            actor=by,
            action="authorization.approved",
            target=_target(authorization_id),
            purpose=auth.purpose,
            case_id=auth.case_id,
            details={
                "kind": auth.kind.value,
                "requester": auth.requester,
                "expires_at": expires_at.isoformat(),
                "max_reveals": max_reveals,
            },
        )
        return decided

    def deny(self, authorization_id: int, *, by: str, reason: str) -> Authorization:
        doing = f"denying authorization {authorization_id}"
        auth = self._get(authorization_id, doing)
        self.gov.user(by, Permission.approve_unmask, doing)
        if not reason.strip():
            raise GovernanceError(f"{doing}: give a reason")
        if by == auth.requester:
            raise GovernanceError(f"{doing}: {by!r} requested it; a different supervisor decides")
        try:
            decided = self.store.decide_authorization(
                authorization_id, status=AuthorizationStatus.denied, approver=by, decided_at=self.gov.now(), note=reason
            )
        except StoreError as exc:
            raise GovernanceError(f"{doing}: {exc}") from None
        self.audit.record(
            actor=by,
            action="authorization.denied",
            target=_target(authorization_id),
            purpose=auth.purpose,
            case_id=auth.case_id,
            details={"kind": auth.kind.value, "reason": reason},
        )
        return decided

    def list(self, *, kind: AuthorizationKind | None = None) -> list[Authorization]:
        return self.store.list_authorizations(kind=kind)

    # ------------------------------------------------------------------ reveal
    def _refused(self, auth: Authorization | None, by: str, reason: str, pseudonym: str | None = None) -> None:
        self.audit.record(
            actor=by,
            action="identity.reveal_refused" if pseudonym is not None else "authorization.refused",
            target=f"pseudonym:{pseudonym}" if pseudonym is not None else _target(auth.id if auth else None),
            purpose=auth.purpose if auth else None,
            case_id=auth.case_id if auth else None,
            details={"authorization": auth.id if auth else None, "reason": reason},
        )

    def reveal(self, pseudonym: str, *, authorization_id: int, by: str, case_id: str | int | None) -> Reveal:
        """Open the sealed identity behind ``pseudonym`` under an approved unmask
        authorization. Counted and audited; every refusal is audited too."""
        doing = f"unmasking {pseudonym}"
        now = self.gov.now()
        pseudonym = pseudonym.strip().lower()
        case = None if case_id is None else str(case_id)
        auth = self.store.get_authorization(authorization_id)

        def refuse(reason: str) -> GovernanceError:
            self._refused(auth, by, reason, pseudonym)
            return GovernanceError(f"{doing}: {reason}")

        try:
            self.gov.user(by, Permission.request_unmask, doing)  # still an account, still in a role that may
        except GovernanceError as exc:
            raise refuse(str(exc).removeprefix(f"{doing}: ")) from None
        if auth is None:
            raise refuse(f"there is no authorization {authorization_id}")
        if auth.kind != AuthorizationKind.unmask:
            raise refuse(f"authorization {authorization_id} is not an unmask authorization")
        if auth.status != AuthorizationStatus.approved:
            raise refuse(f"authorization {authorization_id} is {auth.status.value}, not approved")
        if auth.expires_at <= now:
            raise refuse(f"authorization {authorization_id} expired at {auth.expires_at:%Y-%m-%d %H:%M} UTC")
        if by != auth.requester:
            raise refuse(f"only the requester ({auth.requester}) may reveal under authorization {authorization_id}")
        if pseudonym not in auth.pseudonyms:
            raise refuse(f"{pseudonym} is outside the scope of authorization {authorization_id}")
        if case != auth.case_id:
            raise refuse(f"authorization {authorization_id} is for case {auth.case_id}, not {case}")
        if auth.reveals >= auth.max_reveals:
            raise refuse(f"authorization {authorization_id} has no reveals left ({auth.max_reveals} used)")
        sealed = self.store.identities_of(pseudonym)
        if not sealed:
            raise refuse("no sealed identity is kept for this pseudonym (never stored, or deleted by retention)")
        opened: tuple[str, str, int] | None = None
        shredded = []
        for record in reversed(sealed):  # newest epoch first
            try:
                platform, account = open_identity(self.gov.keyring, record)
            except IdentityError as exc:
                shredded.append(str(exc))
                continue
            opened = (platform, account, record.epoch)
            break
        if opened is None:
            raise refuse(f"the identity cannot be opened: {'; '.join(shredded)}")
        try:
            counted = self.store.count_reveal(authorization_id, now=now)
        except StoreError as exc:
            raise refuse(str(exc)) from None
        self.audit.record(
            actor=by,
            action="identity.revealed",
            target=f"pseudonym:{pseudonym}",
            purpose=auth.purpose,
            case_id=auth.case_id,
            details={
                "authorization": authorization_id,
                "approver": auth.approver,
                "reveal": counted.reveals,
                "of": counted.max_reveals,
                "epoch": opened[2],
            },
        )
        return Reveal(pseudonym, opened[0], opened[1], opened[2], counted)
