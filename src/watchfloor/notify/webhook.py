"""Signed webhooks: a JSON POST whose body is signed with the endpoint's own secret.

Every request carries::

    Content-Type: application/json
    X-Watchfloor-Event: alert | sla_breach | escalation
    X-Watchfloor-Delivery: <message id>          (the same on every retry: deduplicate on it)
    X-Watchfloor-Timestamp: <unix seconds>
    X-Watchfloor-Signature: sha256=<hex>

where ``<hex>`` is HMAC-SHA256 under the endpoint's secret of the bytes
``<timestamp>.<body>`` (the timestamp header, a full stop, then the raw body). A receiver
recomputes it, compares in constant time, and refuses timestamps more than five minutes
away from its own clock (replays). :func:`verify_signature` does exactly that.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import datetime
from typing import TYPE_CHECKING

from watchfloor.model import OutboxMessage

if TYPE_CHECKING:
    import httpx

EVENT_HEADER = "X-Watchfloor-Event"
DELIVERY_HEADER = "X-Watchfloor-Delivery"
TIMESTAMP_HEADER = "X-Watchfloor-Timestamp"
SIGNATURE_HEADER = "X-Watchfloor-Signature"
TOLERANCE_S = 300
USER_AGENT = "watchfloor-webhook/1"


class DeliveryError(RuntimeError):
    """A delivery attempt failed; it will be retried unless ``permanent``."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


def new_secret() -> str:
    """A fresh per-endpoint signing secret."""
    return "whsec_" + secrets.token_urlsafe(32)


def body_of(payload: dict[str, object]) -> bytes:
    """The exact bytes sent (and signed) for a payload."""
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str,
    timestamp: str | None,
    signed: str | None,
    body: bytes,
    *,
    now: datetime,
    tolerance_s: int = TOLERANCE_S,
) -> bool:
    """True when ``signed`` is the signature of ``body`` at ``timestamp`` and the timestamp is fresh."""
    if not timestamp or not signed or not timestamp.isascii() or not timestamp.isdigit():
        return False
    if abs(now.timestamp() - int(timestamp)) > tolerance_s:
        return False
    return hmac.compare_digest(signature(secret, int(timestamp), body), signed)


def webhook_request(message: OutboxMessage, secret: str, now: datetime) -> tuple[dict[str, str], bytes]:
    """The headers and body of one delivery attempt."""
    body = body_of(message.payload)
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        EVENT_HEADER: message.event.value,
        DELIVERY_HEADER: str(message.id),
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }
    return headers, body


async def post_webhook(client: httpx.AsyncClient, message: OutboxMessage, secret: str, now: datetime) -> None:
    """POST one message; any answer but 2xx (or no answer) is a DeliveryError."""
    import httpx

    headers, body = webhook_request(message, secret, now)
    try:
        response = await client.post(message.target, content=body, headers=headers)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
    if not 200 <= response.status_code < 300:
        raise DeliveryError(f"HTTP {response.status_code} from the receiver")
