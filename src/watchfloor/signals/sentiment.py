"""Sentiment with VADER (rule and lexicon based, English, lexicon shipped in the package).

The compound score runs from -1 (most negative) to 1 (most positive); VADER's authors
call -0.05 .. 0.05 neutral. It describes the tone of a text, nothing else: it is shown
beside an alert and does not enter the score (docs/signals.md).
"""

from __future__ import annotations

import threading

__all__ = ["SentimentAnalyzer"]


class SentimentAnalyzer:
    """``compound(text)`` -> VADER's compound score, rounded to 4 places."""

    def __init__(self) -> None:
        self._vader = None
        self._lock = threading.Lock()

    def _load(self):  # returns VADER's analyzer
        with self._lock:
            if self._vader is None:
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

                self._vader = SentimentIntensityAnalyzer()
        return self._vader

    def compound(self, text: str) -> float:
        vader = self._vader or self._load()
        return round(float(vader.polarity_scores(text[:2_000])["compound"]), 4)
