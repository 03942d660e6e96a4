"""E-mail notifications over SMTP (plain text; STARTTLS and login when configured).

The message says what happened and links to the floor; the post's text is included only
when the rule says so (``include_content``), and authors only ever appear as pseudonyms.
"""

from __future__ import annotations

import smtplib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from watchfloor.model import OutboxMessage
from watchfloor.notify.config import NotifySettings
from watchfloor.notify.webhook import DeliveryError


def _line(label: str, value: object) -> str:
    return f"{label}: {value}"


def email_text(message: OutboxMessage) -> tuple[str, str]:
    """The subject and plain-text body of a notification."""
    p = message.payload
    alerts = p.get("alerts") or ([p["alert"]] if p.get("alert") else [])
    first = alerts[0] if alerts else {}
    assert isinstance(first, dict)
    watch, severity, alert_id = first.get("watch", "?"), first.get("severity", "?"), first.get("id", "?")
    if message.event.value == "sla_breach":
        subject = f"[watchfloor] SLA breach: {watch} alert {alert_id} ({severity})"
        intro = "An alert passed its triage deadline while still open."
    elif message.event.value == "escalation":
        subject = f"[watchfloor] Escalated: {watch} alert {alert_id} ({severity})"
        intro = f"{len(alerts)} alert(s) were escalated by {p.get('escalated_by', '?')} to the supervisors."
    else:
        subject = f"[watchfloor] {severity} alert: {watch} (alert {alert_id})"
        intro = "A watch raised a new alert."
    lines = [intro, ""]
    for a in alerts:
        assert isinstance(a, dict)
        lines += [
            _line("Alert", a.get("id")),
            _line("Watch", a.get("watch")),
            _line("Severity", a.get("severity")),
            _line("Score", a.get("score")),
            _line("Matched", ", ".join(str(t) for t in a.get("matched", [])) or "-"),
            _line("Raised", a.get("created_at")),
            _line("Due", a.get("due_at")),
        ]
        post = a.get("post")
        if isinstance(post, dict) and post.get("text"):
            lines += [_line("Author (pseudonym)", post.get("author")), "", str(post.get("text"))]
        lines += [_line("Open", a.get("url")), ""]
    if p.get("reason"):
        lines += [_line("Reason", p["reason"]), ""]
    if p.get("breach"):
        breach = p["breach"]
        assert isinstance(breach, dict)
        lines += [_line("Near-duplicates also past due", breach.get("near_duplicates", 0)), ""]
    lines.append("-- watchfloor (authors are pseudonyms; nothing here is an automated decision about a person)")
    return subject, "\n".join(lines)


def build_email(message: OutboxMessage, sender: str) -> EmailMessage:
    subject, text = email_text(message)
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = message.target
    mail["Subject"] = subject
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "watchfloor")
    mail["X-Watchfloor-Event"] = message.event.value
    mail["X-Watchfloor-Delivery"] = str(message.id)
    mail.set_content(text)
    return mail


def send_email(settings: NotifySettings, mail: EmailMessage) -> None:
    """Send one message (blocking: run it in a thread). Failures are DeliveryErrors."""
    if not settings.smtp_host:
        raise DeliveryError("no SMTP server configured (WATCHFLOOR_SMTP_HOST)")
    try:
        with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_s) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_username:
                smtp.login(settings.smtp_username, settings.smtp_password or "")
            smtp.send_message(mail)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
