"""Sentiment (VADER) and the per-text signals that ``watchfloor signals score`` prints."""

from __future__ import annotations

import pytest

from watchfloor.signals.language import LanguageGuess
from watchfloor.signals.sentiment import SentimentAnalyzer
from watchfloor.signals.stage import SignalStage, english


@pytest.fixture(scope="module")
def stage() -> SignalStage:
    return SignalStage()


def test_vader_orders_tone() -> None:
    vader = SentimentAnalyzer()
    good = vader.compound("What a wonderful, kind and helpful team of volunteers. Thank you all!")
    neutral = vader.compound("The meeting is at the town hall on Tuesday.")
    bad = vader.compound("This is a terrible, awful mess and I am furious about it.")
    assert good > 0.5 and bad < -0.5 and -0.05 <= neutral <= 0.05


def test_english_only_signals(stage: SignalStage) -> None:
    en = stage.text_signals("You are a stupid idiot and everyone hates you.")
    assert en.language == "en"
    assert en.sentiment is not None and en.sentiment < 0
    assert en.toxicity is not None and en.toxicity > 0.5
    assert en.threat is not None and 0.0 <= en.threat <= 1.0
    fr = stage.text_signals("Le pont de la route de la rivière est fermé ce soir.")
    assert fr.language == "fr"
    assert fr.sentiment is None and fr.toxicity is None and fr.threat is None
    empty = stage.text_signals("")
    assert empty.to_dict() == {
        "language": None,
        "language_confidence": None,
        "sentiment": None,
        "toxicity": None,
        "threat": None,
    }


def test_a_confident_guess_overrides_the_declared_language_for_signals() -> None:
    assert english("en", None)
    assert english("en-GB", LanguageGuess("en", 0.3))
    assert not english("en", LanguageGuess("fr", 0.9))
    assert english(None, LanguageGuess("en", 0.2))
    assert not english(None, None)
