"""E-mail notifications through a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

from datetime import timedelta

from watchfloor.model import (
    Disposition,
    NotificationChannel,
    NotificationEvent,
    NotificationRule,
    Role,
    User,
    utcnow,
)
from watchfloor.notify.config import NotifySettings
from watchfloor.notify.dispatch import Dispatcher
from watchfloor.triage.actions import Triage
from watchfloor.triage.sla import SlaChecker


def email_rule(store, address: str, events, **fields) -> NotificationRule:
    return store.add_notification_rule(
        NotificationRule(
            channel=NotificationChannel.email, target=address, created_by="sue", created_at=utcnow(),
            events=events, **fields,
        )
    )


async def test_sla_breach_and_escalation_by_email(store, floor, smtp_server) -> None:
    store.add_user(User("sue", Role.supervisor, "x"))
    settings = NotifySettings(
        public_url="https://floor.example", smtp_host=smtp_server.host, smtp_port=smtp_server.port,
        smtp_from="floor@example.org",
    )
    email_rule(store, "duty@example.org", (NotificationEvent.sla_breach, NotificationEvent.escalation))
    t0 = utcnow()
    watch = floor.watch("Threats to schools", severity="urgent", sla_minutes=30)
    late = floor.alert(watch, "flood threat, nobody looked", at=t0)
    escalated = floor.alert(watch, "flood threat, escalated", at=t0)
    Triage(store, public_url=settings.public_url).dispose(
        User("ana", Role.analyst, "x"), [escalated.id], Disposition.escalate, "Looks credible, names a school"
    )
    later = t0 + timedelta(minutes=31)
    SlaChecker(store, clock=lambda: later, public_url=settings.public_url).check_once()
    report = await Dispatcher(store, settings, clock=lambda: later).deliver_due()
    assert report.delivered == 2, store.list_outbox()
    by_event = {m["X-Watchfloor-Event"]: m for m in smtp_server.messages}
    breach = by_event["sla_breach"]
    assert breach["To"] == "duty@example.org" and breach["From"] == "floor@example.org"
    assert breach["Subject"] == f"[watchfloor] SLA breach: Threats to schools alert {late.id} (urgent)"
    text = breach.get_content()
    assert f"https://floor.example/alerts/{late.id}" in text
    assert "nobody looked" not in text  # no post text unless the rule asks
    escalation = by_event["escalation"]
    assert "escalated by ana" in escalation.get_content()
    assert "Looks credible" not in escalation.get_content()  # reasons only with include_content


async def test_without_an_smtp_server_mail_waits_and_retries(store, floor) -> None:
    email_rule(store, "duty@example.org", (NotificationEvent.escalation,))
    alert = floor.alert(floor.watch(), "flood")
    Triage(store).dispose(User("ana", Role.analyst, "x"), [alert.id], Disposition.escalate, "Please have a look")
    report = await Dispatcher(store, NotifySettings(smtp_host=None)).deliver_due()
    assert report.retrying == 1
    assert "no SMTP server configured" in (store.list_outbox()[0].last_error or "")
