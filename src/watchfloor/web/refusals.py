"""Governance from a request, and how its refusals are answered over HTTP.

A :class:`~watchfloor.governance.service.GovernanceError` carries a message for the person
refused. The web answers it 409 when the thing is in the wrong state for the action (not
pending any more, decided already, expired, a name taken) and 403 otherwise (a rule says
no: the protected-activity guard, approving one's own watch, a reveal outside its scope).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request

from watchfloor.governance.service import Governance, GovernanceError
from watchfloor.store import StoreError
from watchfloor.web.audit import note, recorded
from watchfloor.web.errors import ApiError

_CONFLICTS = (
    "not pending",
    "already",
    "exists",
    "was rejected",
    "has passed",
    "expired",
    "no reveals left",
    " is closed",
    " is merged",
)


def gov_of(request: Request) -> Governance:
    gov: Governance = request.app.state.gov
    return gov


def refusal_status(message: str) -> int:
    """409 for a state conflict, 403 for a rule that refuses."""
    lowered = message.lower()
    if "already reviewed" in lowered:  # the same supervisor twice on a held watch: a rule, not a state
        return 403
    return 409 if any(marker in lowered for marker in _CONFLICTS) else 403


class Refused(Exception):
    """A governance decision said no: ``status`` (403, 404, 409, or 400 for a watch query that
    cannot be used, with the ``position`` of the problem) and the message for the person."""

    def __init__(self, status: int, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.position = position


def governed(request: Request, decision: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run a governance decision for this request. Its own audit entry (``watch.approved``,
    ``identity.revealed`` ...) is the request's entry; a refusal is noted with its reason for
    the request's ``web.refused`` entry and raised as :class:`Refused`."""
    try:
        result = call(*args, **kwargs)
    except GovernanceError as exc:
        message = str(exc)
        note(request, details={"refusal": message[:500], "decision": decision})
        raise Refused(refusal_status(message), message) from None
    except StoreError as exc:
        note(request, details={"refusal": str(exc)[:500], "decision": decision})
        raise Refused(409, str(exc)) from None
    recorded(request)
    return result


def api_call(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``call(...)``, with a :class:`Refused` answered as the API's JSON error."""
    try:
        return call(*args, **kwargs)
    except Refused as refusal:
        raise ApiError(refusal.status, refusal.message, refusal.position) from None
