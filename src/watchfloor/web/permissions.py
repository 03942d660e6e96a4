"""Server-side permission checks as FastAPI dependencies, for pages and for the API.

    @router.get("/alerts")
    def list_alerts(viewer: Annotated[Viewer, Depends(api_requires(Permission.read_alerts))]): ...

A page refusal is a 403 page, an API refusal a 403 JSON error; neither says more than
which permission was missing. An API request made with a token also needs the permission
in the token's scope (web/tokens.py).

Every route of the app that is not public or self-service depends on one of these; a test
walks the app's routes and their dependency trees to prove it (tests/web/test_permissions.py),
reading :attr:`RequiresPermission.permission`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from jinja2 import pass_context

from watchfloor.governance.permissions import Permission, allowed
from watchfloor.web.errors import ApiError, PageForbidden
from watchfloor.web.sessions import Viewer, signed_in_api, signed_in_page


@dataclass(frozen=True, slots=True)
class RequiresPermission:
    """A dependency: the signed-in viewer, who must hold ``permission`` (``surface``: page or api)."""

    permission: Permission
    surface: str

    def __call__(self, request: Request) -> Viewer:
        if self.surface == "page":
            viewer = signed_in_page(request)
            if not viewer.may(self.permission):
                raise PageForbidden(self.permission.value)
            return viewer
        viewer = signed_in_api(request)
        if not viewer.may(self.permission):
            lacking = "your role" if not allowed(viewer.user.role, self.permission) else "your API token's scope"
            raise ApiError(403, f"forbidden: {lacking} lacks the {self.permission.value!r} permission")
        return viewer

    @property
    def __name__(self) -> str:  # what FastAPI and tracebacks call it
        return f"{self.surface}_requires_{self.permission.value}"


def page_requires(permission: Permission) -> RequiresPermission:
    return RequiresPermission(permission, "page")


def api_requires(permission: Permission) -> RequiresPermission:
    return RequiresPermission(permission, "api")


def viewer_may(viewer: Viewer | None, permission: str | Permission) -> bool:
    """May this viewer (possibly nobody) use ``permission``? Unknown names: no."""
    if viewer is None or viewer.user.must_change_password:
        return False
    try:
        return viewer.may(Permission(permission))
    except ValueError:
        return False


@pass_context
def template_can(context: Any, *args: Any) -> bool:
    """The templates' ``can``: ``can("read_audit")`` for the page's viewer, or
    ``can(viewer, "read_audit")`` for a given one."""
    if len(args) == 1:
        return viewer_may(context.get("viewer"), args[0])
    viewer, permission = args
    return viewer_may(viewer, permission)
