"""What /openapi.json says beyond what FastAPI derives from the routes by itself.

A client generated from the schema, and schemathesis (tests/web/test_api_fuzz.py), must be
able to rely on it, so it also states:

- how to authenticate: an API token (``Authorization: Bearer wft_...``, web/tokens.py) or a
  browser session cookie (which then also needs ``X-CSRF-Token`` on state changes, web/csrf.py)
  — on every ``/api/`` operation;
- what a refusal looks like: every error is ``{"error": "..."}`` (web/errors.py), also the
  422 of a request that does not fit the schema — not FastAPI's ``{"detail": [...]}``;
- the 503 every audited request may get when the audit log cannot be written (web/audit.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from watchfloor.web.csrf import CSRF_HEADER
from watchfloor.web.sessions import SESSION_COOKIE
from watchfloor.web.tokens import TOKEN_PREFIX

BEARER = "apiToken"
COOKIE = "sessionCookie"
API_PREFIX = "/api/"
_ERROR = {"$ref": "#/components/schemas/ErrorOut"}
_FASTAPI_422 = ("HTTPValidationError", "ValidationError")
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")

SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "description": f"An API token ({TOKEN_PREFIX}...), made on /account; its scopes limit what it may do.",
    },
    COOKIE: {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": f"A browser session. State changes then also need the session's {CSRF_HEADER} header.",
    },
}
STANDARD_RESPONSES: dict[str, str] = {
    "400": "The request body cannot be read (not JSON in UTF-8).",
    "401": "No valid session or API token.",
    "422": "The request does not fit this schema; the error says which part and why.",
    "503": "The audit log cannot be written right now, so nothing is shown or changed.",
}


def complete_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the security schemes and the error answers to ``schema`` (in place; returned)."""
    components = schema.setdefault("components", {})
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    for path, item in schema.get("paths", {}).items():
        if not path.startswith(API_PREFIX):
            continue
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            operation["security"] = [{BEARER: []}, {COOKIE: []}]
            responses = operation.setdefault("responses", {})
            for status, description in STANDARD_RESPONSES.items():
                if status == "422" and status not in responses:
                    continue  # an operation without any input cannot be invalid
                if status == "400" and "requestBody" not in operation:
                    continue
                answer = responses.setdefault(status, {"description": description})
                answer["content"] = {"application/json": {"schema": _ERROR}}
    _drop_unused(components.get("schemas", {}), schema)
    return schema


def _drop_unused(schemas: dict[str, Any], schema: dict[str, Any]) -> None:
    """FastAPI's own 422 shapes, once no answer refers to them any more."""
    text = repr(schema.get("paths", {}))
    for name in _FASTAPI_422:
        if f"#/components/schemas/{name}'" not in text:
            schemas.pop(name, None)
    if "HTTPValidationError" not in schemas:
        schemas.pop("ValidationError", None)


def install_openapi(app: FastAPI) -> None:
    """Serve the completed schema at ``app.openapi_url`` (built once, on first request)."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()  # FastAPI caches it in app.openapi_schema
        if "securitySchemes" not in schema.get("components", {}):
            complete_schema(schema)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
