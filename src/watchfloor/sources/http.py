"""HTTP for polling sources: retries with backoff, rate limits honoured, credentials kept out of errors.

:class:`PoliteClient` wraps one ``httpx.AsyncClient``. ``get`` returns a response the
caller can use (2xx, 304) and keeps trying, with :class:`~watchfloor.sources.backoff.Backoff`,
through what is temporary:

- connection errors, timeouts and slow servers (httpx's connect/read timeouts);
- ``5xx`` answers;
- ``429 Too Many Requests``: it waits as ``Retry-After`` or the rate-limit headers say.

Rate-limit headers are also read on every successful answer: when a platform says no
requests are left in the window, the next request waits for the window's reset
instead of earning a 429. Understood headers: ``Retry-After`` (seconds or HTTP date),
``X-RateLimit-Remaining``/``X-RateLimit-Reset`` (Mastodon: an ISO time; Reddit:
seconds until the reset; others: epoch seconds).

Any other ``4xx`` raises :class:`HttpRefused`; the source decides whether that is fatal
(bad credentials) or not.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from watchfloor.model import utcnow
from watchfloor.sources.backoff import Backoff, Sleep, real_sleep
from watchfloor.sources.health import SourceHealth

USER_AGENT = "watchfloor/0.1 (+https://github.com/watchfloor; public-interest monitoring)"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
MAX_RATE_LIMIT_WAIT_S = 3600.0


class HttpRefused(Exception):
    """The server refused the request in a way retrying will not fix (a 4xx but 429)."""

    def __init__(self, status: int, url: str, detail: str, body: str = "") -> None:
        super().__init__(f"HTTP {status} from {url}: {detail}")
        self.status = status
        self.url = url
        self.detail = detail
        self.body = body  # the start of the answer, for platforms that explain errors in JSON


def new_client(*, timeout: httpx.Timeout | float = DEFAULT_TIMEOUT, user_agent: str = USER_AGENT) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=timeout,
        headers={"User-Agent": user_agent},
        follow_redirects=True,
        limits=httpx.Limits(max_connections=4, max_keepalive_connections=2),
    )


class PoliteClient:
    """GET with retries, backoff and rate limits, reporting to a source's health."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        health: SourceHealth,
        *,
        backoff: Backoff | None = None,
        sleep: Sleep = real_sleep,
        clock: Callable[[], datetime] = utcnow,
        max_wait_s: float = MAX_RATE_LIMIT_WAIT_S,
        max_attempts: int | None = None,
    ) -> None:
        self.client = client
        self.health = health
        self.backoff = backoff or Backoff()
        self.sleep = sleep
        self.clock = clock
        self.max_wait_s = max_wait_s
        self.max_attempts = max_attempts
        self.requests = 0
        self.not_before: datetime | None = None  # set when the platform said the window is used up

    async def get(
        self,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        return await self.request("GET", url, params=params, headers=headers)

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
    ) -> httpx.Response:
        attempts = 0
        while True:
            await self._wait_for_window()
            attempts += 1
            endpoint = _without_query(url)
            try:
                self.requests += 1
                response = await self.client.request(method, url, params=params, headers=headers, data=data, auth=auth)
            except httpx.TransportError as exc:  # connect errors, timeouts, broken reads
                await self._retry(f"{type(exc).__name__} talking to {endpoint}: {exc}", attempts)
                continue
            status = response.status_code
            if status == 429:
                now = self.clock()
                wait = retry_after_s(response.headers, now) or rate_limit_reset_s(response.headers, now)
                wait = self.backoff.next_delay() if wait is None else min(max(wait, 0.0), self.max_wait_s)
                until = self.clock() + timedelta(seconds=wait)
                self.health.rate_limited(until, f"HTTP 429 from {endpoint}: waiting {wait:.0f} s")
                self._check_attempts(attempts, f"HTTP 429 from {endpoint}")
                await self.sleep(wait)
                continue
            if status >= 500:
                await self._retry(f"HTTP {status} from {endpoint}", attempts, response.headers)
                continue
            if status >= 400:
                raise HttpRefused(status, endpoint, _short_body(response), response.text[:4096])
            self.backoff.reset()
            self.health.connected(endpoint)
            self._note_window(response.headers)
            return response

    async def _retry(self, reason: str, attempts: int, headers: Mapping[str, str] | None = None) -> None:
        self.health.disconnected(reason)
        self._check_attempts(attempts, reason)
        wait = retry_after_s(headers, self.clock()) if headers is not None else None
        await self.sleep(min(wait, self.max_wait_s) if wait is not None else self.backoff.next_delay())

    def _check_attempts(self, attempts: int, reason: str) -> None:
        if self.max_attempts is not None and attempts >= self.max_attempts:
            raise HttpRefused(0, "", f"gave up after {attempts} attempts: {self.health.redact(reason)}")

    def _note_window(self, headers: Mapping[str, str]) -> None:
        remaining = _number(headers.get("x-ratelimit-remaining"))
        if remaining is None or remaining >= 1:
            return
        wait = rate_limit_reset_s(headers, self.clock())
        if wait is not None and wait > 0:
            wait = min(wait, self.max_wait_s)
            self.not_before = self.clock() + timedelta(seconds=wait)

    async def _wait_for_window(self) -> None:
        if self.not_before is None:
            return
        wait = (self.not_before - self.clock()).total_seconds()
        until, self.not_before = self.not_before, None
        if wait > 0:
            self.health.rate_limited(until, f"rate-limit window used up: waiting {wait:.0f} s")
            await self.sleep(wait)


def retry_after_s(headers: Mapping[str, str] | None, now: datetime) -> float | None:
    """Seconds to wait as ``Retry-After`` says (a number of seconds or an HTTP date)."""
    if headers is None:
        return None
    value = headers.get("retry-after")
    if not value:
        return None
    number = _number(value)
    if number is not None:
        return max(number, 0.0)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


def rate_limit_reset_s(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds until the rate-limit window resets, from ``X-RateLimit-Reset``.

    A small number is seconds from now (Reddit), a big one epoch seconds (GitHub
    style), anything else an ISO 8601 time (Mastodon).
    """
    value = headers.get("x-ratelimit-reset")
    if not value:
        return None
    number = _number(value)
    if number is not None:
        if number > 1_000_000_000:
            return max(number - now.timestamp(), 0.0)
        return max(number, 0.0)
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]


def _short_body(response: httpx.Response) -> str:
    text = response.text[:200] if response.content else response.reason_phrase
    return " ".join(text.split())
