"""Language codes as watches use them: ``pt`` covers ``pt``, ``pt-BR`` and ``pt_PT``."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["is_language_code", "language_matches", "normalise_language"]

_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}(?:-[a-z0-9]{1,8})*")


def normalise_language(code: str) -> str:
    """``code`` lower-cased with ``_`` written as ``-`` (``pt_BR`` -> ``pt-br``)."""
    return code.strip().lower().replace("_", "-")


def is_language_code(code: str) -> bool:
    """True for a BCP 47 style code such as ``en``, ``pt-BR`` or ``zh-Hant``."""
    return _LANGUAGE_CODE.fullmatch(normalise_language(code)) is not None


def language_matches(wanted: str, langs: Iterable[str]) -> bool:
    """True if any of ``langs`` is ``wanted`` or a subtag of it (``pt`` matches ``pt-br``).

    Both sides must already be normalised (:func:`normalise_language`).  A more
    specific ``wanted`` (``pt-br``) does not match a less specific language (``pt``).
    """
    return any(lang == wanted or lang.startswith(wanted + "-") for lang in langs)
