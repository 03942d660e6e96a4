"""An in-memory limit on failed password attempts, per (username, client address).

After ``max_failures`` failures within ``window_s`` seconds, further attempts for that
pair are refused — even with the right password — until the oldest failure leaves the
window. A success clears the pair. The state lives in this process only: a restart
forgets it, and several web processes each keep their own (stated in the docs).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

MAX_FAILURES = 5
WINDOW_S = 5 * 60
MAX_TRACKED = 10_000  # pairs remembered at most, so a flood of names cannot exhaust memory


class LoginThrottle:
    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window_s: float = WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._clock = clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(username: str, client: str) -> tuple[str, str]:
        return (username.strip().casefold(), client)

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def retry_after(self, username: str, client: str) -> int | None:
        """Seconds until the pair may try again, or None when it may try now."""
        now = self._clock()
        with self._lock:
            key = self._key(username, client)
            times = self._recent(key, now)
            if not times:
                self._failures.pop(key, None)
                return None
            if len(times) < self.max_failures:
                return None
            return max(1, math.ceil(times[-self.max_failures] + self.window_s - now))

    def record_failure(self, username: str, client: str) -> None:
        now = self._clock()
        with self._lock:
            key = self._key(username, client)
            times = self._recent(key, now)
            times.append(now)
            self._failures[key] = times
            if len(self._failures) > MAX_TRACKED:
                self._forget_stale(now)

    def record_success(self, username: str, client: str) -> None:
        with self._lock:
            self._failures.pop(self._key(username, client), None)

    def _forget_stale(self, now: float) -> None:
        for key in list(self._failures):
            if not self._recent(key, now):
                del self._failures[key]
        while len(self._failures) > MAX_TRACKED:  # still too many: drop the oldest pairs
            oldest = min(self._failures, key=lambda k: self._failures[k][-1])
            del self._failures[oldest]
