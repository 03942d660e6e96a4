"""Bursts against an EWMA baseline: a spike shows its window, baseline, threshold and excess."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from watchfloor.signals.bursts import BurstDetector, BurstSettings

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
SETTINGS = BurstSettings(window_s=60, alpha=0.2, k=3.0, min_count=5, warmup=5, lateness_s=0)


def feed(detector: BurstDetector, counts: list[int], term: str = "flood") -> list:
    spikes = []
    for minute, n in enumerate(counts):
        for k in range(n):
            detector.observe(7, [term], T0 + timedelta(minutes=minute, seconds=k % 60))
        spikes += detector.close(T0 + timedelta(minutes=minute + 1), T0)
    return spikes


def test_a_burst_after_a_steady_baseline_is_a_spike() -> None:
    detector = BurstDetector(SETTINGS)
    spikes = feed(detector, [2, 3, 2, 2, 3, 2, 2, 25, 2])
    whole = [s for s in spikes if s.term == ""]
    assert len(whole) == 1
    s = whole[0]
    assert (s.watch_id, s.count) == (7, 25)
    assert s.window_start == T0 + timedelta(minutes=7) and s.window_end == T0 + timedelta(minutes=8)
    assert 2.0 <= s.baseline <= 2.6
    assert s.threshold > s.baseline and s.count > s.threshold
    assert s.excess == round(s.count - s.baseline, 3)
    assert {x.term for x in spikes} == {"", "flood"}


def test_no_spike_during_warm_up_below_min_count_or_within_noise() -> None:
    assert feed(BurstDetector(SETTINGS), [0, 40]) == []  # no history yet
    assert feed(BurstDetector(SETTINGS), [0, 0, 0, 0, 0, 0, 0, 4]) == []  # fewer than min_count
    assert feed(BurstDetector(SETTINGS), [20, 24, 18, 22, 21, 19, 23, 26]) == []  # within 3 sd


def test_silent_windows_lower_the_baseline() -> None:
    detector = BurstDetector(SETTINGS)
    feed(detector, [10] * 8)
    high = detector.baseline(7)
    detector.close(T0 + timedelta(minutes=30), T0)
    assert detector.baseline(7) < high / 10


def test_late_alerts_are_counted_apart_and_left_out() -> None:
    detector = BurstDetector(SETTINGS)
    feed(detector, [1, 1, 1])
    detector.observe(7, ["flood"], T0)  # window 0 closed long ago
    assert detector.late == 1
