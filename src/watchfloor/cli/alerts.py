"""``watchfloor alerts``: print alerts, or follow them as they arrive."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from watchfloor.cli.context import HomeOption, console, fail, opened_store, settings_for
from watchfloor.model import AlertView


def alert_record(view: AlertView) -> dict[str, object]:
    """One alert as a JSON-ready dict: the alert, its watch, its explanation and its post."""
    a, p = view.alert, view.post
    return {
        "id": a.id,
        "watch_id": a.watch_id,
        "watch": view.watch_name,
        "severity": view.severity.value,
        "score": a.score,
        "status": a.status.value,
        "created_at": a.created_at.isoformat(),
        "due_at": a.due_at.isoformat(),
        "explanation": a.explanation.to_dict(),
        "post": None
        if p is None
        else {
            "platform": p.platform,
            "native_id": p.native_id,
            "version": p.version,
            "created_at": p.created_at.isoformat(),
            "author": p.author,
            "lang": p.lang,
            "text": p.text,
            "url": p.url,
            "links": list(p.links),
            "hashtags": list(p.hashtags),
        },
        "post_deleted": p is None,
    }


def _print_line(view: AlertView) -> None:
    a = view.alert
    terms = ", ".join(sorted({h.term for h in a.explanation.hits if h.kind != "filter"}))
    text = "[post deleted upstream]" if view.post is None else view.post.text.replace("\n", " ")
    if len(text) > 100:
        text = text[:99] + "…"
    console.print(
        f"[dim]{a.created_at:%H:%M:%S}[/] #{a.id} [bold]{view.severity.value:>6}[/] {a.score:.2f} "
        f"[cyan]{view.watch_name}[/] ({terms}): {text}",
        highlight=False,
        markup=True,
        soft_wrap=True,
    )


def alerts(
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new alerts as they arrive."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines: one alert per line."),
    after: int = typer.Option(0, "--after", help="Only alerts with an id above this."),
    limit: int = typer.Option(50, "--limit", help="At most this many alerts (without --follow: the newest)."),
    watch: str | None = typer.Option(None, "--watch", help="Only this watch (id or name)."),
    home: Path | None = HomeOption,
) -> None:
    """Print alerts with their explanations; --follow streams new ones until Ctrl-C."""
    settings = settings_for(home)
    emit = (lambda v: typer.echo(json.dumps(alert_record(v), ensure_ascii=False))) if as_json else _print_line
    with opened_store(settings) as store:
        watch_id: int | None = None
        if watch is not None:
            found = store.get_watch(int(watch)) if watch.isdigit() else store.get_watch_by_name(watch)
            if found is None:
                raise fail(f"no watch {watch!r}")
            watch_id = found.id
        if follow:
            last = after
            if after == 0:  # start with the newest `limit`, then follow
                recent = store.list_alerts(limit=limit, watch_id=watch_id, newest_first=True)
                for view in reversed(recent):
                    emit(view)
                last = recent[0].alert.id or 0 if recent else 0
            try:
                while True:
                    batch = store.list_alerts(after_id=last, limit=500, watch_id=watch_id)
                    for view in batch:
                        emit(view)
                        last = view.alert.id or last
                    if not batch:
                        time.sleep(0.5)
            except KeyboardInterrupt:
                return
        views = (
            store.list_alerts(after_id=after, limit=limit, watch_id=watch_id)
            if after
            else list(reversed(store.list_alerts(limit=limit, watch_id=watch_id, newest_first=True)))
        )
        for view in views:
            emit(view)
