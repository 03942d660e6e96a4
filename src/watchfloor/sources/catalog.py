"""Which normaliser reads which platform's events, and how a configured source is built.

One entry per platform module. A new platform adds its module and one line to each
table here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from watchfloor.sources.base import Normaliser, Pseudonymiser, Source
from watchfloor.sources.config import Secret, SourceConfig, SourceConfigError
from watchfloor.sources.health import SourceHealth


def _bluesky(p: Pseudonymiser) -> Normaliser:
    from watchfloor.sources.bluesky import JetstreamNormaliser

    return JetstreamNormaliser(p)


def _mastodon(p: Pseudonymiser) -> Normaliser:
    from watchfloor.sources.mastodon import MastodonNormaliser

    return MastodonNormaliser(p)


def _reddit(p: Pseudonymiser) -> Normaliser:
    from watchfloor.sources.reddit import RedditNormaliser

    return RedditNormaliser(p)


def _rss(p: Pseudonymiser) -> Normaliser:
    from watchfloor.sources.rss import FeedNormaliser

    return FeedNormaliser(p)


def _youtube(p: Pseudonymiser) -> Normaliser:
    from watchfloor.sources.youtube import YouTubeNormaliser

    return YouTubeNormaliser(p)


def _telegram(p: Pseudonymiser) -> Normaliser:
    from watchfloor.sources.telegram import TelegramNormaliser

    return TelegramNormaliser(p)


def _x(p: Pseudonymiser) -> Normaliser:
    from watchfloor.sources.xapi import XNormaliser

    return XNormaliser(p)


NORMALISERS: dict[str, Callable[[Pseudonymiser], Normaliser]] = {
    "bluesky": _bluesky,
    "mastodon": _mastodon,
    "reddit": _reddit,
    "rss": _rss,
    "youtube": _youtube,
    "telegram": _telegram,
    "x": _x,
}


def normaliser_for(platform: str, pseudonymise: Pseudonymiser) -> Normaliser:
    """The normaliser for ``platform``; ValueError names the platforms known."""
    build = NORMALISERS.get(platform)
    if build is None:
        hint = (
            " (CSV rows need a column mapping: see watchfloor.sources.files.CsvNormaliser)" if platform == "csv" else ""
        )
        raise ValueError(f"no normaliser for platform {platform!r}; known: {', '.join(NORMALISERS)}{hint}")
    return build(pseudonymise)


#: Reads an event's ``native_id:version`` (or None) from its payload without normalising it,
#: for the bus's duplicate detection (``Nats-Msg-Id``, pipeline/bus.py).
MessageKey = Callable[[bytes], "str | None"]


def _no_key(payload: bytes) -> None:
    """Reddit, RSS and YouTube are polled snapshots whose deletions and versions are inferred
    from the whole item: no field names the version cheaply, so the bus keys their events by
    a hash of the payload (the same item polled twice unchanged is still one message)."""
    return None


def message_key_for(platform: str) -> MessageKey:
    """The cheap key reader of ``platform`` (a payload hash is used where it returns None)."""
    if platform == "bluesky":
        from watchfloor.sources.bluesky import message_key as bluesky_key

        return bluesky_key
    if platform == "mastodon":
        from watchfloor.sources.mastodon import message_key as mastodon_key

        return mastodon_key
    if platform == "telegram":
        from watchfloor.sources.telegram import message_key as telegram_key

        return telegram_key
    if platform == "x":
        from watchfloor.sources.xapi import message_key as x_key

        return x_key
    return _no_key


# --------------------------------------------------------------------------- configured sources


class _Settings:
    """Typed reads of a source's stored settings, with errors that name the setting."""

    def __init__(self, config: SourceConfig) -> None:
        self.config = config
        self.values: Mapping[str, Any] = config.settings

    def _fail(self, key: str, what: str) -> SourceConfigError:
        return SourceConfigError(f"source {self.config.name!r}: setting {key!r} must be {what}")

    def strings(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.values.get(key, default)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "a list of strings")
        return tuple(value)

    def string(self, key: str, default: str | None = None) -> str | None:
        value = self.values.get(key, default)
        if value is not None and not isinstance(value, str):
            raise self._fail(key, "a string")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.values.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise self._fail(key, "a non-negative number")
        return float(value)

    def flag(self, key: str, default: bool) -> bool:
        value = self.values.get(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false")
        return value


def source_for(
    config: SourceConfig,
    credentials: Mapping[str, Secret],
    *,
    home: Path | None = None,
    health: SourceHealth | None = None,
) -> Source:
    """Build the source ``config`` describes (not started). SourceConfigError if it cannot be."""
    s = _Settings(config)
    health = health or SourceHealth(config.name, config.platform)
    name = config.name
    try:
        if config.platform == "bluesky":
            from watchfloor.sources.jetstream import DEFAULT_COLLECTIONS, DEFAULT_ENDPOINTS, JetstreamSource

            return JetstreamSource(
                name,
                endpoints=s.strings("endpoints", DEFAULT_ENDPOINTS),
                collections=s.strings("collections", DEFAULT_COLLECTIONS),
                dids=s.strings("dids"),
                compress=s.flag("compress", True),
                replay_margin_s=s.number("replay_margin_s", 5.0),
                gap_tolerance_s=s.number("gap_tolerance_s", 1.0),
                health=health,
            )
        if config.platform == "mastodon":
            from watchfloor.sources.mastodon import MastodonSource

            instance = s.string("instance")
            if not instance:
                raise SourceConfigError(f"source {name!r}: setting 'instance' (the instance URL) is missing")
            return MastodonSource(
                name,
                instance,
                timeline=s.string("timeline", "public") or "public",
                tags=s.strings("tags"),
                local=s.flag("local", False),
                token=credentials.get("token"),
                stream=s.flag("stream", True),
                streaming_url=s.string("streaming_url"),
                poll_interval_s=s.number("poll_interval_s", 30.0),
                backfill_pages=int(s.number("backfill_pages", 10)),
                health=health,
            )
        if config.platform == "reddit":
            from watchfloor.sources.reddit import API_URL, AUTH_URL, RedditSource

            return RedditSource(
                name,
                s.strings("subreddits"),
                client_id=credentials.get("client_id"),
                client_secret=credentials.get("client_secret"),
                posts=s.flag("posts", True),
                comments=s.flag("comments", True),
                user_agent=s.string("user_agent", "watchfloor:public-monitoring:v0.1") or "watchfloor",
                auth_url=s.string("auth_url", AUTH_URL) or AUTH_URL,
                api_url=s.string("api_url", API_URL) or API_URL,
                poll_interval_s=s.number("poll_interval_s", 30.0),
                health=health,
            )
        if config.platform == "rss":
            from watchfloor.sources.rss import RssSource

            return RssSource(
                name, s.strings("feeds"), poll_interval_s=s.number("poll_interval_s", 300.0), health=health
            )
        if config.platform == "youtube":
            from watchfloor.sources.youtube import API_URL as YOUTUBE_API
            from watchfloor.sources.youtube import YouTubeSource

            return YouTubeSource(
                name,
                channels=s.strings("channels"),
                videos=s.strings("videos"),
                api_key=credentials.get("api_key"),
                api_url=s.string("api_url", YOUTUBE_API) or YOUTUBE_API,
                poll_interval_s=s.number("poll_interval_s", 300.0),
                daily_quota=int(s.number("daily_quota", 10_000)),
                health=health,
            )
        if config.platform == "telegram":
            from watchfloor.sources.telegram import TelegramSource, session_path

            session = s.string("session")
            if session is None:
                if home is None:
                    raise SourceConfigError(f"source {name!r}: no session file and no home folder")
                session_file = session_path(home, name)
            else:
                session_file = Path(session)
            return TelegramSource(
                name,
                s.strings("channels"),
                api_id=credentials.get("api_id"),
                api_hash=credentials.get("api_hash"),
                session=session_file,
                catch_up_interval_s=s.number("catch_up_interval_s", 300.0),
                health=health,
            )
    except ValueError as exc:
        if isinstance(exc, SourceConfigError):
            raise
        raise SourceConfigError(f"source {name!r}: {exc}") from None
    raise SourceConfigError(f"source {name!r}: unknown platform {config.platform!r}")


def configured_source(
    config: SourceConfig, pseudonymise: Pseudonymiser, home: Path | None, env: Mapping[str, str] | None = None
) -> tuple[Source, Normaliser]:
    """The source ``config`` describes, with its credentials looked up, and its normaliser."""
    from watchfloor.sources.config import credentials_for

    credentials = credentials_for(config.name, config.platform, home, env)
    return source_for(config, credentials, home=home), normaliser_for(config.platform, pseudonymise)
