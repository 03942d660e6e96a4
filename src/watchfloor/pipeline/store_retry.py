"""Which store errors are worth waiting out, and the one retry loop that waits them out, for
the processes that must never drop work.

A worker, an ingest process or the embedded pipeline that cannot write to the store keeps
what it holds (the worker tells the bus it is still working on its messages; the embedded
pipeline stops reading its source, so its queue and the source hold the backlog) and tries
again with exponential backoff and jitter, instead of failing the events: a locked or full
SQLite file, a PostgreSQL server that restarts, a serialisation failure or a deadlock all
pass. The stores raise :class:`~watchfloor.store.StoreUnavailable` for these. Anything else
is a bug or bad data: the embedded pipeline stops with it, a worker handles it as a failed
delivery (redelivered, then a dead letter).

An outage is logged twice, not once per attempt: a warning when the first attempt fails,
and a line saying how long it lasted and how many retries it took when the store answers
again. Callers count every retry (metrics) and note the outage in the source's health.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from watchfloor.sources.backoff import Backoff
from watchfloor.store import StoreUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")


def _transient() -> tuple[type[BaseException], ...]:
    # StoreUnavailable: what the stores raise for these (store/sqlite.py, store/pg_connection.py);
    # the driver's own errors and OSError for reads that go around a store's write path.
    errors: list[type[BaseException]] = [StoreUnavailable, sqlite3.OperationalError, OSError, TimeoutError]
    try:  # PostgreSQL: connection loss, admin shutdown, serialisation failures and deadlocks
        import psycopg
    except ImportError:
        pass
    else:
        errors.append(psycopg.OperationalError)
    return tuple(errors)


TRANSIENT_STORE_ERRORS: tuple[type[BaseException], ...] = _transient()


class StoreStillUnavailable(Exception):
    """The caller is stopping and the store has not come back within the grace period:
    the work in hand is given up (it was not stored; the source's cursor or the bus still
    has it)."""


class StoreRetry:
    """Runs store work again and again while it fails with a transient error.

    ``on_retry(exc)`` is called on every failed attempt (count it), ``on_outage(exc)`` once
    when an outage starts (note it in health), ``on_recovery(seconds, retries)`` once when
    the store answers again. ``stopping()`` says the caller wants to stop: retries go on
    for ``stop_grace_s`` more, then :class:`StoreStillUnavailable` is raised.
    """

    def __init__(
        self,
        what: str,
        *,
        base_s: float = 0.2,
        cap_s: float = 5.0,
        stop_grace_s: float = 10.0,
        on_retry: Callable[[BaseException], None] | None = None,
        on_outage: Callable[[BaseException], None] | None = None,
        on_recovery: Callable[[float, int], None] | None = None,
        stopping: Callable[[], bool] | None = None,
    ) -> None:
        self.what = what
        self.backoff = Backoff(base_s=base_s, cap_s=cap_s)  # exponential, with jitter
        self.stop_grace_s = stop_grace_s
        self.on_retry = on_retry
        self.on_outage = on_outage
        self.on_recovery = on_recovery
        self.stopping = stopping or (lambda: False)
        self.retries = 0  # over the caller's lifetime
        self.outages = 0
        self.outage_since: float | None = None  # monotonic time the current outage began
        self._outage_retries = 0
        self._stop_seen_at: float | None = None

    @property
    def unavailable(self) -> bool:
        return self.outage_since is not None

    async def call(self, work: Callable[[], Awaitable[T]]) -> T:
        """``await work()``, again after each transient failure, until it succeeds."""
        while True:
            try:
                result = await work()
            except TRANSIENT_STORE_ERRORS as exc:
                self._failed(exc)
                if self.stopping():
                    now = time.monotonic()
                    self._stop_seen_at = self._stop_seen_at or now
                    if now - self._stop_seen_at > self.stop_grace_s:
                        raise StoreStillUnavailable(f"{self.what}: the store is still unavailable: {exc}") from exc
                await asyncio.sleep(self.backoff.next_delay())
                continue
            self._succeeded()
            return result

    def _failed(self, exc: BaseException) -> None:
        self.retries += 1
        self._outage_retries += 1
        if self.on_retry is not None:
            self.on_retry(exc)
        if self.outage_since is None:
            self.outage_since = time.monotonic()
            self.outages += 1
            log.warning(
                "%s: the store is unavailable (%s: %s); keeping the work in hand and retrying with backoff",
                self.what, type(exc).__name__, exc,
            )  # fmt: skip
            if self.on_outage is not None:
                self.on_outage(exc)

    def _succeeded(self) -> None:
        self.backoff.reset()
        if self.outage_since is None:
            return
        lasted = time.monotonic() - self.outage_since
        retries = self._outage_retries
        self.outage_since, self._outage_retries = None, 0
        log.warning("%s: the store is available again after %.1f s and %d retries", self.what, lasted, retries)
        if self.on_recovery is not None:
            self.on_recovery(lasted, retries)
