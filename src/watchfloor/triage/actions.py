"""What an analyst does on the queue: claim, release, assign, dispose, reopen.

Every action takes alert ids (a queue item's ``alert_ids``, or any selection for bulk
work); with ``include_duplicates`` each id also brings the other open alerts of its
near-duplicate group. The rules that matter:

- dismiss and false positive need no reason; escalate, open case and add to case may
  affect a person and need a written reason (at least :data:`MIN_REASON` characters);
- a disposition is a record of a human decision and triggers nothing about a person:
  escalation tells the supervisors, a case preserves evidence, and that is all;
- a claim never takes an alert someone else holds (assign does, on purpose);
- opening a case or adding to one also needs the ``manage_cases`` permission.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from watchfloor.governance.permissions import Permission, allowed
from watchfloor.model import AlertView, Disposition, QueueItem, Role, User, utcnow
from watchfloor.notify.plan import escalation_fanout
from watchfloor.store import Store, StoreError
from watchfloor.store.triage_repo import Changed, QueueFilter
from watchfloor.triage.errors import FloorError
from watchfloor.triage.grouping import group_key

MIN_REASON = 5
MAX_REASON = 4000
MAX_IDS = 1000


@dataclass(slots=True)
class ActionResult:
    """What an action did, per alert."""

    action: str
    changed: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)
    case_id: int | None = None

    @classmethod
    def of(cls, action: str, changed: Changed, case_id: int | None = None) -> ActionResult:
        return cls(action=action, changed=list(changed.changed), skipped=dict(changed.skipped), case_id=case_id)

    def summary(self) -> str:
        """One sentence for people: ``Dismissed 3 alerts; 1 left alone (alert 7: held by bob).``"""
        n = len(self.changed)
        alerts = f"{n} alert{'s' if n != 1 else ''}"
        if self.action == "open_case" and self.case_id is not None:
            text = f"Opened case {self.case_id} with {alerts}"
        elif self.action == "add_to_case" and self.case_id is not None:
            text = f"Added {alerts} to case {self.case_id}"
        else:
            text = f"{_PAST[self.action]} {alerts}"
        if self.skipped:
            reasons = "; ".join(f"alert {k}: {v}" for k, v in list(self.skipped.items())[:5])
            more = "" if len(self.skipped) <= 5 else f"; {len(self.skipped) - 5} more"
            text += f"; {len(self.skipped)} left alone ({reasons}{more})"
        return text + "."


_PAST = {
    "claim": "Claimed",
    "release": "Released",
    "assign": "Assigned",
    "reopen": "Reopened",
    "dismiss": "Dismissed",
    "false_positive": "Marked as false positive",
    "escalate": "Escalated",
    "open_case": "Opened a case with",
    "add_to_case": "Added to a case",
}


def clean_reason(reason: str | None, *, required: bool, what: str) -> str:
    text = " ".join((reason or "").split())
    if len(text) > MAX_REASON:
        raise FloorError(400, f"the reason is too long (at most {MAX_REASON} characters)")
    if required and len(text) < MIN_REASON:
        raise FloorError(
            400, f"{what} may affect a person: write a reason (at least {MIN_REASON} characters) for the record"
        )
    return text


def clean_ids(alert_ids: Sequence[int]) -> list[int]:
    ids = list(dict.fromkeys(int(i) for i in alert_ids))
    if not ids:
        raise FloorError(400, "choose at least one alert")
    if len(ids) > MAX_IDS:
        raise FloorError(400, f"at most {MAX_IDS} alerts at a time")
    return ids


class Triage:
    """The queue's actions over one store; ``clock`` is injectable for tests."""

    def __init__(self, store: Store, *, clock: Callable[[], datetime] = utcnow, public_url: str = "") -> None:
        self.store = store
        self.clock = clock
        self.public_url = public_url

    # ------------------------------------------------------------------ reading
    def queue(self, flt: QueueFilter | None = None, *, limit: int = 200) -> list[QueueItem]:
        self.store.fill_group_keys(group_key)
        return self.store.queue(flt, limit=limit)

    def supervisors(self) -> list[str]:
        return sorted(u for u, role in self.store.account_roles().items() if role == Role.supervisor)

    def assignable(self) -> list[str]:
        """Accounts that may hold alerts (their role has the triage permission)."""
        return sorted(u for u, role in self.store.account_roles().items() if allowed(role, Permission.triage))

    def _targets(self, alert_ids: Sequence[int], include_duplicates: bool) -> list[int]:
        ids = clean_ids(alert_ids)
        if include_duplicates:
            self.store.fill_group_keys(group_key)
            ids = self.store.expand_groups(ids)
        return ids

    # ------------------------------------------------------------------ holding
    def claim(self, actor: User, alert_ids: Sequence[int], *, include_duplicates: bool = False) -> ActionResult:
        ids = self._targets(alert_ids, include_duplicates)
        changed = self.store.assign_alerts(
            ids, actor.username, actor=actor.username, at=self.clock(), only_unclaimed=True
        )
        return ActionResult.of("claim", changed)

    def release(self, actor: User, alert_ids: Sequence[int], *, include_duplicates: bool = False) -> ActionResult:
        ids = self._targets(alert_ids, include_duplicates)
        changed = self.store.assign_alerts(ids, None, actor=actor.username, at=self.clock(), only_unclaimed=False)
        return ActionResult.of("release", changed)

    def assign(
        self, actor: User, alert_ids: Sequence[int], assignee: str, *, include_duplicates: bool = False
    ) -> ActionResult:
        if assignee not in self.assignable():
            raise FloorError(400, f"{assignee!r} is not an account that can triage alerts")
        ids = self._targets(alert_ids, include_duplicates)
        changed = self.store.assign_alerts(ids, assignee, actor=actor.username, at=self.clock(), only_unclaimed=False)
        return ActionResult.of("assign", changed)

    # ------------------------------------------------------------------ deciding
    def dispose(
        self,
        actor: User,
        alert_ids: Sequence[int],
        disposition: Disposition,
        reason: str | None = None,
        *,
        case_id: int | None = None,
        case_title: str | None = None,
        include_duplicates: bool = False,
    ) -> ActionResult:
        label = disposition.value.replace("_", " ")
        why = clean_reason(reason, required=disposition.needs_reason, what=label.capitalize())
        ids = self._targets(alert_ids, include_duplicates)
        now = self.clock()
        if disposition in (Disposition.open_case, Disposition.add_to_case):
            if not allowed(actor.role, Permission.manage_cases):
                raise FloorError(403, f"forbidden: your role lacks the {Permission.manage_cases.value!r} permission")
            from watchfloor.cases.service import Cases  # cases build on triage, not the other way round

            cases = Cases(self.store, clock=self.clock)
            if disposition == Disposition.open_case:
                title = case_title or self._default_title(ids)
                case, changed = cases.open(actor, title, alert_ids=ids, reason=why)
                return ActionResult.of("open_case", changed, case.id)
            if case_id is None:
                raise FloorError(400, "add to case needs the case's id")
            return cases.add_alerts(actor, case_id, ids, why)
        fanout_for = None
        if disposition == Disposition.escalate:
            views = {i: v for i in ids if (v := self.store.get_alert(i)) is not None}
            rules = self.store.list_notification_rules()
            supervisors = self.supervisors()

            def fanout_for(changed: list[int]):  # type: ignore[no-untyped-def]
                return escalation_fanout(
                    rules,
                    [views[i] for i in changed if i in views],
                    supervisors,
                    actor=actor.username,
                    reason=why,
                    public_url=self.public_url,
                    now=now,
                )

        changed = self.store.dispose_alerts(ids, disposition, why, actor=actor.username, at=now, fanout_for=fanout_for)
        return ActionResult.of(disposition.value, changed)

    def reopen(self, actor: User, alert_ids: Sequence[int], reason: str | None) -> ActionResult:
        why = clean_reason(reason, required=True, what="Reopening")
        ids = clean_ids(alert_ids)
        return ActionResult.of("reopen", self.store.reopen_alerts(ids, why, actor=actor.username, at=self.clock()))

    def _default_title(self, ids: Sequence[int]) -> str:
        view: AlertView | None = self.store.get_alert(ids[0])
        if view is None:
            raise FloorError(404, f"no alert with id {ids[0]}")
        return f"{view.watch_name}: alert {ids[0]}" + (f" and {len(ids) - 1} more" if len(ids) > 1 else "")


def store_refusal(exc: StoreError) -> FloorError:
    """A store refusal (a state conflict) as a floor error."""
    message = str(exc)
    return FloorError(404 if message.startswith("no ") else 409, message)
