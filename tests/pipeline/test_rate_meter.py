"""The events-per-second figure of a pipeline (pipeline/processing.py RateMeter)."""

from __future__ import annotations

from watchfloor.pipeline.processing import RateMeter


def test_the_rate_is_over_the_window_and_forgets_older_batches() -> None:
    meter = RateMeter(window_s=10.0)
    assert meter.add(500, 0.0) == 0.0  # one batch: no span yet
    assert meter.add(500, 1.0) == 500.0  # 500 events arrived in the second after the first batch
    for t in range(2, 11):
        meter.add(500, float(t))
    assert meter.last_rate == 500.0
    # a slower stream: the old batches leave the window one by one
    for t in range(11, 31):
        meter.add(100, float(t))
    assert meter.last_rate == 100.0
    assert meter.add(0, 100.0) == 0.0  # alone in its window again


def test_an_idle_gap_does_not_inflate_the_rate() -> None:
    meter = RateMeter(window_s=10.0)
    meter.add(1000, 0.0)
    meter.add(1000, 0.5)
    assert meter.last_rate == 2000.0
    assert meter.add(10, 5.0) == (1000 + 10) / 5.0
