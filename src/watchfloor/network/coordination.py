"""Coordinated sharing: accounts that repeatedly share the same objects within seconds of each other.

This is the co-sharing method of CooRnet (coordinated link sharing) and of the
coordination-network-toolkit (``co_link``, ``co_tweet``), on any kind of *object*: a URL,
a hashtag, a quoted post, a near-duplicate text group.

1. **Co-shares.** Two different accounts co-share an object when both shared it within
   ``window_s`` seconds of each other (a sliding window over every pair of shares, as
   the coordination-network-toolkit does; CooRnet cuts time into fixed bins, which
   misses pairs across a bin edge).
2. **Repetition.** An edge joins two accounts that co-shared at least ``min_repetition``
   *distinct* objects. One co-share is chance; repetition is the signal.
3. **Components.** Accounts joined by such edges form connected components (igraph);
   inside a component, Louvain community detection (seeded, so the same input gives the
   same communities) splits loosely joined groups.
4. **Evidence.** Every component carries what made it: each edge with its objects and
   the number of co-sharing pairs, every share involved (account, object, time, post),
   the time range, the window and the threshold. Nothing is concluded without it.

Objects shared by more than ``max_accounts_per_object`` accounts (a link to a large news
site, a trending hashtag) are set aside and listed: being part of a crowd is not
coordination, and the pairs would grow quadratically.

Accounts are whatever identifiers come in; inside watchfloor they are pseudonyms. A
component is a pattern for a person to review, never a finding about anyone.
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import igraph

__all__ = ["Component", "CoordinationResult", "Edge", "Share", "coordinated_components"]

_RNG_LOCK = threading.Lock()
MAX_ACCOUNTS_PER_OBJECT = 500


@dataclass(frozen=True, slots=True)
class Share:
    """One account sharing one object at one time (``post``: where it was shared, if known)."""

    account: str
    object: str
    at: float  # seconds since the epoch, UTC
    post: str | None = None

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.at, UTC)


@dataclass(slots=True)
class Edge:
    """Two accounts and what they co-shared within the window."""

    a: str
    b: str
    objects: set[str] = field(default_factory=set)
    pairs: int = 0  # co-sharing pairs of shares (the coordination-network-toolkit's edge weight)

    @property
    def weight(self) -> int:
        return len(self.objects)


@dataclass(frozen=True, slots=True)
class Component:
    id: int
    accounts: tuple[str, ...]
    edges: tuple[Edge, ...]
    objects: tuple[str, ...]
    shares: tuple[Share, ...]  # the shares that took part in a co-share, in time order
    communities: tuple[tuple[str, ...], ...]
    first_at: float
    last_at: float

    def to_dict(self, window_s: float, min_repetition: int) -> dict[str, object]:
        community_of = {acc: i + 1 for i, members in enumerate(self.communities) for acc in members}
        return {
            "component": self.id,
            "size": len(self.accounts),
            "accounts": [{"account": a, "community": community_of.get(a)} for a in self.accounts],
            "edges": [
                {"a": e.a, "b": e.b, "objects": sorted(e.objects), "distinct_objects": e.weight, "pairs": e.pairs}
                for e in self.edges
            ],
            "objects": list(self.objects),
            "shares": [
                {"account": s.account, "object": s.object, "at": _iso(s.at), "post": s.post} for s in self.shares
            ],
            "first_share": _iso(self.first_at),
            "last_share": _iso(self.last_at),
            "window_s": window_s,
            "min_repetition": min_repetition,
        }


@dataclass(frozen=True, slots=True)
class CoordinationResult:
    kind: str  # what the objects are: link, hashtag, quote, text, object
    window_s: float
    min_repetition: int
    shares: int
    accounts: int
    objects: int
    components: tuple[Component, ...]
    crowded_objects: tuple[tuple[str, int], ...]  # (object, accounts) set aside as too widely shared

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "window_s": self.window_s,
            "min_repetition": self.min_repetition,
            "shares": self.shares,
            "accounts": self.accounts,
            "objects": self.objects,
            "components": [c.to_dict(self.window_s, self.min_repetition) for c in self.components],
            "crowded_objects": [{"object": o, "accounts": n} for o, n in self.crowded_objects],
        }


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def _co_shares(
    by_object: dict[str, list[Share]], window_s: float
) -> tuple[dict[tuple[str, str], Edge], dict[tuple[str, str], set[Share]]]:
    edges: dict[tuple[str, str], Edge] = {}
    evidence: dict[tuple[str, str], set[Share]] = defaultdict(set)
    for obj, shares in by_object.items():
        shares.sort(key=lambda s: (s.at, s.account))
        start = 0
        for j, later in enumerate(shares):
            while later.at - shares[start].at > window_s:
                start += 1
            for i in range(start, j):
                earlier = shares[i]
                if earlier.account == later.account:
                    continue
                key = (
                    (earlier.account, later.account)
                    if earlier.account < later.account
                    else (later.account, earlier.account)
                )
                edge = edges.get(key)
                if edge is None:
                    edge = edges[key] = Edge(*key)
                edge.objects.add(obj)
                edge.pairs += 1
                evidence[key].update((earlier, later))
    return edges, evidence


def _communities(graph: igraph.Graph) -> list[int]:
    """Louvain membership per vertex, with igraph's random generator seeded for repeatability."""
    if graph.ecount() == 0:
        return list(range(graph.vcount()))
    with _RNG_LOCK:
        igraph.set_random_number_generator(random.Random(0))
        try:
            return list(graph.community_multilevel(weights="weight").membership)
        finally:
            igraph.set_random_number_generator(random)


def coordinated_components(
    shares: Iterable[Share],
    *,
    window_s: float,
    min_repetition: int,
    kind: str = "object",
    max_accounts_per_object: int = MAX_ACCOUNTS_PER_OBJECT,
) -> CoordinationResult:
    """Find the components of accounts that co-shared at least ``min_repetition`` objects
    within ``window_s`` seconds (see the module docstring for the method)."""
    if window_s < 0:
        raise ValueError("the window must be zero or more seconds")
    if min_repetition < 1:
        raise ValueError("min_repetition must be at least 1")
    by_object: dict[str, list[Share]] = defaultdict(list)
    seen: set[tuple[str, str, float]] = set()
    n_shares = 0
    accounts: set[str] = set()
    for share in shares:
        ident = (share.account, share.object, share.at)
        if ident in seen:  # the same share twice (a replayed export)
            continue
        seen.add(ident)
        n_shares += 1
        accounts.add(share.account)
        by_object[share.object].append(share)
    crowded = sorted(
        ((obj, n) for obj, lst in by_object.items() if (n := len({s.account for s in lst})) > max_accounts_per_object),
        key=lambda item: (-item[1], item[0]),
    )
    for obj, _ in crowded:
        del by_object[obj]
    n_objects = len(by_object) + len(crowded)

    edges, evidence = _co_shares(by_object, window_s)
    kept = {k: e for k, e in edges.items() if e.weight >= min_repetition}
    names = sorted({a for k in kept for a in k})
    index = {name: i for i, name in enumerate(names)}
    ordered = sorted(kept)
    graph = igraph.Graph(n=len(names), edges=[(index[a], index[b]) for a, b in ordered])
    graph.vs["name"] = names
    graph.es["weight"] = [kept[k].weight for k in ordered]
    membership = _communities(graph)

    components: list[Component] = []
    clusters = graph.connected_components()
    edges_of: dict[int, list[Edge]] = defaultdict(list)
    for k in ordered:
        edges_of[clusters.membership[index[k[0]]]].append(kept[k])
    for c, members in enumerate(clusters):
        member_names = sorted(names[v] for v in members)
        comp_edges = tuple(edges_of[c])
        comp_shares = sorted({s for e in comp_edges for s in evidence[(e.a, e.b)]}, key=lambda s: (s.at, s.account))
        groups: dict[int, list[str]] = defaultdict(list)
        for v in members:
            groups[membership[v]].append(names[v])
        communities = tuple(sorted((tuple(sorted(g)) for g in groups.values()), key=lambda g: (-len(g), g)))
        components.append(
            Component(
                id=0,
                accounts=tuple(member_names),
                edges=comp_edges,
                objects=tuple(sorted({o for e in comp_edges for o in e.objects})),
                shares=tuple(comp_shares),
                communities=communities,
                first_at=comp_shares[0].at,
                last_at=comp_shares[-1].at,
            )
        )
    components.sort(key=lambda c: (-len(c.accounts), -len(c.objects), c.first_at, c.accounts))
    numbered = tuple(
        Component(i + 1, c.accounts, c.edges, c.objects, c.shares, c.communities, c.first_at, c.last_at)
        for i, c in enumerate(components)
    )
    return CoordinationResult(
        kind=kind,
        window_s=window_s,
        min_repetition=min_repetition,
        shares=n_shares,
        accounts=len(accounts),
        objects=n_objects,
        components=numbered,
        crowded_objects=tuple(crowded),
    )
