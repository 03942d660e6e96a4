"""The NATS JetStream bus (``WATCHFLOOR_BUS=nats://host:4222[,nats://host2:4222...]``).

Layout (``<prefix>`` is ``[bus] prefix``, default ``watchfloor``; tests give every test
its own, so they can share one server):

- one stream per platform, ``<PREFIX>_<PLATFORM>`` (e.g. ``WATCHFLOOR_BLUESKY``), taking
  the subjects ``<prefix>.raw.<platform>.>``: file storage, work-queue retention,
  ``duplicate_window``, ``replicas``, ``max_bytes`` with discard-new, ``max_age``;
- raw events on ``<prefix>.raw.<platform>.<source>``, the payload exactly as received;
- one durable pull consumer per stream, named by ``--durable`` (default ``workers``) and
  shared by every worker (same name = the work is shared): explicit ack, ``ack_wait``,
  ``max_deliver``, ``max_ack_pending``;
- dead letters on ``<prefix>.dead.<platform>``, kept in stream ``<PREFIX>_DEAD`` (limits
  retention, ``dead_max_age``);
- new-alert announcements on ``<prefix>.alerts`` (core NATS, not stored): the highest
  committed alert id, so web processes wake their live streams at once.

Why these choices:

- **Work-queue retention**: an event leaves the stream when a worker acknowledges it (after
  the store committed what it produced). Unmatched posts are thereby never kept at rest
  on the bus longer than it takes to process them, which is the product's data
  minimisation; and the stream's size is the backlog, nothing more.
- **File storage**, so a stream survives a restart of nats-server. nats-server fsyncs
  its files every 2 minutes by default (``sync_interval``, configurable from nats-server
  2.10): a PubAck means the event is in the server's memory and written to the OS, which
  survives a crash of the process but not a power failure of the machine. Against that,
  run three nodes with ``replicas = 3`` (a PubAck then means a majority has it) or set
  ``jetstream { sync_interval: always }`` on a single node (docs/deploy.md).
- **Discard new when full**: a full stream refuses new events (the publisher retries
  until there is room) instead of silently dropping the oldest unprocessed ones.
- **Duplicate window** on the ``Nats-Msg-Id`` header (``platform:native_id:version``): a
  restarted ingest publishes the tail it had not confirmed again; the server drops what it
  has already seen. Older repeats are harmless too: the store's keys are idempotent.

Every message carries these headers: ``Nats-Msg-Id``, ``Watchfloor-Source`` (the source's
name), ``Watchfloor-Cursor`` (the position to resume after this event) and
``Watchfloor-Received-At`` (ISO 8601, when the source received it); source and cursor are
percent-encoded (a header value is one line of ASCII).

A message that reaches ``max_deliver`` deliveries without being acknowledged is a dead
letter. When the worker holding the last delivery is alive, it records it itself (store
dead-letter table with the reason, a copy on the dead-letter subject, then ``term``). When
that worker died on it, the server announces it (the ``MAX_DELIVERIES`` advisory); every
worker listens in one queue group, and the one that gets it reads the message by its
sequence, records it the same way and deletes it from the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from urllib.parse import quote, unquote

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)

from watchfloor.model import RawEvent, utcnow
from watchfloor.pipeline.bus import BusError, BusSettings, Delivery, EventRefused

log = logging.getLogger(__name__)

MSG_ID = "Nats-Msg-Id"
SOURCE = "Watchfloor-Source"
CURSOR = "Watchfloor-Cursor"
RECEIVED_AT = "Watchfloor-Received-At"
DEAD_REASON = "Watchfloor-Dead-Reason"
DELIVERIES = "Watchfloor-Deliveries"
PUBLISH_TIMEOUT_S = 10.0  # no PubAck within this: the publish failed and is made again
API_TIMEOUT_S = 5.0
STREAM_IN_USE = 10058  # JetStream error code: stream name already in use with a different configuration
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SAFE = "/:@!$&'()*+,;=-._~[]{}?#"  # kept readable in headers; everything else percent-encoded


# --------------------------------------------------------------------------- names


def stream_name(prefix: str, platform: str) -> str:
    return f"{prefix.upper().replace('-', '_')}_{platform.upper()}"


def dead_stream_name(prefix: str) -> str:
    return f"{prefix.upper().replace('-', '_')}_DEAD"


def subject_token(name: str) -> str:
    """A source name as one subject token: kept when it is plain, else made plain and
    suffixed with a short hash (so two different names never share a token)."""
    if _TOKEN.fullmatch(name):
        return name
    plain = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_")[-40:] or "source"
    return f"{plain}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:10]}"


def raw_subject(prefix: str, platform: str, source: str) -> str:
    return f"{prefix}.raw.{platform}.{subject_token(source)}"


def dead_subject(prefix: str, platform: str) -> str:
    return f"{prefix}.dead.{platform}"


def alerts_subject(prefix: str) -> str:
    return f"{prefix}.alerts"


def event_headers(event: RawEvent, msg_id: str) -> dict[str, str]:
    return {
        MSG_ID: msg_id,
        SOURCE: quote(event.source, safe=_SAFE),
        CURSOR: quote(event.cursor, safe=_SAFE),
        RECEIVED_AT: event.received_at.isoformat(),
    }


def event_of(subject: str, platform: str, data: bytes, headers: dict[str, str] | None) -> RawEvent:
    """The raw event a message carries (a message without our headers still yields one)."""
    headers = headers or {}
    received = headers.get(RECEIVED_AT)
    try:
        received_at = datetime.fromisoformat(received) if received else utcnow()
    except ValueError:
        received_at = utcnow()
    return RawEvent(
        source=unquote(headers.get(SOURCE, "")) or subject.rsplit(".", 1)[-1],
        platform=platform,
        cursor=unquote(headers.get(CURSOR, "")),
        payload=data,
        received_at=received_at,
    )


# --------------------------------------------------------------------------- deliveries


class NatsDelivery:
    def __init__(self, msg: Msg, platform: str) -> None:
        self._msg = msg
        self.event = event_of(msg.subject, platform, msg.data, msg.headers)
        self.msg_id = (msg.headers or {}).get(MSG_ID, "")
        self.attempt = msg.metadata.num_delivered
        self.stream_seq = msg.metadata.sequence.stream

    async def ack(self) -> None:
        await self._msg.ack()

    async def nak(self, delay_s: float = 0.0) -> None:
        await self._msg.nak(delay=delay_s or None)

    async def in_progress(self) -> None:
        await self._msg.in_progress()

    async def term(self) -> None:
        await self._msg.term()


class StrandedMessage:
    """A message the server stopped delivering (``max_deliver`` reached, never acknowledged),
    read back by its sequence; acknowledging or terminating it deletes it from the stream."""

    def __init__(self, bus: NatsBus, stream: str, seq: int, platform: str, attempts: int, msg: Any) -> None:
        self._bus, self._stream, self._seq = bus, stream, seq
        self.event = event_of(msg.subject, platform, msg.data or b"", msg.headers)
        self.msg_id = (msg.headers or {}).get(MSG_ID, "")
        self.attempt = attempts

    async def _delete(self) -> None:
        with contextlib.suppress(nats.js.errors.NotFoundError):  # already gone
            await self._bus.js.delete_msg(self._stream, self._seq)

    async def ack(self) -> None:
        await self._delete()

    async def term(self) -> None:
        await self._delete()

    async def nak(self, delay_s: float = 0.0) -> None:
        return None  # the server will not deliver it again: it stays until recorded

    async def in_progress(self) -> None:
        return None


class NatsSubscription:
    """One platform's share of the durable pull consumer.

    :meth:`fetch` speaks the pull protocol itself, on the pull subscription's message queue,
    instead of nats-py's ``PullSubscription.fetch``: that one waits for every message with a
    task of its own (two tasks and a UUID per message), which was most of a worker's time.
    Here a batch costs two requests at most: ``no_wait`` for what the stream holds now, and,
    when it holds nothing, a lingering request for one message (so no request is left open
    holding messages for this worker while it is busy). It relies on nats-py 2.16's pull
    subscription internals (pinned in pyproject.toml) and falls back to the library's fetch
    where they are missing.
    """

    def __init__(self, bus: NatsBus, platform: str, group: str, sub: Any) -> None:
        self._bus, self.platform, self.group, self._sub = bus, platform, group, sub
        inner = getattr(sub, "_sub", None)
        self._queue: asyncio.Queue[Msg] | None = getattr(inner, "_pending_queue", None)
        self._inner = inner
        self._next_subject: str | None = getattr(sub, "_nms", None)
        self._inbox: str | None = getattr(sub, "_deliver", None)

    async def fetch(self, max_messages: int, timeout_s: float) -> list[Delivery]:
        try:
            if self._queue is None or self._next_subject is None or self._inbox is None:
                msgs = await self._sub.fetch(max_messages, timeout=timeout_s)
            else:
                msgs = await self._pull(max_messages, timeout_s)
        except (TimeoutError, nats.errors.TimeoutError):
            return []
        except nats.errors.Error as exc:
            raise BusError(f"fetching {self.platform} events failed: {exc!r}") from exc
        return [NatsDelivery(m, self.platform) for m in msgs]

    def _take(self) -> Msg:
        assert self._queue is not None
        msg = self._queue.get_nowait()
        self._queue.task_done()
        self._inner._pending_size -= len(msg.data)
        return msg

    async def _wait(self, deadline: float) -> Msg | None:
        """The next message or status of this subscription, or None at ``deadline``."""
        assert self._queue is not None
        if self._queue.empty():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return None
            try:
                msg = await asyncio.wait_for(self._queue.get(), remaining)
            except TimeoutError:
                return None
            self._queue.task_done()
            self._inner._pending_size -= len(msg.data)
            return msg
        return self._take()

    async def _request(self, body: dict[str, object]) -> None:
        assert self._next_subject is not None
        await self._bus.nc.publish(self._next_subject, json.dumps(body).encode(), reply=self._inbox or "")

    async def _pull(self, max_messages: int, timeout_s: float) -> list[Msg]:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        out: list[Msg] = []
        while not self._queue.empty() and len(out) < max_messages:  # delivered after the last fetch returned
            msg = self._take()
            if not (msg.headers and msg.headers.get("Status")):  # stale statuses of earlier requests
                out.append(msg)
        while len(out) < max_messages:
            # what the stream holds now: the server sends it, then a 404 status
            await self._request({"batch": max_messages - len(out), "no_wait": True})
            while len(out) < max_messages:
                msg = await self._wait(deadline + 1.0)  # the server answers a no_wait request at once
                if msg is None or (msg.headers and msg.headers.get("Status")):
                    break
                out.append(msg)
            if out:
                return out
            # nothing yet: wait for one, then take what came with it
            remaining = deadline - loop.time()
            if remaining < 0.05:
                return out
            await self._request({"batch": 1, "expires": int((remaining - 0.01) * 1e9)})
            msg = await self._wait(deadline)
            if msg is None or (msg.headers and msg.headers.get("Status")):
                return out  # 408: the request expired without a message
            out.append(msg)
        return out

    async def pending(self) -> int | None:
        try:
            info = await self._sub.consumer_info()
        except (TimeoutError, nats.errors.Error):
            return None
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)

    async def close(self) -> None:
        """Hand back what was delivered and not fetched (so another worker gets it at once,
        not after ``ack_wait``), then unsubscribe."""
        while self._queue is not None and not self._queue.empty():
            msg = self._take()
            if not (msg.headers and msg.headers.get("Status")):
                with contextlib.suppress(nats.errors.Error, ValueError):
                    await msg.nak()
        with contextlib.suppress(nats.errors.Error, ValueError):
            await self._sub.unsubscribe()


# --------------------------------------------------------------------------- the bus


class NatsBus:
    """:class:`~watchfloor.pipeline.bus.Bus` on NATS JetStream (see the module docstring)."""

    durable = True

    def __init__(self, url: str, settings: BusSettings | None = None, *, name: str = "watchfloor") -> None:
        self.url = url
        self.servers = [s.strip() for s in url.split(",") if s.strip()]
        self.settings = settings or BusSettings()
        self.name = name
        self._nc: NatsClient | None = None
        self._js: Any = None
        self._inflight: asyncio.Semaphore | None = None
        self._replies: dict[str, asyncio.Future[bool]] = {}
        self._reply_prefix = ""
        self._prepared: set[str] = set()  # platforms whose stream is known to exist
        self._dead_ready = False
        self._subscriptions: list[Any] = []
        self._lease_bucket: Any = None

    # ------------------------------------------------------------------ connection
    @property
    def nc(self) -> NatsClient:
        if self._nc is None:
            raise BusError("not connected to NATS: call connect() first")
        return self._nc

    @property
    def js(self) -> Any:
        if self._js is None:
            raise BusError("not connected to NATS: call connect() first")
        return self._js

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def connect(self) -> None:
        if self._nc is not None:
            return

        async def error_cb(exc: Exception) -> None:
            log.warning("NATS: %s", exc)

        async def disconnected_cb() -> None:
            if self._nc is not None and not self._nc.is_closed:
                log.warning("NATS: disconnected; reconnecting")

        async def reconnected_cb() -> None:
            log.warning("NATS: reconnected to %s", self._nc.connected_url.netloc if self._nc else "?")

        try:
            self._nc = await nats.connect(
                servers=self.servers,
                name=self.name,
                connect_timeout=2,
                allow_reconnect=True,
                max_reconnect_attempts=-1,  # a restarted server is waited for, never given up on
                reconnect_time_wait=0.5,
                error_cb=error_cb,
                disconnected_cb=disconnected_cb,
                reconnected_cb=reconnected_cb,
                pending_size=64 * 1024 * 1024,  # publishes buffered while reconnecting
            )
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            self._nc = None
            raise BusError(f"cannot reach NATS at {', '.join(self.servers)}: {exc!r}") from None
        self._js = self._nc.jetstream(timeout=API_TIMEOUT_S)
        self._inflight = asyncio.Semaphore(self.settings.max_in_flight)
        self._reply_prefix = f"_INBOX.{self._nc._nuid.next().decode()}."
        await self._nc.subscribe(self._reply_prefix + "*", cb=self._on_puback)

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        for future in self._replies.values():
            if not future.done():
                future.set_exception(BusError("the bus was closed before the server confirmed"))
        self._replies.clear()
        if nc is not None:
            with contextlib.suppress(TimeoutError, nats.errors.Error, OSError):
                await nc.flush(timeout=API_TIMEOUT_S)  # acknowledgements still buffered go out first
            await nc.close()

    async def check(self) -> None:
        if not self.connected:
            raise BusError(f"not connected to NATS at {', '.join(self.servers)}")
        try:
            await self.js.account_info()
        except (TimeoutError, nats.errors.Error) as exc:
            raise BusError(f"JetStream does not answer: {exc!r}") from None

    async def flush(self) -> None:
        try:
            await self.nc.flush(timeout=API_TIMEOUT_S)
        except (TimeoutError, nats.errors.Error) as exc:
            raise BusError(f"flushing to NATS failed: {exc!r}") from None

    # ------------------------------------------------------------------ layout
    def stream_config(self, platform: str) -> StreamConfig:
        s = self.settings
        return StreamConfig(
            name=stream_name(s.prefix, platform),
            description=f"watchfloor raw {platform} events, until a worker has processed them",
            subjects=[f"{s.prefix}.raw.{platform}.>"],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            num_replicas=s.replicas,
            duplicate_window=s.duplicate_window_s,
            max_bytes=s.max_bytes,
            discard=DiscardPolicy.NEW,
            max_age=s.max_age_s,
        )

    def dead_stream_config(self) -> StreamConfig:
        s = self.settings
        return StreamConfig(
            name=dead_stream_name(s.prefix),
            description="watchfloor events that failed max_deliver times (also in the store's dead letters)",
            subjects=[f"{s.prefix}.dead.>"],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=s.replicas,
            duplicate_window=s.duplicate_window_s,
            max_age=s.dead_max_age_s,
        )

    def consumer_config(self, group: str) -> ConsumerConfig:
        s = self.settings
        return ConsumerConfig(
            name=group,
            durable_name=group,
            description="watchfloor workers: ack after the store commit",
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=s.ack_wait_s,
            max_deliver=s.max_deliver,
            max_ack_pending=s.max_ack_pending,
        )

    async def prepare(self, platforms: list[str]) -> None:
        if not self._dead_ready:
            await self._ensure_stream(self.dead_stream_config())
            self._dead_ready = True
        for platform in platforms:
            if platform not in self._prepared:
                await self._ensure_stream(self.stream_config(platform))
                self._prepared.add(platform)

    async def _ensure_stream(self, config: StreamConfig) -> None:
        try:
            await self.js.add_stream(config)
            return
        except nats.js.errors.BadRequestError as exc:
            if exc.err_code != STREAM_IN_USE:
                raise BusError(f"cannot create stream {config.name}: {exc.description}") from None
        except (TimeoutError, nats.errors.Error) as exc:
            raise BusError(f"cannot create stream {config.name}: {exc!r}") from None
        try:  # it exists with other settings: bring what may change up to date
            await self.js.update_stream(config)
            log.warning("stream %s: settings updated to this configuration", config.name)
        except nats.js.errors.APIError as exc:
            raise BusError(
                f"stream {config.name} exists with settings that cannot be changed in place "
                f"({exc.description}); see docs/deploy.md, 'Changing the stream settings'"
            ) from None

    async def _ensure_consumer(self, stream: str, group: str) -> None:
        config = self.consumer_config(group)
        try:
            await self.js.add_consumer(stream, config)
        except nats.js.errors.APIError as exc:
            try:
                current = (await self.js.consumer_info(stream, group)).config
            except nats.js.errors.NotFoundError:
                raise BusError(f"cannot create consumer {group!r} on {stream}: {exc.description}") from None
            if (current.ack_wait, current.max_deliver, current.max_ack_pending) != (
                config.ack_wait,
                config.max_deliver,
                config.max_ack_pending,
            ):
                log.warning(
                    "consumer %s on %s keeps its settings (ack_wait %s s, max_deliver %s): %s",
                    group,
                    stream,
                    current.ack_wait,
                    current.max_deliver,
                    exc.description,
                )

    # ------------------------------------------------------------------ publishing
    async def publish(self, event: RawEvent, msg_id: str) -> Awaitable[bool]:
        if event.platform not in self._prepared:
            await self.prepare([event.platform])
        assert self._inflight is not None
        await self._inflight.acquire()  # backpressure: at most max_in_flight unconfirmed
        loop = asyncio.get_running_loop()
        token = self.nc._nuid.next().decode()
        future: asyncio.Future[bool] = loop.create_future()
        self._replies[token] = future
        timer = loop.call_later(PUBLISH_TIMEOUT_S, self._expire, token)
        semaphore = self._inflight

        def settled(_: asyncio.Future[bool]) -> None:
            timer.cancel()
            self._replies.pop(token, None)
            semaphore.release()

        future.add_done_callback(settled)
        try:
            await self.nc.publish(
                raw_subject(self.settings.prefix, event.platform, event.source),
                event.payload,
                reply=self._reply_prefix + token,
                headers=event_headers(event, msg_id),
            )
        except nats.errors.MaxPayloadError:
            future.cancel()
            raise EventRefused(
                f"event of {len(event.payload):,} bytes is larger than the NATS server's max_payload"
            ) from None
        except (nats.errors.Error, OSError) as exc:
            future.set_exception(BusError(f"publishing failed: {exc!r}"))
        return future

    def _expire(self, token: str) -> None:
        future = self._replies.get(token)
        if future is not None and not future.done():
            future.set_exception(BusError(f"no PubAck within {PUBLISH_TIMEOUT_S:.0f} s"))

    async def _on_puback(self, msg: Msg) -> None:
        token = msg.subject[len(self._reply_prefix) :]
        future = self._replies.get(token)
        if future is None or future.done():
            return
        if msg.headers and msg.headers.get("Status") == "503":
            future.set_exception(BusError("no stream takes this subject (503 no responders)"))
            return
        try:
            reply = json.loads(msg.data)
        except ValueError:
            future.set_exception(BusError(f"unreadable PubAck {msg.data[:80]!r}"))
            return
        if "error" in reply:
            error = reply["error"]
            future.set_exception(BusError(f"JetStream refused the event: {error.get('description', error)}"))
            return
        future.set_result(not reply.get("duplicate", False))

    # ------------------------------------------------------------------ consuming
    async def subscribe(self, platform: str, group: str) -> NatsSubscription:
        await self.prepare([platform])
        stream = stream_name(self.settings.prefix, platform)
        try:
            await self._ensure_consumer(stream, group)
            sub = await self.js.pull_subscribe_bind(durable=group, stream=stream)
        except (TimeoutError, nats.errors.Error) as exc:
            raise BusError(f"cannot consume {stream} as {group!r}: {exc!r}") from None
        return NatsSubscription(self, platform, group, sub)

    async def follow_exhausted(
        self, platform: str, group: str, callback: Callable[[Delivery], Awaitable[None]]
    ) -> None:
        """Call back (in one worker of the group) for each message the server stopped
        delivering after ``max_deliver`` deliveries without an acknowledgement."""
        stream = stream_name(self.settings.prefix, platform)

        async def on_advisory(msg: Msg) -> None:
            try:
                advisory = json.loads(msg.data)
                seq, attempts = int(advisory["stream_seq"]), int(advisory.get("deliveries", 0))
                stored = await self.js.get_msg(stream, seq)
            except nats.js.errors.NotFoundError:
                return  # acknowledged or deleted meanwhile
            except (TimeoutError, ValueError, KeyError, TypeError, nats.errors.Error):
                log.exception("cannot read the message of a max-deliveries advisory on %s", stream)
                return
            await callback(StrandedMessage(self, stream, seq, platform, attempts, stored))

        subject = f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{group}"
        self._subscriptions.append(await self.nc.subscribe(subject, queue=f"{group}-exhausted", cb=on_advisory))

    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
        event = delivery.event
        headers = event_headers(event, f"dead:{delivery.msg_id}")
        headers[DEAD_REASON] = quote(reason[:1000], safe=_SAFE + " ")
        headers[DELIVERIES] = str(delivery.attempt)
        await self.prepare([])
        try:
            await self.js.publish(dead_subject(self.settings.prefix, event.platform), event.payload, headers=headers)
        except (TimeoutError, nats.errors.Error) as exc:
            raise BusError(f"cannot publish the dead letter: {exc!r}") from None

    # ------------------------------------------------------------------ alert announcements
    async def announce_alerts(self, latest_alert_id: int) -> None:
        try:
            await self.nc.publish(alerts_subject(self.settings.prefix), str(latest_alert_id).encode())
        except (nats.errors.Error, OSError):
            log.warning("cannot announce new alerts (web processes fall back to polling)")

    async def follow_alerts(self, callback: Callable[[int], None]) -> None:
        async def on_alerts(msg: Msg) -> None:
            try:
                callback(int(msg.data))
            except ValueError:
                return

        self._subscriptions.append(await self.nc.subscribe(alerts_subject(self.settings.prefix), cb=on_alerts))

    # ------------------------------------------------------------------ leases
    async def _leases(self, ttl_s: float) -> Any:
        if self._lease_bucket is None:
            bucket = f"{self.settings.prefix.upper().replace('-', '_')}_LEASES"
            try:
                self._lease_bucket = await self.js.key_value(bucket)
            except nats.js.errors.BucketNotFoundError:
                self._lease_bucket = await self.js.create_key_value(
                    bucket=bucket, history=1, ttl=ttl_s, replicas=self.settings.replicas
                )
        return self._lease_bucket

    async def acquire_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        """A key in the KV bucket ``<PREFIX>_LEASES`` whose entries expire after ``ttl_s``:
        created when absent, renewed (compare-and-set on its revision) by its holder."""
        try:
            kv = await self._leases(ttl_s)
            try:
                entry = await kv.get(name)
            except nats.js.errors.KeyNotFoundError:
                await kv.create(name, holder.encode())
                return True
            if (entry.value or b"").decode() != holder:
                return False
            await kv.update(name, holder.encode(), last=entry.revision)
            return True
        except nats.js.errors.KeyWrongLastSequenceError:
            return False  # another holder was quicker
        except (TimeoutError, nats.errors.Error) as exc:
            log.warning("lease %s: %s", name, exc)
            return False

    async def release_lease(self, name: str, holder: str) -> None:
        with contextlib.suppress(TimeoutError, nats.errors.Error):
            kv = await self._leases(60.0)
            entry = await kv.get(name)
            if (entry.value or b"").decode() == holder:
                await kv.delete(name, last=entry.revision)

    # ------------------------------------------------------------------ for operators and tests
    async def stream_messages(self, platform: str) -> int:
        info = await self.js.stream_info(stream_name(self.settings.prefix, platform))
        return int(info.state.messages)

    async def delete_streams(self, platforms: list[str]) -> None:
        """Delete this prefix's streams (tests clean up with it)."""
        prefix = self.settings.prefix
        for name in [*(stream_name(prefix, p) for p in platforms), dead_stream_name(prefix)]:
            with contextlib.suppress(nats.js.errors.NotFoundError):
                await self.js.delete_stream(name)
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await self.js.delete_key_value(f"{prefix.upper().replace('-', '_')}_LEASES")
