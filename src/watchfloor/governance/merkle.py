"""RFC 9162 (Certificate Transparency v2) Merkle tree hashing, proofs and their checks.

    leaf hash  = SHA-256(0x00 || entry)
    node hash  = SHA-256(0x01 || left || right)
    MTH({})    = SHA-256("")
    MTH(D[n])  = node(MTH(D[0:k]), MTH(D[k:n]))   k = the largest power of two < n

Everything here works on leaf *hashes* (``bytes`` of 32) so that the audit log can keep
them next to its entries. The proof algorithms follow RFC 9162 section 2.1.3 (inclusion)
and 2.1.4 (consistency); the verifiers are the RFC's own step-by-step procedures, so a
proof made here checks anywhere else (transparency-dev/merkle, the Go sumdb, ...).

:class:`Frontier` is the compact range of a growing tree (the roots of its perfect
subtrees, biggest first): appending a leaf and reading the root both cost O(log n), so
the log never rereads old entries to extend itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof or a tree size that cannot be right."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH of the leaf hashes ``leaves`` (iteratively: no recursion limit for big logs)."""
    if not leaves:
        return EMPTY_ROOT
    frontier = Frontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.root()


def _subtree_root(leaves: Sequence[bytes], start: int, end: int) -> bytes:
    if end - start == 1:
        return leaves[start]
    k = _split(end - start)
    return node_hash(_subtree_root(leaves, start, start + k), _subtree_root(leaves, start + k, end))


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int | None = None) -> list[bytes]:
    """PATH(index, D[0:size]): the audit path of leaf ``index`` in the tree of the first
    ``size`` leaves (default: all)."""
    size = len(leaves) if size is None else size
    if not 0 <= index < size <= len(leaves):
        raise ProofError(f"no leaf {index} in a tree of {size}")
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            proof.append(_subtree_root(leaves, start + k, end))
            end = start + k
        else:
            proof.append(_subtree_root(leaves, start, start + k))
            start += k
    proof.reverse()  # RFC order: from the leaf's sibling up to the root's child
    return proof


def consistency_proof(leaves: Sequence[bytes], old_size: int, new_size: int | None = None) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) of RFC 9162 section 2.1.4.1."""
    new_size = len(leaves) if new_size is None else new_size
    if not 0 <= old_size <= new_size <= len(leaves):
        raise ProofError(f"no consistency proof from {old_size} to {new_size}")
    if old_size == 0 or old_size == new_size:
        return []
    return _subproof(leaves, old_size, 0, new_size, True)


def _subproof(leaves: Sequence[bytes], m: int, start: int, end: int, complete: bool) -> list[bytes]:
    n = end - start
    if m == n:
        return [] if complete else [_subtree_root(leaves, start, end)]
    k = _split(n)
    if m <= k:
        return [*_subproof(leaves, m, start, start + k, complete), _subtree_root(leaves, start + k, end)]
    return [*_subproof(leaves, m - k, start + k, end, False), _subtree_root(leaves, start, start + k)]


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that ``proof`` leads to from ``leaf`` (RFC 9162 2.1.3.2); ProofError if malformed."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of {size}")
    if len(leaf) != HASH_SIZE or any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("hashes must be 32 bytes")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the proof is shorter than the tree is deep")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """True when ``proof`` shows that ``leaf`` is leaf ``index`` of the tree (``size``, ``root``)."""
    try:
        return root_from_inclusion_proof(index, size, leaf, proof) == root
    except ProofError:
        return False


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """True when ``proof`` shows the tree (new_size, new_root) extends (old_size, old_root).

    RFC 9162 section 2.1.4.2, with its edge cases: equal sizes need equal roots and an
    empty proof; the empty tree is a prefix of every tree (empty proof).
    """
    if not 0 <= old_size <= new_size:
        return False
    if any(len(p) != HASH_SIZE for p in proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0


@dataclass
class Frontier:
    """The compact range [0, size) of a tree: one root per set bit of ``size``, biggest first."""

    size: int = 0
    nodes: list[bytes] | None = None

    def __post_init__(self) -> None:
        if self.nodes is None:
            self.nodes = []
        if len(self.nodes) != self.size.bit_count():
            raise ProofError(
                f"a frontier of {self.size} leaves has {self.size.bit_count()} nodes, not {len(self.nodes)}"
            )

    def append(self, leaf: bytes) -> None:
        assert self.nodes is not None
        node = leaf
        size = self.size
        while size & 1:  # merge with the equal-sized perfect subtree on the left
            node = node_hash(self.nodes.pop(), node)
            size >>= 1
        self.nodes.append(node)
        self.size += 1

    def root(self) -> bytes:
        assert self.nodes is not None
        if not self.nodes:
            return EMPTY_ROOT
        root = self.nodes[-1]
        for node in reversed(self.nodes[:-1]):
            root = node_hash(node, root)
        return root

    def to_hex(self) -> list[str]:
        assert self.nodes is not None
        return [n.hex() for n in self.nodes]

    @classmethod
    def from_hex(cls, size: int, nodes: Sequence[str]) -> Frontier:
        return cls(size, [bytes.fromhex(n) for n in nodes])
