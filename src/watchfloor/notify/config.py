"""Notification settings: environment first, then ``[notify]`` in ``config.toml``, then defaults.

- links in notifications: ``WATCHFLOOR_PUBLIC_URL`` / ``public_url`` (default ``http://WEB_HOST:WEB_PORT``)
- SMTP server: ``WATCHFLOOR_SMTP_HOST``, ``WATCHFLOOR_SMTP_PORT`` / ``smtp_host``, ``smtp_port``
  (default: no server, so e-mail waits and retries; port 25)
- sender: ``WATCHFLOOR_SMTP_FROM`` / ``smtp_from`` (default ``watchfloor@localhost``)
- STARTTLS: ``WATCHFLOOR_SMTP_STARTTLS`` / ``smtp_starttls`` (default off)
- SMTP login: ``WATCHFLOOR_SMTP_USERNAME`` / ``smtp_username``; the password only from
  ``WATCHFLOOR_SMTP_PASSWORD`` (never from a file)
- SLA check interval: ``WATCHFLOOR_SLA_CHECK_S`` / ``sla_check_s`` (default 15 seconds)
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field

from watchfloor.config import ConfigError, Settings


@dataclass(frozen=True, slots=True)
class NotifySettings:
    public_url: str = "http://127.0.0.1:8000"
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "watchfloor@localhost"
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_timeout_s: float = 10.0
    webhook_timeout_s: float = 10.0
    sla_check_s: float = 15.0

    def link(self, path: str) -> str:
        """An absolute link to a page of this deployment."""
        return self.public_url.rstrip("/") + path


def _flag(value: object) -> bool:
    return value is True or str(value).strip().lower() in {"1", "true", "yes", "on"}


def load_notify_settings(settings: Settings) -> NotifySettings:
    section: dict[str, object] = {}
    if settings.config_path.exists():
        try:
            raw = tomllib.loads(settings.config_path.read_text(encoding="utf-8")).get("notify", {})
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{settings.config_path}: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{settings.config_path}: [notify] must be a table")
        section = raw
    env = os.environ

    def pick(env_key: str, key: str, default: object) -> object:
        value = env.get(env_key)
        return value if value not in (None, "") else section.get(key, default)

    try:
        port = int(pick("WATCHFLOOR_SMTP_PORT", "smtp_port", 25))  # type: ignore[call-overload]
        sla_check_s = float(pick("WATCHFLOOR_SLA_CHECK_S", "sla_check_s", 15.0))  # type: ignore[arg-type]
    except ValueError:
        raise ConfigError("WATCHFLOOR_SMTP_PORT and WATCHFLOOR_SLA_CHECK_S must be numbers") from None
    host = pick("WATCHFLOOR_SMTP_HOST", "smtp_host", None)
    username = pick("WATCHFLOOR_SMTP_USERNAME", "smtp_username", None)
    return NotifySettings(
        public_url=str(pick("WATCHFLOOR_PUBLIC_URL", "public_url", f"http://{settings.web_host}:{settings.web_port}")),
        smtp_host=str(host) if host else None,
        smtp_port=port,
        smtp_from=str(pick("WATCHFLOOR_SMTP_FROM", "smtp_from", "watchfloor@localhost")),
        smtp_starttls=_flag(pick("WATCHFLOOR_SMTP_STARTTLS", "smtp_starttls", False)),
        smtp_username=str(username) if username else None,
        smtp_password=env.get("WATCHFLOOR_SMTP_PASSWORD") or None,
        sla_check_s=max(1.0, sla_check_s),
    )
