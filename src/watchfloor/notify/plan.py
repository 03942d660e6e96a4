"""Who hears about what: turn a new alert, an SLA breach or an escalation into in-app
messages and outbox entries, following the notification rules (per watch, per severity).

Everything here is pure: it reads nothing and writes nothing. The store writes the
returned :class:`~watchfloor.store.notify_repo.Fanout` in the same transaction as the
change itself, so a notification exists exactly when its cause does.

Payloads carry what a receiver needs to decide whether to look (watch, severity, score,
the matched terms, deadlines and a link) and, only when the rule asks for it, the post's
text and the analyst's reason. Authors only ever appear as pseudonyms.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from watchfloor.model import (
    AlertView,
    InboxMessage,
    NotificationChannel,
    NotificationEvent,
    NotificationRule,
    OutboxMessage,
    SlaBreach,
)
from watchfloor.store.notify_repo import Fanout

PAYLOAD_VERSION = 1


def alert_summary(view: AlertView, public_url: str, *, include_content: bool) -> dict[str, object]:
    """One alert as notifications describe it."""
    a = view.alert
    summary: dict[str, object] = {
        "id": a.id,
        "url": f"{public_url.rstrip('/')}/alerts/{a.id}",
        "watch_id": a.watch_id,
        "watch": view.watch_name,
        "severity": view.severity.value,
        "score": a.score,
        "status": a.status.value,
        "created_at": a.created_at.isoformat(),
        "due_at": a.due_at.isoformat(),
        "matched": sorted({h.term for h in a.explanation.hits if h.kind != "filter"}),
        "post": None,
    }
    if view.post is not None:
        post: dict[str, object] = {"platform": view.post.platform, "lang": view.post.lang}
        if include_content:
            post |= {"text": view.post.text, "author": view.post.author}
        summary["post"] = post
    return summary


def _outbox(
    rule: NotificationRule, event: NotificationEvent, subject: str, payload: dict[str, object], now: datetime
) -> OutboxMessage:
    return OutboxMessage(
        rule_id=rule.id or 0,
        channel=rule.channel,
        target=rule.target,
        event=event,
        subject=subject,
        payload=payload,
        created_at=now,
        next_attempt_at=now,
    )


def _route(
    fanout: Fanout,
    rules: Iterable[NotificationRule],
    event: NotificationEvent,
    view: AlertView,
    subject: str,
    payload_for: dict[bool, dict[str, object]],
    inbox_title: str,
    now: datetime,
    skip_users: Sequence[str] = (),
) -> None:
    """Add one message per rule that wants this event for this watch and severity."""
    for rule in rules:
        if not rule.wants(event, view.alert.watch_id, view.severity):
            continue
        if rule.channel == NotificationChannel.inapp:
            if rule.target in skip_users:
                continue
            fanout.inbox.append(
                InboxMessage(
                    username=rule.target,
                    kind=event.value,
                    title=inbox_title,
                    created_at=now,
                    link=f"/alerts/{view.alert.id}",
                    subject=subject,
                )
            )
        else:
            fanout.outbox.append(_outbox(rule, event, subject, payload_for[rule.include_content], now))


def new_alert_fanout(
    rules: Sequence[NotificationRule],
    batch: Sequence[tuple[AlertView, str, bool]],
    *,
    public_url: str,
    now: datetime,
) -> Fanout:
    """Notifications for newly committed alerts. Only the first open alert of a group of
    near-duplicates is announced: forty reposts page nobody forty times."""
    fanout = Fanout()
    for view, _key, first in batch:
        if not first:
            continue
        payloads = {
            flag: {
                "version": PAYLOAD_VERSION,
                "event": NotificationEvent.alert.value,
                "sent_at": now.isoformat(),
                "alert": alert_summary(view, public_url, include_content=flag),
            }
            for flag in (False, True)
        }
        title = f"New {view.severity.value} alert {view.alert.id}: {view.watch_name}"
        _route(fanout, rules, NotificationEvent.alert, view, f"alert:{view.alert.id}", payloads, title, now)
    return fanout


def breach_fanout(
    rules: Sequence[NotificationRule],
    breaches: Sequence[SlaBreach],
    views: dict[int, AlertView],
    supervisors: Sequence[str],
    *,
    public_url: str,
    now: datetime,
) -> Fanout:
    """An SLA breach escalates to every supervisor (in-app) and to the rules that ask for it;
    near-duplicates that breach together make one notification."""
    fanout = Fanout()
    groups: dict[tuple[int, str], list[SlaBreach]] = {}
    for breach in breaches:
        key = (breach.watch_id, breach.group_key or f"alert:{breach.alert_id}")
        groups.setdefault(key, []).append(breach)
    for members in groups.values():
        lead = members[0]
        view = views.get(lead.alert_id)
        if view is None:
            continue
        more = len(members) - 1
        subject = f"breach:{lead.alert_id}"
        title = f"SLA breach: {view.severity.value} alert {lead.alert_id} ({view.watch_name}) is past its deadline"
        if more:
            title += f", with {more} near-duplicate{'s' if more != 1 else ''}"
        body = f"Due {lead.due_at:%Y-%m-%d %H:%M} UTC and still open. Claim it or reassign it."
        for username in supervisors:
            fanout.inbox.append(
                InboxMessage(
                    username=username,
                    kind=NotificationEvent.sla_breach.value,
                    title=title,
                    body=body,
                    link=f"/alerts/{lead.alert_id}",
                    subject=subject,
                    created_at=now,
                )
            )
        payloads = {
            flag: {
                "version": PAYLOAD_VERSION,
                "event": NotificationEvent.sla_breach.value,
                "sent_at": now.isoformat(),
                "alert": alert_summary(view, public_url, include_content=flag),
                "breach": {
                    "due_at": lead.due_at.isoformat(),
                    "detected_at": lead.detected_at.isoformat(),
                    "near_duplicates": more,
                    "alert_ids": [b.alert_id for b in members],
                },
            }
            for flag in (False, True)
        }
        _route(fanout, rules, NotificationEvent.sla_breach, view, subject, payloads, title, now, skip_users=supervisors)
    return fanout


def escalation_fanout(
    rules: Sequence[NotificationRule],
    views: Sequence[AlertView],
    supervisors: Sequence[str],
    *,
    actor: str,
    reason: str,
    public_url: str,
    now: datetime,
) -> Fanout:
    """One escalation (one action, perhaps on several alerts) to the supervisors and the rules."""
    fanout = Fanout()
    if not views:
        return fanout
    lead = views[0]
    subject = f"escalation:{lead.alert.id}:{now.isoformat()}"
    more = len(views) - 1
    title = f"Escalated by {actor}: {lead.severity.value} alert {lead.alert.id} ({lead.watch_name})"
    if more:
        title += f" and {more} more"
    for username in supervisors:
        if username == actor:
            continue
        fanout.inbox.append(
            InboxMessage(
                username=username,
                kind=NotificationEvent.escalation.value,
                title=title,
                body=f"Reason: {reason}",
                link=f"/alerts/{lead.alert.id}",
                subject=subject,
                created_at=now,
            )
        )
    payloads: dict[bool, dict[str, object]] = {}
    for flag in (False, True):
        payload: dict[str, object] = {
            "version": PAYLOAD_VERSION,
            "event": NotificationEvent.escalation.value,
            "sent_at": now.isoformat(),
            "escalated_by": actor,
            "alerts": [alert_summary(v, public_url, include_content=flag) for v in views],
        }
        if flag:
            payload["reason"] = reason
        payloads[flag] = payload
    _route(
        fanout,
        rules,
        NotificationEvent.escalation,
        lead,
        subject,
        payloads,
        title,
        now,
        skip_users=[*supervisors, actor],
    )
    return fanout
