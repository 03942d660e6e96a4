"""What ``watchfloor ingest``, ``worker`` and ``web`` share: the bus, its flags, logging, metrics."""

from __future__ import annotations

import logging
import sys

import typer

from watchfloor.cli.context import fail
from watchfloor.config import ConfigError, Settings
from watchfloor.pipeline.bus import Bus, BusSettings, load_bus_settings, open_bus

PrefixOption = typer.Option(
    None,
    "--prefix",
    envvar="WATCHFLOOR_BUS_PREFIX",
    help="Prefix of the bus's subjects and streams (every process of one deployment uses the same) "
    "(default: 'prefix' under bus in config.toml, or 'watchfloor').",
)
MetricsPortOption = typer.Option(
    None,
    "--metrics-port",
    help="Serve Prometheus /metrics and a JSON /healthz on this port (0: any free port) (default: off).",
)
MetricsHostOption = typer.Option(
    "127.0.0.1", "--metrics-host", help="Address for --metrics-port (0.0.0.0: every interface)."
)
LogLevelOption = typer.Option("info", "--log-level", help="debug, info, warning or error (to stderr).")


def setup_logging(level: str) -> None:
    """One line per record on stderr, for journald or a log collector."""
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise fail(f"--log-level {level!r}: use debug, info, warning or error")
    logging.basicConfig(
        level=number, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    logging.getLogger("nats").setLevel(max(number, logging.WARNING))


def bus_settings(settings: Settings, **overrides: object) -> BusSettings:
    try:
        return load_bus_settings(settings, **overrides)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def durable_bus(settings: Settings, command: str, **overrides: object) -> Bus:
    """The configured bus; refuses ``memory://``, which cannot connect separate processes."""
    if not settings.bus_url.startswith(("nats://", "tls://")):
        raise fail(
            f"`watchfloor {command}` needs a bus that connects processes: set WATCHFLOOR_BUS=nats://HOST:4222 "
            f"(now {settings.bus_url!r}). In one process, `watchfloor run` does everything without one."
        )
    try:
        return open_bus(settings.bus_url, bus_settings(settings, **overrides), client_name=f"watchfloor {command}")
    except ConfigError as exc:
        raise fail(str(exc)) from None


def metrics_address(host: str, port: int | None) -> tuple[str, int] | None:
    if port is None:
        return None
    if not 0 <= port <= 65535:
        raise fail("--metrics-port must be between 0 and 65535")
    return host, port
