"""``watchfloor worker``: consume raw events from the bus, match, commit, acknowledge (scale-out)."""

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
from watchfloor.config import ConfigError
from watchfloor.governance.keys import KeyringError
from watchfloor.governance.policy import PolicyError, load_policy
from watchfloor.governance.pseudonyms import deployment_pseudonymiser
from watchfloor.pipeline import gc_pauses
from watchfloor.pipeline.worker import DEFAULT_GROUP
from watchfloor.sources.catalog import NORMALISERS, normaliser_for

ALL_PLATFORMS = ", ".join(NORMALISERS)


def worker(
    platform: list[str] | None = typer.Option(
        None,
        "--platform",
        help=f"Consume only this platform's stream (repeat for several) (default: all: {ALL_PLATFORMS}).",
    ),
    durable: str = typer.Option(
        DEFAULT_GROUP,
        "--durable",
        help="Name of the bus consumer the workers share: workers with the same name split the events "
        "between them (each event goes to one).",
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", help="Events fetched and committed at once (default: batch_size in config.toml, 500)."
    ),
    prefix: str | None = PrefixOption,
    ack_wait: float | None = typer.Option(
        None, "--ack-wait", help="Seconds before an unacknowledged event is delivered again (default: 30)."
    ),
    max_deliver: int | None = typer.Option(
        None, "--max-deliver", help="Deliveries of a failing event before it becomes a dead letter (default: 5)."
    ),
    duties: bool = typer.Option(
        True,
        "--duties/--no-duties",
        help="Take part in running the deployment's duties (notifications, SLA checks, retention, audit "
        "checkpoints): one worker at a time runs them, by lease. --no-duties: never on this worker.",
    ),
    metrics_port: int | None = MetricsPortOption,
    metrics_host: str = MetricsHostOption,
    log_level: str = LogLevelOption,
    home: Path | None = HomeOption,
) -> None:
    """Consume raw events from the NATS bus, match them against the watches and commit the alerts.

    Run as many as the load needs, on any machines: workers with the same --durable share
    the events. Each event is acknowledged only after the store committed what it produced,
    so a worker that dies loses nothing (its events are delivered again after --ack-wait).
    An event that fails --max-deliver times becomes a dead letter (the store's dead-letter
    table and the bus's dead-letter subject). Needs the store and the keyring (authors are
    pseudonymised here). Stop with Ctrl-C or SIGTERM: the batch in hand is committed and
    acknowledged first.
    """
    gc_pauses.tune_for_streaming()  # no collector pauses of 50-100 ms in the alert latency
    setup_logging(log_level)
    settings = settings_for(home)
    if batch_size is not None and batch_size < 1:
        raise fail("--batch-size must be at least 1")
    platforms = list(dict.fromkeys(platform or NORMALISERS))
    unknown = [p for p in platforms if p not in NORMALISERS]
    if unknown:
        raise fail(f"unknown platform {', '.join(unknown)}; known: {', '.join(NORMALISERS)}")
    bus = durable_bus(settings, "worker", prefix=prefix, ack_wait_s=ack_wait, max_deliver=max_deliver)
    address = metrics_address(metrics_host, metrics_port)
    try:
        pseudonymise = deployment_pseudonymiser(settings.home)  # also seals matched authors' identities
        load_policy(settings.home)  # the duties run by this policy: refuse a broken one
    except (ConfigError, KeyringError, PolicyError) as exc:
        raise fail(str(exc)) from None
    normalisers = {p: normaliser_for(p, pseudonymise) for p in platforms}
    with opened_store(settings) as store:
        if not store.list_watches():
            console.print("[yellow]no watches yet: nothing will match (`watchfloor watch add`).[/]")
        from watchfloor.scaleout import run_worker

        console.print(
            f"consuming {', '.join(platforms)} from {settings.bus_url} as {durable!r} "
            f"(prefix {bus.settings.prefix!r}); Ctrl-C stops",
            highlight=False,
        )
        try:
            stats = asyncio.run(
                run_worker(
                    settings,
                    store,
                    bus,
                    normalisers,
                    group=durable,
                    batch_size=batch_size,
                    duties=duties,
                    before_commit=[pseudonymise.seal_batch],
                    metrics_address=address,
                )
            )
        except OSError as exc:
            if address is None:
                raise
            raise fail(f"cannot serve metrics on {metrics_host}:{metrics_port}: {exc}") from None
    console.print(
        f"stopped: {stats.events:,} events, {stats.posts:,} posts, {stats.matched_posts:,} matched, "
        f"{stats.alerts:,} new alerts, {stats.dead_letters:,} dead letters",
        highlight=False,
    )
