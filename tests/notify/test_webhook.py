"""Signed webhooks to a real HTTP receiver on loopback: the signature, the body, retries
with the same delivery id, and giving up after the last attempt."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from watchfloor.model import NotificationChannel, NotificationEvent, NotificationRule, Severity, utcnow
from watchfloor.notify.config import NotifySettings
from watchfloor.notify.dispatch import MAX_ATTEMPTS, RETRY_DELAYS, Dispatcher
from watchfloor.notify.webhook import (
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    new_secret,
    signature,
    verify_signature,
)
from watchfloor.triage.fanout import NewAlertFanout


class Clock:
    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self):
        return self.now


def webhook_rule(store, url: str, **fields) -> NotificationRule:
    return store.add_notification_rule(
        NotificationRule(
            channel=NotificationChannel.webhook, target=url, created_by="sue", created_at=utcnow(),
            secret=new_secret(), **fields,
        )
    )


def test_signature_round_trip_and_refusals() -> None:
    now = utcnow()
    ts = int(now.timestamp())
    body = b'{"event":"alert"}'
    signed = signature("whsec_test", ts, body)
    assert signed.startswith("sha256=") and len(signed) == 7 + 64
    assert verify_signature("whsec_test", str(ts), signed, body, now=now)
    assert not verify_signature("whsec_test", str(ts), signed, body + b" ", now=now)  # body changed
    assert not verify_signature("whsec_other", str(ts), signed, body, now=now)  # another secret
    assert not verify_signature("whsec_test", str(ts + 1), signed, body, now=now)  # timestamp changed
    assert not verify_signature("whsec_test", str(ts), signed, body, now=now + timedelta(minutes=6))  # replayed late
    assert not verify_signature("whsec_test", None, signed, body, now=now)


async def test_a_new_alert_reaches_the_webhook_signed(store, floor, receiver) -> None:
    watch = floor.watch("Floods", severity="high")
    rule = webhook_rule(store, receiver.url, watch_id=watch.id)
    other = floor.watch("Other watch")
    webhook_rule(store, receiver.url + "?other", watch_id=other.id)  # another watch: silent
    webhook_rule(store, receiver.url + "?urgent-only", min_severity=Severity.urgent)  # below: silent
    alert = floor.alert(watch, "Flood water in the underpass")
    clock = Clock()
    NewAlertFanout(store, clock=clock, public_url="https://floor.example").run_once()
    report = await Dispatcher(store, NotifySettings(), clock=clock).deliver_due()
    assert (report.delivered, report.retrying, report.given_up) == (1, 0, 0)
    [call] = receiver.calls
    assert call.path == "/hooks/watchfloor"
    assert call.headers[EVENT_HEADER.lower()] == "alert"
    assert call.headers["content-type"] == "application/json"
    assert verify_signature(
        rule.secret, call.headers[TIMESTAMP_HEADER.lower()], call.headers[SIGNATURE_HEADER.lower()], call.body,
        now=utcnow(),
    )
    payload = json.loads(call.body)
    assert payload["event"] == "alert"
    assert payload["alert"]["id"] == alert.id and payload["alert"]["watch"] == "Floods"
    assert payload["alert"]["url"] == f"https://floor.example/alerts/{alert.id}"
    assert payload["alert"]["matched"] == ["flood*"]
    assert payload["alert"]["post"] == {"platform": "bluesky", "lang": "en"}  # no text, no author by default
    [message] = store.list_outbox()
    assert message.delivered_at == clock.now and message.attempts == 1


async def test_content_only_when_the_rule_asks(store, floor, receiver) -> None:
    watch = floor.watch()
    webhook_rule(store, receiver.url, include_content=True)
    floor.alert(watch, "Flood water in the underpass")
    NewAlertFanout(store).run_once()
    await Dispatcher(store, NotifySettings()).deliver_due()
    post = json.loads(receiver.calls[0].body)["alert"]["post"]
    assert post["text"] == "Flood water in the underpass" and post["author"].startswith("p:")


async def test_retries_keep_the_delivery_id_then_give_up(store, floor, receiver) -> None:
    watch = floor.watch()
    webhook_rule(store, receiver.url)
    floor.alert(watch, "flood one")
    NewAlertFanout(store).run_once()
    clock = Clock()
    dispatcher = Dispatcher(store, NotifySettings(), clock=clock)
    receiver.statuses.extend([500, 503])
    assert (await dispatcher.deliver_due()).retrying == 1
    assert (await dispatcher.deliver_due()).retrying == 0  # not due again yet
    clock.now += RETRY_DELAYS[0]
    assert (await dispatcher.deliver_due()).retrying == 1
    clock.now += RETRY_DELAYS[1]
    assert (await dispatcher.deliver_due()).delivered == 1
    ids = {c.headers[DELIVERY_HEADER.lower()] for c in receiver.calls}
    assert len(receiver.calls) == 3 and len(ids) == 1

    floor.alert(watch, "flood two, never accepted")
    NewAlertFanout(store).run_once()
    receiver.statuses.extend([500] * MAX_ATTEMPTS)
    given_up = 0
    for delay in (timedelta(0), *RETRY_DELAYS):
        clock.now += delay
        given_up += (await dispatcher.deliver_due()).given_up
    assert given_up == 1
    failed = store.list_outbox()[0]
    assert failed.failed_at is not None and failed.attempts == MAX_ATTEMPTS
    assert failed.last_error == "HTTP 500 from the receiver"
    clock.now += timedelta(days=1)
    assert (await dispatcher.deliver_due()).retrying == 0  # given up for good


async def test_an_unreachable_receiver_is_retried(store, floor) -> None:
    webhook_rule(store, "http://127.0.0.1:9/nothing-listens-here")
    floor.alert(floor.watch(), "flood")
    NewAlertFanout(store).run_once()
    report = await Dispatcher(store, NotifySettings(webhook_timeout_s=2)).deliver_due()
    assert report.retrying == 1
    assert "Connect" in (store.list_outbox()[0].last_error or "")


@pytest.mark.parametrize("events", [(NotificationEvent.escalation,), (NotificationEvent.sla_breach,)])
async def test_a_rule_hears_only_its_events(store, floor, receiver, events) -> None:
    webhook_rule(store, receiver.url, events=events)
    floor.alert(floor.watch(), "flood")
    NewAlertFanout(store).run_once()
    await Dispatcher(store, NotifySettings()).deliver_due()
    assert receiver.calls == []


async def test_a_deleted_rule_gives_up_at_once(store, floor, receiver) -> None:
    rule = webhook_rule(store, receiver.url)
    floor.alert(floor.watch(), "flood")
    NewAlertFanout(store).run_once()
    store.delete_notification_rule(rule.id)
    assert (await Dispatcher(store, NotifySettings()).deliver_due()).given_up == 1
    assert receiver.calls == [] and store.list_outbox()[0].last_error == "the notification rule was deleted"
