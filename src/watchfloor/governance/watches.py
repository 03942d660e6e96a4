"""Purpose-bound watches: proposed by one person, approved by a supervisor who is not the
proposer, for a purpose of the policy, with a legal basis and an expiry the policy allows.

    pending ──approve──► approved ──(expiry)──► expired ──renew──► pending ──approve──► …
       └──reject──► rejected

- Only approved, enabled, unexpired watches match (``Watch.is_active``); an expired watch
  stops by itself, and :meth:`WatchGovernance.expire_due` records that it did.
- The protected-activity guard runs when a watch is proposed and again when it is
  approved (the policy may have changed): ``refuse`` refuses it (audited), ``review``
  holds it until two supervisors, neither of them its creator, approve it.
- A watch that targets accounts (``author:``, ``mention:``) needs an approved
  ``account_watch`` authorization covering every targeted pseudonym, for the same
  purpose, in force at approval; the watch cannot outlive it.
- Renewal is a new approval: ``renew`` puts the watch back to pending with a new expiry.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from watchfloor.governance.guard import GuardVerdict, check_query
from watchfloor.governance.permissions import Permission
from watchfloor.governance.policy import GuardAction, PolicyError
from watchfloor.governance.service import GovernanceError, is_system_actor
from watchfloor.model import AuthorizationKind, Watch, WatchStatus
from watchfloor.query import QuerySyntaxError, parse
from watchfloor.query.tree import account_targets

if TYPE_CHECKING:
    from watchfloor.governance.service import Governance

DEMO_PURPOSE = "demonstration"


@dataclass(frozen=True, slots=True)
class Proposal:
    watch: Watch
    verdict: GuardVerdict
    capped: bool  # the expiry asked for was beyond the policy's limit and was cut to it

    @property
    def held(self) -> bool:
        return self.watch.hold is not None


def _target(watch: Watch) -> str:
    return f"watch:{watch.id}"


class WatchGovernance:
    def __init__(self, gov: Governance) -> None:
        self.gov = gov
        self.store = gov.store
        self.audit = gov.audit

    # ------------------------------------------------------------------ checks
    def _purpose_limit(self, purpose: str, doing: str) -> timedelta:
        try:
            return timedelta(days=self.gov.policy.purpose(purpose).max_watch_days)
        except PolicyError as exc:
            raise GovernanceError(f"{doing}: {exc}") from None

    def _guard(self, watch: Watch, *, actor: str, doing: str) -> GuardVerdict:
        try:
            verdict = check_query(watch.query, self.gov.policy)
        except QuerySyntaxError as exc:
            raise GovernanceError(f"{doing}: the query is not valid: {exc}") from None
        if verdict.action == GuardAction.refuse:
            self.audit.record(
                actor=actor,
                action="watch.refused",
                target=_target(watch) if watch.id is not None else f"watch-name:{watch.name}",
                purpose=watch.purpose,
                details={
                    "reason": "protected activity",
                    "categories": list(verdict.categories),
                    "terms": [h.term for h in verdict.hits],
                    "stage": doing,
                },
            )
            raise GovernanceError(
                f"{doing}: refused by the protected-activity guard: {verdict.describe()}. "
                "The policy does not allow watches that target these activities or groups."
            )
        return verdict

    # ------------------------------------------------------------------ propose
    def propose(self, watch: Watch, *, by: str) -> Proposal:
        """Store ``watch`` as pending, proposed by ``by``; refused ones are audited."""
        doing = "proposing the watch"
        now = self.gov.now()
        if not is_system_actor(by):
            self.gov.user(by, Permission.propose_watch, doing)
        elif watch.purpose != DEMO_PURPOSE:
            raise GovernanceError(f"{doing}: only the synthetic {DEMO_PURPOSE!r} watches are proposed by the system")
        for name, value in (("legal basis", watch.legal_basis), ("owner", watch.owner), ("name", watch.name)):
            if not value.strip():
                raise GovernanceError(f"{doing}: the {name} must not be empty")
        limit = self._purpose_limit(watch.purpose, doing)
        if watch.expires_at is None:
            raise GovernanceError(f"{doing}: every watch needs an expiry (the policy allows up to {limit.days} days)")
        if watch.expires_at <= now:
            raise GovernanceError(f"{doing}: the expiry is in the past")
        max_sla = self.gov.policy.sla_max_minutes[watch.severity]
        if watch.sla_minutes > max_sla:
            raise GovernanceError(
                f"{doing}: a {watch.severity.value} watch may have a triage deadline of at most {max_sla} minutes"
            )
        verdict = self._guard(watch, actor=by, doing=doing)
        expires_at = min(watch.expires_at, now + limit)
        hold = ",".join(verdict.categories) if verdict.action == GuardAction.review else None
        stored = self.store.add_watch(
            replace(
                watch,
                expires_at=expires_at,
                status=WatchStatus.pending,
                created_by=by,
                approver=None,
                approved_at=None,
                reviewed_by=None,
                hold=hold,
                created_at=now,
            )
        )
        targets = self._account_targets(stored)
        self.audit.record(
            actor=by,
            action="watch.proposed",
            target=_target(stored),
            purpose=stored.purpose,
            details={
                "legal_basis": stored.legal_basis,
                "expires_at": expires_at.isoformat(),
                "held_for_review": list(verdict.categories) if hold else [],
                "account_targeted": bool(targets),
                "authorization": stored.authorization_id,
            },
        )
        return Proposal(stored, verdict, capped=expires_at < watch.expires_at)

    # ------------------------------------------------------------------ approve
    def _get(self, watch_id: int, doing: str) -> Watch:
        watch = self.store.get_watch(watch_id)
        if watch is None:
            raise GovernanceError(f"{doing}: there is no watch {watch_id}")
        return watch

    def _account_targets(self, watch: Watch) -> list[str]:
        try:
            return sorted({f.value for f in account_targets(parse(watch.query))})
        except QuerySyntaxError:
            return []

    def _check_authorization(self, watch: Watch, targets: list[str], doing: str) -> datetime:
        """The expiry of the account-watch authorization that covers ``watch``."""
        now = self.gov.now()
        if watch.authorization_id is None:
            raise GovernanceError(
                f"{doing}: the watch targets accounts ({', '.join(targets)}); it needs an approved account-watch "
                "authorization (`watchfloor authorize request --kind account-watch`), named with --authorization"
            )
        auth = self.store.get_authorization(watch.authorization_id)
        problem = None
        if auth is None:
            problem = "does not exist"
        elif auth.kind != AuthorizationKind.account_watch:
            problem = "is not an account-watch authorization"
        elif not auth.in_force(now):
            problem = "is not approved and in force"
        elif auth.purpose != watch.purpose:
            problem = f"is for the purpose {auth.purpose!r}, not {watch.purpose!r}"
        elif missing := sorted(set(targets) - set(auth.pseudonyms)):
            problem = f"does not cover {', '.join(missing)}"
        if problem or auth is None:
            raise GovernanceError(f"{doing}: authorization {watch.authorization_id} {problem}")
        return auth.expires_at

    def approve(self, watch_id: int, *, by: str) -> Watch:
        """Approve a pending watch as supervisor ``by`` (never its creator). A held watch
        needs two such approvals, by two different supervisors."""
        doing = f"approving watch {watch_id}"
        now = self.gov.now()
        watch = self._get(watch_id, doing)
        self.gov.user(by, Permission.approve_watch, doing)
        if watch.status != WatchStatus.pending:
            raise GovernanceError(f"{doing}: it is {watch.status.value}, not pending (renew it to approve it again)")
        if by in (watch.created_by, watch.reviewed_by):
            who = "proposed" if by == watch.created_by else "already reviewed"
            raise GovernanceError(f"{doing}: {by!r} {who} it; a different supervisor must approve it")
        limit = self._purpose_limit(watch.purpose, doing)
        verdict = self._guard(watch, actor=by, doing=doing)
        expires_at = watch.expires_at
        if expires_at is None or expires_at <= now:
            raise GovernanceError(f"{doing}: its expiry has passed; renew it with a new expiry first")
        expires_at = min(expires_at, now + limit)
        targets = self._account_targets(watch)
        if targets:
            expires_at = min(expires_at, self._check_authorization(watch, targets, doing))
        hold = ",".join(verdict.categories) if verdict.action == GuardAction.review else None
        if hold and watch.reviewed_by is None:
            held = self.store.save_watch_approval(replace(watch, hold=hold, reviewed_by=by))
            self.audit.record(
                actor=by,
                action="watch.reviewed",
                target=_target(watch),
                purpose=watch.purpose,
                details={"categories": hold.split(","), "approvals": 1, "approvals_needed": 2},
            )
            return held
        approved = self.store.save_watch_approval(
            replace(watch, status=WatchStatus.approved, approver=by, approved_at=now, hold=hold, expires_at=expires_at)
        )
        self.audit.record(
            actor=by,
            action="watch.approved",
            target=_target(watch),
            purpose=watch.purpose,
            details={
                "legal_basis": watch.legal_basis,
                "expires_at": expires_at.isoformat(),
                "created_by": watch.created_by,
                "reviewed_by": watch.reviewed_by,
                "authorization": watch.authorization_id,
            },
        )
        return approved

    def approve_as_system(self, watch_id: int, *, actor: str, reason: str) -> Watch:
        """Approval by a system actor, allowed only for the synthetic demo purpose (``init
        --demo-watches``): recorded and audited as what it is."""
        doing = f"approving watch {watch_id}"
        watch = self._get(watch_id, doing)
        if not is_system_actor(actor) or watch.purpose != DEMO_PURPOSE:
            raise GovernanceError(f"{doing}: only watches for the {DEMO_PURPOSE!r} purpose are approved by the system")
        if self._account_targets(watch):
            raise GovernanceError(f"{doing}: a demo watch may not target accounts")
        if watch.status == WatchStatus.rejected:
            raise GovernanceError(f"{doing}: it was rejected")
        now = self.gov.now()
        self._guard(watch, actor=actor, doing=doing)
        limit = self._purpose_limit(watch.purpose, doing)
        renewed = watch.expires_at is None or watch.expires_at <= now
        expires_at = now + limit if renewed or watch.expires_at is None else min(watch.expires_at, now + limit)
        approved = self.store.save_watch_approval(
            replace(watch, status=WatchStatus.approved, approver=actor, approved_at=now, expires_at=expires_at)
        )
        self.audit.record(
            actor=actor,
            action="watch.approved",
            target=_target(watch),
            purpose=watch.purpose,
            details={
                "system_approval": True,
                "reason": reason,
                "expires_at": expires_at.isoformat(),
                "renewed": renewed,
            },
        )
        return approved

    # ------------------------------------------------------------------ reject, renew, expire
    def reject(self, watch_id: int, *, by: str, reason: str) -> Watch:
        doing = f"rejecting watch {watch_id}"
        watch = self._get(watch_id, doing)
        self.gov.user(by, Permission.approve_watch, doing)
        if watch.status != WatchStatus.pending:
            raise GovernanceError(f"{doing}: it is {watch.status.value}, not pending")
        if not reason.strip():
            raise GovernanceError(f"{doing}: give a reason")
        rejected = self.store.save_watch_approval(replace(watch, status=WatchStatus.rejected))
        self.audit.record(
            actor=by, action="watch.rejected", target=_target(watch), purpose=watch.purpose, details={"reason": reason}
        )
        return rejected

    def renew(self, watch_id: int, *, by: str, expires_at: datetime) -> Watch:
        """Ask for a new period: back to pending with a new expiry; it needs a new approval."""
        doing = f"renewing watch {watch_id}"
        now = self.gov.now()
        watch = self._get(watch_id, doing)
        self.gov.user(by, Permission.propose_watch, doing)
        if watch.status == WatchStatus.rejected:
            raise GovernanceError(f"{doing}: it was rejected; propose a new watch instead")
        if expires_at <= now:
            raise GovernanceError(f"{doing}: the new expiry is in the past")
        limit = self._purpose_limit(watch.purpose, doing)
        verdict = self._guard(watch, actor=by, doing=doing)
        new_expiry = min(expires_at, now + limit)
        renewed = self.store.save_watch_approval(
            replace(
                watch,
                status=WatchStatus.pending,
                created_by=by,  # who asks for this period; the approver must be someone else
                approver=None,
                approved_at=None,
                reviewed_by=None,
                hold=",".join(verdict.categories) if verdict.action == GuardAction.review else None,
                expires_at=new_expiry,
            )
        )
        self.audit.record(
            actor=by,
            action="watch.renewal_requested",
            target=_target(watch),
            purpose=watch.purpose,
            details={
                "expires_at": new_expiry.isoformat(),
                "previous_status": watch.status.value,
                "previously_created_by": watch.created_by,
            },
        )
        return renewed

    def expire_due(self, *, actor: str = "system:scheduler") -> list[Watch]:
        """Mark approved watches past their expiry as expired (they already stopped matching)."""
        now = self.gov.now()
        expired = []
        for watch in self.store.list_watches():
            if watch.status == WatchStatus.approved and watch.expires_at is not None and watch.expires_at <= now:
                expired.append(self.store.save_watch_approval(replace(watch, status=WatchStatus.expired)))
                self.audit.record(
                    actor=actor,
                    action="watch.expired",
                    target=_target(watch),
                    purpose=watch.purpose,
                    details={"expires_at": watch.expires_at.isoformat()},
                )
        return expired

    def set_enabled(self, watch_id: int, enabled: bool, *, by: str) -> Watch:
        watch = self._get(watch_id, f"{'enabling' if enabled else 'disabling'} watch {watch_id}")
        self.store.set_watch_enabled(watch_id, enabled)
        self.audit.record(
            actor=by,
            action="watch.enabled" if enabled else "watch.disabled",
            target=_target(watch),
            purpose=watch.purpose,
        )
        updated = self.store.get_watch(watch_id)
        assert updated is not None
        return updated
