"""One object that holds what every governance decision needs: the store, the policy in
force, the keyring, the audit log and the clock. The CLI and the web layer open it once::

    gov = Governance.open(settings, store)
    gov.audit.record(actor="ana", action="alert.read", target="alert:42", purpose="public-safety")
    gov.watches.approve(watch_id, by="sam")
    gov.authorizations.reveal("p:0a1b2c3d4e5f6071", authorization_id=7, by="ana", case_id="12")

Decisions raise :class:`GovernanceError` (its message is for the person refused) after
writing the refusal to the audit log where the issue asks for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from watchfloor.config import Settings
from watchfloor.governance.audit import AuditLog
from watchfloor.governance.keys import KEYS_DIR, Keyring
from watchfloor.governance.permissions import Permission, allowed
from watchfloor.governance.policy import Policy, load_policy
from watchfloor.model import User, utcnow
from watchfloor.store import Store

if TYPE_CHECKING:
    from watchfloor.governance.authorizations import Authorizations
    from watchfloor.governance.watches import WatchGovernance

SYSTEM_PREFIX = "system:"


class GovernanceError(RuntimeError):
    """A governance rule refused the action; the message says which and what to do."""


def is_system_actor(actor: str) -> bool:
    return actor.startswith(SYSTEM_PREFIX)


@dataclass
class Governance:
    store: Store
    policy: Policy
    keyring: Keyring
    clock: Callable[[], datetime] = utcnow
    audit: AuditLog = field(init=False)

    def __post_init__(self) -> None:
        self.audit = AuditLog(self.store, clock=self.clock)

    @classmethod
    def open(
        cls,
        settings: Settings,
        store: Store,
        *,
        clock: Callable[[], datetime] = utcnow,
        policy: Policy | None = None,
    ) -> Governance:
        """Governance for the deployment in ``settings.home``; records the policy in force in
        the audit log when it differs from the last one recorded."""
        gov = cls(store, policy or load_policy(settings.home), Keyring(settings.home / KEYS_DIR), clock)
        gov.note_policy_in_force()
        return gov

    # ------------------------------------------------------------------ parts
    @property
    def watches(self) -> WatchGovernance:
        from watchfloor.governance.watches import WatchGovernance

        return WatchGovernance(self)

    @property
    def authorizations(self) -> Authorizations:
        from watchfloor.governance.authorizations import Authorizations

        return Authorizations(self)

    # ------------------------------------------------------------------ helpers
    def now(self) -> datetime:
        return self.clock()

    def user(self, username: str, permission: Permission, doing: str) -> User:
        """The account ``username``, which must exist and hold ``permission``."""
        user = self.store.get_user(username)
        if user is None:
            raise GovernanceError(f"{doing}: there is no account {username!r}")
        if not allowed(user.role, permission):
            raise GovernanceError(
                f"{doing}: {username!r} is {user.role.value}, a role without the {permission.value!r} permission"
            )
        return user

    def note_policy_in_force(self) -> None:
        digest = self.policy.digest
        recorded = self.audit.entries_by_action(["policy.in_force"])
        if recorded and recorded[-1].details.get("digest") == digest:
            return
        self.audit.record(
            actor="system:policy",
            action="policy.in_force",
            target="policy",
            details={"digest": digest, "name": self.policy.name, "version": self.policy.version,
                     "sources": list(self.policy.sources)},
        )  # fmt: skip
