"""One query compiled on its own (:func:`compile_query`), and the watch-set entry points.

A :class:`CompiledQuery` is the matching engine with a single watch in it: what
``watchfloor watch test`` and the documentation examples run, so they show exactly
what the pipeline does.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ..model import Explanation, Post, Watch, WatchStatus
from .engine import Segment, make_entry, prepare
from .parse import parse
from .tree import Node
from .watchset import IncrementalWatchSet, WatchSet, compile_watch_set

__all__ = ["CompiledQuery", "IncrementalWatchSet", "WatchSet", "compile_query", "compile_watch_set"]

_FOREVER = datetime(1970, 1, 1, tzinfo=UTC)


class CompiledQuery:
    """One query, compiled: ask whether a post matches and why."""

    __slots__ = ("_segment", "tree")

    def __init__(self, tree: Node) -> None:
        self.tree = tree
        watch = Watch(
            name="query",
            query="",
            purpose="",
            legal_basis="",
            owner="",
            created_at=_FOREVER,
            status=WatchStatus.approved,
            id=0,
        )
        self._segment = Segment([make_entry(watch, tree)])

    def matches(self, post: Post) -> bool:
        return self.explain(post) is not None

    def explain(self, post: Post) -> Explanation | None:
        """Why ``post`` matches, or ``None`` if it does not."""
        found = self._segment.match_batch(prepare([post]), _FOREVER, None)
        return found[0][0][1].explanation if found else None


def compile_query(query: str | Node) -> CompiledQuery:
    """``query`` (text or an already parsed tree) compiled for matching."""
    return CompiledQuery(parse(query) if isinstance(query, str) else query)
