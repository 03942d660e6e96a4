"""Bursts: a watch, or one term of it, matching far more often than it usually does.

Alerts are counted in fixed windows (``window_s``, default 5 minutes, aligned to the
epoch) per watch and per (watch, term). Each series keeps an exponentially weighted
moving average of its counts and of their variance (``alpha``, default 0.1: roughly the
last ten windows), starting from its first window's count. When a window closes, its count ``x`` is a **spike** if

    x >= min_count   and   x > baseline + k * sd,   sd = max(1, sqrt(max(variance, baseline)))

(the variance is never taken below the baseline: counts are at least as noisy as a
Poisson process), and only after ``warmup`` windows of history. The spike records the
window, the count, the baseline (the EWMA before this window), the threshold and the
excess (count - baseline). Then the window joins the average like any other.

Time is the posts' own time (``created_at``, never later than the clock), so a replayed
recording shows the bursts it had. A window closes once the newest post seen by the
pipeline is ``lateness_s`` past its end; alerts for a closed window are counted as late
and left out. Windows without alerts count as zero. The state lives in memory: after a
restart the baselines warm up again.

Spikes are aggregate by construction (how many alerts in a window): never about a person.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from watchfloor.model import Spike

__all__ = ["BurstDetector", "BurstSettings"]

MAX_IDLE_DECAY = 200  # zero windows applied one by one; beyond that the baseline is ~0 anyway


@dataclass(frozen=True, slots=True)
class BurstSettings:
    window_s: int = 300
    alpha: float = 0.1
    k: float = 3.0
    min_count: int = 5
    warmup: int = 6
    lateness_s: int = 60
    max_series: int = 20_000  # watches x terms followed at once; beyond, new terms are not followed
    per_term: bool = True


@dataclass(slots=True)
class _Series:
    mean: float = 0.0
    var: float = 0.0
    windows: int = 0  # closed windows seen (zeros included)
    last_window: int = -1  # index of the newest closed window folded in
    pending: dict[int, int] = field(default_factory=dict)  # window index -> count, not yet closed


class BurstDetector:
    """``observe`` alerts as they are raised, ``close`` windows as time moves on."""

    def __init__(self, settings: BurstSettings | None = None) -> None:
        self.settings = settings or BurstSettings()
        self._series: dict[tuple[int, str], _Series] = {}
        self._closed_upto: int | None = None  # windows below this index are closed
        self._lock = threading.Lock()
        self.late = 0
        self.dropped_series = 0

    def _window(self, at: datetime) -> int:
        return int(at.timestamp() // self.settings.window_s)

    def _start(self, index: int) -> datetime:
        return datetime.fromtimestamp(index * self.settings.window_s, UTC)

    def observe(self, watch_id: int, terms: Iterable[str], at: datetime) -> None:
        """Count one alert of ``watch_id`` (and of each matched term) at time ``at``."""
        index = self._window(at)
        with self._lock:
            if self._closed_upto is not None and index < self._closed_upto:
                self.late += 1
                return
            keys = [(watch_id, "")]
            if self.settings.per_term:
                keys.extend((watch_id, term) for term in sorted(set(terms)) if term)
            for key in keys:
                series = self._series.get(key)
                if series is None:
                    if len(self._series) >= self.settings.max_series:
                        self.dropped_series += 1
                        continue
                    series = self._series[key] = _Series()
                series.pending[index] = series.pending.get(index, 0) + 1

    def close(self, watermark: datetime, now: datetime) -> list[Spike]:
        """Close every window that ended ``lateness_s`` before ``watermark``; return its spikes."""
        upto = self._window(watermark - timedelta(seconds=self.settings.lateness_s))
        spikes: list[Spike] = []
        with self._lock:
            if self._closed_upto is None:
                # the first watermark: earlier windows are history we never saw whole
                lowest = min((i for s in self._series.values() for i in s.pending), default=upto)
                self._closed_upto = min(lowest, upto)
            if upto <= self._closed_upto:
                return spikes
            for key, series in self._series.items():
                for index in sorted(i for i in series.pending if i < upto):
                    count = series.pending.pop(index)
                    spike = self._fold(series, index, count)
                    if spike is not None:
                        baseline, threshold = spike
                        spikes.append(
                            Spike(
                                watch_id=key[0],
                                term=key[1],
                                window_start=self._start(index),
                                window_end=self._start(index + 1),
                                count=count,
                                baseline=round(baseline, 3),
                                threshold=round(threshold, 3),
                                excess=round(count - baseline, 3),
                                detected_at=now,
                            )
                        )
                self._decay(series, upto - 1)
            self._closed_upto = upto
        spikes.sort(key=lambda s: (s.window_start, s.watch_id, s.term))
        return spikes

    def _decay(self, series: _Series, through: int) -> None:
        """Fold zero counts for the windows after ``series.last_window`` up to ``through``."""
        if series.last_window < 0:
            return  # not started: the series begins with its first alert
        idle = through - series.last_window
        a = self.settings.alpha
        for _ in range(min(idle, MAX_IDLE_DECAY)):
            diff = -series.mean
            series.mean += a * diff
            series.var = (1 - a) * (series.var + diff * a * diff)
        if idle > MAX_IDLE_DECAY:
            series.mean = series.var = 0.0
        series.windows += max(0, idle)
        series.last_window = max(series.last_window, through)

    def _fold(self, series: _Series, index: int, count: int) -> tuple[float, float] | None:
        """Fold the window ``index`` into ``series``; (baseline, threshold) if it was a spike."""
        self._decay(series, index - 1)
        if series.windows == 0:  # a series starts at its first count, not at zero
            series.mean, series.var, series.windows, series.last_window = float(count), 0.0, 1, index
            return None
        s = self.settings
        baseline = series.mean
        sd = max(1.0, math.sqrt(max(series.var, baseline)))
        threshold = baseline + s.k * sd
        is_spike = series.windows >= s.warmup and count >= s.min_count and count > threshold
        diff = count - series.mean
        series.mean += s.alpha * diff
        series.var = (1 - s.alpha) * (series.var + diff * s.alpha * diff)
        series.windows += 1
        series.last_window = index
        return (baseline, threshold) if is_spike else None

    def baseline(self, watch_id: int, term: str = "") -> float | None:
        """The current EWMA of a series (None if it is not followed)."""
        series = self._series.get((watch_id, term))
        return None if series is None else round(series.mean, 3)
