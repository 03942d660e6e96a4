"""Language identification: the bundled fastText model, offline, feeding lang: only when confident."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from watchfloor.signals.language import MIN_FILTER_CONFIDENCE, LanguageIdentifier

# Synthetic sentences, written for these tests.
SAMPLES = {
    "en": "The bridge on the river road is closed because of the flooding tonight.",
    "fr": "Le pont de la route de la rivière est fermé à cause des inondations ce soir.",
    "de": "Die Brücke an der Flussstraße ist wegen des Hochwassers heute Abend gesperrt.",
    "es": "El puente de la carretera del río está cerrado por las inundaciones esta noche.",
    "pt": "Não é possível atravessar a ponte: a água já chegou às casas e os bombeiros estão a ajudar.",
    "ja": "今夜は洪水のため川沿いの道路の橋が通行止めです。",
}


@pytest.fixture(scope="module")
def identifier() -> LanguageIdentifier:
    return LanguageIdentifier()


@pytest.mark.parametrize("code", sorted(SAMPLES))
def test_identifies_common_languages(identifier: LanguageIdentifier, code: str) -> None:
    guess = identifier.identify(SAMPLES[code])
    assert guess is not None
    assert guess.code == code
    assert guess.confidence >= MIN_FILTER_CONFIDENCE
    assert identifier.filter_languages(SAMPLES[code]) == (code,)


def test_texts_without_letters_have_no_language(identifier: LanguageIdentifier) -> None:
    for text in ("", "   ", "12:45 !!! 🙂🙂", "https://example.org/a/b @someone #tag"):
        assert identifier.identify(text) is None
        assert identifier.filter_languages(text) == ()


def test_runs_offline_and_never_downloads(tmp_path: Path) -> None:
    """In a fresh process with every socket refused and an empty temp folder: identification
    works and nothing is written to the library's model cache."""
    script = textwrap.dedent(
        """
        import socket

        def refuse(*args, **kwargs):
            raise OSError("network refused by the test")

        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse

        from watchfloor.signals.language import LanguageIdentifier

        guess = LanguageIdentifier().identify("Die Brücke ist wegen des Hochwassers gesperrt.")
        print(guess.code)
        """
    )
    env = {**os.environ, "TMPDIR": str(tmp_path), "FTLANG_CACHE": str(tmp_path / "ftcache")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "de"
    assert not (tmp_path / "ftcache").exists()
    assert not (tmp_path / "fasttext-langdetect").exists()
