"""The in-memory login throttle, with a fake clock."""

from __future__ import annotations

import pytest

from watchfloor.web import throttle as module
from watchfloor.web.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_five_failures_block_the_pair_until_the_window_passes() -> None:
    clock = Clock()
    throttle = LoginThrottle(max_failures=5, window_s=300, clock=clock)
    for _ in range(4):
        throttle.record_failure("ana", "10.0.0.1")
        clock.now += 10
    assert throttle.retry_after("ana", "10.0.0.1") is None
    throttle.record_failure("ana", "10.0.0.1")
    # blocked until the FIRST of the five failures is 300 s old
    assert throttle.retry_after("ana", "10.0.0.1") == 300 - 40
    assert throttle.retry_after("ANA ", "10.0.0.1") == 260  # names are compared case-insensitively
    assert throttle.retry_after("ana", "10.0.0.2") is None  # another address
    assert throttle.retry_after("bo", "10.0.0.1") is None  # another account
    clock.now += 260
    assert throttle.retry_after("ana", "10.0.0.1") is None


def test_a_success_clears_the_pair() -> None:
    throttle = LoginThrottle(max_failures=2, clock=Clock())
    throttle.record_failure("ana", "h")
    throttle.record_success("ana", "h")
    throttle.record_failure("ana", "h")
    assert throttle.retry_after("ana", "h") is None


def test_memory_stays_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(module, "MAX_TRACKED", 50)
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    for i in range(200):
        clock.now += 1
        throttle.record_failure(f"user{i}", "h")
    assert len(throttle._failures) <= 51
    assert throttle.retry_after("user199", "h") is None  # one failure: not blocked
