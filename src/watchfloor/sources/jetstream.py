"""Bluesky Jetstream v1 over a websocket: the default live source (no credentials needed).

Jetstream (https://github.com/bluesky-social/jetstream) serves the AT Protocol
firehose as JSON at ``wss://<host>/subscribe``. This client asks for
``wantedCollections`` (default: posts only; identity and account events always come
too), optionally ``wantedDids``, and with ``compress=True`` for the v1 zstd scheme:
binary frames, each one zstd frame made with Jetstream's v1 dictionary (shipped in
``sources/data/``). It then does not offer permessage-deflate, which a v1 server
refuses in combination. The payloads it yields are the uncompressed JSON, read by
:class:`~watchfloor.sources.bluesky.JetstreamNormaliser`.

Resuming. The cursor is the largest ``time_us`` seen so far. A (re)connect asks for
``cursor = that - replay_margin`` (Jetstream replays every event with ``time_us >=
cursor``), because ``time_us`` is only roughly ordered and differs a little between
Jetstream instances. Events of the margin that this process already yielded from the
same endpoint are recognised and skipped; after a fail-over to another instance, or
after a restart, they come again and the idempotent store keeps them once.

Gaps. The event carrying the largest ``time_us`` seen passed the filter, so a replay
from ``time_us - margin`` must bring it (or, from another instance, its twin a few
milliseconds off) again. When the first event after a reconnect is newer than that by
more than ``gap_tolerance_s``, the server could not replay from the cursor (it is older
than the server keeps, or the server only serves the live tail): the source records a
gap from the last event it had to the first it got, and carries on.

Failures. A refused handshake (429, 5xx), a connection that drops, a frame that stops
half-way, a server that goes silent for ``idle_timeout_s`` — each is an error in the
source's health, followed by a wait (exponential backoff with jitter, or the server's
``Retry-After``) and a reconnect, to the next endpoint in the list when the last
attempt did not get as far as an event. A frame that cannot be decompressed is yielded
as it came, so it lands in the dead letters with the reason; the stream goes on.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from urllib.parse import urlencode

import websockets
import zstandard
from websockets.asyncio.client import connect

from watchfloor.model import RawEvent, utcnow
from watchfloor.sources.backoff import Backoff, Sleep, real_sleep
from watchfloor.sources.health import SourceHealth
from watchfloor.sources.http import retry_after_s

log = logging.getLogger(__name__)

PLATFORM = "bluesky"
DEFAULT_ENDPOINTS = (
    "wss://jetstream1.us-east.bsky.network/subscribe",
    "wss://jetstream2.us-east.bsky.network/subscribe",
    "wss://jetstream1.us-west.bsky.network/subscribe",
    "wss://jetstream2.us-west.bsky.network/subscribe",
)
DEFAULT_COLLECTIONS = ("app.bsky.feed.post",)
DICTIONARY_FILE = "jetstream_v1_zstd_dictionary.zdict"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
MAX_MESSAGE_BYTES = 2 * 1024 * 1024  # uncompressed; bigger events are cut off by the server anyway
USER_AGENT = "watchfloor/0.1 (jetstream client)"

_TIME_US = re.compile(rb'"time_us"\s*:\s*(\d{1,19})')
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@cache
def dictionary() -> zstandard.ZstdCompressionDict:
    """Jetstream's v1 zstd dictionary, from the copy shipped in the package."""
    data = (resources.files("watchfloor.sources") / "data" / DICTIONARY_FILE).read_bytes()
    return zstandard.ZstdCompressionDict(data)


def subscribe_url(
    endpoint: str,
    *,
    collections: Sequence[str] = DEFAULT_COLLECTIONS,
    dids: Sequence[str] = (),
    cursor_us: int | None = None,
    compress: bool = True,
) -> str:
    """The ``/subscribe`` URL with its query: wanted collections and DIDs, cursor, compression."""
    query: list[tuple[str, str]] = [("wantedCollections", c) for c in collections]
    query += [("wantedDids", d) for d in dids]
    if cursor_us is not None:
        query.append(("cursor", str(max(cursor_us, 0))))
    if compress:
        query.append(("compress", "true"))
    separator = "&" if "?" in endpoint else "?"
    return endpoint + (separator + urlencode(query) if query else "")


def parse_cursor(cursor: str | None) -> int | None:
    """The ``time_us`` a Jetstream cursor stands for (``None`` for a fresh start)."""
    if not cursor:
        return None
    if not cursor.isascii() or not cursor.isdigit():
        raise ValueError(f"a Jetstream cursor is a time in microseconds, not {cursor!r}")
    return int(cursor)


def time_us_of(payload: bytes) -> int | None:
    """The event's ``time_us`` (Jetstream writes it second, after ``did``), or None."""
    match = _TIME_US.search(payload, 0, 512) or _TIME_US.search(payload)
    return int(match.group(1)) if match else None


def from_time_us(time_us: int) -> datetime | None:
    try:
        return _EPOCH + timedelta(microseconds=time_us)
    except OverflowError:
        return None


class FrameError(ValueError):
    """A frame that cannot be turned into an event's JSON."""


class Decompressor:
    """Undoes the v1 scheme: one zstd frame per message, made with the v1 dictionary."""

    def __init__(self, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._zstd = zstandard.ZstdDecompressor(dict_data=dictionary())

    def decompress(self, frame: bytes) -> bytes:
        try:
            size = zstandard.frame_content_size(frame)
            if size > self.max_bytes:
                raise FrameError(f"compressed frame says {size} bytes, limit {self.max_bytes}")
            return self._zstd.decompress(frame, max_output_size=self.max_bytes)
        except zstandard.ZstdError as exc:
            raise FrameError(f"zstd frame cannot be decompressed: {exc}") from None


class _RecentlySeen:
    """Hashes of the payloads yielded within the replay margin, to skip a replay's repeats."""

    def __init__(self, window_us: int) -> None:
        self.window_us = window_us
        self._order: deque[tuple[int, int]] = deque()
        self._hashes: dict[int, int] = {}

    def seen(self, payload: bytes) -> bool:
        return hash(payload) in self._hashes

    def add(self, payload: bytes, time_us: int, newest_us: int) -> None:
        key = hash(payload)
        self._hashes[key] = self._hashes.get(key, 0) + 1
        self._order.append((time_us, key))
        horizon = newest_us - self.window_us - 1_000_000
        while self._order and (self._order[0][0] < horizon or len(self._order) > 500_000):
            _, old = self._order.popleft()
            left = self._hashes[old] - 1
            if left:
                self._hashes[old] = left
            else:
                del self._hashes[old]

    def clear(self) -> None:
        self._order.clear()
        self._hashes.clear()


class JetstreamSource:
    """A live, resumable Jetstream v1 subscription with fail-over across endpoints."""

    platform = PLATFORM

    def __init__(
        self,
        name: str = "bluesky",
        *,
        endpoints: Sequence[str] = DEFAULT_ENDPOINTS,
        collections: Sequence[str] = DEFAULT_COLLECTIONS,
        dids: Sequence[str] = (),
        compress: bool = True,
        replay_margin_s: float = 5.0,
        gap_tolerance_s: float = 1.0,
        idle_timeout_s: float = 60.0,
        open_timeout_s: float = 10.0,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        backoff: Backoff | None = None,
        sleep: Sleep = real_sleep,
        health: SourceHealth | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("at least one Jetstream endpoint is needed")
        for endpoint in endpoints:
            if not endpoint.startswith(("ws://", "wss://")):
                raise ValueError(f"a Jetstream endpoint is a ws:// or wss:// URL, not {endpoint!r}")
        self.name = name
        self.endpoints = tuple(endpoints)
        self.collections = tuple(collections)
        self.dids = tuple(dids)
        self.compress = compress
        self.replay_margin_us = int(replay_margin_s * 1_000_000)
        self.gap_tolerance_us = int(gap_tolerance_s * 1_000_000)
        self.idle_timeout_s = idle_timeout_s
        self.open_timeout_s = open_timeout_s
        self.max_message_bytes = max_message_bytes
        self.backoff = backoff or Backoff(base_s=1.0, cap_s=120.0)
        self.sleep = sleep
        self.health = health or SourceHealth(name, PLATFORM)
        self.connections = 0  # handshakes that succeeded (for tests and `source test`)
        self._decompressor = Decompressor(max_message_bytes) if compress else None

    async def events(self, cursor: str | None) -> AsyncIterator[RawEvent]:
        """Events after ``cursor`` (with the replay margin), forever; reconnects on its own."""
        newest = parse_cursor(cursor)
        recent = _RecentlySeen(self.replay_margin_us)
        endpoint_index = 0
        last_endpoint: str | None = None
        while True:
            endpoint = self.endpoints[endpoint_index % len(self.endpoints)]
            if endpoint != last_endpoint:
                recent.clear()  # another instance stamps other time_us: nothing to recognise
            last_endpoint = endpoint
            resume_from = None if newest is None else newest - self.replay_margin_us
            url = subscribe_url(
                endpoint, collections=self.collections, dids=self.dids, cursor_us=resume_from, compress=self.compress
            )
            expect_up_to = newest  # a replay must bring this event (or its twin) back
            opened = got_events = False
            wait: float | None = None
            self.health.connecting(endpoint)
            try:
                async with connect(
                    url,
                    compression=None if self.compress else "deflate",
                    open_timeout=self.open_timeout_s,
                    max_size=self.max_message_bytes + 1024,
                    ping_interval=20,
                    ping_timeout=20,
                    close_timeout=2,
                    user_agent_header=USER_AGENT,
                ) as socket:
                    opened = True
                    self.connections += 1
                    self.health.connected(endpoint)
                    while True:
                        async with asyncio.timeout(self.idle_timeout_s):
                            frame = await socket.recv(decode=False)
                        payload = self._payload(frame)
                        time_us = time_us_of(payload)
                        if time_us is not None:
                            if expect_up_to is not None:
                                self._check_resume(expect_up_to, time_us, newest)
                                expect_up_to = None
                            if recent.seen(payload):
                                continue  # a repeat from the replay margin
                            newest = time_us if newest is None else max(newest, time_us)
                            recent.add(payload, time_us, newest)
                        if not got_events:
                            got_events = True
                            self.backoff.reset()
                        yield RawEvent(
                            source=self.name,
                            platform=PLATFORM,
                            cursor="" if newest is None else str(newest),
                            payload=payload,
                            received_at=utcnow(),
                        )
            except websockets.InvalidStatus as exc:
                status = exc.response.status_code
                self.health.disconnected(f"{endpoint} refused the connection: HTTP {status}")
                wait = retry_after_s(exc.response.headers, utcnow())
            except TimeoutError:
                if opened:
                    self.health.disconnected(f"{endpoint}: no data for {self.idle_timeout_s:g} s")
                else:
                    self.health.disconnected(f"{endpoint}: no handshake within {self.open_timeout_s:g} s")
            except websockets.ConnectionClosed as exc:
                self.health.disconnected(f"{endpoint} closed the connection: {exc}")
            except (OSError, websockets.InvalidHandshake, websockets.InvalidURI, EOFError) as exc:
                self.health.disconnected(f"cannot connect to {endpoint}: {type(exc).__name__}: {exc}")
            if not got_events:
                endpoint_index += 1  # fail over when this endpoint gave nothing
            delay = wait if wait is not None else self.backoff.next_delay()
            self.health.backoff()
            log.info("jetstream %s: reconnecting in %.1f s", self.name, delay)
            await self.sleep(delay)

    def _payload(self, frame: bytes | str) -> bytes:
        payload = frame.encode("utf-8", "surrogatepass") if isinstance(frame, str) else bytes(frame)
        if self._decompressor is not None and payload.startswith(ZSTD_MAGIC):
            try:
                return self._decompressor.decompress(payload)
            except FrameError as exc:
                self.health.error(str(exc))
        return payload

    def _check_resume(self, expected_us: int, first_us: int, newest: int | None) -> None:
        if first_us <= expected_us + self.gap_tolerance_us:
            return
        since, until = from_time_us(expected_us), from_time_us(first_us)
        missed = (first_us - expected_us) / 1_000_000
        self.health.gap(
            f"the server did not replay from the cursor: about {missed:,.1f} s of events missed",
            since=since,
            until=until,
            cursor=None if newest is None else str(newest),
        )
