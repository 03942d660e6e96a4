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

A signature is computed for every matched post, so :meth:`NearDuplicateIndex.signature`
does datasketch's ``affine32`` update itself, in one NumPy pass: CRC-32 of each shingle
(sliced from the encoded text once when it is ASCII), MurmurHash3's finaliser, ``a * h + b``
per permutation, column minimum. That skips a set of encoded shingles, its sorting, a
wrapper call per shingle and a MinHash built through its checking constructor (a blank one
is copied instead). The values are datasketch's to the bit: a minimum depends neither on the
order of the shingles nor on repeats. ``tests/signals/test_near_duplicates.py`` compares them
with ``MinHash.update_batch``, so a datasketch upgrade that changed its scheme (and with it
every stored signature) fails there.
"""

from __future__ import annotations

import copy
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
# MurmurHash3's 32-bit finaliser, which datasketch's affine32 scheme applies to each input hash
_FMIX_SHIFT_1, _FMIX_MUL_1 = np.uint32(16), np.uint32(0x85EBCA6B)
_FMIX_SHIFT_2, _FMIX_MUL_2 = np.uint32(13), np.uint32(0xC2B2AE35)
_FMIX_SHIFT_3 = np.uint32(16)
_DEDUPLICATE_ABOVE = 512  # shingles: a long text may repeat many; fewer rows for the minimum


def _normalised(text: str) -> str:
    text = unicodedata.normalize("NFKC", text[:5_000]).lower()
    return _NON_WORD.sub(" ", _DROP.sub(" ", text)).strip()


def shingles(text: str, size: int = SHINGLE) -> set[bytes]:
    """The character ``size``-grams of ``text`` after normalisation (a short text is one shingle)."""
    text = _normalised(text)
    if not text:
        return set()
    if len(text) <= size:
        return {text.encode("utf-8")}
    return {text[i : i + size].encode("utf-8") for i in range(len(text) - size + 1)}


def _shingle_hashes(text: str) -> np.ndarray:
    """``_hash32`` of each of ``shingles(text)`` as uint32, possibly repeated (empty for none)."""
    text = _normalised(text)
    if len(text) <= SHINGLE:
        hashes = [crc32(text.encode("utf-8"))] if text else []
    elif text.isascii():  # one byte per character: slice the encoded text once
        data = text.encode("ascii")
        hashes = [crc32(data[i : i + SHINGLE]) for i in range(len(data) - SHINGLE + 1)]
    else:
        hashes = [crc32(text[i : i + SHINGLE].encode("utf-8")) for i in range(len(text) - SHINGLE + 1)]
    array = np.array(hashes, dtype=np.uint32)
    return np.unique(array) if array.size > _DEDUPLICATE_ABOVE else array


def _fmix32(hashes: np.ndarray) -> np.ndarray:
    mixed = hashes ^ (hashes >> _FMIX_SHIFT_1)
    mixed *= _FMIX_MUL_1
    mixed ^= mixed >> _FMIX_SHIFT_2
    mixed *= _FMIX_MUL_2
    mixed ^= mixed >> _FMIX_SHIFT_3
    return mixed


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
        # what every signature starts as: copied (sharing the permutations), then given its values
        self._blank = MinHash(
            num_perm=num_perm, hashfunc=_hash32, permutations=self._template.permutations, scheme=_SCHEME
        )
        self._a, self._b = self._template.permutations  # uint32, one per permutation
        self._lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        self._items: OrderedDict[str, tuple[MinHash, str]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def signature(self, text: str) -> MinHash | None:
        """The MinHash of ``text``, or None for a text without letters or digits."""
        hashes = _shingle_hashes(text)
        if not hashes.size:
            return None
        permuted = np.multiply.outer(_fmix32(hashes), self._a)  # wraps around: mod 2**32, as in datasketch
        permuted += self._b
        m = copy.copy(self._blank)
        m.hashvalues = permuted.min(axis=0)
        return m

    def to_bytes(self, minhash: MinHash) -> bytes:
        return np.asarray(minhash.hashvalues, dtype="<u4").tobytes()

    def from_bytes(self, data: bytes) -> MinHash:
        """The signature :meth:`to_bytes` wrote (from the text helper, or the store)."""
        values = np.frombuffer(data, dtype="<u4").astype(np.uint32)
        if values.shape != (self.num_perm,):
            raise ValueError(f"a signature of {values.size} values, not {self.num_perm}")
        m = copy.copy(self._blank)  # as in signature(): the permutations are shared, not parsed again
        m.hashvalues = values
        return m

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
