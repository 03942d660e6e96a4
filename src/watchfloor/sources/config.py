"""A configured source (stored, without secrets) and where its credentials come from.

``watchfloor source add`` stores a :class:`SourceConfig`: the platform and its
settings (instance URL, subreddits, feeds, channels …), never a credential.
Credentials are looked up when the source starts, first match wins:

1. ``WATCHFLOOR_SOURCE_<NAME>_<FIELD>`` (one source), e.g. ``WATCHFLOOR_SOURCE_MY_REDDIT_CLIENT_SECRET``
2. ``WATCHFLOOR_<PLATFORM>_<FIELD>`` (every source of a platform), e.g. ``WATCHFLOOR_YOUTUBE_API_KEY``
3. ``$WATCHFLOOR_HOME/keys/sources.toml``, table ``[<name>]`` (mode 600; written by
   ``watchfloor source add … --token …``)

Values come back wrapped in :class:`Secret`, whose ``repr`` and ``str`` are ``***``,
so a credential that ends up in a log line or an exception shows as stars.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from watchfloor.model import utcnow

CREDENTIALS_FILE = "keys/sources.toml"
RESERVED_NAMES = frozenset({"demo", "all"})
_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,62}")

#: The credential fields of each platform (all optional unless the platform needs them).
CREDENTIAL_FIELDS: dict[str, tuple[str, ...]] = {
    "bluesky": (),
    "mastodon": ("token",),
    "reddit": ("client_id", "client_secret"),
    "rss": (),
    "youtube": ("api_key",),
    "telegram": ("api_id", "api_hash"),
}
PLATFORMS = tuple(CREDENTIAL_FIELDS)


class SourceConfigError(ValueError):
    """A source's configuration is incomplete or wrong; the message says what to do."""


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """One configured source. ``settings`` is JSON-able and never holds a secret."""

    name: str
    platform: str
    settings: Mapping[str, Any] = field(default_factory=dict)
    paused: bool = False
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime | None = None


def check_name(name: str) -> str:
    """``name`` if it can name a source; SourceConfigError otherwise."""
    if not _NAME.fullmatch(name):
        raise SourceConfigError(
            f"source name {name!r} must be 1-63 characters: lower-case letters, digits, '_', '.', '-'"
        )
    if name in RESERVED_NAMES:
        raise SourceConfigError(f"source name {name!r} is reserved")
    return name


class Secret:
    """A credential. Shows as ``***``; :meth:`reveal` gives the value to the code that sends it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def env_name(*parts: str) -> str:
    """``WATCHFLOOR_`` + the parts, upper-case, with anything else than letters and digits as ``_``."""
    return "WATCHFLOOR_" + "_".join(re.sub(r"[^A-Za-z0-9]", "_", part).upper() for part in parts)


def credentials_path(home: Path) -> Path:
    return home / CREDENTIALS_FILE


def credentials_for(
    name: str, platform: str, home: Path | None, env: Mapping[str, str] | None = None
) -> dict[str, Secret]:
    """The credentials of source ``name`` that are set anywhere (see the module docs)."""
    env = os.environ if env is None else env
    stored = _read_credentials_file(home).get(name, {}) if home is not None else {}
    found: dict[str, Secret] = {}
    for field_name in CREDENTIAL_FIELDS.get(platform, ()):
        value = env.get(env_name("SOURCE", name, field_name)) or env.get(env_name(platform, field_name))
        if not value and isinstance(stored, dict):
            raw = stored.get(field_name)
            value = str(raw) if raw not in (None, "") else None
        if value:
            found[field_name] = Secret(value)
    return found


def save_credentials(home: Path, name: str, values: Mapping[str, str]) -> Path:
    """Write (merge) ``values`` into the credentials file for ``name``; the file is mode 600."""
    path = credentials_path(home)
    current = _read_credentials_file(home)
    section = dict(current.get(name, {})) if isinstance(current.get(name), dict) else {}
    section.update({k: v for k, v in values.items() if v})
    current[name] = section
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    lines = ["# watchfloor source credentials: keep private (mode 600).", ""]
    for source_name in sorted(current):
        table = current[source_name]
        if not isinstance(table, dict) or not table:
            continue
        lines.append(f"[{json.dumps(source_name)}]")
        lines += [f"{json.dumps(key)} = {json.dumps(str(val))}" for key, val in sorted(table.items())]
        lines.append("")
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write("\n".join(lines))
    os.chmod(path, 0o600)
    return path


def forget_credentials(home: Path, name: str) -> None:
    """Remove the stored credentials of ``name`` (when the source is removed)."""
    current = _read_credentials_file(home)
    if name in current:
        current.pop(name)
        path = credentials_path(home)
        path.unlink()
        for other, values in current.items():
            if isinstance(values, dict):
                save_credentials(home, other, values)


def _read_credentials_file(home: Path | None) -> dict[str, Any]:
    if home is None:
        return {}
    path = credentials_path(home)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise SourceConfigError(f"{path} is not valid TOML: {exc}") from None
