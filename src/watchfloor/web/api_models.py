"""The JSON API's response shapes (Pydantic), and how model types become them.

These classes are what /openapi.json documents; field descriptions are part of the API.
Request bodies derive from :class:`ApiIn` and take ids as :data:`Id`, so what the schema
says is valid is exactly what the server accepts (tests/web/test_api_fuzz.py holds it to that).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from watchfloor.model import AlertView, Post, SourceState, StoreCounts, Watch

MAX_ID = 2**53 - 1
"""The largest id the API takes: the largest integer a JSON client in JavaScript can tell
apart from its neighbours, far inside what the stores hold (SQLite INTEGER, PostgreSQL
BIGINT). A larger number is refused as invalid (422) where it comes in, instead of
overflowing the database driver (a server error)."""


def _json_number(value: Any) -> Any:
    """JSON Schema's ``integer``: a JSON number without a fraction (``7`` or ``7.0``), never
    ``"7"`` or ``true`` — which Pydantic's lax mode would otherwise turn into 7 and 1."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("give a whole number (a JSON number, not text or true/false)")
    return value


JSON_NUMBER = BeforeValidator(_json_number)
"""Put after the bounds: ``Annotated[int, Field(ge=1, le=30), JSON_NUMBER]`` (in this order
the schema says ``minimum``/``maximum``)."""

IdParam = Annotated[int, Field(ge=1, le=MAX_ID)]
"""An id in a path, query string or form field (text that must be a whole number in range)."""

Id = Annotated[int, Field(ge=1, le=MAX_ID), JSON_NUMBER]
"""An id in a JSON body: a JSON integer in range."""


def _json_text(value: Any) -> Any:
    if not isinstance(value, str | datetime):
        raise ValueError("give a date and time as text, e.g. 2026-11-25T12:00:00Z")
    return value


JsonDatetime = Annotated[datetime, BeforeValidator(_json_text)]
"""A date and time in a JSON body: ISO 8601 text only (a bare number is not read as a Unix time)."""

_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _iso_day(value: Any) -> Any:
    if isinstance(value, str) and not _ISO_DAY.fullmatch(value):
        raise ValueError("use a date like 2026-01-31")
    return value


IsoDay = Annotated[date, BeforeValidator(_iso_day)]
"""A day in a query string: ``2026-01-31`` only (``0`` is not read as 1 January 1970)."""


class ApiIn(BaseModel):
    """A JSON request body. Unknown fields are refused with 422 (a misspelt field is an
    error, not silently ignored), and so are values of the wrong JSON type."""

    model_config = ConfigDict(extra="forbid")


class ErrorOut(BaseModel):
    error: str = Field(description="What went wrong, for people.")
    position: int | None = Field(
        None, description="A watch query that cannot be used: the 0-based character offset of the problem in it."
    )


class HealthOut(BaseModel):
    ok: bool


class TermHitOut(BaseModel):
    term: str = Field(description="The query part as written, e.g. '\"bomb threat\"' or 'evacuat*'.")
    kind: str = Field(description="term | phrase | prefix | filter")
    spans: list[tuple[int, int]] = Field(description="[start, end) character offsets into post.text.")


class ScorePartOut(BaseModel):
    name: str
    value: float


class ExplanationOut(BaseModel):
    hits: list[TermHitOut]
    score_parts: list[ScorePartOut] = Field(description="The parts the score is the sum of.")


class PostOut(BaseModel):
    platform: str
    native_id: str
    version: str
    created_at: datetime
    text: str
    author: str = Field(description="A keyed pseudonym; account handles are never stored.")
    lang: str | None
    links: list[str]
    hashtags: list[str]
    url: str | None

    @classmethod
    def of(cls, post: Post) -> PostOut:
        return cls(
            platform=post.platform, native_id=post.native_id, version=post.version,
            created_at=post.created_at, text=post.text, author=post.author, lang=post.lang,
            links=list(post.links), hashtags=list(post.hashtags), url=post.url,
        )


class AlertOut(BaseModel):
    id: int
    watch_id: int
    watch_name: str
    severity: str = Field(description="low | medium | high | urgent (the watch's severity)")
    score: float
    status: str = Field(description="open | dismissed | false_positive | escalated | case")
    created_at: datetime
    due_at: datetime
    explanation: ExplanationOut
    post: PostOut | None = Field(description="null once the post was deleted upstream or expired.")

    @classmethod
    def of(cls, view: AlertView) -> AlertOut:
        alert = view.alert
        return cls(
            id=alert.id or 0, watch_id=alert.watch_id, watch_name=view.watch_name,
            severity=view.severity.value, score=alert.score, status=alert.status.value,
            created_at=alert.created_at, due_at=alert.due_at,
            explanation=ExplanationOut.model_validate(alert.explanation.to_dict()),
            post=PostOut.of(view.post) if view.post is not None else None,
        )


class AlertsOut(BaseModel):
    alerts: list[AlertOut] = Field(description="In ascending id order; page on with after_id = the last id.")


class WatchOut(BaseModel):
    id: int
    name: str
    query: str
    purpose: str = Field(description="A purpose of the policy in force (GET /api/policy).")
    legal_basis: str
    owner: str
    created_by: str | None = Field(description="Who proposed it (or asked for its current period).")
    approver: str | None = Field(description="The supervisor who approved it; never its creator.")
    approved_at: datetime | None
    reviewed_by: str | None = Field(description="The first of two supervisors, for a watch held for review.")
    hold: str | None = Field(description="Protected-activity categories that need two approvals.")
    authorization_id: int | None = Field(description="The account-watch authorization of an author:/mention: watch.")
    severity: str
    sla_minutes: int
    expires_at: datetime | None
    sources: list[str]
    languages: list[str]
    enabled: bool
    status: str = Field(description="pending | approved | rejected | expired (the approval record)")
    state: str = Field(description="active | pending | rejected | expired | disabled (right now)")
    active: bool = Field(description="Approved, enabled and not expired right now: it matches.")
    created_at: datetime

    @classmethod
    def of(cls, watch: Watch, now: datetime) -> WatchOut:
        return cls(
            id=watch.id or 0, name=watch.name, query=watch.query, purpose=watch.purpose,
            legal_basis=watch.legal_basis, owner=watch.owner, created_by=watch.created_by,
            approver=watch.approver, approved_at=watch.approved_at, reviewed_by=watch.reviewed_by,
            hold=watch.hold, authorization_id=watch.authorization_id,
            severity=watch.severity.value, sla_minutes=watch.sla_minutes, expires_at=watch.expires_at,
            sources=list(watch.sources), languages=list(watch.languages), enabled=watch.enabled,
            status=watch.status.value, state=watch.state(now), active=watch.is_active(now),
            created_at=watch.created_at,
        )


class WatchesOut(BaseModel):
    watches: list[WatchOut]


class CountsOut(BaseModel):
    posts: int
    alerts: int
    open_alerts: int
    dead_letters: int
    watches: int
    active_watches: int

    @classmethod
    def of(cls, counts: StoreCounts) -> CountsOut:
        return cls(
            posts=counts.posts, alerts=counts.alerts, open_alerts=counts.open_alerts,
            dead_letters=counts.dead_letters, watches=counts.watches, active_watches=counts.active_watches,
        )


class SourceOut(BaseModel):
    source: str
    cursor: str | None
    events_total: int
    posts_total: int
    events_per_s: float
    lag_s: float | None
    last_event_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(cls, state: SourceState) -> SourceOut:
        return cls(
            source=state.source, cursor=state.cursor, events_total=state.events_total,
            posts_total=state.posts_total, events_per_s=state.events_per_s, lag_s=state.lag_s,
            last_event_at=state.last_event_at, updated_at=state.updated_at,
        )


class StatusOut(BaseModel):
    counts: CountsOut
    sources: list[SourceOut]
