"""RFC 9162 Merkle hashing and proofs against the published known-answer vectors
(certificate-transparency / transparency-dev/merkle: proof/verify_test.go), then every
proof of every tree up to 40 leaves, and corrupted proofs that must all fail."""

from __future__ import annotations

import hashlib

import pytest

from watchfloor.governance import merkle

# The 8 reference leaves (hex) and the root of each prefix 1..8.
LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
EMPTY_ROOT = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
# (leaf number, 1-based as in the Go vectors; tree size; audit path)
INCLUSION = [
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        2,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (1, 1, []),
]
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]


def hashes() -> list[bytes]:
    return [merkle.leaf_hash(bytes.fromhex(x)) for x in LEAVES]


def h(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(v) for v in values]


def test_hashing_is_rfc9162s() -> None:
    assert merkle.EMPTY_ROOT.hex() == EMPTY_ROOT == hashlib.sha256(b"").hexdigest()
    assert merkle.leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert merkle.leaf_hash(b"").hex() == ROOTS[0]  # a one-leaf tree's root is its leaf hash
    a, b = hashes()[:2]
    assert merkle.node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert merkle.node_hash(a, b).hex() == ROOTS[1]


def test_roots_of_every_prefix() -> None:
    leaves = hashes()
    assert merkle.root_of([]).hex() == EMPTY_ROOT
    for n in range(1, 9):
        assert merkle.root_of(leaves[:n]).hex() == ROOTS[n - 1], n
        frontier = merkle.Frontier()
        for leaf in leaves[:n]:
            frontier.append(leaf)
        assert frontier.root().hex() == ROOTS[n - 1]
        assert merkle.Frontier.from_hex(n, frontier.to_hex()).root() == frontier.root()


@pytest.mark.parametrize(("leaf", "size", "path"), INCLUSION)
def test_inclusion_known_answers(leaf: int, size: int, path: list[str]) -> None:
    leaves = hashes()
    proof = merkle.inclusion_proof(leaves, leaf - 1, size)
    assert proof == h(path)
    root = bytes.fromhex(ROOTS[size - 1])
    assert merkle.verify_inclusion(leaf - 1, size, leaves[leaf - 1], proof, root)
    # the corruptions transparency-dev's verifierCheck tries: none may verify
    some = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
    probes = [
        (leaf - 2, size, leaves[leaf - 1], proof, root),
        (leaf, size, leaves[leaf - 1], proof, root),
        ((leaf - 1) ^ 2, size, leaves[leaf - 1], proof, root),
        (leaf - 1, size * 2, leaves[leaf - 1], proof, root),
        (leaf - 1, size // 2, leaves[leaf - 1], proof, root),
        (leaf - 1, size, b"WrongLeaf", proof, root),
        (leaf - 1, size, leaves[leaf - 1], proof, merkle.EMPTY_ROOT),
        (leaf - 1, size, leaves[leaf - 1], proof, some),
        (leaf - 1, size, leaves[leaf - 1], [*proof, b""], root),
        (leaf - 1, size, leaves[leaf - 1], [*proof, root], root),
        (leaf - 1, size, leaves[leaf - 1], [b"", *proof], root),
        (leaf - 1, size, leaves[leaf - 1], [root, *proof], root),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        probes.append((leaf - 1, size, leaves[leaf - 1], flipped, root))
    if proof:
        probes.append((leaf - 1, size, leaves[leaf - 1], proof[:-1], root))
    if len(proof) > 1:
        probes.append((leaf - 1, size, leaves[leaf - 1], [proof[0], some, *proof[1:]], root))
    for index, n, leaf_hash, path_, root_ in probes:
        assert not merkle.verify_inclusion(index, n, leaf_hash, path_, root_), (index, n)


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY)
def test_consistency_known_answers(old: int, new: int, path: list[str]) -> None:
    leaves = hashes()
    proof = merkle.consistency_proof(leaves, old, new)
    assert proof == h(path)
    r1, r2 = bytes.fromhex(ROOTS[old - 1]), bytes.fromhex(ROOTS[new - 1])
    assert merkle.verify_consistency(old, new, r1, r2, proof)
    if not proof:
        return
    probes = [
        (old - 1, new, r1, r2, proof),
        (old + 1, new, r1, r2, proof),
        (old ^ 2, new, r1, r2, proof),
        (old, new * 2, r1, r2, proof),
        (old, new // 2, r1, r2, proof),
        (old, new, b"WrongRoot", r2, proof),
        (old, new, r1, b"WrongRoot", proof),
        (old, new, r2, r1, proof),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*proof, b""]),
        (old, new, r1, r2, [*proof, r1]),
        (old, new, r1, r2, [*proof, r2]),
        (old, new, r1, r2, [b"", *proof]),
        (old, new, r1, r2, [r1, *proof]),
        (old, new, r1, r2, [r2, *proof]),
        (old, new, r1, r2, [proof[0], *proof]),
        (old, new, r1, r2, proof[:-1]),
    ]
    for i in range(len(proof)):
        flipped = list(proof)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        probes.append((old, new, r1, r2, flipped))
    for s1, s2, a, b, p in probes:
        assert not merkle.verify_consistency(s1, s2, a, b, p), (s1, s2)


def test_consistency_edge_cases() -> None:
    empty = merkle.EMPTY_ROOT
    assert merkle.verify_consistency(0, 0, empty, empty, [])
    assert merkle.verify_consistency(0, 5, empty, bytes.fromhex(ROOTS[4]), [])
    assert not merkle.verify_consistency(0, 0, empty, empty, [empty])
    assert not merkle.verify_consistency(1, 1, bytes.fromhex(ROOTS[0]), bytes.fromhex(ROOTS[1]), [])
    assert not merkle.verify_consistency(2, 1, bytes.fromhex(ROOTS[1]), bytes.fromhex(ROOTS[0]), [])


def test_every_proof_of_every_tree_up_to_40_leaves() -> None:
    leaves = [merkle.leaf_hash(bytes([i, i * 7 % 256])) for i in range(40)]
    roots = [merkle.root_of(leaves[:n]) for n in range(41)]
    for n in range(1, 41):
        for i in range(n):
            proof = merkle.inclusion_proof(leaves, i, n)
            assert merkle.verify_inclusion(i, n, leaves[i], proof, roots[n])
            assert not merkle.verify_inclusion(i, n, leaves[(i + 1) % 40], proof, roots[n])
        for m in range(0, n + 1):
            proof = merkle.consistency_proof(leaves, m, n)
            assert merkle.verify_consistency(m, n, roots[m], roots[n], proof), (m, n)
            if 0 < m < n:
                assert not merkle.verify_consistency(m, n, roots[m - 1] if m > 1 else roots[n], roots[n], proof)
