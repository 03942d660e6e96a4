"""Retention: delete what the policy says is no longer needed, and record what went, by count.

| data class | rule (``[retention]`` in the policy) |
|---|---|
| posts that matched no watch | never stored (by design: nothing to delete) |
| dismissed alerts | ``dismissed_alert_days`` after the disposition |
| false-positive alerts | ``false_positive_alert_days`` after the disposition |
| cases | ``case_closed_days`` after closing (or merging away): the case, its alerts, evidence, notes, tasks, timeline |
| posts deleted upstream | at once, with the delete; this job sweeps any copy left, within ``upstream_delete_hours`` |
| posts no alert refers to | with the last alert that needed them |
| dead letters (raw events) | ``dead_letter_days`` |
| notifications | ``notification_days`` after they were sent |
| sealed identities | when no stored post carries the pseudonym and no authorization in force covers it |
| audit entries | kept (append-only) |

Alerts still open, escalated, or in an open case are never deleted by age. Each rule runs
in its own transaction; one that fails is reported (and audited) and the others still run.
The whole run is one audit entry with the counts.

Other modules add data classes with :func:`register_rule`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from watchfloor.model import AlertStatus

if TYPE_CHECKING:
    from watchfloor.governance.policy import Policy
    from watchfloor.governance.service import Governance
    from watchfloor.store import Store

log = logging.getLogger(__name__)

#: (store, policy, now, dry_run) -> rows deleted (or that would be), by name
RuleFunction = Callable[["Store", "Policy", datetime, bool], dict[str, int]]


@dataclass(frozen=True, slots=True)
class RetentionRule:
    name: str
    run: RuleFunction


@dataclass
class RetentionResult:
    run_at: datetime
    dry_run: bool
    counts: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def _dismissed(store: Store, policy: Policy, now: datetime, dry: bool) -> dict[str, int]:
    before = now - timedelta(days=policy.retention.dismissed_alert_days)
    return {"dismissed_alerts": store.purge_decided_alerts(AlertStatus.dismissed, before, dry_run=dry)}


def _false_positives(store: Store, policy: Policy, now: datetime, dry: bool) -> dict[str, int]:
    before = now - timedelta(days=policy.retention.false_positive_alert_days)
    return {"false_positive_alerts": store.purge_decided_alerts(AlertStatus.false_positive, before, dry_run=dry)}


def _cases(store: Store, policy: Policy, now: datetime, dry: bool) -> dict[str, int]:
    counts = store.purge_closed_cases(now - timedelta(days=policy.retention.case_closed_days), dry_run=dry)
    return {"closed_cases": counts["cases"], "case_alerts": counts["alerts"], "case_evidence": counts["evidence"]}


def _upstream(store: Store, policy: Policy, now: datetime, dry: bool) -> dict[str, int]:
    return {"upstream_deleted_posts": store.purge_tombstoned_posts(dry_run=dry)}


def _posts(store: Store, policy: Policy, now: datetime, dry: bool) -> dict[str, int]:
    return {"unreferenced_posts": store.purge_unreferenced_posts(dry_run=dry)}


def _dead_letters(store: Store, policy: Policy, now: datetime, dry: bool) -> dict[str, int]:
    before = now - timedelta(days=policy.retention.dead_letter_days)
    return {"dead_letters": store.purge_dead_letters(before, dry_run=dry)}


def _notifications(store: Store, policy: Policy, now: datetime, dry: bool) -> dict[str, int]:
    before = now - timedelta(days=policy.retention.notification_days)
    return {"notifications": store.purge_notifications(before, dry_run=dry)}


def _identities(store: Store, policy: Policy, now: datetime, dry: bool) -> dict[str, int]:
    return {"sealed_identities": store.purge_orphan_identities(now, dry_run=dry)}


# Order matters: alerts and cases first, then the posts they no longer hold, then the
# identities those posts no longer need.
RULES: list[RetentionRule] = [
    RetentionRule("dismissed_alerts", _dismissed),
    RetentionRule("false_positive_alerts", _false_positives),
    RetentionRule("closed_cases", _cases),
    RetentionRule("upstream_deleted_posts", _upstream),
    RetentionRule("unreferenced_posts", _posts),
    RetentionRule("dead_letters", _dead_letters),
    RetentionRule("notifications", _notifications),
    RetentionRule("sealed_identities", _identities),
]


def register_rule(rule: RetentionRule, *, before: str = "unreferenced_posts") -> None:
    """Add a data class's rule (before the rule named ``before``, so posts it frees go too)."""
    names = [r.name for r in RULES]
    RULES.insert(names.index(before) if before in names else len(RULES), rule)


def run_retention(gov: Governance, *, dry_run: bool = False, actor: str = "system:retention") -> RetentionResult:
    """Run every rule at ``gov``'s clock; audit the run (a dry run too) with its counts."""
    now = gov.now()
    result = RetentionResult(run_at=now, dry_run=dry_run)
    for rule in list(RULES):
        try:
            result.counts.update(rule.run(gov.store, gov.policy, now, dry_run))
        except Exception as exc:  # one failing data class must not stop the others
            log.exception("retention rule %s failed", rule.name)
            result.errors[rule.name] = f"{type(exc).__name__}: {exc}"
    gov.audit.record(
        actor=actor,
        action="retention.dry_run" if dry_run else "retention.run",
        target="retention",
        details={
            **{f"deleted.{k}": v for k, v in result.counts.items()},
            **{f"error.{k}": v for k, v in result.errors.items()},
        },
    )
    return result
