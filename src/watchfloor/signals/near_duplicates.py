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
    """Assigns each added text to a group of near-identical texts.

    The banded LSH is datasketch's (its ``MinHashLSH`` chooses the bands and rows for the
    threshold), kept in structures the garbage collector does not have to visit: a full
    index (50,000 texts) held about 900,000 tracked objects in ``MinHashLSH`` (a set per
    band and text, a list per text, the ``MinHash`` objects), and every full collection of
    the pipeline's process walked all of them, 200–700 ms during which nothing was matched
    or committed. Here each text is a number; its signature is a row of one NumPy array,
    its key and group sit in two lists, and each band table maps a band's bytes to the
    numbers of the texts that have it (an int, or a tuple of ints for the few that share
    it): a few dozen tracked objects whatever the size.
    """

    def __init__(self, *, threshold: float = 0.7, num_perm: int = 128, max_items: int = 50_000, seed: int = 1) -> None:
        if max_items < 1:
            raise ValueError("max_items must be at least 1")
        self.threshold = threshold
        self.num_perm = num_perm
        self.max_items = max_items
        self._template = MinHash(num_perm=num_perm, seed=seed, hashfunc=_hash32, scheme=_SCHEME)
        # what every signature starts as: copied (sharing the permutations), then given its values
        self._blank = MinHash(
            num_perm=num_perm, hashfunc=_hash32, permutations=self._template.permutations, scheme=_SCHEME
        )
        self._a, self._b = self._template.permutations  # uint32, one per permutation
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)  # datasketch's choice of bands and rows
        self._bands = [(start, end) for start, end in lsh.hashranges]
        self._tables: list[dict[bytes, int | tuple[int, ...]]] = [{} for _ in self._bands]
        # text n (numbered from 0 as added) is in slot n % max_items while it is kept; the
        # kept texts are always the newest ones: numbers self._oldest .. self._next - 1
        self._values = np.zeros((max_items, num_perm), dtype=np.uint32)
        self._keys: list[str] = [""] * max_items
        self._groups: list[str] = [""] * max_items
        self._numbers: dict[str, int] = {}  # key -> its text's number
        self._oldest = self._next = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._next - self._oldest

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
        values = np.asarray(minhash.hashvalues, dtype=np.uint32)
        if values.shape != (self.num_perm,):
            raise ValueError(f"a signature of {values.size} values, not {self.num_perm}")
        bands = [values[start:end].tobytes() for start, end in self._bands]
        with self._lock:
            known = self._numbers.get(key)
            if known is not None:
                return self._groups[known % self.max_items]
            if group is None:
                group = self._best_group(values, bands) or group_id_for(key)
            if len(self) >= self.max_items:
                self._forget_oldest()
            number = self._next
            self._next += 1
            slot = number % self.max_items
            self._values[slot] = values
            self._keys[slot] = key
            self._groups[slot] = group
            self._numbers[key] = number
            for table, band in zip(self._tables, bands, strict=True):
                there = table.get(band)
                table[band] = number if there is None else (*there, number) if type(there) is tuple else (there, number)
            return group

    def _forget_oldest(self) -> None:
        number = self._oldest
        self._oldest += 1
        slot = number % self.max_items
        del self._numbers[self._keys[slot]]
        values = self._values[slot]
        for (start, end), table in zip(self._bands, self._tables, strict=True):
            band = values[start:end].tobytes()
            there = table[band]
            if type(there) is not tuple:
                del table[band]
            else:
                rest = tuple(n for n in there if n != number)
                table[band] = rest[0] if len(rest) == 1 else rest

    def _best_group(self, values: np.ndarray, bands: list[bytes]) -> str | None:
        """The group of the most similar kept text at or above the threshold (the oldest
        of equals), as datasketch's ``MinHash.jaccard`` estimates it; None when none is."""
        candidates: set[int] = set()
        for table, band in zip(self._tables, bands, strict=True):
            there = table.get(band)
            if there is not None:
                if type(there) is tuple:
                    candidates.update(there)
                else:
                    candidates.add(there)  # type: ignore[arg-type]
        if not candidates:
            return None
        numbers = sorted(candidates)
        slots = np.array(numbers, dtype=np.int64) % self.max_items
        similarity = np.count_nonzero(self._values[slots] == values, axis=1) / self.num_perm
        best = int(np.argmax(similarity))  # the first (oldest) of the most similar
        if similarity[best] < self.threshold:
            return None
        return self._groups[int(slots[best])]

    def group_of(self, key: str) -> str | None:
        with self._lock:
            number = self._numbers.get(key)
            return None if number is None else self._groups[number % self.max_items]
