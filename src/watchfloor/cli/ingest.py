"""``watchfloor ingest``: run the sources and publish their raw events to the bus (scale-out)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import typer

from watchfloor.cli.bus_options import (
    LogLevelOption,
    MetricsHostOption,
    MetricsPortOption,
    PrefixOption,
    durable_bus,
    metrics_address,
    setup_logging,
)
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
from watchfloor.embedded import SourceRun
from watchfloor.pipeline import gc_pauses
from watchfloor.sources.catalog import source_for
from watchfloor.sources.config import SourceConfig, SourceConfigError, credentials_for


def ingest(
    source: str | None = SourceOption,
    replay: Path | None = ReplayOption,
    speed: Speed = SpeedOption,
    rate: float = RateOption,
    hit_share: float = HitShareOption,
    limit: int | None = LimitOption,
    prefix: str | None = PrefixOption,
    max_in_flight: int | None = typer.Option(
        None, "--max-in-flight", help="Publishes awaiting the server's confirmation at once (default: 1024)."
    ),
    cursor_every: float | None = typer.Option(
        None, "--cursor-every", help="Seconds between saves of each source's confirmed cursor (default: 1)."
    ),
    metrics_port: int | None = MetricsPortOption,
    metrics_host: str = MetricsHostOption,
    log_level: str = LogLevelOption,
    home: Path | None = HomeOption,
) -> None:
    """Run the sources and publish their raw events to the NATS bus (WATCHFLOOR_BUS=nats://...).

    Nothing is matched here: `watchfloor worker` processes (any number, on any machine)
    consume the events. A source's cursor is saved only once every event up to it is
    confirmed by the bus, so a crash or kill -9 loses nothing: the next start publishes the
    unconfirmed tail again and the bus drops the duplicates. Run one ingest per source.
    Needs the store (for cursors, source configuration and health) but no keyring.
    Stop with Ctrl-C or SIGTERM: what is in flight is confirmed and the cursors saved first.
    """
    setup_logging(log_level)
    gc_pauses.tune_for_streaming()  # no collector pauses of 50-100 ms between reading and publishing
    settings = settings_for(home)
    bus = durable_bus(settings, "ingest", prefix=prefix, max_in_flight=max_in_flight, cursor_every_s=cursor_every)
    address = metrics_address(metrics_host, metrics_port)
    with opened_store(settings) as store:
        choice = choose_sources(
            store, source=source, replay=replay, speed=speed, rate=rate, hit_share=hit_share, limit=limit,
            normaliser=None,
        )  # fmt: skip

        def build(config: SourceConfig) -> SourceRun:
            credentials = credentials_for(config.name, config.platform, settings.home)
            return SourceRun(source_for(config, credentials, home=settings.home))

        from watchfloor.scaleout import run_ingest

        console.print(
            f"publishing to {settings.bus_url} (prefix {bus.settings.prefix!r}); Ctrl-C stops", highlight=False
        )
        try:
            stats = asyncio.run(
                run_ingest(
                    settings,
                    store,
                    bus,
                    sources=choice.fixed,
                    build=build if choice.follow_configured else None,
                    only=choice.only,
                    metrics_address=address,
                )
            )
        except SourceConfigError as exc:
            raise fail(str(exc)) from None
        except OSError as exc:
            if address is None:
                raise
            raise fail(f"cannot serve metrics on {metrics_host}:{metrics_port}: {exc}") from None
    console.print(f"stopped: {stats.events:,} events confirmed by the bus", highlight=False)
