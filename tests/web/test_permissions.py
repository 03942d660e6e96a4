"""Server-side permissions on EVERY web endpoint, for every role.

Nothing here is a hand-kept list of endpoints: the tests walk the real app's routes (and
each route's dependency tree), so a route added anywhere — the floor, networks, whatever
comes next — is covered the moment it exists:

1. every route is public (a short, named list), self-service (signed in, one's own
   account), or depends on a ``page_requires`` / ``api_requires`` permission check;
2. the endpoint x role matrix: every route, for every role, over real HTTP, is refused
   exactly when the role lacks the permission the route declares;
3. auditors never see content: they lack every content permission, and a canary post's
   text and author pseudonym appear in no answer of any route an auditor can open.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from watchfloor.governance.passwords import hash_password
from watchfloor.governance.permissions import ROLE_PERMISSIONS, Permission, allowed
from watchfloor.model import Role, User, utcnow
from watchfloor.web.permissions import RequiresPermission
from watchfloor.web.sessions import signed_in_any, signed_in_page

PASSWORD = "a long enough password"

# Routes anyone may call: signing in, and the health checks and metrics a load balancer and
# Prometheus read (counts and "ok" only; web/routes_ops.py, docs/deploy.md).
PUBLIC = {
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),
    ("GET", "/login"), ("POST", "/login"), ("POST", "/login/code"),
}  # fmt: skip
# Signed in, about oneself only: no permission beyond being signed in.
SELF_SERVICE = re.compile(r"^/(logout|password|account)(/.*)?$")
# Not endpoints of the app's own: the static files and the API schema (no data).
OTHER_ROUTES = {"/static", "/openapi.json"}
# An example for every path parameter any route uses. A new parameter name fails the
# matrix until it is added here (so no route is ever skipped for want of an example).
EXAMPLE_PATH_PARAMS = {
    "alert_id": "1",
    "alert_ref": "1",
    "case_id": "1",
    "case_ref": "1",
    "task_id": "1",
    "rule_id": "1",
    "watch_id": "1",
    "authorization_id": "1",
    "token_id": "1",
}
# What auditors must never have: everything that shows or acts on content or people.
CONTENT_PERMISSIONS = {
    Permission.read_alerts,
    Permission.triage,
    Permission.read_cases,
    Permission.manage_cases,
    Permission.export_evidence,
    Permission.request_unmask,
    Permission.approve_unmask,
    Permission.read_inbox,
    Permission.propose_watch,
    Permission.approve_watch,
}
CANARY_TEXT = "Canary-7f3e bomb threat near the old mill"
CANARY_AUTHOR = "p:c0ffee00c0ffee00"


def api_routes(routes: Iterable[BaseRoute]) -> Iterator[APIRoute]:
    """Every endpoint of the app, also inside included routers (whatever this FastAPI
    version wraps them in)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None) or route
        yield from api_routes(getattr(inner, "routes", []))


def leaf_routes(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route that answers requests (routers opened up, whatever wraps them)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from leaf_routes(inner.routes)
        else:
            yield route


def dependency_calls(dependant: Dependant) -> Iterator[Any]:
    yield dependant.call
    for sub in dependant.dependencies:
        yield from dependency_calls(sub)


def required(route: APIRoute) -> set[Permission]:
    return {c.permission for c in dependency_calls(route.dependant) if isinstance(c, RequiresPermission)}


def endpoints(app: FastAPI) -> list[tuple[str, str, APIRoute]]:
    return sorted(
        ((method, route.path, route) for route in api_routes(app.routes) for method in route.methods - {"HEAD"}),
        key=lambda e: (e[1], e[0]),
    )


def example_path(path: str) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        assert name in EXAMPLE_PATH_PARAMS, f"{path}: add an example for the path parameter {name!r}"
        return EXAMPLE_PATH_PARAMS[name]

    return re.sub(r"\{([^}]+)\}", fill, path)


# ----------------------------------------------------------------------------- 1. every route


def test_every_route_is_public_self_service_or_needs_a_permission(app: FastAPI) -> None:
    found = endpoints(app)
    assert len(found) > 60
    for method, path, route in found:
        if (method, path) in PUBLIC:
            assert not required(route), f"{method} {path} is public but checks a permission"
            continue
        calls = set(dependency_calls(route.dependant))
        if SELF_SERVICE.match(path):
            assert calls & {signed_in_page, signed_in_any}, f"{method} {path}: self-service without sign-in"
            continue
        permissions = required(route)
        assert len(permissions) == 1, f"{method} {path} has no page_requires/api_requires check: {permissions}"
        surface = {c.surface for c in calls if isinstance(c, RequiresPermission)}
        assert surface == ({"api"} if path.startswith(("/api/", "/events/")) else {"page"}), f"{method} {path}"
    # and nothing is served outside those endpoints but static files and the schema
    for route in leaf_routes(app.routes):
        if not isinstance(route, APIRoute):
            assert getattr(route, "path", None) in OTHER_ROUTES, f"{route!r}: a route outside the checked endpoints"


def test_the_matrix_covers_the_floor_network_and_accountability_routes(app: FastAPI) -> None:
    paths = {path for _, path, _ in endpoints(app)}
    # generated from the app: whatever these modules add is in the matrix below
    for path in ("/queue", "/cases", "/wall", "/figures", "/network", "/trends", "/inbox", "/events/alerts",
                 "/watches", "/authorizations", "/audit", "/audit/verify", "/reports/transparency", "/policy",
                 "/account", "/api/audit", "/api/policy", "/api/watches/{watch_id}/approve"):  # fmt: skip
        assert path in paths, path


# ----------------------------------------------------------------------------- 2. the matrix


def test_every_role_has_a_permission_set_and_auditors_never_read_content() -> None:
    assert set(ROLE_PERMISSIONS) == set(Role)
    assert not CONTENT_PERMISSIONS & ROLE_PERMISSIONS[Role.auditor]
    for permission in (Permission.read_audit, Permission.read_reports, Permission.read_policy):
        assert allowed(Role.auditor, permission)
    assert not allowed(Role.analyst, Permission.approve_watch)
    assert allowed(Role.supervisor, Permission.approve_watch)


@contextmanager
def _signed_in_client(base_url: str, store: Any, login: Any, role: Role) -> Iterator[httpx.Client]:
    name = f"u-{role.value}"
    store.add_user(User(name, role, hash_password(PASSWORD)))
    with httpx.Client(base_url=base_url, follow_redirects=False, timeout=10) as client:
        assert login(client, name, PASSWORD).status_code == 303
        yield client


def _call(client: httpx.Client, method: str, path: str, token: str) -> tuple[int, str]:
    """Status and (small) body of a request; an event stream is closed after its headers."""
    headers = {"X-CSRF-Token": token} if method != "GET" else {}
    kwargs: dict[str, Any] = {"json": {}} if method != "GET" else {}
    with client.stream(method, path, headers=headers, **kwargs) as response:
        streaming = response.headers.get("content-type", "").startswith("text/event-stream")
        body = "" if streaming else response.read().decode("utf-8", "replace")
        return response.status_code, body


@pytest.mark.parametrize("role", list(Role))
def test_endpoint_by_role_matrix(role: Role, store, live, login, csrf_token_of, make_watch, make_alert) -> None:
    watch = make_watch()
    make_alert(watch)
    store.create_case("Matrix case", "someone", actor="someone", at=utcnow())
    checked = 0
    with _signed_in_client(live.base_url, store, login, role) as client:
        token = csrf_token_of(client, "/password")
        for method, path, route in endpoints(live.app):
            if (method, path) in PUBLIC or path == "/logout":  # /logout would end this session
                continue
            permissions = required(route)
            needed = next(iter(permissions)) if permissions else None  # None: self-service
            status, body = _call(client, method, example_path(path), token)
            assert status < 500, f"{role.value} {method} {path}: {status} {body[:300]}"
            if needed is None or allowed(role, needed):
                assert status != 401, f"{role.value} {method} {path}: signed out?"
                refused = status == 403 and f"{needed.value!r}" in body if needed else False
                assert not refused, f"{role.value} {method} {path}: refused although allowed: {body[:300]}"
            else:
                assert status == 403, f"{role.value} {method} {path}: {status}, expected 403"
                assert needed.value in body, f"{role.value} {method} {path}: {body[:300]}"
                if path.startswith("/api/"):
                    assert needed.value in httpx.Response(403, content=body).json()["error"]
            checked += 1
    assert checked > 60


# ----------------------------------------------------------------------------- 3. no content for auditors


def test_auditors_never_see_content_on_any_route(store, live, login, make_watch, make_alert) -> None:
    watch = make_watch()
    make_alert(watch, CANARY_TEXT, author=CANARY_AUTHOR)
    store.create_case("Canary case", "someone", actor="someone", at=utcnow())
    with _signed_in_client(live.base_url, store, login, Role.analyst) as analyst:  # reads that get audited
        assert "Canary-7f3e" in analyst.get("/alerts/1").text  # (matched words are marked up)
        assert analyst.get("/api/alerts", params={"q": "Canary-7f3e"}).status_code == 200  # a search, redacted
    opened = 0
    with _signed_in_client(live.base_url, store, login, Role.auditor) as auditor:
        for method, path, _ in endpoints(live.app):
            if method != "GET" or (method, path) in PUBLIC:
                continue
            status, body = _call(auditor, method, example_path(path), "")
            assert CANARY_TEXT not in body and "Canary-7f3e" not in body, f"{path} showed post text to an auditor"
            assert CANARY_AUTHOR not in body, f"{path} showed a post's author pseudonym to an auditor"
            opened += status == 200
        audit = auditor.get("/audit").text
        assert "alert:1" in audit  # the analyst's reads are there, as ids
    assert opened >= 10
