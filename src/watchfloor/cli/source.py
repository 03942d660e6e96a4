"""``watchfloor source``: add, list, test, pause, resume and remove live sources.

Settings go to the store; credentials given here go to ``$WATCHFLOOR_HOME/keys/sources.toml``
(mode 600) and are never printed. Environment variables override that file
(``WATCHFLOOR_<PLATFORM>_<FIELD>``, or ``WATCHFLOOR_SOURCE_<NAME>_<FIELD>`` for one source).
"""

from __future__ import annotations

import asyncio
import json
import time
from contextlib import aclosing
from datetime import datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from watchfloor.cli.context import HomeOption, console, fail, opened_store, settings_for
from watchfloor.config import ConfigError
from watchfloor.governance.keys import KeyringError
from watchfloor.governance.pseudonyms import deployment_pseudonymiser
from watchfloor.model import Deletion, Ignored, MalformedEvent, Post
from watchfloor.sources.base import SourceFailed
from watchfloor.sources.catalog import normaliser_for, source_for
from watchfloor.sources.config import (
    CREDENTIAL_FIELDS,
    SourceConfig,
    SourceConfigError,
    check_name,
    credentials_for,
    forget_credentials,
    save_credentials,
)
from watchfloor.sources.health import Gap, HealthSnapshot, SourceStatus
from watchfloor.store import StoreError

app = typer.Typer(help="Live sources: add, list, test, pause, resume, remove.", no_args_is_help=True)
add_app = typer.Typer(help="Add a source of one platform.", no_args_is_help=True)
app.add_typer(add_app, name="add")

PausedOption = typer.Option(False, "--paused", help="Add it paused (start it later with `source resume`).")


def _add(
    home: Path | None,
    platform: str,
    name: str | None,
    settings: dict[str, Any],
    credentials: dict[str, str | None],
    paused: bool,
) -> None:
    config_settings = {k: v for k, v in settings.items() if v not in (None, [], ())}
    cfg = settings_for(home)
    try:
        source_name = check_name(name or platform)
        config = SourceConfig(name=source_name, platform=platform, settings=config_settings, paused=paused)
        given = {k: v for k, v in credentials.items() if v}
        source_for(config, {}, home=cfg.home)  # refuses settings it cannot run with
    except SourceConfigError as exc:
        raise fail(str(exc)) from None
    with opened_store(cfg) as store:
        try:
            store.add_source(config)
        except StoreError as exc:
            raise fail(str(exc)) from None
    if given:
        path = save_credentials(cfg.home, source_name, given)
        console.print(f"credentials ({', '.join(sorted(given))}) saved to {path} (mode 600)", highlight=False)
    missing = [f for f in _needed(platform) if f not in credentials_for(source_name, platform, cfg.home)]
    state = "paused" if paused else "active"
    console.print(f"added {platform} source [bold]{source_name}[/] ({state})", highlight=False)
    if missing:
        console.print(
            f"[yellow]credentials missing: {', '.join(missing)} — set "
            f"{', '.join(_env_hint(platform, f) for f in missing)} or add them with the options above[/]",
            highlight=False,
        )
    if not paused:
        console.print("`watchfloor run` starts it (a running watch floor picks it up within seconds).")


def _needed(platform: str) -> tuple[str, ...]:
    return {"reddit": ("client_id", "client_secret"), "youtube": ("api_key",), "telegram": ("api_id", "api_hash")}.get(
        platform, ()
    )


def _env_hint(platform: str, field: str) -> str:
    from watchfloor.sources.config import env_name

    return env_name(platform, field)


@add_app.command("bluesky")
def add_bluesky(
    name: str | None = typer.Argument(None, help="Source name [default: bluesky]."),
    collection: list[str] = typer.Option(
        ["app.bsky.feed.post"], "--collection", help="wantedCollections (repeat; 'app.bsky.*' prefixes work)."
    ),
    did: list[str] = typer.Option([], "--did", help="Only these accounts (wantedDids; repeat)."),
    endpoint: list[str] = typer.Option(
        [], "--endpoint", help="Jetstream /subscribe URLs, tried in turn [default: Bluesky's four public instances]."
    ),
    compress: bool = typer.Option(True, "--compress/--no-compress", help="zstd compression (v1 dictionary)."),
    replay_margin: float = typer.Option(5.0, "--replay-margin", help="Seconds replayed before the cursor on resume."),
    gap_tolerance: float = typer.Option(
        1.0, "--gap-tolerance", help="A resume that starts this many seconds late is recorded as a gap."
    ),
    paused: bool = PausedOption,
    home: Path | None = HomeOption,
) -> None:
    """Bluesky through Jetstream (no credentials needed)."""
    settings: dict[str, Any] = {
        "collections": collection,
        "dids": did,
        "endpoints": endpoint,
        "compress": compress,
        "replay_margin_s": replay_margin,
        "gap_tolerance_s": gap_tolerance,
    }
    _add(home, "bluesky", name, settings, {}, paused)


@add_app.command("mastodon")
def add_mastodon(
    name: str | None = typer.Argument(None, help="Source name [default: mastodon]."),
    instance: str = typer.Option(..., "--instance", help="The instance URL, e.g. https://mastodon.social"),
    timeline: str = typer.Option("public", "--timeline", help="public, local or hashtag."),
    tag: list[str] = typer.Option([], "--tag", help="Hashtag(s) for the hashtag timeline (repeat)."),
    local: bool = typer.Option(False, "--local", help="Hashtag timeline: this instance's posts only."),
    token: str | None = typer.Option(None, "--token", help="Access token (optional; read:statuses is enough)."),
    stream: bool = typer.Option(True, "--stream/--no-stream", help="Streaming API, or REST polling only."),
    poll_interval: float = typer.Option(30.0, "--poll-interval", help="Seconds between polls without streaming."),
    paused: bool = PausedOption,
    home: Path | None = HomeOption,
) -> None:
    """A Mastodon (or compatible) instance's public, local or hashtag timeline."""
    settings = {
        "instance": instance,
        "timeline": timeline,
        "tags": tag,
        "local": local or None,
        "stream": stream,
        "poll_interval_s": poll_interval,
    }
    _add(home, "mastodon", name, settings, {"token": token}, paused)


@add_app.command("reddit")
def add_reddit(
    name: str | None = typer.Argument(None, help="Source name [default: reddit]."),
    subreddit: list[str] = typer.Option(..., "--subreddit", help="Subreddit name (repeat)."),
    posts: bool = typer.Option(True, "--posts/--no-posts", help="New posts."),
    comments: bool = typer.Option(True, "--comments/--no-comments", help="New comments."),
    client_id: str | None = typer.Option(None, "--client-id", help="The Reddit app's client id."),
    client_secret: str | None = typer.Option(None, "--client-secret", help="The Reddit app's secret."),
    user_agent: str | None = typer.Option(
        None, "--user-agent", help="A User-Agent that names you, as Reddit asks (platform:app:version (by /u/you))."
    ),
    poll_interval: float = typer.Option(30.0, "--poll-interval", help="Seconds between polls."),
    auth_url: str | None = typer.Option(None, "--auth-url", help="Token endpoint base [https://www.reddit.com]."),
    api_url: str | None = typer.Option(None, "--api-url", help="API base [https://oauth.reddit.com]."),
    paused: bool = PausedOption,
    home: Path | None = HomeOption,
) -> None:
    """New posts and comments of subreddits (Reddit app credentials needed)."""
    settings = {
        "subreddits": subreddit,
        "posts": posts,
        "comments": comments,
        "user_agent": user_agent,
        "poll_interval_s": poll_interval,
        "auth_url": auth_url,
        "api_url": api_url,
    }
    _add(home, "reddit", name, settings, {"client_id": client_id, "client_secret": client_secret}, paused)


@add_app.command("rss")
def add_rss(
    name: str | None = typer.Argument(None, help="Source name [default: rss]."),
    feed: list[str] = typer.Option(..., "--feed", help="Feed URL: RSS, Atom, RDF or JSON Feed (repeat)."),
    poll_interval: float = typer.Option(300.0, "--poll-interval", help="Seconds between polls."),
    paused: bool = PausedOption,
    home: Path | None = HomeOption,
) -> None:
    """RSS, Atom, RDF or JSON feeds."""
    _add(home, "rss", name, {"feeds": feed, "poll_interval_s": poll_interval}, {}, paused)


@add_app.command("youtube")
def add_youtube(
    name: str | None = typer.Argument(None, help="Source name [default: youtube]."),
    channel: list[str] = typer.Option([], "--channel", help="Channel id (UC…): comments on all its videos (repeat)."),
    video: list[str] = typer.Option([], "--video", help="Video id: its comments (repeat)."),
    api_key: str | None = typer.Option(None, "--api-key", help="YouTube Data API v3 key."),
    daily_quota: int = typer.Option(10_000, "--daily-quota", help="Units this source may spend per day."),
    poll_interval: float = typer.Option(300.0, "--poll-interval", help="Seconds between polls."),
    api_url: str | None = typer.Option(None, "--api-url", help="API base [https://www.googleapis.com/youtube/v3]."),
    paused: bool = PausedOption,
    home: Path | None = HomeOption,
) -> None:
    """Comments on YouTube channels or videos (an API key is needed)."""
    settings = {
        "channels": channel,
        "videos": video,
        "daily_quota": daily_quota,
        "poll_interval_s": poll_interval,
        "api_url": api_url,
    }
    _add(home, "youtube", name, settings, {"api_key": api_key}, paused)


@add_app.command("telegram")
def add_telegram(
    name: str | None = typer.Argument(None, help="Source name [default: telegram]."),
    channel: list[str] = typer.Option(..., "--channel", help="Public channel @name or t.me link (repeat)."),
    api_id: str | None = typer.Option(None, "--api-id", help="API id from my.telegram.org."),
    api_hash: str | None = typer.Option(None, "--api-hash", help="API hash from my.telegram.org."),
    paused: bool = PausedOption,
    home: Path | None = HomeOption,
) -> None:
    """Public Telegram channels (API id and hash, and a one-time login with `source test NAME --login`)."""
    _add(home, "telegram", name, {"channels": channel}, {"api_id": api_id, "api_hash": api_hash}, paused)


@app.command("list")
def list_sources(
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
    home: Path | None = HomeOption,
) -> None:
    """Configured sources, with their state and whether their credentials are set."""
    cfg = settings_for(home)
    with opened_store(cfg) as store:
        configs = store.list_sources()
        health = {h.source: h for h in store.source_health()}
        states = {s.source: s for s in store.source_states()}
    rows = []
    for config in configs:
        found = credentials_for(config.name, config.platform, cfg.home)
        h = health.get(config.name)
        state = states.get(config.name)
        rows.append(
            {
                "name": config.name,
                "platform": config.platform,
                "paused": config.paused,
                "status": "paused" if config.paused else (h.status.value if h else "not started"),
                "settings": dict(config.settings),
                "credentials": {f: ("set" if f in found else "missing") for f in CREDENTIAL_FIELDS[config.platform]},
                "events_total": state.events_total if state else 0,
                "errors": h.errors if h else 0,
                "gaps": h.gaps if h else 0,
                "last_error": h.last_error if h else None,
            }
        )
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, ensure_ascii=False))
        return
    if not rows:
        console.print("no sources yet: add one with `watchfloor source add bluesky` (no credentials needed)")
        return
    table = Table("name", "platform", "status", "events", "errors", "gaps", "credentials", "settings", title="sources")
    for row in rows:
        creds = ", ".join(f"{k} {v}" for k, v in row["credentials"].items()) or "-"
        table.add_row(
            row["name"],
            row["platform"],
            row["status"],
            str(row["events_total"]),
            str(row["errors"]),
            str(row["gaps"]),
            creds,
            _summary(row["settings"]),
        )
    console.print(table)


def _summary(settings: dict[str, Any]) -> str:
    parts = []
    for key, value in settings.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        parts.append(f"{key}={shown}")
    text = "; ".join(parts)
    return text if len(text) <= 80 else text[:79] + "…"


def _set_paused(name: str, paused: bool, home: Path | None) -> None:
    with opened_store(settings_for(home)) as store:
        try:
            store.set_source_paused(name, paused)
        except StoreError as exc:
            raise fail(str(exc)) from None
    verb = "paused" if paused else "resumed"
    console.print(f"{verb} {name} (a running watch floor follows within seconds)", highlight=False)


@app.command("pause")
def pause(name: str = typer.Argument(..., help="Source name."), home: Path | None = HomeOption) -> None:
    """Stop reading a source (its cursor is kept; `resume` goes on from there)."""
    _set_paused(name, True, home)


@app.command("resume")
def resume(name: str = typer.Argument(..., help="Source name."), home: Path | None = HomeOption) -> None:
    """Start reading a paused source again, from its cursor."""
    _set_paused(name, False, home)


@app.command("remove")
def remove(
    name: str = typer.Argument(..., help="Source name."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask."),
    home: Path | None = HomeOption,
) -> None:
    """Forget a source's configuration and stored credentials (stored posts and alerts stay)."""
    cfg = settings_for(home)
    if not yes and not typer.confirm(f"remove source {name!r}?"):
        raise typer.Exit(1)
    with opened_store(cfg) as store:
        try:
            store.remove_source(name)
        except StoreError as exc:
            raise fail(str(exc)) from None
    forget_credentials(cfg.home, name)
    console.print(f"removed {name}", highlight=False)


@app.command("test")
def test(
    name: str = typer.Argument(..., help="Source name."),
    events: int = typer.Option(5, "--events", "-n", help="Stop after this many events."),
    timeout: float = typer.Option(30.0, "--timeout", help="Give up after this many seconds."),
    login: bool = typer.Option(False, "--login", help="Telegram: log in interactively and save the session."),
    home: Path | None = HomeOption,
) -> None:
    """Connect, read a few events and normalise them, without storing anything."""
    cfg = settings_for(home)
    with opened_store(cfg) as store:
        config = store.get_source(name)
    if config is None:
        raise fail(f"no source named {name!r}")
    try:
        pseudonymise = deployment_pseudonymiser(cfg.home)
    except (ConfigError, KeyringError) as exc:
        raise fail(str(exc)) from None
    try:
        source = source_for(config, credentials_for(name, config.platform, cfg.home), home=cfg.home)
    except SourceConfigError as exc:
        raise fail(str(exc)) from None
    if login:
        _telegram_login(source, config)
    normaliser = normaliser_for(config.platform, pseudonymise)
    counts = {"events": 0, "posts": 0, "deletions": 0, "ignored": 0, "malformed": 0}
    started = time.monotonic()

    async def read() -> None:
        async with aclosing(source.events(None)) as stream:
            async for event in stream:
                counts["events"] += 1
                try:
                    item = normaliser.normalise(event)
                except MalformedEvent:
                    counts["malformed"] += 1
                else:
                    key = {Post: "posts", Deletion: "deletions", Ignored: "ignored"}[type(item)]
                    counts[key] += 1
                if counts["events"] >= events:
                    return

    failure = None
    try:
        asyncio.run(asyncio.wait_for(read(), timeout))
    except TimeoutError:
        pass
    except SourceFailed as exc:
        failure = str(exc)
    health = getattr(source, "health", None)
    snapshot = health.snapshot() if health is not None else None
    elapsed = time.monotonic() - started
    console.print(
        f"{name}: {counts['events']} events in {elapsed:.1f} s — {counts['posts']} posts, "
        f"{counts['deletions']} deletions, {counts['ignored']} ignored, {counts['malformed']} malformed",
        highlight=False,
    )
    if snapshot is not None:
        console.print(
            f"  status {snapshot.status.value}, endpoint {snapshot.endpoint or '-'}, "
            f"errors {snapshot.errors}, reconnects {snapshot.reconnects}"
            + (f", last error: {snapshot.last_error}" if snapshot.last_error else ""),
            highlight=False,
        )
    if failure:
        raise fail(failure)
    if counts["events"] == 0:
        raise fail(f"no events from {name} within {timeout:g} s", code=1)


def _telegram_login(source: Any, config: SourceConfig) -> None:
    if config.platform != "telegram":
        raise fail("--login is for Telegram sources")

    async def login() -> None:
        client = source.client()
        await client.start()  # asks for the phone number and the code on the terminal
        await client.disconnect()

    try:
        asyncio.run(login())
    except SourceFailed as exc:
        raise fail(str(exc)) from None
    console.print(f"logged in; session saved to {source.session}", highlight=False)


# --------------------------------------------------------------------------- for `watchfloor status`

GAP_ALERT_HOURS = 24


def health_json(health: list[HealthSnapshot], gaps: list[Gap]) -> dict[str, Any]:
    """The ``health`` and ``gaps`` parts of ``watchfloor status --json``."""

    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "health": [
            {
                "source": h.source,
                "platform": h.platform,
                "status": h.status.value,
                "connected": h.status is SourceStatus.connected,
                "endpoint": h.endpoint,
                "connected_since": when(h.connected_since),
                "reconnects": h.reconnects,
                "errors": h.errors,
                "last_error": h.last_error,
                "last_error_at": when(h.last_error_at),
                "gaps": h.gaps,
                "rate_limited_until": when(h.rate_limited_until),
                "quota_used": h.quota_used,
                "quota_limit": h.quota_limit,
                "updated_at": when(h.updated_at),
            }
            for h in health
        ],
        "gaps": [
            {
                "id": g.id,
                "source": g.source,
                "reason": g.reason,
                "detected_at": when(g.detected_at),
                "since": when(g.since),
                "until": when(g.until),
            }
            for g in gaps
        ],
    }


def print_health(health: list[HealthSnapshot], gaps: list[Gap], now: datetime) -> None:
    """Connection state per live source, and the recent gaps as alerts."""
    if health:
        table = Table("source", "status", "since", "reconnects", "errors", "gaps", "last error", title="source health")
        for h in health:
            style = {"connected": "green", "failed": "bold red", "backoff": "yellow", "rate_limited": "yellow"}.get(
                h.status.value, ""
            )
            since = h.connected_since or h.updated_at
            table.add_row(
                h.source,
                f"[{style}]{h.status.value}[/]" if style else h.status.value,
                f"{since:%Y-%m-%d %H:%M:%S}" if since else "-",
                str(h.reconnects),
                str(h.errors),
                f"[red]{h.gaps}[/]" if h.gaps else "0",
                (h.last_error or "-")[:60],
            )
        console.print(table)
    recent = [g for g in gaps if (now - g.detected_at).total_seconds() < GAP_ALERT_HOURS * 3600]
    for g in recent:
        span = ""
        if g.since and g.until:
            span = f" (events between {g.since:%H:%M:%S} and {g.until:%H:%M:%S} UTC)"
        console.print(
            f"[bold red]GAP[/] {g.detected_at:%Y-%m-%d %H:%M:%S} {g.source}: {g.reason}{span}", highlight=False
        )
