"""Every authenticated request is one entry in the tamper-evident audit log.

:class:`RequestAudit` is a pure ASGI middleware. When a request that a signed-in person (or
an API token) made is answered, it appends ONE entry through ``gov.audit.record`` before the
answer's first byte leaves — so nothing is shown that was not recorded:

    actor   the account (``ana``); details say the role and ``via`` (session or token:<id>)
    action  web.read | web.search | web.export | web.change | web.stream | web.refused
    target  the ids in the path and in the request's form or JSON body (``alert:42``,
            ``case:7,task:3``, ``alert:1,alert:2`` for a bulk action), never free text
    purpose the watch's purpose when the request is about one alert or watch
    case    the case in the path, or the one the route names
    details method, route template (``/alerts/{alert_ref}``), status, query parameter names
            (values only when they are ids, dates or pseudonyms — a search term may be
            personal data), a body's code fields (``action=dispose``), and what the route
            adds (a refusal's reason)

Not audited: static assets, /healthz, and requests without a signed-in viewer (sign-in
pages, refused anonymous requests). An event stream is audited when it opens, never per
event. Routes whose work is itself an audited governance decision (approving a watch, a
reveal) mark the request with :func:`recorded`, so the decision is the request's entry.

If the entry cannot be written, the request is answered 503 instead: the log must not
have holes where content was shown.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watchfloor.governance.service import Governance
from watchfloor.store import Store

log = logging.getLogger(__name__)

SKIP_PREFIXES = ("/static/",)
SKIP_PATHS = frozenset({"/healthz", "/favicon.ico"})
PAGING_PARAMS = frozenset({"after_id", "after", "before", "limit", "offset", "page"})
MAX_PARAMS = 20

_ID = re.compile(r"[0-9]{1,18}")
_PSEUDONYM = re.compile(r"p:[0-9a-f]{16}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ][0-9:.]{2,15}(?:Z|[+-]\d{2}:?\d{2})?)?")
# parameters whose values are codes, not free text: kept when they look like a code
_CODE_PARAMS = frozenset(
    {"status", "view", "severity", "kind", "action", "sort", "format", "state", "window", "period", "actor"}
)
_CODE = re.compile(r"[a-z][a-z0-9_.-]{0,39}")

_BODY_CODES = frozenset({"action", "disposition", "status", "kind"})  # body fields kept when they are codes
MAX_OBSERVED_BODY = 64 * 1024  # bytes of a request body looked at for ids
MAX_BODY_IDS = 50

_STATE_NOTE = "audit_note"
_STATE_RECORDED = "audit_recorded"


class _AuditUnavailable(Exception):
    """The entry could not be written; the request was answered 503."""


# ----------------------------------------------------------------------------- for routes


def note(
    request: Request,
    *,
    purpose: str | None = None,
    case_id: str | int | None = None,
    target: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """What a route knows and the middleware cannot see: the purpose, the case, a better
    target, details (a refusal's reason). Never give content or clear personal data."""
    noted: dict[str, Any] = request.scope.setdefault("state", {}).setdefault(_STATE_NOTE, {})
    if purpose is not None:
        noted["purpose"] = purpose
    if case_id is not None:
        noted["case_id"] = str(case_id)
    if target is not None:
        noted["target"] = target
    if details:
        noted.setdefault("details", {}).update(details)


def recorded(request: Request) -> None:
    """The route wrote this request's audit entry itself (a governance decision)."""
    request.scope.setdefault("state", {})[_STATE_RECORDED] = True


# ----------------------------------------------------------------------------- the entry


def redacted_params(query_string: bytes) -> list[str]:
    """``name=value`` for ids, dates, pseudonyms and codes; ``name=…`` for anything else."""
    out: list[str] = []
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True)[:MAX_PARAMS]:
        name = name[:40]
        keep = (
            _ID.fullmatch(value)
            or _DATE.fullmatch(value)
            or _PSEUDONYM.fullmatch(value)
            or (name in _CODE_PARAMS and _CODE.fullmatch(value))
            or value in ("", "true", "false", "on")
        )
        out.append(f"{name}={value}" if keep else f"{name}=…")
    return out


def target_of(path_params: Mapping[str, Any]) -> str | None:
    """``alert:42`` from ``{"alert_ref": "42"}``; a path value that is not an id is not recorded."""
    parts = []
    for name, value in path_params.items():
        kind = name.removesuffix("_id").removesuffix("_ref")
        text = str(value)
        parts.append(f"{kind}:{text if _ID.fullmatch(text) or _PSEUDONYM.fullmatch(text) else '?'}")
    return ",".join(parts) or None


def _ids(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [value]
    out: list[str] = []
    for v in values:
        if isinstance(v, bool):
            continue
        if isinstance(v, int):
            out.append(str(v))
        elif isinstance(v, str):
            out += [part for part in re.split(r"[\s,]+", v) if _ID.fullmatch(part)]
    return out


def body_facts(content_type: str, body: bytes) -> tuple[list[str], list[str]]:
    """From a form or JSON body: ``kind:id`` for every ``*_id`` / ``*_ids`` field (at most
    :data:`MAX_BODY_IDS`), and ``name=value`` for code fields. Nothing else is looked at."""
    pairs: list[tuple[str, Any]] = []
    try:
        if content_type.startswith("application/json"):
            data = json.loads(body or b"null")
            pairs = list(data.items()) if isinstance(data, dict) else []
        elif content_type.startswith("application/x-www-form-urlencoded"):
            pairs = list(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=False))
    except ValueError:
        return [], []
    targets: list[str] = []
    codes: list[str] = []
    for name, value in pairs:
        if not isinstance(name, str):
            continue
        if name.endswith(("_id", "_ids")):
            kind = name.removesuffix("_ids").removesuffix("_id")
            targets += [f"{kind}:{i}" for i in _ids(value)]
        elif name in _BODY_CODES and isinstance(value, str) and _CODE.fullmatch(value):
            codes.append(f"{name}={value}")
    return list(dict.fromkeys(targets)), codes


def action_of(method: str, route: str, status: int, params: list[str]) -> str:
    if status in (401, 403):
        return "web.refused"
    if route.startswith("/events/"):
        return "web.stream"
    lowered = route.lower()
    if "export" in lowered or lowered.endswith((".csv", ".gexf", ".zip")):
        return "web.export"
    if method in ("GET", "HEAD"):
        searched = any(p.split("=", 1)[0] not in PAGING_PARAMS for p in params)
        return "web.search" if searched else "web.read"
    return "web.change"


def _id_param(path_params: Mapping[str, Any], *names: str) -> int | None:
    for name in names:
        text = str(path_params.get(name, ""))
        if _ID.fullmatch(text):
            return int(text)
    return None


def _purpose(store: Store, path_params: Mapping[str, Any]) -> str | None:
    alert_id = _id_param(path_params, "alert_id", "alert_ref")
    if alert_id is not None:
        return store.purpose_of_alert(alert_id)
    watch_id = _id_param(path_params, "watch_id", "watch_ref")
    if watch_id is not None:
        watch = store.get_watch(watch_id)
        return watch.purpose if watch is not None else None
    return None


def write_entry(gov: Governance, scope: Scope, status: int, body: bytes = b"") -> None:
    """The request's entry (blocking: runs in the thread pool)."""
    state: dict[str, Any] = scope.get("state") or {}
    viewer = state.get("viewer")
    route = scope.get("route")
    route_path = getattr(route, "path", None) or "?"
    method = scope.get("method", "GET")
    path_params: Mapping[str, Any] = scope.get("path_params") or {}
    params = redacted_params(scope.get("query_string", b""))
    noted: dict[str, Any] = state.get(_STATE_NOTE, {})
    purpose = noted.get("purpose")
    if purpose is None and status < 400:
        purpose = _purpose(gov.store, path_params)
    case_id = noted.get("case_id")
    if case_id is None:
        found = _id_param(path_params, "case_id", "case_ref")
        case_id = None if found is None else str(found)
    details: dict[str, Any] = {
        "method": method,
        "route": route_path,
        "status": status,
        "role": viewer.user.role.value,
        "via": viewer.via,
    }
    if params:
        details["params"] = params
    target = noted.get("target") or target_of(path_params)
    if body:
        headers = dict(scope.get("headers") or [])
        ids, codes = body_facts(headers.get(b"content-type", b"").decode("latin-1").lower(), body)
        if ids:
            target = ",".join([*([target] if target else []), *ids[:MAX_BODY_IDS]])
            if len(ids) > MAX_BODY_IDS:
                details["targets_not_listed"] = len(ids) - MAX_BODY_IDS
        if codes:
            details["body"] = codes
    details.update(noted.get("details", {}))
    gov.audit.record(
        actor=viewer.user.username,
        action=action_of(method, route_path, status, params),
        target=target,
        purpose=purpose,
        case_id=case_id,
        details=details,
    )


def _wants_audit(scope: Scope) -> bool:
    state = scope.get("state") or {}
    return state.get("viewer") is not None and not state.get(_STATE_RECORDED)


# ----------------------------------------------------------------------------- the middleware


class RequestAudit:
    """Pure ASGI middleware (it never buffers, so event streams stay streams)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in SKIP_PATHS or path.startswith(SKIP_PREFIXES):
            await self.app(scope, receive, send)
            return
        gov: Governance = scope["app"].state.gov
        started = refused = False
        body = bytearray()  # what the app read of the request body, for the ids in it

        async def observed_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) < MAX_OBSERVED_BODY:
                body.extend(message.get("body", b"")[: MAX_OBSERVED_BODY - len(body)])
            return message

        async def record(status: int) -> bool:
            if not _wants_audit(scope):
                return True
            try:
                await run_in_threadpool(write_entry, gov, scope, status, bytes(body))
            except Exception:
                log.exception("cannot write the audit entry of %s %s", scope.get("method"), path)
                return False
            return True

        async def send_audited(message: Message) -> None:
            nonlocal started, refused
            if refused:
                raise _AuditUnavailable()
            if message["type"] == "http.response.start" and not started:
                started = True
                if not await record(int(message["status"])):
                    refused = True
                    await _refuse(send)
                    raise _AuditUnavailable()
            await send(message)

        try:
            await self.app(scope, observed_receive, send_audited)
        except Exception:
            if refused:  # answered 503 already (possibly wrapped in a streaming task group)
                return
            if not started:
                started = True
                await record(500)
            raise


async def _refuse(send: Send) -> None:
    body = b'{"error":"the audit log cannot be written right now, so nothing is shown; tell the operator"}'
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
