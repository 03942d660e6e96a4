"""Near-duplicate grouping with MinHash LSH (datasketch): one story copied 500 times is one group.

    index = NearDuplicateIndex()
    g1 = index.add("bluesky|at://.../1|v1", "Breaking: the bridge is closed, share!")
    g2 = index.add("bluesky|at://.../2|v1", "BREAKING: the bridge is closed — share! https://x.example/a")
    assert g1 == g2

A text is normalised (lower case, links and handles dropped, punctuation and spacing
ignored) and described by its set of character 5-grams ("shingles"); two texts whose
shingle sets have an estimated Jaccard similarity of at least ``threshold`` (default 0.7)
belong to the same group. LSH finds the candidates without comparing every pair; the
best candidate above the threshold gives the group. A group's id is derived from the key
of its first post, so the same data gives the same ids on every run.

The index keeps the newest ``max_items`` texts (older ones are forgotten, their groups
stay as they are in the store). Thread-safe.
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from collections import OrderedDict
from zlib import crc32

import numpy as np
from datasketch import MinHash, MinHashLSH

__all__ = ["NearDuplicateIndex", "group_id_for", "shingles"]

SHINGLE = 5
_DROP = re.compile(r"(?:https?://|www\.)\S+|(?<!\w)@[\w.\-]+", re.IGNORECASE)
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_SCHEME = "affine32"


def shingles(text: str, size: int = SHINGLE) -> set[bytes]:
    """The character ``size``-grams of ``text`` after normalisation (a short text is one shingle)."""
    text = unicodedata.normalize("NFKC", text[:5_000]).lower()
    text = _NON_WORD.sub(" ", _DROP.sub(" ", text)).strip()
    if not text:
        return set()
    if len(text) <= size:
        return {text.encode("utf-8")}
    return {text[i : i + size].encode("utf-8") for i in range(len(text) - size + 1)}


def group_id_for(first_key: str) -> str:
    """The id of the group whose first post has ``first_key``: ``g:`` + 16 hex digits."""
    return "g:" + hashlib.sha256(first_key.encode("utf-8")).hexdigest()[:16]


def _hash32(item: bytes) -> int:
    return crc32(item)


class NearDuplicateIndex:
    """Assigns each added text to a group of near-identical texts."""

    def __init__(self, *, threshold: float = 0.7, num_perm: int = 128, max_items: int = 50_000, seed: int = 1) -> None:
        self.threshold = threshold
        self.num_perm = num_perm
        self.max_items = max_items
        self._template = MinHash(num_perm=num_perm, seed=seed, hashfunc=_hash32, scheme=_SCHEME)
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._items: OrderedDict[str, tuple[MinHash, str]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def signature(self, text: str) -> MinHash | None:
        """The MinHash of ``text``, or None for a text without letters or digits."""
        items = shingles(text)
        if not items:
            return None
        m = MinHash(
            num_perm=self.num_perm,
            hashfunc=_hash32,
            permutations=self._template.permutations,
            scheme=_SCHEME,
        )
        m.update_batch(sorted(items))
        return m

    def to_bytes(self, minhash: MinHash) -> bytes:
        return np.asarray(minhash.hashvalues, dtype="<u4").tobytes()

    def from_bytes(self, data: bytes) -> MinHash:
        values = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        return MinHash(hashfunc=_hash32, hashvalues=values, permutations=self._template.permutations, scheme=_SCHEME)

    def add(self, key: str, text: str) -> str | None:
        """Add ``text`` under ``key``; returns its group id (None for a text without words).

        Adding a key again returns the group it already has.
        """
        return self.add_signature(key, self.signature(text))

    def add_signature(self, key: str, minhash: MinHash | None, group: str | None = None) -> str | None:
        """Add a known signature; ``group`` restores a stored assignment (warm start)."""
        if minhash is None:
            return None
        with self._lock:
            known = self._items.get(key)
            if known is not None:
                return known[1]
            if group is None:
                group = self._best_group(minhash) or group_id_for(key)
            self._lsh.insert(key, minhash, check_duplication=False)
            self._items[key] = (minhash, group)
            while len(self._items) > self.max_items:
                old, _ = self._items.popitem(last=False)
                self._lsh.remove(old)
            return group

    def _best_group(self, minhash: MinHash) -> str | None:
        best: tuple[float, str] | None = None
        for candidate in self._lsh.query(minhash):
            other, group = self._items[candidate]
            similarity = minhash.jaccard(other)
            if similarity >= self.threshold and (best is None or similarity > best[0]):
                best = (similarity, group)
        return None if best is None else best[1]

    def group_of(self, key: str) -> str | None:
        item = self._items.get(key)
        return None if item is None else item[1]
