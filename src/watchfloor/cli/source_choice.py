"""Which sources a run takes: ``watchfloor run`` and ``watchfloor ingest`` choose alike.

``--replay FILE`` replays a recording; ``--source demo`` (or nothing, when no source is
configured) runs the built-in demo source; ``--source NAME`` runs one configured source;
nothing runs every configured, unpaused source and follows the configuration live.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import typer

from watchfloor.cli.context import console, fail
from watchfloor.embedded import SourceRun
from watchfloor.sources.base import Normaliser, Source
from watchfloor.store import Store


class Speed(StrEnum):
    recorded = "recorded"
    fast = "fast"


# The options both commands take, declared once.
SourceOption = typer.Option(
    None,
    "--source",
    help="Run only this: 'demo' (the built-in demo source) or the name of a configured source. "
    "Default: every configured, unpaused source (the demo source when none is configured).",
)
ReplayOption = typer.Option(
    None, "--replay", help="Replay a Jetstream v1 JSONL file instead.", exists=True, dir_okay=False, readable=True
)
SpeedOption = typer.Option(Speed.fast, help="Replay at the recorded pace or as fast as possible.")
RateOption = typer.Option(50.0, help="Demo source: events per second (0 = as fast as possible).")
HitShareOption = typer.Option(0.1, "--hit-share", help="Demo source: share of posts that hit demo watches.")
LimitOption = typer.Option(None, help="Demo source: stop after this many events.")


@dataclass(slots=True)
class SourceChoice:
    fixed: list[SourceRun] = field(default_factory=list)  # demo or replay: run to their end
    follow_configured: bool = False  # configured sources, followed live
    only: str | None = None  # just this configured source


def choose_sources(
    store: Store,
    *,
    source: str | None,
    replay: Path | None,
    speed: Speed,
    rate: float,
    hit_share: float,
    limit: int | None,
    normaliser: Callable[[str], Normaliser] | None,
) -> SourceChoice:
    """The sources to run, with a line on the console saying which; ``normaliser(platform)``
    builds the normaliser of a fixed source (None: the events are not read here)."""
    configured = store.list_sources()
    src: Source | None = None
    if replay is not None:
        from watchfloor.sources.replay import ReplaySource

        src = ReplaySource(replay, speed=speed.value)
    elif source == "demo" or (source is None and not configured):
        from watchfloor.sources.demo import DemoSource

        if not 0.0 <= hit_share <= 1.0:
            raise fail("--hit-share must be between 0 and 1")
        if source is None:
            console.print(
                "no sources configured: running the demo source (add real ones with `watchfloor source add`)",
                highlight=False,
            )
        src = DemoSource(rate=rate, hit_share=hit_share, limit=limit)
    else:
        names = {c.name: c for c in configured}
        if source is not None and source not in names:
            known = ", ".join(["demo", *names]) if names else "demo"
            raise fail(f"no source named {source!r}; known: {known}")
        if source is not None and names[source].paused:
            raise fail(f"source {source!r} is paused: `watchfloor source resume {source}` first")
        active = [c.name for c in configured if not c.paused and source in (None, c.name)]
        console.print(f"sources: {', '.join(active) if active else 'none active (all paused)'}", highlight=False)
        return SourceChoice(follow_configured=True, only=source)
    return SourceChoice(fixed=[SourceRun(src, normaliser(src.platform) if normaliser is not None else None)])
