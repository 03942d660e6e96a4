"""Why a request was refused, and how each refusal is answered: a redirect or an HTML
page for people in a browser, ``{"error": ...}`` JSON for the API and event streams."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from watchfloor.web.rendering import page_response

LOGIN_PATH = "/login"
PASSWORD_PATH = "/password"
MACHINE_PREFIXES = ("/api/", "/events/")


class SignInRequired(Exception):
    """No valid session: a page sends the browser to the login form and back."""

    def __init__(self, next_path: str) -> None:
        super().__init__("sign in required")
        self.next_path = next_path


class PasswordChangeRequired(Exception):
    """The user still has a one-time password and must set their own first."""


class ApiError(Exception):
    """An API or event-stream refusal answered as JSON: no session (401), not allowed (403), no such thing (404).
    ``position``: where in a watch query the problem is (a query that cannot be used, 400)."""

    def __init__(self, status_code: int, message: str, position: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.position = position


class CsrfRefused(Exception):
    """A state-changing request without the session's CSRF token."""


class PageForbidden(Exception):
    """A signed-in viewer's role lacks the permission a page needs."""

    def __init__(self, permission: str) -> None:
        super().__init__(permission)
        self.permission = permission


class PageNotFound(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def wants_json(request: Request) -> bool:
    path = request.url.path
    if path.startswith(MACHINE_PREFIXES) or path == "/api":
        return True
    accept = request.headers.get("accept", "")
    return "application/json" in accept and "text/html" not in accept


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def safe_next(value: str | None) -> str:
    """A post-login destination that stays on this site (no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(c) < 0x20 for c in value):
        return "/"
    return value


def _redirect(request: Request, location: str) -> Response:
    if is_htmx(request):
        # an htmx fetch must not swap the login page into a fragment: make the page navigate
        return Response(status_code=401, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def _error_page(request: Request, status_code: int, title: str, message: str) -> Response:
    if wants_json(request):
        return JSONResponse({"error": message}, status_code=status_code)
    return page_response(
        request, "error.html", viewer=getattr(request.state, "viewer", None),
        status_code=status_code, code=status_code, title=title, message=message,
    )


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInRequired)
    return _redirect(request, f"{LOGIN_PATH}?next={quote(safe_next(exc.next_path), safe='/')}")


async def _password_change_required(request: Request, exc: Exception) -> Response:
    return _redirect(request, PASSWORD_PATH)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    body: dict[str, object] = {"error": exc.message}
    if exc.position is not None:
        body["position"] = exc.position
    return JSONResponse(body, status_code=exc.status_code)


async def _csrf_refused(request: Request, exc: Exception) -> Response:
    return _error_page(
        request, 403, "Request refused",
        "This form or request did not carry a valid CSRF token. Reload the page and try again.",
    )


async def _page_not_found(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageNotFound)
    return _error_page(request, 404, "Not found", exc.message)


async def _page_forbidden(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageForbidden)
    message = f"Your role does not include the {exc.permission!r} permission needed here."
    return _error_page(request, 403, "Not permitted", message)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
# FastAPI's words for a body it cannot even decode (not UTF-8, a broken form): say what to send
_CLEARER = {
    "There was an error parsing the body": "the request body cannot be read: send JSON in UTF-8 (to a page: a form)",
}


def allowed_methods(request: Request) -> list[str]:
    """Every method some route takes at this request's path. Starlette's own 405 names the
    methods of the first route whose path matched only, and one path may have several
    routes (``GET /api/watches`` and ``POST /api/watches`` live in different routers)."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in routes)
    ]


async def _http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        message = "not found" if wants_json(request) else "There is no page at this address."
        response = _error_page(request, 404, "Not found", message)
    elif exc.status_code == 405:
        response = _error_page(request, 405, "Method not allowed", "This address does not accept that method.")
        response.headers["Allow"] = ", ".join(allowed_methods(request))
        return response
    else:
        message = exc.detail if isinstance(exc.detail, str) else "request refused"
        message = _CLEARER.get(message, message)
        response = _error_page(request, exc.status_code, "Request refused", message)
    # e.g. a 405's Allow header, which RFC 9110 requires (it lists the methods the address takes)
    for key, value in (exc.headers or {}).items():
        response.headers[key] = value
    return response


async def _invalid_request(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(part) for part in err.get('loc', ()))}: {err.get('msg', 'invalid')}" for err in exc.errors()
    )
    if wants_json(request):
        return JSONResponse({"error": f"invalid request: {problems}"}, status_code=422)
    return _error_page(request, 422, "Invalid request", f"The request was not understood ({problems}).")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(SignInRequired, _sign_in_required)
    app.add_exception_handler(PasswordChangeRequired, _password_change_required)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
    app.add_exception_handler(PageNotFound, _page_not_found)
    app.add_exception_handler(PageForbidden, _page_forbidden)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
