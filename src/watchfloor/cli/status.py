"""``watchfloor status``: is it running, how fast, how far behind, what went wrong."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.table import Table

from watchfloor.cli.context import HomeOption, console, opened_store, settings_for
from watchfloor.cli.source import health_json, print_health
from watchfloor.model import utcnow


def status(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    dead_letters: int = typer.Option(0, "--dead-letters", help="Also list the newest N dead letters."),
    home: Path | None = HomeOption,
) -> None:
    """Sources (events/s, lag, cursor), alerts and dead letters."""
    with opened_store(settings_for(home)) as store:
        counts = store.counts()
        sources = store.source_states()
        letters = store.list_dead_letters(limit=dead_letters) if dead_letters else []
        health, gaps = store.source_health(), store.list_gaps(limit=10)
    now = utcnow()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "counts": asdict(counts),
                    **health_json(health, gaps),
                    "sources": [
                        {
                            "source": s.source,
                            "cursor": s.cursor,
                            "events_total": s.events_total,
                            "posts_stored": s.posts_total,
                            "events_per_s": s.events_per_s,
                            "lag_s": s.lag_s,
                            "last_event_at": s.last_event_at.isoformat() if s.last_event_at else None,
                            "updated_at": s.updated_at.isoformat() if s.updated_at else None,
                        }
                        for s in sources
                    ],
                    "dead_letters": [
                        {"id": d.id, "source": d.source, "reason": d.reason, "received_at": d.received_at.isoformat()}
                        for d in letters
                    ],
                }
            )
        )
        return
    table = Table("source", "events/s", "lag", "events", "posts stored", "last commit", "cursor", title="sources")
    for s in sources:
        ago = duration_text((now - s.updated_at).total_seconds()) + " ago" if s.updated_at else "-"
        lag = duration_text(s.lag_s) if s.lag_s is not None else "-"
        table.add_row(
            s.source, f"{s.events_per_s:.1f}", lag, str(s.events_total), str(s.posts_total), ago, str(s.cursor)
        )
    console.print(table)
    print_health(health, gaps, now)
    console.print(
        f"alerts: {counts.alerts} ({counts.open_alerts} open)   posts stored: {counts.posts}   "
        f"watches: {counts.active_watches} active of {counts.watches}   dead letters: {counts.dead_letters}",
        highlight=False,
    )
    for d in letters:
        console.print(
            f"  dead letter #{d.id} {d.received_at:%Y-%m-%d %H:%M:%S} {d.source}: {d.reason}", highlight=False
        )


def duration_text(seconds: float) -> str:
    """A duration a person reads at a glance: 0.4 s, 12 s, 5 min, 3.2 h, 41 d."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} d"
