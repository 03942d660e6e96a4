"""How a live source is doing: connection state, reconnects, errors, rate limits and gaps.

A source owns one :class:`SourceHealth` and tells it what happens (``connecting``,
``connected``, ``disconnected``, ``error``, ``rate_limited``, ``gap``). It never talks
to the store: whoever runs the source reads :meth:`SourceHealth.snapshot` and drains
:meth:`SourceHealth.take_gaps` and persists both (the embedded runner does, once a
second and when the source stops). ``on_change`` is called after every change, for
runners that would rather be told than poll.

Events per second, lag and the newest event's time are *not* kept here: the pipeline
commits those with every micro-batch (``source_state``), so they are exactly as fresh
as the data.

Error texts pass through :func:`redact` before they are kept, so a credential that an
HTTP library put into an exception message (``?key=…``, ``Authorization: Bearer …``)
never reaches the store, the logs or the screen.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from watchfloor.model import utcnow

MAX_ERROR_CHARS = 300


class SourceStatus(StrEnum):
    starting = "starting"
    connecting = "connecting"
    connected = "connected"  # a stream is open, or the last poll succeeded
    backoff = "backoff"  # waiting before the next attempt after a failure
    rate_limited = "rate_limited"  # waiting because the platform said so
    failed = "failed"  # stopped by an error it cannot retry (bad credentials, bad config)
    stopped = "stopped"  # ended (a finite source) or was asked to stop
    paused = "paused"  # paused by an operator (`watchfloor source pause`)


@dataclass(frozen=True, slots=True)
class Gap:
    """A stretch of the stream the source knows it did not receive.

    ``since`` is the newest event time it had before the gap, ``until`` the oldest it
    saw after it; either may be unknown.
    """

    source: str
    reason: str
    detected_at: datetime
    since: datetime | None = None
    until: datetime | None = None
    cursor: str | None = None
    id: int | None = None


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """One reading of a source's health, as stored and shown."""

    source: str
    platform: str
    status: SourceStatus
    endpoint: str | None = None  # the URL (without credentials) it talks to now
    connected_since: datetime | None = None
    reconnects: int = 0
    errors: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    gaps: int = 0  # gaps detected since this process started the source
    rate_limited_until: datetime | None = None
    quota_used: int | None = None  # e.g. YouTube Data API units used today
    quota_limit: int | None = None
    updated_at: datetime | None = None


HealthListener = Callable[[HealthSnapshot], None]


class SourceHealth:
    """The mutable health record one source keeps (used from one event loop)."""

    def __init__(
        self,
        source: str,
        platform: str,
        *,
        secrets: Iterable[str] = (),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.source = source
        self.platform = platform
        self.clock = clock
        self.on_change: list[HealthListener] = []
        self._secrets = [s for s in secrets if s]
        self._status = SourceStatus.starting
        self._endpoint: str | None = None
        self._connected_since: datetime | None = None
        self._ever_connected = False
        self._reconnects = 0
        self._errors = 0
        self._last_error: str | None = None
        self._last_error_at: datetime | None = None
        self._gaps = 0
        self._pending_gaps: list[Gap] = []
        self._rate_limited_until: datetime | None = None
        self._quota_used: int | None = None
        self._quota_limit: int | None = None

    def add_secrets(self, *secrets: str) -> None:
        """Values that must never appear in an error text (tokens, keys, passwords)."""
        self._secrets.extend(s for s in secrets if s)

    # ------------------------------------------------------------------ what happened
    def connecting(self, endpoint: str | None) -> None:
        self._status = SourceStatus.connecting
        self._endpoint = redact(endpoint, self._secrets) if endpoint else None
        self._changed()

    def connected(self, endpoint: str | None = None) -> None:
        if endpoint is not None:
            self._endpoint = redact(endpoint, self._secrets)
        if self._status != SourceStatus.connected:
            if self._ever_connected:
                self._reconnects += 1
            self._ever_connected = True
            self._connected_since = self.clock()
        self._status = SourceStatus.connected
        self._rate_limited_until = None
        self._changed()

    def disconnected(self, reason: str) -> None:
        """The connection dropped; the source will retry (it counts as an error)."""
        self._connected_since = None
        self._record_error(reason)
        self._status = SourceStatus.backoff
        self._changed()

    def error(self, message: str) -> None:
        """Something went wrong but the source carries on (a bad frame, a failed poll)."""
        self._record_error(message)
        self._changed()

    def backoff(self) -> None:
        self._status = SourceStatus.backoff
        self._connected_since = None
        self._changed()

    def rate_limited(self, until: datetime, reason: str = "rate limited") -> None:
        self._status = SourceStatus.rate_limited
        self._rate_limited_until = until
        self._last_error = redact(reason, self._secrets)[:MAX_ERROR_CHARS]
        self._last_error_at = self.clock()
        self._changed()

    def quota(self, used: int, limit: int | None) -> None:
        self._quota_used, self._quota_limit = used, limit
        self._changed()

    def gap(
        self,
        reason: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        cursor: str | None = None,
    ) -> Gap:
        """Record that events were (or may have been) missed; the runner persists it."""
        found = Gap(
            source=self.source,
            reason=redact(reason, self._secrets)[:MAX_ERROR_CHARS],
            detected_at=self.clock(),
            since=since,
            until=until,
            cursor=cursor,
        )
        self._gaps += 1
        self._pending_gaps.append(found)
        self._changed()
        return found

    def failed(self, message: str) -> None:
        self._record_error(message)
        self._status = SourceStatus.failed
        self._connected_since = None
        self._changed()

    def stopped(self) -> None:
        self._status = SourceStatus.stopped
        self._connected_since = None
        self._changed()

    # ------------------------------------------------------------------ reading
    @property
    def status(self) -> SourceStatus:
        return self._status

    def snapshot(self) -> HealthSnapshot:
        return HealthSnapshot(
            source=self.source,
            platform=self.platform,
            status=self._status,
            endpoint=self._endpoint,
            connected_since=self._connected_since,
            reconnects=self._reconnects,
            errors=self._errors,
            last_error=self._last_error,
            last_error_at=self._last_error_at,
            gaps=self._gaps,
            rate_limited_until=self._rate_limited_until,
            quota_used=self._quota_used,
            quota_limit=self._quota_limit,
            updated_at=self.clock(),
        )

    def take_gaps(self) -> list[Gap]:
        """The gaps found since the last call (the caller persists them)."""
        gaps, self._pending_gaps = self._pending_gaps, []
        return gaps

    def redact(self, text: str) -> str:
        return redact(text, self._secrets)

    # ------------------------------------------------------------------ plumbing
    def _record_error(self, message: str) -> None:
        self._errors += 1
        self._last_error = redact(message, self._secrets)[:MAX_ERROR_CHARS]
        self._last_error_at = self.clock()

    def _changed(self) -> None:
        if self.on_change:
            snapshot = self.snapshot()
            for listener in self.on_change:
                listener(snapshot)


_SECRET_PARAMS = re.compile(
    r"(?i)\b(key|api_key|apikey|access_token|token|client_secret|password|secret|api_hash)=([^&\s'\"]+)"
)
_AUTH_HEADER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s]+@")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with known secret values, credential query parameters, Authorization
    values and URL user-info replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}=***", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)} ***", text)
    return _URL_USERINFO.sub(lambda m: f"{m.group(1)}***@", text)
