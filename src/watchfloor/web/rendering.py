"""The Jinja2 environment of the web UI: autoescaping everywhere, and the filters the
templates use to show times, durations, scores and highlighted text."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Request
from fastapi.responses import Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.templating import Jinja2Templates

from watchfloor import __version__
from watchfloor.governance.passwords import MIN_PASSWORD_LENGTH
from watchfloor.model import AlertView
from watchfloor.web.highlight import highlighted, highlighted_excerpt

if TYPE_CHECKING:
    from watchfloor.web.sessions import Viewer

TEMPLATE_DIR = Path(__file__).parent / "templates"
ROW_TEMPLATE = "_alert_row.html"


def utc_time(value: datetime | None) -> str:
    """``2025-11-25 07:48:03 UTC`` (or an em dash for no time)."""
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def feed_time(value: datetime | None) -> str:
    """What the feed shows: ``07:48:03`` today, ``11-24 07:48`` before (the full time is a tooltip)."""
    if value is None:
        return "—"
    value = value.astimezone(UTC)
    if value.date() == _now().date():
        return value.strftime("%H:%M:%S")
    return value.strftime("%m-%d %H:%M")


def web_url(value: str | None) -> bool:
    """True for an http(s) URL that may become a link (never ``javascript:`` and the like)."""
    return bool(value) and str(value).lower().startswith(("https://", "http://"))


def iso_time(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).isoformat(timespec="seconds")


def minutes_text(minutes: int | None) -> str:
    """A duration in minutes for people: ``30 min``, ``4 h``, ``1 d 2 h``."""
    if minutes is None:
        return "—"
    days, rest = divmod(int(minutes), 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days} d" if days else "", f"{hours} h" if hours else "", f"{mins} min" if mins else ""]
    return " ".join(p for p in parts if p) or "0 min"


def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    return minutes_text(round(seconds / 60))


def score_text(score: float | None) -> str:
    return "—" if score is None else f"{score:.2f}"


def _now() -> datetime:
    return datetime.now(UTC)


def build_templates() -> Jinja2Templates:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        utc_time=utc_time,
        feed_time=feed_time,
        iso_time=iso_time,
        minutes=minutes_text,
        seconds=seconds_text,
        score=score_text,
        highlighted=highlighted,
        excerpt=highlighted_excerpt,
    )
    env.tests.update(web_url=web_url)
    env.globals.update(version=__version__, now=_now, min_password_length=MIN_PASSWORD_LENGTH)
    return Jinja2Templates(env=env)


def render_alert_row(templates: Jinja2Templates, view: AlertView, *, fresh: bool = False) -> str:
    """One feed row (``<tr>``) as HTML: used by the feed page and by every SSE event."""
    return templates.get_template(ROW_TEMPLATE).render(v=view, fresh=fresh)


def page_response(
    request: Request,
    template: str,
    *,
    viewer: Viewer | None,
    nav: str | None = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response:
    """A full HTML page in the base layout; ``nav`` names the active navigation entry."""
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        template,
        {
            "viewer": viewer,
            "csrf_token": viewer.session.csrf_token if viewer is not None else None,
            "nav": nav,
            **context,
        },
        status_code=status_code,
        headers=headers,
    )
