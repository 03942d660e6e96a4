"""The bus between sources and processing: one interface, chosen by ``WATCHFLOOR_BUS``.

    sources ──► Bus.publish(event)  ···  Bus.subscribe(platform, group).fetch() ──► Delivery
                 └ an awaitable that completes when           └ ack() only after the store
                   the bus has the event (JetStream: PubAck)    committed what it produced

- ``memory://`` (default): one process. ``watchfloor run`` hands events from each source
  to its pipeline in-process (:class:`~watchfloor.pipeline.runner.Pipeline`'s bounded
  queue, the cheapest hand-over there is, with the cursor committed in the same
  transaction as the data); :class:`~watchfloor.pipeline.bus_memory.MemoryBus` offers this
  interface inside one process. Separate ``ingest`` and ``worker`` processes need a bus
  that outlives them, so they refuse ``memory://``.
- ``nats://host:port[,nats://host:port...]``: NATS JetStream
  (:mod:`watchfloor.pipeline.bus_nats`), for ``watchfloor ingest`` + ``watchfloor worker``
  on any number of machines. Durable: an acknowledged publish survives the publisher, so
  the ingest process may move its source's cursor past it.

Every event travels with a message id, ``platform:native_id:version`` (:func:`message_id`):
the platform's cheap key reader (sources/catalog.py ``message_key_for``) reads it from the
payload without normalising it, and a payload that yields no key (malformed, or a platform
whose version is inferred from the whole item) is keyed ``platform:sha256:<hash of the
payload>``. The bus drops a message whose id it has seen within its duplicate window, so a
restarted ingest that publishes its unconfirmed tail again stores nothing twice; beyond the
window, the store's idempotent keys do the same.

Settings (``[bus]`` in config.toml, or the environment; the CLI flags of ``ingest`` and
``worker`` override both) are :class:`BusSettings`; docs/deploy.md explains every value.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields, replace
from typing import Protocol

from watchfloor.config import ConfigError, Settings
from watchfloor.model import RawEvent
from watchfloor.sources.catalog import message_key_for

MAX_KEY_CHARS = 400  # a longer key (a hostile payload) is replaced by its hash
_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,32}")


class BusError(RuntimeError):
    """The bus cannot be reached or refused a request; the message says which and why."""


class EventRefused(BusError):
    """The bus can never take this event (it is larger than its largest message): retrying
    cannot help, so the publisher records it as a dead letter instead."""


@dataclass(frozen=True, slots=True)
class BusSettings:
    """How the bus is laid out and how hard it tries (docs/deploy.md: every value, and why)."""

    prefix: str = "watchfloor"  # subjects <prefix>.raw.<platform>.<source>, streams <PREFIX>_<PLATFORM>
    replicas: int = 1  # stream replicas: 3 on a three-node cluster
    max_deliver: int = 5  # deliveries of one message before it is a dead letter
    ack_wait_s: float = 30.0  # a delivered message not acknowledged in this time is delivered again
    duplicate_window_s: float = 120.0  # a message id seen within this window is dropped
    max_bytes: int = -1  # per platform stream (-1: unlimited); when full, publishing waits (backpressure)
    max_age_s: float = 0.0  # 0: an event stays until a worker has processed it
    max_in_flight: int = 1024  # publishes awaiting their PubAck, per ingest process
    max_ack_pending: int = 10_000  # delivered, unacknowledged messages per consumer (all workers)
    dead_max_age_s: float = 14 * 86_400.0  # how long the dead-letter stream keeps a message
    cursor_every_s: float = 1.0  # how often ingest saves a source's confirmed cursor

    def __post_init__(self) -> None:
        if not _PREFIX.fullmatch(self.prefix):
            raise ConfigError(f"bus prefix {self.prefix!r}: use 1 to 32 letters, digits, '_' or '-'")
        if self.replicas not in (1, 3, 5):
            raise ConfigError(f"bus replicas must be 1, 3 or 5, not {self.replicas}")
        if self.max_deliver < 2:
            raise ConfigError("bus max_deliver must be at least 2 (the first delivery and one retry)")
        for name in ("ack_wait_s", "duplicate_window_s", "cursor_every_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"bus {name} must be a positive number of seconds")
        if self.max_in_flight < 1 or self.max_ack_pending < 1:
            raise ConfigError("bus max_in_flight and max_ack_pending must be at least 1")


def load_bus_settings(settings: Settings, **overrides: object) -> BusSettings:
    """``[bus]`` of config.toml, then ``WATCHFLOOR_BUS_<NAME>`` variables, then ``overrides``
    (the CLI flags that were given: None means not given)."""
    table: dict[str, object] = {}
    if settings.config_path.exists():
        try:
            loaded = tomllib.loads(settings.config_path.read_text(encoding="utf-8")).get("bus", {})
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{settings.config_path}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{settings.config_path}: [bus] must be a table")
        table = loaded
    known = {f.name: f for f in fields(BusSettings)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise ConfigError(f"{settings.config_path}: unknown [bus] settings {', '.join(unknown)}")
    values: dict[str, object] = dict(table)
    for name in known:
        env = os.environ.get(f"WATCHFLOOR_BUS_{name.upper()}")
        if env:
            values[name] = env
    values.update({k: v for k, v in overrides.items() if v is not None})
    typed: dict[str, object] = {}
    defaults = BusSettings()
    for name, value in values.items():
        kind = type(getattr(defaults, name))
        try:
            typed[name] = kind(value) if kind is not str else str(value)
        except (TypeError, ValueError):
            raise ConfigError(f"bus setting {name} must be a {kind.__name__}, not {value!r}") from None
    return replace(defaults, **typed)  # type: ignore[arg-type]


def message_id(event: RawEvent) -> str:
    """``platform:native_id:version`` of the event (see the module docstring): printable ASCII
    (it travels as a header), at most a few hundred characters."""
    key = message_key_for(event.platform)(event.payload)
    if key is None or len(key) > MAX_KEY_CHARS or not (key.isascii() and key.isprintable()) or key != key.strip():
        key = "sha256:" + hashlib.sha256(event.payload).hexdigest()
    return f"{event.platform}:{key}"


# --------------------------------------------------------------------------- the interface


class Delivery(Protocol):
    """One event handed to a consumer; it stays the consumer's until acknowledged."""

    event: RawEvent
    msg_id: str
    attempt: int  # 1 on the first delivery

    async def ack(self) -> None:
        """Done: the store committed what it produced. Never before that commit returned."""
        ...

    async def nak(self, delay_s: float = 0.0) -> None:
        """Failed this time: deliver it again (to any consumer of the group) after ``delay_s``."""
        ...

    async def in_progress(self) -> None:
        """Still working on it (a slow commit): restart its acknowledgement clock."""
        ...

    async def term(self) -> None:
        """Never deliver it again (it was recorded as a dead letter)."""
        ...


class Subscription(Protocol):
    """A share of one platform's events: every subscription of the same group splits them."""

    platform: str

    async def fetch(self, max_messages: int, timeout_s: float) -> list[Delivery]:
        """Up to ``max_messages`` deliveries; fewer (or none) when ``timeout_s`` passes first."""
        ...

    async def pending(self) -> int | None:
        """Events of this platform not yet acknowledged by the group (the lag), if known."""
        ...

    async def close(self) -> None: ...


class Bus(Protocol):
    """Publishes raw events and hands them to consumers with explicit acknowledgement."""

    url: str
    settings: BusSettings
    durable: bool  # an acknowledged publish survives this process (the publisher may move its cursor)

    async def connect(self) -> None:
        """Connect (raises :class:`BusError` when the bus cannot be reached)."""
        ...

    async def prepare(self, platforms: list[str]) -> None:
        """Create (or bring up to date) what the platforms' events need: streams, consumers."""
        ...

    async def close(self) -> None: ...

    async def check(self) -> None:
        """Raise :class:`BusError` when the bus cannot be used now (readiness)."""
        ...

    async def publish(self, event: RawEvent, msg_id: str) -> Awaitable[bool]:
        """Hand ``event`` over. Waits while too many publishes are unconfirmed (backpressure);
        returns an awaitable that completes when the bus has the event (True) or had it
        already (False: a duplicate id); it raises :class:`BusError` if the bus refused it or
        did not answer in time, and the caller publishes it again. Raises
        :class:`EventRefused` at once for an event the bus can never take."""
        ...

    async def subscribe(self, platform: str, group: str) -> Subscription: ...

    async def follow_exhausted(
        self, platform: str, group: str, callback: Callable[[Delivery], Awaitable[None]]
    ) -> None:
        """Call back (in one subscriber of the group) for each message the bus stopped
        delivering after ``max_deliver`` deliveries without an acknowledgement (its consumer
        died on the last one); acknowledging what the callback gets removes the message."""
        ...

    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
        """Copy a message that failed ``max_deliver`` times to the dead-letter subject."""
        ...

    async def flush(self) -> None:
        """Push out buffered acknowledgements now."""
        ...

    async def announce_alerts(self, latest_alert_id: int) -> None:
        """Tell every web process that alerts up to this id are committed (best effort)."""
        ...

    async def acquire_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """Take or renew the lease ``name`` for ``holder``; False while another holder has it.
        A lease not renewed within ``ttl_s`` lapses (its holder died)."""
        ...

    async def release_lease(self, name: str, holder: str) -> None: ...

    async def follow_alerts(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(latest_alert_id)`` for every announcement, from now on."""
        ...


def open_bus(url: str, settings: BusSettings | None = None, *, client_name: str = "watchfloor") -> Bus:
    """The bus ``url`` names (not connected yet): ``memory://`` or ``nats://host:port[,...]``;
    ``client_name`` is how the connection shows in the server's monitoring."""
    settings = settings or BusSettings()
    if url == "memory://" or url.startswith("memory://"):
        from watchfloor.pipeline.bus_memory import MemoryBus

        return MemoryBus(settings)
    if url.startswith(("nats://", "tls://")):
        from watchfloor.pipeline.bus_nats import NatsBus

        return NatsBus(url, settings, name=client_name)
    raise ConfigError(f"unsupported bus URL {url!r}: expected memory:// or nats://HOST:PORT[,nats://HOST:PORT...]")
