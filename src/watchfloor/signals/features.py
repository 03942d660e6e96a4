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

The product scores every matched post, so the vector is built with NumPy
(:func:`feature_vector`: bucket indices and values as two arrays); :func:`hashed_features`
is the same vector as a dict, for the training script. Both give exactly the numbers of the
original per-feature Python loop, bit for bit (``tests/signals/test_features_vector.py``
keeps that formula as its reference):

- a word's own hashes are cached as an array, with the running CRC of ``b:word `` so a
  bigram's hash is one ``crc32(next_word, prefix)`` (CRC-32 continues a running value:
  the same number as hashing ``b:word next_word`` whole);
- ``1 + log(count)`` comes from a table filled with :func:`math.log` (NumPy's ``log`` may
  differ in the last bit), and the norm stays the exactly rounded :func:`math.fsum`;
- buckets keep the order in which the text first reaches them, the order the linear
  models always summed them in (a float32 dot product depends on the order).
"""

from __future__ import annotations

import math
import re
import unicodedata
from functools import lru_cache
from itertools import pairwise
from zlib import crc32

import numpy as np

__all__ = ["DEFAULT_BITS", "feature_vector", "hashed_features", "normalise_text", "tokens"]

DEFAULT_BITS = 18
CHAR_NGRAMS = (2, 3, 4, 5)
MAX_CHARS = 2_000  # longer texts are cut: the first 2,000 characters say enough

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_HANDLE = re.compile(r"(?<!\w)@[\w.\-]+")
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?|[^\w\s]", re.UNICODE)
_REPEAT = re.compile(r"(.)\1{2,}")

_NO_HASHES = np.empty(0, dtype=np.uint32)
_NO_BUCKETS = np.empty(0, dtype=np.intp)
_NO_VALUES = np.empty(0, dtype=np.float64)
for _empty in (_NO_HASHES, _NO_BUCKETS, _NO_VALUES):
    _empty.flags.writeable = False
# 1 + log(count) and its square for the counts a text reaches (larger ones are computed)
_DAMPED = np.array([0.0] + [1.0 + math.log(k) for k in range(1, 1024)])
_DAMPED_SQUARED = _DAMPED * _DAMPED


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
def _word(word: str) -> tuple[np.ndarray, int, bytes]:
    """A word's own feature hashes (``w:`` and its ``c:`` n-grams, read-only uint32), the
    running CRC of ``b:word `` that starts every bigram it begins, and its UTF-8 bytes that
    end every bigram it ends. Words repeat a lot, so this is cached."""
    encoded = word.encode("utf-8")
    hashes = [crc32(b"w:" + encoded)]
    if word[0].isalnum():
        padded = f" {word} "
        for n in CHAR_NGRAMS:
            if n > len(padded):
                break
            hashes.extend(_hash("c:" + padded[i : i + n]) for i in range(len(padded) - n + 1))
    own = np.array(hashes, dtype=np.uint32)
    own.flags.writeable = False
    return own, crc32(b"b:" + encoded + b" "), encoded


def _hashes(text: str) -> np.ndarray:
    """Every feature hash of ``text``: each word's own, in text order, then the bigrams."""
    words = [_word(w) for w in tokens(normalise_text(text))]
    if not words:
        return _NO_HASHES
    arrays = [own for own, _, _ in words]
    if len(words) > 1:
        arrays.append(np.array([crc32(b, prefix) for (_, prefix, _), (_, _, b) in pairwise(words)], dtype=np.uint32))
    return np.concatenate(arrays)


def feature_vector(text: str, bits: int = DEFAULT_BITS) -> tuple[np.ndarray, np.ndarray]:
    """The unit-length feature vector of ``text`` as (buckets, values): an intp and a float64
    array, buckets in the order the text first reaches them (both empty for no words)."""
    hashes = _hashes(text)
    n = hashes.size
    if not n:
        return _NO_BUCKETS, _NO_VALUES
    buckets = (hashes & np.uint32((1 << bits) - 1)).astype(np.intp)
    signs = (hashes.view(np.int32) >> 31) | 1  # -1 where the top bit is set, else 1
    order = np.argsort(buckets, kind="stable")  # stable: each bucket's run starts with its first hash
    grouped = buckets[order]
    run_starts = np.empty(n, dtype=np.bool_)
    run_starts[0] = True
    np.not_equal(grouped[1:], grouped[:-1], out=run_starts[1:])
    starts = np.flatnonzero(run_starts)
    at_first = np.zeros(n, dtype=np.intp)  # each bucket's count, at the position of its first hash
    at_first[order[starts]] = np.add.reduceat(signs[order], starts)
    firsts = np.flatnonzero(at_first)  # in text order; a bucket whose hashes cancelled out is no feature
    if not firsts.size:
        return _NO_BUCKETS, _NO_VALUES
    counts = at_first[firsts]
    magnitude = np.abs(counts)
    if magnitude.max() < len(_DAMPED):
        damped, squared = _DAMPED[magnitude], _DAMPED_SQUARED[magnitude]
    else:  # a bucket reached 1,024 times or more: a long run of one token
        damped = np.array([1.0 + math.log(c) for c in magnitude.tolist()])
        squared = damped * damped
    # exactly rounded, so any split of the same sum gives the same norm: the many 1.0s
    # (buckets reached once) go in as one integer
    larger = squared[magnitude > 1]
    norm = math.sqrt(math.fsum([float(len(squared) - len(larger)), *larger.tolist()]))
    return buckets[firsts], np.copysign(damped, counts) / norm


def hashed_features(text: str, bits: int = DEFAULT_BITS) -> dict[int, float]:
    """The unit-length feature vector of ``text`` as {bucket: value} (empty for no words)."""
    buckets, values = feature_vector(text, bits)
    return dict(zip(buckets.tolist(), values.tolist(), strict=True))
