"""Hashed word and character n-grams: the features of the toxicity and threat classifier.

One implementation serves both the training script (``scripts/train_toxicity.py``) and the
product, so a model trained here reads texts exactly as it was trained to.

A text is lower-cased, links become ``url`` and handles ``@user`` (as in the TweetEval
data), then described by

- word unigrams and bigrams (``w:``, ``b:``),
- character 2- to 5-grams inside each word padded with spaces (``c:``),

each hashed with CRC-32 into ``2**bits`` buckets with a sign taken from the hash
(collisions then cancel on average instead of adding up). Counts are dampened
(``1 + log(count)``) and the vector is scaled to unit length, so long and short texts
weigh alike. CRC-32 is stable across Python versions and machines (``hash()`` is not).
"""

from __future__ import annotations

import math
import re
import unicodedata
from functools import lru_cache
from itertools import pairwise
from zlib import crc32

__all__ = ["DEFAULT_BITS", "hashed_features", "normalise_text", "tokens"]

DEFAULT_BITS = 18
CHAR_NGRAMS = (2, 3, 4, 5)
MAX_CHARS = 2_000  # longer texts are cut: the first 2,000 characters say enough

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<!\w)@[\w.\-]+")
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?|[^\w\s]", re.UNICODE)
_REPEAT = re.compile(r"(.)\1{2,}")


def normalise_text(text: str) -> str:
    """``text`` as the classifier reads it: NFKC, lower case, links and handles replaced,
    runs of one character cut to two (``sooooo`` -> ``soo``)."""
    text = unicodedata.normalize("NFKC", text[:MAX_CHARS]).lower()
    text = _URL.sub(" url ", text)
    text = _HANDLE.sub(" @user ", text)
    return _REPEAT.sub(r"\1\1", text)


def tokens(normalised: str) -> list[str]:
    """Words (with an inner apostrophe kept: ``don't``) and single punctuation marks."""
    return _TOKEN.findall(normalised)


def _hash(name: str) -> int:
    return crc32(name.encode("utf-8"))


@lru_cache(maxsize=100_000)
def _word_hashes(word: str) -> tuple[int, ...]:
    """The hashes of a word's own features (``w:`` and its ``c:`` n-grams); words repeat a
    lot, so this is cached (the same hashes either way: only faster)."""
    hashes = [_hash("w:" + word)]
    if word[0].isalnum():
        padded = f" {word} "
        for n in CHAR_NGRAMS:
            if n > len(padded):
                break
            hashes.extend(_hash("c:" + padded[i : i + n]) for i in range(len(padded) - n + 1))
    return tuple(hashes)


def _hashes(text: str) -> list[int]:
    words = tokens(normalise_text(text))
    hashes = [h for word in words for h in _word_hashes(word)]
    hashes.extend(_hash(f"b:{a} {b}") for a, b in pairwise(words))
    return hashes


def hashed_features(text: str, bits: int = DEFAULT_BITS) -> dict[int, float]:
    """The unit-length feature vector of ``text`` as {bucket: value} (empty for no words)."""
    mask = (1 << bits) - 1
    counts: dict[int, int] = {}
    for h in _hashes(text):
        bucket = h & mask
        counts[bucket] = counts.get(bucket, 0) + (-1 if h & 0x80000000 else 1)
    values = {b: math.copysign(1.0 + math.log(abs(c)), c) for b, c in counts.items() if c}
    norm = math.sqrt(math.fsum(v * v for v in values.values()))  # exact: the same in any order
    if norm == 0.0:
        return {}
    return {b: v / norm for b, v in values.items()}
