"""Settings: from the environment, then ``$WATCHFLOOR_HOME/config.toml``, then defaults.

| setting | environment | config.toml | default |
|---|---|---|---|
| home folder | ``WATCHFLOOR_HOME`` | - | ``./var`` |
| store URL | ``WATCHFLOOR_DB`` | ``db`` | ``sqlite:///$HOME/watchfloor.db`` |
| bus URL | ``WATCHFLOOR_BUS`` | ``bus`` | ``memory://`` (in-process) |
| web host / port | ``WATCHFLOOR_WEB_HOST`` / ``WATCHFLOOR_WEB_PORT`` | ``[web] host/port`` | ``127.0.0.1`` / ``8000`` |
| cookie ``Secure`` flag | ``WATCHFLOOR_SECURE_COOKIES`` | ``[web] secure_cookies`` | off (plain HTTP on localhost) |
| idle sign-out (minutes, 0 = off) | ``WATCHFLOOR_SESSION_IDLE_MINUTES`` | ``[web] session_idle_minutes`` | 30 |
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

CONFIG_FILE = "config.toml"
PSEUDONYM_KEY_FILE = "keys/pseudonym.key"


class ConfigError(RuntimeError):
    """The configuration is missing or wrong; the message says what to do."""


# The embedded pipeline's micro-batch: at 10,000 posts/s (50,000 events/s) 500 events are
# 10 ms of stream; when the stream is slower, a batch waits at most 20 ms for more events.
# bench/pipeline.py measures the latency these give (docs/performance.md).
DEFAULT_BATCH_SIZE = 500
DEFAULT_BATCH_INTERVAL_S = 0.02


@dataclass(frozen=True, slots=True)
class Settings:
    home: Path
    db_url: str
    bus_url: str = "memory://"
    web_host: str = "127.0.0.1"
    web_port: int = 8000
    secure_cookies: bool = False
    session_idle_minutes: int = 30  # a session ends after this long without a person's request (0: never)
    batch_size: int = DEFAULT_BATCH_SIZE
    batch_interval_s: float = DEFAULT_BATCH_INTERVAL_S
    signal_process: bool = True  # `watchfloor run`: matched posts' per-text signals in a helper process
    match_process: bool = True  # `watchfloor run`: normalise, match and seal in a helper process

    @property
    def config_path(self) -> Path:
        return self.home / CONFIG_FILE

    @property
    def pseudonym_key_path(self) -> Path:
        return self.home / PSEUDONYM_KEY_FILE

    def pseudonym_secret(self) -> bytes:
        """The current epoch's pseudonym key (``keys/keyring.json``, docs/accountability.md),
        or v1's single key before ``init`` moved it into the keyring. Prefer
        ``watchfloor.governance.pseudonyms.deployment_pseudonymiser``: it also seals identities."""
        from watchfloor.governance.keys import Keyring, KeyringError

        keyring = Keyring(self.home / "keys")
        if keyring.exists():
            try:
                return keyring.pseudonym_key()[1]
            except KeyringError as exc:
                raise ConfigError(str(exc)) from None
        path = self.pseudonym_key_path
        try:
            return bytes.fromhex(path.read_text(encoding="ascii").strip())
        except FileNotFoundError:
            raise ConfigError(f"no pseudonym key at {path}: run `watchfloor init` first") from None
        except ValueError:
            raise ConfigError(f"the pseudonym key at {path} is not hex") from None


def _flag(value: str | bool | None) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def load_settings(home: Path | str | None = None) -> Settings:
    """Read the settings for ``home`` (default: ``$WATCHFLOOR_HOME`` or ``./var``)."""
    home_path = Path(home or os.environ.get("WATCHFLOOR_HOME") or "var").resolve()
    file: dict[str, object] = {}
    config_path = home_path / CONFIG_FILE
    if config_path.exists():
        try:
            file = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_path}: {exc}") from exc
    web = file.get("web", {})
    pipeline = file.get("pipeline", {})
    if not isinstance(web, dict) or not isinstance(pipeline, dict):
        raise ConfigError(f"{config_path}: [web] and [pipeline] must be tables")
    env = os.environ
    try:
        port = int(env.get("WATCHFLOOR_WEB_PORT") or web.get("port", 8000))
    except ValueError:
        raise ConfigError("WATCHFLOOR_WEB_PORT must be a number") from None
    try:
        idle = int(env.get("WATCHFLOOR_SESSION_IDLE_MINUTES") or web.get("session_idle_minutes", 30))
    except ValueError:
        raise ConfigError("WATCHFLOOR_SESSION_IDLE_MINUTES must be a whole number of minutes") from None
    if idle < 0:
        raise ConfigError("the idle sign-out must be 0 (off) or a positive number of minutes")
    return Settings(
        home=home_path,
        db_url=env.get("WATCHFLOOR_DB") or str(file.get("db") or f"sqlite:///{home_path / 'watchfloor.db'}"),
        bus_url=env.get("WATCHFLOOR_BUS") or str(file.get("bus") or "memory://"),
        web_host=env.get("WATCHFLOOR_WEB_HOST") or str(web.get("host", "127.0.0.1")),
        web_port=port,
        secure_cookies=_flag(env.get("WATCHFLOOR_SECURE_COOKIES") or web.get("secure_cookies", False)),
        session_idle_minutes=idle,
        batch_size=int(pipeline.get("batch_size", DEFAULT_BATCH_SIZE)),  # type: ignore[arg-type]
        batch_interval_s=float(pipeline.get("batch_interval_s", DEFAULT_BATCH_INTERVAL_S)),  # type: ignore[arg-type]
        signal_process=_flag(pipeline.get("signal_process", True)),
        match_process=_flag(pipeline.get("match_process", True)),
    )


DEFAULT_CONFIG = """\
# watchfloor configuration. Environment variables (WATCHFLOOR_DB, WATCHFLOOR_BUS,
# WATCHFLOOR_WEB_HOST, WATCHFLOOR_WEB_PORT) override what is written here.

# db = "sqlite:///var/watchfloor.db"

[web]
host = "127.0.0.1"
port = 8000
# Set to true behind HTTPS so session cookies are only ever sent encrypted.
secure_cookies = false
# Sign a browser out after this many minutes without a request by its person (0: never).
# Pages that refresh themselves (the wall, status) do not count as activity.
session_idle_minutes = 30

[pipeline]
# A micro-batch is committed when it holds this many events or its first event is this
# old (seconds). Smaller batches: lower latency, more commits (docs/performance.md).
batch_size = 500
batch_interval_s = 0.02
# `watchfloor run`: compute the language, sentiment, toxicity and near-duplicate signature
# of matched posts in one helper process, on another core (false: in the pipeline).
signal_process = true
# `watchfloor run`: normalise, pseudonymise, match and seal the sources' events in one helper
# process, on another core, while the pipeline reads and commits (false: in the pipeline).
match_process = true

# The scale-out deployment (WATCHFLOOR_BUS=nats://...: watchfloor ingest, worker, web) reads
# its bus settings here; docs/deploy.md explains each one and its default.
# [bus]
# prefix = "watchfloor"
# replicas = 3
"""
