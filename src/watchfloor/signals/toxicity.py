"""Toxicity and threat scores of a text, from small linear models shipped in the package.

The weights (``data/toxicity.weights``, float16) and their description and validation
figures (``data/toxicity.json``) are built by ``scripts/train_toxicity.py`` from the
TweetEval fixtures; nothing is downloaded, ever. See docs/signals.md for what the two
scores mean, how they were measured, and what they cannot do.

The classifier scores *texts*. It never says anything about the person who wrote one,
and a score is never a decision: it only orders the queue a person works through.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from watchfloor.signals.features import hashed_features

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
        if not features:
            return self.bias
        idx = np.fromiter(features.keys(), dtype=np.int64, count=len(features))
        val = np.fromiter(features.values(), dtype=np.float32, count=len(features))
        return float(np.dot(self.weights[idx], val)) + self.bias

    def probability(self, text: str) -> float:
        return _sigmoid(self.margin(hashed_features(text, self.bits)))


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

    def scores(self, text: str) -> ToxicityScores:
        features = hashed_features(text, self.bits)
        return ToxicityScores(
            toxicity=round(_sigmoid(self.models["toxicity"].margin(features)), 4),
            threat=round(_sigmoid(self.models["threat"].margin(features)), 4),
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
