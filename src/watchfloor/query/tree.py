"""The parsed form of a watch query: a small tree of frozen nodes.

Every node remembers where it was written: ``start``/``end`` are [start, end)
character offsets in the query string and ``source`` is ``query[start:end]``
(for a parenthesised group, the parentheses included).  Explanations quote
``source`` so an analyst sees the query part as they wrote it.

Positions do not take part in equality: two trees are equal when they mean the
same query, which keeps tests and caches simple.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = [
    "ACCOUNT_FIELDS",
    "ANCHOR_FIELDS",
    "FIELD_NAMES",
    "And",
    "Field",
    "Near",
    "Node",
    "Not",
    "Or",
    "Phrase",
    "Regex",
    "Term",
    "account_targets",
    "walk",
]

FIELD_NAMES: tuple[str, ...] = ("lang", "platform", "has", "domain", "hashtag", "mention", "url", "author")
# Filters selective enough to make a watch on their own (``hashtag:flood``); the others
# (``lang:``, ``platform:``, ``has:``) only narrow what words or phrases found.
ANCHOR_FIELDS: frozenset[str] = frozenset({"domain", "hashtag", "mention", "url", "author"})
# Filters that target one account: a watch using them needs a recorded authorization.
ACCOUNT_FIELDS: frozenset[str] = frozenset({"author", "mention"})


@dataclass(frozen=True, slots=True)
class Term:
    """A word as written (without a trailing ``*``; ``wildcard`` means it had one).

    ``text`` may hold ``*`` inside (``evac*ate``).  ``case_sensitive`` is set for a
    word written in braces (``{US}``).
    """

    text: str
    wildcard: bool = False
    case_sensitive: bool = False
    start: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)
    source: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Phrase:
    """A double-quoted phrase: its words as written, split on whitespace (``*`` allowed)."""

    words: tuple[str, ...]
    start: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)
    source: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Regex:
    """A ``/regular expression/`` over the post's folded words; ``pattern`` is between the slashes."""

    pattern: str
    start: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)
    source: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Field:
    """A filter such as ``lang:pt`` or ``domain:example.org`` (name and value normalised)."""

    name: str
    value: str
    start: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)
    source: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Near:
    """``left NEAR/distance right`` (either order) or ``left ONEAR/distance right`` (in order).

    At most ``distance`` words may come between the two.
    """

    left: Node
    right: Node
    distance: int
    ordered: bool = False
    start: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)
    source: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]
    start: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)
    source: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]
    start: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)
    source: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    child: Node
    start: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)
    source: str = field(default="", compare=False)


Node = Term | Phrase | Regex | Field | Near | And | Or | Not


def walk(node: Node) -> Iterator[Node]:
    """``node`` and every node below it, depth first, in query order."""
    yield node
    if isinstance(node, And | Or):
        for child in node.children:
            yield from walk(child)
    elif isinstance(node, Not):
        yield from walk(node.child)
    elif isinstance(node, Near):
        yield from walk(node.left)
        yield from walk(node.right)


def account_targets(node: Node) -> list[Field]:
    """The account-targeted filters (``author:``, ``mention:``) anywhere in ``node``.

    A watch with any of them targets accounts: the accountability work requires a
    recorded, approved authorization for it.
    """
    return [n for n in walk(node) if isinstance(n, Field) and n.name in ACCOUNT_FIELDS]
