"""The wall display (live counts, the queue's head, SLA breaches, source health, a volume
chart) and the per-watch figures (time to triage, SLA compliance, false positives)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from watchfloor.governance.permissions import Permission
from watchfloor.model import QueueItem, WatchFigures
from watchfloor.web.api_models import ErrorOut
from watchfloor.web.floor import clock_of, floor_page, store_of, triage_of
from watchfloor.web.floor_models import (
    BreachOut,
    FiguresOut,
    FloorCountsOut,
    QueueItemOut,
    SourceHealthOut,
    VolumeOut,
    WallOut,
    WatchFiguresOut,
)
from watchfloor.web.permissions import api_requires, page_requires
from watchfloor.web.sessions import Viewer

WALL_QUEUE = 8
WALL_BREACHES = 8
VOLUME_BUCKET_S = 10 * 60
VOLUME_BUCKETS = 36  # six hours
PERIODS = {"7d": timedelta(days=7), "30d": timedelta(days=30), "all": None}

_REFUSALS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorOut, "description": "No valid session."},
    403: {"model": ErrorOut, "description": "Your role lacks the permission."},
}
api = APIRouter(prefix="/api", tags=["wall and figures"], responses=_REFUSALS)
pages = APIRouter(include_in_schema=False)

ApiReader = Annotated[Viewer, Depends(api_requires(Permission.read_alerts))]
ApiReports = Annotated[Viewer, Depends(api_requires(Permission.read_reports))]
PageReader = Annotated[Viewer, Depends(page_requires(Permission.read_alerts))]
PageReports = Annotated[Viewer, Depends(page_requires(Permission.read_reports))]


@dataclass(frozen=True, slots=True)
class Bar:
    """One bar of the volume chart, in SVG user units."""

    x: float
    y: float
    width: float
    height: float
    start: datetime
    count: int


def wall_data(request: Request) -> tuple[WallOut, list[QueueItem]]:
    store = store_of(request)
    now = clock_of(request)()
    items = triage_of(request).queue(limit=WALL_QUEUE)
    breaches = [
        BreachOut(
            alert_id=b.alert_id,
            watch=v.watch_name,
            severity=v.severity,
            due_at=b.due_at,
            detected_at=b.detected_at,
            status=v.alert.status.value,
        )
        for b, v in store.recent_breaches(limit=WALL_BREACHES)
    ]
    health = {h.source: h for h in store.source_health()}
    sources = []
    for s in store.source_states():
        h = health.pop(s.source, None)
        sources.append(
            SourceHealthOut(
                source=s.source,
                status=h.status.value if h else None,
                events_per_s=s.events_per_s,
                lag_s=s.lag_s,
                last_event_at=s.last_event_at,
                errors=h.errors if h else 0,
                gaps=h.gaps if h else 0,
            )
        )
    for h in health.values():
        sources.append(
            SourceHealthOut(
                source=h.source,
                status=h.status.value,
                events_per_s=0.0,
                lag_s=None,
                last_event_at=None,
                errors=h.errors,
                gaps=h.gaps,
            )
        )
    start = _bucket_floor(now - timedelta(seconds=VOLUME_BUCKET_S * (VOLUME_BUCKETS - 1)))
    counts = dict(store.alert_volume(start, VOLUME_BUCKET_S))
    volume = [
        VolumeOut(start=t, alerts=counts.get(t, 0))
        for t in (start + timedelta(seconds=VOLUME_BUCKET_S * i) for i in range(VOLUME_BUCKETS))
    ]
    wall = WallOut(
        now=now,
        counts=FloorCountsOut.of(store.floor_counts(now)),
        queue=[QueueItemOut.of(i, now) for i in items],
        breaches=breaches,
        sources=sources,
        bucket_s=VOLUME_BUCKET_S,
        volume=volume,
    )
    return wall, items


def _bucket_floor(t: datetime) -> datetime:
    seconds = int(t.timestamp()) // VOLUME_BUCKET_S * VOLUME_BUCKET_S
    return datetime.fromtimestamp(seconds, tz=t.tzinfo)


def volume_bars(volume: list[VolumeOut], *, width: float = 720, height: float = 140) -> list[Bar]:
    peak = max((v.alerts for v in volume), default=0) or 1
    slot = width / max(1, len(volume))
    bars = []
    for i, v in enumerate(volume):
        h = 0.0 if v.alerts == 0 else max(2.0, height * v.alerts / peak)
        bars.append(
            Bar(
                x=round(i * slot + 1, 1),
                y=round(height - h, 1),
                width=round(slot - 2, 1),
                height=round(h, 1),
                start=v.start,
                count=v.alerts,
            )
        )
    return bars


# ----------------------------------------------------------------------------- wall


@api.get("/wall", response_model=WallOut)
def get_wall(request: Request, viewer: ApiReader) -> WallOut:
    """Everything the wall display shows, in one answer."""
    return wall_data(request)[0]


@pages.get("/wall")
def wall_page(request: Request, viewer: PageReader) -> Response:
    data, items = wall_data(request)
    total = sum(v.alerts for v in data.volume)
    peak = max(data.volume, key=lambda v: v.alerts, default=None)
    return floor_page(
        request,
        "wall.html",
        viewer=viewer,
        nav="wall",
        wall=data,
        items=items,
        bars=volume_bars(data.volume),
        volume_total=total,
        volume_peak=peak,
    )


# ----------------------------------------------------------------------------- figures


def _since(period: str, now: datetime) -> datetime | None:
    delta = PERIODS.get(period)
    return None if delta is None else now - delta


def _figures(request: Request, period: str) -> tuple[datetime, datetime | None, list[WatchFigures]]:
    now = clock_of(request)()
    since = _since(period, now)
    return now, since, store_of(request).watch_figures(now, since=since)


Period = Annotated[str, Query(pattern="^(7d|30d|all)$", description="7d | 30d | all")]


@api.get("/figures", response_model=FiguresOut)
def get_figures(request: Request, viewer: ApiReports, period: Period = "30d") -> FiguresOut:
    """Per watch: alerts, time to triage (median, 90th percentile), SLA compliance, false-positive rate.
    Counts only: no content, no personal data."""
    now, since, figures = _figures(request, period)
    return FiguresOut(generated_at=now, since=since, watches=[WatchFiguresOut.of(f) for f in figures])


CSV_COLUMNS = list(WatchFiguresOut.model_fields)


@api.get("/figures.csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
def get_figures_csv(request: Request, viewer: ApiReports, period: Period = "30d") -> Response:
    """The same figures as CSV (one row per watch), for spreadsheets and the transparency report."""
    now, _, figures = _figures(request, period)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for f in figures:
        row = WatchFiguresOut.of(f).model_dump(mode="json")
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    name = f"watchfloor-figures-{period}-{now:%Y%m%d}.csv"
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@pages.get("/figures")
def figures_page(request: Request, viewer: PageReports, period: str = "30d") -> Response:
    period = period if period in PERIODS else "30d"
    now, since, figures = _figures(request, period)
    return floor_page(
        request,
        "figures.html",
        viewer=viewer,
        nav="figures",
        figures=figures,
        period=period,
        since=since,
        periods=list(PERIODS),
        generated_at=now,
    )
