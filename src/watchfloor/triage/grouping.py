"""Near-duplicate grouping: the key under which reposts of the same text share one queue item.

v1 keys an alert by a hash of its post's text *normalised*: URLs removed (a repost often
only changes a tracking link), folded like the matcher folds (case, accents, width), and
reduced to its words (so whitespace, punctuation and emoji do not count). Two posts with
the same key under the same watch are one queue item with a count. The signals work will
replace this with MinHash similarity; every caller goes through :func:`group_key`, so that
is the only thing to change.
"""

from __future__ import annotations

import hashlib
import re

from watchfloor.query.text import fold, word_stream

KEY_VERSION = "t1"  # bump when the normalisation changes: old and new keys never collide
_URL = re.compile(r"(?i)\b(?:https?://|www\.)\S+")
_SPACE = re.compile(r"\s+")


def normalised_text(text: str) -> str:
    """The text as grouping sees it: URLs removed, folded, only its words, one space apart."""
    stripped = word_stream(_URL.sub(" ", text)).strip()
    # a post that is nothing but a link is grouped by its link, not with every other link
    return stripped or _SPACE.sub(" ", fold(text)).strip()


def group_key(text: str) -> str:
    """The near-duplicate key of a post's text (``t1:`` + 32 hex digits)."""
    digest = hashlib.sha256(normalised_text(text).encode("utf-8")).hexdigest()
    return f"{KEY_VERSION}:{digest[:32]}"
