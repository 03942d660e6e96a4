"""``watchfloor web``: the web UI and API alone (scale-out: any number behind a load balancer)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import typer

from watchfloor.cli.bus_options import LogLevelOption, PrefixOption, bus_settings, setup_logging
from watchfloor.cli.context import HomeOption, console, fail, opened_store, settings_for
from watchfloor.config import ConfigError
from watchfloor.governance.keys import KeyringError
from watchfloor.governance.policy import PolicyError, load_policy
from watchfloor.pipeline.bus import open_bus


def web(
    host: str | None = typer.Option(None, help="Address to serve on (default: from config, 127.0.0.1)."),
    port: int | None = typer.Option(None, help="Port to serve on (default: from config, 8000)."),
    prefix: str | None = PrefixOption,
    log_level: str = LogLevelOption,
    home: Path | None = HomeOption,
) -> None:
    """Serve the web UI and JSON API only: no sources, no matching (those are `ingest` and `worker`).

    Stateless: run any number behind a load balancer (sessions live in the store). New
    alerts reach open browsers at once through the bus (WATCHFLOOR_BUS=nats://...) or, with
    a PostgreSQL store and no bus, PostgreSQL NOTIFY; otherwise within a second (polling).
    /healthz (alive), /readyz (store and bus reachable) and /metrics need no sign-in.
    """
    setup_logging(log_level)
    settings = settings_for(home)
    if host or port:
        settings = replace(settings, web_host=host or settings.web_host, web_port=port or settings.web_port)
    try:
        load_policy(settings.home)
    except (ConfigError, KeyringError, PolicyError) as exc:
        raise fail(str(exc)) from None
    bus = None
    if settings.bus_url.startswith(("nats://", "tls://")):
        try:
            bus = open_bus(settings.bus_url, bus_settings(settings, prefix=prefix), client_name="watchfloor web")
        except ConfigError as exc:
            raise fail(str(exc)) from None
    with opened_store(settings) as store:
        from watchfloor.scaleout import run_web

        console.print(f"web UI on [bold]http://{settings.web_host}:{settings.web_port}/[/]  (Ctrl-C stops)")
        try:
            asyncio.run(run_web(settings, store, bus))
        except OSError as exc:
            raise fail(f"cannot serve on {settings.web_host}:{settings.web_port}: {exc}") from None
    console.print("stopped", highlight=False)
