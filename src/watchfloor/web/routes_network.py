"""Signals and networks on the web: the coordination view (``/network``) with its graph and
GEXF export, the trends page (``/trends``: spikes and near-duplicate groups) and the signals
of one alert's post.

Everything here is computed from stored (matched) posts and shows accounts as pseudonyms
only. A component is a pattern for a person to review, never a finding about anyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from watchfloor.governance.permissions import Permission
from watchfloor.model import AlertView, NearDuplicateGroup, PostSignals, utcnow
from watchfloor.network.coordination import CoordinationResult
from watchfloor.network.gexf import to_gexf
from watchfloor.network.recent import recent_coordination
from watchfloor.pipeline.scoring import SCORE_FORMULA
from watchfloor.store import Store
from watchfloor.web.api_models import ErrorOut, IdParam
from watchfloor.web.errors import ApiError
from watchfloor.web.permissions import api_requires, page_requires
from watchfloor.web.rendering import page_response
from watchfloor.web.sessions import Viewer

_REFUSALS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorOut, "description": "No valid session."},
    403: {"model": ErrorOut, "description": "Your role lacks the permission."},
}
pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api", tags=["signals and networks"], responses=_REFUSALS)

PageReader = Annotated[Viewer, Depends(page_requires(Permission.read_alerts))]
ApiReader = Annotated[Viewer, Depends(api_requires(Permission.read_alerts))]
Exporter = Annotated[Viewer, Depends(page_requires(Permission.export_evidence))]

Kind = Literal["link", "hashtag", "quote", "text"]
KindQ = Annotated[Kind, Query(description="What is co-shared: link, hashtag, quote (quoted post) or text.")]
HoursQ = Annotated[int, Query(ge=1, le=24 * 30, description="Stored posts created in the last N hours.")]
WindowQ = Annotated[int, Query(ge=1, le=24 * 3600, description="Seconds within which two shares co-occur.")]
RepeatQ = Annotated[int, Query(ge=1, le=100, description="Distinct co-shared objects an edge needs.")]
KIND_NAMES = {"link": "links", "hashtag": "hashtags", "quote": "quoted posts", "text": "near-duplicate texts"}
SPIKE_DAYS = 7


def _store(request: Request) -> Store:
    return request.app.state.store


def _coordination(request: Request, kind: str, hours: int, window: int, min_repetition: int) -> CoordinationResult:
    return recent_coordination(
        _store(request),
        kind=kind,
        since=utcnow() - timedelta(hours=hours),
        window_s=float(window),
        min_repetition=min_repetition,
    )


def graph_json(result: CoordinationResult) -> dict[str, object]:
    """Nodes and edges for the client-side graph, plus every component with its evidence."""
    nodes, edges = [], []
    for comp in result.components:
        community_of = {a: i + 1 for i, members in enumerate(comp.communities) for a in members}
        nodes.extend({"id": a, "component": comp.id, "community": community_of.get(a, 0)} for a in comp.accounts)
        edges.extend(
            {"source": e.a, "target": e.b, "weight": e.weight, "pairs": e.pairs, "component": comp.id}
            for e in comp.edges
        )
    return {**result.to_dict(), "nodes": nodes, "edges": edges}


@pages.get("/network")
def network_page(
    request: Request,
    viewer: PageReader,
    kind: KindQ = "link",
    hours: HoursQ = 24,
    window: WindowQ = 60,
    min_repetition: RepeatQ = 2,
) -> Response:
    result = _coordination(request, kind, hours, window, min_repetition)
    params = f"kind={kind}&hours={hours}&window={window}&min_repetition={min_repetition}"
    return page_response(
        request,
        "network.html",
        viewer=viewer,
        nav="network",
        result=result,
        kind=kind,
        kinds=KIND_NAMES,
        hours=hours,
        window=window,
        min_repetition=min_repetition,
        params=params,
    )


@pages.get("/network.gexf")
def network_gexf(
    request: Request,
    viewer: Exporter,
    kind: KindQ = "link",
    hours: HoursQ = 24,
    window: WindowQ = 60,
    min_repetition: RepeatQ = 2,
) -> Response:
    """The components as a GEXF file (an export: supervisors only)."""
    result = _coordination(request, kind, hours, window, min_repetition)
    name = f"watchfloor-coordination-{kind}-{utcnow():%Y%m%dT%H%M%SZ}.gexf"
    return Response(
        to_gexf(result),
        media_type="application/gexf+xml",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@api.get("/network")
def network_api(
    request: Request,
    viewer: ApiReader,
    kind: KindQ = "link",
    hours: HoursQ = 24,
    window: WindowQ = 60,
    min_repetition: RepeatQ = 2,
) -> dict[str, object]:
    """Coordinated components among stored posts' authors (pseudonyms), with their evidence."""
    return graph_json(_coordination(request, kind, hours, window, min_repetition))


@pages.get("/trends")
def trends_page(request: Request, viewer: PageReader) -> Response:
    store = _store(request)
    since = utcnow() - timedelta(days=SPIKE_DAYS)
    watches = {w.id: w for w in store.list_watches()}
    return page_response(
        request,
        "trends.html",
        viewer=viewer,
        nav="trends",
        spikes=store.list_spikes(since=since, limit=200),
        watches=watches,
        groups=store.list_near_duplicate_groups(since=since, min_count=2, limit=50),
        days=SPIKE_DAYS,
    )


@api.get("/spikes")
def spikes_api(
    request: Request,
    viewer: ApiReader,
    days: Annotated[int, Query(ge=1, le=90)] = SPIKE_DAYS,
    watch_id: IdParam | None = None,
) -> dict[str, object]:
    """Spike alerts (bursts per watch and term): the window, the count, the baseline and the excess."""
    found = _store(request).list_spikes(since=utcnow() - timedelta(days=days), watch_id=watch_id, limit=500)
    return {
        "spikes": [
            {
                "id": s.id,
                "watch_id": s.watch_id,
                "term": s.term or None,
                "window_start": s.window_start.isoformat(),
                "window_end": s.window_end.isoformat(),
                "count": s.count,
                "baseline": s.baseline,
                "threshold": s.threshold,
                "excess": s.excess,
                "detected_at": s.detected_at.isoformat(),
            }
            for s in found
        ]
    }


def signals_json(signals: PostSignals | None) -> dict[str, object] | None:
    if signals is None:
        return None
    return {
        "language": signals.lang,
        "language_confidence": signals.lang_confidence,
        "sentiment": signals.sentiment,
        "toxicity": signals.toxicity,
        "threat": signals.threat,
        "near_duplicate_group": signals.near_duplicate_group,
        "computed_at": signals.computed_at.isoformat(),
    }


@api.get("/alerts/{alert_id}/signals", responses={404: {"model": ErrorOut}})
def alert_signals_api(request: Request, alert_id: IdParam, viewer: ApiReader) -> dict[str, object]:
    """The signals of an alert's post, and its near-duplicate group (how many copies, the first)."""
    store = _store(request)
    view = store.get_alert(alert_id)
    if view is None:
        raise ApiError(404, f"no alert with id {alert_id}")
    signals = store.get_post_signals(view.alert.post)
    group = None
    if signals is not None and signals.near_duplicate_group:
        g = store.get_near_duplicate_group(signals.near_duplicate_group)
        if g is not None:
            group = {
                "id": g.group_id,
                "posts": g.count,
                "first_seen_at": g.first_seen_at.isoformat(),
                "first_post": {
                    "platform": g.first_post.platform,
                    "native_id": g.first_post.native_id,
                    "version": g.first_post.version,
                },
            }
    return {
        "alert_id": alert_id,
        "signals": signals_json(signals),
        "near_duplicates": group,
        "score": view.alert.score,
        "score_parts": [{"name": n, "value": v} for n, v in view.alert.explanation.score_parts],
    }


@dataclass(frozen=True, slots=True)
class AlertSignalsView:
    """What the alert page shows under "Signals": the post's signals, its near-duplicate
    group and the weights of the score formula."""

    signals: PostSignals | None
    group: NearDuplicateGroup | None
    weights: dict[str, float]


def alert_signals(store: Store, view: AlertView) -> AlertSignalsView:
    """For the alert page (``routes_pages.alert_detail``)."""
    signals = store.get_post_signals(view.alert.post)
    group = None
    if signals is not None and signals.near_duplicate_group:
        group = store.get_near_duplicate_group(signals.near_duplicate_group)
    return AlertSignalsView(signals, group, {p.name: p.weight for p in SCORE_FORMULA})
