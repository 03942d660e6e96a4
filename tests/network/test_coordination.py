"""Coordinated sharing: a planted group is found with its evidence, noise is not, and the
edges agree with the plain definition (every pair of shares within the window)."""

from __future__ import annotations

import itertools
import random

import pytest

from watchfloor.network.coordination import Share, coordinated_components

T0 = 1_790_000_000.0


def planted(seed: int = 5) -> tuple[list[Share], set[str]]:
    """Four accounts share the same five links within 20 s of each other, an hour apart;
    200 other accounts share 400 links at random times over a day."""
    rng = random.Random(seed)
    group = {"p:00000000000000c1", "p:00000000000000c2", "p:00000000000000c3", "p:00000000000000c4"}
    shares = []
    for k in range(5):
        for account in sorted(group):
            shares.append(Share(account, f"https://news.example/story-{k}", T0 + 3600 * k + rng.uniform(0, 20)))
    for _ in range(1_000):
        account = f"p:{rng.randrange(200):016x}"
        shares.append(Share(account, f"https://blog.example/{rng.randrange(400)}", T0 + rng.uniform(0, 86_400)))
    rng.shuffle(shares)
    return shares, group


def test_the_planted_group_is_the_one_component() -> None:
    shares, group = planted()
    result = coordinated_components(shares, window_s=60, min_repetition=3, kind="link")
    assert len(result.components) == 1
    c = result.components[0]
    assert set(c.accounts) == group
    assert len(c.edges) == 6  # every pair of the four
    assert all(e.weight == 5 and e.pairs == 5 for e in c.edges)
    assert c.objects == tuple(f"https://news.example/story-{k}" for k in range(5))
    assert len(c.shares) == 20 and {s.account for s in c.shares} == group
    assert c.first_at < c.last_at and c.last_at - c.first_at < 4 * 3600 + 60
    assert c.communities == (tuple(sorted(group)),)
    d = result.to_dict()
    assert d["components"][0]["window_s"] == 60 and d["components"][0]["min_repetition"] == 3
    assert result.shares == 1_020


def test_thresholds_matter() -> None:
    shares, _ = planted()
    assert coordinated_components(shares, window_s=60, min_repetition=6).components == ()
    assert coordinated_components(shares, window_s=0.001, min_repetition=3).components == ()


def test_same_input_in_any_order_gives_the_same_result() -> None:
    shares, _ = planted()
    first = coordinated_components(shares, window_s=60, min_repetition=2).to_dict()
    random.Random(1).shuffle(shares)
    assert coordinated_components(shares + shares[:10], window_s=60, min_repetition=2).to_dict() == first


def test_widely_shared_objects_are_set_aside() -> None:
    crowd = [Share(f"p:{i:016x}", "#trending", T0 + i) for i in range(30)]
    result = coordinated_components(crowd, window_s=3600, min_repetition=1, max_accounts_per_object=20)
    assert result.components == ()
    assert result.crowded_objects == (("#trending", 30),)


def test_communities_split_two_groups_joined_by_one_edge() -> None:
    shares = []
    for group, prefix in ((range(0, 5), "a"), (range(5, 10), "b")):
        for k in range(4):
            for i in group:
                shares.append(Share(f"p:{i:016x}", f"{prefix}{k}", T0 + 1000 * k + i))
    for k in range(2):  # accounts 0 and 5 also co-share twice
        shares += [
            Share(f"p:{0:016x}", f"bridge{k}", T0 + 50_000 + k * 500),
            Share(f"p:{5:016x}", f"bridge{k}", T0 + 50_001 + k * 500),
        ]
    result = coordinated_components(shares, window_s=30, min_repetition=2)
    assert len(result.components) == 1
    communities = result.components[0].communities
    assert sorted(len(c) for c in communities) == [5, 5]


@pytest.mark.parametrize("seed", range(5))
def test_edges_match_the_plain_definition(seed: int) -> None:
    """Against a brute-force reading of the coordination-network-toolkit's co-link rule:
    an edge for every pair of different accounts that shared one object within the window."""
    rng = random.Random(seed)
    shares = [
        Share(f"p:{rng.randrange(15):016x}", f"o{rng.randrange(12)}", T0 + rng.uniform(0, 600)) for _ in range(300)
    ]
    window, repeat = 45.0, 2
    objects: dict[tuple[str, str], set[str]] = {}
    pairs: dict[tuple[str, str], int] = {}
    for x, y in itertools.combinations(shares, 2):
        if x.object == y.object and x.account != y.account and abs(x.at - y.at) <= window:
            key = tuple(sorted((x.account, y.account)))
            objects.setdefault(key, set()).add(x.object)
            pairs[key] = pairs.get(key, 0) + 1
    expected = {k: (len(v), pairs[k]) for k, v in objects.items() if len(v) >= repeat}
    result = coordinated_components(shares, window_s=window, min_repetition=repeat)
    found = {(e.a, e.b): (e.weight, e.pairs) for c in result.components for e in c.edges}
    assert found == expected


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        coordinated_components([], window_s=-1, min_repetition=1)
    with pytest.raises(ValueError):
        coordinated_components([], window_s=1, min_repetition=0)
