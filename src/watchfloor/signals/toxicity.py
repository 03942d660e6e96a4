"""Toxicity and threat scores of a text, from small linear models shipped in the package.

The weights (``data/toxicity.weights``, float16) and their description and validation
figures (``data/toxicity.json``) are built by ``scripts/train_toxicity.py`` from the
TweetEval fixtures; nothing is downloaded, ever. See docs/signals.md for what the two
scores mean, how they were measured, and what they cannot do.

The classifier scores *texts*. It never says anything about the person who wrote one,
and a score is never a decision: it only orders the queue a person works through.

Every matched post is scored, so a text's feature vector is built once, as two arrays
(:func:`~watchfloor.signals.features.feature_vector`), and read by both models. Each model
still sums its float32 products with one ``np.dot`` over the text's buckets in the order
the text first reaches them, exactly as when the weights were validated: the scores are
the same to the last bit, not only after rounding (``tests/signals/test_features_vector.py``).
One matrix product over both models (``W[:, buckets] @ values``) measured no faster for a
post's few hundred buckets, and it sums in another order: a float32 sum that moves by one
unit in the last place can move a rounded score.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from watchfloor.signals.features import feature_vector

__all__ = ["FORMAT", "MODEL_JSON", "WEIGHTS_FILE", "LinearTextModel", "ToxicityClassifier", "load_classifier"]

FORMAT = "watchfloor-linear-text-v1"
MODEL_JSON = "toxicity.json"
WEIGHTS_FILE = "toxicity.weights"


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


class LinearTextModel:
    """One logistic regression over hashed n-grams: ``sigmoid(w . x + b)``."""

    def __init__(self, weights: np.ndarray, bias: float, bits: int) -> None:
        if weights.shape != (1 << bits,):
            raise ValueError(f"expected {1 << bits} weights, got {weights.shape}")
        self.weights = weights.astype(np.float32)
        self.bias = float(bias)
        self.bits = bits

    def margin(self, features: dict[int, float]) -> float:
        """``w . x + b`` for a {bucket: value} vector (:func:`~watchfloor.signals.features.hashed_features`)."""
        idx = np.fromiter(features.keys(), dtype=np.intp, count=len(features))
        val = np.fromiter(features.values(), dtype=np.float32, count=len(features))
        return self.vector_margin(idx, val)

    def vector_margin(self, buckets: np.ndarray, values: np.ndarray) -> float:
        """``w . x + b`` for a vector as (buckets, float32 values) arrays."""
        if not buckets.size:
            return self.bias
        return float(np.dot(self.weights[buckets], values)) + self.bias

    def probability(self, text: str) -> float:
        buckets, values = feature_vector(text, self.bits)
        return _sigmoid(self.vector_margin(buckets, values.astype(np.float32)))


@dataclass(frozen=True, slots=True)
class ToxicityScores:
    toxicity: float
    threat: float


class ToxicityClassifier:
    """The shipped models: ``scores(text)`` gives toxicity and threat in [0, 1]."""

    def __init__(self, meta: dict[str, Any], weights: bytes) -> None:
        if meta.get("format") != FORMAT:
            raise ValueError(f"unknown model format {meta.get('format')!r}")
        self.meta = meta
        self.bits = int(meta["features"]["bits"])
        size = 1 << self.bits
        models: dict[str, LinearTextModel] = {}
        for i, task in enumerate(meta["tasks"]):
            chunk = np.frombuffer(weights, dtype="<f2", count=size, offset=i * size * 2)
            models[task["name"]] = LinearTextModel(chunk, task["bias"], self.bits)
        if set(models) != {"toxicity", "threat"}:
            raise ValueError(f"the model file holds {sorted(models)}, not toxicity and threat")
        self.models = models
        self._toxicity, self._threat = models["toxicity"], models["threat"]

    def scores(self, text: str) -> ToxicityScores:
        buckets, values = feature_vector(text, self.bits)
        values = values.astype(np.float32)
        return ToxicityScores(
            toxicity=round(_sigmoid(self._toxicity.vector_margin(buckets, values)), 4),
            threat=round(_sigmoid(self._threat.vector_margin(buckets, values)), 4),
        )

    def validation(self, name: str) -> dict[str, Any]:
        """The validation figures recorded when the weights were built."""
        for task in self.meta["tasks"]:
            if task["name"] == name:
                return dict(task["validation"])
        raise KeyError(name)


@lru_cache(maxsize=1)
def load_classifier() -> ToxicityClassifier:
    """The classifier shipped with this package (loaded once per process)."""
    data = resources.files("watchfloor.signals") / "data"
    meta = json.loads((data / MODEL_JSON).read_text(encoding="utf-8"))
    return ToxicityClassifier(meta, (data / WEIGHTS_FILE).read_bytes())
