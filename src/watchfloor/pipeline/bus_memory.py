"""The in-process bus: :class:`~watchfloor.pipeline.bus.Bus` inside one process.

``memory://`` is the embedded deployment. ``watchfloor run`` itself hands each source's
events to its pipeline through the pipeline's own bounded queue (an append per event,
with the source's cursor committed in the same transaction as the data); this module is
the same contract as the NATS bus, kept in memory, for code that speaks the
:class:`~watchfloor.pipeline.bus.Bus` interface inside one process (an ingest loop and a
worker on one event loop, and the tests of both against the contract).

It behaves like the JetStream layout (docs/deploy.md) in everything a caller can see: one
work queue per platform shared by every subscription (whatever the group name), a
duplicate window on message ids, explicit acknowledgement with an ack wait, ``nak`` with
a delay, ``in_progress``, ``max_deliver`` (a message delivered that often and still not
acknowledged is handed to :meth:`MemoryBus.follow_exhausted` callbacks instead of being
delivered again), and a dead-letter list standing for the dead-letter subject. It is not
durable: nothing survives the process, so a publisher must not move a source's cursor
on its word (``durable`` is False).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from watchfloor.model import RawEvent
from watchfloor.pipeline.bus import BusError, BusSettings, Delivery

QUEUE_LIMIT = 10_000  # waiting events per platform before publishing waits (backpressure)
_POLL_S = 0.02


@dataclass(slots=True)
class _Message:
    seq: int
    event: RawEvent
    msg_id: str
    deliveries: int = 0
    deadline: float = 0.0  # monotonic time its current delivery expires
    due: float = 0.0  # monotonic time a nak'ed message may go out again


@dataclass(slots=True)
class _Queue:
    ready: deque[_Message] = field(default_factory=deque)
    delayed: list[_Message] = field(default_factory=list)
    unacked: dict[int, _Message] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


class MemoryDelivery:
    def __init__(self, bus: MemoryBus, queue: _Queue, message: _Message) -> None:
        self._bus, self._queue, self._message = bus, queue, message
        self.event = message.event
        self.msg_id = message.msg_id
        self.attempt = message.deliveries
        self._done = False

    def _settle(self) -> bool:
        if self._done or self._queue.unacked.get(self._message.seq) is not self._message:
            return False  # already settled, or expired and handed out again
        self._done = True
        del self._queue.unacked[self._message.seq]
        return True

    async def ack(self) -> None:
        self._settle()

    async def term(self) -> None:
        self._settle()

    async def nak(self, delay_s: float = 0.0) -> None:
        if self._settle():
            self._message.due = time.monotonic() + max(0.0, delay_s)
            self._queue.delayed.append(self._message)

    async def in_progress(self) -> None:
        if not self._done and self._queue.unacked.get(self._message.seq) is self._message:
            self._message.deadline = time.monotonic() + self._bus.settings.ack_wait_s


class _Exhausted:
    """A message that used up its deliveries: acknowledging it forgets it."""

    def __init__(self, message: _Message) -> None:
        self.event = message.event
        self.msg_id = message.msg_id
        self.attempt = message.deliveries

    async def ack(self) -> None:
        return None

    async def term(self) -> None:
        return None

    async def nak(self, delay_s: float = 0.0) -> None:
        return None

    async def in_progress(self) -> None:
        return None


class MemorySubscription:
    def __init__(self, bus: MemoryBus, platform: str) -> None:
        self._bus = bus
        self.platform = platform

    async def fetch(self, max_messages: int, timeout_s: float) -> list[Delivery]:
        deadline = time.monotonic() + timeout_s
        queue = self._bus._queue(self.platform)
        while True:
            await self._bus._requeue(self.platform, queue)
            if queue.ready:
                out: list[Delivery] = []
                now = time.monotonic()
                while queue.ready and len(out) < max_messages:
                    message = queue.ready.popleft()
                    message.deliveries += 1
                    message.deadline = now + self._bus.settings.ack_wait_s
                    queue.unacked[message.seq] = message
                    out.append(MemoryDelivery(self._bus, queue, message))
                self._bus._room.set()
                return out
            left = deadline - time.monotonic()
            if left <= 0:
                return []
            queue.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(queue.arrived.wait(), min(left, _POLL_S * 5))

    async def pending(self) -> int | None:
        queue = self._bus._queue(self.platform)
        return len(queue.ready) + len(queue.delayed) + len(queue.unacked)

    async def close(self) -> None:
        return None


class MemoryBus:
    """The :class:`~watchfloor.pipeline.bus.Bus` contract in one process (not durable)."""

    durable = False

    def __init__(self, settings: BusSettings | None = None, *, queue_limit: int = QUEUE_LIMIT) -> None:
        self.url = "memory://"
        self.settings = settings or BusSettings()
        self.queue_limit = queue_limit
        self._queues: dict[str, _Queue] = {}
        self._seen: OrderedDict[str, float] = OrderedDict()  # msg id -> monotonic time first seen
        self._seq = itertools.count(1)
        self._room = asyncio.Event()
        self._room.set()
        self._alert_followers: list[Callable[[int], None]] = []
        self._exhausted_followers: dict[str, list[Callable[[Delivery], Awaitable[None]]]] = {}
        self.dead: list[tuple[str, RawEvent, str]] = []  # (subject, event, reason): the dead-letter subject
        self.exhausted: list[RawEvent] = []  # delivered max_deliver times without an acknowledgement
        self.closed = False
        self._leases: dict[str, tuple[str, float]] = {}  # name -> (holder, monotonic expiry)

    # ------------------------------------------------------------------ lifecycle
    async def connect(self) -> None:
        self.closed = False

    async def prepare(self, platforms: list[str]) -> None:
        for platform in platforms:
            self._queue(platform)

    async def close(self) -> None:
        self.closed = True

    async def check(self) -> None:
        if self.closed:
            raise BusError("the in-process bus is closed")

    async def flush(self) -> None:
        return None

    # ------------------------------------------------------------------ publishing
    async def publish(self, event: RawEvent, msg_id: str) -> Awaitable[bool]:
        await self.check()
        queue = self._queue(event.platform)
        while len(queue.ready) + len(queue.delayed) + len(queue.unacked) >= self.queue_limit:
            self._room.clear()
            await self._room.wait()
        now = time.monotonic()
        window = self.settings.duplicate_window_s
        while self._seen and now - next(iter(self._seen.values())) > window:
            self._seen.popitem(last=False)
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        if msg_id in self._seen:
            done.set_result(False)
            return done
        self._seen[msg_id] = now
        queue.ready.append(_Message(next(self._seq), event, msg_id))
        queue.arrived.set()
        done.set_result(True)
        return done

    # ------------------------------------------------------------------ consuming
    async def subscribe(self, platform: str, group: str) -> MemorySubscription:
        await self.check()
        self._queue(platform)
        return MemorySubscription(self, platform)

    async def follow_exhausted(
        self, platform: str, group: str, callback: Callable[[Delivery], Awaitable[None]]
    ) -> None:
        self._exhausted_followers.setdefault(platform, []).append(callback)

    async def dead_letter(self, delivery: Delivery, reason: str) -> None:
        self.dead.append((f"{self.settings.prefix}.dead.{delivery.event.platform}", delivery.event, reason))

    # ------------------------------------------------------------------ alert announcements
    async def announce_alerts(self, latest_alert_id: int) -> None:
        for callback in list(self._alert_followers):
            callback(latest_alert_id)

    async def follow_alerts(self, callback: Callable[[int], None]) -> None:
        self._alert_followers.append(callback)

    # ------------------------------------------------------------------ leases
    async def acquire_lease(self, name: str, holder: str, ttl_s: float) -> bool:
        now = time.monotonic()
        current = self._leases.get(name)
        if current is not None and current[0] != holder and current[1] > now:
            return False
        self._leases[name] = (holder, now + ttl_s)
        return True

    async def release_lease(self, name: str, holder: str) -> None:
        if self._leases.get(name, ("", 0.0))[0] == holder:
            del self._leases[name]

    # ------------------------------------------------------------------ internals
    def _queue(self, platform: str) -> _Queue:
        queue = self._queues.get(platform)
        if queue is None:
            queue = self._queues[platform] = _Queue()
        return queue

    async def _requeue(self, platform: str, queue: _Queue) -> None:
        """Expired deliveries and due nak'ed messages go out again, or are exhausted."""
        now = time.monotonic()
        back = [m for m in queue.unacked.values() if m.deadline <= now]
        for message in back:
            del queue.unacked[message.seq]
            message.due = now
            queue.delayed.append(message)
        if not queue.delayed:
            return
        due = sorted((m for m in queue.delayed if m.due <= now), key=lambda m: m.seq)
        queue.delayed = [m for m in queue.delayed if m.due > now]
        again = []
        for message in due:
            if message.deliveries < self.settings.max_deliver:
                again.append(message)
                continue
            self.exhausted.append(message.event)
            for callback in self._exhausted_followers.get(platform, []):
                await callback(_Exhausted(message))
            self._room.set()
        queue.ready.extendleft(reversed(again))  # redeliveries go out before new messages, as in JetStream
