"""The vectorised feature hashing and scoring give exactly what the original per-feature
Python loop gave: the same {bucket: value} dict (values equal to the bit) and the same
toxicity and threat scores, on a few hundred varied texts (English, emoji, CJK, Arabic,
links, handles, empty, punctuation only, very long, one token repeated thousands of times).

The reference below is the implementation the shipped weights were validated with, kept
here verbatim in substance: a change to the product's features that moves any number
fails this test, whatever the reason (a faster path, a NumPy upgrade)."""

from __future__ import annotations

import math
import random
from itertools import pairwise
from pathlib import Path
from zlib import crc32

import numpy as np
import pytest

from watchfloor.signals.features import CHAR_NGRAMS, feature_vector, hashed_features, normalise_text, tokens
from watchfloor.signals.toxicity import ToxicityClassifier, _sigmoid, load_classifier

VOCABULARY = (
    "the a you are is not what why who bridge flood water storm police idiot stupid kill hate love great "
    "awful terrible wonderful don't can't it's we'll immigrants women men shut up now tonight share before "
    "they delete this breaking news RT lol omg wtf sooooo yesss noooo"
)
WORDS = VOCABULARY.split()
EXTRAS = (
    "🔥",
    "😂😂😂",
    "👍🏽",
    "🏳️‍🌈",
    "東京で地震が発生しました。",
    "津波に注意してください",
    "你好，世界！",
    "مرحبا بالعالم",
    "Привет, мир",
    "Ça va? Très bien — à demain!",
    "https://example.org/a?b=c&d=e",
    "www.Example.com/Path",
    "HTTP://SHOUT.EXAMPLE/X",
    "@someone",
    "@some.one-else_2",
    "e-mail@example.org",
    "#hashtag",
    "!!!",
    "?!?!",
    "...",
    "—",
    "ﬁne ﬂow",  # ligatures NFKC splits
    "①②③ ＦＵＬＬＷＩＤＴＨ",
    "ﷺ",  # NFKC expands one character to 18
    "e\u0301 cafe\u0301",  # combining accent
    "tab\there\nnew line",
    "123 4.56 7,890",
    "_under_score_",
    "'quoted' \"double\"",
)


def varied_texts(n: int = 400, seed: int = 20) -> list[str]:
    rng = random.Random(seed)
    texts = ["", " ", "\n", "!!!", "?!", "...", "😂", "🔥🔥🔥", "a", "I", "東", "@x", "https://x.example"]
    texts += list(EXTRAS)
    # long texts (cut at 2,000 characters), and "⁉" (NFKC: "!?") to reach one bucket 2,000 times
    texts += ["! " * 1500, "idiot " * 400, "ab" * 1200, "x" * 5000, "ﷺ" * 150, "⁉" * 2000]
    while len(texts) < n:
        parts = [rng.choice(WORDS) for _ in range(rng.randint(1, 30))]
        for _ in range(rng.randint(0, 4)):
            parts.insert(rng.randrange(len(parts) + 1), rng.choice(EXTRAS))
        text = " ".join(parts)
        if rng.random() < 0.3:
            text = text.upper()
        if rng.random() < 0.2:
            text = text.replace(" ", rng.choice(["", "  ", ", ", "!! "]))
        texts.append(text)
    return texts


# ---------------------------------------------------------------- the reference (the original loop)
def _reference_hashes(text: str) -> list[int]:
    words = tokens(normalise_text(text))
    hashes: list[int] = []
    for word in words:
        hashes.append(crc32(("w:" + word).encode("utf-8")))
        if word[0].isalnum():
            padded = f" {word} "
            for n in CHAR_NGRAMS:
                if n > len(padded):
                    break
                hashes.extend(crc32(("c:" + padded[i : i + n]).encode("utf-8")) for i in range(len(padded) - n + 1))
    hashes.extend(crc32(f"b:{a} {b}".encode()) for a, b in pairwise(words))
    return hashes


def reference_features(text: str, bits: int) -> dict[int, float]:
    mask = (1 << bits) - 1
    counts: dict[int, int] = {}
    for h in _reference_hashes(text):
        bucket = h & mask
        counts[bucket] = counts.get(bucket, 0) + (-1 if h & 0x80000000 else 1)
    values = {b: math.copysign(1.0 + math.log(abs(c)), c) for b, c in counts.items() if c}
    norm = math.sqrt(math.fsum(v * v for v in values.values()))
    if norm == 0.0:
        return {}
    return {b: v / norm for b, v in values.items()}


def reference_margin(weights: np.ndarray, bias: float, features: dict[int, float]) -> float:
    if not features:
        return bias
    idx = np.fromiter(features.keys(), dtype=np.int64, count=len(features))
    val = np.fromiter(features.values(), dtype=np.float32, count=len(features))
    return float(np.dot(weights[idx], val)) + bias


# ---------------------------------------------------------------- the tests
@pytest.fixture
def texts(shared_fixtures: Path) -> list[str]:
    folder = shared_fixtures / "labeled" / "tweeteval"
    real = [
        line
        for task in ("offensive", "hate")
        for line in (folder / task / "val_text.txt").read_text(encoding="utf-8").splitlines()[:150]
    ]
    return varied_texts() + real


@pytest.mark.parametrize("bits", [18, 10])
def test_the_dict_is_the_vector_and_the_reference(texts: list[str], bits: int) -> None:
    for text in texts:
        expected = reference_features(text, bits)
        buckets, values = feature_vector(text, bits)
        assert buckets.dtype == np.intp and values.dtype == np.float64
        as_dict = hashed_features(text, bits)
        assert as_dict == dict(zip(buckets.tolist(), values.tolist(), strict=True)), text
        assert as_dict == expected, text  # the same floats, not nearly the same
        assert list(as_dict) == list(expected), text  # and the same order: first appearance


def test_scores_are_the_reference_scores(texts: list[str]) -> None:
    classifier = load_classifier()
    tox, threat = classifier.models["toxicity"], classifier.models["threat"]
    for text in texts:
        features = reference_features(text, classifier.bits)
        margins = (
            reference_margin(tox.weights, tox.bias, features),
            reference_margin(threat.weights, threat.bias, features),
        )
        buckets, values = feature_vector(text, classifier.bits)
        new = (
            tox.vector_margin(buckets, values.astype(np.float32)),
            threat.vector_margin(buckets, values.astype(np.float32)),
        )
        assert all(abs(a - b) <= 1e-6 for a, b in zip(new, margins, strict=True)), text
        assert new == margins, text  # in fact to the bit: same products, same summation order
        scores = classifier.scores(text)
        assert (scores.toxicity, scores.threat) == tuple(round(_sigmoid(m), 4) for m in margins), text
        assert tox.probability(text) == _sigmoid(margins[0]) and tox.margin(features) == margins[0]


def test_a_model_file_with_other_bits_scores_alike() -> None:
    """The classifier reads ``bits`` from its model file; the vector follows it."""
    rng = np.random.default_rng(3)
    bits = 10
    weights = rng.normal(size=2 << bits).astype("<f2")
    meta = {
        "format": "watchfloor-linear-text-v1",
        "features": {"bits": bits},
        "tasks": [{"name": "toxicity", "bias": -0.5}, {"name": "threat", "bias": 0.25}],
    }
    classifier = ToxicityClassifier(meta, weights.tobytes())
    for text in varied_texts(60, seed=4):
        features = reference_features(text, bits)
        expected = (
            round(_sigmoid(reference_margin(classifier.models["toxicity"].weights, -0.5, features)), 4),
            round(_sigmoid(reference_margin(classifier.models["threat"].weights, 0.25, features)), 4),
        )
        scores = classifier.scores(text)
        assert (scores.toxicity, scores.threat) == expected, text


def test_a_vector_is_the_callers_own_and_the_shared_empty_one_is_read_only() -> None:
    buckets, values = feature_vector("the bridge the bridge", 18)
    buckets[:] = 0  # fresh arrays: changing them changes nothing cached
    values *= 2
    assert hashed_features("the bridge the bridge", 18) == reference_features("the bridge the bridge", 18)
    empty_buckets, empty_values = feature_vector("", 18)
    assert empty_buckets.size == 0 and empty_values.size == 0
    with pytest.raises(ValueError):
        empty_values[...] = 1.0  # the shared empty arrays are read-only
