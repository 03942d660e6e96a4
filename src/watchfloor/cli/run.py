"""``watchfloor run``: the embedded watch floor (pipelines + web UI in one process)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Group
from rich.live import Live
from rich.text import Text

from watchfloor.cli.context import HomeOption, console, fail, opened_store, settings_for
from watchfloor.cli.source_choice import (
    HitShareOption,
    LimitOption,
    RateOption,
    ReplayOption,
    SourceOption,
    Speed,
    SpeedOption,
    choose_sources,
)
from watchfloor.config import ConfigError
from watchfloor.governance.keys import KeyringError
from watchfloor.governance.policy import PolicyError, load_policy
from watchfloor.governance.pseudonyms import deployment_pseudonymiser
from watchfloor.pipeline import gc_pauses
from watchfloor.sources.catalog import configured_source, normaliser_for
from watchfloor.sources.config import SourceConfig

if TYPE_CHECKING:
    from watchfloor.embedded import SourceRun
    from watchfloor.pipeline.runner import Pipeline


def _status_line(pipeline: Pipeline) -> Text:
    s = pipeline.stats
    return Text.assemble(
        ("● ", "green"),
        f"{pipeline.source.name}  events {s.events:,}  posts {s.posts:,}  matched {s.matched_posts:,}  ",
        (f"alerts {s.alerts:,}", "bold"),
        f"  deletes {s.deletions:,}  ",
        (f"dead letters {s.dead_letters:,}", "red" if s.dead_letters else ""),
        f"  ({pipeline.rate.last_rate:,.0f} events/s)",
    )


def run(
    source: str | None = SourceOption,
    replay: Path | None = ReplayOption,
    speed: Speed = SpeedOption,
    rate: float = RateOption,
    hit_share: float = HitShareOption,
    limit: int | None = LimitOption,
    web: bool = typer.Option(True, "--web/--no-web", help="Serve the web UI in the same process."),
    host: str | None = typer.Option(None, help="Web UI address [default: from config, 127.0.0.1]."),
    port: int | None = typer.Option(None, help="Web UI port [default: from config, 8000]."),
    home: Path | None = HomeOption,
) -> None:
    """Run the pipelines of the configured sources (or the demo source, or a replay) and serve the web UI.

    Stop with Ctrl-C: the open micro-batches are committed first; a later run resumes
    every source from its committed cursor, so nothing is lost or stored twice.
    Sources paused or resumed with `watchfloor source pause|resume` stop or start
    within seconds.
    """
    from watchfloor.embedded import SourceRun, run_embedded  # heavy: only when running

    gc_pauses.tune_for_streaming()  # no collector pauses of 50-100 ms in the alert latency
    settings = settings_for(home)
    if host or port:
        from dataclasses import replace

        settings = replace(settings, web_host=host or settings.web_host, web_port=port or settings.web_port)
    try:
        pseudonymise = deployment_pseudonymiser(settings.home)  # also seals matched authors' identities
        load_policy(settings.home)  # retention and watch expiry run by this policy: refuse a broken one
    except (ConfigError, KeyringError, PolicyError) as exc:
        raise fail(str(exc)) from None
    if not settings.bus_url.startswith("memory://"):
        console.print(
            f"note: WATCHFLOOR_BUS={settings.bus_url} is for `watchfloor ingest` and `watchfloor worker`; "
            "`watchfloor run` hands events over in-process (docs/deploy.md)",
            highlight=False,
        )
    with opened_store(settings) as store:
        choice = choose_sources(
            store,
            source=source,
            replay=replay,
            speed=speed,
            rate=rate,
            hit_share=hit_share,
            limit=limit,
            normaliser=lambda platform: normaliser_for(platform, pseudonymise),
        )
        fixed, follow_configured = choice.fixed, choice.follow_configured
        if not store.list_watches():
            console.print(
                "[yellow]no watches yet: nothing will match. Add one with `watchfloor watch add`, "
                "or run `watchfloor init --demo-watches`.[/]"
            )
        if web:
            console.print(f"watch floor on [bold]http://{settings.web_host}:{settings.web_port}/[/]  (Ctrl-C stops)")
        interactive = sys.stdout.isatty()
        live = Live(console=console, refresh_per_second=2, transient=False) if interactive else None
        lines: dict[str, Text] = {}

        def tick(p: Pipeline) -> None:
            lines[p.source.name] = _status_line(p)
            if live is not None:
                live.update(Group(*lines.values()))

        def build(config: SourceConfig) -> SourceRun:
            built, normaliser = configured_source(config, pseudonymise, settings.home)
            return SourceRun(built, normaliser)

        try:
            if live is not None:
                live.start()
            stats = asyncio.run(
                run_embedded(
                    settings,
                    store,
                    sources=fixed,
                    build=build if follow_configured else None,
                    only=source if follow_configured else None,
                    web=web,
                    on_tick=tick,
                    before_commit=[pseudonymise.seal_batch],
                )
            )
        except OSError as exc:
            raise fail(f"cannot serve on {settings.web_host}:{settings.web_port}: {exc}") from None
        finally:
            if live is not None:
                live.stop()
    console.print(
        f"stopped: {stats.events:,} events, {stats.posts:,} posts, {stats.matched_posts:,} matched, "
        f"{stats.alerts:,} new alerts, {stats.deletions:,} deletes, {stats.dead_letters:,} dead letters",
        highlight=False,
    )
