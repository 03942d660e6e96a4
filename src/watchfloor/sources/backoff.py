"""Exponential backoff with jitter, shared by every live source.

The n-th consecutive failure waits a random time in ``[c/2, c]`` where
``c = min(cap_s, base_s * factor**n)`` ("equal jitter": never a thundering herd of
clients reconnecting in step, never a zero wait). A success resets the count.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class Backoff:
    base_s: float = 1.0
    cap_s: float = 300.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay(self) -> float:
        """The wait before the next attempt; counts one more failure."""
        ceiling = min(self.cap_s, self.base_s * self.factor ** min(self.failures, 64))
        self.failures += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0


async def real_sleep(seconds: float) -> None:
    await asyncio.sleep(max(0.0, seconds))
