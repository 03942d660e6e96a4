"""SLA breaches under a controlled clock: recorded once, escalated to the supervisors
(in-app) and to the rules that ask for them, near-duplicates breaching together as one."""

from __future__ import annotations

from datetime import timedelta

import pytest

from watchfloor.model import (
    Disposition,
    NotificationChannel,
    NotificationEvent,
    NotificationRule,
    Role,
    Severity,
    User,
    utcnow,
)
from watchfloor.store import Store
from watchfloor.triage.actions import Triage
from watchfloor.triage.sla import SlaChecker, time_left_s


@pytest.fixture
def store(any_store: Store) -> Store:
    """Every test here that uses the store runs on SQLite and on PostgreSQL."""
    return any_store


class Clock:
    def __init__(self, now) -> None:
        self.now = now

    def __call__(self):
        return self.now


def test_a_breach_is_recorded_once_and_escalated(store, floor) -> None:
    store.add_user(User("sue", Role.supervisor, "x"))
    store.add_user(User("sam", Role.supervisor, "x"))
    store.add_user(User("ana", Role.analyst, "x"))
    t0 = utcnow()
    clock = Clock(t0)
    urgent = floor.watch("Threats", severity="urgent", sla_minutes=30)
    routine = floor.watch("Outages", severity="medium", sla_minutes=240)
    hot = floor.alert(urgent, "flood threat at the school", at=t0)
    twin = floor.alert(urgent, "Flood threat at the school https://x.example/1", at=t0)
    calm = floor.alert(routine, "flood outage", at=t0)
    handled = floor.alert(urgent, "flood handled in time", at=t0)
    webhook = store.add_notification_rule(
        NotificationRule(
            channel=NotificationChannel.webhook, target="http://127.0.0.1:9/hook", created_by="sue", created_at=t0,
            events=(NotificationEvent.sla_breach,), min_severity=Severity.high, secret="s",
        )
    )
    checker = SlaChecker(store, clock=clock, public_url="https://floor.example")

    clock.now = t0 + timedelta(minutes=29)
    Triage(store, clock=clock).dispose(User("ana", Role.analyst, "x"), [handled.id], Disposition.dismiss)
    assert checker.check_once() == []
    assert time_left_s(hot.due_at, clock.now) == 60

    clock.now = t0 + timedelta(minutes=31)
    breaches = checker.check_once()
    assert sorted(b.alert_id for b in breaches) == sorted([hot.id, twin.id])  # not the dismissed one, not routine
    assert checker.check_once() == []  # idempotent
    assert store.triage_state(hot.id).breached_at == clock.now
    assert "sla_breach" in [e.kind for e in store.triage_history(twin.id)]

    # one notification for the pair of near-duplicates, to each supervisor
    for supervisor in ("sue", "sam"):
        [message] = store.inbox(supervisor)
        assert message.kind == "sla_breach" and "with 1 near-duplicate" in message.title
    assert store.inbox("ana") == []
    [out] = store.due_outbox(clock.now + timedelta(seconds=1))
    assert out.rule_id == webhook.id and out.event == NotificationEvent.sla_breach
    assert out.payload["breach"]["near_duplicates"] == 1
    assert out.payload["alert"]["url"].startswith("https://floor.example/alerts/")
    assert "text" not in (out.payload["alert"]["post"] or {})  # no content unless the rule asks

    clock.now = t0 + timedelta(hours=5)
    [late] = checker.check_once()
    assert late.alert_id == calm.id
    assert len(store.due_outbox(clock.now)) == 1  # the medium breach is below the rule's severity
    assert store.floor_counts(clock.now).breaches_24h == 3
    assert next(b.alert_id for b, _ in store.recent_breaches()) == calm.id
